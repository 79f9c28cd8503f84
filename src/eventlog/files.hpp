// The event log's directory: the JSONL files, their recovery at open, and
// their rotation by size and count.
//
// Owns: the directory's descriptor, the current file's descriptor, and a
// memory block taken at open() (the pruner's workspace, the tail buffer).
// Nothing is allocated after open(); every call is bounded (a write, an
// fsync, at rotation one directory scan of at most scan_capacity() files).
//
// Files: `events-<seq>-<UTC>.jsonl`, seq the first record's, zero-padded to
// 20 digits, UTC the file's creation as 20261207T190102Z, or
// 19700101T000000Z while the clock is not trusted (set_clock_trusted()).
// Files are ordered by the number in the name, never by the time, so a
// board without an RTC orders them right; names with fewer digits are read
// too (numerically). Other files in the directory are left alone.
//
// Invariant: every file holds whole lines only. A line goes out in one
// write() on an O_APPEND descriptor, so a reader never sees half of one;
// a write that fails part-way (ENOSPC) is cut back to the size before it;
// a line cut by a crash is cut off at the next open() and reported.
//
// Rotation deletes the oldest files through the retention pruner, without
// its open-file probe (prune::options::check_open = false): only custos
// writes here, a reader that has an old file open keeps its data until it
// closes it, and the log stays bounded where the filesystem has no leases.
//
// Reading back (read_since(), for GET /events): the records from a seq on,
// across the files, through a buffer taken at open(); see there.
//
// Not thread-safe: one writer (the reactor) owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/prune.hpp>
#include <custos/text.hpp>

#include "core/arena.hpp"
#include "prune/scan.hpp"

namespace custos::eventlog {

// The log's last record as open() found it: the previous run's last line,
// as much of it as tells how that run ended (its stop record or not, and
// in which boot). Texts are kept only when they are plain ([A-Za-z0-9],
// "-_.:+", no escapes) and fit: ids, times and names as custos writes
// them; anything else is left empty.
struct last_record {
    bool found = false;       // a whole last line with a seq was read
    std::uint64_t seq = 0;    // its "seq"
    std::int64_t mono_ns = 0; // its "mono_ns" (the previous boot's clock)
    bool has_exit = false;    // it has "exit":{"code":N}
    std::int32_t exit_code = 0;
    FixedText<64> boot_id; // "boot_id"
    FixedText<31> ts;      // "ts" as written (RFC 3339 UTC)
    FixedText<15> kind;    // "kind"
    FixedText<63> name;    // "name"
    FixedText<31> reason;  // "reason"
};

// Reads the members above from one encoded line (record.hpp's order; a
// member is found by its key at the top level, before any nested object).
// False (out.found false) when the line does not begin with {"seq":N.
bool parse_last_record(const char* line, std::size_t len, last_record& out) noexcept;

// What open() found.
struct open_report {
    std::uint32_t files = 0;     // log files found (excluding one it created)
    bool created = false;        // no log file was there: one was created
    std::uint64_t cut_bytes = 0; // a torn last line cut off (0: none)
    std::uint64_t next_seq = 0;  // the seq the next record gets
    char file[64] = {};          // the current file's name (NUL-terminated)
    // The last whole line of the newest file, or of the one before it
    // when the newest is empty (a rotation the previous run did not write
    // into); not found when there is no earlier record.
    last_record last;
};

// One page of read_since().
struct replay_page {
    std::size_t bytes = 0;        // whole lines copied to the caller's buffer
    std::uint32_t lines = 0;      // of them, records
    std::uint64_t next = 0;       // the seq to ask for next (`since` when none was copied)
    std::uint64_t lost = 0;       // seqs from `since` up to the first record found: gone
    std::uint64_t read_bytes = 0; // bytes read from the files
    std::uint32_t files = 0;      // files opened (one deleted under it counts too)
    std::uint32_t vanished = 0;   // of them, deleted between the scan and the open
    bool spent = false;           // stopped at the read budget (more may be on disk)
};

struct log_counters {
    std::uint64_t written = 0; // lines appended
    std::uint64_t written_bytes = 0;
    std::uint64_t rotated = 0;      // new files begun by rotation
    std::uint64_t deleted = 0;      // old files deleted by rotation
    std::uint64_t cut_bytes = 0;    // torn bytes cut (open) or cut back (failed writes)
    std::uint64_t write_errors = 0; // appends that failed (the line is not in the log)
    std::uint64_t prune_errors = 0; // rotations whose clean-up failed (files kept)
};

class log_dir {
public:
    static constexpr std::uint64_t default_max_file_bytes = 256 * 1024;
    static constexpr std::uint32_t default_max_files = 8;
    static constexpr std::size_t name_room = 64;
    static constexpr std::size_t path_room = 4096;
    // read_since()'s read buffer (taken at open()): the longest line it
    // returns.
    static constexpr std::size_t replay_chunk = 8192;

