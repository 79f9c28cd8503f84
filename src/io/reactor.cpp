#include "io/reactor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/assert.hpp"
#include "io/epoll_backend.hpp"
#ifdef CUSTOS_HAVE_URING
#include "io/uring_backend.hpp"
#endif

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <string_view>

namespace custos::io {

reactor::reactor() noexcept : timerfd_op_(&reactor::on_timerfd, this) {}

reactor::~reactor() {
    delete epoll_;
#ifdef CUSTOS_HAVE_URING
    delete uring_;
#endif
    if (timerfd_ >= 0) {
        ::close(timerfd_);
    }
}

const char* reactor::backend_name() const noexcept {
    switch (kind_) {
    case backend_kind::uring:
        return "io_uring";
    case backend_kind::epoll:
        return "epoll";
    }
    return "?";
}

Result<void> reactor::init(const reactor_config& cfg) noexcept {
    if (backend_ != nullptr) {
        return fail(Reason::invalid_argument, 0, "reactor already initialised");
    }
    if (cfg.max_ops == 0 || cfg.max_fds == 0 || cfg.uring_entries == 0 || cfg.tick.count() <= 0) {
        return fail(Reason::invalid_argument, 0, "reactor_config: capacities and tick must be > 0");
    }
    cfg_ = cfg;
    tick_ns_ = cfg.tick.count();

    timespec probe_ts;
    if (clock_gettime(CLOCK_MONOTONIC, &probe_ts) != 0) {
        return fail(Reason::clock_unavailable, errno, "clock_gettime(CLOCK_MONOTONIC)");
    }

    backend_choice choice = cfg.backend;
    const char* forced_by = "configuration";
    if (cfg.honour_env) {
        if (const char* env = std::getenv("CUSTOS_BACKEND"); env != nullptr && *env != '\0') {
            std::string_view v(env);
            if (v == "uring" || v == "io_uring") {
                choice = backend_choice::uring;
            } else if (v == "epoll") {
                choice = backend_choice::epoll;
            } else if (v == "auto") {
                choice = backend_choice::automatic;
            } else {
                return fail(Reason::backend_unknown, 0, v);
            }
            forced_by = "CUSTOS_BACKEND";
        }
    }

    char why_not_uring[200] = "";
    if (choice != backend_choice::epoll) {
#ifdef CUSTOS_HAVE_URING
        uring_ = new (std::nothrow) uring_backend(*this);
        if (uring_ == nullptr) {
            return fail(Reason::out_of_memory, ENOMEM, "io_uring backend");
        }
        char detail[160] = "";
        auto r = uring_->init(cfg, detail, sizeof detail);
        if (r) {
            backend_ = uring_;
            kind_ = backend_kind::uring;
            native_waitid_ = uring_->native_waitid();
            native_socket_ = uring_->native_socket();
            native_file_ops_ = uring_->native_file_ops();
            std::snprintf(reason_, sizeof reason_, "io_uring (%s): %s",
                          choice == backend_choice::uring ? forced_by : "preferred", detail);
        } else {
            delete uring_;
            uring_ = nullptr;
            if (choice == backend_choice::uring) {
                return fail(r.error());
            }
            r.error().format(why_not_uring, sizeof why_not_uring);
        }
#else
        if (choice == backend_choice::uring) {
            return fail(
                Error(Reason::io_uring_unavailable, ENOSYS, "built without liburing")
                    .with_resolution("rebuild with -During=enabled or unset CUSTOS_BACKEND"));
        }
        std::snprintf(why_not_uring, sizeof why_not_uring, "built without liburing");
#endif
    }
    if (backend_ == nullptr) {
        epoll_ = new (std::nothrow) epoll_backend(*this);
        if (epoll_ == nullptr) {
            return fail(Reason::out_of_memory, ENOMEM, "epoll backend");
        }
        if (auto r = epoll_->init(cfg); !r) {
            return fail(r.error());
        }
        backend_ = epoll_;
        kind_ = backend_kind::epoll;
        if (choice == backend_choice::epoll) {
            std::snprintf(reason_, sizeof reason_, "epoll (forced by %s)", forced_by);
        } else {
            std::snprintf(reason_, sizeof reason_, "epoll (io_uring not usable: %s)",
                          why_not_uring);
        }
    }

    // Non-blocking so that a read racing a re-arm returns EAGAIN instead of
    // blocking; both backends then wait for readiness again.
    timerfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timerfd_ < 0) {
        return fail(Reason::timerfd_unavailable, errno, "timerfd_create(CLOCK_MONOTONIC)");
    }
    ++stats_.syscalls;
    wheel_.advance(tick_now()); // empty wheel: O(1), starts its clock at now
    timerfd_op_.internal_ = true;
    read(timerfd_op_, timerfd_, &timerfd_buf_, sizeof timerfd_buf_);
    return {};
}

