// The record: the event log, the services' captured output, and the
// appliance's own events.
//
// The event log is one JSON object per line for every event on the stream
// (services, probes, monitors, the watchdog, health, control actions, the
// pruner, the log itself) and for every custom event the embedding daemon
// appends with log_event(). Records are kept in a RAM ring (GET /events,
// `custosctl events`) and, with LogConfig::dir, in rotating files
// dir/events-<seq>-<UTC>.jsonl. Captured output (ServiceSpec::output) goes
// to a RAM ring per service and, with a dir, to dir/<service>/ files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/duration.hpp>

namespace custos {

// Where a service's stdout and stderr go.
enum class OutputMode : std::uint8_t {
    automatic, // file when LogConfig::dir is set, else ring
    file,      // the RAM ring and dir/<service>/ files (needs LogConfig::dir)
    ring,      // only the RAM ring (custosctl logs)
    inherit,   // custos's own stdout and stderr, as they are
    null,      // /dev/null
};

// Stable lower-case name ("auto", "file", "ring", "inherit", "null").
std::string_view output_mode_name(OutputMode m) noexcept;

// Whether the wall clock can be believed (the records' clock_trusted, the
// pruner's age rules, file names): automatic = once it is at or after
// 2024-01-01 and either the kernel says it is synchronised (NTP, chrony,
// timesyncd: adjtimex without STA_UNSYNC) or it was set from a real-time
// clock at boot (/sys/class/rtc/rtcN/hctosys). A board without an RTC
// stays untrusted until its time is synchronised.
enum class ClockTrust : std::uint8_t { automatic, trusted, untrusted };

struct LogConfig {
    // The event log's and the captured output's directory (made, not its
    // parents, mode 0750; a relative one is taken from the working
    // directory at init). Empty: the RAM rings only.
    std::string_view dir;
    // Event log files: each up to max_file_bytes (a line is never split),
    // at most max_files of them (the current one counts): the oldest go.
    std::uint64_t max_file_bytes = 256 * 1024;
    std::uint32_t max_files = 8;
    // Encoded records kept in RAM for GET /events and `custosctl events`.
    std::uint32_t ring_bytes = 64 * 1024;
    // Identical repeated transitions of one subject within this window are
    // one record with a count (a crash loop cannot flush the log).
    Duration fold_window = std::chrono::seconds(10);
    // Routine records reach the disk within this (batched fdatasync);
    // watchdog starvation, giving up and the boot record at once.
    Duration sync_interval = std::chrono::seconds(5);
    // Captured output: per service, files of up to output_file_bytes, at
    // most output_files of them, and a RAM ring of output_ring_bytes.
    std::uint64_t output_file_bytes = 256 * 1024;
    std::uint32_t output_files = 4;
    std::uint32_t output_ring_bytes = 16 * 1024;
    // See ClockTrust; trusted or untrusted override the detection.
    ClockTrust clock = ClockTrust::automatic;
};

// A custom record's level (as the log writes it: "debug" .. "critical").
enum class LogLevel : std::uint8_t { debug, info, notice, warning, error, critical };

// One extra member of a custom record: "key": "value".
struct LogField {
    std::string_view key;
    std::string_view value;
};

// Appends a custom record (kind "custom") to the event log of the running
// Runtime (the last one whose start() ran and that has not been
// destroyed), from any thread, without blocking and without allocating:
// `reason` is the appliance's own stable id ("UploadFailed", 1-31
// characters from [A-Za-z0-9_.-]), `message` a line for the operator,
// `fields` extra members (keys [a-z0-9_], at most log_field_max, cut to
// log_fields_bytes encoded), `name` the subject, if any. False when the
// record was dropped: no runtime, a bad reason or key, or the ring from
// the appliance's threads to the reactor full (counted; one record says
// how many were lost once the ring has room again).
bool log_event(std::string_view reason, std::string_view message,
               std::span<const LogField> fields = {}, LogLevel level = LogLevel::info,
               std::string_view name = {}) noexcept;

inline constexpr std::size_t log_field_max = 8;
inline constexpr std::size_t log_fields_bytes = 192;

} // namespace custos
