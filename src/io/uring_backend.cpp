#include "io/uring_backend.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/assert.hpp"

namespace custos::io {
namespace {

struct required_op {
    int code;
    const char* name;
};

// What the reactor's operations map to; all present since 5.6.
constexpr required_op required_ops[] = {
    {IORING_OP_READ, "READ"},
    {IORING_OP_WRITE, "WRITE"},
    {IORING_OP_POLL_ADD, "POLL_ADD"},
    {IORING_OP_CONNECT, "CONNECT"},
    {IORING_OP_ACCEPT, "ACCEPT"},
    {IORING_OP_SEND, "SEND"},
    {IORING_OP_RECV, "RECV"},
    {IORING_OP_CLOSE, "CLOSE"},
    {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_LINK_TIMEOUT, "LINK_TIMEOUT"},
};

struct setup_attempt {
    unsigned flags;
    const char* name;
};

constexpr setup_attempt attempts[] = {
    {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
     "SINGLE_ISSUER|DEFER_TASKRUN"},
    {IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG, "COOP_TASKRUN|TASKRUN_FLAG"},
    {IORING_SETUP_SUBMIT_ALL, "SUBMIT_ALL"},
    {0, "no optional flags"},
};

std::uint32_t pow2_at_least(std::uint32_t v) noexcept {
    std::uint32_t p = 1;
    while (p < v && p < (1u << 16)) {
        p <<= 1;
    }
    return p;
}

op* op_of(std::uint64_t user_data) noexcept {
    return reinterpret_cast<op*>(static_cast<std::uintptr_t>(user_data & ~std::uint64_t{3}));
}

std::uint64_t user_data_of(op& o, std::uint8_t t) noexcept {
    static_assert(alignof(op) >= 4, "two low bits of an op's address carry the tag");
    return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&o)) | t;
}

bool retries_on_eagain(op_kind k) noexcept {
    switch (k) {
    case op_kind::read:
    case op_kind::write:
    case op_kind::recv:
    case op_kind::send:
    case op_kind::accept:
        return true;
    case op_kind::none:
    case op_kind::poll:
    case op_kind::connect:
    case op_kind::close:
    case op_kind::waitid:
    case op_kind::socket:
    case op_kind::statx:
    case op_kind::openat:
    case op_kind::unlinkat:
    case op_kind::fsync:
        return false;
    }
    return false;
}

std::uint32_t retry_events(op_kind k) noexcept {
    return k == op_kind::write || k == op_kind::send ? POLLOUT : POLLIN;
}

} // namespace

uring_backend::~uring_backend() {
    if (ring_ok_) {
        io_uring_queue_exit(&ring_);
    }
}

Result<void> uring_backend::init(const reactor_config& cfg, char* detail,
                                 std::size_t detail_len) noexcept {
    std::uint32_t entries = pow2_at_least(cfg.uring_entries);
    // Per op in flight: its completion, its linked timeout's, a cancel's.
    // Plus the reactor's own ops (timerfd, mailboxes) and some headroom.
    std::uint32_t cq = pow2_at_least(3 * (cfg.max_ops + 16));
    if (cq < 2 * entries) {
        cq = 2 * entries;
    }
    int rc = 0;
    const setup_attempt* used = nullptr;
    for (const setup_attempt& a : attempts) {
        io_uring_params p{};
        p.flags = a.flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = cq;
        rc = io_uring_queue_init_params(entries, &ring_, &p);
        ++r_.mutable_stats().syscalls;
        if (rc == 0) {
            used = &a;
            cq = p.cq_entries;
            break;
        }
        if (rc != -EINVAL) {
            break; // ENOSYS, EPERM, ENOMEM: no flag set will help
        }
    }
    if (used == nullptr) {
        const char* why = rc == -ENOSYS  ? "io_uring_setup: no such system call"
                          : rc == -EPERM ? "io_uring_setup: not permitted"
                                         : "io_uring_setup";
        return fail(Reason::io_uring_unavailable, -rc, why);
    }
    ring_ok_ = true;
    enabled_ = (used->flags & IORING_SETUP_R_DISABLED) == 0;
    defer_taskrun_ = (used->flags & IORING_SETUP_DEFER_TASKRUN) != 0;

    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    ++r_.mutable_stats().syscalls;
    if (probe == nullptr) {
        return fail(Reason::io_uring_opcode_missing, 0, "opcode probe unsupported (kernel < 5.6)");
    }
    char missing[96] = "";
    std::size_t used_len = 0;
    for (const required_op& ro : required_ops) {
        if (!io_uring_opcode_supported(probe, ro.code)) {
            int n = std::snprintf(missing + used_len, sizeof missing - used_len, "%s%s",
                                  used_len != 0 ? "," : "", ro.name);
            if (n > 0 && used_len + static_cast<std::size_t>(n) < sizeof missing) {
                used_len += static_cast<std::size_t>(n);
            }
        }
    }
    native_waitid_ = io_uring_opcode_supported(probe, opcode_waitid) != 0;
    native_socket_ = io_uring_opcode_supported(probe, IORING_OP_SOCKET) != 0;
    native_file_ops_ = io_uring_opcode_supported(probe, IORING_OP_STATX) != 0 &&
                       io_uring_opcode_supported(probe, IORING_OP_OPENAT) != 0 &&
                       io_uring_opcode_supported(probe, IORING_OP_UNLINKAT) != 0;
    io_uring_free_probe(probe);
    if (used_len != 0) {
        return fail(Reason::io_uring_opcode_missing, 0, missing);
    }
    std::snprintf(detail, detail_len, "setup %s, %u SQ / %u CQ entries", used->name, entries, cq);
    return {};
}

