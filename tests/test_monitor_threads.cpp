// Monitors on real threads with a real reactor (monitor_world.hpp): a
// crashing monitor restarted on its reused thread, a wedged monitor
// detected within its deadline plus a tolerance (never before it), the
// overlay and ticks through the slot, and the runtime stop with one
// monitor that ignores it (reported, abandoned, the pool destroyed without
// hanging). Run once per backend (CUSTOS_BACKEND); clean under TSan.
//
// Timing: only lower bounds are exact (nothing is declared early); upper
// bounds are generous, plus CUSTOS_TEST_TOLERANCE_MS on slow runs.
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "backend_probe.hpp"
#include "monitor_world.hpp"

using custos::Error;
using custos::MonitorContext;
using custos::MonitorSpec;
using custos::MonitorState;
using custos::Reason;
using custos::Result;
using custos_test::monitor_world;
using namespace std::chrono_literals;

namespace {

std::int64_t tolerance_ms() {
    const char* env = std::getenv("CUSTOS_TEST_TOLERANCE_MS");
    return env != nullptr ? std::atoi(env) : 0;
}

MonitorSpec spec(std::string_view name, custos::MonitorFn fn, void* arg = nullptr) {
    MonitorSpec s;
    s.name = name;
    s.run = fn;
    s.arg = arg;
    s.backoff_jitter_percent = 0;
    return s;
}

// --- run functions ---

struct crash_state {
    std::atomic<std::uint32_t> runs{0};
    std::atomic<std::uint32_t> last_run_number{0};
    std::atomic<int> tid{0};
    std::atomic<bool> same_thread{true};
};

Result<void> crasher(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<crash_state*>(arg);
    s.runs.fetch_add(1);
    s.last_run_number.store(ctx.run_number());
    int tid = static_cast<int>(::gettid());
    int seen = 0;
    if (!s.tid.compare_exchange_strong(seen, tid) && seen != tid) {
        s.same_thread.store(false);
    }
    ctx.beat();
    ctx.tick(Error(Reason::probe_timeout, 0, "upstream"));
    return custos::fail(Reason::probe_connect_refused, 111, "broker:1883");
}

struct wedge_state {
    std::atomic<std::int64_t> last_beat_ns{0};
    std::atomic<bool> wedged{false};
};

// Beats for 300 ms, then blocks in poll() on its stop descriptor: alive,
// but wedged. Returns when asked to stop.
Result<void> wedger(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<wedge_state*>(arg);
    const auto until = custos::mono_clock::now() + 300ms;
    std::uint64_t n = 0;
    while (custos::mono_clock::now() < until) {
        ctx.beat(++n);
        s.last_beat_ns.store(custos::to_ns(custos::mono_clock::now()));
        if (!ctx.wait_for(10ms)) {
            return {};
        }
    }
    s.wedged.store(true);
    pollfd p{ctx.stop_fd(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0) {
    }
    return {};
}

// A well-behaved loop: beats, ticks, sets and clears its overlay, returns
// when asked to stop.
Result<void> good(MonitorContext& ctx, void*) {
    std::uint32_t i = 0;
    while (ctx.wait_for(5ms)) {
        ctx.beat();
        ++i;
        if (i % 20 == 5) {
            ctx.set_degraded(Error(Reason::probe_http_status, 0, "503"));
        }
        if (i % 20 == 15) {
            ctx.clear_degraded();
        }
        if (i % 3 == 0) {
            ctx.tick(Error(Reason::probe_timeout, 0, "slow"));
        } else {
            ctx.tick();
        }
    }
    return {};
}

std::atomic<bool> release_stubborn{false};
std::atomic<bool> stubborn_returned{false};

// Ignores the stop until the test releases it.
Result<void> stubborn(MonitorContext& ctx, void*) {
    while (!release_stubborn.load()) {
        ctx.beat();
        ::usleep(1000);
    }
    stubborn_returned.store(true);
    return {};
}

} // namespace

TEST_CASE("a crashing monitor is restarted with backoff, on the same reused thread") {
    crash_state cs;
    MonitorSpec specs[] = {spec("crasher", &crasher, &cs)};
    specs[0].backoff_initial = 20ms;
    specs[0].backoff_max = 40ms;
    specs[0].degraded_every = 3;
    monitor_world w;
    REQUIRE(w.init(specs));
    w.machine.start();
    bool ok = w.run_until(
        [](monitor_world& x) { return x.counted(0, Reason::monitor_crashed) >= 6; }, 20s);
    REQUIRE(ok);
    CHECK(cs.runs.load() >= 6);
    CHECK(cs.same_thread.load());
    CHECK(cs.last_run_number.load() == w.machine.at(0).runs);
    CHECK(w.counted(0, Reason::monitor_crash_loop) >= 2);
    const custos_test::mon_rec* c = w.first(0, Reason::monitor_crashed);
    REQUIRE(c != nullptr);
    CHECK(std::string_view(c->detail) == "ProbeConnectRefused: broker:1883");
    custos::MonitorStatus st = w.machine.status(0);
    CHECK(st.last_crash.reason == Reason::probe_connect_refused);
    CHECK(st.ticks >= 6);
    CHECK(st.consecutive_failures >= 6);
    CHECK(st.last_failure.message == "upstream");
    CHECK(st.beats >= 6);
    w.machine.stop_all(2s);
    REQUIRE(w.run_until([](monitor_world& x) { return x.stopped; }, 10s));
    CHECK(w.machine.at(0).state == MonitorState::stopped);
}

TEST_CASE("a wedged monitor is detected within its deadline plus the tolerance, never before") {
    wedge_state ws;
    MonitorSpec specs[] = {spec("wedger", &wedger, &ws)};
    specs[0].deadline = 400ms;
    monitor_world w;
    REQUIRE(w.init(specs));
    w.machine.start();
    REQUIRE(w.run_until(
        [](monitor_world& x) { return x.machine.at(0).state == MonitorState::wedged; }, 20s));
    const custos_test::mon_rec* sus = w.first(0, Reason::monitor_wedge_suspected);
    const custos_test::mon_rec* wed = w.first(0, Reason::monitor_wedged);
    REQUIRE(sus != nullptr);
    REQUIRE(wed != nullptr);
    CHECK(ws.wedged.load());
    const std::int64_t last = ws.last_beat_ns.load();
    // Never early: at least half the deadline, and the deadline, after the
    // last beat.
    CHECK(sus->at_ns - last >= 200'000'000);
    CHECK(wed->at_ns - last >= 400'000'000);
    // Within the deadline plus one check period (deadline / 4), its slack
    // and a generous tolerance.
    const std::int64_t bound_ms = 400 + 100 + 13 + 500 + tolerance_ms();
    CHECK((wed->at_ns - last) / 1'000'000 <= bound_ms);
    std::string_view ev(wed->detail);
    INFO(ev);
    CHECK(ev.find("no progress for") == 0);
    CHECK(ev.find("tid ") != std::string_view::npos);
    CHECK(ev.find("state S") != std::string_view::npos); // asleep in poll()
    CHECK(w.machine.status(0).progress > 0);
    CHECK(w.wedge_exits == 0);
    // The stop reaches it through its stop descriptor.
    w.machine.stop_all(5s);
    REQUIRE(w.run_until([](monitor_world& x) { return x.stopped; }, 10s));
    CHECK(w.machine.at(0).state == MonitorState::stopped);
    CHECK(w.counted(0, Reason::stop_timeout) == 0);
}

TEST_CASE("overlay and ticks from a real thread reach the machine") {
    MonitorSpec specs[] = {spec("good", &good)};
    specs[0].deadline = 1s;
    specs[0].heartbeat_interval = 50ms;
    monitor_world w;
    REQUIRE(w.init(specs));
    w.machine.start();
    REQUIRE(w.run_until(
        [](monitor_world& x) {
            return x.counted(0, Reason::monitor_degraded_cleared) >= 2 &&
                   x.counted(0, Reason::monitor_heartbeat) >= 3;
        },
        20s));
    CHECK(w.counted(0, Reason::probe_http_status) >= 2);
    CHECK(w.counted(0, Reason::monitor_wedged) == 0);
    custos::MonitorStatus st = w.machine.status(0);
    CHECK(st.ticks > 0);
    CHECK(st.tick_failures > 0);
    CHECK(st.last_success_ns > 0);
    w.machine.stop_all(2s);
    REQUIRE(w.run_until([](monitor_world& x) { return x.stopped; }, 10s));
}

TEST_CASE("stop: reverse order, the budget shared; one ignoring the stop is reported and "
          "abandoned, the others still stop; the pool's destruction does not hang") {
    release_stubborn.store(false);
    stubborn_returned.store(false);
    MonitorSpec specs[] = {spec("first", &good), spec("stubborn", &stubborn), spec("third", &good)};
    {
        monitor_world w;
        REQUIRE(w.init(specs));
        w.machine.start();
        REQUIRE(w.run_until([](monitor_world& x) { return x.count >= 3; }, 5s));
        const auto t0 = std::chrono::steady_clock::now();
        w.machine.stop_all(900ms);
        REQUIRE(w.run_until([](monitor_world& x) { return x.stopped; }, 20s));
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK(w.counted(1, Reason::stop_timeout) == 1);
        CHECK(w.counted(0, Reason::stop_timeout) == 0);
        CHECK(w.counted(2, Reason::stop_timeout) == 0);
        CHECK(w.machine.at(0).state == MonitorState::stopped);
        CHECK(w.machine.at(2).state == MonitorState::stopped);
        CHECK(w.machine.at(1).state == MonitorState::stopping);
        // third was asked first, then stubborn, then first.
        std::uint32_t order[3] = {};
        std::uint32_t k = 0;
        for (std::uint32_t i = 0; i < w.count && k < 3; ++i) {
            if (w.recs[i].to == MonitorState::stopping && w.recs[i].from != w.recs[i].to) {
                order[k++] = w.recs[i].monitor;
            }
        }
        CHECK(order[0] == 2);
        CHECK(order[1] == 1);
        CHECK(order[2] == 0);
        // The budget bounds the whole stop (plus a generous tolerance).
        CHECK(took < std::chrono::milliseconds(900 + 2000 + tolerance_ms()));
        CHECK(!stubborn_returned.load());
        // w goes out of scope with stubborn still inside its run.
    }
    // Released after its pool is gone: it returns, finds itself abandoned
    // and ends, touching only its (deliberately leaked) slot.
    release_stubborn.store(true);
    for (int i = 0; i < 5000 && !stubborn_returned.load(); ++i) {
        ::usleep(1000);
    }
    CHECK(stubborn_returned.load());
    ::usleep(20'000); // let the thread finish leaving
}

TEST_CASE("pool: at most max_monitors; the smallest stack runs; none at all is fine") {
    custos::io::reactor r;
    REQUIRE(r.init().has_value());
    static MonitorSpec many[custos::mon::max_monitors + 1];
    for (MonitorSpec& s : many) {
        s.name = "m";
    }
    {
        custos::mon::pool p;
        auto res = p.init(many, r, nullptr, nullptr, nullptr);
        REQUIRE(!res.has_value());
        CHECK(res.error().reason() == Reason::capacity_exceeded);
    }
    {
        custos::mon::pool p;
        CHECK(p.init({}, r, nullptr, nullptr, nullptr).has_value());
        CHECK(p.size() == 0);
    }
    crash_state cs;
    MonitorSpec specs[] = {spec("small", &crasher, &cs)};
    specs[0].stack_size = 1; // raised to the minimum
    monitor_world w;
    REQUIRE(w.init(specs));
    w.machine.start();
    REQUIRE(w.run_until([](monitor_world& x) { return x.counted(0, Reason::monitor_crashed) >= 1; },
                        10s));
    CHECK(w.pool.thread_id(0) > 0);
    CHECK(w.pool.notices_refused() == 0);
    w.machine.stop_all(1s);
    REQUIRE(w.run_until([](monitor_world& x) { return x.stopped; }, 10s));
}

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
