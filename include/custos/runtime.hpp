// custos::Runtime: runs a static supervision table.
//
// Lifecycle, all on one thread (the reactor thread):
//   init()   validates the table, takes all the memory the runtime will use,
//            creates its descriptors (reactor, SIGCHLD watch, notify socket),
//            and, with reap_orphans, makes the process a child subreaper.
//            Starts nothing.
//   start()  begins supervision: services start in dependency order.
//   run()    runs the loop until the runtime has stopped (stop() or, with
//            handle_signals, SIGTERM/SIGINT, then every service stopped).
// After init() returns, the runtime allocates nothing.
//
// Signals: init() blocks SIGCHLD (and, with handle_signals, the signals
// below) in the calling thread; create other threads after init() so they
// inherit the mask, or block those signals in them yourself. Services start
// with every disposition at its default and an empty mask. With
// handle_signals, what each signal does to the process:
//   SIGTERM, SIGINT   stop every service in reverse dependency order within
//                     stop_timeout; run() then returns.
//   SIGHUP            with a reload hook (set_reload_hook), a reload; else
//                     as SIGUSR1.
//   SIGUSR1,          never kill: read through the same signalfd, counted in
//   SIGUSR2, SIGALRM  RuntimeStats::signals_ignored and reported to the
//                     signal hook, otherwise ignored.
//   SIGPIPE           ignored (SIG_IGN): a write to a closed pipe or socket
//                     (stderr piped into `head`) fails with EPIPE instead.
//   SIGSEGV, SIGBUS,  keep their default action: the process dies (with a
//   SIGILL, SIGFPE,   core dump where enabled) and its services are left
//   SIGABRT           running, unsupervised, for the next start to find.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/control.hpp>
#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/prune.hpp>
#include <custos/service.hpp>
#include <custos/table.hpp>
#include <custos/watchdog.hpp>

namespace custos {

class Runtime;

using TransitionHook = void (*)(const Transition& t, void* ctx);
// A signal that was received and ignored (SIGHUP, SIGUSR1, SIGUSR2, SIGALRM).
using SignalHook = void (*)(int sig, void* ctx);

// Re-reads the embedder's configuration and applies it: called on the
// reactor thread for SIGHUP (handle_signals) and POST /reload. It builds the
// new table, calls Runtime::reload() and returns its result; every problem
// (its own: unreadable file, syntax; the table's, from reload()'s sink) goes
// to `report` as a line, and a table it cannot build is ReloadInvalid. Must
// not block for long: it runs on the loop.
using ReloadHook = Result<ReloadSummary> (*)(Runtime& rt, ReloadReport& report, void* ctx);

// Counters for the status page.
struct RuntimeStats {
    std::uint64_t spawns = 0;
    std::uint64_t spawn_failures = 0;
    std::uint64_t exits = 0;
    std::uint64_t orphans_reaped = 0; // grandchildren reparented to custos (reap_orphans)
    std::uint64_t notify_received = 0;
    std::uint64_t notify_dropped = 0;    // malformed, oversized, from a foreign sender
    std::uint64_t notify_foreign = 0;    // of those: a sender that may not speak for the service
    std::uint64_t fds_closed = 0;        // descriptors received over notify and closed
    std::uint64_t fds_closed_inline = 0; // of those: closed on the loop, the closer being full
    std::uint64_t notify_restored = 0;   // names put back in notify_dir after a deletion
    std::uint64_t leftovers_killed = 0;  // at start: processes a previous custos left
    std::uint64_t remnants_killed = 0;   // processes a service's main process left at its exit
    std::uint64_t main_pid_followed = 0; // MAINPID= took over when the started process exited
    std::uint64_t main_pid_refused = 0;  // MAINPID= named a process outside the service
    std::uint64_t output_bytes = 0;      // captured bytes read from services' stdout and stderr
    // The record (log.hpp): event-log records made, lost to the disk, custom
    // records the full ring refused; captured output lost to failed writes.
    std::uint64_t log_records = 0;
    std::uint64_t log_records_lost = 0;
    std::uint64_t log_custom_dropped = 0;
    std::uint64_t log_dropped_bytes = 0;
    std::uint64_t probe_checks = 0;
    std::uint64_t probe_failures = 0;
    std::uint64_t liveness_restarts = 0;
    // SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM received (handle_signals).
    std::uint64_t signals_ignored = 0;
};

// What this kernel gives custos (Runtime::platform()).
struct PlatformInfo {
    char backend[256] = {};   // the I/O backend and why ("io_uring: ...")
    char spawn[64] = {};      // how processes are started, after one real spawn
    char exit_watch[64] = {}; // how their exits are watched
    char cgroup2[160] = {};   // the cgroup2 mount, or "none (why)"
    char subreaper[96] = {};  // whether custos can become a child subreaper
};

class Runtime {
public:
    Runtime() noexcept;
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    // Checks the table (validate_table(): every problem to `problems`, which
    // may be null) and prepares everything. Errors: the table's first
    // problem (NameInvalid, NameDuplicate, DependencyUnknown, DependencyCycle
    // with the cycle as subject, ExecutableMissing, UserUnknown,
    // GroupUnknown, ProbeUnknown, InvalidArgument, CapacityExceeded), or a
    // resource the kernel refused (reactor errors, SignalfdUnavailable,
    // NotifySocketUnavailable, InstanceRunning, CgroupUnavailable,
    // OutOfMemory). On error nothing was started. The table's storage need
    // not outlive the call, unless the runtime will be reloaded: reload()
    // compares the next table with it.
    Result<void> init(const Table& table, TableProblemSink* problems = nullptr) noexcept;
    // The same, from the table's parts.
    Result<void> init(const RuntimeConfig& cfg, std::span<const ServiceSpec> services,
                      std::span<const ProbeSpec> probes = {}) noexcept {
        return init(Table{cfg, services, probes, {}, {}, {}, {}, {}});
    }

