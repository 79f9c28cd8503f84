// The watchdog's part of the table check (table/validate.hpp), and the
// stable names of watchdog.hpp.
#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "table/validate.hpp"

namespace custos {

std::string_view watchdog_state_name(WatchdogState s) noexcept {
    static constexpr std::string_view names[watchdog_state_count] = {
        "off", "booting", "feeding", "held", "starving", "closed", "lost",
    };
    const auto i = static_cast<std::size_t>(s);
    return i < watchdog_state_count ? names[i] : std::string_view("unknown");
}

std::string_view reset_class_name(ResetClass c) noexcept {
    static constexpr std::string_view names[reset_class_count] = {
        "unknown", "orderly", "starved", "watchdog", "unreported", "restarted",
    };
    const auto i = static_cast<std::size_t>(c);
    return i < reset_class_count ? names[i] : std::string_view("unknown");
}

std::string_view field_name(WatchdogField f) noexcept {
    static constexpr std::string_view names[watchdog_field_count] = {
        "section",    "device",          "board",
        "path",       "timeout",         "interval",
        "pretimeout", "magic_close",     "max_hold",
        "state_file", "safe_mode_boots", "safe_mode_window",
        "gpio_chip",  "gpio_line",       "gpio_enable_line",
        "led",
    };
    const auto i = static_cast<std::size_t>(f);
    return i < watchdog_field_count ? names[i] : std::string_view("unknown");
}

namespace tbl {
namespace {

bool absolute(std::string_view p) noexcept {
    return !p.empty() && p.front() == '/' && p.size() < PATH_MAX &&
           p.find('\0') == std::string_view::npos;
}

// The directory of `file` exists and is a directory.
int dir_errno(std::string_view file) noexcept {
    char dir[PATH_MAX];
    const std::size_t slash = file.rfind('/');
    const std::size_t n = slash == 0 ? 1 : slash;
    std::memcpy(dir, file.data(), n);
    dir[n] = '\0';
    struct stat st {};
    if (::stat(dir, &st) != 0) {
        return errno;
    }
    return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

} // namespace

void validate_watchdog(const Table& t, reporter& rep) noexcept {
    const WatchdogConfig& w = t.watchdog;
    if (w.device == WatchdogDevice::none) {
        return;
    }
    if (w.device > WatchdogDevice::null) {
        rep.watchdog(WatchdogField::device, Reason::invalid_argument, 0, "device",
                     "Set device to none, kernel, gpio or null");
        return;
    }
    auto duration = [&](Duration d, WatchdogField f, const char* what) {
        if (d.count() < 0) {
            rep.watchdog(f, Reason::invalid_argument, 0, what, "Durations cannot be negative");
            return false;
        }
        return true;
    };
    if (duration(w.timeout, WatchdogField::timeout, "timeout") && w.timeout.count() > 0 &&
        (w.timeout < std::chrono::seconds(1) ||
         w.timeout > std::chrono::seconds(UINT_MAX / 1000))) {
        rep.watchdog(WatchdogField::timeout, Reason::invalid_argument, 0, "timeout",
                     "Give the watchdog timeout in whole seconds, at least 1 s (0: the board's "
                     "default)");
    }
    if (duration(w.interval, WatchdogField::interval, "interval") && w.interval.count() > 0 &&
        w.interval < min_watchdog_interval) {
        rep.watchdog(WatchdogField::interval, Reason::invalid_argument, 0, "interval",
                     "Give the feed interval as 0 (half the timeout) or at least 100 ms");
    }
    if (duration(w.pretimeout, WatchdogField::pretimeout, "pretimeout") &&
        w.pretimeout.count() > 0 && w.timeout.count() > 0 && w.pretimeout >= w.timeout) {
        rep.watchdog(WatchdogField::pretimeout, Reason::invalid_argument, 0, "pretimeout",
                     "Make the pretimeout shorter than the timeout (it is the time before the "
                     "reset)");
    }
    if (w.magic_close > MagicClose::no) {
        rep.watchdog(WatchdogField::magic_close, Reason::invalid_argument, 0, "magic_close",
                     "Set magic_close to profile, yes or no");
    }
    if (duration(w.max_hold, WatchdogField::max_hold, "max_hold") &&
        (w.max_hold.count() == 0 || w.max_hold > max_watchdog_hold)) {
        rep.watchdog(WatchdogField::max_hold, Reason::invalid_argument, 0, "max_hold",
                     "Give max_hold between 1 s and 24 h: a hold must end by itself");
    }
    if (!w.path.empty() && !absolute(w.path)) {
        rep.watchdog(WatchdogField::path, Reason::invalid_argument, 0, w.path,
                     "Give the watchdog device as an absolute path (/dev/watchdog0)");
    }
    if (!w.state_file.empty()) {
        if (!absolute(w.state_file) || w.state_file.back() == '/') {
            rep.watchdog(WatchdogField::state_file, Reason::invalid_argument, 0, w.state_file,
                         "Give state_file as an absolute file path (/var/lib/custos/"
                         "watchdog.state) on storage that survives a reset");
        } else if (const int e = dir_errno(w.state_file); e != 0) {
            rep.watchdog(WatchdogField::state_file, Reason::reset_record_unwritable, e,
                         w.state_file,
                         "Create the state file's directory (on storage that survives a "
                         "reset) before custos starts");
        }
    }
    if (w.safe_mode_boots > 0 && w.state_file.empty()) {
        rep.watchdog(WatchdogField::safe_mode_boots, Reason::invalid_argument, 0, "safe_mode_boots",
                     "Set a state_file: safe mode counts the resets recorded there");
    }
    if (duration(w.safe_mode_window, WatchdogField::safe_mode_window, "safe_mode_window") &&
        w.safe_mode_boots > 0 && w.safe_mode_window.count() == 0) {
        rep.watchdog(WatchdogField::safe_mode_window, Reason::invalid_argument, 0,
                     "safe_mode_window", "Give safe_mode_window a length (1h by default)");
    }
    if (w.device == WatchdogDevice::gpio) {
        if (!w.gpio_chip.empty() && !absolute(w.gpio_chip)) {
            rep.watchdog(WatchdogField::gpio_chip, Reason::invalid_argument, 0, w.gpio_chip,
                         "Give the GPIO chip as an absolute path (/dev/gpiochip0)");
        }
        if (w.gpio_line < -1 || w.gpio_line > 511) {
            rep.watchdog(WatchdogField::gpio_line, Reason::invalid_argument, 0, "gpio_line",
                         "Give the feed line's offset on its chip (0-511; gpioinfo lists them)");
        }
        if (w.gpio_enable_line < -1 || w.gpio_enable_line > 511 ||
            (w.gpio_enable_line >= 0 && w.gpio_enable_line == w.gpio_line)) {
            rep.watchdog(WatchdogField::gpio_enable_line, Reason::invalid_argument, 0,
                         "gpio_enable_line",
                         "Give the enable line's offset (0-511, not the feed line), or -1 for "
                         "none");
        }
    }
    if (!w.led.empty() &&
        (w.led.find('/') != std::string_view::npos || w.led == "." || w.led == "..")) {
        rep.watchdog(WatchdogField::led, Reason::invalid_argument, 0, w.led,
                     "Name the LED as it appears under /sys/class/leds (ACT, led0)");
    }
}

} // namespace tbl
} // namespace custos
