// What the reactor reads of a monitor's slot (slot.hpp): the plain records
// the monitor's thread publishes and the sample the machine (machine.hpp)
// takes from its host. Values only: trivially copyable, no pointers into
// reactor state (the resolution points at a string literal, as Error's does).
#pragma once

#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/monitor.hpp>

namespace custos::mon {

// The "running, but its last operation failed" overlay, as set_degraded()
// and clear_degraded() leave it. It belongs to the run that wrote it: the
// machine ignores an overlay of an earlier run, so a new run starts clean
// without the monitor's thread having to clear it.
struct overlay_record {
    std::uint64_t run = 0; // the run that wrote it (0: never written)
    bool set = false;
    MonitorError error; // reason unknown when set() had none
    const char* resolution = nullptr;
    std::uint32_t resolution_len = 0;

    std::string_view resolution_text() const noexcept {
        return resolution == nullptr ? std::string_view{}
                                     : std::string_view(resolution, resolution_len);
    }
};

// Per-tick health, accumulated over every run of the monitor.
struct tick_record {
    std::uint64_t ticks = 0;
    std::uint64_t failures = 0;
    std::uint32_t consecutive_failures = 0;
    std::int64_t last_success_ns = 0; // CLOCK_MONOTONIC, 0: none
    MonitorError last_failure;        // at_ns: the last failed tick
};

// One read of a slot.
struct sample {
    // beat() calls and progress events (a beat without a token, or with a
    // token different from the previous one), both modulo 2^32: the reader
    // compares them with its previous sample.
    std::uint32_t beats = 0;
    std::uint32_t progress = 0;
    std::uint64_t token = 0; // the last token given to beat(token)
    overlay_record overlay;
    tick_record ticks;
};

} // namespace custos::mon
