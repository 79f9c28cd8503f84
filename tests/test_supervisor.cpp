// The supervision state machine against a fake clock and fake processes
// (fake_host.hpp): restart policy and backoff, the restart budget, readiness
// and its timeouts, the software watchdog, stop escalation, dependency order
// at start and reverse order with a shared budget at stop. Every test asserts
// exact transitions, reasons and times; nothing sleeps or forks.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fake_host.hpp"

using custos::Error;
using custos::ExitInfo;
using custos::mono_time;
using custos::ReadyMode;
using custos::Reason;
using custos::RestartCause;
using custos::RestartPolicy;
using custos::ServiceSpec;
using custos::ServiceState;
using custos_test::fake_host;
using custos_test::rig;
using custos_test::transition_rec;
using namespace std::chrono_literals;

// Checks one recorded transition's target state, reason and time (ms since
// the fake clock's start), reporting the caller's line.
#define CHECK_TR(rec, state_, reason_, ms_)                                                        \
    do {                                                                                           \
        const transition_rec tr_ = (rec);                                                          \
        CHECK(tr_.to == (state_));                                                                 \
        CHECK(tr_.reason == (reason_));                                                            \
        CHECK(tr_.at_ms == (ms_));                                                                 \
    } while (0)

namespace {

const std::string_view prog[] = {"/bin/true"};

// A service with exact schedules: always restarted, backoff 1 s doubling to
// 8 s with no jitter, stable after 60 s, ready when started, 5 s stop grace.
ServiceSpec svc(std::string_view name) {
    ServiceSpec s;
    s.name = name;
    s.argv = prog;
    s.restart = RestartPolicy::always;
    s.backoff_initial = 1s;
    s.backoff_max = 8s;
    s.backoff_multiplier_x100 = 200;
    s.backoff_jitter_percent = 0;
    s.stable_after = 60s;
    s.ready = ReadyMode::started;
    s.stop_timeout = 5s;
    return s;
}

// Nothing was signalled that had no process, and no service was spawned
// twice: the fake's record of the supervisor losing track of a process.
void check_sane(const fake_host& h) {
    CHECK(h.kills_without_process == 0);
    CHECK(h.double_spawns == 0);
}

} // namespace

TEST_CASE("init: the two-pass arena sizing, and OutOfMemory from an arena too small") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    const std::string_view deps[] = {"a"};
    t[1].depends_on = deps;
    t[1].intensity_restarts = 4;
    t[1].intensity_window = 10s;

    fake_host h;
    custos::arena mem;
    custos::sup::supervisor s(h);
    h.attach(s);
    custos::tbl::plan plan;
    REQUIRE(custos_test::build_plan(plan, t));
    auto sizing = s.init(plan, mem, 1);
    REQUIRE(!sizing.has_value());
    CHECK(sizing.error().reason() == Reason::out_of_memory);
    const std::size_t need = mem.needed();
    REQUIRE(need > 0);

    REQUIRE(mem.reserve(need - 1));
    auto small = s.init(plan, mem, 1);
    REQUIRE(!small.has_value());
    CHECK(small.error().reason() == Reason::out_of_memory);

    REQUIRE(mem.reserve(need));
    auto ok = s.init(plan, mem, 1);
    REQUIRE(ok.has_value());
    CHECK(mem.used() == need);
    CHECK(s.size() == 2);
    CHECK(s.find("a") == 0);
    CHECK(s.find("b") == 1);
    CHECK(s.find("c") == UINT32_MAX);
    CHECK(s.at(1).name == "b");
    CHECK(s.at(1).ndeps == 1);
    CHECK(s.at(1).rank == 1);
    CHECK(s.at(0).ndependents == 1);
    CHECK(s.at(0).rank == 0);
    CHECK(s.at(0).state == ServiceState::stopped);
    CHECK(h.transitions.empty());
    CHECK(h.pending_timers() == 0);
}

TEST_CASE("backoff: 1,2,4,8,8,8 s for a service crashing 1 s after each start; only a "
          "stable run resets the delay and the crash count") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());

    r.sup.start_all();
    REQUIRE(h.transitions.size() == 2);
    CHECK(h.transitions[0].from == ServiceState::stopped);
    CHECK_TR(h.transitions[0], ServiceState::starting, Reason::runtime_start, 0);
    CHECK_TR(h.transitions[1], ServiceState::ready, Reason::ready_started, 0);
    CHECK(h.transitions[1].pid == h.pid(0));

    const std::int64_t delays[] = {1000, 2000, 4000, 8000, 8000, 8000};
    std::int64_t now = 0;
    std::uint32_t n = 1;
    for (std::int64_t d : delays) {
        CAPTURE(n);
        h.advance(1s); // every spawn succeeded, and it still crashes after 1 s
        now += 1000;
        h.exit(0, 1);
        REQUIRE(h.transitions.size() == 3 * n);
        const transition_rec& b = h.transitions.back();
        CHECK_TR(b, ServiceState::backoff, Reason::process_exited, now);
        CHECK(b.delay_ms == d);
        CHECK(b.restarts == n);
        CHECK(b.exit.code == 1);

        h.advance(std::chrono::milliseconds(d - 1));
        CHECK(r.state(0) == ServiceState::backoff);
        h.advance(1ms);
        now += d;
        REQUIRE(h.transitions.size() == 3 * n + 2);
        CHECK_TR(h.transitions[3 * n], ServiceState::starting, Reason::backoff_elapsed, now);
        CHECK_TR(h.transitions[3 * n + 1], ServiceState::ready, Reason::ready_started, now);
        CHECK(h.spawns.back().at_ms == now);
        ++n;
    }

    // A run of 60 s is stable: the next crash starts over at 1 s and 1.
    h.advance(60s);
    now += 60000;
    h.exit(0, 1);
    CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::process_exited, now);
    CHECK(h.transitions.back().delay_ms == 1000);
    CHECK(h.transitions.back().restarts == 1);
    h.advance(1s);
    now += 1000;
    // ... and counting resumes from there.
    h.advance(1s);
    now += 1000;
    h.exit(0, 1);
    CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::process_exited, now);
    CHECK(h.transitions.back().delay_ms == 2000);
    CHECK(h.transitions.back().restarts == 2);
    CHECK(r.at(0).total_restarts == 8);
    // What the status shows: 8 crashes, the last 16 deaths kept in a ring
    // (8 here), the last error that of the last exit.
    const custos::sup::unit& u = r.at(0);
    CHECK(u.by_cause[static_cast<std::size_t>(RestartCause::crash)] == 8);
    CHECK(u.by_cause[static_cast<std::size_t>(RestartCause::operator_)] == 0);
    CHECK(u.death_count == 8);
    CHECK(u.deaths[7].exit.code == 1);
    CHECK(u.deaths[7].reason == Reason::process_exited);
    CHECK(u.deaths[7].at_ns - u.deaths[6].at_ns == 2000 * 1'000'000); // 1 s backoff, 1 s run
    CHECK(u.last_error.reason == Reason::process_exited);
    CHECK(u.last_error.since_ns == u.deaths[7].at_ns);
    CHECK(u.started == mono_time{}); // in backoff: no process
    check_sane(h);
}

TEST_CASE("backoff: a run just short of stable_after resets nothing") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    h.exit(0, 1); // backoff 1 s, restarts 1
    h.advance(1s);
    h.advance(59999ms);
    h.exit(0, 1);
    CHECK(h.transitions.back().to == ServiceState::backoff);
    CHECK(h.transitions.back().delay_ms == 2000);
    CHECK(h.transitions.back().restarts == 2);
    check_sane(h);
}

TEST_CASE("max_restarts: the failure after the 3rd automatic restart is final; operator start "
          "and restart clear the budget") {
    ServiceSpec t[] = {svc("a")};
    t[0].max_restarts = 3;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());

    // Crashes 1 s after each start until the budget is gone.
    auto crash_until_failed = [&](std::int64_t start_ms) {
        std::int64_t now = start_ms;
        const std::int64_t delays[] = {1000, 2000, 4000};
        for (std::int64_t d : delays) {
            h.advance(1s);
            now += 1000;
            h.exit(0, 1);
            CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::process_exited, now);
            CHECK(h.transitions.back().delay_ms == d);
            h.advance(std::chrono::milliseconds(d));
            now += d;
            CHECK(r.state(0) == ServiceState::ready);
        }
        const std::size_t spawns_before = h.spawns.size();
        h.advance(1s);
        now += 1000;
        h.exit(0, 1);
        const transition_rec& f = h.transitions.back();
        CHECK_TR(f, ServiceState::failed, Reason::max_restarts_exhausted, now);
        CHECK(f.detail == "ProcessExited");
        CHECK(f.restarts == 3);
        CHECK(f.exit.code == 1);
        CHECK(h.pending_timers() == 0);
        h.advance(10min);
        CHECK(r.state(0) == ServiceState::failed);
        CHECK(h.spawns.size() == spawns_before);
        return now + 600000;
    };

    r.sup.start_all();
    std::int64_t now = crash_until_failed(0);

    SUBCASE("start") {
        const std::size_t mark = h.transitions.size();
        r.sup.start(0);
        REQUIRE(h.transitions.size() == mark + 2);
        CHECK(h.transitions[mark].from == ServiceState::failed);
        CHECK_TR(h.transitions[mark], ServiceState::starting, Reason::operator_start, now);
        CHECK(h.transitions[mark].restarts == 0);
        CHECK_TR(h.transitions[mark + 1], ServiceState::ready, Reason::ready_started, now);
        // The whole budget again, from a 1 s delay.
        crash_until_failed(now);
    }
    SUBCASE("restart") {
        const std::size_t mark = h.transitions.size();
        r.sup.restart(0);
        REQUIRE(h.transitions.size() == mark + 2);
        CHECK(h.transitions[mark].from == ServiceState::failed);
        CHECK_TR(h.transitions[mark], ServiceState::starting, Reason::operator_restart, now);
        CHECK(h.transitions[mark].restarts == 0);
        CHECK_TR(h.transitions[mark + 1], ServiceState::ready, Reason::ready_started, now);
        crash_until_failed(now);
    }
    check_sane(h);
}

TEST_CASE("intensity: a 4th restart within 10 s fails the service; restarts 4 s apart never do") {
    SUBCASE("exceeded") {
        ServiceSpec t[] = {svc("a")};
        t[0].backoff_multiplier_x100 = 100; // a constant 1 s
        t[0].intensity_restarts = 3;
        t[0].intensity_window = 10s;
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        // Restarts at 1, 3, 5 s; the crash at 7 s would be the 4th within 10 s.
        for (std::int64_t k = 0; k < 3; ++k) {
            h.advance(1s);
            h.exit(0, 1);
            CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::process_exited,
                     1000 + 2000 * k);
            h.advance(1s);
        }
        h.advance(1s);
        h.exit(0, 1);
        const transition_rec& f = h.transitions.back();
        CHECK_TR(f, ServiceState::failed, Reason::restart_intensity_exceeded, 7000);
        CHECK(f.detail == "ProcessExited");
        CHECK(h.pending_timers() == 0);
        h.advance(1min);
        CHECK(r.state(0) == ServiceState::failed);
        CHECK(h.spawns.size() == 4);
        check_sane(h);
    }
    SUBCASE("spread out") {
        ServiceSpec t[] = {svc("a")};
        t[0].backoff_multiplier_x100 = 100;
        t[0].intensity_restarts = 3;
        t[0].intensity_window = 10s;
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        // Runs of 3 s plus 1 s of backoff: at most 2 earlier restarts in any 10 s.
        for (std::uint32_t k = 1; k <= 12; ++k) {
            h.advance(3s);
            h.exit(0, 1);
            CHECK(h.transitions.back().to == ServiceState::backoff);
            CHECK(h.transitions.back().restarts == k);
            h.advance(1s);
            CHECK(r.state(0) == ServiceState::ready);
        }
        check_sane(h);
    }
}

