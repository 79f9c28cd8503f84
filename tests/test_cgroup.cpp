// Process containment for real: the cgroup tree (src/supervise/cgroup.*)
// and the pid record that stands in for it without cgroup2
// (src/supervise/pid_record.*).
//
// meson runs this binary twice:
//   --suite=cgroup      needs root and a writable cgroup2 mount; every case
//                       works under a private root <mount>/custos-test-<pid>-N
//                       (the automatic-root case uses <mount><own>/custos).
//                       Exits 77 (a skip) where that is missing.
//   --suite=pid_record  needs only /proc.
// The process becomes a child subreaper where it can (qemu-user refuses), so
// that grandchildren it kills are re-parented to it and reaped here.
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doctest.hpp"
#include "process/cgroup.hpp"
#include "process/pid_record.hpp"
#include "process/spawn.hpp"

using namespace custos;
using namespace custos::process;
using namespace std::chrono_literals;

namespace {

std::string g_mount; // the cgroup2 mount point (cgroup suite)
bool g_subreaper = false;

std::string describe(const Error& e) {
    char buf[512];
    e.format(buf, sizeof buf);
    return buf;
}

std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return out;
    }
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

// A live process (not a zombie) with this pid.
bool alive(int pid) {
    std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
    auto close = s.rfind(')');
    return close != std::string::npos && close + 2 < s.size() && s[close + 2] != 'Z' &&
           s[close + 2] != 'X';
}

// Field 6 of /proc/<pid>/stat.
int session_of(int pid) {
    std::string s = slurp("/proc/" + std::to_string(pid) + "/stat");
    auto close = s.rfind(')');
    if (close == std::string::npos) {
        return -1;
    }
    int state_ppid_pgrp_session[4] = {};
    char st = 0;
    if (std::sscanf(s.c_str() + close + 2, "%c %d %d %d", &st, &state_ppid_pgrp_session[1],
                    &state_ppid_pgrp_session[2], &state_ppid_pgrp_session[3]) != 4) {
        return -1;
    }
    return state_ppid_pgrp_session[3];
}

std::vector<int> pids_in(const std::string& cgroup_dir) {
    std::vector<int> out;
    std::string s = slurp(cgroup_dir + "/cgroup.procs");
    std::size_t at = 0;
    while (at < s.size()) {
        std::size_t e = s.find('\n', at);
        out.push_back(std::atoi(s.substr(at, e - at).c_str()));
        at = e == std::string::npos ? s.size() : e + 1;
    }
    return out;
}

template <class P>
bool eventually(P pred, std::chrono::milliseconds limit = 5000ms) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) {
            return false;
        }
        ::usleep(2000);
    }
    return true;
}

// Reaps every exited child (the subreaper's re-parented grandchildren too).
void reap_children() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

// Waits until none of `pids` is alive, reaping as it goes.
bool all_gone(const std::vector<int>& pids) {
    return eventually([&] {
        reap_children();
        return std::none_of(pids.begin(), pids.end(), alive);
    });
}

// A private root for one case, removed (if left) at the end.
struct test_root {
    std::string path;
    test_root() {
        static int n = 0;
        path = g_mount + "/custos-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
    }
    ~test_root() {
        // Best effort for a failed case: children first.
        for (const char* c : {"svc", "keep", "stale", "empty", "a", "b"}) {
            ::rmdir((path + "/" + c).c_str());
        }
        ::rmdir(path.c_str());
    }
};

struct shell {
    char a0[8] = "/bin/sh";
    char a1[3] = "-c";
    std::string script;
    char* argv[4] = {};
    explicit shell(std::string s) : script(std::move(s)) {
        argv[0] = a0;
        argv[1] = a1;
        argv[2] = script.data();
    }
};

