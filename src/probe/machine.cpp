// The probe machine. See machine.hpp for the phases and states.
#include "probe/machine.hpp"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace custos {

std::string_view probe_kind_name(ProbeKind k) noexcept {
    switch (k) {
    case ProbeKind::tcp:
        return "tcp";
    case ProbeKind::http:
        return "http";
    case ProbeKind::unix_socket:
        return "unix";
    case ProbeKind::exec:
        return "exec";
    case ProbeKind::file:
        return "file";
    case ProbeKind::all:
        return "all";
    }
    return "?";
}

std::string_view probe_state_name(ProbeState s) noexcept {
    switch (s) {
    case ProbeState::unknown:
        return "unknown";
    case ProbeState::ready:
        return "ready";
    case ProbeState::down:
        return "down";
    }
    return "?";
}

std::string_view probe_phase_name(ProbePhase p) noexcept {
    switch (p) {
    case ProbePhase::startup:
        return "startup";
    case ProbePhase::polling:
        return "polling";
    }
    return "?";
}

} // namespace custos

namespace custos::probe {
namespace {

nanos to_nanos(Duration d) noexcept {
    return std::chrono::duration_cast<nanos>(d);
}

// How late a poll may fire to share a wake-up with others.
nanos poll_slack(nanos interval) noexcept {
    nanos s = interval / 8;
    return s < std::chrono::seconds(15) ? s : nanos(std::chrono::seconds(15));
}

} // namespace

void check_result::fail(Reason r, int err, const char* fmt, ...) noexcept {
    reason = r;
    sys_errno = err;
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (n < 0) {
        message[0] = '\0';
    }
}

Result<void> machine::init(std::span<const ProbeSpec> probes, arena& mem,
                           std::uint32_t slots) noexcept {
    const auto n = static_cast<std::uint32_t>(probes.size());
    count_ = slots > n ? slots : n;
    units_ = mem.make_array<probe_unit>(count_);
    bool ok = units_ != nullptr || count_ == 0;
    for (std::uint32_t i = 0; i < count_; ++i) {
        std::size_t need = 0;
        if (i < n) {
            need = probes[i].name.size() + probes[i].reason.size() + probes[i].resolution.size();
        }
        const std::size_t room = need > text_bytes ? need : text_bytes;
        auto* text = static_cast<char*>(mem.take_unzeroed(room, 1));
        ok = ok && text != nullptr;
        if (!ok) {
            continue; // sizing pass: keep measuring
        }
        probe_unit& u = units_[i];
        u.text = text;
        u.text_room = static_cast<std::uint32_t>(room);
        u.timer.fire = &machine::fire;
        u.timer.user = &u;
        u.owner = this;
        u.index = i;
        u.table_index = i;
        if (i < n) {
            (void)define(u, probes[i]);
        }
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "probe table");
    }
    return {};
}

bool machine::define(probe_unit& u, const ProbeSpec& s) noexcept {
    if (s.name.size() + s.reason.size() + s.resolution.size() > u.text_room) {
        return false;
    }
    char* at = u.text;
    auto put = [&at](std::string_view t) noexcept {
        if (!t.empty()) {
            std::memcpy(at, t.data(), t.size());
        }
        std::string_view out(at, t.size());
        at += t.size();
        return out;
    };
    u.name = put(s.name);
    u.reason_text = put(s.reason);
    u.resolution_text = put(s.resolution);
    u.kind = s.kind;
    u.timeout = to_nanos(s.timeout);
    u.startup_initial = to_nanos(s.startup_initial);
    u.startup_max = to_nanos(s.startup_max);
    u.multiplier_x100 = s.startup_multiplier_x100;
    u.startup_tries = s.startup_tries < 1 ? 1 : s.startup_tries;
    u.interval = to_nanos(s.interval);
    u.success_threshold = s.success_threshold < 1 ? 1 : s.success_threshold;
    u.failure_threshold = s.failure_threshold < 1 ? 1 : s.failure_threshold;
    u.on_ready = s.on_ready;
    u.on_down = s.on_down;
    u.hook_ctx = s.hook_ctx;
    return true;
}

// Back to a unit that never ran: its definition, room, timer and index kept.
void machine::forget(probe_unit& u) noexcept {
    host_.cancel(u.timer);
    u.state = ProbeState::unknown;
    u.phase = ProbePhase::startup;
    u.active = false;
    u.checking = false;
    u.discard = false;
    u.rerun = false;
    u.delay = nanos(0);
    u.tries = 0;
    u.consecutive_successes = 0;
    u.consecutive_failures = 0;
    u.checks = 0;
    u.failures = 0;
    u.check_started = {};
    u.planned = {};
    u.last_check = {};
    u.last_success = {};
    u.last_failure = {};
    u.next_check = {};
    u.error_reason = Reason::unknown;
    u.error_errno = 0;
    u.error_since = {};
    u.error_message[0] = '\0';
}

