// The renderers (render.hpp). A document is a table of steps; a step is a
// count of items and the function that renders one of them. fill() walks
// the table, renders each item after a mark and rewinds to it when the
// item did not fit whole. The field names and formats are control.hpp's.
#include "status/render.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "core/assert.hpp"

namespace custos::status {
namespace {

using sv = std::string_view;

// --- scalars -----------------------------------------------------------------

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

// A JSON string with its quotes. Escapes as text_out::put_json does, and
// also replaces each byte of malformed UTF-8 with U+FFFD, so the document
// is always valid UTF-8 (RFC 8259 8.1) whatever a service sent in STATUS=.
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

std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
    return a / b - (a % b < 0 ? 1 : 0);
}

// `v`'s last `n` digits at `p`.
void digits(char* p, std::uint32_t v, int n) noexcept {
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
//
// The date is the costly part and a document's times mostly fall on a few
// days: each thread keeps the last day it formatted ("2026-12-07T", 11
// bytes) and copies it when the next time falls on the same day.
constexpr std::size_t wall_size = 24;

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

// "00" to "99": two digits a step.
constexpr auto digit_pairs = [] {
    std::array<char, 200> a{};
    for (std::size_t i = 0; i < 100; ++i) {
        a[2 * i] = static_cast<char>('0' + i / 10);
        a[2 * i + 1] = static_cast<char>('0' + i % 10);
    }
    return a;
}();

// `v` in decimal at `p`; returns its length (at most 20). Most figures in a
// document are small (counts, pids): the length first, then the digits
// written from the end, two at a time.
std::size_t u64_into(char* p, std::uint64_t v) noexcept {
    if (v < 10) {
        p[0] = static_cast<char>('0' + v);
        return 1;
    }
    std::size_t n = 2;
    for (std::uint64_t t = v / 100; t != 0; t /= 10) {
        ++n;
    }
    std::size_t at = n;
    while (v >= 100) {
        const auto two = static_cast<std::size_t>(v % 100) * 2;
        v /= 100;
        p[--at] = digit_pairs[two + 1];
        p[--at] = digit_pairs[two];
    }
    if (v >= 10) {
        p[--at] = digit_pairs[v * 2 + 1];
        p[--at] = digit_pairs[v * 2];
    } else {
        p[--at] = static_cast<char>('0' + v);
    }
    return n;
}

std::uint64_t magnitude(std::int64_t v) noexcept {
    return v < 0 ? static_cast<std::uint64_t>(-(v + 1)) + 1 : static_cast<std::uint64_t>(v);
}

// The wall time of monotonic `at_ns`; 0 when either is unknown.
std::int64_t wall_of(const render_context& c, std::int64_t at_ns) noexcept {
    if (at_ns == 0 || c.wall_now_ns == 0) {
        return 0;
    }
    return c.wall_now_ns - (c.now_ns - at_ns);
}

// The time from now to `at_ns`, never negative.
std::int64_t until(const render_context& c, std::int64_t at_ns) noexcept {
    return at_ns > c.now_ns ? at_ns - c.now_ns : 0;
}

// "SIGKILL", "SIGRTMIN+3"; false (nothing written) for a number with no name.
bool put_signal_name(text_out& o, int sig) noexcept {
    struct entry {
        int sig;
        const char* name;
    };
    static constexpr entry names[] = {
        {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
        {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
        {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
        {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
        {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
        {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
        {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
        {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
        {SIGIO, "SIGIO"},         {SIGPWR, "SIGPWR"},   {SIGSYS, "SIGSYS"},
    };
    for (const entry& e : names) {
        if (e.sig == sig) {
            o.put(e.name);
            return true;
        }
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        o.put("SIGRTMIN+").put_i64(sig - SIGRTMIN);
        return true;
    }
    return false;
}

// "exit 3", "signal SIGKILL (core)": the TSV's LAST_EXIT and the detail's.
void put_exit_text(text_out& o, const ExitInfo& e) noexcept {
    if (e.signal == 0) {
        o.put("exit ").put_i64(e.code);
        return;
    }
    o.put("signal ");
    if (!put_signal_name(o, e.signal)) {
        o.put_i64(e.signal);
    }
    if (e.core_dumped) {
        o.put(" (core)");
    }
}

std::string_view device_name(WatchdogDevice d) noexcept {
    switch (d) {
    case WatchdogDevice::none:
        return "none";
    case WatchdogDevice::kernel:
        return "kernel";
    case WatchdogDevice::gpio:
        return "gpio";
    case WatchdogDevice::null:
        return "null";
    }
    return "unknown";
}

bool running(const ServiceStatus& s) noexcept {
    return s.started_ns != 0;
}

std::uint64_t restarts_all(const ServiceStatus& s) noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t v : s.restarts_by_cause) {
        n += v;
    }
    return n;
}

// The last finished check's duration: from its start to the later of the
// last success and failure (each set at a check's end); 0 when none.
std::int64_t probe_duration(const ProbeStatus& p) noexcept {
    const std::int64_t end =
        p.last_success_ns > p.last_failure_ns ? p.last_success_ns : p.last_failure_ns;
    return p.last_check_ns != 0 && end >= p.last_check_ns ? end - p.last_check_ns : 0;
}

// The snapshot's records as a document shows them: only the parts it
// renders are read (snapshot::service_into ...), into the thread's own
// scratch record. A part overwrites every field the documents read of that
// part, so the other fields may hold an earlier record's bytes: no ~1 KiB
// of zeroing per record. The reference is valid until the thread's next
// call. Any thread may render: plain data, constant-initialised, nothing
// allocated. `seq`, when not null, gets the sequence of the read (1, odd,
// for a default record: nothing to keep text of).
const ServiceStatus& service_part(const snapshot& snap, std::uint32_t i,
                                  snapshot::service_part what,
                                  std::uint32_t* seq = nullptr) noexcept {
    static thread_local ServiceStatus s;
    if (i >= snap.service_count()) {
        s = ServiceStatus{};
        if (seq != nullptr) {
            *seq = 1;
        }
        return s;
    }
    const std::uint32_t read = snap.service_into(i, s, what);
    if (seq != nullptr) {
        *seq = read;
    }
    return s;
}

const ProbeStatus& probe_part(const snapshot& snap, std::uint32_t p, snapshot::probe_part what,
                              std::uint32_t* seq = nullptr) noexcept {
    static thread_local ProbeStatus r;
    if (p >= snap.probe_count()) {
        r = ProbeStatus{};
        if (seq != nullptr) {
            *seq = 1;
        }
        return r;
    }
    const std::uint32_t read = snap.probe_into(p, r, what);
    if (seq != nullptr) {
        *seq = read;
    }
    return r;
}

// The health without its reasons.
HealthStatus health_of(const snapshot& snap) noexcept {
    HealthStatus h;
    snap.health_head(h);
    return h;
}

// Seconds with three decimals, truncated toward zero ("-1.250"), at `b`
// (room for 25 bytes); returns the length. text_out::put_seconds(ns, 3)'s
// digits.
std::size_t secs_into(char* b, std::int64_t ns) noexcept {
    std::size_t n = 0;
    if (ns < 0) {
        b[n++] = '-';
    }
    const std::uint64_t mag = magnitude(ns);
    n += u64_into(b + n, mag / 1'000'000'000u);
    b[n++] = '.';
    digits(b + n, static_cast<std::uint32_t>(mag % 1'000'000'000u / 1'000'000u), 3);
    return n + 3;
}

} // namespace

// --- the memo (render.hpp's text_memo) -----------------------------------------

struct memo_ops {
    using moment = text_memo::moment;

    // The value a hole stands for, as the renderer writes it.
    static std::int64_t value_of(moment kind, std::int64_t at_ns,
                                 const render_context& c) noexcept {
        return kind == moment::since ? c.now_ns - at_ns : until(c, at_ns);
    }

    // Appends record `slot`'s kept text with its holes filled when it is
    // still the text a render would give (render.hpp); false, nothing
    // written, when it is not.
    static bool replay(text_memo& m, std::uint32_t slot, std::uint32_t seq, text_out& o,
                       const render_context& c) noexcept {
        const text_memo::entry& e = m.entries_[slot];
        const bool wall_known = c.wall_now_ns != 0;
        if (e.epoch != m.epoch_ || e.seq != seq || e.wall_known != wall_known) {
            return false;
        }
        if (wall_known) {
            const std::int64_t off = c.wall_now_ns - c.now_ns;
            if (off < e.lo || off >= e.hi) {
                return false;
            }
        }
        const char* t = m.pool_ + e.at;
        std::size_t from = 0;
        for (std::uint8_t h = 0; h < e.holes; ++h) {
            o.put(sv(t + from, e.hole_pos[h] - from));
            char b[32];
            o.put(sv(b, secs_into(b, value_of(e.hole_kind[h], e.hole_at[h], c))));
            from = e.hole_pos[h];
        }
        o.put(sv(t + from, e.len - from));
        ++m.counters_.hits;
        return true;
    }

    static std::uint32_t services(const text_memo& m) noexcept { return m.services_; }
    static std::uint32_t probes(const text_memo& m) noexcept { return m.probes_; }

    // A render of a record to keep begins at `o`'s end.
    static void begin(text_memo& m) noexcept {
        m.cap_now_ = text_memo::capture{};
        m.cap_now_.on = true;
        m.cap_now_.lo = INT64_MIN;
        m.cap_now_.hi = INT64_MAX;
    }

    // A wall time was written for monotonic `at_ns` (not 0, the wall clock
    // known): narrows the offsets the text holds for to those that put
    // wall_now_ns - now_ns + at_ns in the same millisecond.
    static void note_time(text_memo& m, std::int64_t at_ns, const render_context& c) noexcept {
        text_memo::capture& k = m.cap_now_;
        if (!k.on) {
            return;
        }
        const std::int64_t off = c.wall_now_ns - c.now_ns;
        const std::int64_t wall = c.wall_now_ns - (c.now_ns - at_ns);
        const std::int64_t into = wall - floor_div(wall, 1'000'000) * 1'000'000; // [0, 1 ms)
        const std::int64_t lo = off - into;
        const std::int64_t hi = off + (1'000'000 - into);
        k.lo = lo > k.lo ? lo : k.lo;
        k.hi = hi < k.hi ? hi : k.hi;
    }

    // A value of the moment was written at [start, end) of `o`.
    static void note_hole(text_memo& m, std::size_t start, std::size_t end, moment kind,
                          std::int64_t at_ns) noexcept {
        text_memo::capture& k = m.cap_now_;
        if (!k.on) {
            return;
        }
        if (k.holes == text_memo::max_holes) {
            k.bad = true;
            return;
        }
        k.start[k.holes] = start;
        k.end[k.holes] = end;
        k.at[k.holes] = at_ns;
        k.kind[k.holes] = kind;
        ++k.holes;
    }

    // Drops what the pool holds.
    static void reset(text_memo& m) noexcept {
        ++m.counters_.resets;
        m.used_ = 0;
        m.live_ = 0;
        if (++m.epoch_ == 0) {
            // Wrapped: no entry may keep an epoch that could come back.
            for (std::uint32_t i = 0; i < m.services_ + m.probes_; ++i) {
                m.entries_[i].epoch = 0;
            }
            m.epoch_ = 1;
        }
    }

    // The render begun at `start` of `o` ended: keeps it as record
    // `slot`'s, read at sequence `seq`, when it is whole and fits.
    static void end(text_memo& m, std::uint32_t slot, std::uint32_t seq, const text_out& o,
                    std::size_t start, const render_context& c) noexcept {
        text_memo::capture& k = m.cap_now_;
        k.on = false;
        ++m.counters_.misses;
        text_memo::entry& e = m.entries_[slot];
        if (e.epoch == m.epoch_) {
            m.live_ -= e.len;
            e.epoch = 0;
        }
        if (o.overflowed() || k.bad || (seq & 1) != 0) {
            return;
        }
        std::size_t holes = 0;
        for (std::uint8_t h = 0; h < k.holes; ++h) {
            holes += k.end[h] - k.start[h];
        }
        const std::size_t n = o.size() - start - holes;
        if (n > UINT16_MAX) {
            ++m.counters_.uncached;
            return;
        }
        if (m.used_ + n > m.cap_ && m.live_ * 2 <= m.cap_) {
            reset(m);
        }
        if (m.used_ + n > m.cap_) {
            ++m.counters_.uncached;
            return;
        }
        // The text less the holes' values, and where each was.
        const char* src = o.view().data() + start;
        char* dst = m.pool_ + m.used_;
        std::size_t from = 0; // in the rendered item
        std::size_t to = 0;   // in the kept text
        for (std::uint8_t h = 0; h < k.holes; ++h) {
            const std::size_t cut = k.start[h] - start;
            std::memcpy(dst + to, src + from, cut - from);
            to += cut - from;
            e.hole_pos[h] = static_cast<std::uint16_t>(to);
            e.hole_at[h] = k.at[h];
            e.hole_kind[h] = k.kind[h];
            from = k.end[h] - start;
        }
        std::memcpy(dst + to, src + from, o.size() - start - from);
        e.holes = k.holes;
        e.lo = k.lo;
        e.hi = k.hi;
        e.seq = seq;
        e.wall_known = c.wall_now_ns != 0;
        e.at = static_cast<std::uint32_t>(m.used_);
        e.len = static_cast<std::uint16_t>(n);
        e.epoch = m.epoch_;
        m.used_ += n;
        m.live_ += n;
    }
};

std::size_t text_memo::footprint(std::uint32_t services, std::uint32_t probes) noexcept {
    const std::size_t n = std::size_t{services} + probes;
    if (n == 0) {
        return 0;
    }
    return sizeof(entry) * n + alignof(entry) - 1 + services * service_text + probes * probe_text;
}

Result<void> text_memo::init(arena& mem, std::uint32_t services, std::uint32_t probes) noexcept {
    const std::size_t n = std::size_t{services} + probes;
    if (n == 0) {
        return {};
    }
    // The entries zeroed (epoch 0: empty); the pool not, so its pages stay
    // out of the resident set until texts are kept there.
    auto* entries = mem.make_array<entry>(n);
    auto* pool =
        static_cast<char*>(mem.take_unzeroed(services * service_text + probes * probe_text, 1));
    if (entries == nullptr || pool == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "status text memo");
    }
    entries_ = entries;
    pool_ = pool;
    services_ = services;
    probes_ = probes;
    cap_ = services * service_text + probes * probe_text;
    return {};
}

namespace {

// --- JSON objects ------------------------------------------------------------

// A JSON object, written a member at a time. A key and a scalar value are
// written straight into the buffer when it has room for the longest, else
// assembled on the stack and go out in one put() (the keys are this file's
// literals, all short).
class jobj {
public:
    explicit jobj(text_out& o) noexcept : o_(o) { o_.put('{'); }
    // `,"k":`, for a value the caller writes.
    text_out& key(sv k) noexcept {
        head(k);
        return flush();
    }
    jobj& str(sv k, sv v) noexcept {
        put_str(key(k), v);
        return *this;
    }
    jobj& num(sv k, std::uint64_t v) noexcept {
        head(k);
        n_ += u64_into(b_ + n_, v);
        flush();
        return *this;
    }
    jobj& inum(sv k, std::int64_t v) noexcept {
        head(k);
        if (v < 0) {
            b_[n_++] = '-';
        }
        n_ += u64_into(b_ + n_, magnitude(v));
        flush();
        return *this;
    }
    jobj& flag(sv k, bool v) noexcept {
        head(k);
        text(v ? "true" : "false");
        flush();
        return *this;
    }
    jobj& null(sv k) noexcept {
        head(k);
        text("null");
        flush();
        return *this;
    }
    // A wall time (control.hpp's "since", "at"...): put_time()'s.
    jobj& time(sv k, std::int64_t at_ns, const render_context& c) noexcept {
        head(k);
        if (at_ns == 0 || c.wall_now_ns == 0) {
            text("null");
        } else {
            if (c.memo != nullptr) {
                memo_ops::note_time(*c.memo, at_ns, c);
            }
            b_[n_++] = '"';
            wall_into(b_ + n_, c.wall_now_ns - (c.now_ns - at_ns));
            n_ += wall_size;
            b_[n_++] = '"';
        }
        flush();
        return *this;
    }
    // Seconds with three decimals (truncated, as text_out::put_seconds),
    // or null when `known` is false.
    jobj& secs(sv k, std::int64_t ns, bool known = true) noexcept {
        if (!known) {
            return null(k);
        }
        head(k);
        n_ += secs_into(b_ + n_, ns);
        flush();
        return *this;
    }
    // secs() of a value of the moment (now - at_ns, or at_ns - now never
    // negative), null when `known` is false; a memo being filled learns
    // where the value is, to write it afresh when it replays the text.
    jobj& moment(sv k, text_memo::moment kind, std::int64_t at_ns, bool known,
                 const render_context& c) noexcept {
        if (!known) {
            return null(k);
        }
        text_out& o = key(k);
        char b[32];
        const std::size_t start = o.size();
        o.put(sv(b, secs_into(b, memo_ops::value_of(kind, at_ns, c))));
        if (c.memo != nullptr) {
            memo_ops::note_hole(*c.memo, start, o.size(), kind, at_ns);
        }
        return *this;
    }
    jobj& reason(sv k, Reason r) noexcept {
        return r == Reason::unknown ? null(k) : str(k, reason_id(r));
    }
    void close() noexcept { o_.put('}'); }

private:
    static constexpr std::size_t key_max = 40; // longer keys are cut (none is)
    void head(sv k) noexcept {
        b_ = o_.claim(sizeof(local_));
        if (b_ == nullptr) {
            b_ = local_; // near the buffer's end: put() decides what fits
        }
        n_ = 0;
        if (!first_) {
            b_[n_++] = ',';
        }
        first_ = false;
        b_[n_++] = '"';
        for (std::size_t i = 0; i < k.size() && i < key_max; ++i) {
            b_[n_++] = k[i];
        }
        b_[n_++] = '"';
        b_[n_++] = ':';
    }
    void text(sv t) noexcept {
        for (char ch : t) {
            b_[n_++] = ch;
        }
    }
    text_out& flush() noexcept {
        if (b_ == local_) {
            return o_.put(sv(b_, n_));
        }
        o_.commit(n_);
        return o_;
    }

    text_out& o_;
    bool first_ = true;
    std::size_t n_ = 0;
    char* b_ = nullptr; // where head() writes: the buffer's end, or local_
    // key + a number or a quoted time: 4 + key_max + 32
    char local_[key_max + 40];
};

// {"reason", "errno", "message", "resolution", <at_key>} or null when
// nothing went wrong (reason unknown).
void put_error(text_out& o, const render_context& c, Reason r, int err, sv message, sv resolution,
               sv at_key, std::int64_t at_ns) noexcept {
    if (r == Reason::unknown) {
        o.put("null");
        return;
    }
    jobj j(o);
    j.str("reason", reason_id(r)).inum("errno", err).str("message", message);
    j.str("resolution", resolution.empty() ? Error(r, 0).resolution() : resolution);
    j.time(at_key, at_ns, c).close();
}

void put_monitor_error(text_out& o, const render_context& c, const MonitorError& e) noexcept {
    put_error(o, c, e.reason, e.sys_errno, e.message, {}, "at", e.at_ns);
}

void exit_fields(jobj& j, const ExitInfo& e) noexcept {
    j.inum("pid", e.pid).inum("code", e.code).inum("signal", e.signal);
    text_out& o = j.key("signal_name");
    if (e.signal == 0) {
        o.put("null");
    } else {
        auto m = o.mark();
        o.put('"');
        if (!put_signal_name(o, e.signal)) {
            o.rewind(m);
            o.put("null");
        } else {
            o.put('"');
        }
    }
    j.flag("core_dumped", e.core_dumped);
}

void put_service(text_out& o, const render_context& c, const ServiceStatus& s) noexcept {
    jobj j(o);
    j.str("name", s.name).flag("wanted", s.wanted).str("state", state_name(s.state));
    j.flag("ready", s.state == ServiceState::ready);
    if (s.pid != 0) {
        j.inum("pid", s.pid);
    } else {
        j.null("pid");
    }
    j.time("since", s.since_ns, c);
    j.moment("uptime_s", text_memo::moment::since, s.started_ns, running(s), c);
    j.reason("reason", s.reason);
    {
        jobj r(j.key("restarts"));
        r.num("total", restarts_all(s)).num("since_stable", s.restarts);
        for (std::size_t k = 0; k < restart_cause_count; ++k) {
            r.num(restart_cause_name(static_cast<RestartCause>(k)), s.restarts_by_cause[k]);
        }
        r.close();
    }
    if (s.last_exit.pid != 0) {
        jobj e(j.key("last_exit"));
        exit_fields(e, s.last_exit);
        e.close();
    } else {
        j.null("last_exit");
    }
    const bool in_backoff = s.state == ServiceState::backoff && s.restart_at_ns != 0;
    j.moment("backoff_remaining_s", text_memo::moment::until, s.restart_at_ns, in_backoff, c);
    const ServiceError& e = s.last_error;
    put_error(j.key("last_error"), c, e.reason, e.sys_errno, e.message, {}, "since", e.since_ns);
    j.str("status_text", s.status_text).num("deaths_total", s.death_count);
    text_out& d = j.key("deaths");
    d.put('[');
    const std::uint64_t n =
        s.death_count < death_history_capacity ? s.death_count : death_history_capacity;
    for (std::uint64_t k = 0; k < n; ++k) {
        if (k != 0) {
            d.put(',');
        }
        jobj x(d);
        x.time("at", s.deaths[k].at_ns, c).reason("reason", s.deaths[k].reason);
        exit_fields(x, s.deaths[k].exit);
        x.close();
    }
    d.put(']');
    j.close();
}

void put_probe(text_out& o, const render_context& c, const ProbeStatus& p) noexcept {
    jobj j(o);
    j.str("name", p.name)
        .str("kind", probe_kind_name(p.kind))
        .str("state", probe_state_name(p.state));
    j.str("phase", probe_phase_name(p.phase)).flag("checking", p.checking);
    j.time("last_check", p.last_check_ns, c).time("last_success", p.last_success_ns, c);
    j.time("last_failure", p.last_failure_ns, c);
    j.secs("last_duration_s", probe_duration(p), p.last_check_ns != 0);
    j.moment("next_check_in_s", text_memo::moment::until, p.next_check_ns,
             p.next_check_ns != 0 && !p.checking, c);
    j.num("consecutive_successes", p.consecutive_successes);
    j.num("consecutive_failures", p.consecutive_failures);
    j.num("checks", p.checks).num("failures", p.failures);
    const ProbeError& e = p.last_error;
    put_error(j.key("last_error"), c, e.reason, e.sys_errno, e.message, e.resolution, "since",
              e.since_ns);
    j.close();
}

void put_monitor(text_out& o, const render_context& c, const MonitorStatus& m) noexcept {
    jobj j(o);
    j.str("name", m.name).str("state", monitor_state_name(m.state)).flag("critical", m.critical);
    j.reason("reason", m.reason).time("since", m.since_ns, c);
    j.secs("uptime_s", c.now_ns - m.started_ns, m.started_ns != 0);
    j.num("crashes", m.crashes).num("runs", m.runs).num("beats", m.beats);
    put_monitor_error(j.key("last_crash"), c, m.last_crash);
    put_monitor_error(j.key("degraded"), c, m.degraded);
    j.num("ticks", m.ticks).num("tick_failures", m.tick_failures);
    j.close();
}

void put_watchdog(text_out& o, const WatchdogStatus& w) noexcept {
    jobj j(o);
    j.str("device", device_name(w.device)).str("state", watchdog_state_name(w.state));
    j.str("board", w.board).str("path", w.path).str("identity", w.identity);
    j.num("options", w.options).num("requested_s", w.requested_s).num("timeout_s", w.timeout_s);
    j.num("pretimeout_s", w.pretimeout_s).flag("clamped", w.clamped).str("notice", w.notice);
    j.inum("interval_ns", w.interval_ns).flag("gate_open", w.gate_open);
    j.flag("magic_close", w.magic_close).flag("nowayout", w.nowayout);
    j.flag("safe_mode", w.safe_mode).num("feeds", w.feeds).num("feed_errors", w.feed_errors);
    j.inum("first_feed_ns", w.first_feed_ns).inum("last_feed_ns", w.last_feed_ns);
    j.inum("starving_since_ns", w.starving_since_ns).inum("hold_until_ns", w.hold_until_ns);
    j.str("hold_by", w.hold_by);
    {
        const PreviousBoot& p = w.previous;
        jobj b(j.key("previous"));
        b.str("cls", reset_class_name(p.cls)).reason("reason", p.reason);
        b.str("subject", p.subject).str("message", p.message).inum("wall_ns", p.wall_ns);
        b.str("boot_id", p.boot_id).num("boot_status", p.boot_status).close();
    }
    {
        const WatchdogCounters& n = w.counters;
        jobj k(j.key("counters"));
        k.num("boots", n.boots).num("orderly", n.orderly).num("starved", n.starved);
        k.num("watchdog", n.watchdog).num("unreported", n.unreported);
        k.num("restarted", n.restarted).close();
    }
    j.num("record_writes", w.record_writes).num("record_failures", w.record_failures);
    j.close();
}

// --- counters: one table each, for the JSON and the metrics ----------------

template <class T>
struct counter {
    sv name; // the C++ member's, the JSON key's, the metric's middle
    sv help;
    std::uint64_t T::*field;
};

constexpr counter<RuntimeStats> runtime_counters[] = {
    {"spawns", "Processes started.", &RuntimeStats::spawns},
    {"spawn_failures", "Process starts that failed.", &RuntimeStats::spawn_failures},
    {"exits", "Process exits seen.", &RuntimeStats::exits},
    {"orphans_reaped", "Reparented grandchildren reaped.", &RuntimeStats::orphans_reaped},
    {"notify_received", "Notify messages received.", &RuntimeStats::notify_received},
    {"notify_dropped", "Notify messages dropped (malformed, oversized, foreign).",
     &RuntimeStats::notify_dropped},
    {"notify_foreign", "Notify messages from a sender not allowed to speak for the service.",
     &RuntimeStats::notify_foreign},
    {"fds_closed", "Descriptors received over notify and closed.", &RuntimeStats::fds_closed},
    {"fds_closed_inline", "Of those, closed on the loop because the closer was full.",
     &RuntimeStats::fds_closed_inline},
    {"notify_restored", "Notify socket names put back after a deletion.",
     &RuntimeStats::notify_restored},
    {"leftovers_killed", "Processes left by a previous custos killed at start.",
     &RuntimeStats::leftovers_killed},
    {"remnants_killed", "Processes left by a service's main process killed at its exit.",
     &RuntimeStats::remnants_killed},
    {"main_pid_followed", "MAINPID= changes followed.", &RuntimeStats::main_pid_followed},
    {"main_pid_refused", "MAINPID= changes refused.", &RuntimeStats::main_pid_refused},
    {"probe_checks", "Probe checks run.", &RuntimeStats::probe_checks},
    {"probe_failures", "Probe checks failed.", &RuntimeStats::probe_failures},
    {"liveness_restarts", "Services restarted by their liveness probe.",
     &RuntimeStats::liveness_restarts},
    {"signals_ignored", "Signals received and ignored.", &RuntimeStats::signals_ignored},
};

constexpr counter<io::reactor_stats> reactor_counters[] = {
    {"ops_submitted", "Operations submitted.", &io::reactor_stats::ops_submitted},
    {"ops_completed", "Operations completed.", &io::reactor_stats::ops_completed},
    {"ops_rejected", "Operations refused for capacity.", &io::reactor_stats::ops_rejected},
    {"wait_calls", "Waits (io_uring_enter or epoll_wait calls).", &io::reactor_stats::wait_calls},
    {"wakeups", "Blocking waits that returned.", &io::reactor_stats::wakeups},
    {"timers_fired", "Timers fired.", &io::reactor_stats::timers_fired},
    {"timerfd_arms", "timerfd_settime calls.", &io::reactor_stats::timerfd_arms},
    {"syscalls", "System calls made by the reactor.", &io::reactor_stats::syscalls},
};

constexpr counter<control_counters> control_fields[] = {
    {"connections", "Connections accepted.", &control_counters::connections},
    {"refused_full", "", &control_counters::refused_full},
    {"requests", "", &control_counters::requests},
    {"bad_requests", "Requests refused as malformed, too big or too slow.",
     &control_counters::bad_requests},
    {"actions", "Actions (POST, DELETE) allowed.", &control_counters::actions},
    {"actions_denied", "Actions refused to a peer that is not an operator.",
     &control_counters::actions_denied},
    {"timeouts", "Clients closed on a head, idle or send timeout.", &control_counters::timeouts},
};

template <class T, std::size_t N>
void counter_fields(jobj& j, const counter<T> (&table)[N], const T& v) noexcept {
    for (const counter<T>& k : table) {
        j.num(k.name, v.*k.field);
    }
}

void put_counters(text_out& o, const render_context& c) noexcept {
    jobj j(o);
    counter_fields(j, runtime_counters, c.snap->stats());
    if (c.reactor != nullptr) {
        jobj r(j.key("reactor"));
        counter_fields(r, reactor_counters, *c.reactor);
        r.close();
    } else {
        j.null("reactor");
    }
    if (c.control != nullptr) {
        jobj k(j.key("control"));
        counter_fields(k, control_fields, *c.control);
        jobj codes(k.key("by_code"));
        for (std::size_t i = 0; i < std::size(c.control->by_code); ++i) {
            codes.num(code_label(i), c.control->by_code[i]);
        }
        codes.close();
        k.num("clients", c.control->clients).num("max_clients", c.control->max_clients).close();
    } else {
        j.null("control");
    }
    j.close();
}

// --- health ------------------------------------------------------------------

// The health object's fields up to its open reasons array.
void put_health_head(jobj& j, const render_context& c, const HealthStatus& h) noexcept {
    j.str("health", health_name(h.health)).time("since", h.since_ns, c);
    j.flag("settled", h.settled).flag("critical_ready", h.critical_ready);
    j.str("summary", h.summary).num("services", h.services);
    j.num("services_ready", h.services_ready).num("probes", h.probes);
    j.num("probes_ready", h.probes_ready).num("monitors", h.monitors);
    j.num("monitors_running", h.monitors_running);
    j.key("reasons").put('[');
}

void put_health_reason(text_out& o, const render_context& c, const HealthReason& r) noexcept {
    jobj j(o);
    j.str("kind", subject_kind_name(r.kind)).str("name", r.name).flag("critical", r.critical);
    j.flag("fails", r.fails).str("state", r.state).reason("reason", r.reason);
    j.inum("errno", r.sys_errno).str("message", r.message);
    j.str("resolution",
          r.resolution.empty() ? Error(r.reason, 0).resolution() : r.resolution.view());
    j.time("since", r.since_ns, c).close();
}

// One line of /health: a service, a probe or a monitor, as wanted or not.
// The verdicts are the health model's (status/health.cpp): a service is
// as wanted when ready or stopped, a probe when ready, a monitor when
// running or stopped; the reason is the one its health reason would carry.
struct check {
    SubjectKind kind = SubjectKind::service;
    FixedText<name_capacity> name;
    sv state;
    bool ok = false;
    Reason reason = Reason::unknown;
};

std::uint32_t check_count(const snapshot& s) noexcept {
    return s.service_count() + s.probe_count() + s.monitor_count();
}

check check_at(const snapshot& snap, std::uint32_t i) noexcept {
    check k;
    if (i < snap.service_count()) {
        const ServiceStatus& s = service_part(snap, i, snapshot::service_part::head);
        k.name = s.name;
        k.state = state_name(s.state);
        k.ok = s.state == ServiceState::ready || s.state == ServiceState::stopped;
        k.reason = s.reason;
        return k;
    }
    i -= snap.service_count();
    if (i < snap.probe_count()) {
        const ProbeStatus& p = probe_part(snap, i, snapshot::probe_part::head);
        k.kind = SubjectKind::probe;
        k.name = p.name;
        k.state = probe_state_name(p.state);
        k.ok = p.state == ProbeState::ready;
        // Unknown without a failure: its first checks are still running.
        k.reason =
            p.last_error.reason != Reason::unknown ? p.last_error.reason : Reason::health_starting;
        return k;
    }
    const MonitorStatus m = snap.monitor(i - snap.probe_count());
    k.kind = SubjectKind::monitor;
    k.name = m.name;
    k.state = monitor_state_name(m.state);
    k.ok = m.state == MonitorState::running || m.state == MonitorState::stopped;
    k.reason = m.reason;
    if (m.state == MonitorState::backoff && m.last_crash.reason != Reason::unknown) {
        k.reason = m.last_crash.reason;
    } else if (m.state == MonitorState::degraded) {
        k.reason =
            m.degraded.reason != Reason::unknown ? m.degraded.reason : Reason::monitor_degraded;
    } else if (m.state == MonitorState::wedged && k.reason == Reason::unknown) {
        k.reason = Reason::monitor_wedged;
    }
    return k;
}

// --- Prometheus ----------------------------------------------------------------

// One family: its HELP and TYPE once, then its samples. A family over
// services (probes, monitors) is one item per subject after its header, so
// every sample of the family stays together whatever the buffer.
enum class per : std::uint8_t { once, service, probe, monitor };

struct family {
    sv name;
    sv type;
    sv help;
    per over;
    void (*sample)(text_out& o, const render_context& c, const family& f, std::uint32_t i);
};

void put_family_head(text_out& o, sv name, sv type, sv help) noexcept {
    o.put("# HELP ").put(name).put(' ').put(help).put("\n# TYPE ").put(name).put(' ').put(type);
    o.put('\n');
}

// name{k1="v1"[,k2="v2"]} (the labels' values escaped), without the value.
void put_series(text_out& o, sv name, sv k1, sv v1, sv k2 = {}, sv v2 = {}) noexcept {
    o.put(name).put('{').put(k1).put("=\"").put_label_value(v1).put('"');
    if (!k2.empty()) {
        o.put(',').put(k2).put("=\"").put_label_value(v2).put('"');
    }
    o.put("} ");
}

void put_u(text_out& o, std::uint64_t v) noexcept {
    o.put_u64(v).put('\n');
}

// One sample per value of an enum, 1 for the current one.
template <class E>
void put_one_hot(text_out& o, sv name, sv subject_key, sv subject, sv key, std::size_t count,
                 sv (*name_of)(E), E current) noexcept {
    for (std::size_t k = 0; k < count; ++k) {
        const auto e = static_cast<E>(k);
        if (subject_key.empty()) {
            put_series(o, name, key, name_of(e));
        } else {
            put_series(o, name, subject_key, subject, key, name_of(e));
        }
        put_u(o, e == current ? 1 : 0);
    }
}

void put_wall_seconds(text_out& o, std::int64_t wall_ns) noexcept {
    o.put_seconds(wall_ns, 3).put('\n');
}

service_figures figures_of(const ServiceStatus& s) noexcept {
    service_figures f;
    f.name = s.name;
    f.state = s.state;
    f.started_ns = s.started_ns;
    for (std::size_t k = 0; k < restart_cause_count; ++k) {
        f.restarts_by_cause[k] = s.restarts_by_cause[k];
    }
    f.deaths = s.death_count;
    return f;
}

probe_figures figures_of(const ProbeStatus& p) noexcept {
    probe_figures f;
    f.name = p.name;
    f.state = p.state;
    f.duration_ns = probe_duration(p);
    f.checks = p.checks;
    f.failures = p.failures;
    return f;
}

// Service `i`'s figures: from the scratch when begin() filled it, else
// from the snapshot.
service_figures service_figs(const render_context& c, std::uint32_t i) noexcept {
    if (c.scratch != nullptr && i < c.scratch->services_filled) {
        return c.scratch->services[i];
    }
    return figures_of(service_part(*c.snap, i, snapshot::service_part::no_deaths));
}

probe_figures probe_figs(const render_context& c, std::uint32_t i) noexcept {
    if (c.scratch != nullptr && i < c.scratch->probes_filled) {
        return c.scratch->probes[i];
    }
    return figures_of(probe_part(*c.snap, i, snapshot::probe_part::figures));
}

constexpr family families[] = {
    {"custos_build_info", "gauge", "custos's version and I/O backend (always 1).", per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         put_series(o, f.name, "version", c.version, "backend", c.backend);
         put_u(o, 1);
     }},
    {"custos_health", "gauge", "The appliance's health: 1 for the current one.", per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         put_one_hot(o, f.name, {}, {}, "health", health_count, health_name,
                     health_of(*c.snap).health);
     }},
    {"custos_service_state", "gauge", "The service's state: 1 for the current one.", per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_one_hot(o, f.name, "service", s.name, "state", service_state_count, state_name,
                     s.state);
     }},
    {"custos_service_up", "gauge", "1 when the service's process runs (running or ready).",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.state == ServiceState::running || s.state == ServiceState::ready ? 1 : 0);
     }},
    {"custos_service_ready", "gauge", "1 when the service is ready.", per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.state == ServiceState::ready ? 1 : 0);
     }},
    {"custos_service_start_time_seconds", "gauge",
     "Start of the service's running process, seconds since the epoch (0 when none runs).",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_wall_seconds(o, s.started_ns != 0 ? wall_of(c, s.started_ns) : 0);
     }},
    {"custos_service_restarts_total", "counter", "Restarts of the service since init, by cause.",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         for (std::size_t k = 0; k < restart_cause_count; ++k) {
             put_series(o, f.name, "service", s.name, "cause",
                        restart_cause_name(static_cast<RestartCause>(k)));
             put_u(o, s.restarts_by_cause[k]);
         }
     }},
    {"custos_service_deaths_total", "counter", "Deaths of the service's processes since init.",
     per::service,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const service_figures s = service_figs(c, i);
         put_series(o, f.name, "service", s.name);
         put_u(o, s.deaths);
     }},
    {"custos_probe_up", "gauge", "1 when the probe is ready.", per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         put_u(o, p.state == ProbeState::ready ? 1 : 0);
     }},
    {"custos_probe_duration_seconds", "gauge", "Duration of the probe's last finished check.",
     per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         o.put_seconds(p.duration_ns, 6).put('\n');
     }},
    {"custos_probe_checks_total", "counter", "Checks the probe ran.", per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         put_u(o, p.checks);
     }},
    {"custos_probe_failures_total", "counter", "Checks of the probe that failed.", per::probe,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const probe_figures p = probe_figs(c, i);
         put_series(o, f.name, "probe", p.name);
         put_u(o, p.failures);
     }},
    {"custos_monitor_state", "gauge", "The monitor's state: 1 for the current one.", per::monitor,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t i) {
         const MonitorStatus m = c.snap->monitor(i);
         put_one_hot(o, f.name, "monitor", m.name, "state", monitor_state_count, monitor_state_name,
                     m.state);
     }},
    {"custos_watchdog_feeds_total", "counter", "Hardware watchdog feeds.", per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         o.put(f.name).put(' ');
         put_u(o, c.snap->watchdog().feeds);
     }},
    {"custos_watchdog_state", "gauge", "The hardware watchdog's state: 1 for the current one.",
     per::once,
     [](text_out& o, const render_context& c, const family& f, std::uint32_t) {
         put_one_hot(o, f.name, {}, {}, "state", watchdog_state_count, watchdog_state_name,
                     c.snap->watchdog().state);
     }},
};

