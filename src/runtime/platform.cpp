// Runtime::platform(): what this kernel gives custos, found by the same code
// the runtime runs (custosd --platform prints it).
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <custos/runtime.hpp>

#include "io/reactor.hpp"
#include "process/cgroup.hpp"
#include "process/host.hpp"
#include "process/spawn.hpp"

namespace custos {

namespace {

// One spawn of /bin/true, so that the method reported is the one the
// kernel accepts (the spawner steps down where CLONE_PIDFD is refused, as
// under qemu-user), then its exit, reaped here.
void spawn_once(process::spawner& sp) noexcept {
    char arg0[] = "true";
    char* argv[] = {arg0, nullptr};
    char* envp[] = {nullptr};
    process::spawn_request rq;
    rq.path = "/bin/true";
    rq.argv = argv;
    rq.envp = envp;
    auto r = sp.spawn(rq);
    if (!r) {
        return;
    }
    siginfo_t si{};
    while (::waitid(P_PID, static_cast<id_t>(r->pid), &si, WEXITED) != 0 && errno == EINTR) {
    }
    if (r->pidfd >= 0) {
        ::close(r->pidfd);
    }
}

} // namespace

Result<PlatformInfo> Runtime::platform() noexcept {
    PlatformInfo info;
    io::reactor r;
    if (auto res = r.init(); !res) {
        return fail(res.error());
    }
    std::snprintf(info.backend, sizeof info.backend, "%s", r.backend_reason());
    process::spawner sp;
    if (auto res = sp.init(); !res) {
        return fail(res.error());
    }
    spawn_once(sp);
    std::snprintf(info.spawn, sizeof info.spawn, "%s", process::spawn_method_name(sp.method()));
    std::snprintf(info.exit_watch, sizeof info.exit_watch, "%s",
                  process::exit_watch_name(sp.method(), r.native_waitid()));
    char mount[sizeof PlatformInfo::cgroup2];
    if (auto m = process::find_cgroup2_mount(mount, sizeof mount); m) {
        std::snprintf(info.cgroup2, sizeof info.cgroup2, "%s", mount);
    } else {
        char why[128];
        m.error().format(why, sizeof why);
        std::snprintf(info.cgroup2, sizeof info.cgroup2, "none (%s)", why);
    }
    // Asking whether we are one changes nothing; becoming one is init()'s.
    int was = 0;
    if (::prctl(PR_GET_CHILD_SUBREAPER, &was, 0, 0, 0) != 0) {
        std::snprintf(info.subreaper, sizeof info.subreaper, "unknown: %s", std::strerror(errno));
    } else if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0) {
        (void)::prctl(PR_SET_CHILD_SUBREAPER, was, 0, 0, 0);
        std::snprintf(info.subreaper, sizeof info.subreaper, "available");
    } else {
        std::snprintf(info.subreaper, sizeof info.subreaper, "refused: %s", std::strerror(errno));
    }
    return info;
}

} // namespace custos
