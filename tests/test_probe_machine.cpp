// The probe machine against a fake clock and a fake transport: the startup
// backoff schedule, exhaustion into background polling, recovery found by a
// later poll, thresholds, hooks exactly once per transition, jitter and
// slack of the polls, and cancellation. Nothing sleeps; no I/O.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <custos/probe.hpp>

#include "core/arena.hpp"
#include "core/timer_wheel.hpp"
#include "probe/machine.hpp"

using custos::ProbePhase;
using custos::ProbeSpec;
using custos::ProbeState;
using custos::Reason;
using custos::probe::check_result;
using namespace std::chrono_literals;

namespace {

struct transition_rec {
    std::uint32_t probe;
    ProbeState from;
    ProbeState to;
    Reason reason;
    std::int64_t at_ms;
    std::string message;
    std::string resolution;
};

// A fake world: time moves only in advance(); a started check completes at
// `latency` after its start with the outcome `target(probe, now)` says,
// delivered from the "loop" (never inside start_check).
class fake_world final : public custos::probe::machine_host {
public:
    static constexpr std::int64_t tick_ns = 1'000'000;
    static constexpr std::int64_t start_ns = 1'000'000'000'000;

    fake_world() : wheel_(static_cast<std::uint64_t>(start_ns / tick_ns)) {}

    custos::mono_time now() noexcept override { return custos::from_ns(now_ns_); }
    void arm(custos::io::timer& t, custos::mono_time deadline,
             custos::nanos slack) noexcept override {
        std::int64_t ns = custos::to_ns(deadline);
        if (use_all_slack) {
            ns += slack.count(); // the latest a coalescing reactor may fire it
        }
        std::int64_t tick = ns / tick_ns + (ns % tick_ns != 0 ? 1 : 0);
        wheel_.arm(t, static_cast<std::uint64_t>(tick));
        arms.push_back({elapsed_ms(), (ns - start_ns) / 1'000'000, slack.count() / 1'000'000});
    }
    void cancel(custos::io::timer& t) noexcept override { wheel_.cancel(t); }
    void start_check(std::uint32_t p, custos::mono_time deadline) noexcept override {
        ++starts;
        if (in_flight_.count(p) != 0) {
            ++double_starts;
        }
        in_flight_.insert(p);
        check_times.push_back({p, elapsed_ms()});
        pending_.push_back({p, now_ns_ + latency.count(), custos::to_ns(deadline)});
    }
    void cancel_check(std::uint32_t p) noexcept override { cancels.push_back(p); }
    void checked(std::uint32_t p, bool passed, custos::mono_time started) noexcept override {
        results.push_back({p, passed, (custos::to_ns(started) - start_ns) / 1'000'000});
    }
    void transition(const custos::ProbeTransition& t) noexcept override {
        transitions.push_back({t.probe, t.from, t.to, t.reason, elapsed_ms(),
                               std::string(t.message), std::string(t.resolution)});
    }
    std::uint64_t random() noexcept override {
        rng_ = rng_ * 6364136223846793005ull + 1442695040888963407ull;
        return rng_ >> 11;
    }

    void attach(custos::probe::machine& m) { m_ = &m; }
    std::int64_t elapsed_ms() const { return (now_ns_ - start_ns) / 1'000'000; }

    // Delivers the checks due by now.
    void settle() {
        bool any = true;
        while (any) {
            any = false;
            for (auto it = pending_.begin(); it != pending_.end(); ++it) {
                if (it->due_ns <= now_ns_) {
                    pending c = *it;
                    pending_.erase(it);
                    in_flight_.erase(c.probe);
                    check_result r;
                    if (!target(c.probe, elapsed_ms())) {
                        r.fail(Reason::probe_connect_refused, 111, "connect 127.0.0.1:%u",
                               1000 + c.probe);
                    }
                    m_->on_result(c.probe, r);
                    any = true;
                    break;
                }
            }
        }
    }

