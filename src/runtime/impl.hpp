// Runtime::impl: what custos::Runtime is made of (private to src/runtime/).
//
// It owns the reactor, one arena for everything laid out at init, the
// process host (process::host: the services' processes), the supervisor,
// the probe machine and its check engine. It is the supervisor's host
// (sup::host: spawn and kill go to the process host), the process host's
// listener (process::events: exits, readiness and notify messages go to the
// supervisor; exec-probe children to the check engine) and the probe
// machine's host. runtime.cpp holds the init order, the arena layout and
// the facade; wiring.cpp what connects probes and services.
#pragma once

#include <sys/signalfd.h>

#include <cstdint>
#include <span>

#include <custos/runtime.hpp>

#include "capture/sink.hpp"
#include "control/server.hpp"
#include "control/textfile.hpp"
#include "core/arena.hpp"
#include "core/prng.hpp"
#include "eventlog/sink.hpp"
#include "io/reactor.hpp"
#include "monitor/machine.hpp"
#include "monitor/pool.hpp"
#include "ports/boards/boards.hpp"
#include "ports/feeder.hpp"
#include "ports/gpio/watchdog.hpp"
#include "ports/linux/led.hpp"
#include "ports/linux/watchdog.hpp"
#include "ports/null/watchdog.hpp"
#include "ports/upward.hpp"
#include "probe/check.hpp"
#include "probe/dns.hpp"
#include "probe/machine.hpp"
#include "process/host.hpp"
#include "prune/scan.hpp"
#include "status/health.hpp"
#include "status/snapshot.hpp"
#include "status/stream.hpp"
#include "supervise/supervisor.hpp"
#include "table/plan.hpp"

namespace custos {

namespace rt_detail {

// The probes acting on one service, and when its process started.
struct wire {
    // Probes acting on this service (UINT32_MAX: none).
    std::uint32_t ready_probe = UINT32_MAX;
    std::uint32_t liveness = UINT32_MAX;
    mono_time spawned_at{};
    // The liveness probe passed a check that started after the spawn: only
    // then may its going down restart this process.
    bool liveness_armed = false;
};

// The monitor machine's host (monitors.cpp): a separate object, since
// sup::host's all_stopped() means something else.
struct monitor_host final : mon::host {
    explicit monitor_host(Runtime::impl& r) noexcept : rt(r) {}
    Runtime::impl& rt;

    mono_time now() noexcept override;
    void arm(io::timer& t, mono_time deadline, nanos slack) noexcept override;
    void cancel(io::timer& t) noexcept override;
    bool deps_ready(std::uint32_t m) noexcept override;
    void launch(std::uint32_t m, std::uint32_t run) noexcept override;
    void request_stop(std::uint32_t m) noexcept override;
    void sample(std::uint32_t m, mon::sample& out) noexcept override;
    std::size_t evidence(std::uint32_t m, char* buf, std::size_t len) noexcept override;
    void transition(const MonitorTransition& t) noexcept override;
    void wedge_exit(std::uint32_t m) noexcept override;
    void all_stopped() noexcept override;
};

// Marks health for derivation after the turn: any event but health's own.
struct health_watch final : status::listener {
    bool dirty = true;
    void on_event(const status::event& e) noexcept override {
        dirty = dirty || e.kind != status::event_kind::health;
    }
};

// What health is derived from (monitors.cpp), laid out in the arena: the
// live records, copied after a turn that had events, and the table's
// critical flags and graces.
struct health_arrays {
    ServiceStatus* services = nullptr;
    ProbeStatus* probes = nullptr;
    MonitorStatus* monitors = nullptr;
    bool* service_critical = nullptr;
    bool* probe_critical = nullptr;
    std::int64_t* probe_grace_ns = nullptr;
};

// The feeder's host (watchdog.cpp): the reactor's clock and wheel, and
// the event stream.
struct watchdog_host final : ports::feeder_host {
    explicit watchdog_host(Runtime::impl& r) noexcept : rt(r) {}
    Runtime::impl& rt;

