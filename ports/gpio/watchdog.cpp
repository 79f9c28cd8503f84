#include "ports/gpio/watchdog.hpp"

#include <fcntl.h>
#include <linux/gpio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace custos::ports {

namespace {

int ioctl_retry(int fd, unsigned long req, void* arg) noexcept {
    int r;
    do {
        r = ::ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR);
    return r;
}

// Sets the one line of a request to a logical value; 0 or the errno.
int set_line(int fd, bool value) noexcept {
    gpio_v2_line_values v{};
    v.bits = value ? 1U : 0U;
    v.mask = 1U;
    return ioctl_retry(fd, GPIO_V2_LINE_SET_VALUES_IOCTL, &v) == 0 ? 0 : errno;
}

tl::unexpected<Error> unsupported(std::string_view subject) noexcept {
    return fail(Error(Reason::watchdog_unsupported, EOPNOTSUPP, subject)
                    .with_resolution("an external watchdog chip's timeout is fixed by its "
                                     "wiring: set watchdog.timeout to the chip's"));
}

} // namespace

void gpio_watchdog::configure(const gpio_setup& setup) noexcept {
    too_long_ = setup.chip.size() > path_capacity;
    const std::size_t n = too_long_ ? path_capacity : setup.chip.size();
    if (n > 0) {
        std::memcpy(chip_, setup.chip.data(), n);
    }
    chip_[n] = '\0';
    line_ = setup.line;
    enable_line_ = setup.enable_line;
    active_low_ = setup.active_low;
    timeout_s_ = setup.timeout_s;
    const int w = std::snprintf(path_, sizeof path_, "%s:%d", chip_, static_cast<int>(line_));
    const std::size_t need = w < 0 ? 0 : static_cast<std::size_t>(w);
    path_len_ = need < sizeof path_ ? need : sizeof path_ - 1; // truncated by snprintf
}

Result<int> gpio_watchdog::request(std::int32_t line, bool active_low) noexcept {
    const int chip = ::open(chip_, O_RDWR | O_CLOEXEC);
    if (chip < 0) {
        const int err = errno;
        Error e(Reason::gpio_unavailable, err, chip_);
        if (err == ENOENT) {
            e.with_resolution("no such GPIO chip: fix watchdog.gpio_chip (ls /dev/gpiochip*; "
                              "gpiodetect)");
        } else if (err == EACCES || err == EPERM) {
            e.with_resolution("the GPIO chip needs root (or its group's read-write access)");
        }
        return tl::unexpected<Error>(e);
    }
    gpio_v2_line_request req{};
    req.offsets[0] = static_cast<std::uint32_t>(line);
    req.num_lines = 1;
    constexpr char consumer[] = "custos";
    static_assert(sizeof consumer <= sizeof req.consumer);
    std::memcpy(req.consumer, consumer, sizeof consumer);
    req.config.flags = GPIO_V2_LINE_FLAG_OUTPUT | (active_low ? GPIO_V2_LINE_FLAG_ACTIVE_LOW : 0);
    req.config.num_attrs = 1;
    req.config.attrs[0].attr.id = GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES;
    req.config.attrs[0].attr.values = 0; // inactive
    req.config.attrs[0].mask = 1;
    const int r = ioctl_retry(chip, GPIO_V2_GET_LINE_IOCTL, &req);
    const int err = errno;
    // The request holds the line; the chip's fd is not needed for it.
    ::close(chip);
    if (r != 0) {
        char subject[path_capacity + 16];
        std::snprintf(subject, sizeof subject, "%s:%d", chip_, static_cast<int>(line));
        Error e(Reason::gpio_unavailable, err, subject);
        if (err == EBUSY) {
            e.with_resolution("the GPIO line is held by another consumer, often the kernel's "
                              "gpio_wdt driver: use that as a kernel watchdog "
                              "(/dev/watchdogN) instead, or free the line (gpioinfo)");
        } else if (err == EINVAL) {
            e.with_resolution("no such line on this GPIO chip: fix watchdog.gpio_line or "
                              "gpio_enable_line (gpioinfo)");
        }
        return tl::unexpected<Error>(e);
    }
    return req.fd;
}

