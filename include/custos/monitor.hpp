// In-process monitors: the embedding daemon's own long-running tasks (an
// upgrade watcher, a telemetry uploader, a device poller), supervised like
// services but running as threads of the daemon.
//
// A monitor is a name, a run function with its argument, and settings, as
// plain data in the static table (Table::monitors). Each monitor has its own
// thread, created at Runtime::init() with the monitor's stack size and
// reused for every run: nothing is created or allocated after start().
//
// The run function returns Result<void>:
//   success  a clean exit: the monitor is stopped and not restarted;
//   error    a crash: the monitor is restarted after its backoff (initial,
//            x multiplier, capped at max, +/- jitter; the backoff and the
//            crash count reset only after a run of at least stable_after).
//            Every degraded_every-th consecutive crash is reported as
//            MonitorDegraded. A monitor never gives up.
// It should return soon after stop_requested() becomes true (the runtime's
// stop, an operator's, or a dependency going down): it gets its share of
// the stop budget, and one that has not returned by then is reported by
// name (StopTimeout) and abandoned; a thread cannot be killed safely.
//
// Liveness: a monitor with a deadline must show progress by calling beat()
// from the loop that does its work. No progress (no beat, or only beats
// with the same progress token) for half the deadline is reported as
// MonitorWedgeSuspected, with evidence (time since the last progress, the
// last token, the thread's state and wchan); for the whole deadline as
// MonitorWedged, and the monitor's state becomes `wedged` until it makes
// progress again. on_wedge = exit then stops the runtime in order and makes
// it exit non-zero, so the init system above restarts the whole daemon.
//
// Everything a monitor's thread calls on its MonitorContext is lock-free.
// beat() is one or two atomic stores (no read-modify-write, no clock, no
// system call); tick() reads the clock through the vDSO; set_degraded() and
// clear_degraded() wake the reactor (one eventfd write) only when the
// overlay changes and no notice of that monitor is pending; wait_for()
// sleeps.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/error.hpp>
#include <custos/service.hpp>
#include <custos/text.hpp>

namespace custos {

class MonitorContext;

// Runs on the monitor's own thread. `arg` is MonitorSpec::arg.
using MonitorFn = Result<void> (*)(MonitorContext& ctx, void* arg);

enum class WedgeAction : std::uint8_t {
    report, // report it (event, status, health); keep supervising
    exit,   // stop the runtime in order; Runtime::exit_code() becomes non-zero
};

enum class MonitorState : std::uint8_t {
    stopped,  // never started, stopped by request, or returned cleanly
    waiting,  // wanted, waiting for its dependencies to be ready
    running,  // its run function is running
    degraded, // running, and it reported its last operation failed (set_degraded)
    backoff,  // its run function failed; restarted when the backoff elapses
    wedged,   // running, but no progress within its deadline
    stopping, // asked to stop; its run function has not returned yet
};

inline constexpr std::size_t monitor_state_count = 7;

// Stable lower-case name of a state ("wedged").
std::string_view monitor_state_name(MonitorState s) noexcept;

struct MonitorSpec {
    // 1-31 characters from [A-Za-z0-9._-], unique among services, probes and
    // monitors.
    std::string_view name;
    MonitorFn run = nullptr;
    void* arg = nullptr;

    // Restart backoff after a crash.
    Duration backoff_initial = std::chrono::seconds(5);
    Duration backoff_max = std::chrono::minutes(5);
    std::uint32_t backoff_multiplier_x100 = 200; // 200 = x2
    std::uint32_t backoff_jitter_percent = 10;   // 0-100
    Duration stable_after = std::chrono::seconds(60);
    // MonitorDegraded at every Nth consecutive crash (0 = never).
    std::uint32_t degraded_every = 5;
    // A MonitorHeartbeat event this often while it runs (0 = none), with its
    // uptime and health: a remote observer can alert on their absence.
    Duration heartbeat_interval{0};
    // Wedge detection: progress (beat()) at least this often while running
    // (0 = not watched). Suspected at half, wedged at the whole.
    Duration deadline{0};
    WedgeAction on_wedge = WedgeAction::report;
    // Counts toward the runtime's health: wedged makes it `failed`
    // (health.hpp).
    bool critical = false;

    // Services and probes that must be ready before it starts, and what it
    // does when one goes down while it runs (stop: asked to stop, started
    // again once they are all ready; restart: the same, at once when they
    // allow).
    std::span<const std::string_view> depends_on;
    DependencyDownAction on_dependency_down = DependencyDownAction::ignore;

