// The reactor: the one thread that owns supervision state waits here for I/O
// completions and timers, and runs their callbacks.
//
// One interface, two backends, chosen at init():
//   uring  - io_uring via liburing: one io_uring_enter submits a batch and
//            reaps completions; deadlines are linked timeouts.
//   epoll  - non-blocking system calls plus epoll_wait; deadlines are wheel
//            timers. The fallback wherever io_uring is refused (ENOSYS on old
//            or stripped kernels and under qemu-user, EPERM under seccomp or
//            kernel.io_uring_disabled) or lacks an opcode custos needs.
// CUSTOS_BACKEND=uring|epoll forces one; backend_reason() says which was
// chosen and why.
//
// Operations (struct op) are owned by the caller and reused; submitting one
// never allocates. Contract, identical on both backends:
//   - After a submit call, the op's callback runs exactly once, from the
//     reactor loop, never from inside the submit or cancel call itself.
//   - The result is a value >= 0 or -errno: -ETIMEDOUT when the deadline
//     passed first, -ECANCELED after cancel(), -ENOBUFS when a capacity
//     (max_ops, max_fds) was full at submit time.
//   - The op is idle again when its callback runs, so the callback may
//     resubmit it. Buffers and addresses it references must stay valid until
//     then. File descriptors must be non-blocking (O_NONBLOCK).
//   - Close a descriptor through close() or only after its ops completed: the
//     epoll backend then cancels the ops still waiting on it (-ECANCELED);
//     io_uring keeps them running on the old file until they finish.
//
// Timers (struct timer) live in a hierarchical wheel driven by one timerfd
// armed with an absolute deadline for the next due timer: no periodic tick,
// an idle reactor sleeps until its next timer. Arming and cancelling are O(1)
// and never call the kernel; a cancelled timer's callback never runs.
//
// Threads: one thread calls init() and runs the loop; only it may touch ops,
// timers and the reactor. Other threads reach it through a mailbox
// (mailbox.hpp).
#pragma once

#include <linux/time_types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdint>

#include <custos/error.hpp>

#include "core/intrusive_list.hpp"
#include "core/slot_pool.hpp"
#include "core/time.hpp"
#include "core/timer_wheel.hpp"

namespace custos::io {

class reactor;
class backend;
class uring_backend;
class epoll_backend;

struct timer;
using timer_callback = void (*)(timer& t);

// A one-shot timer. Embed it in the object it paces; `user` is yours.
struct timer : timer_node {
    timer_callback fire = nullptr;
    void* user = nullptr;

    timer() = default;
    timer(timer_callback f, void* u) noexcept : fire(f), user(u) {}
};

// No deadline.
inline constexpr mono_time no_deadline{};

enum class op_kind : std::uint8_t {
    none,
    read,
    write,
    poll,
    connect,
    accept,
    send,
    recv,
    close,
    waitid,
    socket,
    statx,
    openat,
    unlinkat,
    fsync,
};

struct op;
using op_callback = void (*)(op& o, std::int32_t result);

// One I/O operation. Embed it in the object that issues it; `user` is yours.
struct alignas(8) op : list_hook<op> {
    op_callback done = nullptr;
    void* user = nullptr;

    op() = default;
    op(op_callback cb, void* u) noexcept : done(cb), user(u) {}
    op(const op&) = delete;
    op& operator=(const op&) = delete;

    // Submitted and its callback has not run yet.
    bool busy() const noexcept { return state_ != state::idle; }
    op_kind kind() const noexcept { return kind_; }

private:
    friend class reactor;
    friend class uring_backend;
    friend class epoll_backend;

    enum class state : std::uint8_t { idle, queued, in_flight, waiting, ready };

    // The request.
    op_kind kind_ = op_kind::none;
    int fd_ = -1;
    void* buf_ = nullptr;
    std::uint32_t len_ = 0;
    int flags_ = 0;              // send/recv flags; poll events; socket type; *at flags
    const char* path_ = nullptr; // statx/openat/unlinkat
    std::uint32_t mode_ = 0;     // openat
    const sockaddr* addr_ = nullptr;
    socklen_t addrlen_ = 0;
    socklen_t* addrlen_out_ = nullptr;
    std::int64_t deadline_ns_ = 0; // absolute CLOCK_MONOTONIC; 0 = none

