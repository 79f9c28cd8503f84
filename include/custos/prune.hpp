// The retention pruner: what an appliance (or custosd's [prune:NAME]
// section) fills in to keep a directory of logs, crash dumps or
// upload spools within its budgets.
//
// A prune run looks at the regular files of one directory whose names match
// a glob, gives each an age and a place in order (from its mtime, from a
// UTC timestamp in its name, or from a sequence number in its name), and
// deletes those its rules make eligible:
//   max_age          older than this (the age rules)
//   keep_newest      not among the newest N
//   max_total_bytes  oldest first while the files' total is over the budget
//   min_free_bytes   oldest first while the filesystem's free space is under
//                    the floor
// combined with `any` (a file goes if one enabled rule makes it eligible) or
// `all` (only if every enabled rule does). No rule enabled: nothing goes.
//
// What is never deleted:
//   - a file it cannot classify (no timestamp where the pattern says, no
//     number after the prefix, a number that overflows): it is not counted
//     either (not in the total, not in keep_newest's N);
//   - a file another process holds open, or one it cannot prove closed
//     (no lease to be had: see src/prune/scan.hpp); also the names the
//     caller protects (the current log). These still count in the budgets:
//     they occupy the space, so older files go in their place;
//   - dot files, symlinks, directories and anything not a regular file;
//     the pruner never follows a link and never descends.
//
// The clock rule: age rules apply only while the wall clock is known to be
// set (the caller says so) and only to files whose time is trusted (at or
// after the trust floor, 2024-01-01T00:00:00Z by default). A board without
// an RTC boots in 1970: its files are never deleted as "old", and nothing is
// judged by age until the clock is set. Count and byte rules still apply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/error.hpp>

