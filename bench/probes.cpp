// bench/probes: what a round of TCP probes costs custos's check engine, per
// backend, against the naive way — one blocking connect per thread — in one
// run.
//
// Targets, loopback only: 8 listeners (backlog 4096) whose connections a
// helper thread accepts and closes (epoll + accept4), and a port that
// refuses (a socket bound there that never listens: the kernel answers RST).
// Per run, 1,000 probes to the listeners (spread over them) or 1,000 to the
// refused port, all started at once:
//   custos io_uring / epoll  a reactor forced to that backend (honour_env
//       off) and a probe::engine with 1,000 tcp probes per target set; every
//       check started with a 10 s deadline, then run_once() until every done
//       callback ran. The reactor is configured as custos's runtime does it
//       (64 submission queue entries: a full queue is flushed).
//   thread baseline  1,000 threads (64 KiB stacks), each socket + blocking
//       connect + close, created then joined.
// Configurations run interleaved, N times each (after one warm-up round that
// is not counted); figures are medians with [min .. max] over the runs:
//   probes/s per core  probes / CPU seconds the probing side used
//   wall ms            first start -> last result (baseline: first
//                      pthread_create -> last join)
//   syscalls/probe     system calls made by the probing side, per probe
//   CPU us/probe       CPU time of the probing side, per probe
// CPU: process CPU time (CLOCK_PROCESS_CPUTIME_ID) minus the acceptor
// thread's (pthread_getcpuclockid), so io_uring's kernel worker threads and
// the baseline's exited threads count, and the listeners' accept work does
// not. The loopback handshake itself runs in softirq context on the
// connecting thread and is charged to it, for every configuration alike.
// System calls: perf_event_open on the tracepoint raw_syscalls:sys_enter,
// for the probing thread (custos) or inherited by every thread it creates
// (baseline). Where perf is refused (not root, perf_event_paranoid, no
// tracefs, qemu-user) custos's figure is the reactor's own count
// (reactor_stats::syscalls: every system call it makes, which on the tcp
// path is every call the probe side makes) and the baseline's a stated lower
// bound from its code path; the output says which method was used.
// Ratios and targets (issue 4): io_uring's syscalls per probe <= 1/3 of
// epoll's; io_uring's probes/s per core >= epoll's; each backend's CPU per
// probe far below the thread baseline's (read here as < 1/2).
//
//   probes [--quick] [--runs=N] [--probes=N]
//   --quick  2 runs per configuration instead of 7 (qemu-user, cross builds)
//
// Exit status: 0; 1 when a probe's result was not the expected one (a
// listener probe that failed, a refused probe that did not fail with
// ProbeConnectRefused), when setup failed, or when the check engine
// allocated; a missed target never fails the run.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <custos/probe.hpp>

#include "common.hpp"
#include "core/arena.hpp"
#include "io/reactor.hpp"
#include "probe/check.hpp"

