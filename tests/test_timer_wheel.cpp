// The hierarchical timer wheel: arm/cancel/re-arm, exact expiry at every level
// boundary, far-future and beyond-horizon expiries, next_expiry(), slack, and
// randomized (fixed-seed) checks that nothing fires early or late.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/prng.hpp" // the tests' fixed-seed generator
#include "core/timer_wheel.hpp"

using custos::prng;
using custos::timer_node;
using custos::timer_wheel;

namespace {

constexpr std::uint64_t horizon = timer_wheel::horizon;
constexpr std::uint64_t never = timer_wheel::never;

// 64^level: the span of one slot at that level.
constexpr std::uint64_t span(unsigned level) {
    return std::uint64_t{1} << (6 * level);
}

struct tn : timer_node {
    int id = 0;
};

int id_of(timer_node* t) {
    return static_cast<tn*>(t)->id;
}

std::vector<int> pop_ids(timer_wheel& w) {
    std::vector<int> out;
    while (timer_node* t = w.pop_expired()) {
        CHECK_FALSE(t->pending());
        out.push_back(id_of(t));
    }
    return out;
}

using ids = std::vector<int>;

// The first violation of a property checked in a loop too hot for one
// assertion per step; reported once.
struct violations {
    std::uint64_t count = 0;
    std::string first;
    void add(const std::string& what) {
        if (count++ == 0) {
            first = what;
        }
    }
};

// Arms one timer per expiry (in the given order: ties pop in that order),
// then walks time to each distinct expiry E: next_expiry() is exactly E,
// advancing to E - 1 pops nothing, advancing to E pops exactly the timers
// due at E, in arm order.
void check_stepwise(std::uint64_t start, const std::vector<std::uint64_t>& expiries) {
    CAPTURE(start);
    timer_wheel w(start);
    REQUIRE(w.now() == start);
    auto nodes = std::make_unique<tn[]>(expiries.size());
    for (std::size_t i = 0; i < expiries.size(); ++i) {
        REQUIRE(expiries[i] > start);
        REQUIRE(expiries[i] < horizon);
        nodes[i].id = static_cast<int>(i);
        w.arm(nodes[i], expiries[i]);
        REQUIRE(nodes[i].expiry == expiries[i]);
    }
    REQUIRE(w.pending_count() == expiries.size());

    std::vector<std::uint64_t> distinct = expiries;
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::size_t left = expiries.size();
    for (std::uint64_t e : distinct) {
        CAPTURE(e);
        ids want;
        for (std::size_t i = 0; i < expiries.size(); ++i) {
            if (expiries[i] == e) {
                want.push_back(static_cast<int>(i));
            }
        }
        CHECK(w.next_expiry() == e);
        if (e - 1 > w.now()) {
            w.advance(e - 1);
            CHECK(w.now() == e - 1);
            CHECK(pop_ids(w).empty());
            CHECK(w.next_expiry() == e);
        }
        w.advance(e);
        CHECK(w.now() == e);
        CHECK(pop_ids(w) == want);
        left -= want.size();
        CHECK(w.pending_count() == left);
    }
    CHECK(w.next_expiry() == never);
    CHECK(w.pending_count() == 0);
}

// The same timers, then one advance() to `target`: everything due by then
// pops in expiry order (ties in arm order), nothing later does.
void check_one_jump(std::uint64_t start, const std::vector<std::uint64_t>& expiries,
                    std::uint64_t target) {
    CAPTURE(start);
    CAPTURE(target);
    timer_wheel w(start);
    auto nodes = std::make_unique<tn[]>(expiries.size());
    for (std::size_t i = 0; i < expiries.size(); ++i) {
        nodes[i].id = static_cast<int>(i);
        w.arm(nodes[i], expiries[i]);
    }
    std::vector<int> order(expiries.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return expiries[static_cast<std::size_t>(a)] < expiries[static_cast<std::size_t>(b)];
    });
    ids want;
    for (int i : order) {
        if (expiries[static_cast<std::size_t>(i)] <= target) {
            want.push_back(i);
        }
    }
    w.advance(target);
    CHECK(pop_ids(w) == want);
    CHECK(w.pending_count() == expiries.size() - want.size());
    for (std::size_t i = 0; i < expiries.size(); ++i) {
        CHECK(nodes[i].pending() == (expiries[i] > target));
    }
}

