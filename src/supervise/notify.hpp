// The sd_notify receiver: the NOTIFY_SOCKET custos gives its services.
//
// Owns one path-bound AF_UNIX SOCK_DGRAM socket (SO_PASSCRED) and its
// receive buffers, sized once: nothing is allocated after open(). Speaks the
// systemd notify protocol as PID 1 does (PLATFORM.md 4):
//   - a datagram is newline-separated VAR=value assignments; unknown ones are
//     ignored, a value that does not parse is ignored on its own;
//   - dropped and counted as malformed: more than 4096 bytes (PID 1's limit,
//     PIPE_BUF) or MSG_TRUNC, truncated control data (MSG_CTRUNC), no sender
//     credentials, an embedded NUL;
//   - every received descriptor (SCM_RIGHTS) is closed once the handler has
//     seen its datagram. Closing is the whole answer to BARRIER=1: the sender
//     (sd_notify_barrier, systemd-notify) waits until its fd is closed.
// Attribution (which service sent it) is the handler's business: custos maps
// cred.pid to a service by process group, because the sender is often a
// short-lived helper (systemd-notify claims its parent's PID).
//
// A child cannot stall the reactor: the socket is non-blocking, and one
// wake-up drains at most max_per_wakeup datagrams before waiting again, so a
// flood shares the loop with everything else. AF_UNIX datagram senders block
// (or get EAGAIN) when the queue is full; the kernel drops nothing silently.
//
// Lifetime: after start(), a poll op is in flight in the reactor. close()
// cancels it and closes the socket through the reactor (so the epoll backend
// forgets its registration before the number can be reused); those ops still
// complete from the loop. Keep the object alive until busy() is false or
// the reactor no longer runs (the same rule as io::mailbox). The destructor
// never touches the reactor, which may be gone by then.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

#include "io/reactor.hpp"

namespace custos::sup {

// One parsed datagram. Views point into the datagram's buffer: copy what you
// keep beyond the handler call (the buffer is reused for the next datagram).
struct notify_message {
    bool ready = false;            // READY=1
    bool reloading = false;        // RELOADING=1
    bool stopping = false;         // STOPPING=1
    bool watchdog_ping = false;    // WATCHDOG=1
    bool watchdog_trigger = false; // WATCHDOG=trigger
    bool barrier = false;          // BARRIER=1 (answered by closing the datagram's fds)
    bool has_status = false;       // STATUS=..., possibly empty (clears it)
    std::string_view status;       // raw bytes, not UTF-8 checked: escape when rendering
    bool has_errno = false;        // ERRNO=0..4095
    int errno_value = 0;
    bool has_extend = false; // EXTEND_TIMEOUT_USEC=
    std::uint64_t extend_usec = 0;
    bool has_watchdog_usec = false; // WATCHDOG_USEC=
    std::uint64_t watchdog_usec = 0;
    bool has_monotonic_usec = false; // MONOTONIC_USEC= (sent with RELOADING=1)
    std::uint64_t monotonic_usec = 0;
    bool has_mainpid = false; // MAINPID= > 0
    int mainpid = 0;
    std::uint32_t ignored = 0; // lines ignored: unknown key, no '=', bad value
};

// Parses one datagram into `out` (reset first). Lines end at '\n' or '\r',
// as in systemd's manager and nspawn (strv_split_newlines): a CRLF client
// works, and a STATUS never carries a CR. Empty lines are skipped. Flags
// need their exact value (READY=1; READY=0 or READY=x is ignored). Numbers
// are plain decimal digits, no sign or blanks, within range. When a key
// repeats, its last valid value wins. Returns false only for an embedded NUL
// (the datagram must then be dropped whole, as PID 1 does).
bool parse_notify(std::string_view datagram, notify_message& out) noexcept;

// Receives parsed datagrams, on the reactor thread only.
class notify_handler {
public:
    // Whether the message was attributed to a service; false counts it in
    // dropped_unattributed. `m`'s views die when this returns.
    virtual bool on_notify(const ucred& cred, const notify_message& m) noexcept = 0;
    virtual ~notify_handler() = default;
};

struct notify_stats {
    std::uint64_t received = 0;             // datagrams taken off the socket, dropped ones included
    std::uint64_t dropped_malformed = 0;    // oversize/MSG_TRUNC, MSG_CTRUNC, no creds, NUL
    std::uint64_t dropped_unattributed = 0; // the handler returned false
    std::uint64_t fds_closed = 0;           // SCM_RIGHTS descriptors closed
    std::uint64_t receive_errors = 0;       // recvmsg failures other than EAGAIN/EINTR
    std::uint64_t wakeups = 0;              // poll completions that drained the socket
    std::uint64_t drains_capped = 0;        // wake-ups that hit max_per_wakeup (more may be queued)
};

class notify_socket {
public:
    // PID 1's limit (NOTIFY_BUFFER_MAX = PIPE_BUF): longer datagrams are dropped.
    static constexpr std::size_t max_datagram = 4096;
    // The kernel's SCM_MAX_FD: no datagram carries more descriptors.
    static constexpr std::size_t max_fds = 253;
    static constexpr std::uint32_t max_per_wakeup = 64;

