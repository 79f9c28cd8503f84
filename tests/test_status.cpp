// src/status: the event record and its round trips, the listener list, the
// public FixedText, and the published status snapshot under a writer that
// changes everything as fast as it can while readers check that every
// record they get is whole. Run natively and under ThreadSanitizer.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <vector>

#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>
#include <custos/text.hpp>

#include "core/arena.hpp"
#include "doctest.hpp"
#include "status/event.hpp"
#include "status/snapshot.hpp"
#include "status/stream.hpp"

using namespace custos;

namespace {

// --- FixedText ---

static_assert(std::is_trivially_copyable_v<FixedText<31>>);
static_assert(std::is_trivially_copyable_v<ServiceStatus>);
static_assert(std::is_trivially_copyable_v<ProbeStatus>);
static_assert(std::is_trivially_copyable_v<RuntimeStats>);
static_assert(std::is_trivially_copyable_v<MonitorStatus>);
static_assert(std::is_trivially_copyable_v<HealthStatus>);
static_assert(std::is_convertible_v<FixedText<8>, std::string_view>);
// The hook adapters take exactly the public hook types.
static_assert(std::is_same_v<status::hook_listener::transition_fn, TransitionHook>);
static_assert(std::is_same_v<status::hook_listener::probe_fn, ProbeHook>);
static_assert(std::is_same_v<status::hook_listener::monitor_fn, MonitorHook>);
static_assert(std::is_same_v<status::hook_listener::health_fn, HealthHook>);

} // namespace

TEST_CASE("FixedText: reads like a string_view, owns its bytes, truncates") {
    ServiceStatus s;
    CHECK(s.name.empty());
    CHECK(s.name == "");
    s.name = std::string_view("netd");
    std::string_view n = s.name; // what user code does with the old field
    CHECK(n == "netd");
    CHECK(s.name == "netd");
    CHECK_FALSE(s.name != "netd");
    CHECK(s.name != "net");
    CHECK("netd" == s.name);
    CHECK(std::string_view("netd") == s.name);
    CHECK(std::string(s.name) == "netd");
    CHECK(s.name.size() == 4);
    CHECK(std::string_view(s.name.c_str()) == "netd");

    // A copy is independent of what it was made from.
    std::string src = "broker";
    FixedText<31> t = std::string_view(src);
    src[0] = 'X';
    CHECK(t == "broker");

    FixedText<4> small = std::string_view("abcdefgh");
    CHECK(small == "abcd");
    CHECK(small.size() == 4);
    CHECK(small.c_str()[4] == '\0');

    // Equal text compares equal whatever was stored before it.
    FixedText<8> a = std::string_view("longtext");
    a = std::string_view("ab");
    FixedText<8> b = std::string_view("ab");
    CHECK(a == b);
}

// --- events ---

TEST_CASE("event: a service transition round-trips field for field") {
    Transition t;
    t.service = 7;
    t.name = "netd";
    t.from = ServiceState::running;
    t.to = ServiceState::backoff;
    t.reason = Reason::process_exited;
    t.sys_errno = 11;
    t.at_ns = 123456789;
    t.pid = 4242;
    t.exit = ExitInfo{4242, 3, 0, false};
    t.delay_ns = 2'500'999'999;
    t.delay = std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(t.delay_ns));
    t.restarts = 5;
    t.detail = "exit status 3";

    status::event e = status::make_event(t, 1'700'000'000'000'000'000);
    CHECK(e.kind == status::event_kind::service_transition);
    CHECK(e.service_from() == ServiceState::running);
    CHECK(e.service_to() == ServiceState::backoff);
    CHECK(e.subject == 7);
    CHECK(e.mono_ns == 123456789);
    CHECK(e.wall_ns == 1'700'000'000'000'000'000);
    CHECK(e.name.data() == t.name.data()); // a view, not a copy
    CHECK(e.resolution.empty());

    Transition back;
    REQUIRE(status::to_transition(e, back));
    CHECK(back.service == t.service);
    CHECK(back.name == t.name);
    CHECK(back.from == t.from);
    CHECK(back.to == t.to);
    CHECK(back.reason == t.reason);
    CHECK(back.sys_errno == t.sys_errno);
    CHECK(back.at_ns == t.at_ns);
    CHECK(back.pid == t.pid);
    CHECK(back.exit == t.exit);
    CHECK(back.delay == t.delay);
    CHECK(back.delay.count() == 2500);
    CHECK(back.delay_ns == t.delay_ns);
    CHECK(back.restarts == t.restarts);
    CHECK(back.detail == t.detail);

    ProbeTransition wrong;
    wrong.probe = 99;
    CHECK_FALSE(status::to_probe_transition(e, wrong));
    CHECK(wrong.probe == 99); // untouched
}

TEST_CASE("event: a probe transition round-trips field for field") {
    ProbeTransition t;
    t.probe = 3;
    t.name = "broker";
    t.from = ProbeState::ready;
    t.to = ProbeState::down;
    t.reason = Reason::probe_connect_refused;
    t.sys_errno = 111;
    t.message = "connect 10.0.0.2:1883: Connection refused";
    t.resolution = "start the broker";
    t.at_ns = 987654321;

    status::event e = status::make_event(t, 42);
    CHECK(e.kind == status::event_kind::probe_transition);
    CHECK(e.probe_from() == ProbeState::ready);
    CHECK(e.probe_to() == ProbeState::down);
    CHECK(e.detail == t.message);
    CHECK(e.resolution == t.resolution);
    CHECK(e.wall_ns == 42);

    ProbeTransition back;
    REQUIRE(status::to_probe_transition(e, back));
    CHECK(back.probe == t.probe);
    CHECK(back.name == t.name);
    CHECK(back.from == t.from);
    CHECK(back.to == t.to);
    CHECK(back.reason == t.reason);
    CHECK(back.sys_errno == t.sys_errno);
    CHECK(back.message == t.message);
    CHECK(back.resolution == t.resolution);
    CHECK(back.at_ns == t.at_ns);

    Transition wrong;
    CHECK_FALSE(status::to_transition(e, wrong));
}