    // Called on every transition, on the reactor thread. Must not block.
    void set_transition_hook(TransitionHook hook, void* ctx) noexcept;
    // Called on every probe state change (after the probe's own hooks),
    // and for each probe a reload adds, removes or changes.
    void set_probe_hook(ProbeHook hook, void* ctx) noexcept;
    // Called on every monitor state change and report (MonitorDegraded,
    // MonitorHeartbeat, MonitorWedgeSuspected).
    void set_monitor_hook(MonitorHook hook, void* ctx) noexcept;
    // Called whenever health, its reasons or its summary change.
    void set_health_hook(HealthHook hook, void* ctx) noexcept;
    // Every watchdog event (watchdog.hpp): opened, clamped, the previous
    // boot, safe mode, starving, fed again, hold, closed.
    void set_watchdog_hook(WatchdogHook hook, void* ctx) noexcept;
    // Every action through the control plane (control.hpp), allowed or
    // refused, with the peer's pid and uid and the status it got.
    void set_control_hook(ControlHook hook, void* ctx) noexcept;
    // Every event of the retention pruner (prune.hpp: PruneEvent): each
    // file deleted, each chosen file kept, each failed run.
    void set_prune_hook(PruneHook hook, void* ctx) noexcept;
    // Serves /COMPONENT and /COMPONENT/... on the control socket with
    // `handler` (control.hpp: ControlRequest, ControlResponse). Call after
    // init() and before start(). Errors: InvalidArgument (no control
    // socket; a component that is empty, not [a-z0-9_-]{1,31}, reserved
    // (control::reserved_components) or already added), CapacityExceeded
    // (more than control::max_routes).
    Result<void> add_control_route(std::string_view component, ControlHandler handler,
                                   void* ctx) noexcept;
    // Called, on the reactor thread, for every signal received and ignored
    // (with handle_signals: SIGHUP, SIGUSR1, SIGUSR2, SIGALRM). Must not block.
    void set_signal_hook(SignalHook hook, void* ctx) noexcept;
    // Who re-reads the configuration for SIGHUP and POST /reload. Without
    // one, SIGHUP goes to the signal hook and POST /reload answers 501.
    void set_reload_hook(ReloadHook hook, void* ctx) noexcept;

