// The feeder: the feed gate of watchdog.hpp, over a watchdog port, paced by
// one timer on the reactor's wheel (no thread).
//
// Pure logic apart from its port, its LED and the state file: the clock,
// the timers and the events go through `feeder_host` (the runtime
// implements it over the reactor and the event stream; tests over a fake
// clock and a fake port).
//
// Life:
//   init()   chooses nothing (the caller passes the board profile and the
//            port); opens the port, reads its capabilities and boot status,
//            sets the timeout (clamped: see below) and the pretimeout,
//            reads the state file, classifies the previous boot and writes
//            the `running` record. Events are kept until start() (the
//            runtime's hooks are set between init and start).
//   start()  emits what init found (WatchdogOpened, a clamped timeout,
//            the previous boot, safe mode), feeds once and arms the feed
//            timer. `boot_grace_end`: until then the gate is open whatever
//            the health.
//   on_health() every change of health: shuts the gate when health is
//            `failed` after the boot grace (writes the `starving` record
//            first, then stops feeding: event WatchdogStarving), opens it
//            when health leaves `failed` (feeds at once, writes `running`
//            again: WatchdogFedAgain). The first health that is settled
//            and not failed calls port.boot_good().
//   hold() / release(): the maintenance hold (WatchdogHoldStarted /
//            WatchdogHoldEnded, also when it expires by itself).
//   stop()   at the runtime's stop: orderly writes the `orderly` record and
//            closes with the magic 'V' when magic_close allows;
//            WatchdogDisarmed or WatchdogLeftArmed (nowayout, or magic
//            close off) says which. Not orderly (a wedge exit): no record,
//            no 'V'.
//
// Timeout: requested = cfg.timeout, else the profile's default, clamped to
// the profile's max_timeout_s (reported). set_timeout() is asked for it; the
// value read back is the effective timeout. A refusal (EINVAL) retries with
// the port's max_timeout() when known, else halves the request until the
// driver accepts (at least 1 s); a driver without SETTIMEOUT keeps its own
// (timeout(), else the profile's default, and then feeds every second,
// since the real one is unknown). Every difference between requested and
// effective is `clamped`, with a notice, and WatchdogTimeoutClamped at
// start. Feed interval: min(effective / 2, cfg.interval when set), at
// least 100 ms.
//
// Failures: open/setup errors fail init() when cfg.required, else the
// feeder runs `off`, keeps the error in the status notice and reports it
// at start. A keepalive that fails with ENODEV: state `lost`
// (WatchdogLost), feeding stops. Other keepalive errors: counted,
// WatchdogFeedFailed (once per run of failures), feeding goes on. A state
// file that cannot be written: counted, ResetRecordUnwritable (each time),
// feeding is not affected.
//
// LED (optional): lit while feeding with health ok, blinking while booting,
// held or degraded, dark while starving, lost or closed.
//
// Reactor thread only; no allocation; init() is the only call that can fail.
#pragma once

#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/watchdog.hpp>

#include "core/time.hpp"
#include "io/reactor.hpp"
#include "ports/boards/boards.hpp"
#include "ports/reset_record.hpp"
#include "ports/watchdog.hpp"

namespace custos::ports {

class feeder_host {
public:
    virtual mono_time now() noexcept = 0;
    virtual std::int64_t wall_ns() noexcept = 0; // CLOCK_REALTIME
    virtual void arm(io::timer& t, mono_time deadline) noexcept = 0;
    virtual void cancel(io::timer& t) noexcept = 0;
    // Every event (to the event stream and the watchdog hook).
    virtual void report(const WatchdogTransition& t) noexcept = 0;

protected:
    ~feeder_host() = default;
};

// Events init() keeps for start().
inline constexpr std::size_t feeder_pending_capacity = 6;
// The shortest feed interval.
inline constexpr nanos feeder_min_interval = std::chrono::milliseconds(100);

class feeder {
public:
    feeder() noexcept;
    feeder(const feeder&) = delete;
    feeder& operator=(const feeder&) = delete;

