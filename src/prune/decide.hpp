// The pruner's decision: which of a directory's files its rules delete.
// Pure: no file system, no clock, no allocation. The caller (scan.hpp's
// run(), or a test) gives the entries, an index array and the output span.
//
// Steps:
//   classify()  gives each entry its time or sequence number, or marks it
//               unclassified (never deleted, never counted);
//   decide()    orders the classified entries newest first and marks what
//               the spec's rules make eligible, combined with any/all.
//
// Order: newest first by seq (PruneOrder::seq) or by time (mtime,
// name_time); on a tie the greater name (byte-wise) counts as the newer, so
// every run orders the same files the same way.
//
// Rules (each off when 0):
//   max_age          eligible when the clock is trusted, the file's time is
//                    trusted (>= the trust floor) and now - time > max_age.
//                    With PruneOrder::seq the time is the mtime.
//   keep_newest      eligible when not among the newest N classified files
//                    (protected files count among the N).
//   max_total_bytes  walking oldest first: eligible while the total of the
//                    classified files still in place is over the budget.
//   min_free_bytes   walking oldest first: eligible while free_bytes plus
//                    the bytes freed so far is under the floor.
// The budgets count what is really deleted: with `any`, the files the age
// and count rules delete are freed first and the budget walk covers what
// they leave; with `all`, a file the other rules keep stays in the total,
// so the walk goes on to the next one.
// With `all`, an enabled age rule that cannot apply (untrusted clock or
// file time) keeps the file: nothing is judged by an age nobody knows.
//
// Protected entries (open elsewhere, not provably closed, or named by the
// caller) are never deleted; they are classified, count in the total and
// occupy their place in keep_newest's N, since they use the space.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/prune.hpp>

namespace custos::prune {

struct entry {
    std::string_view name;
    std::uint64_t size = 0;
    std::int64_t mtime_ns = 0; // wall clock, ns since 1970 (may be negative)
    bool open = false;         // held open elsewhere, or not provably closed
    bool unprovable = false;   // open because no lease could be had (counted)
    // Filled by classify():
    bool classified = false;
    bool trusted_time = false; // time_ns >= the trust floor
    std::int64_t time_ns = 0;  // the age's origin (mtime, or the name's time)
    std::uint64_t seq = 0;     // PruneOrder::seq only
    // Filled by the scan, for the re-check before unlink (zero in tests).
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
};

// What the caller knows of the moment.
struct moment {
    std::int64_t now_wall_ns = 0;
    bool clock_trusted = false;                        // is the wall clock known to be set
    std::uint64_t free_bytes = 0;                      // the filesystem's, for min_free_bytes
    std::span<const std::string_view> protected_names; // e.g. the current log
};

struct decision {
    std::uint32_t index = 0; // into the entries
    std::uint8_t rules = 0;  // PruneRule bits that made it eligible
};

// Checks a spec before any run. Errors: InvalidArgument (subject names the
// field): dir not absolute, a glob empty, over 255 bytes or with '/', a name_time pattern without
// %Y %m %d, with an unknown conversion or a conversion twice, max_files 0.
Result<void> validate(const PruneSpec& spec) noexcept;

// Parses `pattern` (see PruneSpec::time_pattern) anywhere in `name`: the
// first position where it matches with valid fields wins. False when it
// matches nowhere or the time does not fit an int64 of ns.
bool parse_name_time(std::string_view pattern, std::string_view name,
                     std::int64_t& out_ns) noexcept;

// The decimal number right after the first occurrence of `prefix` that a
// digit follows. False when there is none or it overflows 64 bits.
bool parse_seq(std::string_view prefix, std::string_view name, std::uint64_t& out) noexcept;

// Fills e.classified, e.time_ns, e.seq and e.trusted_time by spec.order.
void classify(const PruneSpec& spec, entry& e, std::int64_t trust_floor_ns) noexcept;

// Decides for already classified entries. `order` needs entries.size()
// slots (it is sorted in place: classified entries newest first); `out`
// receives the decisions, oldest first, and `sum` the counts (scanned ..
// kept_bytes; a deletion that fails later is the caller's to count).
// Returns the number of decisions. Errors: CapacityExceeded (order is
// smaller than entries, or out smaller than the decisions: then none is
// returned and nothing may be deleted).
Result<std::uint32_t> decide(const PruneSpec& spec, std::span<const entry> entries,
                             std::span<std::uint32_t> order, const moment& now,
                             std::span<decision> out, PruneSummary& sum) noexcept;

} // namespace custos::prune
