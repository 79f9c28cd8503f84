// The published status snapshot: a copy of every service's status, every
// probe's, every monitor's, the runtime counters and the health, written by
// the reactor thread and read by any thread without locks and without
// tearing.
//
// Owns: one seqlock record per service, one per probe, one per monitor
// (taken from the runtime's arena at init, for the table's counts), one for
// the counters and one for the health (members); plus a publication
// counter. Records are the public types (ServiceStatus, ProbeStatus,
// MonitorStatus, RuntimeStats, HealthStatus): their text is FixedText, so
// nothing in the snapshot points into reactor state. The health record is
// the largest (a HealthStatus with its reasons is ~3.5 KiB): a reader
// copies it to its stack, so a thread reading it needs that much stack.
//
// Why a seqlock per record and not one seqlock over everything: with 64
// services and 64 probes the whole is about 48 KiB (a ServiceStatus is
// ~220 bytes, a ProbeStatus ~470, each record padded to whole cache lines).
// One seqlock<T> over that would make every reader of one service copy all
// of it (to the stack: too big for a small thread's stack), retry whenever
// anything at all was published, and make the writer rewrite every record
// on every publication. Per record, a reader copies only the record it
// asks for (Runtime::status(i) is one record), retries only when that
// record is being rewritten, and the writer stores only the records that
// changed (put_*() compare first, so unchanged records cost readers
// nothing). Readers that need every record from the same publication (the
// JSON and Prometheus renderers) use read_all(): the publication counter is
// itself a seqlock sequence around the per-record writes. A double buffer
// would need twice the memory and still a sequence to validate an index.
//
// Invariants: one writer thread (the reactor); publications are
// begin_publish(), put_*()..., end_publish(). A record read by service(),
// probe() or stats() is always one whole record as put. read_all() returns
// records all from one publication. Memory: footprint(services, probes,
// monitors) bytes, taken once at init, plus the snapshot object itself;
// nothing is allocated after.
//
// Wiring (runtime):
//   init()   snap.init(mem, count, probe_count, monitor_count) in the arena
//            layout (both passes); a publisher (below) over a
//            snapshot_source the runtime implements from its live state
//            (the code of today's Runtime::status() and machine::status(),
//            the monitors' status, its status::health_model's current());
//            stream.try_add(pub); then pub.publish() once, so readers see
//            the table before start.
//   run()    after every loop turn (reactor.run_once()), pub.publish_if_stale().
//            Every turn that ran a handler may have changed something
//            (counters, STATUS= text, a check's times) even without an
//            event, so the runtime calls pub.mark_stale() after each turn
//            that did work (or simply every turn: put_*() skip unchanged
//            records, so a turn that changed nothing costs compares, not
//            stores).
//            Cost, measured on the x86-64 build machine (shared, -O2): one
//            publish() of 64 services + 64 probes ~24 us when nothing
//            changed (the compares), ~34 us when everything did; a
//            service(i) read 50-100 ns. So publish once per turn, not per
//            event (the publisher does), and only after turns that did work.
//            The health record is ~3.5 KiB: its compare costs about what
//            eight service records do.
//   status(i) / probe_status(p) / stats() (and monitor_status(m), health())
//            on the reactor thread
//            (snap.is_writer_thread(): bind_writer() was called there at
//            init) the live state, as today; on any other thread
//            snap.service(i) / snap.probe(p) / snap.stats(), as of the last
//            loop turn. The reactor thread must keep reading live state: a
//            hook that calls status() during a turn expects the state it is
//            being told about (test_runtime does: "restart budget" checks
//            status(bad).state == failed inside the transition hook), and
//            the snapshot shows it only after the turn.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <thread>

#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>
#include <custos/watchdog.hpp>

#include "core/arena.hpp"
#include "core/lockfree.hpp"
#include "core/seqlock.hpp"
#include "status/stream.hpp"

namespace custos::status {

class snapshot {
public:
    snapshot() noexcept = default;
    snapshot(const snapshot&) = delete;
    snapshot& operator=(const snapshot&) = delete;

    // Takes room for `services`, `probes` and `monitors` records from `mem`
    // and fills them with default records (what readers see until the
    // first publication). Two-pass arena sizing: on the measuring pass this
    // fails and mem.needed() grows by what it needs (footprint()). Errors:
    // OutOfMemory (the arena is too small).
    [[nodiscard]] Result<void> init(arena& mem, std::uint32_t services, std::uint32_t probes,
                                    std::uint32_t monitors = 0) noexcept;
    // Bytes init() takes from an arena for these counts (alignment slack
    // included).
    static std::size_t footprint(std::uint32_t services, std::uint32_t probes,
                                 std::uint32_t monitors = 0) noexcept;

