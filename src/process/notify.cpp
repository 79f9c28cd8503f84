#include "process/notify.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "core/assert.hpp"
#include "process/fd_closer.hpp"

// Linux 6.16: whether the socket accepts SCM_RIGHTS at all (default 1). Not
// in Debian 12's headers; the number is the kernel's uapi value.
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif

namespace custos::process {

namespace {

// Plain decimal digits only (no sign, no blanks, not empty), without overflow.
bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty()) {
        return false;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    out = v;
    return true;
}

// Applies one assignment; false when it is unknown or its value is invalid.
bool apply(std::string_view key, std::string_view value, notify_message& m) noexcept {
    std::uint64_t n = 0;
    if (key == "READY" && value == "1") {
        m.ready = true;
    } else if (key == "RELOADING" && value == "1") {
        m.reloading = true;
    } else if (key == "STOPPING" && value == "1") {
        m.stopping = true;
    } else if (key == "WATCHDOG" && value == "1") {
        m.watchdog_ping = true;
    } else if (key == "WATCHDOG" && value == "trigger") {
        m.watchdog_trigger = true;
    } else if (key == "BARRIER" && value == "1") {
        m.barrier = true;
    } else if (key == "STATUS") {
        m.has_status = true;
        m.status = value;
    } else if (key == "ERRNO" && parse_u64(value, n) && n <= 4095) {
        // 4095: systemd's ERRNO_MAX, the largest value errno can take.
        m.has_errno = true;
        m.errno_value = static_cast<int>(n);
    } else if (key == "EXTEND_TIMEOUT_USEC" && parse_u64(value, n)) {
        m.has_extend = true;
        m.extend_usec = n;
    } else if (key == "WATCHDOG_USEC" && parse_u64(value, n)) {
        m.has_watchdog_usec = true;
        m.watchdog_usec = n;
    } else if (key == "MONOTONIC_USEC" && parse_u64(value, n)) {
        m.has_monotonic_usec = true;
        m.monotonic_usec = n;
    } else if (key == "MAINPID" && parse_u64(value, n) && n > 0 && n <= INT_MAX) {
        m.has_mainpid = true;
        m.mainpid = static_cast<int>(n);
    } else {
        return false;
    }
    return true;
}

} // namespace

bool parse_notify(std::string_view datagram, notify_message& out) noexcept {
    out = notify_message{};
    if (datagram.find('\0') != std::string_view::npos) {
        return false;
    }
    std::size_t pos = 0;
    while (pos < datagram.size()) {
        std::size_t end = datagram.find_first_of("\n\r", pos);
        if (end == std::string_view::npos) {
            end = datagram.size();
        }
        std::string_view line = datagram.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty()) {
            continue;
        }
        std::size_t eq = line.find('=');
        if (eq == std::string_view::npos || !apply(line.substr(0, eq), line.substr(eq + 1), out)) {
            ++out.ignored;
        }
    }
    return true;
}

notify_socket::notify_socket() noexcept
    : poll_op_(&notify_socket::on_poll, this), close_op_(&notify_socket::on_closed, this),
      retry_(&notify_socket::on_retry, this) {}

notify_socket::~notify_socket() {
    // Without the reactor (it may be gone): a close op it never ran, or a
    // socket close() was not called for, is closed here.
    if (next_fd_ >= 0) {
        ::close(next_fd_);
        next_fd_ = -1;
    }
    if (closing_fd_ >= 0) {
        ::close(closing_fd_);
        closing_fd_ = -1;
    }
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    unlink_path();
}

