// The notify path: how custos tells the init system above it how it is
// doing. One narrow interface (DESIGN.md "Ports"), one implementation per
// init system under ports/<name>/:
//   ready()     the start has settled and every critical service is ready;
//   stopping()  the stop has begun;
//   status(t)   a one-line summary of health, for the operator;
//   watchdog()  a keepalive ping.
// A path that has no use for one of them (s6 knows only readiness) answers
// `unsupported`, which callers treat as "absent", not as a failure.
//
// Every call is one non-blocking system call at most, allocates nothing and
// never waits for the receiver: a receiver whose buffer is full, or that is
// not there, costs a counted drop (`dropped`), never a stall. Whether to send
// a dropped message again is the caller's decision (ports/upward.hpp).
// Reactor thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace custos::ports {

enum class notify_outcome : std::uint8_t {
    sent,        // handed to the kernel for the receiver
    dropped,     // the receiver's buffer was full, or it is gone (counted)
    unsupported, // this path has no such message, or has finished (s6 after ready)
};

// What a path has done since it was opened.
struct notify_counters {
    std::uint64_t sent = 0;
    std::uint64_t dropped = 0;
    int last_errno = 0; // of the last drop; 0 when none
};

class notify_path {
public:
    virtual ~notify_path() = default;

    // Whether it is open (configured and usable).
    virtual bool active() const noexcept = 0;
    virtual notify_outcome ready() noexcept = 0;
    virtual notify_outcome stopping() noexcept = 0;
    // `line` is one line of text; a path that cannot carry control bytes
    // replaces them.
    virtual notify_outcome status(std::string_view line) noexcept = 0;
    virtual notify_outcome watchdog() noexcept = 0;
    virtual const notify_counters& counters() const noexcept = 0;
    // One line for the status ("systemd: /run/systemd/notify", "s6: fd 5"),
    // written like snprintf: NUL-terminated when len > 0, truncated to fit;
    // returns the length the whole line needs.
    virtual std::size_t describe(char* buf, std::size_t len) const noexcept = 0;
};

} // namespace custos::ports