    mono_time now() noexcept override;
    std::int64_t wall_ns() noexcept override;
    void arm(io::timer& t, mono_time deadline) noexcept override;
    void cancel(io::timer& t) noexcept override;
    void report(const WatchdogTransition& t) noexcept override;
};

// The hardware watchdog (watchdog.cpp): its settings, with the strings
// copied (the table need only last until init returns), the ports, and
// what safe mode starts.
struct watchdog_parts {
    WatchdogConfig cfg;
    char path[256] = {};
    char state_file[256] = {};
    char gpio_chip[64] = {};
    char led[64] = {};
    const ports::board_profile* board = nullptr;
    ports::linux_watchdog kernel;
    ports::gpio_watchdog gpio;
    ports::null_watchdog null;
    ports::sysfs_led status_led;
    ports::feeder feeder;
    bool on = false; // a watchdog is configured and init() went through
    // Safe mode's start set, one flag per service and per monitor (in the
    // arena): the critical ones and what they depend on.
    bool* safe_services = nullptr;
    bool* safe_monitors = nullptr;
};

// The control plane (control.cpp): the server, its render context, and
// what it looks up (names and operators, in the arena).
struct control_parts {
    control::server server;
    control::textfile textfile;
    status::render_context ctx;
    char boot_id[40] = {};
    std::string_view* service_names = nullptr;
    std::string_view* probe_names = nullptr;
    std::string_view* monitor_names = nullptr;
    uid_t* uids = nullptr;
    gid_t* gids = nullptr;
    std::uint32_t nuids = 0;
    std::uint32_t ngids = 0;
    gid_t socket_group = static_cast<gid_t>(-1);
};

// Reload (reload.cpp): the service slots and the status order over them.
struct reload_parts {
    // Names of the services a reload put in a slot (the table's own are
    // the supervisor's copies): name_bytes each, per slot.
    static constexpr std::size_t name_bytes = 32;
    // Exec data room of a slot the table did not fill (process::host).
    static constexpr std::size_t slot_bytes = 2048;
    std::uint32_t slots = 0;            // laid out: >= the table's services
    std::uint32_t* view = nullptr;      // status order: view[k] is a slot, k < count
    std::uint32_t* plan_slot = nullptr; // the current plan's service k -> its slot
    char* names = nullptr;              // slots * name_bytes
    bool* critical = nullptr;           // per slot
    bool* draining = nullptr;           // per slot: removed, still stopping
    std::uint32_t ndraining = 0;
    bool vacate_soon = false;         // a draining service has stopped: vacate_stopped()
    std::uint32_t* scratch = nullptr; // per slot: the new plan's service k -> slot, in reload()
    std::byte* check_room = nullptr;  // the table check's walks (tbl::options::scratch)
    std::size_t check_bytes = 0;
    tbl::plan spare; // the next reload's plan, in a fixed block
    // Probes. The machine's units are slots like the services'; a reload
    // builds the new table's checks into the other engine, in its own
    // fixed block, while the checks the old one runs end (their results go
    // to the probes kept, and are dropped for the others).
    std::uint32_t probe_slots = 0;          // laid out: >= the table's probes
    std::uint32_t* probe_slot = nullptr;    // the current plan's probe k -> its slot
    std::uint32_t* slot_probe = nullptr;    // slot -> the current plan's probe, or none
    std::uint32_t* probe_scratch = nullptr; // per slot: the new plan's probe k -> slot, in reload()
    arena engine_mem[2];                    // fixed blocks of engine_room bytes
    std::size_t engine_room = 0;
    std::uint32_t* engine_slot[2] = {}; // engine e's probe k -> the slot it reports to, or none
    std::uint32_t check_capacity = 0;   // check instances an engine may have
    std::uint32_t check_total = 0;      // ... both engines together (reactor ops)
    std::uint32_t next_instance = 0;    // the next engine's first instance number
    bool old_engine_busy = false;       // the other engine still has checks running
    bool applying = false;              // apply() is between its first and last act
    bool monitors_due = false;          // ... and a dependency of a monitor moved
    // Cgroup units for a reload's exec checks (vacant, laid out at init).
    process::cgroup_tree* cgroups = nullptr;
    std::uint32_t* cg_free = nullptr;
    std::uint32_t ncg_free = 0;
    std::uint32_t cg_capacity = 0;
    ReloadHook hook = nullptr;
    void* hook_ctx = nullptr;
};

// One retention job (prune.cpp): its spec with the strings copied into the
// arena, its workspace (sized by max_files), its timer, and what the status
// shows of it.
struct prune_job {
    Runtime::impl* rt = nullptr;
    std::uint32_t index = 0;
    PruneSpec spec;
    char* dir_z = nullptr; // spec.dir, NUL-terminated (statvfs)
    prune::workspace ws;
    io::timer timer;
    PruneJobStatus st;
    // The run in progress: where its files go (prune_now's visitor), and
    // whether it is a dry run (no events, no counters).
    PruneVisitor* visitor = nullptr;
    bool dry_run = false;
};

// The pruner's part of the runtime (prune.cpp): one job per Table::prunes
// entry, laid out in the arena, and the clock mode the age rules obey.
struct prune_parts {
    prune_job* jobs = nullptr;
    std::uint32_t count = 0;
    ClockTrust clock = ClockTrust::automatic;

