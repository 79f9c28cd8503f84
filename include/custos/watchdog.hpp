// The hardware watchdog: fed only while the appliance is healthy, with the
// reason for every reset kept across it.
//
// The feed gate. custos opens the board's watchdog at Runtime::init() (the
// open arms it), and from start() feeds it from a timer on the reactor's
// wheel (never a thread) at most every
//     min(effective timeout / 2, interval)
// while the gate is open:
//     open  while the boot grace lasts (RuntimeConfig::boot_grace from
//           start()), whatever the health;
//     open  after it while health is not `failed` (no critical service
//           failed, no critical monitor wedged, no critical probe down
//           beyond its grace: health.hpp);
//     open  while an operator's maintenance hold lasts (hold(): bounded by
//           max_hold, ends by itself);
//     shut  otherwise: feeding stops and the board resets one timeout
//           after the last feed, unless health recovers first (feeding
//           then resumes at once).
// The effective timeout is what the driver reads back, not what was asked:
// a request beyond the board profile's maximum, or one the driver refuses,
// is clamped to what it accepts and reported loudly (an event at init and
// `clamped` in the status), never run silently unwatched.
//
// Reset reasons across the reset. With a state_file, custos writes a small
// record whenever its state changes (never per feed; a temporary file,
// fsynced and renamed into place, so it never tears): `running` at start,
// `starving` with what failed just before the gate shuts, `orderly` at an
// orderly stop. At init it classifies how the previous boot ended
// (ResetClass), emits that as an event, shows it in the status, and keeps
// counters across boots in the same file.
//
// Closing. An orderly stop writes the magic 'V' before closing only when
// magic_close allows it; otherwise, or when the driver has nowayout set,
// the watchdog stays armed after custos exits and the board resets one
// timeout later unless something reopens it (said in the event). A custos
// that is killed (SIGKILL, a crash) never writes 'V': the board resets.
// That is the point.
#pragma once

#include <cstdint>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/error.hpp>
#include <custos/text.hpp>

namespace custos {

// Where the watchdog is.
enum class WatchdogDevice : std::uint8_t {
    none,   // no watchdog: nothing opened, nothing recorded (the default)
    kernel, // a /dev/watchdogN driver (the profile's device, or `path`)
    gpio,   // an external chip fed by toggling a GPIO line (gpio_*)
    null,   // no hardware: the gate, the records and the events as with a
            // real one, nothing fed (tests, hosts without a watchdog)
};

// Whether an orderly stop disarms the watchdog with the magic 'V'.
enum class MagicClose : std::uint8_t {
    profile, // as the board profile says
    yes,     // disarm at an orderly stop (when the driver allows: nowayout wins)
    no,      // never disarm: the board resets after custos stops
};

struct WatchdogConfig {
    WatchdogDevice device = WatchdogDevice::none;
    // The board profile ("generic", "raspberrypi", "imx", "sunxi",
    // "qemu-virt"...): empty takes the build's default (meson option
    // `board`, "auto" unless set), and "auto" detects it from
    // /proc/device-tree/compatible, falling back to "generic".
    std::string_view board;
    // The device node ("/dev/watchdog1"); empty: the profile's.
    std::string_view path;
    // Timeout asked of the driver; 0: the profile's default.
    Duration timeout{0};
    // Longest time between feeds; 0: effective timeout / 2. Feeds are at
    // most every min(effective timeout / 2, interval).
    Duration interval{0};
    // Pretimeout (time before the reset when the driver's pretimeout
    // governor acts, e.g. a panic that leaves a pstore dump); 0: the
    // profile's, which is off unless the profile says otherwise. Where the
    // driver has none: reported, not failed.
    Duration pretimeout{0};
    MagicClose magic_close = MagicClose::profile;
    // Fail init() when the watchdog cannot be opened or set up (true), or
    // run on and report it in the status and as an event (false).
    bool required = true;
    // Longest maintenance hold hold() accepts.
    Duration max_hold = std::chrono::minutes(60);
    // The reset record ("/var/lib/custos/watchdog.state"); empty: none
    // kept (no previous-boot class, no counters). Its directory must exist.
    std::string_view state_file;
    // Boot-loop safe mode: after this many watchdog-caused boots (starved
    // by custos or a watchdog reset of unknown cause) within
    // safe_mode_window, each later than the last orderly stop, start only
    // the critical services (and what they depend on) and the critical
    // monitors; the others stay stopped until started by hand. 0: off.
    // Needs a state_file.
    std::uint32_t safe_mode_boots = 0;
    Duration safe_mode_window = std::chrono::hours(1);
    // GPIO watchdog (device = gpio): the chip ("/dev/gpiochip0"), the line
    // toggled at each feed, and an optional enable line (-1: none) driven
    // active only once the boot is good (health first settled and not
    // failed). Empty chip / -1 lines: the profile's.
    std::string_view gpio_chip;
    std::int32_t gpio_line = -1;
    std::int32_t gpio_enable_line = -1;
    bool gpio_active_low = false;
    // A status LED under /sys/class/leds ("ACT"); empty: the profile's
    // (none for most). Lit while fed and healthy, blinking while held or
    // degraded, dark while starving.
    std::string_view led;
};

// The watchdog's state, as events and the status give it.
enum class WatchdogState : std::uint8_t {
    off,      // no watchdog configured, or not opened (yet)
    booting,  // fed during the boot grace, whatever the health
    feeding,  // fed: health is not failed
    held,     // fed by an operator's maintenance hold, whatever the health
    starving, // not fed: health failed; the board resets unless it recovers
    closed,   // closed at the stop (disarmed, or left armed: see the event)
    lost,     // the device went away (ENODEV) or feeding fails: not fed
};

inline constexpr std::size_t watchdog_state_count = 7;

// Stable lower-case name ("starving").
std::string_view watchdog_state_name(WatchdogState s) noexcept;

// How the previous boot ended, from the record and the driver's boot status.
enum class ResetClass : std::uint8_t {
    unknown,    // no state_file, or this is the first boot it records
    orderly,    // custos stopped in order (a shutdown record)
    starved,    // custos shut the gate (the record says why)
    watchdog,   // a watchdog reset, cause unknown: WDIOF_CARDRESET, no record
    unreported, // power loss or an unreported reset: no record, no CARDRESET
                // (many drivers never set it: the two may be the same)
    restarted,  // custos ended without a record in this same boot (killed
                // or crashed, and restarted before any reset)
};

inline constexpr std::size_t reset_class_count = 6;

// Stable lower-case name ("starved").
std::string_view reset_class_name(ResetClass c) noexcept;

// Whether WatchdogConfig::board names a board profile custos has ("" and
// "auto" do: the build's default, or detection): what a config reader
// checks before init, which refuses an unknown one with BoardUnknown.
bool watchdog_board_known(std::string_view board) noexcept;

// Longest text a watchdog record keeps.
inline constexpr std::size_t watchdog_text_capacity = 127;

// The previous boot, as classified at init.
struct PreviousBoot {
    ResetClass cls = ResetClass::unknown;
    // From its record (starved: what failed): the reason, its subject
    // ("service uploader") and the health summary at the time.
    Reason reason = Reason::unknown;
    FixedText<watchdog_text_capacity> subject;
    FixedText<watchdog_text_capacity> message;
    std::int64_t wall_ns = 0;      // when the record was written (0: none)
    FixedText<36> boot_id;         // its boot id ("" when unknown)
    std::uint32_t boot_status = 0; // WDIOF_* bits the driver reported this boot