std::uint64_t reactor::tick_now() const noexcept {
    std::int64_t ns = to_ns(mono_clock::now());
    return ns <= 0 ? 0 : static_cast<std::uint64_t>(ns / tick_ns_);
}

std::uint64_t reactor::tick_at_or_after(mono_time t) const noexcept {
    std::int64_t ns = to_ns(t);
    if (ns <= 0) {
        return 0;
    }
    // Round up: a deadline between two ticks is due at the later one, so the
    // timer never fires before its deadline.
    return static_cast<std::uint64_t>(ns / tick_ns_ + (ns % tick_ns_ != 0 ? 1 : 0));
}

void reactor::submit(op& o, op_kind kind, int fd, mono_time deadline) noexcept {
    CUSTOS_ASSERT(backend_ != nullptr);
    CUSTOS_ASSERT(!o.busy());
    CUSTOS_ASSERT(o.done != nullptr);
    o.kind_ = kind;
    o.fd_ = fd;
    o.deadline_ns_ = to_ns(deadline);
    o.cancel_requested_ = false;
    o.result_ = 0;
    o.uring_tag_ = 0;
    ++stats_.ops_submitted;
    o.state_ = op::state::queued;
    if (!o.internal_ && in_flight_ >= cfg_.max_ops) {
        ++stats_.ops_rejected;
        o.counted_ = false;
        complete(o, -ENOBUFS);
        return;
    }
    o.counted_ = !o.internal_;
    if (o.counted_) {
        ++in_flight_;
    }
    if (performs_inline(kind)) {
        complete(o, perform_inline(o)); // its callback still runs from the loop
        return;
    }
    backend_->submit(o);
}

void reactor::read(op& o, int fd, void* buf, std::uint32_t len, mono_time deadline) noexcept {
    o.buf_ = buf;
    o.len_ = len;
    submit(o, op_kind::read, fd, deadline);
}

void reactor::write(op& o, int fd, const void* buf, std::uint32_t len,
                    mono_time deadline) noexcept {
    o.buf_ = const_cast<void*>(buf);
    o.len_ = len;
    submit(o, op_kind::write, fd, deadline);
}

void reactor::poll(op& o, int fd, std::uint32_t events, mono_time deadline) noexcept {
    o.flags_ = static_cast<int>(events);
    submit(o, op_kind::poll, fd, deadline);
}

void reactor::connect(op& o, int fd, const sockaddr* addr, socklen_t len,
                      mono_time deadline) noexcept {
    o.addr_ = addr;
    o.addrlen_ = len;
    submit(o, op_kind::connect, fd, deadline);
}

void reactor::accept(op& o, int fd, sockaddr* addr, socklen_t* len, mono_time deadline) noexcept {
    o.buf_ = addr;
    o.addrlen_out_ = len;
    submit(o, op_kind::accept, fd, deadline);
}

void reactor::send(op& o, int fd, const void* buf, std::uint32_t len, int flags,
                   mono_time deadline) noexcept {
    o.buf_ = const_cast<void*>(buf);
    o.len_ = len;
    o.flags_ = flags;
    submit(o, op_kind::send, fd, deadline);
}

void reactor::recv(op& o, int fd, void* buf, std::uint32_t len, int flags,
                   mono_time deadline) noexcept {
    o.buf_ = buf;
    o.len_ = len;
    o.flags_ = flags;
    submit(o, op_kind::recv, fd, deadline);
}

void reactor::close(op& o, int fd) noexcept {
    submit(o, op_kind::close, fd, no_deadline);
}

