// The static supervision table: what an appliance declares about each of its
// services, as plain data.
//
// A table is a span of ServiceSpec. It can be constexpr data in the appliance
// daemon or built at init from a config file (custosd does). Runtime::init()
// validates the whole table before anything starts and copies what it needs
// into its own memory, so the table's storage need not outlive init().
//
// Durations are milliseconds. Strings are string_views; none needs a NUL.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/error.hpp>
#include <custos/log.hpp>
#include <custos/text.hpp>

namespace custos {

enum class RestartPolicy : std::uint8_t {
    never,      // never restarted; a failed exit leaves it `failed`
    always,     // restarted whatever the exit
    on_failure, // restarted after a non-zero exit or a kill by a signal
                // other than its stop signal
};

enum class ReadyMode : std::uint8_t {
    started, // ready as soon as it is spawned
    notify,  // ready on READY=1 over NOTIFY_SOCKET (sd_notify protocol)
    fd,      // ready on the first newline written to fd `ready_fd` (s6 style)
    probe,   // ready when the probe `ready_probe` passes after the spawn
};

// What a service does when one of its dependencies (a service or a probe)
// goes down while it runs.
enum class DependencyDownAction : std::uint8_t {
    ignore,  // nothing: keep running
    stop,    // stop it; it starts again once every dependency is ready
    restart, // stop it and start it again as soon as the dependencies allow
};

// States a service moves through. Every change is a Transition with a reason.
enum class ServiceState : std::uint8_t {
    stopped,  // not wanted: never started, stopped by request, or exited for good
    waiting,  // wanted, waiting for its dependencies to be ready
    starting, // dependencies ready, start_delay running, then spawned
    running,  // process alive, readiness not yet signalled
    ready,    // process alive and ready
    backoff,  // exited; the restart timer is running
    stopping, // stop signal sent, waiting for the exit (SIGKILL after stop_timeout)
    failed,   // terminal until an operator starts it: budget exhausted, or a
              // failed exit with restart = never
};

inline constexpr std::size_t service_state_count = 8;

// Stable lower-case name of a state ("ready").
std::string_view state_name(ServiceState s) noexcept;

struct ServiceSpec {
    // 1-31 characters from [A-Za-z0-9._-].
    std::string_view name;
    // The program and its arguments; no shell. argv[0] is an absolute path or
    // a name looked up in PATH at init.
    std::span<const std::string_view> argv;
    // Extra environment entries, "KEY=value", over custos's own environment
    // (minus NOTIFY_SOCKET and WATCHDOG_*).
    std::span<const std::string_view> env;
    // Working directory; empty inherits custos's.
    std::string_view cwd;
    // Run as this user and group (names resolved at init); empty: unchanged.
    // A user without a group runs with the user's primary group.
    std::string_view user;
    std::string_view group;

    RestartPolicy restart = RestartPolicy::on_failure;
    // Backoff between automatic restarts: initial, x multiplier, capped at
    // max, +/- jitter percent. It and the crash count reset only after a run
    // of at least stable_after.
    Duration backoff_initial = std::chrono::seconds(1);
    Duration backoff_max = std::chrono::seconds(60);
    std::uint32_t backoff_multiplier_x100 = 200; // 200 = x2
    std::uint32_t backoff_jitter_percent = 25;   // 0-100
    Duration stable_after = std::chrono::seconds(60);
    // Restart budget: at most max_restarts automatic restarts since the last
    // stable run (0 = unlimited), and at most intensity_restarts within any
    // intensity_window (0 = no limit). Exhausted: state `failed`.
    std::uint32_t max_restarts = 0;
    std::uint32_t intensity_restarts = 0;
    Duration intensity_window{0};
    // Wait this long after the dependencies are ready before spawning.
    Duration start_delay{0};
    // Names of services and probes that must be ready before this one starts.
    std::span<const std::string_view> depends_on;
    DependencyDownAction on_dependency_down = DependencyDownAction::ignore;

