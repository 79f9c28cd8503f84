// The monitor machine (src/monitor/machine.*) against a fake clock and fake
// slots: backoff and its reset after a stable run, the crash-loop reports,
// heartbeats, wedge detection at half and the whole deadline, progress
// tokens, clean exits, dependency gating and on_dependency_down, the
// overlay, and the runtime stop's budget split. Nothing sleeps, no thread
// runs: the test plays the monitors' threads by writing their fake slots
// and returning their runs.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <custos/monitor.hpp>

#include "core/arena.hpp"
#include "core/timer_wheel.hpp"
#include "io/reactor.hpp"
#include "monitor/machine.hpp"
#include "monitor/slot.hpp"

using custos::Error;
using custos::MonitorSpec;
using custos::MonitorState;
using custos::Reason;
using namespace std::chrono_literals;

namespace doctest {
template <>
struct StringMaker<custos::MonitorState> {
    static String convert(custos::MonitorState s) {
        std::string_view n = custos::monitor_state_name(s);
        return String(n.data(), static_cast<String::size_type>(n.size()));
    }
};
template <>
struct StringMaker<custos::Reason> {
    static String convert(custos::Reason r) {
        std::string_view n = custos::reason_id(r);
        return String(n.data(), static_cast<String::size_type>(n.size()));
    }
};
} // namespace doctest

namespace {

struct rec {
    std::uint32_t monitor = 0;
    MonitorState from = MonitorState::stopped;
    MonitorState to = MonitorState::stopped;
    Reason reason = Reason::unknown;
    std::int64_t at_ms = 0;
    std::uint32_t crashes = 0;
    std::int64_t delay_ms = 0;
    std::uint64_t progress = 0;
    std::string detail;
    std::string resolution;
};

// A fake world: a 1 ms wheel that moves only in advance(), fake slots the
// test writes, and runs that end when the test says (or, once asked to
// stop, after a scripted delay; never, for one that ignores the stop).
class fake_world final : public custos::mon::host {
public:
    static constexpr std::int64_t tick_ns = 1'000'000;
    static constexpr std::int64_t start_ns = 1'000'000'000'000;
    static constexpr std::uint32_t max = 8;

    fake_world() : wheel_(static_cast<std::uint64_t>(start_ns / tick_ns)) {
        for (std::uint32_t i = 0; i < max; ++i) {
            slots_[i].returner.fire = &fake_world::fire_return;
            slots_[i].returner.user = &slots_[i];
            slots_[i].world = this;
            slots_[i].index = i;
        }
    }

    custos::mon::machine* m = nullptr;

    // --- mon::host ---
    custos::mono_time now() noexcept override { return custos::from_ns(now_ns_); }
    void arm(custos::io::timer& t, custos::mono_time deadline,
             custos::nanos slack) noexcept override {
        // Slack is ignored: timers fire at their deadline, rounded up to a
        // tick as the reactor does (nothing fires early).
        slacks.push_back(slack);
        std::int64_t ns = custos::to_ns(deadline);
        std::int64_t tick = ns / tick_ns + (ns % tick_ns != 0 ? 1 : 0);
        wheel_.arm(t, static_cast<std::uint64_t>(tick));
    }
    void cancel(custos::io::timer& t) noexcept override { wheel_.cancel(t); }
    bool deps_ready(std::uint32_t i) noexcept override { return deps[i]; }
    void launch(std::uint32_t i, std::uint32_t run) noexcept override {
        fslot& s = slots_[i];
        CHECK(!s.running); // never launched twice
        s.running = true;
        s.run = run;
        s.stop = false;
        launches.push_back({i, elapsed_ms()});
    }
    void request_stop(std::uint32_t i) noexcept override {
        fslot& s = slots_[i];
        s.stop = true;
        stops.push_back({i, elapsed_ms()});
        if (s.running && s.stop_after >= 0) {
            arm(s.returner, now() + std::chrono::milliseconds(s.stop_after), custos::nanos(0));
        }
    }
    void sample(std::uint32_t i, custos::mon::sample& out) noexcept override { out = slots_[i].s; }
    std::size_t evidence(std::uint32_t, char* buf, std::size_t len) noexcept override {
        std::string_view e = "state S (sleeping) wchan fake_wait";
        std::size_t n = std::min(e.size(), len - 1);
        std::memcpy(buf, e.data(), n);
        buf[n] = '\0';
        return n;
    }
    void transition(const custos::MonitorTransition& t) noexcept override {
        rec r;
        r.monitor = t.monitor;
        r.from = t.from;
        r.to = t.to;
        r.reason = t.reason;
        r.at_ms = (t.at_ns - start_ns) / 1'000'000;
        CHECK(t.at_ns == now_ns_);
        r.crashes = t.crashes;
        r.delay_ms = t.delay_ns / 1'000'000;
        r.progress = t.progress;
        r.detail = std::string(t.detail);
        r.resolution = std::string(t.resolution);
        log.push_back(r);
    }
    void wedge_exit(std::uint32_t i) noexcept override { wedge_exits.push_back(i); }
    void all_stopped() noexcept override {
        ++all_stopped_calls;
        all_stopped_at_ms = elapsed_ms();
    }