TEST_CASE("restart policy truth table: never / always / on-failure by how the process ended") {
    enum class end_kind { exit0, exit3, segv, stop_signal, operator_stop };
    const end_kind ends[] = {end_kind::exit0, end_kind::exit3, end_kind::segv,
                             end_kind::stop_signal, end_kind::operator_stop};
    const char* end_names[] = {"exit 0", "exit 3", "SIGSEGV", "SIGTERM unrequested",
                               "operator stop"};
    const RestartPolicy policies[] = {RestartPolicy::never, RestartPolicy::always,
                                      RestartPolicy::on_failure};
    const char* policy_names[] = {"never", "always", "on-failure"};
    using S = ServiceState;
    // Rows: policy; columns: end_kind (service.hpp and supervisor.hpp).
    const S expected[3][5] = {
        {S::stopped, S::failed, S::failed, S::stopped, S::stopped},
        {S::backoff, S::backoff, S::backoff, S::backoff, S::stopped},
        {S::stopped, S::backoff, S::backoff, S::stopped, S::stopped},
    };

    for (int p = 0; p < 3; ++p) {
        for (int e = 0; e < 5; ++e) {
            const std::string policy = policy_names[p];
            const std::string how = end_names[e];
            CAPTURE(policy);
            CAPTURE(how);
            ServiceSpec t[] = {svc("a")};
            t[0].restart = policies[p];
            rig r(t);
            fake_host& h = r.host;
            INFO(h.log());
            r.sup.start_all();
            h.advance(2s);
            const int pid = h.pid(0);
            switch (ends[e]) {
            case end_kind::exit0:
                h.exit(0, 0);
                break;
            case end_kind::exit3:
                h.exit(0, 3);
                break;
            case end_kind::segv:
                h.die(0, SIGSEGV);
                break;
            case end_kind::stop_signal:
                h.die(0, SIGTERM);
                break;
            case end_kind::operator_stop:
                h.set_on_stop_signal(0, fake_host::on_signal::die);
                r.sup.stop(0);
                h.settle();
                break;
            }
            const transition_rec& last = h.transitions.back();
            CHECK(last.to == expected[p][e]);
            CHECK(last.at_ms == 2000);
            CHECK(last.pid == pid);
            CHECK(r.at(0).pid == 0);
            switch (ends[e]) {
            case end_kind::exit0:
                CHECK(last.reason == Reason::exited_cleanly);
                CHECK(last.exit.code == 0);
                break;
            case end_kind::exit3:
                CHECK(last.reason == Reason::process_exited);
                CHECK(last.exit.code == 3);
                break;
            case end_kind::segv:
                CHECK(last.reason == Reason::process_killed);
                CHECK(last.exit.signal == SIGSEGV);
                break;
            case end_kind::stop_signal:
                CHECK(last.exit.signal == SIGTERM);
                break;
            case end_kind::operator_stop:
                CHECK(last.reason == Reason::stopped_by_request);
                CHECK(last.exit.signal == SIGTERM);
                break;
            }
            // Only a backoff leaves a timer; it restarts the service.
            if (expected[p][e] == S::backoff) {
                CHECK(h.pending_timers() == 1);
                CHECK(last.delay_ms == 1000);
                h.advance(1s);
                CHECK(r.state(0) == S::ready);
                CHECK(h.spawns.size() == 2);
            } else {
                CHECK(h.pending_timers() == 0);
                h.advance(1min);
                CHECK(r.state(0) == expected[p][e]);
                CHECK(h.spawns.size() == 1);
            }
            check_sane(h);
        }
    }
}

TEST_CASE("dependency order: a <- b <- c and an independent d start in order, independents "
          "together") {
    // Table order is the reverse of start order: it must not matter.
    ServiceSpec t[] = {svc("c"), svc("b"), svc("a"), svc("d")};
    const std::string_view c_deps[] = {"b"};
    const std::string_view b_deps[] = {"a"};
    t[0].depends_on = c_deps;
    t[1].depends_on = b_deps;
    t[1].ready = ReadyMode::notify;
    t[2].ready = ReadyMode::notify;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    const std::uint32_t c = 0, b = 1, a = 2, d = 3;

    r.sup.start_all();
    // a and d in the same pass, before any timer could fire.
    REQUIRE(h.spawns.size() == 2);
    CHECK(h.spawns[0].service == a);
    CHECK(h.spawns[1].service == d);
    CHECK(h.spawns[0].at_ms == 0);
    CHECK(h.spawns[1].at_ms == 0);
    CHECK(r.state(a) == ServiceState::running);
    CHECK(r.state(d) == ServiceState::ready);
    CHECK(r.state(b) == ServiceState::waiting);
    CHECK(r.state(c) == ServiceState::waiting);
    CHECK(r.at(b).reason == Reason::waiting_for_dependencies);
    // Ranks (stop waves below each service) whatever the table order.
    CHECK(r.at(c).rank == 2);
    CHECK(r.at(b).rank == 1);
    CHECK(r.at(a).rank == 0);
    CHECK(r.at(d).rank == 0);

    // a running but not ready: b keeps waiting.
    h.advance(500ms);
    CHECK(h.spawns.size() == 2);
    r.sup.on_ready(a, Reason::ready_notified);
    REQUIRE(h.spawns.size() == 3);
    CHECK(h.spawns[2].service == b);
    CHECK(h.spawns[2].at_ms == 500);
    CHECK(r.state(b) == ServiceState::running);
    CHECK(r.state(c) == ServiceState::waiting);

    h.advance(700ms);
    r.sup.on_ready(b, Reason::ready_notified);
    REQUIRE(h.spawns.size() == 4);
    CHECK(h.spawns[3].service == c);
    CHECK(h.spawns[3].at_ms == 1200);
    CHECK(r.state(c) == ServiceState::ready);

    auto tc = h.of(c);
    REQUIRE(tc.size() == 3);
    CHECK_TR(tc[0], ServiceState::waiting, Reason::waiting_for_dependencies, 0);
    CHECK_TR(tc[1], ServiceState::starting, Reason::dependencies_ready, 1200);
    CHECK_TR(tc[2], ServiceState::ready, Reason::ready_started, 1200);
    auto tb = h.of(b);
    REQUIRE(tb.size() == 4);
    CHECK_TR(tb[1], ServiceState::starting, Reason::dependencies_ready, 500);
    CHECK_TR(tb[2], ServiceState::running, Reason::spawned, 500);
    CHECK_TR(tb[3], ServiceState::ready, Reason::ready_notified, 1200);
    check_sane(h);
}

TEST_CASE("dependency order: a fan-in starts only when every dependency is ready") {
    ServiceSpec t[] = {svc("x"), svc("y"), svc("z")};
    const std::string_view x_deps[] = {"y", "z"};
    t[0].depends_on = x_deps;
    t[1].ready = ReadyMode::notify;
    t[2].ready = ReadyMode::notify;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    CHECK(h.spawns.size() == 2);
    h.advance(100ms);
    r.sup.on_ready(1, Reason::ready_notified);
    CHECK(r.state(0) == ServiceState::waiting);
    CHECK(h.of(0).size() == 1); // re-evaluated, not re-reported
    h.advance(200ms);
    r.sup.on_ready(2, Reason::ready_notified);
    CHECK(r.state(0) == ServiceState::ready);
    REQUIRE(h.spawns.size() == 3);
    CHECK(h.spawns[2].service == 0);
    CHECK(h.spawns[2].at_ms == 300);
    check_sane(h);
}

TEST_CASE("start_delay delays the spawn by exactly that, after the dependencies are ready") {
    ServiceSpec t[] = {svc("s"), svc("n"), svc("t")};
    t[0].start_delay = 2500ms;
    t[1].ready = ReadyMode::notify;
    const std::string_view t_deps[] = {"n"};
    t[2].depends_on = t_deps;
    t[2].start_delay = 2s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    CHECK(r.state(0) == ServiceState::starting);
    CHECK(h.spawns_of(0).empty());
    h.advance(1000ms);
    r.sup.on_ready(1, Reason::ready_notified); // t: starting at 1000
    CHECK(r.state(2) == ServiceState::starting);
    CHECK(h.spawns_of(2).empty());
    h.advance(1499ms);
    CHECK(h.spawns_of(0).empty());
    h.advance(1ms);
    REQUIRE(h.spawns_of(0).size() == 1);
    CHECK(h.spawns_of(0)[0].at_ms == 2500);
    CHECK(r.state(0) == ServiceState::ready);
    h.advance(499ms);
    CHECK(h.spawns_of(2).empty());
    h.advance(1ms);
    REQUIRE(h.spawns_of(2).size() == 1);
    CHECK(h.spawns_of(2)[0].at_ms == 3000);
    auto ts = h.of(2);
    REQUIRE(ts.size() == 3);
    CHECK_TR(ts[1], ServiceState::starting, Reason::dependencies_ready, 1000);
    CHECK_TR(ts[2], ServiceState::ready, Reason::ready_started, 3000);
    check_sane(h);
}

TEST_CASE("a failed dependency keeps its dependents waiting with DependencyFailed, said once; "
          "starting it again lets them start") {
    ServiceSpec t[] = {svc("a"), svc("b"), svc("e")};
    t[0].restart = RestartPolicy::never;
    t[0].ready = ReadyMode::notify;
    const std::string_view b_deps[] = {"a", "e"};
    t[1].depends_on = b_deps;
    t[2].ready = ReadyMode::notify;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    CHECK(r.state(1) == ServiceState::waiting);

    h.advance(1s);
    h.exit(0, 1);
    CHECK(r.state(0) == ServiceState::failed);
    auto tb = h.of(1);
    REQUIRE(tb.size() == 2);
    CHECK(tb[1].from == ServiceState::waiting);
    CHECK_TR(tb[1], ServiceState::waiting, Reason::dependency_failed, 1000);
    CHECK(tb[1].detail == "a");

    // Another evaluation (e becomes ready) with a still failed: nothing new.
    h.advance(1s);
    r.sup.on_ready(2, Reason::ready_notified);
    h.advance(1min);
    CHECK(h.of(1).size() == 2);
    CHECK(r.state(1) == ServiceState::waiting);
    CHECK(r.at(1).reason == Reason::dependency_failed);

    const std::int64_t now = h.elapsed_ms();
    r.sup.start(0);
    CHECK(r.state(0) == ServiceState::running);
    h.advance(500ms);
    r.sup.on_ready(0, Reason::ready_notified);
    CHECK(r.state(1) == ServiceState::ready);
    tb = h.of(1);
    REQUIRE(tb.size() == 4);
    CHECK_TR(tb[2], ServiceState::starting, Reason::dependencies_ready, now + 500);
    CHECK_TR(tb[3], ServiceState::ready, Reason::ready_started, now + 500);
    check_sane(h);
}

TEST_CASE("a dependency that fails before its dependent is first evaluated") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    t[0].restart = RestartPolicy::never;
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.script_spawn_error(0, Error(Reason::exec_failed, ENOENT, "a"));
    r.sup.start_all();
    CHECK(r.state(0) == ServiceState::failed);
    auto tb = h.of(1);
    REQUIRE(tb.size() == 1);
    CHECK_TR(tb[0], ServiceState::waiting, Reason::dependency_failed, 0);
    CHECK(tb[0].detail == "a");
    check_sane(h);
}