TEST_CASE("event: a monitor transition round-trips field for field") {
    MonitorTransition t;
    t.monitor = 4;
    t.name = "uploader";
    t.from = MonitorState::running;
    t.to = MonitorState::backoff;
    t.reason = Reason::monitor_crashed;
    t.sys_errno = 110;
    t.at_ns = 555666777;
    t.crashes = 5;
    t.delay_ns = 10'000'000'123;
    t.progress = 0xfeedfacecafe;
    t.detail = "upload: timed out";
    t.resolution = "check the uplink";

    status::event e = status::make_event(t, 43);
    CHECK(e.kind == status::event_kind::monitor);
    CHECK(e.monitor_from() == MonitorState::running);
    CHECK(e.monitor_to() == MonitorState::backoff);
    CHECK(e.subject == 4);
    CHECK(e.restarts == 5);
    CHECK(e.wall_ns == 43);
    CHECK(e.mono_ns == t.at_ns);
    CHECK(e.detail.data() == t.detail.data()); // a view, not a copy
    CHECK(e.health == nullptr);

    MonitorTransition back;
    REQUIRE(status::to_monitor_transition(e, back));
    CHECK(back.monitor == t.monitor);
    CHECK(back.name == t.name);
    CHECK(back.from == t.from);
    CHECK(back.to == t.to);
    CHECK(back.reason == t.reason);
    CHECK(back.sys_errno == t.sys_errno);
    CHECK(back.at_ns == t.at_ns);
    CHECK(back.crashes == t.crashes);
    CHECK(back.delay_ns == t.delay_ns);
    CHECK(back.progress == t.progress);
    CHECK(back.detail == t.detail);
    CHECK(back.resolution == t.resolution);

    // A report (from == to) goes through the same way.
    t.from = t.to = MonitorState::running;
    t.reason = Reason::monitor_wedge_suspected;
    REQUIRE(status::to_monitor_transition(status::make_event(t, 0), back));
    CHECK(back.from == MonitorState::running);
    CHECK(back.to == MonitorState::running);
    CHECK(back.reason == Reason::monitor_wedge_suspected);

    // Other kinds are refused both ways, leaving the record alone.
    Transition wrong;
    CHECK_FALSE(status::to_transition(e, wrong));
    ProbeTransition wrong_probe;
    CHECK_FALSE(status::to_probe_transition(e, wrong_probe));
    MonitorTransition untouched;
    untouched.monitor = 99;
    Transition st;
    st.service = 1;
    CHECK_FALSE(status::to_monitor_transition(status::make_event(st, 0), untouched));
    CHECK(untouched.monitor == 99);
}

TEST_CASE("event: a watchdog event round-trips field for field") {
    WatchdogTransition t;
    t.from = WatchdogState::feeding;
    t.to = WatchdogState::starving;
    t.reason = Reason::watchdog_starving;
    t.sys_errno = 5;
    t.message = "health failed: service uploader failed";
    t.resolution = "fix it";
    t.mono_ns = 123456789;

    status::event e = status::make_event(t, 44);
    CHECK(e.kind == status::event_kind::watchdog);
    CHECK(e.watchdog_from() == WatchdogState::feeding);
    CHECK(e.watchdog_to() == WatchdogState::starving);
    CHECK(e.name == "watchdog");
    CHECK(e.wall_ns == 44);
    CHECK(e.mono_ns == t.mono_ns);
    CHECK(e.detail.data() == t.message.data()); // a view, not a copy

    WatchdogTransition back;
    REQUIRE(status::to_watchdog_transition(e, back));
    CHECK(back.from == t.from);
    CHECK(back.to == t.to);
    CHECK(back.reason == t.reason);
    CHECK(back.sys_errno == t.sys_errno);
    CHECK(back.mono_ns == t.mono_ns);
    CHECK(back.message == t.message);
    CHECK(back.resolution == t.resolution);

    // Other kinds are refused both ways.
    MonitorTransition m;
    CHECK_FALSE(status::to_monitor_transition(e, m));
    WatchdogTransition untouched;
    untouched.sys_errno = 99;
    Transition st;
    CHECK_FALSE(status::to_watchdog_transition(status::make_event(st, 0), untouched));
    CHECK(untouched.sys_errno == 99);

    // The hook listener hands it to the watchdog hook, and only there.
    status::hook_listener hooks;
    static int calls = 0;
    static Reason got = Reason::unknown;
    hooks.set_watchdog_hook(
        [](const WatchdogTransition& w, void*) {
            ++calls;
            got = w.reason;
        },
        nullptr);
    hooks.on_event(e);
    hooks.on_event(status::make_event(st, 0));
    CHECK(calls == 1);
    CHECK(got == Reason::watchdog_starving);
}

TEST_CASE("event: a health change carries the whole status") {
    HealthStatus h;
    h.health = Health::degraded;
    h.since_ns = 777;
    h.settled = true;
    h.reason_total = 3;
    h.reason_count = 1;
    h.reasons[0].kind = SubjectKind::service;
    h.reasons[0].index = 2;
    h.reasons[0].name = std::string_view("uploader");
    h.reasons[0].reason = Reason::max_restarts_exhausted;
    h.reasons[0].sys_errno = 5;
    h.reasons[0].resolution = std::string_view("fix the uploader");
    h.summary = std::string_view("degraded: uploader failed (MaxRestartsExhausted) (+2 more)");

    status::event e = status::make_event(h, Health::ok, 44);
    CHECK(e.kind == status::event_kind::health);
    CHECK(e.health_from() == Health::ok);
    CHECK(e.health_to() == Health::degraded);
    CHECK(e.health == &h);
    CHECK(e.reason == Reason::max_restarts_exhausted);
    CHECK(e.subject == 2);
    CHECK(e.sys_errno == 5);
    CHECK(e.mono_ns == 777); // since_ns when no time is given
    CHECK(e.wall_ns == 44);
    CHECK(e.name == "health");
    CHECK(e.detail == h.summary);
    CHECK(e.resolution == "fix the uploader");

    // A change of the reasons alone passes its own time.
    CHECK(status::make_event(h, Health::degraded, 0, 999).mono_ns == 999);

    // Without reasons: settled or starting.
    HealthStatus ok;
    ok.health = Health::ok;
    ok.settled = true;
    CHECK(status::make_event(ok, Health::starting, 0).reason == Reason::health_settled);
    HealthStatus starting;
    CHECK(status::make_event(starting, Health::starting, 0).reason == Reason::health_starting);

    Transition t;
    CHECK_FALSE(status::to_transition(e, t));
    MonitorTransition m;
    CHECK_FALSE(status::to_monitor_transition(e, m));
}

