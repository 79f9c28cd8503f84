// bench/reactor: per backend (io_uring, then epoll, in the same run)
//
//   1. How late does a timer fire? K samples: one timer armed at a deadline
//      on a tick boundary 2..5 ticks ahead (random, pre-drawn), the reactor
//      run until it fires, lateness = fired_at - deadline (never negative:
//      the wheel rounds up). Baseline, interleaved sample by sample:
//      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to a deadline drawn
//      the same way, the kernel's own floor for waking at an instant.
//   2. How many system calls does an operation cost? Rounds of B loopback
//      TCP connects (5 s deadline each) to a listener that does not accept
//      during the batch; reactor_stats.syscalls / wait_calls deltas around
//      submit + run-until-all-complete, per completed connect. Creating the
//      sockets, closing them and draining the accept queue are outside the
//      counted phase (identical for both backends).
//
// Each backend is created explicitly (honour_env = false) with the default
// reactor_config otherwise. A backend the kernel refuses (io_uring under
// qemu-user, seccomp, kernel.io_uring_disabled) is reported as skipped.
//
//   --quick            K = 200 samples, R = 20 rounds (for emulators)
//   --backend=uring|epoll   only that backend
//   --only=latency|syscalls  only that question
//   --default-slack    keep the process's timer slack for the baseline
//   --uring-entries=N  reactor_config.uring_entries (default: the default)
//
// Exit status: 0, or 1 when a timer fired early or a connect failed (bugs,
// not slowness: a missed target never fails the run).
#include "io/reactor.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "common.hpp"

namespace {

using custos::from_ns;
using custos::mono_clock;
using custos::to_ns;
using custos::io::backend_choice;
using custos::io::reactor;
using custos::io::reactor_config;
using custos::io::reactor_stats;
using steady = std::chrono::steady_clock;

constexpr std::int64_t tick_ns = 1'000'000; // reactor_config's default tick

struct options {
    unsigned samples = 1000;
    unsigned warmup_samples = 20;
    unsigned rounds = 30;
    unsigned warmup_rounds = 2;
    unsigned batch = 128;
    bool uring = true;
    bool epoll = true;
    bool latency = true;
    bool syscalls = true;
    bool default_slack = false;
    std::uint32_t uring_entries = reactor_config{}.uring_entries;
};

// ---- hang guard --------------------------------------------------------------

// A reactor that never wakes would block the run forever: SIGALRM ends it
// with a message instead. Only async-signal-safe calls in the handler.
void on_alarm(int) {
    static const char msg[] = "bench reactor: no progress for 120 s, giving up\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(2);
}

// ---- 1. timer-fire latency ----------------------------------------------------

struct fire_probe {
    custos::io::timer t;
    std::int64_t fired_ns = 0;
    bool fired = false;

    fire_probe();
};

void on_fire(custos::io::timer& t) {
    auto* p = static_cast<fire_probe*>(t.user);
    p->fired_ns = to_ns(mono_clock::now());
    p->fired = true;
}

fire_probe::fire_probe() : t(&on_fire, this) {}

std::int64_t next_boundary(unsigned ticks_ahead) noexcept {
    std::int64_t now = to_ns(mono_clock::now());
    return (now / tick_ns + static_cast<std::int64_t>(ticks_ahead)) * tick_ns;
}

// Sleeps until `deadline_ns` on CLOCK_MONOTONIC; returns when it woke.
std::int64_t sleep_until(std::int64_t deadline_ns) noexcept {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    return to_ns(mono_clock::now());
}

struct latency_result {
    bool ran = false;
    double median_us = 0;
    double p99_us = 0;
    double max_us = 0;
    double base_median_us = 0;
    double base_p99_us = 0;
    double base_max_us = 0;
    unsigned early = 0;
    unsigned base_early = 0;
    double syscalls_per_fire = 0;
    double wakeups_per_fire = 0;
};

latency_result measure_latency(reactor& r, const options& opt) {
    const unsigned total = opt.warmup_samples + opt.samples;
    custos::bench::rng rnd(0x7173e5u);
    std::vector<unsigned> ahead(total);
    for (auto& a : ahead) {
        a = static_cast<unsigned>(rnd.between(2, 5));
    }
    std::vector<double> lat(opt.samples);
    std::vector<double> base(opt.samples);
    fire_probe probe;
    latency_result res;
    reactor_stats s0 = r.stats();
    for (unsigned i = 0; i < total; ++i) {
        if (i == opt.warmup_samples) {
            s0 = r.stats();
        }
        alarm(120);
        std::int64_t deadline = next_boundary(ahead[i]);
        probe.fired = false;
        r.arm(probe.t, from_ns(deadline));
        while (!probe.fired) {
            r.run_once(true);
        }
        std::int64_t late = probe.fired_ns - deadline;

        std::int64_t base_deadline = next_boundary(ahead[i]);
        std::int64_t base_late = sleep_until(base_deadline) - base_deadline;

        if (i >= opt.warmup_samples) {
            unsigned k = i - opt.warmup_samples;
            lat[k] = static_cast<double>(late) / 1000.0;
            base[k] = static_cast<double>(base_late) / 1000.0;
            res.early += late < 0 ? 1 : 0;
            res.base_early += base_late < 0 ? 1 : 0;
        }
    }
    alarm(0);
    reactor_stats s1 = r.stats();
    auto k = static_cast<double>(opt.samples);
    custos::bench::summary sl = custos::bench::summarize(lat.data(), lat.size());
    custos::bench::summary sb = custos::bench::summarize(base.data(), base.size());
    res.ran = true;
    res.median_us = sl.median;
    res.max_us = sl.hi;
    res.p99_us = custos::bench::percentile(lat.data(), lat.size(), 99);
    res.base_median_us = sb.median;
    res.base_max_us = sb.hi;
    res.base_p99_us = custos::bench::percentile(base.data(), base.size(), 99);
    res.syscalls_per_fire = static_cast<double>(s1.syscalls - s0.syscalls) / k;
    res.wakeups_per_fire = static_cast<double>(s1.wakeups - s0.wakeups) / k;
    return res;
}

// ---- 2. system calls per connect ------------------------------------------------

struct connect_slot {
    custos::io::op o;
    std::int32_t result = 0;
    unsigned* completed = nullptr;

