// Bounded multi-producer single-consumer ring: how other threads hand work to
// the reactor thread without a lock.
//
// Cells carry a sequence number (D. Vyukov's bounded queue): a producer
// claims a position with a CAS on `tail_`, writes the value, then publishes
// by storing the cell's sequence; the consumer pops in position order. When
// the ring is full, try_push() fails: the caller decides (drop and count, or
// back off). Capacity N is a power of two and positions wrap modulo 2^32.
//
// Doorbell: the consumer sleeps on an eventfd. try_push() reports when it is
// the first publication since the consumer's last begin_drain() (`unseen_`
// went 0 -> 1), and only then should the producer ring the doorbell, so a
// burst of N pushes costs one eventfd write, not N. The consumer's protocol:
//   1. clear the doorbell (read the eventfd),
//   2. begin_drain(),
//   3. try_pop() until it fails.
// Why no wake-up is lost: a value published after step 2 increments `unseen_`
// from 0 (rings) or from >0 (someone rang after step 2, so the consumer runs
// this protocol again). A value published before step 2 is visible to step 3
// unless a cell before it is still being written; that producer publishes
// after the consumer looked, hence after step 2, and rings (same argument).
// A ring for a value the consumer already popped is a spurious wake-up:
// harmless, one empty drain.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>

#include "core/lockfree.hpp"

namespace custos {

enum class push_result : std::uint8_t {
    full,       // nothing was pushed
    pushed,     // pushed; the consumer has already been signalled
    pushed_wake // pushed; the caller must ring the consumer's doorbell
};

template <class T, std::uint32_t N>
class mpsc_ring {
    static_assert(N >= 2 && (N & (N - 1)) == 0, "capacity must be a power of two");
    static_assert(N <= (1u << 30), "positions must not wrap within one lap");
    static_assert(std::is_trivially_copyable_v<T>, "values are copied in and out of cells");

public:
    mpsc_ring() noexcept {
        for (std::uint32_t i = 0; i < N; ++i) {
            // Relaxed: the ring is constructed before it is shared; the thread
            // start or the publication of the ring's address orders it.
            cells_[i].seq.store(i, std::memory_order_relaxed);
        }
    }
    mpsc_ring(const mpsc_ring&) = delete;
    mpsc_ring& operator=(const mpsc_ring&) = delete;

    static constexpr std::uint32_t capacity() noexcept { return N; }

    // Any thread.
    [[nodiscard]] push_result try_push(const T& value) noexcept {
        // Relaxed: only a starting guess; the CAS below validates it.
        std::uint32_t pos = tail_.load(std::memory_order_relaxed);
        cell* c;
        for (;;) {
            c = &cells_[pos & (N - 1)];
            // Acquire pairs with the consumer's release store of `seq` in
            // try_pop(): the consumer's read of the old value is complete
            // before we overwrite it.
            std::uint32_t seq = c->seq.load(std::memory_order_acquire);
            auto diff = static_cast<std::int32_t>(seq - pos);
            if (diff == 0) {
                // Relaxed CAS: it only arbitrates between producers; the data
                // is ordered by `seq`, not by `tail_`.
                if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed,
                                                std::memory_order_relaxed)) {
                    break;
                }
            } else if (diff < 0) {
                return push_result::full; // the cell still holds a value from one lap ago
            } else {
                pos = tail_.load(std::memory_order_relaxed); // another producer won; reload
            }
        }
        c->value = value;
        // Release pairs with the consumer's acquire load of `seq` in
        // try_pop(): the value is visible before the cell reads as full.
        c->seq.store(pos + 1, std::memory_order_release);
        // Release pairs with begin_drain()'s acquire exchange: a consumer that
        // sees this increment also sees the publication above. The RMW also
        // orders us against other producers' increments (one total order).
        if (unseen_.fetch_add(1, std::memory_order_release) == 0) {
            return push_result::pushed_wake;
        }
        return push_result::pushed;
    }

    // Consumer only. Step 2 of the protocol above.
    void begin_drain() noexcept {
        // Acquire pairs with the producers' release fetch_add: every value
        // counted before the reset is visible to the try_pop() calls after it.
        unseen_.exchange(0, std::memory_order_acquire);
    }

    // Consumer only. False when the next cell in order is not yet published.
    [[nodiscard]] bool try_pop(T& out) noexcept {
        cell& c = cells_[head_ & (N - 1)];
        // Acquire pairs with the producer's release store of `seq`.
        std::uint32_t seq = c.seq.load(std::memory_order_acquire);
        if (static_cast<std::int32_t>(seq - (head_ + 1)) < 0) {
            return false;
        }
        out = c.value;
        // Release pairs with the producers' acquire load of `seq`: our read
        // of the value happens before a producer may reuse the cell.
        c.seq.store(head_ + N, std::memory_order_release);
        ++head_;
        return true;
    }

private:
    struct cell {
        std::atomic<std::uint32_t> seq;
        T value;
    };

    // Producers' index and the consumer's index on separate cache lines, so
    // producers contending on tail_ do not slow the consumer's pops.
    alignas(cache_line) std::atomic<std::uint32_t> tail_{0};
    alignas(cache_line) std::atomic<std::uint32_t> unseen_{0};
    alignas(cache_line) std::uint32_t head_ = 0; // consumer-owned, not shared
    alignas(cache_line) cell cells_[N];
};

} // namespace custos