TEST_CASE("event: kinds have stable names; the wall clock is the real one") {
    CHECK(status::event_kind_name(status::event_kind::service_transition) == "service");
    CHECK(status::event_kind_name(status::event_kind::probe_transition) == "probe");
    CHECK(status::event_kind_name(status::event_kind::monitor) == "monitor");
    CHECK(status::event_kind_name(status::event_kind::watchdog) == "watchdog");
    CHECK(status::event_kind_name(status::event_kind::control_action) == "control");
    CHECK(status::event_kind_name(status::event_kind::log) == "log");
    CHECK(status::event_kind_name(status::event_kind::health) == "health");
    CHECK(static_cast<int>(status::event_kind::health) == 6);
    CHECK(status::event_kind_name(status::event_kind::custom) == "custom");
    CHECK(static_cast<int>(status::event_kind::custom) == 7);
    CHECK(status::event_kind_name(status::event_kind::prune) == "prune");
    CHECK(static_cast<int>(status::event_kind::prune) == 8);
    CHECK(status::event_kind_count == 9);
    // After 2020-01-01, whatever the board's clock says, it is not boot time.
    CHECK(status::wall_now_ns() > 1'577'836'800'000'000'000);
}

// --- the listener list ---

namespace {

struct recorder final : status::listener {
    recorder(int id, std::vector<int>& log) : id_(id), log_(log) {}
    void on_event(const status::event&) noexcept override { log_.push_back(id_); }
    int id_;
    std::vector<int>& log_;
};

} // namespace

TEST_CASE("stream: listeners are called in the order they were added") {
    std::vector<int> log;
    recorder a(1, log), b(2, log), c(3, log);
    status::fixed_stream<4> s;
    CHECK(s.capacity() == 4);
    REQUIRE(s.try_add(b));
    REQUIRE(s.try_add(a));
    REQUIRE(s.try_add(c));
    CHECK(s.size() == 3);
    s.dispatch(status::event{});
    s.dispatch(status::event{});
    CHECK(log == std::vector<int>{2, 1, 3, 2, 1, 3});
}

TEST_CASE("stream: adding past the capacity is an init error with a resolution") {
    std::vector<int> log;
    recorder a(1, log), b(2, log), c(3, log);
    status::fixed_stream<2> s;
    REQUIRE(s.try_add(a));
    REQUIRE(s.try_add(b));
    Result<void> r = s.try_add(c);
    REQUIRE_FALSE(r);
    CHECK(r.error().reason() == Reason::capacity_exceeded);
    CHECK(r.error().resolution().find("capacity") != std::string_view::npos);
    CHECK(s.size() == 2);
    s.dispatch(status::event{});
    CHECK(log == std::vector<int>{1, 2}); // the refused one is not called

    // After seal(), nothing is added, even with room.
    status::fixed_stream<4> t;
    REQUIRE(t.try_add(a));
    t.seal();
    Result<void> late = t.try_add(b);
    REQUIRE_FALSE(late);
    CHECK(late.error().reason() == Reason::invalid_argument);

    // A stream without slots refuses the first.
    status::stream none;
    CHECK(none.try_add(a).error().reason() == Reason::capacity_exceeded);
}

TEST_CASE("stream: slots from an arena, sized in two passes") {
    std::vector<int> log;
    recorder a(1, log), b(2, log), c(3, log), d(4, log);
    arena mem;
    status::stream s;
    REQUIRE(mem.reserve(0));
    CHECK_FALSE(s.reserve(mem, 3)); // the measuring pass
    REQUIRE(mem.reserve(mem.needed()));
    REQUIRE(s.reserve(mem, 3));
    CHECK(s.capacity() == 3);
    REQUIRE(s.try_add(d));
    REQUIRE(s.try_add(c));
    REQUIRE(s.try_add(a));
    CHECK(s.try_add(b).error().reason() == Reason::capacity_exceeded);
    s.dispatch(status::event{});
    CHECK(log == std::vector<int>{4, 3, 1});
}

namespace {

struct hook_log {
    int transitions = 0;
    int probes = 0;
    int monitors = 0;
    int healths = 0;
    Transition last;
    ProbeTransition last_probe;
    MonitorTransition last_monitor;
    HealthStatus last_health;
    std::string name;
};

void on_monitor(const MonitorTransition& t, void* ctx) {
    auto* h = static_cast<hook_log*>(ctx);
    ++h->monitors;
    h->last_monitor = t;
    h->name = std::string(t.name);
}

void on_health(const HealthStatus& s, void* ctx) {
    auto* h = static_cast<hook_log*>(ctx);
    ++h->healths;
    h->last_health = s;
}

void on_transition(const Transition& t, void* ctx) {
    auto* h = static_cast<hook_log*>(ctx);
    ++h->transitions;
    h->last = t;
    h->name = std::string(t.name);
}

void on_probe(const ProbeTransition& t, void* ctx) {
    auto* h = static_cast<hook_log*>(ctx);
    ++h->probes;
    h->last_probe = t;
    h->name = std::string(t.name);
}

} // namespace