    // --- playing the threads ---
    void beat(std::uint32_t i) {
        auto& s = slots_[i].s;
        ++s.beats;
        ++s.progress;
        slots_[i].has_token = false;
    }
    void beat(std::uint32_t i, std::uint64_t token) {
        fslot& f = slots_[i];
        ++f.s.beats;
        if (!f.has_token || f.s.token != token) {
            ++f.s.progress;
            f.s.token = token;
            f.has_token = true;
        }
    }
    void set_overlay(std::uint32_t i, const Error& e) {
        fslot& f = slots_[i];
        f.s.overlay.run = f.run;
        f.s.overlay.set = true;
        f.s.overlay.error.reason = e.reason();
        f.s.overlay.error.message = e.subject();
        m->on_notice(i);
    }
    void clear_overlay(std::uint32_t i) {
        fslot& f = slots_[i];
        f.s.overlay.set = false;
        f.s.overlay.error = custos::MonitorError{};
        m->on_notice(i);
    }
    void crash(std::uint32_t i, const Error& e) { end(i, custos::fail(e)); }
    void exit_ok(std::uint32_t i) { end(i, custos::Result<void>{}); }
    // How monitor i reacts to a stop: returns after `ms`, or never (-1).
    void set_stop_after(std::uint32_t i, int ms) { slots_[i].stop_after = ms; }
    bool running(std::uint32_t i) const { return slots_[i].running; }

    std::int64_t elapsed_ms() const { return (now_ns_ - start_ns) / 1'000'000; }

    void advance(custos::nanos d) {
        const std::int64_t target = now_ns_ + d.count();
        for (;;) {
            std::uint64_t next = wheel_.next_expiry();
            if (next == custos::timer_wheel::never ||
                static_cast<std::int64_t>(next) * tick_ns > target) {
                break;
            }
            std::int64_t at = static_cast<std::int64_t>(next) * tick_ns;
            if (at > now_ns_) {
                now_ns_ = at;
            }
            wheel_.advance(next);
            while (custos::timer_node* n = wheel_.pop_expired()) {
                auto* t = static_cast<custos::io::timer*>(n);
                t->fire(*t);
            }
        }
        now_ns_ = target;
        wheel_.advance(static_cast<std::uint64_t>(target / tick_ns));
    }

    std::vector<rec> of(std::uint32_t i, Reason r) const {
        std::vector<rec> out;
        for (const rec& x : log) {
            if (x.monitor == i && x.reason == r) {
                out.push_back(x);
            }
        }
        return out;
    }

    std::string dump() const {
        std::string s;
        for (const rec& r : log) {
            s += std::to_string(r.at_ms) + "ms #" + std::to_string(r.monitor) + " " +
                 std::string(custos::monitor_state_name(r.from)) + " -> " +
                 std::string(custos::monitor_state_name(r.to)) + " " +
                 std::string(custos::reason_id(r.reason)) + " crashes " +
                 std::to_string(r.crashes) + " delay " + std::to_string(r.delay_ms) + " [" +
                 r.detail + "]\n";
        }
        return s;
    }

