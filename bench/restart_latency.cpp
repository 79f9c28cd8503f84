// bench/restart_latency: how long from a service's exit to its respawn, with
// a zero backoff floor, against doing the same by hand — per backend.
//
// Three loops, each spawning /bin/true (it exits at once) over and over, with
// every timestamp from CLOCK_MONOTONIC taken in this process:
//   raw       posix_spawn, then waitid(P_PID, WEXITED), repeat;
//   raw pidfd posix_spawn, pidfd_open, poll(pidfd), waitid(P_PIDFD), repeat:
//             the pidfd path custos's epoll backend takes;
//   custos    a Runtime with one service, restart = always, zero backoff
//             (initial = max = 0, no jitter), no restart budget; the
//             transition hook timestamps each exit (-> backoff) and each
//             respawn (-> ready, ReadyStarted), and calls stop() after N.
// Figures per loop, N samples each:
//   cycle    spawn returned -> next spawn returned: everything, the kernel's
//            exit notification included. The comparable figure.
//   restart  exit observed -> next spawn returned. The raw loops spend only
//            posix_spawn here; custos spends its backoff timer (a zero delay
//            still waits for the next timer-wheel tick), the state machine
//            and its spawner. Shown split at the backoff -> starting hook.
//   run      spawn returned -> exit observed: /bin/true's exec, run and exit,
//            plus the wake-up that reports it (waitid; or the io_uring
//            completion / pidfd readiness custos waits for).
// The baselines run first, before Runtime::init: afterwards this process
// drains SIGCHLD, which would disturb them. The raw loop
// runs once more after run() has returned, as a check on drift.
//
//   --quick                 200 restarts instead of 1000
//   --backend=uring|epoll   only that backend (CUSTOS_BACKEND, set before
//                           init). Without it the program re-runs itself once
//                           per backend (one Runtime per process); where it
//                           cannot (qemu-user), it runs once, backend as chosen.
//   --only=baseline|custos  only those loops
//   --cgroup=auto|off       how the Runtime contains the service (default:
//                           both, one process each, and the cost of the
//                           cgroup per restart printed beside the process-
//                           group path: the cycle medians' difference)
//
// Exit status: 0, or 1 when a spawn failed or the runtime made a transition
// the scenario cannot produce (bugs, not slowness: a missed target never
// fails the run).
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>
#include <vector>

#include <custos/runtime.hpp>
#include <custos/service.hpp>

#include "common.hpp"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

extern char** environ;

namespace {

using custos::ServiceState;

constexpr const char* true_path = "/bin/true";
constexpr unsigned warmup = 20;

std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double us(std::int64_t ns) noexcept {
    return static_cast<double>(ns) / 1000.0;
}

void on_alarm(int) {
    static const char msg[] = "bench restart_latency: no progress for 120 s, giving up\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(2);
}

struct samples {
    std::vector<double> cycle, restart, run, timer, spawn; // microseconds
    bool ran = false;
    void reserve(std::size_t n) {
        for (auto* v : {&cycle, &restart, &run, &timer, &spawn}) {
            v->reserve(n);
        }
    }
};

// The raw loop. Returns false (and says why) when a spawn or a wait failed.
bool raw_loop(unsigned n, bool use_pidfd, samples& s) {
    char* argv[] = {const_cast<char*>(true_path), nullptr};
    s.reserve(n + 1);
    std::int64_t spawned_prev = 0;
    std::int64_t exit_seen = 0;
    for (unsigned i = 0; i <= warmup + n; ++i) {
        pid_t pid = 0;
        int rc = posix_spawn(&pid, true_path, nullptr, nullptr, argv, environ);
        std::int64_t spawned = now_ns();
        if (rc != 0) {
            std::printf("  FAIL: posix_spawn(%s): %s\n", true_path, std::strerror(rc));
            return false;
        }
        if (i > warmup) {
            s.restart.push_back(us(spawned - exit_seen));
            s.cycle.push_back(us(spawned - spawned_prev));
        }
        siginfo_t si{};
        if (use_pidfd) {
            int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
            if (fd < 0) {
                int e = errno;
                waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED);
                std::printf("  skipped: pidfd_open: %s\n", std::strerror(e));
                return true;
            }
            pollfd p{fd, POLLIN, 0};
            while (poll(&p, 1, -1) < 0 && errno == EINTR) {
            }
            rc = waitid(P_PIDFD, static_cast<id_t>(fd), &si, WEXITED);
            close(fd);
        } else {
            rc = waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED);
        }
        exit_seen = now_ns();
        if (rc != 0 || si.si_code != CLD_EXITED || si.si_status != 0) {
            std::printf("  FAIL: waitid: rc %d errno %d code %d status %d\n", rc, errno, si.si_code,
                        si.si_status);
            return false;
        }
        if (i >= warmup && i < warmup + n) {
            s.run.push_back(us(exit_seen - spawned));
        }
        spawned_prev = spawned;
    }
    s.ran = true;
    return true;
}