// Expiries just before, at and just after the next boundaries of every
// level as seen from `start`, plus a few small offsets; shuffled, with some
// duplicates so that ties are checked too.
std::vector<std::uint64_t> boundary_expiries(std::uint64_t start, prng& rng) {
    std::vector<std::uint64_t> out;
    auto add = [&](std::uint64_t e) {
        if (e > start && e < horizon) {
            out.push_back(e);
        }
    };
    for (unsigned level = 1; level <= 8; ++level) {
        std::uint64_t s = span(level);
        for (std::uint64_t k : {1ull, 2ull, 63ull}) {
            std::uint64_t b = (start / s + k) * s;
            add(b - 1);
            add(b);
            add(b + 1);
        }
    }
    for (unsigned level = 0; level < 8; ++level) {
        add(span(level) - 1);
        add(span(level));
        add(span(level) + 1);
    }
    for (std::uint64_t d : {1ull, 2ull, 63ull, 64ull, 65ull, 4095ull, 4096ull, 4097ull}) {
        add(start + d);
    }
    add(horizon - 1);
    // Duplicates of a few of them.
    std::size_t n = out.size();
    for (std::size_t i = 0; i < n; i += 5) {
        out.push_back(out[i]);
    }
    for (std::size_t i = out.size(); i > 1; --i) {
        std::swap(out[i - 1], out[rng.next() % i]);
    }
    return out;
}

const std::uint64_t odd_starts[] = {
    0,
    1,
    62,
    63,
    64,
    65,
    4095,
    4096,
    4097,
    262143,
    262145,
    span(4) - 1,
    span(5) - 1,
    span(6) - 1,
    span(7) - 1,
    span(7) + 12345,
    0x555555555555ull, // every digit is 010101
    0xaaaaaaaaaaabull,
    horizon - span(2) - 1,
    horizon - 65,
    horizon - 2,
};

} // namespace

TEST_CASE("a new wheel is empty at its start time") {
    timer_wheel w;
    CHECK(w.now() == 0);
    CHECK(w.pending_count() == 0);
    CHECK(w.next_expiry() == never);
    CHECK(w.pop_expired() == nullptr);

    timer_wheel w2(12345);
    CHECK(w2.now() == 12345);
    CHECK(w2.next_expiry() == never);

    // A start time beyond the horizon is clamped like any other time.
    timer_wheel w3(horizon + 10);
    CHECK(w3.now() == horizon - 1);
}

TEST_CASE("arm then advance: nothing before the expiry tick, the timer at it") {
    timer_wheel w;
    tn t;
    CHECK_FALSE(t.pending());
    w.arm(t, 10);
    CHECK(t.pending());
    CHECK(t.expiry == 10);
    CHECK(w.pending_count() == 1);
    CHECK(w.next_expiry() == 10);

    w.advance(9);
    CHECK(w.pop_expired() == nullptr);
    CHECK(t.pending());
    w.advance(10);
    CHECK(t.pending()); // expired, not yet popped
    CHECK(w.pending_count() == 1);
    CHECK(w.pop_expired() == &t);
    CHECK_FALSE(t.pending());
    CHECK(w.pending_count() == 0);
    CHECK(w.pop_expired() == nullptr);
    CHECK(w.next_expiry() == never);
}

TEST_CASE("advancing past the expiry in one step pops the timer") {
    timer_wheel w;
    tn t;
    w.arm(t, 10);
    w.advance(1000);
    CHECK(w.pop_expired() == &t);
    CHECK(w.now() == 1000);
}

TEST_CASE("re-arming a pending timer moves it, later or earlier") {
    timer_wheel w;
    tn t;

    SUBCASE("later") {
        w.arm(t, 10);
        w.arm(t, 20);
        CHECK(w.pending_count() == 1);
        CHECK(w.next_expiry() == 20);
        w.advance(19);
        CHECK(w.pop_expired() == nullptr);
        w.advance(20);
        CHECK(w.pop_expired() == &t);
        CHECK(w.pop_expired() == nullptr);
    }
    SUBCASE("earlier, across levels") {
        w.arm(t, 5'000'000);
        w.arm(t, 5);
        CHECK(w.pending_count() == 1);
        CHECK(w.next_expiry() == 5);
        w.advance(5);
        CHECK(w.pop_expired() == &t);
        w.advance(5'000'000);
        CHECK(w.pop_expired() == nullptr);
    }
    CHECK(w.pending_count() == 0);
}

TEST_CASE("re-arming an expired, not yet popped timer takes it off the expired list") {
    timer_wheel w;
    tn a, b;
    a.id = 1;
    b.id = 2;
    w.arm(a, 5);
    w.arm(b, 5);
    w.advance(5);
    w.arm(a, 50);
    CHECK(w.pending_count() == 2);
    CHECK(pop_ids(w) == ids{2});
    w.advance(49);
    CHECK(pop_ids(w).empty());
    w.advance(50);
    CHECK(pop_ids(w) == ids{1});
}

