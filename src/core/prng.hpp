// The one pseudo-random generator of custos: splitmix64 (Steele, Lea and
// Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014; the
// constants are those of Vigna's public-domain reference code).
//
// Jitter needs spread, not secrecy: restart backoff, the first poll of a
// probe and the resolver's query ids draw from it so that things that fail
// together do not retry together. Deterministic from its seed, the same
// sequence on every target (tests assert exact values); every seed is valid,
// 0 included; 8 bytes of state, no system call, no allocation, usable in
// constant expressions.
//
// Not for secrets: a few outputs reveal the state. DNS query ids use it all
// the same: they only have to be unguessable by an off-path sender, who sees
// neither the seed (clock, pid, address) nor the queries, and the kernel's
// random source port adds 16 bits more. A resolver that had to resist an
// on-path observer would need getrandom(2) per id, and DNSSEC besides.
#pragma once

#include <cstdint>

namespace custos {

class prng {
public:
    explicit constexpr prng(std::uint64_t seed = 0) noexcept : state_(seed) {}

    // The next 64 pseudo-random bits. Take the high bits when fewer are
    // needed (next() >> 48 for 16).
    constexpr std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t state_;
};

} // namespace custos