// What the transition hook sees of the custos loop.
struct custos_run {
    custos::Runtime* rt = nullptr;
    unsigned n = 0;
    unsigned spawns = 0; // respawns seen, the first spawn included
    std::int64_t spawned = 0, exited = 0, starting = 0;
    bool stopping = false;
    unsigned unexpected = 0;
    ServiceState bad_to = ServiceState::stopped;
    custos::Reason bad_reason = custos::Reason::unknown;
    samples s;
};

void note_unexpected(custos_run& c, const custos::Transition& t) noexcept {
    if (c.unexpected++ == 0) {
        c.bad_to = t.to;
        c.bad_reason = t.reason;
    }
}

void on_transition(const custos::Transition& t, void* ctx) noexcept {
    std::int64_t now = now_ns();
    auto& c = *static_cast<custos_run*>(ctx);
    if (c.stopping) {
        return; // ready -> stopping -> stopped after stop()
    }
    unsigned i = c.spawns; // index of the current (or next) process
    switch (t.to) {
    case ServiceState::ready:
        if (t.reason != custos::Reason::ready_started) {
            note_unexpected(c, t);
        }
        if (i > warmup) {
            c.s.restart.push_back(us(now - c.exited));
            c.s.cycle.push_back(us(now - c.spawned));
            c.s.spawn.push_back(us(now - c.starting));
        }
        c.spawned = now;
        if (++c.spawns > warmup + c.n) {
            c.stopping = true;
            c.rt->stop();
        }
        return;
    case ServiceState::backoff:
        if (t.reason != custos::Reason::exited_cleanly || t.delay.count() != 0) {
            note_unexpected(c, t);
        }
        c.exited = now;
        if (i >= warmup + 1 && i <= warmup + c.n) {
            c.s.run.push_back(us(now - c.spawned));
        }
        return;
    case ServiceState::starting:
        c.starting = now;
        if (i > warmup && t.from == ServiceState::backoff) {
            c.s.timer.push_back(us(now - c.exited));
        }
        return;
    case ServiceState::stopped:
    case ServiceState::waiting:
    case ServiceState::running:
    case ServiceState::stopping:
    case ServiceState::failed:
        note_unexpected(c, t);
        return;
    }
}

// Returns false on a bug; a backend the kernel refuses is a skip.
bool custos_loop(unsigned n, custos_run& c) {
    static constexpr std::string_view argv[] = {true_path};
    custos::ServiceSpec spec;
    spec.name = "true";
    spec.argv = argv;
    spec.restart = custos::RestartPolicy::always;
    spec.backoff_initial = custos::Duration(0);
    spec.backoff_max = custos::Duration(0);
    spec.backoff_multiplier_x100 = 100;
    spec.backoff_jitter_percent = 0;
    spec.max_restarts = 0;
    spec.stable_after = std::chrono::hours(24);
    spec.ready = custos::ReadyMode::started;
    custos::RuntimeConfig cfg;
    cfg.max_services = 1;
    cfg.handle_signals = false;
    cfg.seed = 1;
    const char* cg = std::getenv("CUSTOS_BENCH_CGROUP");
    cfg.cgroup = cg != nullptr && std::strcmp(cg, "off") == 0 ? "off" : "";
    static custos::Runtime rt; // one per process, for the program's lifetime
    if (auto r = rt.init(cfg, std::span(&spec, 1)); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::printf("custos: Runtime::init failed (%s) — skipped\n", text);
        return r.error().reason() == custos::Reason::io_uring_unavailable;
    }
    std::printf("custos: %s\n  spawn: %s; exit watch: %s\n", rt.backend_reason(),
                rt.spawn_method_name(), rt.exit_watch_name());
    std::fflush(stdout);
    c.rt = &rt;
    c.n = n;
    c.s.reserve(n + 1);
    rt.set_transition_hook(&on_transition, &c);
    std::uint64_t allocs = custos::bench::allocation_count();
    if (auto r = rt.start(); !r) {
        std::printf("  FAIL: Runtime::start failed\n");
        return false;
    }
    rt.run();
    allocs = custos::bench::allocation_count() - allocs;
    custos::RuntimeStats st = rt.stats();
    std::printf("  %llu spawns, %llu exits, %llu spawn failures; %llu allocations from start() "
                "to the end of run()\n",
                static_cast<unsigned long long>(st.spawns),
                static_cast<unsigned long long>(st.exits),
                static_cast<unsigned long long>(st.spawn_failures),
                static_cast<unsigned long long>(allocs));
    if (c.unexpected != 0) {
        std::string_view to = custos::state_name(c.bad_to);
        std::string_view why = custos::reason_id(c.bad_reason);
        std::printf("  BUG: %u unexpected transitions, first -> %.*s (%.*s)\n", c.unexpected,
                    static_cast<int>(to.size()), to.data(), static_cast<int>(why.size()),
                    why.data());
        return false;
    }
    c.s.ran = true;
    return true;
}

