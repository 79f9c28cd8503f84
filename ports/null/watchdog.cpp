#include "ports/null/watchdog.hpp"

#include <cerrno>

namespace custos::ports {

Result<void> null_watchdog::open() noexcept {
    open_ = true;
    closed_with_magic_ = false;
    return {};
}

Result<watchdog_info> null_watchdog::info() noexcept {
    watchdog_info wi;
    wi.options = wdiof_settimeout | wdiof_magicclose | wdiof_keepaliveping;
    constexpr std::string_view id = "null";
    for (std::size_t i = 0; i < id.size(); ++i) {
        wi.identity[i] = id[i];
    }
    return wi;
}

Result<std::uint32_t> null_watchdog::set_timeout(std::uint32_t seconds) noexcept {
    if (seconds < 1 || seconds > 65535) {
        return fail(Error(Reason::invalid_argument, EINVAL, "null watchdog timeout")
                        .with_resolution("ask for a timeout of 1 to 65535 seconds"));
    }
    timeout_s_ = seconds;
    return seconds;
}

Result<std::uint32_t> null_watchdog::timeout() noexcept {
    return timeout_s_;
}

Result<std::uint32_t> null_watchdog::max_timeout() noexcept {
    return fail(Reason::watchdog_unsupported, EOPNOTSUPP, "null");
}

Result<std::uint32_t> null_watchdog::set_pretimeout(std::uint32_t) noexcept {
    return fail(Reason::watchdog_unsupported, EOPNOTSUPP, "null");
}

Result<std::uint32_t> null_watchdog::boot_status() noexcept {
    return boot_status_;
}

Result<bool> null_watchdog::nowayout() noexcept {
    return false;
}

Result<void> null_watchdog::keepalive() noexcept {
    if (!open_) {
        return fail(Reason::watchdog_feed_failed, EBADF, "null");
    }
    ++keepalives_;
    return {};
}

close_outcome null_watchdog::close(bool magic) noexcept {
    if (!open_) {
        // Idempotent: a second close reports what the first did (never
        // opened: nothing runs).
        return last_;
    }
    open_ = false;
    closed_with_magic_ = magic;
    last_ = magic ? close_outcome::disarmed : close_outcome::left_armed;
    return last_;
}

} // namespace custos::ports