// socket, bind at `addr` (`path` as written, for errors), chmod 0666 and
// SO_PASSCRED; `st` gets the socket file's identity. The caller has made
// sure nothing else is at the path.
Result<int> notify_socket::bind_socket(const sockaddr_un& addr, std::string_view path,
                                       struct stat& st) noexcept {
    const bool abstract = addr.sun_path[0] == '\0';
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail(Reason::notify_socket_unavailable, errno, path);
    }
    auto socklen =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), socklen) != 0) {
        int err = errno;
        ::close(fd);
        return fail(abstract && err == EADDRINUSE ? Reason::instance_running
                                                  : Reason::notify_socket_unavailable,
                    err, path);
    }
    int one = 1;
    if ((!abstract && (::chmod(addr.sun_path, 0666) != 0 || ::lstat(addr.sun_path, &st) != 0)) ||
        ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) != 0) {
        int err = errno;
        ::close(fd);
        if (!abstract) {
            ::unlink(addr.sun_path);
        }
        return fail(Reason::notify_socket_unavailable, err, path);
    }
    // As PID 1 does, though for AF_UNIX datagrams the queue length limit
    // (net.unix.max_dgram_qlen) and the sender's sndbuf bind first; senders
    // then block instead of losing datagrams, so a refusal is harmless.
    int rcvbuf = 256 * 1024;
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    return fd;
}