    connect_slot();
};

void on_connect(custos::io::op& o, std::int32_t result) {
    auto* s = static_cast<connect_slot*>(o.user);
    s->result = result;
    ++*s->completed;
}

connect_slot::connect_slot() : o(&on_connect, this) {}

struct syscall_result {
    bool ran = false;
    bool setup_failed = false;
    custos::bench::summary syscalls_per_op;
    custos::bench::summary waits_per_op;
    double connects_per_s = 0;
    std::uint64_t ops = 0;
    std::uint64_t failures = 0;
    std::int32_t first_failure = 0;
    std::uint64_t syscalls_total = 0; // all counted rounds, warm-up included
    std::uint64_t waits_total = 0;
};

// A non-blocking listener on 127.0.0.1, ephemeral port; -1 on failure.
int make_listener(sockaddr_in& addr) noexcept {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    addr = sockaddr_in{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// Accepts and closes whatever the listener has queued.
void drain(int listener) noexcept {
    for (;;) {
        int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
        } else if (errno != ECONNABORTED && errno != EINTR) {
            return;
        }
    }
}

syscall_result measure_syscalls(reactor& r, const options& opt) {
    syscall_result res;
    sockaddr_in addr{};
    int listener = make_listener(addr);
    if (listener < 0) {
        std::printf("  listener on 127.0.0.1: %s\n", std::strerror(errno));
        res.setup_failed = true;
        return res;
    }
    const unsigned b = opt.batch;
    auto slots = std::make_unique<connect_slot[]>(b);
    std::vector<int> fds(b, -1);
    std::vector<double> per_op(opt.rounds);
    std::vector<double> waits(opt.rounds);
    std::vector<double> rate(opt.rounds);
    unsigned completed = 0;
    for (unsigned j = 0; j < b; ++j) {
        slots[j].completed = &completed;
    }
    const linger abortive{1, 0}; // close sends RST: no TIME_WAIT pile-up over the rounds

    for (unsigned round = 0; round < opt.warmup_rounds + opt.rounds; ++round) {
        alarm(120);
        for (unsigned j = 0; j < b; ++j) {
            fds[j] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fds[j] < 0) {
                std::printf("  socket: %s\n", std::strerror(errno));
                res.setup_failed = true;
                break;
            }
            setsockopt(fds[j], SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        }
        if (res.setup_failed) {
            for (int fd : fds) {
                if (fd >= 0) {
                    close(fd);
                }
            }
            break;
        }

        completed = 0;
        reactor_stats s0 = r.stats();
        auto t0 = steady::now();
        auto deadline = mono_clock::now() + std::chrono::seconds(5);
        for (unsigned j = 0; j < b; ++j) {
            r.connect(slots[j].o, fds[j], reinterpret_cast<const sockaddr*>(&addr), sizeof addr,
                      deadline);
        }
        while (completed < b) {
            r.run_once(true);
        }
        auto t1 = steady::now();
        reactor_stats s1 = r.stats();

        std::uint64_t done = s1.ops_completed - s0.ops_completed;
        res.syscalls_total += s1.syscalls - s0.syscalls;
        res.waits_total += s1.wait_calls - s0.wait_calls;
        if (round >= opt.warmup_rounds) {
            unsigned k = round - opt.warmup_rounds;
            // Per completed op; the reactor's own timerfd reads count too
            // (none complete here: no reactor timer is due in a round).
            per_op[k] = static_cast<double>(s1.syscalls - s0.syscalls) / static_cast<double>(done);
            waits[k] =
                static_cast<double>(s1.wait_calls - s0.wait_calls) / static_cast<double>(done);
            double secs = std::chrono::duration<double>(t1 - t0).count();
            rate[k] = static_cast<double>(b) / secs;
            res.ops += b;
            for (unsigned j = 0; j < b; ++j) {
                if (slots[j].result != 0) {
                    if (res.failures == 0) {
                        res.first_failure = slots[j].result;
                    }
                    ++res.failures;
                }
            }
        }
        for (unsigned j = 0; j < b; ++j) {
            close(fds[j]);
            fds[j] = -1;
        }
        drain(listener); // not counted: the same for both backends
    }
    alarm(0);
    close(listener);
    if (res.setup_failed) {
        return res;
    }
    res.ran = true;
    res.syscalls_per_op = custos::bench::summarize(per_op.data(), per_op.size());
    res.waits_per_op = custos::bench::summarize(waits.data(), waits.size());
    res.connects_per_s = custos::bench::summarize(rate.data(), rate.size()).median;
    return res;
}

// ---- per backend ------------------------------------------------------------------

struct backend_run {
    const char* name = "";
    bool is_uring = false;
    bool available = false;
    latency_result lat;
    syscall_result sys;
};

backend_run run_backend(backend_choice which, const char* name, const options& opt) {
    backend_run out;
    out.name = name;
    out.is_uring = which == backend_choice::uring;
    auto r = std::make_unique<reactor>();
    reactor_config cfg;
    cfg.backend = which;
    cfg.honour_env = false;
    cfg.uring_entries = opt.uring_entries;
    if (auto init = r->init(cfg); !init) {
        char text[512];
        init.error().format(text, sizeof text);
        std::printf("%s: unavailable (%s) — skipped\n", name, text);
        std::fflush(stdout);
        return out;
    }
    out.available = true;
    std::printf("%s: %s\n", name, r->backend_reason());
    std::fflush(stdout);
    if (opt.latency) {
        out.lat = measure_latency(*r, opt);
    }
    if (opt.syscalls) {
        out.sys = measure_syscalls(*r, opt);
    }
    return out;
}

void print_latency(const backend_run& b) {
    if (!b.available || !b.lat.ran) {
        std::printf("%-8s  timer fire: skipped\n", b.name);
        return;
    }
    const latency_result& l = b.lat;
    std::printf("%-8s  timer fire late by median %6.1f us  p99 %6.1f us  (max %.1f)  |  "
                "clock_nanosleep median %6.1f us  p99 %6.1f us  (max %.1f)  |  backend/baseline "
                "median %.2fx  p99 %.2fx  |  %.1f syscalls, %.1f wakeups per fire\n",
                b.name, l.median_us, l.p99_us, l.max_us, l.base_median_us, l.base_p99_us,
                l.base_max_us, l.median_us / l.base_median_us, l.p99_us / l.base_p99_us,
                l.syscalls_per_fire, l.wakeups_per_fire);
    if (l.early != 0) {
        std::printf("  BUG: %s fired %u timers before their deadline\n", b.name, l.early);
    }
    if (l.base_early != 0) {
        std::printf("  note: clock_nanosleep returned before its deadline %u times\n",
                    l.base_early);
    }
}

void print_syscalls(const backend_run& b, const options& opt) {
    if (!b.available || !b.sys.ran) {
        std::printf("%-8s  connect batch: skipped\n", b.name);
        return;
    }
    const syscall_result& s = b.sys;
    std::printf("%-8s  syscalls/op %.3f [%.3f..%.3f]  wait calls/op %.3f [%.3f..%.3f]  "
                "connects/s %.0f  failures %llu/%llu  (%llu syscalls, %llu waits in %u rounds "
                "incl. warm-up)\n",
                b.name, s.syscalls_per_op.median, s.syscalls_per_op.lo, s.syscalls_per_op.hi,
                s.waits_per_op.median, s.waits_per_op.lo, s.waits_per_op.hi, s.connects_per_s,
                static_cast<unsigned long long>(s.failures), static_cast<unsigned long long>(s.ops),
                static_cast<unsigned long long>(s.syscalls_total),
                static_cast<unsigned long long>(s.waits_total), opt.warmup_rounds + opt.rounds);
    if (s.failures != 0) {
        std::printf("  FAIL: %llu connects did not return 0 (first: %d, %s)\n",
                    static_cast<unsigned long long>(s.failures), s.first_failure,
                    std::strerror(-s.first_failure));
    }
}

} // namespace

int main(int argc, char** argv) {
    options opt;
    if (custos::bench::has_flag(argc, argv, "--quick")) {
        opt.samples = 200;
        opt.rounds = 20;
    }
    if (const char* b = custos::bench::flag_value(argc, argv, "--backend"); b != nullptr) {
        opt.uring = std::strcmp(b, "uring") == 0 || std::strcmp(b, "io_uring") == 0;
        opt.epoll = std::strcmp(b, "epoll") == 0;
    }
    if (const char* o = custos::bench::flag_value(argc, argv, "--only"); o != nullptr) {
        opt.latency = std::strcmp(o, "latency") == 0;
        opt.syscalls = std::strcmp(o, "syscalls") == 0;
    }
    opt.default_slack = custos::bench::has_flag(argc, argv, "--default-slack");
    if (const char* e = custos::bench::flag_value(argc, argv, "--uring-entries"); e != nullptr) {
        opt.uring_entries = static_cast<std::uint32_t>(std::strtoul(e, nullptr, 10));
    }
    std::signal(SIGALRM, on_alarm);

    custos::bench::print_header("reactor");
    long slack_ns = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    if (!opt.default_slack) {
        // clock_nanosleep is subject to the task's timer slack (50 us by
        // default), timerfd is not: without this the baseline would be late
        // on purpose and flatter the reactor.
        if (prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0) == 0) {
            slack_ns = 1;
        }
    }
    std::printf("timer slack for the baseline: %ld ns%s\n", slack_ns,
                opt.default_slack ? " (--default-slack)" : " (PR_SET_TIMERSLACK)");
    std::fflush(stdout);

