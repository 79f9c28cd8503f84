// The monitor machine: the reactor's side of in-process monitors. Pure
// logic: no threads, no system calls. What it needs from the world (the
// clock, timers, dependency readiness, the monitors' threads and slots,
// reporting) goes through `host`: the runtime implements it over the reactor
// and the thread pool (pool.hpp), tests over a fake clock and fake slots.
//
// States (MonitorState) and what moves a monitor between them:
//
//   stopped --start--> waiting --deps ready--> running (launch)
//   running <--overlay set/cleared--> degraded
//   running/degraded --no progress for the deadline--> wedged
//   wedged --progress--> running/degraded (MonitorProgress)
//   run returned ok     -> stopped (ExitedCleanly; never restarted)
//   run returned error  -> backoff (MonitorCrashed) --delay--> running
//                          (or waiting when a dependency is down)
//   stop (operator, dependency, runtime): -> stopping (the thread is asked)
//                          -> stopped / waiting once the run returns;
//                          states without a run go to stopped at once.
//
// Reports that change no state (from == to): MonitorDegraded at every
// degraded_every-th consecutive crash (on the backoff transition's heels),
// MonitorHeartbeat every heartbeat_interval while running or degraded (not
// while wedged: a remote observer alerts on their absence), and
// MonitorWedgeSuspected at half the deadline without progress.
//
// Invariants:
//   - A monitor's thread is inside its run function exactly in running,
//     degraded, wedged and stopping (`active`); launch() is called only
//     when it is not.
//   - The crash count and the backoff reset only after a run of at least
//     stable_after, never because a launch happened.
//   - Wedge checks never declare early: progress counts as seen at the
//     sample that first showed it (the latest time it can have happened),
//     so the time without progress it reports is a lower bound.
//   - Runtime stop: monitors are asked one at a time, in reverse table
//     order; each gets (time left) / (monitors left with a run) of the
//     budget. One that has not returned by then is reported (StopTimeout)
//     and abandoned (it stays `stopping`); the next is asked.
//     host::all_stopped() comes once every run returned or was abandoned.
//
// Every transition goes to host::transition() with its reason. The host may
// act on the machine from there (an operator action from a hook); the
// machine re-checks the state after each report before it goes on.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/monitor.hpp>

#include "core/arena.hpp"
#include "core/backoff.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"
#include "monitor/records.hpp"

namespace custos::mon {

// What the machine asks of the world.
class host {
public:
    virtual mono_time now() noexcept = 0;
    // One-shot timers; arming a pending timer moves it. `slack`: may fire
    // up to that much later (to share a wake-up).
    virtual void arm(io::timer& t, mono_time deadline, nanos slack) noexcept = 0;
    virtual void cancel(io::timer& t) noexcept = 0;
    // Whether every service and probe monitor `m` depends on is ready.
    virtual bool deps_ready(std::uint32_t m) noexcept = 0;
    // Runs monitor `m`'s function on its thread, as run number `run`;
    // machine::on_returned() follows, from the reactor loop, when it
    // returns. Called only while no run of `m` is in progress.
    virtual void launch(std::uint32_t m, std::uint32_t run) noexcept = 0;
    // Makes `m`'s stop_requested() true and its stop_fd() readable.
    virtual void request_stop(std::uint32_t m) noexcept = 0;
    // Reads `m`'s slot.
    virtual void sample(std::uint32_t m, sample& out) noexcept = 0;
    // Writes what is known of `m`'s thread (state and wchan) into buf,
    // NUL-terminated; returns its length.
    virtual std::size_t evidence(std::uint32_t m, char* buf, std::size_t len) noexcept = 0;
    virtual void transition(const MonitorTransition& t) noexcept = 0;
    // Monitor `m` is wedged and its on_wedge is exit: stop the runtime in
    // order and exit non-zero.
    virtual void wedge_exit(std::uint32_t m) noexcept = 0;
    // stop_all() is done: every run returned or was abandoned.
    virtual void all_stopped() noexcept = 0;

protected:
    ~host() = default;
};

class machine;

// One monitor's supervision record.
struct unit {
    // From the spec.
    std::string_view name;
    backoff_policy policy;
    std::uint32_t degraded_every = 0;
    nanos heartbeat{0};
    nanos deadline{0};
    WedgeAction on_wedge = WedgeAction::report;
    bool critical = false;
    DependencyDownAction on_dependency_down = DependencyDownAction::ignore;