    struct event {
        std::uint32_t monitor;
        std::int64_t at_ms;
    };
    std::vector<rec> log;
    std::vector<event> launches;
    std::vector<event> stops;
    std::vector<std::uint32_t> wedge_exits;
    std::vector<custos::nanos> slacks;
    bool deps[max] = {true, true, true, true, true, true, true, true};
    int all_stopped_calls = 0;
    std::int64_t all_stopped_at_ms = -1;

private:
    struct fslot {
        custos::mon::sample s;
        bool has_token = false;
        bool running = false;
        bool stop = false;
        std::uint32_t run = 0;
        int stop_after = 0;
        custos::io::timer returner;
        fake_world* world = nullptr;
        std::uint32_t index = 0;
    };

    static void fire_return(custos::io::timer& t) {
        auto& f = *static_cast<fslot*>(t.user);
        if (f.running) {
            f.world->end(f.index, custos::Result<void>{});
        }
    }

    void end(std::uint32_t i, const custos::Result<void>& r) {
        fslot& f = slots_[i];
        REQUIRE(f.running);
        f.running = false;
        wheel_.cancel(f.returner);
        m->on_returned(i, r);
    }

    std::int64_t now_ns_ = start_ns;
    custos::timer_wheel wheel_;
    fslot slots_[max];
};

// Defaults as the issue gives them, with no jitter so schedules are exact.
MonitorSpec mon(std::string_view name) {
    MonitorSpec s;
    s.name = name;
    s.backoff_jitter_percent = 0;
    return s;
}

struct rig {
    fake_world w;
    custos::arena mem;
    custos::mon::machine m{w};

    explicit rig(std::span<const MonitorSpec> specs) {
        w.m = &m;
        auto sizing = m.init(specs, mem, 1);
        REQUIRE(!sizing.has_value());
        REQUIRE(sizing.error().reason() == Reason::out_of_memory);
        REQUIRE(mem.reserve(mem.needed()));
        REQUIRE(m.init(specs, mem, 1).has_value());
    }
    MonitorState state(std::uint32_t i) const { return m.at(i).state; }
};

const Error boom(Reason::probe_connect_refused, 111, "broker:1883");

} // namespace

TEST_CASE("init: two-pass sizing, names copied (the caller's specs may die)") {
    std::string name = "uploader";
    MonitorSpec specs[] = {mon(name)};
    rig r(specs);
    name[0] = 'X';
    CHECK(r.m.at(0).name == "uploader");
    CHECK(r.m.find("uploader") == 0);
    CHECK(r.m.find("nope") == UINT32_MAX);
    CHECK(r.state(0) == MonitorState::stopped);
}

TEST_CASE("monitor_state_name covers every state") {
    CHECK(custos::monitor_state_name(MonitorState::wedged) == "wedged");
    CHECK(custos::monitor_state_name(MonitorState::backoff) == "backoff");
    for (std::size_t i = 0; i < custos::monitor_state_count; ++i) {
        CHECK(custos::monitor_state_name(static_cast<MonitorState>(i)) != "unknown");
    }
}

