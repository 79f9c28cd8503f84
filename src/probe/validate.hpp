// Validation of a table's probes, and of how services refer to them.
//
// validate_probes() checks every ProbeSpec before anything starts and reports
// every problem, each tied to a probe and the field at fault, so custosd can
// print FILE:LINE for each and Runtime::init() can return the first. Checks:
// names well-formed and unique (among probes and services); the target
// parses for its kind (tcp HOST:PORT, http URL, absolute unix/file path);
// exec argv present and its program executable; file owner names known and
// mode bits in range; composite members known, not empty and acyclic; value
// ranges (timeouts, backoff, tries, thresholds); capacities. Services are
// checked by sup::validate_table() with validate_options::probes set: their
// depends_on, ready_probe and liveness may name probes.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/service.hpp>

namespace custos::probe {

// The ProbeSpec field a problem is about (custosd maps it to a line).
enum class probe_field : std::uint8_t {
    section, // the probe as a whole (capacity, no kind given)
    name,
    target, // the kind's key: tcp, http, unix, exec, file or all (target, argv, members)
    expect_status,
    owner,
    mode,
    writable,
    timeout,
    startup_initial,
    startup_max,
    startup_multiplier,
    startup_tries,
    interval,
    success_threshold,
    failure_threshold,
    reason,
    resolution,
};

inline constexpr std::size_t probe_field_count = 17;

class probe_problem_sink {
public:
    // `probe` indexes the probe table; UINT32_MAX for a problem of the whole
    // table (capacity).
    virtual void report(std::uint32_t probe, probe_field field, const Error& e) noexcept = 0;

protected:
    ~probe_problem_sink() = default;
};

struct probe_validate_options {
    std::uint32_t max_probes = 64;
    std::uint32_t max_checks = 256; // check instances, composites expanded
    bool check_executables = true;  // exec probes: look the program up
    bool resolve_users = true;      // file probes: resolve owner names
};

// Reports every problem to `sink` (may be null); returns how many there
// were. `services` is only used for name clashes between probes and services.
std::uint32_t validate_probes(std::span<const ProbeSpec> probes,
                              std::span<const ServiceSpec> services,
                              const probe_validate_options& opt, probe_problem_sink* sink) noexcept;

// Check instances the probes need: one per probe, plus one per composite
// member, recursively (a member reached through two composites counts
// twice). Saturates at UINT32_MAX; a cycle counts as UINT32_MAX.
std::uint32_t count_checks(std::span<const ProbeSpec> probes) noexcept;

// A file probe's owner: -1 for a part not checked.
struct owner_ids {
    long uid = -1;
    long gid = -1;
};

// Parses and resolves "user", "user:group", ":group" (names or numbers).
// Errors: InvalidArgument (empty parts, too long), UserUnknown,
// GroupUnknown (supervise/users.hpp: /etc/passwd and /etc/group, not
// NSS). Init time only: it reads those files.
Result<owner_ids> resolve_owner(std::string_view owner) noexcept;

// Index of the probe called `name`, or UINT32_MAX.
std::uint32_t find_probe(std::span<const ProbeSpec> probes, std::string_view name) noexcept;

} // namespace custos::probe
