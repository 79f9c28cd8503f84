// A service's captured output on disk: the directory <dir>/<service>/, the
// file `current` being written, and the archives output-<seq>.log that
// rotation leaves, oldest deleted by the retention pruner.
//
// Owns: the directory's and `current`'s descriptors, and the directory's
// path (from the caller's arena: reserve()). The pruner's workspace is the
// caller's, shared by every service (one rotation runs at a time, on the
// reactor thread). Nothing is allocated after reserve(); every call is
// bounded (writes, a rename, at rotation one directory scan of at most
// scan_capacity() files).
//
// Archives: `output-<seq>.log`, seq the archive's number, zero-padded to
// 20 digits, one more than the greatest found at open(): files are
// ordered by that number, never by a time (a board without an RTC orders
// them right). Other files in the directory are left alone.
//
// Rotation: before a write that would take a non-empty `current` past
// file_bytes, `current` is renamed to the next archive and a new one is
// begun (synchronously: a rename and an open); then the archives beyond files - 1 go (the current
// file counts: files in all), through the pruner ordered by seq without its open-file probe
// (prune::options::check_open = false: only custos writes here, and the directory must stay bounded
// where the filesystem has no leases). With files == 1 there are no archives: `current` is emptied
// instead. Rotation happens between writes, each of whole lines, so each file holds at most
// file_bytes unless one write is longer (the sink cuts its batches at file_bytes, so then one line
// is).
//
// Invariant: every file holds whole lines only. A batch goes out in one
// write on an O_APPEND descriptor (begin_write(), the caller's write,
// possibly asynchronous, end_write()); a write that fails or falls short
// (ENOSPC, EIO) is cut back to the size before it and its bytes counted
// as dropped; the next write that works begins with the marker line
// `<ts> custos dropped N bytes (<cause>)` (the first failure's errno, or
// "the disk was too slow" for bytes the caller could not write in time),
// in the same write as the lines after it.
// A line cut by a crash is cut off at the next open().
//
// A stream: `current` may be a FIFO that something reads (a log shipper,
// or a test's slow disk). It is never rotated, cut or archived; a write
// it takes in part goes on with the rest (a pipe takes what it has room
// for), and a reader that does not keep up costs lines, counted, as a
// slow disk does. Without a reader, opening it fails (ENXIO).
//
// No fsync: captured output is best effort, and a flash disk is spared a
// sync per rotation. Not thread-safe: the reactor owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/prune.hpp>

#include "capture/framer.hpp"
#include "core/arena.hpp"
#include "prune/scan.hpp"

namespace custos::capture {

// One write begin_write() readied: `len` bytes from `data` on `fd` (the
// marker, if any, then the lines).
struct write_plan {
    int fd = -1;
    const char* data = nullptr;
    std::size_t len = 0;
    std::size_t marker = 0;   // marker bytes at the front
    std::uint64_t marked = 0; // the dropped bytes the marker reports
    std::size_t done = 0;     // bytes a stream has taken so far
    std::uint64_t gap = 0;    // of marked, the caller's unwritten bytes
};

// What open() found.
struct files_report {
    std::uint32_t archives = 0;  // output-<seq>.log files found
    std::uint64_t next_seq = 1;  // the next archive's number
    std::uint64_t size = 0;      // `current`'s size after the cut
    std::uint64_t cut_bytes = 0; // a torn last line cut off (0: none)
    bool created = false;        // `current` was not there
};

struct files_counters {
    std::uint64_t written_bytes = 0;   // bytes appended (markers included)
    std::uint64_t dropped_bytes = 0;   // bytes not in the files (failed writes, unwritten)
    std::uint64_t unwritten_bytes = 0; // of them, never written: the disk did not keep up
    std::uint64_t write_errors = 0;    // writes that failed
    std::uint64_t markers = 0;         // drop markers written
    std::uint64_t rotated = 0;         // archives made by rotation
    std::uint64_t deleted = 0;         // archives deleted (rotation, free_oldest)
    std::uint64_t freed_bytes = 0;     // of them, by free_oldest()
    std::uint64_t cut_bytes = 0;       // torn bytes cut at open, or cut back after a failed write
    std::uint64_t prune_errors = 0;    // rotations whose clean-up failed (archives kept)
};

class files {
public:
    static constexpr std::string_view current_name = "current";
    static constexpr std::uint64_t default_file_bytes = 256 * 1024;
    static constexpr std::uint32_t default_files = 4;

    files() = default;
    ~files();
    files(const files&) = delete;
    files& operator=(const files&) = delete;

    // Files up to `files_kept` (the current one counts) need a pruner
    // workspace of this capacity (strays in the directory included).
    static std::uint32_t scan_capacity(std::uint32_t files_kept) noexcept {
        return files_kept + 64;
    }

    // Takes room for the path <dir>/<service> from `mem` (two-pass arena
    // sizing: on the measuring pass this fails with OutOfMemory and
    // mem.needed() grows). Errors: InvalidArgument (dir not absolute,
    // service empty, ".", "..", with a '/', or the path over PATH_MAX),
    // OutOfMemory.
    [[nodiscard]] Result<void> reserve(arena& mem, std::string_view dir,
                                       std::string_view service) noexcept;

