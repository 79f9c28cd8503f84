// bench/monitor_wakeups: do the reactor's wake-ups follow the wedge checks
// or the beats?
//
// 64 monitors on their own threads (the real pool and machine on a real
// reactor), each beating every 100 ms with a 5 s deadline, for S seconds.
// Counted: the reactor's blocking waits that returned (reactor_stats
// wakeups) and its system calls over the window. Expected: about one wedge
// check per monitor per deadline / 4, coalesced by their slack, and nothing
// per beat. Baseline, in the same run: the same 64 threads telling the
// reactor about each beat through a mailbox (one post per beat, the design
// a beat() that wakes the reactor would have).
//
//   --quick       S = 10 (emulators)
//   --seconds=N   S = N
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <custos/monitor.hpp>

#include "common.hpp"
#include "core/arena.hpp"
#include "io/mailbox.hpp"
#include "io/reactor.hpp"
#include "monitor/machine.hpp"
#include "monitor/pool.hpp"

namespace {

using namespace std::chrono_literals;
constexpr std::uint32_t monitors = 64;

custos::Result<void> beater(custos::MonitorContext& ctx, void*) {
    std::uint64_t n = 0;
    while (ctx.wait_for(100ms)) {
        ctx.beat(++n);
    }
    return {};
}

class bench_host final : public custos::mon::host {
public:
    custos::io::reactor r;
    custos::mon::pool pool;
    custos::mon::machine m{*this};
    std::uint32_t reports = 0;
    bool stopped = false;

    custos::mono_time now() noexcept override { return r.now(); }
    void arm(custos::io::timer& t, custos::mono_time d, custos::nanos slack) noexcept override {
        r.arm(t, d, slack);
    }
    void cancel(custos::io::timer& t) noexcept override { r.cancel(t); }
    bool deps_ready(std::uint32_t) noexcept override { return true; }
    void launch(std::uint32_t i, std::uint32_t run) noexcept override { pool.launch(i, run); }
    void request_stop(std::uint32_t i) noexcept override { pool.request_stop(i); }
    void sample(std::uint32_t i, custos::mon::sample& out) noexcept override {
        pool.sample(i, out);
    }
    std::size_t evidence(std::uint32_t i, char* buf, std::size_t len) noexcept override {
        return pool.evidence(i, buf, len);
    }
    void transition(const custos::MonitorTransition&) noexcept override { ++reports; }
    void wedge_exit(std::uint32_t) noexcept override {}
    void all_stopped() noexcept override { stopped = true; }

