// The sd_notify receiver: the NOTIFY_SOCKET custos gives its services.
// The services' (children's) socket custos listens on; not a client of a NOTIFY_SOCKET above it.
//
// One socket per service, as s6 gives each service its own notification
// fd: the socket a datagram arrives on says which service it is about, so
// a message from a helper that has exited (and been reaped) by the time it
// is read is still attributed (systemd-notify, a shell's child). The
// handler only decides whether the sender may speak for that service.
// notify_dir holds the sockets' directory and the instance lock beside them.
//
// A notify_socket owns one AF_UNIX SOCK_DGRAM socket (SO_PASSCRED), bound
// at a path or an abstract name; the receive buffers are shared by all of
// them (notify_buffers: every receive runs on the reactor thread), sized
// once: nothing is allocated after open(). Speaks the
// systemd notify protocol as PID 1 does (PLATFORM.md 4):
//   - a datagram is newline-separated VAR=value assignments; unknown ones are
//     ignored, a value that does not parse is ignored on its own;
//   - dropped and counted as malformed: more than 4096 bytes (PID 1's limit,
//     PIPE_BUF) or MSG_TRUNC, truncated control data (MSG_CTRUNC), no sender
//     credentials, an embedded NUL;
//   - every received descriptor (SCM_RIGHTS) is closed once the handler has
//     seen its datagram. Closing is the whole answer to BARRIER=1: the sender
//     (sd_notify_barrier, systemd-notify) waits until its fd is closed.
// Nothing a sender hands over may stall the loop: the last close of a
// descriptor can wait (a TCP socket with SO_LINGER and unsent data, a file
// on a hung FUSE or NFS mount). A pipe's or FIFO's close never waits, and
// that is what a barrier carries: those are closed here, in order. Every
// other descriptor goes to the fd_closer thread. If that thread is stuck
// and its ring full, the socket stops accepting descriptors where the
// kernel can refuse them (SO_PASSRIGHTS, Linux 6.16+) until it catches up;
// on older kernels the descriptor is closed here as a last resort (counted:
// fds_closed_inline).
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
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

#include "io/reactor.hpp"

namespace custos::process {

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
    // A datagram arrived on the socket started with `tag`. Whether it was
    // accepted; false counts it in dropped_unattributed. `m`'s views die
    // when this returns.
    virtual bool on_notify(std::uint32_t tag, const ucred& cred,
                           const notify_message& m) noexcept = 0;
    virtual ~notify_handler() = default;
};

class fd_closer;

struct notify_stats {
    std::uint64_t received = 0;             // datagrams taken off the socket, dropped ones included
    std::uint64_t dropped_malformed = 0;    // oversize/MSG_TRUNC, MSG_CTRUNC, no creds, NUL
    std::uint64_t dropped_unattributed = 0; // the handler returned false
    std::uint64_t fds_closed = 0;           // SCM_RIGHTS descriptors closed (here or handed over)
    std::uint64_t fds_handed_over = 0;      // of those, given to the fd_closer thread
    std::uint64_t fds_closed_inline = 0;    // not pipes, closed here: the closer was full
    std::uint64_t rights_refused = 0;       // times SO_PASSRIGHTS was turned off
    std::uint64_t rebinds = 0;              // sockets recreated after their file was deleted
    std::uint64_t receive_errors = 0;       // recvmsg failures other than EAGAIN/EINTR
    std::uint64_t wakeups = 0;              // poll completions that drained the socket
    std::uint64_t drains_capped = 0;        // wake-ups that hit max_per_wakeup (more may be queued)
};

// PID 1's limit (NOTIFY_BUFFER_MAX = PIPE_BUF): longer datagrams are dropped.
inline constexpr std::size_t notify_max_datagram = 4096;
// The kernel's SCM_MAX_FD: no datagram carries more descriptors.
inline constexpr std::size_t notify_max_fds = 253;

// The receive buffers, one set for every socket of a reactor.
struct notify_buffers {
    // One byte more than accepted, so an oversize datagram shows as n > 4096
    // even where MSG_TRUNC would not be reported.
    char data[notify_max_datagram + 1];
    // Credentials plus the most descriptors one datagram can carry: a full
    // SCM_RIGHTS never truncates; MSG_CTRUNC means something unexpected.
    alignas(cmsghdr) unsigned char control[CMSG_SPACE(sizeof(ucred)) +
                                           CMSG_SPACE(notify_max_fds * sizeof(int))];
};

// The directory of the per-service sockets, DIR/SERVICE, and the instance
// lock DIR/.lock: a second custos on the same directory is refused while
// the first lives, so it can never take over (or delete) a live socket.
// "@NAME" instead gives abstract sockets "@NAME/SERVICE": no file, no
// permissions (anyone may send; the handler's credential rule decides) and
// no lock file; bind() itself refuses a name that is alive (EADDRINUSE).
class notify_dir {
public:
    notify_dir() = default;
    ~notify_dir();
    notify_dir(const notify_dir&) = delete;
    notify_dir& operator=(const notify_dir&) = delete;

    // Creates the directory (mode 0755) if it is missing (its parent must
    // exist) and takes the lock. Errors: NotifySocketUnavailable (EINVAL:
    // empty or relative; ENAMETOOLONG; ENOTDIR; mkdir/open errno) and
    // InstanceRunning (the lock is held: subject names the holder's pid).
    Result<void> open(std::string_view dir) noexcept;
    // Writes "DIR/NAME" (or "@NAME/SERVICE") into `out`. False when it does
    // not fit a socket address or `cap`.
    bool address(std::string_view service, char* out, std::size_t cap) const noexcept;
    bool is_open() const noexcept { return len_ != 0; }
    bool abstract() const noexcept { return len_ != 0 && dir_[0] == '@'; }
    std::string_view path() const noexcept { return {dir_, len_}; }

