// The probe machine: the schedule and the state of every probe of a table.
// Pure logic, like the supervisor: it never calls the kernel. Checks are run
// by the host (the runtime, over the check engine; tests, with a fake
// transport), timers are the host's, and every result comes back through
// on_result().
//
// Per probe, two phases (see include/custos/probe.hpp for the contract):
//   startup  check at once; after a failure wait `delay` (startup_initial,
//            x multiplier per failure, capped at startup_max) and check
//            again; every check counts as a try. Leaves for polling when
//            the probe becomes ready or `startup_tries` checks are done
//            (then the probe goes down, unless it is ready).
//   polling  the first poll at a random point of the second half of the
//            interval (jitter), then every `interval` from when the previous
//            one was due; timers carry slack (interval / 8, at most 15 s) so
//            the reactor can coalesce wake-ups, and the slack never
//            accumulates into drift. Never ends.
// States: unknown -> ready <-> down, on thresholds of consecutive results.
// A transition is reported once (spec hooks, then host::transition); a
// passing poll of a ready probe reports nothing.
//
// Invariants: at most one check of a probe is in flight; while one is, the
// probe's timer is idle. A check cancelled by the machine (restart_startup,
// stop_all) has its result discarded: it changes no counter and no state.
#pragma once

#include <cstdint>
#include <span>

#include <custos/probe.hpp>

#include "core/arena.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"

namespace custos::probe {

// The outcome of one check.
struct check_result {
    static constexpr std::size_t message_capacity = 159;

    Reason reason = Reason::unknown; // unknown: passed
    int sys_errno = 0;
    char message[message_capacity + 1] = {}; // what failed, with the errno text

    bool passed() const noexcept { return reason == Reason::unknown; }
    void pass() noexcept {
        reason = Reason::unknown;
        sys_errno = 0;
        message[0] = '\0';
    }
    // Records a failure; printf-style message, truncated to fit.
    [[gnu::format(printf, 4, 5)]] void fail(Reason r, int err, const char* fmt, ...) noexcept;
};

class machine_host {
public:
    virtual mono_time now() noexcept = 0;
    virtual void arm(io::timer& t, mono_time deadline, nanos slack) noexcept = 0;
    virtual void cancel(io::timer& t) noexcept = 0;
    // Starts probe `p`'s check, to finish by `deadline`. Its result comes
    // back through machine::on_result(), never from inside this call.
    virtual void start_check(std::uint32_t p, mono_time deadline) noexcept = 0;
    // Asks the check in flight to end early; on_result() still follows.
    virtual void cancel_check(std::uint32_t p) noexcept = 0;
    // After every counted check (state already updated), with the time it
    // started: a readiness probe's service is ready on a pass that started
    // after its spawn.
    virtual void checked(std::uint32_t p, bool passed, mono_time started) noexcept = 0;
    // After every state change (and after the spec's own hooks ran).
    virtual void transition(const ProbeTransition& t) noexcept = 0;
    // A random 64-bit value, for jitter.
    virtual std::uint64_t random() noexcept = 0;

protected:
    ~machine_host() = default;
};

struct probe_unit {
    // From the spec (strings copied into the machine's arena).
    std::string_view name;
    ProbeKind kind = ProbeKind::tcp;
    nanos timeout{0};
    nanos startup_initial{0};
    nanos startup_max{0};
    std::uint32_t multiplier_x100 = 200;
    std::uint32_t startup_tries = 1;
    nanos interval{0};
    std::uint32_t success_threshold = 1;
    std::uint32_t failure_threshold = 1;
    std::string_view reason_text;     // operator override of the message
    std::string_view resolution_text; // operator override of the resolution
    ProbeHook on_ready = nullptr;
    ProbeHook on_down = nullptr;
    void* hook_ctx = nullptr;
    // The texts' room (name, reason, resolution), fixed at init.
    char* text = nullptr;
    std::uint32_t text_room = 0;

    // State.
    ProbeState state = ProbeState::unknown;
    ProbePhase phase = ProbePhase::startup;
    bool active = false;   // started and not stopped
    bool checking = false; // a check is in flight
    bool discard = false;  // the check in flight was cancelled by the machine
    bool rerun = false;    // ... and a new one starts when it returns
    nanos delay{0};        // the next startup backoff
    std::uint32_t tries = 0;
    std::uint32_t consecutive_successes = 0;
    std::uint32_t consecutive_failures = 0;
    std::uint64_t checks = 0;
    std::uint64_t failures = 0;
    mono_time check_started{};
    mono_time planned{}; // when the check in flight was due (its timer's deadline)
    mono_time last_check{};
    mono_time last_success{};
    mono_time last_failure{};
    mono_time next_check{};
    // The last failure.
    Reason error_reason = Reason::unknown;
    int error_errno = 0;
    mono_time error_since{};
    char error_message[check_result::message_capacity + 1] = {};