    void advance(custos::nanos d) {
        const std::int64_t target_ns = now_ns_ + d.count();
        settle();
        for (;;) {
            std::int64_t next_check = INT64_MAX;
            for (const pending& c : pending_) {
                next_check = std::min(next_check, c.due_ns);
            }
            std::uint64_t next = wheel_.next_expiry();
            std::int64_t next_timer = next == custos::timer_wheel::never
                                          ? INT64_MAX
                                          : static_cast<std::int64_t>(next) * tick_ns;
            std::int64_t at = std::min(next_check, next_timer);
            if (at > target_ns) {
                break;
            }
            if (at > now_ns_) {
                now_ns_ = at;
            }
            if (next_timer <= at) {
                wheel_.advance(next);
                while (custos::timer_node* n = wheel_.pop_expired()) {
                    auto* t = static_cast<custos::io::timer*>(n);
                    t->fire(*t);
                }
            }
            settle();
        }
        now_ns_ = target_ns;
        wheel_.advance(static_cast<std::uint64_t>(target_ns / tick_ns));
    }

    struct arm_rec {
        std::int64_t at_ms;
        std::int64_t deadline_ms;
        std::int64_t slack_ms;
    };
    struct check_rec {
        std::uint32_t probe;
        std::int64_t at_ms;
    };
    struct result_rec {
        std::uint32_t probe;
        bool passed;
        std::int64_t started_ms;
    };

    // Whether probe p's target is up at time t (ms).
    std::function<bool(std::uint32_t, std::int64_t)> target = [](std::uint32_t, std::int64_t) {
        return false;
    };
    custos::nanos latency{0};
    bool use_all_slack = false;
    std::vector<arm_rec> arms;
    std::vector<check_rec> check_times;
    std::vector<result_rec> results;
    std::vector<transition_rec> transitions;
    std::vector<std::uint32_t> cancels;
    int starts = 0;
    int double_starts = 0;

private:
    struct pending {
        std::uint32_t probe;
        std::int64_t due_ns;
        std::int64_t deadline_ns;
    };
    custos::probe::machine* m_ = nullptr;
    std::int64_t now_ns_ = start_ns;
    custos::timer_wheel wheel_;
    std::deque<pending> pending_;
    std::set<std::uint32_t> in_flight_;
    std::uint64_t rng_ = 42;
};

struct rig {
    fake_world world;
    custos::arena mem;
    custos::probe::machine m{world};

    explicit rig(std::span<const ProbeSpec> probes) {
        world.attach(m);
        auto sizing = m.init(probes, mem);
        REQUIRE(!sizing.has_value());
        REQUIRE(mem.reserve(mem.needed()));
        REQUIRE(m.init(probes, mem).has_value());
    }
};

std::vector<std::int64_t> times_of(const fake_world& w, std::uint32_t p) {
    std::vector<std::int64_t> t;
    for (const auto& c : w.check_times) {
        if (c.probe == p) {
            t.push_back(c.at_ms);
        }
    }
    return t;
}

struct hook_count {
    int ready = 0;
    int down = 0;
};

void on_ready_hook(const custos::ProbeTransition&, void* ctx) {
    ++static_cast<hook_count*>(ctx)->ready;
}
void on_down_hook(const custos::ProbeTransition&, void* ctx) {
    ++static_cast<hook_count*>(ctx)->down;
}

} // namespace

