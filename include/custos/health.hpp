// One health for the whole appliance, derived from its services, probes and
// monitors.
//
// Each service, probe and monitor is `critical` or not (default: not):
//   starting  the start has not settled: some wanted service is neither
//             ready nor failed, some probe is still `unknown`, or some
//             wanted monitor is still waiting; bounded by
//             RuntimeConfig::boot_grace, after which the rules below apply
//             to whatever has not settled;
//   failed    a critical service `failed`, a critical monitor `wedged`, or
//             a critical probe `down` for longer than its grace (counted
//             from the first failed check of the run that took it down);
//             this holds during the start too: a critical failure is not
//             hidden behind `starting`;
//   degraded  anything else that is not as wanted: a wanted service not
//             ready, a probe down (or still unknown after the boot grace),
//             a wanted monitor not running (backoff, wedged, degraded,
//             waiting, stopping), critical ones included while not yet
//             `failed`;
//   ok        everything wanted is ready or running.
// With it come its reasons: each subject that is not as wanted, with its
// reason, message, resolution and since, critical ones first. The hardware
// watchdog's feed gate and the control plane's /health read it; every
// change is reported to the health hook and to the notify paths upward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>
#include <custos/text.hpp>

namespace custos {

enum class Health : std::uint8_t { starting, ok, degraded, failed };

inline constexpr std::size_t health_count = 4;

// Stable lower-case name ("degraded").
std::string_view health_name(Health h) noexcept;

enum class SubjectKind : std::uint8_t { service, probe, monitor };

// Stable lower-case name ("service").
std::string_view subject_kind_name(SubjectKind k) noexcept;

// Longest message and resolution a health reason keeps.
inline constexpr std::size_t health_message_capacity = 127;
inline constexpr std::size_t health_resolution_capacity = 200;

// One subject that is not as wanted.
struct HealthReason {
    SubjectKind kind = SubjectKind::service;
    std::uint32_t index = 0; // in its span of the table
    bool critical = false;
    // Whether this subject alone makes health `failed`.
    bool fails = false;
    FixedText<name_capacity> name;
    // Its state ("failed", "down", "wedged"), and why.
    FixedText<15> state;
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    FixedText<health_message_capacity> message;
    FixedText<health_resolution_capacity> resolution;
    std::int64_t since_ns = 0; // CLOCK_MONOTONIC: since when it is so

    friend bool operator==(const HealthReason&, const HealthReason&) = default;
};

// Reasons kept in a HealthStatus; HealthStatus::reason_total counts all.
inline constexpr std::size_t health_reason_capacity = 8;
// Longest one-line summary ("12/12 ready", "degraded: uploader failed
// (MaxRestartsExhausted)"): what STATUS= carries upward.
inline constexpr std::size_t health_summary_capacity = 159;

struct HealthStatus {
    Health health = Health::starting;
    std::int64_t since_ns = 0; // CLOCK_MONOTONIC: since when health is this
    // The start has settled (or boot_grace ran out): `starting` is over.
    bool settled = false;
    // Every critical service is ready (what READY=1 waits for, with settled).
    bool critical_ready = false;
    std::uint32_t services = 0; // wanted
    std::uint32_t services_ready = 0;
    std::uint32_t probes = 0;
    std::uint32_t probes_ready = 0;
    std::uint32_t monitors = 0; // wanted
    std::uint32_t monitors_running = 0;
    // Critical first, then table order: services, probes, monitors.
    std::uint32_t reason_total = 0;
    std::uint32_t reason_count = 0; // <= health_reason_capacity
    HealthReason reasons[health_reason_capacity];
    FixedText<health_summary_capacity> summary;

    friend bool operator==(const HealthStatus&, const HealthStatus&) = default;
};

// Runs on the reactor thread on every change of health or of its reasons;
// must not block.
using HealthHook = void (*)(const HealthStatus& h, void* ctx);

} // namespace custos
