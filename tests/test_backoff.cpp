// Restart backoff: exact sequences without jitter, jitter bounds and spread,
// determinism per seed, reset only after a stable run, and no overflow.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/backoff.hpp"

using custos::backoff;
using custos::backoff_policy;
using custos::from_ns;
using custos::mono_time;
using custos::nanos;
using namespace std::chrono_literals;

namespace {

backoff_policy no_jitter(nanos initial, nanos max, std::uint32_t mult_x100) {
    backoff_policy p;
    p.initial = initial;
    p.max = max;
    p.multiplier_x100 = mult_x100;
    p.jitter_percent = 0;
    p.stable_after = 60s;
    return p;
}

std::vector<nanos> draw(backoff& b, const backoff_policy& p, int n) {
    std::vector<nanos> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(b.next_delay(p));
    }
    return out;
}

using seq = std::vector<nanos>;

const mono_time t0 = from_ns(1'000'000'000'000);

} // namespace

TEST_CASE("exact sequence without jitter: 2s doubling to a 60s cap") {
    backoff b;
    auto p = no_jitter(2s, 60s, 200);
    CHECK(b.attempts() == 0);
    CHECK(b.current_base(p) == 2s);
    CHECK(draw(b, p, 8) == seq{2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s});
    CHECK(b.attempts() == 8);
    CHECK(b.current_base(p) == 60s);
}

TEST_CASE("current_base predicts the next un-jittered delay") {
    backoff b;
    auto p = no_jitter(1s, 10s, 300);
    for (int i = 0; i < 6; ++i) {
        nanos expect = b.current_base(p);
        CHECK(b.next_delay(p) == expect);
    }
    CHECK(b.current_base(p) == 10s);
}

TEST_CASE("a fractional multiplier (x1.5) grows by half each time up to the cap") {
    backoff b;
    auto p = no_jitter(2s, 10s, 150);
    CHECK(draw(b, p, 6) == seq{2s, 3s, 4500ms, 6750ms, 10s, 10s});
}

TEST_CASE("multiplier x1 gives a constant delay") {
    backoff b;
    auto p = no_jitter(5s, 60s, 100);
    CHECK(draw(b, p, 5) == seq{5s, 5s, 5s, 5s, 5s});
    CHECK(b.attempts() == 5);
}

TEST_CASE("a multiplier below x1 is treated as constant, never shrinking") {
    for (std::uint32_t m : {0u, 1u, 50u, 99u}) {
        CAPTURE(m);
        backoff b;
        auto p = no_jitter(5s, 60s, m);
        CHECK(draw(b, p, 4) == seq{5s, 5s, 5s, 5s});
    }
}

TEST_CASE("initial above max is clamped to max") {
    backoff b;
    auto p = no_jitter(90s, 60s, 200);
    CHECK(b.current_base(p) == 60s);
    CHECK(draw(b, p, 3) == seq{60s, 60s, 60s});
}

TEST_CASE("initial equal to max stays at max") {
    backoff b;
    auto p = no_jitter(60s, 60s, 200);
    CHECK(draw(b, p, 3) == seq{60s, 60s, 60s});
}

TEST_CASE("zero or negative initial and max give zero delays, never negative") {
    backoff b;
    CHECK(draw(b, no_jitter(0s, 60s, 200), 3) == seq{0s, 0s, 0s});
    backoff c;
    backoff_policy p = no_jitter(5s, -1s, 200);
    p.jitter_percent = 50;
    CHECK(draw(c, p, 3) == seq{0s, 0s, 0s});
    backoff d;
    backoff_policy q = no_jitter(-5s, 60s, 200);
    q.jitter_percent = 50;
    CHECK(draw(d, q, 3) == seq{0s, 0s, 0s});
}

TEST_CASE("jitter bounds over 100k draws: within [base(1-j), min(base(1+j), max)] and spread") {
    struct tc {
        nanos base;
        std::uint32_t jitter;
    };
    // Constant multiplier so the base stays put and every draw is comparable.
    for (tc c : {tc{10s, 25}, tc{1s, 100}, tc{7ms, 10}, tc{3s, 1}}) {
        CAPTURE(c.base.count());
        CAPTURE(c.jitter);
        backoff_policy p = no_jitter(c.base, 1h, 100);
        p.jitter_percent = c.jitter;
        backoff b(99);
        const std::int64_t base = c.base.count();
        const std::int64_t lo = base - base * c.jitter / 100;
        const std::int64_t hi = base + base * c.jitter / 100;
        std::int64_t min_seen = INT64_MAX;
        std::int64_t max_seen = INT64_MIN;
        long double sum = 0;
        int below = 0;
        int above = 0;
        constexpr int n = 100000;
        for (int i = 0; i < n; ++i) {
            std::int64_t d = b.next_delay(p).count();
            REQUIRE(d >= lo);
            REQUIRE(d <= hi);
            min_seen = std::min(min_seen, d);
            max_seen = std::max(max_seen, d);
            sum += static_cast<long double>(d);
            below += d < base ? 1 : 0;
            above += d > base ? 1 : 0;
        }
        // Both halves are hit about equally, the extremes are approached
        // (within 1 % of the jitter span), and the mean is near the base.
        const std::int64_t span = hi - lo;
        CHECK(below > n * 45 / 100);
        CHECK(above > n * 45 / 100);
        CHECK(min_seen - lo <= span / 100);
        CHECK(hi - max_seen <= span / 100);
        const long double mean = sum / n;
        CHECK(mean > static_cast<long double>(base) - static_cast<long double>(span) * 0.01L);
        CHECK(mean < static_cast<long double>(base) + static_cast<long double>(span) * 0.01L);
    }
}

