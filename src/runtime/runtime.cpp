// custos::Runtime: the init order, the arena layout and the facade.
//
// Runtime::impl (impl.hpp) wires the reactor, the process host
// (process/host.hpp: spawn, exit watching, reaping, containment, notify),
// the supervisor and the probes together; wiring.cpp holds what connects
// them at run time, status.cpp the read side. Init validates the table,
// then creates, in order: the notify directory (a second instance stops
// there), the reactor, the spawner, one arena block for everything laid
// out (measured first), the signal watches, the notify sockets and the
// containment.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>

#include "runtime/impl.hpp"
#include "runtime/launches.hpp"

namespace custos {

Runtime::impl::~impl() {
    delete[] cap_specs;
    if (term.fd >= 0) {
        ::close(term.fd);
    }
    delete dns_cfg;
    if (dns != nullptr) {
        dns->~resolver();
    }
}

// Lays out the supervisor, the probes and every service's exec data in
// `mem`. Run twice: to measure (no block), then for real.
Result<void> Runtime::impl::layout(std::span<const process::launch> launches,
                                   std::uint64_t seed) noexcept {
    const std::span<const ProbeSpec> probe_table = plan.table().probes;
    bool ok = true;
    auto s = sup.init(plan, mem, seed, rl.slots, rl.probe_slots);
    ok = ok && s.has_value();
    auto pm = probes.init(probe_table, mem, rl.probe_slots);
    ok = ok && pm.has_value();
    auto mm = monitors.init(plan.table().monitors, mem, seed ^ 0x6d6f6e69746f7273ULL);
    if (!mm && mm.error().reason() != Reason::out_of_memory) {
        return fail(mm.error());
    }
    ok = ok && mm.has_value();
    auto hl = layout_health(); // always called: the sizing pass measures it too
    ok = ok && hl.has_value();
    auto sm = layout_safe_mode();
    ok = ok && sm.has_value();
    if (dns_cfg != nullptr) {
        void* where = mem.take(sizeof(probe::resolver), alignof(probe::resolver));
        if (where != nullptr) {
            dns = new (where) probe::resolver;
            if (auto r = dns->init(reactor, *dns_cfg); !r) {
                return fail(r.error());
            }
        }
        ok = ok && where != nullptr;
    }
    auto ph = procs.layout(launches, mem, rl.slots, rt_detail::reload_parts::slot_bytes);
    if (!ph && ph.error().reason() != Reason::out_of_memory) {
        return fail(ph.error());
    }
    ok = ok && ph.has_value();
    wires = mem.make_array<rt_detail::wire>(rl.slots);
    ok = ok && wires != nullptr;
    auto rs = layout_reload();
    ok = ok && rs.has_value();
    auto sn = snap.init(mem, rl.slots, rl.probe_slots, nmonitors);
    ok = ok && sn.has_value();
    if (sn) {
        snap.set_service_count(count); // room for every slot; the table's shown
        snap.set_probe_count(nprobes);
    }
    auto el = elog.reserve(mem, logcfg);
    ok = ok && el.has_value();
    elog_dir_set = !logcfg.dir.empty();
    auto cp = layout_capture(launches);
    if (!cp && cp.error().reason() != Reason::out_of_memory) {
        return fail(cp.error());
    }
    ok = ok && cp.has_value();
    auto pl = layout_prunes();
    if (!pl && pl.error().reason() != Reason::out_of_memory) {
        return fail(pl.error());
    }
    ok = ok && pl.has_value();
    auto cl = layout_control(plan.table().control);
    if (!cl && cl.error().reason() != Reason::out_of_memory) {
        return fail(cl.error());
    }
    ok = ok && cl.has_value();
    for (std::uint32_t i = 0; ok && i < count; ++i) {
        wires[i].ready_probe = plan.services()[i].ready_probe;
        wires[i].liveness = plan.services()[i].liveness;
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime arena");
    }
    return {};
}

Result<void> Runtime::impl::init(const Table& t, TableProblemSink* problems) noexcept {
    // The table's one check; its first problem is the error.
    if (auto r = plan.build(t, tbl::options{}, problems); !r) {
        return r;
    }
    {
        // The next reload's plan: room for twice this one per slot, taken
        // now (a reload allocates nothing).
        const std::size_t n = t.services.size() != 0 ? t.services.size() : 1;
        const std::uint32_t slots =
            t.runtime.service_slots > n ? t.runtime.service_slots : static_cast<std::uint32_t>(n);
        const std::size_t room = 2 * plan.bytes() * slots / n + 512 * std::size_t{slots} + 4096;
        // Both plans in fixed blocks of that size, as a reload swaps them:
        // this table again into the spare's, which becomes the current one.
        rl.spare.reserve_fixed(room);
        if (auto r = rl.spare.build(t, tbl::options{}, nullptr); !r) {
            return r;
        }
        plan.swap(rl.spare);
        rl.spare.reserve_fixed(room);
    }
    cfg = t.runtime;
    // The record's settings, a relative dir made absolute (from the working
    // directory now): the capture's files need one.
    logcfg = t.log;
    if (!logcfg.dir.empty() && logcfg.dir.front() != '/') {
        char cwd[sizeof log_dir_abs];
        const int n = ::getcwd(cwd, sizeof cwd) == nullptr
                          ? -1
                          : std::snprintf(log_dir_abs, sizeof log_dir_abs, "%s/%.*s", cwd,
                                          static_cast<int>(logcfg.dir.size()), logcfg.dir.data());
        if (n < 0 || static_cast<std::size_t>(n) >= sizeof log_dir_abs) {
            return fail(Error(Reason::invalid_argument, ENAMETOOLONG, logcfg.dir)
                            .with_resolution("Give the log dir as an absolute path of at most "
                                             "255 bytes"));
        }
        logcfg.dir = log_dir_abs;
    }
    const std::span<const ProbeSpec> probe_table = t.probes;
    count = static_cast<std::uint32_t>(t.services.size());
    rl.slots = t.runtime.service_slots > count ? t.runtime.service_slots : count;
    nprobes = static_cast<std::uint32_t>(probe_table.size());
    rl.probe_slots = t.runtime.probe_slots > nprobes ? t.runtime.probe_slots : nprobes;
    nmonitors = static_cast<std::uint32_t>(t.monitors.size());
    // Check instances an engine may hold: the table's and half as many
    // again, and two per spare probe slot (room for a reload's).
    const std::uint32_t check_count = plan.check_count();
    rl.check_capacity = check_count + check_count / 2 + 2 * (rl.probe_slots - nprobes);
    if (plan.notify_count() != 0 && cfg.notify_dir.empty()) {
        // No directory given: abstract sockets, which need no file system
        // and no permissions (the credential rule decides who may speak).
        // The pid and the clock keep two instances (two pid namespaces
        // sharing a network namespace included) apart; bind() refuses a
        // name that is somehow alive.
        const auto clk = static_cast<std::uint64_t>(to_ns(now()));
        std::snprintf(default_notify_dir, sizeof default_notify_dir, "@custos-%d-%08x",
                      static_cast<int>(::getpid()), static_cast<unsigned>(clk ^ (clk >> 32)));
        cfg.notify_dir = default_notify_dir;
    }
    process::host_config hc;
    for (const ServiceSpec& s : t.services) {
        if (s.runtime_dir && cfg.runtime_dir_root.empty()) {
            Error e(Reason::runtime_dir_unavailable, EINVAL, s.name);
            e.with_resolution("Set runtime_dir_root: a service asks for a runtime directory");
            return fail(e);
        }
    }
    hc.notify_dir = cfg.notify_dir;
    hc.runtime_dir_root = cfg.runtime_dir_root;
    hc.cgroup = cfg.cgroup;
    hc.pid_record = cfg.pid_record;
    hc.reap_orphans = cfg.reap_orphans;
    // Before anything else is created: a second instance stops here.
    if (auto r = procs.open(hc); !r) {
        return fail(r.error());
    }

    // Reactor: every service can have an exit op and a readiness read in
    // flight, its notify socket a poll and a close, and its two output
    // pipes a read each (internal ops: in max_fds, and in max_ops only
    // for the completion queue's size); every check
    // instance an op and a name lookup's, in both engines (a reload's
    // runs beside what still runs in the one before it); plus the signal
    // watches.
    io::reactor_config rc;
    rl.check_total = check_count + rl.check_capacity; // both engines (check_probes())
    // And a captured-output write per service.
    rc.max_ops = 7 * rl.slots + 2 * rl.check_total + 16 + (nmonitors != 0 ? 1 : 0); // + mailbox
    rc.max_fds = 6 * rl.slots + 2 * rl.check_total + 16;
    if (!t.control.socket.empty()) {
        // Each connection a recv and a send; the accept.
        rc.max_ops += 2 * t.control.max_clients + 1;
        rc.max_fds += t.control.max_clients + 1;
    }
    if (auto r = resolve_control(t.control); !r) {
        return fail(r.error());
    }
    if (auto r = reactor.init(rc); !r) {
        return fail(r.error());
    }
    if (auto r = procs.init_spawner(); !r) {
        return fail(r.error());
    }
    // The environment's NOTIFY_SOCKET and WATCHDOG_*, and notify_fd.
    if (auto r = upward.init(reactor, cfg); !r) {
        return fail(r.error());
    }

    std::uint64_t seed = cfg.seed != 0 ? cfg.seed : static_cast<std::uint64_t>(to_ns(now()));
    rng = prng(~seed); // apart from the services' backoff sequences (seed + k)
    if (probe::engine::needs_resolver(probe_table)) {
        // Read once, here: /etc/resolv.conf and /etc/hosts.
        dns_cfg = new (std::nothrow) probe::resolver_config;
        if (dns_cfg == nullptr) {
            return fail(Reason::out_of_memory, ENOMEM, "resolver");
        }
        probe::load_system_resolver_config(*dns_cfg);
    }
    rt_detail::launches launches;
    if (auto r = launches.fill(plan); !r) {
        return fail(r.error());
    }
    // Two passes over the same layout: measure, then take the block once.
    if (auto r = layout(launches.all(), seed); !r && r.error().reason() != Reason::out_of_memory) {
        return fail(r.error());
    }
    if (!mem.reserve(mem.needed())) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime arena");
    }
    dns = nullptr;
    if (auto r = layout(launches.all(), seed); !r) {
        return fail(r.error());
    }
    delete dns_cfg;
    dns_cfg = nullptr;
    if (auto r = layout_engines(); !r) {
        return fail(r.error());
    }

