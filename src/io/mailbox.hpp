// A mailbox: how any thread hands a message to the reactor thread.
//
// An mpsc_ring of N messages plus an eventfd doorbell. try_post() never
// blocks and never allocates: it returns false when the ring is full (the
// caller counts the drop or backs off), and writes the eventfd only when its
// message is the first since the reactor last drained, so a burst costs one
// system call. The reactor reads the eventfd with an ordinary op, drains up
// to N messages per wake-up into the handler, and rings itself again if more
// are left, so a flood of posts cannot starve its other work.
//
// Lifetime: the mailbox's read op is in flight in its reactor from attach()
// on. Destroy the mailbox only once that reactor no longer runs (the reactor
// itself may be destroyed before or after it); there is no detach.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "core/mpsc_ring.hpp"
#include "io/reactor.hpp"

namespace custos::io {

template <class T, std::uint32_t N>
class mailbox {
public:
    using handler = void (*)(void* ctx, const T& msg);

    mailbox() noexcept : read_op_(&mailbox::on_doorbell, this) {}
    ~mailbox() {
        if (efd_ >= 0) {
            ::close(efd_);
        }
    }
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    // Reactor thread, at init. Errors: EventfdUnavailable.
    Result<void> attach(reactor& r, handler h, void* ctx) noexcept {
        efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (efd_ < 0) {
            return fail(Reason::eventfd_unavailable, errno, "eventfd (mailbox doorbell)");
        }
        r_ = &r;
        handler_ = h;
        ctx_ = ctx;
        reactor::make_internal(read_op_);
        r.read(read_op_, efd_, &counter_, sizeof counter_);
        return {};
    }

    // Any thread. False when the ring is full (nothing was posted).
    [[nodiscard]] bool try_post(const T& msg) noexcept {
        switch (ring_.try_push(msg)) {
        case push_result::full:
            // Relaxed: a statistic, read without ordering requirements.
            full_.fetch_add(1, std::memory_order_relaxed);
            return false;
        case push_result::pushed:
            return true;
        case push_result::pushed_wake:
            ring_doorbell();
            return true;
        }
        return false;
    }

    // Reactor thread: a consumer that cannot take more for now (the event
    // log with both staging buffers taken) holds the mailbox: messages wait
    // in the ring, which fills, and try_post() refuses (the producer counts
    // or backs off) rather than the consumer losing what it took. release()
    // drains again from the next loop turn.
    void hold() noexcept { held_ = true; }
    void release() noexcept {
        if (held_) {
            held_ = false;
            ring_doorbell(); // what waited: no producer rings while unseen_ > 0
        }
    }
    bool held() const noexcept { return held_; }

    // Reactor thread, once its loop has ended (a runtime's stop): hands
    // what the ring holds to the handler now, held or not, at most N
    // messages. Returns how many.
    std::uint32_t drain_now() noexcept {
        held_ = false;
        ring_.begin_drain();
        T msg;
        std::uint32_t n = 0;
        while (n < N && ring_.try_pop(msg)) {
            ++n;
            handler_(ctx_, msg);
        }
        return n;
    }

    // Posts refused because the ring was full.
    std::uint32_t refused() const noexcept {
        // Relaxed: a statistic.
        return full_.load(std::memory_order_relaxed);
    }

private:
    void ring_doorbell() noexcept {
        std::uint64_t one = 1;
        // An eventfd write only fails when the counter would overflow
        // (EAGAIN), and then the reactor has a wake-up pending anyway.
        [[maybe_unused]] auto n = ::write(efd_, &one, sizeof one);
    }

    static void on_doorbell(op& o, std::int32_t result) noexcept {
        auto* self = static_cast<mailbox*>(o.user);
        if (result == -ECANCELED || result == -EBADF) {
            return;
        }
        if (self->held_) {
            // Not step 2: unseen_ stays above 0, so producers do not ring
            // while held; release() does.
            self->r_->read(o, self->efd_, &self->counter_, sizeof self->counter_);
            return;
        }
        // The read cleared the doorbell (step 1); now step 2 and 3.
        self->ring_.begin_drain();
        T msg;
        std::uint32_t n = 0;
        while (n < N && !self->held_ && self->ring_.try_pop(msg)) {
            ++n;
            self->handler_(self->ctx_, msg);
        }
        if (n == N && !self->held_) {
            self->ring_doorbell(); // more may be waiting: come back next iteration
        }
        self->r_->read(o, self->efd_, &self->counter_, sizeof self->counter_);
    }

    mpsc_ring<T, N> ring_;
    std::atomic<std::uint32_t> full_{0};
    int efd_ = -1;
    std::uint64_t counter_ = 0;
    reactor* r_ = nullptr;
    handler handler_ = nullptr;
    void* ctx_ = nullptr;
    bool held_ = false;
    op read_op_;
};

} // namespace custos::io
