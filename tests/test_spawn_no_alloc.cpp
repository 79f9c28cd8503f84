// No allocation in spawn(): with the whole malloc family counted
// (counting_alloc.cpp), successful spawns, exec failures, waits and a
// rebuild of argv/envp into an already reserved arena must not move the
// count. The method is the one the kernel gives (or CUSTOS_SPAWN forces).
//
// Not doctest: a test framework allocates as it reports. Exit 0 pass, 1 fail.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string_view>

#include "counting_alloc.hpp"
#include "process/spawn.hpp"

using namespace custos;
using namespace custos::process;

namespace {

bool reap(const spawned& s, int want_status) {
    siginfo_t si{};
    int r;
    do {
        r = waitid(P_PID, static_cast<id_t>(s.pid), &si, WEXITED);
    } while (r < 0 && errno == EINTR);
    if (s.pidfd >= 0) {
        close(s.pidfd);
    }
    return r == 0 && si.si_code == CLD_EXITED && si.si_status == want_status;
}

} // namespace

int main() {
    spawner sp;
    if (!sp.init()) {
        std::printf("FAIL: spawner init\n");
        return 1;
    }
    const std::string_view args_ok[] = {"/bin/sh", "-c", "exit 3"};
    const std::string_view args_missing[] = {"/nonexistent/custos-no-such-binary"};
    const std::string_view own[] = {"NOTIFY_SOCKET=/run/custos/notify", "WATCHDOG_USEC=1000000"};
    env_spec spec;
    spec.inherited = environ;
    spec.custos = own;
    spec.watchdog_pid = true;

    arena probe;
    (void)build_argv(probe, args_ok);
    (void)build_argv(probe, args_missing);
    (void)build_env(probe, spec);
    arena a;
    if (!a.reserve(probe.needed())) {
        return 1;
    }
    auto argv_ok = build_argv(a, args_ok);
    auto argv_missing = build_argv(a, args_missing);
    auto env = build_env(a, spec);
    if (!argv_ok || !argv_missing || !env) {
        std::printf("FAIL: layout\n");
        return 1;
    }
    spawn_request ok;
    ok.path = (*argv_ok)[0];
    ok.argv = *argv_ok;
    ok.envp = env->envp;
    ok.watchdog_pid_slot = env->watchdog_pid_slot;
    spawn_request missing = ok;
    missing.path = (*argv_missing)[0];
    missing.argv = *argv_missing;
    spawn_request bad_cwd = ok;
    bad_cwd.cwd = "/nonexistent/custos-cwd";

    // Warm-up (the method is detected here), still part of setup.
    auto w = sp.spawn(ok);
    if (!w || !reap(*w, 3)) {
        std::printf("FAIL: warm-up spawn\n");
        return 1;
    }
    std::printf("spawn method: %s\n", spawn_method_name(sp.method()));
    std::fflush(stdout);

    std::uint64_t before = custos_test::allocation_count();
    int good = 0;
    int failed = 0;
    for (int i = 0; i < 60; ++i) {
        auto s = sp.spawn(ok);
        good += s && reap(*s, 3) ? 1 : 0;
        auto m = sp.spawn(i % 2 == 0 ? missing : bad_cwd);
        failed += !m && m.error().reason() == Reason::exec_failed ? 1 : 0;
    }
    std::uint64_t after = custos_test::allocation_count();

    // Rebuilding the layout into a reserved arena allocates nothing either
    // (the reserve itself is setup).
    arena again;
    if (!again.reserve(a.needed())) {
        return 1;
    }
    std::uint64_t before_rebuild = custos_test::allocation_count();
    bool rebuilt = build_argv(again, args_ok) && build_argv(again, args_missing) &&
                   build_env(again, spec).has_value();
    after += custos_test::allocation_count() - before_rebuild;

    void* volatile canary = std::malloc(24);
    int* volatile canary2 = new int(7);
    bool counter_works =
        canary != nullptr && canary2 != nullptr && custos_test::allocation_count() >= after + 2;

    std::printf("spawns: %d ok, %d exec failures reported; allocations: %llu\n", good, failed,
                static_cast<unsigned long long>(after - before));
    bool pass = true;
    if (!counter_works) {
        std::printf("FAIL: the allocation counter did not see a deliberate malloc/new\n");
        pass = false;
    }
    if (good != 60 || failed != 60 || !rebuilt) {
        std::printf("FAIL: the workload did not behave (ok %d, failures %d, rebuilt %d)\n", good,
                    failed, rebuilt ? 1 : 0);
        pass = false;
    }
    if (after != before) {
        std::printf("FAIL: %llu allocations in spawn() or the layout\n",
                    static_cast<unsigned long long>(after - before));
        pass = false;
    }
    std::printf(pass ? "PASS\n" : "FAIL\n");
    return pass ? 0 : 1;
}
