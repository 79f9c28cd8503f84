// JSON scalars shared by the status renderers (render_*.cpp) and the event
// log (src/eventlog/): a string escaped for JSON with malformed UTF-8
// repaired, and a wall-clock time in RFC 3339 UTC with milliseconds.
//
// Owns: nothing. Writes into a caller's text_out (or a caller's bytes);
// never allocates, never reads a locale or a time zone file. Any thread may
// call them (wall_into's day cache is the thread's own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/text_out.hpp"

namespace custos::status {

// A JSON string with its quotes. Escapes as text_out::put_json does, and
// also replaces each byte of malformed UTF-8 with U+FFFD, so the document
// is always valid UTF-8 (RFC 8259 8.1) whatever a service sent in STATUS=.
void put_str(text_out& o, std::string_view s) noexcept;

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
    return a / b - (a % b < 0 ? 1 : 0);
}

// `v`'s last `n` digits at `p`.
inline void digits(char* p, std::uint32_t v, int n) noexcept {
    while (n-- > 0) {
        p[n] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
}

// Wall-clock nanoseconds as "2026-12-07T08:02:52.123Z" (no quotes), the
// 24 bytes at `b`. The date is computed from the day count (the proleptic
// Gregorian calendar in 400-year eras), so no gmtime, no locale, no time
// zone file. An int64_t of nanoseconds spans the years 1677 to 2262: the
// year always has four digits.
constexpr std::size_t wall_size = 24;
void wall_into(char* b, std::int64_t wall_ns) noexcept;
void put_wall(text_out& o, std::int64_t wall_ns) noexcept;

} // namespace custos::status
