// The reset record: what custos keeps in WatchdogConfig::state_file so
// that the next boot knows how this one ended.
//
// The file is text, a few hundred bytes, readable with cat at 3 a.m.:
//
//   custos-watchdog 1
//   state starving
//   boot_id 0f5c...-...
//   wall_ns 1796000000000000000
//   reason ServiceFailed
//   subject service uploader
//   message failed: uploader failed (MaxRestartsExhausted)
//   counters 12 3 2 1 6 0       boots orderly starved watchdog unreported restarted
//   recent 1795990000000000000 1795999000000000000
//   crc 1a2b3c4d
//
// `crc` is the CRC-32 (IEEE) of every byte before the "crc " line; a file
// whose crc, magic or fields do not check is corrupt (a torn write cannot
// happen: it is written to PATH.tmp, fsynced, renamed over PATH, and the
// directory fsynced; but flash can still lose it). `recent` holds the wall
// times of the watchdog-caused boots since the last orderly stop, newest
// last, at most reset_record_recent (what safe mode counts).
//
// Writes happen on a change of state only (running at start, starving,
// running again after a recovery, orderly at the stop): never per feed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/text.hpp>
#include <custos/watchdog.hpp>

namespace custos::ports {

enum class record_state : std::uint8_t { running, starving, orderly };

// Stable lower-case name ("starving"), as the file has it.
std::string_view record_state_name(record_state s) noexcept;

inline constexpr std::size_t reset_record_recent = 8;
// The longest file format_record() writes.
inline constexpr std::size_t reset_record_max_bytes = 1024;

struct reset_record {
    record_state state = record_state::running;
    FixedText<36> boot_id;
    std::int64_t wall_ns = 0; // CLOCK_REALTIME when written
    Reason reason = Reason::unknown;
    FixedText<watchdog_text_capacity> subject; // no newline (replaced by ' ')
    FixedText<watchdog_text_capacity> message; // no newline (replaced by ' ')
    WatchdogCounters counters;
    std::int64_t recent[reset_record_recent] = {};
    std::uint32_t recent_count = 0;
};

// The text above, NUL-terminated when len > 0; returns the length the
// whole text needs (like snprintf).
std::size_t format_record(const reset_record& r, char* buf, std::size_t len) noexcept;
// Parses and checks it. reset_record_corrupt (with what is wrong as the
// subject: "crc", "magic", "line 4") for anything that does not check;
// an unknown reason id parses as Reason::unknown, not corrupt.
Result<reset_record> parse_record(std::string_view text) noexcept;
// Reads `path`. Every failure is reset_record_corrupt, told apart by
// sys_errno(): ENOENT for a missing file, 0 for a damaged one, another
// errno for one that could not be read.
Result<reset_record> read_record(const char* path) noexcept;
// Writes PATH.tmp, fsyncs it, renames it over `path`, fsyncs the
// directory. reset_record_unwritable with the errno on any failure (the
// old file is then left as it was).
Result<void> write_record(const char* path, const reset_record& r) noexcept;

// What init makes of the previous record.
struct boot_verdict {
    PreviousBoot previous;
    // The record to write now: state running, this boot's id, the
    // counters with this boot counted (a restart in the same boot is
    // counted as `restarted`, not as a boot), `recent` updated.
    reset_record next;
    // Whether this boot starts in safe mode, and how many
    // watchdog-caused boots counted towards it.
    bool safe_mode = false;
    std::uint32_t streak = 0;
    // The file was damaged (reset_record_corrupt to report).
    bool corrupt = false;
};

// Classifies the previous boot:
//   no record (ENOENT)              unknown (the first boot recorded)
//   damaged or unreadable           unknown, corrupt = true, counters anew
//   record of this same boot_id     restarted (state running or starving:
//                                   custos ended without an orderly stop),
//                                   orderly when it says orderly
//   state orderly                   orderly (recent cleared)
//   state starving                  starved, with its reason and subject
//   state running, CARDRESET        watchdog
//   state running, no CARDRESET     unreported
// starved and watchdog boots are appended to `recent` (oldest dropped when
// full). Safe mode: safe_mode_boots > 0 and at least that many entries of
// `recent` are within `window_ns` of `wall_now_ns` (an entry later than
// now, a clock that stepped back, counts as within).
boot_verdict classify_boot(const Result<reset_record>& prev, std::string_view boot_id,
                           std::uint32_t boot_status, std::int64_t wall_now_ns,
                           std::uint32_t safe_mode_boots, std::int64_t window_ns) noexcept;

// This boot's id (/proc/sys/kernel/random/boot_id), or "" when unreadable.
FixedText<36> read_boot_id() noexcept;

// The first watchdog's boot status (WDIOF_* bits; WDIOF_CARDRESET: it
// reset the board) from <sysfs_root>/class/watchdog/watchdog0/bootstatus,
// read without opening the device (opening it would arm it). Needs
// CONFIG_WATCHDOG_SYSFS. watchdog_unavailable with the errno when it
// cannot be read (ENOENT: no watchdog, or no sysfs attribute), EINVAL when
// it is not a decimal number, ENAMETOOLONG for a root too long. 0 is also
// "unknown": many drivers never set it (PLATFORM.md §2).
Result<std::uint32_t> read_sysfs_boot_status(std::string_view sysfs_root) noexcept;

} // namespace custos::ports