TEST_CASE("cancel returns whether the timer was pending; a cancelled timer never pops") {
    timer_wheel w;
    tn t, other;
    CHECK_FALSE(w.cancel(t)); // never armed
    w.arm(t, 100);
    w.arm(other, 200);
    CHECK(w.cancel(t));
    CHECK_FALSE(t.pending());
    CHECK(w.pending_count() == 1);
    CHECK_FALSE(w.cancel(t)); // already cancelled
    CHECK(w.pending_count() == 1);
    w.advance(horizon - 1);
    CHECK(w.pop_expired() == &other);
    CHECK(w.pop_expired() == nullptr);
    CHECK_FALSE(w.cancel(other)); // popped: no longer pending
    CHECK(w.pending_count() == 0);
}

TEST_CASE("cancel of an expired, not yet popped timer removes it") {
    timer_wheel w;
    tn a, b, c;
    a.id = 1;
    b.id = 2;
    c.id = 3;
    w.arm(a, 7);
    w.arm(b, 7);
    w.arm(c, 8);
    w.advance(8);
    CHECK(w.pending_count() == 3);
    CHECK(w.cancel(b));
    CHECK_FALSE(b.pending());
    CHECK(w.pending_count() == 2);
    CHECK(pop_ids(w) == ids{1, 3});
    CHECK(w.pending_count() == 0);
}

TEST_CASE("cancel from inside the pop loop removes a timer expired in the same round") {
    timer_wheel w;
    tn a, b;
    a.id = 1;
    b.id = 2;
    w.arm(a, 3);
    w.arm(b, 3);
    w.advance(3);
    timer_node* first = w.pop_expired();
    REQUIRE(first == &a);
    CHECK(w.cancel(b));
    CHECK(w.pop_expired() == nullptr);
}

TEST_CASE("cancel of a timer armed in the past (due) removes it") {
    timer_wheel w(100);
    tn t;
    w.arm(t, 50);
    CHECK(w.next_expiry() == 100);
    CHECK(w.cancel(t));
    CHECK(w.next_expiry() == never);
    w.advance(101);
    CHECK(w.pop_expired() == nullptr);
}

TEST_CASE("cancelled timers in every level never pop, the others do") {
    timer_wheel w(63);
    std::vector<std::uint64_t> exp;
    for (unsigned level = 0; level < 8; ++level) {
        exp.push_back(63 + span(level));
        exp.push_back(63 + span(level) + 1);
    }
    auto nodes = std::make_unique<tn[]>(exp.size());
    for (std::size_t i = 0; i < exp.size(); ++i) {
        nodes[i].id = static_cast<int>(i);
        w.arm(nodes[i], exp[i]);
    }
    ids want;
    for (std::size_t i = 0; i < exp.size(); ++i) {
        if (i % 2 == 0) {
            CHECK(w.cancel(nodes[i]));
        } else {
            want.push_back(static_cast<int>(i));
        }
    }
    CHECK(w.pending_count() == want.size());
    w.advance(horizon - 1);
    CHECK(pop_ids(w) == want);
}

TEST_CASE("pending_count tracks arm, re-arm, cancel, expiry and pop") {
    timer_wheel w;
    tn a, b, c;
    w.arm(a, 10);
    CHECK(w.pending_count() == 1);
    w.arm(b, 20);
    CHECK(w.pending_count() == 2);
    w.arm(a, 30); // re-arm: still one timer
    CHECK(w.pending_count() == 2);
    w.arm(c, 0); // due
    CHECK(w.pending_count() == 3);
    CHECK(w.cancel(c));
    CHECK(w.pending_count() == 2);
    CHECK_FALSE(w.cancel(c));
    CHECK(w.pending_count() == 2);
    w.advance(25); // b expires; it is pending until popped
    CHECK(w.pending_count() == 2);
    CHECK(w.pop_expired() == &b);
    CHECK(w.pending_count() == 1);
    w.advance(30);
    CHECK(w.pending_count() == 1);
    CHECK(w.pop_expired() == &a);
    CHECK(w.pending_count() == 0);
}

TEST_CASE("time never goes backward: an earlier now is ignored") {
    timer_wheel w;
    tn t;
    w.arm(t, 150);
    w.advance(100);
    w.advance(50);
    CHECK(w.now() == 100);
    CHECK(w.pop_expired() == nullptr);
    w.advance(150);
    CHECK(w.pop_expired() == &t);
}

TEST_CASE("expiry order across every level boundary, stepping to each expiry") {
    prng rng(0xb0da);
    for (std::uint64_t start : odd_starts) {
        check_stepwise(start, boundary_expiries(start, rng));
    }
}

