// The supervisor: the restart state machine, the dependency graph and stop
// sequencing for every service of a table. Pure logic: it never calls the
// kernel. What it needs from the world (the clock, timers, spawning,
// signalling, reporting) goes through `host`, which the runtime implements
// over the reactor and the spawner and tests implement with a fake clock and
// fake processes.
//
// States (ServiceState) and what moves a service between them:
//
//   stopped  --start-->  waiting  --deps ready-->  starting --delay--> spawn
//   spawn ok:   ready (ReadyMode::started)  or  running --READY/fd--> ready
//   spawn failed, exit, ready timeout, watchdog:  the restart decision:
//       clean exit and policy says no restart   -> stopped
//       failed exit and restart = never         -> failed
//       budget exhausted                        -> failed (MaxRestarts..., RestartIntensity...)
//       otherwise                               -> backoff --delay--> starting/waiting
//   stop (operator or runtime): any state -> stopping (signal the group,
//       SIGKILL after the grace) -> stopped; states without a process go to
//       stopped at once.
//
// Dependencies going down at run time (a service leaving `ready`, a probe
// going down) act on each dependent through its on_dependency_down: ignore;
// stop (stopped, reason DependencyDown, then waiting until every dependency
// is ready again); restart (kept running, restarted with reason
// DependencyDown once every dependency is ready again: for clients that do
// not reconnect by themselves). Liveness probes restart as a crash.
//
// Invariants:
//   - A service has a process (pid != 0) exactly in running, ready and
//     stopping.
//   - Only automatic restarts count against the budget; an operator's start
//     or restart clears it. The backoff and the crash count reset only after
//     a run of at least stable_after, never because a spawn succeeded.
//   - A service starts only when every dependency is ready; a failed
//     dependency keeps its dependents waiting, with reason DependencyFailed.
//   - Runtime stop: a service is signalled only when none of its dependents
//     still has a process, and its grace is its share of what is left of the
//     total budget: min(stop_timeout, remaining / (rank + 1)), where rank is
//     the length of its longest dependency chain (the number of stop waves
//     that may still follow it). At the total deadline every survivor gets
//     SIGKILL.
//
// Reload works on slots: init lays out `slots` units, the table's services
// in 0..count-1 and the rest vacant. A vacant slot is `stopped`, has no
// edges and no name, and nothing starts, stops or finds it. occupy() puts a
// service into a vacant slot; reload_stop(i, false) stops one and leaves
// its slot vacant; redefine() + reload_stop(i, true) stop one and start it
// again with its new definition; relink() makes the dependency graph the
// new table's. Unchanged services are never touched.
//
// Memory, all laid out at init: the edges in one pool of slots*(slots-1)
// indices (each edge once as a dependency and once as a dependent: an
// acyclic graph without repeated edges has at most slots*(slots-1)/2, so
// relink() never runs out for a valid table; 16,128 bytes for 64 slots);
// per slot, its probe dependencies (one entry per probe of the table) and
// a restart-time ring of max(intensity_restarts, 16) entries.
//
// Every transition is reported to host::transition() with its reason. The
// host may act on a service from there (an operator action from the hook):
// after each report the supervisor re-checks the state before going on, so
// it never continues a step the hook has already superseded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include <custos/probe.hpp>
#include <custos/service.hpp>

#include "core/arena.hpp"
#include "core/backoff.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"
#include "table/plan.hpp"

