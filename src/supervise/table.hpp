// Validation of a static supervision table, and the graph computed from it.
//
// validate_table() checks a whole table before anything starts and reports
// every problem it finds, each tied to a service and the field at fault, so
// custosd can print FILE:LINE for each and Runtime::init() can return the
// first. Checks: names well-formed and unique; dependencies known and
// acyclic (the error's subject spells the cycle, "a -> b -> a"); field
// values in range; capacity; executables present and executable; users and
// groups known.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/service.hpp>

namespace custos::sup {

// The ServiceSpec field a problem is about (custosd maps it to a line).
enum class spec_field : std::uint8_t {
    section, // the service as a whole
    name,
    argv,
    env,
    cwd,
    user,
    group,
    restart,
    backoff_initial,
    backoff_max,
    backoff_multiplier,
    backoff_jitter,
    stable_after,
    max_restarts,
    intensity, // intensity_restarts / intensity_window (restart_limit = N/T)
    start_delay,
    depends_on,
    ready,
    ready_timeout,
    watchdog,
    stop_signal,
    stop_timeout,
    liveness,
    on_dependency_down,
};

inline constexpr std::size_t spec_field_count = 24;

class problem_sink {
public:
    // `service` indexes the table; UINT32_MAX when the problem is the table's
    // (capacity).
    virtual void report(std::uint32_t service, spec_field field, const Error& e) noexcept = 0;

protected:
    ~problem_sink() = default;
};

struct validate_options {
    std::uint32_t max_services = 64;
    // Look executables up (PATH for bare names) and check they are
    // executable files. Off only in tests of the pure logic.
    bool check_executables = true;
    // Resolve users and groups (supervise/users.hpp: the files, not NSS),
    // from these files; tests point them at files of their own.
    bool resolve_users = true;
    const char* passwd_path = "/etc/passwd";
    const char* group_path = "/etc/group";
    // The table's probes: depends_on may name them, ReadyMode::probe's
    // ready_probe and liveness must (ProbeUnknown otherwise), and a service
    // may not share a probe's name. The probes themselves are checked by
    // probe::validate_probes().
    std::span<const ProbeSpec> probes{};
};

// Reports every problem to `sink` (may be null) and returns how many there
// were: 0 means the table is valid.
std::uint32_t validate_table(std::span<const ServiceSpec> table, const validate_options& opt,
                             problem_sink* sink) noexcept;

// Whether `n` is a valid service or probe name: 1-31 characters from
// [A-Za-z0-9._-].
bool name_valid(std::string_view n) noexcept;

// Finds the executable for argv[0]: itself when it contains '/', else the
// first PATH entry holding an executable file of that name. Writes the path
// into `out` (NUL-terminated). Errors: ExecutableMissing (errno ENOENT,
// EACCES, ENAMETOOLONG...).
Result<void> resolve_executable(std::string_view argv0, char* out, std::size_t out_len) noexcept;

} // namespace custos::sup