TEST_CASE("expiry order across every level boundary, in one big advance") {
    prng rng(0xb1e5);
    for (std::uint64_t start : odd_starts) {
        std::vector<std::uint64_t> exp = boundary_expiries(start, rng);
        // All of them, and from every start a jump that stops just before,
        // at and after a boundary of each level.
        check_one_jump(start, exp, horizon - 1);
        for (unsigned level = 1; level < 8; ++level) {
            std::uint64_t b = (start / span(level) + 1) * span(level);
            for (std::uint64_t target : {b - 1, b, b + 1}) {
                if (target > start && target < horizon) {
                    check_one_jump(start, exp, target);
                }
            }
        }
    }
}

TEST_CASE("one timer per level boundary, from odd start times, fires exactly at its tick") {
    // For each level L and each start, a timer at 64^L - 1, 64^L and 64^L + 1
    // ticks past the last boundary of that level.
    for (unsigned level = 0; level < 8; ++level) {
        for (std::uint64_t start : {0ull, 63ull, 4095ull, 262143ull, 16777215ull, 12345ull}) {
            std::uint64_t boundary = (start / span(level) + 1) * span(level);
            for (std::uint64_t e : {boundary - 1, boundary, boundary + 1}) {
                if (e <= start || e >= horizon) {
                    continue;
                }
                CAPTURE(level);
                CAPTURE(start);
                CAPTURE(e);
                timer_wheel w(start);
                tn t;
                w.arm(t, e);
                CHECK(w.next_expiry() == e);
                if (e - 1 > start) {
                    w.advance(e - 1);
                    CHECK(w.pop_expired() == nullptr);
                }
                w.advance(e);
                CHECK(w.pop_expired() == &t);
            }
        }
    }
}

TEST_CASE("far-future expiries (now + 2^40, now + 2^47) fire exactly at their tick") {
    for (std::uint64_t start : {0ull, 1ull, 63ull, 12345ull, 262143ull}) {
        for (std::uint64_t delta : {1ull << 40, (1ull << 40) + 1, (1ull << 47) - 1, 1ull << 47}) {
            CAPTURE(start);
            CAPTURE(delta);
            std::uint64_t e = start + delta;
            timer_wheel w(start);
            tn t;
            w.arm(t, e);
            CHECK(t.expiry == e);
            CHECK(w.next_expiry() == e);
            // Walk most of the way in big strides, then to one tick before.
            for (std::uint64_t now = start + delta / 3; now < e - 1; now += delta / 3) {
                w.advance(now);
                CHECK(w.pop_expired() == nullptr);
                CHECK(w.next_expiry() == e);
            }
            w.advance(e - 1);
            CHECK(w.pop_expired() == nullptr);
            CHECK(t.pending());
            w.advance(e);
            CHECK(w.pop_expired() == &t);
        }
    }
}

TEST_CASE("far-future expiry reached in a single advance from start fires at its tick") {
    timer_wheel w(777);
    tn t;
    std::uint64_t e = 777 + (1ull << 47);
    w.arm(t, e);
    w.advance(e - 1);
    CHECK(w.pop_expired() == nullptr);
    w.advance(e);
    CHECK(w.pop_expired() == &t);
}

TEST_CASE("an expiry at or beyond the horizon (2^48) is clamped to horizon - 1 and fires there") {
    for (std::uint64_t e : {horizon, horizon + 1, horizon * 4, never - 1, never}) {
        CAPTURE(e);
        timer_wheel w(1000);
        tn t;
        w.arm(t, e);
        CHECK(t.expiry == horizon - 1);
        CHECK(w.next_expiry() == horizon - 1);
        w.advance(horizon - 2);
        CHECK(w.pop_expired() == nullptr);
        w.advance(horizon - 1);
        CHECK(w.pop_expired() == &t);
    }
}

TEST_CASE("advance beyond the horizon stops at horizon - 1") {
    timer_wheel w;
    tn t;
    w.arm(t, horizon - 1);
    w.advance(never);
    CHECK(w.now() == horizon - 1);
    CHECK(w.pop_expired() == &t);
}

TEST_CASE("next_expiry is never when empty and exact across levels without cancellations") {
    timer_wheel w(63);
    CHECK(w.next_expiry() == never);
    // One timer per level, armed latest first.
    std::uint64_t exp[8];
    tn nodes[8];
    for (unsigned level = 0; level < 8; ++level) {
        exp[level] = 63 + span(level) + 3;
    }
    for (int level = 7; level >= 0; --level) {
        w.arm(nodes[level], exp[level]);
        CHECK(w.next_expiry() == exp[level]);
    }
    for (std::uint64_t e : exp) {
        CHECK(w.next_expiry() == e);
        w.advance(e);
        CHECK(w.pop_expired() != nullptr);
    }
    CHECK(w.next_expiry() == never);
}

