// JSON scalars shared by the status renderers and the event log: a string
// escaped with its malformed UTF-8 repaired, and a wall-clock time in RFC
// 3339 UTC with milliseconds. No allocation, no locale, no time zone file.
#include "status/json.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace custos::status {

using sv = std::string_view;

namespace {

// The length of the well-formed UTF-8 sequence at s[i] (a byte >= 0x80), or
// 0 when it is not one (a stray continuation byte, an overlong form, a
// surrogate, beyond U+10FFFF, or cut short).
std::size_t utf8_length(sv s, std::size_t i) noexcept {
    auto at = [&](std::size_t k) -> unsigned {
        return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
    };
    const unsigned b = at(0);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xbf; // the second byte's range
    if (b >= 0xc2 && b <= 0xdf) {
        n = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        n = 3;
        lo = b == 0xe0 ? 0xa0 : 0x80;
        hi = b == 0xed ? 0x9f : 0xbf;
    } else if (b >= 0xf0 && b <= 0xf4) {
        n = 4;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (at(1) < lo || at(1) > hi) {
        return 0;
    }
    for (std::size_t k = 2; k < n; ++k) {
        if (at(k) < 0x80 || at(k) > 0xbf) {
            return 0;
        }
    }
    return n;
}

// Whether any of the 8 bytes in `w` is below 0x20, 0x7f or above, '"' or
// '\\' (may say yes for a word that only has a byte >= 0x80: those take the
// byte-by-byte path anyway). The classic "has a byte less than n" and "has
// a zero byte" word tests, exact for "any".
constexpr bool needs_escape(std::uint64_t w) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101u;
    constexpr std::uint64_t highs = 0x8080808080808080u;
    const std::uint64_t below_space = (w - ones * 0x20) & ~w;
    const std::uint64_t quote = w ^ (ones * '"');
    const std::uint64_t backslash = w ^ (ones * '\\');
    const std::uint64_t is_quote = (quote - ones) & ~quote;
    const std::uint64_t is_backslash = (backslash - ones) & ~backslash;
    const std::uint64_t del_or_high = (w + ones) | w; // 0x7f becomes 0x80
    return ((below_space | is_quote | is_backslash | del_or_high) & highs) != 0;
}
static_assert(!needs_escape(0x6867666564636261u)); // "abcdefgh"
static_assert(needs_escape(0x6867666564632261u));  // a quote
static_assert(needs_escape(0x68676665645c6261u));  // a backslash
static_assert(needs_escape(0x686766650a636261u));  // a newline
static_assert(needs_escape(0x7f67666564636261u));  // DEL
static_assert(needs_escape(0x68c3666564636261u));  // UTF-8
static_assert(!needs_escape(0x7e7e7e7e20202020u)); // '~' and ' ', the ends

} // namespace

// Runs of bytes that need nothing go out in one put().
void put_str(text_out& o, sv s) noexcept {
    // The common case, a short plain text (a name, a state): copied straight
    // into the buffer. Anything else takes the escaping path below.
    if (char* p = o.claim(s.size() + 2); p != nullptr) {
        std::size_t i = 0;
        // Eight bytes a step while none of them needs a look of its own.
        for (; i + 8 <= s.size(); i += 8) {
            std::uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            if (needs_escape(w)) {
                break;
            }
            std::memcpy(p + 1 + i, &w, 8);
        }
        for (; i < s.size(); ++i) {
            const auto u = static_cast<unsigned char>(s[i]);
            if (u < 0x20 || u >= 0x7f || u == '"' || u == '\\') {
                break;
            }
            p[i + 1] = s[i];
        }
        if (i == s.size()) {
            p[0] = '"';
            p[i + 1] = '"';
            o.commit(i + 2);
            return;
        }
    }
    static constexpr char hex[] = "0123456789abcdef";
    o.put('"');
    std::size_t run = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        const auto u = static_cast<unsigned char>(s[i]);
        if (u >= 0x20 && u < 0x7f && u != '"' && u != '\\') {
            ++i;
            continue;
        }
        std::size_t n = 0;
        if (u >= 0x80 && (n = utf8_length(s, i)) != 0) {
            i += n;
            continue;
        }
        o.put(s.substr(run, i - run));
        if (u == '"' || u == '\\') {
            o.put('\\').put(static_cast<char>(u));
        } else if (u == '\n') {
            o.put("\\n");
        } else if (u == '\t') {
            o.put("\\t");
        } else if (u == '\r') {
            o.put("\\r");
        } else if (u >= 0x80) {
            o.put("\\ufffd");
        } else {
            o.put("\\u00").put(hex[u >> 4]).put(hex[u & 15]);
        }
        run = ++i;
    }
    o.put(s.substr(run));
    o.put('"');
}

namespace {

// The date is the costly part and a document's times mostly fall on a few
// days: each thread keeps the last day it formatted ("2026-12-07T", 11
// bytes) and copies it when the next time falls on the same day.
struct day_cache {
    std::int64_t day = INT64_MIN;
    char text[11] = {};
};

void date_into(char* b, std::int64_t days) noexcept {
    const std::int64_t z = days + 719'468; // days since 0000-03-01
    const std::int64_t era = floor_div(z, 146'097);
    const auto doe = static_cast<std::uint32_t>(z - era * 146'097); // [0, 146096]
    const std::uint32_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365; // [0, 399]
    const std::uint32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                 // [0, 365]
    const std::uint32_t mp = (5 * doy + 2) / 153;                                      // March = 0
    const std::uint32_t month = mp < 10 ? mp + 3 : mp - 9;
    digits(b, static_cast<std::uint32_t>(yoe + era * 400 + (month <= 2 ? 1 : 0)), 4);
    b[4] = '-';
    digits(b + 5, month, 2);
    b[7] = '-';
    digits(b + 8, doy - (153 * mp + 2) / 5 + 1, 2);
    b[10] = 'T';
}

} // namespace

void wall_into(char* b, std::int64_t wall_ns) noexcept {
    // Any thread may render: the cache is the thread's own (plain data, no
    // constructor to run, nothing allocated).
    static thread_local day_cache last;
    const std::int64_t ms = floor_div(wall_ns, 1'000'000);
    const std::int64_t days = floor_div(ms, 86'400'000);
    const auto rem = static_cast<std::uint32_t>(ms - days * 86'400'000);
    if (days != last.day) {
        date_into(last.text, days);
        last.day = days;
    }
    std::memcpy(b, last.text, sizeof last.text);
    digits(b + 11, rem / 3'600'000, 2);
    b[13] = ':';
    digits(b + 14, rem / 60'000 % 60, 2);
    b[16] = ':';
    digits(b + 17, rem / 1000 % 60, 2);
    b[19] = '.';
    digits(b + 20, rem % 1000, 3);
    b[23] = 'Z';
}

void put_wall(text_out& o, std::int64_t wall_ns) noexcept {
    char b[wall_size];
    wall_into(b, wall_ns);
    o.put(sv(b, wall_size));
}

} // namespace custos::status
