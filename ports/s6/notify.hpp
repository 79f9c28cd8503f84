// The s6 notify path: readiness on a notification descriptor
// (reference/PLATFORM.md §5). s6-supervise gives the service the write end
// of a pipe at the fd number in its service directory's notification-fd
// file; the service is ready when a newline arrives, and s6-supervise then
// closes its read end. So: one "\n", then close the descriptor.
//
// The descriptor is custos's own (custosd --notify-fd N, or
// RuntimeConfig::notify_fd): open() checks it is open for writing, marks it
// close-on-exec (no service may inherit it: its newline would make custos
// look ready) and non-blocking. s6 has no stopping, status nor keepalive
// message: those answer `unsupported`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

#include "ports/notify.hpp"

namespace custos::ports {

class s6_notify final : public notify_path {
public:
    s6_notify() noexcept = default;
    ~s6_notify() override { close(); }
    s6_notify(const s6_notify&) = delete;
    s6_notify& operator=(const s6_notify&) = delete;

    // Takes `fd` over (closed by ready() or close()). Errors:
    // InvalidArgument when fd is 0, 1 or 2 (the standard streams) or not
    // open (EBADF), or open read-only (EBADF); the subject names the fd.
    Result<void> open(int fd) noexcept;
    // Closes the descriptor if ready() has not.
    void close() noexcept;
    // Gives the descriptor back unclosed (its FD_CLOEXEC and O_NONBLOCK
    // stay set): for an init that failed after open(), so that the caller
    // may try again with the same number.
    void disown() noexcept;

    bool active() const noexcept override { return fd_ >= 0; }
    // Writes "\n" and closes the descriptor; once it is closed (sent, or
    // the reader is gone: EPIPE), `unsupported`. A full pipe (EAGAIN) is a
    // drop that leaves it open for another call.
    notify_outcome ready() noexcept override;
    notify_outcome stopping() noexcept override { return notify_outcome::unsupported; }
    notify_outcome status(std::string_view) noexcept override {
        return notify_outcome::unsupported;
    }
    notify_outcome watchdog() noexcept override { return notify_outcome::unsupported; }
    const notify_counters& counters() const noexcept override { return counters_; }
    // "s6: fd 5", "s6: fd 5 (ready sent)", "s6: fd 5 (reader gone)",
    // "s6: fd 5 (closed)".
    std::size_t describe(char* buf, std::size_t len) const noexcept override;

    // The descriptor given to open(), even once closed; -1 when none.
    int configured_fd() const noexcept { return configured_; }

private:
    enum class state : std::uint8_t { off, open, sent, gone, closed };

    int fd_ = -1;
    state state_ = state::off;
    int configured_ = -1;
    notify_counters counters_;
};

} // namespace custos::ports