TEST_CASE("next_expiry after cancelling the earliest may be early but never late") {
    timer_wheel w;
    tn a, b, c;
    // a and b share a level-1 slot; c is in level 2.
    w.arm(a, 100);
    w.arm(b, 120);
    w.arm(c, 10000);
    REQUIRE(w.next_expiry() == 100);
    CHECK(w.cancel(a));
    std::uint64_t ne = w.next_expiry();
    CHECK(ne <= 120);
    CHECK(ne > w.now());
    // Advancing to that (possibly early) tick pops nothing, and the bound
    // then still holds.
    w.advance(ne);
    if (ne < 120) {
        CHECK(w.pop_expired() == nullptr);
        CHECK(w.next_expiry() <= 120);
        w.advance(120);
    }
    CHECK(w.pop_expired() == &b);

    CHECK(w.cancel(c));
    CHECK(w.next_expiry() > w.now());
    w.advance(horizon - 1);
    CHECK(w.pop_expired() == nullptr);
    CHECK(w.next_expiry() == never);
}

TEST_CASE("a slot emptied by cancel forgets its minimum: next_expiry exact again") {
    // The common case: a timeout armed, cancelled, armed again further out.
    // Once its slot is empty, the cancelled expiry must not linger as the
    // slot's minimum and wake the reactor early.
    timer_wheel w;
    tn a, b;
    w.arm(a, 100); // level 1, slot 1
    CHECK(w.cancel(a));
    CHECK(w.next_expiry() == never);
    w.arm(b, 120); // the same slot
    CHECK(w.next_expiry() == 120);
    w.arm(b, 5000); // re-arm: moves b to a level-2 slot, emptying slot 1
    w.arm(a, 110);  // slot 1 again
    CHECK(w.next_expiry() == 110);
}

TEST_CASE("next_expiry stays a lower bound under random cancels across levels") {
    prng rng(4242);
    timer_wheel w(99);
    constexpr int n = 300;
    auto nodes = std::make_unique<tn[]>(n);
    for (int i = 0; i < n; ++i) {
        unsigned level = static_cast<unsigned>(rng.next() % 8);
        w.arm(nodes[i], 99 + 1 + rng.next() % span(level) * 4);
    }
    for (int round = 0; round < n; ++round) {
        int victim = static_cast<int>(rng.next() % n);
        (void)w.cancel(nodes[victim]);
        std::uint64_t true_min = never;
        for (int i = 0; i < n; ++i) {
            if (nodes[i].pending()) {
                true_min = std::min(true_min, nodes[i].expiry);
            }
        }
        REQUIRE(w.next_expiry() <= true_min);
        if (true_min == never) {
            CHECK(w.next_expiry() == never);
        }
    }
}

TEST_CASE("a timer armed at or before now() is due: next_expiry() == now(), pops at the next "
          "advance even to the same now") {
    timer_wheel w(500);
    tn at_now, in_past, at_zero;
    at_now.id = 1;
    in_past.id = 2;
    at_zero.id = 3;
    w.arm(at_now, 500);
    w.arm(in_past, 400);
    w.arm(at_zero, 0);
    CHECK(w.next_expiry() == 500);
    CHECK(w.pending_count() == 3);
    // Not expired before an advance.
    CHECK(w.pop_expired() == nullptr);
    w.advance(500);
    CHECK(pop_ids(w) == ids{1, 2, 3});
    CHECK(w.next_expiry() == never);
}

TEST_CASE("a due timer pops even when advance() is given an earlier time") {
    timer_wheel w(500);
    tn t;
    w.arm(t, 500);
    w.advance(10);
    CHECK(w.now() == 500);
    CHECK(w.pop_expired() == &t);
}

TEST_CASE("a timer armed at now() from inside the pop loop is not popped in that loop") {
    timer_wheel w;
    tn a, b, c;
    a.id = 1;
    b.id = 2;
    c.id = 3;
    w.arm(a, 10);
    w.arm(c, 10);
    w.advance(10);
    std::vector<int> popped;
    while (timer_node* t = w.pop_expired()) {
        popped.push_back(id_of(t));
        if (t == &a) {
            w.arm(b, w.now());     // due now
            w.arm(a, w.now() - 3); // the popped timer re-armed in the past
        }
    }
    CHECK(popped == ids{1, 3});
    CHECK(b.pending());
    CHECK(a.pending());
    CHECK(w.next_expiry() == 10);
    w.advance(10);
    CHECK(pop_ids(w) == ids{2, 1});
}

TEST_CASE("a periodic timer re-armed from the pop loop fires once per period") {
    timer_wheel w;
    tn t;
    w.arm(t, 100);
    int fired = 0;
    for (std::uint64_t now = 1; now <= 10'000; ++now) {
        w.advance(now);
        while (timer_node* x = w.pop_expired()) {
            CHECK(x->expiry == now);
            CHECK(now % 100 == 0);
            ++fired;
            w.arm(*x, now + 100);
        }
    }
    CHECK(fired == 100);
}

