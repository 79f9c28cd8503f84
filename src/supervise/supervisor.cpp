// The restart state machine and dependency gating. See supervisor.hpp for
// the states and invariants. Elsewhere: the runtime stop's sequencing
// (stop.cpp), the dependency graph and ranks (graph.cpp), reload's slots
// (slots.cpp), the services' watchdog and timeout extensions
// (notify_events.cpp).
#include "supervise/supervisor.hpp"

#include <csignal>
#include <cstring>
#include <new>

#include "core/assert.hpp"

namespace custos {

std::string_view state_name(ServiceState s) noexcept {
    switch (s) {
    case ServiceState::stopped:
        return "stopped";
    case ServiceState::waiting:
        return "waiting";
    case ServiceState::starting:
        return "starting";
    case ServiceState::running:
        return "running";
    case ServiceState::ready:
        return "ready";
    case ServiceState::backoff:
        return "backoff";
    case ServiceState::stopping:
        return "stopping";
    case ServiceState::failed:
        return "failed";
    }
    return "unknown";
}

std::string_view restart_cause_name(RestartCause c) noexcept {
    switch (c) {
    case RestartCause::crash:
        return "crash";
    case RestartCause::probe:
        return "probe";
    case RestartCause::watchdog:
        return "watchdog";
    case RestartCause::operator_:
        return "operator";
    case RestartCause::dependency:
        return "dependency";
    }
    return "unknown";
}

namespace sup {
namespace {

// What an automatic restart after `why` counts as.
RestartCause restart_cause(Reason why) noexcept {
    if (why == Reason::liveness_failed) {
        return RestartCause::probe;
    }
    if (why == Reason::watchdog_timeout || why == Reason::watchdog_triggered) {
        return RestartCause::watchdog;
    }
    return RestartCause::crash;
}

nanos to_nanos(Duration d) noexcept {
    return std::chrono::duration_cast<nanos>(d);
}

// A clean end under the restart policies: exit 0, or killed by the service's
// own stop signal (someone stopped it the way it is meant to be stopped).
bool clean_exit(const unit& u, const ExitInfo& e) noexcept {
    return e.signal == 0 ? e.code == 0 : e.signal == u.stop_signal;
}

} // namespace

Result<void> supervisor::init(const tbl::plan& plan, arena& mem, std::uint64_t seed,
                              std::uint32_t slots, std::uint32_t probes) noexcept {
    const std::span<const ServiceSpec> table = plan.table().services;
    const auto n = static_cast<std::uint32_t>(table.size());
    count_ = slots > n ? slots : n;
    const auto np = static_cast<std::uint32_t>(plan.probes().size());
    nprobes_ = probes > np ? probes : np;
    seed_ = seed;
    // The edge pool: slots*(slots-1) indices (supervisor.hpp, "Memory").
    const std::uint64_t edges = std::uint64_t{count_} * (count_ == 0 ? 0 : count_ - 1);
    if (edges > SIZE_MAX / (2 * sizeof(std::uint32_t))) {
        return fail(Reason::out_of_memory, ENOMEM, "supervision slots");
    }
    edge_capacity_ = static_cast<std::size_t>(edges);
    units_ = mem.make_array<unit>(count_);
    edges_ = mem.make_array<std::uint32_t>(edge_capacity_);
    bool ok = units_ != nullptr && edges_ != nullptr;
    for (std::uint32_t i = 0; i < count_; ++i) {
        const bool occupied = i < n;
        const std::uint32_t want = occupied ? table[i].intensity_restarts : 0;
        const std::uint32_t ring = want > min_restart_ring ? want : min_restart_ring;
        auto* probe_deps = mem.make_array<std::uint32_t>(nprobes_);
        auto* times = mem.make_array<mono_time>(ring);
        char* name = occupied ? mem.copy(table[i].name) : nullptr;
        ok = ok && probe_deps != nullptr && times != nullptr && (!occupied || name != nullptr);
        if (!ok) {
            continue; // sizing pass: keep measuring
        }
        unit& u = units_[i];
        u.probe_deps = probe_deps;
        u.restart_times = times;
        u.rt_capacity = ring;
        set_up(u, i);
        if (occupied) {
            u.occupied = true;
            u.name = std::string_view(name, table[i].name.size());
            apply(u, table[i]);
        }
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "supervision table");
    }
    stop_timer_.fire = &supervisor::fire_stop_deadline;
    stop_timer_.user = this;
    // Edges, both ways, by index (the plan resolved the names).
    return link(plan, {});
}

// What every slot has, occupied or vacant: its place, its timers, its
// backoff's seed.
void supervisor::set_up(unit& u, std::uint32_t i) noexcept {
    u.owner = this;
    u.index = i;
    u.timer.fire = &supervisor::fire_timer;
    u.timer.user = &u;
    u.wd_timer.fire = &supervisor::fire_watchdog;
    u.wd_timer.user = &u;
    u.bo = backoff(seed_ + 0x9e3779b97f4a7c15ull * (i + 1));
    u.since = host_.now();
}

// The spec's policy, for what comes next (redefine(): a running process
// keeps its stop signal and grace until it has stopped).
void supervisor::apply(unit& u, const ServiceSpec& s) noexcept {
    u.restart = s.restart;
    u.policy.initial = to_nanos(s.backoff_initial);
    u.policy.max = to_nanos(s.backoff_max);
    u.policy.multiplier_x100 = s.backoff_multiplier_x100;
    u.policy.jitter_percent = s.backoff_jitter_percent;
    u.policy.stable_after = to_nanos(s.stable_after);
    u.max_restarts = s.max_restarts;
    if (u.intensity_n != s.intensity_restarts) {
        // The ring's entries are laid out for the old count.
        u.rt_head = 0;
        u.rt_count = 0;
    }
    u.intensity_n = s.intensity_restarts;
    u.intensity_window = to_nanos(s.intensity_window);
    u.start_delay = to_nanos(s.start_delay);
    u.ready_mode = s.ready;
    u.ready_timeout = to_nanos(s.ready_timeout);
    u.watchdog = to_nanos(s.watchdog);
    if (has_process(u)) {
        u.next_stop_pending = true;
        u.next_stop_signal = s.stop_signal;
        u.next_stop_timeout = to_nanos(s.stop_timeout);
    } else {
        u.next_stop_pending = false;
        u.stop_signal = s.stop_signal;
        u.stop_timeout = to_nanos(s.stop_timeout);
    }
    u.on_dependency_down = s.on_dependency_down;
}

std::uint32_t supervisor::find(std::string_view name) const noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (units_[i].occupied && units_[i].name == name) {
            return i;
        }
    }
    return UINT32_MAX;
}

