// Runtime::impl at run time: what connects the process host, the
// supervisor and the probes. A service's ready probe and liveness probe act
// on it only through checks that started after its current process did;
// the process host's events go to the supervisor (and, for exec-probe
// children, to the check engine); stop requests (Runtime::stop, SIGTERM)
// stop the probes, then every service; the signals that ask for it.
#include <sys/signalfd.h>

#include <cerrno>
#include <csignal>

#include "runtime/impl.hpp"

namespace custos {

static_assert(process::host::max_notify_timeout == sup::supervisor::max_notify_timeout,
              "the process host clamps to the supervisor's bound");

Result<int> Runtime::impl::spawn(std::uint32_t i) noexcept {
    auto r = procs.spawn(i);
    if (!r) {
        return r;
    }
    rt_detail::wire& w = wires[i];
    w.spawned_at = reactor.now();
    w.liveness_armed = false;
    // Check the new process soon, not at the probe's next poll.
    if (w.ready_probe != UINT32_MAX) {
        probes.restart_startup(probe_at(w.ready_probe));
    }
    if (w.liveness != UINT32_MAX && w.liveness != w.ready_probe) {
        probes.restart_startup(probe_at(w.liveness));
    }
    return r;
}

void Runtime::impl::exited(std::uint32_t i, const ExitInfo& e) noexcept {
    forget_probes(i);
    // Its last partial line, before the exit's records.
    cap.on_stop(i, status::wall_now_ns(), to_ns(reactor.now()), elog.clock_trusted());
    logs_new = true;
    sup.on_exit(i, e);
}

void Runtime::impl::forget_probes(std::uint32_t i) noexcept {
    rt_detail::wire& w = wires[i];
    w.liveness_armed = false;
    if (w.ready_probe != UINT32_MAX) {
        probes.abandon_check(probe_at(w.ready_probe));
    }
    if (w.liveness != UINT32_MAX) {
        probes.abandon_check(probe_at(w.liveness));
    }
}

void Runtime::impl::on_check_done(probe::check& c) noexcept {
    impl& rt = *static_cast<impl*>(c.user);
    // Which engine's, and the slot it reports to: none for a probe a
    // reload removed or changed while this check ran (its result is about
    // a definition that is gone).
    std::uint32_t slot = UINT32_MAX;
    bool from_old = false;
    for (std::uint32_t e = 0; e < 2; ++e) {
        probe::engine& g = rt.engines[e];
        if (g.size() != 0 && &c >= &g.root(0) && &c < &g.root(0) + g.size()) {
            slot = rt.rl.engine_slot[e][&c - &g.root(0)];
            from_old = e != rt.cur_engine;
        }
    }
    if (slot != UINT32_MAX) {
        if (!c.result.passed() && !c.cancelled) {
            ++rt.counters.probe_failures;
        }
        rt.probes.on_result(slot, c.result);
    }
    if (from_old && rt.rl.old_engine_busy && !rt.engines[rt.cur_engine ^ 1].running()) {
        rt.old_engine_done();
    }
    // A check may change what health says of the probe without a
    // transition (a failure while it is still unknown, a new message): derive
    // again after this turn.
    rt.health_dirty.dirty = true;
    rt.procs.drain_if_blocked(); // orphans queued behind an exec check's zombie
    if (rt.done && !rt.checks_running()) {
        rt.reactor.stop(); // the last check the stop cancelled: see Runtime::run()
    }
}

void Runtime::impl::checked(std::uint32_t slot, bool passed, mono_time check_start) noexcept {
    if (!passed) {
        return;
    }
    const std::uint32_t p = rl.slot_probe[slot]; // the plan's index, as the wires hold
    for (std::uint32_t i = 0; i < rl.slots; ++i) {
        rt_detail::wire& w = wires[i];
        if (procs.pid(i) == 0 || check_start < w.spawned_at) {
            continue; // a check of an earlier process
        }
        if (w.liveness == p) {
            w.liveness_armed = true;
        }
        if (w.ready_probe == p && sup.at(i).state == ServiceState::running) {
            sup.on_ready(i, Reason::ready_probe);
        }
    }
}

void Runtime::impl::transition(const ProbeTransition& t) noexcept {
    listeners.dispatch(status::make_event(t, status::wall_now_ns()));
    const bool ready = t.to == ProbeState::ready;
    if (t.from == ProbeState::ready && !ready) {
        for (std::uint32_t i = 0; i < rl.slots; ++i) {
            rt_detail::wire& w = wires[i];
            // Only about the process the probe last passed for: never a
            // stale pid, never a process still starting up.
            if (w.liveness == t.probe && w.liveness_armed && procs.pid(i) != 0 &&
                probes.at(probe_at(t.probe)).check_started >= w.spawned_at) {
                w.liveness_armed = false;
                if (sup.on_liveness_down(i)) {
                    ++counters.liveness_restarts;
                }
            }
        }
    }
    sup.on_probe_change(t.probe, ready, t.name);
    recheck_monitors();
}

// The monitors first (they use the services), each in its share of
// monitor_stop_timeout; then the services, from the monitors' all_stopped().
void Runtime::impl::stop_everything() noexcept {
    if (stopping) {
        return;
    }
    stopping = true;
    upward.on_stopping();
    stop_prunes();
    probes.stop_all();
    if (nmonitors != 0) {
        monitors.stop_all(std::chrono::duration_cast<nanos>(cfg.monitor_stop_timeout));
    } else {
        sup.stop_all(std::chrono::duration_cast<nanos>(cfg.stop_timeout));
    }
}

// With handle_signals, TERM and INT stop; the others would kill the process
// by default and leave its services unsupervised: they are read, counted and
// reported instead (runtime.hpp, "Signals"). SIGCHLD is the process host's.
Result<void> Runtime::impl::watch_signals() noexcept {
    if (!cfg.handle_signals) {
        return {};
    }
    static constexpr int watched[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
    sigset_t set;
    sigemptyset(&set);
    for (int sig : watched) {
        sigaddset(&set, sig);
    }
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    // Not ignored either (now that they are blocked, the default action
    // cannot strike): an ignored signal is discarded and never reaches the
    // signalfd, and shells start background jobs with SIGINT ignored.
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int sig : watched) {
        ::sigaction(sig, &sa, nullptr);
    }
    // EPIPE instead: a log reader that went away is no reason to die.
    // Children get SIG_DFL back from the spawner.
    struct sigaction ign {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ::sigaction(SIGPIPE, &ign, nullptr);
    term.fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (term.fd < 0) {
        return fail(Reason::signalfd_unavailable, errno, "SIGTERM/SIGINT");
    }
    return {};
}

void Runtime::impl::on_term(io::op& o, std::int32_t result) noexcept {
    impl& rt = *static_cast<impl*>(o.user);
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        return;
    }
    const auto sig = static_cast<int>(rt.term.buf.ssi_signo);
    if (result == static_cast<std::int32_t>(sizeof rt.term.buf) && sig == SIGHUP &&
        rt.rl.hook != nullptr) {
        rt.reload_on_signal(static_cast<int>(rt.term.buf.ssi_pid),
                            static_cast<int>(rt.term.buf.ssi_uid));
    } else if (result == static_cast<std::int32_t>(sizeof rt.term.buf) && sig != SIGTERM &&
               sig != SIGINT) {
        ++rt.counters.signals_ignored;
        if (rt.signal_hook != nullptr) {
            rt.signal_hook(sig, rt.signal_hook_ctx);
        }
    } else if (result >= 0) {
        rt.stop_everything();
    }
    rt.reactor.read(o, rt.term.fd, &rt.term.buf, sizeof rt.term.buf);
}

void Runtime::impl::on_stop_soon(io::timer& t) noexcept {
    static_cast<impl*>(t.user)->stop_everything();
}

} // namespace custos