    // Progress.
    state state_ = state::idle;
    bool cancel_requested_ = false;
    bool internal_ = false;     // the reactor's own (timerfd, mailboxes): not capacity-limited
    bool reap_on_poll_ = false; // waitid emulated: a pidfd poll, then waitid(WNOHANG)
    bool counted_ = false;      // holds one of max_ops
    std::uint8_t uring_tag_ = 0;
    std::int32_t result_ = 0;
    std::uint32_t wait_events_ = 0; // epoll: readiness this op waits for
    slot_handle fd_entry_;          // epoll: the descriptor's entry
    timer deadline_timer_;          // epoll: fires -ETIMEDOUT
    epoll_backend* epoll_owner_ = nullptr;
    __kernel_timespec ts_{}; // io_uring: the linked timeout's deadline
};

enum class backend_kind : std::uint8_t { uring, epoll };
enum class backend_choice : std::uint8_t { automatic, uring, epoll };

struct reactor_config {
    // I/O operations in flight at once (the reactor's own excluded).
    std::uint32_t max_ops = 256;
    // epoll: descriptors with operations waiting on them at once.
    std::uint32_t max_fds = 256;
    // io_uring: submission queue entries (a full queue is flushed, not an error).
    std::uint32_t uring_entries = 64;
    // Timer resolution: deadlines round up to a multiple of it.
    nanos tick = std::chrono::milliseconds(1);
    backend_choice backend = backend_choice::automatic;
    // Whether CUSTOS_BACKEND (uring|epoll|auto) overrides `backend`.
    bool honour_env = true;
};

// Counters the status will show. Owned by the reactor thread.
struct reactor_stats {
    std::uint64_t ops_submitted = 0;
    std::uint64_t ops_completed = 0;
    std::uint64_t ops_rejected = 0; // refused for capacity (-ENOBUFS)
    std::uint64_t wait_calls = 0;   // io_uring_enter or epoll_wait calls
    std::uint64_t wakeups = 0;      // blocking waits that returned
    std::uint64_t timers_fired = 0;
    std::uint64_t timerfd_arms = 0; // timerfd_settime calls
    std::uint64_t syscalls = 0;     // every system call the reactor made
};

class backend {
public:
    virtual ~backend() = default;
    virtual void submit(op& o) noexcept = 0;
    virtual bool cancel(op& o) noexcept = 0;
    // Issues or starts what was submitted. May complete ops (an immediate
    // result) and arm deadline timers, so the reactor arms its timerfd after.
    virtual void flush() noexcept = 0;
    // Waits for events if `block`, completes ops through reactor::complete().
    virtual void wait(bool block) noexcept = 0;
};

class reactor {
public:
    reactor() noexcept;
    ~reactor();
    reactor(const reactor&) = delete;
    reactor& operator=(const reactor&) = delete;

    // Chooses and starts a backend, creates the timerfd. Takes all the memory
    // the reactor will ever use. Errors: BackendUnknown (bad CUSTOS_BACKEND),
    // IoUringUnavailable / IoUringOpcodeMissing (io_uring forced but refused),
    // EpollUnavailable, TimerfdUnavailable, ClockUnavailable, OutOfMemory,
    // InvalidArgument (a zero capacity or tick).
    Result<void> init(const reactor_config& cfg = {}) noexcept;

    backend_kind kind() const noexcept { return kind_; }
    const char* backend_name() const noexcept;
    // Why this backend: what was tried, what the kernel said, what was used.
    const char* backend_reason() const noexcept { return reason_; }

    // Operations; see the contract above. `deadline` is absolute.
    void read(op& o, int fd, void* buf, std::uint32_t len,
              mono_time deadline = no_deadline) noexcept;
    void write(op& o, int fd, const void* buf, std::uint32_t len,
               mono_time deadline = no_deadline) noexcept;
    // Waits until `fd` has any of `events` (POLLIN, POLLOUT...); result: the
    // events that fired, POLLERR/POLLHUP included.
    void poll(op& o, int fd, std::uint32_t events, mono_time deadline = no_deadline) noexcept;
    // Result 0 when connected, -ECONNREFUSED, -ETIMEDOUT...
    void connect(op& o, int fd, const sockaddr* addr, socklen_t len,
                 mono_time deadline = no_deadline) noexcept;
    // Result: the accepted descriptor, already O_NONBLOCK and O_CLOEXEC.
    // `addr`/`len` may be null.
    void accept(op& o, int fd, sockaddr* addr, socklen_t* len,
                mono_time deadline = no_deadline) noexcept;
    void send(op& o, int fd, const void* buf, std::uint32_t len, int flags = 0,
              mono_time deadline = no_deadline) noexcept;
    void recv(op& o, int fd, void* buf, std::uint32_t len, int flags = 0,
              mono_time deadline = no_deadline) noexcept;
    void close(op& o, int fd) noexcept;
    // Waits for the child behind `pidfd` to exit and reaps it, filling
    // `info` (si_pid, si_code CLD_EXITED/KILLED/DUMPED, si_status). Result 0
    // once reaped; -ECHILD when it is not our child or was reaped elsewhere.
    // io_uring: IORING_OP_WAITID where the kernel has it (6.7+), else (and
    // on epoll) a poll for the pidfd's POLLIN, then waitid(P_PIDFD, WNOHANG).
    void waitid(op& o, int pidfd, siginfo_t* info, mono_time deadline = no_deadline) noexcept;
    // Whether waitid() is one io_uring operation here (else poll + waitid).
    bool native_waitid() const noexcept { return native_waitid_; }

