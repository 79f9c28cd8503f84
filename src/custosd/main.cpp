// custosd: the config-driven supervision daemon.
//
// Today it brings up the runtime's foundation and reports what it found: the
// I/O backend chosen and why. It then sleeps on the reactor (no periodic
// tick: an idle custosd makes no system calls) until SIGTERM or SIGINT, and
// exits 0. Supervision of services arrives with the next capability.
//
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage.
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <custos/error.hpp>

#include "io/reactor.hpp"

namespace {

struct daemon_state {
    custos::io::reactor reactor;
    int sigfd = -1;
    signalfd_siginfo info{};
    custos::io::op sig_op;
    int signal = 0;
};

void on_signal(custos::io::op& o, std::int32_t result) noexcept {
    auto* d = static_cast<daemon_state*>(o.user);
    if (result == static_cast<std::int32_t>(sizeof d->info)) {
        d->signal = static_cast<int>(d->info.ssi_signo);
        d->reactor.stop();
        return;
    }
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        std::fprintf(stderr, "custosd: reading signals failed: %s\n", std::strerror(-result));
        d->reactor.stop();
        return;
    }
    d->reactor.read(o, d->sigfd, &d->info, sizeof d->info);
}

void usage(std::FILE* to) {
    std::fprintf(to, "usage: custosd [--platform] [--help]\n"
                     "  --platform  print the I/O backend custos chose and why, then exit\n"
                     "without options: report, then run until SIGTERM or SIGINT\n"
                     "environment: CUSTOS_BACKEND=uring|epoll|auto forces the I/O backend\n");
}

} // namespace

int main(int argc, char** argv) {
    bool report_only = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--platform") == 0) {
            report_only = true;
        } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "custosd: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    static daemon_state d;
    if (auto r = d.reactor.init(); !r) {
        char buf[512];
        r.error().format(buf, sizeof buf);
        std::fprintf(stderr, "custosd: %s\n", buf);
        // A bad CUSTOS_BACKEND value is bad usage; anything else a runtime failure.
        return r.error().reason() == custos::Reason::backend_unknown ? 2 : 1;
    }
    std::printf("custosd: I/O backend %s\n", d.reactor.backend_reason());
    if (report_only) {
        return 0;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0 ||
        (d.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        std::fprintf(stderr, "custosd: signalfd: %s\n", std::strerror(errno));
        return 1;
    }
    d.sig_op.done = &on_signal;
    d.sig_op.user = &d;
    d.reactor.read(d.sig_op, d.sigfd, &d.info, sizeof d.info);
    std::printf(
        "custosd: running; nothing to supervise yet (send SIGTERM or press Ctrl-C to stop)\n");
    std::fflush(stdout);

    d.reactor.run();

    const auto& st = d.reactor.stats();
    std::printf("custosd: stopping on signal %d after %llu wake-ups, %llu system calls\n", d.signal,
                static_cast<unsigned long long>(st.wakeups),
                static_cast<unsigned long long>(st.syscalls));
    return 0;
}