TEST_CASE("jitter at the cap spreads delays over [max(1-j), max], never above max") {
    backoff_policy p;
    p.initial = 2s;
    p.max = 60s;
    p.multiplier_x100 = 200;
    p.jitter_percent = 20;
    backoff b(7);
    // Reach the cap first.
    for (int i = 0; i < 6; ++i) {
        (void)b.next_delay(p);
    }
    REQUIRE(b.current_base(p) == 60s);
    const nanos lo = 48s;
    int at_max = 0;
    int low_half = 0;
    constexpr int n = 100000;
    for (int i = 0; i < n; ++i) {
        nanos d = b.next_delay(p);
        REQUIRE(d >= lo);
        REQUIRE(d <= 60s);
        at_max += d == 60s ? 1 : 0;
        low_half += d < 54s ? 1 : 0;
    }
    // Half the draws were above max and are clamped to it; the rest spread
    // over the lower range, its lower half included.
    CHECK(at_max > n * 45 / 100);
    CHECK(at_max < n * 55 / 100);
    CHECK(low_half > n * 20 / 100);
}

TEST_CASE("jitter is applied to the growing base before the cap") {
    backoff_policy p;
    p.initial = 2s;
    p.max = 60s;
    p.multiplier_x100 = 200;
    p.jitter_percent = 10;
    backoff b(3);
    std::int64_t base = 2'000'000'000;
    for (int i = 0; i < 5; ++i) {
        std::int64_t d = b.next_delay(p).count();
        CAPTURE(i);
        CHECK(d >= base - base / 10);
        CHECK(d <= base + base / 10);
        base *= 2;
    }
}

TEST_CASE("jitter above 100 % is treated as 100 %: delays stay in [0, 2*base] and <= max") {
    backoff_policy p = no_jitter(10s, 1h, 100);
    p.jitter_percent = 250;
    backoff b(5);
    bool small = false;
    for (int i = 0; i < 20000; ++i) {
        nanos d = b.next_delay(p);
        REQUIRE(d >= 0s);
        REQUIRE(d <= 20s);
        small = small || d < 1s;
    }
    CHECK(small);
}

TEST_CASE("same seed gives the same jittered sequence; different seeds differ") {
    backoff_policy p;
    p.initial = 1s;
    p.max = 5min;
    p.jitter_percent = 25;
    backoff a(1234), b(1234), c(1235);
    std::vector<nanos> sa = draw(a, p, 50);
    std::vector<nanos> sb = draw(b, p, 50);
    std::vector<nanos> sc = draw(c, p, 50);
    CHECK(sa == sb);
    CHECK(sa != sc);

    // Below the cap (where half the draws clamp to max and so agree) the
    // sequences of two seeds differ nearly everywhere.
    backoff_policy q = no_jitter(10s, 1h, 100);
    q.jitter_percent = 25;
    backoff d(1234), e(1235);
    std::vector<nanos> sd = draw(d, q, 50);
    std::vector<nanos> se = draw(e, q, 50);
    int diffs = 0;
    for (std::size_t i = 0; i < sd.size(); ++i) {
        diffs += sd[i] != se[i] ? 1 : 0;
    }
    CHECK(diffs >= 49);
}

TEST_CASE("a run shorter than stable_after does not reset: attempts and delays keep growing") {
    auto p = no_jitter(1s, 1h, 200);
    p.stable_after = 60s;
    backoff b;
    mono_time t = t0;
    nanos expect = 1s;
    for (std::uint32_t i = 1; i <= 8; ++i) {
        CHECK(b.next_delay(p) == expect);
        CHECK(b.attempts() == i);
        b.run_started(t);
        // Crashes just short of the stable period.
        CHECK_FALSE(b.run_ended(t + 60s - 1ns, p));
        t += 120s;
        expect *= 2;
    }
    CHECK(b.attempts() == 8);
    CHECK(b.current_base(p) == 256s);
}

