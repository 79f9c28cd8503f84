// What a service's notify messages do to its state: the service watchdog
// (WATCHDOG=1, WATCHDOG_USEC=, WATCHDOG=trigger, and its deadline firing)
// and EXTEND_TIMEOUT_USEC=; these follow systemd's rules.
#include "supervise/supervisor.hpp"

namespace custos {
namespace sup {

void supervisor::on_watchdog_ping(std::uint32_t i) noexcept {
    unit& u = units_[i];
    if (u.state == ServiceState::ready && u.wd_interval.count() > 0) {
        u.wd_deadline = host_.now() + u.wd_interval;
        host_.arm(u.wd_timer, u.wd_deadline);
    }
}

void supervisor::on_watchdog_usec(std::uint32_t i, nanos interval) noexcept {
    unit& u = units_[i];
    if (!has_process(u)) {
        return;
    }
    if (interval.count() > 0) {
        interval = interval < min_watchdog ? min_watchdog : interval;
        interval = interval > max_notify_timeout ? max_notify_timeout : interval;
    }
    u.wd_interval = interval;
    if (u.state != ServiceState::ready) {
        return; // armed when it becomes ready
    }
    if (interval.count() == 0) {
        host_.cancel(u.wd_timer);
        return;
    }
    u.wd_deadline = host_.now() + interval;
    host_.arm(u.wd_timer, u.wd_deadline);
}

void supervisor::on_watchdog_trigger(std::uint32_t i) noexcept {
    unit& u = units_[i];
    if (u.state == ServiceState::running || u.state == ServiceState::ready) {
        fail_and_kill(u, Reason::watchdog_triggered);
    }
}

void supervisor::on_extend_timeout(std::uint32_t i, nanos by) noexcept {
    unit& u = units_[i];
    by = by.count() < 0 ? nanos(0) : (by > max_notify_timeout ? max_notify_timeout : by);
    mono_time until = host_.now() + by;
    switch (u.state) {
    case ServiceState::running:  // the ready (start) timeout
    case ServiceState::stopping: // the stop grace
        if (u.timer.pending() && until > u.deadline) {
            u.deadline = until;
            host_.arm(u.timer, until);
        }
        return;
    case ServiceState::ready:
        // systemd applies it to start, runtime and stop timeouts, never to
        // WatchdogSec: a ready service keeps its watchdog (there is no
        // runtime limit to extend).
        return;
    case ServiceState::stopped:
    case ServiceState::waiting:
    case ServiceState::starting:
    case ServiceState::backoff:
    case ServiceState::failed:
        return;
    }
}

void supervisor::fire_watchdog(io::timer& t) noexcept {
    auto& u = *static_cast<unit*>(t.user);
    if (u.state != ServiceState::ready) {
        return;
    }
    // Pings queued behind a stall re-arm the watchdog from here.
    u.owner->host_.flush_notify(u.index);
    if (u.state == ServiceState::ready && !u.wd_timer.pending() && u.wd_interval.count() > 0) {
        u.owner->fail_and_kill(u, Reason::watchdog_timeout);
    }
}

} // namespace sup
} // namespace custos
