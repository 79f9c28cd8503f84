// The notify paths upward: what custos tells the init system that started
// it. Owns zero, one or both paths (systemd's NOTIFY_SOCKET, s6's
// notification fd) and the keepalive timer, on the reactor's timer wheel:
// no thread of its own.
//
// Messages, each once per path:
//   READY=1     the first time health is settled && critical_ready (systemd
//               and the s6 fd);
//   STATUS=     the health summary, whenever its text changes (systemd);
//   STOPPING=1  at on_stopping() (systemd);
//   WATCHDOG=1  every WATCHDOG_USEC/2 from init() on (systemd), when
//               WATCHDOG_PID is unset or names this process. With
//               KeepaliveGate::health it is withheld while health is
//               `failed`, and sent at once when health leaves `failed`.
// Which gate is right: `none` (the default) makes the keepalive a proof that
// the reactor still turns, so systemd restarts a frozen daemon and nothing
// else; `health` also lets systemd restart the whole daemon when a critical
// part has failed for longer than WatchdogSec=, which bounces the healthy
// parts with it. Use `health` when a restart of everything is the repair.
//
// A message a path drops (a full or absent receiver) is counted and sent
// again from a retry timer (100 ms doubling to 5 s, at most
// upward_max_retries times; the latest STATUS= text, not the stale one). A
// keepalive ping is not sent again: the next one is due soon anyway.
//
// Reactor thread only, like the reactor itself. Nothing allocates; init()
// is the only call that can fail. Destroy (or close()) it before its
// reactor: its timers sit on the reactor's wheel.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/table.hpp>

#include "core/time.hpp"
#include "io/reactor.hpp"
#include "ports/s6/notify.hpp"
#include "ports/systemd/notify.hpp"

namespace custos::ports {

// The environment systemd passes (nullptr: unset), and this process's pid.
struct upward_env {
    const char* notify_socket = nullptr;
    const char* watchdog_usec = nullptr;
    const char* watchdog_pid = nullptr;
    pid_t self = 0;

    // NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from getenv(), getpid().
    static upward_env from_process() noexcept;
};

struct upward_stats {
    std::uint64_t sent = 0;      // messages delivered, every path and kind
    std::uint64_t dropped = 0;   // not delivered (each attempt): full or absent receiver
    std::uint64_t withheld = 0;  // keepalive pings held back by the health gate
    std::uint64_t pings = 0;     // WATCHDOG=1 delivered
    std::uint64_t abandoned = 0; // messages given up after upward_max_retries
    int last_errno = 0;          // of the last drop, 0 when none
};

// What init() found wrong in the environment and ignored, at most this many.
inline constexpr std::size_t upward_notice_capacity = 4;
// Times a dropped READY=1, STOPPING=1 or STATUS= is sent again.
inline constexpr unsigned upward_max_retries = 10;

class upward_notifier {
public:
    upward_notifier() noexcept;
    ~upward_notifier();
    upward_notifier(const upward_notifier&) = delete;
    upward_notifier& operator=(const upward_notifier&) = delete;

    // Reads the environment (upward_env::from_process()) and opens what it
    // and `cfg` configure: systemd's socket when NOTIFY_SOCKET is set, the
    // s6 fd when cfg.notify_fd >= 0; arms the keepalive when WATCHDOG_USEC
    // asks for one. Errors, each with the operator's resolution:
    //   InvalidArgument          cfg.notify_fd is a standard stream, not
    //                            open, or read-only;
    //   NotifySocketUnavailable  the socket for NOTIFY_SOCKET could not be
    //                            created (EMFILE...).
    // What is wrong in the environment does not fail init: an unsupported
    // NOTIFY_SOCKET (vsock, relative path, too long) or a malformed
    // WATCHDOG_USEC/WATCHDOG_PID is ignored and kept in notices(), for the
    // runtime to log. Unset NOTIFY_SOCKET: nothing to do.
    Result<void> init(io::reactor& r, const RuntimeConfig& cfg) noexcept;
    // The same with the environment given (tests).
    Result<void> init(io::reactor& r, const RuntimeConfig& cfg, const upward_env& env) noexcept;

    // Every change of health (the runtime's health hook).
    void on_health(const HealthStatus& h) noexcept;
    // The stop has begun: STOPPING=1, once.
    void on_stopping() noexcept;
    // Cancels the timers and closes both paths (idempotent).
    void close() noexcept;
    // After a failed init of the runtime: the s6 descriptor goes back to
    // the caller unclosed (the runtime takes it over only when init
    // succeeds). The rest closes with the notifier.
    void disown_notify_fd() noexcept;

    // Some path is open.
    bool active() const noexcept { return systemd_.active() || s6_.active(); }
    bool ready_sent() const noexcept { return ready_done_; }
    // 0 when no keepalive is sent.
    nanos keepalive_interval() const noexcept { return interval_; }
    upward_stats stats() const noexcept;
    std::span<const Error> notices() const noexcept { return {notices_, notice_count_}; }
    // One line for the status, like snprintf (NUL-terminated when len > 0,
    // truncated; returns the length the whole line needs):
    // "systemd: /run/systemd/notify, watchdog 30 s every 15 s, gate health;
    // s6: fd 5 (ready sent)", or "none".
    std::size_t describe(char* buf, std::size_t len) const noexcept;

    const systemd_notify& systemd() const noexcept { return systemd_; }
    const s6_notify& s6() const noexcept { return s6_; }

private:
    enum message : std::uint8_t { msg_ready = 1, msg_stopping = 2, msg_status = 4 };
    static constexpr std::size_t path_count = 2;

    void note(const Error& e) noexcept;
    void deliver(std::uint8_t msg) noexcept;
    void send(std::size_t path, std::uint8_t msg) noexcept;
    void ping() noexcept;
    void arm_keepalive(mono_time from) noexcept;
    static void on_keepalive(io::timer& t) noexcept;
    static void on_retry(io::timer& t) noexcept;

    io::reactor* reactor_ = nullptr;
    systemd_notify systemd_;
    s6_notify s6_;
    notify_path* paths_[path_count] = {};
    std::uint8_t pending_[path_count] = {}; // message bits dropped, to send again

    watchdog_request watchdog_;
    nanos interval_{0};
    KeepaliveGate gate_ = KeepaliveGate::none;
    bool failed_ = false;
    bool ready_done_ = false;
    bool stopping_done_ = false;
    // The last summary sent (or being sent again); empty: none yet, and an
    // empty summary is not sent.
    FixedText<health_summary_capacity> summary_;

    io::timer keepalive_;
    io::timer retry_;
    bool retry_armed_ = false;
    unsigned retries_ = 0;
    std::uint64_t pings_ = 0;
    std::uint64_t withheld_ = 0;
    std::uint64_t abandoned_ = 0;

    Error notices_[upward_notice_capacity];
    std::size_t notice_count_ = 0;
};

} // namespace custos::ports