custos::bench::summary print_row(const char* label, std::vector<double>& v) {
    custos::bench::summary s = custos::bench::summarize(v.data(), v.size());
    if (v.empty()) {
        std::printf("  %-48s not measured\n", label);
        return s;
    }
    double p99 = custos::bench::percentile(v.data(), v.size(), 99);
    std::printf("  %-48s median %8.1f us  p99 %8.1f us  [%.1f .. %.1f us]  n=%zu\n", label,
                s.median, p99, s.lo, s.hi, v.size());
    return s;
}

void print_ratio(const char* what, double custos_median, double base_median) {
    if (custos_median > 0 && base_median > 0) {
        std::printf("  custos/%s median: %.2fx\n", what, custos_median / base_median);
    }
}

// Runs every loop for the backend this process was started with.
int run_one(unsigned n, bool baseline, bool custos_side) {
    samples raw, pidfd;
    custos_run c;
    bool ok = true;
    if (baseline) {
        ok = raw_loop(n, false, raw) && ok;
        ok = raw_loop(n, true, pidfd) && ok;
    }
    if (custos_side) {
        ok = custos_loop(n, c) && ok;
    }
    // Again, after run() returned (nothing reads SIGCHLD any more): a cycle
    // median far from the first run's means the machine drifted meanwhile.
    samples after;
    if (baseline && custos_side && c.s.ran) {
        ok = raw_loop(n, false, after) && ok;
    }
    struct group {
        const char* title;
        std::vector<double> samples::*field;
    };
    const group groups[] = {
        {"cycle: spawn returned -> next spawn returned", &samples::cycle},
        {"restart: exit observed -> next spawn returned", &samples::restart},
        {"run: spawn returned -> exit observed", &samples::run},
    };
    double cycle_raw = 0, cycle_custos = 0;
    for (const group& g : groups) {
        std::printf("\n%s (%u restarts after %u warm-up)\n", g.title, n, warmup);
        double b = print_row("raw: posix_spawn + waitid(P_PID)", raw.*g.field).median;
        double p =
            print_row("raw: posix_spawn + pidfd poll + waitid(P_PIDFD)", pidfd.*g.field).median;
        double m = print_row("custos", c.s.*g.field).median;
        if (g.field == &samples::restart) {
            print_row("  of which exit -> starting (backoff timer)", c.s.timer);
            print_row("  of which starting -> ready (spawn)", c.s.spawn);
        }
        if (g.field == &samples::cycle) {
            print_row("raw again, after custos (drift check)", after.cycle);
            cycle_raw = b;
            cycle_custos = m;
        }
        print_ratio("raw", m, b);
        print_ratio("raw pidfd", m, p);
    }
    if (const char* out = std::getenv("CUSTOS_BENCH_RESULT"); out != nullptr && c.s.ran) {
        if (std::FILE* f = std::fopen(out, "w")) {
            custos::bench::summary sp =
                custos::bench::summarize(c.s.spawn.data(), c.s.spawn.size());
            std::fprintf(f, "%f %f\n", cycle_custos, sp.median);
            std::fclose(f);
        }
    }
    if (cycle_raw > 0 && cycle_custos > 0) {
        double r = cycle_custos / cycle_raw;
        std::printf("\ntarget: custos cycle <= 1.2x the raw loop's: %s (%.2fx)\n",
                    r <= 1.2 ? "MET" : "NOT MET", r);
    } else {
        std::printf("\ntarget: custos cycle <= 1.2x the raw loop's: NOT MEASURED\n");
    }
    return ok ? 0 : 1;
}