TEST_CASE("slack coalescing: expiries in [1048, 1500] with slack 1000 all fire at 2048") {
    // 2048 is the tick with the most trailing zeros in every window
    // [e, e + 1000] with 1048 <= e <= 1500. (For e < 1048 the window ends
    // before 2048; those land on 1536, see the next test.)
    timer_wheel w;
    constexpr int first = 1048;
    constexpr int last = 1500;
    auto nodes = std::make_unique<tn[]>(last - first + 1);
    for (int e = first; e <= last; ++e) {
        tn& t = nodes[e - first];
        t.id = e;
        w.arm(t, static_cast<std::uint64_t>(e), 1000);
        CHECK(t.expiry == 2048);
    }
    CHECK(w.next_expiry() == 2048);
    w.advance(2047);
    CHECK(w.pop_expired() == nullptr);
    w.advance(2048);
    ids want(last - first + 1);
    std::iota(want.begin(), want.end(), first);
    CHECK(pop_ids(w) == want);
}

TEST_CASE("slack: expiries in [1025, 1047] with slack 1000 share 1536, inside their window") {
    timer_wheel w;
    tn nodes[23];
    for (int e = 1025; e <= 1047; ++e) {
        w.arm(nodes[e - 1025], static_cast<std::uint64_t>(e), 1000);
        CHECK(nodes[e - 1025].expiry == 1536);
    }
    w.advance(1535);
    CHECK(w.pop_expired() == nullptr);
    w.advance(1536);
    CHECK(pop_ids(w).size() == 23);
}

TEST_CASE("slack: an expiry already on the best tick of its window keeps it") {
    // Regression: 1024 has more trailing zeros than anything else in
    // [1024, 2024]; the wheel used to move it to 1536, splitting it from
    // exact timers at 1024.
    timer_wheel w;
    tn exact, slacked;
    w.arm(exact, 1024);
    w.arm(slacked, 1024, 1000);
    CHECK(slacked.expiry == 1024);
    w.advance(1024);
    CHECK(pop_ids(w).size() == 2);

    tn z;
    w.arm(z, 4096, 4095);
    CHECK(z.expiry == 4096);
}

TEST_CASE("slack: the fire tick lies in [expiry, expiry + slack] with the most trailing zeros") {
    prng rng(31337);
    timer_wheel w;
    tn t;
    for (int i = 0; i < 20000; ++i) {
        std::uint64_t e = 1 + rng.next() % (1ull << (rng.next() % 40 + 1));
        std::uint64_t s = rng.next() % (1ull << (rng.next() % 20));
        w.arm(t, e, s);
        CAPTURE(e);
        CAPTURE(s);
        REQUIRE(t.expiry >= e);
        REQUIRE(t.expiry <= e + s);
        // The largest power of two with a multiple in the window.
        unsigned best = 0;
        for (unsigned k = 63; k > 0; --k) {
            std::uint64_t m = std::uint64_t{1} << k;
            std::uint64_t first_multiple = (e + m - 1) / m * m;
            if (first_multiple <= e + s) {
                best = k;
                break;
            }
        }
        unsigned tz = 0;
        while (tz < 63 && ((t.expiry >> tz) & 1) == 0) {
            ++tz;
        }
        REQUIRE(tz == best);
    }
    CHECK(w.cancel(t));
}

TEST_CASE("slack 0 keeps the exact expiry; slack near the top of the range saturates") {
    timer_wheel w;
    tn t;
    w.arm(t, 12345, 0);
    CHECK(t.expiry == 12345);
    w.arm(t, 12345, never);
    CHECK(t.expiry == horizon - 1);
    w.arm(t, horizon - 10, 5);
    CHECK(t.expiry >= horizon - 10);
    CHECK(t.expiry <= horizon - 5);
}

TEST_CASE("slack on an expiry of UINT64_MAX (no room above it) is clamped to the horizon") {
    // Regression: expiry + slack saturated to expiry itself and the slack
    // rounding then shifted by an out-of-range amount.
    timer_wheel w;
    tn t;
    w.arm(t, never, 1);
    CHECK(t.expiry == horizon - 1);
    w.arm(t, never, never);
    CHECK(t.expiry == horizon - 1);
    w.advance(horizon - 1);
    CHECK(w.pop_expired() == &t);
}