// Spawns `script` under /bin/sh into cgroup.procs fd `procs` (-1: none).
spawned spawn_sh(spawner& sp, const std::string& script, int procs) {
    shell sh(script);
    spawn_request rq;
    rq.path = sh.a0;
    rq.argv = sh.argv;
    rq.envp = environ;
    rq.cgroup_procs_fd = procs;
    auto r = sp.spawn(rq);
    if (!r) {
        FAIL_CHECK(describe(r.error()));
    }
    REQUIRE(r.has_value());
    return *r;
}

// The leader reaped with its status.
int wait_status(spawned& s) {
    int st = 0;
    REQUIRE(::waitpid(s.pid, &st, 0) == s.pid);
    if (s.pidfd >= 0) {
        ::close(s.pidfd);
        s.pidfd = -1;
    }
    return st;
}

constexpr const char* three_procs = "sleep 100 & setsid sleep 100 & wait";

// Spawns three_procs into slot 0 and waits until all three are listed.
std::vector<int> start_three(cgroup_tree& t, spawner& sp, const std::string& dir, spawned& out) {
    out = spawn_sh(sp, three_procs, t.procs_fd(0));
    std::vector<int> pids;
    CHECK(eventually([&] {
        pids = pids_in(dir);
        return pids.size() == 3;
    }));
    return pids;
}

} // namespace

// ---- cgroup ------------------------------------------------------------

