// What connects the monitors, the health model and the notify paths upward
// to the rest of the runtime (impl.hpp).
#include <cerrno>

#include "runtime/impl.hpp"

namespace custos {

// --- the monitor machine's host ---

namespace rt_detail {

mono_time monitor_host::now() noexcept {
    return rt.reactor.now();
}
void monitor_host::arm(io::timer& t, mono_time deadline, nanos slack) noexcept {
    rt.reactor.arm(t, deadline, slack);
}
void monitor_host::cancel(io::timer& t) noexcept {
    rt.reactor.cancel(t);
}
bool monitor_host::deps_ready(std::uint32_t m) noexcept {
    return rt.monitor_deps_ready(m);
}
void monitor_host::launch(std::uint32_t m, std::uint32_t run) noexcept {
    rt.threads.launch(m, run);
}
void monitor_host::request_stop(std::uint32_t m) noexcept {
    rt.threads.request_stop(m);
}
void monitor_host::sample(std::uint32_t m, mon::sample& out) noexcept {
    rt.threads.sample(m, out);
}
std::size_t monitor_host::evidence(std::uint32_t m, char* buf, std::size_t len) noexcept {
    return rt.threads.evidence(m, buf, len);
}
void monitor_host::transition(const MonitorTransition& t) noexcept {
    rt.listeners.dispatch(status::make_event(t, status::wall_now_ns()));
}
// on_wedge = exit: the whole daemon is to be restarted from above. The stop
// runs from the next loop turn (the machine is in the middle of its check).
void monitor_host::wedge_exit(std::uint32_t) noexcept {
    if (rt.exit_status == 0) {
        rt.exit_status = Runtime::exit_wedged;
    }
    rt.reactor.arm(rt.stop_soon, rt.reactor.now());
}
// The monitors have returned (or were abandoned): now the services they
// depended on stop.
void monitor_host::all_stopped() noexcept {
    rt.sup.stop_all(std::chrono::duration_cast<nanos>(rt.cfg.stop_timeout));
}

} // namespace rt_detail

bool Runtime::impl::monitor_deps_ready(std::uint32_t m) noexcept {
    const tbl::monitor_plan& mp = plan.monitors()[m];
    for (std::uint32_t j : mp.deps) {
        if (sup.at(rl.plan_slot[j]).state != ServiceState::ready) {
            return false;
        }
    }
    for (std::uint32_t p : mp.probe_deps) {
        if (probes.at(probe_at(p)).state != ProbeState::ready) {
            return false;
        }
    }
    return true;
}

// After layout(): the threads, once (they are not laid out in the arena).
Result<void> Runtime::impl::init_monitors() noexcept {
    if (nmonitors == 0) {
        return {};
    }
    auto on_result = [](void* ctx, std::uint32_t m, const Result<void>& r) noexcept {
        static_cast<impl*>(ctx)->monitors.on_returned(m, r);
    };
    auto on_notice = [](void* ctx, std::uint32_t m) noexcept {
        static_cast<impl*>(ctx)->monitors.on_notice(m);
    };
    return threads.init(plan.table().monitors, reactor, on_result, on_notice, this);
}

// --- health ---

// In layout(), both passes: the arrays health is derived from, and the
// table's flags and graces copied into them.
Result<void> Runtime::impl::layout_health() noexcept {
    harr.services = mem.make_array<ServiceStatus>(rl.slots);
    harr.probes = mem.make_array<ProbeStatus>(rl.probe_slots);
    harr.monitors = mem.make_array<MonitorStatus>(nmonitors);
    harr.service_critical = mem.make_array<bool>(rl.slots);
    harr.probe_critical = mem.make_array<bool>(rl.probe_slots);
    harr.probe_grace_ns = mem.make_array<std::int64_t>(rl.probe_slots);
    const bool ok =
        (count == 0 || (harr.services != nullptr && harr.service_critical != nullptr)) &&
        (rl.probe_slots == 0 || (harr.probes != nullptr && harr.probe_critical != nullptr &&
                                 harr.probe_grace_ns != nullptr)) &&
        (nmonitors == 0 || harr.monitors != nullptr);
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "health");
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        harr.service_critical[i] = plan.table().services[i].critical;
    }
    for (std::uint32_t p = 0; p < nprobes; ++p) {
        const ProbeSpec& spec = plan.table().probes[p];
        harr.probe_critical[p] = spec.critical;
        harr.probe_grace_ns[p] = std::chrono::duration_cast<nanos>(spec.grace).count();
    }
    return {};
}

// After a turn: derive again when an event happened or a grace ran out;
// report a change to every listener and upward. Once the runtime's stop
// has begun health stays as it was: services stopping in order are not a
// degradation to report.
void Runtime::impl::update_health() noexcept {
    if (!started || stopping || !health_dirty.dirty) {
        return;
    }
    health_dirty.dirty = false;
    for (std::uint32_t i = 0; i < count; ++i) {
        harr.services[i] = service_status(i);
    }
    for (std::uint32_t p = 0; p < nprobes; ++p) {
        harr.probes[p] = probes.status(probe_at(p));
    }
    for (std::uint32_t m = 0; m < nmonitors; ++m) {
        harr.monitors[m] = monitors.status(m);
    }
    status::health_input in;
    in.services = {harr.services, count};
    in.service_critical = {harr.service_critical, count};
    in.probes = {harr.probes, nprobes};
    in.probe_critical = {harr.probe_critical, nprobes};
    in.probe_grace_ns = {harr.probe_grace_ns, nprobes};
    in.monitors = {harr.monitors, nmonitors};
    in.boot_grace_ns = std::chrono::duration_cast<nanos>(cfg.boot_grace).count();
    in.started_ns = started_ns;
    in.now_ns = to_ns(reactor.now());
    const Health before = hmodel.current().health;
    const bool changed = hmodel.update(in);
    reactor.cancel(health_timer);
    if (hmodel.next_deadline_ns() != 0) {
        reactor.arm(health_timer, mono_time(nanos(hmodel.next_deadline_ns())));
    }
    if (changed) {
        listeners.dispatch(
            status::make_event(hmodel.current(), before, status::wall_now_ns(), in.now_ns));
        upward.on_health(hmodel.current());
        if (wd.on) {
            wd.feeder.on_health(hmodel.current());
        }
    }
}

void Runtime::impl::on_health_timer(io::timer& t) noexcept {
    static_cast<impl*>(t.user)->health_dirty.dirty = true;
}

} // namespace custos
