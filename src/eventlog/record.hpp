// The event log's record: one fixed-size value per line of the log, its
// JSON encoding, and the folding of repeated transitions.
//
// Owns: nothing but its own bytes. A record is plain data (trivially
// copyable, no pointers): it fits a slot of a lock-free ring and is copied
// by value from any thread to the writer. Texts live in fixed buffers; a
// longer text is cut at a UTF-8 boundary and ends with "…" (U+2026).
//
// Encoding (encode()): exactly one JSON object and a '\n', the members in
// this order:
//   seq            always: the log's sequence number (the writer assigns it)
//   boot_id        omitted when empty
//   mono_ns        always: CLOCK_MONOTONIC of the event (for a fold: the last)
//   ts             RFC 3339 UTC with ms and "Z"; omitted when wall_ns is 0
//   clock_trusted  always: false until the wall clock is known to be set
//   level          always: "debug" .. "critical"
//   kind           always: status::event_kind_name() ("service", "custom" ...)
//   name           omitted when empty
//   from, to       state names; omitted when empty
//   reason         the Reason's stable id ("ProcessExited"), or a custom
//                  record's own ("UploadFailed"); omitted when neither
//   errno          omitted when 0
//   pid            omitted when 0
//   exit           {"code":N} or {"signal":N[,"core_dumped":true]}; omitted
//                  when the record carries no exit
//   message        omitted when empty
//   resolution     omitted when empty
//   fields         a custom record's extra members, {"key":"value",...};
//                  omitted when it has none
//   count, first_ts, first_mono_ns
//                  only for a fold (count > 1): how many identical
//                  transitions it stands for and when the first happened
//                  (first_ts omitted when first_wall_ns is 0)
// Strings are escaped per RFC 8259, malformed UTF-8 replaced by U+FFFD
// (status/json.hpp's put_str), so every line is valid JSON and UTF-8.
//
// Levels (level_for()): what an operator should look at first.
//   critical  gave up for good (MaxRestartsExhausted, RestartIntensityExceeded,
//             a service failed); the watchdog starving or lost; a previous
//             boot that ended in a watchdog reset or starvation
//   error     a monitor wedged or crash-looping; health failed; a probe's
//             required dependency down (CriticalDown); watchdog feed
//             failures and devices that cannot be opened
//   warning   a process exited or was killed and is backing off; a probe
//             down; a monitor crashed, degraded or suspected wedged; health
//             degraded; a control action refused; the event log's own
//             troubles (torn line, drops)
//   notice    operator actions, reloads, recoveries (probe recovered,
//             watchdog fed again, monitor progress), watchdog opened/closed
//   info      the rest of normal operation: starting, running, ready,
//             stopping, stopped, probe passed, health ok
//   debug     monitor heartbeats
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <custos/error.hpp>
#include <custos/log.hpp>
#include <custos/service.hpp>

#include "status/event.hpp"

namespace custos::eventlog {

enum class level : std::uint8_t { debug, info, notice, warning, error, critical };

// "debug", "info", "notice", "warning", "error", "critical".
std::string_view level_name(level l) noexcept;

struct record {
    static constexpr std::size_t name_cap = 64;
    static constexpr std::size_t state_cap = 16;
    static constexpr std::size_t message_cap = 256;
    static constexpr std::size_t resolution_cap = 160;
    static constexpr std::size_t reason_text_cap = 32;
    static constexpr std::size_t fields_cap = log_fields_bytes;