TEST_CASE("hook_listener: the user hooks get the records they got before") {
    hook_log h;
    status::hook_listener hooks;
    status::fixed_stream<1> s;
    REQUIRE(s.try_add(hooks));

    Transition t;
    t.service = 2;
    t.name = "web";
    t.from = ServiceState::starting;
    t.to = ServiceState::running;
    t.reason = Reason::spawned;
    t.pid = 77;
    s.dispatch(status::make_event(t, 0)); // no hook set: nothing happens
    CHECK(h.transitions == 0);

    hooks.set_transition_hook(&on_transition, &h);
    hooks.set_probe_hook(&on_probe, &h);
    s.dispatch(status::make_event(t, 0));
    CHECK(h.transitions == 1);
    CHECK(h.probes == 0);
    CHECK(h.name == "web");
    CHECK(h.last.service == 2);
    CHECK(h.last.to == ServiceState::running);
    CHECK(h.last.pid == 77);

    ProbeTransition p;
    p.probe = 1;
    p.name = "dns";
    p.to = ProbeState::ready;
    p.reason = Reason::probe_passed;
    s.dispatch(status::make_event(p, 0));
    CHECK(h.probes == 1);
    CHECK(h.transitions == 1);
    CHECK(h.name == "dns");
    CHECK(h.last_probe.reason == Reason::probe_passed);

    status::event other;
    other.kind = status::event_kind::watchdog;
    s.dispatch(other); // reserved kinds reach no user hook
    CHECK(h.transitions == 1);
    CHECK(h.probes == 1);

    MonitorTransition m;
    m.monitor = 3;
    m.name = "poller";
    m.to = MonitorState::wedged;
    m.reason = Reason::monitor_wedged;
    m.progress = 17;
    HealthStatus hs;
    hs.health = Health::failed;
    hs.summary = std::string_view("failed: poller wedged (MonitorWedged)");
    s.dispatch(status::make_event(m, 0)); // no hooks for these yet
    s.dispatch(status::make_event(hs, Health::ok, 0));
    CHECK(h.monitors == 0);
    CHECK(h.healths == 0);

    hooks.set_monitor_hook(&on_monitor, &h);
    hooks.set_health_hook(&on_health, &h);
    s.dispatch(status::make_event(m, 0));
    CHECK(h.monitors == 1);
    CHECK(h.name == "poller");
    CHECK(h.last_monitor.monitor == 3);
    CHECK(h.last_monitor.to == MonitorState::wedged);
    CHECK(h.last_monitor.progress == 17);
    s.dispatch(status::make_event(hs, Health::ok, 0));
    CHECK(h.healths == 1);
    CHECK(h.last_health == hs);
    status::event bare;
    bare.kind = status::event_kind::health; // no status attached: skipped
    s.dispatch(bare);
    CHECK(h.healths == 1);
    CHECK(h.transitions == 1);
    CHECK(h.probes == 1);
}

// --- the snapshot ---

