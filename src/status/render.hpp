// The renderers: the status snapshot as the control plane serves it — JSON,
// Prometheus text 0.0.4, the /health lines, the TSV custosctl reads, the
// human detail of one service — written into a fixed buffer, a piece at a
// time, without allocating.
//
// Owns: nothing but a cursor. A document is rendered in items (the head,
// then one service, one probe ... then the tail); fill() appends whole items
// while they fit and returns, so a connection with a 16 KiB buffer sends
// what is there, empties it and calls fill() again: a table of any size
// goes out through one small buffer (as HTTP chunks). Every item fits in
// item_max bytes; a buffer at least that big always makes progress.
//
// Consistency: each item is read from the snapshot when it is rendered, as
// one whole record (snapshot::service(i) ...). Items of one document may
// come from different publications when the state changes between two
// fill() calls; every item carries its own times, and "now_ns" in the head
// is the render's start. The field names, routes, metric names and formats
// are control.hpp's: that header is the contract, this is its
// implementation.
//
// A context may carry a text_memo (below): /status then copies the text of
// each service and probe whose record has not changed since the last
// /status instead of rendering it again; the bytes are the same.
//
// Threads: any thread may render (the snapshot's readers are lock-free);
// the server renders on the reactor thread, the only one that uses its
// memo.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/runtime.hpp>

#include "core/arena.hpp"
#include "core/text_out.hpp"
#include "io/reactor.hpp"
#include "status/snapshot.hpp"

namespace custos::status {

// The process's own figures for the process_* metrics (the server reads
// them from /proc/self at the request).
struct process_info {
    double cpu_seconds = 0;
    std::uint32_t open_fds = 0;
    std::uint64_t max_fds = 0;
    std::uint64_t virtual_bytes = 0;
    std::uint64_t resident_bytes = 0;
    std::int64_t start_time_wall_ns = 0; // wall clock
    std::uint32_t threads = 0;
};

// The control plane's own counters.
struct control_counters {
    std::uint64_t connections = 0;    // accepted
    std::uint64_t refused_full = 0;   // 503: every slot in use
    std::uint64_t requests = 0;       // answered
    std::uint64_t by_code[8] = {};    // answered, by status: see code_index()
    std::uint64_t bad_requests = 0;   // 400, 408, 413, 431: malformed or too big
    std::uint64_t actions = 0;        // POST/DELETE allowed
    std::uint64_t actions_denied = 0; // 403
    std::uint64_t timeouts = 0;       // head, idle or send timeouts that closed a client
    std::uint32_t clients = 0;        // connected now
    std::uint32_t max_clients = 0;
};

// by_code's slots: 200, 400, 403, 404, 405/409 (other 4xx), 408/413/431,
// 503, 504/5xx.
std::size_t code_index(int http_status) noexcept;
// The status code a by_code slot stands for in the metrics' `code` label
// ("200", "400", "403", "404", "4xx", "413", "503", "5xx").
std::string_view code_label(std::size_t slot) noexcept;

// What the metrics' per-service and per-probe families need of one record.
// /metrics has six families over the services and four over the probes,
// each a separate pass (a family's samples are contiguous); read from the
// snapshot per family, a 64-service table copies every record ten times.
// With a scratch, begin(doc::metrics) copies each record once and keeps
// only these figures.
struct service_figures {
    FixedText<name_capacity> name;
    ServiceState state = ServiceState::stopped;
    std::int64_t started_ns = 0;
    std::uint64_t restarts_by_cause[restart_cause_count] = {};
    std::uint64_t deaths = 0;
    std::uint64_t output_bytes = 0;
    std::uint64_t output_dropped_bytes = 0;
};
struct probe_figures {
    FixedText<name_capacity> name;
    ProbeState state = ProbeState::unknown;
    std::int64_t duration_ns = 0;
    std::uint64_t checks = 0;
    std::uint64_t failures = 0;
};
// Owned by the caller, sized once (the server keeps one for all its
// connections: a document begun later refills it with records at least as
// new, which the per-item consistency above allows).
// Records beyond its size are read from the snapshot per family. A context
// with a scratch must be rendered from one thread only.
struct metrics_scratch {
    std::span<service_figures> services;
    std::span<probe_figures> probes;
    std::uint32_t services_filled = 0; // by the last begin(doc::metrics)
    std::uint32_t probes_filled = 0;
};

// The JSON text of the status records as GET /status last rendered them,
// kept for the next one: most records do not change between two requests,
// and copying a record's text costs a fraction of rendering it (read the
// record, format its times and numbers, escape its strings).
//
// Owns: one entry per service and per probe (the snapshot's room) and one
// text pool, service_text bytes a service plus probe_text a probe, shared
// (a service with a long death history takes the room of a few short
// ones); all taken from an arena at init, nothing allocated after.
//
// An entry is its record's text as rendered, less the values that depend
// on the moment (uptime_s, backoff_remaining_s, next_check_in_s: written
// afresh each time), and is reused only while
// - the record's seqlock sequence is the one of the read it was rendered
//   from (snapshot::service_sequence()): a record stored since, or being
//   stored, mid-document or not, is read and rendered again;
// - the wall clock is known or not as it was, and the offset between the
//   wall and monotonic clocks (the context's wall_now_ns - now_ns) is in
//   the range over which every wall time of the text, to the millisecond,
//   reads the same: a clock step, or a slew across a millisecond of one of
//   its times, renders it again.
// So a client receives exactly the bytes a fresh render would give.
//
// When full: a text that does not fit in what is left of the pool is not
// kept (its record is rendered every time, as without a memo, counted in
// `uncached`), unless at least half the pool holds texts no longer
// current: then every entry is dropped and the pool refilled (`resets`).
//
// Threads: only the thread that renders with it (the server's: the reactor
// thread); a context with a memo must not be rendered from another.
class text_memo {
public:
    // Pool bytes a service and a probe bring (a healthy record's text is
    // 300-700 bytes; each of a service's last deaths adds ~170).
    static constexpr std::size_t service_text = 640;
    static constexpr std::size_t probe_text = 448;

