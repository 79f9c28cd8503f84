// The watchdog port: the narrow interface every watchdog implements
// (ports/linux: /dev/watchdogN; ports/gpio: an external chip on a GPIO
// line; ports/null: nothing), and what the feeder (feeder.hpp) drives.
//
// Units are whole seconds, as the kernel's ioctls have them. A capability
// the device lacks fails with Reason::watchdog_unsupported (errno
// EOPNOTSUPP): callers treat it as absent, not as a failure. Every call is
// a system call or two at most, never blocks for long, never allocates.
// Reactor thread only.
#pragma once

#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

namespace custos::ports {

// WDIOF_* bits (<linux/watchdog.h>), kept here so that callers and the
// null and GPIO ports need not include the kernel header.
inline constexpr std::uint32_t wdiof_cardreset = 0x0020;
inline constexpr std::uint32_t wdiof_settimeout = 0x0080;
inline constexpr std::uint32_t wdiof_magicclose = 0x0100;
inline constexpr std::uint32_t wdiof_pretimeout = 0x0200;
inline constexpr std::uint32_t wdiof_keepaliveping = 0x8000;

// WDIOC_GETSUPPORT's answer.
struct watchdog_info {
    std::uint32_t options = 0; // WDIOF_* capability bits
    std::uint32_t firmware_version = 0;
    char identity[33] = {}; // NUL-terminated ("i6300ESB timer")
};

// How close() left the device.
enum class close_outcome : std::uint8_t {
    disarmed,   // stopped: the magic 'V' (or a driver without magic close)
    left_armed, // still running: no 'V' asked, or nowayout; resets unless reopened
};

class watchdog_port {
public:
    // Opens the device, which arms it (a kernel watchdog starts at open).
    // Errors: watchdog_unavailable (ENOENT, EACCES...), watchdog_busy
    // (EBUSY: another process has it open), gpio_unavailable (GPIO port).
    virtual Result<void> open() noexcept = 0;
    virtual bool is_open() const noexcept = 0;
    // WDIOC_GETSUPPORT.
    virtual Result<watchdog_info> info() noexcept = 0;
    // WDIOC_SETTIMEOUT: asks for `seconds` and returns the timeout in force
    // as the driver reads it back (it may differ). InvalidArgument with
    // EINVAL when the driver refuses the value; watchdog_unsupported
    // without WDIOF_SETTIMEOUT. The kernel pings as part of it.
    virtual Result<std::uint32_t> set_timeout(std::uint32_t seconds) noexcept = 0;
    // WDIOC_GETTIMEOUT; watchdog_unsupported when the driver does not know.
    virtual Result<std::uint32_t> timeout() noexcept = 0;
    // The largest timeout the driver accepts (sysfs max_timeout where the
    // kernel has it); watchdog_unsupported when unknown.
    virtual Result<std::uint32_t> max_timeout() noexcept = 0;
    // WDIOC_SETPRETIMEOUT (seconds before the timeout; 0 disables), returns
    // the one in force; watchdog_unsupported without pretimeout support.
    virtual Result<std::uint32_t> set_pretimeout(std::uint32_t seconds) noexcept = 0;
    // WDIOC_GETBOOTSTATUS: WDIOF_* bits (CARDRESET: the last reset was the
    // watchdog's). 0 also means "unknown": many drivers never set it.
    virtual Result<std::uint32_t> boot_status() noexcept = 0;
    // Whether the device can never be stopped (sysfs nowayout, or a
    // driver that forces it); watchdog_unsupported when it cannot tell.
    virtual Result<bool> nowayout() noexcept = 0;
    // One keepalive (WDIOC_KEEPALIVE, falling back to a one-byte write;
    // GPIO: toggle the line). watchdog_lost with ENODEV when the device is
    // gone; watchdog_feed_failed otherwise.
    virtual Result<void> keepalive() noexcept = 0;
    // The boot is good (health first settled and not failed): the GPIO
    // port drives its enable line now. Others: nothing.
    virtual void boot_good() noexcept {}
    // Closes the device; with `magic`, the magic 'V' is the last write
    // before the close (GPIO: the enable line released, the feed line
    // let float). Idempotent. Says whether the watchdog still runs.
    virtual close_outcome close(bool magic) noexcept = 0;
    // The device node or chip ("/dev/watchdog0", "/dev/gpiochip0:17").
    virtual std::string_view path() const noexcept = 0;

protected:
    ~watchdog_port() = default;
};

// A status LED's states: lit, dark, or blinking (the kernel's timer
// trigger). The sysfs LED writes only when the wanted state changes; a
// missing LED is ignored after one failed write (counted).
enum class led_state : std::uint8_t { dark, lit, blinking };

} // namespace custos::ports

namespace custos::ports {

// A status LED (ports/linux/led.hpp over sysfs; tests fake it).
class led_port {
public:
    virtual void set(led_state s) noexcept = 0;

protected:
    ~led_port() = default;
};

} // namespace custos::ports