TEST_CASE("readiness (notify): running until READY; the ready timeout stops it and counts as a "
          "failure") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].ready_timeout = 5s;
    t[0].stop_timeout = 2s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());

    SUBCASE("the process exits on the stop signal") {
        h.set_on_stop_signal(0, fake_host::on_signal::die);
        r.sup.start_all();
        CHECK_TR(h.transitions.back(), ServiceState::running, Reason::spawned, 0);
        h.advance(4999ms);
        CHECK(r.state(0) == ServiceState::running);
        CHECK(h.kills.empty());
        h.advance(1ms);
        REQUIRE(h.kills.size() == 1);
        CHECK(h.kills[0].sig == SIGTERM);
        CHECK(h.kills[0].at_ms == 5000);
        auto ta = h.of(0);
        REQUIRE(ta.size() == 4);
        CHECK_TR(ta[2], ServiceState::stopping, Reason::ready_timeout, 5000);
        CHECK_TR(ta[3], ServiceState::backoff, Reason::ready_timeout, 5000);
        CHECK(ta[3].exit.signal == SIGTERM);
        CHECK(ta[3].delay_ms == 1000);
        CHECK(ta[3].restarts == 1);

        // The next run becomes ready: its ready timeout is gone.
        h.advance(1s);
        CHECK(r.state(0) == ServiceState::running);
        h.advance(500ms);
        r.sup.on_ready(0, Reason::ready_notified);
        CHECK_TR(h.transitions.back(), ServiceState::ready, Reason::ready_notified, 6500);
        CHECK(h.pending_timers() == 0);
        h.advance(1min);
        CHECK(r.state(0) == ServiceState::ready);
        CHECK(h.kills.size() == 1);
    }
    SUBCASE("the process ignores the stop signal: SIGKILL after the grace") {
        r.sup.start_all();
        h.advance(5s);
        CHECK(r.state(0) == ServiceState::stopping);
        h.advance(1999ms);
        CHECK(h.kills.size() == 1);
        h.advance(1ms);
        REQUIRE(h.kills.size() == 2);
        CHECK(h.kills[1].sig == SIGKILL);
        CHECK(h.kills[1].at_ms == 7000);
        CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::ready_timeout, 7000);
        CHECK(h.transitions.back().exit.signal == SIGKILL);
    }
    SUBCASE("READY after the stop began changes nothing") {
        r.sup.start_all();
        h.advance(5s);
        r.sup.on_ready(0, Reason::ready_notified);
        CHECK(r.state(0) == ServiceState::stopping);
    }
    check_sane(h);
}

TEST_CASE("readiness (started, fd): ready right after spawn; fd readiness like notify") {
    ServiceSpec t[] = {svc("a"), svc("f")};
    t[1].ready = ReadyMode::fd;
    t[1].ready_fd = 3;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    auto ta = h.of(0);
    REQUIRE(ta.size() == 2);
    CHECK_TR(ta[1], ServiceState::ready, Reason::ready_started, 0);
    CHECK(r.state(1) == ServiceState::running);
    CHECK(h.pending_timers() == 1); // f's ready timeout only
    h.advance(10ms);
    r.sup.on_ready(1, Reason::ready_fd);
    CHECK_TR(h.transitions.back(), ServiceState::ready, Reason::ready_fd, 10);
    CHECK(h.pending_timers() == 0);
    check_sane(h);
}

TEST_CASE("software watchdog: pings keep it alive; silence or WATCHDOG=trigger kills and backs "
          "off") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].watchdog = 3s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.set_on_stop_signal(0, fake_host::on_signal::die);
    r.sup.start_all();
    r.sup.on_ready(0, Reason::ready_notified);
    for (int k = 0; k < 3; ++k) {
        h.advance(2s);
        r.sup.on_watchdog_ping(0);
    }
    CHECK(h.kills.empty());
    h.advance(2999ms);
    CHECK(h.kills.empty());
    CHECK(r.state(0) == ServiceState::ready);
    h.advance(1ms);
    REQUIRE(h.kills.size() == 1);
    CHECK(h.kills[0].sig == SIGTERM);
    CHECK(h.kills[0].at_ms == 9000);
    auto ta = h.of(0);
    REQUIRE(ta.size() == 5);
    CHECK_TR(ta[3], ServiceState::stopping, Reason::watchdog_timeout, 9000);
    CHECK_TR(ta[4], ServiceState::backoff, Reason::watchdog_timeout, 9000);
    CHECK(ta[4].delay_ms == 1000);

    // Restarted: a WATCHDOG=trigger.
    h.advance(1s);
    r.sup.on_ready(0, Reason::ready_notified);
    h.advance(500ms);
    r.sup.on_watchdog_trigger(0);
    h.settle();
    REQUIRE(h.kills.size() == 2);
    CHECK(h.kills[1].sig == SIGTERM);
    CHECK(h.kills[1].at_ms == 10500);
    ta = h.of(0);
    CHECK_TR(ta[ta.size() - 2], ServiceState::stopping, Reason::watchdog_triggered, 10500);
    CHECK_TR(ta.back(), ServiceState::backoff, Reason::watchdog_triggered, 10500);
    CHECK(ta.back().delay_ms == 2000);
    CHECK(ta.back().restarts == 2);
    CHECK(r.at(0).by_cause[static_cast<std::size_t>(RestartCause::watchdog)] == 2);
    CHECK(r.at(0).by_cause[static_cast<std::size_t>(RestartCause::crash)] == 0);
    CHECK(r.at(0).last_error.reason == Reason::watchdog_triggered);

    // A ping before readiness does not start the watchdog.
    h.advance(2s);
    CHECK(r.state(0) == ServiceState::running);
    r.sup.on_watchdog_ping(0);
    h.advance(10s);
    CHECK(h.kills.size() == 2);
    check_sane(h);
}

TEST_CASE("EXTEND_TIMEOUT extends the ready timeout and never shortens it") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].ready_timeout = 5s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    r.sup.on_extend_timeout(0, 1s); // would end at 2 s: earlier than 5 s, ignored
    h.advance(3s);
    r.sup.on_extend_timeout(0, 10s); // now 4 s: until 14 s
    h.advance(9999ms);
    CHECK(h.kills.empty());
    CHECK(r.state(0) == ServiceState::running);
    h.advance(1ms);
    REQUIRE(h.kills.size() == 1);
    CHECK(h.kills[0].at_ms == 14000);
    CHECK_TR(h.transitions.back(), ServiceState::stopping, Reason::ready_timeout, 14000);
    check_sane(h);
}

TEST_CASE("EXTEND_TIMEOUT never moves the watchdog (systemd applies it to start and stop "
          "timeouts only), and an absurd value is clamped, not wrapped") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].watchdog = 3s;
    t[0].ready_timeout = 5s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    // While starting: about 2^63 us would overflow a ns deadline; clamped to
    // the 24 h bound, the ready timeout is still a real deadline.
    r.sup.on_extend_timeout(
        0, std::chrono::duration_cast<custos::nanos>(std::chrono::microseconds(INT64_MAX / 1000)));
    CHECK(r.at(0).deadline == h.now() + custos::sup::supervisor::max_notify_timeout);
    r.sup.on_ready(0, Reason::ready_notified); // watchdog due at 3 s
    h.advance(1s);
    r.sup.on_extend_timeout(0, 10s); // ready: ignored
    r.sup.on_extend_timeout(0, custos::nanos(INT64_MAX));
    h.advance(1999ms);
    CHECK(h.kills.empty());
    h.advance(1ms);
    REQUIRE(h.kills.size() == 1);
    CHECK(h.kills.back().at_ms == 3000);
    CHECK(r.at(0).reason == Reason::watchdog_timeout);
    check_sane(h);
}

TEST_CASE("WATCHDOG_USEC= replaces the interval for this process, from now; 0 turns it off; the "
          "next process gets the spec's again") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].watchdog = 2s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.set_on_stop_signal(0, fake_host::on_signal::die);
    r.sup.start_all();
    r.sup.on_watchdog_usec(0, 10s); // before ready: kept, armed at ready
    r.sup.on_ready(0, Reason::ready_notified);
    h.advance(9999ms);
    CHECK(h.kills.empty());
    r.sup.on_watchdog_ping(0); // at 9.999 s: until 19.999 s
    h.advance(9999ms);
    CHECK(h.kills.empty());
    r.sup.on_watchdog_usec(0, 0s); // off
    h.advance(60s);
    CHECK(h.kills.empty());
    r.sup.on_watchdog_usec(0, 1ns); // clamped up to 10 ms, from now
    h.advance(9ms);
    CHECK(h.kills.empty());
    h.advance(1ms);
    REQUIRE(h.kills.size() == 1);
    CHECK(r.at(0).reason == Reason::watchdog_timeout);
    // Restarted after the 1 s backoff: the spec's 2 s again.
    h.advance(1s);
    REQUIRE(r.state(0) == ServiceState::running);
    r.sup.on_ready(0, Reason::ready_notified);
    const auto ready_ms = h.elapsed_ms();
    h.advance(1999ms);
    CHECK(h.kills.size() == 1);
    h.advance(1ms);
    REQUIRE(h.kills.size() == 2);
    CHECK(h.kills.back().at_ms == ready_ms + 2000);
    check_sane(h);
}

TEST_CASE("watchdog_expired_with_pings_queued: queued pings delivered at expiry keep a healthy "
          "service; a silent one is still killed") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].watchdog = 2s;
    t[0].ready_timeout = 1s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.set_on_stop_signal(0, fake_host::on_signal::die);
    // A READY=1 queued behind a stall arrives when the ready timeout fires.
    bool queued_ready = true;
    bool queued_ping = true;
    h.on_flush = [&](std::uint32_t i) {
        if (queued_ready) {
            queued_ready = false;
            r.sup.on_ready(i, Reason::ready_notified);
        } else if (queued_ping) {
            queued_ping = false;
            r.sup.on_watchdog_ping(i);
        }
    };
    r.sup.start_all();
    h.advance(1s);
    CHECK(h.flushes == 1);
    CHECK(r.state(0) == ServiceState::ready);
    h.advance(2s); // the watchdog fires at 3 s; the queued ping re-arms it
    CHECK(h.flushes == 2);
    CHECK(h.kills.empty());
    CHECK(r.state(0) == ServiceState::ready);
    h.advance(2s); // nothing queued this time: killed at 5 s
    CHECK(h.flushes == 3);
    REQUIRE(h.kills.size() == 1);
    CHECK(h.kills[0].at_ms == 5000);
    CHECK(r.at(0).reason == Reason::watchdog_timeout);
    check_sane(h);
}

TEST_CASE("stop escalation: stop signal at once, SIGKILL exactly at stop_timeout") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);

    SUBCASE("no exit within the grace") {
        r.sup.stop(0);
        REQUIRE(h.kills.size() == 1);
        CHECK(h.kills[0].sig == SIGTERM);
        CHECK(h.kills[0].at_ms == 1000);
        CHECK_TR(h.transitions.back(), ServiceState::stopping, Reason::operator_stop, 1000);
        h.advance(4999ms);
        CHECK(h.kills.size() == 1);
        h.advance(1ms);
        REQUIRE(h.kills.size() == 2);
        CHECK(h.kills[1].sig == SIGKILL);
        CHECK(h.kills[1].at_ms == 6000);
        const transition_rec& last = h.transitions.back();
        CHECK_TR(last, ServiceState::stopped, Reason::stop_timeout, 6000);
        CHECK(last.exit.signal == SIGKILL);
    }
    SUBCASE("exit within the grace") {
        r.sup.stop(0);
        h.advance(2s);
        h.die(0, SIGTERM);
        CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::stopped_by_request, 3000);
        CHECK(h.pending_timers() == 0);
        h.advance(10s);
        CHECK(h.kills.size() == 1);
    }
    SUBCASE("idempotent") {
        r.sup.stop(0);
        const std::size_t n = h.transitions.size();
        r.sup.stop(0);
        r.sup.stop(0);
        CHECK(h.transitions.size() == n);
        CHECK(h.kills.size() == 1);
        h.advance(5s);
        CHECK(h.kills.size() == 2); // still exactly one SIGKILL, at the first grace's end
        CHECK(h.kills[1].at_ms == 6000);
        r.sup.stop(0);
        CHECK(h.transitions.size() == n + 1);
    }
    // Stopped and not wanted: nothing restarts it.
    h.advance(10min);
    CHECK(r.state(0) == ServiceState::stopped);
    CHECK(h.spawns.size() == 1);
    check_sane(h);
}

