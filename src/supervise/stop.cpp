// The supervisor's runtime stop: dependents before their dependencies, each
// service's grace its share of what is left of the total budget, SIGKILL to
// every survivor at the total deadline (supervisor.hpp, "Runtime stop").
#include <csignal>

#include "supervise/supervisor.hpp"

namespace custos {
namespace sup {

void supervisor::stop_all(nanos budget) noexcept {
    if (stopping_all_) {
        return;
    }
    stopping_all_ = true;
    stop_deadline_ = host_.now() + budget;
    host_.arm(stop_timer_, stop_deadline_);
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        u.wanted = false;
        u.restart_after_stop = false;
        switch (u.state) {
        case ServiceState::waiting:
        case ServiceState::starting:
        case ServiceState::backoff:
            disarm(u);
            enter(u, ServiceState::stopped, Reason::runtime_stop);
            break;
        case ServiceState::running:
        case ServiceState::ready:
        case ServiceState::stopping:
            u.stop_requested = true;
            break;
        case ServiceState::stopped:
        case ServiceState::failed:
            break;
        }
    }
    advance_stop();
}

// Signals every service whose dependents have all exited; reports when none
// is left.
void supervisor::advance_stop() noexcept {
    bool any = false;
    mono_time now = host_.now();
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        if (!has_process(u)) {
            continue;
        }
        any = true;
        if (u.state == ServiceState::stopping) {
            continue;
        }
        bool dependents_gone = true;
        for (std::uint32_t k = 0; k < u.ndependents; ++k) {
            if (has_process(units_[u.dependents[k]])) {
                dependents_gone = false;
                break;
            }
        }
        if (!dependents_gone && !stop_hard_) {
            continue;
        }
        nanos left = stop_deadline_ > now ? stop_deadline_ - now : nanos(0);
        nanos share = left / (u.rank + 1);
        nanos grace = u.stop_timeout < share ? u.stop_timeout : share;
        begin_stop(u, grace, Reason::runtime_stop);
        if (stop_hard_ && !u.killed) {
            u.killed = true;
            host_.kill(u.index, SIGKILL);
        }
    }
    if (!any && !all_stopped_sent_) {
        all_stopped_sent_ = true;
        host_.cancel(stop_timer_);
        host_.all_stopped();
    }
}

// The total stop budget ran out: SIGKILL to every survivor, whatever its
// place in the order.
void supervisor::fire_stop_deadline(io::timer& t) noexcept {
    auto& s = *static_cast<supervisor*>(t.user);
    if (s.stop_hard_) {
        // SIGKILL did not end them within abandon_after: a process stuck in
        // the kernel (D state). Leave it to init rather than hang the stop.
        for (std::uint32_t i = 0; i < s.count_; ++i) {
            unit& u = s.units_[i];
            if (!has_process(u)) {
                continue;
            }
            s.disarm(u);
            u.pid = 0;
            if (u.reload_reason != Reason::unknown) {
                // A removed one's slot is vacant from here all the same.
                s.reload_stopped(u, nullptr, "abandoned: still alive after SIGKILL");
            } else {
                s.enter(u, ServiceState::stopped, Reason::stop_timeout, 0, nullptr,
                        "abandoned: still alive after SIGKILL");
            }
        }
        s.advance_stop();
        return;
    }
    s.stop_hard_ = true;
    s.host_.arm(s.stop_timer_, s.host_.now() + abandon_after);
    for (std::uint32_t i = 0; i < s.count_; ++i) {
        unit& u = s.units_[i];
        if (u.state == ServiceState::stopping && !u.killed) {
            u.killed = true;
            s.host_.cancel(u.timer);
            s.host_.kill(u.index, SIGKILL);
        }
    }
    s.advance_stop();
}

} // namespace sup
} // namespace custos
