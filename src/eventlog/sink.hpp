// The event log's writer: a listener of the event stream that turns every
// event into a record, takes the appliance's custom records from any
// thread, and keeps them in the RAM ring and, with a directory, on disk.
//
// Owns: the producer mailbox (a bounded lock-free ring of fixed record
// slots and its eventfd), the folder, the RAM ring's bytes and two staging
// buffers (from the runtime's arena), the log directory (files.hpp), a
// write op, an fdatasync op and a timer on the reactor.
//
// The path of a record, all on the reactor thread but the first step:
//   1. a custom record: any thread, log_event() -> post(): one try_post
//      into the mailbox; full: dropped and counted, never a wait (while
//      both staging buffers are taken the mailbox is not drained: it
//      fills, and the producer learns of the drop, rather than the record
//      being taken and then lost to the disk);
//   2. an event (on_event()) goes through the folder (a crash loop becomes
//      one record with a count); custom records do not;
//   3. emit(): the record gets its seq and clock_trusted, is encoded once
//      (one JSON line), appended to the RAM ring and, with a directory,
//      to the staging buffer that is filling;
//   4. after each loop turn (after_turn()), a staging buffer with lines
//      goes out in ONE write op on the O_APPEND descriptor (io_uring's
//      write where the backend is io_uring, so a stalled disk never stalls
//      the loop; the epoll backend writes at once, as regular files are
//      always "ready"). One write in flight; the other buffer fills
//      meanwhile. A record that finds both full is lost to the disk (it is
//      still in the RAM ring) and counted; once a write succeeds again,
//      one record (EventLogRecordsLost) says how many were lost.
//   5. durability: a critical record (watchdog starvation, giving up) and
//      the boot record ask for an fdatasync right after their write;
//      routine records are synced within LogConfig::sync_interval.
// A write that fails (ENOSPC, EIO) is cut back (files.hpp): the file keeps
// whole lines only; those records are counted lost; supervision is never
// told to wait.
//
// Threads: post() from any thread; everything else on the reactor thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/log.hpp>

#include "core/arena.hpp"
#include "eventlog/files.hpp"
#include "eventlog/lines.hpp"
#include "eventlog/record.hpp"
#include "io/mailbox.hpp"
#include "io/reactor.hpp"
#include "status/stream.hpp"

namespace custos::eventlog {

struct sink_counters {
    std::uint64_t records = 0;        // records given a seq (RAM ring and, with a dir, the disk)
    std::uint64_t folded = 0;         // transitions absorbed into a folded record
    std::uint64_t custom = 0;         // custom records taken from the mailbox
    std::uint64_t custom_dropped = 0; // custom records the full mailbox refused
    std::uint64_t lost = 0;           // records that did not reach the disk
    std::uint64_t batches = 0;        // write ops issued
    std::uint64_t write_errors = 0;   // of them, failed or short
    std::uint64_t syncs = 0;          // fdatasync ops issued
    std::uint64_t written_bytes = 0;  // bytes appended to the files
};

class sink final : public status::listener {
public:
    // Custom records the mailbox holds between two loop turns.
    static constexpr std::uint32_t mailbox_slots = 32;
    // Each of the two staging buffers.
    static constexpr std::size_t stage_bytes = 16 * 1024;

    sink() noexcept;
    sink(const sink&) = delete;
    sink& operator=(const sink&) = delete;
    ~sink() = default;

    // Takes the RAM ring and the staging buffers from `mem` (two-pass
    // sizing: OutOfMemory on the measuring pass, mem.needed() grown).
    [[nodiscard]] Result<void> reserve(arena& mem, const LogConfig& cfg) noexcept;

    // Reactor thread, at init, after reserve() on the real pass: attaches
    // the mailbox, opens the directory (if any) and continues its seq.
    // A directory that cannot be opened is not an error: the log runs on
    // its RAM ring, the failure becomes the first record, and opening is
    // tried again every minute. Errors: EventfdUnavailable.
    [[nodiscard]] Result<void> open(io::reactor& r, const LogConfig& cfg,
                                    std::string_view boot_id) noexcept;

    // Any thread: hands a custom record to the reactor. False when the
    // mailbox is full (counted; reported once it has room again).
    bool post(const record& r) noexcept;

    // status::listener: every event on the stream.
    void on_event(const status::event& e) noexcept override;

    // A record the runtime makes itself (the boot record): not folded;
    // `durable` asks for an fdatasync right after its write.
    void emit(record r, bool durable = false) noexcept;

    // After each loop turn: folded records that fell due, the producer
    // drops to report, the next write.
    void after_turn() noexcept;

    // At the runtime's stop, after the last event: folded records written,
    // the staging buffers written and synced synchronously (the loop has
    // ended). `last`, when given (the stop record, previous.hpp), is
    // written after everything else, so that it ends the log, and reaches
    // the disk before the fsync.
    void close(const record* last = nullptr) noexcept;

    // The log's last record as the directory's open() found it at init
    // (the previous run's; not found without a directory, or when it
    // could not be opened then).
    const last_record& previous() const noexcept { return prev_; }

