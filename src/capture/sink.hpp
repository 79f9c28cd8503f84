// Captured output of every service: where the process host's drained
// bytes (service index, stream, data) become prefixed lines in each
// service's RAM ring and, in file mode, its files.
//
// Owns, per service slot (laid out once from the caller's arena:
// reserve(), two passes): two framers (stdout, stderr), a ring of
// output_ring_bytes, and in file mode the files of <dir>/<service>/ and a
// batch buffer of batch_bytes; one pruner workspace shared by all. Nothing
// is allocated after reserve(); nothing here ever blocks a service (the
// pipe is the process host's and is always drained: a full disk drops
// bytes, counted, and the ring never refuses a line).
//
// Modes (OutputMode, per slot, at reserve()): file = ring + files (needs
// LogConfig::dir), ring = ring only, automatic = file when dir is set else
// ring, inherit and null = nothing captured here (no memory taken). A file
// slot whose files did not open (open_files() failed, or was not called)
// keeps its ring only.
//
// Writes: a line for the files goes into the slot's batch; the batch is
// written (files::append(), one write()) when the next line does not fit,
// by flush() (the reactor calls it once per turn, after delivering that
// turn's output) and by on_stop(). The write is synchronous and in this
// one place (write_batch()), so it can move to the reactor's asynchronous
// writes later without touching the rest.
//
// Counters per slot (counters()) and totals (totals(): dropped_bytes is
// custos_log_dropped_bytes_total). Everything runs on the reactor thread.
// The arena must outlive the sink (its destructor closes the files kept
// there), or close() must come first.
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
    std::uint64_t dropped_bytes = 0;     // lost to failed writes (ENOSPC, EIO)
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

    // Writes every batch that holds lines (once per reactor turn).
    void flush() noexcept;

    // Deletes one oldest capture archive, taking the services in turn;
    // returns the bytes freed (0: no service had an archive).
    std::uint64_t free_oldest() noexcept;

    // Closes every file.
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
    static void on_line(void* ctx, const char* line, std::size_t len) noexcept;
    void write_batch(slot& s) noexcept;

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