bool supervisor::has_process(const unit& u) noexcept {
    switch (u.state) {
    case ServiceState::running:
    case ServiceState::ready:
    case ServiceState::stopping:
        return true;
    case ServiceState::stopped:
    case ServiceState::waiting:
    case ServiceState::starting:
    case ServiceState::backoff:
    case ServiceState::failed:
        return false;
    }
    return false;
}

void supervisor::enter(unit& u, ServiceState to, Reason why, int err, const ExitInfo* exit,
                       std::string_view detail, nanos delay) noexcept {
    Transition t;
    t.service = u.index;
    t.name = u.name;
    t.from = u.state;
    t.to = to;
    t.reason = why;
    t.sys_errno = err;
    mono_time now = host_.now();
    t.at_ns = to_ns(now);
    t.pid = u.pid;
    if (exit != nullptr) {
        t.exit = *exit;
        t.pid = exit->pid;
    }
    t.delay = std::chrono::duration_cast<Duration>(delay);
    t.delay_ns = delay.count();
    t.restarts = u.restarts;
    t.detail = detail;
    const bool failing_stop = to == ServiceState::stopping && why == u.kill_reason;
    u.state = to;
    u.reason = why;
    u.since = now;
    if (to != ServiceState::running && to != ServiceState::ready) {
        u.restart_on_recovery = false; // the process it was about is gone
    }
    if (exit != nullptr) {
        DeathRecord& d = u.deaths[u.death_count % death_history_capacity];
        d.at_ns = t.at_ns;
        d.exit = *exit;
        d.reason = why;
        ++u.death_count;
        u.started = {};
    } else if (to != ServiceState::running && to != ServiceState::ready &&
               to != ServiceState::stopping) {
        u.started = {};
    }
    if (to == ServiceState::failed || to == ServiceState::backoff || failing_stop) {
        u.last_error.reason = why;
        u.last_error.sys_errno = err;
        u.last_error.message = detail;
        u.last_error.since_ns = t.at_ns;
    }
    host_.transition(t);
    if (t.from == ServiceState::ready && u.state != ServiceState::ready) {
        for (std::uint32_t k = 0; k < u.ndependents; ++k) {
            dependency_down(units_[u.dependents[k]], u.name);
        }
    }
}