    log_dir() = default;
    ~log_dir();
    log_dir(const log_dir&) = delete;
    log_dir& operator=(const log_dir&) = delete;

    // Opens (and creates, mode 0750, if missing: not its parents) the log
    // directory `dir`, finds the newest log file by seq and continues it:
    // a last line without its '\n' is cut off (ftruncate; open_report::
    // cut_bytes says how much, for the caller's event), and the next seq
    // is the last whole line's "seq" + 1 (a last line without one: the
    // file's name seq + its line count), or the name's seq when the file
    // is empty. open_report::last is that last whole line (the previous
    // run's last record), read from the newest file or, when it is empty,
    // the one before it (one more bounded tail read). No log file: one
    // is created for `first_seq`. max_files
    // files are kept (the current one counts); a file grows to at most
    // max_file_bytes unless a single line is longer. Closes what an
    // earlier open() opened. Errors: InvalidArgument (max_files or
    // max_file_bytes 0, dir empty or too long), OutOfMemory,
    // EventLogUnavailable (with the errno: the directory cannot be made,
    // read or resolved, the file cannot be opened, read or cut),
    // PruneScanFailed, PruneTooManyFiles (more than scan_capacity() files
    // match events-*.jsonl).
    [[nodiscard]] Result<open_report> open(std::string_view dir,
                                           std::uint64_t max_file_bytes = default_max_file_bytes,
                                           std::uint32_t max_files = default_max_files,
                                           std::uint64_t first_seq = 1) noexcept;

    // Appends one whole line (its '\n' included) with one write(). A line
    // that begins with {"seq":N names the file it begins, when it begins
    // one, and moves next_seq() past N; any other line is taken as
    // next_seq(). When the current file is not empty and this line would
    // take it past max_file_bytes, the file is fsynced and closed first, a
    // new one named for this line's seq is opened, and the oldest files
    // beyond max_files are deleted (the pruner, src/prune/, ordered by
    // seq; failures there are counted, not returned). A failed write
    // leaves the file as it was (a partial write is cut back) and
    // next_seq() where it was, so the records in a file stay
    // consecutive; the caller counts the loss. Errors:
    // EventLogWriteFailed (with the errno: ENOSPC, EIO, EFBIG...; the line
    // is not in the log), EventLogUnavailable (a new file could not be
    // made: the next append tries again), InvalidArgument (not open, or an
    // empty line).
    [[nodiscard]] Result<void> append(const char* line, std::size_t len) noexcept;

    // append() in two halves, for a writer that makes the write itself
    // (an io_uring op): begin_batch() rotates as append() would for a batch
    // of `len` bytes of whole lines whose first record is `first_seq`, and
    // returns the descriptor to write them to in one write (O_APPEND);
    // end_batch() takes that write's result (bytes written, or -errno), the
    // batch's line count and the seq after its last line: a short or
    // failed write is cut back and returned as append() returns it. One
    // batch at a time. Errors: as append().
    [[nodiscard]] Result<int> begin_batch(std::uint64_t first_seq, std::size_t len) noexcept;
    [[nodiscard]] Result<void> end_batch(std::int64_t result, std::size_t len, std::uint32_t nlines,
                                         std::uint64_t next_seq) noexcept;

    // Copies the records whose seq is >= `since` from the files, oldest
    // first: at most `limit` whole lines and `cap` bytes into `out` (a line
    // that does not fit ends the page; it is next's). The reading starts in
    // the newest file whose name's seq is <= `since` (none: the oldest
    // file, and the records before its first are counted in lost) and goes
    // on into the later files in seq order. Only whole lines are copied: a
    // last line without its '\n' (torn, or being written) is left out, and
    // so are lines with no {"seq": at their start and lines longer than
    // replay_chunk. A file deleted between the directory scan and its open
    // (rotation, an operator) is passed over for the next one (counted in
    // vanished), and so are symlinks and files that cannot be read to the
    // end (a read error ends that file).
    // Bounded: every call reads at most read_budget() bytes (+ one chunk)
    // and opens at most scan_capacity() files, each found by one directory
    // scan (getdents64 into a stack buffer: no allocation); it stops at the
    // budget with `spent` set and next where it got to. Before that, in the
    // first file, the way to `since` is bisected (lines are in seq order):
    // at most log2(file size / replay_chunk) chunks read (5 for a 256 KiB
    // file), counted in read_bytes but not in the budget. A
    // synchronous read on the caller's thread: made for the reactor
    // thread's control-plane handler, where the bound keeps the stall short
    // (1 MiB of page cache at most at the default 256 KiB files).
    // Errors: InvalidArgument (not open), PruneTooManyFiles (the scan found
    // more than scan_capacity() log files), EventLogUnavailable (with the
    // errno: the directory or a file cannot be read; a file that vanishes
    // is not an error).
    [[nodiscard]] Result<replay_page> read_since(std::uint64_t since, std::uint32_t limit,
                                                 char* out, std::size_t cap) noexcept;