namespace {

// Every field of a record is a function of (generation, index), so a reader
// can recompute the whole record from one of its fields (since_ns,
// last_check_ns) and compare: any mix of two publications shows.
ServiceStatus service_at(std::uint64_t g, std::uint32_t i) {
    ServiceStatus s;
    char name[40];
    // Names of differing lengths, 6 to 31 characters.
    int len = 6 + static_cast<int>((g + i) % 26);
    int n = std::snprintf(name, sizeof name, "s%02u-%llu-", i, static_cast<unsigned long long>(g));
    for (; n < len && n < 31; ++n) {
        name[n] = static_cast<char>('a' + (g + i) % 26);
    }
    s.name = std::string_view(name, static_cast<std::size_t>(n < 31 ? n : 31));
    s.state = static_cast<ServiceState>((g + i) % service_state_count);
    s.reason = static_cast<Reason>((g * 7 + i) % reason_count);
    s.since_ns = static_cast<std::int64_t>(g);
    s.pid = static_cast<int>((g * 131 + i) % 4'000'000);
    s.restarts = static_cast<std::uint32_t>(g % 1000);
    s.total_restarts = g * 3 + i;
    s.last_exit =
        ExitInfo{s.pid, static_cast<int>(g % 256), static_cast<int>(g % 32), (g & 1) != 0};
    char text[status_text_capacity + 1];
    std::size_t tl = (g * 13 + i) % (status_text_capacity + 1);
    for (std::size_t k = 0; k < tl; ++k) {
        text[k] = static_cast<char>('A' + (g + k) % 26);
    }
    s.status_text = std::string_view(text, tl);
    s.notify_errno = static_cast<int>(g % 133);
    return s;
}

ProbeStatus probe_at(std::uint64_t g, std::uint32_t p) {
    ProbeStatus s;
    char name[32];
    int n = std::snprintf(name, sizeof name, "p%u-%llu", p, static_cast<unsigned long long>(g));
    s.name = std::string_view(name, static_cast<std::size_t>(n));
    s.kind = static_cast<ProbeKind>((g + p) % 6);
    s.state = static_cast<ProbeState>((g + p) % 3);
    s.phase = static_cast<ProbePhase>(g % 2);
    s.checking = (g & 2) != 0;
    s.last_check_ns = static_cast<std::int64_t>(g);
    s.last_success_ns = static_cast<std::int64_t>(g * 2);
    s.last_failure_ns = static_cast<std::int64_t>(g * 3);
    s.next_check_ns = static_cast<std::int64_t>(g * 5 + p);
    s.consecutive_successes = static_cast<std::uint32_t>(g % 17);
    s.consecutive_failures = static_cast<std::uint32_t>(g % 19);
    s.startup_tries = static_cast<std::uint32_t>(g % 11);
    s.checks = g;
    s.failures = g / 2;
    s.last_error.reason = static_cast<Reason>((g + p) % reason_count);
    s.last_error.sys_errno = static_cast<int>(g % 133);
    char msg[probe_message_capacity + 1];
    std::size_t ml = (g * 7 + p) % (probe_message_capacity + 1);
    for (std::size_t k = 0; k < ml; ++k) {
        msg[k] = static_cast<char>('a' + (g + k) % 26);
    }
    s.last_error.message = std::string_view(msg, ml);
    char fix[probe_resolution_capacity + 1];
    std::size_t fl = (g * 11 + p) % (probe_resolution_capacity + 1);
    for (std::size_t k = 0; k < fl; ++k) {
        fix[k] = static_cast<char>('0' + (g + k) % 10);
    }
    s.last_error.resolution = std::string_view(fix, fl);
    s.last_error.since_ns = static_cast<std::int64_t>(g * 7);
    return s;
}

MonitorStatus monitor_at(std::uint64_t g, std::uint32_t m) {
    MonitorStatus s;
    char name[32];
    int n = std::snprintf(name, sizeof name, "m%u-%llu", m, static_cast<unsigned long long>(g));
    s.name = std::string_view(name, static_cast<std::size_t>(n));
    s.state = static_cast<MonitorState>((g + m) % monitor_state_count);
    s.reason = static_cast<Reason>((g * 3 + m) % reason_count);
    s.since_ns = static_cast<std::int64_t>(g);
    s.critical = ((g + m) & 1) != 0;
    s.started_ns = static_cast<std::int64_t>(g * 2);
    s.restart_at_ns = static_cast<std::int64_t>(g * 3);
    s.crashes = static_cast<std::uint32_t>(g % 23);
    s.runs = g + m;
    s.beats = g * 100 + m;
    s.progress = g ^ 0x5555;
    s.last_progress_ns = static_cast<std::int64_t>(g * 4);
    char msg[monitor_message_capacity + 1];
    std::size_t ml = (g * 5 + m) % (monitor_message_capacity + 1);
    for (std::size_t k = 0; k < ml; ++k) {
        msg[k] = static_cast<char>('a' + (g + k) % 26);
    }
    s.last_crash.reason = static_cast<Reason>((g + m) % reason_count);
    s.last_crash.message = std::string_view(msg, ml);
    s.last_crash.at_ns = static_cast<std::int64_t>(g * 5);
    s.degraded.message = std::string_view(msg, ml / 2);
    s.ticks = g * 7;
    s.tick_failures = g;
    s.consecutive_failures = static_cast<std::uint32_t>(g % 9);
    s.last_success_ns = static_cast<std::int64_t>(g * 6);
    s.last_failure.at_ns = static_cast<std::int64_t>(g * 8);
    return s;
}

HealthStatus health_at(std::uint64_t g) {
    HealthStatus h;
    h.health = static_cast<Health>(g % health_count);
    h.since_ns = static_cast<std::int64_t>(g);
    h.settled = (g & 1) != 0;
    h.critical_ready = (g & 2) != 0;
    h.services = static_cast<std::uint32_t>(g % 64);
    h.services_ready = static_cast<std::uint32_t>(g % 32);
    h.reason_total = static_cast<std::uint32_t>(g % 20);
    h.reason_count = static_cast<std::uint32_t>(g % (health_reason_capacity + 1));
    for (std::uint32_t k = 0; k < h.reason_count; ++k) {
        HealthReason& r = h.reasons[k];
        char text[health_resolution_capacity + 1];
        std::size_t tl = (g * 3 + k) % (health_resolution_capacity + 1);
        for (std::size_t c = 0; c < tl; ++c) {
            text[c] = static_cast<char>('A' + (g + k + c) % 26);
        }
        r.kind = static_cast<SubjectKind>((g + k) % 3);
        r.index = k;
        r.name = std::string_view(text, tl < name_capacity ? tl : name_capacity);
        r.message = std::string_view(text, tl / 2);
        r.resolution = std::string_view(text, tl);
        r.since_ns = static_cast<std::int64_t>(g + k);
    }
    char sum[health_summary_capacity + 1];
    std::size_t sl = g % (health_summary_capacity + 1);
    for (std::size_t c = 0; c < sl; ++c) {
        sum[c] = static_cast<char>('a' + (g + c) % 26);
    }
    h.summary = std::string_view(sum, sl);
    return h;
}

RuntimeStats stats_at(std::uint64_t g) {
    RuntimeStats st;
    std::uint64_t* f[] = {&st.spawns,
                          &st.spawn_failures,
                          &st.exits,
                          &st.orphans_reaped,
                          &st.notify_received,
                          &st.notify_dropped,
                          &st.notify_foreign,
                          &st.fds_closed,
                          &st.fds_closed_inline,
                          &st.notify_restored,
                          &st.leftovers_killed,
                          &st.remnants_killed,
                          &st.main_pid_followed,
                          &st.main_pid_refused,
                          &st.output_bytes,
                          &st.probe_checks,
                          &st.probe_failures,
                          &st.liveness_restarts,
                          &st.signals_ignored};
    std::uint64_t k = 0;
    for (std::uint64_t* p : f) {
        *p = g * 19 + k++;
    }
    return st;
}

bool same_stats(const RuntimeStats& a, const RuntimeStats& b) {
    return a.spawns == b.spawns && a.spawn_failures == b.spawn_failures && a.exits == b.exits &&
           a.orphans_reaped == b.orphans_reaped && a.notify_received == b.notify_received &&
           a.notify_dropped == b.notify_dropped && a.notify_foreign == b.notify_foreign &&
           a.fds_closed == b.fds_closed && a.fds_closed_inline == b.fds_closed_inline &&
           a.notify_restored == b.notify_restored && a.leftovers_killed == b.leftovers_killed &&
           a.remnants_killed == b.remnants_killed && a.main_pid_followed == b.main_pid_followed &&
           a.main_pid_refused == b.main_pid_refused && a.output_bytes == b.output_bytes &&
           a.probe_checks == b.probe_checks && a.probe_failures == b.probe_failures &&
           a.liveness_restarts == b.liveness_restarts && a.signals_ignored == b.signals_ignored;
}

// The generation a record of service `i` carries in publication `g`:
// service i changes only every (i + 1)th publication, so most publications
// leave most records alone (the writer's skip path runs too).
std::uint64_t service_gen(std::uint64_t g, std::uint32_t i) {
    return g - g % (i + 1);
}

// The live state a runtime would publish from, at publication `gen`.
// The generation the health record carries in publication `g`: it changes
// every 4th publication (it is the biggest record; most turns leave it).
std::uint64_t health_gen(std::uint64_t g) {
    return g - g % 4;
}

struct fake_source final : status::snapshot_source {
    std::uint32_t services = 0;
    std::uint32_t probes = 0;
    std::uint32_t monitors = 0;
    std::uint64_t gen = 0;
    mutable HealthStatus h; // health() returns a reference
    const WatchdogStatus* wd = nullptr;
    const WatchdogStatus* watchdog() const noexcept override { return wd; }
    std::uint32_t service_count() const noexcept override { return services; }
    std::uint32_t probe_count() const noexcept override { return probes; }
    ServiceStatus service_status(std::uint32_t i) const noexcept override {
        return service_at(service_gen(gen, i), i);
    }
    ProbeStatus probe_status(std::uint32_t p) const noexcept override { return probe_at(gen, p); }
    std::uint32_t monitor_count() const noexcept override { return monitors; }
    MonitorStatus monitor_status(std::uint32_t m) const noexcept override {
        return monitor_at(gen, m);
    }
    RuntimeStats stats() const noexcept override { return stats_at(gen); }
    const HealthStatus& health() const noexcept override {
        h = health_at(health_gen(gen));
        return h;
    }
};

} // namespace