    // Result: a new socket descriptor, always SOCK_NONBLOCK|SOCK_CLOEXEC
    // (added to `type`). io_uring: IORING_OP_SOCKET (5.19+).
    void socket(op& o, int domain, int type, int protocol) noexcept;
    // Result 0 with `*out` filled. io_uring: IORING_OP_STATX.
    void statx(op& o, int dirfd, const char* path, int flags, unsigned mask,
               struct statx* out) noexcept;
    // Result: the opened descriptor (O_CLOEXEC added). io_uring: IORING_OP_OPENAT.
    void openat(op& o, int dirfd, const char* path, int flags, unsigned mode) noexcept;
    // Result 0. io_uring: IORING_OP_UNLINKAT (5.11+).
    void unlinkat(op& o, int dirfd, const char* path, int flags) noexcept;
    // Result 0: fdatasync(fd). io_uring: IORING_OP_FSYNC with
    // IORING_FSYNC_DATASYNC (the disk's wait off the loop).
    void fsync(op& o, int fd) noexcept;
    // The four above are io_uring operations where the kernel has the
    // opcode; elsewhere (epoll, older kernels) the reactor makes the system
    // call when the op is submitted and completes the op from the loop, as
    // for any other op. Those calls do not wait for a peer; the file ones
    // can only block on a hung network or FUSE filesystem.
    bool native_socket() const noexcept { return native_socket_; }
    bool native_file_ops() const noexcept { return native_file_ops_; }
    // Asks for `o` to finish early; its callback then gets -ECANCELED, or its
    // real result if it completed first. False when `o` is not in flight
    // (idle, or its completion is already queued).
    bool cancel(op& o) noexcept;

    // Timers. Arming a pending timer moves it. `slack` lets the reactor fire
    // it up to that much later, to share a wake-up with other timers.
    void arm(timer& t, mono_time deadline, nanos slack = nanos(0)) noexcept;
    void arm_after(timer& t, nanos delay, nanos slack = nanos(0)) noexcept;
    // True when it was pending; its callback will not run.
    bool cancel(timer& t) noexcept;

    // One loop iteration: fire due timers, issue submissions, wait for at
    // least one event if `block` (and no op completed and no timer fired
    // already in this turn), run the callbacks of completed ops.
    void run_once(bool block = true) noexcept;
    // Loops until stop() is called from a callback or a mailbox handler. A
    // stop() issued before run() is forgotten: run() always starts looping.
    void run() noexcept;
    // Reactor thread only; from other threads post to a mailbox that calls it.
    void stop() noexcept { stop_ = true; }
    bool stopping() const noexcept { return stop_; }

    mono_time now() const noexcept { return mono_clock::now(); }
    const reactor_stats& stats() const noexcept { return stats_; }
    std::uint32_t ops_in_flight() const noexcept { return in_flight_; }
    std::uint32_t timers_pending() const noexcept { return wheel_.pending_count(); }

    // Backends and mailboxes only.
    void complete(op& o, std::int32_t result) noexcept;
    // Exempts `o` from max_ops: the reactor's and mailboxes' own reads.
    static void make_internal(op& o) noexcept { o.internal_ = true; }
    reactor_stats& mutable_stats() noexcept { return stats_; }
    bool ready_empty() const noexcept { return ready_.empty(); }

private:
    void submit(op& o, op_kind kind, int fd, mono_time deadline) noexcept;
    bool performs_inline(op_kind k) const noexcept;
    std::int32_t perform_inline(op& o) noexcept;
    void process_timers() noexcept;
    void arm_timerfd() noexcept;
    void dispatch() noexcept;
    std::uint64_t tick_at_or_after(mono_time t) const noexcept;
    std::uint64_t tick_now() const noexcept;
    static void on_timerfd(op& o, std::int32_t result) noexcept;

    backend* backend_ = nullptr;
    backend_kind kind_ = backend_kind::epoll;
    reactor_config cfg_;
    std::int64_t tick_ns_ = 1'000'000;
    timer_wheel wheel_;
    intrusive_list<op> ready_;
    std::uint32_t in_flight_ = 0;
    reactor_stats stats_;
    bool stop_ = false;
    bool native_waitid_ = false;
    bool native_socket_ = false;
    bool native_file_ops_ = false; // STATX, OPENAT and UNLINKAT

    int timerfd_ = -1;
    std::uint64_t timerfd_armed_tick_ = timer_wheel::never;
    std::uint64_t timerfd_buf_ = 0;
    op timerfd_op_;

    epoll_backend* epoll_ = nullptr;
    uring_backend* uring_ = nullptr;
    char reason_[256] = "not initialised";
};

} // namespace custos::io