TEST_SUITE("cgroup") {

    TEST_CASE(
        "cgroup: open creates a private root on cgroup2, add makes unit cgroups, close removes "
        "them") {
        test_root r;
        {
            cgroup_tree t;
            auto o = t.open(r.path, 4);
            REQUIRE_MESSAGE(o.has_value(), describe(o.error()));
            CHECK(t.root_path() == r.path);
            CHECK(t.relative_path() == r.path.substr(g_mount.size()));
            CHECK(exists(r.path));
            auto a = t.add("svc");
            REQUIRE_MESSAGE(a.has_value(), describe(a.error()));
            CHECK(*a == 0);
            auto b = t.add("b");
            REQUIRE(b.has_value());
            CHECK(*b == 1);
            CHECK(t.size() == 2);
            CHECK(t.name(0) == "svc");
            CHECK(exists(r.path + "/svc/cgroup.procs"));
            CHECK(t.procs_fd(0) >= 0);
            CHECK(t.procs_fd(2) == -1);
            CHECK(t.has_cgroup_kill(0) == exists(r.path + "/svc/cgroup.kill"));
            CHECK_FALSE(t.populated(0));
            CHECK(t.kill(0, SIGTERM) == 0); // empty: nothing signalled
            CHECK(t.kill(7, SIGTERM) == -EINVAL);
            t.close();
            CHECK_FALSE(t.is_open());
            CHECK_FALSE(exists(r.path + "/svc"));
            CHECK_FALSE(exists(r.path)); // created by open(): removed
            t.close();                   // twice is harmless
        }
        SUBCASE("an explicit root that existed before is kept") {
            REQUIRE(::mkdir(r.path.c_str(), 0755) == 0);
            {
                cgroup_tree t;
                REQUIRE(t.open(r.path + "/", 1).has_value()); // trailing slash tolerated
                CHECK(t.root_path() == r.path);
                REQUIRE(t.add("a").has_value());
            }
            CHECK_FALSE(exists(r.path + "/a"));
            CHECK(exists(r.path));
        }
    }

    TEST_CASE("cgroup: the automatic root is <mount><own cgroup>/custos") {
        std::string own = slurp("/proc/self/cgroup");
        auto at = own.find("0::");
        REQUIRE(at != std::string::npos);
        own = own.substr(at + 3, own.find('\n', at) - at - 3);
        bool existed = exists(g_mount + (own == "/" ? "" : own) + "/custos");
        cgroup_tree t;
        auto o = t.open("", 2);
        REQUIRE_MESSAGE(o.has_value(), describe(o.error()));
        std::string want_rel = (own == "/" ? "" : own) + "/custos";
        CHECK(t.relative_path() == want_rel);
        CHECK(t.root_path() == g_mount + want_rel);
        std::string unit = "auto-test-" + std::to_string(::getpid());
        REQUIRE(t.add(unit).has_value());
        CHECK(exists(g_mount + want_rel + "/" + unit));
        t.close();
        CHECK_FALSE(exists(g_mount + want_rel + "/" + unit));
        if (!existed) {
            CHECK_FALSE(exists(g_mount + want_rel));
        }
    }

    TEST_CASE("cgroup: bad roots, bad names, duplicates and a full tree are refused") {
        cgroup_tree t;
        auto rel = t.open("relative/path", 1);
        REQUIRE_FALSE(rel.has_value());
        CHECK(rel.error().reason() == Reason::invalid_argument);

        std::string tmp = "/tmp/custos-not-cgroup-" + std::to_string(::getpid());
        auto not_cg = t.open(tmp, 1);
        REQUIRE_FALSE(not_cg.has_value());
        CHECK(not_cg.error().reason() == Reason::cgroup_unavailable);
        CHECK(not_cg.error().sys_errno() == ENOTSUP);
        CHECK_FALSE(exists(tmp)); // nothing created outside cgroup2

        auto no_parent = t.open(g_mount + "/custos-no-such-parent/x", 1);
        REQUIRE_FALSE(no_parent.has_value());
        CHECK(no_parent.error().reason() == Reason::cgroup_unavailable);
        CHECK(no_parent.error().sys_errno() == ENOENT);
        CHECK(std::string_view(no_parent.error().resolution()).find("cgroup = off") !=
              std::string_view::npos);

        CHECK(t.add("svc").error().reason() == Reason::invalid_argument); // not open

        test_root r;
        REQUIRE(t.open(r.path, 2).has_value());
        CHECK(t.open(r.path, 2).error().reason() == Reason::invalid_argument); // already open
        for (std::string_view bad :
             {std::string_view(""), std::string_view("."), std::string_view(".."),
              std::string_view("a/b"), std::string_view("cgroup.procs"),
              std::string_view("cgroup.x"), std::string_view("a\0b", 3)}) {
            auto e = t.add(bad);
            REQUIRE_FALSE(e.has_value());
            CHECK(e.error().reason() == Reason::name_invalid);
        }
        CHECK(t.add(std::string(64, 'n')).error().reason() == Reason::name_invalid);
        CHECK(t.size() == 0);
        REQUIRE(t.add("a").has_value());
        CHECK(t.add("a").error().reason() == Reason::name_duplicate);
        REQUIRE(t.add(std::string(63, 'n')).has_value()); // the longest name
        CHECK(t.add("b").error().reason() == Reason::capacity_exceeded);
        t.close();
        CHECK_FALSE(exists(r.path));
    }

    TEST_CASE(
        "cgroup: a service and its setsid grandchild are in the unit; SIGKILL ends them all") {
        for (bool use_kill : {true, false}) {
            CAPTURE(use_kill);
            test_root r;
            cgroup_tree::options opts;
            opts.use_cgroup_kill = use_kill;
            cgroup_tree t(opts);
            REQUIRE(t.open(r.path, 2).has_value());
            REQUIRE(t.add("svc").has_value());
            REQUIRE(t.add("b").has_value());
            if (use_kill && !t.has_cgroup_kill(0)) {
                MESSAGE("cgroup.kill missing (Linux < 5.14): only the pid-list path is exercised");
            }
            CHECK(t.has_cgroup_kill(0) == (use_kill && exists(r.path + "/svc/cgroup.kill")));
            spawner sp;
            REQUIRE(sp.init().has_value());
            spawned s;
            std::vector<int> pids = start_three(t, sp, r.path + "/svc", s);
            REQUIRE(pids.size() == 3);
            CHECK(t.populated(0));
            CHECK_FALSE(t.populated(1));
            for (int pid : pids) {
                CHECK(t.contains(0, pid));
                CHECK_FALSE(t.contains(1, pid));
            }
            CHECK(t.contains(0, s.pid));
            // One of them left the service's session: process groups alone would
            // lose it.
            CHECK(eventually([&] {
                int escaped = 0;
                for (int pid : pids) {
                    escaped += session_of(pid) != s.pid ? 1 : 0;
                }
                return escaped == 1;
            }));
            CHECK_FALSE(t.contains(0, ::getpid()));
            CHECK_FALSE(t.contains(0, 0));
            CHECK_FALSE(t.contains(0, 999999999));

            CHECK(t.kill(0, SIGKILL) == 3);
            CHECK(eventually([&] { return !t.populated(0); }));
            int st = wait_status(s);
            CHECK(WIFSIGNALED(st));
            CHECK(WTERMSIG(st) == SIGKILL);
            CHECK(all_gone(pids));
            CHECK(pids_in(r.path + "/svc").empty());
        }
    }

    TEST_CASE("cgroup: another signal goes to every listed pid") {
        test_root r;
        cgroup_tree t;
        REQUIRE(t.open(r.path, 1).has_value());
        REQUIRE(t.add("svc").has_value());
        spawner sp;
        REQUIRE(sp.init().has_value());
        spawned s;
        std::vector<int> pids = start_three(t, sp, r.path + "/svc", s);
        REQUIRE(pids.size() == 3);
        CHECK(t.kill(0, SIGTERM) == 3);
        int st = wait_status(s);
        CHECK(WIFSIGNALED(st));
        CHECK(WTERMSIG(st) == SIGTERM);
        CHECK(all_gone(pids));
        CHECK(eventually([&] { return !t.populated(0); }));
    }

    TEST_CASE("cgroup: more pids than one read of cgroup.procs holds are all signalled") {
        // 150 sleepers and their shell: about 1 KiB of pids, twice the chunk
        // kill() reads at a time, so lines straddle chunk boundaries.
        test_root r;
        cgroup_tree::options opts;
        opts.use_cgroup_kill = false;
        cgroup_tree t(opts);
        REQUIRE(t.open(r.path, 1).has_value());
        REQUIRE(t.add("svc").has_value());
        spawner sp;
        REQUIRE(sp.init().has_value());
        spawned s = spawn_sh(sp, "i=0; while [ $i -lt 150 ]; do sleep 100 & i=$((i+1)); done; wait",
                             t.procs_fd(0));
        std::vector<int> pids;
        CHECK(eventually([&] {
            pids = pids_in(r.path + "/svc");
            return pids.size() == 151;
        }));
        REQUIRE(pids.size() == 151);
        CHECK(slurp(r.path + "/svc/cgroup.procs").size() > 512);
        CHECK(t.kill(0, SIGTERM) == 151);
        int st = wait_status(s);
        CHECK(WIFSIGNALED(st));
        CHECK(all_gone(pids));
        CHECK(eventually([&] { return !t.populated(0); }));
    }

    TEST_CASE("cgroup: kill_until_empty empties the unit, with and without cgroup.kill") {
        for (bool use_kill : {true, false}) {
            CAPTURE(use_kill);
            test_root r;
            cgroup_tree::options opts;
            opts.use_cgroup_kill = use_kill;
            cgroup_tree t(opts);
            REQUIRE(t.open(r.path, 1).has_value());
            REQUIRE(t.add("svc").has_value());
            spawner sp;
            REQUIRE(sp.init().has_value());
            spawned s;
            std::vector<int> pids = start_three(t, sp, r.path + "/svc", s);
            REQUIRE(pids.size() == 3);
            auto t0 = std::chrono::steady_clock::now();
            CHECK(t.kill_until_empty(0, 5000ms) == 3);
            CHECK(std::chrono::steady_clock::now() - t0 < 4000ms);
            CHECK_FALSE(t.populated(0)); // empty on return, zombies do not count
            wait_status(s);
            CHECK(all_gone(pids));
            CHECK(t.kill_until_empty(0, 100ms) == 0); // already empty
            CHECK(t.kill_until_empty(3, 100ms) == -EINVAL);
        }
    }

    TEST_CASE(
        "cgroup: reap_leftovers kills what a crashed instance left, keeps reused units, removes "
        "the others") {
        test_root r;
        // The "crashed instance": a forked helper that builds the tree, moves
        // three sleepers into it (one in keep, two in stale) and dies without
        // cleaning up. Its sleepers are re-parented (to us as subreaper, or to init).
        int pfd[2];
        REQUIRE(::pipe2(pfd, O_CLOEXEC) == 0);
        pid_t helper = ::fork();
        REQUIRE(helper >= 0);
        if (helper == 0) {
            ::close(pfd[0]);
            for (const char* d : {"", "/keep", "/stale", "/empty"}) {
                if (::mkdir((r.path + d).c_str(), 0755) != 0) {
                    ::_exit(2);
                }
            }
            for (const char* d : {"/keep", "/stale", "/stale"}) {
                pid_t c = ::fork();
                if (c == 0) {
                    int fd = ::open((r.path + d + "/cgroup.procs").c_str(), O_WRONLY);
                    if (fd < 0 || ::write(fd, "0", 1) != 1) {
                        ::_exit(3);
                    }
                    ::close(fd);
                    int me = static_cast<int>(::getpid());
                    if (::write(pfd[1], &me, sizeof me) != sizeof me) {
                        ::_exit(4);
                    }
                    for (;;) {
                        ::pause();
                    }
                }
            }
            ::_exit(0);
        }
        ::close(pfd[1]);
        // Exactly three: the sleepers keep the write end open, so no EOF comes.
        std::vector<int> pids;
        int p;
        while (pids.size() < 3 && ::read(pfd[0], &p, sizeof p) == sizeof p) {
            pids.push_back(p);
        }
        ::close(pfd[0]);
        int st = 0;
        REQUIRE(::waitpid(helper, &st, 0) == helper);
        REQUIRE(WIFEXITED(st));
        REQUIRE(WEXITSTATUS(st) == 0);
        REQUIRE(pids.size() == 3);
        for (int pid : pids) {
            CHECK(alive(pid));
        }

        cgroup_tree t;
        REQUIRE(t.open(r.path, 2).has_value());
        REQUIRE(t.add("keep").has_value()); // reused by this instance
        std::vector<std::pair<std::string, int>> seen;
        auto report = [&](const cgroup_tree::leftover& l) {
            CHECK(l.err == 0);
            seen.emplace_back(std::string(l.name), l.killed);
        };
        auto n = t.reap_leftovers(report, 5000ms);
        REQUIRE_MESSAGE(n.has_value(), describe(n.error()));
        CHECK(*n == 2);
        std::sort(seen.begin(), seen.end());
        REQUIRE(seen.size() == 2);
        CHECK(seen[0] == std::make_pair(std::string("keep"), 1));
        CHECK(seen[1] == std::make_pair(std::string("stale"), 2));
        CHECK(all_gone(pids));
        CHECK_FALSE(t.populated(0));
        CHECK(exists(r.path + "/keep"));
        CHECK_FALSE(exists(r.path + "/stale"));
        CHECK_FALSE(exists(r.path + "/empty"));
        auto again = t.reap_leftovers(report, 100ms);
        REQUIRE(again.has_value());
        CHECK(*again == 0);
        t.close();
        CHECK_FALSE(exists(r.path + "/keep"));
        CHECK(exists(r.path)); // it existed before open(): not ours to remove
    }

} // TEST_SUITE("cgroup")

