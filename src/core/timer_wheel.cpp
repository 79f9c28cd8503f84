#include "core/timer_wheel.hpp"

#include <bit>

namespace custos {

timer_wheel::timer_wheel(std::uint64_t now) noexcept : elapsed_(now < horizon ? now : horizon - 1) {
    for (auto& m : slot_min_) {
        m = never;
    }
}

std::uint64_t timer_wheel::apply_slack(std::uint64_t expiry, std::uint64_t slack) noexcept {
    if (slack == 0) {
        return expiry;
    }
    std::uint64_t limit = expiry + slack < expiry ? UINT64_MAX : expiry + slack;
    std::uint64_t diff = expiry ^ limit;
    if (diff == 0) {
        return expiry; // UINT64_MAX: no room above it
    }
    // Keep `limit`'s bits from the highest differing one up, zero the rest:
    // that bit is set in `limit` and clear in `expiry`, so the result is the
    // best tick in (expiry, limit]. `expiry` itself beats it only when it is
    // zero in that bit and every bit below.
    auto bit = static_cast<unsigned>(63 - std::countl_zero(diff));
    if ((expiry & ((std::uint64_t{2} << bit) - 1)) == 0) {
        return expiry;
    }
    return limit & ~((std::uint64_t{1} << bit) - 1);
}

std::uint64_t timer_wheel::slot_start(unsigned level, unsigned slot) const noexcept {
    unsigned shift = level * level_bits;
    std::uint64_t range_mask = (std::uint64_t{1} << (shift + level_bits)) - 1;
    return (elapsed_ & ~range_mask) | (std::uint64_t{slot} << shift);
}

std::uint64_t timer_wheel::next_expiry() const noexcept {
    if (!due_.empty()) {
        return elapsed_;
    }
    for (unsigned level = 0; level < levels; ++level) {
        if (occupied_[level] != 0) {
            auto slot = static_cast<unsigned>(std::countr_zero(occupied_[level]));
            return level == 0 ? slot_start(0, slot) : slot_min_[level * slots + slot];
        }
    }
    return never;
}

void timer_wheel::cascade(unsigned level, unsigned slot) noexcept {
    // Take the slot's whole list first: re-placing may put timers back into
    // this level (never this slot, which is now behind the current digit).
    list taken;
    taken.splice_back(slots_[level * slots + slot]);
    occupied_[level] &= ~(std::uint64_t{1} << slot);
    slot_min_[level * slots + slot] = never;
    while (timer_node* t = taken.pop_front()) {
        if (t->expiry <= elapsed_) {
            t->where = timer_node::in_expired;
            expired_.push_back(*t);
        } else {
            place(*t);
        }
    }
}

void timer_wheel::advance(std::uint64_t now) noexcept {
    if (now >= horizon) {
        now = horizon - 1;
    }
    // Timers armed at or before the old `now` are due in this round.
    while (timer_node* t = due_.pop_front()) {
        t->where = timer_node::in_expired;
        expired_.push_back(*t);
    }
    if (now <= elapsed_) {
        return;
    }
    for (;;) {
        unsigned level = 0;
        while (level < levels && occupied_[level] == 0) {
            ++level;
        }
        if (level == levels) {
            break;
        }
        auto slot = static_cast<unsigned>(std::countr_zero(occupied_[level]));
        std::uint64_t start = slot_start(level, slot);
        if (start > now) {
            break;
        }
        elapsed_ = start;
        cascade(level, slot);
    }
    elapsed_ = now;
}

timer_node* timer_wheel::pop_expired() noexcept {
    timer_node* t = expired_.pop_front();
    if (t != nullptr) {
        t->where = timer_node::idle;
        --pending_;
    }
    return t;
}

} // namespace custos