    // Makes <dir>/<service> (mode 0750; <dir> must exist) if missing,
    // opens (or creates, 0640) `current` for appending, cuts a torn last
    // line off it, finds the greatest archive number, and deletes the
    // archives beyond files_kept - 1 (an earlier run may have kept more).
    // `ws` (capacity at least scan_capacity(files_kept)) must outlive the
    // use of this object. Closes what an earlier open() opened. Errors:
    // InvalidArgument (not reserved, file_bytes or files_kept 0, ws too
    // small), CaptureUnavailable (with the errno: the directory cannot be
    // made or read, `current` cannot be opened, read or cut),
    // PruneScanFailed, PruneTooManyFiles.
    [[nodiscard]] Result<files_report> open(prune::workspace& ws,
                                            std::uint64_t file_bytes = default_file_bytes,
                                            std::uint32_t files_kept = default_files) noexcept;

    // Bytes a marker line can take: the room a caller leaves before the
    // lines it hands to begin_write() or append().
    static constexpr std::size_t marker_room = max_prefix + 96;

    // An append in two calls around the caller's write of (fd, data, len)
    // on that descriptor, which may be asynchronous (the reactor's write
    // op) and completes before the next begin_write(). `len` bytes of
    // whole lines at `lines`, whose buffer has marker_room writable bytes
    // before it: a pending drop's marker goes there, stamped `now`. A
    // non-empty `current` that the write would take past file_bytes is
    // rotated first (a batch longer than a file goes in alone). Errors
    // (the lines are dropped and counted): CaptureWriteFailed (the
    // rotation, or reopening `current`, failed), InvalidArgument (not
    // open). `gap`: bytes the caller dropped unwritten just before these
    // lines (drop_unwritten()): the marker reports them with the failed
    // writes' (or carries them on, if this write fails too).
    [[nodiscard]] Result<write_plan> begin_write(char* lines, std::size_t len, const stamp& now,
                                                 std::uint64_t gap = 0) noexcept;
    // The write's result (bytes written, or -errno). Done: 0. A stream
    // (see the top) that took part of it: the bytes still to write, from
    // w.data + w.done (write them, then call this again). Short or failed
    // on a file: the file is cut back to its size before it, the lines
    // are counted in dropped_bytes, and the next write that works begins
    // with a marker line; CaptureWriteFailed with the errno (ENOSPC, EIO,
    // EFBIG, EPIPE...).
    Result<std::size_t> end_write(write_plan& w, std::int64_t result) noexcept;
    // begin_write(), write() and end_write() at once. An empty batch is no
    // write.
    [[nodiscard]] Result<void> append(char* lines, std::size_t len, const stamp& now) noexcept;
    // `n` bytes that never reached a write (the disk did not keep up):
    // counted as dropped. The caller places the gap: it gives the bytes
    // to the begin_write() of the lines that came after them, and the
    // marker says "the disk was too slow".
    void drop_unwritten(std::size_t n) noexcept;

    // Deletes the oldest archive (never `current`), through the pruner;
    // returns the bytes freed, 0 when there was none (or it could not be
    // deleted: counted in prune_errors). For freeing space on a full disk
    // before the event log's writes are refused.
    std::uint64_t free_oldest() noexcept;

    // Closes the descriptors.
    void close() noexcept;

    bool is_open() const noexcept { return dir_fd_ >= 0; }
    // `current` is a FIFO (a stream).
    bool is_stream() const noexcept { return stream_; }
    std::string_view path() const noexcept { return {path_, path_len_}; }
    std::uint64_t current_size() const noexcept { return size_; }
    std::uint64_t next_seq() const noexcept { return next_seq_; }
    // Bytes dropped since the last write that worked (the next marker's N).
    std::uint64_t pending_drop() const noexcept { return pending_drop_; }
    const files_counters& counters() const noexcept { return stats_; }

private:
    PruneSpec spec() const noexcept;
    Result<void> open_current(bool create) noexcept;
    Result<std::uint64_t> cut_torn() noexcept;
    Result<void> rotate() noexcept;
    void prune_old() noexcept;
    void drop(std::size_t n, int err) noexcept;
    void carry(std::uint64_t gap, int err) noexcept;

    char* path_ = nullptr; // <dir>/<service>, NUL-terminated, from the arena
    std::size_t path_len_ = 0;
    prune::workspace* ws_ = nullptr;
    int dir_fd_ = -1;
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::uint64_t file_bytes_ = default_file_bytes;
    std::uint32_t files_kept_ = default_files;
    std::uint64_t next_seq_ = 1;
    std::uint64_t pending_drop_ = 0; // bytes dropped since the last good write
    int pending_errno_ = 0;          // the first failure's errno since then
    bool stream_ = false;            // `current` is a FIFO
    files_counters stats_{};
};

// "ENOSPC", "EIO" ...; "errno" for one it does not name.
std::string_view errno_name(int err) noexcept;

} // namespace custos::capture
