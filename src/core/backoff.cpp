#include "core/backoff.hpp"

#include <algorithm>
#include <cstdint>

namespace custos {
namespace {

// base * m / 100 without overflow, saturating at `cap`.
std::int64_t grow(std::int64_t base, std::uint32_t m, std::int64_t cap) noexcept {
    if (base <= 0) {
        return 0;
    }
    if (base > INT64_MAX / m) {
        return cap;
    }
    return std::min<std::int64_t>(base * m / 100, cap);
}

// x * r / 65536 for a signed r in [-65536, 65536], without overflow for any x.
std::int64_t scale(std::int64_t x, std::int64_t r) noexcept {
    return (x / 65536) * r + (x % 65536) * r / 65536;
}

} // namespace

nanos backoff::current_base(const backoff_policy& p) const noexcept {
    return attempts_ == 0 ? std::min(p.initial, p.max) : base_;
}

nanos backoff::next_delay(const backoff_policy& p) noexcept {
    std::int64_t max = std::max<std::int64_t>(p.max.count(), 0);
    std::int64_t base = current_base(p).count();
    base = std::clamp<std::int64_t>(base, 0, max);
    // A multiplier below x1.00 would shrink the delay with every crash; it is
    // treated as a constant delay.
    base_ = nanos(grow(base, std::max<std::uint32_t>(p.multiplier_x100, 100), max));
    if (attempts_ != UINT32_MAX) {
        ++attempts_;
    }

    std::uint32_t j = std::min<std::uint32_t>(p.jitter_percent, 100);
    if (j == 0 || base == 0) {
        return nanos(base);
    }
    // r uniform in [-65536, 65536): the offset is base * j% * r / 65536.
    auto r = static_cast<std::int64_t>(rng_.next() >> 47) - 65536;
    std::int64_t spread = base / 100 * j + base % 100 * j / 100;
    // base <= max, so max - base cannot overflow; base + offset could.
    std::int64_t offset = scale(spread, r);
    std::int64_t d = offset > max - base ? max : base + offset;
    return nanos(std::clamp<std::int64_t>(d, 0, max));
}

void backoff::run_started(mono_time t) noexcept {
    started_ = t;
    running_ = true;
}

bool backoff::run_ended(mono_time t, const backoff_policy& p) noexcept {
    if (!running_) {
        return false;
    }
    running_ = false;
    if (t - started_ >= p.stable_after) {
        reset();
        return true;
    }
    return false;
}

void backoff::reset() noexcept {
    base_ = nanos(0);
    attempts_ = 0;
}

} // namespace custos
