#include "status/stream.hpp"

#include <cerrno>

namespace custos::status {

Result<void> stream::reserve(arena& mem, std::uint32_t capacity) noexcept {
    if (sealed_) {
        return fail(Error(Reason::invalid_argument, 0, "event stream")
                        .with_resolution("Reserve the listener list before Runtime::start()"));
    }
    slots_ = mem.make_array<listener*>(capacity);
    size_ = 0;
    if (slots_ == nullptr && capacity != 0) {
        capacity_ = 0;
        return fail(Reason::out_of_memory, ENOMEM, "event stream");
    }
    capacity_ = capacity;
    return {};
}

Result<void> stream::try_add(listener& l) noexcept {
    if (sealed_) {
        return fail(Error(Reason::invalid_argument, 0, "event stream")
                        .with_resolution("Add listeners at init, before Runtime::start()"));
    }
    if (size_ == capacity_) {
        return fail(Error(Reason::capacity_exceeded, 0, "event stream listeners")
                        .with_resolution("Raise the event stream's listener capacity at init, "
                                         "or add fewer listeners"));
    }
    slots_[size_++] = &l;
    return {};
}

void hook_listener::on_event(const event& e) noexcept {
    switch (e.kind) {
    case event_kind::service_transition:
        if (transition_ != nullptr) {
            Transition t;
            (void)to_transition(e, t); // the kind is checked above
            transition_(t, transition_ctx_);
        }
        return;
    case event_kind::probe_transition:
        if (probe_ != nullptr) {
            ProbeTransition t;
            (void)to_probe_transition(e, t);
            probe_(t, probe_ctx_);
        }
        return;
    case event_kind::monitor:
        if (monitor_ != nullptr) {
            MonitorTransition t;
            (void)to_monitor_transition(e, t);
            monitor_(t, monitor_ctx_);
        }
        return;
    case event_kind::health:
        if (health_ != nullptr && e.health != nullptr) {
            health_(*e.health, health_ctx_);
        }
        return;
    case event_kind::watchdog:
        if (watchdog_ != nullptr) {
            WatchdogTransition t;
            (void)to_watchdog_transition(e, t);
            watchdog_(t, watchdog_ctx_);
        }
        return;
    case event_kind::control_action:
        if (control_ != nullptr) {
            ControlAction a;
            a.subject = e.name;
            a.request = e.detail;
            a.pid = e.pid;
            a.uid = e.peer_uid;
            a.http_status = e.http_status;
            a.reason = e.reason;
            a.at_ns = e.mono_ns;
            control_(a, control_ctx_);
        }
        return;
    case event_kind::prune:
        if (prune_ != nullptr) {
            PruneEvent p;
            p.job = e.name;
            p.reason = e.reason;
            p.sys_errno = e.sys_errno;
            p.detail = e.detail;
            p.resolution = e.resolution;
            p.at_ns = e.mono_ns;
            prune_(p, prune_ctx_);
        }
        return;
    case event_kind::log:
    case event_kind::custom:
        return; // no user hook for them (yet)
    }
}

} // namespace custos::status
