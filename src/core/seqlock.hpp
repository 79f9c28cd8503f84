// A value published by one writer (the reactor thread) and read by any
// thread without locks: the status snapshot.
//
// The payload is stored as relaxed 32-bit atomic words, so concurrent access
// is never a data race (plain memcpy under a seqlock is one); T must be
// trivially copyable and hold no pointers into reactor state. A reader that
// overlaps a write sees an odd or changed sequence and retries; it never
// returns a torn value. Barrier placement follows Linux's seqcount and H.-J.
// Boehm's "Can seqlocks get along with programming language memory models?".
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/lockfree.hpp"

namespace custos {

template <class T>
class seqlock {
    static_assert(std::is_trivially_copyable_v<T>, "the snapshot is copied word by word");
    static constexpr std::size_t words = (sizeof(T) + 3) / 4;

public:
    seqlock() noexcept { store(T{}); }
    seqlock(const seqlock&) = delete;
    seqlock& operator=(const seqlock&) = delete;

    // Writer only (one thread).
    void store(const T& value) noexcept {
        std::uint32_t buf[words] = {};
        std::memcpy(buf, &value, sizeof(T));
        // Relaxed: only the writer modifies seq_.
        std::uint32_t s = seq_.load(std::memory_order_relaxed);
        // Odd: a write is in progress.
        seq_.store(s + 1, std::memory_order_relaxed);
        // Release fence pairs with the reader's acquire fence in try_load():
        // a reader that sees any word below also sees the odd sequence.
        std::atomic_thread_fence(std::memory_order_release);
        for (std::size_t i = 0; i < words; ++i) {
            data_[i].store(buf[i], std::memory_order_relaxed);
        }
        // Release pairs with the reader's acquire load of seq_: a reader that
        // sees the new even sequence sees every word written above.
        seq_.store(s + 2, std::memory_order_release);
    }

    // Any thread. False when a write overlapped; `out` is then unspecified.
    [[nodiscard]] bool try_load(T& out) const noexcept {
        // Acquire pairs with the writer's final release store.
        std::uint32_t s1 = seq_.load(std::memory_order_acquire);
        if ((s1 & 1) != 0) {
            return false;
        }
        std::uint32_t buf[words];
        for (std::size_t i = 0; i < words; ++i) {
            buf[i] = data_[i].load(std::memory_order_relaxed);
        }
        // Acquire fence pairs with the writer's release fence: if any word
        // read above came from a newer write, the load below sees its odd
        // (or later) sequence.
        std::atomic_thread_fence(std::memory_order_acquire);
        std::uint32_t s2 = seq_.load(std::memory_order_relaxed);
        if (s1 != s2) {
            return false;
        }
        std::memcpy(&out, buf, sizeof(T));
        return true;
    }

    // Any thread; retries until a consistent copy is read. The writer
    // publishes rarely and briefly, so this does not spin for long.
    T load() const noexcept {
        T out;
        while (!try_load(out)) {
        }
        return out;
    }

    // Partial reads, for a reader that needs a few fields of a large T (the
    // control plane's renderers read a ~1 KiB service record for its name
    // and state). `copy` is called with a parts object and asks for the
    // byte ranges it needs with parts.copy(offset, length); each range,
    // rounded out to whole words and clipped to T, is copied into the same
    // bytes of `out`, whose other bytes keep what they held. `copy` may read
    // what it has copied so far to choose the next ranges (a count of
    // entries in use), but such a value may be torn until load_parts()
    // returns: it must be clamped before it is used as a bound. `copy` runs
    // again when a write overlapped; on return `out`'s copied ranges are
    // all from one store, and the return value is that store's sequence()
    // (a reader that keeps what it derived from the copy can tell later
    // whether the value changed since).
    class parts {
    public:
        void copy(std::size_t offset, std::size_t length) const noexcept {
            const std::size_t first = offset / 4;
            std::size_t end = (offset + length + 3) / 4;
            end = end < words ? end : words;
            auto* to = reinterpret_cast<unsigned char*>(out_);
            // Whole words with a constant-size copy (one store each); only
            // T's last word may be cut.
            const std::size_t whole = end < sizeof(T) / 4 ? end : sizeof(T) / 4;
            std::size_t i = first;
            for (; i < whole; ++i) {
                const std::uint32_t w = lock_.data_[i].load(std::memory_order_relaxed);
                std::memcpy(to + i * 4, &w, 4);
            }
            // Then i == sizeof(T) / 4: the tail, when T's size is not a
            // multiple of 4 (a constant size, which no compiler can read as
            // running past `w`).
            if constexpr (sizeof(T) % 4 != 0) {
                if (i < end) {
                    const std::uint32_t w = lock_.data_[i].load(std::memory_order_relaxed);
                    std::memcpy(to + i * 4, &w, sizeof(T) % 4);
                }
            }
        }

    private:
        friend class seqlock;
        parts(const seqlock& l, T& out) noexcept : lock_(l), out_(&out) {}
        const seqlock& lock_;
        T* out_;
    };

    template <class F>
    std::uint32_t load_parts(T& out, F&& copy) const noexcept {
        const parts p(*this, out);
        for (;;) {
            // Acquire pairs with the writer's final release store, as in
            // try_load().
            const std::uint32_t s1 = seq_.load(std::memory_order_acquire);
            if ((s1 & 1) != 0) {
                continue;
            }
            copy(p);
            // Acquire fence pairs with the writer's release fence, as in
            // try_load(): a word from a newer write shows its sequence below.
            std::atomic_thread_fence(std::memory_order_acquire);
            if (seq_.load(std::memory_order_relaxed) == s1) {
                return s1;
            }
        }
    }

    // Number of completed stores (for readers that want to notice change).
    std::uint32_t version() const noexcept {
        // Acquire pairs with the writer's final release store.
        return seq_.load(std::memory_order_acquire) / 2;
    }

    // The raw sequence: even and equal to what load_parts() returned while
    // no store began since that read; odd while a store is in progress.
    // A reader that kept text derived from a copy may reuse it only while
    // this still equals the copy's sequence (an odd value never does). It
    // wraps after 2^31 stores: a reader that slept through exactly that
    // many would take a changed value for the same.
    std::uint32_t sequence() const noexcept {
        // Acquire pairs with the writer's final release store, as in
        // version().
        return seq_.load(std::memory_order_acquire);
    }

private:
    alignas(cache_line) std::atomic<std::uint32_t> seq_{0};
    std::atomic<std::uint32_t> data_[words];
};

} // namespace custos