    // State.
    MonitorState state = MonitorState::stopped;
    Reason reason = Reason::unknown;
    mono_time since{};
    bool wanted = false;
    bool active = false;              // its run function is running
    bool stop_asked = false;          // the coming return ends in stopped/waiting
    bool restart_after_stop = false;  // ... then wanted again (operator start)
    bool wait_after_stop = false;     // ... then waiting (dependency down)
    bool restart_on_recovery = false; // on_dependency_down = restart, a dep is down
    bool abandoned = false;           // runtime stop: did not return in its share
    bool suspected = false;           // MonitorWedgeSuspected reported in this spell
    backoff bo;
    std::uint32_t crashes = 0; // consecutive, since the last stable run
    std::uint32_t runs = 0;
    mono_time started{};    // of the current run
    mono_time restart_at{}; // backoff
    mono_time hb_next{};    // the next heartbeat on the schedule
    // What the reactor last saw of the slot.
    std::uint32_t seen_beats = 0;
    std::uint32_t seen_progress = 0;
    std::uint64_t beats = 0; // all runs
    std::uint64_t token = 0;
    mono_time last_progress{};
    bool degraded = false; // the overlay of this run, as last seen
    MonitorError overlay;
    std::string_view overlay_resolution;
    MonitorError last_crash;
    io::timer timer;    // backoff
    io::timer hb_timer; // heartbeat
    io::timer wd_timer; // wedge checks
    machine* owner = nullptr;
    std::uint32_t index = 0;
};

class machine {
public:
    explicit machine(host& h) noexcept : host_(h) {}
    machine(const machine&) = delete;
    machine& operator=(const machine&) = delete;

    // Copies what it needs of `specs` (names and settings) into `mem`; the
    // spans may die after. Two-pass: call once with an arena that has no
    // block to measure (OutOfMemory; mem.needed() says how much), then with
    // one reserved that big. The backoff jitter is seeded from `seed`.
    Result<void> init(std::span<const MonitorSpec> specs, arena& mem, std::uint64_t seed) noexcept;

    // Runtime start: every monitor is wanted; with `only` (one flag per
    // monitor), only those flagged (the watchdog's safe mode).
    void start(std::span<const bool> only = {}) noexcept;
    // Runtime stop within `budget`; host::all_stopped() when done.
    void stop_all(nanos budget) noexcept;
    bool stopping_all() const noexcept { return stopping_all_; }

    // Operator actions.
    void start(std::uint32_t m) noexcept;
    void stop(std::uint32_t m) noexcept;

    // A service or probe changed readiness: re-checks every monitor's
    // dependencies (start the waiting ones, on_dependency_down for the
    // running ones).
    void on_dependency_change() noexcept;
    // Monitor `m`'s run function returned `r`.
    void on_returned(std::uint32_t m, const Result<void>& r) noexcept;
    // Monitor `m`'s overlay changed (the thread posted a notice).
    void on_notice(std::uint32_t m) noexcept;

    std::uint32_t size() const noexcept { return count_; }
    const unit& at(std::uint32_t m) const noexcept { return units_[m]; }
    // Index of `name`, or UINT32_MAX.
    std::uint32_t find(std::string_view name) const noexcept;
    // A copy of `m`'s status (samples its slot first).
    MonitorStatus status(std::uint32_t m) noexcept;

private:
    static void fire_backoff(io::timer& t) noexcept;
    static void fire_heartbeat(io::timer& t) noexcept;
    static void fire_wedge_check(io::timer& t) noexcept;
    static void fire_stop_share(io::timer& t) noexcept;

    void enter(unit& u, MonitorState to, Reason why, std::string_view detail = {},
               std::string_view resolution = {}, int err = 0, nanos delay = nanos(0)) noexcept;
    void report(unit& u, Reason why, std::string_view detail = {},
                std::string_view resolution = {}) noexcept;
    void want(unit& u, Reason why) noexcept;
    void launch(unit& u, Reason why) noexcept;
    void ask_stop(unit& u, Reason why, std::string_view detail = {}) noexcept;
    void ended(unit& u) noexcept;
    void take_sample(unit& u, sample& s) noexcept;
    // The running state the overlay says: degraded or running.
    MonitorState live_state(const unit& u) const noexcept;
    void check_wedge(unit& u) noexcept;
    void check_overlay(unit& u, const sample& s) noexcept;
    void heartbeat(unit& u) noexcept;
    void advance_stop() noexcept;

    host& host_;
    unit* units_ = nullptr;
    std::uint32_t count_ = 0;
    bool stopping_all_ = false;
    bool all_stopped_sent_ = false;
    std::uint32_t stop_next_ = 0; // runtime stop: monitors left to ask, from the end
    std::uint32_t stop_current_ = UINT32_MAX;
    mono_time stop_deadline_{};
    io::timer stop_timer_;
    char detail_[384] = {};
};

} // namespace custos::mon