TEST_CASE("stop works from backoff, waiting, starting, failed and stopping") {
    SUBCASE("backoff") {
        ServiceSpec t[] = {svc("a")};
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        h.advance(1s);
        h.exit(0, 1);
        REQUIRE(r.state(0) == ServiceState::backoff);
        r.sup.stop(0);
        CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::operator_stop, 1000);
        CHECK(h.transitions.back().from == ServiceState::backoff);
        CHECK(h.pending_timers() == 0);
        h.advance(10min);
        CHECK(h.spawns.size() == 1);
        CHECK(h.kills.empty());
        check_sane(h);
    }
    SUBCASE("waiting") {
        ServiceSpec t[] = {svc("n"), svc("b")};
        t[0].ready = ReadyMode::notify;
        t[0].ready_timeout = 0s;
        const std::string_view b_deps[] = {"n"};
        t[1].depends_on = b_deps;
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        REQUIRE(r.state(1) == ServiceState::waiting);
        r.sup.stop(1);
        CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::operator_stop, 0);
        r.sup.on_ready(0, Reason::ready_notified);
        CHECK(r.state(1) == ServiceState::stopped);
        CHECK(h.spawns_of(1).empty());
        check_sane(h);
    }
    SUBCASE("starting, start_delay pending") {
        ServiceSpec t[] = {svc("a")};
        t[0].start_delay = 5s;
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        h.advance(1s);
        REQUIRE(r.state(0) == ServiceState::starting);
        r.sup.stop(0);
        CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::operator_stop, 1000);
        CHECK(h.pending_timers() == 0);
        h.advance(10s);
        CHECK(h.spawns.empty());
        check_sane(h);
    }
    SUBCASE("failed") {
        ServiceSpec t[] = {svc("a")};
        t[0].restart = RestartPolicy::never;
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        h.advance(1s);
        h.exit(0, 1);
        REQUIRE(r.state(0) == ServiceState::failed);
        r.sup.stop(0);
        CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::operator_stop, 1000);
        CHECK(h.transitions.back().from == ServiceState::failed);
        check_sane(h);
    }
    SUBCASE("stopping after a ready timeout: ends stopped, not in backoff") {
        ServiceSpec t[] = {svc("a")};
        t[0].ready = ReadyMode::notify;
        t[0].ready_timeout = 1s;
        t[0].stop_timeout = 3s;
        rig r(t);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        h.advance(1s);
        REQUIRE(r.state(0) == ServiceState::stopping);
        h.advance(1s);
        r.sup.stop(0);
        CHECK(h.kills.size() == 1); // no second stop signal
        h.advance(2s);
        REQUIRE(h.kills.size() == 2);
        CHECK(h.kills[1].sig == SIGKILL);
        CHECK(h.kills[1].at_ms == 4000);
        CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::stop_timeout, 4000);
        h.advance(1min);
        CHECK(h.spawns.size() == 1);
        check_sane(h);
    }
}

TEST_CASE("a dependency that stops being ready during start_delay holds the spawn") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    t[0].backoff_initial = 5s;
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    t[1].start_delay = 2s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    REQUIRE(r.state(1) == ServiceState::starting);
    h.advance(1s);
    h.exit(0, 1); // a: backoff until 6 s
    h.advance(1s);
    // b's delay is over but a is not ready: b must not start now.
    CHECK(h.spawns_of(1).empty());
    CHECK(r.state(1) == ServiceState::waiting);
    h.advance(4s);
    CHECK(r.state(0) == ServiceState::ready); // a again, at 6 s
    CHECK(h.spawns_of(1).empty());
    h.advance(2s);
    const auto sb = h.spawns_of(1);
    CHECK(sb.size() == 1);
    if (!sb.empty()) {
        CHECK(sb[0].at_ms == 8000);
    }
    check_sane(h);
}

TEST_CASE("start() during an operator stop starts it again after the exit, budget cleared") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    for (int k = 0; k < 2; ++k) { // two crashes: restarts 2
        h.advance(1s);
        h.exit(0, 1);
        h.advance(std::chrono::seconds(1 << k));
    }
    REQUIRE(r.at(0).restarts == 2);
    r.sup.stop(0);
    h.advance(1s);
    r.sup.start(0); // still stopping: starts once it has exited
    CHECK(r.state(0) == ServiceState::stopping);
    h.die(0, SIGTERM);
    auto ta = h.of(0);
    REQUIRE(ta.size() >= 3);
    CHECK_TR(ta[ta.size() - 3], ServiceState::stopped, Reason::stopped_by_request, 6000);
    CHECK_TR(ta[ta.size() - 2], ServiceState::starting, Reason::operator_start, 6000);
    CHECK(ta[ta.size() - 2].restarts == 0);
    CHECK(r.state(0) == ServiceState::ready);
    // The budget was cleared: the next crash backs off 1 s.
    h.advance(1s);
    h.exit(0, 1);
    CHECK(h.transitions.back().delay_ms == 1000);
    CHECK(h.transitions.back().restarts == 1);
    check_sane(h);
}

TEST_CASE("stop() after restart() while stopping cancels the restart") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    r.sup.restart(0);
    CHECK(r.state(0) == ServiceState::stopping);
    r.sup.stop(0);
    CHECK(h.kills.size() == 1);
    h.advance(500ms);
    h.die(0, SIGTERM);
    CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::stopped_by_request, 1500);
    h.advance(1min);
    CHECK(h.spawns.size() == 1);
    check_sane(h);
}

TEST_CASE("restart() of a running service: stop then start, not counted as a crash") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.set_on_stop_signal(0, fake_host::on_signal::die);
    r.sup.start_all();
    // Two crashes: restarts 2, next delay 4 s.
    for (int k = 0; k < 2; ++k) {
        h.advance(1s);
        h.exit(0, 1);
        h.advance(std::chrono::seconds(1 << k));
    }
    REQUIRE(r.state(0) == ServiceState::ready);
    REQUIRE(r.at(0).restarts == 2);
    const std::int64_t now = h.elapsed_ms();
    const std::size_t mark = h.transitions.size();
    r.sup.restart(0);
    h.settle();
    REQUIRE(h.transitions.size() == mark + 4);
    CHECK_TR(h.transitions[mark], ServiceState::stopping, Reason::operator_restart, now);
    CHECK_TR(h.transitions[mark + 1], ServiceState::stopped, Reason::stopped_by_request, now);
    CHECK_TR(h.transitions[mark + 2], ServiceState::starting, Reason::operator_restart, now);
    CHECK_TR(h.transitions[mark + 3], ServiceState::ready, Reason::ready_started, now);
    CHECK(h.transitions[mark + 2].restarts == 0);
    CHECK(r.at(0).total_restarts == 2);
    CHECK(r.at(0).by_cause[static_cast<std::size_t>(RestartCause::operator_)] == 1);
    CHECK(r.at(0).by_cause[static_cast<std::size_t>(RestartCause::crash)] == 2);
    CHECK(r.at(0).death_count == 3); // two crashes and the operator's stop
    CHECK(r.at(0).deaths[2].reason == Reason::stopped_by_request);
    CHECK(r.at(0).started != mono_time{}); // running again
    // The budget was cleared: the next crash backs off 1 s.
    h.advance(1s);
    h.exit(0, 1);
    CHECK(h.transitions.back().delay_ms == 1000);
    CHECK(h.transitions.back().restarts == 1);

    SUBCASE("restart() of one that ignores its stop signal waits for the SIGKILL") {
        h.advance(1s);
        h.set_on_stop_signal(0, fake_host::on_signal::ignore);
        const std::int64_t at = h.elapsed_ms();
        r.sup.restart(0);
        h.advance(4999ms);
        CHECK(r.state(0) == ServiceState::stopping);
        h.advance(1ms);
        CHECK(r.state(0) == ServiceState::ready);
        auto ta = h.of(0);
        CHECK_TR(ta[ta.size() - 3], ServiceState::stopped, Reason::stop_timeout, at + 5000);
        CHECK_TR(ta[ta.size() - 2], ServiceState::starting, Reason::operator_restart, at + 5000);
    }
    check_sane(h);
}

TEST_CASE("spawn failure: ExecFailed with its errno, then backoff and a retry") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.script_spawn_error(0, Error(Reason::exec_failed, ENOENT, "a"));
    h.script_spawn_error(0, Error(Reason::spawn_failed, EAGAIN, "a"));
    r.sup.start_all();
    auto ta = h.of(0);
    REQUIRE(ta.size() == 2);
    CHECK_TR(ta[1], ServiceState::backoff, Reason::exec_failed, 0);
    CHECK(ta[1].sys_errno == ENOENT);
    CHECK(ta[1].delay_ms == 1000);
    CHECK(ta[1].restarts == 1);
    CHECK(ta[1].pid == 0);
    h.advance(1s);
    CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::spawn_failed, 1000);
    CHECK(h.transitions.back().sys_errno == EAGAIN);
    CHECK(h.transitions.back().delay_ms == 2000);
    h.advance(2s);
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(h.spawns.size() == 3);
    check_sane(h);
}

TEST_CASE("a zero backoff restarts at once after an exit, and one tick later after a spawn "
          "failure") {
    ServiceSpec t[] = {svc("a")};
    t[0].backoff_initial = 0s;
    t[0].backoff_max = 0s;
    t[0].max_restarts = 5;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    const std::size_t mark = h.transitions.size();
    h.exit(0, 1);
    CHECK(h.transitions.size() == mark + 3);
    if (h.transitions.size() == mark + 3) {
        CHECK_TR(h.transitions[mark], ServiceState::backoff, Reason::process_exited, 1000);
        CHECK(h.transitions[mark].delay_ms == 0);
        CHECK_TR(h.transitions[mark + 1], ServiceState::starting, Reason::backoff_elapsed, 1000);
        CHECK_TR(h.transitions[mark + 2], ServiceState::ready, Reason::ready_started, 1000);
    }
    CHECK(h.spawns.size() == 2);
    CHECK(h.pending_timers() == 0);

    // A spawn that fails at once goes through the timer (due at the next
    // turn of the loop, not in this call): no recursion.
    h.script_spawn_error(0, Error(Reason::exec_failed, ENOENT, "a"));
    h.script_spawn_error(0, Error(Reason::exec_failed, ENOENT, "a"));
    h.advance(1s);
    h.exit(0, 1);
    CHECK(r.state(0) == ServiceState::backoff);
    CHECK(h.transitions.back().reason == Reason::exec_failed);
    CHECK(h.pending_timers() == 1);
    CHECK(h.spawns.size() == 3);
    h.advance(0ms);
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(h.spawns.size() == 5);
    CHECK(h.spawns.back().at_ms == 2000);
    CHECK(r.at(0).restarts == 4);
    // The budget still counts zero-delay restarts.
    h.advance(1s);
    h.exit(0, 1);
    CHECK(r.at(0).restarts == 5);
    h.advance(1s);
    h.exit(0, 1);
    CHECK(r.state(0) == ServiceState::failed);
    CHECK(r.at(0).reason == Reason::max_restarts_exhausted);
    check_sane(h);
}

