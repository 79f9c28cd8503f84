// The health model: one Health (include/custos/health.hpp) derived from the
// status of every service, probe and monitor.
//
// Owns: derive() owns nothing: it is a pure function of a health_input (the
// status records, the critical flags, the graces, the clock), testable
// without a runtime. health_model keeps the current HealthStatus, latches
// `settled`, stamps `since_ns` when the health value changes and says when
// anything a listener cares about changed.
//
// The rules (health.hpp states them; the choices made here):
//   wanted      a service or monitor in any state but `stopped`; every probe.
//   as wanted   a service `ready`, a monitor `running` (not its `degraded`
//               overlay), a probe `ready`.
//   settled     every wanted service `ready` or `failed`, every probe out of
//               `unknown`, every wanted monitor out of `waiting`; or
//               boot_grace has passed since the start (boot_grace 0: at the
//               start). Latched: once settled, a restart later is
//               `degraded`, never `starting` again. Not started
//               (started_ns 0): never settled.
//   failed      a critical service `failed`, a critical monitor `wedged`, or
//               a critical probe `down` for at least its grace. The grace
//               counts from ProbeStatus::last_error.since_ns, the first
//               failure of the run of failures that took the probe down (so
//               failure_threshold x interval is part of it); when that is 0,
//               from last_failure_ns; when both are 0, the probe is past its
//               grace. `failed` wins over `starting`: a critical service that
//               fails during the boot makes health `failed` at once.
//   starting    not settled and not failed: what is not yet as wanted is
//               the start still running, not a degradation.
//   degraded    settled, and some subject is not as wanted (a probe still
//               `unknown` after the boot grace included).
//   ok          settled, and everything wanted is as wanted.
// Reasons: every subject not as wanted, in three tiers (those that make
// health `failed`; other critical ones; the rest), table order within each
// tier (services, probes, monitors); the first health_reason_capacity are
// kept, reason_total counts all. Reasons are listed while starting too.
//
// Invariants: no allocation, no system call; derive() reads only its input.
#pragma once

#include <cstdint>
#include <span>

#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/service.hpp>

namespace custos::status {

// Everything the health depends on. Flag and grace spans are indexed like
// the status spans; an entry missing from one (a shorter span) counts as
// not critical / a grace of 0.
struct health_input {
    std::span<const ServiceStatus> services;
    std::span<const bool> service_critical;
    std::span<const ProbeStatus> probes;
    std::span<const bool> probe_critical;
    std::span<const std::int64_t> probe_grace_ns; // ProbeSpec::grace
    std::span<const MonitorStatus> monitors;      // MonitorStatus::critical
    std::int64_t boot_grace_ns = 0;               // RuntimeConfig::boot_grace
    std::int64_t started_ns = 0;                  // CLOCK_MONOTONIC; 0: not started
    std::int64_t now_ns = 0;                      // CLOCK_MONOTONIC
    // The start settled before (health_model passes its latch).
    bool settled = false;
};

// Fills `out` from `in` (all of it but since_ns, which is left as it was:
// health_model stamps it). Returns the next time (CLOCK_MONOTONIC ns) at
// which the result may change with no event, or 0 for never: the end of the
// boot grace while not settled, or a critical probe's grace running out.
// The runtime arms one timer for it and calls derive() again then.
std::int64_t derive(const health_input& in, HealthStatus& out) noexcept;

// The current health, kept across derivations.
class health_model {
public:
    health_model() noexcept = default;
    health_model(const health_model&) = delete;
    health_model& operator=(const health_model&) = delete;

    // Derives again (with the model's own settled latch in place of
    // in.settled). True when something a listener cares about changed: the
    // health value, settled, critical_ready, the reasons (count, total or any
    // field of a kept one) or the summary; always true on the first call.
    // since_ns becomes in.now_ns when the health value changes (and on the
    // first call).
    bool update(const health_input& in) noexcept;

    const HealthStatus& current() const noexcept { return cur_; }
    // The health before the last update() that changed its value (starting
    // before any).
    Health previous() const noexcept { return prev_; }
    // What derive() last returned: when to call update() again with no
    // event (0: no need).
    std::int64_t next_deadline_ns() const noexcept { return next_ns_; }

private:
    HealthStatus cur_;
    HealthStatus next_; // scratch: HealthStatus is a few KiB, kept off the stack
    Health prev_ = Health::starting;
    std::int64_t next_ns_ = 0;
    bool first_ = true;
};

} // namespace custos::status
