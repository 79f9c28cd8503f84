// Captured output of every service: where the process host's drained
// bytes (service index, stream, data) become prefixed lines in each
// service's RAM ring and, in file mode, its files.
//
// Owns, per service slot (laid out once from the caller's arena:
// reserve(), two passes): two framers (stdout, stderr), a ring of
// output_ring_bytes, and in file mode the files of <dir>/<service>/ and
// the batch it fills; shared by all, spare_buffers write buffers and one
// pruner workspace. Nothing is allocated after
// reserve(); nothing here ever blocks a service (the pipe is the process
// host's and is always drained: a full or slow disk drops bytes, counted,
// and the ring never refuses a line).
//
// Modes (OutputMode, per slot, at reserve()): file = ring + files (needs
// LogConfig::dir), ring = ring only, automatic = file when dir is set else
// ring, inherit and null = nothing captured here (no memory taken). A file
// slot whose files did not open (open_files() failed, or was not called)
// keeps its ring only.
//
// Writes: a line for the files goes into the slot's batch (batch_bytes).
// A batch is handed off when the next line does not fit (a batch holds
// at most batch_bytes, and at most output_file_bytes, so rotation between
// writes keeps files within their size), by flush() (the reactor calls it
// once per turn, after delivering that turn's output) and by on_stop():
// it is copied into a write buffer from the shared spares, or appended to
// the one waiting behind the slot's write in flight (up to write_bytes),
// so that a writer faster than the disk's latency gets larger writes. One
// write per slot is in flight at a time, the reactor's write op on the
// O_APPEND descriptor (io_uring: the disk's wait is off the loop; epoll:
// regular files are always "ready", so the write happens at submit); the
// next queued one starts when it completes. A slot holds at most
// max_queued write buffers; when it has that many, or no spare is free,
// the batch is dropped at once (counted, and a marker "the disk was too
// slow" precedes the next write, where the gap is): a stalled disk costs
// output, never memory or a blocked service. flush() leaves a slot's
// partial batch to fill while the slot has a write in flight.
//
// Without a reactor (attach() not called: tests, tools) each write is
// made synchronously at hand-off, through the same completion path.
//
// Counters per slot (counters()) and totals (totals(): dropped_bytes is
// custos_log_dropped_bytes_total). Everything runs on the reactor thread.
// The arena must outlive the sink (its destructor closes the files kept
// there), and no write may be in flight at close() (busy(): run the
// reactor until it is false).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/log.hpp>

#include "capture/files.hpp"
#include "capture/framer.hpp"
#include "capture/ring.hpp"
#include "core/arena.hpp"
#include "io/reactor.hpp"
#include "prune/scan.hpp"

namespace custos::capture {

// One service as the sink sees it at init.
struct slot_spec {
    std::string_view name; // the directory's name under LogConfig::dir
    OutputMode mode = OutputMode::automatic;
};

struct slot_counters {
    std::uint64_t bytes_in = 0;    // bytes delivered by on_output()
    std::uint64_t lines = 0;       // lines emitted (into the ring, and the batch)
    std::uint64_t split_lines = 0; // of them, cut at max_line_text
    std::uint64_t ring_evicted_bytes = 0;
    std::uint64_t written_bytes = 0;     // appended to the files (markers included)
    std::uint64_t dropped_bytes = 0;     // not in the files (failed writes, disk too slow)
    std::uint64_t unwritten_bytes = 0;   // of them, never written: the disk did not keep up
    std::uint64_t markers = 0;           // drop markers written
    Reason last_error = Reason::unknown; // the last failed write's (unknown: none)
    int last_errno = 0;
};

struct sink_totals {
    std::uint64_t bytes_in = 0;
    std::uint64_t lines = 0;
    std::uint64_t dropped_bytes = 0; // custos_log_dropped_bytes_total
    std::uint64_t markers = 0;
};

class sink {
public:
    // A batch holds at least one longest line.
    static constexpr std::size_t batch_bytes = 8192;
    static_assert(batch_bytes >= max_line);
    // Write buffers, shared by the file slots: each takes the batches a
    // slot hands off while its write is in flight, up to write_bytes, so
    // that one write takes them all; a slot may hold max_queued of them
    // (the one in flight included).
    static constexpr std::size_t write_bytes = 64 * 1024;
    static constexpr std::uint32_t spare_buffers = 6;
    static constexpr std::uint32_t max_queued = 3;

