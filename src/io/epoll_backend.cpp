#include "io/epoll_backend.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "core/assert.hpp"

namespace custos::io {
namespace {

constexpr std::uint32_t always = EPOLLERR | EPOLLHUP;

} // namespace

epoll_backend::~epoll_backend() {
    if (epfd_ >= 0) {
        ::close(epfd_);
    }
}

Result<void> epoll_backend::init(const reactor_config& cfg) noexcept {
    if (!entries_.reserve(cfg.max_fds) || !by_fd_.reserve(cfg.max_fds)) {
        return fail(Reason::out_of_memory, ENOMEM, "epoll fd table");
    }
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
        return fail(Reason::epoll_unavailable, errno, "epoll_create1");
    }
    ++r_.mutable_stats().syscalls;
    return {};
}

void epoll_backend::submit(op& o) noexcept {
    // Started from wait(), not here: the callback must never run inside the
    // submit call, and starting in a batch keeps ordering simple.
    pending_.push_back(o);
}

bool epoll_backend::cancel(op& o) noexcept {
    switch (o.state_) {
    case op::state::queued:
        o.unlink();
        finish(o, -ECANCELED);
        return true;
    case op::state::waiting:
        finish(o, -ECANCELED);
        return true;
    case op::state::idle:
    case op::state::in_flight:
    case op::state::ready:
        return false;
    }
    return false;
}

void epoll_backend::finish(op& o, std::int32_t result) noexcept {
    fd_entry* e = nullptr;
    if (o.state_ == op::state::waiting) {
        e = entries_.get(o.fd_entry_);
        o.unlink();
    }
    o.fd_entry_ = {};
    r_.complete(o, result);
    if (e != nullptr) {
        release_if_empty(*e);
    }
}

void epoll_backend::release_if_empty(fd_entry& e) noexcept {
    if (e.waiters.empty()) {
        // Nobody waits: forget what the registration was armed for. The
        // descriptor may be closed with ::close (allowed once its ops are
        // done) and its number reused by a new file whose first op must
        // then reach epoll_ctl (MOD, falling back to ADD), not be taken as
        // already armed. A deadline or cancel leaves the one-shot armed.
        e.armed = 0;
        if (!e.is_linked()) {
            idle_.push_back(e);
        }
    }
}

void epoll_backend::forget(fd_entry& e) noexcept {
    if (e.is_linked()) {
        e.unlink();
    }
    by_fd_.erase(static_cast<std::uint32_t>(e.fd));
    entries_.release(e.self);
}

void epoll_backend::start(op& o) noexcept {
    switch (o.kind_) {
    case op_kind::close:
        start_close(o);
        return;
    case op_kind::write:
    case op_kind::send:
        if (!perform(o, 0)) {
            wait_on(o, EPOLLOUT);
        }
        return;
    case op_kind::connect: {
        ++r_.mutable_stats().syscalls;
        int rc = ::connect(o.fd_, o.addr_, o.addrlen_);
        if (rc == 0) {
            r_.complete(o, 0);
        } else if (errno == EINPROGRESS || errno == EINTR) {
            wait_on(o, EPOLLOUT);
        } else {
            r_.complete(o, -errno);
        }
        return;
    }
    case op_kind::read:
    case op_kind::recv:
    case op_kind::accept:
        wait_on(o, EPOLLIN | EPOLLRDHUP);
        return;
    case op_kind::poll:
        wait_on(o, static_cast<std::uint32_t>(o.flags_));
        return;
    case op_kind::waitid: // the reactor turns waitid into a poll on epoll
    case op_kind::socket: // these four the reactor performs at submit
    case op_kind::statx:
    case op_kind::openat:
    case op_kind::unlinkat:
    case op_kind::fsync:
    case op_kind::none:
        break;
    }
    r_.complete(o, -EINVAL);
}

void epoll_backend::start_close(op& o) noexcept {
    if (std::uint32_t* idx = by_fd_.find(static_cast<std::uint32_t>(o.fd_)); idx != nullptr) {
        fd_entry& e = *entries_.get_by_index(*idx);
        while (op* w = e.waiters.front()) {
            finish(*w, -ECANCELED);
        }
        // Closing the descriptor removes its registration (unless a dup of
        // the file lives on; then the one-shot registration fires at most
        // once more, with a handle that is stale by then).
        forget(e);
    }
    ++r_.mutable_stats().syscalls;
    int rc = ::close(o.fd_);
    // Linux releases the descriptor even when close reports EINTR.
    r_.complete(o, rc == 0 || errno == EINTR ? 0 : -errno);
}

void epoll_backend::wait_on(op& o, std::uint32_t events) noexcept {
    fd_entry* e = nullptr;
    if (std::uint32_t* idx = by_fd_.find(static_cast<std::uint32_t>(o.fd_)); idx != nullptr) {
        e = entries_.get_by_index(*idx);
    } else {
        slot_handle h = entries_.try_acquire();
        if (!h.valid() && !idle_.empty()) {
            forget(*idle_.front()); // reuse the least recently idle entry
            h = entries_.try_acquire();
        }
        if (!h.valid() || !by_fd_.try_insert(static_cast<std::uint32_t>(o.fd_), h.index)) {
            if (h.valid()) {
                entries_.release(h);
            }
            ++r_.mutable_stats().ops_rejected;
            r_.complete(o, -ENOBUFS);
            return;
        }
        e = entries_.get(h);
        e->fd = o.fd_;
        e->self = h;
    }
    if (e->is_linked()) {
        e->unlink(); // no longer idle
    }
    o.wait_events_ = events;
    o.fd_entry_ = e->self;
    o.state_ = op::state::waiting;
    e->waiters.push_back(o);
    if (o.deadline_ns_ != 0) {
        o.deadline_timer_.fire = &epoll_backend::on_deadline;
        o.deadline_timer_.user = &o;
        o.epoll_owner_ = this;
        r_.arm(o.deadline_timer_, from_ns(o.deadline_ns_));
    }
    rearm(*e);
}

