// One monitor's slot: the memory its thread and the reactor share. The
// monitor's MonitorContext points here (MonitorContext::slot_).
//
// Who writes what (every field has exactly one writer at a time):
//   monitor thread   the beat word and the token (beat()), the overlay and
//                    the tick record (each under its own seqlock), the result
//                    of a run (before posting it), its thread id, and the
//                    thread-private `local_*` fields nobody else reads;
//   reactor thread   the run number and the stop flag (at launch, while the
//                    thread waits), the stop flag and eventfd (request_stop);
//   either           `phase` (a small protocol, see pool.cpp) and
//                    `notice_pending` (set by the thread, cleared by the
//                    reactor before it samples).
//
// beat() is one or two stores and nothing else: no read-modify-write, no
// clock, no system call. The reactor reads the beat word from its own
// timers and compares it with its previous read.
//
// Layout: the beat word and the thread-private fields share the first
// cache line, which only the monitor's thread writes; the reactor's fields
// start on a line of their own, so a beating thread and a sampling reactor
// do not bounce a line they both write.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <custos/error.hpp>
#include <custos/monitor.hpp>
#include <custos/text.hpp>

#include "core/lockfree.hpp"
#include "core/seqlock.hpp"
#include "monitor/records.hpp"

namespace custos::mon {

// beat() stores 64-bit words. They are lock-free on every custos target
// (ARMv7's ldrexd/strexd, AArch64 and x86-64 plain stores); a target where
// they are not (ARMv6) is refused at compile time rather than silently
// taking libatomic's locks on the beat path.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "64-bit atomics must be lock-free for the monitor slots");
static_assert(std::atomic<int>::is_always_lock_free, "atomic<int> must be lock-free");

struct slot;
// How a slot wakes the reactor about its overlay (the pool posts a notice).
using notice_fn = void (*)(void* ctx, std::uint32_t monitor) noexcept;

// Where a slot's thread is; written by the reactor (launch) and the thread
// (end of a run), and by the pool's destructor (pool.cpp).
enum class phase : std::uint32_t {
    idle = 0,      // waiting for a launch
    running = 1,   // inside the run function
    exit = 2,      // told to exit (from idle)
    abandoned = 3, // its owner went away while it ran: exit when it returns
};

struct alignas(cache_line) slot {
    // --- written by the monitor's thread on every beat ---
    // (progress << 32) | beats: one store publishes both counts. Release
    // pairs with the reader's acquire load in read_beats(): a reader that
    // sees a progress count sees the token stored before it.
    std::atomic<std::uint64_t> word{0};
    // The last token given to beat(token). Relaxed: ordered by `word`.
    std::atomic<std::uint64_t> token{0};
    // Thread-private: what this thread last stored, so beat() needs no load
    // of the atomics it alone writes.
    std::uint64_t local_word = 0;
    std::uint64_t local_token = 0;
    bool local_has_token = false;

    // --- control ---
    alignas(cache_line) std::atomic<std::uint32_t> phase{0};
    // Set by request_stop(); cleared at launch while the thread is idle.
    // Release (request_stop) pairs with the acquire in stop_requested().
    std::atomic<bool> stop{false};
    // Set by the thread before it posts a notice, cleared by the reactor
    // before it samples the overlay (acq_rel both ways): at most one notice
    // per monitor is in the mailbox at any time.
    std::atomic<bool> notice_pending{false};
    // gettid() of the thread, for the evidence (0 until it started).
    std::atomic<int> tid{0};
    int stop_fd = -1; // eventfd: readable once a stop is requested
    // The number of the current run; written by the reactor before it
    // publishes `phase = running`, read by the thread after it saw it.
    std::uint32_t run = 0;
    std::uint32_t index = 0;
    FixedText<name_capacity> name;
    MonitorFn fn = nullptr;
    void* arg = nullptr;
    notice_fn notify = nullptr;
    void* notify_ctx = nullptr;
    // The run's result: written by the thread before it posts the result,
    // read by the reactor after it popped it (the mailbox's ring orders it).
    bool result_ok = true;
    Error result_error;

    // --- published by the monitor's thread, read by the reactor ---
    seqlock<overlay_record> overlay;
    seqlock<tick_record> ticks;
    // Thread-private copies of what was last published.
    overlay_record local_overlay;
    tick_record local_ticks;

    // The reactor's read of the beat word and the token.
    void read_beats(sample& out) const noexcept {
        // Acquire pairs with the release store in beat().
        std::uint64_t w = word.load(std::memory_order_acquire);
        out.beats = static_cast<std::uint32_t>(w);
        out.progress = static_cast<std::uint32_t>(w >> 32);
        // Relaxed: the acquire above makes the token stored before `w`
        // visible.
        out.token = token.load(std::memory_order_relaxed);
    }

    // Everything the reactor samples.
    void read(sample& out) const noexcept {
        read_beats(out);
        out.overlay = overlay.load();
        out.ticks = ticks.load();
    }

    // --- the monitor thread's operations (MonitorContext) ---
    void beat() noexcept {
        // Each beat without a token is progress.
        std::uint64_t w = local_word;
        w = ((w >> 32) + 1) << 32 | static_cast<std::uint32_t>(w + 1);
        local_word = w;
        local_has_token = false;
        // Release pairs with the acquire in read_beats().
        word.store(w, std::memory_order_release);
    }

    void beat(std::uint64_t t) noexcept {
        std::uint64_t w = local_word;
        std::uint64_t progress = w >> 32;
        if (!local_has_token || t != local_token) {
            ++progress;
            local_token = t;
            local_has_token = true;
            // Relaxed: published by the release store of `word` below.
            token.store(t, std::memory_order_relaxed);
        }
        w = progress << 32 | static_cast<std::uint32_t>(w + 1);
        local_word = w;
        // Release pairs with the acquire in read_beats().
        word.store(w, std::memory_order_release);
    }

    bool stop_requested() const noexcept {
        // Acquire pairs with the release store in request_stop (pool.cpp).
        return stop.load(std::memory_order_acquire);
    }
};

static_assert(alignof(slot) == cache_line);

} // namespace custos::mon