Result<void> notify_socket::open(std::string_view path) noexcept {
    if (fd_ >= 0 || closing_fd_ >= 0 || busy()) {
        return fail(Reason::notify_socket_unavailable, EBUSY, path);
    }
    const bool abstract = !path.empty() && path.front() == '@';
    // Clients (libsystemd, systemd-notify) accept only '/' or '@' here.
    if (path.size() < 2 || (path.front() != '/' && !abstract) ||
        path.find('\0') != std::string_view::npos) {
        return fail(Reason::notify_socket_unavailable, EINVAL, path);
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        return fail(Reason::notify_socket_unavailable, ENAMETOOLONG, path);
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    struct stat st {};
    if (abstract) {
        addr.sun_path[0] = '\0'; // the exact length below: no trailing NULs in the name
    } else if (::lstat(addr.sun_path, &st) == 0) {
        // bind() fails with EADDRINUSE on a leftover socket file: remove it,
        // but only a socket, never a file the operator put there.
        if (!S_ISSOCK(st.st_mode)) {
            return fail(Reason::notify_socket_unavailable, EEXIST, path);
        }
        if (::unlink(addr.sun_path) != 0 && errno != ENOENT) {
            return fail(Reason::notify_socket_unavailable, errno, path);
        }
    } else if (errno != ENOENT) {
        return fail(Reason::notify_socket_unavailable, errno, path);
    }

    auto fd = bind_socket(addr, path, st);
    if (!fd) {
        return fail(fd.error());
    }
    fd_ = *fd;
    reactor_ = nullptr; // until start(): close() then closes directly
    handler_ = nullptr;
    rights_off_ = false;
    dev_ = abstract ? 0 : st.st_dev;
    ino_ = abstract ? 0 : st.st_ino;
    std::memcpy(path_, path.data(), path.size());
    path_[path.size()] = '\0';
    path_len_ = path.size();
    return {};
}

void notify_socket::start(io::reactor& r, notify_handler* h, notify_buffers& bufs,
                          std::uint32_t tag, fd_closer* closer) noexcept {
    CUSTOS_ASSERT(fd_ >= 0 && h != nullptr && !poll_op_.busy());
    reactor_ = &r;
    handler_ = h;
    bufs_ = &bufs;
    tag_ = tag;
    closer_ = closer;
    // Like a mailbox's read, this is one op known at init that must never be
    // refused for max_ops; the same holds for the close that ends it.
    io::reactor::make_internal(poll_op_);
    io::reactor::make_internal(close_op_);
    r.poll(poll_op_, fd_, POLLIN);
}

void notify_socket::close() noexcept {
    if (next_fd_ >= 0) {
        ::close(next_fd_); // never registered with the reactor
        next_fd_ = -1;
    }
    if (fd_ >= 0) {
        if (reactor_ != nullptr) {
            reactor_->cancel(retry_);
            reactor_->cancel(poll_op_);
            // Through the reactor: the epoll backend must forget the
            // descriptor before its number can be handed out again.
            closing_fd_ = fd_;
            reactor_->close(close_op_, fd_);
        } else {
            ::close(fd_);
        }
        fd_ = -1;
    }
    unlink_path();
}

bool notify_socket::restore() noexcept {
    if (fd_ < 0 || path_len_ == 0 || path_[0] == '@' || next_fd_ >= 0 || close_op_.busy()) {
        return false;
    }
    struct stat st {};
    if (::lstat(path_, &st) == 0 || errno != ENOENT) {
        return false; // still there, or something else is: not ours to replace
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_, path_len_);
    auto fd = bind_socket(addr, std::string_view(path_, path_len_), st);
    if (!fd) {
        return false;
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    ++stats_.rebinds;
    if (reactor_ == nullptr) {
        ::close(fd_);
        fd_ = *fd;
        return true;
    }
    // Swap from the loop: the poll on the old descriptor ends first.
    next_fd_ = *fd;
    reactor_->cancel(retry_);
    if (poll_op_.busy()) {
        reactor_->cancel(poll_op_); // on_poll() swaps
    } else {
        swap_socket();
    }
    return true;
}

void notify_socket::swap_socket() noexcept {
    // What was sent to the old name before it went is still read.
    for (std::uint32_t n = 0; n < max_queue && receive_one(); ++n) {
    }
    closing_fd_ = fd_;
    reactor_->close(close_op_, fd_);
    fd_ = next_fd_;
    next_fd_ = -1;
    reactor_->poll(poll_op_, fd_, POLLIN);
}

void notify_socket::unlink_path() noexcept {
    if (path_len_ == 0) {
        return;
    }
    if (path_[0] == '@') {
        path_len_ = 0; // abstract: the name goes with the socket
        path_[0] = '\0';
        return;
    }
    // Only the file open() bound: another instance may have taken the path.
    struct stat st {};
    if (::lstat(path_, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev_ &&
        st.st_ino == ino_) {
        ::unlink(path_);
    }
    path_len_ = 0;
    path_[0] = '\0';
}

void notify_socket::on_closed(io::op& o, std::int32_t) noexcept {
    // Linux releases the descriptor whatever close() reports.
    static_cast<notify_socket*>(o.user)->closing_fd_ = -1;
}

void notify_socket::on_retry(io::timer& t) noexcept {
    auto* self = static_cast<notify_socket*>(t.user);
    if (self->fd_ >= 0 && !self->poll_op_.busy()) {
        self->reactor_->poll(self->poll_op_, self->fd_, POLLIN);
    }
}

void notify_socket::on_poll(io::op& o, std::int32_t result) noexcept {
    auto* self = static_cast<notify_socket*>(o.user);
    if (self->fd_ < 0) {
        return; // closed: this is the cancellation
    }
    if (self->next_fd_ >= 0) {
        self->swap_socket(); // restore() cancelled this poll
        return;
    }
    if (result < 0) {
        // Not expected on a live socket (epoll_ctl ENOMEM/ENOSPC, say). Wait
        // a little rather than spin on an error that persists.
        ++self->stats_.receive_errors;
        self->reactor_->arm_after(self->retry_, std::chrono::milliseconds(100));
        return;
    }
    ++self->stats_.wakeups;
    std::uint32_t n = 0;
    // The handler may close() us: stop as soon as it has.
    while (self->fd_ >= 0 && n < max_per_wakeup && self->receive_one()) {
        ++n;
    }
    if (n == max_per_wakeup) {
        ++self->stats_.drains_capped; // the rest waits for the next wake-up
    }
    if (self->fd_ >= 0) {
        self->reactor_->poll(o, self->fd_, POLLIN);
    }
}

void notify_socket::drain() noexcept {
    std::uint32_t n = 0;
    while (fd_ >= 0 && bufs_ != nullptr && n < max_queue && receive_one()) {
        ++n;
    }
}

bool notify_socket::receive_one() noexcept {
    iovec iov{bufs_->data, sizeof bufs_->data};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = bufs_->control;
    mh.msg_controllen = sizeof bufs_->control;
    // CLOEXEC: a received fd must not leak into a child spawned before we
    // close it.
    ssize_t n = ::recvmsg(fd_, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) {
        if (errno == EINTR) {
            return true;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            ++stats_.receive_errors;
        }
        return false;
    }
    ++stats_.received;

    ucred cred{};
    bool has_cred = false;
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len == CMSG_LEN(sizeof(ucred))) {
            std::memcpy(&cred, CMSG_DATA(c), sizeof cred); // CMSG_DATA may be unaligned
            has_cred = true;
        }
    }
    // A pid of 0: the sender lives in a pid namespace we cannot see into.
    bool ok = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) == 0 &&
              static_cast<std::size_t>(n) <= max_datagram && has_cred && cred.pid > 0;
    notify_message m;
    if (ok) {
        ok = parse_notify(std::string_view(bufs_->data, static_cast<std::size_t>(n)), m);
    }
    if (!ok) {
        ++stats_.dropped_malformed;
    } else if (!handler_->on_notify(tag_, cred, m)) {
        ++stats_.dropped_unattributed;
    }
    // After the handler: closing is what releases a BARRIER=1 sender, which
    // must only happen once everything it sent before has been processed.
    close_received_fds(mh);
    return true;
}