TEST_CASE("startup backs off 2, 4, 8 ... 60 s, then goes down and polls every interval") {
    hook_count hooks;
    ProbeSpec p;
    p.name = "broker";
    p.on_ready = on_ready_hook;
    p.on_down = on_down_hook;
    p.hook_ctx = &hooks;
    rig r({&p, 1});
    r.m.start_all();
    r.world.advance(1000s);
    std::vector<std::int64_t> t = times_of(r.world, 0);
    REQUIRE(t.size() >= 12);
    // Ten startup tries: at 0, then after 2, 4, 8, 16, 32, 60, 60, 60, 60 s.
    const std::int64_t want[] = {0,     2000,   6000,   14000,  30000,
                                 62000, 122000, 182000, 242000, 302000};
    for (std::size_t i = 0; i < 10; ++i) {
        CHECK(t[i] == want[i]);
    }
    // Out of tries at 302 s: down, once.
    REQUIRE(r.world.transitions.size() == 1);
    CHECK(r.world.transitions[0].from == ProbeState::unknown);
    CHECK(r.world.transitions[0].to == ProbeState::down);
    CHECK(r.world.transitions[0].reason == Reason::probe_connect_refused);
    CHECK(r.world.transitions[0].at_ms == 302000);
    CHECK(r.world.transitions[0].message == "connect 127.0.0.1:1000");
    CHECK(hooks.down == 1);
    CHECK(hooks.ready == 0);
    // The first poll is jittered into the second half of the interval, then
    // every 60 s from the previous start; polling never gives up.
    CHECK(t[10] - t[9] >= 30000);
    CHECK(t[10] - t[9] <= 60000);
    for (std::size_t i = 11; i < t.size(); ++i) {
        CHECK(t[i] - t[i - 1] == 60000);
    }
    CHECK(r.m.at(0).phase == ProbePhase::polling);
    CHECK(r.m.at(0).state == ProbeState::down);
    CHECK(r.world.double_starts == 0);
}

TEST_CASE("recovery is found by a later poll; passing polls report nothing more") {
    hook_count hooks;
    ProbeSpec p;
    p.name = "cloud";
    p.startup_tries = 3;
    p.on_ready = on_ready_hook;
    p.on_down = on_down_hook;
    p.hook_ctx = &hooks;
    rig r({&p, 1});
    r.world.target = [](std::uint32_t, std::int64_t t) { return t >= 100000; };
    r.m.start_all();
    r.world.advance(600s);
    REQUIRE(r.world.transitions.size() == 2);
    CHECK(r.world.transitions[0].to == ProbeState::down);
    CHECK(r.world.transitions[0].at_ms == 6000); // tries at 0, 2, 6 s
    CHECK(r.world.transitions[1].from == ProbeState::down);
    CHECK(r.world.transitions[1].to == ProbeState::ready);
    CHECK(r.world.transitions[1].reason == Reason::probe_recovered);
    CHECK(r.world.transitions[1].at_ms >= 100000);
    CHECK(r.world.transitions[1].at_ms <= 100000 + 60000);
    CHECK(hooks.down == 1);
    CHECK(hooks.ready == 1);
    custos::ProbeStatus s = r.m.status(0);
    CHECK(s.state == ProbeState::ready);
    CHECK(s.consecutive_failures == 0);
    CHECK(s.consecutive_successes >= 5);
    CHECK(s.last_error.reason == Reason::probe_connect_refused); // kept for the operator
    CHECK(s.last_error.since_ns == fake_world::start_ns);        // the first failure, at 0
}

TEST_CASE("a first check that passes makes the probe ready at once, then it polls") {
    hook_count hooks;
    ProbeSpec p;
    p.name = "api";
    p.interval = 10s;
    p.on_ready = on_ready_hook;
    p.on_down = on_down_hook;
    p.hook_ctx = &hooks;
    rig r({&p, 1});
    r.world.target = [](std::uint32_t, std::int64_t) { return true; };
    r.m.start_all();
    r.world.advance(100s);
    REQUIRE(r.world.transitions.size() == 1);
    CHECK(r.world.transitions[0].to == ProbeState::ready);
    CHECK(r.world.transitions[0].reason == Reason::probe_passed);
    CHECK(r.world.transitions[0].at_ms == 0);
    CHECK(hooks.ready == 1);
    CHECK(r.m.at(0).phase == ProbePhase::polling);
    // Polls: the first in [5, 10] s, then every 10 s.
    std::vector<std::int64_t> t = times_of(r.world, 0);
    REQUIRE(t.size() >= 9);
    CHECK(t[1] >= 5000);
    CHECK(t[1] <= 10000);
    CHECK(t[2] - t[1] == 10000);
}