    // Starts supervising: every service is wanted and starts when its
    // dependencies are ready.
    Result<void> start() noexcept;
    // Runs the loop until the runtime has stopped.
    void run() noexcept;
    // Stops every service in reverse dependency order within the stop
    // budget; run() returns when all have exited. Idempotent.
    void stop() noexcept;
    bool stopped() const noexcept;

    // Operator actions. start: wanted again (from stopped or failed; the
    // restart budget is cleared). stop: stopped and no longer wanted.
    // restart: stop, then start, not counted as a crash. Errors:
    // ServiceUnknown.
    Result<void> start_service(std::string_view name) noexcept;
    Result<void> stop_service(std::string_view name) noexcept;
    Result<void> restart_service(std::string_view name) noexcept;

    // Applies `table` to the running runtime: it is checked as init()
    // checks (every problem to `problems`), then compared with the running
    // one service by service (by name; every field compared, the resolved
    // executable and ids included):
    //   added      takes a free slot (RuntimeConfig::service_slots) and
    //              starts when its dependencies are ready (ReloadAdded);
    //   removed    stops (ReloadRemoved; no service of the new table
    //              depends on it); shown in status order after the table's
    //              until it has stopped; its slot is free then;
    //   changed    stops and starts again with the new definition if it
    //              was wanted (ReloadChanged; counted as an operator
    //              restart; its budget is cleared): one an operator stopped,
    //              or whose clean exit its policy did not restart, stays
    //              stopped, with the new definition for its next start;
    //   unchanged  not touched: its process, state, counters and history.
    // Probes alike, by name, in slots (RuntimeConfig::probe_slots): an
    // added one starts its startup phase (ReloadAdded); a removed one goes
    // at once, its check in flight cancelled (ReloadRemoved); a changed
    // one (a composite whose member changed included) keeps ready or down
    // and starts its startup phase with the new definition (ReloadChanged;
    // its counters start over); an unchanged one is not touched, not even
    // a check it has in flight. Each is an event on the probe stream (from
    // and to the same state). The new table's checks are laid out beside
    // the running ones, in a block reserved at init.
    // The dependency graph becomes the new table's at once. Reactor thread
    // only (from a hook), after start(). Allocates nothing: the plan of the
    // new table goes into room reserved at init (twice the first table's
    // plan). Errors, all with nothing changed: ReloadInvalid (the first
    // problem; all of them went to `problems`), ReloadUnsupported (a
    // change only a restart applies: the runtime settings, the monitors,
    // the watchdog or the control plane; a probe naming a host when none
    // did at init, which made no resolver; the subject says which),
    // ReloadCapacity (more services or probes than slots, a plan, a
    // definition or the checks larger than the room init reserved),
    // ReloadBusy (the services a previous reload removed have not all
    // stopped yet, or the checks it replaced have not all ended), and
    // what the process host refuses for a new definition
    // (NotifySocketUnavailable, CgroupUnavailable). The table must stay
    // valid until the next reload replaces it (as must init()'s, for a
    // runtime that will be reloaded): the next reload compares with it.
    Result<ReloadSummary> reload(const Table& table, TableProblemSink* problems = nullptr) noexcept;

