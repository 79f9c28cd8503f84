// src/prune/scan: the pruner on a real temporary directory. The glob, dot
// files, symlinks and subdirectories; a dry run; a file held open by
// another process; max_files; a file replaced between plan and apply;
// (--only=unprovable, root) files it cannot lease.
// Exits 77 (a skip) where the temporary directory's filesystem gives no
// leases: every file would be protected and no case could delete.
#define DOCTEST_CONFIG_IMPLEMENT
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>

#include "core/arena.hpp"
#include "doctest.hpp"
#include "prune/scan.hpp"
#include "scratch_dir.hpp"

using namespace custos;
using namespace custos::prune;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t day = 86'400 * sec;
constexpr std::int64_t now_ns = 1'780'272'000 * sec; // 2026-06-01

using custos_test::tmp_root;

// A fresh directory, removed with everything in it at the end.
struct tmp_dir : custos_test::scratch_dir {
    tmp_dir() : scratch_dir("custos-prune") {}
    void file(std::string_view name, std::size_t size, std::int64_t mtime_ns) const {
        const std::string p = at(name);
        const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        std::string body(size, 'x');
        REQUIRE(::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()));
        ::close(fd);
        set_mtime(name, mtime_ns);
    }
    void set_mtime(std::string_view name, std::int64_t mtime_ns) const {
        struct timespec ts[2];
        ts[0].tv_sec = static_cast<time_t>(mtime_ns / sec);
        ts[0].tv_nsec = static_cast<long>(mtime_ns % sec);
        ts[1] = ts[0];
        REQUIRE(::utimensat(AT_FDCWD, at(name).c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0);
    }
    bool exists(std::string_view name) const {
        struct stat st {};
        return ::fstatat(AT_FDCWD, at(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    }
};

struct collected {
    std::set<std::string> deleted;
    std::set<std::string> kept;
    std::uint8_t last_rules = 0;
    Reason last_kept = Reason::unknown;
};

void on_deleted(void* ctx, std::string_view name, std::uint64_t, std::uint8_t rules) noexcept {
    auto* c = static_cast<collected*>(ctx);
    c->deleted.insert(std::string(name));
    c->last_rules = rules;
}

void on_kept(void* ctx, std::string_view name, const Error& why) noexcept {
    auto* c = static_cast<collected*>(ctx);
    c->kept.insert(std::string(name));
    c->last_kept = why.reason();
}

// A workspace in an arena of its own, sized by the two-pass layout.
struct ws_holder {
    arena mem;
    workspace ws;
    explicit ws_holder(std::uint32_t cap) {
        arena measure;
        REQUIRE(measure.reserve(0));
        workspace probe;
        CHECK(!probe.init(measure, cap));
        CHECK(measure.needed() <= workspace::footprint(cap));
        REQUIRE(mem.reserve(workspace::footprint(cap)));
        REQUIRE(ws.init(mem, cap));
    }
};

PruneSpec spec_for(const tmp_dir& d) {
    PruneSpec s;
    s.name = "test";
    s.dir = d.path;
    return s;
}

options opts(bool dry = false) {
    options o;
    o.dry_run = dry;
    o.now_wall_ns = now_ns;
    o.clock_trusted = true;
    return o;
}

report reporter(collected& c) {
    report r;
    r.on_deleted = on_deleted;
    r.on_kept = on_kept;
    r.ctx = &c;
    return r;
}

// A child process that holds `path` open until release() (or the end).
struct holder {
    int pid = -1;
    int hold_w = -1;
    explicit holder(const std::string& path) {
        int ready[2];
        int hold[2];
        REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
        REQUIRE(::pipe2(hold, O_CLOEXEC) == 0);
        pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::close(ready[0]);
            ::close(hold[1]);
            const int fd = ::open(path.c_str(), O_RDONLY);
            char c = fd >= 0 ? 'y' : 'n';
            (void)::write(ready[1], &c, 1);
            (void)::read(hold[0], &c, 1); // until the parent closes its end
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(hold[0]);
        hold_w = hold[1];
        char c = 0;
        REQUIRE(::read(ready[0], &c, 1) == 1);
        ::close(ready[0]);
        REQUIRE(c == 'y');
    }
    void release() {
        if (pid > 0) {
            ::close(hold_w);
            int st = 0;
            while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            pid = -1;
        }
    }
    ~holder() { release(); }
};

} // namespace

TEST_CASE("run: only regular files matching the glob; dot files, links, directories untouched") {
    tmp_dir d;
    d.file("a.log", 10, now_ns - 40 * day);
    d.file("b.log", 10, now_ns - 30 * day);
    d.file("new.log", 10, now_ns - 1 * day);
    d.file("c.txt", 10, now_ns - 40 * day);
    d.file(".hidden.log", 10, now_ns - 40 * day);
    REQUIRE(::symlink("c.txt", d.at("link.log").c_str()) == 0);
    REQUIRE(::mkdir(d.at("sub.log").c_str(), 0755) == 0);
    d.file("sub.log/inner.log", 10, now_ns - 40 * day);
    d.set_mtime("sub.log", now_ns - 40 * day);
    d.set_mtime("link.log", now_ns - 40 * day);

    ws_holder h(16);
    PruneSpec s = spec_for(d);
    s.glob = "*.log";
    s.max_age = Duration(15LL * 86'400'000);
    collected c;
    report rep = reporter(c);
    auto r = run(s, opts(), h.ws, rep);
    REQUIRE(r);
    CHECK(c.deleted == std::set<std::string>{"a.log", "b.log"});
    CHECK(c.last_rules == prune_rule_max_age);
    CHECK(rep.summary.scanned == 3);
    CHECK(rep.summary.deleted == 2);
    CHECK(rep.summary.deleted_bytes == 20);
    CHECK(rep.summary.kept == 1);
    CHECK(!d.exists("a.log"));
    CHECK(!d.exists("b.log"));
    for (const char* stays :
         {"new.log", "c.txt", ".hidden.log", "link.log", "sub.log", "sub.log/inner.log"}) {
        CAPTURE(stays);
        CHECK(d.exists(stays));
    }
    // A glob that names the dot file explicitly still does not reach it.
    s.glob = ".*";
    collected c2;
    report rep2 = reporter(c2);
    REQUIRE(run(s, opts(), h.ws, rep2));
    CHECK(rep2.summary.scanned == 0);
    CHECK(d.exists(".hidden.log"));
}

TEST_CASE("run: a dry run deletes nothing and reports the same list") {
    tmp_dir d;
    for (int i = 0; i < 6; ++i) {
        d.file("f" + std::to_string(i), 100, now_ns - (10 - i) * day);
    }
    ws_holder h(16);
    PruneSpec s = spec_for(d);
    s.keep_newest = 2;
    s.max_total_bytes = 150;
    collected dry;
    report rd = reporter(dry);
    REQUIRE(run(s, opts(true), h.ws, rd));
    CHECK(dry.deleted.size() == 5);
    for (int i = 0; i < 6; ++i) {
        CHECK(d.exists("f" + std::to_string(i)));
    }
    collected real;
    report rr = reporter(real);
    REQUIRE(run(s, opts(false), h.ws, rr));
    CHECK(real.deleted == dry.deleted);
    CHECK(rr.summary.deleted == rd.summary.deleted);
    CHECK(rr.summary.deleted_bytes == rd.summary.deleted_bytes);
    CHECK(d.exists("f5"));
    CHECK(!d.exists("f4"));
}

TEST_CASE("run: a file another process holds open is protected") {
    tmp_dir d;
    d.file("old.log", 100, now_ns - 40 * day);
    d.file("older.log", 100, now_ns - 50 * day);
    d.file("new.log", 100, now_ns - 1 * day);
    ws_holder h(8);
    PruneSpec s = spec_for(d);
    s.max_age = Duration(15LL * 86'400'000);
    {
        holder child(d.at("old.log"));
        collected c;
        report rep = reporter(c);
        REQUIRE(run(s, opts(), h.ws, rep));
        CHECK(c.deleted == std::set<std::string>{"older.log"});
        CHECK(rep.summary.protected_files == 1);
        CHECK(rep.summary.unprovable == 0);
        CHECK(d.exists("old.log"));
    }
    // Closed now: the next run deletes it.
    collected c;
    report rep = reporter(c);
    REQUIRE(run(s, opts(), h.ws, rep));
    CHECK(c.deleted == std::set<std::string>{"old.log"});
    CHECK(!d.exists("old.log"));
}

TEST_CASE("run: a descriptor this process holds protects the file too") {
    tmp_dir d;
    d.file("current.log", 100, now_ns - 40 * day);
    const int fd = ::open(d.at("current.log").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ws_holder h(8);
    PruneSpec s = spec_for(d);
    s.max_age = Duration(15LL * 86'400'000);
    collected c;
    report rep = reporter(c);
    REQUIRE(run(s, opts(), h.ws, rep));
    CHECK(c.deleted.empty());
    CHECK(d.exists("current.log"));
    ::close(fd);
}

TEST_CASE("run: without the open-file probe (check_open = false) a held file goes too") {
    tmp_dir d;
    d.file("old.log", 100, now_ns - 40 * day);
    const int fd = ::open(d.at("old.log").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ws_holder h(8);
    PruneSpec s = spec_for(d);
    s.max_age = Duration(15LL * 86'400'000);
    options o = opts();
    o.check_open = false;
    collected c;
    report rep = reporter(c);
    REQUIRE(run(s, o, h.ws, rep));
    CHECK(c.deleted.size() == 1);
    CHECK(!d.exists("old.log"));
    CHECK(rep.summary.protected_files == 0);
    ::close(fd);
}

TEST_CASE("run: protected names are kept, and the free-space floor reads statvfs") {
    tmp_dir d;
    d.file("a", 100, now_ns - 3 * day);
    d.file("b", 100, now_ns - 2 * day);
    d.file("c", 100, now_ns - 1 * day);
    ws_holder h(8);
    PruneSpec s = spec_for(d);
    s.min_free_bytes = UINT64_MAX; // never reached: every file not protected goes
    options o = opts();
    const std::string_view keep[] = {"b"};
    o.protected_names = keep;
    collected c;
    report rep = reporter(c);
    REQUIRE(run(s, o, h.ws, rep));
    CHECK(c.deleted == std::set<std::string>{"a", "c"});
    CHECK(c.last_rules == prune_rule_min_free_bytes);
    CHECK(d.exists("b"));
}

TEST_CASE("run: past max_files the run refuses and deletes nothing") {
    tmp_dir d;
    for (int i = 0; i < 5; ++i) {
        d.file("f" + std::to_string(i), 10, now_ns - (40 + i) * day);
    }
    PruneSpec s = spec_for(d);
    s.keep_newest = 1;
    s.max_files = 4;
    {
        ws_holder h(16);
        collected c;
        report rep = reporter(c);
        auto r = run(s, opts(), h.ws, rep);
        REQUIRE(!r);
        CHECK(r.error().reason() == Reason::prune_too_many_files);
        CHECK(c.deleted.empty());
    }
    {
        // The workspace's capacity bounds it as well.
        s.max_files = 100;
        ws_holder h(3);
        collected c;
        report rep = reporter(c);
        auto r = run(s, opts(), h.ws, rep);
        REQUIRE(!r);
        CHECK(r.error().reason() == Reason::prune_too_many_files);
    }
    for (int i = 0; i < 5; ++i) {
        CHECK(d.exists("f" + std::to_string(i)));
    }
    s.max_files = 5;
    ws_holder h(16);
    collected c;
    report rep = reporter(c);
    REQUIRE(run(s, opts(), h.ws, rep));
    CHECK(c.deleted.size() == 4);
}

TEST_CASE("apply: a file replaced, written or opened after the plan is kept") {
    tmp_dir d;
    d.file("replaced", 100, now_ns - 40 * day);
    d.file("written", 100, now_ns - 40 * day);
    d.file("opened", 100, now_ns - 40 * day);
    d.file("same", 100, now_ns - 40 * day);
    ws_holder h(8);
    PruneSpec s = spec_for(d);
    s.max_age = Duration(15LL * 86'400'000);
    collected c;
    report rep = reporter(c);
    REQUIRE(plan(s, opts(), h.ws, rep));
    REQUIRE(h.ws.decisions().size() == 4);
    // Between the decision and the unlink: a new file renamed over the old
    // name (same size and mtime: only the inode tells), a write, an open.
    d.file("replaced.new", 100, now_ns - 40 * day);
    REQUIRE(::rename(d.at("replaced.new").c_str(), d.at("replaced").c_str()) == 0);
    const int fd = ::open(d.at("written").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "y", 1) == 1);
    ::close(fd);
    holder child(d.at("opened"));
    REQUIRE(apply(s, opts(), h.ws, rep));
    CHECK(c.deleted == std::set<std::string>{"same"});
    CHECK(c.kept == std::set<std::string>{"replaced", "written", "opened"});
    CHECK(c.last_kept == Reason::prune_file_changed);
    CHECK(rep.summary.changed == 3);
    CHECK(rep.summary.deleted == 1);
    CHECK(rep.summary.kept == 3);
    CHECK(d.exists("replaced"));
    CHECK(d.exists("written"));
    CHECK(d.exists("opened"));
    CHECK(!d.exists("same"));
    // apply() without a fresh plan refuses.
    CHECK(!apply(s, opts(), h.ws, rep));
}

TEST_CASE("run: errors before any deletion") {
    ws_holder h(4);
    PruneSpec s;
    s.name = "missing";
    s.dir = "/nonexistent/custos-prune";
    collected c;
    report rep = reporter(c);
    auto r = run(s, opts(), h.ws, rep);
    REQUIRE(!r);
    CHECK(r.error().reason() == Reason::prune_scan_failed);
    CHECK(r.error().sys_errno() == ENOENT);
    s.dir = "relative";
    r = run(s, opts(), h.ws, rep);
    REQUIRE(!r);
    CHECK(r.error().reason() == Reason::invalid_argument);
    workspace none;
    tmp_dir d;
    s.dir = d.path;
    r = run(s, opts(), none, rep);
    REQUIRE(!r);
    CHECK(r.error().reason() == Reason::invalid_argument);
}

// Run only with --only=unprovable, as root (else exit 77): a child that
// drops to uid/gid 65534 prunes root's files in a directory it may write
// (0777): it could unlink them, but it cannot take a lease on files it
// does not own (EACCES), so it cannot prove them closed and keeps them.
TEST_CASE("run: files it cannot lease are kept and counted unprovable [unprovable]") {
    tmp_dir d;
    REQUIRE(::chmod(d.path.c_str(), 0777) == 0);
    d.file("a", 10, now_ns - 40 * day);
    d.file("b", 10, now_ns - 30 * day);
    d.file("c", 10, now_ns - 20 * day);
    const int pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0) {
            ::_exit(3);
        }
        arena mem;
        workspace ws;
        if (!mem.reserve(workspace::footprint(8)) || !ws.init(mem, 8)) {
            ::_exit(4);
        }
        PruneSpec s = spec_for(d);
        s.max_age = Duration(15LL * 86'400'000);
        report rep;
        auto r = run(s, opts(), ws, rep);
        const PruneSummary& m = rep.summary;
        const bool ok = r && m.scanned == 3 && m.protected_files == 3 && m.unprovable == 3 &&
                        m.deleted == 0 && m.unlink_failed == 0;
        ::_exit(ok ? 0 : 1);
    }
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    REQUIRE(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
    CHECK(d.exists("a"));
    CHECK(d.exists("b"));
    CHECK(d.exists("c"));
}

int main(int argc, char** argv) {
    // --only=unprovable runs the [unprovable] case (root only, else exit
    // 77); without it, every other case runs.
    std::string_view only;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a.substr(0, 7) == "--only=") {
            only = a.substr(7);
        }
    }
    if (!only.empty() && only != "unprovable") {
        std::printf("unknown --only=%.*s\n", static_cast<int>(only.size()), only.data());
        return 2;
    }
    if (only == "unprovable" && ::geteuid() != 0) {
        std::printf("SKIP: not root: cannot prune another user's files\n");
        return 77;
    }
    // Leases on the temporary directory's filesystem: without them every
    // file is protected (unprovable) and no case here could delete.
    std::string tmpl = tmp_root() + "/custos-prune-probe-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
        std::printf("FAIL: mkdtemp under %s: %s\n", tmp_root().c_str(), std::strerror(errno));
        return 1;
    }
    const std::string f = tmpl + "/probe";
    const int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ::close(fd);
    }
    const int dirfd = ::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool unprovable = true;
    const bool held = dirfd >= 0 && held_open(dirfd, "probe", unprovable);
    if (dirfd >= 0) {
        ::close(dirfd);
    }
    ::unlink(f.c_str());
    ::rmdir(tmpl.c_str());
    if (fd < 0 || held || unprovable) {
        std::printf("SKIP: no file leases on %s (F_SETLEASE refused)\n", tmp_root().c_str());
        return 77;
    }
    doctest::Context ctx;
    if (only == "unprovable") {
        ctx.addFilter("test-case", "*[unprovable]*");
    } else {
        ctx.addFilter("test-case-exclude", "*[unprovable]*");
    }
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