    backend_run runs[2];
    unsigned count = 0;
    if (opt.uring) {
        runs[count++] = run_backend(backend_choice::uring, "io_uring", opt);
    }
    if (opt.epoll) {
        runs[count++] = run_backend(backend_choice::epoll, "epoll", opt);
    }

    bool ok = true;
    if (opt.latency) {
        std::printf("\n1. timer-fire latency: %u samples (+%u warm-up), deadline on a 1 ms tick "
                    "boundary 2..5 ticks ahead; baseline clock_nanosleep(CLOCK_MONOTONIC, "
                    "TIMER_ABSTIME), interleaved\n",
                    opt.samples, opt.warmup_samples);
        for (unsigned i = 0; i < count; ++i) {
            print_latency(runs[i]);
            ok = ok && runs[i].lat.early == 0;
        }
    }
    if (opt.syscalls) {
        std::printf(
            "\n2. system calls per op: %u rounds (+%u warm-up) of %u loopback TCP connects, "
            "5 s deadline each, listener backlog 4096 not accepting during the batch; "
            "reactor_config defaults but uring_entries %u%s, max_ops %u\n",
            opt.rounds, opt.warmup_rounds, opt.batch, opt.uring_entries,
            opt.uring_entries == reactor_config{}.uring_entries ? " (default)" : "",
            reactor_config{}.max_ops);
        const backend_run* uring = nullptr;
        const backend_run* epoll = nullptr;
        for (unsigned i = 0; i < count; ++i) {
            print_syscalls(runs[i], opt);
            ok = ok && runs[i].sys.failures == 0;
            if (runs[i].available && runs[i].sys.ran) {
                if (runs[i].is_uring) {
                    uring = &runs[i];
                } else {
                    epoll = &runs[i];
                }
            }
        }
        if (uring != nullptr && epoll != nullptr) {
            double ratio = uring->sys.syscalls_per_op.median / epoll->sys.syscalls_per_op.median;
            std::printf("syscalls/op io_uring/epoll = %.3f\n", ratio);
            std::printf("target: io_uring <= 1/3 of epoll's system calls per op: %s (ratio %.3f)\n",
                        ratio <= 1.0 / 3.0 ? "MET" : "NOT MET", ratio);
        } else {
            std::printf("syscalls/op io_uring/epoll = n/a (a backend was skipped)\n");
            std::printf("target: io_uring <= 1/3 of epoll's system calls per op: NOT MEASURED "
                        "(io_uring unavailable here)\n");
        }
        std::printf("note: reactor_stats.syscalls is counted by the reactor's own wrappers "
                    "around each system call; liburing's internal io_uring_enter calls count as "
                    "one per submit/submit-and-wait call\n");
    }
    return ok ? 0 : 1;
}
