// An external watchdog chip (TPS3823, MAX6369... : reference/PLATFORM.md
// §2 and §3) fed by toggling a GPIO line through the GPIO character
// device (uAPI v2, Linux 5.10+), with an optional enable line.
//
// open() requests the feed line as an output driven 0 (logical: with
// active_low the pin is high), consumer "custos", and the enable line (if
// any) as an output driven inactive (0). Each keepalive() inverts the feed
// line (these chips are cleared by either edge on WDI). boot_good() drives
// the enable line active once: the chip watches only from then on. The
// request fds are kept for the port's lifetime: the kernel guarantees a
// line's value only while its request is open.
//
// The timeout of such a chip is fixed in hardware (pin-strapped or a
// capacitor): set_timeout, set_pretimeout and max_timeout are
// watchdog_unsupported, and timeout() reports the configured timeout_s
// (watchdog_unsupported when 0: nothing to feed against, say the chip's).
//
// Closing:
//  - close(true) drives the enable line inactive (that is what disables
//    the chip) and releases both lines: disarmed when there is an enable
//    line. Without one nothing can stop the chip: left_armed. (Releasing
//    the feed line lets it float: a floating WDI disables some chips, the
//    TPS3823 for one, and not others; custos never counts on it.)
//  - close(false) releases both lines without driving anything:
//    left_armed. The feed line stops toggling; with the pull-down on WDI
//    the datasheets advise, the chip resets the board one timeout later.
//    That is what a killed custos must lead to too: its requests go with
//    the process, exactly as here.
// After a release the kernel may return a line to its default state, so
// the enable line of a disarmed chip is only as inactive as the board's
// pull resistor keeps it.
//
// A line the kernel's gpio_wdt driver owns is EBUSY here: such a chip is a
// /dev/watchdogN (ports/linux) and should be used as one.
#pragma once

#include <cstdint>
#include <string_view>

#include "ports/watchdog.hpp"

namespace custos::ports {

struct gpio_setup {
    std::string_view chip; // "/dev/gpiochip0"
    std::int32_t line = -1;
    std::int32_t enable_line = -1; // -1: none (active high)
    bool active_low = false;       // of the feed line
    std::uint32_t timeout_s = 0;   // the chip's timeout, as wired
};

class gpio_watchdog final : public watchdog_port {
public:
    static constexpr std::size_t path_capacity = 95;

    // Copies the setup (a chip path longer than path_capacity makes open()
    // fail). Call it before open().
    void configure(const gpio_setup& setup) noexcept;

    // gpio_unavailable: the chip cannot be opened (ENOENT, EACCES), a line
    // is out of range (EINVAL) or held by another consumer (EBUSY: the
    // kernel's gpio_wdt, a device-tree gpio-hog, libgpiod's tools), no
    // feed line configured (EINVAL). Already open: nothing, ok.
    Result<void> open() noexcept override;
    bool is_open() const noexcept override { return feed_fd_ >= 0; }
    // identity "gpio watchdog", options KEEPALIVEPING.
    Result<watchdog_info> info() noexcept override;
    Result<std::uint32_t> set_timeout(std::uint32_t seconds) noexcept override;
    Result<std::uint32_t> timeout() noexcept override;
    Result<std::uint32_t> max_timeout() noexcept override;
    Result<std::uint32_t> set_pretimeout(std::uint32_t seconds) noexcept override;
    // 0: such chips report nothing.
    Result<std::uint32_t> boot_status() noexcept override;
    // watchdog_unsupported: whether the chip can be stopped depends on
    // its wiring (an enable line), not on anything the port can read.
    Result<bool> nowayout() noexcept override;
    // Inverts the feed line. watchdog_lost (ENODEV: the chip went away),
    // watchdog_feed_failed (others; EBADF when not open).
    Result<void> keepalive() noexcept override;
    // Drives the enable line active, once (nothing without one). A failure
    // is kept (enable_errno()), not reported: the chip then stays off.
    void boot_good() noexcept override;
    close_outcome close(bool magic) noexcept override;
    // "/dev/gpiochip0:17".
    std::string_view path() const noexcept override { return {path_, path_len_}; }

    // The feed line's current logical value (tests).
    bool level() const noexcept { return level_; }
    // Whether boot_good() drove the enable line, and why not if it failed.
    bool enabled() const noexcept { return enabled_; }
    int enable_errno() const noexcept { return enable_errno_; }

private:
    Result<int> request(std::int32_t line, bool active_low) noexcept;
    void release() noexcept;

    char chip_[path_capacity + 1] = {};
    char path_[path_capacity + 16] = {};
    std::size_t path_len_ = 0;
    bool too_long_ = false;
    std::int32_t line_ = -1;
    std::int32_t enable_line_ = -1;
    bool active_low_ = false;
    std::uint32_t timeout_s_ = 0;
    int feed_fd_ = -1;
    int enable_fd_ = -1;
    bool level_ = false;
    bool enabled_ = false;
    int enable_errno_ = 0;
    close_outcome last_ = close_outcome::disarmed;
};

} // namespace custos::ports
