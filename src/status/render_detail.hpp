// The renderers' internals, shared by their files and private to them:
// the scalars they format with, the records as a document reads them, the
// memo's hooks, the JSON object writer and the documents' steps.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "status/json.hpp"
#include "status/render.hpp"

namespace custos::status::detail {

using sv = std::string_view;

// --- scalars -----------------------------------------------------------------

// The JSON scalars (put_str, wall_into, put_wall) and the digit helpers
// are json.hpp's, shared with the event log.
using status::digits;
using status::floor_div;
using status::put_str;
using status::put_wall;
using status::wall_into;
using status::wall_size;

// "00" to "99": two digits a step.
inline constexpr auto digit_pairs = [] {
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
inline std::size_t u64_into(char* p, std::uint64_t v) noexcept {
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

inline std::uint64_t magnitude(std::int64_t v) noexcept {
    return v < 0 ? static_cast<std::uint64_t>(-(v + 1)) + 1 : static_cast<std::uint64_t>(v);
}

// The wall time of monotonic `at_ns`; 0 when either is unknown.
inline std::int64_t wall_of(const render_context& c, std::int64_t at_ns) noexcept {
    if (at_ns == 0 || c.wall_now_ns == 0) {
        return 0;
    }
    return c.wall_now_ns - (c.now_ns - at_ns);
}

// The time from now to `at_ns`, never negative.
inline std::int64_t until(const render_context& c, std::int64_t at_ns) noexcept {
    return at_ns > c.now_ns ? at_ns - c.now_ns : 0;
}

// "SIGKILL", "SIGRTMIN+3"; false (nothing written) for a number with no name.
bool put_signal_name(text_out& o, int sig) noexcept;

inline bool running(const ServiceStatus& s) noexcept {
    return s.started_ns != 0;
}

inline std::uint64_t restarts_all(const ServiceStatus& s) noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t v : s.restarts_by_cause) {
        n += v;
    }
    return n;
}

// The last finished check's duration: from its start to the later of the
// last success and failure (each set at a check's end); 0 when none.
inline std::int64_t probe_duration(const ProbeStatus& p) noexcept {
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
                                  std::uint32_t* seq = nullptr) noexcept;
const ProbeStatus& probe_part(const snapshot& snap, std::uint32_t p, snapshot::probe_part what,
                              std::uint32_t* seq = nullptr) noexcept;

// The health without its reasons.
inline HealthStatus health_of(const snapshot& snap) noexcept {
    HealthStatus h;
    snap.health_head(h);
    return h;
}

// Seconds with three decimals, truncated toward zero ("-1.250"), at `b`
// (room for 25 bytes); returns the length. text_out::put_seconds(ns, 3)'s
// digits.
inline std::size_t secs_into(char* b, std::int64_t ns) noexcept {
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

} // namespace custos::status::detail

namespace custos::status {

// --- the memo (render.hpp's text_memo) -----------------------------------------

// The renderer's use of a text_memo. The hooks a render calls for each of
// its values are here, inline; the rest is render_memo.cpp's.
struct memo_ops {
    using moment = text_memo::moment;

    // The value a hole stands for, as the renderer writes it.
    static std::int64_t value_of(moment kind, std::int64_t at_ns,
                                 const render_context& c) noexcept {
        return kind == moment::since ? c.now_ns - at_ns : detail::until(c, at_ns);
    }

    // Appends record `slot`'s kept text with its holes filled when it is
    // still the text a render would give (render.hpp); false, nothing
    // written, when it is not.
    static bool replay(text_memo& m, std::uint32_t slot, std::uint32_t seq, text_out& o,
                       const render_context& c) noexcept;

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
        const std::int64_t into =
            wall - detail::floor_div(wall, 1'000'000) * 1'000'000; // [0, 1 ms)
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
    static void reset(text_memo& m) noexcept;