    // `port`, `led` (may be null) and the strings of `cfg` and `board` must
    // outlive the feeder. `boot_id`: this boot's (read_boot_id()).
    Result<void> init(feeder_host& host, watchdog_port& port, led_port* led,
                      const WatchdogConfig& cfg, const board_profile& board,
                      std::string_view boot_id) noexcept;
    void start(mono_time boot_grace_end) noexcept;
    void on_health(const HealthStatus& h) noexcept;
    // InvalidArgument when `for_` is not in (0, max_hold];
    // watchdog_unavailable when no watchdog is open. A hold while one
    // runs replaces it (one WatchdogHoldStarted with the new end).
    Result<void> hold(nanos for_, std::string_view by) noexcept;
    // InvalidArgument when no hold runs.
    Result<void> release(std::string_view by) noexcept;
    void stop(bool orderly) noexcept;
    // Cancels the timers (idempotent); the port is left as it is.
    void close() noexcept;

    // This boot starts only the critical set (known after init()).
    bool safe_mode() const noexcept { return status_.safe_mode; }
    const WatchdogStatus& status() const noexcept { return status_; }

private:
    static void on_feed(io::timer& t) noexcept;
    static void on_hold_end(io::timer& t) noexcept;
    static void on_grace_end(io::timer& t) noexcept;
    void feed() noexcept;
    bool gate() const noexcept;
    bool active() const noexcept; // opened, not closed, not lost
    // Moves to the state the gate calls for now (hold, grace, health),
    // with its record, its feed and its event.
    WatchdogState desired() const noexcept;
    void settle(Reason why, std::string_view message) noexcept;
    void end_hold(std::string_view how) noexcept;
    void maybe_boot_good() noexcept;
    void set_state(WatchdogState to, Reason why, int err, std::string_view message) noexcept;
    void report(WatchdogState from, WatchdogState to, Reason why, int err, std::string_view message,
                std::string_view resolution = {}) noexcept;
    void write(record_state s, Reason why, std::string_view subject,
               std::string_view message) noexcept;
    void update_led() noexcept;
    std::int64_t reset_in_s() const noexcept;

    feeder_host* host_ = nullptr;
    watchdog_port* port_ = nullptr;
    led_port* led_ = nullptr;
    const WatchdogConfig* cfg_ = nullptr;
    const board_profile* board_ = nullptr;
    WatchdogStatus status_;
    reset_record record_;
    bool have_record_ = false; // a state file is kept
    char state_path_[1024] = {};
    mono_time grace_end_{};
    nanos interval_{0};
    Health health_ = Health::starting;
    bool settled_ = false;
    bool failed_ = false;
    bool boot_good_ = false;
    bool started_ = false;
    bool opened_ = false;       // the port was opened by init()
    bool magic_ok_ = false;     // an orderly stop writes 'V'
    bool feed_failing_ = false; // in a run of failed keepalives
    bool led_set_ = false;
    led_state led_last_ = led_state::dark;
    // What failed, for the starving record (the first reason that fails).
    Reason fail_reason_ = Reason::unknown;
    FixedText<watchdog_text_capacity> fail_subject_;
    FixedText<watchdog_text_capacity> fail_message_;
    FixedText<watchdog_text_capacity> fail_what_; // "service uploader failed (X)"
    io::timer feed_timer_;
    io::timer hold_timer_;
    io::timer grace_timer_;

    // Kept by init() for start().
    struct pending {
        WatchdogState state = WatchdogState::off;
        Reason reason = Reason::unknown;
        int sys_errno = 0;
        FixedText<255> message;
        std::string_view resolution; // static text, or empty: the reason's
    };
    void keep(WatchdogState state, Reason why, int err, std::string_view message,
              std::string_view resolution = {}) noexcept;
    pending pending_[feeder_pending_capacity];
    std::uint32_t pending_count_ = 0;
};

} // namespace custos::ports
