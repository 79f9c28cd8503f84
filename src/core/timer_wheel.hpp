// Hierarchical timer wheel: every timeout, backoff and poll interval in
// custos is a node here.
//
// Time is an integer tick (the reactor uses 1 ms). 8 levels of 64 slots;
// level L slot s holds timers whose expiry shares every digit above L with
// the current time and has digit L equal to s, so a level-L slot spans 64^L
// ticks and the wheel spans 2^48 ticks (8,900 years at 1 ms). An occupancy
// bitmap per level finds the next slot with one bit scan.
//
// Invariants:
//   - Nothing fires early: a timer expires only once advance() has reached
//     its expiry tick. When time reaches a slot of level L > 0, the slot is
//     taken whole and each timer is re-placed by its exact expiry (cascade).
//   - Occupied slots lie strictly ahead of the current digit of their level,
//     so the lowest non-empty level's first occupied slot holds the earliest
//     timer.
//   - Each slot keeps the minimum expiry inserted since it was last empty: a
//     lower bound (cancellations can only raise the true minimum), which makes
//     next_expiry() exact in the common case, so an idle reactor sleeps until
//     the next timer is due instead of waking at every cascade point.
//   - arm/cancel are O(1); advance() costs O(expired + cascaded + levels).
//   - Expired timers come out of pop_expired() in expiry order; ties in the
//     order they were armed.
//
// Slack: arm(t, expiry, slack) lets the timer fire anywhere in
// [expiry, expiry + slack]. The wheel picks the tick in that window with the
// most trailing zero bits (as Linux's timer slack does), so timers with
// overlapping windows tend to land on the same tick and share one wake-up.
#pragma once

#include <bit>
#include <cstdint>

#include "core/intrusive_list.hpp"

namespace custos {

struct timer_node : list_hook<timer_node> {
    // Absolute expiry tick, after slack rounding. Read-only for users.
    std::uint64_t expiry = 0;
    // Where the node is: idle, a slot (level * 64 + slot), due or expired.
    std::uint16_t where = idle;

    static constexpr std::uint16_t idle = 0xffff;
    static constexpr std::uint16_t in_due = 0xfffe;
    static constexpr std::uint16_t in_expired = 0xfffd;

    timer_node() = default;
    timer_node(const timer_node&) = delete;
    timer_node& operator=(const timer_node&) = delete;

    // Armed, or expired but not yet popped.
    bool pending() const noexcept { return where != idle; }
};

class timer_wheel {
public:
    static constexpr unsigned level_bits = 6;
    static constexpr unsigned slots = 1u << level_bits;
    static constexpr unsigned levels = 8;
    // Expiries at or beyond this are clamped to horizon - 1.
    static constexpr std::uint64_t horizon = 1ull << (level_bits * levels);
    static constexpr std::uint64_t never = UINT64_MAX;

    explicit timer_wheel(std::uint64_t now = 0) noexcept;
    timer_wheel(const timer_wheel&) = delete;
    timer_wheel& operator=(const timer_wheel&) = delete;

    // Arms `t` to expire at tick `expiry` (or up to `slack` ticks later).
    // Re-arming a pending timer moves it; when it stays in the same slot only
    // its expiry changes (no list operation). An expiry at or before now() is
    // due at the next advance(), never within the current round of pops.
    void arm(timer_node& t, std::uint64_t expiry, std::uint64_t slack = 0) noexcept {
        if (slack != 0) {
            expiry = apply_slack(expiry, slack);
        }
        if (expiry >= horizon) {
            expiry = horizon - 1;
        }
        if (t.where < levels * slots) {
            if (expiry > elapsed_ && where_for(expiry) == t.where) {
                t.expiry = expiry;
                note_min(t.where, expiry);
                return;
            }
            unlink_from_slot(t);
        } else if (t.pending()) {
            t.unlink(); // due or expired-not-popped
        } else {
            ++pending_;
        }
        t.expiry = expiry;
        place(t);
    }

    // Disarms `t`; also removes it from the expired list if not yet popped.
    // Returns whether it was pending. O(1).
    bool cancel(timer_node& t) noexcept {
        if (t.where < levels * slots) {
            unlink_from_slot(t);
        } else if (t.pending()) {
            t.unlink();
        } else {
            return false;
        }
        t.where = timer_node::idle;
        --pending_;
        return true;
    }

    // The tick at which advance() will next expire something: exact unless
    // timers were cancelled (then possibly earlier, never later). `never`
    // when nothing is armed.
    std::uint64_t next_expiry() const noexcept;

    // Moves time forward to `now` and queues every timer due by then for
    // pop_expired(). Time never goes backward: an earlier `now` is ignored.
    void advance(std::uint64_t now) noexcept;

    // The next expired timer (now idle, free to re-arm), or nullptr.
    timer_node* pop_expired() noexcept;

    std::uint64_t now() const noexcept { return elapsed_; }
    // Timers pending (armed, due or expired-not-popped).
    std::uint32_t pending_count() const noexcept { return pending_; }

private:
    using list = intrusive_list<timer_node, timer_node>;

    // The tick in [expiry, expiry + slack] with the most trailing zero bits
    // (slack > 0).
    static std::uint64_t apply_slack(std::uint64_t expiry, std::uint64_t slack) noexcept;

    // The level whose digit is the most significant one in which `expiry`
    // differs from now (digit 0 always counts as differing), then the slot.
    std::uint16_t where_for(std::uint64_t expiry) const noexcept {
        std::uint64_t masked = (elapsed_ ^ expiry) | (slots - 1);
        auto level = static_cast<unsigned>(63 - std::countl_zero(masked)) / level_bits;
        if (level >= levels) {
            level = levels - 1;
        }
        auto slot = static_cast<unsigned>(expiry >> (level * level_bits)) & (slots - 1);
        return static_cast<std::uint16_t>(level * slots + slot);
    }

    // A level-0 slot spans one tick: its start is its minimum, so only
    // higher levels keep one.
    void note_min(std::uint16_t where, std::uint64_t expiry) noexcept {
        if (where >= slots && expiry < slot_min_[where]) {
            slot_min_[where] = expiry;
        }
    }

    void place(timer_node& t) noexcept {
        if (t.expiry <= elapsed_) {
            t.where = timer_node::in_due;
            due_.push_back(t);
            return;
        }
        std::uint16_t w = where_for(t.expiry);
        slots_[w].push_back(t);
        occupied_[w / slots] |= std::uint64_t{1} << (w % slots);
        note_min(w, t.expiry);
        t.where = w;
    }

    void unlink_from_slot(timer_node& t) noexcept {
        t.unlink();
        if (slots_[t.where].empty()) {
            occupied_[t.where / slots] &= ~(std::uint64_t{1} << (t.where % slots));
            slot_min_[t.where] = never;
        }
    }

    void cascade(unsigned level, unsigned slot) noexcept;
    std::uint64_t slot_start(unsigned level, unsigned slot) const noexcept;

    std::uint64_t elapsed_;
    std::uint32_t pending_ = 0;
    std::uint64_t occupied_[levels] = {};
    // Indexed by `where` (level * slots + slot).
    std::uint64_t slot_min_[levels * slots];
    list slots_[levels * slots];
    list due_;
    list expired_;
};

} // namespace custos