TEST_CASE("never early, never late: random arms, cancels and advance steps (fixed seed)") {
    prng rng(0x5eed);
    constexpr int n = 3000;
    auto nodes = std::make_unique<tn[]>(n);
    std::vector<std::uint8_t> armed(n, 0);
    std::vector<std::uint8_t> armed_due(n, 0); // armed at or before now()
    for (int i = 0; i < n; ++i) {
        nodes[i].id = i;
    }
    timer_wheel w(1'000'003);
    violations v;
    std::uint64_t pops = 0;
    std::uint64_t armed_count = 0;

    auto random_delay = [&]() -> std::uint64_t {
        switch (rng.next() % 10) {
        case 0:
            return 1 + rng.next() % 64;
        case 1:
            return 1 + rng.next() % 4096;
        case 2:
            return 1 + rng.next() % (1ull << 18);
        case 3:
            return 1 + rng.next() % (1ull << 30);
        case 4:
            return 1 + rng.next() % (1ull << 42);
        case 5: {
            // Right around the next boundary of a random level.
            std::uint64_t s = span(static_cast<unsigned>(1 + rng.next() % 7));
            std::uint64_t b = (w.now() / s + 1) * s;
            std::uint64_t e = b - 1 + rng.next() % 3;
            return e > w.now() ? e - w.now() : 1;
        }
        case 6:
            return 63 + rng.next() % 3;
        default:
            return 1 + rng.next() % 1000;
        }
    };
    auto random_step = [&]() -> std::uint64_t {
        switch (rng.next() % 12) {
        case 0:
            return 1;
        case 1:
            return 63;
        case 2:
            return 64;
        case 3:
            return 65;
        case 4:
            return 4096;
        case 5:
            return rng.next() % 5000;
        case 6:
            return rng.next() % (1ull << 20);
        case 7:
            return rng.next() % 100 == 0 ? (1ull << 40) + rng.next() % (1ull << 36) : 7;
        case 8: {
            // Exactly to the next expiry the wheel reports.
            std::uint64_t ne = w.next_expiry();
            return ne != never && ne > w.now() ? ne - w.now() : 0;
        }
        default:
            return rng.next() % 200;
        }
    };

    for (int round = 0; round < 4000; ++round) {
        int ops = static_cast<int>(rng.next() % 12);
        for (int op = 0; op < ops; ++op) {
            auto i = static_cast<std::size_t>(rng.next() % n);
            std::uint64_t dice = rng.next() % 100;
            if (dice < 70) {
                std::uint64_t slack = rng.next() % 4 == 0 ? rng.next() % 500 : 0;
                std::uint64_t want = w.now() + random_delay();
                armed_count += armed[i] ? 0 : 1;
                w.arm(nodes[i], want, slack);
                std::uint64_t clamped = std::min(want, horizon - 1);
                if (nodes[i].expiry < clamped ||
                    nodes[i].expiry > std::min(clamped + slack, horizon - 1)) {
                    v.add("fire tick outside [expiry, expiry + slack]");
                }
                armed[i] = 1;
                armed_due[i] = nodes[i].expiry <= w.now() ? 1 : 0;
            } else if (dice < 80) {
                // Armed in the past or right now: due.
                std::uint64_t back = rng.next() % 3 == 0 ? 0 : rng.next() % 1000;
                armed_count += armed[i] ? 0 : 1;
                w.arm(nodes[i], w.now() - std::min(back, w.now()));
                armed[i] = 1;
                armed_due[i] = 1;
            } else {
                bool was = w.cancel(nodes[i]);
                if (was != (armed[i] != 0)) {
                    v.add("cancel() disagrees about pending");
                }
                armed_count -= armed[i] ? 1 : 0;
                armed[i] = 0;
            }
        }
        if (w.pending_count() != armed_count) {
            v.add("pending_count() wrong");
        }
        // next_expiry(): now() when something is due, else a lower bound
        // on the earliest armed expiry, never when nothing is armed.
        std::uint64_t true_min = never;
        bool any_due = false;
        for (int i = 0; i < n; ++i) {
            if (armed[i]) {
                true_min = std::min(true_min, nodes[i].expiry);
                any_due = any_due || armed_due[i];
            }
        }
        std::uint64_t ne = w.next_expiry();
        if (any_due ? ne != w.now() : ne > true_min) {
            v.add("next_expiry() later than the earliest timer");
        }
        if (true_min == never && ne != never) {
            v.add("next_expiry() not never on an empty wheel");
        }

        std::uint64_t prev = w.now();
        std::uint64_t target = std::min(prev + random_step(), horizon - 1);
        w.advance(target);
        if (w.now() != target) {
            v.add("now() is not the advanced-to time");
        }
        std::uint64_t last = 0;
        while (timer_node* t = w.pop_expired()) {
            auto i = static_cast<std::size_t>(id_of(t));
            ++pops;
            if (!armed[i]) {
                v.add("a cancelled or idle timer popped");
            }
            if (t->expiry > w.now()) {
                v.add("popped early: expiry " + std::to_string(t->expiry) + " > now " +
                      std::to_string(w.now()));
            }
            if (!armed_due[i]) {
                // It must not have been due at an earlier advance...
                if (t->expiry <= prev) {
                    v.add("popped late: due by an earlier advance");
                }
                // ...and comes out in expiry order behind the due ones.
                if (t->expiry < last) {
                    v.add("popped out of expiry order");
                }
                last = t->expiry;
            }
            armed[i] = 0;
            armed_due[i] = 0;
            --armed_count;
        }
        // Never late: nothing still armed was due by now.
        for (int i = 0; i < n; ++i) {
            if (armed[i] && nodes[i].expiry <= w.now()) {
                v.add("still pending though due: expiry " + std::to_string(nodes[i].expiry) +
                      " <= now " + std::to_string(w.now()));
            }
        }
    }
    INFO(v.first);
    CHECK(v.count == 0);
    CHECK(pops > 5000);           // the run did pop a good number of timers
    CHECK(w.now() < horizon - 1); // and never ran into the horizon clamp
}