    text_memo() noexcept = default;
    text_memo(const text_memo&) = delete;
    text_memo& operator=(const text_memo&) = delete;

    // Bytes init() takes from an arena (alignment slack included).
    static std::size_t footprint(std::uint32_t services, std::uint32_t probes) noexcept;
    // Takes room for `services` and `probes` records from `mem`. Two-pass
    // sizing: on the measuring pass this fails and mem.needed() grows by
    // footprint(). Errors: OutOfMemory (the arena is too small).
    [[nodiscard]] Result<void> init(arena& mem, std::uint32_t services,
                                    std::uint32_t probes) noexcept;

    struct counters {
        std::uint64_t hits = 0;     // records copied from the memo
        std::uint64_t misses = 0;   // rendered from the snapshot (then kept if they fit)
        std::uint64_t uncached = 0; // rendered and not kept: the pool was full
        std::uint64_t resets = 0;   // pool dropped and refilled
    };
    const counters& stats() const noexcept { return counters_; }
    std::size_t pool_bytes() const noexcept { return cap_; }

    // A cut in a kept text where a value of the moment goes.
    enum class moment : std::uint8_t {
        since, // now - at (uptime)
        until, // at - now, never negative (backoff, next check)
    };

private:
    friend struct memo_ops; // render_detail.hpp, render_memo.cpp: the renderer's use of it

    static constexpr std::size_t max_holes = 2;
    struct entry {
        std::int64_t lo = 0; // the wall - monotonic offsets the text is good for: [lo, hi)
        std::int64_t hi = 0;
        std::int64_t hole_at[max_holes] = {};
        std::uint32_t seq = 0;   // the record's sequence at the read
        std::uint32_t epoch = 0; // the pool's when kept (0: nothing kept)
        std::uint32_t at = 0;    // the text's place in the pool
        std::uint16_t len = 0;   // its bytes (the holes' values excluded)
        std::uint16_t hole_pos[max_holes] = {};
        moment hole_kind[max_holes] = {};
        std::uint8_t holes = 0;
        bool wall_known = false;
    };

    entry* entries_ = nullptr; // services first, then probes
    char* pool_ = nullptr;
    std::uint32_t services_ = 0;
    std::uint32_t probes_ = 0;
    std::size_t cap_ = 0;
    std::size_t used_ = 0;    // bytes of the pool handed out since the last reset
    std::size_t live_ = 0;    // of those, in current entries
    std::uint32_t epoch_ = 1; // entries of another epoch are empty