TEST_CASE("snapshot: sized in two passes; publishes, skips unchanged records") {
    arena mem;
    status::snapshot snap;
    REQUIRE(mem.reserve(0));
    CHECK_FALSE(snap.init(mem, 3, 2));
    CHECK(mem.needed() == status::snapshot::footprint(3, 2));
    REQUIRE(mem.reserve(mem.needed()));
    REQUIRE(snap.init(mem, 3, 2));
    CHECK(snap.service_count() == 3);
    CHECK(snap.probe_count() == 2);
    MESSAGE("footprint at 64 services + 64 probes: ", status::snapshot::footprint(64, 64),
            " bytes; sizeof ServiceStatus ", sizeof(ServiceStatus), ", ProbeStatus ",
            sizeof(ProbeStatus));

    // The writer thread is the one that bound itself.
    CHECK_FALSE(snap.is_writer_thread());
    snap.bind_writer();
    CHECK(snap.is_writer_thread());
    bool other = true;
    std::thread([&] { other = snap.is_writer_thread(); }).join();
    CHECK_FALSE(other);

    // Before any publication: default records, generation 0.
    CHECK(snap.generation() == 0);
    CHECK(snap.service(0) == ServiceStatus{});
    CHECK(snap.probe(1) == ProbeStatus{});
    CHECK(snap.service(3) == ServiceStatus{}); // out of range
    CHECK(snap.probe(2) == ProbeStatus{});

    fake_source src;
    src.services = 3;
    src.probes = 2;
    src.gen = 1;
    status::publisher pub(snap, src);
    CHECK(pub.stale());
    CHECK(pub.publish_if_stale());
    CHECK_FALSE(pub.stale());
    CHECK_FALSE(pub.publish_if_stale()); // nothing happened
    CHECK(snap.generation() == 1);
    CHECK(snap.service(2) == service_at(0, 2)); // service_gen(1, 2) == 0
    CHECK(snap.service(0) == service_at(1, 0));
    CHECK(snap.service(0).name == service_at(1, 0).name);
    CHECK(snap.probe(1) == probe_at(1, 1));
    CHECK(same_stats(snap.stats(), stats_at(1)));

    // An event marks it stale; the same record is not stored twice.
    pub.on_event(status::event{});
    CHECK(pub.stale());
    src.gen = 2;
    CHECK(pub.publish_if_stale());
    CHECK(snap.generation() == 2);
    snap.begin_publish();
    CHECK_FALSE(snap.put_service(1, service_at(2, 1))); // unchanged
    CHECK(snap.put_service(1, service_at(3, 1)));
    CHECK_FALSE(snap.put_service(9, service_at(3, 1))); // out of range
    snap.end_publish();
    CHECK(snap.generation() == 3);

    std::vector<ServiceStatus> all(3);
    std::vector<ProbeStatus> probes(2);
    RuntimeStats st;
    CHECK(snap.read_all(all, probes, st) == 3);
    CHECK(all[1] == service_at(3, 1));
    CHECK(probes[0] == probe_at(2, 0));
}

TEST_CASE("snapshot: a record per monitor and one for the health") {
    arena mem;
    status::snapshot snap;
    REQUIRE(mem.reserve(0));
    CHECK_FALSE(snap.init(mem, 2, 1, 3));
    CHECK(mem.needed() == status::snapshot::footprint(2, 1, 3));
    CHECK(status::snapshot::footprint(2, 1, 3) > status::snapshot::footprint(2, 1));
    CHECK(status::snapshot::footprint(2, 1, 0) == status::snapshot::footprint(2, 1));
    REQUIRE(mem.reserve(mem.needed()));
    REQUIRE(snap.init(mem, 2, 1, 3));
    CHECK(snap.monitor_count() == 3);
    MESSAGE("sizeof MonitorStatus ", sizeof(MonitorStatus), ", HealthStatus ", sizeof(HealthStatus),
            "; footprint at 64+64+16: ", status::snapshot::footprint(64, 64, 16), " bytes");

    // Before any publication: defaults.
    CHECK(snap.monitor(0) == MonitorStatus{});
    CHECK(snap.monitor(3) == MonitorStatus{}); // out of range
    CHECK(snap.health() == HealthStatus{});
    CHECK(snap.health().health == Health::starting);

    fake_source src;
    src.services = 2;
    src.probes = 1;
    src.monitors = 4; // one more than the snapshot has room for: ignored
    src.gen = 5;
    status::publisher pub(snap, src);
    pub.publish();
    CHECK(snap.monitor(0) == monitor_at(5, 0));
    CHECK(snap.monitor(2) == monitor_at(5, 2));
    CHECK(snap.monitor(3) == MonitorStatus{});
    CHECK(snap.health() == health_at(health_gen(5)));

    // Unchanged records are not stored again.
    snap.begin_publish();
    CHECK_FALSE(snap.put_monitor(1, monitor_at(5, 1)));
    CHECK(snap.put_monitor(1, monitor_at(6, 1)));
    CHECK_FALSE(snap.put_monitor(3, monitor_at(6, 1))); // out of range
    CHECK_FALSE(snap.put_health(health_at(health_gen(5))));
    CHECK(snap.put_health(health_at(9)));
    snap.end_publish();
    CHECK(snap.monitor(1) == monitor_at(6, 1));
    CHECK(snap.health() == health_at(9));

    // All of it from one publication.
    std::vector<ServiceStatus> sv(2);
    std::vector<ProbeStatus> pv(1);
    std::vector<MonitorStatus> mv(3);
    RuntimeStats st;
    HealthStatus hs;
    CHECK(snap.read_all(sv, pv, mv, st, &hs) == 2);
    CHECK(mv[0] == monitor_at(5, 0));
    CHECK(mv[1] == monitor_at(6, 1));
    CHECK(mv[2] == monitor_at(5, 2));
    CHECK(hs == health_at(9));
    CHECK(sv[0] == service_at(5, 0));
    CHECK(pv[0] == probe_at(5, 0));
    // Fewer slots than records: only those are filled; health optional.
    std::vector<MonitorStatus> one(1);
    std::uint32_t g = 0;
    REQUIRE(snap.try_read_all(sv, pv, one, st, nullptr, g));
    CHECK(g == 2);
    CHECK(one[0] == monitor_at(5, 0));
}