void supervisor::arm(unit& u, nanos after) noexcept {
    u.deadline = host_.now() + after;
    host_.arm(u.timer, u.deadline);
}

void supervisor::disarm(unit& u) noexcept {
    host_.cancel(u.timer);
    host_.cancel(u.wd_timer);
}

bool supervisor::deps_ready(const unit& u, const unit** failed) const noexcept {
    bool ready = true;
    *failed = nullptr;
    for (std::uint32_t k = 0; k < u.ndeps; ++k) {
        const unit& d = units_[u.deps[k]];
        if (d.state != ServiceState::ready) {
            ready = false;
            if (d.state == ServiceState::failed && *failed == nullptr) {
                *failed = &d;
            }
        }
    }
    for (std::uint32_t k = 0; k < u.nprobe_deps && ready; ++k) {
        ready = host_.probe_ready(u.probe_deps[k]);
    }
    return ready;
}

// Moves a wanted service towards spawning: starting when its dependencies
// are ready, else waiting (saying which dependency failed, if one did).
void supervisor::want_start(unit& u, Reason why) noexcept {
    const unit* failed = nullptr;
    if (!deps_ready(u, &failed)) {
        Reason r = failed != nullptr ? Reason::dependency_failed : Reason::waiting_for_dependencies;
        // Say it once per change of reason, not on every evaluation.
        if (u.state != ServiceState::waiting || u.reason != r) {
            enter(u, ServiceState::waiting, r, 0, nullptr,
                  failed != nullptr ? failed->name : std::string_view{});
        }
        return;
    }
    if (u.state == ServiceState::waiting) {
        why = Reason::dependencies_ready;
    }
    enter(u, ServiceState::starting, why);
    if (u.state != ServiceState::starting) {
        return; // the transition hook acted on it (an operator stop)
    }
    if (u.start_delay.count() > 0) {
        arm(u, u.start_delay);
        return;
    }
    spawn(u);
}

void supervisor::spawn(unit& u) noexcept {
    auto pid = host_.spawn(u.index);
    if (!pid) {
        // The subject says where it failed ("chdir: /usr/bin/x"): the
        // operator's only clue, so it goes on the transition.
        after_failure(u, pid.error().reason(), pid.error().sys_errno(), nullptr,
                      pid.error().subject());
        return;
    }
    u.pid = *pid;
    if (u.next_stop_pending) {
        // A redefine() while the last process ran: its stop settings now.
        u.next_stop_pending = false;
        u.stop_signal = u.next_stop_signal;
        u.stop_timeout = u.next_stop_timeout;
    }
    u.killed = false;
    u.kill_reason = Reason::unknown;
    u.wd_interval = u.watchdog; // a WATCHDOG_USEC= override lasts one process
    u.started = host_.now();
    u.bo.run_started(u.started);
    if (u.ready_mode == ReadyMode::started) {
        enter(u, ServiceState::ready, Reason::ready_started);
        if (u.state == ServiceState::ready) {
            wake_dependents(u);
        }
        return;
    }
    enter(u, ServiceState::running, Reason::spawned);
    if (u.state == ServiceState::running && u.ready_timeout.count() > 0) {
        arm(u, u.ready_timeout);
    }
}

void supervisor::became_ready(unit& u, Reason why) noexcept {
    host_.cancel(u.timer);
    enter(u, ServiceState::ready, why);
    if (u.state != ServiceState::ready) {
        return;
    }
    if (u.wd_interval.count() > 0) {
        u.wd_deadline = host_.now() + u.wd_interval;
        host_.arm(u.wd_timer, u.wd_deadline);
    }
    wake_dependents(u);
}

void supervisor::wake_dependents(const unit& u) noexcept {
    for (std::uint32_t k = 0; k < u.ndependents; ++k) {
        dependency_back(units_[u.dependents[k]]);
    }
}