void epoll_backend::rearm(fd_entry& e) noexcept {
    std::uint32_t want = 0;
    for (op* w = e.waiters.front(); w != nullptr; w = e.waiters.next(*w)) {
        want |= w->wait_events_;
    }
    if (want == 0 || (want & ~e.armed) == 0) {
        return;
    }
    epoll_event ev{};
    ev.events = want | EPOLLONESHOT;
    ev.data.u64 = e.self.pack();
    // A connecting socket is always a new file: whatever registration the
    // entry remembers belonged to an earlier file that had this number and
    // was closed behind our back. ADD first saves the MOD that would fail.
    bool fresh = e.waiters.front() != nullptr && e.waiters.front()->kind_ == op_kind::connect &&
                 e.waiters.front() == e.waiters.back();
    int op_code = e.registered && !fresh ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    ++r_.mutable_stats().syscalls;
    int rc = epoll_ctl(epfd_, op_code, e.fd, &ev);
    if (rc != 0 && (errno == ENOENT || errno == EEXIST)) {
        // Our idea of the registration was stale: the fd was closed and its
        // number reused (ENOENT), or a forgotten entry's registration
        // survives (EEXIST). Use the other verb.
        op_code = errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        ++r_.mutable_stats().syscalls;
        rc = epoll_ctl(epfd_, op_code, e.fd, &ev);
    }
    if (rc == 0) {
        e.registered = true;
        e.armed = want;
        return;
    }
    if (errno == EPERM) {
        // Regular files and other descriptors epoll cannot watch are always
        // ready: perform the waiting ops now.
        on_ready(e, want);
        return;
    }
    // Anything else (EBADF: the fd is not open) fails every waiter.
    int err = errno;
    while (op* w = e.waiters.front()) {
        finish(*w, -err);
    }
}

bool epoll_backend::perform(op& o, std::uint32_t revents) noexcept {
    reactor_stats& st = r_.mutable_stats();
    long n = 0;
    switch (o.kind_) {
    case op_kind::read:
        ++st.syscalls;
        n = ::read(o.fd_, o.buf_, o.len_);
        break;
    case op_kind::write:
        ++st.syscalls;
        n = ::write(o.fd_, o.buf_, o.len_);
        break;
    case op_kind::recv:
        ++st.syscalls;
        n = ::recv(o.fd_, o.buf_, o.len_, o.flags_ | MSG_DONTWAIT);
        break;
    case op_kind::send:
        ++st.syscalls;
        n = ::send(o.fd_, o.buf_, o.len_, o.flags_ | MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
    case op_kind::accept:
        ++st.syscalls;
        n = ::accept4(o.fd_, static_cast<sockaddr*>(o.buf_), o.addrlen_out_,
                      SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case op_kind::connect: {
        int err = 0;
        socklen_t len = sizeof err;
        ++st.syscalls;
        if (getsockopt(o.fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        finish(o, -err);
        return true;
    }
    case op_kind::poll: {
        std::uint32_t fired = revents & (o.wait_events_ | always);
        if (fired == 0) {
            return false;
        }
        finish(o, static_cast<std::int32_t>(fired));
        return true;
    }
    case op_kind::close:
    case op_kind::waitid:
    case op_kind::socket:
    case op_kind::statx:
    case op_kind::openat:
    case op_kind::unlinkat:
    case op_kind::fsync:
    case op_kind::none:
        finish(o, -EINVAL);
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return false;
    }
    finish(o, n < 0 ? -errno : static_cast<std::int32_t>(n));
    return true;
}

void epoll_backend::on_ready(fd_entry& e, std::uint32_t revents) noexcept {
    e.armed = 0; // a one-shot registration is disabled once it reports
    op* w = e.waiters.front();
    while (w != nullptr) {
        op* next = e.waiters.next(*w);
        if ((revents & (w->wait_events_ | always)) != 0) {
            perform(*w, revents);
        }
        w = next;
    }
    if (e.waiters.empty()) {
        release_if_empty(e);
    } else {
        rearm(e);
    }
}

void epoll_backend::on_deadline(timer& t) noexcept {
    auto& o = *static_cast<op*>(t.user);
    // Only armed while the op waits, and completion cancels it.
    CUSTOS_ASSERT(o.state_ == op::state::waiting);
    o.epoll_owner_->finish(o, -ETIMEDOUT);
}

void epoll_backend::flush() noexcept {
    while (op* o = pending_.pop_front()) {
        start(*o);
    }
}

void epoll_backend::wait(bool block) noexcept {
    reactor_stats& st = r_.mutable_stats();
    ++st.syscalls;
    ++st.wait_calls;
    int n = epoll_wait(epfd_, events_, max_events, block ? -1 : 0);
    for (int i = 0; i < n; ++i) {
        fd_entry* e = entries_.get(slot_handle::unpack(events_[i].data.u64));
        if (e == nullptr) {
            continue; // released since: a stale event
        }
        on_ready(*e, events_[i].events);
    }
}

} // namespace custos::io
