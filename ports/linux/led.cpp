#include "ports/linux/led.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace custos::ports {

void sysfs_led::configure(std::string_view name, const char* root) noexcept {
    configured_ = false;
    given_up_ = false;
    have_state_ = false;
    max_brightness_ = 0;
    failures_ = 0;
    writes_ = 0;
    dir_[0] = '\0';
    if (name.empty()) {
        return;
    }
    configured_ = true;
    const int w = std::snprintf(dir_, sizeof dir_, "%s/%.*s", root != nullptr ? root : "",
                                static_cast<int>(name.size()), name.data());
    if (w < 0 || static_cast<std::size_t>(w) >= sizeof dir_) {
        dir_[0] = '\0'; // too long: the first set() fails and gives up
    }
}

bool sysfs_led::write_attr(const char* attr, const char* text) noexcept {
    if (dir_[0] == '\0') {
        return false;
    }
    char file[path_capacity + 32];
    const int w = std::snprintf(file, sizeof file, "%s/%s", dir_, attr);
    if (w < 0 || static_cast<std::size_t>(w) >= sizeof file) {
        return false;
    }
    const int fd = ::open(file, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    const std::size_t len = std::strlen(text);
    ssize_t n;
    do {
        n = ::write(fd, text, len);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    ++writes_;
    return n == static_cast<ssize_t>(len);
}

bool sysfs_led::read_max() noexcept {
    if (max_brightness_ != 0) {
        return true;
    }
    char file[path_capacity + 32];
    const int w = std::snprintf(file, sizeof file, "%s/max_brightness", dir_);
    if (dir_[0] == '\0' || w < 0 || static_cast<std::size_t>(w) >= sizeof file) {
        return false;
    }
    const int fd = ::open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    char buf[24];
    ssize_t n;
    do {
        n = ::read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    std::uint32_t v = 0;
    for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9' && v < 100000000U; ++i) {
        v = v * 10 + static_cast<std::uint32_t>(buf[i] - '0');
    }
    max_brightness_ = v;
    return v != 0;
}

void sysfs_led::set(led_state s) noexcept {
    if (!configured_ || given_up_ || (have_state_ && s == state_)) {
        return;
    }
    bool ok = false;
    switch (s) {
    case led_state::dark:
        // Writing 0 also removes any trigger (the timer of blinking).
        ok = write_attr("brightness", "0");
        break;
    case led_state::lit: {
        // A nonzero brightness under a trigger would be taken by the
        // trigger (blink brightness, disk activity...): none first, unless
        // it is known to be off already (dark wrote 0).
        if (!read_max()) {
            break;
        }
        if (!have_state_ || state_ == led_state::blinking) {
            if (!write_attr("trigger", "none")) {
                break;
            }
        }
        char text[16];
        std::snprintf(text, sizeof text, "%u", max_brightness_);
        ok = write_attr("brightness", text);
        break;
    }
    case led_state::blinking:
        // delay_on and delay_off appear once the timer trigger is set.
        ok = write_attr("trigger", "timer") && write_attr("delay_on", "500") &&
             write_attr("delay_off", "500");
        break;
    }
    if (!ok) {
        ++failures_;
        given_up_ = true;
        return;
    }
    state_ = s;
    have_state_ = true;
}

} // namespace custos::ports
