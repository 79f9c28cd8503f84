// No allocation after start() with monitors running: the whole malloc family
// is replaced by the counting allocator (counting_alloc.cpp), then real
// monitor threads beat, tick, set and clear their overlay, crash and are
// relaunched on their reused threads, one wedges (so the reactor reads
// /proc for the evidence), heartbeats are reported, and the runtime stop
// ends it; the count must not move from start() to the end of the stop.
//
// Not doctest (it allocates as it reports). Exit 0 pass, 1 fail, 77 skip
// (the requested backend is unavailable here).
#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include "backend_probe.hpp"
#include "counting_alloc.hpp"
#include "monitor_world.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

Result<void> busy(MonitorContext& ctx, void*) {
    std::uint32_t i = 0;
    while (ctx.wait_for(2ms)) {
        ctx.beat(++i / 2);
        if (i % 10 == 3) {
            ctx.set_degraded(Error(Reason::probe_http_status, 0, "503 from upstream"));
        }
        if (i % 10 == 8) {
            ctx.clear_degraded();
        }
        ctx.tick(i % 4 == 0 ? Result<void>(fail(Reason::probe_timeout, 0, "slow"))
                            : Result<void>{});
    }
    return {};
}

Result<void> crashy(MonitorContext& ctx, void*) {
    for (int i = 0; i < 3; ++i) {
        ctx.beat();
        if (!ctx.wait_for(1ms)) {
            return {};
        }
    }
    return fail(Reason::probe_connect_refused, 111, "broker:1883");
}

Result<void> wedging(MonitorContext& ctx, void*) {
    ctx.beat();
    pollfd p{ctx.stop_fd(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0) {
    }
    return {};
}

} // namespace

int main() {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    MonitorSpec specs[4];
    specs[0].name = "busy";
    specs[0].run = &busy;
    specs[0].heartbeat_interval = 20ms;
    specs[0].deadline = 500ms;
    specs[1].name = "busy2";
    specs[1].run = &busy;
    specs[1].deadline = 500ms;
    specs[2].name = "crashy";
    specs[2].run = &crashy;
    specs[2].backoff_initial = 5ms;
    specs[2].backoff_max = 10ms;
    specs[2].degraded_every = 2;
    specs[3].name = "wedging";
    specs[3].run = &wedging;
    specs[3].deadline = 100ms;
    static custos_test::monitor_world w;
    if (!w.init(specs)) {
        std::printf("init failed\n");
        return 1;
    }
    std::printf("monitors: 4 threads started\n");
    std::fflush(stdout);

    const std::uint64_t before = custos_test::allocation_count();
    w.machine.start();
    bool ran = w.run_until(
        [](custos_test::monitor_world& x) {
            return x.counted(2, Reason::monitor_crashed) >= 20 &&
                   x.counted(0, Reason::monitor_heartbeat) >= 10 &&
                   x.counted(0, Reason::monitor_degraded_cleared) >= 5 &&
                   x.counted(3, Reason::monitor_wedged) >= 1;
        },
        60s);
    for (std::uint32_t i = 0; i < 4; ++i) {
        (void)w.machine.status(i);
    }
    w.machine.stop_all(5s);
    bool stopped = w.run_until([](custos_test::monitor_world& x) { return x.stopped; }, 20s);
    const std::uint64_t after = custos_test::allocation_count();

    std::printf("ran: %s, stopped: %s, transitions: %u, crashes: %u, heartbeats: %u\n",
                ran ? "yes" : "no", stopped ? "yes" : "no", w.count,
                w.counted(2, Reason::monitor_crashed), w.counted(0, Reason::monitor_heartbeat));
    if (!ran || !stopped) {
        std::printf("FAIL: the scenario did not complete\n");
        return 1;
    }
    if (after != before) {
        std::printf("FAIL: %llu allocations after start()\n",
                    static_cast<unsigned long long>(after - before));
        return 1;
    }
    std::printf("PASS: no allocation after start()\n");
    return 0;
}