// ---- pid record -----------------------------------------------------------

namespace {

struct temp_file {
    std::string path;
    temp_file() {
        static int n = 0;
        path = "/tmp/custos-pids-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
        ::unlink(path.c_str());
    }
    ~temp_file() { ::unlink(path.c_str()); }
};

// Pids of live processes in session `sid` (readdir: tests may allocate).
std::vector<int> session_members(int sid) {
    std::vector<int> out;
    if (DIR* d = ::opendir("/proc")) {
        while (dirent* e = ::readdir(d)) {
            int pid = std::atoi(e->d_name);
            if (pid > 0 && session_of(pid) == sid && alive(pid)) {
                out.push_back(pid);
            }
        }
        ::closedir(d);
    }
    return out;
}

// Forks a session leader that forks `members` sleepers into its session
// (one of them, with `own_group`, in a process group of its own) and one
// more that calls setsid(), then waits. Returns {leader, setsid child}.
std::pair<int, int> fork_session(bool own_group) {
    int pfd[2];
    REQUIRE(::pipe2(pfd, O_CLOEXEC) == 0);
    pid_t leader = ::fork();
    REQUIRE(leader >= 0);
    if (leader == 0) {
        ::close(pfd[0]);
        ::setsid();
        pid_t member = ::fork();
        if (member == 0) {
            if (own_group) {
                ::setpgid(0, 0);
            }
            for (;;) {
                ::pause();
            }
        }
        pid_t escaper = ::fork();
        if (escaper == 0) {
            ::setsid();
            for (;;) {
                ::pause();
            }
        }
        int e = static_cast<int>(escaper);
        if (::write(pfd[1], &e, sizeof e) != sizeof e) {
            ::_exit(4);
        }
        for (;;) {
            ::pause();
        }
    }
    ::close(pfd[1]);
    int escaper = -1;
    REQUIRE(::read(pfd[0], &escaper, sizeof escaper) == sizeof escaper);
    ::close(pfd[0]);
    return {static_cast<int>(leader), escaper};
}

} // namespace