namespace custos::sup {

class supervisor;

// What the supervisor asks of the world.
class host {
public:
    virtual mono_time now() noexcept = 0;
    // One-shot timers; arming a pending timer moves it.
    virtual void arm(io::timer& t, mono_time deadline) noexcept = 0;
    virtual void cancel(io::timer& t) noexcept = 0;
    // Starts service `i`'s process and begins watching its exit (then
    // supervisor::on_exit) and its readiness (supervisor::on_ready).
    // Returns the pid. Errors: SpawnFailed, ExecFailed (with errno).
    virtual Result<int> spawn(std::uint32_t i) noexcept = 0;
    // Sends `sig` to service `i`'s process group.
    virtual void kill(std::uint32_t i, int sig) noexcept = 0;
    virtual void transition(const Transition& t) noexcept = 0;
    // Runtime stop finished: no service has a process any more.
    virtual void all_stopped() noexcept = 0;
    // Whether probe `p` (an index into the probe table) is ready now.
    virtual bool probe_ready(std::uint32_t p) noexcept = 0;
    // Service `i`'s ready timeout or watchdog expired: deliver what it has
    // already sent and is still queued (READY=1, WATCHDOG=1) before the
    // supervisor acts on the expiry, as systemd handles notifications
    // before timers. After a stall (SIGSTOP, a slow disk) the timer and the
    // pings that would have prevented it become due together.
    virtual void flush_notify(std::uint32_t) noexcept {}

protected:
    ~host() = default;
};

// One service's supervision record.
struct unit {
    // From the spec.
    std::string_view name;
    RestartPolicy restart = RestartPolicy::on_failure;
    backoff_policy policy;
    std::uint32_t max_restarts = 0;
    std::uint32_t intensity_n = 0;
    nanos intensity_window{0};
    nanos start_delay{0};
    ReadyMode ready_mode = ReadyMode::started;
    nanos ready_timeout{0};
    nanos watchdog{0};    // from the spec
    nanos wd_interval{0}; // in force for this process: watchdog, or WATCHDOG_USEC=
    // In force for the process that runs (or the next one when none does):
    // a redefine() while one runs leaves them to its stop (next_stop_*).
    int stop_signal = 0;
    nanos stop_timeout{0};
    bool next_stop_pending = false; // the next spawn takes next_stop_*
    int next_stop_signal = 0;
    nanos next_stop_timeout{0};
    // Edges, by slot: deps and dependents are slices of the supervisor's
    // edge pool (relink() lays them out again); repeated names count once.
    std::uint32_t* deps = nullptr;
    std::uint32_t ndeps = 0;
    std::uint32_t* dependents = nullptr;
    std::uint32_t ndependents = 0;
    std::uint32_t* probe_deps = nullptr; // probes in depends_on, by probe index
    std::uint32_t nprobe_deps = 0;
    DependencyDownAction on_dependency_down = DependencyDownAction::ignore;
    std::uint32_t rank = 0; // longest dependency chain below this service

    // State.
    bool occupied = false; // a service holds this slot (else vacant)
    // A reload stop in progress (ReloadRemoved, ReloadChanged: what its
    // transition to stopped says), else unknown.
    Reason reload_reason = Reason::unknown;
    ServiceState state = ServiceState::stopped;
    Reason reason = Reason::unknown;
    mono_time since{};
    bool wanted = false;
    bool stop_requested = false;     // the coming exit ends in stopped
    bool restart_after_stop = false; // ... then starts again (operator start/restart)
    Reason resume_reason = Reason::operator_restart; // the reason it starts again with
    bool killed = false;                             // SIGKILL was sent in this stop
    // on_dependency_down = restart: a dependency went down while this ran;
    // restart it once every dependency is ready again.
    bool restart_on_recovery = false;
    Reason kill_reason = Reason::unknown; // why a non-requested stop began
    int pid = 0;
    backoff bo;
    std::uint32_t restarts = 0; // since the last stable run
    std::uint64_t total_restarts = 0;
    mono_time* restart_times = nullptr; // ring: intensity_n of rt_capacity entries in use
    std::uint32_t rt_capacity = 0;      // max(intensity_restarts at init, 16)
    std::uint32_t rt_head = 0;
    std::uint32_t rt_count = 0;
    mono_time deadline{};    // of `timer`
    mono_time wd_deadline{}; // of `wd_timer`
    io::timer timer;         // start delay, ready timeout, backoff, stop grace
    io::timer wd_timer;      // software watchdog
    ExitInfo last_exit;
    // What the status shows an operator (ServiceStatus).
    mono_time started{}; // the running process's spawn (zero: none runs)
    std::uint64_t by_cause[restart_cause_count] = {};
    ServiceError last_error;
    // The last deaths, a ring: deaths[(death_count - 1) % capacity] is the
    // newest.
    std::uint64_t death_count = 0;
    DeathRecord deaths[death_history_capacity];
    supervisor* owner = nullptr;
    std::uint32_t index = 0;
};

class supervisor {
public:
    explicit supervisor(host& h) noexcept : host_(h) {}
    supervisor(const supervisor&) = delete;
    supervisor& operator=(const supervisor&) = delete;

    // Lays the plan's services out in `mem` (dependencies by index, as the
    // plan resolved them). Call once with an arena that has no block to
    // measure (OutOfMemory, and mem.needed() says how much), then with one
    // reserved that big. Reads the plan's table: during init only.
    // `slots` (0, or fewer than the plan's count: the plan's count) units
    // are laid out: the plan's services in 0..count-1, the rest vacant, for
    // reload. Errors: OutOfMemory (also for a slot count whose edge pool
    // cannot be addressed). Probe dependencies are probe indices of the
    // plan: below `probes` (0, or fewer than the plan's: the plan's), the
    // most a reload's plan may have.
    Result<void> init(const tbl::plan& plan, arena& mem, std::uint64_t seed,
                      std::uint32_t slots = 0, std::uint32_t probes = 0) noexcept;

