// The kernel watchdog port: /dev/watchdogN through the watchdog ioctls
// (reference/PLATFORM.md §1), with sysfs for what the ioctls do not tell
// (max_timeout, nowayout).
//
// States: configured (a path, nothing open) -> open (fd held: the
// watchdog runs and must be fed) -> closed (idempotent; configured again).
// The device is found in sysfs from the open fd (fstat st_rdev):
// <sysfs>/dev/char/MAJ:MIN is the watchdog class directory of
// /dev/watchdogN; the legacy misc node /dev/watchdog (10:130) is
// watchdog0's, so it maps to <sysfs>/class/watchdog/watchdog0.
//
// Closing: the magic 'V' is the last write before close() (the kernel
// clears "allow release" at every write and sets it again only for a write
// holding a 'V'). The kernel stops the watchdog at close when the last
// write held one or the driver lacks WDIOF_MAGICCLOSE, unless nowayout is
// set. Some drivers (imx2_wdt, rti_wdt) have no stop: the kernel keeps
// feeding them after such a close, which disarms them without stopping
// them. A process that dies closes without the 'V': the board resets.
#pragma once

#include <cstdint>
#include <string_view>

#include "ports/watchdog.hpp"

namespace custos::ports {

class linux_watchdog final : public watchdog_port {
public:
    static constexpr std::size_t path_capacity = 127;

    // The device node ("/dev/watchdog0") and the sysfs mount ("/sys"; tests
    // pass a directory laid out like it). Both are copied (a longer one
    // makes open() fail with invalid_argument). Closes nothing: call it
    // before open().
    void configure(std::string_view path, std::string_view sysfs_root = "/sys") noexcept;

    // open(O_WRONLY): watchdog_busy (EBUSY: another process, systemd's
    // RuntimeWatchdogSec, procd, a busybox watchdog holds it);
    // watchdog_unavailable (ENOENT: no such node, the driver not loaded;
    // EACCES: not root; others), invalid_argument (a path too long).
    // Already open: nothing, ok.
    Result<void> open() noexcept override;
    bool is_open() const noexcept override { return fd_ >= 0; }
    // WDIOC_GETSUPPORT. Errors: watchdog_unavailable (not open: EBADF; not
    // a watchdog: ENOTTY), watchdog_lost (ENODEV).
    Result<watchdog_info> info() noexcept override;
    // WDIOC_SETTIMEOUT, returning the value the driver wrote back.
    // invalid_argument (EINVAL: out of the driver's range),
    // watchdog_unsupported (EOPNOTSUPP: no WDIOF_SETTIMEOUT), as info().
    Result<std::uint32_t> set_timeout(std::uint32_t seconds) noexcept override;
    // WDIOC_GETTIMEOUT: watchdog_unsupported when the driver does not know.
    Result<std::uint32_t> timeout() noexcept override;
    // sysfs max_timeout: watchdog_unsupported when missing or 0 (drivers
    // whose longer timeouts the kernel emulates may report 0).
    Result<std::uint32_t> max_timeout() noexcept override;
    // WDIOC_SETPRETIMEOUT then WDIOC_GETPRETIMEOUT: invalid_argument
    // (EINVAL: not below the timeout), watchdog_unsupported (EOPNOTSUPP).
    Result<std::uint32_t> set_pretimeout(std::uint32_t seconds) noexcept override;
    // WDIOC_GETBOOTSTATUS (0 is also "unknown": many drivers never set it).
    Result<std::uint32_t> boot_status() noexcept override;
    // sysfs nowayout: watchdog_unsupported when missing (no
    // CONFIG_WATCHDOG_SYSFS, or not a watchdog class device).
    Result<bool> nowayout() noexcept override;
    // WDIOC_KEEPALIVE; on EOPNOTSUPP (no WDIOF_KEEPALIVEPING) a one-byte
    // write of NUL instead. watchdog_lost (ENODEV: the driver was unbound),
    // watchdog_feed_failed (anything else, EBADF when not open).
    Result<void> keepalive() noexcept override;
    // See the top of this file. Idempotent: a second call reports the
    // first one's outcome; never opened: disarmed.
    close_outcome close(bool magic) noexcept override;
    std::string_view path() const noexcept override { return {path_, path_len_}; }

private:
    Result<void> need_open() const noexcept;
    Error ioctl_error(int err, Reason other) const noexcept;
    // Reads <class dir>/<attr> as an unsigned decimal; false when missing.
    bool read_sysfs(const char* attr, std::uint32_t& out) const noexcept;

    int fd_ = -1;
    std::uint32_t options_ = 0;
    bool options_known_ = false;
    close_outcome last_ = close_outcome::disarmed;
    std::size_t path_len_ = 0;
    std::size_t root_len_ = 0;
    bool too_long_ = false;
    char path_[path_capacity + 1] = {};
    char root_[path_capacity + 1] = {};
    // <sysfs>/dev/char/MAJ:MIN or <sysfs>/class/watchdog/watchdog0, set at open.
    char class_dir_[path_capacity + 40] = {};
};

} // namespace custos::ports
