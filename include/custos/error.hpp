// Error and Result<T>: how every fallible custos function reports failure.
//
// An Error is a value: a stable reason (an append-only enum whose string id,
// e.g. "IoUringUnavailable", never changes meaning), the errno where a system
// call failed, the thing it is about (a name, a path, a syscall: copied into a
// fixed buffer, truncated if long), and a one-sentence resolution an operator
// can act on. It owns no heap memory, so returning one never allocates.
//
// Public API types (Error, Reason, Result) keep the names DESIGN.md gives them;
// everything internal follows STYLE.md's snake_case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/expected.hpp>

namespace custos {

// Append-only: a value, once released, keeps its number and its meaning.
enum class Reason : std::uint16_t {
    unknown = 0,
    out_of_memory = 1,
    capacity_exceeded = 2,
    invalid_argument = 3,
    backend_unknown = 4,
    io_uring_unavailable = 5,
    io_uring_opcode_missing = 6,
    epoll_unavailable = 7,
    timerfd_unavailable = 8,
    eventfd_unavailable = 9,
    clock_unavailable = 10,
    // Supervision table (init).
    name_invalid = 11,
    name_duplicate = 12,
    dependency_unknown = 13,
    dependency_cycle = 14,
    executable_missing = 15,
    user_unknown = 16,
    group_unknown = 17,
    // Config files (custosd).
    config_unreadable = 18,
    config_syntax = 19,
    config_unknown_key = 20,
    config_bad_value = 21,
    // Processes.
    spawn_failed = 22,
    exec_failed = 23,
    process_exited = 24,
    process_killed = 25,
    ready_timeout = 26,
    watchdog_timeout = 27,
    watchdog_triggered = 28,
    max_restarts_exhausted = 29,
    restart_intensity_exceeded = 30,
    dependency_failed = 31,
    stop_timeout = 32,
    service_unknown = 33,
    notify_socket_unavailable = 34,
    signalfd_unavailable = 35,
    // Transitions in normal operation (not errors; they still have ids).
    operator_start = 36,
    operator_stop = 37,
    operator_restart = 38,
    runtime_start = 39,
    runtime_stop = 40,
    dependencies_ready = 41,
    start_delay_elapsed = 42,
    spawned = 43,
    ready_started = 44,
    ready_notified = 45,
    ready_fd = 46,
    backoff_elapsed = 47,
    exited_cleanly = 48,
    stopped_by_request = 49,
    waiting_for_dependencies = 50,
    // Probes: why a check failed.
    probe_timeout = 51,
    probe_connect_refused = 52,
    probe_unreachable = 53,
    probe_connect_failed = 54,
    probe_dns_failed = 55,
    probe_io_failed = 56,
    probe_http_status = 57,
    probe_http_malformed = 58,
    probe_exit_status = 59,
    probe_exec_failed = 60,
    probe_file_missing = 61,
    probe_owner_mismatch = 62,
    probe_mode_mismatch = 63,
    probe_not_writable = 64,
    probe_unknown = 65,
    // Services acting on probes.
    liveness_failed = 66,
    dependency_down = 67,
    ready_probe = 68,
    // Probe transitions in normal operation.
    probe_passed = 69,
    probe_recovered = 70,
    // Hardening: the runtime's own resources and instances.
    thread_unavailable = 71,
    instance_running = 72,
    // Process containment (cgroups, and the pid record without them).
    cgroup_unavailable = 73,
    pid_record_unavailable = 74,
    // In-process monitors.
    monitor_crashed = 75,         // the run function returned an error
    monitor_crash_loop = 76,      // every degraded_every-th consecutive crash
    monitor_heartbeat = 77,       // the periodic record of a running monitor
    monitor_wedge_suspected = 78, // no progress in half the deadline
    monitor_wedged = 79,          // no progress within the deadline
    monitor_progress = 80,        // progress again after a suspected or wedged spell
    monitor_degraded = 81,        // set_degraded() without a reason of its own
    monitor_degraded_cleared = 82,
    monitor_unknown = 83,
    // The runtime's health.
    health_starting = 84,
    health_settled = 85,
    boot_grace_expired = 86,
    critical_down = 87, // a critical probe down beyond its grace
    // A service's runtime directory (runtime_dir).
    runtime_dir_unavailable = 88,
    // The hardware watchdog (watchdog.hpp).
    watchdog_unavailable = 89,     // the device could not be opened
    watchdog_busy = 90,            // EBUSY: another process holds it
    watchdog_unsupported = 91,     // the driver lacks the capability (EOPNOTSUPP)
    watchdog_timeout_clamped = 92, // the timeout asked for is not the one in force
    watchdog_opened = 93,          // armed: the settings in force
    watchdog_starving = 94,        // the gate shut: health failed
    watchdog_fed_again = 95,       // health recovered before the reset
    watchdog_feed_failed = 96,     // a keepalive failed
    watchdog_lost = 97,            // the device went away (ENODEV)
    watchdog_hold_started = 98,
    watchdog_hold_ended = 99,
    watchdog_disarmed = 100,   // closed with the magic 'V' at an orderly stop
    watchdog_left_armed = 101, // closed armed: the board resets unless reopened
    previous_boot_orderly = 102,
    previous_boot_starved = 103,
    previous_boot_watchdog = 104,
    previous_boot_unreported = 105,
    previous_boot_restarted = 106,
    reset_record_unwritable = 107,
    reset_record_corrupt = 108,
    safe_mode = 109,        // a boot loop: only the critical set started
    gpio_unavailable = 110, // the GPIO chip or line could not be had
    board_unknown = 111,    // no board profile of that name
    // The control plane.
    control_socket_in_use = 112,      // a running custos answers on the socket path
    control_socket_unavailable = 113, // the socket could not be made (path, permission)
    control_denied = 114,             // an action from a peer that is not an operator
    control_action = 115,             // an operator action through the control plane
    control_bad_request = 116,        // a malformed, oversized or too slow request
    control_wait_expired = 117,       // ?wait ran out before the action settled
    // Reload: a new table applied to a running runtime (Runtime::reload).
    reload_invalid = 118,     // the new table has problems: nothing was changed
    reload_unsupported = 119, // it changes what only a restart applies (probes, [custos] ...)
    reload_capacity = 120,    // it needs more than init laid out (slots, bytes)
    reload_busy = 121,        // a reload is still applying (services stopping)
    reload_added = 122,       // a service the reload added starts
    reload_removed = 123,     // a service the reload removed stops
    reload_changed = 124,     // a service the reload changed stops and starts again
    // The retention pruner (src/prune/).
    prune_scan_failed = 125,    // the directory (or its filesystem) could not be read
    prune_too_many_files = 126, // more matching files than max_files: nothing deleted
    prune_deleted = 127,        // a file deleted by its rules (normal operation)
    prune_unlink_failed = 128,  // a file its rules chose could not be deleted
    prune_file_changed = 129,   // a chosen file changed before the unlink: kept
    // The event log (src/eventlog/).
    event_log_unavailable = 130,  // its directory or a file cannot be made, opened or read
    event_log_write_failed = 131, // a record could not be written (ENOSPC, EIO): not in the log
    event_log_torn_line = 132,    // a torn last line (crash, ENOSPC) was cut off at open
    event_log_records_lost = 133, // records dropped (ring full, writes failing), now recovered
    runtime_started = 134,        // the first record of a run: version, pid, backend, boot id
    // Captured output of services (src/capture/).
    capture_unavailable = 135,  // a service's output directory or file cannot be made or opened
    capture_write_failed = 136, // output could not be written (ENOSPC, EIO): dropped, counted
};

// Number of Reason values; the tables in error.cpp are checked against it.
inline constexpr std::size_t reason_count = 137;

class Error {
public:
    static constexpr std::size_t subject_capacity = 127;

