// Restart backoff: exponential, capped, jittered, and reset only after a
// stable run.
//
// The policy is configuration; the state is a small value type living inside
// whatever it paces (a service, a probe, a monitor): no allocation, no clock
// reads, deterministic for a given seed so tests can assert exact sequences.
//
// Semantics:
//   - next_delay() returns the wait before the next attempt: initial, then
//     initial*multiplier, ... capped at max. Jitter of +/-j% is applied to
//     that base and the result is clamped to [0, max]: at the cap the delays
//     are spread over [max*(1-j), max], so services that crash together do not
//     restart together, and `max` stays a true maximum.
//   - The failure count and the base reset only when a run lasted at least
//     stable_after (run_ended()). A successful spawn resets nothing: a service
//     that crashes one second after each start keeps backing off.
#pragma once

#include <cstdint>

#include "core/prng.hpp"
#include "core/time.hpp"

namespace custos {

struct backoff_policy {
    nanos initial = std::chrono::seconds(1);
    nanos max = std::chrono::seconds(60);
    std::uint32_t multiplier_x100 = 200; // 200 = x2.00; 100 = constant delay
    std::uint32_t jitter_percent = 25;   // +/-25 %; 0 = none; at most 100
    nanos stable_after = std::chrono::seconds(60);
};

class backoff {
public:
    explicit constexpr backoff(std::uint64_t seed = 0) noexcept : rng_(seed) {}

    // The delay before the next attempt; advances the base for the one after.
    nanos next_delay(const backoff_policy& p) noexcept;

    // A run began at `t` (the attempt succeeded in starting).
    void run_started(mono_time t) noexcept;
    // The run that began at run_started() ended at `t`. Resets the backoff
    // when it lasted at least p.stable_after. Returns whether it reset.
    bool run_ended(mono_time t, const backoff_policy& p) noexcept;
    // Forgets all history (an operator's explicit restart).
    void reset() noexcept;

    // Consecutive attempts since the last reset (the crash tally).
    std::uint32_t attempts() const noexcept { return attempts_; }
    // The un-jittered delay the next call to next_delay() will be based on.
    nanos current_base(const backoff_policy& p) const noexcept;

private:
    prng rng_;      // the jitter
    nanos base_{0}; // meaningful once attempts_ > 0
    mono_time started_{};
    std::uint32_t attempts_ = 0;
    bool running_ = false;
};

} // namespace custos