    // A tmp cleaner (or an operator) deleted the directory or the lock
    // file: recreates the directory and links the lock file we still hold
    // back in place, so a second instance still finds it held. The
    // sockets are each notify_socket::restore()'s. Returns how many names
    // were put back. Reactor thread; cheap when nothing is missing.
    std::uint32_t restore() noexcept;
    // An inotify descriptor watching the directory for deletions (its own
    // and its entries'), non-blocking; -1 for abstract names or where
    // inotify is refused (then nothing is noticed). restore() re-adds the
    // watch after the directory was recreated.
    int watch_fd() const noexcept { return watch_fd_; }

private:
    void add_watch() noexcept;
    // Opens (creating) and flocks `lock`, writes our pid: the fd, or -errno
    // (-EWOULDBLOCK: another instance holds it).
    static int take_lock(const char* lock) noexcept;

    int lock_fd_ = -1;
    int watch_fd_ = -1;
    std::size_t len_ = 0;
    char dir_[sizeof(sockaddr_un::sun_path)] = {};
};

class notify_socket {
public:
    static constexpr std::size_t max_datagram = notify_max_datagram;
    static constexpr std::size_t max_fds = notify_max_fds;
    static constexpr std::uint32_t max_per_wakeup = 64;

    notify_socket() noexcept;
    ~notify_socket();
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;

    // Creates the socket and binds it at `path`: an absolute filesystem
    // path, or "@name" for an abstract one (PLATFORM.md 4.4: naive clients
    // that pass sizeof(sockaddr_un) cannot reach abstract names, so paths
    // are the default). A socket file at `path` is replaced (the caller
    // holds notify_dir's lock, so it is a dead instance's); anything else
    // there is an error, never deleted. The socket file is made mode 0666:
    // a service may drop privileges after its start and still needs to
    // send; who may speak for a service is decided by the handler from the
    // kernel-checked credentials. SO_RCVBUF is raised to 256 KiB where
    // allowed. Errors, all NotifySocketUnavailable with the path: EINVAL
    // (empty or relative path), ENAMETOOLONG (does not fit sun_path),
    // EEXIST (a non-socket file is at the path), EBUSY (open, or its last
    // close still in flight in the reactor), or the errno of
    // lstat/unlink/socket/bind/chmod/setsockopt(SO_PASSCRED); an abstract
    // name in use is InstanceRunning (EADDRINUSE).
    Result<void> open(std::string_view path) noexcept;

    // Starts receiving into `h` (which must outlive the receiving), telling
    // it `tag` with each datagram, into the shared `bufs`. Descriptors other
    // than pipes go to `closer` (nullptr: all are closed here, as before).
    // Call once per successful open(), from the reactor thread.
    void start(io::reactor& r, notify_handler* h, notify_buffers& bufs, std::uint32_t tag = 0,
               fd_closer* closer = nullptr) noexcept;

    // Delivers what is queued now, at most max_queue datagrams, without
    // waiting: called before a timeout acts on what the sender may already
    // have said. Reactor thread, after start().
    void drain() noexcept;
    static constexpr std::uint32_t max_queue = 1024;

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
    // The socket file was deleted from outside (a deleted inode cannot be
    // linked back): binds a new socket at the path and moves to it from the
    // loop, after reading what is still queued on the old one. True when it
    // did. A different file now at the path is left alone. Path sockets
    // only; reactor thread.
    bool restore() noexcept;
    const notify_stats& stats() const noexcept { return stats_; }

private:
    static void on_poll(io::op& o, std::int32_t result) noexcept;
    static void on_retry(io::timer& t) noexcept;
    static void on_closed(io::op& o, std::int32_t result) noexcept;
    void unlink_path() noexcept;
    // Receives and dispatches one datagram; false when the queue is empty
    // (or the socket failed) and draining should stop.
    bool receive_one() noexcept;
    static Result<int> bind_socket(const sockaddr_un& addr, std::string_view path,
                                   struct stat& st) noexcept;
    void swap_socket() noexcept;
    void close_received_fds(msghdr& mh) noexcept;
    void close_one(int fd) noexcept;
    void allow_rights(bool allow) noexcept;

    int fd_ = -1;
    io::reactor* reactor_ = nullptr;
    notify_handler* handler_ = nullptr;
    notify_buffers* bufs_ = nullptr;
    fd_closer* closer_ = nullptr;
    std::uint32_t tag_ = 0;
    bool rights_off_ = false; // SO_PASSRIGHTS turned off while the closer is full
    io::op poll_op_;
    io::op close_op_;
    int closing_fd_ = -1; // handed to close_op_, not closed yet
    io::timer retry_;     // re-polls after a poll error, instead of spinning
    dev_t dev_ = 0;       // identity of the socket file we bound, checked before unlinking
    ino_t ino_ = 0;
    int next_fd_ = -1; // restore()'s new socket, until the old poll has ended
    std::size_t path_len_ = 0;
    char path_[sizeof(sockaddr_un::sun_path)] = {};
    notify_stats stats_;
};

} // namespace custos::process