namespace custos {

// Where a file's age and its place in order come from.
enum class PruneOrder : std::uint8_t {
    mtime,     // the file's modification time
    name_time, // a UTC timestamp in its name (PruneSpec::time_pattern)
    seq,       // a decimal number in its name (PruneSpec::seq_prefix); age from mtime
};

enum class PruneCombine : std::uint8_t {
    any, // a file goes if any enabled rule makes it eligible
    all, // only if every enabled rule does
};

struct PruneSpec {
    std::string_view name; // for events and errors
    std::string_view dir;  // absolute
    // fnmatch(3) on the file name (FNM_PERIOD); dot files never match.
    std::string_view glob = "*";
    PruneOrder order = PruneOrder::mtime;
    // name_time: %Y (4 digits) %m %d %H %M %S (2 digits each), %% and
    // literal characters, UTC, found anywhere in the name; %Y %m %d are
    // required, the time of day defaults to midnight.
    std::string_view time_pattern;
    // seq: the decimal number right after the first occurrence of this
    // prefix that a digit follows (empty: at the start of the name).
    std::string_view seq_prefix;
    Duration max_age{0};               // 0: rule off
    std::uint32_t keep_newest = 0;     // 0: rule off
    std::uint64_t max_total_bytes = 0; // 0: rule off
    std::uint64_t min_free_bytes = 0;  // 0: rule off
    // The free-space floor as a share of the filesystem's size (0-99, 0:
    // off), journald's KeepFree: the runtime reads the size (statvfs) at
    // each run and the larger of this and min_free_bytes is the floor.
    std::uint8_t min_free_percent = 0;
    PruneCombine combine = PruneCombine::any;
    // Scan bound: a directory with more matching files makes the run
    // refuse (PruneTooManyFiles) and delete nothing.
    std::uint32_t max_files = 4096;
    // The runtime's schedule: the first run a random time within one
    // interval after start(), then every interval +/- 10 % (jitter, so that
    // boards booted together do not scan together). 0: only on demand
    // (Runtime::prune_now). Otherwise at least one second.
    Duration interval = std::chrono::hours(1);
};

// Rule bits: which rules made a file eligible.
enum PruneRule : std::uint8_t {
    prune_rule_max_age = 1U << 0,
    prune_rule_keep_newest = 1U << 1,
    prune_rule_max_total_bytes = 1U << 2,
    prune_rule_min_free_bytes = 1U << 3,
};

// 2024-01-01T00:00:00Z: a file time (or a wall clock) before it is taken
// as unset (a board that booted without an RTC).
inline constexpr std::int64_t prune_trust_floor_ns = 1704067200LL * 1000000000LL;

// One run's counts.
struct PruneSummary {
    std::uint32_t scanned = 0;         // regular files matching the glob
    std::uint32_t classified = 0;      // of them, with an order and a time
    std::uint32_t unclassified = 0;    // never deleted, never counted
    std::uint32_t protected_files = 0; // classified, open or protected: kept
    std::uint32_t unprovable = 0;      // of those, kept because no lease could be had
    std::uint32_t deleted = 0;         // deleted (or, in a dry run, would be)
    std::uint64_t deleted_bytes = 0;
    std::uint32_t kept = 0; // classified files left in place
    std::uint64_t kept_bytes = 0;
    std::uint32_t changed = 0;       // replaced or changed before unlink: skipped
    std::uint32_t unlink_failed = 0; // unlinkat failed: kept
};

// Stable names of the rule bits ("max_age", "keep_newest",
// "max_total_bytes", "min_free"), joined with '+' into `out` (at most
// `cap` bytes, cut short if it does not fit); returns the length.
std::size_t prune_rule_names(std::uint8_t rules, char* out, std::size_t cap) noexcept;

// Where Runtime::prune_now() reports each file a run deletes (or, in a dry
// run, would delete), with the PruneRule bits that chose it. Called on the
// reactor thread during the run; `file` is valid only during the call.
class PruneVisitor {
public:
    virtual void file(std::string_view file, std::uint64_t bytes, std::uint8_t rules) noexcept = 0;

protected:
    ~PruneVisitor() = default;
};

// One event of a pruning job (Runtime::set_prune_hook): a file deleted
// (PruneDeleted, detail "FILE (N bytes, RULES)"), a chosen file kept
// (PruneUnlinkFailed, PruneFileChanged: detail the file), or a run that
// failed (PruneScanFailed, PruneTooManyFiles: detail the directory).
// Views valid only during the hook.
struct PruneEvent {
    std::string_view job;
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    std::string_view detail;
    std::string_view resolution; // empty for a deletion
    std::int64_t at_ns = 0;      // CLOCK_MONOTONIC
};

using PruneHook = void (*)(const PruneEvent& e, void* ctx);

// One pruning job as the runtime keeps it (Runtime::prune_status).
struct PruneJobStatus {
    std::string_view name; // views into the runtime: valid while it lives
    std::string_view dir;
    std::string_view glob;
    PruneOrder order = PruneOrder::mtime;
    PruneCombine combine = PruneCombine::any;
    Duration interval{0};
    Duration max_age{0};
    std::uint32_t keep_newest = 0;
    std::uint64_t max_total_bytes = 0;
    std::uint64_t min_free_bytes = 0; // as configured; see last_free_floor
    std::uint8_t min_free_percent = 0;
    std::uint32_t max_files = 0;
    // Counters since start(), runs on demand included (dry runs are not).
    std::uint64_t runs = 0;
    std::uint64_t files_deleted = 0;
    std::uint64_t bytes_deleted = 0;
    std::uint64_t failures = 0;          // runs that failed, and files it could not delete
    std::int64_t last_run_mono_ns = 0;   // CLOCK_MONOTONIC; 0: never ran
    std::int64_t next_run_mono_ns = 0;   // 0: not scheduled (interval 0, or stopped)
    std::uint64_t last_free_floor = 0;   // the floor the last run used (bytes)
    Reason last_error = Reason::unknown; // the last run's failure; unknown: it went through
    PruneSummary last;                   // the last run's counts
};

} // namespace custos