// A dependency of `d` became ready (or failed: the waiting reason may
// change): start it if it waits, restart it if a dependency's recovery was
// what it waited for.
void supervisor::dependency_back(unit& d) noexcept {
    if (!d.wanted || stopping_all_) {
        return;
    }
    if (d.state == ServiceState::waiting) {
        want_start(d, Reason::dependencies_ready);
        return;
    }
    const unit* failed = nullptr;
    if (d.restart_on_recovery &&
        (d.state == ServiceState::running || d.state == ServiceState::ready) &&
        deps_ready(d, &failed)) {
        d.restart_on_recovery = false;
        d.stop_requested = true;
        d.restart_after_stop = true;
        d.resume_reason = Reason::dependency_down;
        ++d.by_cause[static_cast<std::size_t>(RestartCause::dependency)];
        begin_stop(d, d.stop_timeout, Reason::dependency_down);
    }
}

// A dependency of `d` (`what`: its name) went down while `d` is wanted.
void supervisor::dependency_down(unit& d, std::string_view what) noexcept {
    if (!d.wanted || stopping_all_) {
        return;
    }
    switch (d.on_dependency_down) {
    case DependencyDownAction::ignore:
        return;
    case DependencyDownAction::stop:
        if (d.state == ServiceState::running || d.state == ServiceState::ready) {
            d.stop_requested = true;
            d.restart_after_stop = true; // -> waiting until the dependency is back
            d.resume_reason = Reason::dependency_down;
            begin_stop(d, d.stop_timeout, Reason::dependency_down, what);
        }
        return;
    case DependencyDownAction::restart:
        if (d.state == ServiceState::running || d.state == ServiceState::ready) {
            d.restart_on_recovery = true;
        }
        return;
    }
}

void supervisor::on_probe_change(std::uint32_t p, bool ready, std::string_view name) noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& d = units_[i];
        for (std::uint32_t k = 0; k < d.nprobe_deps; ++k) {
            if (d.probe_deps[k] != p) {
                continue;
            }
            if (ready) {
                dependency_back(d);
            } else {
                dependency_down(d, name);
            }
            break;
        }
    }
}

bool supervisor::on_liveness_down(std::uint32_t i) noexcept {
    unit& u = units_[i];
    if (u.state != ServiceState::ready || stopping_all_) {
        return false;
    }
    fail_and_kill(u, Reason::liveness_failed);
    return true;
}

void supervisor::reset_budget(unit& u) noexcept {
    u.bo.reset();
    u.restarts = 0;
    u.rt_head = 0;
    u.rt_count = 0;
}

// The service failed to run (spawn failure, failed exit, ready timeout,
// watchdog): the restart policy and budget decide what comes next.
void supervisor::after_failure(unit& u, Reason why, int err, const ExitInfo* exit,
                               std::string_view detail) noexcept {
    u.pid = 0;
    if (!u.wanted || stopping_all_) {
        enter(u, ServiceState::stopped, why, err, exit, detail);
        return;
    }
    if (u.restart == RestartPolicy::never) {
        enter(u, ServiceState::failed, why, err, exit, detail);
        wake_dependents(u);
        return;
    }
    if (u.max_restarts != 0 && u.restarts >= u.max_restarts) {
        enter(u, ServiceState::failed, Reason::max_restarts_exhausted, err, exit, reason_id(why));
        wake_dependents(u);
        return;
    }
    mono_time now = host_.now();
    if (u.intensity_n != 0) {
        // Restarts within the window, newest first, from the ring.
        std::uint32_t within = 0;
        for (std::uint32_t k = 0; k < u.rt_count; ++k) {
            std::uint32_t at = (u.rt_head + u.intensity_n - 1 - k) % u.intensity_n;
            if (now - u.restart_times[at] < u.intensity_window) {
                ++within;
            }
        }
        if (within >= u.intensity_n) {
            enter(u, ServiceState::failed, Reason::restart_intensity_exceeded, err, exit,
                  reason_id(why));
            wake_dependents(u);
            return;
        }
        u.restart_times[u.rt_head] = now;
        u.rt_head = (u.rt_head + 1) % u.intensity_n;
        if (u.rt_count < u.intensity_n) {
            ++u.rt_count;
        }
    }
    ++u.restarts;
    ++u.total_restarts;
    ++u.by_cause[static_cast<std::size_t>(restart_cause(why))];
    nanos delay = u.bo.next_delay(u.policy);
    enter(u, ServiceState::backoff, why, err, exit, detail, delay);
    if (u.state != ServiceState::backoff) {
        return; // the transition hook started or stopped it
    }
    if (delay.count() == 0 && exit != nullptr) {
        // No floor configured: restart now, not at the next timer tick (a
        // timer would round up to the reactor's tick and cost a wake-up).
        // Only after a real exit: a spawn that fails at once would recurse
        // here, so that goes through the timer (one tick at least).
        want_start(u, Reason::backoff_elapsed);
        return;
    }
    arm(u, delay);
}

