// A service's captured output in RAM: the last lines the framers emitted,
// for `custosctl logs` and GET /services/NAME/logs, with or without a disk.
//
// Owns: a byte ring of `capacity` bytes (the caller's arena: reserve()).
// Holds whole prefixed lines only, back to back, exactly as the files get
// them; since a line's only '\n' is its last byte (framer.hpp), lines are
// found by '\n' and need no header. Never allocates.
//
// Numbers: every line pushed gets the next number, from 1, 64-bit, never
// reused; the ring holds lines first() .. next() - 1. When a push does not
// fit, the oldest whole lines go (counted: evicted_lines(),
// evicted_bytes()); a push never fails once the ring holds a longest line
// (capacity >= max_line).
//
// Readers copy out whole lines only: tail() for the last n, since() for a
// follower that asks again from the number it was given. One thread (the
// reactor) pushes and reads.
#pragma once

#include <cstddef>
#include <cstdint>

#include <custos/error.hpp>

#include "core/arena.hpp"

namespace custos::capture {

// What a read copied.
struct read_result {
    std::size_t bytes = 0;   // copied into the caller's buffer
    std::uint64_t lines = 0; // whole lines copied
    std::uint64_t first = 0; // the first copied line's number (next when none)
    std::uint64_t next = 0;  // the number to ask since() for next
    std::uint64_t lost = 0;  // since(): lines asked for that were evicted
};

class ring {
public:
    ring() = default;
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;

    // Takes `capacity` bytes from `mem` and empties the ring (numbering
    // starts over at 1). Two-pass arena sizing: on the measuring pass this
    // fails with OutOfMemory and mem.needed() has grown by what it needs.
    // Errors: InvalidArgument (capacity below max_line: a longest line
    // must fit), OutOfMemory.
    [[nodiscard]] Result<void> reserve(arena& mem, std::size_t capacity) noexcept;

    // Appends one whole line (ending in its only '\n'; at most
    // capacity() bytes), evicting the oldest lines to make room. Returns
    // its number; 0 (nothing kept) when the ring is not reserved, the line
    // is empty or longer than the ring.
    std::uint64_t push(const char* line, std::size_t len) noexcept;

    // The last `n` lines that fit in `cap` bytes, oldest first, whole
    // lines only (fewer when fewer are held or they do not fit). `next` is
    // next().
    read_result tail(std::uint64_t n, char* out, std::size_t cap) const noexcept;

    // Lines numbered from `from` on, oldest first, as many whole ones as
    // fit in `cap` (none when the first does not: give at least
    // max_line). `lost` says how many of the lines from `from` were
    // evicted before this read (the reader fell behind); `next` is the
    // number to ask for next time (next() when everything held was
    // copied). A `from` past next() reads nothing and gives next(); 0
    // reads as 1.
    read_result since(std::uint64_t from, char* out, std::size_t cap) const noexcept;

    // The oldest held line's number (next() when empty) and the next
    // line's number.
    std::uint64_t first() const noexcept { return first_; }
    std::uint64_t next() const noexcept { return next_; }
    std::size_t size() const noexcept { return used_; }
    std::size_t capacity() const noexcept { return cap_; }
    std::uint64_t evicted_lines() const noexcept { return first_ - 1; }
    std::uint64_t evicted_bytes() const noexcept { return evicted_bytes_; }

private:
    // Byte at logical position i (0 = the oldest held byte).
    char at(std::size_t i) const noexcept { return buf_[(start_ + i) % cap_]; }
    // Logical position of the first '\n' at or after `from`, or used_.
    std::size_t find_nl(std::size_t from) const noexcept;
    // Logical position of the last '\n' before `before`, or SIZE_MAX.
    std::size_t rfind_nl(std::size_t before) const noexcept;
    // Copies logical [from, from + n) to `out`.
    void copy_out(std::size_t from, std::size_t n, char* out) const noexcept;

    char* buf_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t start_ = 0; // offset of the oldest byte in buf_
    std::size_t used_ = 0;
    std::uint64_t first_ = 1;
    std::uint64_t next_ = 1;
    std::uint64_t evicted_bytes_ = 0;
};

} // namespace custos::capture