    std::uint64_t seq = 0;
    std::int64_t mono_ns = 0;       // for a fold: the last transition's
    std::int64_t wall_ns = 0;       // 0: unknown
    std::int64_t first_mono_ns = 0; // a fold's first transition (count > 1)
    std::int64_t first_wall_ns = 0;
    std::uint32_t count = 1; // transitions this record stands for, >= 1
    std::int32_t sys_errno = 0;
    std::int32_t pid = 0;
    std::int32_t exit_code = 0;   // has_exit and exit_signal == 0
    std::int32_t exit_signal = 0; // the signal that ended the process, or 0
    Reason reason = Reason::unknown;
    status::event_kind kind = status::event_kind::custom;
    eventlog::level level = eventlog::level::info;
    bool clock_trusted = false;
    bool has_exit = false;
    bool exit_core = false;
    std::uint8_t name_len = 0;
    std::uint8_t from_len = 0;
    std::uint8_t to_len = 0;
    std::uint16_t message_len = 0;
    std::uint16_t resolution_len = 0;
    std::uint8_t reason_text_len = 0;
    std::uint16_t fields_len = 0;
    char name[name_cap];
    char from[state_cap];
    char to[state_cap];
    char message[message_cap];
    char resolution[resolution_cap];
    // A custom record's reason (reason is Reason::unknown then): checked
    // [A-Za-z0-9_.-]{1,31}, so it needs no escaping.
    char reason_text[reason_text_cap];
    // A custom record's fields, already encoded: "k":"v","k2":"v2".
    char fields[fields_cap];

    std::string_view name_view() const noexcept { return {name, name_len}; }
    std::string_view from_view() const noexcept { return {from, from_len}; }
    std::string_view to_view() const noexcept { return {to, to_len}; }
    std::string_view message_view() const noexcept { return {message, message_len}; }
    std::string_view resolution_view() const noexcept { return {resolution, resolution_len}; }
    std::string_view reason_text_view() const noexcept { return {reason_text, reason_text_len}; }
    std::string_view fields_view() const noexcept { return {fields, fields_len}; }

    // Copy `s` in, cut at a UTF-8 boundary with "…" when longer than the
    // buffer.
    void set_name(std::string_view s) noexcept;
    void set_from(std::string_view s) noexcept;
    void set_to(std::string_view s) noexcept;
    void set_message(std::string_view s) noexcept;
    void set_resolution(std::string_view s) noexcept;
    void set_exit(const ExitInfo& e) noexcept;
};

static_assert(std::is_trivially_copyable_v<record>);
static_assert(sizeof(record) <= 1024, "a record must fit a ring slot");

// A custom record (log.hpp's log_event()): kind custom, the caller's level,
// reason, message, name and fields, times now. False (`out` partly
// filled) when the reason is not [A-Za-z0-9_.-]{1,31}, a key not
// [a-z0-9_]{1,31}, or there are more than log_field_max fields; fields that
// do not fit fields_cap once encoded are left out (whole members only).
bool make_custom(record& out, std::string_view reason, std::string_view message,
                 std::span<const LogField> fields, LogLevel level, std::string_view name,
                 std::int64_t mono_ns, std::int64_t wall_ns) noexcept;

// Copies `s` into `dst` (room `cap`, at least 4) and returns the length
// stored: all of `s` when it fits, else its longest prefix that ends on a
// UTF-8 character boundary and leaves room for "…", then "…".
std::size_t copy_cut(char* dst, std::size_t cap, std::string_view s) noexcept;

// The level an event gets (see the table at the top of this file).
level level_for(const status::event& e) noexcept;

// The record of an event on the stream: kind, name, reason, errno, pid,
// exit, times; from/to as the kind's state names (none for control, log
// and custom events); message from e.detail (a control action's gets
// " (HTTP n, uid U)" appended: the peer, whose pid is in pid); resolution from e.resolution, else
// the Reason's own (none for Reason::unknown). seq and clock_trusted are the writer's to set.
record from_event(const status::event& e, level l) noexcept;
inline record from_event(const status::event& e) noexcept {
    return from_event(e, level_for(e));
}

// A record's boot_id is given at encode time; longer ones are cut.
inline constexpr std::size_t boot_id_cap = 64;

// Bytes a line can take at most: the fixed members plus every text
// escaped at its worst (6 bytes a byte: "\u001f", "\ufffd").
inline constexpr std::size_t max_line =
    512 + record::reason_text_cap + 16 + record::fields_cap +
    6 * (boot_id_cap + record::name_cap + 2 * record::state_cap + record::message_cap +
         record::resolution_cap);

// Writes `r` as one JSON line (see the top of this file) into buf. Never
// writes past `cap`; returns the line's length with its '\n', or 0 when it
// does not fit (the caller drops it and counts). A record always fits in
// max_line bytes.
std::size_t encode(const record& r, std::string_view boot_id, char* buf, std::size_t cap) noexcept;

// Folding: identical repeated transitions of one subject become one record.
//
// Two records are the same transition when kind, name, from, to and reason
// are equal; each such transition has its own slot, so a crash loop that
// cycles through several states (running -> backoff -> starting ->
// running) folds each of its steps. The first record of a run is written
// at once, and so is the next (`immediate` in all: an operator's restart is
// not held back); the same transitions after those, within `window` of
// the run's start, are held as one record (count, first and last times,
// the last one's other fields). The held record is handed back to be written:
//   - when flush_due(now) finds its window passed, or offer() sees the
//     same transition again past it;
//   - at flush_all();
//   - when the table is full and its slot is the least recently seen: the
//     slot goes to the new transition (counted in evictions()).
// Another transition of the same subject does not flush a held one: a
// folded record is written later than the records around it, and carries
// its first and last times (first_ts, ts) and its count. So a flapping
// service gives at most two records per step of its loop per window,
// whatever its rate, and cannot push the rest of the log out.
//
// Bounded: `capacity` transitions, each a record in place; no allocation.
// Not thread-safe: the writer (the reactor) owns it.
class folder {
public:
    static constexpr std::size_t capacity = 64;
    static constexpr std::int64_t default_window_ns = 10'000'000'000;
    // The first records of a run written at once before the rest of its
    // window is folded: a transition seen twice (a restart) is not held.
    static constexpr std::uint32_t immediate = 2;