void reactor::waitid(op& o, int pidfd, siginfo_t* info, mono_time deadline) noexcept {
    o.buf_ = info;
    if (native_waitid_) {
        o.reap_on_poll_ = false;
        submit(o, op_kind::waitid, pidfd, deadline);
        return;
    }
    o.reap_on_poll_ = true;
    o.flags_ = POLLIN;
    submit(o, op_kind::poll, pidfd, deadline);
}

void reactor::socket(op& o, int domain, int type, int protocol) noexcept {
    o.flags_ = type | SOCK_NONBLOCK | SOCK_CLOEXEC;
    o.len_ = static_cast<std::uint32_t>(protocol);
    submit(o, op_kind::socket, domain, no_deadline);
}

void reactor::statx(op& o, int dirfd, const char* path, int flags, unsigned mask,
                    struct statx* out) noexcept {
    o.path_ = path;
    o.flags_ = flags;
    o.len_ = mask;
    o.buf_ = out;
    submit(o, op_kind::statx, dirfd, no_deadline);
}

void reactor::openat(op& o, int dirfd, const char* path, int flags, unsigned mode) noexcept {
    o.path_ = path;
    o.flags_ = flags | O_CLOEXEC;
    o.mode_ = mode;
    submit(o, op_kind::openat, dirfd, no_deadline);
}

void reactor::unlinkat(op& o, int dirfd, const char* path, int flags) noexcept {
    o.path_ = path;
    o.flags_ = flags;
    submit(o, op_kind::unlinkat, dirfd, no_deadline);
}

void reactor::fsync(op& o, int fd) noexcept {
    submit(o, op_kind::fsync, fd, no_deadline);
}

bool reactor::performs_inline(op_kind k) const noexcept {
    switch (k) {
    case op_kind::socket:
        return !native_socket_;
    case op_kind::statx:
    case op_kind::openat:
    case op_kind::unlinkat:
    case op_kind::fsync:
        return !native_file_ops_;
    case op_kind::none:
    case op_kind::read:
    case op_kind::write:
    case op_kind::poll:
    case op_kind::connect:
    case op_kind::accept:
    case op_kind::send:
    case op_kind::recv:
    case op_kind::close:
    case op_kind::waitid:
        return false;
    }
    return false;
}

std::int32_t reactor::perform_inline(op& o) noexcept {
    ++stats_.syscalls;
    long rc = -1;
    switch (o.kind_) {
    case op_kind::socket:
        rc = ::socket(o.fd_, o.flags_, static_cast<int>(o.len_));
        break;
    case op_kind::statx:
        rc = ::statx(o.fd_, o.path_, o.flags_, o.len_, static_cast<struct statx*>(o.buf_));
        break;
    case op_kind::openat:
        rc = ::openat(o.fd_, o.path_, o.flags_, static_cast<mode_t>(o.mode_));
        break;
    case op_kind::unlinkat:
        rc = ::unlinkat(o.fd_, o.path_, o.flags_);
        break;
    case op_kind::fsync:
        rc = ::fdatasync(o.fd_);
        break;
    case op_kind::none:
    case op_kind::read:
    case op_kind::write:
    case op_kind::poll:
    case op_kind::connect:
    case op_kind::accept:
    case op_kind::send:
    case op_kind::recv:
    case op_kind::close:
    case op_kind::waitid:
        errno = EINVAL;
        break;
    }
    return rc < 0 ? -errno : static_cast<std::int32_t>(rc);
}

bool reactor::cancel(op& o) noexcept {
    switch (o.state_) {
    case op::state::idle:
    case op::state::ready:
        return false;
    case op::state::queued:
    case op::state::in_flight:
    case op::state::waiting:
        return backend_->cancel(o);
    }
    return false;
}

void reactor::complete(op& o, std::int32_t result) noexcept {
    CUSTOS_ASSERT(o.state_ == op::state::queued || o.state_ == op::state::in_flight ||
                  o.state_ == op::state::waiting);
    if (o.deadline_timer_.pending()) {
        wheel_.cancel(o.deadline_timer_);
    }
    if (o.reap_on_poll_) {
        o.reap_on_poll_ = false;
        if (result >= 0) {
            // The pidfd polled readable: the child has exited; reap it now.
            auto* info = static_cast<siginfo_t*>(o.buf_);
            *info = siginfo_t{};
            ++stats_.syscalls;
            result = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(o.fd_), info,
                              WEXITED | WNOHANG) == 0
                         ? 0
                         : -errno;
            if (result == 0 && info->si_pid == 0) {
                result = -EAGAIN; // cannot happen after POLLIN; never report a non-exit
            }
        }
    }
    o.result_ = result;
    o.state_ = op::state::ready;
    ready_.push_back(o);
}

