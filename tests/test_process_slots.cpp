// Service slots in the process host (reload, src/process/host.hpp): a real
// process::host on a real reactor, driven as the runtime drives it (open,
// reactor, spawner, layout in two passes, child watch, contain, start),
// with an events implementation that counts exits and readiness.
//
// meson runs this binary per backend (CUSTOS_BACKEND), twice:
//   (no option)     containment by process groups and the pid record
//                   (cgroup = off): works anywhere;
//   --suite=cgroup  each slot in its own cgroup under a private root
//                   <cgroup2 mount>/custos-slots-<pid>-N: needs root and a
//                   usable cgroup2 mount, else exits 77 (a skip).
// Built with tests/counting_alloc.cpp where no sanitizer replaces malloc
// (CUSTOS_TEST_COUNT_ALLOC): then one case also counts allocations after
// start(), which must be none.
#define DOCTEST_CONFIG_IMPLEMENT
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "backend_probe.hpp"
#include "core/arena.hpp"
#include "doctest.hpp"
#include "io/reactor.hpp"
#include "process/cgroup.hpp"
#include "process/host.hpp"
#include "process/host_proc.hpp"
#include "process/notify.hpp"
#include "process/pid_record.hpp"

#ifdef CUSTOS_TEST_COUNT_ALLOC
#include "counting_alloc.hpp"
#endif

using namespace custos;
using process::launch;

namespace {

bool g_cgroups = false;     // --suite=cgroup: a usable cgroup2 mount
std::string g_cgroup_mount; // its mount point
int g_rig_serial = 0;

constexpr std::uint32_t max_slots = 8;

// What the host reports, counted per slot (fixed arrays: the no-allocation
// case records through it too).
struct recorder final : process::events {
    std::uint32_t exits[max_slots] = {};
    ExitInfo last_exit[max_slots] = {};
    std::uint32_t readies[max_slots] = {};
    Reason last_ready[max_slots] = {};
    void exited(std::uint32_t i, const ExitInfo& e) noexcept override {
        ++exits[i];
        last_exit[i] = e;
    }
    void ready(std::uint32_t i, Reason why) noexcept override {
        ++readies[i];
        last_ready[i] = why;
    }
    void extend_timeout(std::uint32_t, nanos) noexcept override {}
    void watchdog_usec(std::uint32_t, nanos) noexcept override {}
    void watchdog_ping(std::uint32_t) noexcept override {}
    void watchdog_trigger(std::uint32_t) noexcept override {}
};

std::string format(const Error& e) {
    char buf[512];
    e.format(buf, sizeof buf);
    return buf;
}

std::string read_text(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return out;
    }
    char buf[512];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// A definition whose views stay valid as long as the object lives.
struct def {
    std::string name;
    std::vector<std::string> args;
    std::vector<std::string> envs;
    std::string cwd;
    std::vector<std::string_view> argv_views;
    std::vector<std::string_view> env_views;
    launch l;

    def(std::string n, std::vector<std::string> a, std::vector<std::string> e = {},
        std::string wd = {})
        : name(std::move(n)), args(std::move(a)), envs(std::move(e)), cwd(std::move(wd)) {
        for (const auto& s : args) {
            argv_views.emplace_back(s);
        }
        for (const auto& s : envs) {
            env_views.emplace_back(s);
        }
        l.name = name;
        l.path = args.front();
        l.argv = argv_views;
        l.env = env_views;
        l.cwd = cwd;
    }
    def(const def&) = delete;
    def& operator=(const def&) = delete;
};

// "/bin/sh -c SCRIPT NAME": $0 is NAME.
std::vector<std::string> sh(std::string script, std::string zero = "slot") {
    return {"/bin/sh", "-c", std::move(script), std::move(zero)};
}

struct rig {
    io::reactor r;
    recorder ev;
    arena mem; // outlives the host, whose records are in it
    process::host h{r, ev};
    std::string dir;
    std::string cgroup_root;
    bool ok = false;

