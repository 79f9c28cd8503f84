// src/status: the event record and its round trips, the listener list, the
// public FixedText.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <custos/probe.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>
#include <custos/text.hpp>

#include "core/arena.hpp"
#include "doctest.hpp"
#include "status/event.hpp"
#include "status/stream.hpp"

using namespace custos;

namespace {

// --- FixedText ---

static_assert(std::is_trivially_copyable_v<FixedText<31>>);
static_assert(std::is_trivially_copyable_v<ServiceStatus>);
static_assert(std::is_trivially_copyable_v<ProbeStatus>);
static_assert(std::is_trivially_copyable_v<RuntimeStats>);
static_assert(std::is_convertible_v<FixedText<8>, std::string_view>);
// The hook adapters take exactly the public hook types.
static_assert(std::is_same_v<status::hook_listener::transition_fn, TransitionHook>);
static_assert(std::is_same_v<status::hook_listener::probe_fn, ProbeHook>);

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

TEST_CASE("event: kinds have stable names; the wall clock is the real one") {
    CHECK(status::event_kind_name(status::event_kind::service_transition) == "service");
    CHECK(status::event_kind_name(status::event_kind::probe_transition) == "probe");
    CHECK(status::event_kind_name(status::event_kind::monitor) == "monitor");
    CHECK(status::event_kind_name(status::event_kind::watchdog) == "watchdog");
    CHECK(status::event_kind_name(status::event_kind::control_action) == "control");
    CHECK(status::event_kind_name(status::event_kind::log) == "log");
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
    Transition last;
    ProbeTransition last_probe;
    std::string name;
};

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
}