    if (auto r = procs.watch_children(); !r) {
        return fail(r.error());
    }
    if (auto r = watch_signals(); !r) {
        return fail(r.error());
    }
    // Cgroups for the exec checks' instances, and as many vacant for a
    // reload's (one per instance a reload's engine may hold beyond).
    rl.cg_capacity = checks().exec_instances() + 2 * (rl.probe_slots - nprobes);
    if (auto r = procs.contain(checks().exec_instances() + rl.cg_capacity); !r) {
        return fail(r.error());
    }
    // Last: threads, once everything they could fail on is in place.
    if (auto r = init_monitors(); !r) {
        return fail(r.error());
    }
    // The spawn method and exit watch are not part of this: the spawner may
    // still step down at its first spawn; spawn_method_name() and
    // exit_watch_name() say what is in use when asked.
    char host_text[sizeof reason] = {};
    procs.describe(host_text, sizeof host_text);
    int n = std::snprintf(reason, sizeof reason, "%.260s%s", reactor.backend_reason(), host_text);
    if (upward.active() && n > 0 && static_cast<std::size_t>(n) < sizeof reason) {
        char up[160];
        upward.describe(up, sizeof up);
        n += std::snprintf(reason + n, sizeof reason - static_cast<std::size_t>(n),
                           "; notify upward: %s", up);
    }
    for (const Error& e : upward.notices()) {
        if (n <= 0 || static_cast<std::size_t>(n) >= sizeof reason) {
            break;
        }
        char text[256];
        e.format(text, sizeof text);
        n += std::snprintf(reason + n, sizeof reason - static_cast<std::size_t>(n), "; ignored: %s",
                           text);
    }
    // The event stream: the user's hooks first, then the snapshot. This
    // thread is the reactor's: it reads live state, every other thread the
    // snapshot, published here once so that readers see the table at once.
    for (status::listener* l :
         {static_cast<status::listener*>(&user_hooks), static_cast<status::listener*>(&publisher),
          static_cast<status::listener*>(&health_dirty)}) {
        if (auto r = listeners.try_add(*l); !r) {
            return r;
        }
    }
    // The control socket: bound now, so that a second instance fails here
    // (ControlSocketInUse) before anything starts; served from the first
    // loop turn.
    ctl.ctx.backend = reactor.backend_name();
    ctl.ctx.backend_reason = reason;
    {
        const FixedText<36> id = ports::read_boot_id();
        std::memcpy(ctl.boot_id, id.data(), id.size());
        ctl.ctx.boot_id = std::string_view(ctl.boot_id, id.size());
    }
    if (auto r = open_eventlog(t); !r) {
        return r;
    }
    if (auto r = ctl.server.start(); !r) {
        return r;
    }
    // The very last: opening the watchdog arms it, so nothing may fail
    // after it.
    if (auto r = init_watchdog(t.watchdog, problems); !r) {
        return r;
    }
    snap.bind_writer();
    publisher.publish();
    return {};
}

