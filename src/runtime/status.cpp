// custos::Runtime's read side: service, probe and monitor status, health,
// the counters and what the runtime chose. On the reactor thread they read
// the live state; on any other thread the snapshot published after the
// last loop turn that changed something.
#include "runtime/impl.hpp"

namespace custos {

// The live count on the reactor thread; elsewhere the snapshot's (a reload
// changes it).
std::uint32_t Runtime::service_count() const noexcept {
    if (impl_ == nullptr) {
        return 0;
    }
    return impl_->snap.is_writer_thread() ? impl_->count : impl_->snap.service_count();
}

ServiceStatus Runtime::impl::slot_status(std::uint32_t index) const noexcept {
    ServiceStatus s;
    const sup::unit& u = sup.at(index);
    s.name = u.name;
    s.state = u.state;
    s.reason = u.reason;
    s.since_ns = to_ns(u.since);
    s.pid = procs.pid(index);
    s.restarts = u.restarts;
    s.total_restarts = u.total_restarts;
    s.last_exit = u.last_exit;
    s.status_text = procs.status_text(index);
    s.notify_errno = procs.notify_errno(index);
    s.wanted = u.wanted;
    s.started_ns = u.started == mono_time{} ? 0 : to_ns(u.started);
    s.restart_at_ns = u.state == ServiceState::backoff ? to_ns(u.deadline) : 0;
    for (std::size_t c = 0; c < restart_cause_count; ++c) {
        s.restarts_by_cause[c] = u.by_cause[c];
    }
    s.last_error = u.last_error;
    s.death_count = u.death_count;
    // Oldest first.
    const std::uint64_t kept =
        u.death_count < death_history_capacity ? u.death_count : death_history_capacity;
    for (std::uint64_t k = 0; k < kept; ++k) {
        s.deaths[k] = u.deaths[(u.death_count - kept + k) % death_history_capacity];
    }
    s.output_bytes = procs.output_bytes(index);
    s.output_dropped_bytes = cap.counters(index).dropped_bytes;
    return s;
}

// On the reactor thread the live state (a hook asking about the transition
// it is being told of sees it); anywhere else the snapshot of the last turn.
ServiceStatus Runtime::status(std::uint32_t index) const noexcept {
    if (impl_ == nullptr) {
        return {};
    }
    if (impl_->snap.is_writer_thread()) {
        return index < impl_->count ? impl_->service_status(index) : ServiceStatus{};
    }
    return index < impl_->snap.service_count() ? impl_->snap.service(index) : ServiceStatus{};
}

std::uint32_t Runtime::monitor_count() const noexcept {
    return impl_ != nullptr ? impl_->nmonitors : 0;
}

MonitorStatus Runtime::monitor_status(std::uint32_t index) const noexcept {
    if (impl_ == nullptr || index >= impl_->nmonitors) {
        return {};
    }
    return impl_->snap.is_writer_thread() ? impl_->monitor_status(index)
                                          : impl_->snap.monitor(index);
}

HealthStatus Runtime::health() const noexcept {
    if (impl_ == nullptr) {
        return {};
    }
    return impl_->snap.is_writer_thread() ? impl_->hmodel.current() : impl_->snap.health();
}

int Runtime::exit_code() const noexcept {
    return impl_ != nullptr ? impl_->exit_status : 0;
}

int Runtime::channel_fd(std::uint32_t index) const noexcept {
    return impl_ != nullptr ? impl_->procs.channel_fd(index) : -1;
}

std::uint32_t Runtime::probe_count() const noexcept {
    if (impl_ == nullptr) {
        return 0;
    }
    return impl_->snap.is_writer_thread() ? impl_->nprobes : impl_->snap.probe_count();
}

ProbeStatus Runtime::probe_status(std::uint32_t index) const noexcept {
    if (impl_ == nullptr) {
        return {};
    }
    if (impl_->snap.is_writer_thread()) {
        return index < impl_->nprobes ? impl_->probes.status(impl_->probe_at(index))
                                      : ProbeStatus{};
    }
    return impl_->snap.probe(index);
}

Result<void> Runtime::check_probe(std::string_view name) noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "runtime not initialised");
    }
    std::uint32_t p = impl_->probes.find(name);
    if (p == UINT32_MAX) {
        return fail(Reason::probe_unknown, 0, name);
    }
    impl_->probes.check_now(p);
    return {};
}

RuntimeStats Runtime::impl::stats_now() const noexcept {
    RuntimeStats s = counters;
    const process::host_stats h = procs.stats();
    s.spawns = h.spawns;
    s.spawn_failures = h.spawn_failures;
    s.exits = h.exits;
    s.orphans_reaped = h.orphans_reaped;
    s.notify_received = h.notify_received;
    s.notify_dropped = h.notify_dropped;
    s.notify_foreign = h.notify_foreign;
    s.fds_closed = h.fds_closed;
    s.fds_closed_inline = h.fds_closed_inline;
    s.notify_restored = h.notify_restored;
    s.leftovers_killed = h.leftovers_killed;
    s.remnants_killed = h.remnants_killed;
    s.main_pid_followed = h.main_pid_followed;
    s.main_pid_refused = h.main_pid_refused;
    s.output_bytes = h.output_bytes;
    s.log_records = elog.counters().records;
    s.log_records_lost = elog.counters().lost;
    s.log_custom_dropped = elog.counters().custom_dropped;
    s.log_dropped_bytes = cap.totals().dropped_bytes;
    return s;
}

RuntimeStats Runtime::stats() const noexcept {
    if (impl_ == nullptr) {
        return {};
    }
    return impl_->snap.is_writer_thread() ? impl_->stats_now() : impl_->snap.stats();
}

const char* Runtime::backend_reason() const noexcept {
    return impl_ != nullptr ? impl_->reason : "not initialised";
}

const char* Runtime::exit_watch_name() const noexcept {
    return impl_ != nullptr ? impl_->procs.exit_watch_name() : "none";
}

const char* Runtime::spawn_method_name() const noexcept {
    return impl_ != nullptr ? impl_->procs.spawn_method_name() : "none";
}

} // namespace custos
