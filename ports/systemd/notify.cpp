#include "ports/systemd/notify.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace custos::ports {

namespace {

constexpr std::size_t name_max = sizeof(sockaddr_un::sun_path) - 1; // 107

tl::unexpected<Error> refuse(std::string_view value, const char* resolution) noexcept {
    Error e(Reason::notify_socket_unavailable, 0, value);
    e.with_resolution(resolution);
    return tl::unexpected<Error>(e);
}

// Decimal digits only, at most `max`; false when empty, not digits or over.
bool parse_decimal(const char* s, std::uint64_t max, std::uint64_t& out) noexcept {
    if (s == nullptr || *s == '\0') {
        return false;
    }
    std::uint64_t v = 0;
    for (; *s != '\0'; ++s) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        const auto d = static_cast<std::uint64_t>(*s - '0');
        if (v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    out = v;
    return true;
}

} // namespace

Result<notify_address> parse_notify_socket(std::string_view value) noexcept {
    notify_address a;
    a.addr.sun_family = AF_UNIX;
    if (value.empty()) {
        return refuse(value, "NOTIFY_SOCKET is empty: unset it, or give a path or @name");
    }
    if (value.substr(0, 5) == "vsock") {
        return refuse(value, "custos speaks to NOTIFY_SOCKET only as an absolute path or an "
                             "@abstract name; vsock is not supported: run custos where its "
                             "manager's notify socket is a Unix socket");
    }
    if (value.front() == '@') {
        const std::string_view name = value.substr(1);
        if (name.empty()) {
            return refuse(value, "NOTIFY_SOCKET '@' names no abstract socket: give the name "
                                 "after '@', or unset NOTIFY_SOCKET");
        }
        if (name.size() > name_max) {
            return refuse(value, "NOTIFY_SOCKET's abstract name is longer than a socket "
                                 "address holds (107 bytes): use a shorter name");
        }
        a.abstract = true;
        a.addr.sun_path[0] = '\0';
        std::memcpy(a.addr.sun_path + 1, name.data(), name.size());
        // Exact: an abstract name is every byte up to the length, so a
        // longer length would name a different socket.
        a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    } else if (value.front() == '/') {
        if (value.size() > name_max) {
            return refuse(value, "NOTIFY_SOCKET is longer than a socket address holds "
                                 "(107 bytes): bind the notify socket at a shorter path");
        }
        std::memcpy(a.addr.sun_path, value.data(), value.size());
        a.addr.sun_path[value.size()] = '\0';
        a.len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + value.size() + 1);
    } else {
        return refuse(value, "NOTIFY_SOCKET must be an absolute path or an @abstract name: "
                             "fix the variable in custos's environment, or unset it");
    }
    std::memcpy(a.text, value.data(), value.size());
    a.text[value.size()] = '\0';
    return a;
}

Result<watchdog_request> parse_watchdog(const char* usec, const char* pid, pid_t self) noexcept {
    watchdog_request w;
    if (usec == nullptr || *usec == '\0') {
        return w; // no keepalive asked for; WATCHDOG_PID alone means nothing
    }
    std::uint64_t u = 0;
    // 2^53 us (285 years) keeps every derived nanosecond count in range.
    if (!parse_decimal(usec, std::uint64_t(1) << 53, u) || u == 0) {
        Error e(Reason::invalid_argument, 0, "WATCHDOG_USEC");
        e.with_resolution("WATCHDOG_USEC must be the keepalive timeout in microseconds, a whole "
                          "number above 0: fix WatchdogSec= or the variable; no keepalive is sent");
        return tl::unexpected<Error>(e);
    }
    if (pid != nullptr && *pid != '\0') {
        std::uint64_t p = 0;
        if (!parse_decimal(pid, 0x7fffffff, p) || p == 0) {
            Error e(Reason::invalid_argument, 0, "WATCHDOG_PID");
            e.with_resolution("WATCHDOG_PID must be a process id: fix or unset the variable; no "
                              "keepalive is sent");
            return tl::unexpected<Error>(e);
        }
        w.pid = static_cast<std::int64_t>(p);
        if (w.pid != static_cast<std::int64_t>(self)) {
            w.not_ours = true;
            return w;
        }
    }
    w.usec = u;
    return w;
}

Result<void> systemd_notify::open(const notify_address& to) noexcept {
    close();
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        Error e(Reason::notify_socket_unavailable, errno, to.text);
        e.with_resolution("custos could not create the socket to send READY=1 to systemd: raise "
                          "its descriptor limit (LimitNOFILE=) or free memory");
        return tl::unexpected<Error>(e);
    }
    fd_ = fd;
    to_ = to;
    return {};
}

void systemd_notify::close() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

notify_outcome systemd_notify::send(std::string_view msg) noexcept {
    if (fd_ < 0) {
        return notify_outcome::unsupported;
    }
    ssize_t n;
    do {
        n = ::sendto(fd_, msg.data(), msg.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&to_.addr), to_.len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        // EAGAIN: the receiver's queue is full; ECONNREFUSED/ENOENT: nobody
        // is bound there (any more).
        ++counters_.dropped;
        counters_.last_errno = errno;
        return notify_outcome::dropped;
    }
    ++counters_.sent;
    return notify_outcome::sent;
}

notify_outcome systemd_notify::ready() noexcept {
    return send("READY=1");
}

notify_outcome systemd_notify::stopping() noexcept {
    return send("STOPPING=1");
}

notify_outcome systemd_notify::watchdog() noexcept {
    return send("WATCHDOG=1");
}

notify_outcome systemd_notify::status(std::string_view line) noexcept {
    constexpr std::string_view key = "STATUS=";
    char msg[key.size() + status_capacity];
    std::memcpy(msg, key.data(), key.size());
    const std::size_t n = line.size() < status_capacity ? line.size() : status_capacity;
    for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        // A newline would start another assignment, a NUL makes systemd
        // drop the datagram: one line of printable text only.
        msg[key.size() + i] = c < 0x20 || c == 0x7f ? ' ' : line[i];
    }
    return send(std::string_view(msg, key.size() + n));
}

std::size_t systemd_notify::describe(char* buf, std::size_t len) const noexcept {
    const int n = std::snprintf(buf, len, "systemd: %s", fd_ >= 0 ? to_.text : "off");
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

} // namespace custos::ports
