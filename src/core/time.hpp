// Time in custos: one monotonic clock, nanosecond durations, absolute
// deadlines. Core code only does arithmetic on these; reading the clock is
// the reactor's job (src/io/clock.cpp), so tests can drive core logic with
// made-up time points.
#pragma once

#include <chrono>
#include <cstdint>

namespace custos {

using nanos = std::chrono::nanoseconds;

// CLOCK_MONOTONIC: never jumps, stops while the device is suspended.
struct mono_clock {
    using duration = nanos;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<mono_clock, duration>;
    static constexpr bool is_steady = true;
    // Defined in src/io/clock.cpp.
    static time_point now() noexcept;
};

using mono_time = mono_clock::time_point;

// Nanoseconds since the clock's epoch (boot); the form timerfd and the wheel use.
constexpr std::int64_t to_ns(mono_time t) noexcept {
    return t.time_since_epoch().count();
}
constexpr mono_time from_ns(std::int64_t ns) noexcept {
    return mono_time(nanos(ns));
}

} // namespace custos