Runtime::Runtime() noexcept = default;

Runtime::~Runtime() {
    if (impl_ != nullptr) {
        impl_->forget_eventlog();
    }
    delete impl_;
}

Result<void> Runtime::init(const Table& table, TableProblemSink* problems) noexcept {
    if (impl_ != nullptr) {
        return fail(Reason::invalid_argument, EBUSY, "Runtime::init called twice");
    }
    impl_ = new (std::nothrow) impl;
    if (impl_ == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime");
    }
    impl_->owner = this;
    auto r = impl_->init(table, problems);
    if (!r) {
        impl_->upward.disown_notify_fd(); // the caller's again (table.hpp)
        delete impl_;
        impl_ = nullptr;
    }
    return r;
}

void Runtime::set_transition_hook(TransitionHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_transition_hook(hook, ctx);
    }
}

void Runtime::set_probe_hook(ProbeHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_probe_hook(hook, ctx);
    }
}

void Runtime::set_monitor_hook(MonitorHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_monitor_hook(hook, ctx);
    }
}

void Runtime::set_health_hook(HealthHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_health_hook(hook, ctx);
    }
}

void Runtime::set_signal_hook(SignalHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->signal_hook = hook;
        impl_->signal_hook_ctx = ctx;
    }
}

Result<void> Runtime::start() noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "Runtime::start before init");
    }
    impl& rt = *impl_;
    if (rt.started) {
        return {};
    }
    rt.started = true;
    rt.procs.start();
    if (rt.term.fd >= 0) {
        rt.term.op.done = &impl::on_term;
        rt.term.op.user = &rt;
        io::reactor::make_internal(rt.term.op);
        rt.reactor.read(rt.term.op, rt.term.fd, &rt.term.buf, sizeof rt.term.buf);
    }
    // Probes first: their first checks are in flight (never done inside
    // this call), so services that depend on them wait.
    rt.started_ns = to_ns(rt.reactor.now());
    rt.ctl.ctx.started_ns = rt.started_ns;
    // The boot record, then the watchdog's events (the previous boot, safe mode), its
    // first feed, and its boot grace from now.
    rt.boot_record();
    rt.start_watchdog();
    const bool safe = rt.wd.on && rt.wd.feeder.safe_mode();
    rt.probes.start_all();
    rt.sup.start_all(safe ? rt.wd.safe_services : nullptr);
    rt.monitors.start(safe ? std::span<const bool>(rt.wd.safe_monitors, rt.nmonitors)
                           : std::span<const bool>());
    rt.start_prunes();
    if (rt.count == 0 && rt.nprobes == 0 && rt.nmonitors == 0 && rt.pr.count == 0 &&
        rt.term.fd < 0) {
        rt.done = true;
    }
    rt.listeners.seal();
    rt.publish();
    rt.ctl.textfile.start(); // the metrics file, from the first publication on
    return {};
}