TEST_CASE("jitter: delays stay within +/-j% of the base, differ between services, repeat per "
          "seed") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    for (auto& s : t) {
        s.backoff_jitter_percent = 20;
        s.backoff_max = 60s;
    }
    // Both crash 1 s after every start; returns each service's delays (ms).
    auto run = [&](std::uint64_t seed, std::vector<std::int64_t>* delays) {
        rig r(t, seed);
        fake_host& h = r.host;
        INFO(h.log());
        r.sup.start_all();
        std::int64_t base = 1000;
        for (int k = 0; k < 5; ++k) {
            std::int64_t entered[2] = {0, 0};
            h.advance(1s);
            for (std::uint32_t i = 0; i < 2; ++i) {
                h.exit(i, 1);
                const transition_rec& b = h.transitions.back();
                REQUIRE(b.to == ServiceState::backoff);
                CHECK(b.delay_ms >= base * 80 / 100);
                CHECK(b.delay_ms <= base * 120 / 100);
                delays[i].push_back(b.delay_ms);
                entered[i] = b.at_ms;
            }
            // Wait for both restarts; each comes after its own delay.
            h.advance(std::chrono::milliseconds(base * 120 / 100 + 1));
            for (std::uint32_t i = 0; i < 2; ++i) {
                REQUIRE(r.state(i) == ServiceState::ready);
                const std::int64_t waited = h.spawns_of(i).back().at_ms - entered[i];
                // The transition's delay is truncated to ms, the timer rounds up.
                CHECK(waited >= delays[i].back());
                CHECK(waited <= delays[i].back() + 1);
            }
            base *= 2;
        }
        check_sane(h);
    };
    std::vector<std::int64_t> d1[2], d2[2], d3[2];
    run(7, d1);
    run(7, d2);
    run(8, d3);
    CHECK(d1[0] != d1[1]); // services that crash together do not restart together
    CHECK(d1[0] == d2[0]);
    CHECK(d1[1] == d2[1]);
    CHECK(d1[0] != d3[0]);
    bool spread = false;
    for (std::size_t k = 0; k < d1[0].size(); ++k) {
        const std::int64_t base = 1000LL << k;
        spread = spread || d1[0][k] != base || d1[1][k] != base;
    }
    CHECK(spread); // jitter is applied at all
}

TEST_CASE("runtime stop: reverse dependency order, each its fair share of the budget") {
    // c depends on b depends on a; stop_timeout 30 s is never the limit here.
    ServiceSpec t[] = {svc("a"), svc("b"), svc("c")};
    const std::string_view b_deps[] = {"a"};
    const std::string_view c_deps[] = {"b"};
    t[1].depends_on = b_deps;
    t[2].depends_on = c_deps;
    for (auto& s : t) {
        s.stop_timeout = 30s;
    }
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    const std::uint32_t a = 0, b = 1, c = 2;
    r.sup.start_all();
    h.advance(1s);
    REQUIRE(r.state(a) == ServiceState::ready);
    REQUIRE(r.state(b) == ServiceState::ready);
    REQUIRE(r.state(c) == ServiceState::ready);

    SUBCASE("every service ignores its stop signal: SIGKILL at 1 s, 2 s, 3 s") {
        r.sup.stop_all(3s);
        CHECK(r.sup.stopping_all());
        REQUIRE(h.kills.size() == 1);
        CHECK(h.kills[0].service == c);
        CHECK(h.kills[0].sig == SIGTERM);
        h.advance(999ms);
        CHECK(h.kills.size() == 1);
        h.advance(1ms);
        h.advance(1s);
        h.advance(1s);
        struct k {
            std::uint32_t service;
            int sig;
            std::int64_t at_ms;
        };
        const k want[] = {{c, SIGTERM, 1000}, {c, SIGKILL, 2000}, {b, SIGTERM, 2000},
                          {b, SIGKILL, 3000}, {a, SIGTERM, 3000}, {a, SIGKILL, 4000}};
        REQUIRE(h.kills.size() == 6);
        for (std::size_t i = 0; i < 6; ++i) {
            CAPTURE(i);
            CHECK(h.kills[i].service == want[i].service);
            CHECK(h.kills[i].sig == want[i].sig);
            CHECK(h.kills[i].at_ms == want[i].at_ms);
        }
        for (std::uint32_t i = 0; i < 3; ++i) {
            CHECK(r.state(i) == ServiceState::stopped);
            CHECK(h.of(i).back().reason == Reason::stop_timeout);
            CHECK(h.of(i)[h.of(i).size() - 2].reason == Reason::runtime_stop);
        }
        CHECK(h.all_stopped_calls == 1);
        CHECK(h.all_stopped_at_ms == 4000);
        CHECK(h.pending_timers() == 0);
    }
    SUBCASE("c exits 200 ms after its signal: b gets half of the 2.8 s left") {
        r.sup.stop_all(3s);
        h.advance(200ms);
        h.die(c, SIGTERM);
        CHECK_TR(h.of(c).back(), ServiceState::stopped, Reason::stopped_by_request, 1200);
        REQUIRE(h.kills.size() == 2);
        CHECK(h.kills[1].service == b);
        CHECK(h.kills[1].at_ms == 1200);
        h.advance(1399ms);
        CHECK(h.kills.size() == 2);
        h.advance(1ms);
        REQUIRE(h.kills.size() == 4);
        CHECK(h.kills[2].service == b);
        CHECK(h.kills[2].sig == SIGKILL);
        CHECK(h.kills[2].at_ms == 2600);
        CHECK(h.kills[3].service == a);
        CHECK(h.kills[3].sig == SIGTERM);
        h.advance(1400ms);
        REQUIRE(h.kills.size() == 5);
        CHECK(h.kills[4].service == a);
        CHECK(h.kills[4].sig == SIGKILL);
        CHECK(h.kills[4].at_ms == 4000);
        CHECK(h.all_stopped_calls == 1);
    }
    SUBCASE("services that exit promptly: done at once") {
        for (std::uint32_t i = 0; i < 3; ++i) {
            h.set_on_stop_signal(i, fake_host::on_signal::die);
        }
        r.sup.stop_all(3s);
        h.settle();
        REQUIRE(h.kills.size() == 3);
        CHECK(h.kills[0].service == c);
        CHECK(h.kills[1].service == b);
        CHECK(h.kills[2].service == a);
        for (const auto& kr : h.kills) {
            CHECK(kr.sig == SIGTERM);
            CHECK(kr.at_ms == 1000);
        }
        for (std::uint32_t i = 0; i < 3; ++i) {
            CHECK_TR(h.of(i).back(), ServiceState::stopped, Reason::stopped_by_request, 1000);
        }
        CHECK(h.all_stopped_calls == 1);
        CHECK(h.all_stopped_at_ms == 1000);
        CHECK(h.pending_timers() == 0);
    }
    // Whatever happened, nothing starts again and all_stopped came once.
    h.advance(1min);
    CHECK(h.all_stopped_calls == 1);
    CHECK(h.spawns.size() == 3);
    r.sup.stop_all(3s); // idempotent
    r.sup.start(0);     // refused while the runtime stops
    h.advance(1min);
    CHECK(h.all_stopped_calls == 1);
    CHECK(h.spawns.size() == 3);
    check_sane(h);
}

TEST_CASE("runtime stop: independent services are signalled together") {
    ServiceSpec t[] = {svc("x"), svc("y"), svc("z")};
    const std::string_view z_deps[] = {"x"};
    t[2].depends_on = z_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    r.sup.stop_all(10s);
    REQUIRE(h.kills.size() == 2);
    CHECK(h.kills[0].service == 1);
    CHECK(h.kills[1].service == 2);
    CHECK(h.kills[0].at_ms == 1000);
    CHECK(h.kills[1].at_ms == 1000);
    CHECK(r.state(0) == ServiceState::ready);
    h.advance(100ms);
    h.die(2, SIGTERM);
    REQUIRE(h.kills.size() == 3);
    CHECK(h.kills[2].service == 0);
    CHECK(h.kills[2].at_ms == 1100);
    h.die(0, SIGTERM);
    CHECK(h.all_stopped_calls == 0); // y is still there
    h.die(1, SIGTERM);
    CHECK(h.all_stopped_calls == 1);
    CHECK(h.all_stopped_at_ms == 1100);
    check_sane(h);
}

TEST_CASE("runtime stop: the total deadline kills every survivor; one that outlives SIGKILL is "
          "abandoned") {
    ServiceSpec t[] = {svc("a"), svc("b"), svc("w"), svc("n")};
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    t[0].stop_timeout = 30s;
    t[1].stop_timeout = 30s;
    t[2].stop_timeout = 30s;
    t[3].ready = ReadyMode::notify; // stays running, never ready
    t[3].ready_timeout = 0s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    // w is already stopping (an operator stop with a 30 s grace) when the
    // runtime stop begins: the 3 s deadline still ends it.
    r.sup.stop(2);
    h.advance(1s);
    h.set_ignores_sigkill(1, true);
    r.sup.stop_all(3s);
    h.advance(2999ms);
    CHECK(h.kills_of(2).size() == 1);
    CHECK(h.kills_of(3).size() == 1);
    CHECK(h.kills_of(0).empty());
    h.advance(1ms);
    // At 5 s: SIGKILL to w (its own grace had 27 s left), to b (its share
    // was 1.5 s, so it already had one) and to a, signalled only now.
    auto kw = h.kills_of(2);
    REQUIRE(kw.size() == 2);
    CHECK(kw[1].sig == SIGKILL);
    CHECK(kw[1].at_ms == 5000);
    CHECK(r.state(2) == ServiceState::stopped);
    auto kb = h.kills_of(1);
    REQUIRE(kb.size() == 2);
    CHECK(kb[0].at_ms == 2000);
    CHECK(kb[1].sig == SIGKILL);
    CHECK(kb[1].at_ms == 3500);
    auto ka = h.kills_of(0);
    REQUIRE(ka.size() == 2);
    CHECK(ka[0].sig == SIGTERM);
    CHECK(ka[0].at_ms == 5000);
    CHECK(ka[1].sig == SIGKILL);
    CHECK(ka[1].at_ms == 5000);
    auto kn = h.kills_of(3);
    REQUIRE(kn.size() == 2);
    CHECK(kn[0].at_ms == 2000);
    CHECK(kn[1].sig == SIGKILL);
    CHECK(kn[1].at_ms == 5000);
    CHECK(r.state(0) == ServiceState::stopped);
    CHECK(r.state(1) == ServiceState::stopping); // alive despite SIGKILL
    CHECK(h.all_stopped_calls == 0);

    // b never dies: given up 2 s after the deadline's SIGKILL.
    h.advance(1999ms);
    CHECK(h.all_stopped_calls == 0);
    h.advance(1ms);
    CHECK(r.state(1) == ServiceState::stopped);
    CHECK(h.of(1).back().reason == Reason::stop_timeout);
    CHECK(h.of(1).back().detail.find("abandoned") != std::string::npos);
    CHECK(h.all_stopped_calls == 1);
    CHECK(h.all_stopped_at_ms == 7000);
    CHECK(h.pending_timers() == 0);
    for (std::uint32_t i = 0; i < 4; ++i) {
        CHECK(r.state(i) == ServiceState::stopped);
    }
    check_sane(h);
}

TEST_CASE("runtime stop with nothing running reports at once; waiting and backoff just stop") {
    ServiceSpec t[] = {svc("a"), svc("b"), svc("f")};
    t[0].start_delay = 10s;
    t[2].restart = RestartPolicy::never;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    h.exit(1, 1); // b: backoff
    h.exit(2, 1); // f: failed
    r.sup.stop_all(5s);
    CHECK(h.all_stopped_calls == 1);
    CHECK(h.all_stopped_at_ms == 1000);
    CHECK_TR(h.of(0).back(), ServiceState::stopped, Reason::runtime_stop, 1000);
    CHECK_TR(h.of(1).back(), ServiceState::stopped, Reason::runtime_stop, 1000);
    CHECK(r.state(2) == ServiceState::failed);
    CHECK(h.pending_timers() == 0);
    CHECK(h.kills.empty());
    h.advance(1min);
    CHECK(h.spawns.size() == 2);
    check_sane(h);
}