    notify_socket() noexcept;
    ~notify_socket();
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;

    // Creates the socket and binds it at `path`, an absolute filesystem path
    // (what clients accept in NOTIFY_SOCKET; abstract names are not offered:
    // naive clients cannot reach them, PLATFORM.md 4.4). A socket file left
    // at `path` by an earlier run is replaced; anything else there is an
    // error, never deleted. The socket file is made mode 0666: services run
    // as other users and need write permission to send, and that grants
    // nothing, since messages are attributed by kernel-checked credentials
    // (systemd's /run/systemd/notify is just as open); restrict access with
    // the directory's permissions if needed. SO_RCVBUF is raised to 256 KiB
    // where allowed. Errors, all NotifySocketUnavailable with the path:
    // EINVAL (empty or relative path), ENAMETOOLONG (does not fit sun_path),
    // EEXIST (a non-socket file is at the path), EBUSY (open, or its last
    // close still in flight in the reactor), or
    // the errno of lstat/unlink/socket/bind/chmod/setsockopt(SO_PASSCRED).
    Result<void> open(std::string_view path) noexcept;

    // Starts receiving into `h` (which must outlive the receiving). Call
    // once per successful open(), from the reactor thread.
    void start(io::reactor& r, notify_handler* h) noexcept;

    // Stops receiving, closes the socket and unlinks the socket file if it is
    // still the one open() created. Idempotent. Reactor thread, while the
    // reactor exists. See Lifetime above.
    void close() noexcept;

    // An op is still in flight in the reactor (its callback has yet to run).
    bool busy() const noexcept { return poll_op_.busy() || close_op_.busy(); }
    bool is_open() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }
    // The bound path (what to export as NOTIFY_SOCKET); empty when closed.
    std::string_view path() const noexcept { return {path_, path_len_}; }
    const notify_stats& stats() const noexcept { return stats_; }

private:
    static void on_poll(io::op& o, std::int32_t result) noexcept;
    static void on_retry(io::timer& t) noexcept;
    static void on_closed(io::op& o, std::int32_t result) noexcept;
    void unlink_path() noexcept;
    // Receives and dispatches one datagram; false when the queue is empty
    // (or the socket failed) and draining should stop.
    bool receive_one() noexcept;
    void close_received_fds(msghdr& mh) noexcept;

    int fd_ = -1;
    io::reactor* reactor_ = nullptr;
    notify_handler* handler_ = nullptr;
    io::op poll_op_;
    io::op close_op_;
    int closing_fd_ = -1; // handed to close_op_, not closed yet
    io::timer retry_;     // re-polls after a poll error, instead of spinning
    dev_t dev_ = 0;       // identity of the socket file we bound, checked before unlinking
    ino_t ino_ = 0;
    std::size_t path_len_ = 0;
    char path_[sizeof(sockaddr_un::sun_path)] = {};
    notify_stats stats_;
    // One byte more than accepted, so an oversize datagram shows as n > 4096
    // even where MSG_TRUNC would not be reported.
    char buf_[max_datagram + 1];
    // Credentials plus the most descriptors one datagram can carry: a full
    // SCM_RIGHTS never truncates; MSG_CTRUNC means something unexpected.
    alignas(cmsghdr) unsigned char control_[CMSG_SPACE(sizeof(ucred)) +
                                            CMSG_SPACE(max_fds * sizeof(int))];
};

} // namespace custos::sup
