// A status LED through sysfs (/sys/class/leds/<name>/; reference/
// PLATFORM.md §3): lit (brightness = max_brightness, read once), dark
// (brightness 0, which also clears any trigger) or blinking (the kernel's
// "timer" trigger, 500 ms on, 500 ms off: no thread, no timer of ours).
//
// It writes only when the state asked for differs from the last one set.
// An LED is a courtesy to whoever stands by the board, never a reason to
// fail: the first write that fails (the LED missing, no permission, no
// timer trigger) is counted and the LED is left alone from then on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ports/watchdog.hpp"

namespace custos::ports {

class sysfs_led final : public led_port {
public:
    static constexpr std::size_t path_capacity = 191;

    // The LED's directory name under `root` ("ACT"); empty: no LED, set()
    // does nothing. Copied; a name and root longer than path_capacity
    // together count as one failure at the first set().
    void configure(std::string_view name, const char* root = "/sys/class/leds") noexcept;
    void set(led_state s) noexcept override;

    // Writes that failed (0 or 1: the LED is given up after the first).
    std::uint32_t failures() const noexcept { return failures_; }
    // Writes done (each attribute file written counts one).
    std::uint32_t writes() const noexcept { return writes_; }

private:
    bool write_attr(const char* attr, const char* text) noexcept;
    bool read_max() noexcept;

    char dir_[path_capacity + 1] = {};
    bool configured_ = false;
    bool given_up_ = false;
    bool have_state_ = false;
    led_state state_ = led_state::dark;
    std::uint32_t max_brightness_ = 0; // 0: not read yet
    std::uint32_t failures_ = 0;
    std::uint32_t writes_ = 0;
};

} // namespace custos::ports