namespace {

using namespace custos;

constexpr int listener_count = 8;
constexpr int backlog = 4096;
constexpr std::size_t baseline_stack = 64 * 1024;
// The baseline's system calls per probe when perf is refused: what its code
// path makes at the least (clone3, rseq, set_robust_list, socket, connect,
// close, exit); stack mmap/mprotect, futex waits and join are left out.
constexpr double baseline_stated_syscalls = 7;

std::int64_t clock_ns(clockid_t c) noexcept {
    timespec ts{};
    clock_gettime(c, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void on_alarm(int) {
    static const char msg[] = "bench probes: no progress for 15 minutes, giving up\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(2);
}

// ---- loopback targets --------------------------------------------------------

struct targets {
    int listen_fd[listener_count] = {};
    std::uint16_t listen_port[listener_count] = {};
    int refused_fd = -1;
    std::uint16_t refused_port = 0;
    int stop_fd = -1;
    pthread_t acceptor{};
    clockid_t acceptor_clock{};
    std::atomic<std::uint64_t> accepted{0};
};

// A TCP socket bound to 127.0.0.1 on a port the kernel picks; its port.
int bind_loopback(std::uint16_t* port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

void* accept_loop(void* arg) {
    auto& t = *static_cast<targets*>(arg);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    for (int i = 0; i < listener_count; ++i) {
        ev.events = EPOLLIN;
        ev.data.fd = t.listen_fd[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, t.listen_fd[i], &ev);
    }
    ev.events = EPOLLIN;
    ev.data.fd = t.stop_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, t.stop_fd, &ev);
    for (;;) {
        epoll_event got[listener_count + 1];
        int n = epoll_wait(ep, got, listener_count + 1, -1);
        for (int k = 0; k < n; ++k) {
            if (got[k].data.fd == t.stop_fd) {
                close(ep);
                return nullptr;
            }
            for (int c; (c = accept4(got[k].data.fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
                close(c);
                t.accepted.fetch_add(1, std::memory_order_relaxed);
            }
        }
    }
}

bool start_targets(targets& t) {
    for (int i = 0; i < listener_count; ++i) {
        t.listen_fd[i] = bind_loopback(&t.listen_port[i]);
        if (t.listen_fd[i] < 0 || listen(t.listen_fd[i], backlog) != 0) {
            std::printf("listener: %s\n", std::strerror(errno));
            return false;
        }
    }
    t.refused_fd = bind_loopback(&t.refused_port); // bound, never listening: RST
    t.stop_fd = eventfd(0, EFD_CLOEXEC);
    if (t.refused_fd < 0 || t.stop_fd < 0 ||
        pthread_create(&t.acceptor, nullptr, &accept_loop, &t) != 0 ||
        pthread_getcpuclockid(t.acceptor, &t.acceptor_clock) != 0) {
        std::printf("targets: %s\n", std::strerror(errno));
        return false;
    }
    return true;
}

void stop_targets(targets& t) {
    std::uint64_t one = 1;
    if (write(t.stop_fd, &one, sizeof one) == sizeof one) {
        pthread_join(t.acceptor, nullptr);
    }
}

// CPU time of everything but the acceptor: the probing side. Not vDSO
// calls: take it outside the syscall-counting window.
std::int64_t probe_side_cpu_ns(const targets& t) noexcept {
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID) - clock_ns(t.acceptor_clock);
}

// ---- system call counting ----------------------------------------------------

// raw_syscalls:sys_enter counted by perf for the calling thread (and, with
// inherit, the threads it creates afterwards).
class syscall_counter {
public:
    ~syscall_counter() {
        if (fd_ >= 0) {
            close(fd_);
        }
    }
    // False, with why, when perf or the tracepoint is not available.
    bool open(bool inherit, char* why, std::size_t n) {
        unsigned long long id = 0;
        const char* paths[] = {"/sys/kernel/tracing/events/raw_syscalls/sys_enter/id",
                               "/sys/kernel/debug/tracing/events/raw_syscalls/sys_enter/id"};
        const char* found = nullptr;
        for (const char* p : paths) {
            if (std::FILE* f = std::fopen(p, "re")) {
                if (std::fscanf(f, "%llu", &id) == 1) {
                    found = p;
                }
                std::fclose(f);
            }
            if (found != nullptr) {
                break;
            }
        }
        if (found == nullptr) {
            std::snprintf(why, n,
                          "no raw_syscalls:sys_enter id under /sys/kernel/tracing or "
                          "/sys/kernel/debug/tracing (tracefs not mounted or not root)");
            return false;
        }
        perf_event_attr a{};
        a.size = sizeof a;
        a.type = PERF_TYPE_TRACEPOINT;
        a.config = id;
        a.disabled = 1;
        a.inherit = inherit ? 1 : 0;
        fd_ = static_cast<int>(syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
        if (fd_ < 0) {
            int e = errno;
            int paranoid = -9;
            if (std::FILE* f = std::fopen("/proc/sys/kernel/perf_event_paranoid", "re")) {
                if (std::fscanf(f, "%d", &paranoid) != 1) {
                    paranoid = -9;
                }
                std::fclose(f);
            }
            std::snprintf(why, n, "perf_event_open: %s (perf_event_paranoid %d)", std::strerror(e),
                          paranoid);
            return false;
        }
        tracepoint_id_ = id;
        // The calls that bracket a window count too (the disabling ioctl's
        // entry is seen before it takes effect): measure that once.
        start();
        stop();
        overhead_ = total() - base_;
        return true;
    }
    // Counts differences of the running total: PERF_EVENT_IOC_RESET does
    // not clear what exited inherited threads have added to it.
    void start() noexcept {
        base_ = total();
        ioctl(fd_, PERF_EVENT_IOC_ENABLE, 0);
    }
    // Also disables the counters of live threads that inherited it. The
    // counts of threads that have exited since are folded in by the time
    // they are gone from the thread group (see thread_group_settled()).
    void stop() noexcept { ioctl(fd_, PERF_EVENT_IOC_DISABLE, 0); }
    // System calls between start() and stop().
    std::uint64_t count() noexcept {
        std::uint64_t v = total() - base_;
        return v > overhead_ ? v - overhead_ : 0;
    }
    unsigned long long tracepoint_id() const noexcept { return tracepoint_id_; }
    std::uint64_t overhead() const noexcept { return overhead_; }

private:
    std::uint64_t total() noexcept {
        std::uint64_t v = 0;
        if (read(fd_, &v, sizeof v) != sizeof v) {
            v = 0;
        }
        return v;
    }

    std::uint64_t base_ = 0;
    int fd_ = -1;
    unsigned long long tracepoint_id_ = 0;
    std::uint64_t overhead_ = 0;
};

// ---- one measured run --------------------------------------------------------

struct figures {
    double wall_ms = 0;
    double cpu_us_per_probe = 0;
    double per_core = 0; // probes per CPU second
    double syscalls_per_probe = 0;
    double reactor_syscalls_per_probe = -1; // custos only: the reactor's own count
    unsigned unexpected = 0;
};

struct outcome {
    unsigned done = 0, passed = 0, refused = 0, other = 0;
    char first_other[200] = {};
};

// ---- custos side -------------------------------------------------------------

struct custos_side {
    const char* label = "";
    io::backend_choice choice = io::backend_choice::epoll;
    io::reactor r;
    custos::tbl::plan plan;
    arena mem;
    std::unique_ptr<probe::engine> e;
    bool usable = false;
    outcome out;
};

void on_check_done(probe::check& c) noexcept {
    auto& o = *static_cast<outcome*>(c.user);
    ++o.done;
    if (c.result.passed()) {
        ++o.passed;
    } else if (c.result.reason == Reason::probe_connect_refused) {
        ++o.refused;
    } else if (o.other++ == 0) {
        std::snprintf(o.first_other, sizeof o.first_other, "%s", c.result.message);
    }
}

// Reactor and engine with `specs` (probes 0..n-1: listeners, n..2n-1: refused).
bool setup_custos(custos_side& s, const std::vector<ProbeSpec>& specs, std::uint32_t probes) {
    io::reactor_config rc;
    rc.max_ops = rc.max_fds = 2 * probes + 64;
    rc.backend = s.choice;
    rc.honour_env = false;
    if (auto res = s.r.init(rc); !res) {
        char text[256];
        res.error().format(text, sizeof text);
        std::printf("%s: skipped, the kernel refuses it: %s\n", s.label, text);
        return false;
    }
    custos::Table table;
    table.probes = specs;
    table.runtime.max_probes = probes * 2;
    table.runtime.max_probe_checks = probes * 2;
    if (auto res = s.plan.build(table); !res) {
        char text[256];
        res.error().format(text, sizeof text);
        std::printf("%s: table refused: %s\n", s.label, text);
        return false;
    }
    s.e = std::make_unique<probe::engine>();
    auto first = s.e->init(s.r, s.plan, s.mem, nullptr, nullptr);
    if (first || first.error().reason() != Reason::out_of_memory ||
        !s.mem.reserve(s.mem.needed())) {
        std::printf("%s: engine sizing pass failed\n", s.label);
        return false;
    }
    s.e = std::make_unique<probe::engine>();
    if (auto res = s.e->init(s.r, s.plan, s.mem, nullptr, nullptr); !res) {
        char text[256];
        res.error().format(text, sizeof text);
        std::printf("%s: engine init failed: %s\n", s.label, text);
        return false;
    }
    for (std::size_t i = 0; i < specs.size(); ++i) {
        probe::check& c = s.e->root(static_cast<std::uint32_t>(i));
        c.done = &on_check_done;
        c.user = &s.out;
    }
    std::printf("%s: %s; IORING_OP_SOCKET: %s\n", s.label, s.r.backend_reason(),
                s.r.kind() != io::backend_kind::uring ? "n/a (epoll)"
                : s.r.native_socket()                 ? "yes (socket is an io_uring op)"
                                      : "no (kernel before 5.19: socket(2) inline)");
    return true;
}

figures run_custos(custos_side& s, const targets& t, syscall_counter* counter, std::uint32_t first,
                   std::uint32_t n, bool expect_pass, std::uint64_t* allocs) {
    s.out = outcome{};
    std::uint64_t reactor_calls0 = s.r.stats().syscalls;
    std::int64_t cpu0 = probe_side_cpu_ns(t);
    std::uint64_t a0 = bench::allocation_count();
    std::int64_t w0 = clock_ns(CLOCK_MONOTONIC);
    if (counter != nullptr) {
        counter->start();
    }
    mono_time deadline = s.r.now() + std::chrono::seconds(10);
    for (std::uint32_t i = 0; i < n; ++i) {
        s.e->start(s.e->root(first + i), deadline);
    }
    while (s.out.done < n) {
        s.r.run_once(true);
    }
    if (counter != nullptr) {
        counter->stop();
    }
    std::int64_t w1 = clock_ns(CLOCK_MONOTONIC);
    std::uint64_t calls = counter != nullptr ? counter->count() : 0;
    *allocs += bench::allocation_count() - a0;
    std::int64_t cpu1 = probe_side_cpu_ns(t);
    std::uint64_t reactor_calls = s.r.stats().syscalls - reactor_calls0;
    figures f;
    f.wall_ms = static_cast<double>(w1 - w0) / 1e6;
    double cpu_s = static_cast<double>(cpu1 - cpu0) / 1e9;
    f.cpu_us_per_probe = cpu_s * 1e6 / n;
    f.per_core = cpu_s > 0 ? n / cpu_s : 0;
    f.reactor_syscalls_per_probe = static_cast<double>(reactor_calls) / n;
    f.syscalls_per_probe =
        counter != nullptr ? static_cast<double>(calls) / n : f.reactor_syscalls_per_probe;
    f.unexpected = expect_pass ? n - s.out.passed : n - s.out.refused;
    if (f.unexpected != 0) {
        std::printf("  %s: %u of %u probes not %s (%u passed, %u refused, %u other: %s)\n", s.label,
                    f.unexpected, n, expect_pass ? "passed" : "refused", s.out.passed,
                    s.out.refused, s.out.other, s.out.first_other);
    }
    return f;
}

// ---- thread baseline -----------------------------------------------------------

// Threads in this process (/proc/self/stat num_threads); 0 when unreadable.
int thread_count() noexcept {
    char buf[1024];
    int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');
    int threads = 0;
    // After the comm: state, then fields 4..19, then num_threads (field 20).
    if (p == nullptr ||
        std::sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %d",
                    &threads) != 1) {
        return 0;
    }
    return threads;
}

struct naive_probe {
    sockaddr_in addr{};
    int err = -1;
};

void* naive_connect(void* arg) {
    auto& p = *static_cast<naive_probe*>(arg);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        p.err = errno;
        return nullptr;
    }
    p.err = connect(fd, reinterpret_cast<const sockaddr*>(&p.addr), sizeof p.addr) == 0 ? 0 : errno;
    close(fd);
    return nullptr;
}

figures run_baseline(const targets& t, syscall_counter* counter, std::uint32_t n, bool to_listeners,
                     std::vector<naive_probe>& probes, std::vector<pthread_t>& threads) {
    for (std::uint32_t i = 0; i < n; ++i) {
        naive_probe& p = probes[i];
        p.addr.sin_family = AF_INET;
        p.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        p.addr.sin_port = htons(to_listeners ? t.listen_port[i % listener_count] : t.refused_port);
        p.err = -1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, baseline_stack);
    int threads_before = thread_count();
    std::int64_t cpu0 = probe_side_cpu_ns(t);
    std::int64_t w0 = clock_ns(CLOCK_MONOTONIC);
    if (counter != nullptr) {
        counter->start();
    }
    std::uint32_t created = 0;
    int create_err = 0;
    for (; created < n; ++created) {
        create_err = pthread_create(&threads[created], &attr, &naive_connect, &probes[created]);
        if (create_err != 0) {
            break;
        }
    }
    for (std::uint32_t i = 0; i < created; ++i) {
        pthread_join(threads[i], nullptr);
    }
    if (counter != nullptr) {
        counter->stop();
    }
    std::int64_t w1 = clock_ns(CLOCK_MONOTONIC);
    // A join returns when the thread has cleared its tid, a little before
    // its exit is complete (its CPU time and syscall count added to ours).
    // Bounded: an emulated /proc (qemu-user) may never show the drop.
    for (std::int64_t give_up = w1 + 1'000'000'000;
         thread_count() > threads_before && clock_ns(CLOCK_MONOTONIC) < give_up;) {
        sched_yield();
    }
    std::uint64_t calls = counter != nullptr ? counter->count() : 0;
    std::int64_t cpu1 = probe_side_cpu_ns(t);
    pthread_attr_destroy(&attr);
    figures f;
    f.wall_ms = static_cast<double>(w1 - w0) / 1e6;
    double cpu_s = static_cast<double>(cpu1 - cpu0) / 1e9;
    f.cpu_us_per_probe = cpu_s * 1e6 / n;
    f.per_core = cpu_s > 0 ? n / cpu_s : 0;
    f.syscalls_per_probe =
        counter != nullptr ? static_cast<double>(calls) / n : baseline_stated_syscalls;
    unsigned first_bad = 0;
    for (std::uint32_t i = 0; i < n; ++i) {
        bool ok = i < created && probes[i].err == (to_listeners ? 0 : ECONNREFUSED);
        if (!ok && f.unexpected++ == 0) {
            first_bad = i;
        }
    }
    if (f.unexpected != 0) {
        std::printf("  thread baseline: %u of %u probes not %s (first: %s)\n", f.unexpected, n,
                    to_listeners ? "connected" : "refused",
                    first_bad >= created ? std::strerror(create_err)
                                         : std::strerror(probes[first_bad].err));
    }
    return f;
}

// ---- reporting ---------------------------------------------------------------

struct series {
    std::vector<figures> runs;
    bool measured() const { return !runs.empty(); }
    bench::summary of(double figures::*field) const {
        std::vector<double> v;
        for (const figures& f : runs) {
            v.push_back(f.*field);
        }
        return bench::summarize(v.data(), v.size());
    }
};

void print_row(const char* label, const series& s) {
    if (!s.measured()) {
        std::printf("  %-16s not measured\n", label);
        return;
    }
    bench::summary pc = s.of(&figures::per_core);
    bench::summary w = s.of(&figures::wall_ms);
    bench::summary sc = s.of(&figures::syscalls_per_probe);
    bench::summary cpu = s.of(&figures::cpu_us_per_probe);
    std::printf("  %-16s %8.0f [%6.0f .. %6.0f]  %7.1f [%6.1f .. %6.1f]  %6.2f [%5.2f .. %5.2f]  "
                "%6.1f [%5.1f .. %5.1f]\n",
                label, pc.median, pc.lo, pc.hi, w.median, w.lo, w.hi, sc.median, sc.lo, sc.hi,
                cpu.median, cpu.lo, cpu.hi);
}

void print_reactor_count(const char* label, const series& s) {
    if (s.measured() && s.runs[0].reactor_syscalls_per_probe >= 0) {
        bench::summary r = s.of(&figures::reactor_syscalls_per_probe);
        std::printf("  %-16s reactor's own count: %.2f syscalls/probe [%.2f .. %.2f]\n", label,
                    r.median, r.lo, r.hi);
    }
}

void print_target(const char* what, double value, bool met, const char* unit) {
    std::printf("  %-62s %7.3f%s  %s\n", what, value, unit, met ? "MET" : "NOT MET");
}

} // namespace

int main(int argc, char** argv) {
    bench::print_header("probes");
    unsigned runs = bench::has_flag(argc, argv, "--quick") ? 2 : 7;
    if (const char* v = bench::flag_value(argc, argv, "--runs"); v != nullptr) {
        runs = static_cast<unsigned>(std::atoi(v));
        runs = runs == 0 ? 1 : runs;
    }
    std::uint32_t n = 1000;
    if (const char* v = bench::flag_value(argc, argv, "--probes"); v != nullptr) {
        n = static_cast<std::uint32_t>(std::atoi(v));
        n = n == 0 ? 1 : n;
    }
    std::signal(SIGALRM, on_alarm);
    alarm(900);

    // Every probe holds a socket, and so may the acceptor's side of it.
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    rlim_t want = 2 * static_cast<rlim_t>(n) + 256;
    if (nofile.rlim_cur < want) {
        nofile.rlim_cur = nofile.rlim_max < want ? nofile.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur < want) {
        std::printf("RLIMIT_NOFILE %llu < %llu needed: raise it (ulimit -n)\n",
                    static_cast<unsigned long long>(nofile.rlim_cur),
                    static_cast<unsigned long long>(want));
        return 1;
    }

    targets t;
    if (!start_targets(t)) {
        return 1;
    }
    std::printf("%u probes per run, %u runs per configuration (interleaved, after one warm-up "
                "round); %d listeners on 127.0.0.1 (backlog %d, accepted and closed by a helper "
                "thread whose CPU is excluded); refused: 127.0.0.1:%u (bound, not listening)\n",
                n, runs, listener_count, backlog, t.refused_port);

    // The specs: n to the listeners (round robin), n to the refused port.
    std::vector<std::string> names, addrs;
    names.reserve(2 * n);
    addrs.reserve(2 * n);
    std::vector<ProbeSpec> specs(2 * n);
    for (std::uint32_t i = 0; i < 2 * n; ++i) {
        char text[64];
        std::snprintf(text, sizeof text, "p%u", i);
        names.emplace_back(text);
        std::snprintf(text, sizeof text, "127.0.0.1:%u",
                      i < n ? t.listen_port[i % listener_count] : t.refused_port);
        addrs.emplace_back(text);
        specs[i].name = names.back();
        specs[i].kind = ProbeKind::tcp;
        specs[i].target = addrs.back();
    }

    char why[256] = "";
    syscall_counter thread_counter, inherit_counter;
    bool perf =
        thread_counter.open(false, why, sizeof why) && inherit_counter.open(true, why, sizeof why);
    if (perf) {
        std::printf("system calls: counted by perf_event_open, tracepoint raw_syscalls:sys_enter "
                    "(id %llu): custos's probing thread; the baseline's thread and every thread "
                    "it creates (inherit); window overhead %llu call(s), subtracted\n",
                    thread_counter.tracepoint_id(),
                    static_cast<unsigned long long>(thread_counter.overhead()));
    } else {
        std::printf("system calls: perf refused (%s): custos's figure is the reactor's own "
                    "count (every system call it makes); the baseline's is a stated lower bound "
                    "of %.0f per probe from its code path (clone3, rseq, set_robust_list, socket, "
                    "connect, close, exit), not measured\n",
                    why, baseline_stated_syscalls);
    }
    syscall_counter* tc = perf ? &thread_counter : nullptr;
    syscall_counter* ic = perf ? &inherit_counter : nullptr;

    custos_side uring, epoll;
    uring.label = "custos io_uring";
    uring.choice = io::backend_choice::uring;
    epoll.label = "custos epoll";
    epoll.choice = io::backend_choice::epoll;
    uring.usable = setup_custos(uring, specs, n);
    epoll.usable = setup_custos(epoll, specs, n);
    if (!epoll.usable) {
        return 1;
    }
    std::printf("thread baseline: %u threads, %zu KiB stacks, each socket + blocking connect + "
                "close; created, then joined\n",
                n, baseline_stack / 1024);
    std::fflush(stdout);

    std::vector<naive_probe> naive(n);
    std::vector<pthread_t> threads(n);
    series s_uring[2], s_epoll[2], s_base[2]; // [0] listeners, [1] refused
    std::uint64_t allocs = 0;
    unsigned unexpected = 0;
    for (unsigned run = 0; run <= runs; ++run) {
        bool counted = run > 0; // run 0 is the warm-up
        for (int set = 0; set < 2; ++set) {
            bool listeners = set == 0;
            std::uint32_t first = listeners ? 0 : n;
            if (uring.usable) {
                figures f = run_custos(uring, t, tc, first, n, listeners, &allocs);
                unexpected += f.unexpected;
                if (counted) {
                    s_uring[set].runs.push_back(f);
                }
            }
            figures f = run_custos(epoll, t, tc, first, n, listeners, &allocs);
            unexpected += f.unexpected;
            if (counted) {
                s_epoll[set].runs.push_back(f);
            }
            f = run_baseline(t, ic, n, listeners, naive, threads);
            unexpected += f.unexpected;
            if (counted) {
                s_base[set].runs.push_back(f);
            }
        }
    }
    alarm(0);
    stop_targets(t);

    const char* set_name[2] = {"listeners: connect succeeds", "refused port: ECONNREFUSED"};
    for (int set = 0; set < 2; ++set) {
        std::printf("\n%s (%u probes; median [min .. max] of %u runs)\n", set_name[set], n, runs);
        std::printf("  %-16s %-27s  %-26s  %-23s  %s\n", "", "probes/s per core", "wall ms",
                    "syscalls/probe", "CPU us/probe");
        print_row("custos io_uring", s_uring[set]);
        print_row("custos epoll", s_epoll[set]);
        print_row("thread baseline", s_base[set]);
        if (perf) {
            print_reactor_count("custos io_uring", s_uring[set]);
            print_reactor_count("custos epoll", s_epoll[set]);
        }
    }

    std::printf("\nratios and targets (medians)\n");
    for (int set = 0; set < 2; ++set) {
        const char* tag = set == 0 ? "listeners" : "refused";
        double base_cpu = s_base[set].of(&figures::cpu_us_per_probe).median;
        double ep_cpu = s_epoll[set].of(&figures::cpu_us_per_probe).median;
        char what[96];
        if (s_uring[set].measured()) {
            double u_sc = s_uring[set].of(&figures::syscalls_per_probe).median;
            double e_sc = s_epoll[set].of(&figures::syscalls_per_probe).median;
            double ratio = e_sc > 0 ? u_sc / e_sc : 0;
            std::snprintf(what, sizeof what, "%s: io_uring syscalls/probe / epoll's <= 1/3", tag);
            print_target(what, ratio, e_sc > 0 && ratio <= 1.0 / 3.0, "x");
            double u_pc = s_uring[set].of(&figures::per_core).median;
            double e_pc = s_epoll[set].of(&figures::per_core).median;
            ratio = e_pc > 0 ? u_pc / e_pc : 0;
            std::snprintf(what, sizeof what, "%s: io_uring probes/s per core / epoll's >= 1", tag);
            print_target(what, ratio, ratio >= 1.0, "x");
            double u_w = s_uring[set].of(&figures::wall_ms).median;
            double e_w = s_epoll[set].of(&figures::wall_ms).median;
            std::printf("  %-62s %7.3fx  (information)\n",
                        set == 0 ? "listeners: io_uring wall time / epoll's"
                                 : "refused: io_uring wall time / epoll's",
                        e_w > 0 ? u_w / e_w : 0);
            double u_cpu = s_uring[set].of(&figures::cpu_us_per_probe).median;
            ratio = base_cpu > 0 ? u_cpu / base_cpu : 0;
            std::snprintf(what, sizeof what, "%s: io_uring CPU/probe / thread baseline's < 1/2",
                          tag);
            print_target(what, ratio, base_cpu > 0 && ratio < 0.5, "x");
        } else {
            std::printf("  %s: io_uring targets NOT MEASURED (io_uring refused)\n", tag);
        }
        double ratio = base_cpu > 0 ? ep_cpu / base_cpu : 0;
        std::snprintf(what, sizeof what, "%s: epoll CPU/probe / thread baseline's < 1/2", tag);
        print_target(what, ratio, base_cpu > 0 && ratio < 0.5, "x");
    }
    if (!perf) {
        std::printf("  (syscall ratios from the reactor's own count; the baseline's syscalls are "
                    "stated, not measured)\n");
    }
    std::printf("\nallocations by the check engine and reactor during the runs: %llu\n",
                static_cast<unsigned long long>(allocs));
    std::printf("listener connections accepted by the helper thread: %llu\n",
                static_cast<unsigned long long>(t.accepted.load()));
    if (unexpected != 0) {
        std::printf("FAIL: %u probe results were not the expected ones\n", unexpected);
    }
    return unexpected == 0 && allocs == 0 ? 0 : 1;
}
