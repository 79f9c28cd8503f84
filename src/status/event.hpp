// The event record: one type for everything that happens in the runtime,
// handed to every listener of the event stream (stream.hpp).
//
// Owns: nothing. An event is built on the reactor thread, dispatched, and
// dropped; its string_views (name, detail, resolution) point into the
// emitter's memory and are valid only during dispatch. A listener that keeps
// anything copies it (the status snapshot copies into fixed buffers, the
// event log into its ring).
//
// Kinds: service and probe transitions are emitted today; the others are
// reserved now so that listeners written against this header (the event
// log, the control plane, the watchdog gate) switch over every kind and get
// a compile error, not a silent miss, when one starts to be emitted.
//
// Invariants: `from`/`to` hold a ServiceState (service_transition) or a
// ProbeState (probe_transition) as its underlying value; use the typed
// accessors. make_event() then to_transition()/to_probe_transition() gives
// back the record it was built from, field for field (tested), so the
// existing user hooks (TransitionHook, ProbeHook) keep their exact
// arguments when they become one listener among others.
//
// Wiring (runtime): where the runtime calls its hooks today
// (host transition() and impl::transition(const ProbeTransition&)), it
// builds `make_event(t, wall_now_ns())` and calls stream::dispatch().
#pragma once

#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/service.hpp>

namespace custos::status {

// Append-only, like Reason: a kind keeps its number once released.
enum class event_kind : std::uint8_t {
    service_transition = 0, // a service changed state: from/to are ServiceState
    probe_transition = 1,   // a probe changed state: from/to are ProbeState
    // Reserved; nothing emits them yet.
    monitor = 2,        // an in-process monitor: crash, restart, wedge, degraded
    watchdog = 3,       // the hardware watchdog gate: armed, fed, withheld
    control_action = 4, // an operator action through the control plane
    log = 5,            // the event log itself: rotation, drops
};

inline constexpr std::size_t event_kind_count = 6;

// Stable lower-case name ("service", "probe", "monitor", "watchdog",
// "control", "log"), as the event log and the control plane write it.
std::string_view event_kind_name(event_kind k) noexcept;

struct event {
    event_kind kind = event_kind::service_transition;
    std::uint8_t from = 0; // ServiceState or ProbeState, per kind
    std::uint8_t to = 0;
    Reason reason = Reason::unknown;
    std::uint32_t subject = 0; // index of the service or probe, table order
    int sys_errno = 0;
    int pid = 0; // the process concerned, if any
    std::uint32_t restarts = 0;
    std::int64_t mono_ns = 0;  // CLOCK_MONOTONIC: ordering, durations
    std::int64_t wall_ns = 0;  // CLOCK_REALTIME: what an operator reads (0: unknown)
    std::int64_t delay_ns = 0; // backoff: time until the restart
    ExitInfo exit;             // when the event is due to an exit
    int channel_fd = -1;       // Transition::channel_fd
    // Valid only during dispatch.
    std::string_view name;       // the subject's name
    std::string_view detail;     // Transition::detail, ProbeTransition::message
    std::string_view resolution; // what an operator can do (probes; empty otherwise)

    ServiceState service_from() const noexcept { return static_cast<ServiceState>(from); }
    ServiceState service_to() const noexcept { return static_cast<ServiceState>(to); }
    ProbeState probe_from() const noexcept { return static_cast<ProbeState>(from); }
    ProbeState probe_to() const noexcept { return static_cast<ProbeState>(to); }
};

// CLOCK_REALTIME now, in nanoseconds since the epoch (0 if the clock fails,
// which it does not for a valid clock id: vDSO, no system call).
std::int64_t wall_now_ns() noexcept;

// An event from a service transition (mono_ns = t.at_ns) or a probe
// transition; `wall_ns` is the wall-clock time to record (wall_now_ns()).
// The views in the event point where the transition's do.
event make_event(const Transition& t, std::int64_t wall_ns) noexcept;
event make_event(const ProbeTransition& t, std::int64_t wall_ns) noexcept;

// The transition an event was made from, for the user hooks. False (and
// `out` untouched) when the event is of another kind.
[[nodiscard]] bool to_transition(const event& e, Transition& out) noexcept;
[[nodiscard]] bool to_probe_transition(const event& e, ProbeTransition& out) noexcept;

} // namespace custos::status