    // True once since the last call when records were added (the control
    // plane's followers are to be woken).
    bool take_new() noexcept {
        const bool n = fresh_;
        fresh_ = false;
        return n;
    }

    // True once after a write failed for want of space (ENOSPC): the
    // runtime frees room (the oldest captured-output archives) so that the
    // event log's next write has it.
    bool take_out_of_space() noexcept {
        const bool n = out_of_space_;
        out_of_space_ = false;
        return n;
    }

    const lines& ring() const noexcept { return ring_; }
    // The records on disk from `since` on, for GET /events beyond the RAM
    // ring: log_dir::read_since() (bounds and errors there; InvalidArgument
    // without an open directory). Records still in the staging buffers are
    // not on disk yet: the RAM ring has them.
    [[nodiscard]] Result<replay_page> read_files(std::uint64_t since, std::uint32_t limit,
                                                 char* out, std::size_t cap) noexcept {
        return dir_.read_since(since, limit, out, cap);
    }
    // A write or a sync is in flight (run it to completion before close()).
    bool busy() const noexcept { return in_flight_ || sync_in_flight_; }
    bool has_dir() const noexcept { return dir_.is_open(); }
    std::string_view dir_file() const noexcept { return dir_.current_name(); }
    std::uint64_t next_seq() const noexcept { return seq_; }
    bool clock_trusted() const noexcept { return trusted_; }
    const sink_counters& counters() const noexcept { return stats_; }
    const log_counters& file_counters() const noexcept { return dir_.counters(); }

private:
    struct stage {
        char* buf = nullptr;
        std::size_t len = 0;
        std::uint32_t nlines = 0;
        std::uint64_t first = 0; // the seq of its first line
        std::uint64_t next = 0;  // the seq after its last line
        bool durable = false;    // a line in it asks for an fdatasync
        // The batch going out: its first out_len bytes, out_lines lines, up
        // to the seq out_next (the rest, if any, goes in the next batch).
        std::size_t out_len = 0;
        std::uint32_t out_lines = 0;
        std::uint64_t out_next = 0;
    };

    static void on_custom(void* ctx, const record& r) noexcept;
    static void on_written(io::op& o, std::int32_t result) noexcept;
    static void on_synced(io::op& o, std::int32_t result) noexcept;
    static void on_tick(io::timer& t) noexcept;

    void write(const record& r, bool durable) noexcept;
    void stage_line(const char* line, std::size_t len, std::uint64_t seq, bool durable) noexcept;
    void kick() noexcept;
    // The other buffer taken and the filling one without room for a
    // record: the mailbox is held until that changes (release_inbox()).
    bool stages_full() const noexcept;
    void release_inbox() noexcept;
    // Lines [first, next) (nlines of them) that did not reach the disk.
    void lose(std::uint64_t first, std::uint64_t next, std::uint32_t nlines) noexcept;
    // The lines of `s` that go in one batch: all, or as many whole lines
    // as a file holds (max_file_bytes, at least one line).
    void cut_batch(stage& s) const noexcept;
    // After a batch: the lines it wrote dropped from the front of `s`.
    static void drop_batch(stage& s) noexcept;
    void open_dir() noexcept;
    // Writes the staging buffers out synchronously (close() only).
    void flush_now() noexcept;
    void check_clock() noexcept;
    void report_losses() noexcept;
    void arm_tick() noexcept;
    // A record of the log itself (kind log).
    void self_record(Reason why, int err, std::string_view message, level l) noexcept;

    io::reactor* r_ = nullptr;
    io::mailbox<record, mailbox_slots> inbox_;
    folder fold_;
    lines ring_;
    log_dir dir_;
    stage stages_[2];
    std::uint32_t filling_ = 0;   // the stage records go to
    bool in_flight_ = false;      // the other stage is being written
    bool sync_in_flight_ = false; //
    bool sync_due_ = false;       // a durable line was written: sync now
    bool unsynced_ = false;       // routine lines written since the last sync
    bool fresh_ = false;
    bool out_of_space_ = false;
    bool trusted_ = false;
    bool dir_wanted_ = false;
    bool closing_ = false;
    ClockTrust trust_mode_ = ClockTrust::automatic;
    std::int64_t sync_interval_ns_ = 0;
    std::uint64_t max_file_bytes_ = 0;
    std::uint32_t max_files_ = 0;
    mono_time next_sync_{};
    mono_time next_clock_check_{};
    mono_time next_open_{};
    std::uint64_t seq_ = 1;
    std::uint64_t lost_unreported_ = 0;
    // The last losses report until it is on disk: its seq and its count
    // (lost again with it, the count goes back to lost_unreported_).
    std::uint64_t report_seq_ = 0;
    std::uint64_t report_count_ = 0;
    std::uint32_t custom_dropped_seen_ = 0;
    io::op write_op_;
    io::op sync_op_;
    io::timer tick_;
    sink_counters stats_;
    char dir_path_[log_dir::path_room] = {};
    std::size_t dir_len_ = 0;
    last_record prev_;
    bool prev_taken_ = false; // prev_ is from the first open() that worked
    char boot_id_[boot_id_cap] = {};
    std::size_t boot_id_len_ = 0;
    char line_[max_line];
};

} // namespace custos::eventlog
