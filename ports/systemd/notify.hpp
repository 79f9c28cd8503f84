// The systemd notify path: sd_notify's protocol spoken to the socket in
// NOTIFY_SOCKET, and the keepalive that WATCHDOG_USEC and WATCHDOG_PID ask
// for (reference/PLATFORM.md §4).
//
// NOTIFY_SOCKET is an absolute path ("/run/systemd/notify") or an abstract
// name ("@name": the first byte of the address becomes NUL and the address
// length is exact; sizeof(sockaddr_un) would reach for another name and
// get ECONNREFUSED). systemd's vsock forms and relative paths are refused.
// One SOCK_DGRAM socket, opened at init, unconnected: each message is one
// sendto() of one datagram (READY=1, STOPPING=1, STATUS=..., WATCHDOG=1)
// with MSG_DONTWAIT, so a receiver that is slow, gone or replaced costs a
// counted drop and never a stall, and a receiver that comes back is reached
// again.
//
// Unset or empty NOTIFY_SOCKET means "not run by systemd as Type=notify":
// nothing to do, not an error.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

#include "ports/notify.hpp"

namespace custos::ports {

// Where NOTIFY_SOCKET points, ready for sendto().
struct notify_address {
    sockaddr_un addr{};
    socklen_t len = 0; // exact: offsetof(sun_path) + the bytes of the name
    bool abstract = false;
    // As given ("/run/systemd/notify", "@name"), NUL-terminated.
    char text[sizeof(sockaddr_un::sun_path) + 1] = {};
};

// Parses NOTIFY_SOCKET's value (not empty: the caller treats empty as
// unset). Errors: NotifySocketUnavailable with the value as subject and a
// resolution saying which forms custos speaks: a vsock address ("vsock:",
// "vsock-stream:"...), a relative path, a path or name longer than a
// socket address holds (107 bytes), "@" alone.
Result<notify_address> parse_notify_socket(std::string_view value) noexcept;

// The keepalive systemd asks for, as sd_watchdog_enabled() reads it.
struct watchdog_request {
    std::uint64_t usec = 0; // WATCHDOG_USEC; 0: no keepalive
    // WATCHDOG_PID named another process (an ancestor's variables that
    // leaked to us): the keepalive is not ours to send.
    bool not_ours = false;
    std::int64_t pid = 0; // WATCHDOG_PID as given, 0 when unset
};

// WATCHDOG_USEC and WATCHDOG_PID (nullptr: unset) for the process `self`.
// The keepalive is asked for when WATCHDOG_USEC is a whole number above 0
// and WATCHDOG_PID is unset or equals `self`. Errors: InvalidArgument (the
// variable as subject) when WATCHDOG_USEC is not a decimal number above 0
// or above 2^53 microseconds, or WATCHDOG_PID is not a decimal number
// above 0.
Result<watchdog_request> parse_watchdog(const char* usec, const char* pid, pid_t self) noexcept;

class systemd_notify final : public notify_path {
public:
    systemd_notify() noexcept = default;
    ~systemd_notify() override { close(); }
    systemd_notify(const systemd_notify&) = delete;
    systemd_notify& operator=(const systemd_notify&) = delete;

    // Opens the datagram socket (SOCK_CLOEXEC|SOCK_NONBLOCK) for `to`.
    // Errors: NotifySocketUnavailable (errno from socket(): EMFILE,
    // ENFILE, ENOMEM...).
    Result<void> open(const notify_address& to) noexcept;
    void close() noexcept;

    bool active() const noexcept override { return fd_ >= 0; }
    notify_outcome ready() noexcept override;
    notify_outcome stopping() noexcept override;
    // STATUS=<line>, control bytes (a newline would start another
    // assignment) replaced by blanks, cut to fit status_capacity.
    notify_outcome status(std::string_view line) noexcept override;
    notify_outcome watchdog() noexcept override;
    const notify_counters& counters() const noexcept override { return counters_; }
    // "systemd: /run/systemd/notify".
    std::size_t describe(char* buf, std::size_t len) const noexcept override;

    const notify_address& address() const noexcept { return to_; }

    // Longest STATUS= text sent (systemd accepts 4096-byte datagrams).
    static constexpr std::size_t status_capacity = 255;

private:
    notify_outcome send(std::string_view msg) noexcept;

    int fd_ = -1;
    notify_address to_;
    notify_counters counters_;
};

} // namespace custos::ports
