// No allocation in the run-time half of process containment: with the whole
// malloc family counted (counting_alloc.cpp), after open()/add() (setup):
//   --suite=cgroup      spawns into a cgroup (cgroup_procs_fd), populated(),
//                       contains(), kill() by the pid list and by SIGKILL;
//                       exits 77 (a skip) without root and a usable cgroup2.
//   --suite=pid_record  record() and clear().
// must not move the count.
//
// Not doctest: a test framework allocates as it reports. Exit 0 pass, 1 fail.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "counting_alloc.hpp"
#include "process/cgroup.hpp"
#include "process/pid_record.hpp"
#include "process/spawn.hpp"

using namespace custos;
using namespace custos::process;

namespace {

bool wait_gone(int pid) {
    int st = 0;
    int r;
    do {
        r = ::waitpid(pid, &st, 0);
    } while (r < 0 && errno == EINTR);
    return r == pid;
}

int run_cgroup() {
    if (::geteuid() != 0) {
        std::printf("SKIP: not root: cannot create cgroups\n");
        return 77;
    }
    char mount[4096];
    if (!find_cgroup2_mount(mount, sizeof mount)) {
        std::printf("SKIP: no cgroup2 mount\n");
        return 77;
    }
    char root[4200];
    std::snprintf(root, sizeof root, "%s/custos-noalloc-%d", mount, static_cast<int>(::getpid()));
    cgroup_tree t;
    if (!t.open(root, 1) || !t.add("svc")) {
        std::printf("SKIP: cannot create a cgroup under %s\n", mount);
        return 77;
    }
    spawner sp;
    if (!sp.init()) {
        std::printf("FAIL: spawner init\n");
        return 1;
    }
    char a0[] = "/bin/sh";
    char a1[] = "-c";
    char a2[] = "sleep 100 & wait";
    char* argv[] = {a0, a1, a2, nullptr};
    spawn_request rq;
    rq.path = a0;
    rq.argv = argv;
    rq.envp = environ;
    rq.cgroup_procs_fd = t.procs_fd(0);
    // Warm-up (method detection), still setup.
    auto w = sp.spawn(rq);
    if (!w) {
        std::printf("FAIL: warm-up spawn\n");
        return 1;
    }
    t.kill(0, SIGKILL);
    wait_gone(w->pid);
    if (w->pidfd >= 0) {
        ::close(w->pidfd);
    }

    std::uint64_t before = custos_test::allocation_count();
    int ok = 0;
    for (int i = 0; i < 20; ++i) {
        auto s = sp.spawn(rq);
        if (!s) {
            continue;
        }
        bool in = t.contains(0, s->pid) && !t.contains(0, static_cast<int>(::getpid()));
        // Both the shell and its sleep, then the signal by pid list or cgroup.kill.
        bool both = false;
        for (int k = 0; k < 2500 && !both; ++k) {
            both = t.kill(0, 0) == 2;
            if (!both) {
                ::usleep(2000);
            }
        }
        int n = t.kill(0, i % 2 == 0 ? SIGTERM : SIGKILL);
        bool gone = wait_gone(s->pid);
        for (int k = 0; k < 2500 && t.populated(0); ++k) {
            ::usleep(2000);
        }
        ok += in && both && n == 2 && gone && !t.populated(0) ? 1 : 0;
        if (s->pidfd >= 0) {
            ::close(s->pidfd);
        }
    }
    std::uint64_t after = custos_test::allocation_count();
    bool pass = custos_test::counter_works(after) && ok == 20 && after == before;
    std::printf("cgroup: %d/20 rounds behaved; allocations: %llu\n%s\n", ok,
                static_cast<unsigned long long>(after - before), pass ? "PASS" : "FAIL");
    return pass ? 0 : 1;
}

int run_pid_record() {
    char path[64];
    std::snprintf(path, sizeof path, "/tmp/custos-noalloc-%d.pids", static_cast<int>(::getpid()));
    ::unlink(path);
    pid_record rec;
    if (!rec.open(path, 4)) {
        std::printf("FAIL: open %s\n", path);
        return 1;
    }
    pid_t c = ::fork();
    if (c == 0) {
        ::setsid();
        ::pause();
        ::_exit(0);
    }
    std::uint64_t before = custos_test::allocation_count();
    int ok = 0;
    for (int i = 0; i < 100; ++i) {
        ok += rec.record(static_cast<std::uint32_t>(i % 4), c, "svc") && rec.clear(i % 4) ? 1 : 0;
    }
    std::uint64_t after = custos_test::allocation_count();
    ::kill(c, SIGKILL);
    wait_gone(c);
    rec.close();
    ::unlink(path);
    bool pass = custos_test::counter_works(after) && ok == 100 && after == before;
    std::printf("pid_record: %d/100 record+clear; allocations: %llu\n%s\n", ok,
                static_cast<unsigned long long>(after - before), pass ? "PASS" : "FAIL");
    return pass ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    std::string_view suite = argc > 1 ? std::string_view(argv[1]) : std::string_view();
    if (suite == "--suite=cgroup") {
        return run_cgroup();
    }
    if (suite == "--suite=pid_record") {
        return run_pid_record();
    }
    std::printf("usage: %s --suite=cgroup|pid_record\n", argv[0]);
    return 2;
}