    constexpr Error() = default;
    // `subject` names what the error is about; longer text is truncated.
    Error(Reason reason, int sys_errno, std::string_view subject = {}) noexcept;

    Reason reason() const noexcept { return reason_; }
    // errno of the failing system call, or 0 when none was involved.
    int sys_errno() const noexcept { return errno_; }
    std::string_view subject() const noexcept { return {subject_, subject_len_}; }
    // Stable machine-readable id, e.g. "IoUringUnavailable".
    std::string_view id() const noexcept;
    // What an operator can do about it; one sentence, never empty.
    std::string_view resolution() const noexcept;

    // Replaces the reason's default resolution with a more specific static
    // string (it is not copied: pass a literal).
    Error& with_resolution(const char* text) noexcept {
        resolution_ = text;
        return *this;
    }

    // Writes "Id: subject: strerror (errno N). resolution" into buf, always
    // NUL-terminated when len > 0, truncated to fit. Returns the length the
    // full text needs (like snprintf), so a caller can detect truncation.
    std::size_t format(char* buf, std::size_t len) const noexcept;

private:
    Reason reason_ = Reason::unknown;
    std::uint8_t subject_len_ = 0;
    int errno_ = 0;
    const char* resolution_ = nullptr;
    char subject_[subject_capacity + 1] = {};
};

template <class T>
using Result = tl::expected<T, Error>;

// `return fail(Reason::x, errno, "name");` from a function returning Result<T>.
inline tl::unexpected<Error> fail(Reason reason, int sys_errno = 0,
                                  std::string_view subject = {}) noexcept {
    return tl::unexpected<Error>(Error(reason, sys_errno, subject));
}

inline tl::unexpected<Error> fail(const Error& e) noexcept {
    return tl::unexpected<Error>(e);
}

// The stable string id of a reason ("IoUringUnavailable").
std::string_view reason_id(Reason r) noexcept;

} // namespace custos