// A table of counters as families prefix + name + "_total".
template <class T, std::size_t N>
void put_counter_families(text_out& o, sv prefix, const counter<T> (&table)[N],
                          const T& v) noexcept {
    for (const counter<T>& k : table) {
        if (k.help.empty()) {
            continue; // rendered by its owner with labels or another name
        }
        o.put("# HELP ").put(prefix).put(k.name).put("_total ").put(k.help);
        o.put("\n# TYPE ").put(prefix).put(k.name).put("_total counter\n");
        o.put(prefix).put(k.name).put("_total ");
        put_u(o, v.*k.field);
    }
}

void put_control_metrics(text_out& o, const control_counters& k) noexcept {
    constexpr sv req = "custos_control_requests_total";
    put_family_head(o, req, "counter", "Requests answered, by status code.");
    for (std::size_t i = 0; i < std::size(k.by_code); ++i) {
        put_series(o, req, "code", code_label(i));
        put_u(o, k.by_code[i]);
    }
    constexpr sv refused = "custos_control_refused_total";
    put_family_head(o, refused, "counter", "Connections refused (503): every slot in use.");
    o.put(refused).put(' ');
    put_u(o, k.refused_full);
    put_counter_families(o, "custos_control_", control_fields, k);
    put_family_head(o, "custos_control_clients", "gauge", "Clients connected now.");
    o.put("custos_control_clients ");
    put_u(o, k.clients);
    put_family_head(o, "custos_control_max_clients", "gauge", "Clients served at once, at most.");
    o.put("custos_control_max_clients ");
    put_u(o, k.max_clients);
}

