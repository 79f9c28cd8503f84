#include "process/fd_closer.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <new>

namespace custos::process {

fd_closer::~fd_closer() {
    stop();
}

fd_closer& fd_closer::process() noexcept {
    // Never destroyed: its thread may be inside a close() at exit.
    alignas(fd_closer) static unsigned char storage[sizeof(fd_closer)];
    static fd_closer* the = ::new (storage) fd_closer();
    return *the;
}

Result<void> fd_closer::start() noexcept {
    int expected = 0;
    if (!state_.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        // Running, or another thread is starting it: wait for the outcome.
        while (expected == 1) {
            ::usleep(100);
            expected = state_.load(std::memory_order_acquire);
        }
        if (expected == 2) {
            return {};
        }
        return start(); // that start failed: attempt it ourselves
    }
    doorbell_ = ::eventfd(0, EFD_CLOEXEC);
    if (doorbell_ < 0) {
        state_.store(0, std::memory_order_release);
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
        state_.store(0, std::memory_order_release);
        return fail(Reason::thread_unavailable, err, "fd closer thread");
    }
    // Release pairs with try_close()'s acquire load: the doorbell is set.
    state_.store(2, std::memory_order_release);
    return {};
}

bool fd_closer::try_close(int fd) noexcept {
    if (state_.load(std::memory_order_acquire) != 2 || fd < 0) {
        return false;
    }
    // Counted first, so pending() never reads less than what is queued.
    queued_.fetch_add(1, std::memory_order_relaxed);
    push_result r = ring_.try_push(fd);
    if (r == push_result::full) {
        queued_.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    if (r == push_result::pushed_wake) {
        std::uint64_t one = 1;
        // An eventfd write only fails on counter overflow (2^64 - 1 rings).
        (void)!::write(doorbell_, &one, sizeof one);
    }
    return true;
}

void fd_closer::stop() noexcept {
    if (state_.load(std::memory_order_acquire) != 2) {
        return;
    }
    // -1 is the sentinel: everything queued before it is closed first.
    while (ring_.try_push(-1) == push_result::full) {
        ::usleep(1000);
    }
    std::uint64_t one = 1;
    (void)!::write(doorbell_, &one, sizeof one);
    ::pthread_join(thread_, nullptr);
    state_.store(0, std::memory_order_release);
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

} // namespace custos::process