TEST_CASE("thresholds: N passes to become ready, M failures in a row to go down") {
    ProbeSpec p;
    p.name = "db";
    p.success_threshold = 3;
    p.failure_threshold = 2;
    p.interval = 10s;
    rig r({&p, 1});
    // Up from the start; down between 100 s and 125 s (two or three polls
    // fail), flapping once at 200 s (one poll fails: no flip).
    r.world.target = [](std::uint32_t, std::int64_t t) {
        bool out = t >= 100000 && t < 125000;
        bool blip = t >= 200000 && t < 205000;
        return !out && !blip;
    };
    r.m.start_all();
    r.world.advance(400s);
    REQUIRE(r.world.transitions.size() >= 3);
    // Ready after the third pass: checks at 0, 2, 4 s (startup confirms at
    // startup_initial while passing below the threshold).
    CHECK(r.world.transitions[0].to == ProbeState::ready);
    CHECK(r.world.transitions[0].at_ms == 4000);
    CHECK(r.world.transitions[1].to == ProbeState::down);
    CHECK(r.world.transitions[2].to == ProbeState::ready);
    CHECK(r.world.transitions.size() == 3); // the single failed poll at ~200 s flipped nothing
    // The down flip came at the second failed poll, not the first.
    std::int64_t first_fail = -1;
    for (const auto& res : r.world.results) {
        if (!res.passed) {
            first_fail = res.started_ms;
            break;
        }
    }
    REQUIRE(first_fail >= 100000);
    CHECK(r.world.transitions[1].at_ms == first_fail + 10000);
}

TEST_CASE("hooks fire exactly once per transition over many polls") {
    hook_count hooks;
    ProbeSpec p;
    p.name = "flappy";
    p.interval = 1s;
    p.startup_tries = 1;
    p.on_ready = on_ready_hook;
    p.on_down = on_down_hook;
    p.hook_ctx = &hooks;
    rig r({&p, 1});
    // Up during even 10-second windows, down during odd ones.
    r.world.target = [](std::uint32_t, std::int64_t t) { return (t / 10000) % 2 == 0; };
    r.m.start_all();
    r.world.advance(100s);
    int ups = 0;
    int downs = 0;
    for (const auto& t : r.world.transitions) {
        (t.to == ProbeState::ready ? ups : downs) += 1;
        CHECK(t.from != t.to);
    }
    CHECK(ups == hooks.ready);
    CHECK(downs == hooks.down);
    CHECK(ups >= 4);
    CHECK(downs >= 4);
    CHECK(ups + downs <= 11); // one per window edge, never per poll
    CHECK(r.world.starts >= 90);
}

TEST_CASE("probes with the same interval spread their polls, and polls carry slack") {
    constexpr int n = 64;
    std::vector<ProbeSpec> specs(n);
    std::vector<std::string> names(n);
    for (int i = 0; i < n; ++i) {
        names[i] = "p" + std::to_string(i);
        specs[i].name = names[i];
        specs[i].startup_tries = 1;
    }
    rig r(specs);
    r.world.target = [](std::uint32_t, std::int64_t) { return true; };
    r.m.start_all();
    r.world.advance(61s);
    std::set<std::int64_t> first_polls;
    for (const auto& c : r.world.check_times) {
        if (c.at_ms > 0) {
            first_polls.insert(c.at_ms);
        }
    }
    CHECK(first_polls.size() >= 50); // 64 probes, not in lockstep
    CHECK(*first_polls.begin() >= 30000);
    // Polling timers allow interval / 8 of slack; startup timers none.
    bool saw_poll_arm = false;
    for (const auto& a : r.world.arms) {
        if (a.deadline_ms - a.at_ms >= 30000) {
            CHECK(a.slack_ms == 7500);
            saw_poll_arm = true;
        }
    }
    CHECK(saw_poll_arm);
}