// Regression: operator actions from the transition hook re-entered the
// supervisor, which then carried on with the step the hook had superseded
// (a stopped service was spawned; a stop's grace was overwritten by the
// ready timeout). The third case guards the backoff path the same way.
TEST_CASE("an operator stop from the hook on entering starting spawns nothing") {
    ServiceSpec t[] = {svc("a")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.on_transition = [&](const transition_rec& tr) {
        if (tr.to == ServiceState::starting) {
            r.sup.stop(0);
        }
    };
    r.sup.start_all();
    h.advance(1min);
    CHECK(h.spawns.empty());
    CHECK(r.state(0) == ServiceState::stopped);
    CHECK_TR(h.transitions.back(), ServiceState::stopped, Reason::operator_stop, 0);
    check_sane(h);
}

TEST_CASE("an operator stop from the hook on entering running keeps the stop's grace") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    t[0].ready_timeout = 20s;
    t[0].stop_timeout = 2s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.set_on_stop_signal(0, fake_host::on_signal::ignore);
    h.on_transition = [&](const transition_rec& tr) {
        if (tr.to == ServiceState::running) {
            r.sup.stop(0);
        }
    };
    r.sup.start_all();
    REQUIRE(h.spawns.size() == 1);
    CHECK(r.state(0) == ServiceState::stopping);
    h.advance(1min);
    REQUIRE(h.kills.size() == 2);
    CHECK(h.kills[1].sig == SIGKILL);
    CHECK(h.kills[1].at_ms == 2000); // stop_timeout, not ready_timeout
    CHECK(r.state(0) == ServiceState::stopped);
    check_sane(h);
}

TEST_CASE("an operator start from the hook on entering backoff restarts once, at once") {
    ServiceSpec t[] = {svc("a")};
    t[0].backoff_initial = 5s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    bool started = false;
    h.on_transition = [&](const transition_rec& tr) {
        if (tr.to == ServiceState::backoff && !started) {
            started = true;
            r.sup.start(0);
        }
    };
    r.sup.start_all();
    h.advance(1s);
    h.exit(0, 1);
    CHECK(h.spawns.size() == 2); // the operator's start, at 1 s
    CHECK(h.spawns_of(0).back().at_ms == 1000);
    h.advance(10s);
    CHECK(h.spawns.size() == 2); // no leftover backoff timer spawns it again
    CHECK(r.state(0) == ServiceState::ready);
    check_sane(h);
}

// ---- slots, for reload (occupy, redefine, reload_stop, relink) --------------

namespace {

std::size_t cause(const custos::sup::unit& u, RestartCause c) {
    return static_cast<std::size_t>(u.by_cause[static_cast<std::size_t>(c)]);
}

// relink() to the plan of `table`, whose service k sits in slot_of[k].
void relink_to(rig& r, std::span<const ServiceSpec> table, std::span<const std::uint32_t> slot_of,
               std::span<const custos::ProbeSpec> probes = {}) {
    custos::tbl::plan next;
    REQUIRE(custos_test::build_plan(next, table, probes));
    auto res = r.sup.relink(next, slot_of);
    REQUIRE(res.has_value());
}

} // namespace

TEST_CASE("slots: vacant slots are never started, found or stopped; the runtime stop finishes "
          "with the occupied ones") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    for (auto& s : t) {
        s.stop_timeout = 1s;
    }
    rig r(t, 1, {}, 5);
    fake_host& h = r.host;
    INFO(h.log());
    CHECK(r.sup.size() == 5);
    CHECK(!r.sup.vacant(0));
    CHECK(!r.sup.vacant(1));
    for (std::uint32_t i = 2; i < 5; ++i) {
        CAPTURE(i);
        CHECK(r.sup.vacant(i));
        CHECK(r.state(i) == ServiceState::stopped);
        CHECK(r.at(i).name.empty());
        CHECK(r.at(i).ndeps == 0);
        CHECK(r.at(i).ndependents == 0);
        CHECK(r.at(i).rank == 0);
    }
    CHECK(r.sup.vacant(5)); // past the end: nothing there either
    CHECK(r.sup.find("") == UINT32_MAX);
    CHECK(r.sup.find("b") == 1);
    CHECK(r.at(1).rank == 1);
    CHECK(r.at(0).ndependents == 1);

    SUBCASE("start_all() with the safe mode's flags, one per table service only") {
        // Two flags: reading a third would be past the array (ASan sees it).
        auto only = std::make_unique<bool[]>(2);
        only[0] = true;
        only[1] = false;
        r.sup.start_all(only.get());
        CHECK(h.spawns.size() == 1);
        CHECK(r.state(1) == ServiceState::stopped);
    }
    SUBCASE("start_all(), operator actions, the runtime stop") {
        r.sup.start_all();
        CHECK(h.spawns.size() == 2);
        for (std::uint32_t i = 2; i < 5; ++i) {
            r.sup.start(i);
            r.sup.restart(i);
            r.sup.start(i, Reason::reload_added);
            r.sup.stop(i);
            r.sup.reload_stop(i, true);
            r.sup.reload_stop(i, false);
            CHECK(!r.at(i).wanted);
            CHECK(h.of(i).empty());
        }
        h.advance(1min);
        CHECK(h.spawns.size() == 2);
        r.sup.stop_all(10s);
        h.advance(10s);
        CHECK(h.all_stopped_calls == 1);
        CHECK(h.all_stopped_at_ms == 60'000 + 2'000); // b's 1 s grace, then a's
        for (std::uint32_t i = 2; i < 5; ++i) {
            CHECK(h.of(i).empty());
            CHECK(h.kills_of(i).empty());
        }
    }
    check_sane(h);
}

TEST_CASE("slots: occupy + start(ReloadAdded): a fresh record, started once its dependencies "
          "are ready") {
    ServiceSpec t[] = {svc("a")};
    t[0].ready = ReadyMode::notify;
    rig r(t, 7, {}, 3);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::running);

    ServiceSpec b = svc("b");
    const std::string_view b_deps[] = {"a"};
    b.depends_on = b_deps;
    b.backoff_initial = 3s;
    REQUIRE(r.sup.occupy(1, b, "b").has_value());
    CHECK(!r.sup.vacant(1));
    CHECK(r.sup.find("b") == 1);
    CHECK(r.state(1) == ServiceState::stopped);
    CHECK(!r.at(1).wanted);
    CHECK(r.at(1).death_count == 0);
    CHECK(r.at(1).total_restarts == 0);
    CHECK(h.of(1).empty()); // occupy() reports nothing

    // An occupied slot cannot be occupied again.
    auto twice = r.sup.occupy(1, b, "b");
    REQUIRE(!twice.has_value());
    CHECK(twice.error().reason() == Reason::invalid_argument);

    const ServiceSpec next[] = {t[0], b};
    const std::uint32_t slot_of[] = {0, 1};
    relink_to(r, next, slot_of);
    CHECK(r.at(1).ndeps == 1);
    CHECK(r.at(0).ndependents == 1);
    CHECK(r.at(1).rank == 1);
    CHECK(h.of(1).empty()); // not wanted yet: relink() starts nothing

    h.advance(1s);
    r.sup.start(1, Reason::reload_added);
    CHECK(r.at(1).wanted);
    auto tb = h.of(1);
    REQUIRE(tb.size() == 1);
    CHECK_TR(tb[0], ServiceState::waiting, Reason::waiting_for_dependencies, 1000);
    h.advance(1s);
    r.sup.on_ready(0, Reason::ready_notified);
    tb = h.of(1);
    REQUIRE(tb.size() == 3);
    CHECK_TR(tb[1], ServiceState::starting, Reason::dependencies_ready, 2000);
    CHECK_TR(tb[2], ServiceState::ready, Reason::ready_started, 2000);

    // Its policy is the spec's: a crash backs off 3 s.
    h.advance(1s);
    h.exit(1, 1);
    CHECK_TR(h.transitions.back(), ServiceState::backoff, Reason::process_exited, 3000);
    CHECK(h.transitions.back().delay_ms == 3000);

    // With its dependencies ready, it starts at once, saying ReloadAdded.
    ServiceSpec c = svc("c");
    REQUIRE(r.sup.occupy(2, c, "c").has_value());
    r.sup.start(2, Reason::reload_added);
    auto tc = h.of(2);
    REQUIRE(tc.size() == 2);
    CHECK_TR(tc[0], ServiceState::starting, Reason::reload_added, 3000);
    CHECK_TR(tc[1], ServiceState::ready, Reason::ready_started, 3000);
    check_sane(h);
}

TEST_CASE("slots: occupy seeds the backoff as init does for that slot") {
    // Jitter on: the same slot with the same seed draws the same delays,
    // whether laid out by init or occupied later.
    ServiceSpec j = svc("j");
    j.backoff_jitter_percent = 50;
    ServiceSpec t1[] = {svc("x"), j};
    rig first(t1, 42);
    ServiceSpec t2[] = {svc("x")};
    rig second(t2, 42, {}, 2);
    REQUIRE(second.sup.occupy(1, j, "j").has_value());
    second.sup.start(1, Reason::reload_added);
    first.sup.start(1);
    for (int k = 0; k < 4; ++k) {
        first.host.advance(1s);
        second.host.advance(1s);
        first.host.exit(1, 1);
        second.host.exit(1, 1);
        CAPTURE(k);
        CHECK(first.host.transitions.back().delay_ms == second.host.transitions.back().delay_ms);
        first.host.advance(20s); // past any delay: 8 s + 50%
        second.host.advance(20s);
        REQUIRE(first.state(1) == ServiceState::ready);
        REQUIRE(second.state(1) == ServiceState::ready);
    }
}

TEST_CASE("slots: reload_stop removed, with a process: stopping and stopped say ReloadRemoved; "
          "the slot is vacant from that transition and can be occupied again") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    REQUIRE(r.state(1) == ServiceState::ready);
    const std::size_t a_before = h.of(0).size();

    int vacant_in_hook = -1;
    std::uint32_t found_in_hook = 0;
    h.on_transition = [&](const transition_rec& tr) {
        if (tr.service == 1 && tr.to == ServiceState::stopped) {
            vacant_in_hook = r.sup.vacant(1) ? 1 : 0;
            found_in_hook = r.sup.find("b");
            CHECK(tr.name == "b"); // the transition still names it
        }
    };

    SUBCASE("it exits on its stop signal") {
        h.set_on_stop_signal(1, fake_host::on_signal::die);
        r.sup.reload_stop(1, false);
        CHECK(!r.sup.vacant(1)); // until its exit is delivered
        h.settle();
        CHECK(r.sup.vacant(1));
        auto tb = h.of(1);
        REQUIRE(tb.size() == 4);
        CHECK_TR(tb[2], ServiceState::stopping, Reason::reload_removed, 1000);
        CHECK_TR(tb[3], ServiceState::stopped, Reason::reload_removed, 1000);
        CHECK(tb[3].detail.empty());
        CHECK(tb[3].exit.signal == SIGTERM);
    }
    SUBCASE("it ignores it: SIGKILL at its stop_timeout, StopTimeout in the detail") {
        r.sup.reload_stop(1, false);
        CHECK(r.state(1) == ServiceState::stopping);
        CHECK(!r.sup.vacant(1));
        CHECK(r.sup.find("b") == 1);
        // Operator starts and restarts of a service being removed do nothing.
        r.sup.start(1);
        r.sup.restart(1);
        r.sup.reload_stop(1, false);
        r.sup.reload_stop(1, true);
        h.advance(4999ms);
        CHECK(!r.sup.vacant(1));
        h.advance(1ms);
        CHECK(r.sup.vacant(1));
        auto tb = h.of(1);
        REQUIRE(tb.size() == 4);
        CHECK_TR(tb[2], ServiceState::stopping, Reason::reload_removed, 1000);
        CHECK_TR(tb[3], ServiceState::stopped, Reason::reload_removed, 6000);
        CHECK(tb[3].detail == "StopTimeout");
        REQUIRE(h.kills_of(1).size() == 2);
        CHECK(h.kills_of(1)[1].sig == SIGKILL);
    }
    CHECK(vacant_in_hook == 1);
    CHECK(found_in_hook == UINT32_MAX);
    h.on_transition = nullptr;
    CHECK(r.sup.find("b") == UINT32_MAX);
    CHECK(r.at(1).name.empty());
    CHECK(!r.at(1).wanted);
    CHECK(r.at(1).ndeps == 0);
    CHECK(r.at(0).ndependents == 0);
    CHECK(r.at(1).rank == 0);
    CHECK(h.of(0).size() == a_before); // a untouched
    CHECK(r.state(0) == ServiceState::ready);
    h.advance(1min);
    CHECK(h.spawns_of(1).size() == 1); // never started again

    // The slot takes another service, with fresh counters.
    ServiceSpec c = svc("c");
    REQUIRE(r.sup.occupy(1, c, "c").has_value());
    CHECK(r.sup.find("c") == 1);
    CHECK(r.at(1).death_count == 0);
    r.sup.start(1, Reason::reload_added);
    CHECK(r.state(1) == ServiceState::ready);
    CHECK(h.spawns_of(1).size() == 2);
    check_sane(h);
}