    explicit rig(std::vector<launch> services, std::uint32_t slots, std::size_t slot_bytes,
                 bool start = true) {
        char tmpl[] = "/tmp/custos-slots-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        notify_dir = dir + "/notify";
        run_root = dir + "/run";
        pids = dir + "/pids";
        process::host_config cfg;
        cfg.notify_dir = notify_dir;
        cfg.runtime_dir_root = run_root;
        cfg.pid_record = pids;
        if (g_cgroups) {
            cgroup_root = g_cgroup_mount + "/custos-slots-" + std::to_string(::getpid()) + "-" +
                          std::to_string(++g_rig_serial);
            cfg.cgroup = cgroup_root;
        } else {
            cfg.cgroup = "off";
        }
        auto o = h.open(cfg);
        REQUIRE_MESSAGE(o.has_value(), (o ? "" : format(o.error())));
        io::reactor_config rc;
        rc.max_ops = 4 * (slots + 1) + 16;
        rc.max_fds = 3 * (slots + 1) + 16;
        auto ri = r.init(rc);
        REQUIRE_MESSAGE(ri.has_value(), (ri ? "" : format(ri.error())));
        REQUIRE(h.init_spawner().has_value());
        auto l1 = h.layout(services, mem, slots, slot_bytes);
        REQUIRE((l1.has_value() || l1.error().reason() == Reason::out_of_memory));
        REQUIRE(mem.reserve(mem.needed()));
        auto l2 = h.layout(services, mem, slots, slot_bytes);
        REQUIRE_MESSAGE(l2.has_value(), (l2 ? "" : format(l2.error())));
        REQUIRE(h.watch_children().has_value());
        auto c = h.contain(0);
        REQUIRE_MESSAGE(c.has_value(), (c ? "" : format(c.error())));
        if (start) {
            h.start();
        }
        ok = true;
    }

    ~rig() {
        for (std::uint32_t i = 0; i < h.size(); ++i) {
            if (h.pid(i) > 0) {
                h.kill(i, SIGKILL);
            }
        }
        (void)run_until([&] { return !any_running(); });
        h.reap_remnants();
        h.remove_runtime_dirs();
        h.close_notify();
        // As the runtime does: bounded turns that do not block. On
        // io_uring, the read on the directory's inotify descriptor, once
        // it has fired, may not complete its cancel (it stays busy): the
        // reactor's teardown takes it.
        for (int k = 0; k < 100 && h.busy(); ++k) {
            r.run_once(false);
        }
        std::string cmd = "rm -rf '" + dir + "'";
        (void)std::system(cmd.c_str());
    }

    bool any_running() const {
        for (std::uint32_t i = 0; i < h.size(); ++i) {
            if (h.pid(i) > 0) {
                return true;
            }
        }
        return false;
    }

    // Turns the loop until `done` or about `seconds` have passed (generous:
    // CI is loaded; the events are counted, not timed).
    template <class F>
    bool run_until(F done, int seconds = 20) {
        io::timer tick;
        tick.fire = [](io::timer&) {};
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
        while (!done()) {
            if (std::chrono::steady_clock::now() > end) {
                r.cancel(tick);
                return false;
            }
            r.arm_after(tick, std::chrono::milliseconds(20));
            r.run_once(true);
        }
        r.cancel(tick);
        return true;
    }

    std::string notify_dir;
    std::string run_root;
    std::string pids;
};

std::string svc_helper() {
    const char* p = std::getenv("CUSTOS_SVC_HELPER");
    return p != nullptr ? p : "";
}

bool alive(int pid) {
    if (pid <= 0) {
        return false;
    }
    if (::kill(pid, 0) != 0) {
        return false;
    }
    // A zombie (not reaped yet by whoever its parent is) no longer runs.
    std::string st = read_text("/proc/" + std::to_string(pid) + "/stat");
    auto close = st.rfind(')');
    return close == std::string::npos || close + 2 >= st.size() || st[close + 2] != 'Z';
}

} // namespace