void supervisor::fail_and_kill(unit& u, Reason why) noexcept {
    host_.cancel(u.wd_timer);
    u.kill_reason = why;
    begin_stop(u, u.stop_timeout, why);
}

void supervisor::begin_stop(unit& u, nanos grace, Reason why, std::string_view detail) noexcept {
    host_.cancel(u.wd_timer);
    host_.kill(u.index, u.stop_signal);
    u.killed = false;
    enter(u, ServiceState::stopping, why, 0, nullptr, detail);
    if (u.state != ServiceState::stopping) {
        return;
    }
    if (u.stop_signal != SIGKILL) {
        arm(u, grace.count() > 0 ? grace : nanos(1));
    } else {
        host_.cancel(u.timer); // nothing stronger to escalate to
    }
}

void supervisor::start_all(const bool* only) noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        units_[i].wanted = units_[i].occupied && (only == nullptr || only[i]);
    }
    // One pass in table order: a service whose dependencies are not ready
    // yet waits, and is started by wake_dependents() when they are. All
    // services without dependencies are spawned in this same pass, so
    // independent services start concurrently.
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        if (u.wanted && u.state == ServiceState::stopped) {
            want_start(u, Reason::runtime_start);
        }
    }
}

void supervisor::start(std::uint32_t i) noexcept {
    start(i, Reason::operator_start);
}

void supervisor::start(std::uint32_t i, Reason why) noexcept {
    unit& u = units_[i];
    if (stopping_all_ || !u.occupied || u.reload_reason == Reason::reload_removed) {
        return;
    }
    u.wanted = true;
    switch (u.state) {
    case ServiceState::stopped:
    case ServiceState::failed:
    case ServiceState::backoff:
        host_.cancel(u.timer);
        reset_budget(u);
        want_start(u, why);
        return;
    case ServiceState::stopping:
        if (u.stop_requested) {
            u.restart_after_stop = true;
            u.resume_reason = why;
            reset_budget(u);
        }
        return;
    case ServiceState::waiting:
    case ServiceState::starting:
    case ServiceState::running:
    case ServiceState::ready:
        return;
    }
}

void supervisor::stop(std::uint32_t i) noexcept {
    unit& u = units_[i];
    if (!u.occupied) {
        return;
    }
    u.wanted = false;
    u.restart_after_stop = false;
    switch (u.state) {
    case ServiceState::stopped:
        return;
    case ServiceState::failed:
    case ServiceState::waiting:
    case ServiceState::starting:
    case ServiceState::backoff:
        disarm(u);
        enter(u, ServiceState::stopped, Reason::operator_stop);
        return;
    case ServiceState::running:
    case ServiceState::ready:
        u.stop_requested = true;
        begin_stop(u, u.stop_timeout, Reason::operator_stop);
        return;
    case ServiceState::stopping:
        u.stop_requested = true; // a failure kill in progress now ends in stopped
        return;
    }
}

void supervisor::restart(std::uint32_t i) noexcept {
    unit& u = units_[i];
    if (stopping_all_ || !u.occupied || u.reload_reason == Reason::reload_removed) {
        return;
    }
    ++u.by_cause[static_cast<std::size_t>(RestartCause::operator_)];
    switch (u.state) {
    case ServiceState::running:
    case ServiceState::ready:
        u.wanted = true;
        u.stop_requested = true;
        u.restart_after_stop = true;
        u.resume_reason = Reason::operator_restart;
        reset_budget(u);
        begin_stop(u, u.stop_timeout, Reason::operator_restart);
        return;
    case ServiceState::stopping:
        u.wanted = true;
        u.stop_requested = true;
        u.restart_after_stop = true;
        u.resume_reason = Reason::operator_restart;
        reset_budget(u);
        return;
    case ServiceState::stopped:
    case ServiceState::failed:
    case ServiceState::backoff:
    case ServiceState::waiting:
    case ServiceState::starting:
        disarm(u);
        u.wanted = true;
        reset_budget(u);
        want_start(u, Reason::operator_restart);
        return;
    }
}