    io::timer timer;
    class machine* owner = nullptr;
    std::uint32_t index = 0;       // the slot
    std::uint32_t table_index = 0; // in the table (ProbeTransition::probe)
};

class machine {
public:
    explicit machine(machine_host& h) noexcept : host_(h) {}
    machine(const machine&) = delete;
    machine& operator=(const machine&) = delete;

    // Room for a unit's texts (name, reason and resolution overrides) in a
    // slot that a reload may fill: at least this, or its probe's own.
    static constexpr std::uint32_t text_bytes = 128;

    // Lays the probes out in `mem` (validated: see tbl::validate()), in
    // `slots` units (at least the probes): the first hold the probes, the
    // rest are vacant until redefine(). Call with an arena without a block
    // to measure, then with one that big. Errors: OutOfMemory when the
    // arena is too small.
    Result<void> init(std::span<const ProbeSpec> probes, arena& mem,
                      std::uint32_t slots = 0) noexcept;

    // Reload, one slot at a time.
    // Slot `p` becomes `s`, stopped: start() starts it. Fresh (no counter,
    // no error), in state unknown unless `keep_state` (a changed probe
    // keeps ready or down until its new checks say otherwise). Its
    // schedule and any check in flight are forgotten first (the host drops
    // that check's result: on_result() must not see it). Errors, with
    // nothing changed: ReloadCapacity (the texts do not fit the slot's
    // room).
    Result<void> redefine(std::uint32_t p, const ProbeSpec& s, bool keep_state = false) noexcept;
    // Slot `p` becomes vacant, as redefine() forgets.
    void vacate(std::uint32_t p) noexcept;
    bool vacant(std::uint32_t p) const noexcept { return units_[p].name.empty(); }
    // Starts slot `p`'s startup phase (as start_all() does for each).
    void start(std::uint32_t p) noexcept;
    // The index slot `p`'s probe has in the current table (what its
    // transitions carry): the slot itself until a reload says otherwise.
    void renumber(std::uint32_t p, std::uint32_t table_index) noexcept {
        units_[p].table_index = table_index;
    }
    // Whether `s` fits slot `p`'s room (redefine() succeeds).
    bool fits(std::uint32_t p, const ProbeSpec& s) const noexcept {
        return s.name.size() + s.reason.size() + s.resolution.size() <= units_[p].text_room;
    }

    // Starts every probe's startup phase: each checks at once.
    void start_all() noexcept;
    // Stops every schedule and cancels the checks in flight.
    void stop_all() noexcept;
    // Runs probe `p`'s check now unless one is in flight; the schedule goes
    // on from its result.
    void check_now(std::uint32_t p) noexcept;
    // Starts probe `p`'s startup phase over (a fresh check now, fast
    // backoff): its service was just spawned. A check in flight is
    // cancelled and its result discarded. The state is kept.
    void restart_startup(std::uint32_t p) noexcept;
    // Cancels the check in flight (its result is discarded) and schedules
    // the next by the current phase: its service went away.
    void abandon_check(std::uint32_t p) noexcept;

    // The result of the check the host started for probe `p`.
    void on_result(std::uint32_t p, const check_result& r) noexcept;

    // The slots (occupied and vacant).
    std::uint32_t size() const noexcept { return count_; }
    const probe_unit& at(std::uint32_t p) const noexcept { return units_[p]; }
    // Slot of `name`, or UINT32_MAX.
    std::uint32_t find(std::string_view name) const noexcept;
    ProbeStatus status(std::uint32_t p) const noexcept;
    // The resolution an operator sees for probe `p`'s last error.
    std::string_view resolution(const probe_unit& u) const noexcept;

private:
    static void fire(io::timer& t) noexcept;
    void run_check(probe_unit& u) noexcept;
    void schedule_startup(probe_unit& u) noexcept;
    void enter_polling(probe_unit& u) noexcept;
    void schedule_poll(probe_unit& u) noexcept;
    void flip(probe_unit& u, ProbeState to) noexcept;
    void forget(probe_unit& u) noexcept;
    bool define(probe_unit& u, const ProbeSpec& s) noexcept;

    machine_host& host_;
    probe_unit* units_ = nullptr;
    std::uint32_t count_ = 0;
};

} // namespace custos::probe