TEST_CASE("slots: reload_stop removed, without a process: one transition to stopped, vacant") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);

    SUBCASE("in backoff: its timer goes too") {
        h.exit(0, 1);
        REQUIRE(r.state(0) == ServiceState::backoff);
        const std::size_t before = h.of(0).size();
        r.sup.reload_stop(0, false);
        auto ta = h.of(0);
        REQUIRE(ta.size() == before + 1);
        CHECK(ta.back().from == ServiceState::backoff);
        CHECK_TR(ta.back(), ServiceState::stopped, Reason::reload_removed, 1000);
        CHECK(r.sup.vacant(0));
        CHECK(h.pending_timers() == 0);
        h.advance(1min);
        CHECK(h.spawns_of(0).size() == 1);
    }
    SUBCASE("stopped by an operator: stopped -> stopped") {
        h.set_on_stop_signal(0, fake_host::on_signal::die);
        r.sup.stop(0);
        h.settle();
        REQUIRE(r.state(0) == ServiceState::stopped);
        const std::size_t before = h.of(0).size();
        r.sup.reload_stop(0, false);
        auto ta = h.of(0);
        REQUIRE(ta.size() == before + 1);
        CHECK(ta.back().from == ServiceState::stopped);
        CHECK_TR(ta.back(), ServiceState::stopped, Reason::reload_removed, 1000);
        CHECK(r.sup.vacant(0));
    }
    CHECK(r.sup.find("a") == UINT32_MAX);
    CHECK(r.sup.find("b") == 1);
    CHECK(r.state(1) == ServiceState::ready);
    check_sane(h);
}

TEST_CASE("slots: a dependent waiting only for a removed service starts once it is vacant") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    t[0].restart = RestartPolicy::never;
    t[0].ready = ReadyMode::notify; // never ready: b waits
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    h.exit(0, 1);
    REQUIRE(r.state(0) == ServiceState::failed);
    REQUIRE(r.state(1) == ServiceState::waiting);
    // The runtime would relink first; without it, the vacancy drops the edge.
    r.sup.reload_stop(0, false);
    CHECK(r.sup.vacant(0));
    CHECK(r.at(1).ndeps == 0);
    CHECK(r.state(1) == ServiceState::ready);
    CHECK_TR(h.of(1).back(), ServiceState::ready, Reason::ready_started, 1000);
    check_sane(h);
}

TEST_CASE("slots: reload_stop changed restarts with the new policy, counters kept, counted as "
          "an operator restart") {
    ServiceSpec t[] = {svc("a")};
    t[0].stop_timeout = 2s;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    // Two crashes: restarts 2, death_count 2.
    for (int k = 0; k < 2; ++k) {
        h.advance(1s);
        h.exit(0, 1);
        h.advance(std::chrono::seconds(1 << k));
    }
    REQUIRE(r.state(0) == ServiceState::ready);
    REQUIRE(r.at(0).restarts == 2);

    ServiceSpec changed = t[0];
    changed.backoff_initial = 3s;
    changed.stop_signal = SIGINT;
    changed.stop_timeout = 7s;

    const std::int64_t now = h.elapsed_ms();
    const std::size_t mark = h.transitions.size();
    SUBCASE("redefine, then reload_stop (the runtime's order)") {
        REQUIRE(r.sup.redefine(0, changed).has_value());
        r.sup.reload_stop(0, true);
    }
    SUBCASE("reload_stop, then redefine while it stops") {
        r.sup.reload_stop(0, true);
        REQUIRE(r.sup.redefine(0, changed).has_value());
    }
    // The old process is stopped as it was started: SIGTERM, 2 s.
    REQUIRE(h.kills.size() == 1);
    CHECK(h.kills[0].sig == SIGTERM);
    CHECK_TR(h.transitions[mark], ServiceState::stopping, Reason::reload_changed, now);
    h.advance(2s);
    REQUIRE(h.kills.size() == 2);
    CHECK(h.kills[1].sig == SIGKILL);
    REQUIRE(h.transitions.size() == mark + 4);
    CHECK_TR(h.transitions[mark + 1], ServiceState::stopped, Reason::reload_changed, now + 2000);
    CHECK(h.transitions[mark + 1].detail == "StopTimeout");
    CHECK_TR(h.transitions[mark + 2], ServiceState::starting, Reason::reload_changed, now + 2000);
    CHECK_TR(h.transitions[mark + 3], ServiceState::ready, Reason::ready_started, now + 2000);
    CHECK(h.transitions[mark + 2].restarts == 0);
    const custos::sup::unit& u = r.at(0);
    CHECK(u.restarts == 0);
    CHECK(u.total_restarts == 2);
    CHECK(u.death_count == 3);
    CHECK(cause(u, RestartCause::crash) == 2);
    CHECK(cause(u, RestartCause::operator_) == 1);
    CHECK(u.wanted);

    // The new policy: a crash backs off 3 s; the new process stops on
    // SIGINT with a 7 s grace.
    h.advance(1s);
    h.exit(0, 1);
    CHECK(h.transitions.back().delay_ms == 3000);
    h.advance(3s);
    REQUIRE(r.state(0) == ServiceState::ready);
    r.sup.stop(0);
    CHECK(h.kills.back().sig == SIGINT);
    const std::int64_t stop_at = h.elapsed_ms();
    h.advance(7s);
    CHECK(h.kills.back().sig == SIGKILL);
    CHECK(h.kills.back().at_ms == stop_at + 7000);
    check_sane(h);
}

TEST_CASE("slots: reload_stop changed: an operator-stopped service stays stopped; a failed one "
          "starts again; one waiting or in backoff starts again at once") {
    ServiceSpec t[] = {svc("a"), svc("n")};
    t[0].restart = RestartPolicy::never;
    t[1].ready = ReadyMode::notify;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    h.set_on_stop_signal(0, fake_host::on_signal::die);
    r.sup.start_all();
    h.advance(1s);

    SUBCASE("operator-stopped") {
        r.sup.stop(0);
        h.settle();
        REQUIRE(r.state(0) == ServiceState::stopped);
        const std::size_t before = h.of(0).size();
        r.sup.reload_stop(0, true);
        auto ta = h.of(0);
        REQUIRE(ta.size() == before + 1);
        CHECK(ta.back().from == ServiceState::stopped);
        CHECK_TR(ta.back(), ServiceState::stopped, Reason::reload_changed, 1000);
        CHECK(!r.at(0).wanted);
        CHECK(cause(r.at(0), RestartCause::operator_) == 0);
        h.advance(1min);
        CHECK(h.spawns_of(0).size() == 1);
    }
    SUBCASE("operator stop in progress: ends stopped, saying ReloadChanged") {
        h.set_on_stop_signal(0, fake_host::on_signal::ignore);
        r.sup.stop(0);
        REQUIRE(r.state(0) == ServiceState::stopping);
        r.sup.reload_stop(0, true);
        h.advance(5s);
        CHECK_TR(h.of(0).back(), ServiceState::stopped, Reason::reload_changed, 6000);
        h.advance(1min);
        CHECK(h.spawns_of(0).size() == 1);
    }
    SUBCASE("failed") {
        h.exit(0, 1);
        REQUIRE(r.state(0) == ServiceState::failed);
        const std::size_t before = h.of(0).size();
        r.sup.reload_stop(0, true);
        auto ta = h.of(0);
        REQUIRE(ta.size() == before + 3);
        CHECK(ta[before].from == ServiceState::failed);
        CHECK_TR(ta[before], ServiceState::stopped, Reason::reload_changed, 1000);
        CHECK_TR(ta[before + 1], ServiceState::starting, Reason::reload_changed, 1000);
        CHECK_TR(ta[before + 2], ServiceState::ready, Reason::ready_started, 1000);
        CHECK(cause(r.at(0), RestartCause::operator_) == 1);
    }
    SUBCASE("running, not ready yet: its ready timeout goes with it") {
        REQUIRE(r.state(1) == ServiceState::running);
        h.set_on_stop_signal(1, fake_host::on_signal::die);
        const std::size_t before = h.of(1).size();
        r.sup.reload_stop(1, true);
        h.settle();
        auto tn = h.of(1);
        REQUIRE(tn.size() == before + 4);
        CHECK_TR(tn[before], ServiceState::stopping, Reason::reload_changed, 1000);
        CHECK_TR(tn[before + 1], ServiceState::stopped, Reason::reload_changed, 1000);
        CHECK_TR(tn[before + 2], ServiceState::starting, Reason::reload_changed, 1000);
        CHECK_TR(tn[before + 3], ServiceState::running, Reason::spawned, 1000);
    }
    check_sane(h);
}

TEST_CASE("slots: reload_stop changed of a waiting dependent waits again") {
    ServiceSpec t[] = {svc("n"), svc("b")};
    t[0].ready = ReadyMode::notify;
    const std::string_view b_deps[] = {"n"};
    t[1].depends_on = b_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    REQUIRE(r.state(1) == ServiceState::waiting);
    r.sup.reload_stop(1, true);
    auto tb = h.of(1);
    REQUIRE(tb.size() == 3);
    CHECK_TR(tb[1], ServiceState::stopped, Reason::reload_changed, 0);
    CHECK_TR(tb[2], ServiceState::waiting, Reason::waiting_for_dependencies, 0);
    r.sup.on_ready(0, Reason::ready_notified);
    CHECK(r.state(1) == ServiceState::ready);
    check_sane(h);
}

TEST_CASE("slots: ReloadCapacity for a restart ring larger than the slot's") {
    ServiceSpec t[] = {svc("a"), svc("big")};
    t[1].intensity_restarts = 20;
    t[1].intensity_window = 10s;
    rig r(t, 1, {}, 3);
    ServiceSpec s = svc("a");

    s.intensity_restarts = 16; // every slot holds 16
    CHECK(r.sup.redefine(0, s).has_value());
    s.intensity_restarts = 17;
    auto too_big = r.sup.redefine(0, s);
    REQUIRE(!too_big.has_value());
    CHECK(too_big.error().reason() == Reason::reload_capacity);
    CHECK(too_big.error().subject() == "a");
    CHECK(r.at(0).intensity_n == 16); // unchanged

    ServiceSpec g = svc("big");
    g.intensity_restarts = 20; // init sized its ring for 20
    CHECK(r.sup.redefine(1, g).has_value());
    g.intensity_restarts = 21;
    CHECK(!r.sup.redefine(1, g).has_value());

    ServiceSpec c = svc("c");
    c.intensity_restarts = 17;
    auto occ = r.sup.occupy(2, c, "c");
    REQUIRE(!occ.has_value());
    CHECK(occ.error().reason() == Reason::reload_capacity);
    CHECK(occ.error().subject() == "c");
    CHECK(r.sup.vacant(2));
    c.intensity_restarts = 16;
    CHECK(r.sup.occupy(2, c, "c").has_value());

    auto vac = r.sup.redefine(3, c); // no such slot
    CHECK(!vac.has_value());
}