    // The render begun at `start` of `o` ended: keeps it as record
    // `slot`'s, read at sequence `seq`, when it is whole and fits.
    static void end(text_memo& m, std::uint32_t slot, std::uint32_t seq, const text_out& o,
                    std::size_t start, const render_context& c) noexcept;
};

} // namespace custos::status

namespace custos::status::detail {

// --- JSON objects ------------------------------------------------------------

// A JSON object, written a member at a time. A key and a scalar value are
// written straight into the buffer when it has room for the longest, else
// assembled on the stack and go out in one put() (the keys are the
// renderers' literals, all short).
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

// The records' objects (render_json.cpp).
void put_service(text_out& o, const render_context& c, const ServiceStatus& s) noexcept;
void put_probe(text_out& o, const render_context& c, const ProbeStatus& p) noexcept;
void put_monitor(text_out& o, const render_context& c, const MonitorStatus& m) noexcept;
void put_watchdog(text_out& o, const WatchdogStatus& w) noexcept;

// --- counters: one table each, for the JSON and the metrics ----------------

template <class T>
struct counter {
    sv name; // the C++ member's, the JSON key's, the metric's middle
    sv help;
    std::uint64_t T::*field;
};

// The record's counters: custos_log_*_total.
inline constexpr counter<RuntimeStats> log_counters[] = {
    {"log_records", "Event-log records made (kept in RAM and, with a log dir, written).",
     &RuntimeStats::log_records},
    {"log_records_lost", "Event-log records that did not reach the disk (full, stalled, failing).",
     &RuntimeStats::log_records_lost},
    {"log_custom_dropped",
     "Custom records refused: the ring from the appliance's threads was full.",
     &RuntimeStats::log_custom_dropped},
    {"log_dropped_bytes", "Captured output bytes lost to failed writes (the disk full or failing).",
     &RuntimeStats::log_dropped_bytes},
};

inline constexpr counter<RuntimeStats> runtime_counters[] = {
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
    {"output_bytes", "Bytes read from services' captured stdout and stderr.",
     &RuntimeStats::output_bytes},
    {"probe_checks", "Probe checks run.", &RuntimeStats::probe_checks},
    {"probe_failures", "Probe checks failed.", &RuntimeStats::probe_failures},
    {"liveness_restarts", "Services restarted by their liveness probe.",
     &RuntimeStats::liveness_restarts},
    {"signals_ignored", "Signals received and ignored.", &RuntimeStats::signals_ignored},
};

inline constexpr counter<io::reactor_stats> reactor_counters[] = {
    {"ops_submitted", "Operations submitted.", &io::reactor_stats::ops_submitted},
    {"ops_completed", "Operations completed.", &io::reactor_stats::ops_completed},
    {"ops_rejected", "Operations refused for capacity.", &io::reactor_stats::ops_rejected},
    {"wait_calls", "Waits (io_uring_enter or epoll_wait calls).", &io::reactor_stats::wait_calls},
    {"wakeups", "Blocking waits that returned.", &io::reactor_stats::wakeups},
    {"timers_fired", "Timers fired.", &io::reactor_stats::timers_fired},
    {"timerfd_arms", "timerfd_settime calls.", &io::reactor_stats::timerfd_arms},
    {"syscalls", "System calls made by the reactor.", &io::reactor_stats::syscalls},
};

inline constexpr counter<control_counters> control_fields[] = {
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

void put_counters(text_out& o, const render_context& c) noexcept;

// --- health ------------------------------------------------------------------

// The health object's fields up to its open reasons array.
void put_health_head(jobj& j, const render_context& c, const HealthStatus& h) noexcept;
void put_health_reason(text_out& o, const render_context& c, const HealthReason& r) noexcept;

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

inline std::uint32_t check_count(const snapshot& s) noexcept {
    return s.service_count() + s.probe_count() + s.monitor_count();
}

check check_at(const snapshot& snap, std::uint32_t i) noexcept;

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

// What a metrics family shows of the records (render_prom.cpp).
service_figures figures_of(const ServiceStatus& s) noexcept;
probe_figures figures_of(const ProbeStatus& p) noexcept;

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

// The text documents' items (render_text.cpp).
bool check_line(const item& it) noexcept;
bool health_line(const item& it) noexcept;
bool tsv_line(const item& it) noexcept;
bool service_detail(const item& it) noexcept;

// The metrics document's steps: a family each, then the counters'
// (render_prom.cpp).
std::span<const step> metrics_steps() noexcept;

} // namespace custos::status::detail
