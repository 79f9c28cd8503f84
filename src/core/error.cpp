// Reason ids, default resolutions, and Error formatting.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include <custos/error.hpp>

namespace custos {
namespace {

struct reason_info {
    Reason reason;
    const char* id;
    const char* resolution;
};

// Indexed by the enum's value; the static_assert below keeps it complete.
constexpr reason_info reasons[] = {
    {Reason::unknown, "Unknown", "Report this as a custos bug with the log around it"},
    {Reason::out_of_memory, "OutOfMemory",
     "Free memory on the device or lower the configured capacities"},
    {Reason::capacity_exceeded, "CapacityExceeded",
     "Raise the capacity named in the message in the runtime configuration"},
    {Reason::invalid_argument, "InvalidArgument", "Fix the value named in the message"},
    {Reason::backend_unknown, "BackendUnknown",
     "Set CUSTOS_BACKEND to 'uring' or 'epoll', or unset it to choose automatically"},
    {Reason::io_uring_unavailable, "IoUringUnavailable",
     "The kernel refuses io_uring (CONFIG_IO_URING off, kernel.io_uring_disabled, seccomp, "
     "qemu-user, or RLIMIT_MEMLOCK too low before Linux 5.12); unset CUSTOS_BACKEND to fall "
     "back to epoll"},
    {Reason::io_uring_opcode_missing, "IoUringOpcodeMissing",
     "The kernel's io_uring lacks an operation custos needs (kernel older than 5.6); unset "
     "CUSTOS_BACKEND to fall back to epoll"},
    {Reason::epoll_unavailable, "EpollUnavailable",
     "Check the process's open-file limit (ulimit -n): epoll_create1 failed"},
    {Reason::timerfd_unavailable, "TimerfdUnavailable",
     "Check the open-file limit and that the kernel has CONFIG_TIMERFD"},
    {Reason::eventfd_unavailable, "EventfdUnavailable",
     "Check the open-file limit and that the kernel has CONFIG_EVENTFD"},
    {Reason::clock_unavailable, "ClockUnavailable",
     "CLOCK_MONOTONIC is not readable; this kernel cannot run custos"},
    {Reason::name_invalid, "NameInvalid",
     "Give every service a name of 1-31 characters from [A-Za-z0-9._-]"},
    {Reason::name_duplicate, "NameDuplicate",
     "Rename one of the two services: names must be unique"},
    {Reason::dependency_unknown, "DependencyUnknown",
     "Fix depends_on: it must name a service declared in the same table"},
    {Reason::dependency_cycle, "DependencyCycle",
     "Remove one depends_on edge of the cycle shown: services would wait for each other forever"},
    {Reason::executable_missing, "ExecutableMissing",
     "Install the program or fix the path in exec; it must exist and be executable"},
    {Reason::user_unknown, "UserUnknown", "Create the user on the image or fix the service's user"},
    {Reason::group_unknown, "GroupUnknown",
     "Create the group on the image or fix the service's group"},
    {Reason::config_unreadable, "ConfigUnreadable",
     "Check that the config file exists and is readable by custosd"},
    {Reason::config_syntax, "ConfigSyntax",
     "Fix the line: expected [section], key = value, or a comment starting with # or ;"},
    {Reason::config_unknown_key, "ConfigUnknownKey",
     "Remove the key or fix its spelling (custosd --help lists the keys)"},
    {Reason::config_bad_value, "ConfigBadValue", "Fix the value as the message describes"},
    {Reason::spawn_failed, "SpawnFailed",
     "Check the process and memory limits (ulimit -u, free memory): the kernel refused to "
     "create the process"},
    {Reason::exec_failed, "ExecFailed",
     "Check the service's exec path, its permissions, cwd, user and group"},
    {Reason::process_exited, "ProcessExited",
     "Read the service's own log for why it exited with this status"},
    {Reason::process_killed, "ProcessKilled",
     "Check the kernel log (dmesg) for an OOM kill or crash of the service"},
    {Reason::ready_timeout, "ReadyTimeout",
     "The service did not signal readiness in time: check its log, or raise ready_timeout"},
    {Reason::watchdog_timeout, "WatchdogTimeout",
     "The service stopped sending WATCHDOG=1: check it for a hang, or raise watchdog"},
    {Reason::watchdog_triggered, "WatchdogTriggered",
     "The service reported itself unhealthy (WATCHDOG=trigger): read its log"},
    {Reason::max_restarts_exhausted, "MaxRestartsExhausted",
     "Fix the service's crash (see its last exit), then start it again"},
    {Reason::restart_intensity_exceeded, "RestartIntensityExceeded",
     "Fix the service's crash loop (see its last exit), then start it again"},
    {Reason::dependency_failed, "DependencyFailed",
     "Fix the failed dependency named in the message; this service starts once it is ready"},
    {Reason::stop_timeout, "StopTimeout",
     "The service ignored its stop signal and was killed: make it exit on stop_signal within "
     "stop_timeout"},
    {Reason::service_unknown, "ServiceUnknown", "Use a service name from the supervision table"},
    {Reason::notify_socket_unavailable, "NotifySocketUnavailable",
     "Check that notify_dir is writable (custos creates it if its parent exists) and short "
     "enough for DIR/SERVICE to fit a socket address (107 bytes)"},
    {Reason::signalfd_unavailable, "SignalfdUnavailable",
     "Check the open-file limit and that the kernel has CONFIG_SIGNALFD"},
    {Reason::operator_start, "OperatorStart", "Nothing to do: this is normal operation"},
    {Reason::operator_stop, "OperatorStop", "Nothing to do: this is normal operation"},
    {Reason::operator_restart, "OperatorRestart", "Nothing to do: this is normal operation"},
    {Reason::runtime_start, "RuntimeStart", "Nothing to do: this is normal operation"},
    {Reason::runtime_stop, "RuntimeStop", "Nothing to do: this is normal operation"},
    {Reason::dependencies_ready, "DependenciesReady", "Nothing to do: this is normal operation"},
    {Reason::start_delay_elapsed, "StartDelayElapsed", "Nothing to do: this is normal operation"},
    {Reason::spawned, "Spawned", "Nothing to do: this is normal operation"},
    {Reason::ready_started, "ReadyStarted", "Nothing to do: this is normal operation"},
    {Reason::ready_notified, "ReadyNotified", "Nothing to do: this is normal operation"},
    {Reason::ready_fd, "ReadyFd", "Nothing to do: this is normal operation"},
    {Reason::backoff_elapsed, "BackoffElapsed", "Nothing to do: this is normal operation"},
    {Reason::exited_cleanly, "ExitedCleanly", "Nothing to do: this is normal operation"},
    {Reason::stopped_by_request, "StoppedByRequest", "Nothing to do: this is normal operation"},
    {Reason::waiting_for_dependencies, "WaitingForDependencies",
     "Nothing to do yet: the service starts once its dependencies are ready"},
    {Reason::probe_timeout, "ProbeTimeout",
     "The target did not answer within the probe's timeout: check that it is running and not "
     "overloaded, and the network path to it, or raise the probe's timeout"},
    {Reason::probe_connect_refused, "ProbeConnectRefused",
     "Nothing listens at the probe's address: start the service behind it or fix the address"},
    {Reason::probe_unreachable, "ProbeUnreachable",
     "No route to the probe's address: check the interface, its address and the routes (ip "
     "addr, ip route)"},
    {Reason::probe_connect_failed, "ProbeConnectFailed",
     "Connecting to the probe's target failed with the errno shown: check the target and the "
     "device's network and file limits"},
    {Reason::probe_dns_failed, "ProbeDnsFailed",
     "The probe's host name did not resolve: check /etc/resolv.conf, /etc/hosts and the name "
     "server, or use an address"},
    {Reason::probe_io_failed, "ProbeIoFailed",
     "The connection failed while talking to the target (reset or closed early): check the "
     "target's log"},
    {Reason::probe_http_status, "ProbeHttpStatus",
     "The HTTP endpoint answered with a status the probe does not accept: check the endpoint's "
     "log, or fix expect_status"},
    {Reason::probe_http_malformed, "ProbeHttpMalformed",
     "The target did not answer with HTTP: check that the probe points at an HTTP port (TLS is "
     "not supported)"},
    {Reason::probe_exit_status, "ProbeExitStatus",
     "The probe command failed: run it by hand to see why"},
    {Reason::probe_exec_failed, "ProbeExecFailed",
     "The probe command could not be started: check its path and permissions"},
    {Reason::probe_file_missing, "ProbeFileMissing",
     "The file the probe checks does not exist: check that its partition is mounted and the "
     "service that creates it ran"},
    {Reason::probe_owner_mismatch, "ProbeOwnerMismatch",
     "Fix the file's owner (chown) or the probe's owner setting"},
    {Reason::probe_mode_mismatch, "ProbeModeMismatch",
     "Fix the file's permissions (chmod) or the probe's mode setting"},
    {Reason::probe_not_writable, "ProbeNotWritable",
     "The directory is not writable: check for a read-only or full filesystem (mount, df) and "
     "its permissions"},
    {Reason::probe_unknown, "ProbeUnknown", "Use a probe name declared in the same table"},
    {Reason::liveness_failed, "LivenessFailed",
     "The service's liveness probe went down and the service was restarted: check the service "
     "and the probe's last error"},
    {Reason::dependency_down, "DependencyDown",
     "A dependency went down and the service's on_dependency_down acted: fix the dependency "
     "named in the message"},
    {Reason::ready_probe, "ReadyProbe", "Nothing to do: this is normal operation"},
    {Reason::probe_passed, "ProbePassed", "Nothing to do: this is normal operation"},
    {Reason::probe_recovered, "ProbeRecovered", "Nothing to do: this is normal operation"},
    {Reason::thread_unavailable, "ThreadUnavailable",
     "Check the process and memory limits (ulimit -u, free memory): custos could not start a "
     "thread it needs"},
    {Reason::instance_running, "InstanceRunning",
     "Another custos instance holds this notify_dir or pid record: stop it first, or give this "
     "one its own notify_dir"},
    {Reason::cgroup_unavailable, "CgroupUnavailable",
     "Mount cgroup2 (mount -t cgroup2 none /sys/fs/cgroup) and run custosd as root or in a "
     "delegated cgroup, or set cgroup = off; without cgroups custos falls back to process "
     "groups and a pid record"},
    {Reason::pid_record_unavailable, "PidRecordUnavailable",
     "Check that the pid record's directory (e.g. /run/custos) exists and is writable by "
     "custosd; without it, processes left by a crashed custosd are not found at the next start"},
    {Reason::monitor_crashed, "MonitorCrashed",
     "The monitor's run function returned an error and is restarted after its backoff: see "
     "the error in the message"},
    {Reason::monitor_crash_loop, "MonitorDegraded",
     "The monitor keeps failing (every restart crashed again): fix what its last error names; "
     "it is still being restarted"},
    {Reason::monitor_heartbeat, "MonitorHeartbeat", "Nothing to do: this is normal operation"},
    {Reason::monitor_wedge_suspected, "MonitorWedgeSuspected",
     "The monitor's thread has made no progress for half its deadline: see the thread's state "
     "and wchan in the message, and what it waits on"},
    {Reason::monitor_wedged, "MonitorWedged",
     "The monitor's thread made no progress within its deadline and cannot be killed safely: "
     "restart the daemon (on_wedge = exit does it), then find what the thread blocked on"},
    {Reason::monitor_progress, "MonitorProgress", "Nothing to do: the monitor progresses again"},
    {Reason::monitor_degraded, "MonitorDegradedSet",
     "The monitor runs but reports its last operation failed: see its message"},
    {Reason::monitor_degraded_cleared, "MonitorDegradedCleared",
     "Nothing to do: the monitor's operation succeeds again"},
    {Reason::monitor_unknown, "MonitorUnknown", "Use a monitor name declared in the same table"},
    {Reason::health_starting, "HealthStarting",
     "Nothing to do yet: the start has not settled (services becoming ready, probes' first "
     "checks)"},
    {Reason::health_settled, "HealthSettled", "Nothing to do: this is normal operation"},
    {Reason::boot_grace_expired, "BootGraceExpired",
     "The start did not settle within boot_grace: see which services are not ready and which "
     "probes are still unknown"},
    {Reason::critical_down, "CriticalDown",
     "A critical probe has been down for longer than its grace: fix what its last error names"},
    {Reason::runtime_dir_unavailable, "RuntimeDirUnavailable",
     "Check that runtime_dir_root is an absolute path whose parent exists and is writable by "
     "custos (custosd's default is under /run/custos), on a file system that allows chown"},
    {Reason::watchdog_unavailable, "WatchdogUnavailable",
     "Check that the watchdog driver is loaded (ls /dev/watchdog*), that the path or board "
     "profile names the right device, and that custos may open it (root or the device's group)"},
    {Reason::watchdog_busy, "WatchdogBusy",
     "Another process holds the watchdog (each device opens once): stop it (systemd "
     "RuntimeWatchdogSec=, procd, busybox watchdog, watchdogd) or chain custos under it instead"},
    {Reason::watchdog_unsupported, "WatchdogUnsupported",
     "Nothing to do: the driver lacks this capability, and custos runs without it"},
    {Reason::watchdog_timeout_clamped, "WatchdogTimeoutClamped",
     "The timeout asked for is beyond what the board or driver allows: set a timeout within the "
     "board profile's maximum (the one in force is in the message)"},
    {Reason::watchdog_opened, "WatchdogOpened", "Nothing to do: the watchdog is armed and fed"},
    {Reason::watchdog_starving, "WatchdogStarving",
     "Health failed, so custos no longer feeds the watchdog and the board will reset: fix what "
     "failed, or start a maintenance hold (Runtime::hold_watchdog) to debug without a reset"},
    {Reason::watchdog_fed_again, "WatchdogFedAgain",
     "Nothing to do: health recovered before the reset and feeding resumed"},
    {Reason::watchdog_feed_failed, "WatchdogFeedFailed",
     "The driver refused a keepalive: see the errno; if it repeats the board will reset"},
    {Reason::watchdog_lost, "WatchdogLost",
     "The watchdog device went away (driver unbound): the board is no longer watched; check the "
     "kernel log and restart custos"},
    {Reason::watchdog_hold_started, "WatchdogHoldStarted",
     "A maintenance hold keeps the watchdog fed whatever the health until it ends: release it "
     "when done"},
    {Reason::watchdog_hold_ended, "WatchdogHoldEnded",
     "Nothing to do: the watchdog is fed by health again"},
    {Reason::watchdog_disarmed, "WatchdogDisarmed",
     "Nothing to do: the watchdog was disarmed by an orderly stop"},
    {Reason::watchdog_left_armed, "WatchdogLeftArmed",
     "The watchdog stays armed after custos closed it (nowayout, or magic_close off): the board "
     "resets one timeout later unless a new owner opens it"},
    {Reason::previous_boot_orderly, "PreviousBootOrderly",
     "Nothing to do: the previous run stopped in order"},
    {Reason::previous_boot_starved, "PreviousBootStarved",
     "custos let the watchdog reset the board: the message names what failed; fix it"},
    {Reason::previous_boot_watchdog, "PreviousBootWatchdog",
     "The watchdog reset the board and nothing recorded why (a hung kernel, or a feeder other "
     "than custos): check pstore (/sys/fs/pstore) and the kernel log"},
    {Reason::previous_boot_unreported, "PreviousBootUnreported",
     "The previous boot ended without a record: a power loss, a reset the driver does not "
     "report, or a reboot that bypassed custos; check the power supply and the kernel log"},
    {Reason::previous_boot_restarted, "PreviousBootRestarted",
     "custos ended without stopping in order in this same boot (killed or crashed) and was "
     "started again: check why it ended (its exit status, the kernel log for the OOM killer)"},
    {Reason::reset_record_unwritable, "ResetRecordUnwritable",
     "The watchdog state file could not be written: check that its directory exists, is "
     "writable and has free space; reset reasons are lost until it can be"},
    {Reason::reset_record_corrupt, "ResetRecordCorrupt",
     "The watchdog state file was unreadable or damaged and is written anew: the previous boot "
     "is unclassified and the counters restart"},
    {Reason::safe_mode, "SafeMode",
     "The board keeps being reset by the watchdog: only the critical set was started; fix what "
     "the previous boots' records name, then start the rest by hand or restart custos"},
    {Reason::gpio_unavailable, "GpioUnavailable",
     "Check the GPIO chip path and line numbers (gpioinfo), that no driver (gpio_wdt) holds the "
     "line, and that custos may open the chip"},
    {Reason::board_unknown, "BoardUnknown",
     "Use a board profile custos knows (generic, raspberrypi, imx, sunxi, qemu-virt) or add one "
     "under ports/boards/"},
    {Reason::control_socket_in_use, "ControlSocketInUse",
     "Another custos serves this control socket: stop it, or give this one its own [control] "
     "socket"},
    {Reason::control_socket_unavailable, "ControlSocketUnavailable",
     "Check that the control socket's directory exists and is writable by custos, and that the "
     "path is under 108 bytes"},
    {Reason::control_denied, "ControlDenied",
     "Run the command as root or as a user listed in [control] operators"},
    {Reason::control_action, "ControlAction", "None needed: an operator acted through custosctl"},
    {Reason::control_bad_request, "ControlBadRequest",
     "Send one well-formed HTTP/1.1 request within the limits (head 8 KiB, body 4 KiB, 5 s)"},
    {Reason::control_wait_expired, "ControlWaitExpired",
     "The action was taken but did not settle in time: look at the service's last error "
     "(custosctl status NAME)"},
    {Reason::reload_invalid, "ReloadInvalid",
     "Fix every problem listed (FILE:LINE) and reload again: the running table is unchanged"},
    {Reason::reload_unsupported, "ReloadUnsupported",
     "Restart custos to apply this change (reload applies services only), or undo it"},
    {Reason::reload_capacity, "ReloadCapacity",
     "Raise service_slots (or shorten the definitions) and restart custos: init fixed the room"},
    {Reason::reload_busy, "ReloadBusy",
     "Wait until the services the last reload stops have stopped, then reload again"},
    {Reason::reload_added, "ReloadAdded", "None: the reload added this service"},
    {Reason::reload_removed, "ReloadRemoved", "None: the reload removed this service"},
    {Reason::reload_changed, "ReloadChanged",
     "None: the reload changed this service's definition; it restarts with the new one"},
    {Reason::prune_scan_failed, "PruneScanFailed",
     "Check that the prune directory exists, is an absolute path and is readable and writable "
     "by custos; nothing was deleted"},
    {Reason::prune_too_many_files, "PruneTooManyFiles",
     "The directory holds more matching files than max_files: raise max_files or narrow the "
     "glob; nothing was deleted"},
    {Reason::prune_deleted, "PruneDeleted",
     "None: the file was deleted by the retention rules named in the message"},
    {Reason::prune_unlink_failed, "PruneUnlinkFailed",
     "Check the directory's permissions and whether the filesystem is read-only (mount); the "
     "file was kept"},
    {Reason::prune_file_changed, "PruneFileChanged",
     "None: the file was replaced or written to after the scan and was kept; the next run "
     "judges it again"},
    {Reason::event_log_unavailable, "EventLogUnavailable",
     "Check that the log directory's parent exists and that custos may create, read and write "
     "files there (permissions, read-only mount)"},
    {Reason::event_log_write_failed, "EventLogWriteFailed",
     "Free space on the log's filesystem or lower the log's sizes; supervision goes on and "
     "the record is counted as lost"},
    {Reason::event_log_torn_line, "EventLogTornLine",
     "None: a record cut short by a crash or a full disk was removed; the records before it "
     "are intact"},
    {Reason::event_log_records_lost, "EventLogRecordsLost",
     "Free space on the log's filesystem, or raise the event ring's size if the log cannot "
     "keep up; the count says how many records are missing"},
    {Reason::runtime_started, "RuntimeStarted",
     "Nothing to do: custos started; the records before it are the previous run's"},
    {Reason::capture_unavailable, "CaptureUnavailable",
     "Check that the log directory exists and that custos may create, read and write files in "
     "it (permissions, read-only mount); the service runs, its output stays in RAM only"},
    {Reason::capture_write_failed, "CaptureWriteFailed",
     "Free space on the log's filesystem or lower output_file_bytes or output_files; the "
     "service is not blocked and the lost bytes are counted (custos_log_dropped_bytes_total)"},
};

static_assert(sizeof(reasons) / sizeof(reasons[0]) == reason_count,
              "every Reason needs an entry in the table");

constexpr bool table_in_order() {
    for (std::size_t i = 0; i < reason_count; ++i) {
        if (static_cast<std::size_t>(reasons[i].reason) != i) {
            return false;
        }
    }
    return true;
}
static_assert(table_in_order(), "the reason table must be indexed by the enum value");

const reason_info& info(Reason r) noexcept {
    auto i = static_cast<std::size_t>(r);
    return i < reason_count ? reasons[i] : reasons[0];
}

} // namespace

Error::Error(Reason reason, int sys_errno, std::string_view subject) noexcept
    : reason_(reason), errno_(sys_errno) {
    std::size_t n = std::min(subject.size(), subject_capacity);
    if (n != 0) { // an empty string_view's data() may be null, which memcpy forbids
        std::memcpy(subject_, subject.data(), n);
    }
    subject_[n] = '\0';
    subject_len_ = static_cast<std::uint8_t>(n);
}

std::string_view Error::id() const noexcept {
    return info(reason_).id;
}

std::string_view Error::resolution() const noexcept {
    return resolution_ != nullptr ? resolution_ : info(reason_).resolution;
}

std::string_view reason_id(Reason r) noexcept {
    return info(r).id;
}

std::size_t Error::format(char* buf, std::size_t len) const noexcept {
    // strerror() is not thread-safe in every libc; strerrordesc_np is glibc
    // only. The errno number is always printed, its text where available.
    char sys[96] = "";
    if (errno_ != 0) {
        char text[64] = "";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        const char* d = strerrordesc_np(errno_);
        std::snprintf(text, sizeof text, "%s", d != nullptr ? d : "unknown error");
#else
        std::snprintf(text, sizeof text, "error");
#endif
        std::snprintf(sys, sizeof sys, ": %s (errno %d)", text, errno_);
    }
    std::string_view res = resolution();
    int n = std::snprintf(buf, len, "%s%s%.*s%s. %.*s", info(reason_).id,
                          subject_len_ != 0 ? ": " : "", static_cast<int>(subject_len_), subject_,
                          sys, static_cast<int>(res.size()), res.data());
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

} // namespace custos
