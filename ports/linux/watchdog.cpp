#include "ports/linux/watchdog.hpp"

#include <fcntl.h>
#include <linux/watchdog.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace custos::ports {

namespace {

static_assert(wdiof_settimeout == WDIOF_SETTIMEOUT && wdiof_magicclose == WDIOF_MAGICCLOSE &&
                  wdiof_keepaliveping == WDIOF_KEEPALIVEPING &&
                  wdiof_cardreset == WDIOF_CARDRESET && wdiof_pretimeout == WDIOF_PRETIMEOUT,
              "ports/watchdog.hpp's WDIOF_* copies match the kernel's");

// The legacy misc node /dev/watchdog (misc major 10, WATCHDOG_MINOR 130):
// the kernel registers it for watchdog0 alone, sharing its state.
constexpr unsigned misc_major = 10;
constexpr unsigned watchdog_minor = 130;

std::size_t copy_text(char* dst, std::size_t cap, std::string_view src, bool& too_long) noexcept {
    const std::size_t n = src.size() < cap ? src.size() : cap;
    if (n > 0) {
        std::memcpy(dst, src.data(), n);
    }
    dst[n] = '\0';
    too_long = too_long || src.size() > cap;
    return n;
}

int ioctl_int(int fd, unsigned long req, int* arg) noexcept {
    int r;
    do {
        r = ::ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR);
    return r;
}

ssize_t write_retry(int fd, const char* buf, std::size_t len) noexcept {
    ssize_t n;
    do {
        n = ::write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    return n;
}

} // namespace

void linux_watchdog::configure(std::string_view path, std::string_view sysfs_root) noexcept {
    too_long_ = false;
    path_len_ = copy_text(path_, path_capacity, path, too_long_);
    root_len_ = copy_text(root_, path_capacity, sysfs_root, too_long_);
}

Result<void> linux_watchdog::open() noexcept {
    if (fd_ >= 0) {
        return {};
    }
    if (too_long_ || path_len_ == 0) {
        return fail(Error(Reason::invalid_argument, EINVAL, path())
                        .with_resolution("give the watchdog device node as an absolute path "
                                         "of at most 127 bytes (watchdog.path)"));
    }
    const int fd = ::open(path_, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        if (err == EBUSY) {
            return fail(Error(Reason::watchdog_busy, err, path())
                            .with_resolution("another process holds the watchdog (systemd's "
                                             "RuntimeWatchdogSec, procd, a watchdog daemon): "
                                             "stop it, or leave the device to it"));
        }
        Error e(Reason::watchdog_unavailable, err, path());
        if (err == ENOENT || err == ENXIO || err == ENODEV) {
            e.with_resolution("no such watchdog device: load the board's watchdog driver "
                              "(ls /sys/class/watchdog) or fix watchdog.path");
        } else if (err == EACCES || err == EPERM) {
            e.with_resolution("the watchdog device needs root (or its group's write access)");
        }
        return fail(e);
    }
    fd_ = fd;
    // Whether a close without the 'V' stops it (no WDIOF_MAGICCLOSE) is
    // known from the driver's options; unknown counts as magic close.
    ::watchdog_info wi{};
    options_known_ = ::ioctl(fd_, WDIOC_GETSUPPORT, &wi) == 0;
    options_ = options_known_ ? wi.options : 0;
    class_dir_[0] = '\0';
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISCHR(st.st_mode)) {
        const unsigned maj = major(st.st_rdev);
        const unsigned min = minor(st.st_rdev);
        if (maj == misc_major && min == watchdog_minor) {
            std::snprintf(class_dir_, sizeof class_dir_, "%s/class/watchdog/watchdog0", root_);
        } else {
            std::snprintf(class_dir_, sizeof class_dir_, "%s/dev/char/%u:%u", root_, maj, min);
        }
    }
    return {};
}

Result<void> linux_watchdog::need_open() const noexcept {
    if (fd_ < 0) {
        return fail(Error(Reason::watchdog_unavailable, EBADF, path())
                        .with_resolution("the watchdog is not open: open() it first"));
    }
    return {};
}

Error linux_watchdog::ioctl_error(int err, Reason other) const noexcept {
    if (err == EOPNOTSUPP) {
        return Error(Reason::watchdog_unsupported, err, path());
    }
    if (err == ENODEV) {
        return Error(Reason::watchdog_lost, err, path())
            .with_resolution("the watchdog driver went away (unbound or unloaded): the board "
                             "is unwatched; check dmesg");
    }
    // ENOTTY: not a watchdog. ENOSYS: qemu-user, which passes on only the
    // ioctls it knows.
    if (err == ENOTTY || err == ENOSYS) {
        return Error(Reason::watchdog_unavailable, err, path())
            .with_resolution("this device does not answer the watchdog ioctls: fix "
                             "watchdog.path (ls /sys/class/watchdog)");
    }
    return Error(other, err, path());
}

Result<watchdog_info> linux_watchdog::info() noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    ::watchdog_info k{};
    if (::ioctl(fd_, WDIOC_GETSUPPORT, &k) != 0) {
        return fail(ioctl_error(errno, Reason::watchdog_unavailable));
    }
    watchdog_info wi;
    wi.options = k.options;
    wi.firmware_version = k.firmware_version;
    static_assert(sizeof wi.identity == sizeof k.identity + 1);
    std::memcpy(wi.identity, k.identity, sizeof k.identity);
    wi.identity[sizeof k.identity] = '\0';
    options_ = k.options;
    options_known_ = true;
    return wi;
}