TEST_SUITE("slots") {

    TEST_CASE("layout with more slots than services: the rest are vacant and refuse to spawn") {
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 3, 1024);
        CHECK(t.h.size() == 3);
        CHECK_FALSE(t.h.vacant(0));
        CHECK(t.h.vacant(1));
        CHECK(t.h.vacant(2));
        CHECK(t.h.vacant(3)); // beyond the slots: vacant, not a crash
        CHECK(t.h.pid(1) == 0);
        auto s = t.h.spawn(1);
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().reason() == Reason::invalid_argument);
        t.h.vacate(2); // on a vacant slot: a no-op
        CHECK(t.h.vacant(2));
        // The occupied slot runs as before.
        REQUIRE(t.h.spawn(0).has_value());
        CHECK(t.run_until([&] { return t.ev.exits[0] == 1; }));
        CHECK(t.ev.last_exit[0].code == 0);
    }

    TEST_CASE("slots = 0 lays out exactly the services (as before reload)") {
        def a("alpha", sh("exit 0"));
        def b("beta", sh("exit 0"));
        rig t({a.l, b.l}, 0, 0);
        CHECK(t.h.size() == 2);
        CHECK_FALSE(t.h.vacant(0));
        CHECK_FALSE(t.h.vacant(1));
        CHECK(t.h.vacant(2));
        // A changed definition that fits the room its first one took.
        def a2("alpha", sh("exit 5"));
        auto r = t.h.redefine(0, a2.l);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : format(r.error())));
        REQUIRE(t.h.spawn(0).has_value());
        CHECK(t.run_until([&] { return t.ev.exits[0] == 1; }));
        CHECK(t.ev.last_exit[0].code == 5);
        // No notify socket was laid out for alpha: gaining one is refused.
        def a3("alpha", sh("exit 0"));
        a3.l.notify = true;
        a3.l.ready = ReadyMode::notify;
        auto g = t.h.redefine(0, a3.l);
        REQUIRE_FALSE(g.has_value());
        CHECK(g.error().reason() == Reason::reload_capacity);
        CHECK(g.error().subject().find("alpha") != std::string_view::npos);
    }

    TEST_CASE("redefine a vacant slot, then spawn it: argv, environment and cwd as given") {
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 3, 2048);
        const std::string out = t.dir + "/out";
        def b("bravo",
              sh("printf '%s|%s|%s' \"$0\" \"$GREETING\" \"$(pwd)\" > " + out + "; exit 7", "zero"),
              {"GREETING=hello slot"}, t.dir);
        auto r = t.h.redefine(2, b.l);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : format(r.error())));
        CHECK_FALSE(t.h.vacant(2));
        auto s = t.h.spawn(2);
        REQUIRE_MESSAGE(s.has_value(), (s ? "" : format(s.error())));
        CHECK(*s > 0);
        CHECK(t.run_until([&] { return t.ev.exits[2] == 1; }));
        CHECK(t.ev.last_exit[2].code == 7);
        CHECK(t.ev.last_exit[2].pid == *s);
        CHECK(read_text(out) == "zero|hello slot|" + t.dir);
        CHECK(t.ev.exits[0] == 0); // nothing else reported
        CHECK(t.ev.exits[1] == 0);
    }

    TEST_CASE("notify readiness through a socket bound at redefine; vacate removes it") {
        std::string helper = svc_helper();
        std::vector<std::string> args;
        if (!helper.empty()) {
            args = {helper, "notify-ready", "0", "up"};
        } else if (::access("/usr/bin/systemd-notify", X_OK) == 0) {
            args = sh("systemd-notify --ready --status=up; exec sleep 60");
        } else {
            MESSAGE("SKIP: neither svc_helper (CUSTOS_SVC_HELPER) nor systemd-notify");
            return;
        }
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 2, 2048);
        def n("notifier", args);
        n.l.notify = true;
        n.l.ready = ReadyMode::notify;
        n.l.runtime_dir = true;
        auto r = t.h.redefine(1, n.l);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : format(r.error())));
        const std::string sock = t.notify_dir + "/notifier";
        CHECK(exists(sock));
        auto s = t.h.spawn(1);
        REQUIRE_MESSAGE(s.has_value(), (s ? "" : format(s.error())));
        CHECK(exists(t.run_root + "/notifier"));
        CHECK(t.run_until([&] { return t.ev.readies[1] >= 1; }));
        CHECK(t.ev.readies[1] == 1);
        CHECK(t.ev.last_ready[1] == Reason::ready_notified);
        CHECK(t.h.status_text(1) == "up");
        CHECK(t.h.stats().notify_received >= 1);
        t.h.kill(1, SIGTERM);
        CHECK(t.run_until([&] { return t.ev.exits[1] == 1; }));
        t.h.vacate(1);
        CHECK(t.h.vacant(1));
        CHECK_FALSE(exists(sock));
        CHECK_FALSE(exists(t.run_root + "/notifier"));
        CHECK(t.h.status_text(1).empty());
        // The slot takes another service, with a socket of its own (the
        // previous one may still be closing: a spare serves).
        def m("mike", args);
        m.l.notify = true;
        m.l.ready = ReadyMode::notify;
        auto r2 = t.h.redefine(1, m.l);
        REQUIRE_MESSAGE(r2.has_value(), (r2 ? "" : format(r2.error())));
        CHECK(exists(t.notify_dir + "/mike"));
        REQUIRE(t.h.spawn(1).has_value());
        CHECK(t.run_until([&] { return t.ev.readies[1] >= 2; }));
        t.h.kill(1, SIGKILL);
        CHECK(t.run_until([&] { return t.ev.exits[1] == 2; }));
    }

    TEST_CASE("a socket file deleted from a slot's socket is put back") {
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 2, 2048);
        def n("nova", sh("exit 0"));
        n.l.notify = true;
        REQUIRE(t.h.redefine(1, n.l).has_value());
        const std::string sock = t.notify_dir + "/nova";
        REQUIRE(exists(sock));
        REQUIRE(::unlink(sock.c_str()) == 0);
        bool watched = t.run_until([&] { return exists(sock); }, 10);
        if (!watched) {
            // inotify refused here: nothing is noticed (notify_dir::watch_fd).
            MESSAGE("note: the socket was not restored (no inotify watch?)");
        }
        CHECK((watched || t.h.stats().notify_restored == 0));
    }

    TEST_CASE(
        "redefine while the process runs: it keeps running, exits once, the next spawn is new") {
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 2, 2048);
        const std::string log = t.dir + "/log";
        def one("runner", sh("echo one >> " + log + "; exec sleep 60"));
        one.l.ready = ReadyMode::fd;
        one.l.ready_fd = 3;
        REQUIRE(t.h.redefine(1, one.l).has_value());
        auto s = t.h.spawn(1);
        REQUIRE_MESSAGE(s.has_value(), (s ? "" : format(s.error())));
        const int pid = *s;
        CHECK(t.run_until([&] { return read_text(log) == "one\n"; }));
        // The new definition: another argv, notify instead of an fd, a channel.
        def two("runner", sh("echo two >> " + log + "; exit 4"));
        two.l.notify = true;
        two.l.ready = ReadyMode::notify;
        two.l.channel_fd = 5;
        auto r = t.h.redefine(1, two.l);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : format(r.error())));
        CHECK(t.h.pid(1) == pid);
        CHECK(alive(pid));
        CHECK(t.h.channel_fd(1) == -1); // the running process has none: it had no channel_fd
        CHECK(exists(t.notify_dir + "/runner")); // gained, bound at once
        // Some loop turns: nothing happens to it.
        for (int k = 0; k < 20; ++k) {
            t.r.run_once(false);
        }
        CHECK(alive(pid));
        CHECK(t.ev.exits[1] == 0);
        t.h.kill(1, SIGTERM);
        CHECK(t.run_until([&] { return t.ev.exits[1] >= 1; }));
        CHECK(t.ev.last_exit[1].signal == SIGTERM);
        CHECK(t.ev.last_exit[1].pid == pid);
        for (int k = 0; k < 20; ++k) {
            t.r.run_once(false);
        }
        CHECK(t.ev.exits[1] == 1); // reported once
        auto s2 = t.h.spawn(1);
        REQUIRE_MESSAGE(s2.has_value(), (s2 ? "" : format(s2.error())));
        CHECK(t.h.channel_fd(1) >= 0); // the new definition's channel
        CHECK(t.run_until([&] { return t.ev.exits[1] == 2; }));
        CHECK(t.ev.last_exit[1].code == 4);
        CHECK(read_text(log) == "one\ntwo\n");
        CHECK(t.h.channel_fd(1) == -1);
    }

    TEST_CASE("redefine refuses another service's slot and bad definitions, slot unchanged") {
        def a("alpha", sh("exit 3"));
        rig t({a.l}, 2, 512);
        def other("other", sh("exit 0"));
        auto r = t.h.redefine(0, other.l);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().reason() == Reason::invalid_argument);
        def bad("alpha", sh("exit 0"), {"NOEQUALS"});
        auto rb = t.h.redefine(0, bad.l);
        REQUIRE_FALSE(rb.has_value());
        CHECK(rb.error().reason() == Reason::invalid_argument);
        REQUIRE(t.h.spawn(0).has_value());
        CHECK(t.run_until([&] { return t.ev.exits[0] == 1; }));
        CHECK(t.ev.last_exit[0].code == 3);
        auto oob = t.h.redefine(7, other.l);
        CHECK_FALSE(oob.has_value());
    }

    TEST_CASE(
        "ReloadCapacity: a definition larger than the slot's room leaves the slot unchanged") {
        def a("alpha", sh("exit 3"));
        rig t({a.l}, 2, 1024);
        // The environment is inherited into the exec data: measure how much
        // room there is beyond it by making the argument larger than the room.
        std::string big(4096, 'x');
        def huge("alpha", sh("exit 9; " + big));
        auto r = t.h.redefine(0, huge.l);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().reason() == Reason::reload_capacity);
        CHECK(r.error().subject().find("alpha") != std::string_view::npos);
        CHECK(r.error().subject().find("bytes") != std::string_view::npos);
        // Still the old definition.
        REQUIRE(t.h.spawn(0).has_value());
        CHECK(t.run_until([&] { return t.ev.exits[0] == 1; }));
        CHECK(t.ev.last_exit[0].code == 3);
        // A vacant slot's room is slot_bytes: the same refusal, still vacant.
        def hugenew("hotel", sh("exit 9; " + big));
        auto rv = t.h.redefine(1, hugenew.l);
        REQUIRE_FALSE(rv.has_value());
        CHECK(rv.error().reason() == Reason::reload_capacity);
        CHECK(t.h.vacant(1));
        CHECK_FALSE(exists(t.notify_dir + "/hotel"));
    }

    TEST_CASE("vacate: a service's remnants are gone with it, the pid record slot is clear") {
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 3, 2048);
        const std::string bg = t.dir + "/bg";
        def v("victor", sh("sleep 60 & echo $! > " + bg + "; exit 0"));
        v.l.notify = true;
        v.l.runtime_dir = true;
        REQUIRE(t.h.redefine(2, v.l).has_value());
        auto s = t.h.spawn(2);
        REQUIRE_MESSAGE(s.has_value(), (s ? "" : format(s.error())));
        // The pid record has a slot per service slot, this one filled.
        if (!g_cgroups) {
            process::pid_record::header hd{};
            process::pid_record::slot sl{};
            int fd = ::open(t.pids.c_str(), O_RDONLY | O_CLOEXEC);
            REQUIRE(fd >= 0);
            {
                CHECK(::pread(fd, &hd, sizeof hd, 0) == static_cast<ssize_t>(sizeof hd));
                CHECK(hd.slots >= 3);
                CHECK(::pread(fd, &sl, sizeof sl, sizeof hd + 2 * sizeof sl) ==
                      static_cast<ssize_t>(sizeof sl));
                CHECK((sl.pid == *s || t.ev.exits[2] == 1)); // or already exited and cleared
            }
            ::close(fd);
        }
        CHECK(t.run_until([&] { return t.ev.exits[2] == 1; }));
        CHECK(t.run_until([&] { return !read_text(bg).empty(); }));
        const int bgpid = std::atoi(read_text(bg).c_str());
        CHECK(bgpid > 0);
        // Its remnant (the background sleep) was killed at the exit.
        CHECK(t.run_until([&] { return !alive(bgpid); }));
        t.h.vacate(2);
        CHECK(t.h.vacant(2));
        CHECK_FALSE(exists(t.notify_dir + "/victor"));
        CHECK_FALSE(exists(t.run_root + "/victor"));
        if (!g_cgroups) {
            process::pid_record::slot sl{};
            int fd = ::open(t.pids.c_str(), O_RDONLY | O_CLOEXEC);
            REQUIRE(fd >= 0);
            CHECK(
                ::pread(fd, &sl, sizeof sl, sizeof(process::pid_record::header) + 2 * sizeof sl) ==
                static_cast<ssize_t>(sizeof sl));
            CHECK(sl.pid == 0);
            ::close(fd);
        } else {
            const std::string cg = t.cgroup_root + "/victor";
            CHECK(t.run_until([&] { return !exists(cg); }));
        }
        t.h.vacate(2); // twice: a no-op
        CHECK(t.h.vacant(2));
        // Slot 0 is untouched by all of it.
        CHECK_FALSE(t.h.vacant(0));
        REQUIRE(t.h.spawn(0).has_value());
        CHECK(t.run_until([&] { return t.ev.exits[0] == 1; }));
    }

    TEST_CASE("cgroups: a slot filled at reload gets its cgroup, leftovers in it are killed") {
        if (!g_cgroups) {
            MESSAGE("process groups only in this run (the cgroup run covers this)");
            return;
        }
        def a("alpha", sh("exit 0"));
        rig t({a.l}, 2, 2048);
        const std::string cg = t.cgroup_root + "/charlie";
        CHECK_FALSE(exists(cg));
        // A leftover: a cgroup of that name with a process in it.
        REQUIRE(::mkdir(cg.c_str(), 0755) == 0);
        pid_t stray = ::fork();
        if (stray == 0) {
            int fd = ::open((cg + "/cgroup.procs").c_str(), O_WRONLY);
            if (fd < 0 || ::write(fd, "0", 1) != 1) {
                ::_exit(1);
            }
            ::pause();
            ::_exit(0);
        }
        REQUIRE(stray > 0);
        bool moved = false;
        for (int k = 0; k < 500 && !moved; ++k) {
            moved =
                read_text(cg + "/cgroup.procs").find(std::to_string(stray)) != std::string::npos;
            if (!moved) {
                ::usleep(2000);
            }
        }
        REQUIRE(moved);
        const std::uint64_t before = t.h.stats().leftovers_killed;
        def c("charlie", sh("exec sleep 60"));
        auto r = t.h.redefine(1, c.l);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : format(r.error())));
        CHECK(t.h.stats().leftovers_killed == before + 1);
        int st = 0;
        CHECK(::waitpid(stray, &st, 0) == stray);
        CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
        auto s = t.h.spawn(1);
        REQUIRE(s.has_value());
        CHECK(read_text(cg + "/cgroup.procs").find(std::to_string(*s)) != std::string::npos);
        t.h.kill(1, SIGTERM);
        CHECK(t.run_until([&] { return t.ev.exits[1] == 1; }));
        t.h.vacate(1);
        CHECK(t.run_until([&] { return !exists(cg); }));
    }