TEST_SUITE("pid_record") {

    TEST_CASE(
        "pid_record: a crashed instance's service and its group are killed at the next start") {
        temp_file f;
        spawner sp;
        REQUIRE(sp.init().has_value());
        spawned s;
        std::vector<int> members;
        {
            pid_record rec;
            auto o = rec.open(f.path.c_str(), 4);
            REQUIRE_MESSAGE(o.has_value(), describe(o.error()));
            s = spawn_sh(sp, "sleep 100 & sleep 100 & wait", -1);
            CHECK(eventually([&] {
                members = session_members(s.pid);
                return members.size() == 3;
            }));
            REQUIRE(rec.record(2, s.pid, "netd").has_value());
            // "Crash": the object goes without clear(); the record stays.
        }
        struct stat st {};
        REQUIRE(::stat(f.path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);

        pid_record rec;
        REQUIRE(rec.open(f.path.c_str(), 4).has_value());
        std::vector<pid_record::leftover> seen;
        std::string name;
        auto report = [&](const pid_record::leftover& l) {
            seen.push_back(l);
            name = std::string(l.name);
        };
        auto n = rec.reap_leftovers(report);
        REQUIRE_MESSAGE(n.has_value(), describe(n.error()));
        CHECK(*n == 1);
        REQUIRE(seen.size() == 1);
        CHECK(name == "netd");
        CHECK(seen[0].pid == s.pid);
        CHECK(seen[0].killed == 3);
        int status = wait_status(s);
        CHECK(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGKILL);
        CHECK(all_gone(members));
        // The slot was cleared: a second start finds nothing.
        rec.close();
        REQUIRE(rec.open(f.path.c_str(), 4).has_value());
        auto again = rec.reap_leftovers(report);
        REQUIRE(again.has_value());
        CHECK(*again == 0);
    }

    TEST_CASE("pid_record: a member that left the group but not the session is killed; a setsid "
              "grandchild is not (the limit without cgroups)") {
        temp_file f;
        // Plain variables: clang 14 cannot capture structured bindings.
        const std::pair<int, int> forked = fork_session(true);
        const int leader = forked.first;
        const int escaper = forked.second;
        std::vector<int> members;
        CHECK(eventually([&] {
            members = session_members(leader);
            return members.size() == 2; // the leader and the member in its own group
        }));
        {
            pid_record rec;
            REQUIRE(rec.open(f.path.c_str(), 1).has_value());
            REQUIRE(rec.record(0, leader, "camd").has_value());
        }
        pid_record rec;
        REQUIRE(rec.open(f.path.c_str(), 1).has_value());
        int killed = -1;
        auto report = [&](const pid_record::leftover& l) { killed = l.killed; };
        auto n = rec.reap_leftovers(report);
        REQUIRE(n.has_value());
        CHECK(*n == 1);
        CHECK(killed == 2);
        int st = 0;
        REQUIRE(::waitpid(leader, &st, 0) == leader);
        CHECK(all_gone(members));
        // Documented: the new session is not found without cgroups.
        CHECK(alive(escaper));
        ::kill(escaper, SIGKILL);
        CHECK(all_gone({escaper}));
    }

    TEST_CASE("pid_record: a recycled pid (another start time) or another boot's record is not "
              "killed") {
        temp_file f;
        // Plain variables: clang 14 cannot capture structured bindings.
        const std::pair<int, int> forked = fork_session(false);
        const int leader = forked.first;
        const int escaper = forked.second;
        {
            pid_record rec;
            REQUIRE(rec.open(f.path.c_str(), 2).has_value());
            REQUIRE(rec.record(0, leader, "a").has_value());
            REQUIRE(rec.record(1, leader, "b").has_value());
        }
        // Forge slot 0: its start time one tick later, as if the pid now named
        // another process. Slot 1, right, is set aside for the second round.
        int fd = ::open(f.path.c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        const off_t at0 = sizeof(pid_record::header);
        const off_t at1 = at0 + static_cast<off_t>(sizeof(pid_record::slot));
        pid_record::slot s0{};
        REQUIRE(::pread(fd, &s0, sizeof s0, at0) == sizeof s0);
        CHECK(s0.pid == leader);
        std::uint64_t real_start = 0;
        REQUIRE(process_start_time(leader, real_start));
        CHECK(s0.start_time == real_start);
        s0.start_time += 1;
        REQUIRE(::pwrite(fd, &s0, sizeof s0, at0) == sizeof s0);
        pid_record::slot s1{};
        REQUIRE(::pread(fd, &s1, sizeof s1, at1) == sizeof s1);
        CHECK(s1.start_time == real_start);
        const pid_record::slot empty{};
        REQUIRE(::pwrite(fd, &empty, sizeof empty, at1) == sizeof empty);
        {
            pid_record rec;
            REQUIRE(rec.open(f.path.c_str(), 2).has_value());
            int calls = 0;
            auto report = [&](const pid_record::leftover&) { ++calls; };
            auto n = rec.reap_leftovers(report);
            REQUIRE(n.has_value());
            CHECK(*n == 0);
            CHECK(calls == 0);
            CHECK(alive(leader));
        }
        // Now the right record, under another boot's header: reset, not used.
        pid_record::header h{};
        REQUIRE(::pread(fd, &h, sizeof h, 0) == sizeof h);
        h.boot_id[0] = h.boot_id[0] == 'x' ? 'y' : 'x';
        REQUIRE(::pwrite(fd, &s1, sizeof s1, at1) == sizeof s1);
        REQUIRE(::pwrite(fd, &h, sizeof h, 0) == sizeof h);
        ::close(fd);
        {
            pid_record rec;
            REQUIRE(rec.open(f.path.c_str(), 2).has_value());
            int calls = 0;
            auto report = [&](const pid_record::leftover&) { ++calls; };
            auto n = rec.reap_leftovers(report);
            REQUIRE(n.has_value());
            CHECK(*n == 0);
            CHECK(calls == 0);
            CHECK(alive(leader));
        }
        ::kill(-leader, SIGKILL);
        ::kill(escaper, SIGKILL);
        int st = 0;
        REQUIRE(::waitpid(leader, &st, 0) == leader);
        CHECK(all_gone({escaper}));
    }

    TEST_CASE("pid_record: a second instance is refused while the first holds the lock") {
        temp_file f;
        pid_record first;
        REQUIRE(first.open(f.path.c_str(), 1).has_value());
        pid_record second;
        auto r = second.open(f.path.c_str(), 1);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().reason() == Reason::instance_running);
        CHECK(r.error().sys_errno() == EWOULDBLOCK);
        pid_record unlocked; // instance locking done elsewhere
        CHECK(unlocked.open(f.path.c_str(), 1, false).has_value());
        first.close();
        CHECK(second.open(f.path.c_str(), 1).has_value());
    }

    TEST_CASE("pid_record: errors: bad arguments, a gone pid, an unwritable path") {
        temp_file f;
        pid_record rec;
        CHECK(rec.record(0, 1234, "x").error().reason() == Reason::invalid_argument); // not open
        CHECK(rec.open(f.path.c_str(), 0).error().reason() == Reason::invalid_argument);
        auto bad = rec.open("/nonexistent-dir/custos.pids", 1);
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().reason() == Reason::pid_record_unavailable);
        CHECK(bad.error().sys_errno() == ENOENT);
        REQUIRE(rec.open(f.path.c_str(), 2).has_value());
        CHECK(rec.record(2, ::getpid(), "x").error().reason() == Reason::invalid_argument);
        CHECK(rec.record(0, 1, "x").error().reason() == Reason::invalid_argument);
        // A child that has been reaped: its pid names nothing (or a stranger,
        // whose start time the record then carries: harmless).
        pid_t c = ::fork();
        REQUIRE(c >= 0);
        if (c == 0) {
            ::_exit(0);
        }
        REQUIRE(::waitpid(c, nullptr, 0) == c);
        if (!exists("/proc/" + std::to_string(c))) {
            auto gone = rec.record(0, c, "x");
            REQUIRE_FALSE(gone.has_value());
            CHECK(gone.error().reason() == Reason::process_exited);
        }
        CHECK(rec.clear(0).has_value());
        CHECK(rec.clear(5).error().reason() == Reason::invalid_argument);
    }

} // TEST_SUITE("pid_record")