    prune_parts() = default;
    prune_parts(const prune_parts&) = delete;
    prune_parts& operator=(const prune_parts&) = delete;
    // The workspaces are in the arena: their destructors (an open
    // directory) run here, before the arena's block goes.
    ~prune_parts() {
        for (std::uint32_t j = 0; jobs != nullptr && j < count; ++j) {
            jobs[j].~prune_job();
        }
    }
};

struct signal_watch {
    int fd = -1;
    signalfd_siginfo buf{};
    io::op op;
};

} // namespace rt_detail

struct Runtime::impl final : sup::host,
                             process::events,
                             probe::machine_host,
                             status::snapshot_source,
                             control::actions {
    static constexpr std::uint32_t max_listeners = 6;

    Runtime* owner = nullptr; // the facade (the reload hook is given it)
    RuntimeConfig cfg;
    // The notify directory chosen when the table gives none (see
    // RuntimeConfig::notify_dir): "@custos-PID-XXXXXXXX".
    char default_notify_dir[40] = {};
    tbl::plan plan; // the table checked and resolved, before anything is laid out
    io::reactor reactor;
    // Before everything laid out in it: destroyed after them.
    arena mem;
    process::host procs{reactor, *this};
    sup::supervisor sup{*this};
    probe::machine probes{*this};
    // The check engines: the current one runs the current plan's checks;
    // the other is the next reload's (reload.cpp).
    probe::engine engines[2];
    std::uint32_t cur_engine = 0;
    probe::engine& checks() noexcept { return engines[cur_engine]; }
    probe::resolver* dns = nullptr;            // in the arena, when a probe names a host
    probe::resolver_config* dns_cfg = nullptr; // init only
    std::uint32_t nprobes = 0;
    // Every transition goes to these, in order: the user's hooks (custosd's
    // log lines), then the snapshot's publisher. Room for the listeners to
    // come (the event log, the control plane, the watchdog gate).
    status::fixed_stream<max_listeners> listeners;
    status::hook_listener user_hooks;
    status::snapshot snap; // laid out in the arena
    status::publisher publisher{snap, *this};
    // The event log (eventlog.cpp): the last listener.
    eventlog::sink elog;
    // The services' captured output (output.cpp), per slot.
    capture::sink cap;
    capture::slot_spec* cap_specs = nullptr; // init only: what layout_capture() lays out
    bool logs_new = false;                   // output came this turn (logs followers)
    bool elog_dir_set = false;               // Table::log.dir was given
    LogConfig logcfg;                        // Table::log, its dir made absolute
    char log_dir_abs[256] = {};
    char logs_head[96] = {}; // logs_feed()'s headers, while it answers
    // events_feed()'s headers, while it answers.
    char events_head[96] = {};
    // The monitors: the machine (reactor side) and their threads.
    rt_detail::monitor_host mhost{*this};
    mon::machine monitors{mhost};
    mon::pool threads;
    std::uint32_t nmonitors = 0;
    // Health: derived after each turn that had an event (health_watch) or
    // a finished probe check (on_check_done), or when a grace runs out
    // (health_timer); every change is an event.
    rt_detail::health_watch health_dirty;
    rt_detail::health_arrays harr;
    status::health_model hmodel;
    io::timer health_timer{&impl::on_health_timer, this};
    std::int64_t started_ns = 0;
    // READY=1, STATUS=, STOPPING=1, WATCHDOG=1 to the init system above.
    ports::upward_notifier upward;
    // The hardware watchdog, fed by health.
    rt_detail::watchdog_host whost{*this};
    rt_detail::watchdog_parts wd;
    // The control plane (control.cpp).
    rt_detail::control_parts ctl;
    // Reload (reload.cpp).
    rt_detail::reload_parts rl;
    // The retention pruner (prune.cpp).
    rt_detail::prune_parts pr;
    bool stopping = false; // the runtime's stop has begun
    int exit_status = 0;   // Runtime::exit_code()
    prng rng;              // probe jitter; seeded in init()
    rt_detail::wire* wires = nullptr;
    std::uint32_t count = 0;
    rt_detail::signal_watch term;
    SignalHook signal_hook = nullptr;
    void* signal_hook_ctx = nullptr;
    // Counted here: probes, liveness, signals (the process host counts the rest).
    RuntimeStats counters{};
    bool started = false;
    bool done = false;
    char reason[640] = {};
    // Runtime::stop() runs the stop from here, on the next loop turn.
    io::timer stop_soon{&impl::on_stop_soon, this};
    // run(): the bound on waiting for checks cancelled by the stop.
    io::timer settle{&impl::on_settle, this};

    ~impl();

    Result<void> init(const Table& t, TableProblemSink* problems) noexcept;
    Result<void> layout(std::span<const process::launch> launches, std::uint64_t seed) noexcept;
    Result<void> watch_signals() noexcept;

    // sup::host and probe::machine_host
    mono_time now() noexcept override { return reactor.now(); }
    void arm(io::timer& t, mono_time deadline) noexcept override { reactor.arm(t, deadline); }
    void cancel(io::timer& t) noexcept override { reactor.cancel(t); }
    // `p`: the plan's probe index (the supervisor's, the plan's).
    bool probe_ready(std::uint32_t p) noexcept override {
        return p < nprobes && probes.at(rl.probe_slot[p]).state == ProbeState::ready;
    }
    // The plan's probe `k`'s slot in the machine.
    std::uint32_t probe_at(std::uint32_t k) const noexcept { return rl.probe_slot[k]; }

    // sup::host
    Result<int> spawn(std::uint32_t i) noexcept override;
    void kill(std::uint32_t i, int sig) noexcept override { procs.kill(i, sig); }
    void transition(const Transition& t) noexcept override {
        status::event e = status::make_event(t, status::wall_now_ns());
        if (t.from == ServiceState::starting &&
            (t.to == ServiceState::running || t.to == ServiceState::ready)) {
            e.channel_fd = procs.channel_fd(t.service); // the new process's
        }
        listeners.dispatch(e);
        if (t.to == ServiceState::stopped || t.to == ServiceState::failed) {
            procs.remove_runtime_dir(t.service); // no process of it runs
        }
        if (t.to == ServiceState::stopped && rl.draining != nullptr && rl.draining[t.service]) {
            // A service a reload removed has stopped: its slot is freed
            // after this turn, outside the process host's exit callback.
            rl.vacate_soon = true;
        }
        if (t.from == ServiceState::ready || t.to == ServiceState::ready) {
            recheck_monitors();
        }
    }
    void all_stopped() noexcept override {
        done = true;
        reactor.stop();
    }
    void flush_notify(std::uint32_t i) noexcept override { procs.flush_notify(i); }

    // probe::machine_host
    void arm(io::timer& t, mono_time deadline, nanos slack) noexcept override {
        reactor.arm(t, deadline, slack);
    }
    // `p`: a slot. The current engine runs the current plan's probes.
    void start_check(std::uint32_t p, mono_time deadline) noexcept override {
        ++counters.probe_checks;
        checks().start(checks().root(rl.slot_probe[p]), deadline);
    }
    // In whichever engine runs slot `p`'s check (the old one after a reload).
    void cancel_check(std::uint32_t p) noexcept override;
    void checked(std::uint32_t p, bool passed, mono_time started) noexcept override;
    void transition(const ProbeTransition& t) noexcept override;
    std::uint64_t random() noexcept override { return rng.next(); }

    // process::events
    void exited(std::uint32_t i, const ExitInfo& e) noexcept override;
    void ready(std::uint32_t i, Reason why) noexcept override { sup.on_ready(i, why); }
    void extend_timeout(std::uint32_t i, nanos by) noexcept override {
        sup.on_extend_timeout(i, by);
    }
    void watchdog_usec(std::uint32_t i, nanos interval) noexcept override {
        sup.on_watchdog_usec(i, interval);
    }
    void watchdog_ping(std::uint32_t i) noexcept override { sup.on_watchdog_ping(i); }
    void watchdog_trigger(std::uint32_t i) noexcept override { sup.on_watchdog_trigger(i); }
    void output(std::uint32_t i, int stream, const char* data, std::size_t len) noexcept override {
        on_output(i, stream, data, len);
    }
    // A captured service's stdout (1) or stderr (2) bytes (output.cpp).
    void on_output(std::uint32_t slot, int stream, const char* data, std::size_t len) noexcept;
    // Exec checks' children: both engines' (the old one's until its
    // checks have ended).
    bool claims_child(int pid, bool* watched) noexcept override {
        return engines[0].owns_child(pid, watched) || engines[1].owns_child(pid, watched);
    }
    std::uint32_t child_slots() noexcept override {
        return engines[0].exec_instances() + engines[1].exec_instances();
    }
    int child_at(std::uint32_t k, bool* watched) noexcept override {
        const std::uint32_t n0 = engines[0].exec_instances();
        return k < n0 ? engines[0].child_at(k, watched) : engines[1].child_at(k - n0, watched);
    }
    void child_exited(int pid, const siginfo_t& si) noexcept override {
        engines[0].on_child_exit(pid, si);
        engines[1].on_child_exit(pid, si);
    }
    Result<void> attach_cgroups(process::cgroup_tree& tree) noexcept override;

    // status::snapshot_source: the live state (reactor thread), which the
    // publisher copies into the snapshot after each loop turn.
    std::uint32_t service_count() const noexcept override { return count; }
    std::uint32_t probe_count() const noexcept override { return nprobes; }
    // Service `k` in status order.
    ServiceStatus service_status(std::uint32_t k) const noexcept override {
        return slot_status(rl.view[k]);
    }
    ServiceStatus slot_status(std::uint32_t slot) const noexcept;
    ProbeStatus probe_status(std::uint32_t p) const noexcept override {
        return probes.status(probe_at(p));
    }
    std::uint32_t monitor_count() const noexcept override { return nmonitors; }
    MonitorStatus monitor_status(std::uint32_t m) const noexcept override {
        // status() samples the monitor's slot (atomics) and accumulates
        // its beat count: no state the machine acts on changes.
        return const_cast<mon::machine&>(monitors).status(m);
    }
    const HealthStatus& health() const noexcept override { return hmodel.current(); }
    const WatchdogStatus* watchdog() const noexcept override {
        return wd.on ? &wd.feeder.status() : nullptr;
    }
    // control::actions (control.cpp).
    Result<void> start_service(std::uint32_t i) noexcept override;
    Result<void> stop_service(std::uint32_t i) noexcept override;
    Result<void> restart_service(std::uint32_t i) noexcept override;
    Result<void> check_probe(std::uint32_t p) noexcept override;
    Result<ReloadSummary> reload(ReloadReport& report) noexcept override;
    Result<void> hold_watchdog(Duration d, std::string_view by) noexcept override;
    Result<void> release_watchdog(std::string_view by) noexcept override;
    std::uint32_t prune_jobs() const noexcept override { return pr.count; }
    Result<PruneJobStatus> prune_job_status(std::uint32_t j) const noexcept override;
    Result<PruneSummary> prune_job_run(std::uint32_t j, bool dry_run,
                                       PruneVisitor* v) noexcept override;
    // Resolves the operators and the socket's group (init, before layout).
    Result<void> resolve_control(const ControlConfig& c) noexcept;
    // Lays out the server (both passes of layout()).
    Result<void> layout_control(const ControlConfig& c) noexcept;
    RuntimeStats stats_now() const noexcept;
    RuntimeStats stats() const noexcept override { return stats_now(); }
    // After a loop turn (or start()): health derived again if something
    // happened, then what changed copied into the snapshot.
    // `control_only`: the turn ran nothing but the control plane's
    // callbacks, which change supervision state only through actions, and
    // those are events (they mark the publisher stale themselves): no
    // counter, STATUS= text or check time can have moved, so the snapshot
    // is not compared record by record (~19 us for 64 + 64 on the build
    // machine, several times per request otherwise).
    void publish(bool control_only = false) noexcept {
        if (rl.vacate_soon) {
            vacate_stopped();
        }
        update_health();
        if (!control_only) {
            publisher.mark_stale();
        }
        if (publisher.publish_if_stale()) {
            ctl.server.after_publish(); // answers the ?wait actions that settled
        }
        cap.flush();
        elog.after_turn();
        if (elog.take_out_of_space()) {
            make_room_for_log();
        }
        if (elog.take_new()) {
            ctl.server.wake_feeds("events"); // GET /events?follow
        }
        if (logs_new) {
            logs_new = false;
            ctl.server.wake_feeds("logs"); // GET /services/NAME/logs?follow
        }
    }
    // The event log (eventlog.cpp).
    Result<void> open_eventlog(const Table& t) noexcept;
    void boot_record() noexcept;
    // After the boot record: how the previous run ended (eventlog/previous.hpp),
    // unless the watchdog's reset record has classified it.
    void previous_run_record() noexcept;
    // At the end of run(): the stop record last, then the log closed.
    void close_eventlog() noexcept;
    void forget_eventlog() noexcept;
    // The event log could not write for want of space: the services'
    // oldest captured-output archives go first (output.cpp).
    void make_room_for_log() noexcept;
    // Captured output (output.cpp).
    Result<void> layout_capture(std::span<const process::launch> launches) noexcept;
    void open_capture() noexcept;
    void close_capture() noexcept;
    static bool logs_feed(const ControlRequest& req, ControlResponse& resp, bool can_wait,
                          void* ctx) noexcept;
    static bool events_feed(const ControlRequest& req, ControlResponse& resp, bool can_wait,
                            void* ctx) noexcept;
    // Reload (reload.cpp).
    Result<void> layout_reload() noexcept;
    Result<ReloadSummary> apply(const Table& t, TableProblemSink* problems) noexcept;
    // The status order again: the plan's services, then those stopping.
    void rebuild_view() noexcept;
    void vacated(std::uint32_t slot) noexcept;
    void vacate_stopped() noexcept;
    // SIGHUP (from `pid`, `uid`) with a reload hook: the reload, and an
    // event saying so.
    void reload_on_signal(int pid, int uid) noexcept;
    // Service `k` in status order: its slot.
    std::uint32_t slot_at(std::uint32_t k) const noexcept { return rl.view[k]; }
    Result<void> layout_health() noexcept;
    Result<void> layout_safe_mode() noexcept;
    Result<void> init_watchdog(const WatchdogConfig& w, TableProblemSink* problems) noexcept;
    void start_watchdog() noexcept;
    void stop_watchdog() noexcept;
    Result<void> init_monitors() noexcept;
    // The pruner (prune.cpp): the jobs laid out (both passes of layout()),
    // their first runs scheduled (start()), their timers cancelled (the
    // stop), one run, and whether a reload's table keeps the jobs as
    // they are (a changed job is ReloadUnsupported).
    Result<void> layout_prunes() noexcept;
    void start_prunes() noexcept;
    void stop_prunes() noexcept;
    Result<PruneSummary> run_prune(rt_detail::prune_job& job, bool dry_run,
                                   PruneVisitor* v) noexcept;
    bool same_prunes(std::span<const PruneSpec> next) const noexcept;
    std::uint32_t find_prune(std::string_view name) const noexcept;
    static void on_prune_timer(io::timer& t) noexcept;
    void update_health() noexcept;
    bool monitor_deps_ready(std::uint32_t m) noexcept;

    // Service `i` lost its process: its probes' checks in flight are about
    // a process that is gone.
    void forget_probes(std::uint32_t i) noexcept;
    void stop_everything() noexcept;
    // The monitors' dependencies again, unless a reload is applying (its
    // plan and its slot maps change in steps; it asks at its end).
    void recheck_monitors() noexcept {
        if (rl.applying) {
            rl.monitors_due = true;
        } else {
            monitors.on_dependency_change();
        }
    }
    bool checks_running() noexcept { return engines[0].running() || engines[1].running(); }
    // Reload (reload.cpp): the engines' memory and their first layout, at init.
    Result<void> layout_engines() noexcept;
    // The probe part of a reload (reload.cpp).
    Result<void> check_probes(const Table& t, const tbl::plan& next, bool* work) noexcept;
    void apply_probes(const Table& t, const tbl::plan& next, ReloadSummary& sum) noexcept;
    // The old engine's checks have all ended: its cgroup units are free.
    void old_engine_done() noexcept;

    static void on_check_done(probe::check& c) noexcept;
    static void on_term(io::op& o, std::int32_t result) noexcept;
    static void on_stop_soon(io::timer& t) noexcept;
    static void on_health_timer(io::timer& t) noexcept;
    static void on_settle(io::timer& t) noexcept { static_cast<impl*>(t.user)->reactor.stop(); }
};

} // namespace custos