#ifdef CUSTOS_TEST_COUNT_ALLOC
    TEST_CASE("no allocation in redefine, spawn, exit and vacate after start") {
        def a("alpha", sh("exit 0"));
        def b("bravo", sh("exit 2"), {"K=v"}, "/tmp");
        b.l.notify = true;
        b.l.ready = ReadyMode::notify;
        b.l.runtime_dir = true;
        def b2("bravo", sh("exit 6"));
        b2.l.channel_fd = 4;
        def c("charlie", sh("exit 0"));
        c.l.notify = true;
        rig t({a.l}, 3, 2048);
        // Warm up what allocates once per process on first use (the spawner,
        // libc's lazy tables), outside the count.
        REQUIRE(t.h.spawn(0).has_value());
        REQUIRE(t.run_until([&] { return t.ev.exits[0] == 1; }));
        bool all = true;
        const std::uint64_t before = custos_test::allocation_count();
        all = all && t.h.redefine(1, b.l).has_value();
        all = all && t.h.spawn(1).has_value();
        all = all && t.run_until([&] { return t.ev.exits[1] == 1; });
        all = all && t.h.redefine(1, b2.l).has_value();
        all = all && t.h.spawn(1).has_value();
        all = all && t.run_until([&] { return t.ev.exits[1] == 2; });
        t.h.vacate(1);
        all = all && t.h.redefine(1, c.l).has_value();
        all = all && t.h.spawn(1).has_value();
        all = all && t.run_until([&] { return t.ev.exits[1] == 3; });
        t.h.vacate(1);
        const std::uint64_t after = custos_test::allocation_count();
        CHECK(all);
        CHECK(after - before == 0);
        CHECK(t.ev.last_exit[1].code == 0);
    }
