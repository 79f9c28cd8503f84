// A counting replacement for the whole malloc family and global operator
// new/delete (tests/counting_alloc.cpp): linking it into a test binary makes
// every allocation by custos, liburing, libstdc++ or libc visible, on
// dynamically and statically (ARM) linked builds alike. Memory comes from a
// fixed arena and is never reused. Not for sanitizer builds, which replace
// malloc themselves.
#pragma once

#include <cstdint>

namespace custos_test {
// Allocations (malloc, calloc, realloc, aligned variants, operator new) so far.
std::uint64_t allocation_count() noexcept;
// Whether the counter sees a deliberate malloc and new made now: a test
// that found no allocation after `after` shows with it that it could have.
bool counter_works(std::uint64_t after) noexcept;
} // namespace custos_test
