// The null watchdog: a watchdog_port with no hardware behind it, for tests
// and for hosts without a watchdog (WatchdogDevice::null). Everything the
// feeder asks succeeds and is counted; nothing resets anything.
//
// It claims SETTIMEOUT, MAGICCLOSE and KEEPALIVEPING, accepts timeouts of
// 1..65535 s (softdog's range) and has no pretimeout, no max_timeout and
// never nowayout. close(magic) reports what a real magic-close driver
// would: disarmed with the 'V', left armed without it.
#pragma once

#include <cstdint>
#include <string_view>

#include "ports/watchdog.hpp"

namespace custos::ports {

class null_watchdog final : public watchdog_port {
public:
    Result<void> open() noexcept override;
    bool is_open() const noexcept override { return open_; }
    Result<watchdog_info> info() noexcept override;
    // 1..65535 is accepted and returned; anything else is invalid_argument
    // (EINVAL), as a driver would refuse it.
    Result<std::uint32_t> set_timeout(std::uint32_t seconds) noexcept override;
    // The last accepted timeout (60 s before any).
    Result<std::uint32_t> timeout() noexcept override;
    // watchdog_unsupported: a null watchdog has no maximum to report.
    Result<std::uint32_t> max_timeout() noexcept override;
    // watchdog_unsupported.
    Result<std::uint32_t> set_pretimeout(std::uint32_t seconds) noexcept override;
    // 0 unless a test set it.
    Result<std::uint32_t> boot_status() noexcept override;
    // false.
    Result<bool> nowayout() noexcept override;
    // Counts; watchdog_feed_failed (EBADF) when not open.
    Result<void> keepalive() noexcept override;
    close_outcome close(bool magic) noexcept override;
    std::string_view path() const noexcept override { return "null"; }

    // Tests: what boot_status() reports.
    void set_boot_status(std::uint32_t bits) noexcept { boot_status_ = bits; }
    std::uint64_t keepalives() const noexcept { return keepalives_; }
    // Whether the last close() carried the magic 'V'.
    bool closed_with_magic() const noexcept { return closed_with_magic_; }

private:
    bool open_ = false;
    bool closed_with_magic_ = false;
    close_outcome last_ = close_outcome::disarmed;
    std::uint32_t timeout_s_ = 60;
    std::uint32_t boot_status_ = 0;
    std::uint64_t keepalives_ = 0;
};

} // namespace custos::ports
