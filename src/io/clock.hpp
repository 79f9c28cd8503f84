// The wall clock: whether it can be believed.
//
// A board without a real-time clock boots in 1970 (or at its image's build
// time) and learns the time from the network later, if ever. Records,
// retention by age and file names must know which times mean something.
#pragma once

#include <cstdint>

#include <custos/log.hpp>

namespace custos::io {

// Whether the wall clock reading `wall_ns` is known to be set (see
// ClockTrust in log.hpp): `mode` trusted or untrusted decides alone;
// automatic needs wall_ns at or after 2024-01-01T00:00:00Z and either
// adjtimex() saying the clock is synchronised or an RTC that set it at boot
// (/sys/class/rtc/rtc0..rtc3/hctosys = 1). One adjtimex() call and, when
// that says unsynchronised, up to four small reads: call it now and then
// (a minute apart), not per record.
bool wall_clock_trusted(ClockTrust mode, std::int64_t wall_ns) noexcept;

} // namespace custos::io
