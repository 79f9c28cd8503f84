// Board profiles: what custos needs to know about a board's watchdog, as
// data (boards.cpp holds the table; adding a board is adding an entry).
//
// A profile is chosen by name (WatchdogConfig::board, else the build's
// default, meson option `board`), or detected with "auto": the first
// profile one of whose `compatible` prefixes begins some string of
// /proc/device-tree/compatible (a NUL-separated list, most specific
// first), else "generic".
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace custos::ports {

struct board_profile {
    std::string_view name;        // "raspberrypi"
    std::string_view description; // "Raspberry Pi (bcm2835_wdt)"
    // Device-tree compatible prefixes that select it ("raspberrypi,",
    // "brcm,bcm2835"); up to four, empty ones unused.
    std::string_view compatible[4];
    std::string_view driver; // the kernel driver ("bcm2835_wdt"); "" any
    std::string_view device; // "/dev/watchdog0"
    // The largest timeout custos asks for on this board (a request above
    // it is clamped, and said so); 0: whatever the driver accepts.
    std::uint32_t max_timeout_s = 0;
    std::uint32_t default_timeout_s = 30;
    // Whether an orderly stop may disarm it (MagicClose::profile).
    bool magic_close = true;
    // Pretimeout asked for by default (0: none).
    std::uint32_t pretimeout_s = 0;
    // An external watchdog on GPIO lines (WatchdogDevice::gpio): the chip,
    // the feed line and an enable line (-1: none).
    std::string_view gpio_chip;
    std::int32_t gpio_line = -1;
    std::int32_t gpio_enable_line = -1;
    // A status LED under /sys/class/leds ("" none).
    std::string_view led;
};

// Every profile, "generic" first.
std::span<const board_profile> boards() noexcept;
// The profile of that name, or nullptr.
const board_profile* find_board(std::string_view name) noexcept;
// The build's default board name (meson option `board`: "auto" unless set).
std::string_view default_board() noexcept;
// The profile /proc/device-tree/compatible (or the file at `compatible`,
// for tests) selects; "generic" when none does or the file is missing.
const board_profile& detect_board(const char* compatible = "/proc/device-tree/compatible") noexcept;
// Resolves WatchdogConfig::board: "" takes default_board(), "auto" detects;
// nullptr for an unknown name.
const board_profile* choose_board(std::string_view name,
                                  const char* compatible = "/proc/device-tree/compatible") noexcept;

} // namespace custos::ports