Result<void> machine::redefine(std::uint32_t p, const ProbeSpec& s, bool keep_state) noexcept {
    probe_unit& u = units_[p];
    if (s.name.size() + s.reason.size() + s.resolution.size() > u.text_room) {
        char what[96];
        std::snprintf(what, sizeof what, "probe '%.*s': its texts take %zu bytes, its slot %u",
                      static_cast<int>(s.name.size()), s.name.data(),
                      s.name.size() + s.reason.size() + s.resolution.size(), u.text_room);
        return fail(Reason::reload_capacity, 0, what);
    }
    const ProbeState was = u.state;
    forget(u);
    (void)define(u, s);
    if (keep_state) {
        u.state = was;
    }
    return {};
}

void machine::vacate(std::uint32_t p) noexcept {
    probe_unit& u = units_[p];
    forget(u);
    u.name = {};
    u.reason_text = {};
    u.resolution_text = {};
    u.on_ready = nullptr;
    u.on_down = nullptr;
    u.hook_ctx = nullptr;
}

void machine::start(std::uint32_t p) noexcept {
    probe_unit& u = units_[p];
    if (u.active || u.name.empty()) {
        return;
    }
    u.active = true;
    u.phase = ProbePhase::startup;
    u.tries = 0;
    u.delay = u.startup_initial;
    run_check(u);
}

std::uint32_t machine::find(std::string_view name) const noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (!name.empty() && units_[i].name == name) {
            return i;
        }
    }
    return UINT32_MAX;
}

void machine::start_all() noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        start(i);
    }
}

void machine::stop_all() noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        probe_unit& u = units_[i];
        u.active = false;
        u.rerun = false;
        host_.cancel(u.timer);
        if (u.checking && !u.discard) {
            u.discard = true;
            host_.cancel_check(u.index);
        }
    }
}

void machine::check_now(std::uint32_t p) noexcept {
    probe_unit& u = units_[p];
    if (!u.active || u.checking) {
        return;
    }
    host_.cancel(u.timer);
    run_check(u);
}

void machine::restart_startup(std::uint32_t p) noexcept {
    probe_unit& u = units_[p];
    if (!u.active) {
        return;
    }
    u.phase = ProbePhase::startup;
    u.tries = 0;
    u.delay = u.startup_initial;
    host_.cancel(u.timer);
    if (u.checking) {
        u.rerun = true;
        if (!u.discard) {
            u.discard = true;
            host_.cancel_check(u.index);
        }
        return;
    }
    run_check(u);
}

void machine::abandon_check(std::uint32_t p) noexcept {
    probe_unit& u = units_[p];
    if (u.checking && !u.discard) {
        u.discard = true;
        host_.cancel_check(u.index);
    }
}

void machine::run_check(probe_unit& u) noexcept {
    mono_time now = host_.now();
    u.checking = true;
    u.discard = false;
    u.rerun = false;
    u.check_started = now;
    u.planned = now;
    u.next_check = now;
    host_.start_check(u.index, now + u.timeout);
}

void machine::fire(io::timer& t) noexcept {
    auto& u = *static_cast<probe_unit*>(t.user);
    if (u.active && !u.checking) {
        mono_time planned = u.next_check;
        u.owner->run_check(u);
        // The schedule follows the plan, not the slack-delayed start: a
        // coalesced poll never pushes the later ones back.
        u.planned = planned;
    }
}

void machine::schedule_startup(probe_unit& u) noexcept {
    u.next_check = host_.now() + u.delay;
    host_.arm(u.timer, u.next_check, nanos(0));
}

void machine::enter_polling(probe_unit& u) noexcept {
    u.phase = ProbePhase::polling;
    // Jitter: a random point in the second half of the interval, so probes
    // declared with the same interval spread out instead of firing together.
    auto half = static_cast<std::uint64_t>(u.interval.count() / 2);
    std::uint64_t extra = half != 0 ? host_.random() % (half + 1) : 0;
    u.next_check = host_.now() + nanos(static_cast<nanos::rep>(half + extra));
    host_.arm(u.timer, u.next_check, poll_slack(u.interval));
}

void machine::schedule_poll(probe_unit& u) noexcept {
    // From the time the check that just ended was planned for: the period
    // drifts neither by the checks' own duration nor by timer slack.
    mono_time now = host_.now();
    u.next_check = u.planned + u.interval;
    if (u.next_check <= now) {
        u.next_check = now + nanos(1);
    }
    host_.arm(u.timer, u.next_check, poll_slack(u.interval));
}

std::string_view machine::resolution(const probe_unit& u) const noexcept {
    if (!u.resolution_text.empty()) {
        return u.resolution_text;
    }
    return Error(u.error_reason, 0).resolution();
}