    // The bytes one read_since() call reads at most (one chunk more).
    std::uint64_t read_budget() const noexcept { return 4 * max_file_bytes_; }

    // The current file's descriptor (-1: none), for an fdatasync op.
    int fd() const noexcept { return fd_; }

    // fsync() of the current file, for the records that must be durable
    // at once. Errors: EventLogWriteFailed (with the errno),
    // InvalidArgument (not open).
    [[nodiscard]] Result<void> sync() noexcept;

    // Whether new files may carry the wall clock's time in their names.
    void set_clock_trusted(bool trusted) noexcept { clock_trusted_ = trusted; }

    // Closes the files (no fsync: call sync() first for that).
    void close() noexcept;

    bool is_open() const noexcept { return dir_fd_ >= 0; }
    std::string_view current_name() const noexcept { return {name_, name_len_}; }
    std::uint64_t next_seq() const noexcept { return next_seq_; }
    std::uint64_t current_size() const noexcept { return size_; }
    std::uint32_t scan_capacity() const noexcept { return scan_cap_; }
    const log_counters& counters() const noexcept { return stats_; }

    // The seq at the start of a line ({"seq":N), false when it has none.
    static bool line_seq(const char* line, std::size_t len, std::uint64_t& out) noexcept;
    // The seq in a log file's name (events-<seq>-...jsonl), false when the
    // name is not the log's.
    static bool name_seq(std::string_view name, std::uint64_t& seq) noexcept;

private:
    Result<void> open_file(std::uint64_t seq, bool create) noexcept;
    Result<void> rotate(std::uint64_t seq) noexcept;
    Result<std::uint64_t> recover(last_record& last) noexcept;
    Result<std::uint64_t> recover_from(int rd, last_record& last) noexcept;
    // The offset just past the last '\n' before `end` of `rd` (0: none);
    // false when a read fails.
    bool line_end_before(int rd, std::uint64_t end, std::uint64_t& at) noexcept;
    // Parses the line [start, end) of `rd` into `last` (its first
    // chunk_size bytes: the members it keeps come first).
    void read_last(int rd, std::uint64_t start, std::uint64_t end, last_record& last) noexcept;
    // The last whole line of the file `name`, read only (nothing is cut).
    void last_of(std::string_view name, last_record& last) noexcept;
    void prune_old() noexcept;
    PruneSpec spec() const noexcept;
    // The log file after (seq, name) in the order of read_since(), or with
    // `start` the one it begins in for `seq` (see there). False: none.
    Result<bool> find_file(bool start, std::uint64_t& seq, char* name,
                           std::size_t& name_len) const noexcept;
    // A line's start in `fd` at or before the first line whose seq is >=
    // `from`, within about replay_chunk of it: bisection over the file
    // (lines are in seq order), adding the bytes it reads to `read`; 0
    // where it cannot tell.
    std::uint64_t seek_near(int fd, std::uint64_t from, std::uint64_t& read) noexcept;

    int dir_fd_ = -1;
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::uint64_t next_seq_ = 1;
    std::uint64_t max_file_bytes_ = default_max_file_bytes;
    std::uint32_t max_files_ = default_max_files;
    std::uint32_t scan_cap_ = 0;
    bool clock_trusted_ = false;
    log_counters stats_{};
    arena mem_;
    prune::workspace ws_;
    char* chunk_ = nullptr;  // chunk_size bytes from mem_: the tail reads at open
    char* replay_ = nullptr; // replay_chunk bytes from mem_: read_since()
    std::size_t name_len_ = 0;
    std::size_t path_len_ = 0;
    char name_[name_room] = {};
    char path_[path_room] = {};
};

} // namespace custos::eventlog