namespace {

// Arms `n` timers at random expiries over several levels (fixed seed),
// optionally cancels a random half, then advances in random steps to the
// last expiry and checks that each remaining timer pops exactly once, at
// the first advance reaching its expiry, in non-decreasing expiry order.
void million_timers(bool cancel_half) {
    constexpr std::size_t n = 1'000'000;
    prng rng(cancel_half ? 0xca9ce1 : 0x1000000);
    const std::uint64_t start = 4095;
    timer_wheel w(start);
    // Plain nodes: a node's index is its id.
    auto nodes = std::make_unique<timer_node[]>(n);
    std::vector<std::uint8_t> state(n, 0); // 0 armed, 1 cancelled, 2 popped
    std::uint64_t last_expiry = start;
    for (std::size_t i = 0; i < n; ++i) {
        // Levels 0..4: delays below 64^5 ticks (12 days at 1 ms).
        unsigned level = static_cast<unsigned>(rng.next() % 5);
        std::uint64_t e = start + 1 + rng.next() % (span(level + 1) - 1);
        w.arm(nodes[i], e);
        last_expiry = std::max(last_expiry, e);
    }
    REQUIRE(w.pending_count() == n);
    std::size_t live = n;
    if (cancel_half) {
        std::size_t refused = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (rng.next() % 2 == 0) {
                refused += w.cancel(nodes[i]) ? 0 : 1;
                state[i] = 1;
                --live;
            }
        }
        CHECK(refused == 0);
        REQUIRE(w.pending_count() == live);
        CHECK(live > n * 45 / 100);
        CHECK(live < n * 55 / 100);
    }

    violations v;
    std::size_t popped = 0;
    std::uint64_t last = 0;
    std::size_t advances = 0;
    while (w.now() < last_expiry) {
        std::uint64_t prev = w.now();
        std::uint64_t step;
        switch (rng.next() % 4) {
        case 0:
            step = 1 + rng.next() % 64;
            break;
        case 1:
            step = 1 + rng.next() % 100'000;
            break;
        case 2: {
            std::uint64_t ne = w.next_expiry();
            step = ne != never && ne > prev ? ne - prev : 1;
            break;
        }
        default:
            step = 1 + rng.next() % 1'000'000;
            break;
        }
        w.advance(std::min(prev + step, last_expiry));
        ++advances;
        while (timer_node* t = w.pop_expired()) {
            auto i = static_cast<std::size_t>(t - nodes.get());
            if (state[i] != 0) {
                v.add(state[i] == 1 ? "a cancelled timer popped" : "a timer popped twice");
            }
            if (t->expiry > w.now()) {
                v.add("popped early");
            }
            if (t->expiry <= prev) {
                v.add("popped late");
            }
            if (t->expiry < last) {
                v.add("popped out of expiry order");
            }
            last = t->expiry;
            state[i] = 2;
            ++popped;
        }
    }
    INFO(v.first);
    CHECK(v.count == 0);
    CHECK(popped == live);
    CHECK(w.pending_count() == 0);
    CHECK(w.next_expiry() == never);
    std::size_t not_popped = 0;
    for (std::size_t i = 0; i < n; ++i) {
        not_popped += state[i] == 0 ? 1 : 0;
    }
    CHECK(not_popped == 0);
    CHECK(advances > 100);
}

} // namespace

TEST_CASE("1M timers across levels each pop exactly once, in expiry order, never early") {
    million_timers(false);
}

TEST_CASE("1M timers with a random half cancelled: none of the cancelled pop") {
    million_timers(true);
}