    // Services in status order: the table's (the last reload's), then the
    // ones a reload removed that are still stopping.
    std::uint32_t service_count() const noexcept;
    // `index` < service_count(), in table order.
    ServiceStatus status(std::uint32_t index) const noexcept;
    // Custos's end of the channel (ServiceSpec::channel_fd) of the service
    // in slot `index` (Transition::service; the table's index until a
    // reload adds services)
    // to its running process; -1 when it has none or no process runs.
    // Reactor thread only (from a hook, or before run()). The same
    // descriptor as the Transition out of `starting` carried; it is closed
    // once the exit transition of that process has been dispatched.
    int channel_fd(std::uint32_t index) const noexcept;
    std::uint32_t probe_count() const noexcept;
    // `index` < probe_count(), in table order.
    ProbeStatus probe_status(std::uint32_t index) const noexcept;
    // Runs a probe's check now (unless one is in flight); its schedule goes
    // on from there. Errors: ProbeUnknown.
    Result<void> check_probe(std::string_view name) noexcept;
    RuntimeStats stats() const noexcept;
    std::uint32_t monitor_count() const noexcept;
    // `index` < monitor_count(), in table order; any thread.
    MonitorStatus monitor_status(std::uint32_t index) const noexcept;
    // The appliance's health and its reasons (health.hpp); any thread.
    HealthStatus health() const noexcept;
    // The hardware watchdog (watchdog.hpp): its gate, timeout, the previous
    // boot and the counters; any thread.
    WatchdogStatus watchdog() const noexcept;
    // The maintenance hold: keep feeding the watchdog whatever the health
    // for `for_` (at most WatchdogConfig::max_hold), then feed by health
    // again; `by` names who asked (the event and the status carry it). A
    // hold while one runs replaces it. Reactor thread only (from a hook,
    // or before run()). Errors: InvalidArgument (a duration out of range;
    // release without a hold), WatchdogUnavailable (no watchdog open).
    Result<void> hold_watchdog(Duration for_, std::string_view by) noexcept;
    Result<void> release_watchdog(std::string_view by) noexcept;
    // The retention pruner's jobs (Table::prunes), in table order.
    std::uint32_t prune_count() const noexcept;
    // Job `index`'s settings, counters and last run. Reactor thread only
    // (from a hook, a control route, or before run()). Errors:
    // InvalidArgument (no such index).
    Result<PruneJobStatus> prune_status(std::uint32_t index) const noexcept;
    // Runs the job called `name` now, synchronously on the reactor thread
    // (a run is bounded by the job's max_files), each file deleted (or with
    // dry_run, that would be: nothing is deleted) reported to `v` if
    // given. A real run emits its events (one per deletion) and counts like
    // a scheduled one; its timer goes on as it was. Reactor thread only.
    // Errors: InvalidArgument (no job of that name: the subject), and a
    // run's own, PruneScanFailed and PruneTooManyFiles (a real run's are
    // dispatched as events too).
    Result<PruneSummary> prune_now(std::string_view name, bool dry_run,
                                   PruneVisitor* v = nullptr) noexcept;
    // What the process should exit with once run() has returned: 0 after
    // an ordinary stop; non-zero when a monitor with on_wedge = exit
    // wedged (the init system above is to restart the whole daemon).
    int exit_code() const noexcept;
    // exit_code() after a monitor with on_wedge = exit wedged (EX_SOFTWARE).
    static constexpr int exit_wedged = 70;
    // The I/O backend in use and why ("io_uring: ..."), and whether custos
    // is a child subreaper ("not a subreaper (reap_orphans off)", or the
    // kernel's refusal). How processes are started and their
    // exits watched, as of now (the spawner steps down at its first spawn
    // where the kernel refuses CLONE_PIDFD): spawn_method_name(),
    // exit_watch_name().
    const char* backend_reason() const noexcept;
    // Without a table: sets up a reactor and a spawner as init() would,
    // starts /bin/true once, and says what was chosen. Touches no cgroup,
    // socket or signal disposition. Errors: the reactor's or spawner's.
    static Result<PlatformInfo> platform() noexcept;
    const char* exit_watch_name() const noexcept;
    const char* spawn_method_name() const noexcept;

    struct impl;

private:
    impl* impl_ = nullptr;
};

} // namespace custos