    // --- writer: the reactor thread only ---

    // Records the calling thread as the writer (call at init, on the
    // reactor thread, before other threads may read is_writer_thread()).
    void bind_writer() noexcept { writer_ = std::this_thread::get_id(); }

    // Opens a publication: read_all() readers retry until end_publish().
    void begin_publish() noexcept;
    // Stores record `i` (`p`) when it differs from the published one; true
    // when it did. `i` < service_count(), `p` < probe_count().
    bool put_service(std::uint32_t i, const ServiceStatus& s) noexcept;
    // Services shown from this publication on (at most the room init took:
    // a reload adds and removes services within it).
    void set_service_count(std::uint32_t n) noexcept;
    bool put_probe(std::uint32_t p, const ProbeStatus& s) noexcept;
    // The same for the probes.
    void set_probe_count(std::uint32_t n) noexcept;
    // The same for monitor `m` < monitor_count(), and for the health.
    bool put_monitor(std::uint32_t m, const MonitorStatus& s) noexcept;
    bool put_health(const HealthStatus& h) noexcept;
    bool put_watchdog(const WatchdogStatus& w) noexcept;
    void put_stats(const RuntimeStats& s) noexcept;
    // Closes the publication.
    void end_publish() noexcept;

    // --- readers: any thread ---

    // Services shown (set_service_count(); the room init took until then).
    std::uint32_t service_count() const noexcept { return shown_.load(std::memory_order_relaxed); }
    std::uint32_t probe_count() const noexcept {
        return probes_shown_.load(std::memory_order_relaxed);
    }
    std::uint32_t monitor_count() const noexcept { return monitors_; }
    // The records init() was asked for, whether or not it got them: what a
    // layout pass that only measures (the arena's first pass, where init()
    // fails) sizes the memory that goes with the records by.
    std::uint32_t service_room() const noexcept { return asked_services_; }
    std::uint32_t probe_room() const noexcept { return asked_probes_; }
    // One whole record as last put (a default record when out of range).
    ServiceStatus service(std::uint32_t i) const noexcept;
    ProbeStatus probe(std::uint32_t p) const noexcept;
    MonitorStatus monitor(std::uint32_t m) const noexcept;
    RuntimeStats stats() const noexcept;
    // The health as last put (`starting`, not settled, before any).
    HealthStatus health() const noexcept;
    // The watchdog as last put (a default record, `off`, before any).
    WatchdogStatus watchdog() const noexcept;
    // Parts of a record, for the renderers: what a document shows and no
    // more (a service record is ~1 KiB, most of it a death history that few
    // services fill). Each is one consistent read of its record, as
    // service(i) is; the bytes of `out` outside the part keep what they
    // held (pass a default record). Out of range: `out` is left as it is.
    enum class service_part : std::uint8_t {
        head,      // name, state, reason
        no_deaths, // every field but deaths[]
        shown,     // every field, deaths[] up to min(death_count, 16)
    };
    // Returns the sequence of the store it read (seqlock::load_parts), 0
    // when `i` is out of range.
    std::uint32_t service_into(std::uint32_t i, ServiceStatus& out,
                               service_part what) const noexcept;
    enum class probe_part : std::uint8_t {
        head,    // name, kind, state, phase, checking and last_error.reason
        figures, // every field but last_error
        all,
    };
    std::uint32_t probe_into(std::uint32_t p, ProbeStatus& out, probe_part what) const noexcept;
    // Record `i`'s (`p`'s) seqlock sequence now (seqlock::sequence()): equal
    // to what service_into() (probe_into()) returned while the record has
    // not been stored again since. 1 (odd, never a read's) out of range. A
    // renderer that keeps the text of a record checks it before reusing it.
    std::uint32_t service_sequence(std::uint32_t i) const noexcept {
        return i < services_ ? service_[i].sequence() : 1;
    }
    std::uint32_t probe_sequence(std::uint32_t p) const noexcept {
        return p < probes_ ? probe_[p].sequence() : 1;
    }
    // The health without its reasons[] (reason_count and summary included).
    void health_head(HealthStatus& out) const noexcept;
    // The health's reason `k` into out.reasons[k], with out.reason_count;
    // false when k >= that count.
    bool health_reason(std::uint32_t k, HealthStatus& out) const noexcept;
    // Whether the caller is the thread bind_writer() was called on: the
    // runtime's test for "live state is mine to read".
    bool is_writer_thread() const noexcept { return writer_ == std::this_thread::get_id(); }
    // Completed publications.
    std::uint32_t generation() const noexcept;