    // Runtime start: every service is wanted; with `only` (one flag per
    // service), only those flagged (the rest stay stopped until an operator
    // starts them: the watchdog's safe mode). Vacant slots are skipped, and
    // their flags in `only` are not read (it may be as long as the table).
    void start_all(const bool* only = nullptr) noexcept;
    // Runtime stop within `budget`; host::all_stopped() when done.
    void stop_all(nanos budget) noexcept;
    bool stopping_all() const noexcept { return stopping_all_; }

    // Operator actions on service `i`.
    void start(std::uint32_t i) noexcept;
    void stop(std::uint32_t i) noexcept;
    void restart(std::uint32_t i) noexcept;

    // Events from the host.
    void on_exit(std::uint32_t i, const ExitInfo& e) noexcept;
    void on_ready(std::uint32_t i, Reason why) noexcept;
    void on_watchdog_ping(std::uint32_t i) noexcept;
    void on_watchdog_trigger(std::uint32_t i) noexcept;
    // EXTEND_TIMEOUT_USEC=: moves the start (ready) or stop deadline to at
    // least now + `by`, as systemd does; never the watchdog, never earlier.
    // `by` is clamped to max_notify_timeout.
    void on_extend_timeout(std::uint32_t i, nanos by) noexcept;
    // WATCHDOG_USEC=: the watchdog interval for the current process, from
    // now (systemd's override; the next spawn returns to the spec's). Zero
    // turns the watchdog off for this process, as in systemd; other values
    // are clamped to [min_watchdog, max_notify_timeout].
    void on_watchdog_usec(std::uint32_t i, nanos interval) noexcept;

    // Bounds on the durations a service sends.
    static constexpr nanos max_notify_timeout = std::chrono::hours(24);
    static constexpr nanos min_watchdog = std::chrono::milliseconds(10);
    // Probe `p` (called `name`) became ready or went down: services waiting
    // for it start, and its dependents' on_dependency_down acts.
    void on_probe_change(std::uint32_t p, bool ready, std::string_view name) noexcept;
    // Service `i`'s liveness probe went down: while it is ready, it is
    // killed and restarted as a crash (LivenessFailed). True if it acted.
    bool on_liveness_down(std::uint32_t i) noexcept;

    // Reload (the runtime's reload.cpp drives these; Runtime::reload says
    // what an operator sees). A slot is vacant (no service) or occupied.
    // A vacant slot is never started or stopped, has no edges, is skipped
    // by start_all(), stop_all() and find(); its state stays stopped, and
    // operator actions on it do nothing. Reactor thread only.
    bool vacant(std::uint32_t i) const noexcept;
    // Vacant slot `i` takes service `spec`, called `name` (storage the
    // caller keeps while the slot is occupied): stopped, not wanted, fresh
    // counters and history, a backoff seeded as init seeds slot `i`'s, no
    // edges until relink(); start(i, Reason::reload_added) starts it.
    // Errors, the slot unchanged: ReloadCapacity (subject the name: its
    // intensity_restarts exceed what the slot's restart ring holds),
    // InvalidArgument (`i` is not a vacant slot).
    Result<void> occupy(std::uint32_t i, const ServiceSpec& spec, std::string_view name) noexcept;
    // Occupied slot `i` (same name) takes `spec`'s policy for what comes
    // next; a process that runs or is stopping is stopped with the signal
    // and grace it was started with (the new ones apply from its next
    // spawn), and the readiness and watchdog timers it has keep running.
    // State, counters and history are kept; a changed intensity_restarts
    // starts the restart-time window afresh. Errors, the slot unchanged:
    // ReloadCapacity, as occupy(); InvalidArgument (`i` is vacant).
    Result<void> redefine(std::uint32_t i, const ServiceSpec& spec) noexcept;
    // Stops occupied slot `i` for a reload (a vacant slot, or one already
    // being removed: nothing). The transition to stopped always carries
    // the reload's reason (a stop that took SIGKILL says StopTimeout in
    // its detail); a service with no process goes to stopped at once, one
    // transition (stopped -> stopped included, so the host sees every
    // reload stop).
    // then_start false (removed): like an operator stop (stopping, then
    // stopped, both ReloadRemoved), not wanted; the slot is vacant from
    // that transition to stopped: vacant(i) is already true inside
    // host::transition() (whose Transition still has the name), find()
    // no longer finds it, its edges are gone and its dependents re-checked
    // (one waiting only for it starts). Operator starts and restarts of a
    // service being removed do nothing.
    // then_start true (changed): stopping -> stopped (ReloadChanged), then,
    // if it was wanted (failed counts as wanted; an operator's stop, a
    // clean exit its policy does not restart and the safe mode's
    // not-started do not), starts again as an operator restart would
    // (budget cleared, counted RestartCause::operator_, reason
    // ReloadChanged). Whether redefine() came before or after, the new
    // definition applies to the new process.
    // During a runtime stop nothing starts again, and the runtime stop's
    // order and grace stay in charge of a process not yet signalled by it.
    void reload_stop(std::uint32_t i, bool then_start) noexcept;
    // An operator start with another reason (ReloadAdded): wanted, and
    // started when its dependencies are ready. Nothing on a vacant slot.
    void start(std::uint32_t i, Reason why) noexcept;
    // The dependency graph becomes `plan`'s: slot_of[k] is the slot of
    // the plan's service k (every one occupied). Occupied slots not in
    // slot_of (removed, still stopping) lose their edges. Probe
    // dependencies are the plan's probe indices (init's `probes` bounds
    // them). Ranks are computed again. Then every waiting service whose
    // dependencies are all ready starts (as when a dependency becomes
    // ready); services now depending on one that is not ready keep running
    // until it goes down (on_dependency_down) or they start again. During
    // a runtime stop, the stop moves on with the new order. Errors, with
    // nothing changed: ReloadCapacity (the edges do not fit the pool: only
    // for a graph with a cycle), InvalidArgument (slot_of not one distinct
    // occupied slot per plan service, or an index out of range).
    Result<void> relink(const tbl::plan& plan, std::span<const std::uint32_t> slot_of) noexcept;