void put_process_metrics(text_out& o, const process_info& p) noexcept {
    auto gauge = [&](sv name, sv type, sv help) {
        put_family_head(o, name, type, help);
        o.put(name).put(' ');
    };
    gauge("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.");
    const double cpu_ns = p.cpu_seconds * 1e9;
    o.put_seconds(cpu_ns > 0 ? static_cast<std::int64_t>(cpu_ns) : 0, 3).put('\n');
    gauge("process_open_fds", "gauge", "Number of open file descriptors.");
    put_u(o, p.open_fds);
    gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    put_u(o, p.max_fds);
    gauge("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    put_u(o, p.virtual_bytes);
    gauge("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    put_u(o, p.resident_bytes);
    gauge("process_start_time_seconds", "gauge",
          "Start time of the process since unix epoch in seconds.");
    put_wall_seconds(o, p.start_time_wall_ns);
    gauge("process_threads", "gauge", "Number of OS threads in the process.");
    put_u(o, p.threads);
}

// --- the documents' steps ------------------------------------------------------

// How many items a step has.
enum class items : std::uint8_t {
    one,
    services,
    probes,
    monitors,
    reasons, // of the health, counted when the step begins
    checks,  // services, probes and monitors
    family,  // a metrics family: its header, then one per subject
    reactor, // one when the context has them, else none
    control,
    process,
};

struct step;

// What an item's function gets.
struct item {
    text_out& o;
    const render_context& c;
    const step& s;
    std::uint32_t index; // the document's record (one-object documents)
    std::uint32_t i;     // the item within its step
    bool first;          // no array element written yet in this step
};

// Renders one item; true when it wrote an array element (the next one then
// needs its comma).
using item_fn = bool (*)(const item& it);

struct step {
    items n;
    item_fn render;
    sv text = {};                // lit()'s text, reasons_tail()'s continuation
    const family* fam = nullptr; // items::family
};

std::uint32_t count(const render_context& c, const step& s) noexcept {
    const snapshot& snap = *c.snap;
    switch (s.n) {
    case items::one:
        return 1;
    case items::services:
        return snap.service_count();
    case items::probes:
        return snap.probe_count();
    case items::monitors:
        return snap.monitor_count();
    case items::reasons:
        return health_of(snap).reason_count;
    case items::checks:
        return check_count(snap);
    case items::family:
        return s.fam->over == per::once      ? 1
               : s.fam->over == per::service ? 1 + snap.service_count()
               : s.fam->over == per::probe   ? 1 + snap.probe_count()
                                             : 1 + snap.monitor_count();
    case items::reactor:
        return c.reactor != nullptr ? 1 : 0;
    case items::control:
        return c.control != nullptr ? 1 : 0;
    case items::process:
        return c.process != nullptr ? 1 : 0;
    }
    return 0;
}

bool lit(const item& it) noexcept {
    it.o.put(it.s.text);
    return false;
}

// Service `i` of /status: from the memo when it holds the text of the
// record as it is, else rendered from the snapshot (and kept).
void service_element(text_out& o, const render_context& c, std::uint32_t i) noexcept {
    const snapshot& snap = *c.snap;
    text_memo* m = c.memo;
    if (m == nullptr || i >= memo_ops::services(*m) || i >= snap.service_count()) {
        put_service(o, c, service_part(snap, i, snapshot::service_part::shown));
        return;
    }
    if (memo_ops::replay(*m, i, snap.service_sequence(i), o, c)) {
        return;
    }
    const std::size_t start = o.size();
    memo_ops::begin(*m);
    std::uint32_t seq = 1;
    put_service(o, c, service_part(snap, i, snapshot::service_part::shown, &seq));
    memo_ops::end(*m, i, seq, o, start, c);
}

void probe_element(text_out& o, const render_context& c, std::uint32_t p) noexcept {
    const snapshot& snap = *c.snap;
    text_memo* m = c.memo;
    if (m == nullptr || p >= memo_ops::probes(*m) || p >= snap.probe_count()) {
        put_probe(o, c, probe_part(snap, p, snapshot::probe_part::all));
        return;
    }
    const std::uint32_t slot = memo_ops::services(*m) + p;
    if (memo_ops::replay(*m, slot, snap.probe_sequence(p), o, c)) {
        return;
    }
    const std::size_t start = o.size();
    memo_ops::begin(*m);
    std::uint32_t seq = 1;
    put_probe(o, c, probe_part(snap, p, snapshot::probe_part::all, &seq));
    memo_ops::end(*m, slot, seq, o, start, c);
}

// An element of one of the arrays: a service, probe, monitor, health
// reason or /health?json check.
bool element(const item& it) noexcept {
    const snapshot& snap = *it.c.snap;
    if (it.s.n == items::reasons) {
        HealthStatus h;
        if (!snap.health_reason(it.i, h)) {
            return false; // gone since the count (a newer health): left out
        }
        it.o.put(it.first ? "" : ",");
        put_health_reason(it.o, it.c, h.reasons[it.i]);
        return true;
    }
    it.o.put(it.first ? "" : ",");
    if (it.s.n == items::services) {
        service_element(it.o, it.c, it.i);
    } else if (it.s.n == items::probes) {
        probe_element(it.o, it.c, it.i);
    } else if (it.s.n == items::monitors) {
        put_monitor(it.o, it.c, snap.monitor(it.i));
    } else {
        const check k = check_at(snap, it.i);
        jobj j(it.o);
        j.str("kind", subject_kind_name(k.kind)).str("name", k.name).str("state", k.state);
        j.flag("ok", k.ok).reason("reason", k.ok ? Reason::unknown : k.reason).close();
    }
    return true;
}

bool reasons_tail(const item& it) noexcept {
    it.o.put("],\"reasons_total\":").put_u64(health_of(*it.c.snap).reason_total).put(it.s.text);
    return false;
}

bool status_head(const item& it) noexcept {
    const render_context& c = it.c;
    it.o.put("{\"runtime\":");
    jobj r(it.o);
    r.str("version", c.version).str("backend", c.backend);
    r.str("backend_reason", c.backend_reason).inum("pid", c.pid);
    r.secs("uptime_s", c.now_ns - c.started_ns, c.started_ns != 0);
    if (c.boot_id.empty()) {
        r.null("boot_id");
    } else {
        r.str("boot_id", c.boot_id);
    }
    const PreviousBoot prev = c.snap->watchdog().previous;
    if (prev.cls == ResetClass::unknown) {
        r.null("previous_boot");
    } else {
        jobj p(r.key("previous_boot"));
        p.str("reset", reset_class_name(prev.cls)).reason("reason", prev.reason).close();
    }
    r.inum("now_ns", c.now_ns).time("now", c.now_ns, c).close();
    it.o.put(",\"health\":");
    jobj h(it.o);
    put_health_head(h, c, health_of(*c.snap));
    return false;
}

bool health_head(const item& it) noexcept {
    jobj h(it.o);
    put_health_head(h, it.c, health_of(*it.c.snap));
    return false;
}

bool status_watchdog(const item& it) noexcept {
    it.o.put("],\"watchdog\":");
    put_watchdog(it.o, it.c.snap->watchdog());
    return false;
}

bool status_counters(const item& it) noexcept {
    it.o.put(",\"counters\":");
    put_counters(it.o, it.c);
    it.o.put("}\n");
    return false;
}

bool check_line(const item& it) noexcept {
    const check k = check_at(*it.c.snap, it.i);
    it.o.put(k.ok ? "[+] " : "[-] ");
    if (k.kind != SubjectKind::service) {
        it.o.put(subject_kind_name(k.kind)).put(' ');
    }
    it.o.put(k.name).put(' ').put(k.state);
    if (!k.ok) {
        it.o.put(": ").put(reason_id(k.reason));
    }
    it.o.put('\n');
    return false;
}

bool health_line(const item& it) noexcept {
    it.o.put("health: ").put(health_name(health_of(*it.c.snap).health)).put('\n');
    return false;
}

bool tsv_line(const item& it) noexcept {
    const ServiceStatus& s = service_part(*it.c.snap, it.i, snapshot::service_part::no_deaths);
    text_out& o = it.o;
    o.put(s.name).put('\t').put(state_name(s.state)).put('\t').put_i64(s.pid).put('\t');
    if (running(s)) {
        o.put_seconds(it.c.now_ns - s.started_ns, 3);
    } else {
        o.put('-');
    }
    o.put('\t').put_u64(restarts_all(s)).put('\t');
    if (s.last_exit.pid != 0) {
        put_exit_text(o, s.last_exit);
    } else {
        o.put('-');
    }
    o.put('\t').put(s.reason == Reason::unknown ? "-" : reason_id(s.reason));
    o.put('\t').put(s.wanted ? "yes" : "no").put('\n');
    return false;
}

// A time in the detail: "2026-12-07T08:02:52.123Z (5.123 s ago)", or "-".
void put_when(text_out& o, const render_context& c, std::int64_t at_ns) noexcept {
    const std::int64_t wall = wall_of(c, at_ns);
    if (at_ns == 0) {
        o.put('-');
        return;
    }
    if (wall != 0) {
        put_wall(o, wall);
        o.put(" (");
    }
    o.put_seconds(c.now_ns - at_ns, 3).put(" s ago");
    if (wall != 0) {
        o.put(')');
    }
}

// The detail as `systemctl status` would give it; the STATUS= text and the
// error message quoted and escaped as JSON strings (no raw control byte
// reaches the terminal).
bool service_detail(const item& it) noexcept {
    const render_context& c = it.c;
    const ServiceStatus& s = service_part(*c.snap, it.index, snapshot::service_part::shown);
    text_out& o = it.o;
    o.put(s.name).put(": ").put(state_name(s.state));
    if (s.reason != Reason::unknown) {
        o.put(" (").put(reason_id(s.reason)).put(')');
    }
    o.put(" since ");
    put_when(o, c, s.since_ns);
    o.put("\n  wanted:      ").put(s.wanted ? "yes" : "no").put("\n  pid:         ");
    if (s.pid != 0) {
        o.put_i64(s.pid);
    } else {
        o.put('-');
    }
    o.put("\n  uptime:      ");
    if (running(s)) {
        o.put_seconds(c.now_ns - s.started_ns, 3).put(" s");
    } else {
        o.put('-');
    }
    o.put("\n  restarts:    ").put_u64(restarts_all(s)).put(" (since stable ").put_u64(s.restarts);
    for (std::size_t k = 0; k < restart_cause_count; ++k) {
        o.put(k == 0 ? "; " : ", ").put(restart_cause_name(static_cast<RestartCause>(k)));
        o.put(' ').put_u64(s.restarts_by_cause[k]);
    }
    o.put(")\n  last exit:   ");
    if (s.last_exit.pid != 0) {
        put_exit_text(o, s.last_exit);
        o.put(" (pid ").put_i64(s.last_exit.pid).put(')');
    } else {
        o.put('-');
    }
    if (s.state == ServiceState::backoff && s.restart_at_ns != 0) {
        o.put("\n  backoff:     restart in ").put_seconds(until(c, s.restart_at_ns), 3).put(" s");
    }
    o.put("\n  status:      ");
    put_str(o, s.status_text);
    const ServiceError& e = s.last_error;
    o.put("\n  last error:  ");
    if (e.reason == Reason::unknown) {
        o.put('-');
    } else {
        o.put(reason_id(e.reason));
        if (!e.message.empty()) {
            o.put(": ");
            put_str(o, e.message);
        }
        if (e.sys_errno != 0) {
            o.put(" (errno ").put_i64(e.sys_errno).put(')');
        }
        o.put(", ");
        put_when(o, c, e.since_ns);
        o.put("\n  resolution:  ").put(Error(e.reason, 0).resolution());
    }
    o.put("\n  deaths:      ").put_u64(s.death_count);
    const std::uint64_t n =
        s.death_count < death_history_capacity ? s.death_count : death_history_capacity;
    if (n != 0) {
        o.put(n < s.death_count ? " (the last 16, oldest first)" : " (oldest first)");
    }
    for (std::uint64_t k = 0; k < n; ++k) {
        const DeathRecord& d = s.deaths[k];
        o.put("\n    ");
        put_when(o, c, d.at_ns);
        o.put("  ");
        put_exit_text(o, d.exit);
        o.put(" (pid ").put_i64(d.exit.pid).put(")  ").put(reason_id(d.reason));
    }
    o.put('\n');
    return false;
}

// The one-object documents: the record `index`, then a newline.
bool service_one(const item& it) noexcept {
    put_service(it.o, it.c, service_part(*it.c.snap, it.index, snapshot::service_part::shown));
    it.o.put('\n');
    return false;
}
bool probe_one(const item& it) noexcept {
    put_probe(it.o, it.c, it.c.snap->probe(it.index));
    it.o.put('\n');
    return false;
}
bool monitor_one(const item& it) noexcept {
    put_monitor(it.o, it.c, it.c.snap->monitor(it.index));
    it.o.put('\n');
    return false;
}
bool watchdog_one(const item& it) noexcept {
    put_watchdog(it.o, it.c.snap->watchdog());
    it.o.put('\n');
    return false;
}

// Metrics: a family's header item carries its samples when it has one set
// of them; otherwise item k > 0 is subject k - 1's.
bool family_item(const item& it) noexcept {
    const family& f = *it.s.fam;
    if (it.i == 0) {
        put_family_head(it.o, f.name, f.type, f.help);
    }
    if (f.over == per::once || it.i != 0) {
        f.sample(it.o, it.c, f, f.over == per::once ? 0 : it.i - 1);
    }
    return false;
}
bool runtime_metrics(const item& it) noexcept {
    put_counter_families(it.o, "custos_runtime_", runtime_counters, it.c.snap->stats());
    return false;
}
bool reactor_metrics(const item& it) noexcept {
    put_counter_families(it.o, "custos_reactor_", reactor_counters, *it.c.reactor);
    return false;
}
bool control_metrics(const item& it) noexcept {
    put_control_metrics(it.o, *it.c.control);
    return false;
}
bool process_metrics(const item& it) noexcept {
    put_process_metrics(it.o, *it.c.process);
    return false;
}

constexpr step health_text_steps[] = {{items::checks, check_line}, {items::one, health_line}};

constexpr step health_json_steps[] = {
    {items::one, health_head},
    {items::reasons, element},
    {items::one, reasons_tail, ",\"checks\":["},
    {items::checks, element},
    {items::one, lit, "]}\n"},
};

constexpr step status_json_steps[] = {
    {items::one, status_head},
    {items::reasons, element},
    {items::one, reasons_tail, "},\"services\":["},
    {items::services, element},
    {items::one, lit, "],\"probes\":["},
    {items::probes, element},
    {items::one, lit, "],\"monitors\":["},
    {items::monitors, element},
    {items::one, status_watchdog},
    {items::one, status_counters},
};

constexpr step status_tsv_steps[] = {{items::services, tsv_line}};
constexpr step service_json_steps[] = {{items::one, service_one}};
constexpr step service_text_steps[] = {{items::one, service_detail}};
constexpr step probe_json_steps[] = {{items::one, probe_one}};
constexpr step monitor_json_steps[] = {{items::one, monitor_one}};
constexpr step watchdog_json_steps[] = {{items::one, watchdog_one}};

constexpr std::size_t family_count = std::size(families);

constexpr auto metrics_steps = [] {
    std::array<step, family_count + 4> a{};
    for (std::size_t i = 0; i < family_count; ++i) {
        a[i] = step{items::family, family_item, {}, &families[i]};
    }
    a[family_count] = step{items::one, runtime_metrics};
    a[family_count + 1] = step{items::reactor, reactor_metrics};
    a[family_count + 2] = step{items::control, control_metrics};
    a[family_count + 3] = step{items::process, process_metrics};
    return a;
}();

std::span<const step> steps_of(doc kind) noexcept {
    switch (kind) {
    case doc::health_text:
        return health_text_steps;
    case doc::health_json:
        return health_json_steps;
    case doc::status_json:
        return status_json_steps;
    case doc::status_tsv:
        return status_tsv_steps;
    case doc::service_json:
        return service_json_steps;
    case doc::service_text:
        return service_text_steps;
    case doc::probe_json:
        return probe_json_steps;
    case doc::monitor_json:
        return monitor_json_steps;
    case doc::watchdog_json:
        return watchdog_json_steps;
    case doc::metrics:
        return metrics_steps;
    }
    return {};
}

} // namespace

std::size_t code_index(int http_status) noexcept {
    if (http_status < 400) {
        return 0;
    }
    switch (http_status) {
    case 400:
        return 1;
    case 403:
        return 2;
    case 404:
        return 3;
    case 408:
    case 413:
    case 431:
        return 5;
    case 503:
        return 6;
    default:
        return http_status < 500 ? 4 : 7;
    }
}

std::string_view code_label(std::size_t slot) noexcept {
    static constexpr sv labels[] = {"200", "400", "403", "404", "4xx", "413", "503", "5xx"};
    return slot < std::size(labels) ? labels[slot] : "5xx";
}

void document::begin(doc kind, const render_context& ctx, std::uint32_t index) noexcept {
    kind_ = kind;
    ctx_ = &ctx;
    index_ = index;
    step_ = 0;
    item_ = 0;
    count_ = 0;
    first_ = true;
    done_ = false;
    if (kind == doc::metrics && ctx.scratch != nullptr && ctx.snap != nullptr) {
        metrics_scratch& m = *ctx.scratch;
        const std::uint32_t ns = ctx.snap->service_count();
        const std::uint32_t np = ctx.snap->probe_count();
        m.services_filled =
            ns < m.services.size() ? ns : static_cast<std::uint32_t>(m.services.size());
        m.probes_filled = np < m.probes.size() ? np : static_cast<std::uint32_t>(m.probes.size());
        for (std::uint32_t i = 0; i < m.services_filled; ++i) {
            m.services[i] =
                figures_of(service_part(*ctx.snap, i, snapshot::service_part::no_deaths));
        }
        for (std::uint32_t i = 0; i < m.probes_filled; ++i) {
            m.probes[i] = figures_of(probe_part(*ctx.snap, i, snapshot::probe_part::figures));
        }
    }
}

bool document::fill(text_out& out) noexcept {
    if (done_ || ctx_ == nullptr || ctx_->snap == nullptr) {
        done_ = true;
        return true;
    }
    const std::span<const step> steps = steps_of(kind_);
    while (step_ < steps.size()) {
        const step& s = steps[step_];
        if (item_ == 0) {
            // Counted once per step (the reasons' count costs a health read).
            count_ = count(*ctx_, s);
        }
        if (item_ >= count_) {
            ++step_;
            item_ = 0;
            first_ = true;
            continue;
        }
        const text_out::mark_t m = out.mark();
        const bool element = s.render(item{out, *ctx_, s, index_, item_, first_});
        if (out.overflowed()) {
            if (m.len != 0) {
                out.rewind(m); // whole or absent: it goes first in the next buffer
                return false;
            }
            // Alone in an empty buffer and still too big: only a buffer
            // smaller than item_max may see this. The document ends cut.
            CUSTOS_ASSERT(out.capacity() < item_max);
            done_ = true;
            return true;
        }
        if (element) {
            first_ = false;
        }
        ++item_;
    }
    done_ = true;
    return true;
}

bool render_all(doc kind, const render_context& ctx, text_out& out, std::uint32_t index) noexcept {
    document d;
    d.begin(kind, ctx, index);
    return d.fill(out) && !out.overflowed();
}

int health_http_status(const HealthStatus& h) noexcept {
    return h.health == Health::ok || h.health == Health::degraded ? 200 : 503;
}

void put_time(text_out& out, std::int64_t at_ns, const render_context& ctx) noexcept {
    if (at_ns == 0 || ctx.wall_now_ns == 0) {
        out.put("null");
        return;
    }
    out.put('"');
    put_wall(out, wall_of(ctx, at_ns));
    out.put('"');
}

} // namespace custos::status
