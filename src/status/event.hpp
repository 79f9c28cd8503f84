// The event record: one type for everything that happens in the runtime,
// handed to every listener of the event stream (stream.hpp).
//
// Owns: nothing. An event is built on the reactor thread, dispatched, and
// dropped; its string_views (name, detail, resolution) point into the
// emitter's memory and are valid only during dispatch. A listener that keeps
// anything copies it (the status snapshot copies into fixed buffers, the
// event log into its ring).
//
// Kinds: service, probe, monitor, health and watchdog events are emitted;
// the others are reserved now so that listeners written against this header
// (the event log, the control plane) switch over every kind and get a
// compile error, not a silent miss, when one starts to be emitted.
//
// Invariants: `from`/`to` hold a ServiceState (service_transition), a
// ProbeState (probe_transition), a MonitorState (monitor), a WatchdogState
// (watchdog) or a Health
// (health) as its underlying value; use the typed accessors.
// make_event() then to_transition()/to_probe_transition()/
// to_monitor_transition() gives back the record it was built from, field
// for field (tested), so the user hooks (TransitionHook, ProbeHook,
// MonitorHook) keep their exact arguments as listeners of the stream. A
// health event carries the whole HealthStatus by pointer (`health`), valid
// during dispatch like the views.
//
// Wiring (runtime): where the runtime calls its hooks today
// (host transition() and impl::transition(const ProbeTransition&)), it
// builds `make_event(t, wall_now_ns())` and calls stream::dispatch().
#pragma once

#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/service.hpp>
#include <custos/watchdog.hpp>

namespace custos::status {

// Append-only, like Reason: a kind keeps its number once released.
enum class event_kind : std::uint8_t {
    service_transition = 0, // a service changed state: from/to are ServiceState
    probe_transition = 1,   // a probe changed state: from/to are ProbeState
    monitor = 2,            // an in-process monitor: from/to are MonitorState (from == to:
                            // a report: degraded, heartbeat, wedge suspected)
    watchdog = 3, // the hardware watchdog: from/to are WatchdogState (from == to: a report)
    // An operator action through the control plane, allowed or refused:
    // pid and peer_uid are the peer's, name the subject (service, probe,
    // "watchdog"), detail "METHOD PATH by COMM", http_status the answer.
    control_action = 4,
    // Reserved; nothing emits it yet.
    log = 5,    // the event log itself: rotation, drops
    health = 6, // the runtime's health or its reasons changed: from/to are Health
    // The embedding daemon's own event (the event log's custom records):
    // name, reason and detail are the caller's; from/to unused. Reserved:
    // nothing dispatches it yet.
    custom = 7,
    // The retention pruner (Table::prunes): name is the job, reason
    // PruneDeleted with detail "FILE (N bytes, RULES)" for each file it
    // deleted, or the failure (PruneScanFailed, PruneTooManyFiles,
    // PruneUnlinkFailed, PruneFileChanged) with its resolution; from/to
    // unused.
    prune = 8,
};

inline constexpr std::size_t event_kind_count = 9;

// Stable lower-case name ("service", "probe", "monitor", "watchdog",
// "control", "log", "health", "custom", "prune"), as the event log and the
// control plane write it.
std::string_view event_kind_name(event_kind k) noexcept;

struct event {
    event_kind kind = event_kind::service_transition;
    std::uint8_t from = 0; // ServiceState, ProbeState, MonitorState or Health, per kind
    std::uint8_t to = 0;
    Reason reason = Reason::unknown;
    std::uint32_t subject = 0; // index of the service, probe or monitor, table order
    int sys_errno = 0;
    int pid = 0;                // the process concerned, if any
    std::uint32_t restarts = 0; // services: restarts; monitors: consecutive crashes
    std::uint64_t progress = 0; // monitors: the last progress token
    std::int64_t mono_ns = 0;   // CLOCK_MONOTONIC: ordering, durations
    std::int64_t wall_ns = 0;   // CLOCK_REALTIME: what an operator reads (0: unknown)
    std::int64_t delay_ns = 0;  // backoff: time until the restart
    ExitInfo exit;              // when the event is due to an exit
    int channel_fd = -1;        // Transition::channel_fd
    int peer_uid = -1;          // control_action: the peer's uid
    int http_status = 0;        // control_action: what it was answered
    // Valid only during dispatch.
    std::string_view name;       // the subject's name
    std::string_view detail;     // Transition::detail, ProbeTransition::message,
                                 // MonitorTransition::detail, the health summary
    std::string_view resolution; // what an operator can do (empty for services)
    // health: the whole status (reasons included).
    const HealthStatus* health = nullptr;

    ServiceState service_from() const noexcept { return static_cast<ServiceState>(from); }
    ServiceState service_to() const noexcept { return static_cast<ServiceState>(to); }
    ProbeState probe_from() const noexcept { return static_cast<ProbeState>(from); }
    ProbeState probe_to() const noexcept { return static_cast<ProbeState>(to); }
    MonitorState monitor_from() const noexcept { return static_cast<MonitorState>(from); }
    MonitorState monitor_to() const noexcept { return static_cast<MonitorState>(to); }
    Health health_from() const noexcept { return static_cast<Health>(from); }
    Health health_to() const noexcept { return static_cast<Health>(to); }
    WatchdogState watchdog_from() const noexcept { return static_cast<WatchdogState>(from); }
    WatchdogState watchdog_to() const noexcept { return static_cast<WatchdogState>(to); }
};

// CLOCK_REALTIME now, in nanoseconds since the epoch (0 if the clock fails,
// which it does not for a valid clock id: vDSO, no system call).
std::int64_t wall_now_ns() noexcept;

// An event from a service transition (mono_ns = t.at_ns) or a probe
// transition; `wall_ns` is the wall-clock time to record (wall_now_ns()).
// The views in the event point where the transition's do.
event make_event(const Transition& t, std::int64_t wall_ns) noexcept;
event make_event(const ProbeTransition& t, std::int64_t wall_ns) noexcept;
event make_event(const MonitorTransition& t, std::int64_t wall_ns) noexcept;
// A watchdog event: name "watchdog", detail its message.
event make_event(const WatchdogTransition& t, std::int64_t wall_ns) noexcept;
// A health event (health_model::update() said it changed): from `before`
// (current().health read before the update; equal to now.health when only
// the reasons changed) to now.health. reason: the first reason's (the one the summary names),
// else HealthSettled once settled, else HealthStarting; subject, sys_errno
// and resolution: the first reason's; name: "health"; detail: the summary;
// mono_ns: `mono_ns`, or now.since_ns when 0 (a change of the reasons alone
// should pass the time of the change). `health` points to `now`, which must
// outlive the dispatch.
event make_event(const HealthStatus& now, Health before, std::int64_t wall_ns,
                 std::int64_t mono_ns = 0) noexcept;

// The transition an event was made from, for the user hooks. False (and
// `out` untouched) when the event is of another kind.
[[nodiscard]] bool to_transition(const event& e, Transition& out) noexcept;
[[nodiscard]] bool to_probe_transition(const event& e, ProbeTransition& out) noexcept;
[[nodiscard]] bool to_monitor_transition(const event& e, MonitorTransition& out) noexcept;
[[nodiscard]] bool to_watchdog_transition(const event& e, WatchdogTransition& out) noexcept;

} // namespace custos::status