void notify_socket::close_received_fds(msghdr& mh) noexcept {
    for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char* data = CMSG_DATA(c);
        for (std::size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
            close_one(fd);
            ++stats_.fds_closed;
        }
    }
    if (rights_off_ && closer_ != nullptr && closer_->pending() < fd_closer::capacity / 2) {
        allow_rights(true); // the closer caught up
    }
}

void notify_socket::close_one(int fd) noexcept {
    // The type without asking the filesystem (a FUSE or NFS getattr could
    // wait): AT_STATX_DONT_SYNC answers from what the kernel has cached.
    struct statx sx {};
    const bool pipe = ::statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) == 0 &&
                      S_ISFIFO(sx.stx_mode);
    if (pipe || closer_ == nullptr) {
        ::close(fd); // a pipe's release never waits: a barrier's, in order
        return;
    }
    if (closer_->try_close(fd)) {
        ++stats_.fds_handed_over;
        return;
    }
    // The closer is stuck on earlier descriptors and its ring is full:
    // refuse more where the kernel can, and close this one here.
    allow_rights(false);
    ++stats_.fds_closed_inline;
    ::close(fd);
}

void notify_socket::allow_rights(bool allow) noexcept {
    int v = allow ? 1 : 0;
    if (::setsockopt(fd_, SOL_SOCKET, SO_PASSRIGHTS, &v, sizeof v) == 0) {
        if (!allow && !rights_off_) {
            ++stats_.rights_refused;
        }
        rights_off_ = !allow;
    }
}

notify_dir::~notify_dir() {
    if (watch_fd_ >= 0) {
        ::close(watch_fd_);
    }
    if (lock_fd_ >= 0) {
        ::close(lock_fd_); // releases the lock; the file stays (harmless)
    }
}

void notify_dir::add_watch() noexcept {
    if (watch_fd_ < 0) {
        watch_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    }
    if (watch_fd_ >= 0) {
        (void)::inotify_add_watch(watch_fd_, dir_,
                                  IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF |
                                      IN_ONLYDIR);
    }
}

