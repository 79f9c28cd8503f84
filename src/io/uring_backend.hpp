// The io_uring backend.
//
// Setup tries, in order, the flag sets PLATFORM.md recommends and keeps the
// first the kernel accepts: SINGLE_ISSUER|DEFER_TASKRUN (6.1; the ring starts
// R_DISABLED and is enabled by the first wait(), so the thread that runs the
// loop becomes its single issuer), COOP_TASKRUN|TASKRUN_FLAG (5.19),
// SUBMIT_ALL (5.18), then none. The completion queue is sized for every op in
// flight plus its linked timeout and a cancellation, so it cannot overflow.
// The opcodes custos needs are probed (io_uring_get_probe: NULL before 5.6);
// any missing one makes init() fail and the reactor fall back to epoll.
//
// user_data is the op's address with a tag in its low two bits:
//   0 the op itself   1 its linked timeout   2 a cancel request
//   3 a readiness poll re-issued after the op returned -EAGAIN
// Tags 1 and 2 complete silently. An op's completion is recognised only when
// its tag matches the one currently in flight.
//
// A full submission queue is flushed with io_uring_submit() and filling goes
// on; an op that still does not fit (or arrives before the ring is enabled)
// waits on a deferred list and is issued at the next wait().
#pragma once

#include <liburing.h>

#include "io/reactor.hpp"

namespace custos::io {

class uring_backend final : public backend {
public:
    explicit uring_backend(reactor& r) noexcept : r_(r) {}
    ~uring_backend() override;

    // Errors: IoUringUnavailable (setup refused: ENOSYS, EPERM, ENOMEM...),
    // IoUringOpcodeMissing. `detail` receives a description of the ring.
    Result<void> init(const reactor_config& cfg, char* detail, std::size_t detail_len) noexcept;

    void submit(op& o) noexcept override;
    bool cancel(op& o) noexcept override;
    void flush() noexcept override;
    void wait(bool block) noexcept override;
    bool native_waitid() const noexcept { return native_waitid_; }
    bool native_socket() const noexcept { return native_socket_; }
    bool native_file_ops() const noexcept { return native_file_ops_; }

private:
    enum tag : std::uint8_t { tag_op = 0, tag_timeout = 1, tag_cancel = 2, tag_retry = 3 };

    bool issue(op& o, tag t) noexcept; // false: no room, defer
    bool issue_cancel(op& o) noexcept;
    void submit_now() noexcept;
    void reap() noexcept;
    void handle(std::uint64_t user_data, std::int32_t res) noexcept;
    void finish(op& o, std::int32_t res) noexcept;
    io_uring_sqe* sqe() noexcept;

    reactor& r_;
    io_uring ring_{};
    // IORING_OP_WAITID (6.7); optional: without it waitid is poll + waitid.
    static constexpr int opcode_waitid = 50;
    bool native_waitid_ = false;
    // IORING_OP_SOCKET (5.19); STATX, OPENAT (5.6) and UNLINKAT (5.11).
    // Optional: without them the reactor makes the system call itself.
    bool native_socket_ = false;
    bool native_file_ops_ = false;
    bool ring_ok_ = false;
    bool enabled_ = true;
    bool defer_taskrun_ = false;  // completions run only on our GETEVENTS enters
    intrusive_list<op> deferred_; // not yet issued (queued state)
    intrusive_list<op> cancels_;  // in flight, cancel request not yet issued
};

} // namespace custos::io
