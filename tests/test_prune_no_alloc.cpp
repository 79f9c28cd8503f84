// No allocation in a prune run after the workspace's init: with the whole
// malloc family counted (counting_alloc.cpp), decide() on entries, then
// plan() + apply() and run() (dry and real) on a real temporary directory
// with files to delete, one held open and one protected by name, must not
// move the count; again under a UTF-8 locale set before the init
// (fnmatch's multibyte path) where one is installed.
//
// Not doctest (it allocates as it reports). Exit 0 pass, 1 fail, 77 skip
// (no file leases on the temporary directory's filesystem).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <clocale>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "core/arena.hpp"
#include "counting_alloc.hpp"
#include "prune/scan.hpp"

using namespace custos;
using namespace custos::prune;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t now_ns = 1'780'272'000 * sec; // 2026-06-01

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAIL: %s\n", what);
        ++failures;
    }
}

char dir[256];

bool make_file(const char* name, int days_old) {
    char path[512];
    std::snprintf(path, sizeof path, "%s/%s", dir, name);
    const int fd = ::open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return false;
    }
    const bool wrote = ::write(fd, "0123456789", 10) == 10;
    ::close(fd);
    struct timespec ts[2];
    ts[0].tv_sec = static_cast<time_t>(now_ns / sec - std::int64_t{days_old} * 86'400);
    ts[0].tv_nsec = 0;
    ts[1] = ts[0];
    return wrote && ::utimensat(AT_FDCWD, path, ts, 0) == 0;
}

std::uint32_t deleted_seen = 0;

void on_deleted(void*, std::string_view, std::uint64_t, std::uint8_t) noexcept {
    ++deleted_seen;
}

// One round: fresh files, then every run-time entry point under the count.
void round(workspace& ws, const char* label) {
    char name[32];
    for (int i = 0; i < 20; ++i) {
        std::snprintf(name, sizeof name, "log-%02d.txt", i);
        expect(make_file(name, 40 - i), "make a file");
    }
    expect(make_file("current.txt", 50), "make the current file");
    expect(make_file("junk", 50), "make a file outside the glob");
    char held_path[512];
    std::snprintf(held_path, sizeof held_path, "%s/log-00.txt", dir);
    const int held = ::open(held_path, O_RDONLY | O_CLOEXEC);
    expect(held >= 0, "hold a file open");

    PruneSpec s;
    s.name = "noalloc";
    s.dir = dir;
    s.glob = "*.txt";
    s.max_age = Duration(30LL * 86'400'000);
    s.keep_newest = 15;
    s.max_total_bytes = 20;
    s.min_free_bytes = 1;
    options o;
    o.now_wall_ns = now_ns;
    o.clock_trusted = true;
    static const std::string_view keep[] = {"current.txt"};
    o.protected_names = keep;
    report rep;
    rep.on_deleted = on_deleted;

    // decide() alone, on entries of our own.
    entry es[3];
    es[0].name = "a";
    es[0].mtime_ns = now_ns - 90 * 86'400 * sec;
    es[1].name = "b";
    es[1].mtime_ns = now_ns;
    es[2].name = "c-no-time";
    std::uint32_t order[3];
    decision out[3];
    PruneSummary sum;
    moment m;
    m.now_wall_ns = now_ns;
    m.clock_trusted = true;
    PruneSpec named = s;
    named.order = PruneOrder::name_time;
    named.time_pattern = "%Y%m%d";

    deleted_seen = 0;
    const std::uint64_t before = custos_test::allocation_count();
    for (auto& e : es) {
        classify(s, e, prune_trust_floor_ns);
    }
    classify(named, es[2], prune_trust_floor_ns);
    const bool decided = decide(s, es, order, m, out, sum).has_value();
    o.dry_run = true;
    const bool dry = run(s, o, ws, rep).has_value();
    const std::uint32_t dry_deleted = rep.summary.deleted;
    o.dry_run = false;
    const bool planned = plan(s, o, ws, rep).has_value();
    const bool applied = apply(s, o, ws, rep).has_value();
    const std::uint32_t real_deleted = rep.summary.deleted;
    const bool again = run(s, o, ws, rep).has_value();
    const std::uint64_t after = custos_test::allocation_count();

    std::printf("%s: %llu allocations; deleted %u (dry %u), callbacks %u\n", label,
                static_cast<unsigned long long>(after - before), real_deleted, dry_deleted,
                deleted_seen);
    expect(decided && dry && planned && applied && again, "every run succeeded");
    expect(real_deleted == 19 && dry_deleted == 19, "19 files deleted (one open, one protected)");
    expect(after == before, "no allocation in decide/plan/apply/run");
    expect(custos_test::counter_works(after), "the counter counts");
    ::close(held);
    std::snprintf(held_path, sizeof held_path, "%s/log-00.txt", dir);
    ::unlink(held_path);
}

} // namespace

int main() {
    const char* t = std::getenv("TMPDIR");
    std::snprintf(dir, sizeof dir, "%s/custos-prune-noalloc-XXXXXX",
                  (t != nullptr && *t != '\0') ? t : "/tmp");
    if (::mkdtemp(dir) == nullptr) {
        std::printf("FAIL: mkdtemp: %s\n", std::strerror(errno));
        return 1;
    }
    // Setup: the workspace from an arena, laid out once.
    arena mem;
    if (!mem.reserve(workspace::footprint(64))) {
        return 1;
    }
    workspace ws;
    if (!ws.init(mem, 64)) {
        std::printf("FAIL: workspace init\n");
        return 1;
    }
    expect(make_file("probe", 0), "make the lease probe");
    const int dirfd = ::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bool unprovable = true;
    const bool held = dirfd >= 0 && held_open(dirfd, "probe", unprovable);
    if (dirfd >= 0) {
        ::close(dirfd);
    }
    char probe[512];
    std::snprintf(probe, sizeof probe, "%s/probe", dir);
    ::unlink(probe);
    int rc = 0;
    if (held || unprovable) {
        std::printf("SKIP: no file leases in %s\n", dir);
        rc = 77;
    } else {
        round(ws, "C locale");
        // A daemon sets its locale before init (see workspace::init).
        arena mem2;
        workspace ws2;
        if (std::setlocale(LC_ALL, "C.UTF-8") != nullptr) {
            if (!mem2.reserve(workspace::footprint(64)) || !ws2.init(mem2, 64)) {
                return 1;
            }
            round(ws2, "C.UTF-8");
        } else {
            std::printf("C.UTF-8 locale not installed: its round not run\n");
        }
        rc = failures == 0 ? 0 : 1;
    }
    char cmd[600];
    std::snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)std::system(cmd);
    return rc;
}