    // Stack of its thread, in bytes (0 = 256 KiB; at least 64 KiB).
    std::size_t stack_size = 0;
};

// What the monitor's thread works with. Valid only inside the run function
// that received it.
class MonitorContext {
public:
    std::string_view name() const noexcept;
    // The number of this run: 1 for the first, then one more per restart.
    std::uint32_t run_number() const noexcept;

    // True once the monitor is asked to stop: return soon.
    bool stop_requested() const noexcept;
    // A descriptor that becomes readable (POLLIN) when a stop is requested,
    // for a loop that polls its own descriptors. Do not read or close it.
    int stop_fd() const noexcept;
    // Sleeps for `d` or until a stop is requested; false when a stop was
    // requested.
    bool wait_for(Duration d) noexcept;

    // Progress: call from the loop that does the work. Without a token each
    // beat is progress; with one, only a token different from the last.
    void beat() noexcept;
    void beat(std::uint64_t progress) noexcept;

    // The "running, but the last operation failed" overlay: the monitor's
    // state becomes `degraded` with this error (reason, subject, resolution;
    // the resolution must be a literal) until clear_degraded().
    void set_degraded(const Error& e) noexcept;
    void clear_degraded() noexcept;

    // Per-tick health: last success, last failure and its error,
    // consecutive failures, in MonitorStatus.
    void tick() noexcept;
    void tick(const Error& e) noexcept;
    void tick(const Result<void>& r) noexcept {
        if (r) {
            tick();
        } else {
            tick(r.error());
        }
    }

    // The runtime's own (src/monitor/).
    explicit MonitorContext(void* slot) noexcept : slot_(slot) {}
    MonitorContext(const MonitorContext&) = delete;
    MonitorContext& operator=(const MonitorContext&) = delete;

private:
    void* slot_;
};

// One state change of one monitor, or one of its reports (from == to:
// MonitorDegraded, MonitorHeartbeat, MonitorWedgeSuspected).
struct MonitorTransition {
    std::uint32_t monitor = 0;
    std::string_view name;
    MonitorState from = MonitorState::stopped;
    MonitorState to = MonitorState::stopped;
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    std::int64_t at_ns = 0;     // CLOCK_MONOTONIC
    std::uint32_t crashes = 0;  // consecutive, since the last stable run
    std::int64_t delay_ns = 0;  // backoff: time until the restart
    std::uint64_t progress = 0; // the last progress token (wedge reports)
    // What happened, for an operator: the crash's error, the wedge's
    // evidence, the heartbeat's uptime and health.
    std::string_view detail;
    std::string_view resolution;
};

// Runs on the reactor thread; must not block.
using MonitorHook = void (*)(const MonitorTransition& t, void* ctx);

// Longest error subject kept (Error::subject_capacity).
inline constexpr std::size_t monitor_message_capacity = Error::subject_capacity;

// An error as a monitor status keeps it: text owned, with when it happened.
struct MonitorError {
    Reason reason = Reason::unknown; // unknown: none
    int sys_errno = 0;
    FixedText<monitor_message_capacity> message;
    std::int64_t at_ns = 0; // CLOCK_MONOTONIC

    friend bool operator==(const MonitorError&, const MonitorError&) = default;
};

// A copy of one monitor's status; owns its text, valid on any thread.
struct MonitorStatus {
    FixedText<name_capacity> name;
    MonitorState state = MonitorState::stopped;
    Reason reason = Reason::unknown; // of the last transition
    std::int64_t since_ns = 0;
    bool critical = false;
    std::int64_t started_ns = 0;       // the current run's start (0: not running)
    std::int64_t restart_at_ns = 0;    // backoff: when it restarts (0: not in backoff)
    std::uint32_t crashes = 0;         // consecutive, since the last stable run
    std::uint64_t runs = 0;            // times started
    std::uint64_t beats = 0;           // beat() calls, all runs
    std::uint64_t progress = 0;        // the last progress token
    std::int64_t last_progress_ns = 0; // when the reactor last saw progress
    MonitorError last_crash;           // the last error its run function returned
    MonitorError degraded;             // the overlay (reason unknown: none)
    // Ticks.
    std::uint64_t ticks = 0;
    std::uint64_t tick_failures = 0;
    std::uint32_t consecutive_failures = 0;
    std::int64_t last_success_ns = 0;
    MonitorError last_failure; // at_ns: the last failed tick

    friend bool operator==(const MonitorStatus&, const MonitorStatus&) = default;
};

} // namespace custos