TEST_CASE("snapshot: parts of a record read only what they name") {
    arena mem;
    status::snapshot snap;
    REQUIRE(mem.reserve(status::snapshot::footprint(2, 1)));
    REQUIRE(snap.init(mem, 2, 1));
    fake_source src;
    src.services = 2;
    src.probes = 1;
    src.gen = 7;
    status::publisher pub(snap, src);
    pub.publish();

    ServiceStatus full = service_at(7, 1);
    full.death_count = 3;
    for (std::uint32_t k = 0; k < 3; ++k) {
        full.deaths[k].at_ns = 100 + k;
        full.deaths[k].reason = Reason::health_starting;
        full.deaths[k].exit = ExitInfo{42 + static_cast<int>(k), 1, 0, false};
    }
    HealthStatus h = health_at(health_reason_capacity - 1);
    REQUIRE(h.reason_count >= 2);
    snap.begin_publish();
    REQUIRE(snap.put_service(1, full));
    REQUIRE(snap.put_health(h));
    snap.end_publish();

    using sp = status::snapshot::service_part;
    ServiceStatus s;
    snap.service_into(1, s, sp::shown);
    CHECK(s == full);
    ServiceStatus nd;
    snap.service_into(1, nd, sp::no_deaths);
    CHECK(nd.death_count == 3);
    CHECK(nd.status_text == full.status_text);
    CHECK(nd.deaths[0].at_ns == 0); // not read
    ServiceStatus head;
    snap.service_into(1, head, sp::head);
    CHECK(head.name == full.name);
    CHECK(head.state == full.state);
    CHECK(head.reason == full.reason);
    CHECK(head.pid == 0); // not read
    ServiceStatus none;
    snap.service_into(2, none, sp::shown); // out of range: untouched
    CHECK(none == ServiceStatus{});

    using pp = status::snapshot::probe_part;
    const ProbeStatus want = probe_at(7, 0);
    ProbeStatus p;
    snap.probe_into(0, p, pp::all);
    CHECK(p == want);
    ProbeStatus ph;
    snap.probe_into(0, ph, pp::head);
    CHECK(ph.name == want.name);
    CHECK(ph.state == want.state);
    CHECK(ph.last_error.reason == want.last_error.reason);
    CHECK(ph.checks == 0); // not read
    ProbeStatus pf;
    snap.probe_into(0, pf, pp::figures);
    CHECK(pf.checks == want.checks);
    CHECK(pf.last_error.message.empty()); // not read

    HealthStatus hh;
    snap.health_head(hh);
    CHECK(hh.since_ns == h.since_ns);
    CHECK(hh.reason_count == h.reason_count);
    CHECK(hh.summary == h.summary);
    CHECK(hh.reasons[0].name.empty()); // not read
    HealthStatus hr;
    REQUIRE(snap.health_reason(1, hr));
    CHECK(hr.reasons[1] == h.reasons[1]);
    CHECK(hr.reasons[0].name.empty());
    HealthStatus past;
    CHECK_FALSE(snap.health_reason(h.reason_count, past));
}

TEST_CASE("snapshot: a read's sequence is the record's until it is stored again") {
    arena mem;
    status::snapshot snap;
    REQUIRE(mem.reserve(0));
    CHECK_FALSE(snap.init(mem, 2, 1)); // the measuring pass
    CHECK(snap.service_room() == 2);   // known all the same
    CHECK(snap.probe_room() == 1);
    CHECK(snap.service_count() == 0);
    REQUIRE(mem.reserve(mem.needed()));
    REQUIRE(snap.init(mem, 2, 1));

    using sp = status::snapshot::service_part;
    using pp = status::snapshot::probe_part;
    ServiceStatus s;
    ProbeStatus p;
    const std::uint32_t s0 = snap.service_into(1, s, sp::shown);
    const std::uint32_t p0 = snap.probe_into(0, p, pp::all);
    CHECK(s0 % 2 == 0);
    CHECK(snap.service_sequence(1) == s0);
    CHECK(snap.probe_sequence(0) == p0);

    ServiceStatus changed = s;
    changed.pid = 42;
    snap.begin_publish();
    CHECK_FALSE(snap.put_service(1, s)); // the same: not stored, same sequence
    snap.end_publish();
    CHECK(snap.service_sequence(1) == s0);
    snap.begin_publish();
    CHECK(snap.put_service(1, changed));
    snap.end_publish();
    CHECK(snap.service_sequence(1) != s0);
    const std::uint32_t s1 = snap.service_into(1, s, sp::head);
    CHECK(s1 == snap.service_sequence(1));
    CHECK(snap.probe_sequence(0) == p0);
    // Out of range: odd, never a read's; the reads say 0 and copy nothing.
    CHECK(snap.service_sequence(2) % 2 == 1);
    CHECK(snap.probe_sequence(1) % 2 == 1);
    CHECK(snap.service_into(2, s, sp::shown) == 0);
}

TEST_CASE("snapshot: the watchdog's record, when the source has one") {
    arena mem;
    status::snapshot snap;
    REQUIRE(mem.reserve(0));
    CHECK_FALSE(snap.init(mem, 1, 0));
    REQUIRE(mem.reserve(mem.needed()));
    REQUIRE(snap.init(mem, 1, 0));
    CHECK(snap.watchdog() == WatchdogStatus{});
    CHECK(snap.watchdog().state == WatchdogState::off);

    fake_source src;
    src.services = 1;
    status::publisher pub(snap, src);
    pub.publish(); // no watchdog: nothing stored
    CHECK(snap.watchdog() == WatchdogStatus{});

    WatchdogStatus w;
    w.device = WatchdogDevice::kernel;
    w.state = WatchdogState::feeding;
    w.identity = std::string_view("i6300ESB timer");
    w.timeout_s = 30;
    w.feeds = 7;
    w.previous.cls = ResetClass::starved;
    w.previous.subject = std::string_view("service uploader");
    src.wd = &w;
    pub.publish();
    CHECK(snap.watchdog() == w);
    snap.begin_publish();
    CHECK_FALSE(snap.put_watchdog(w)); // unchanged: not stored again
    w.feeds = 8;
    CHECK(snap.put_watchdog(w));
    snap.end_publish();
    CHECK(snap.watchdog().feeds == 8);
    CHECK(snap.watchdog().previous.subject == "service uploader");
}