TEST_CASE("the operator's reason and resolution replace the defaults in the error") {
    ProbeSpec p;
    p.name = "broker";
    p.startup_tries = 1;
    p.reason = "MQTT broker unreachable";
    p.resolution = "check the broker container: systemctl status mosquitto";
    rig r({&p, 1});
    r.m.start_all();
    r.world.advance(1s);
    REQUIRE(r.world.transitions.size() == 1);
    CHECK(r.world.transitions[0].message == "MQTT broker unreachable (connect 127.0.0.1:1000)");
    CHECK(r.world.transitions[0].resolution ==
          "check the broker container: systemctl status mosquitto");
    custos::ProbeStatus s = r.m.status(0);
    CHECK(s.last_error.message == "MQTT broker unreachable (connect 127.0.0.1:1000)");
    CHECK(s.last_error.reason == Reason::probe_connect_refused);

    ProbeSpec q;
    q.name = "plain";
    q.startup_tries = 1;
    rig r2({&q, 1});
    r2.m.start_all();
    r2.world.advance(1s);
    REQUIRE(r2.world.transitions.size() == 1);
    CHECK(r2.world.transitions[0].resolution ==
          custos::Error(Reason::probe_connect_refused, 0).resolution());
}

TEST_CASE("restart_startup discards the check in flight and checks again at once") {
    ProbeSpec p;
    p.name = "svc-port";
    p.interval = 60s;
    rig r({&p, 1});
    r.world.latency = 500ms;
    r.world.target = [](std::uint32_t, std::int64_t t) { return t >= 1000; };
    r.m.start_all();
    r.world.advance(100ms); // the first check (a failure) is in flight
    r.m.restart_startup(0);
    CHECK(r.world.cancels.size() == 1);
    r.world.advance(450ms); // the cancelled check returns: discarded, a new one starts
    CHECK(r.m.status(0).checks == 0);
    CHECK(r.world.results.empty());
    r.world.advance(600ms); // the new check started at 500 ms ends at 1000 ms: passes
    REQUIRE(r.world.results.size() == 1);
    CHECK(r.world.results[0].passed);
    CHECK(r.world.results[0].started_ms == 500);
    CHECK(r.m.at(0).state == ProbeState::ready);
    CHECK(r.world.double_starts == 0);
}

TEST_CASE("stop_all cancels checks in flight and nothing runs after") {
    ProbeSpec p;
    p.name = "x";
    rig r({&p, 1});
    r.world.latency = 1s;
    r.m.start_all();
    r.world.advance(100ms);
    r.m.stop_all();
    CHECK(r.world.cancels.size() == 1);
    r.world.advance(1000s);
    CHECK(r.world.starts == 1);
    CHECK(r.m.status(0).checks == 0);
    CHECK(r.world.transitions.empty());
}

TEST_CASE("check_now runs an extra check without disturbing the schedule's phase") {
    ProbeSpec p;
    p.name = "x";
    p.startup_tries = 1;
    rig r({&p, 1});
    r.m.start_all();
    r.world.advance(1s);
    REQUIRE(r.m.at(0).phase == ProbePhase::polling);
    int before = r.world.starts;
    r.m.check_now(0);
    r.world.advance(1ms);
    CHECK(r.world.starts == before + 1);
    r.m.check_now(0);
    r.world.advance(1ms);
    CHECK(r.world.starts == before + 2);
    CHECK(r.world.double_starts == 0);
    CHECK(r.m.at(0).phase == ProbePhase::polling);
}

TEST_CASE("polls fired late by their slack do not drift: the period stays the interval") {
    ProbeSpec p;
    p.name = "x";
    p.startup_tries = 1;
    rig r({&p, 1});
    r.world.use_all_slack = true;
    r.world.target = [](std::uint32_t, std::int64_t) { return true; };
    r.m.start_all();
    r.world.advance(20min);
    std::vector<std::int64_t> t = times_of(r.world, 0);
    REQUIRE(t.size() >= 15);
    // Every poll fires 7.5 s late, yet they stay 60 s apart: 20 polls in
    // 20 minutes, not 17.
    for (std::size_t i = 2; i < t.size(); ++i) {
        CHECK(t[i] - t[i - 1] == 60000);
    }
    CHECK(t.size() >= 20);
}
