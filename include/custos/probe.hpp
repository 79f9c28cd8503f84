// Dependency probes: what an appliance declares about the things it depends on
// but does not own (a broker, a cloud endpoint, a local API, a writable data
// partition), as plain data in the static table.
//
// Each probe runs a check (one kind below) on a two-phase schedule:
//   startup  the first check runs at start; while it fails, checks follow
//            with exponential backoff (startup_initial, x multiplier, capped
//            at startup_max) until the probe is ready or startup_tries have
//            failed. The state stays `unknown` during startup failures.
//   polling  then a check every `interval`, for ever: a probe never gives up,
//            recovery is found by a later poll. The first poll is jittered
//            (a random point in the second half of the interval) so probes
//            with the same interval do not fire in lockstep, and polls may
//            be delayed by a little slack to share a wake-up.
// States: unknown -> ready <-> down. `success_threshold` consecutive passes
// make it ready, `failure_threshold` consecutive failures (in polling, or
// when the startup tries run out) make it down. The hooks fire once per
// transition, never on each passing poll.
//
// Probes and services (ServiceSpec): depends_on may name probes (the service
// waits until they are ready), ReadyMode::probe makes a probe the readiness
// check of a service, `liveness` restarts a service when its probe goes from
// ready to down, and on_dependency_down decides what a service does when a
// dependency goes down at run time.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/error.hpp>
#include <custos/text.hpp>

namespace custos {

enum class ProbeKind : std::uint8_t {
    tcp,         // target "HOST:PORT" ("[v6]:PORT"): a connect succeeds in time
    http,        // target "http://HOST[:PORT][/PATH]": GET answers 2xx/3xx (or expect_status)
    unix_socket, // target "/path/to/socket": a stream connect succeeds
    exec,        // argv: exits 0 within the timeout (killed with its group on timeout)
    file,        // target "/path": exists, plus the optional owner/mode/writable checks
    all,         // members: every member passes; the first failure cancels the rest
};

enum class ProbeState : std::uint8_t { unknown, ready, down };
enum class ProbePhase : std::uint8_t { startup, polling };

// Stable lower-case names ("tcp", "ready", "polling").
std::string_view probe_kind_name(ProbeKind k) noexcept;
std::string_view probe_state_name(ProbeState s) noexcept;
std::string_view probe_phase_name(ProbePhase p) noexcept;

// One state change of one probe. `error` is the check's failure when the
// probe went down (Reason::unknown when it went ready).
struct ProbeTransition {
    std::uint32_t probe = 0;
    std::string_view name;
    ProbeState from = ProbeState::unknown;
    ProbeState to = ProbeState::unknown;
    Reason reason = Reason::unknown; // ProbePassed / ProbeRecovered, or the failure
    int sys_errno = 0;
    std::string_view message;    // what failed, e.g. "connect 10.0.0.2:1883: Connection refused"
    std::string_view resolution; // the probe's own, or the reason's default
    std::int64_t at_ns = 0;      // CLOCK_MONOTONIC
};

// Runs on the reactor thread; must not block.
using ProbeHook = void (*)(const ProbeTransition& t, void* ctx);

struct ProbeSpec {
    // 1-31 characters from [A-Za-z0-9._-], unique among services and probes.
    std::string_view name;
    ProbeKind kind = ProbeKind::tcp;
    // tcp, http, unix, file: what to check (see ProbeKind).
    std::string_view target;
    // exec: the program and its arguments; no shell. argv[0] absolute or in PATH.
    std::span<const std::string_view> argv;
    // all: names of other probes (composites may nest; no cycles).
    std::span<const std::string_view> members;
    // http: statuses that pass; empty: 200-399.
    std::span<const std::uint16_t> expect_status;
    // file: "user", "user:group" or ":group" the file must be owned by
    // (empty: not checked); permission bits that must all be set (-1: not
    // checked); and whether a temporary file can be created and removed in
    // the directory (a real write: read-only mounts, full disks, ACLs count).
    std::string_view owner;
    int mode = -1;
    bool writable = false;

    // Each check must finish within this time (whole check: name lookup,
    // connect, request and response).
    Duration timeout = std::chrono::seconds(10);
    Duration startup_initial = std::chrono::seconds(2);
    Duration startup_max = std::chrono::seconds(60);
    std::uint32_t startup_multiplier_x100 = 200;
    std::uint32_t startup_tries = 10; // >= 1
    Duration interval = std::chrono::seconds(60);
    std::uint32_t success_threshold = 1; // >= 1
    std::uint32_t failure_threshold = 1; // >= 1

    // Operator guidance that replaces the defaults in the probe's error:
    // `reason` is shown as the message, `resolution` as what to do.
    std::string_view reason;
    std::string_view resolution;

    // Called when the probe becomes ready / goes down (optional).
    // Counts toward the runtime's health: down for longer than `grace`
    // makes it `failed` (health.hpp); down for less, `degraded`.
    bool critical = false;
    Duration grace = std::chrono::seconds(60);

    ProbeHook on_ready = nullptr;
    ProbeHook on_down = nullptr;
    void* hook_ctx = nullptr;
};

// Longest failure message kept per probe (what failed, with the errno text).
inline constexpr std::size_t probe_message_capacity = 159;
// Longest resolution kept per probe: ProbeSpec::resolution is at most 200
// bytes (the validator enforces it); the defaults are shorter.
inline constexpr std::size_t probe_resolution_capacity = 200;

// Text fields are FixedText: they own their bytes and read like
// string_views, so a copy stays valid however long it is kept.
struct ProbeError {
    Reason reason = Reason::unknown;
    int sys_errno = 0;
    FixedText<probe_message_capacity> message;
    FixedText<probe_resolution_capacity> resolution;
    std::int64_t since_ns = 0; // the first failure of the current run of failures

    friend bool operator==(const ProbeError&, const ProbeError&) = default;
};

// A copy of one probe's status, owning its text (see ProbeError): valid
// however long it is kept, on any thread. Once Runtime::probe_status() reads
// it from the published status snapshot (being wired; until then, call it on
// the reactor thread only), probe_status() is safe to call from any thread.
struct ProbeStatus {
    FixedText<name_capacity> name;
    ProbeKind kind = ProbeKind::tcp;
    ProbeState state = ProbeState::unknown;
    ProbePhase phase = ProbePhase::startup;
    bool checking = false;          // a check is in flight
    std::int64_t last_check_ns = 0; // start of the last finished check (0: none)
    std::int64_t last_success_ns = 0;
    std::int64_t last_failure_ns = 0;
    std::int64_t next_check_ns = 0;
    std::uint32_t consecutive_successes = 0;
    std::uint32_t consecutive_failures = 0;
    std::uint32_t startup_tries = 0; // checks done in the startup phase
    std::uint64_t checks = 0;
    std::uint64_t failures = 0;
    ProbeError last_error; // reason unknown: never failed

    friend bool operator==(const ProbeStatus&, const ProbeStatus&) = default;
};

} // namespace custos