io_uring_sqe* uring_backend::sqe() noexcept {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr && enabled_) {
        submit_now(); // a full submission queue is flushed, never an error
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

void uring_backend::submit_now() noexcept {
    reactor_stats& st = r_.mutable_stats();
    ++st.syscalls;
    ++st.wait_calls;
    io_uring_submit(&ring_);
}

bool uring_backend::issue(op& o, tag t) noexcept {
    if (!enabled_) {
        return false;
    }
    unsigned need = o.deadline_ns_ != 0 ? 2 : 1;
    if (io_uring_sq_space_left(&ring_) < need) {
        submit_now();
        if (io_uring_sq_space_left(&ring_) < need) {
            return false;
        }
    }
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    CUSTOS_ASSERT(s != nullptr);
    if (t == tag_retry) {
        io_uring_prep_poll_add(s, o.fd_, retry_events(o.kind_));
    } else {
        switch (o.kind_) {
        case op_kind::read:
            // Offset -1: the file position, as read(2) (5.6+).
            io_uring_prep_read(s, o.fd_, o.buf_, o.len_, static_cast<__u64>(-1));
            break;
        case op_kind::write:
            io_uring_prep_write(s, o.fd_, o.buf_, o.len_, static_cast<__u64>(-1));
            break;
        case op_kind::poll:
            io_uring_prep_poll_add(s, o.fd_, static_cast<unsigned>(o.flags_));
            break;
        case op_kind::connect:
            io_uring_prep_connect(s, o.fd_, o.addr_, o.addrlen_);
            break;
        case op_kind::accept:
            io_uring_prep_accept(s, o.fd_, static_cast<sockaddr*>(o.buf_), o.addrlen_out_,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case op_kind::send:
            io_uring_prep_send(s, o.fd_, o.buf_, o.len_, o.flags_ | MSG_NOSIGNAL);
            break;
        case op_kind::recv:
            io_uring_prep_recv(s, o.fd_, o.buf_, o.len_, o.flags_);
            break;
        case op_kind::close:
            io_uring_prep_close(s, o.fd_);
            break;
        case op_kind::waitid:
            // liburing 2.3 predates IORING_OP_WAITID: prepared by hand the way
            // liburing 2.5's io_uring_prep_waitid() does (PLATFORM.md 6.6).
            io_uring_prep_rw(opcode_waitid, s, o.fd_, nullptr, P_PIDFD, 0);
            s->rw_flags = 0; // waitid_flags
            s->file_index = WEXITED;
            s->addr2 = static_cast<__u64>(reinterpret_cast<std::uintptr_t>(o.buf_));
            break;
        case op_kind::socket:
            io_uring_prep_socket(s, o.fd_, o.flags_, static_cast<int>(o.len_), 0);
            break;
        case op_kind::statx:
            io_uring_prep_statx(s, o.fd_, o.path_, o.flags_, o.len_,
                                static_cast<struct statx*>(o.buf_));
            break;
        case op_kind::openat:
            io_uring_prep_openat(s, o.fd_, o.path_, o.flags_, o.mode_);
            break;
        case op_kind::unlinkat:
            io_uring_prep_unlinkat(s, o.fd_, o.path_, o.flags_);
            break;
        case op_kind::fsync:
            io_uring_prep_fsync(s, o.fd_, IORING_FSYNC_DATASYNC);
            break;
        case op_kind::none:
            io_uring_prep_nop(s);
            break;
        }
    }
    io_uring_sqe_set_data64(s, user_data_of(o, t));
    o.uring_tag_ = t;
    o.state_ = op::state::in_flight;
    if (need == 2) {
        s->flags |= IOSQE_IO_LINK;
        o.ts_.tv_sec = o.deadline_ns_ / 1'000'000'000;
        o.ts_.tv_nsec = o.deadline_ns_ % 1'000'000'000;
        io_uring_sqe* lt = io_uring_get_sqe(&ring_);
        CUSTOS_ASSERT(lt != nullptr);
        // Absolute CLOCK_MONOTONIC deadline: however late the batch is
        // submitted, the op is cancelled at the same instant as on epoll.
        // The kernel copies the timespec when it takes the SQE.
        io_uring_prep_link_timeout(lt, &o.ts_, IORING_TIMEOUT_ABS);
        io_uring_sqe_set_data64(lt, user_data_of(o, tag_timeout));
    }
    return true;
}

bool uring_backend::issue_cancel(op& o) noexcept {
    io_uring_sqe* s = sqe();
    if (s == nullptr) {
        return false;
    }
    io_uring_prep_cancel64(s, user_data_of(o, o.uring_tag_), 0);
    io_uring_sqe_set_data64(s, user_data_of(o, tag_cancel));
    return true;
}

void uring_backend::submit(op& o) noexcept {
    // Keep submission order: nothing overtakes an op already deferred.
    if (!deferred_.empty() || !issue(o, tag_op)) {
        deferred_.push_back(o);
    }
}

bool uring_backend::cancel(op& o) noexcept {
    switch (o.state_) {
    case op::state::queued:
        o.unlink();
        r_.complete(o, -ECANCELED);
        return true;
    case op::state::in_flight:
        if (o.cancel_requested_) {
            return true;
        }
        o.cancel_requested_ = true;
        if (!issue_cancel(o)) {
            cancels_.push_back(o);
        }
        return true;
    case op::state::idle:
    case op::state::waiting:
    case op::state::ready:
        return false;
    }
    return false;
}

void uring_backend::flush() noexcept {
    if (!enabled_) {
        // The first thread to run the loop becomes the ring's single issuer.
        // Debian's liburing 2.3 declares io_uring_enable_rings() but its
        // shared library does not export it: register directly.
        ++r_.mutable_stats().syscalls;
        if (syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                    0) == 0) {
            enabled_ = true;
        }
    }
    while (op* o = deferred_.front()) {
        // Also ops that met EAGAIN when the queue had no room for their
        // readiness poll: issuing the op again is as good.
        if (!issue(*o, tag_op)) {
            return;
        }
        o->unlink();
        o->state_ = op::state::in_flight;
    }
    while (op* o = cancels_.front()) {
        if (!issue_cancel(*o)) {
            return;
        }
        o->unlink();
    }
}

void uring_backend::finish(op& o, std::int32_t res) noexcept {
    if ((res == -ECANCELED || res == -EINTR) && !o.cancel_requested_ && o.deadline_ns_ != 0 &&
        to_ns(mono_clock::now()) >= o.deadline_ns_) {
        res = -ETIMEDOUT; // cancelled by its linked timeout
    }
    if (o.is_linked()) {
        o.unlink(); // a pending cancel request for it is moot now
    }
    r_.complete(o, res);
}

void uring_backend::handle(std::uint64_t user_data, std::int32_t res) noexcept {
    op* o = op_of(user_data);
    auto t = static_cast<std::uint8_t>(user_data & 3);
    if (o == nullptr || t == tag_timeout || t == tag_cancel) {
        return;
    }
    if (o->state_ != op::state::in_flight || o->uring_tag_ != t) {
        return; // a completion from an earlier incarnation
    }
    if (t == tag_retry) {
        if (res < 0 || o->cancel_requested_) {
            finish(*o, o->cancel_requested_ ? -ECANCELED : res);
        } else if (!issue(*o, tag_op)) {
            o->state_ = op::state::queued;
            deferred_.push_back(*o);
        }
        return;
    }
    if (res == -EAGAIN && o->cancel_requested_) {
        res = -ECANCELED;
    } else if (res == -EAGAIN && retries_on_eagain(o->kind_)) {
        // The file is O_NONBLOCK and this kernel does not poll it for us:
        // wait for readiness, then issue the op again.
        if (!issue(*o, tag_retry)) {
            o->state_ = op::state::queued;
            deferred_.push_back(*o);
        }
        return;
    }
    finish(*o, res);
}

void uring_backend::reap() noexcept {
    io_uring_cqe* cqes[32];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 32);
        if (n == 0) {
            return;
        }
        // Copy out and release the CQ slots before running any handler: a
        // handler may submit, and submission may enter the kernel.
        std::uint64_t ud[32];
        std::int32_t res[32];
        for (unsigned i = 0; i < n; ++i) {
            ud[i] = cqes[i]->user_data;
            res[i] = cqes[i]->res;
        }
        io_uring_cq_advance(&ring_, n);
        for (unsigned i = 0; i < n; ++i) {
            handle(ud[i], res[i]);
        }
    }
}

void uring_backend::wait(bool block) noexcept {
    reactor_stats& st = r_.mutable_stats();
    if (block) {
        ++st.syscalls;
        ++st.wait_calls;
        io_uring_submit_and_wait(&ring_, 1);
    } else if (defer_taskrun_ && r_.ops_in_flight() != 0) {
        // DEFER_TASKRUN: completions wait as task work that only an enter
        // with GETEVENTS from this thread runs; a non-blocking loop turn
        // must ask for it, or it would never see them.
        ++st.syscalls;
        ++st.wait_calls;
        io_uring_submit_and_get_events(&ring_);
    } else if (io_uring_sq_ready(&ring_) != 0) {
        submit_now();
    }
    reap();
}

} // namespace custos::io
