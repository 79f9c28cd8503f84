// bench/probe_idle: what 64 background probes at a 60 s interval cost an
// otherwise idle custosd: CPU time and wake-ups over a window, against the
// probe runs due in it (issue 4: wake-ups <= probe runs due).
//
// This process owns the targets: per contender, two listening sockets on
// 127.0.0.1 (backlog 4096) whose connections one helper thread accepts,
// counts and closes. The contenders run side by side over the same window:
//   custosd io_uring, custosd epoll  the custosd under test (CUSTOS_BACKEND
//       set), on a generated config in a mkdtemp directory: no services, 64
//       [probe:pNN] sections, tcp = 127.0.0.1:PORT, interval = 60s, every
//       other key at its default (startup check at once, then polling; the
//       first poll jittered into the second half of the interval, polls
//       carrying slack so they share wake-ups);
//   naive baseline  this binary re-run with --naive: 64 threads, one timer
//       (an absolute clock_nanosleep) per probe, each thread sleeping until
//       its probe is due and then making it (socket + blocking connect +
//       close), first runs spread evenly over the interval. What a per-probe
//       timer costs, measured, beside the theoretical count.
// The window opens once every custosd has logged all 64 probes "-> ready"
// (their startup checks done) plus 1 s to settle, and lasts --seconds.
// Figures per contender over the window, from /proc, summed over threads:
//   CPU        utime + stime (/proc/PID/stat, clock ticks) and the schedstat
//              run time (/proc/PID/task/*/schedstat, ns), the precise one
//   wake-ups   voluntary context switches (/proc/PID/task/*/status): every
//              sleep -> wake is one; involuntary ones shown beside them
//   runs       probe runs due (64 x window / 60 s) and the real count: the
//              connections its listeners accepted in the window
//   CPU/run    schedstat run time / real runs (the due count when none ran)
// Target, per custosd: wake-ups <= probe runs due: MET / NOT MET.
// A window shorter than the interval holds fewer runs than the due count
// suggests (a probe's first poll comes 30-60 s after its startup check).
//
//   probe_idle [CUSTOSD] [--quick] [--seconds=N] [--backend=uring|epoll]
//   CUSTOSD defaults to ../src/custosd beside this binary (meson passes it).
//   --seconds  window length; default 300 s (the 5 minutes: what
//              ./dev bench runs). meson's `benchmark` passes --seconds=60
//              (cross builds: --quick) to keep `meson test --benchmark` short.
//   --quick    20 s window: a smoke test, shorter than the interval
//   --backend  only that custosd (the baseline always runs)
//
// Exit status: 0; 1 when a contender could not be started or measured (a
// custosd whose probes did not all get ready, that logged a transition in
// the window, or that did not exit 0 on SIGTERM); a missed target never
// fails the run.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "common.hpp"
#include "proc.hpp"

extern char** environ;

using custos::bench::cpu_sample;
using custos::bench::sample_cpu;