    friend bool operator==(const PreviousBoot&, const PreviousBoot&) = default;
};

// Kept across boots in the state file.
struct WatchdogCounters {
    std::uint64_t boots = 0; // boots recorded (this one included)
    std::uint64_t orderly = 0;
    std::uint64_t starved = 0;
    std::uint64_t watchdog = 0;
    std::uint64_t unreported = 0;
    std::uint64_t restarted = 0;

    friend bool operator==(const WatchdogCounters&, const WatchdogCounters&) = default;
};

struct WatchdogStatus {
    WatchdogDevice device = WatchdogDevice::none;
    WatchdogState state = WatchdogState::off;
    FixedText<31> board;            // the profile in use
    FixedText<63> path;             // the device node or GPIO chip
    FixedText<31> identity;         // WDIOC_GETSUPPORT's ("i6300ESB timer")
    std::uint32_t options = 0;      // WDIOF_* capability bits
    std::uint32_t requested_s = 0;  // timeout asked for
    std::uint32_t timeout_s = 0;    // effective, read back from the driver
    std::uint32_t pretimeout_s = 0; // effective; 0: none
    bool clamped = false;           // timeout_s differs from requested_s
    // Why, when clamped or unknown ("bcm2835_wdt: at most 15 s; asked 30 s").
    FixedText<watchdog_text_capacity> notice;
    std::int64_t interval_ns = 0; // between feeds
    bool gate_open = false;
    bool magic_close = false; // an orderly stop disarms it
    bool nowayout = false;    // the driver cannot be disarmed
    bool safe_mode = false;   // this boot started only the critical set
    std::uint64_t feeds = 0;
    std::uint64_t feed_errors = 0;
    std::int64_t first_feed_ns = 0; // CLOCK_MONOTONIC (0: none yet)
    std::int64_t last_feed_ns = 0;
    std::int64_t starving_since_ns = 0; // 0: not starving
    std::int64_t hold_until_ns = 0;     // 0: no hold
    FixedText<31> hold_by;              // who asked for the hold
    PreviousBoot previous;
    WatchdogCounters counters;
    std::uint32_t record_writes = 0;   // state-file writes this run
    std::uint32_t record_failures = 0; // writes that failed (reported each)

    friend bool operator==(const WatchdogStatus&, const WatchdogStatus&) = default;
};

// One event of the watchdog: a change of state (from != to) or a report
// (from == to: a clamped timeout, the previous boot, safe mode, a record
// write that failed).
struct WatchdogTransition {
    WatchdogState from = WatchdogState::off;
    WatchdogState to = WatchdogState::off;
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    // Valid only during the hook: what happened, and what to do about it.
    std::string_view message;
    std::string_view resolution;
    std::int64_t mono_ns = 0;
};

// Runs on the reactor thread for every watchdog event; must not block.
using WatchdogHook = void (*)(const WatchdogTransition& t, void* ctx);

} // namespace custos