void reactor::dispatch() noexcept {
    // Only what is ready now: an op completed by a callback below (a rejected
    // or cancelled resubmission) waits for the next iteration, so a callback
    // that keeps resubmitting cannot starve the loop.
    intrusive_list<op> batch;
    batch.splice_back(ready_);
    while (op* o = batch.pop_front()) {
        o->state_ = op::state::idle;
        if (o->counted_) {
            o->counted_ = false;
            --in_flight_;
        }
        ++stats_.ops_completed;
        o->done(*o, o->result_);
    }
}

void reactor::arm(timer& t, mono_time deadline, nanos slack) noexcept {
    CUSTOS_ASSERT(t.fire != nullptr);
    std::int64_t s = slack.count() <= 0 ? 0 : slack.count() / tick_ns_;
    wheel_.arm(t, tick_at_or_after(deadline), static_cast<std::uint64_t>(s));
}

void reactor::arm_after(timer& t, nanos delay, nanos slack) noexcept {
    arm(t, mono_clock::now() + delay, slack);
}

bool reactor::cancel(timer& t) noexcept {
    return wheel_.cancel(t);
}

void reactor::process_timers() noexcept {
    wheel_.advance(tick_now());
    while (timer_node* n = wheel_.pop_expired()) {
        auto* t = static_cast<timer*>(n);
        ++stats_.timers_fired;
        t->fire(*t);
    }
}

void reactor::arm_timerfd() noexcept {
    std::uint64_t next = wheel_.next_expiry();
    if (next == timerfd_armed_tick_) {
        return;
    }
    itimerspec its{};
    if (next != timer_wheel::never) {
        std::int64_t ns = static_cast<std::int64_t>(next) * tick_ns_;
        // A zero it_value disarms a timerfd; a deadline computed as zero must
        // still fire, so it becomes 1 ns (long past: fires at once).
        if (ns <= 0) {
            ns = 1;
        }
        its.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        its.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    ++stats_.syscalls;
    ++stats_.timerfd_arms;
    if (timerfd_settime(timerfd_, TFD_TIMER_ABSTIME, &its, nullptr) == 0) {
        timerfd_armed_tick_ = next;
    }
}

void reactor::on_timerfd(op& o, std::int32_t result) noexcept {
    auto* self = static_cast<reactor*>(o.user);
    // The timerfd fired (or a read raced a re-arm: -EAGAIN). Either way the
    // wheel decides what is due; the armed deadline is spent.
    self->timerfd_armed_tick_ = timer_wheel::never;
    self->process_timers();
    if (result == -ECANCELED || result == -EBADF) {
        return; // shutting down
    }
    self->read(o, self->timerfd_, &self->timerfd_buf_, sizeof self->timerfd_buf_);
}

void reactor::run_once(bool block) noexcept {
    CUSTOS_ASSERT(backend_ != nullptr);
    // Fire what is already due without a round trip through the timerfd.
    // Timers that fire here are this turn's events: the turn must not then
    // block as if nothing had happened (a zero-delay timer found due here
    // would otherwise wait for some later, unrelated event).
    const std::uint64_t fired_before = stats_.timers_fired;
    if (wheel_.next_expiry() <= tick_now()) {
        process_timers();
    }
    // Start what callbacks and timers submitted; this may arm deadlines...
    backend_->flush();
    // ...so the timerfd is armed only now, for the earliest of them all.
    arm_timerfd();
    bool wait = block && ready_.empty() && !stop_ && stats_.timers_fired == fired_before;
    backend_->wait(wait);
    if (wait) {
        ++stats_.wakeups;
    }
    dispatch();
}

void reactor::run() noexcept {
    stop_ = false;
    while (!stop_) {
        run_once(true);
    }
}

} // namespace custos::io