    explicit folder(std::int64_t window_ns = default_window_ns,
                    std::uint32_t immediate_records = immediate) noexcept
        : window_ns_(window_ns > 0 ? window_ns : 1),
          immediate_(immediate_records > 0 ? immediate_records : 1) {}

    // Takes record `r`; fills `out` (room for 2) with what to write now, in
    // order, and returns how many (0: it was folded).
    std::size_t offer(const record& r, record* out) noexcept;

    // Hands back held records whose window has passed at `now_mono_ns`,
    // at most `room` of them into `out`; returns how many (call again while
    // it returns `room`).
    std::size_t flush_due(std::int64_t now_mono_ns, record* out, std::size_t room) noexcept;

    // Hands back every held record, at most `room` of them; returns how many.
    std::size_t flush_all(record* out, std::size_t room) noexcept;

    // The earliest monotonic time a held record falls due; 0 when none is.
    std::int64_t next_due() const noexcept;

    std::size_t subjects() const noexcept { return used_; }         // transitions in slots
    std::uint64_t folded() const noexcept { return folded_; }       // records absorbed
    std::uint64_t evictions() const noexcept { return evictions_; } // slots taken over

private:
    struct slot {
        record last;               // the run's key (its first record), then held repeats
        std::int64_t start_ns = 0; // the run's window start
        std::uint64_t seen = 0;    // offer() counter when last touched (LRU)
        std::uint32_t held = 0;    // repeats held in `last` (0: nothing held)
        std::uint32_t passed = 0;  // of the run, written at once (at most immediate_)
        bool used = false;
    };

    static bool same_subject(const record& a, const record& b) noexcept;
    static bool same_transition(const record& a, const record& b) noexcept;
    // Moves slot s's held repeats (if any) to `out`; returns 1 when it did.
    std::size_t take_held(slot& s, record* out) noexcept;

    slot slots_[capacity];
    std::int64_t window_ns_;
    std::uint32_t immediate_;
    std::size_t used_ = 0;
    std::uint64_t clock_ = 0;
    std::uint64_t folded_ = 0;
    std::uint64_t evictions_ = 0;
};

} // namespace custos::eventlog
