// The closer: closes descriptors that custos was handed by other processes
// (SCM_RIGHTS on the notify sockets) on a thread of its own, so that no
// close() of theirs can stall the reactor.
//
// Why a thread: the last close of a descriptor runs its release in the
// closing thread, and some releases wait: a TCP socket with SO_LINGER and
// unsent data waits up to l_linger seconds, a file on FUSE or NFS waits for
// its flush, a tty for its output to drain. A hostile sender chooses which.
// Sockets get SO_LINGER {1, 0} here first, which turns a lingering close
// into an immediate reset; the rest may still block, but only this thread.
//
// Bounded: a ring of `capacity` descriptors; try_close() refuses (false)
// when it is full, and the caller decides (the notify socket then stops
// accepting descriptors where the kernel can refuse them: SO_PASSRIGHTS).
// The thread and its stack are created by start(); after that nothing here
// allocates. Producers: any thread (the ring is MPSC); one consumer.
//
// The runtime uses the process-wide instance (process()), started once and
// never stopped: a close stuck in the kernel (a hung FUSE mount) must not
// hang a Runtime's destructor or custosd's exit, and a thread cannot be
// cancelled safely in the middle of close(). The thread dies with the
// process.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

#include <custos/error.hpp>

#include "core/mpsc_ring.hpp"

namespace custos::process {

class fd_closer {
public:
    static constexpr std::uint32_t capacity = 256;

    fd_closer() = default;
    // The process-wide closer (static storage). Not started until start().
    static fd_closer& process() noexcept;
    ~fd_closer();
    fd_closer(const fd_closer&) = delete;
    fd_closer& operator=(const fd_closer&) = delete;

    // Creates the doorbell and the thread (64 KiB stack); once: later calls
    // return at once (also from other threads). Errors: ThreadUnavailable
    // with the errno of eventfd or pthread_create (a later call retries).
    Result<void> start() noexcept;
    // Hands `fd` to the thread. False when the ring is full or the closer
    // was never started: `fd` is then still the caller's.
    [[nodiscard]] bool try_close(int fd) noexcept;
    // Descriptors handed over and not closed yet (approximate from other
    // threads: for back-pressure decisions, not accounting).
    std::uint32_t pending() const noexcept {
        // Acquire pairs with the thread's release increment of closed_.
        const std::uint32_t closed = closed_.load(std::memory_order_acquire);
        return queued_.load(std::memory_order_relaxed) - closed;
    }
    std::uint64_t closed() const noexcept { return closed_.load(std::memory_order_relaxed); }
    // Stops the thread after it has closed everything queued. A close stuck
    // in the kernel makes this wait for it: for tests and private
    // instances; process()'s is never stopped.
    void stop() noexcept;

private:
    static void* main(void* self) noexcept;

    mpsc_ring<int, capacity> ring_;
    int doorbell_ = -1;
    // 0 idle, 1 starting, 2 running. start()'s release store pairs with
    // try_close()'s acquire load (the doorbell is set by then).
    std::atomic<int> state_{0};
    pthread_t thread_{};
    std::atomic<std::uint32_t> queued_{0}; // producers: relaxed increments
    std::atomic<std::uint32_t> closed_{0}; // written by the closer thread
};

} // namespace custos::process