void Runtime::run() noexcept {
    if (impl_ == nullptr || !impl_->started) {
        return;
    }
    impl& rt = *impl_;
    // One turn at a time, so that what a turn changed is published before
    // the next one waits.
    const io::reactor_stats& st = rt.reactor.stats();
    while (!rt.done) {
        const std::uint64_t work = st.ops_completed + st.timers_fired;
        const std::uint64_t served = rt.ctl.server.callbacks();
        rt.reactor.run_once(true);
        // Only the control plane's completions this turn: see publish().
        const std::uint64_t did = st.ops_completed + st.timers_fired - work;
        rt.publish(did != 0 && did == rt.ctl.server.callbacks() - served);
    }
    // A check the stop cancelled (an exec run, SIGKILLed) ends in a callback
    // still to come, which reaps its child and closes its pidfd; the loop
    // may have stopped in the same turn. Run it until the last check has
    // ended (on_check_done stops it), for at most a second.
    if (rt.checks_running()) {
        rt.reactor.arm(rt.settle, rt.reactor.now() + std::chrono::seconds(1));
        rt.reactor.run();
        rt.reactor.cancel(rt.settle);
    }
    rt.ctl.server.stop();
    rt.ctl.textfile.stop();
    rt.procs.reap_remnants();
    rt.procs.remove_runtime_dirs();
    rt.procs.close_notify();
    rt.procs.close_output(); // the last output, into the capture
    rt.close_capture();
    // The shutdown record and the close (magic 'V' when orderly and allowed).
    rt.stop_watchdog();
    // Let the notify sockets' and output pipes' closes complete while the
    // reactor still runs, and the event log's and the capture's last
    // writes.
    for (int k = 0; k < 100 && (rt.procs.busy() || rt.elog.busy() || rt.cap.busy()); ++k) {
        rt.reactor.run_once(false);
        rt.cap.flush();
    }
    // The last snapshot. Its event-log turn (after_turn) may start a write
    // of what the stop left staged (the watchdog's close): waited for
    // below with the rest, or close() would find it in flight and write
    // nothing more (the stop record included).
    rt.publish();
    // Writes still on the disk (io_uring): waited for, at most a second,
    // so that the closes write after them, in order.
    if (rt.elog.busy() || rt.cap.busy()) {
        const mono_time until = rt.reactor.now() + std::chrono::seconds(1);
        rt.reactor.arm(rt.settle, until);
        while ((rt.elog.busy() || rt.cap.busy()) && rt.reactor.now() < until) {
            rt.reactor.run_once(true);
            rt.cap.flush();
        }
        rt.reactor.cancel(rt.settle);
    }
    rt.cap.close();      // what is left, written now; then the files closed
    rt.close_eventlog(); // the last records and the stop record, written and synced
}