void supervisor::on_exit(std::uint32_t i, const ExitInfo& e) noexcept {
    unit& u = units_[i];
    if (!has_process(u)) {
        return; // the host reports only services with a process; stay safe anyway
    }
    u.last_exit = e;
    disarm(u);
    if (u.bo.run_ended(host_.now(), u.policy)) {
        u.restarts = 0; // a stable run: the crash tally starts over
    }
    const bool was_stopping = u.state == ServiceState::stopping;
    // A reload stop ends here however the process ended (during a runtime
    // stop, its reload_stop() may not have signalled it yet).
    if ((was_stopping && (u.stop_requested || stopping_all_)) ||
        u.reload_reason != Reason::unknown) {
        u.stop_requested = false;
        u.pid = 0;
        if (u.reload_reason != Reason::unknown) {
            reload_stopped(u, &e, u.killed ? reason_id(Reason::stop_timeout) : std::string_view{});
        } else {
            enter(u, ServiceState::stopped,
                  u.killed ? Reason::stop_timeout : Reason::stopped_by_request, 0, &e);
            if (u.restart_after_stop && !stopping_all_ && u.state == ServiceState::stopped) {
                u.restart_after_stop = false;
                want_start(u, u.resume_reason);
            }
        }
        if (stopping_all_) {
            advance_stop();
        }
        return;
    }
    if (was_stopping) {
        // Killed by us for a failure (ready timeout, watchdog).
        after_failure(u, u.kill_reason, 0, &e);
        return;
    }
    const bool clean = clean_exit(u, e);
    Reason why = clean ? Reason::exited_cleanly
                       : (e.signal != 0 ? Reason::process_killed : Reason::process_exited);
    bool restart = false;
    switch (u.restart) {
    case RestartPolicy::never:
        restart = false;
        break;
    case RestartPolicy::always:
        restart = true;
        break;
    case RestartPolicy::on_failure:
        restart = !clean;
        break;
    }
    if (restart || (!clean && u.restart == RestartPolicy::never)) {
        after_failure(u, why, 0, &e);
        return;
    }
    u.pid = 0;
    u.wanted = false;
    enter(u, ServiceState::stopped, why, 0, &e);
}

void supervisor::on_ready(std::uint32_t i, Reason why) noexcept {
    unit& u = units_[i];
    if (u.state == ServiceState::running) {
        became_ready(u, why);
    }
}

void supervisor::fire_timer(io::timer& t) noexcept {
    auto& u = *static_cast<unit*>(t.user);
    supervisor& s = *u.owner;
    switch (u.state) {
    case ServiceState::starting: {
        // start_delay elapsed; a dependency may have gone down meanwhile.
        const unit* failed = nullptr;
        if (!s.deps_ready(u, &failed)) {
            s.want_start(u, Reason::start_delay_elapsed); // -> waiting, says why
            return;
        }
        s.spawn(u);
        return;
    }
    case ServiceState::running:
        // A READY=1 (or EXTEND_TIMEOUT_USEC=) may be queued behind a stall.
        s.host_.flush_notify(u.index);
        if (u.state != ServiceState::running || u.timer.pending()) {
            return;
        }
        s.fail_and_kill(u, Reason::ready_timeout);
        return;
    case ServiceState::backoff:
        s.want_start(u, Reason::backoff_elapsed);
        return;
    case ServiceState::stopping:
        if (!u.killed) {
            u.killed = true;
            s.host_.kill(u.index, SIGKILL);
        }
        return;
    case ServiceState::stopped:
    case ServiceState::waiting:
    case ServiceState::ready:
    case ServiceState::failed:
        return; // a stale timer: states without a deadline
    }
}

} // namespace sup
} // namespace custos
