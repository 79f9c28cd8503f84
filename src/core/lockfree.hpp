// What every lock-free primitive in custos relies on, checked on every
// target the code is compiled for (armhf included): the atomic types used are
// lock-free without libatomic, and the cache-line constant is sane.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#ifndef CUSTOS_CACHE_LINE
#define CUSTOS_CACHE_LINE 64
#endif

namespace custos {

// Per-target constant (meson option cache_line), deliberately not
// std::hardware_destructive_interference_size, whose value may change
// between compiler versions and so is unfit for a layout.
inline constexpr std::size_t cache_line = CUSTOS_CACHE_LINE;
static_assert((cache_line & (cache_line - 1)) == 0, "cache_line must be a power of two");

// The lock-free code uses 32-bit atomics only: 64-bit atomics need
// ldrexd/strexd on ARMv7 and library calls on ARMv6 (PLATFORM.md section 8).
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "32-bit atomics must be lock-free on every custos target");
static_assert(std::atomic<bool>::is_always_lock_free, "atomic<bool> must be lock-free");

} // namespace custos