    ReadyMode ready = ReadyMode::started;
    // ReadyMode::fd: the descriptor number the service writes its newline to
    // (3 or more).
    int ready_fd = -1;
    // A channel to each instance: a connected AF_UNIX stream socket pair,
    // a new one for every process started. The service finds its end at
    // this descriptor number (3 to 1023, not ready_fd); the embedding
    // program gets the other through Transition::channel_fd and
    // Runtime::channel_fd(), and custos closes it once that process has
    // exited. -1: none.
    int channel_fd = -1;
    // ReadyMode::probe: the probe whose next pass after the spawn makes the
    // service ready.
    std::string_view ready_probe;
    // Not ready within this time after spawning: a failed start (0 = no limit).
    Duration ready_timeout = std::chrono::seconds(90);
    // A probe of the service's own health: when it goes from ready to down
    // while the service is ready, the service is restarted (counted as a
    // crash, reason LivenessFailed). Empty: none.
    std::string_view liveness;
    // ReadyMode::notify: once ready, WATCHDOG=1 must arrive at least this
    // often or the service is restarted (0 = off). Exported as WATCHDOG_USEC.
    Duration watchdog{0};

    // Stop: stop_signal to the whole process group, then SIGKILL to it after
    // stop_timeout.
    int stop_signal = SIGTERM;
    Duration stop_timeout = std::chrono::seconds(5);

    // A directory of its own, RuntimeConfig::runtime_dir_root/NAME, made
    // (mode 0700, owned by the service's user and group) before its process
    // starts, kept across its restarts, given to it as RUNTIME_DIRECTORY,
    // and removed with everything in it when the service stops (or fails)
    // and at the runtime's stop.
    bool runtime_dir = false;

    // Counts toward the runtime's health: `failed` makes it `failed`, and
    // READY=1 upward waits for it to be ready (health.hpp).
    bool critical = false;

    // Where its stdout and stderr go (log.hpp). Captured (file, ring): a
    // pipe the reactor always drains, so the service never blocks on it.
    OutputMode output = OutputMode::automatic;
};

// How a process ended.
struct ExitInfo {
    int pid = 0;
    int code = 0;   // exit status when signal == 0
    int signal = 0; // the signal that killed it, or 0
    bool core_dumped = false;

    friend bool operator==(const ExitInfo&, const ExitInfo&) = default;
};

// One state change of one service, reported to the transition hook.
struct Transition {
    // The service's slot: its index in the table given to init(); a
    // service a reload added takes a slot past those (RuntimeConfig::
    // service_slots). Runtime::channel_fd() takes it. Status order
    // (Runtime::status()) is the current table's and may differ after a
    // reload: go by `name` there.
    std::uint32_t service = 0;
    std::string_view name;
    ServiceState from = ServiceState::stopped;
    ServiceState to = ServiceState::stopped;
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    std::int64_t at_ns = 0;     // CLOCK_MONOTONIC
    int pid = 0;                // the process concerned, if any
    ExitInfo exit;              // when the transition is due to an exit
    Duration delay{0};          // backoff: time until the restart
    std::int64_t delay_ns = 0;  // the same, to the nanosecond
    std::uint32_t restarts = 0; // automatic restarts since the last stable run
    // Extra words for an operator (the failed dependency, the errno text).
    std::string_view detail;
    // ServiceSpec::channel_fd set: custos's end of the new process's
    // channel, on the transition out of `starting` that spawned it (-1 on
    // every other). Valid until that process's exit transition has been
    // dispatched; custos closes it then (never close it yourself: dup()
    // it to keep it). Non-blocking, close-on-exec.
    int channel_fd = -1;
};

// Why a service was restarted (ServiceStatus::restarts_by_cause).
// Append-only: a cause keeps its number.
enum class RestartCause : std::uint8_t {
    crash,      // its process exited (or failed to start) and the policy restarted it
    probe,      // its liveness probe went down (LivenessFailed)
    watchdog,   // it missed its WATCHDOG=1 deadline (ServiceWatchdogTimeout)
    operator_,  // Runtime::restart_service() / POST .../restart / custosctl restart
    dependency, // a dependency went down with on_dependency_down = restart
};

inline constexpr std::size_t restart_cause_count = 5;

// Stable lower-case name ("crash", "probe", "watchdog", "operator",
// "dependency"): the metrics' `cause` label and the JSON keys.
std::string_view restart_cause_name(RestartCause c) noexcept;

// One death of a service's process: when, how, and the reason of the
// transition it caused.
struct DeathRecord {
    std::int64_t at_ns = 0; // CLOCK_MONOTONIC
    ExitInfo exit;
    Reason reason = Reason::unknown;