int main(int argc, char** argv) {
    std::string suite;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a.substr(0, 8) == "--suite=") {
            suite = std::string(a.substr(8));
        } else {
            args.push_back(argv[i]);
        }
    }
    if (suite != "cgroup" && suite != "pid_record") {
        std::printf("usage: %s --suite=cgroup|pid_record [doctest options]\n", argv[0]);
        return 2;
    }
    g_subreaper = ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
    if (!g_subreaper) {
        std::printf("note: not a child subreaper (%s): killed grandchildren are reaped by init\n",
                    std::strerror(errno));
    }
    if (suite == "cgroup") {
        if (::geteuid() != 0) {
            std::printf("SKIP: not root: cannot create cgroups\n");
            return 77;
        }
        char mount[4096];
        auto m = find_cgroup2_mount(mount, sizeof mount);
        if (!m) {
            std::printf("SKIP: no cgroup2 mount: %s\n", describe(m.error()).c_str());
            return 77;
        }
        g_mount = mount;
        // Usable: a directory can be made and a process moved into it.
        std::string probe = g_mount + "/custos-probe-" + std::to_string(::getpid());
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
        std::printf("cgroup2 at %s\n", mount);
    }
    doctest::Context ctx(static_cast<int>(args.size()), args.data());
    ctx.setOption("test-suite", suite.c_str());
    return ctx.run();
}