#endif

    TEST_CASE("per-slot fixed cost (printed for the report)") {
        MESSAGE("proc " << sizeof(process::proc) << " B, notify_socket "
                        << sizeof(process::notify_socket) << " B, notify_buffers (once) "
                        << sizeof(process::notify_buffers) << " B");
        CHECK(sizeof(process::proc) > 0);
    }

} // TEST_SUITE

int main(int argc, char** argv) {
    std::vector<char*> args;
    bool cgroup = false;
    for (int i = 0; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a == "--suite=cgroup") {
            cgroup = true;
            continue;
        }
        args.push_back(argv[i]);
    }
    if (int r = custos_test::probe_backend(); r != 0) {
        return r;
    }
    if (cgroup) {
        if (::geteuid() != 0) {
            std::printf("SKIP: not root: cannot create cgroups\n");
            return 77;
        }
        char mount[4096];
        auto m = process::find_cgroup2_mount(mount, sizeof mount);
        if (!m) {
            std::printf("SKIP: no cgroup2 mount: %s\n", format(m.error()).c_str());
            return 77;
        }
        // Usable: a directory can be made and a process moved into it.
        std::string probe =
            std::string(mount) + "/custos-slots-probe-" + std::to_string(::getpid());
        if (::mkdir(probe.c_str(), 0755) != 0) {
            std::printf("SKIP: cannot create a cgroup under %s: %s\n", mount, std::strerror(errno));
            return 77;
        }
        pid_t c = ::fork();
        if (c == 0) {
            int fd = ::open((probe + "/cgroup.procs").c_str(), O_WRONLY);
            ::_exit(fd >= 0 && ::write(fd, "0", 1) == 1 ? 0 : 1);
        }
        int st = 0;
        ::waitpid(c, &st, 0);
        ::rmdir(probe.c_str());
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            std::printf("SKIP: cannot move a process into a cgroup under %s\n", mount);
            return 77;
        }
        g_cgroups = true;
        g_cgroup_mount = mount;
        std::printf("cgroup2 at %s\n", mount);
    }
    doctest::Context ctx(static_cast<int>(args.size()), args.data());
    return ctx.run();
}
