#include "status/event.hpp"

#include <time.h>

#include <chrono>

namespace custos::status {

std::string_view event_kind_name(event_kind k) noexcept {
    switch (k) {
    case event_kind::service_transition:
        return "service";
    case event_kind::probe_transition:
        return "probe";
    case event_kind::monitor:
        return "monitor";
    case event_kind::watchdog:
        return "watchdog";
    case event_kind::control_action:
        return "control";
    case event_kind::log:
        return "log";
    case event_kind::health:
        return "health";
    case event_kind::custom:
        return "custom";
    case event_kind::prune:
        return "prune";
    }
    return "unknown";
}

std::int64_t wall_now_ns() noexcept {
    timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

event make_event(const Transition& t, std::int64_t wall_ns) noexcept {
    event e;
    e.kind = event_kind::service_transition;
    e.from = static_cast<std::uint8_t>(t.from);
    e.to = static_cast<std::uint8_t>(t.to);
    e.reason = t.reason;
    e.subject = t.service;
    e.sys_errno = t.sys_errno;
    e.pid = t.pid;
    e.restarts = t.restarts;
    e.mono_ns = t.at_ns;
    e.wall_ns = wall_ns;
    e.delay_ns = t.delay_ns;
    e.exit = t.exit;
    e.channel_fd = t.channel_fd;
    e.name = t.name;
    e.detail = t.detail;
    return e;
}

event make_event(const ProbeTransition& t, std::int64_t wall_ns) noexcept {
    event e;
    e.kind = event_kind::probe_transition;
    e.from = static_cast<std::uint8_t>(t.from);
    e.to = static_cast<std::uint8_t>(t.to);
    e.reason = t.reason;
    e.subject = t.probe;
    e.sys_errno = t.sys_errno;
    e.mono_ns = t.at_ns;
    e.wall_ns = wall_ns;
    e.name = t.name;
    e.detail = t.message;
    e.resolution = t.resolution;
    return e;
}

event make_event(const MonitorTransition& t, std::int64_t wall_ns) noexcept {
    event e;
    e.kind = event_kind::monitor;
    e.from = static_cast<std::uint8_t>(t.from);
    e.to = static_cast<std::uint8_t>(t.to);
    e.reason = t.reason;
    e.subject = t.monitor;
    e.sys_errno = t.sys_errno;
    e.restarts = t.crashes;
    e.progress = t.progress;
    e.mono_ns = t.at_ns;
    e.wall_ns = wall_ns;
    e.delay_ns = t.delay_ns;
    e.name = t.name;
    e.detail = t.detail;
    e.resolution = t.resolution;
    return e;
}

event make_event(const WatchdogTransition& t, std::int64_t wall_ns) noexcept {
    event e;
    e.kind = event_kind::watchdog;
    e.from = static_cast<std::uint8_t>(t.from);
    e.to = static_cast<std::uint8_t>(t.to);
    e.reason = t.reason;
    e.sys_errno = t.sys_errno;
    e.mono_ns = t.mono_ns;
    e.wall_ns = wall_ns;
    e.name = "watchdog";
    e.detail = t.message;
    e.resolution = t.resolution;
    return e;
}

event make_event(const HealthStatus& now, Health before, std::int64_t wall_ns,
                 std::int64_t mono_ns) noexcept {
    event e;
    e.kind = event_kind::health;
    e.from = static_cast<std::uint8_t>(before);
    e.to = static_cast<std::uint8_t>(now.health);
    if (now.reason_count != 0) {
        const HealthReason& r = now.reasons[0];
        e.reason = r.reason;
        e.subject = r.index;
        e.sys_errno = r.sys_errno;
        e.resolution = r.resolution.view();
    } else {
        e.reason = now.settled ? Reason::health_settled : Reason::health_starting;
    }
    e.mono_ns = mono_ns != 0 ? mono_ns : now.since_ns;
    e.wall_ns = wall_ns;
    e.name = "health";
    e.detail = now.summary.view();
    e.health = &now;
    return e;
}

bool to_transition(const event& e, Transition& out) noexcept {
    if (e.kind != event_kind::service_transition) {
        return false;
    }
    Transition t;
    t.service = e.subject;
    t.name = e.name;
    t.from = e.service_from();
    t.to = e.service_to();
    t.reason = e.reason;
    t.sys_errno = e.sys_errno;
    t.at_ns = e.mono_ns;
    t.pid = e.pid;
    t.exit = e.exit;
    // The supervisor derives `delay` from the nanoseconds the same way
    // (truncating), so the round trip gives back the same milliseconds.
    t.delay = std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(e.delay_ns));
    t.delay_ns = e.delay_ns;
    t.restarts = e.restarts;
    t.detail = e.detail;
    t.channel_fd = e.channel_fd;
    out = t;
    return true;
}

bool to_probe_transition(const event& e, ProbeTransition& out) noexcept {
    if (e.kind != event_kind::probe_transition) {
        return false;
    }
    ProbeTransition t;
    t.probe = e.subject;
    t.name = e.name;
    t.from = e.probe_from();
    t.to = e.probe_to();
    t.reason = e.reason;
    t.sys_errno = e.sys_errno;
    t.message = e.detail;
    t.resolution = e.resolution;
    t.at_ns = e.mono_ns;
    out = t;
    return true;
}

bool to_monitor_transition(const event& e, MonitorTransition& out) noexcept {
    if (e.kind != event_kind::monitor) {
        return false;
    }
    MonitorTransition t;
    t.monitor = e.subject;
    t.name = e.name;
    t.from = e.monitor_from();
    t.to = e.monitor_to();
    t.reason = e.reason;
    t.sys_errno = e.sys_errno;
    t.at_ns = e.mono_ns;
    t.crashes = e.restarts;
    t.delay_ns = e.delay_ns;
    t.progress = e.progress;
    t.detail = e.detail;
    t.resolution = e.resolution;
    out = t;
    return true;
}

bool to_watchdog_transition(const event& e, WatchdogTransition& out) noexcept {
    if (e.kind != event_kind::watchdog) {
        return false;
    }
    WatchdogTransition t;
    t.from = e.watchdog_from();
    t.to = e.watchdog_to();
    t.reason = e.reason;
    t.sys_errno = e.sys_errno;
    t.mono_ns = e.mono_ns;
    t.message = e.detail;
    t.resolution = e.resolution;
    out = t;
    return true;
}

} // namespace custos::status