    sink() = default;
    ~sink();
    sink(const sink&) = delete;
    sink& operator=(const sink&) = delete;

    // Lays out a slot for each of `slots` (index = the process host's
    // service index) from `mem`, with cfg's output_ring_bytes,
    // output_file_bytes, output_files and dir. Two-pass arena sizing: on
    // the measuring pass this fails with OutOfMemory after measuring
    // everything (mem.needed()); call it again on the real block. Opens
    // nothing (open_files()). Errors: InvalidArgument (a file slot without
    // cfg.dir, dir not absolute, a name unusable as a directory name,
    // output_ring_bytes below max_line, output_file_bytes or output_files
    // 0), OutOfMemory.
    [[nodiscard]] Result<void> reserve(arena& mem, std::span<const slot_spec> slots,
                                       const LogConfig& cfg) noexcept;

    // Writes go through `r` from now on (before: synchronously).
    void attach(io::reactor& r) noexcept { r_ = &r; }

    // Opens slot `slot`'s files (files::open()); call once per file slot
    // after the real reserve(). Errors: InvalidArgument (no such slot, or
    // not a file slot), and files::open()'s.
    [[nodiscard]] Result<files_report> open_files(std::uint32_t slot) noexcept;

    // Bytes a service wrote to `stream` (1 stdout, 2 stderr; anything else
    // is ignored), drained at the given clocks. Slots out of range or not
    // capturing: ignored.
    void on_output(std::uint32_t slot, int stream, const char* data, std::size_t len,
                   std::int64_t wall_ns, std::int64_t mono_ns, bool clock_trusted) noexcept;

    // The service exited or is stopping: its partial lines are emitted and
    // its batch written.
    void on_stop(std::uint32_t slot, std::int64_t wall_ns, std::int64_t mono_ns,
                 bool clock_trusted) noexcept;

    // Hands off every batch that holds lines, but a slot's that has a
    // write in flight (once per reactor turn).
    void flush() noexcept;
    // A write in flight or queued.
    bool busy() const noexcept { return queued_ != 0; }

    // Deletes one oldest capture archive, taking the services in turn;
    // returns the bytes freed (0: no service had an archive).
    std::uint64_t free_oldest() noexcept;

    // Writes what is still queued synchronously (the loop has ended: the
    // slots with a write in flight drop theirs, counted), then closes
    // every file.
    void close() noexcept;

    std::uint32_t size() const noexcept { return count_; }
    // Whether the slot captures (ring or file), and whether its files are open.
    bool captures(std::uint32_t slot) const noexcept;
    bool has_files(std::uint32_t slot) const noexcept;
    // The slot's ring (an empty one for a slot that does not capture).
    const ring& output(std::uint32_t slot) const noexcept;
    // The slot's files, nullptr when it has none.
    const files* files_of(std::uint32_t slot) const noexcept;
    slot_counters counters(std::uint32_t slot) const noexcept;
    const sink_totals& totals() const noexcept { return totals_; }

private:
    struct slot;
    struct wbuf;
    static wbuf* take_wbuf(arena& mem) noexcept;
    static void on_line(void* ctx, const char* line, std::size_t len) noexcept;
    static void on_written(io::op& o, std::int32_t result) noexcept;
    // The slot's batch joins its queue (or is dropped: see above).
    void hand_off(slot& s) noexcept;
    // Starts the slot's oldest queued batch.
    void start(slot& s) noexcept;
    void issue(wbuf& w) noexcept;
    bool complete(wbuf& w, std::int64_t result) noexcept;
    void retire(wbuf& w) noexcept;

    io::reactor* r_ = nullptr;
    wbuf* free_ = nullptr; // spare write buffers
    std::uint32_t queued_ = 0;
    std::size_t batch_limit_ = batch_bytes;
    std::size_t write_limit_ = write_bytes;
    slot* slots_ = nullptr;
    std::uint32_t count_ = 0;
    std::uint32_t* dirty_ = nullptr; // slots whose batch holds lines
    std::uint32_t dirty_count_ = 0;
    std::uint32_t next_free_ = 0; // free_oldest()'s turn
    std::uint64_t file_bytes_ = 0;
    std::uint32_t files_kept_ = 0;
    bool any_files_ = false;
    sink_totals totals_{};
    prune::workspace ws_;
    ring none_; // what output() gives for a slot without a ring
};

} // namespace custos::capture
