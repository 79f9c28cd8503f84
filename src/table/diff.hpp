// What a reload compares: two tables, entry by entry, every field.
//
// A service is the same when every field of its spec is (lists element by
// element, in order) and so is what the plan resolved for it (the
// executable's path, the user and group ids): a new binary at another
// place in PATH, or a user whose uid changed, is a change; probes alike.
// The sections a reload does not apply (the runtime settings, the
// monitors, the watchdog, the control plane, the [log] section) are compared
// whole:
// first_unsupported() names the first that differs, for ReloadUnsupported.
//
// Pure functions over the public types: no state, no allocation.
#pragma once

#include <span>
#include <string_view>

#include <custos/table.hpp>

#include "table/plan.hpp"

namespace custos::tbl {

bool same_service(const ServiceSpec& a, const ServiceSpec& b) noexcept;
// The same, with what each plan resolved for it.
bool same_service(const ServiceSpec& a, const service_plan& pa, const ServiceSpec& b,
                  const service_plan& pb) noexcept;
bool same_probe(const ProbeSpec& a, const ProbeSpec& b) noexcept;
// The same, with what each plan resolved for it (the program's path, the
// owner's ids); a composite's members are compared by name only: whether a
// member changed is the caller's to follow.
bool same_probe(const ProbeSpec& a, const probe_plan& pa, const ProbeSpec& b,
                const probe_plan& pb) noexcept;
bool same_monitor(const MonitorSpec& a, const MonitorSpec& b) noexcept;
bool same_runtime(const RuntimeConfig& a, const RuntimeConfig& b) noexcept;
bool same_watchdog(const WatchdogConfig& a, const WatchdogConfig& b) noexcept;
bool same_control(const ControlConfig& a, const ControlConfig& b) noexcept;
bool same_log(const LogConfig& a, const LogConfig& b) noexcept;

// The first part of `b` a reload cannot apply over `a`, as an operator
// reads it ("[custos] settings", "monitors (2 before, 3 now)",
// "monitor 'x'", "[watchdog]", "[control]", "[log]"), written to `out`
// (NUL-terminated); empty when there is none.
std::string_view first_unsupported(const Table& a, const Table& b, char* out,
                                   std::size_t cap) noexcept;

} // namespace custos::tbl