    friend bool operator==(const DeathRecord&, const DeathRecord&) = default;
};

// Deaths kept per service (ServiceStatus::deaths): enough to see a service
// flapping without a log.
inline constexpr std::size_t death_history_capacity = 16;

inline constexpr std::size_t service_error_message_capacity = 127;

// The last thing that went wrong with a service (a failed start, a crash, a
// liveness or watchdog failure, a given-up budget): what an operator reads
// first. The resolution is the reason's (Error(reason, 0).resolution()).
struct ServiceError {
    Reason reason = Reason::unknown; // unknown: nothing went wrong yet
    int sys_errno = 0;
    FixedText<service_error_message_capacity> message; // the transition's detail
    std::int64_t since_ns = 0;                         // CLOCK_MONOTONIC

    friend bool operator==(const ServiceError&, const ServiceError&) = default;
};

// Longest STATUS= text kept per service; a longer line is truncated.
inline constexpr std::size_t status_text_capacity = 127;

// A copy of one service's status. Its text fields are FixedText (they own
// their bytes; they read like string_views), so a ServiceStatus stays valid
// and unchanged however long it is kept, on any thread. Once
// Runtime::status() reads it from the published status snapshot (being
// wired; until then, call it on the reactor thread only), status() is safe
// to call from any thread and returns the state as of the last loop turn.
struct ServiceStatus {
    FixedText<name_capacity> name;
    ServiceState state = ServiceState::stopped;
    Reason reason = Reason::unknown; // of the last transition
    std::int64_t since_ns = 0;
    int pid = 0;                // 0 when not running
    std::uint32_t restarts = 0; // since the last stable run
    std::uint64_t total_restarts = 0;
    ExitInfo last_exit;
    // The last STATUS= line the service sent (empty if none).
    FixedText<status_text_capacity> status_text;
    int notify_errno = 0; // the last ERRNO= it sent
    // Wanted up (s6's "wantedup"): started and not stopped by an operator
    // or by the runtime's stop. A wanted service that is `failed` stays so
    // until an operator starts it.
    bool wanted = false;
    // The running process's start (0 when none runs): uptime = now - this.
    std::int64_t started_ns = 0;
    // backoff: when the restart is due (0 when not in backoff).
    std::int64_t restart_at_ns = 0;
    // Every restart since init, by cause (RestartCause); total_restarts is
    // the automatic ones (crash, probe, watchdog, dependency).
    std::uint64_t restarts_by_cause[restart_cause_count] = {};
    ServiceError last_error;
    // Captured output (output = file or ring; log.hpp): bytes read from
    // its stdout and stderr since init, and the bytes of its captured
    // lines (with their prefixes) its files do not have (a full, failing
    // or too slow disk; the RAM ring still had them).
    std::uint64_t output_bytes = 0;
    std::uint64_t output_dropped_bytes = 0;
    // The last deaths, oldest first: deaths[0 .. min(death_count, 16)).
    // death_count counts every death since init.
    std::uint64_t death_count = 0;
    DeathRecord deaths[death_history_capacity];

    friend bool operator==(const ServiceStatus&, const ServiceStatus&) = default;
};

} // namespace custos