Result<std::uint32_t> linux_watchdog::set_timeout(std::uint32_t seconds) noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    if (seconds > 0x7fffffffU) {
        return fail(Reason::invalid_argument, EINVAL, path());
    }
    int t = static_cast<int>(seconds);
    if (ioctl_int(fd_, WDIOC_SETTIMEOUT, &t) != 0) {
        const int err = errno;
        if (err == EINVAL) {
            return fail(Error(Reason::invalid_argument, err, path())
                            .with_resolution("the driver refuses this timeout: ask for one "
                                             "within its range (sysfs min_timeout, "
                                             "max_timeout) or leave the profile's default"));
        }
        return fail(ioctl_error(err, Reason::watchdog_unavailable));
    }
    return static_cast<std::uint32_t>(t);
}

Result<std::uint32_t> linux_watchdog::timeout() noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    int t = 0;
    if (ioctl_int(fd_, WDIOC_GETTIMEOUT, &t) != 0) {
        return fail(ioctl_error(errno, Reason::watchdog_unavailable));
    }
    return static_cast<std::uint32_t>(t);
}

bool linux_watchdog::read_sysfs(const char* attr, std::uint32_t& out) const noexcept {
    if (class_dir_[0] == '\0') {
        return false;
    }
    char file[sizeof class_dir_ + 32];
    const int w = std::snprintf(file, sizeof file, "%s/%s", class_dir_, attr);
    if (w < 0 || static_cast<std::size_t>(w) >= sizeof file) {
        return false;
    }
    const int fd = ::open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    char buf[32];
    ssize_t n;
    do {
        n = ::read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) {
        return false;
    }
    std::uint64_t v = 0;
    ssize_t i = 0;
    for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
        v = v * 10 + static_cast<std::uint64_t>(buf[i] - '0');
        if (v > 0xffffffffU) {
            return false;
        }
    }
    if (i == 0 || (i < n && buf[i] != '\n')) {
        return false;
    }
    out = static_cast<std::uint32_t>(v);
    return true;
}

Result<std::uint32_t> linux_watchdog::max_timeout() noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    std::uint32_t v = 0;
    if (!read_sysfs("max_timeout", v) || v == 0) {
        return fail(Reason::watchdog_unsupported, EOPNOTSUPP, path());
    }
    return v;
}

Result<std::uint32_t> linux_watchdog::set_pretimeout(std::uint32_t seconds) noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    if (seconds > 0x7fffffffU) {
        return fail(Reason::invalid_argument, EINVAL, path());
    }
    int t = static_cast<int>(seconds);
    if (ioctl_int(fd_, WDIOC_SETPRETIMEOUT, &t) != 0) {
        const int err = errno;
        if (err == EINVAL) {
            return fail(Error(Reason::invalid_argument, err, path())
                            .with_resolution("the pretimeout must be below the timeout"));
        }
        return fail(ioctl_error(err, Reason::watchdog_unavailable));
    }
    if (ioctl_int(fd_, WDIOC_GETPRETIMEOUT, &t) != 0) {
        return fail(ioctl_error(errno, Reason::watchdog_unavailable));
    }
    return static_cast<std::uint32_t>(t);
}

Result<std::uint32_t> linux_watchdog::boot_status() noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    int bits = 0;
    if (ioctl_int(fd_, WDIOC_GETBOOTSTATUS, &bits) != 0) {
        return fail(ioctl_error(errno, Reason::watchdog_unavailable));
    }
    return static_cast<std::uint32_t>(bits);
}

Result<bool> linux_watchdog::nowayout() noexcept {
    if (auto ok = need_open(); !ok) {
        return fail(ok.error());
    }
    std::uint32_t v = 0;
    if (!read_sysfs("nowayout", v)) {
        return fail(Reason::watchdog_unsupported, EOPNOTSUPP, path());
    }
    return v != 0;
}

Result<void> linux_watchdog::keepalive() noexcept {
    if (fd_ < 0) {
        return fail(Reason::watchdog_feed_failed, EBADF, path());
    }
    int dummy = 0;
    if (ioctl_int(fd_, WDIOC_KEEPALIVE, &dummy) == 0) {
        return {};
    }
    int err = errno;
    if (err == EOPNOTSUPP) {
        // No WDIOF_KEEPALIVEPING: any write of at least one byte pings (a
        // NUL, never a 'V', which would allow the release at close).
        if (write_retry(fd_, "\0", 1) == 1) {
            return {};
        }
        err = errno;
    }
    if (err == ENODEV) {
        return fail(Error(Reason::watchdog_lost, err, path())
                        .with_resolution("the watchdog driver went away (unbound or "
                                         "unloaded): the board is unwatched; check dmesg"));
    }
    return fail(Reason::watchdog_feed_failed, err, path());
}

close_outcome linux_watchdog::close(bool magic) noexcept {
    if (fd_ < 0) {
        return last_;
    }
    // Read before the close: the class directory may go with the device.
    std::uint32_t nwo = 0;
    const bool nowayout_set = read_sysfs("nowayout", nwo) && nwo != 0;
    bool released = false;
    if (magic) {
        // The last write before close(): nothing may follow it.
        released = write_retry(fd_, "V", 1) == 1;
    }
    const bool stops_without_magic = options_known_ && (options_ & WDIOF_MAGICCLOSE) == 0;
    ::close(fd_);
    fd_ = -1;
    last_ = (released || stops_without_magic) && !nowayout_set ? close_outcome::disarmed
                                                               : close_outcome::left_armed;
    return last_;
}

} // namespace custos::ports