    // Copies every service (up to s.size()), every probe (up to p.size()),
    // every monitor (up to m.size()), the counters and, when `health` is not
    // null, the health, all from the same publication, and sets
    // `generation` to its generation. False when a publication overlapped
    // (the copies are then unspecified): call it again.
    [[nodiscard]] bool try_read_all(std::span<ServiceStatus> s, std::span<ProbeStatus> p,
                                    std::span<MonitorStatus> m, RuntimeStats& st,
                                    HealthStatus* health, std::uint32_t& generation) const noexcept;
    // Without monitors and health.
    [[nodiscard]] bool try_read_all(std::span<ServiceStatus> s, std::span<ProbeStatus> p,
                                    RuntimeStats& st, std::uint32_t& generation) const noexcept {
        return try_read_all(s, p, {}, st, nullptr, generation);
    }
    // The same, retrying until it succeeds; returns the generation.
    std::uint32_t read_all(std::span<ServiceStatus> s, std::span<ProbeStatus> p,
                           std::span<MonitorStatus> m, RuntimeStats& st,
                           HealthStatus* health = nullptr) const noexcept;
    std::uint32_t read_all(std::span<ServiceStatus> s, std::span<ProbeStatus> p,
                           RuntimeStats& st) const noexcept {
        return read_all(s, p, {}, st, nullptr);
    }

private:
    seqlock<ServiceStatus>* service_ = nullptr;
    seqlock<ProbeStatus>* probe_ = nullptr;
    seqlock<MonitorStatus>* monitor_ = nullptr;
    std::uint32_t services_ = 0;          // room
    std::atomic<std::uint32_t> shown_{0}; // shown (<= services_)
    std::uint32_t probes_ = 0;
    std::atomic<std::uint32_t> probes_shown_{0}; // shown (<= probes_)
    std::uint32_t monitors_ = 0;
    std::uint32_t asked_services_ = 0; // by init(), on either pass
    std::uint32_t asked_probes_ = 0;
    seqlock<RuntimeStats> stats_;
    seqlock<HealthStatus> health_;
    seqlock<WatchdogStatus> watchdog_;
    std::thread::id writer_; // set once at init, read-only after
    // Odd while a publication is open. Only the writer stores it; see the
    // .cpp for what each access pairs with.
    alignas(cache_line) std::atomic<std::uint32_t> seq_{0};
};

// Where the publisher reads the live state from: implemented by the runtime,
// called on the reactor thread only.
class snapshot_source {
public:
    virtual std::uint32_t service_count() const noexcept = 0;
    virtual std::uint32_t probe_count() const noexcept = 0;
    virtual ServiceStatus service_status(std::uint32_t i) const noexcept = 0;
    virtual ProbeStatus probe_status(std::uint32_t p) const noexcept = 0;
    virtual std::uint32_t monitor_count() const noexcept = 0;
    virtual MonitorStatus monitor_status(std::uint32_t m) const noexcept = 0;
    virtual RuntimeStats stats() const noexcept = 0;
    // The current health (the runtime's status::health_model::current()).
    virtual const HealthStatus& health() const noexcept = 0;
    // The watchdog's status; nullptr: none to publish.
    virtual const WatchdogStatus* watchdog() const noexcept { return nullptr; }

protected:
    ~snapshot_source() = default;
};

// The listener that keeps the snapshot current: every event marks it stale;
// the runtime publishes after the loop turn (publish_if_stale()), so a turn
// with several transitions publishes once.
class publisher final : public listener {
public:
    publisher(snapshot& snap, const snapshot_source& src) noexcept : snap_(snap), src_(src) {}

    void on_event(const event&) noexcept override { stale_ = true; }
    // A change that is not an event (counters, STATUS= text, a check's
    // times): publish it at the end of the turn too.
    void mark_stale() noexcept { stale_ = true; }
    bool stale() const noexcept { return stale_; }

    // Publishes every record from the source now (records beyond the
    // snapshot's counts are ignored).
    void publish() noexcept;
    // publish() if anything was marked stale since the last one; true when
    // it published.
    bool publish_if_stale() noexcept;

private:
    snapshot& snap_;
    const snapshot_source& src_;
    bool stale_ = true; // nothing published yet
};

} // namespace custos::status