TEST_CASE("slots: a changed intensity starts its window afresh and is enforced with the new "
          "count") {
    ServiceSpec t[] = {svc("a")};
    t[0].backoff_initial = 0s;
    t[0].backoff_max = 0s;
    t[0].intensity_restarts = 5;
    t[0].intensity_window = 1min;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    for (int k = 0; k < 3; ++k) {
        h.advance(1s);
        h.exit(0, 1); // restarts at once (no backoff floor)
    }
    REQUIRE(r.at(0).rt_count == 3);
    ServiceSpec s = t[0];
    s.intensity_restarts = 2;
    REQUIRE(r.sup.redefine(0, s).has_value());
    CHECK(r.at(0).rt_count == 0);
    h.advance(1s);
    h.exit(0, 1);
    h.advance(1s);
    h.exit(0, 1);
    REQUIRE(r.state(0) == ServiceState::ready);
    h.advance(1s);
    h.exit(0, 1);
    CHECK(r.state(0) == ServiceState::failed);
    CHECK(r.at(0).reason == Reason::restart_intensity_exceeded);
    check_sane(h);
}

TEST_CASE("slots: relink: new edges and ranks, removed services lose theirs, the runtime stop "
          "follows the new order") {
    ServiceSpec t[] = {svc("a"), svc("b"), svc("c")};
    for (auto& s : t) {
        s.stop_timeout = 30s;
    }
    rig r(t, 1, {}, 4);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    const std::size_t before = h.transitions.size();

    // c now depends on a and b (ready): nothing moves, the ranks do.
    ServiceSpec n[] = {t[0], t[1], t[2]};
    const std::string_view c_deps[] = {"a", "b", "a"}; // a repeated name is one edge
    n[2].depends_on = c_deps;
    const std::uint32_t slot_of[] = {0, 1, 2};
    relink_to(r, n, slot_of);
    CHECK(h.transitions.size() == before);
    CHECK(r.at(2).ndeps == 2);
    CHECK(r.at(2).rank == 1);
    CHECK(r.at(0).ndependents == 1);
    CHECK(r.at(1).ndependents == 1);

    SUBCASE("the runtime stop: c first, then a and b together") {
        r.sup.stop_all(3s);
        REQUIRE(h.kills.size() == 1);
        CHECK(h.kills[0].service == 2);
        h.advance(1500ms); // c's share: 3 s / 2
        REQUIRE(h.kills.size() == 4);
        CHECK(h.kills[1].service == 2);
        CHECK(h.kills[1].sig == SIGKILL);
        CHECK(h.kills[2].service == 0);
        CHECK(h.kills[3].service == 1);
        h.advance(1500ms);
        CHECK(h.all_stopped_calls == 1);
    }
    SUBCASE("a removed service still stopping loses its edges at the relink") {
        // c is removed (it ignores SIGTERM); the table is a <- b now.
        r.sup.reload_stop(2, false);
        REQUIRE(r.state(2) == ServiceState::stopping);
        ServiceSpec m[] = {t[0], t[1]};
        const std::string_view b_deps[] = {"a"};
        m[1].depends_on = b_deps;
        const std::uint32_t slots2[] = {0, 1};
        relink_to(r, m, slots2);
        CHECK(r.at(2).ndeps == 0);
        CHECK(r.at(2).ndependents == 0);
        CHECK(r.at(2).rank == 0);
        CHECK(r.at(0).ndependents == 1);
        CHECK(r.at(0).dependents[0] == 1);
        CHECK(r.at(1).rank == 1);
        CHECK(r.state(1) == ServiceState::ready); // not stopped by a relink
        h.advance(30s);
        CHECK(r.sup.vacant(2));
        CHECK(r.at(0).ndependents == 1); // the vacancy left the others' edges alone
        CHECK(r.at(1).ndeps == 1);
    }
    check_sane(h);
}

TEST_CASE("slots: relink: a waiting service whose new dependencies are ready starts; one gaining "
          "a dependency that is not ready keeps running") {
    ServiceSpec t[] = {svc("x"), svc("b"), svc("r")};
    t[0].ready = ReadyMode::notify;
    const std::string_view b_deps[] = {"x"};
    t[1].depends_on = b_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    REQUIRE(r.state(0) == ServiceState::running);
    REQUIRE(r.state(1) == ServiceState::waiting);
    REQUIRE(r.state(2) == ServiceState::ready);
    const std::size_t r_before = h.of(2).size();

    // b depends on r now (ready); r depends on x (not ready).
    ServiceSpec n[] = {t[0], t[1], t[2]};
    const std::string_view nb_deps[] = {"r"};
    const std::string_view nr_deps[] = {"x"};
    n[1].depends_on = nb_deps;
    n[2].depends_on = nr_deps;
    const std::uint32_t slot_of[] = {0, 1, 2};
    relink_to(r, n, slot_of);
    auto tb = h.of(1);
    REQUIRE(tb.size() == 3);
    CHECK_TR(tb[1], ServiceState::starting, Reason::dependencies_ready, 1000);
    CHECK_TR(tb[2], ServiceState::ready, Reason::ready_started, 1000);
    CHECK(h.of(2).size() == r_before); // r keeps running
    CHECK(r.state(2) == ServiceState::ready);
    CHECK(r.at(2).rank == 1);
    CHECK(r.at(1).rank == 2);

    // x becoming ready changes nothing for r, which runs already.
    r.sup.on_ready(0, Reason::ready_notified);
    CHECK(h.of(2).size() == r_before);
    check_sane(h);
}

TEST_CASE("slots: relink maps the plan's indices through slot_of, and a complete graph over "
          "every slot fits") {
    constexpr std::uint32_t n = 8;
    ServiceSpec t[] = {svc("s0")};
    rig r(t, 1, {}, n);
    fake_host& h = r.host;
    INFO(h.log());
    // Slots 1..7 take s1..s7; in the new plan's order, s7 comes first.
    static const std::string names[n] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
    for (std::uint32_t i = 1; i < n; ++i) {
        REQUIRE(r.sup.occupy(i, svc(names[i]), names[i]).has_value());
    }
    // Plan order s7, s6, ..., s0: plan service k is slot n-1-k. Every
    // service depends on every slot below it: n(n-1)/2 edges.
    std::vector<ServiceSpec> plan_specs;
    std::vector<std::vector<std::string_view>> deps(n);
    std::vector<std::uint32_t> slot_of;
    for (std::uint32_t k = 0; k < n; ++k) {
        const std::uint32_t slot = n - 1 - k;
        for (std::uint32_t d = 0; d < slot; ++d) {
            deps[k].push_back(names[d]);
        }
        ServiceSpec s = svc(names[slot]);
        s.depends_on = deps[k];
        plan_specs.push_back(s);
        slot_of.push_back(slot);
    }
    relink_to(r, plan_specs, slot_of);
    for (std::uint32_t i = 0; i < n; ++i) {
        CAPTURE(i);
        CHECK(r.at(i).ndeps == i);
        CHECK(r.at(i).ndependents == n - 1 - i);
        CHECK(r.at(i).rank == i);
        for (std::uint32_t k = 0; k < r.at(i).ndeps; ++k) {
            CHECK(r.at(i).deps[k] < i);
        }
    }
    // Started in slot order: each waits for the one below.
    r.sup.start_all();
    for (std::uint32_t i = 0; i < n; ++i) {
        CHECK(r.state(i) == ServiceState::ready);
    }
    REQUIRE(h.spawns.size() == n);
    for (std::uint32_t i = 0; i < n; ++i) {
        CHECK(h.spawns[i].service == i);
    }

    // A slot_of that does not fit the plan changes nothing.
    custos::tbl::plan p;
    REQUIRE(custos_test::build_plan(p, plan_specs));
    std::vector<std::uint32_t> bad = slot_of;
    bad[1] = bad[0];
    auto dup = r.sup.relink(p, bad);
    REQUIRE(!dup.has_value());
    CHECK(dup.error().reason() == Reason::invalid_argument);
    bad.pop_back();
    CHECK(!r.sup.relink(p, bad).has_value());
    CHECK(r.at(n - 1).ndeps == n - 1);
    check_sane(h);
}

TEST_CASE("slots: removed during a runtime stop, before the stop reached it: its own exit "
          "ends it, vacant") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    const std::string_view b_deps[] = {"a"};
    t[1].depends_on = b_deps;
    rig r(t);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    r.sup.stop_all(20s); // b first (it ignores SIGTERM: 5 s), a waits for it
    r.sup.reload_stop(0, false);
    CHECK(r.state(0) == ServiceState::ready); // the runtime stop's order stands
    CHECK(h.kills_of(0).empty());
    h.advance(1s);
    h.exit(0, 0);
    CHECK(r.sup.vacant(0));
    CHECK_TR(h.of(0).back(), ServiceState::stopped, Reason::reload_removed, 2000);
    h.advance(4s);
    CHECK(h.all_stopped_calls == 1);
    CHECK(h.all_stopped_at_ms == 6000);
    check_sane(h);
}

TEST_CASE("slots: a runtime stop with a removal in progress: the slot is vacant, the stop ends") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    rig r(t, 1, {}, 3);
    fake_host& h = r.host;
    INFO(h.log());
    r.sup.start_all();
    h.advance(1s);
    r.sup.reload_stop(1, false); // b ignores SIGTERM: 5 s grace
    r.sup.reload_stop(0, true);  // a too: it will not start again
    r.sup.stop_all(3s);
    h.advance(3s); // the total deadline: SIGKILL to both
    CHECK(h.all_stopped_calls == 1);
    CHECK(r.sup.vacant(1));
    CHECK_TR(h.of(1).back(), ServiceState::stopped, Reason::reload_removed, 4000);
    CHECK_TR(h.of(0).back(), ServiceState::stopped, Reason::reload_changed, 4000);
    h.advance(1min);
    CHECK(h.spawns.size() == 2);
    check_sane(h);
}

TEST_CASE("slots: fewer slots than services lays out the services") {
    ServiceSpec t[] = {svc("a"), svc("b")};
    rig r(t, 1, {}, 1);
    CHECK(r.sup.size() == 2);
    CHECK(!r.sup.vacant(0));
    CHECK(!r.sup.vacant(1));
    CHECK(r.sup.vacant(2));
}

TEST_CASE("slots: relink takes the plan's probe dependencies; an added service waits for its "
          "probe") {
    custos::ProbeSpec p;
    p.name = "broker";
    p.target = "127.0.0.1:1883"; // a valid tcp probe: the plan checks it
    ServiceSpec t[] = {svc("a")};
    rig r(t, 1, {&p, 1}, 2);
    fake_host& h = r.host;
    INFO(h.log());
    h.probes_ready.assign(1, false);
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::ready);

    ServiceSpec b = svc("b");
    const std::string_view b_deps[] = {"broker", "a", "broker"};
    b.depends_on = b_deps;
    REQUIRE(r.sup.occupy(1, b, "b").has_value());
    const ServiceSpec next[] = {t[0], b};
    const std::uint32_t slot_of[] = {0, 1};
    relink_to(r, next, slot_of, {&p, 1});
    CHECK(r.at(1).nprobe_deps == 1); // a repeated probe is one dependency
    CHECK(r.at(1).ndeps == 1);
    r.sup.start(1, Reason::reload_added);
    CHECK(r.state(1) == ServiceState::waiting);
    h.advance(2s);
    h.probes_ready[0] = true;
    r.sup.on_probe_change(0, true, "broker");
    CHECK(r.state(1) == ServiceState::ready);
    CHECK_TR(h.of(1).back(), ServiceState::ready, Reason::ready_started, 2000);

    // The probe dependency moves to a: a keeps running while it is down.
    ServiceSpec a2 = t[0];
    const std::string_view a_deps[] = {"broker"};
    a2.depends_on = a_deps;
    const ServiceSpec again[] = {a2, svc("b")};
    relink_to(r, again, slot_of, {&p, 1});
    CHECK(r.at(1).nprobe_deps == 0);
    CHECK(r.at(1).ndeps == 0);
    CHECK(r.at(0).nprobe_deps == 1);
    const std::size_t before = h.transitions.size();
    h.probes_ready[0] = false;
    r.sup.on_probe_change(0, false, "broker");
    CHECK(h.transitions.size() == before); // on_dependency_down = ignore
    check_sane(h);
}
