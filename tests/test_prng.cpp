// core/prng.hpp: the reference sequence, determinism per seed, use at
// compile time, and enough spread for jitter in the bits its users take.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <bitset>
#include <cstdint>

#include "core/prng.hpp"

using custos::prng;

TEST_CASE("prng: the published splitmix64 sequence for seed 0") {
    prng r(0);
    CHECK(r.next() == 0xe220a8397b1dcdafull);
    CHECK(r.next() == 0x6e789e6aa1b965f4ull);
    CHECK(r.next() == 0x06c45d188009454full);
}

TEST_CASE("prng: the same seed gives the same sequence, another seed another") {
    prng a(42), b(42), c(43);
    bool differs = false;
    for (int i = 0; i < 100; ++i) {
        std::uint64_t x = a.next();
        CHECK(x == b.next());
        differs = differs || x != c.next();
    }
    CHECK(differs);
}

TEST_CASE("prng: usable at compile time, and a default seed is seed 0") {
    constexpr std::uint64_t first = prng(0).next();
    static_assert(first == 0xe220a8397b1dcdafull);
    prng d;
    CHECK(d.next() == first);
}

TEST_CASE("prng: the high 16 bits (DNS ids) spread over their range") {
    // 65536 draws: a uniform source hits about 1 - 1/e (63 %, 41427) of the
    // 65536 values; a degenerate one (stuck bits, a short cycle) far fewer.
    static std::bitset<65536> seen;
    prng r(0x5eed);
    for (int i = 0; i < 65536; ++i) {
        seen.set(static_cast<std::size_t>(r.next() >> 48));
    }
    CHECK(seen.count() > 40000);
    CHECK(seen.count() < 43000);
}

TEST_CASE("prng: every output bit is set about half of the time") {
    prng r(7);
    int ones[64] = {};
    constexpr int draws = 20000;
    for (int i = 0; i < draws; ++i) {
        std::uint64_t x = r.next();
        for (int b = 0; b < 64; ++b) {
            ones[b] += static_cast<int>((x >> b) & 1u);
        }
    }
    for (int b = 0; b < 64; ++b) {
        CAPTURE(b);
        CHECK(ones[b] > draws / 2 - 600); // about 8.5 standard deviations
        CHECK(ones[b] < draws / 2 + 600);
    }
}
