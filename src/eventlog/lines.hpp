// The event log's RAM ring: the newest encoded records, for GET /events and
// `custosctl events`, whether or not a directory keeps them on disk.
//
// Owns: nothing (the bytes are the caller's, from the runtime's arena).
// Lines are kept whole and in seq order in one contiguous block; when a
// line does not fit, the oldest quarter of the block (whole lines) goes in
// one memmove, so an append costs a copy of the line and, now and then, a
// move of 3/4 of the block. Lookups walk the lines from the oldest
// (memchr), about 5 us for 64 KiB.
//
// Not thread-safe: the reactor appends and reads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace custos::eventlog {

class lines {
public:
    lines() noexcept = default;
    lines(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}

    // Appends one whole line (its '\n' included) whose record is `seq`;
    // seqs must increase. A line longer than the block is not kept
    // (counted in too_long()).
    void append(const char* line, std::size_t len, std::uint64_t seq) noexcept;

    // Copies the lines whose seq is >= `since`, oldest first, at most
    // `limit` of them and only whole lines that fit `cap`; returns the
    // bytes copied. `next` becomes the seq to ask for next time (the last
    // copied line's + 1; `since` or the oldest held when nothing was
    // copied).
    std::size_t copy_since(std::uint64_t since, std::uint32_t limit, char* out, std::size_t cap,
                           std::uint64_t& next) const noexcept;

    bool empty() const noexcept { return len_ == 0; }
    // The oldest held and the next to come (first == next: none held).
    std::uint64_t first_seq() const noexcept { return first_; }
    std::uint64_t next_seq() const noexcept { return next_; }
    std::size_t size() const noexcept { return len_; }
    std::size_t capacity() const noexcept { return cap_; }
    std::uint64_t evicted() const noexcept { return evicted_; }
    std::uint64_t too_long() const noexcept { return too_long_; }

    // The seq at the start of a line ({"seq":N); false when none.
    static bool seq_of(const char* line, std::size_t len, std::uint64_t& out) noexcept;

    // One record line (record.hpp's encoding) as the line an operator
    // reads, '\n' included:
    //   #SEQ TS LEVEL KIND NAME FROM -> TO REASON: MESSAGE (xCOUNT) {FIELDS}
    // TS is the record's ts, or "+MONO_S" (seconds since boot) without
    // one, with "?" after it when the clock was not trusted; absent parts
    // are left out. Reads only the members this log writes, and keeps
    // escapes other than \" and \\ as they are. Returns the length written
    // (0: it did not fit `cap`).
    static std::size_t to_text(const char* line, std::size_t len, char* out,
                               std::size_t cap) noexcept;

private:
    void drop_oldest(std::size_t need) noexcept;

    char* buf_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t len_ = 0;
    std::uint64_t first_ = 0;
    std::uint64_t next_ = 0;
    std::uint64_t evicted_ = 0; // lines dropped to make room
    std::uint64_t too_long_ = 0;
};

} // namespace custos::eventlog