void machine::flip(probe_unit& u, ProbeState to) noexcept {
    ProbeTransition t;
    t.probe = u.table_index;
    t.name = u.name;
    t.from = u.state;
    t.to = to;
    t.at_ns = to_ns(host_.now());
    if (to == ProbeState::ready) {
        t.reason = u.state == ProbeState::down ? Reason::probe_recovered : Reason::probe_passed;
    } else {
        t.reason = u.error_reason;
        t.sys_errno = u.error_errno;
        t.message = u.error_message;
        t.resolution = resolution(u);
    }
    u.state = to;
    ProbeHook hook = to == ProbeState::ready ? u.on_ready : u.on_down;
    if (hook != nullptr) {
        hook(t, u.hook_ctx);
    }
    host_.transition(t);
}

void machine::on_result(std::uint32_t p, const check_result& r) noexcept {
    probe_unit& u = units_[p];
    if (!u.checking) {
        return;
    }
    u.checking = false;
    if (u.discard) {
        u.discard = false;
        if (u.active && u.rerun) {
            run_check(u);
        } else if (u.active) {
            // Abandoned: go on by the phase, as if the check had not run.
            if (u.phase == ProbePhase::startup) {
                schedule_startup(u);
            } else {
                schedule_poll(u);
            }
        }
        return;
    }
    mono_time now = host_.now();
    const bool passed = r.passed();
    ++u.checks;
    u.last_check = u.check_started;
    if (passed) {
        ++u.consecutive_successes;
        u.consecutive_failures = 0;
        u.last_success = now;
    } else {
        ++u.failures;
        u.consecutive_successes = 0;
        if (u.consecutive_failures++ == 0) {
            u.error_since = now;
        }
        u.last_failure = now;
        u.error_reason = r.reason;
        u.error_errno = r.sys_errno;
        if (!u.reason_text.empty()) {
            // "<override> (<what failed>)", truncated to fit: the override first.
            std::size_t n = 0;
            auto put = [&](std::string_view t) {
                for (char ch : t) {
                    if (n + 1 < sizeof u.error_message) {
                        u.error_message[n++] = ch;
                    }
                }
            };
            put(u.reason_text);
            put(" (");
            put(r.message);
            put(")");
            u.error_message[n] = '\0';
        } else {
            std::snprintf(u.error_message, sizeof u.error_message, "%s", r.message);
        }
    }

    const bool now_ready =
        passed && u.consecutive_successes >= u.success_threshold && u.state != ProbeState::ready;
    bool now_down =
        !passed && u.consecutive_failures >= u.failure_threshold && u.state != ProbeState::down;
    bool to_polling = false;
    switch (u.phase) {
    case ProbePhase::startup:
        ++u.tries;
        if (passed && u.consecutive_successes >= u.success_threshold) {
            to_polling = true;
        } else if (u.tries >= u.startup_tries) {
            to_polling = true;
            // Out of tries on a failure: down, whatever the threshold says.
            now_down = !passed && u.state != ProbeState::down;
        } else {
            // Keep the state during startup failures below the tries limit,
            // except that a ready probe (restarted startup) still honours
            // its failure threshold.
            now_down = now_down && u.state == ProbeState::ready;
        }
        break;
    case ProbePhase::polling:
        break;
    }

    if (now_ready) {
        flip(u, ProbeState::ready);
    } else if (now_down) {
        flip(u, ProbeState::down);
    }
    host_.checked(u.index, passed, u.check_started);
    if (!u.active || u.checking) {
        return; // a hook stopped it or ran a check already
    }
    if (u.phase == ProbePhase::polling) {
        schedule_poll(u);
    } else if (to_polling) {
        enter_polling(u);
    } else {
        if (!passed) {
            schedule_startup(u);
            // The next wait after this one grows, capped.
            auto grown = static_cast<std::int64_t>(u.delay.count()) * u.multiplier_x100 / 100;
            u.delay = nanos(grown) < u.startup_max ? nanos(grown) : u.startup_max;
        } else {
            // Passing below the success threshold: confirm soon.
            schedule_startup(u);
        }
    }
}

ProbeStatus machine::status(std::uint32_t p) const noexcept {
    const probe_unit& u = units_[p];
    ProbeStatus s;
    s.name = u.name;
    s.kind = u.kind;
    s.state = u.state;
    s.phase = u.phase;
    s.checking = u.checking;
    s.last_check_ns = u.checks != 0 ? to_ns(u.last_check) : 0;
    s.last_success_ns = to_ns(u.last_success);
    s.last_failure_ns = to_ns(u.last_failure);
    s.next_check_ns = u.checking || !u.active ? 0 : to_ns(u.next_check);
    s.consecutive_successes = u.consecutive_successes;
    s.consecutive_failures = u.consecutive_failures;
    s.startup_tries = u.tries;
    s.checks = u.checks;
    s.failures = u.failures;
    if (u.failures != 0) {
        s.last_error.reason = u.error_reason;
        s.last_error.sys_errno = u.error_errno;
        s.last_error.message = std::string_view(u.error_message);
        s.last_error.resolution = resolution(u);
        s.last_error.since_ns = to_ns(u.error_since);
    }
    return s;
}

} // namespace custos::probe
