#include "ports/s6/notify.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace custos::ports {

namespace {

tl::unexpected<Error> refuse(int fd, int err, const char* resolution) noexcept {
    char subject[32];
    std::snprintf(subject, sizeof subject, "notify_fd %d", fd);
    Error e(Reason::invalid_argument, err, subject);
    e.with_resolution(resolution);
    return tl::unexpected<Error>(e);
}

// write() to a pipe whose reader has gone raises SIGPIPE, which would kill
// a process that has not ignored it. Blocked for the one write, and a
// SIGPIPE that write raised is taken back off the thread's pending set.
ssize_t write_without_sigpipe(int fd, const void* buf, std::size_t len) noexcept {
    sigset_t pipe_only;
    sigset_t old;
    ::sigemptyset(&pipe_only);
    ::sigaddset(&pipe_only, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    sigset_t pending;
    ::sigemptyset(&pending);
    ::sigpending(&pending);
    const bool was_pending = ::sigismember(&pending, SIGPIPE) == 1;
    ssize_t n;
    do {
        n = ::write(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    const int err = errno;
    if (n < 0 && err == EPIPE && !was_pending) {
        const timespec zero{};
        while (::sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    errno = err;
    return n;
}

} // namespace

Result<void> s6_notify::open(int fd) noexcept {
    close();
    if (fd >= 0 && fd <= 2) {
        return refuse(fd, 0,
                      "the notification fd must not be a standard stream: write the number "
                      "of the service directory's notification-fd file (3 or above)");
    }
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) {
        return refuse(fd, errno,
                      "the notification fd is not open: start custosd under s6-supervise with "
                      "notification-fd holding this number, or drop --notify-fd/notify_fd");
    }
    if ((fl & O_ACCMODE) == O_RDONLY) {
        return refuse(fd, EBADF,
                      "the notification fd is open read-only: pass the write end of the pipe "
                      "s6-supervise opened (the number in notification-fd)");
    }
    // No service may inherit it, and the newline must never wait.
    const int fdfl = ::fcntl(fd, F_GETFD);
    if (fdfl < 0 || ::fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0 ||
        ((fl & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
        return refuse(fd, errno,
                      "custos could not set FD_CLOEXEC and O_NONBLOCK on the "
                      "notification fd: pass a pipe or a socket");
    }
    fd_ = fd;
    configured_ = fd;
    state_ = state::open;
    return {};
}

void s6_notify::close() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
        state_ = state::closed;
    }
}

void s6_notify::disown() noexcept {
    fd_ = -1;
    state_ = state::off;
}

notify_outcome s6_notify::ready() noexcept {
    if (fd_ < 0) {
        return notify_outcome::unsupported;
    }
    const ssize_t n = write_without_sigpipe(fd_, "\n", 1);
    if (n == 1) {
        ++counters_.sent;
        close();
        state_ = state::sent;
        return notify_outcome::sent;
    }
    ++counters_.dropped;
    counters_.last_errno = n < 0 ? errno : EIO;
    if (n < 0 && errno == EAGAIN) {
        return notify_outcome::dropped; // a full pipe: another call may get through
    }
    close(); // the reader is gone (EPIPE) or the descriptor is broken: for good
    state_ = state::gone;
    return notify_outcome::dropped;
}

std::size_t s6_notify::describe(char* buf, std::size_t len) const noexcept {
    const char* note = "";
    switch (state_) {
    case state::off:
        break;
    case state::open:
        break;
    case state::sent:
        note = " (ready sent)";
        break;
    case state::gone:
        note = " (reader gone)";
        break;
    case state::closed:
        note = " (closed)";
        break;
    }
    const int n = state_ == state::off ? std::snprintf(buf, len, "s6: off")
                                       : std::snprintf(buf, len, "s6: fd %d%s", configured_, note);
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

} // namespace custos::ports