// Runs this program again with --backend=`backend`; returns its exit status,
// or -1 when it could not be run (no /proc/self/exe, or qemu-user: exec of a
// foreign binary fails or the child exits 127).
int rerun(int argc, char** argv, const char* backend) {
    std::vector<char*> args(argv, argv + argc);
    char flag[32];
    std::snprintf(flag, sizeof flag, "--backend=%s", backend);
    args.push_back(flag);
    args.push_back(const_cast<char*>("--no-header"));
    args.push_back(nullptr);
    std::fflush(stdout);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, args.data(), environ) != 0) {
        return -1;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status)) {
        return 1;
    }
    return WEXITSTATUS(status) == 127 ? -1 : WEXITSTATUS(status);
}

} // namespace

int main(int argc, char** argv) {
    unsigned n = custos::bench::has_flag(argc, argv, "--quick") ? 200 : 1000;
    bool baseline = true;
    bool custos_side = true;
    if (const char* o = custos::bench::flag_value(argc, argv, "--only"); o != nullptr) {
        baseline = std::strcmp(o, "baseline") == 0;
        custos_side = std::strcmp(o, "custos") == 0;
    }
    const char* backend = custos::bench::flag_value(argc, argv, "--backend");
    if (!custos::bench::has_flag(argc, argv, "--no-header")) {
        custos::bench::print_header("restart_latency");
    }
    std::signal(SIGALRM, on_alarm);
    alarm(120);
    if (backend != nullptr) {
        setenv("CUSTOS_BACKEND", backend, 1);
        std::printf("\n=== backend %s (CUSTOS_BACKEND=%s) ===\n", backend, backend);
        return run_one(n, baseline, custos_side);
    }
    alarm(0);
    int worst = 0;
    const char* only_cg = custos::bench::flag_value(argc, argv, "--cgroup");
    for (const char* b : {"uring", "epoll"}) {
        // cycle and spawn medians (us) per containment, from the child runs.
        double cycle[2] = {0, 0};
        double spawn[2] = {0, 0};
        const char* modes[2] = {"auto", "off"};
        for (int m = 0; m < 2; ++m) {
            if (only_cg != nullptr && std::strcmp(only_cg, modes[m]) != 0) {
                continue;
            }
            char result[64];
            std::snprintf(result, sizeof result, "/tmp/custos-bench-rl.%d",
                          static_cast<int>(getpid()));
            setenv("CUSTOS_BENCH_CGROUP", modes[m], 1);
            setenv("CUSTOS_BENCH_RESULT", result, 1);
            std::printf("\n##### cgroup = %s #####\n", modes[m]);
            int rc = rerun(argc, argv, b);
            if (rc < 0) {
                std::printf("\ncannot re-run itself per backend (qemu-user?): one run, backend as "
                            "the runtime chooses\n");
                alarm(120);
                return run_one(n, baseline, custos_side);
            }
            worst = rc > worst ? rc : worst;
            if (std::FILE* f = std::fopen(result, "r")) {
                if (std::fscanf(f, "%lf %lf", &cycle[m], &spawn[m]) != 2) {
                    cycle[m] = spawn[m] = 0;
                }
                std::fclose(f);
                std::remove(result);
            }
        }
        if (cycle[0] > 0 && cycle[1] > 0) {
            std::printf("\n%s: the cgroup's cost per restart (cgroup = auto minus off, same run):"
                        "\n  cycle median %.1f us vs %.1f us: %+.1f us (%.2fx)"
                        "\n  spawn median %.1f us vs %.1f us: %+.1f us\n",
                        b, cycle[0], cycle[1], cycle[0] - cycle[1], cycle[0] / cycle[1], spawn[0],
                        spawn[1], spawn[0] - spawn[1]);
        }
    }
    return worst;
}