    // The render in progress, between memo_ops::begin() and ::end().
    struct capture {
        bool on = false;
        bool bad = false; // more holes than an entry keeps
        std::int64_t lo = 0;
        std::int64_t hi = 0;
        std::uint8_t holes = 0;
        std::size_t start[max_holes] = {}; // in the text_out
        std::size_t end[max_holes] = {};
        std::int64_t at[max_holes] = {};
        moment kind[max_holes] = {};
    };
    capture cap_now_;
    counters counters_;
};

// What a render needs besides the snapshot; the caller fills it once per
// request (on the reactor thread for `reactor`).
struct render_context {
    const snapshot* snap = nullptr;
    std::string_view version;        // custos's ("0.1.0")
    std::string_view backend;        // "io_uring" / "epoll"
    std::string_view backend_reason; // Runtime::backend_reason()
    std::string_view boot_id;        // /proc/sys/kernel/random/boot_id (empty: unknown)
    int pid = 0;
    std::int64_t now_ns = 0;      // CLOCK_MONOTONIC at the render's start
    std::int64_t wall_now_ns = 0; // CLOCK_REALTIME at the same moment (0: unknown)
    std::int64_t started_ns = 0;  // the runtime's start (CLOCK_MONOTONIC; 0: not started)
    const io::reactor_stats* reactor = nullptr; // null: no reactor_* metrics
    const control_counters* control = nullptr;  // null: none
    const process_info* process = nullptr;      // null: no process_* metrics
    metrics_scratch* scratch = nullptr;         // null: each family reads the snapshot
    text_memo* memo = nullptr;                  // null: every record rendered from the snapshot
};

enum class doc : std::uint8_t {
    health_text,  // GET /health: "[+] name state" / "[-] name state: Reason" lines
    health_json,  // GET /health?json
    status_json,  // GET /status
    status_tsv,   // GET /status?format=tsv
    service_json, // GET /services/NAME (index)
    service_text, // GET /services/NAME?format=text: the human detail
    probe_json,   // GET /probes/NAME (index)
    monitor_json, // GET /monitors/NAME (index)
    watchdog_json,
    metrics, // GET /metrics
};

// The largest item any document renders (a service with its 16 deaths, the
// health with its reasons): a buffer this big always makes progress.
inline constexpr std::size_t item_max = 8192;

class document {
public:
    // Starts rendering `kind` (for the *_json one-object kinds, of record
    // `index`). `ctx` (and what it points to) must outlive the document.
    void begin(doc kind, const render_context& ctx, std::uint32_t index = 0) noexcept;
    // Appends whole items to `out` while they fit. True when the document is
    // complete; false when `out` is full (send it, clear it, call again). An
    // item that does not fit in an empty buffer of at least item_max bytes
    // cannot happen (asserted); in a smaller one it is cut and the document
    // ends (the buffer then ends with what fitted).
    bool fill(text_out& out) noexcept;
    bool done() const noexcept { return done_; }

private:
    doc kind_ = doc::health_text;
    const render_context* ctx_ = nullptr;
    std::uint32_t index_ = 0;
    // Where fill() resumes: a step of the document and an index within it.
    std::uint32_t step_ = 0;
    std::uint32_t item_ = 0;
    std::uint32_t count_ = 0; // items in the current step, counted at its first
    bool first_ = true;       // no comma before the first element of an array
    bool done_ = false;
};

// The whole document into one buffer (tests, the textfile writer, the
// benchmark): false when it did not fit (`out` then holds what did).
bool render_all(doc kind, const render_context& ctx, text_out& out,
                std::uint32_t index = 0) noexcept;

// GET /health's status: 200 when health is ok or degraded, 503 otherwise.
int health_http_status(const HealthStatus& h) noexcept;

// RFC 3339 UTC ("2026-12-07T08:02:52.123Z") of the wall time that
// corresponds to monotonic `at_ns`, given the pair (now_ns, wall_now_ns)
// taken together; "null" (unquoted) when at_ns or wall_now_ns is 0.
void put_time(text_out& out, std::int64_t at_ns, const render_context& ctx) noexcept;

} // namespace custos::status