void Runtime::stop() noexcept {
    if (impl_ != nullptr && impl_->started) {
        // From the loop, not from here: stop() is typically called from the
        // transition hook, i.e. in the middle of the supervisor's work on a
        // transition, which would go on after stop_all() as if nothing had
        // happened (entering `starting` is followed by the spawn: a process
        // would be started after everything was declared stopped).
        impl_->reactor.arm(impl_->stop_soon, impl_->reactor.now());
    }
}

bool Runtime::stopped() const noexcept {
    return impl_ == nullptr || impl_->done;
}

namespace {
template <class F>
Result<void> with_service(Runtime::impl* rt, std::string_view name, F f) noexcept {
    if (rt == nullptr) {
        return fail(Reason::invalid_argument, 0, "runtime not initialised");
    }
    std::uint32_t i = rt->sup.find(name);
    if (i == UINT32_MAX) {
        return fail(Reason::service_unknown, 0, name);
    }
    f(i);
    return {};
}
} // namespace

Result<void> Runtime::start_service(std::string_view name) noexcept {
    return with_service(impl_, name, [this](std::uint32_t i) { impl_->sup.start(i); });
}

Result<void> Runtime::stop_service(std::string_view name) noexcept {
    return with_service(impl_, name, [this](std::uint32_t i) { impl_->sup.stop(i); });
}

Result<void> Runtime::restart_service(std::string_view name) noexcept {
    return with_service(impl_, name, [this](std::uint32_t i) { impl_->sup.restart(i); });
}

} // namespace custos