TEST_CASE("snapshot: readers never see a torn record, nor a mixed publication") {
    constexpr std::uint32_t services = 16;
    constexpr std::uint32_t probes = 8;
    constexpr std::uint32_t monitors = 4;
    arena mem;
    REQUIRE(mem.reserve(status::snapshot::footprint(services, probes, monitors)));
    status::snapshot snap;
    REQUIRE(snap.init(mem, services, probes, monitors));
    fake_source src;
    src.services = services;
    src.probes = probes;
    src.monitors = monitors;
    status::publisher pub(snap, src);
    src.gen = 1;
    pub.publish(); // readers start from a published table

    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> torn{0};
    std::atomic<std::uint64_t> backwards{0};
    std::atomic<std::uint64_t> record_reads{0};
    std::atomic<std::uint64_t> all_reads{0};
    std::atomic<std::uint64_t> all_retries{0};
    std::vector<std::thread> readers;
    for (std::uint32_t r = 0; r < 3; ++r) {
        readers.emplace_back([&, r] {
            std::vector<ServiceStatus> sv(services);
            std::vector<ProbeStatus> pv(probes);
            std::vector<MonitorStatus> mv(monitors);
            HealthStatus hs;
            std::uint64_t last_service[services] = {};
            std::uint64_t last_probe[probes] = {};
            std::uint32_t last_gen = 0;
            std::uint64_t local_reads = 0;
            std::uint32_t k = r;
            while (!stop.load(std::memory_order_acquire)) {
                // One record of each kind, then the counters.
                const std::uint32_t i = k % services;
                const std::uint32_t p = k % probes;
                ++k;
                ServiceStatus s = snap.service(i);
                const auto sg = static_cast<std::uint64_t>(s.since_ns);
                if (!(s == service_at(sg, i))) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                if (sg < last_service[i]) {
                    backwards.fetch_add(1, std::memory_order_relaxed);
                }
                last_service[i] = sg;
                ProbeStatus ps = snap.probe(p);
                const auto pg = static_cast<std::uint64_t>(ps.last_check_ns);
                if (!(ps == probe_at(pg, p))) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                if (pg < last_probe[p]) {
                    backwards.fetch_add(1, std::memory_order_relaxed);
                }
                last_probe[p] = pg;
                const std::uint32_t m = k % monitors;
                MonitorStatus ms = snap.monitor(m);
                if (!(ms == monitor_at(static_cast<std::uint64_t>(ms.since_ns), m))) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                // The renderers' partial reads: each part one whole store.
                ServiceStatus sp;
                snap.service_into(i, sp, status::snapshot::service_part::shown);
                if (!(sp == service_at(static_cast<std::uint64_t>(sp.since_ns), i))) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                ProbeStatus pp;
                snap.probe_into(p, pp, status::snapshot::probe_part::all);
                if (!(pp == probe_at(static_cast<std::uint64_t>(pp.last_check_ns), p))) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                RuntimeStats st = snap.stats();
                if (!same_stats(st, stats_at(st.spawns / 19))) {
                    torn.fetch_add(1, std::memory_order_relaxed);
                }
                local_reads += 4;
                if (k % 4 == 0) {
                    // The big one (~3.5 KiB): a torn copy shows in its text.
                    HealthStatus h = snap.health();
                    if (!(h == health_at(static_cast<std::uint64_t>(h.since_ns)))) {
                        torn.fetch_add(1, std::memory_order_relaxed);
                    }
                }
                // Now and then, everything from one publication: every record
                // must be the one that publication put.
                if (k % 8 == 0) {
                    std::uint32_t g = 0;
                    if (!snap.try_read_all(sv, pv, mv, st, &hs, g)) {
                        all_retries.fetch_add(1, std::memory_order_relaxed);
                        continue;
                    }
                    bool ok = same_stats(st, stats_at(g)) && g >= last_gen;
                    for (std::uint32_t j = 0; j < services; ++j) {
                        ok = ok && sv[j] == service_at(service_gen(g, j), j);
                    }
                    for (std::uint32_t j = 0; j < probes; ++j) {
                        ok = ok && pv[j] == probe_at(g, j);
                    }
                    for (std::uint32_t j = 0; j < monitors; ++j) {
                        ok = ok && mv[j] == monitor_at(g, j);
                    }
                    ok = ok && hs == health_at(health_gen(g));
                    if (!ok) {
                        torn.fetch_add(1, std::memory_order_relaxed);
                    }
                    last_gen = g;
                    // Relaxed: progress counts the writer polls; no data ordered by them.
                    all_reads.fetch_add(1, std::memory_order_relaxed);
                }
                if (local_reads % 300 == 0) {
                    record_reads.fetch_add(300, std::memory_order_relaxed);
                }
            }
        });
    }

    // At least this many publications, and on until the readers have made
    // this many reads of each sort concurrently with them, so that the test
    // really overlaps the two however the threads get scheduled.
    constexpr std::uint64_t min_publications = 20000;
    constexpr std::uint64_t min_record_reads = 60000;
    constexpr std::uint64_t min_all_reads = 300;
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t g = 1;
    while (g < min_publications ||
           record_reads.load(std::memory_order_relaxed) < min_record_reads ||
           all_reads.load(std::memory_order_relaxed) < min_all_reads) {
        ++g;
        src.gen = g;
        pub.publish();
        // The reactor publishes once per loop turn, not back to back: leave
        // gaps now and then, as it does, so whole-snapshot reads can finish.
        if (g % 64 == 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        if (std::chrono::steady_clock::now() - start > std::chrono::seconds(120)) {
            break; // reported below as too few reads
        }
    }
    stop.store(true, std::memory_order_release);
    for (auto& t : readers) {
        t.join();
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    MESSAGE("publications ", g, ", record reads >= ", record_reads.load(), ", consistent read_all ",
            all_reads.load(), " (", all_retries.load(), " overlapped, retried), ", ms, " ms");
    CHECK(torn.load() == 0);
    CHECK(backwards.load() == 0);
    CHECK(snap.generation() == g);
    CHECK(record_reads.load() >= min_record_reads);
    CHECK(all_reads.load() >= min_all_reads);
}