    // Slots (occupied and vacant).
    std::uint32_t size() const noexcept { return count_; }
    const unit& at(std::uint32_t i) const noexcept { return units_[i]; }
    // Slot of `name` (occupied slots only), or UINT32_MAX.
    std::uint32_t find(std::string_view name) const noexcept;

private:
    static void fire_timer(io::timer& t) noexcept;
    static void fire_watchdog(io::timer& t) noexcept;
    static void fire_stop_deadline(io::timer& t) noexcept;

    void enter(unit& u, ServiceState to, Reason why, int err = 0, const ExitInfo* exit = nullptr,
               std::string_view detail = {}, nanos delay = nanos(0)) noexcept;
    void arm(unit& u, nanos after) noexcept;
    void disarm(unit& u) noexcept;
    void want_start(unit& u, Reason why) noexcept;
    void spawn(unit& u) noexcept;
    void became_ready(unit& u, Reason why) noexcept;
    void fail_and_kill(unit& u, Reason why) noexcept;
    void begin_stop(unit& u, nanos grace, Reason why, std::string_view detail = {}) noexcept;
    // `detail`: what the transition's detail says (a failed spawn's stage).
    void after_failure(unit& u, Reason why, int err, const ExitInfo* exit,
                       std::string_view detail = {}) noexcept;
    void wake_dependents(const unit& u) noexcept;
    void dependency_down(unit& d, std::string_view what) noexcept;
    void dependency_back(unit& d) noexcept;
    bool deps_ready(const unit& u, const unit** failed) const noexcept;
    void reset_budget(unit& u) noexcept;
    void advance_stop() noexcept;
    static bool has_process(const unit& u) noexcept;
    // Reload helpers (supervisor.cpp).
    void apply(unit& u, const ServiceSpec& s) noexcept;
    void set_up(unit& u, std::uint32_t i) noexcept;
    void reload_stopped(unit& u, const ExitInfo* exit, std::string_view detail) noexcept;
    void vacate(unit& u, const ExitInfo* exit, std::string_view detail) noexcept;
    Result<void> link(const tbl::plan& plan, std::span<const std::uint32_t> slot_of) noexcept;
    void compute_ranks() noexcept;

    // After the total stop deadline's SIGKILL, how long to wait for the
    // exits before giving up on a process that cannot die.
    static constexpr nanos abandon_after = std::chrono::seconds(2);

    // The smallest restart-time ring a slot gets (so a reload can give a
    // service up to that many intensity_restarts).
    static constexpr std::uint32_t min_restart_ring = 16;

    host& host_;
    unit* units_ = nullptr;
    std::uint32_t count_ = 0; // slots
    std::uint32_t nprobes_ = 0;
    std::uint32_t* edges_ = nullptr; // the edge pool
    std::size_t edge_capacity_ = 0;
    std::uint64_t seed_ = 0;
    bool stopping_all_ = false;
    bool all_stopped_sent_ = false;
    mono_time stop_deadline_{};
    io::timer stop_timer_;
    bool stop_hard_ = false; // the total deadline passed: SIGKILL sent to all
};

} // namespace custos::sup
