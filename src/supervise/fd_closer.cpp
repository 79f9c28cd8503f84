#include "supervise/fd_closer.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>

namespace custos::sup {

fd_closer::~fd_closer() {
    stop();
}

Result<void> fd_closer::start() noexcept {
    if (running_) {
        return {};
    }
    doorbell_ = ::eventfd(0, EFD_CLOEXEC);
    if (doorbell_ < 0) {
        return fail(Reason::thread_unavailable, errno, "fd closer eventfd");
    }
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    ::pthread_attr_setstacksize(&attr, 64 * 1024);
    // No signal for this thread: it must never take SIGCHLD or SIGTERM from
    // the reactor's signalfds (they are blocked process-wide by then anyway).
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = ::pthread_create(&thread_, &attr, &fd_closer::main, this);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::pthread_attr_destroy(&attr);
    if (err != 0) {
        ::close(doorbell_);
        doorbell_ = -1;
        return fail(Reason::thread_unavailable, err, "fd closer thread");
    }
    running_ = true;
    return {};
}

bool fd_closer::try_close(int fd) noexcept {
    if (!running_ || fd < 0) {
        return false;
    }
    push_result r = ring_.try_push(fd);
    if (r == push_result::full) {
        return false;
    }
    ++queued_;
    if (r == push_result::pushed_wake) {
        std::uint64_t one = 1;
        // An eventfd write only fails on counter overflow (2^64 - 1 rings).
        (void)!::write(doorbell_, &one, sizeof one);
    }
    return true;
}

void fd_closer::stop() noexcept {
    if (!running_) {
        if (doorbell_ >= 0) {
            ::close(doorbell_);
            doorbell_ = -1;
        }
        return;
    }
    // -1 is the sentinel: everything queued before it is closed first.
    while (ring_.try_push(-1) == push_result::full) {
        ::usleep(1000);
    }
    std::uint64_t one = 1;
    (void)!::write(doorbell_, &one, sizeof one);
    ::pthread_join(thread_, nullptr);
    running_ = false;
    ::close(doorbell_);
    doorbell_ = -1;
}

void* fd_closer::main(void* arg) noexcept {
    auto& self = *static_cast<fd_closer*>(arg);
    for (;;) {
        std::uint64_t n = 0;
        if (::read(self.doorbell_, &n, sizeof n) < 0 && errno != EINTR) {
            return nullptr; // cannot happen on a valid eventfd
        }
        self.ring_.begin_drain();
        int fd = -1;
        while (self.ring_.try_pop(fd)) {
            if (fd < 0) {
                return nullptr;
            }
            // A lingering socket resets at once instead of waiting for its
            // unsent data. Harmless for other socket types; fails (ENOTSOCK)
            // for everything else, which is closed as it is.
            linger off{1, 0};
            (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof off);
            ::close(fd);
            // Release pairs with pending()'s acquire load.
            self.closed_.fetch_add(1, std::memory_order_release);
        }
    }
}

} // namespace custos::sup