std::uint32_t notify_dir::restore() noexcept {
    if (len_ == 0 || abstract()) {
        return 0;
    }
    std::uint32_t n = 0;
    struct stat st {};
    if (::stat(dir_, &st) != 0 && errno == ENOENT) {
        if (::mkdir(dir_, 0755) == 0) {
            (void)::chmod(dir_, 0755); // whatever the umask, as in open()
            ++n;
        }
        add_watch(); // the old watch died with the directory
    }
    char lock[sizeof dir_ + 8];
    std::snprintf(lock, sizeof lock, "%s/.lock", dir_);
    if (::lstat(lock, &st) != 0 && errno == ENOENT) {
        // Our lock is on a file without a name now: a second instance
        // would find none. Take a new one; our old one goes.
        int fd = take_lock(lock);
        if (fd >= 0) {
            ::close(lock_fd_);
            lock_fd_ = fd;
            ++n;
        }
    }
    return n;
}

int notify_dir::take_lock(const char* lock) noexcept {
    int fd = ::open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        return -errno;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        ::close(fd);
        return -err;
    }
    char pid[16];
    int n = std::snprintf(pid, sizeof pid, "%d\n", static_cast<int>(::getpid()));
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid, static_cast<std::size_t>(n), 0) != n) {
        // Only informative (who holds it): the lock itself is what counts.
    }
    return fd;
}

Result<void> notify_dir::open(std::string_view dir) noexcept {
    if (len_ != 0) {
        return fail(Reason::notify_socket_unavailable, EBUSY, dir);
    }
    while (dir.size() > 1 && dir.back() == '/') {
        dir.remove_suffix(1);
    }
    const bool abstract = !dir.empty() && dir.front() == '@';
    if (dir.size() < 2 || (dir.front() != '/' && !abstract) ||
        dir.find('\0') != std::string_view::npos) {
        return fail(Reason::notify_socket_unavailable, EINVAL, dir);
    }
    // Room for "/" and a one-character service name at least.
    if (dir.size() + 2 >= sizeof dir_) {
        return fail(Reason::notify_socket_unavailable, ENAMETOOLONG, dir);
    }
    std::memcpy(dir_, dir.data(), dir.size());
    dir_[dir.size()] = '\0';
    if (abstract) {
        len_ = dir.size();
        return {};
    }
    if (::mkdir(dir_, 0755) == 0) {
        // The umask (077 under many service managers) must not make it
        // 0700: a service that drops to its own user before READY=1 has
        // to reach its socket in here.
        (void)::chmod(dir_, 0755);
    } else if (errno != EEXIST) {
        return fail(Reason::notify_socket_unavailable, errno, dir);
    }
    struct stat st {};
    if (::stat(dir_, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return fail(Reason::notify_socket_unavailable, errno != 0 ? errno : ENOTDIR, dir);
    }
    char lock[sizeof dir_ + 8];
    std::snprintf(lock, sizeof lock, "%s/.lock", dir_);
    int fd = take_lock(lock);
    if (fd == -EWOULDBLOCK) {
        char holder[32] = {};
        ssize_t n = -1;
        if (int rd = ::open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); rd >= 0) {
            n = ::pread(rd, holder, sizeof holder - 1, 0);
            ::close(rd);
        }
        while (n > 0 && (holder[n - 1] == '\n' || holder[n - 1] == ' ')) {
            holder[--n] = '\0';
        }
        char subject[Error::subject_capacity + 1];
        std::snprintf(subject, sizeof subject, "%.90s held by pid %.16s", lock,
                      n > 0 ? holder : "(unknown)");
        return fail(Reason::instance_running, EWOULDBLOCK, subject);
    }
    if (fd < 0) {
        return fail(Reason::notify_socket_unavailable, -fd, lock);
    }
    lock_fd_ = fd;
    len_ = dir.size();
    add_watch();
    return {};
}

bool notify_dir::address(std::string_view service, char* out, std::size_t cap) const noexcept {
    if (len_ == 0 || service.empty()) {
        return false;
    }
    std::size_t need = len_ + 1 + service.size();
    if (need >= sizeof(sockaddr_un::sun_path) || need >= cap) {
        return false;
    }
    std::memcpy(out, dir_, len_);
    out[len_] = '/';
    std::memcpy(out + len_ + 1, service.data(), service.size());
    out[need] = '\0';
    return true;
}

} // namespace custos::process