    static void on_result(void* ctx, std::uint32_t i, const custos::Result<void>& res) noexcept {
        static_cast<bench_host*>(ctx)->m.on_returned(i, res);
    }
    static void on_notice(void* ctx, std::uint32_t i) noexcept {
        static_cast<bench_host*>(ctx)->m.on_notice(i);
    }
};

struct window {
    std::uint64_t wakeups = 0;
    std::uint64_t syscalls = 0;
    std::uint64_t beats = 0;
};

void run_for(custos::io::reactor& r, custos::nanos d) {
    custos::io::timer end(
        [](custos::io::timer& t) { static_cast<custos::io::reactor*>(t.user)->stop(); }, &r);
    r.arm(end, r.now() + d);
    r.run();
}

bool measure_monitors(std::int64_t seconds, window& out) {
    static bench_host h;
    static custos::MonitorSpec specs[monitors];
    static char names[monitors][8];
    if (!h.r.init()) {
        return false;
    }
    for (std::uint32_t i = 0; i < monitors; ++i) {
        std::snprintf(names[i], sizeof names[i], "m%u", i);
        specs[i].name = names[i];
        specs[i].run = &beater;
        specs[i].deadline = 5s;
    }
    custos::arena mem;
    (void)h.m.init(specs, mem, 1);
    if (!mem.reserve(mem.needed()) || !h.m.init(specs, mem, 1)) {
        return false;
    }
    if (!h.pool.init(specs, h.r, &bench_host::on_result, &bench_host::on_notice, &h)) {
        return false;
    }
    h.m.start();
    run_for(h.r, 1s); // let the threads settle into their loops
    const custos::io::reactor_stats a = h.r.stats();
    run_for(h.r, std::chrono::seconds(seconds));
    const custos::io::reactor_stats b = h.r.stats();
    out.wakeups = b.wakeups - a.wakeups;
    out.syscalls = b.syscalls - a.syscalls;
    for (std::uint32_t i = 0; i < monitors; ++i) {
        out.beats += h.m.status(i).beats;
    }
    h.m.stop_all(5s);
    while (!h.stopped) {
        h.r.run_once(true);
    }
    return true;
}

// The baseline: one mailbox post per beat.
struct beat_msg {
    std::uint32_t monitor;
};

bool measure_mailbox(std::int64_t seconds, window& out) {
    static custos::io::reactor r;
    static custos::io::mailbox<beat_msg, 256> box;
    static std::uint64_t received = 0;
    if (!r.init()) {
        return false;
    }
    if (!box.attach(
            r, [](void*, const beat_msg&) { ++received; }, nullptr)) {
        return false;
    }
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    ts.reserve(monitors);
    for (std::uint32_t i = 0; i < monitors; ++i) {
        ts.emplace_back([&stop, i] {
            while (!stop.load(std::memory_order_relaxed)) {
                std::this_thread::sleep_for(100ms);
                (void)box.try_post(beat_msg{i});
            }
        });
    }
    run_for(r, 1s);
    const custos::io::reactor_stats a = r.stats();
    const std::uint64_t before = received;
    run_for(r, std::chrono::seconds(seconds));
    const custos::io::reactor_stats b = r.stats();
    out.wakeups = b.wakeups - a.wakeups;
    out.syscalls = b.syscalls - a.syscalls;
    out.beats = received - before;
    stop.store(true);
    for (auto& t : ts) {
        t.join();
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = custos::bench::has_flag(argc, argv, "--quick");
    std::int64_t seconds = quick ? 10 : 30;
    if (const char* v = custos::bench::flag_value(argc, argv, "--seconds")) {
        seconds = std::atoll(v);
    }
    custos::bench::print_header("monitor_wakeups");
    std::printf("%u monitors beating every 100 ms, deadline 5 s (checks every 1.25 s, slack "
                "156 ms), over %lld s%s; baseline: one mailbox post per beat\n",
                monitors, static_cast<long long>(seconds), quick ? " (--quick)" : "");
    std::fflush(stdout);
    window mon;
    window base;
    if (!measure_monitors(seconds, mon) || !measure_mailbox(seconds, base)) {
        std::printf("setup failed\n");
        return 1;
    }
    const double checks = static_cast<double>(monitors) * static_cast<double>(seconds) / 1.25;
    std::printf("  monitors: %llu wake-ups, %llu system calls, %llu beats (%.0f wedge checks "
                "due)\n",
                static_cast<unsigned long long>(mon.wakeups),
                static_cast<unsigned long long>(mon.syscalls),
                static_cast<unsigned long long>(mon.beats), checks);
    std::printf("  baseline: %llu wake-ups, %llu system calls, %llu posts\n",
                static_cast<unsigned long long>(base.wakeups),
                static_cast<unsigned long long>(base.syscalls),
                static_cast<unsigned long long>(base.beats));
    const double ratio =
        mon.wakeups != 0 ? static_cast<double>(base.wakeups) / static_cast<double>(mon.wakeups) : 0;
    std::printf(
        "result: %.2f wake-ups per beat (baseline %.2f), %.1fx fewer wake-ups; target "
        "met: %s (wake-ups <= wedge checks due)\n",
        mon.beats != 0 ? static_cast<double>(mon.wakeups) / static_cast<double>(mon.beats) : 0,
        base.beats != 0 ? static_cast<double>(base.wakeups) / static_cast<double>(base.beats) : 0,
        ratio, static_cast<double>(mon.wakeups) <= checks ? "yes" : "no");
    return 0;
}