TEST_CASE("backoff: 5, 10, 20, 40, 80, 160, 300, 300 s; reset only after 60 s of stable running") {
    MonitorSpec specs[] = {mon("poller")};
    rig r(specs);
    r.m.start();
    REQUIRE(r.state(0) == MonitorState::running);
    CHECK(r.w.log.back().reason == Reason::runtime_start);
    const std::int64_t want[] = {5, 10, 20, 40, 80, 160, 300, 300};
    for (std::int64_t s : want) {
        r.w.advance(1s);
        r.w.crash(0, boom);
        REQUIRE(r.state(0) == MonitorState::backoff);
        const rec c = r.w.of(0, Reason::monitor_crashed).back();
        CHECK(c.delay_ms == s * 1000);
        CHECK(c.detail == "ProbeConnectRefused: broker:1883");
        CHECK(r.m.status(0).restart_at_ns - r.m.status(0).since_ns == s * 1'000'000'000);
        r.w.advance(std::chrono::seconds(s) - 1ms);
        CHECK(r.state(0) == MonitorState::backoff);
        r.w.advance(1ms);
        REQUIRE(r.state(0) == MonitorState::running);
        CHECK(r.w.log.back().reason == Reason::backoff_elapsed);
    }
    INFO(r.w.dump());
    // 59 s of running is not stable: the delay stays at the cap.
    r.w.advance(59s);
    r.w.crash(0, boom);
    CHECK(r.w.log.back().delay_ms == 300'000);
    CHECK(r.w.log.back().crashes == 9);
    r.w.advance(300s);
    REQUIRE(r.state(0) == MonitorState::running);
    // The status shows the count reset once the run has been stable...
    r.w.advance(60s);
    CHECK(r.m.status(0).crashes == 0);
    // ... and the next crash starts over at 5 s.
    r.w.crash(0, boom);
    CHECK(r.w.log.back().delay_ms == 5'000);
    CHECK(r.w.log.back().crashes == 1);
}

TEST_CASE("MonitorDegraded at every 5th consecutive crash: 5, 10, 15") {
    MonitorSpec specs[] = {mon("uploader")};
    specs[0].backoff_max = 1s;
    specs[0].backoff_initial = 1s;
    rig r(specs);
    r.m.start();
    for (int i = 0; i < 16; ++i) {
        r.w.crash(0, boom);
        r.w.advance(1s);
        REQUIRE(r.state(0) == MonitorState::running);
    }
    auto d = r.w.of(0, Reason::monitor_crash_loop);
    REQUIRE(d.size() == 3);
    CHECK(d[0].crashes == 5);
    CHECK(d[1].crashes == 10);
    CHECK(d[2].crashes == 15);
    for (const rec& x : d) {
        CHECK(x.from == MonitorState::backoff);
        CHECK(x.to == MonitorState::backoff);
        CHECK(x.detail.find("consecutive crashes") != std::string::npos);
    }
    CHECK(r.w.of(0, Reason::monitor_crashed).size() == 16);
}

TEST_CASE("degraded_every = 0 never reports a crash loop") {
    MonitorSpec specs[] = {mon("u")};
    specs[0].degraded_every = 0;
    specs[0].backoff_max = 1s;
    specs[0].backoff_initial = 1s;
    rig r(specs);
    r.m.start();
    for (int i = 0; i < 12; ++i) {
        r.w.crash(0, boom);
        r.w.advance(1s);
    }
    CHECK(r.w.of(0, Reason::monitor_crash_loop).empty());
}

TEST_CASE("a clean exit is not restarted") {
    MonitorSpec specs[] = {mon("oneshot")};
    specs[0].heartbeat_interval = 1s;
    specs[0].deadline = 4s;
    rig r(specs);
    r.m.start();
    r.w.advance(2500ms);
    r.w.exit_ok(0);
    CHECK(r.state(0) == MonitorState::stopped);
    CHECK(r.w.log.back().reason == Reason::exited_cleanly);
    const std::size_t n = r.w.log.size();
    r.w.advance(std::chrono::minutes(10));
    CHECK(r.w.log.size() == n); // no restart, no heartbeat, no wedge report
    CHECK(r.w.launches.size() == 1);
}

TEST_CASE("heartbeats on schedule while running, with uptime and health") {
    MonitorSpec specs[] = {mon("hb")};
    specs[0].heartbeat_interval = 10s;
    rig r(specs);
    r.m.start();
    r.w.advance(35s);
    auto hb = r.w.of(0, Reason::monitor_heartbeat);
    REQUIRE(hb.size() == 3);
    CHECK(hb[0].at_ms == 10'000);
    CHECK(hb[1].at_ms == 20'000);
    CHECK(hb[2].at_ms == 30'000);
    CHECK(hb[0].detail == "uptime 10 s, ok");
    // Degraded: the heartbeat says so.
    r.w.set_overlay(0, Error(Reason::probe_timeout, 0, "modem"));
    r.w.advance(10s);
    hb = r.w.of(0, Reason::monitor_heartbeat);
    REQUIRE(hb.size() == 4);
    CHECK(hb[3].to == MonitorState::degraded);
    CHECK(hb[3].detail == "uptime 40 s, degraded: ProbeTimeout: modem");
    // None while in backoff; they resume with the next run.
    r.w.crash(0, boom);
    r.w.advance(4s);
    CHECK(r.w.of(0, Reason::monitor_heartbeat).size() == 4);
    r.w.advance(11s);
    hb = r.w.of(0, Reason::monitor_heartbeat);
    REQUIRE(hb.size() == 5);
    CHECK(hb[4].at_ms == 60'000);             // crashed at 45 s, back at 50 s
    CHECK(hb[4].detail == "uptime 10 s, ok"); // the overlay belonged to the last run
}

TEST_CASE("wedge: suspected at half the deadline, wedged at the deadline, not before") {
    MonitorSpec specs[] = {mon("w")};
    specs[0].deadline = 8s;
    rig r(specs);
    r.m.start();
    // Progress every second until 19.5 s.
    for (int i = 0; i < 39; ++i) {
        r.w.advance(500ms);
        r.w.beat(0);
    }
    CHECK(r.w.of(0, Reason::monitor_wedge_suspected).empty());
    // The check at 20 s is the last to see progress; from there, 4 s and 8 s.
    r.w.advance(500ms + 4s - 1ms);
    CHECK(r.w.of(0, Reason::monitor_wedge_suspected).empty());
    r.w.advance(1ms);
    auto s = r.w.of(0, Reason::monitor_wedge_suspected);
    REQUIRE(s.size() == 1);
    CHECK(s[0].at_ms == 24'000);
    CHECK(s[0].to == MonitorState::running);
    CHECK(s[0].detail.find("no progress for 4 s (deadline 8 s)") == 0);
    CHECK(s[0].detail.find("wchan fake_wait") != std::string::npos);
    r.w.advance(4s - 1ms);
    CHECK(r.state(0) == MonitorState::running);
    r.w.advance(1ms);
    REQUIRE(r.state(0) == MonitorState::wedged);
    auto wd = r.w.of(0, Reason::monitor_wedged);
    REQUIRE(wd.size() == 1);
    CHECK(wd[0].at_ms == 28'000);
    CHECK(wd[0].detail.find("no progress for 8 s") == 0);
    CHECK(r.w.wedge_exits.empty()); // on_wedge = report
    // Still wedged: reported once, not at every check.
    r.w.advance(10s);
    CHECK(r.w.of(0, Reason::monitor_wedged).size() == 1);
    CHECK(r.w.of(0, Reason::monitor_wedge_suspected).size() == 1);
    // Progress clears it at the next check.
    r.w.beat(0);
    r.w.advance(2s);
    CHECK(r.state(0) == MonitorState::running);
    auto p = r.w.of(0, Reason::monitor_progress);
    REQUIRE(p.size() == 1);
    CHECK(p[0].from == MonitorState::wedged);
    CHECK(p[0].to == MonitorState::running);
    // Checks every deadline / 4, with slack.
    for (custos::nanos sl : r.w.slacks) {
        CHECK(sl <= custos::nanos(8s) / 16);
    }
}

TEST_CASE("wedge: a suspicion cleared by progress is reported; on_wedge = exit asks the runtime") {
    MonitorSpec specs[] = {mon("a"), mon("b")};
    specs[0].deadline = 4s;
    specs[1].deadline = 4s;
    specs[1].on_wedge = custos::WedgeAction::exit;
    rig r(specs);
    r.m.start();
    r.w.advance(2s);
    CHECK(r.w.of(0, Reason::monitor_wedge_suspected).size() == 1);
    r.w.beat(0);
    r.w.advance(1s);
    auto p = r.w.of(0, Reason::monitor_progress);
    REQUIRE(p.size() == 1);
    CHECK(p[0].from == MonitorState::running);
    CHECK(p[0].to == MonitorState::running);
    r.w.advance(1s);
    CHECK(r.state(1) == MonitorState::wedged);
    REQUIRE(r.w.wedge_exits.size() == 1);
    CHECK(r.w.wedge_exits[0] == 1);
}

TEST_CASE("a token repeated is not progress; a new token is") {
    MonitorSpec specs[] = {mon("t")};
    specs[0].deadline = 8s;
    rig r(specs);
    r.m.start();
    r.w.advance(500ms);
    r.w.beat(0, 7); // progress, seen by the check at 2 s
    for (int i = 0; i < 20; ++i) {
        r.w.advance(500ms);
        r.w.beat(0, 7); // the same token: beats, but no progress
    }
    // Last progress seen at 2 s: suspected at 6 s, wedged at 10 s.
    auto s = r.w.of(0, Reason::monitor_wedge_suspected);
    REQUIRE(s.size() == 1);
    CHECK(s[0].at_ms == 6'000);
    CHECK(s[0].progress == 7);
    auto wd = r.w.of(0, Reason::monitor_wedged);
    REQUIRE(wd.size() == 1);
    CHECK(wd[0].at_ms == 10'000);
    CHECK(r.m.status(0).beats == 21);
    r.w.beat(0, 8);
    r.w.advance(2s);
    CHECK(r.state(0) == MonitorState::running);
    CHECK(r.m.status(0).progress == 8);
}

TEST_CASE("overlay: degraded with the user's reason, MonitorDegradedSet without one, cleared") {
    MonitorSpec specs[] = {mon("o")};
    rig r(specs);
    r.m.start();
    r.w.set_overlay(0, Error(Reason::probe_http_status, 0, "503 from /api"));
    REQUIRE(r.state(0) == MonitorState::degraded);
    CHECK(r.w.log.back().reason == Reason::probe_http_status);
    CHECK(r.w.log.back().detail == "ProbeHttpStatus: 503 from /api");
    CHECK(r.m.status(0).degraded.message == "503 from /api");
    // The same again: nothing.
    std::size_t n = r.w.log.size();
    r.m.on_notice(0);
    CHECK(r.w.log.size() == n);
    r.w.clear_overlay(0);
    CHECK(r.state(0) == MonitorState::running);
    CHECK(r.w.log.back().reason == Reason::monitor_degraded_cleared);
    r.w.set_overlay(0, Error(Reason::unknown, 0, "queue full"));
    CHECK(r.state(0) == MonitorState::degraded);
    CHECK(r.w.log.back().reason == Reason::monitor_degraded);
}

TEST_CASE("dependencies: waiting until ready; on_dependency_down stop, restart, ignore") {
    MonitorSpec specs[] = {mon("stopper"), mon("restarter"), mon("ignorer")};
    specs[0].on_dependency_down = custos::DependencyDownAction::stop;
    specs[1].on_dependency_down = custos::DependencyDownAction::restart;
    specs[2].on_dependency_down = custos::DependencyDownAction::ignore;
    rig r(specs);
    r.w.deps[0] = r.w.deps[1] = r.w.deps[2] = false;
    r.m.start();
    for (std::uint32_t i = 0; i < 3; ++i) {
        CHECK(r.state(i) == MonitorState::waiting);
    }
    CHECK(r.w.launches.empty());
    r.w.advance(1s);
    r.w.deps[0] = r.w.deps[1] = r.w.deps[2] = true;
    r.m.on_dependency_change();
    for (std::uint32_t i = 0; i < 3; ++i) {
        CHECK(r.state(i) == MonitorState::running);
        CHECK(r.w.of(i, Reason::dependencies_ready).size() == 1);
    }

    // Down.
    r.w.set_stop_after(0, 100);
    r.w.set_stop_after(1, 100);
    r.w.advance(1s);
    r.w.deps[0] = r.w.deps[1] = r.w.deps[2] = false;
    r.m.on_dependency_change();
    CHECK(r.state(0) == MonitorState::stopping);
    CHECK(r.w.log.back().reason != Reason::unknown);
    CHECK(r.state(1) == MonitorState::running); // restart: kept until they are back
    CHECK(r.state(2) == MonitorState::running);
    r.w.advance(100ms);
    CHECK(r.state(0) == MonitorState::waiting);
    CHECK(r.w.of(0, Reason::dependency_down).size() == 2); // stopping, then waiting

    // Back.
    r.w.advance(1s);
    r.w.deps[0] = r.w.deps[1] = r.w.deps[2] = true;
    r.m.on_dependency_change();
    CHECK(r.state(0) == MonitorState::running);
    CHECK(r.state(1) == MonitorState::stopping);
    r.w.advance(100ms);
    CHECK(r.state(1) == MonitorState::running);
    CHECK(r.m.at(1).runs == 2);
    CHECK(r.m.at(2).runs == 1);
    CHECK(r.w.stops.size() == 2);
}

TEST_CASE("a backoff that elapses while a dependency is down waits for it") {
    MonitorSpec specs[] = {mon("m")};
    rig r(specs);
    r.m.start();
    r.w.crash(0, boom);
    r.w.deps[0] = false;
    r.w.advance(5s);
    CHECK(r.state(0) == MonitorState::waiting);
    r.w.deps[0] = true;
    r.m.on_dependency_change();
    CHECK(r.state(0) == MonitorState::running);
}

TEST_CASE("operator stop and start") {
    MonitorSpec specs[] = {mon("m")};
    rig r(specs);
    r.m.start();
    r.w.set_stop_after(0, 50);
    r.m.stop(0);
    CHECK(r.state(0) == MonitorState::stopping);
    CHECK(r.w.log.back().reason == Reason::operator_stop);
    r.w.advance(50ms);
    CHECK(r.state(0) == MonitorState::stopped);
    CHECK(r.w.log.back().reason == Reason::stopped_by_request);
    r.m.start(0);
    CHECK(r.state(0) == MonitorState::running);
    CHECK(r.w.log.back().reason == Reason::operator_start);
    // Start during a stop: it runs again once the stop is done.
    r.m.stop(0);
    r.m.start(0);
    r.w.advance(50ms);
    CHECK(r.state(0) == MonitorState::running);
    CHECK(r.m.at(0).runs == 3);
    // Start during a backoff: at once, the crashes forgotten.
    r.w.crash(0, boom);
    r.m.start(0);
    CHECK(r.state(0) == MonitorState::running);
    CHECK(r.m.status(0).crashes == 0);
}

TEST_CASE("stop_all: reverse order, one at a time, the budget split; one ignoring the stop is "
          "reported and abandoned, the rest still get their time") {
    MonitorSpec specs[] = {mon("first"), mon("second"), mon("third"), mon("idle")};
    rig r(specs);
    r.m.start();
    r.w.crash(3, boom); // in backoff: stopped at once, nothing to ask
    r.w.set_stop_after(0, 1000);
    r.w.set_stop_after(1, -1); // ignores the stop
    r.w.set_stop_after(2, 1000);
    r.m.stop_all(9s);
    CHECK(r.state(3) == MonitorState::stopped);
    // third: asked first; 9 s over 3 runs = 3 s; returns after 1 s.
    REQUIRE(r.w.stops.size() == 1);
    CHECK(r.w.stops[0].monitor == 2);
    CHECK(r.w.stops[0].at_ms == 0);
    r.w.advance(1s);
    CHECK(r.state(2) == MonitorState::stopped);
    // second: asked at 1 s; 8 s over 2 = 4 s; ignores it: at 5 s reported.
    REQUIRE(r.w.stops.size() == 2);
    CHECK(r.w.stops[1].monitor == 1);
    CHECK(r.w.stops[1].at_ms == 1000);
    r.w.advance(4s - 1ms);
    CHECK(r.w.of(1, Reason::stop_timeout).empty());
    CHECK(r.w.stops.size() == 2);
    r.w.advance(1ms);
    auto st = r.w.of(1, Reason::stop_timeout);
    REQUIRE(st.size() == 1);
    CHECK(st[0].at_ms == 5000);
    CHECK(st[0].to == MonitorState::stopping);
    CHECK(r.state(1) == MonitorState::stopping); // abandoned, stays stopping
    // first: asked at 5 s with the 4 s left; returns after 1 s.
    REQUIRE(r.w.stops.size() == 3);
    CHECK(r.w.stops[2].monitor == 0);
    CHECK(r.w.stops[2].at_ms == 5000);
    CHECK(r.w.all_stopped_calls == 0);
    r.w.advance(1s);
    CHECK(r.state(0) == MonitorState::stopped);
    CHECK(r.w.all_stopped_calls == 1);
    CHECK(r.w.all_stopped_at_ms == 6000);
    // Nothing restarts after the stop.
    r.w.advance(std::chrono::minutes(10));
    CHECK(r.w.launches.size() == 4);
    CHECK(r.w.all_stopped_calls == 1);
    INFO(r.w.dump());
}

TEST_CASE("stop_all with nothing running is done at once; a crash during the stop stays stopped") {
    {
        MonitorSpec specs[] = {mon("a")};
        rig r(specs);
        r.m.stop_all(5s);
        CHECK(r.w.all_stopped_calls == 1);
    }
    {
        MonitorSpec specs[] = {mon("a"), mon("b")};
        rig r(specs);
        r.m.start();
        r.w.set_stop_after(1, -1);
        r.m.stop_all(10s);
        // a (not yet asked) crashes meanwhile: stopped, not backoff.
        r.w.crash(0, boom);
        CHECK(r.state(0) == MonitorState::stopped);
        r.w.advance(5s);
        CHECK(r.w.all_stopped_calls == 1);
        CHECK(r.w.launches.size() == 2);
    }
}

// --- the slot and MonitorContext, on one thread ---

namespace {
struct notices {
    int posted = 0;
};
void count_notice(void* ctx, std::uint32_t) noexcept {
    ++static_cast<notices*>(ctx)->posted;
}
} // namespace

TEST_CASE("slot: beat() without a token is progress each time; with one, only a new token") {
    custos::mon::slot s;
    custos::MonitorContext ctx(&s);
    custos::mon::sample a;
    s.read_beats(a);
    CHECK(a.beats == 0);
    CHECK(a.progress == 0);
    ctx.beat();
    ctx.beat();
    s.read_beats(a);
    CHECK(a.beats == 2);
    CHECK(a.progress == 2);
    ctx.beat(7);
    ctx.beat(7);
    ctx.beat(7);
    s.read_beats(a);
    CHECK(a.beats == 5);
    CHECK(a.progress == 3);
    CHECK(a.token == 7);
    ctx.beat(8);
    ctx.beat(7); // different from the last: progress
    s.read_beats(a);
    CHECK(a.progress == 5);
    CHECK(a.token == 7);
    ctx.beat(); // a token-less beat between two equal tokens makes the next one new
    ctx.beat(7);
    s.read_beats(a);
    CHECK(a.progress == 7);
    CHECK(a.beats == 9);
}

TEST_CASE("slot: the overlay notifies once per change, tagged with its run; ticks accumulate") {
    custos::mon::slot s;
    notices n;
    s.notify = &count_notice;
    s.notify_ctx = &n;
    s.run = 3;
    custos::MonitorContext ctx(&s);
    CHECK(ctx.run_number() == 3);
    ctx.clear_degraded(); // nothing set: nothing to say
    CHECK(n.posted == 0);
    ctx.set_degraded(Error(Reason::probe_timeout, 0, "modem"));
    CHECK(n.posted == 1);
    ctx.set_degraded(Error(Reason::probe_timeout, 0, "modem")); // the same: nothing
    CHECK(n.posted == 1);
    ctx.set_degraded(Error(Reason::probe_timeout, 0, "modem2")); // still pending: no post
    CHECK(n.posted == 1);
    custos::mon::sample a;
    s.read(a);
    CHECK(a.overlay.set);
    CHECK(a.overlay.run == 3);
    CHECK(a.overlay.error.message == "modem2");
    CHECK(a.overlay.resolution_text() == Error(Reason::probe_timeout, 0).resolution());
    // The reactor takes the notice: the next change posts again.
    s.notice_pending.store(false);
    ctx.clear_degraded();
    CHECK(n.posted == 2);
    s.read(a);
    CHECK(!a.overlay.set);

    ctx.tick();
    ctx.tick(Error(Reason::probe_timeout, 0, "slow"));
    ctx.tick(custos::Result<void>(custos::fail(Reason::probe_unreachable, 113, "host")));
    s.read(a);
    CHECK(a.ticks.ticks == 3);
    CHECK(a.ticks.failures == 2);
    CHECK(a.ticks.consecutive_failures == 2);
    CHECK(a.ticks.last_success_ns > 0);
    CHECK(a.ticks.last_failure.reason == Reason::probe_unreachable);
    CHECK(a.ticks.last_failure.message == "host");
    ctx.tick();
    s.read(a);
    CHECK(a.ticks.consecutive_failures == 0);
    CHECK(ctx.stop_fd() == -1);
    CHECK(!ctx.stop_requested());
    s.stop.store(true);
    CHECK(ctx.stop_requested());
    CHECK(!ctx.wait_for(std::chrono::seconds(10))); // returns at once when stopped
}
