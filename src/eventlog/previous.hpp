// How the previous run ended, told from the event log alone: the stop
// record an orderly stop writes last, and the record the next run makes of
// the log's last line (files.hpp's last_record), without a watchdog.
//
// Owns: nothing; pure functions of their arguments (the runtime reads the
// log's tail at open and the watchdog's boot status, and emits the result).
//
// The previous run ended:
//   with its stop record (kind log, name custos, RuntimeStop) last
//                                   PreviousBootOrderly (its exit status)
//   without it, in this same boot   PreviousBootRestarted (killed, crashed)
//   without it, the board rebooted since, and the watchdog's boot status
//     has WDIOF_CARDRESET           PreviousBootWatchdog
//     has not, or is unreadable     PreviousBootUnreported (power loss, a
//                                   reset the driver does not report, a
//                                   reboot that bypassed custos)
//   without it, boot unknown (no boot_id on either side)
//                                   PreviousBootUnreported
//   no earlier record (a new or empty log): no record at all.
// "Without it" covers a crash, kill -9, a power loss, a reset, and a stop
// record that could not reach the disk (ENOSPC at the stop): the record
// names the last seq and time that did. CARDRESET is reported beside an
// orderly end too (the board was reset after custos stopped), without
// changing its class: the same precedence as the watchdog's reset record
// (ports/reset_record.hpp classify_boot).
#pragma once

#include <cstdint>
#include <string_view>

#include "eventlog/files.hpp"
#include "eventlog/record.hpp"

namespace custos::eventlog {

// WDIOF_CARDRESET (linux/watchdog.h): "the watchdog reset the board".
inline constexpr std::uint32_t boot_status_cardreset = 0x20;

// The last record of an orderly stop: kind log, name custos, RuntimeStop,
// the exit status as {"code":N}; notice, or warning for a non-zero status.
record stop_record(int exit_status, std::int64_t mono_ns, std::int64_t wall_ns, int pid) noexcept;

// Whether the log's last line was an orderly stop's record.
bool is_stop_record(const last_record& r) noexcept;

// The watchdog's boot status (WDIOF_* bits) as far as it is known.
struct boot_status {
    bool known = false; // read (sysfs bootstatus, or the device's ioctl)
    std::uint32_t bits = 0;
};

// The record of how the previous run ended (see the top of this file):
// kind log, name custos, the reason, level, message (its last seq, time
// and reason; whether the board rebooted; the boot status) and the same
// facts as fields (prev_seq, prev_boot_id, prev_reason, rebooted
// yes|no|unknown, bootstatus 0xNN|unknown).
// False when `prev` holds no record: nothing to say.
bool previous_run_record(const last_record& prev, std::string_view boot_id, boot_status bs,
                         std::int64_t mono_ns, std::int64_t wall_ns, record& out) noexcept;

} // namespace custos::eventlog