namespace {

constexpr int probe_count = 64;
constexpr int interval_s = 60;
constexpr int listeners_per_group = 2;
constexpr int backlog = 4096;
constexpr int stop_timeout_s = 10;

std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// ---- listeners -----------------------------------------------------------------

enum group : int { g_uring, g_epoll, g_naive, group_count };
const char* const group_label[group_count] = {"custosd io_uring", "custosd epoll",
                                              "naive baseline"};

struct listeners {
    int fd[group_count][listeners_per_group] = {};
    std::uint16_t port[group_count][listeners_per_group] = {};
    std::atomic<std::uint64_t> accepted[group_count] = {};
    int stop_fd = -1;
    pthread_t thread{};
};

void* accept_loop(void* arg) {
    auto& l = *static_cast<listeners*>(arg);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    for (int g = 0; g < group_count; ++g) {
        for (int k = 0; k < listeners_per_group; ++k) {
            ev.events = EPOLLIN;
            ev.data.u64 = static_cast<std::uint64_t>(g * listeners_per_group + k);
            epoll_ctl(ep, EPOLL_CTL_ADD, l.fd[g][k], &ev);
        }
    }
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(ep, EPOLL_CTL_ADD, l.stop_fd, &ev);
    for (;;) {
        epoll_event got[8];
        int n = epoll_wait(ep, got, 8, -1);
        for (int i = 0; i < n; ++i) {
            if (got[i].data.u64 == UINT64_MAX) {
                close(ep);
                return nullptr;
            }
            int g = static_cast<int>(got[i].data.u64) / listeners_per_group;
            int k = static_cast<int>(got[i].data.u64) % listeners_per_group;
            for (int c; (c = accept4(l.fd[g][k], nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
                close(c);
                l.accepted[g].fetch_add(1, std::memory_order_relaxed);
            }
        }
    }
}

bool start_listeners(listeners& l) {
    for (int g = 0; g < group_count; ++g) {
        for (int k = 0; k < listeners_per_group; ++k) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t len = sizeof a;
            if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
                listen(fd, backlog) != 0 ||
                getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
                std::printf("listener: %s\n", std::strerror(errno));
                return false;
            }
            l.fd[g][k] = fd;
            l.port[g][k] = ntohs(a.sin_port);
        }
    }
    l.stop_fd = eventfd(0, EFD_CLOEXEC);
    return l.stop_fd >= 0 && pthread_create(&l.thread, nullptr, &accept_loop, &l) == 0;
}

void stop_listeners(listeners& l) {
    std::uint64_t one = 1;
    if (write(l.stop_fd, &one, sizeof one) == sizeof one) {
        pthread_join(l.thread, nullptr);
    }
}

// ---- the naive baseline (this binary, --naive PORT PORT) -----------------------

struct naive_thread {
    sockaddr_in addr{};
    std::int64_t first_ns = 0; // CLOCK_MONOTONIC
};

void* naive_probe_loop(void* arg) {
    auto& t = *static_cast<naive_thread*>(arg);
    for (std::int64_t due = t.first_ns;; due += interval_s * 1'000'000'000LL) {
        timespec ts{static_cast<time_t>(due / 1'000'000'000),
                    static_cast<long>(due % 1'000'000'000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0) {
            connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), sizeof t.addr);
            close(fd);
        }
    }
    return nullptr;
}

int run_naive(int argc, char** argv) {
    std::uint16_t ports[listeners_per_group] = {};
    int got = 0;
    for (int i = 1; i < argc && got < listeners_per_group; ++i) {
        if (argv[i][0] != '-') {
            ports[got++] = static_cast<std::uint16_t>(std::atoi(argv[i]));
        }
    }
    if (got != listeners_per_group) {
        std::fprintf(stderr, "probe_idle --naive: need %d ports\n", listeners_per_group);
        return 2;
    }
    static naive_thread threads[probe_count];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    std::int64_t start = now_ns();
    for (int i = 0; i < probe_count; ++i) {
        naive_thread& t = threads[i];
        t.addr.sin_family = AF_INET;
        t.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        t.addr.sin_port = htons(ports[i % listeners_per_group]);
        t.first_ns = start + interval_s * 1'000'000'000LL * i / probe_count;
        pthread_t id;
        if (pthread_create(&id, &attr, &naive_probe_loop, &t) != 0) {
            std::fprintf(stderr, "probe_idle --naive: pthread_create failed\n");
            return 1;
        }
    }
    std::fprintf(stderr, "naive: %d probe threads running\n", probe_count);
    for (;;) {
        pause();
    }
}

// ---- /proc ---------------------------------------------------------------------

// ---- contenders ------------------------------------------------------------------

struct contender {
    group g = g_uring;
    bool wanted = false;
    pid_t pid = -1;
    int err = -1; // its stderr
    std::string partial, last, banner, final_line, first_window_line;
    unsigned ready = 0, lines = 0, window_lines = 0;
    bool started = false; // running and settled: measured
    bool skipped = false;
    bool in_window = false;
    bool exited = false;
    int status = 0;
    cpu_sample a, b;
    std::uint64_t accepted0 = 0, accepted1 = 0;
};

void take_line(contender& c, const std::string& l) {
    ++c.lines;
    c.last = l;
    if (c.in_window && c.window_lines++ == 0) {
        c.first_window_line = l;
    }
    if (c.banner.empty() && l.rfind("custosd: ", 0) == 0 &&
        l.find("warning") == std::string::npos) {
        c.banner = l;
    } else if (l.rfind("custosd: stopped;", 0) == 0) {
        c.final_line = l;
    }
    if (l.find(" -> ready (") != std::string::npos || l.rfind("naive: ", 0) == 0) {
        ++c.ready;
    }
}

// Reads every contender's stderr until `until_ns` or `done()`.
template <class Done>
bool pump(std::vector<contender*>& cs, std::int64_t until_ns, Done done) {
    for (;;) {
        for (contender* c : cs) {
            if (c->pid > 0 && !c->exited && waitpid(c->pid, &c->status, WNOHANG) == c->pid) {
                c->exited = true;
            }
        }
        if (done()) {
            return true;
        }
        std::int64_t left_ms = (until_ns - now_ns()) / 1'000'000;
        if (left_ms <= 0) {
            return false;
        }
        pollfd p[group_count];
        nfds_t n = 0;
        for (contender* c : cs) {
            if (c->err >= 0) {
                p[n++] = pollfd{c->err, POLLIN, 0};
            }
        }
        int wait = static_cast<int>(left_ms < 1000 ? left_ms : 1000);
        if (poll(p, n, wait) <= 0) {
            continue;
        }
        for (contender* c : cs) {
            for (nfds_t k = 0; k < n; ++k) {
                if (c->err != p[k].fd || p[k].revents == 0) {
                    continue;
                }
                char buf[4096];
                ssize_t got = read(c->err, buf, sizeof buf);
                if (got <= 0) {
                    close(c->err);
                    c->err = -1;
                    break;
                }
                c->partial.append(buf, static_cast<std::size_t>(got));
                for (std::size_t nl; (nl = c->partial.find('\n')) != std::string::npos;) {
                    take_line(*c, c->partial.substr(0, nl));
                    c->partial.erase(0, nl + 1);
                }
            }
        }
    }
}

// Starts argv with stdin/stdout on /dev/null and stderr on a pipe.
bool launch(const char* const* argv, contender& c) {
    int rc = custos::bench::spawn_stderr_piped(argv, &c.pid, &c.err);
    if (rc < 0) {
        return false;
    }
    if (rc != 0) {
        std::printf("  %s: cannot start %s: %s\n", group_label[c.g], argv[0], std::strerror(rc));
    }
    return rc == 0;
}

bool write_config(const std::string& path, const listeners& l, group g) {
    std::FILE* f = std::fopen(path.c_str(), "we");
    if (f == nullptr) {
        std::printf("cannot write %s: %s\n", path.c_str(), std::strerror(errno));
        return false;
    }
    std::fprintf(f,
                 "# probe_idle: %d tcp probes at a %d s interval, no services\n[custos]\n"
                 "stop_timeout = %ds\nmax_probes = %d\n",
                 probe_count, interval_s, stop_timeout_s, probe_count);
    for (int i = 0; i < probe_count; ++i) {
        std::fprintf(f, "\n[probe:p%02d]\ntcp = 127.0.0.1:%u\ninterval = %ds\n", i,
                     l.port[g][i % listeners_per_group], interval_s);
    }
    return std::fclose(f) == 0;
}

std::string find_custosd(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (argv[i][0] != '-' && (i == 1 || std::strcmp(argv[i - 1], "--seconds") != 0)) {
            return argv[i];
        }
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    std::string s(self, n > 0 ? static_cast<std::size_t>(n) : 0);
    return s.substr(0, s.rfind('/') + 1) + "../src/custosd";
}

int window_seconds(int argc, char** argv) {
    int secs = custos::bench::has_flag(argc, argv, "--quick") ? 20 : 300;
    const char* v = custos::bench::flag_value(argc, argv, "--seconds");
    for (int i = 1; v == nullptr && i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--seconds") == 0) {
            v = argv[i + 1];
        }
    }
    if (v != nullptr) {
        secs = std::atoi(v);
    }
    return secs < 1 ? 1 : secs;
}

} // namespace

