// The supervisor's slots, for reload: a service put into a vacant slot,
// redefined, stopped for good or to start again with its new definition,
// and the slot vacated (supervisor.hpp, "Reload works on slots").
#include "supervise/supervisor.hpp"

namespace custos {
namespace sup {

bool supervisor::vacant(std::uint32_t i) const noexcept {
    return i >= count_ || !units_[i].occupied;
}

Result<void> supervisor::occupy(std::uint32_t i, const ServiceSpec& spec,
                                std::string_view name) noexcept {
    if (!vacant(i) || i >= count_) {
        return fail(Reason::invalid_argument, 0, name);
    }
    unit& u = units_[i];
    if (spec.intensity_restarts > u.rt_capacity) {
        return fail(Reason::reload_capacity, 0, name);
    }
    // A fresh record; what the slot owns for good (its ring, its probe
    // list, its place) carries over. A vacant slot has no timer pending;
    // cancelling is for safety, as the wheel must not keep a node that is
    // about to be constructed over.
    host_.cancel(u.timer);
    host_.cancel(u.wd_timer);
    mono_time* times = u.restart_times;
    const std::uint32_t ring = u.rt_capacity;
    std::uint32_t* probe_deps = u.probe_deps;
    u.~unit();
    ::new (static_cast<void*>(&u)) unit();
    u.restart_times = times;
    u.rt_capacity = ring;
    u.probe_deps = probe_deps;
    set_up(u, i);
    u.occupied = true;
    u.name = name;
    apply(u, spec);
    return {};
}

Result<void> supervisor::redefine(std::uint32_t i, const ServiceSpec& spec) noexcept {
    if (vacant(i)) {
        return fail(Reason::invalid_argument, 0, spec.name);
    }
    unit& u = units_[i];
    if (spec.intensity_restarts > u.rt_capacity) {
        return fail(Reason::reload_capacity, 0, u.name);
    }
    apply(u, spec);
    return {};
}

void supervisor::reload_stop(std::uint32_t i, bool then_start) noexcept {
    if (vacant(i)) {
        return;
    }
    unit& u = units_[i];
    if (u.reload_reason == Reason::reload_removed) {
        return; // already leaving
    }
    const Reason why = then_start ? Reason::reload_changed : Reason::reload_removed;
    const bool again = then_start && u.wanted && !stopping_all_;
    u.wanted = again;
    u.restart_after_stop = again;
    if (again) {
        u.resume_reason = why;
        reset_budget(u);
        ++u.by_cause[static_cast<std::size_t>(RestartCause::operator_)];
    }
    switch (u.state) {
    case ServiceState::running:
    case ServiceState::ready:
        u.stop_requested = true;
        u.reload_reason = why;
        if (!stopping_all_) {
            begin_stop(u, u.stop_timeout, why);
        }
        return; // else advance_stop() signals it in the runtime stop's order
    case ServiceState::stopping:
        // Its signal and grace stand; its exit now ends this reload stop.
        u.stop_requested = true;
        u.reload_reason = why;
        return;
    case ServiceState::stopped:
    case ServiceState::failed:
    case ServiceState::waiting:
    case ServiceState::starting:
    case ServiceState::backoff:
        disarm(u);
        u.pid = 0;
        u.reload_reason = why;
        reload_stopped(u, nullptr, {});
        return;
    }
}

// The end of a reload stop: stopped with the reload's reason; a removed
// service's slot becomes vacant, a changed one starts again if it is to.
void supervisor::reload_stopped(unit& u, const ExitInfo* exit, std::string_view detail) noexcept {
    const Reason why = u.reload_reason;
    u.reload_reason = Reason::unknown;
    u.stop_requested = false;
    if (why == Reason::reload_removed) {
        vacate(u, exit, detail);
        return;
    }
    enter(u, ServiceState::stopped, why, 0, exit, detail);
    if (u.restart_after_stop && !stopping_all_ && u.state == ServiceState::stopped) {
        u.restart_after_stop = false;
        want_start(u, u.resume_reason);
    }
}

// Removed service `u` has no process any more: its edges go, the slot is
// vacant (already inside the transition's hook), its former dependents
// are checked again (one that waited only for it starts).
void supervisor::vacate(unit& u, const ExitInfo* exit, std::string_view detail) noexcept {
    const std::uint32_t me = u.index;
    for (std::uint32_t k = 0; k < u.ndeps; ++k) {
        unit& d = units_[u.deps[k]];
        std::uint32_t kept = 0;
        for (std::uint32_t m = 0; m < d.ndependents; ++m) {
            if (d.dependents[m] != me) {
                d.dependents[kept++] = d.dependents[m];
            }
        }
        d.ndependents = kept;
    }
    for (std::uint32_t k = 0; k < u.ndependents; ++k) {
        unit& d = units_[u.dependents[k]];
        std::uint32_t kept = 0;
        for (std::uint32_t m = 0; m < d.ndeps; ++m) {
            if (d.deps[m] != me) {
                d.deps[kept++] = d.deps[m];
            }
        }
        d.ndeps = kept;
    }
    // Its dependents' slice stays in the pool until the next relink().
    const std::uint32_t* former = u.dependents;
    const std::uint32_t nformer = u.ndependents;
    u.ndeps = 0;
    u.ndependents = 0;
    u.nprobe_deps = 0;
    u.rank = 0;
    compute_ranks();
    u.occupied = false;
    u.wanted = false;
    u.restart_after_stop = false;
    u.restart_on_recovery = false;
    enter(u, ServiceState::stopped, Reason::reload_removed, 0, exit, detail);
    if (!u.occupied) {
        u.name = {}; // the caller's storage may go now
    }
    for (std::uint32_t k = 0; k < nformer; ++k) {
        dependency_back(units_[former[k]]);
    }
}

Result<void> supervisor::relink(const tbl::plan& plan,
                                std::span<const std::uint32_t> slot_of) noexcept {
    const std::span<const tbl::service_plan> sp = plan.services();
    if (slot_of.size() != sp.size()) {
        return fail(Reason::invalid_argument, 0, "slot_of");
    }
    for (std::size_t k = 0; k < slot_of.size(); ++k) {
        if (vacant(slot_of[k])) {
            return fail(Reason::invalid_argument, 0, sp[k].name);
        }
        for (std::size_t m = 0; m < k; ++m) {
            if (slot_of[m] == slot_of[k]) {
                return fail(Reason::invalid_argument, 0, sp[k].name);
            }
        }
    }
    if (auto r = link(plan, slot_of); !r) {
        return r;
    }
    // Waiting services whose dependencies are now all ready start; those
    // restarting on a dependency's recovery are looked at again too.
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (units_[i].occupied) {
            dependency_back(units_[i]);
        }
    }
    if (stopping_all_) {
        advance_stop();
    }
    return {};
}

} // namespace sup
} // namespace custos