TEST_CASE("a run of at least stable_after resets to initial") {
    auto p = no_jitter(1s, 1h, 200);
    p.stable_after = 60s;

    SUBCASE("exactly stable_after") {
        backoff b;
        (void)draw(b, p, 4);
        REQUIRE(b.attempts() == 4);
        b.run_started(t0);
        CHECK(b.run_ended(t0 + 60s, p));
        CHECK(b.attempts() == 0);
        CHECK(b.current_base(p) == 1s);
        CHECK(b.next_delay(p) == 1s);
        CHECK(b.next_delay(p) == 2s);
    }
    SUBCASE("longer than stable_after") {
        backoff b;
        (void)draw(b, p, 3);
        b.run_started(t0);
        CHECK(b.run_ended(t0 + 5h, p));
        CHECK(b.attempts() == 0);
        CHECK(b.next_delay(p) == 1s);
    }
}

TEST_CASE("run_started alone never resets: a spawn that succeeded is not a stable run") {
    auto p = no_jitter(1s, 1h, 200);
    backoff b;
    mono_time t = t0;
    for (int i = 0; i < 5; ++i) {
        (void)b.next_delay(p);
        b.run_started(t);
        t += 10min; // long after, but the run has not been reported as ended
    }
    CHECK(b.attempts() == 5);
    CHECK(b.next_delay(p) == 32s);
}

TEST_CASE("run_ended without run_started does nothing") {
    auto p = no_jitter(1s, 1h, 200);
    backoff b;
    (void)draw(b, p, 3);
    CHECK_FALSE(b.run_ended(t0 + 10h, p));
    CHECK(b.attempts() == 3);
    CHECK(b.next_delay(p) == 8s);
}

TEST_CASE("run_ended is consumed: a second run_ended for the same run does nothing") {
    auto p = no_jitter(1s, 1h, 200);
    backoff b;
    (void)draw(b, p, 3);
    b.run_started(t0);
    CHECK_FALSE(b.run_ended(t0 + 1s, p));
    CHECK_FALSE(b.run_ended(t0 + 10h, p));
    CHECK(b.attempts() == 3);
}

TEST_CASE("the stable period is measured from the latest run_started") {
    auto p = no_jitter(1s, 1h, 200);
    p.stable_after = 60s;
    backoff b;
    (void)draw(b, p, 2);
    b.run_started(t0);
    b.run_started(t0 + 100s); // a later start replaces the first
    CHECK_FALSE(b.run_ended(t0 + 130s, p));
    CHECK(b.attempts() == 2);
}

TEST_CASE("reset() forgets the history") {
    auto p = no_jitter(3s, 1h, 200);
    backoff b;
    (void)draw(b, p, 5);
    REQUIRE(b.attempts() == 5);
    b.reset();
    CHECK(b.attempts() == 0);
    CHECK(b.current_base(p) == 3s);
    CHECK(draw(b, p, 3) == seq{3s, 6s, 12s});
}

TEST_CASE("no overflow with caps of hours and days and multiplier x10") {
    for (nanos cap : {nanos(6h), nanos(24h * 30), nanos(24h * 365 * 100)}) {
        CAPTURE(cap.count());
        backoff_policy p = no_jitter(1s, cap, 1000);
        backoff b;
        nanos prev = 0s;
        for (int i = 0; i < 100; ++i) {
            nanos d = b.next_delay(p);
            REQUIRE(d > 0s);
            REQUIRE(d <= cap);
            REQUIRE(d >= prev);
            prev = d;
        }
        CHECK(prev == cap);
        // Jittered at the cap: in [cap * 0.5, cap].
        p.jitter_percent = 50;
        for (int i = 0; i < 1000; ++i) {
            nanos d = b.next_delay(p);
            REQUIRE(d >= cap / 2);
            REQUIRE(d <= cap);
        }
    }
}

TEST_CASE("no overflow at the limits of the representation") {
    // An uncapped policy (max = nanos::max()) with the largest multiplier
    // and full jitter: the base saturates and jitter must not wrap around.
    // Regression: base + jitter offset overflowed int64 above max / 2.
    backoff_policy p;
    p.initial = 1s;
    p.max = nanos::max();
    p.multiplier_x100 = UINT32_MAX;
    p.jitter_percent = 100;
    backoff b(11);
    nanos prev_base = 0s;
    for (int i = 0; i < 200; ++i) {
        nanos base = b.current_base(p);
        REQUIRE(base >= prev_base);
        prev_base = base;
        nanos d = b.next_delay(p);
        REQUIRE(d >= 0s);
        REQUIRE(d <= nanos::max());
    }
    CHECK(b.current_base(p) == nanos::max());
    CHECK(b.attempts() == 200);

    // Huge initial with a multiplier just above x1.
    backoff_policy q = no_jitter(nanos::max() / 2 + nanos(1), nanos::max(), 101);
    backoff c;
    nanos last = 0s;
    for (int i = 0; i < 100; ++i) {
        nanos d = c.next_delay(q);
        REQUIRE(d >= last);
        last = d;
    }
    CHECK(last == nanos::max());
}