Result<void> gpio_watchdog::open() noexcept {
    if (feed_fd_ >= 0) {
        return {};
    }
    if (too_long_ || chip_[0] == '\0' || line_ < 0) {
        return fail(Error(Reason::gpio_unavailable, EINVAL, path())
                        .with_resolution("give the GPIO watchdog's chip (/dev/gpiochipN, at most "
                                         "95 bytes) and its feed line (watchdog.gpio_chip, "
                                         "gpio_line)"));
    }
    auto feed = request(line_, active_low_);
    if (!feed) {
        return fail(feed.error());
    }
    if (enable_line_ >= 0) {
        auto en = request(enable_line_, false);
        if (!en) {
            ::close(*feed);
            return fail(en.error());
        }
        enable_fd_ = *en;
    }
    feed_fd_ = *feed;
    level_ = false;
    enabled_ = false;
    enable_errno_ = 0;
    return {};
}

Result<watchdog_info> gpio_watchdog::info() noexcept {
    watchdog_info wi;
    wi.options = wdiof_keepaliveping;
    constexpr char id[] = "gpio watchdog";
    static_assert(sizeof id <= sizeof wi.identity);
    std::memcpy(wi.identity, id, sizeof id);
    return wi;
}

Result<std::uint32_t> gpio_watchdog::set_timeout(std::uint32_t) noexcept {
    return unsupported(path());
}

Result<std::uint32_t> gpio_watchdog::timeout() noexcept {
    if (timeout_s_ == 0) {
        return unsupported(path());
    }
    return timeout_s_;
}

Result<std::uint32_t> gpio_watchdog::max_timeout() noexcept {
    return unsupported(path());
}

Result<std::uint32_t> gpio_watchdog::set_pretimeout(std::uint32_t) noexcept {
    return fail(Reason::watchdog_unsupported, EOPNOTSUPP, path());
}

Result<std::uint32_t> gpio_watchdog::boot_status() noexcept {
    return 0U;
}

Result<bool> gpio_watchdog::nowayout() noexcept {
    return fail(Reason::watchdog_unsupported, EOPNOTSUPP, path());
}

Result<void> gpio_watchdog::keepalive() noexcept {
    if (feed_fd_ < 0) {
        return fail(Reason::watchdog_feed_failed, EBADF, path());
    }
    const int err = set_line(feed_fd_, !level_);
    if (err == 0) {
        level_ = !level_;
        return {};
    }
    if (err == ENODEV) {
        return fail(Error(Reason::watchdog_lost, err, path())
                        .with_resolution("the GPIO chip went away: the external watchdog is "
                                         "no longer fed and will reset the board"));
    }
    return fail(Reason::watchdog_feed_failed, err, path());
}

void gpio_watchdog::boot_good() noexcept {
    if (enable_fd_ < 0 || enabled_) {
        return;
    }
    enable_errno_ = set_line(enable_fd_, true);
    enabled_ = enable_errno_ == 0;
}

void gpio_watchdog::release() noexcept {
    if (enable_fd_ >= 0) {
        ::close(enable_fd_);
        enable_fd_ = -1;
    }
    if (feed_fd_ >= 0) {
        ::close(feed_fd_);
        feed_fd_ = -1;
    }
}

close_outcome gpio_watchdog::close(bool magic) noexcept {
    if (feed_fd_ < 0) {
        return last_;
    }
    bool disabled = false;
    if (magic && enable_fd_ >= 0) {
        disabled = set_line(enable_fd_, false) == 0;
    }
    release();
    enabled_ = false;
    last_ = disabled ? close_outcome::disarmed : close_outcome::left_armed;
    return last_;
}

} // namespace custos::ports