int main(int argc, char** argv) {
    if (custos::bench::has_flag(argc, argv, "--naive")) {
        return run_naive(argc, argv);
    }
    custos::bench::print_header("probe_idle");
    const int window_s = window_seconds(argc, argv);
    const char* backend = custos::bench::flag_value(argc, argv, "--backend");
    std::string custosd = find_custosd(argc, argv);
    if (access(custosd.c_str(), X_OK) != 0) {
        std::printf("custosd not found at %s (%s): pass its path as the first argument\n",
                    custosd.c_str(), std::strerror(errno));
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);

    listeners l;
    if (!start_listeners(l)) {
        return 1;
    }
    const char* tmp = std::getenv("TMPDIR");
    std::string dir =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/custos-probe-idle-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
        std::printf("mkdtemp %s: %s\n", dir.c_str(), std::strerror(errno));
        return 1;
    }
    const double due = static_cast<double>(probe_count) * window_s / interval_s;
    std::printf("custosd: %s\n%d tcp probes to 127.0.0.1 (%d listeners per contender, accepts "
                "counted), interval %d s, default startup and slack; window %d s after every "
                "probe is ready + 1 s; contenders side by side in the same window\n",
                custosd.c_str(), probe_count, listeners_per_group, interval_s, window_s);
    if (window_s < interval_s) {
        std::printf("note: the window is shorter than the interval: a probe's first poll comes "
                    "30-60 s after its startup check, so few or none of the runs due happen in "
                    "it\n");
    }

    contender cs[group_count];
    std::vector<contender*> live;
    std::string cfg[2];
    for (int g = 0; g < group_count; ++g) {
        contender& c = cs[g];
        c.g = static_cast<group>(g);
        c.wanted = g == g_naive || backend == nullptr ||
                   std::strcmp(backend, g == g_uring ? "uring" : "epoll") == 0;
        if (!c.wanted) {
            continue;
        }
        if (g == g_naive) {
            std::string p0 = std::to_string(l.port[g][0]), p1 = std::to_string(l.port[g][1]);
            const char* av[] = {"/proc/self/exe", "--naive", p0.c_str(), p1.c_str(), nullptr};
            if (launch(av, c)) {
                live.push_back(&c);
            }
            continue;
        }
        cfg[g] = dir + (g == g_uring ? "/uring.ini" : "/epoll.ini");
        if (!write_config(cfg[g], l, c.g)) {
            return 1;
        }
        setenv("CUSTOS_BACKEND", g == g_uring ? "uring" : "epoll", 1);
        const char* av[] = {custosd.c_str(), "--config", cfg[g].c_str(), nullptr};
        if (launch(av, c)) {
            live.push_back(&c);
        }
    }
    unsetenv("CUSTOS_BACKEND");

    // Settle: every probe ready (the naive process: its threads started).
    auto all_ready = [&] {
        for (contender* c : live) {
            unsigned want = c->g == g_naive ? 1u : static_cast<unsigned>(probe_count);
            if (!c->exited && c->ready < want) {
                return false;
            }
        }
        return true;
    };
    pump(live, now_ns() + 30'000'000'000LL, all_ready);
    bool ok = true;
    for (contender* c : live) {
        unsigned want = c->g == g_naive ? 1u : static_cast<unsigned>(probe_count);
        if (c->exited || c->ready < want) {
            bool uring_refused =
                c->g == g_uring && c->exited && c->last.find("io_uring") != std::string::npos;
            // qemu-user without binfmt_misc: the foreign binary does not run.
            bool cannot_exec =
                c->exited && WIFEXITED(c->status) && WEXITSTATUS(c->status) == 127 && c->lines == 0;
            c->skipped = uring_refused || cannot_exec;
            ok = ok && c->skipped;
            const char* why = uring_refused ? " - skipped: io_uring refused"
                              : cannot_exec ? " - skipped: could not be executed (qemu-user?)"
                                            : "";
            std::printf("  %s: %s (%u of %u ready; last line: %s)%s\n", group_label[c->g],
                        c->exited ? "exited" : "not ready in 30 s", c->ready, want, c->last.c_str(),
                        why);
        } else {
            c->started = true;
            if (!c->banner.empty()) {
                std::printf("  %s: %s\n", group_label[c->g], c->banner.c_str());
            }
        }
    }
    pump(live, now_ns() + 1'000'000'000, [] { return false; });

    for (contender* c : live) {
        if (c->started) {
            c->a = sample_cpu(c->pid);
            c->accepted0 = l.accepted[c->g].load(std::memory_order_relaxed);
            c->in_window = true;
        }
    }
    bool any = false;
    for (contender* c : live) {
        any = any || c->started;
    }
    std::int64_t t0 = now_ns();
    if (any) {
        std::printf("window: %d s ...\n", window_s);
        std::fflush(stdout);
        pump(live, t0 + window_s * 1'000'000'000LL, [] { return false; });
    } else {
        std::printf("nothing started: no window\n");
    }
    double secs = static_cast<double>(now_ns() - t0) / 1e9;
    for (contender* c : live) {
        if (c->started) {
            c->b = sample_cpu(c->pid);
            c->accepted1 = l.accepted[c->g].load(std::memory_order_relaxed);
            c->in_window = false;
        }
    }

    // Stop: custosd on SIGTERM (it must exit 0), the baseline with SIGKILL.
    std::int64_t t_stop = now_ns();
    for (contender* c : live) {
        if (!c->exited) {
            kill(c->pid, c->g == g_naive ? SIGKILL : SIGTERM);
        }
    }
    // Until each has exited and its stderr reached EOF: custosd's last line
    // (its counters) comes as it exits.
    pump(live, t_stop + (stop_timeout_s + 2) * 1'000'000'000LL, [&] {
        for (contender* c : live) {
            if (!c->exited || c->err >= 0) {
                return false;
            }
        }
        return true;
    });
    for (contender* c : live) {
        if (!c->exited) {
            std::printf("  FAIL: %s still running %d s after SIGTERM: killed\n", group_label[c->g],
                        stop_timeout_s + 2);
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &c->status, 0);
            ok = false;
        } else if (c->g != g_naive && c->started &&
                   (!WIFEXITED(c->status) || WEXITSTATUS(c->status) != 0)) {
            std::printf("  FAIL: %s ended with status 0x%x after SIGTERM\n", group_label[c->g],
                        c->status);
            ok = false;
        }
        if (c->err >= 0) {
            close(c->err);
        }
    }
    stop_listeners(l);
    for (const std::string& p : cfg) {
        if (!p.empty()) {
            unlink(p.c_str());
        }
    }
    rmdir(dir.c_str());

    const double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::printf("\nidle window %.1f s, %d probes every %d s: %.1f probe runs due (64 x window / "
                "interval)\n",
                secs, probe_count, interval_s, due);
    std::printf("  %-17s %7s %9s %10s %9s %9s %9s %11s %s\n", "", "threads", "CPU ms", "CPU ms",
                "wake-ups", "invol.", "runs", "CPU us/run", "log lines");
    std::printf("  %-17s %7s %9s %11s %9s %9s %9s %11s\n", "", "", "(ticks)", "(schedstat)",
                "(vol.)", "", "(real)", "");
    double naive_wakeups = -1;
    for (const contender& c : cs) {
        if (!c.wanted) {
            continue;
        }
        if (!c.started) {
            std::printf("  %-17s %s\n", group_label[c.g], c.skipped ? "skipped" : "not measured");
            continue;
        }
        long long runs = static_cast<long long>(c.accepted1 - c.accepted0);
        double run_ms = c.a.run_ns >= 0 && c.b.run_ns >= 0
                            ? static_cast<double>(c.b.run_ns - c.a.run_ns) / 1e6
                            : -1;
        double tick_cpu = static_cast<double>(c.b.ticks - c.a.ticks) * tick_ms;
        double per_run_us = (run_ms >= 0 ? run_ms : tick_cpu) * 1000.0 /
                            static_cast<double>(runs > 0 ? static_cast<double>(runs) : due);
        long long vol = c.b.vol - c.a.vol;
        std::printf("  %-17s %7d %9.1f %11.3f %9lld %9lld %9lld %11.1f %u\n", group_label[c.g],
                    c.b.tasks, tick_cpu, run_ms, vol, c.b.invol - c.a.invol, runs, per_run_us,
                    c.window_lines);
        if (c.window_lines != 0 && c.g != g_naive) {
            std::printf("    a probe changed state in the window: %s\n",
                        c.first_window_line.c_str());
            ok = false;
        }
        if (c.g == g_naive) {
            naive_wakeups = static_cast<double>(vol);
        }
    }
    std::printf("  (runs: connections its listeners accepted in the window; CPU per run from the "
                "schedstat run time, else the ticks)\n");
    std::printf("\nbaseline: one timer per probe wakes once per run: %.1f wake-ups due in "
                "theory",
                due);
    if (naive_wakeups >= 0) {
        std::printf(", %.0f measured (naive process, 64 threads)", naive_wakeups);
    }
    std::printf("\n");
    for (const contender& c : cs) {
        if (!c.wanted || c.g == g_naive || !c.started) {
            continue;
        }
        long long vol = c.b.vol - c.a.vol;
        std::printf("target: %-17s wake-ups <= probe runs due: %lld <= %.1f: %s", group_label[c.g],
                    vol, due, static_cast<double>(vol) <= due ? "MET" : "NOT MET");
        if (naive_wakeups > 0) {
            std::printf(" (%.2fx the naive baseline's)", static_cast<double>(vol) / naive_wakeups);
        }
        std::printf("\n");
    }
    for (const contender& c : cs) {
        if (c.wanted && c.g != g_naive && !c.final_line.empty()) {
            std::printf("%s: %s\n", group_label[c.g], c.final_line.c_str());
        }
    }
    return ok ? 0 : 1;
}
