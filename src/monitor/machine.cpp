// The monitor machine. See machine.hpp for the states and invariants.
#include "monitor/machine.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace custos::mon {
namespace {

nanos to_nanos(Duration d) noexcept {
    return std::chrono::duration_cast<nanos>(d);
}

// A bounded text builder for the transitions' details: truncates, never
// allocates, always NUL-terminated.
class text {
public:
    text(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) { buf_[0] = '\0'; }

    text& str(std::string_view s) noexcept {
        std::size_t room = cap_ - 1 - len_;
        std::size_t n = std::min(room, s.size());
        if (n != 0) {
            std::memcpy(buf_ + len_, s.data(), n);
        }
        len_ += n;
        buf_[len_] = '\0';
        return *this;
    }

    text& num(std::uint64_t v) noexcept {
        char out[24]; // 20 digits at most
        const int k = std::snprintf(out, sizeof out, "%llu", static_cast<unsigned long long>(v));
        const std::size_t n = k > 0 ? std::min(static_cast<std::size_t>(k), sizeof out - 1) : 0;
        return str(std::string_view(out, n));
    }

    // "1500 ms", or "5 s" when it is whole seconds.
    text& dur(nanos d) noexcept {
        std::int64_t ms = std::max<std::int64_t>(d.count(), 0) / 1'000'000;
        if (ms != 0 && ms % 1000 == 0) {
            return num(static_cast<std::uint64_t>(ms / 1000)).str(" s");
        }
        return num(static_cast<std::uint64_t>(ms)).str(" ms");
    }

    // "Id: message" of an error.
    text& error(Reason r, std::string_view message) noexcept {
        str(reason_id(r));
        if (!message.empty()) {
            str(": ").str(message);
        }
        return *this;
    }

    std::string_view view() const noexcept { return {buf_, len_}; }

private:
    char* buf_;
    std::size_t cap_;
    std::size_t len_ = 0;
};

bool same_error(const MonitorError& a, const MonitorError& b) noexcept {
    return a.reason == b.reason && a.sys_errno == b.sys_errno && a.message == b.message;
}

} // namespace

Result<void> machine::init(std::span<const MonitorSpec> specs, arena& mem,
                           std::uint64_t seed) noexcept {
    count_ = static_cast<std::uint32_t>(specs.size());
    units_ = mem.make_array<unit>(count_);
    bool ok = count_ == 0 || units_ != nullptr; // an empty array may be null
    for (std::uint32_t i = 0; i < count_; ++i) {
        const MonitorSpec& s = specs[i];
        char* name = mem.copy(s.name);
        ok = ok && name != nullptr;
        if (!ok) {
            continue; // sizing pass: keep measuring
        }
        unit& u = units_[i];
        u.name = std::string_view(name, s.name.size());
        u.policy.initial = to_nanos(s.backoff_initial);
        u.policy.max = to_nanos(s.backoff_max);
        u.policy.multiplier_x100 = s.backoff_multiplier_x100;
        u.policy.jitter_percent = s.backoff_jitter_percent;
        u.policy.stable_after = to_nanos(s.stable_after);
        u.degraded_every = s.degraded_every;
        u.heartbeat = to_nanos(s.heartbeat_interval);
        u.deadline = to_nanos(s.deadline);
        u.on_wedge = s.on_wedge;
        u.critical = s.critical;
        u.on_dependency_down = s.on_dependency_down;
        u.bo = backoff(seed + 0x9e3779b97f4a7c15ull * (i + 1));
        u.owner = this;
        u.index = i;
        u.timer.fire = &machine::fire_backoff;
        u.timer.user = &u;
        u.hb_timer.fire = &machine::fire_heartbeat;
        u.hb_timer.user = &u;
        u.wd_timer.fire = &machine::fire_wedge_check;
        u.wd_timer.user = &u;
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "monitor table");
    }
    stop_timer_.fire = &machine::fire_stop_share;
    stop_timer_.user = this;
    mono_time now = host_.now();
    for (std::uint32_t i = 0; i < count_; ++i) {
        units_[i].since = now;
    }
    return {};
}

std::uint32_t machine::find(std::string_view name) const noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (units_[i].name == name) {
            return i;
        }
    }
    return UINT32_MAX;
}

void machine::enter(unit& u, MonitorState to, Reason why, std::string_view detail,
                    std::string_view resolution, int err, nanos delay) noexcept {
    MonitorTransition t;
    mono_time now = host_.now();
    t.monitor = u.index;
    t.name = u.name;
    t.from = u.state;
    t.to = to;
    t.reason = why;
    t.sys_errno = err;
    t.at_ns = to_ns(now);
    t.crashes = u.crashes;
    t.delay_ns = delay.count();
    t.progress = u.token;
    t.detail = detail;
    t.resolution = resolution;
    u.state = to;
    u.reason = why;
    u.since = now;
    host_.transition(t);
}

void machine::report(unit& u, Reason why, std::string_view detail,
                     std::string_view resolution) noexcept {
    MonitorTransition t;
    t.monitor = u.index;
    t.name = u.name;
    t.from = u.state;
    t.to = u.state;
    t.reason = why;
    t.at_ns = to_ns(host_.now());
    t.crashes = u.crashes;
    t.progress = u.token;
    t.detail = detail;
    t.resolution = resolution;
    host_.transition(t);
}

MonitorState machine::live_state(const unit& u) const noexcept {
    return u.degraded ? MonitorState::degraded : MonitorState::running;
}

void machine::take_sample(unit& u, sample& s) noexcept {
    host_.sample(u.index, s);
    // Modulo 2^32: the difference is right as long as fewer than 2^32 beats
    // happen between two samples.
    u.beats += static_cast<std::uint32_t>(s.beats - u.seen_beats);
    u.seen_beats = s.beats;
    u.token = s.token;
}

// --- starting ---

void machine::start(std::span<const bool> only) noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (only.empty() || (i < only.size() && only[i])) {
            want(units_[i], Reason::runtime_start);
        }
    }
}

void machine::want(unit& u, Reason why) noexcept {
    if (stopping_all_) {
        return;
    }
    u.wanted = true;
    switch (u.state) {
    case MonitorState::stopped:
    case MonitorState::waiting:
        if (host_.deps_ready(u.index)) {
            launch(u, u.state == MonitorState::waiting ? Reason::dependencies_ready : why);
        } else if (u.state != MonitorState::waiting) {
            enter(u, MonitorState::waiting, Reason::waiting_for_dependencies);
        }
        return;
    case MonitorState::stopping:
        u.restart_after_stop = true;
        u.wait_after_stop = false;
        return;
    case MonitorState::running:
    case MonitorState::degraded:
    case MonitorState::backoff:
    case MonitorState::wedged:
        return;
    }
}

void machine::launch(unit& u, Reason why) noexcept {
    host_.cancel(u.timer);
    // The slot as it is before the run: what the run changes is measured
    // against it.
    sample s;
    take_sample(u, s);
    u.seen_progress = s.progress;
    mono_time now = host_.now();
    ++u.runs;
    u.active = true;
    u.stop_asked = false;
    u.restart_after_stop = false;
    u.wait_after_stop = false;
    u.restart_on_recovery = false;
    u.abandoned = false;
    u.suspected = false;
    u.degraded = false;
    u.overlay = MonitorError{};
    u.overlay_resolution = {};
    u.started = now;
    u.last_progress = now; // a run that just began counts as progress
    u.restart_at = mono_time{};
    host_.launch(u.index, u.runs);
    enter(u, MonitorState::running, why);
    if (u.state != MonitorState::running || !u.active) {
        return; // the hook acted on it
    }
    if (u.heartbeat > nanos(0)) {
        u.hb_next = now + u.heartbeat;
        host_.arm(u.hb_timer, u.hb_next, u.heartbeat / 16);
    }
    if (u.deadline > nanos(0)) {
        host_.arm(u.wd_timer, now + u.deadline / 4, u.deadline / 32);
    }
}

// --- stopping ---

void machine::ask_stop(unit& u, Reason why, std::string_view detail) noexcept {
    u.stop_asked = true;
    host_.cancel(u.hb_timer);
    host_.cancel(u.wd_timer);
    host_.request_stop(u.index);
    enter(u, MonitorState::stopping, why, detail);
}

void machine::stop(std::uint32_t m) noexcept {
    unit& u = units_[m];
    u.wanted = false;
    u.restart_after_stop = false;
    u.wait_after_stop = false;
    u.restart_on_recovery = false;
    if (u.active) {
        if (!u.stop_asked) {
            ask_stop(u, Reason::operator_stop);
        }
        return;
    }
    host_.cancel(u.timer);
    if (u.state != MonitorState::stopped) {
        enter(u, MonitorState::stopped, Reason::operator_stop);
    }
}

void machine::start(std::uint32_t m) noexcept {
    unit& u = units_[m];
    if (stopping_all_) {
        return;
    }
    if (u.state == MonitorState::backoff) {
        // An operator's start skips the backoff and forgets the crashes.
        host_.cancel(u.timer);
        u.bo.reset();
        u.crashes = 0;
        u.wanted = true;
        if (host_.deps_ready(u.index)) {
            launch(u, Reason::operator_start);
        } else {
            enter(u, MonitorState::waiting, Reason::waiting_for_dependencies);
        }
        return;
    }
    want(u, Reason::operator_start);
}

void machine::stop_all(nanos budget) noexcept {
    if (stopping_all_) {
        return;
    }
    stopping_all_ = true;
    stop_deadline_ = host_.now() + std::max(budget, nanos(0));
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        u.wanted = false;
        u.restart_after_stop = false;
        u.wait_after_stop = false;
        u.restart_on_recovery = false;
        host_.cancel(u.timer);
        if (u.active) {
            // Asked in turn by advance_stop(); no more reports until then.
            host_.cancel(u.hb_timer);
            host_.cancel(u.wd_timer);
        } else if (u.state != MonitorState::stopped) {
            enter(u, MonitorState::stopped, Reason::runtime_stop);
        }
    }
    stop_next_ = count_;
    advance_stop();
}

void machine::advance_stop() noexcept {
    while (stop_next_ > 0) {
        unit& u = units_[stop_next_ - 1];
        if (!u.active || u.abandoned) {
            --stop_next_;
            continue;
        }
        // Its share: what is left of the budget over the runs left to stop.
        std::uint32_t left = 0;
        for (std::uint32_t i = 0; i < stop_next_; ++i) {
            left += units_[i].active && !units_[i].abandoned ? 1 : 0;
        }
        mono_time now = host_.now();
        nanos remaining = std::max(stop_deadline_ - now, nanos(0));
        nanos share = remaining / left;
        stop_current_ = u.index;
        --stop_next_;
        if (!u.stop_asked) {
            ask_stop(u, Reason::runtime_stop);
        }
        if (!u.active || stop_current_ != u.index) {
            continue; // returned (or the hook acted) meanwhile
        }
        host_.arm(stop_timer_, now + std::max(share, nanos(1)), nanos(0));
        return;
    }
    stop_current_ = UINT32_MAX;
    if (!all_stopped_sent_) {
        all_stopped_sent_ = true;
        host_.all_stopped();
    }
}

void machine::fire_stop_share(io::timer& t) noexcept {
    auto& self = *static_cast<machine*>(t.user);
    if (self.stop_current_ == UINT32_MAX) {
        return;
    }
    unit& u = self.units_[self.stop_current_];
    self.stop_current_ = UINT32_MAX;
    if (u.active) {
        u.abandoned = true;
        text d(self.detail_, sizeof self.detail_);
        d.str("did not return within its share of the stop budget (")
            .dur(self.host_.now() - u.since)
            .str("); abandoned: its thread cannot be killed safely");
        self.report(u, Reason::stop_timeout, d.view());
    }
    self.advance_stop();
}

// --- a run ended ---

void machine::on_returned(std::uint32_t m, const Result<void>& r) noexcept {
    unit& u = units_[m];
    if (!u.active) {
        return;
    }
    u.active = false;
    host_.cancel(u.hb_timer);
    host_.cancel(u.wd_timer);
    sample s;
    take_sample(u, s);
    mono_time now = host_.now();
    text d(detail_, sizeof detail_);
    if (!r) {
        d.error(r.error().reason(), r.error().subject());
    }

    if (u.stop_asked || stopping_all_) {
        if (!r) {
            u.last_crash.reason = r.error().reason();
            u.last_crash.sys_errno = r.error().sys_errno();
            u.last_crash.message = r.error().subject();
            u.last_crash.at_ns = to_ns(now);
        }
        const bool current = stopping_all_ && stop_current_ == u.index;
        const bool restart = u.restart_after_stop && !stopping_all_;
        const bool wait = u.wait_after_stop && !stopping_all_;
        u.stop_asked = false;
        u.restart_after_stop = false;
        u.wait_after_stop = false;
        u.abandoned = false;
        if (wait) {
            enter(u, MonitorState::waiting, Reason::dependency_down, d.view());
            if (u.state == MonitorState::waiting && u.wanted && host_.deps_ready(u.index)) {
                launch(u, Reason::dependencies_ready);
            }
        } else {
            enter(u, MonitorState::stopped,
                  u.state == MonitorState::stopping ? Reason::stopped_by_request
                                                    : Reason::runtime_stop,
                  d.view());
            if (restart && u.state == MonitorState::stopped) {
                want(u, Reason::operator_start);
            }
        }
        if (current && stop_current_ == u.index) {
            host_.cancel(stop_timer_);
            stop_current_ = UINT32_MAX;
            advance_stop();
        }
        return;
    }

    if (r) {
        u.wanted = false;
        enter(u, MonitorState::stopped, Reason::exited_cleanly);
        return;
    }

    // A crash. The count and the backoff reset only after a stable run.
    const Error& e = r.error();
    if (now - u.started >= u.policy.stable_after) {
        u.bo.reset();
    }
    nanos delay = u.bo.next_delay(u.policy);
    u.crashes = u.bo.attempts();
    u.last_crash.reason = e.reason();
    u.last_crash.sys_errno = e.sys_errno();
    u.last_crash.message = e.subject();
    u.last_crash.at_ns = to_ns(now);
    u.restart_at = now + delay;
    enter(u, MonitorState::backoff, Reason::monitor_crashed, d.view(), e.resolution(),
          e.sys_errno(), delay);
    if (u.state != MonitorState::backoff) {
        return;
    }
    if (u.degraded_every != 0 && u.crashes % u.degraded_every == 0) {
        text c(detail_, sizeof detail_);
        c.num(u.crashes).str(" consecutive crashes; the last: ").error(e.reason(), e.subject());
        report(u, Reason::monitor_crash_loop, c.view(), e.resolution());
        if (u.state != MonitorState::backoff) {
            return;
        }
    }
    host_.arm(u.timer, u.restart_at, nanos(0));
}

void machine::fire_backoff(io::timer& t) noexcept {
    auto& u = *static_cast<unit*>(t.user);
    machine& self = *u.owner;
    if (u.state != MonitorState::backoff || self.stopping_all_ || !u.wanted) {
        return;
    }
    if (self.host_.deps_ready(u.index)) {
        self.launch(u, Reason::backoff_elapsed);
    } else {
        self.enter(u, MonitorState::waiting, Reason::waiting_for_dependencies);
    }
}

// --- dependencies ---

void machine::on_dependency_change() noexcept {
    if (stopping_all_) {
        return;
    }
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        if (u.state == MonitorState::waiting) {
            if (u.wanted && host_.deps_ready(i)) {
                launch(u, Reason::dependencies_ready);
            }
            continue;
        }
        if (!u.active || u.stop_asked) {
            continue;
        }
        const bool ready = host_.deps_ready(i);
        switch (u.on_dependency_down) {
        case DependencyDownAction::ignore:
            break;
        case DependencyDownAction::stop:
            if (!ready) {
                u.wait_after_stop = true;
                ask_stop(u, Reason::dependency_down);
            }
            break;
        case DependencyDownAction::restart:
            // Kept running while a dependency is down (it may be the one
            // that reconnects); restarted once they are all back.
            if (!ready) {
                u.restart_on_recovery = true;
            } else if (u.restart_on_recovery) {
                u.restart_on_recovery = false;
                u.wait_after_stop = true;
                ask_stop(u, Reason::dependency_down);
            }
            break;
        }
    }
}

// --- what the slot says ---

void machine::on_notice(std::uint32_t m) noexcept {
    unit& u = units_[m];
    sample s;
    take_sample(u, s);
    check_overlay(u, s);
}

void machine::check_overlay(unit& u, const sample& s) noexcept {
    if (!u.active || u.stop_asked) {
        return;
    }
    const bool set = s.overlay.set && s.overlay.run == u.runs;
    if (set == u.degraded && (!set || same_error(s.overlay.error, u.overlay))) {
        return;
    }
    u.degraded = set;
    u.overlay = set ? s.overlay.error : MonitorError{};
    u.overlay_resolution = set ? s.overlay.resolution_text() : std::string_view{};
    if (u.state == MonitorState::wedged) {
        return; // recorded; it shows when progress resumes
    }
    if (set) {
        text d(detail_, sizeof detail_);
        d.error(u.overlay.reason, u.overlay.message);
        Reason why =
            u.overlay.reason != Reason::unknown ? u.overlay.reason : Reason::monitor_degraded;
        enter(u, MonitorState::degraded, why, d.view(), u.overlay_resolution, u.overlay.sys_errno);
    } else {
        enter(u, MonitorState::running, Reason::monitor_degraded_cleared);
    }
}

void machine::fire_heartbeat(io::timer& t) noexcept {
    auto& u = *static_cast<unit*>(t.user);
    machine& self = *u.owner;
    if (!u.active || u.stop_asked) {
        return;
    }
    // The next one on the schedule, whatever the slack did to this one; a
    // stall longer than the interval skips the missed ones.
    mono_time now = self.host_.now();
    u.hb_next += u.heartbeat;
    if (u.hb_next <= now) {
        u.hb_next = now + u.heartbeat;
    }
    self.host_.arm(u.hb_timer, u.hb_next, u.heartbeat / 16);
    self.heartbeat(u);
}

void machine::heartbeat(unit& u) noexcept {
    if (u.state == MonitorState::wedged) {
        return; // its absence is the alert
    }
    sample s;
    take_sample(u, s);
    text d(detail_, sizeof detail_);
    d.str("uptime ").dur(host_.now() - u.started);
    if (u.degraded) {
        d.str(", degraded: ").error(u.overlay.reason, u.overlay.message);
    } else {
        d.str(", ok");
    }
    if (s.ticks.consecutive_failures != 0) {
        d.str(", ticks failing: ")
            .num(s.ticks.consecutive_failures)
            .str(" in a row (")
            .error(s.ticks.last_failure.reason, s.ticks.last_failure.message)
            .str(")");
    }
    report(u, Reason::monitor_heartbeat, d.view());
}

void machine::fire_wedge_check(io::timer& t) noexcept {
    auto& u = *static_cast<unit*>(t.user);
    machine& self = *u.owner;
    if (!u.active || u.stop_asked) {
        return;
    }
    self.check_wedge(u);
    if (u.active && !u.stop_asked && u.deadline > nanos(0)) {
        self.host_.arm(u.wd_timer, self.host_.now() + u.deadline / 4, u.deadline / 32);
    }
}

void machine::check_wedge(unit& u) noexcept {
    sample s;
    take_sample(u, s);
    mono_time now = host_.now();
    check_overlay(u, s);
    if (!u.active || u.stop_asked) {
        return;
    }
    if (s.progress != u.seen_progress) {
        u.seen_progress = s.progress;
        nanos idle = now - u.last_progress;
        u.last_progress = now;
        if (u.state == MonitorState::wedged || u.suspected) {
            u.suspected = false;
            text d(detail_, sizeof detail_);
            d.str("progress again after at most ").dur(idle).str(" without");
            if (u.state == MonitorState::wedged) {
                enter(u, live_state(u), Reason::monitor_progress, d.view());
            } else {
                report(u, Reason::monitor_progress, d.view());
            }
        }
        return;
    }
    nanos idle = now - u.last_progress;
    const bool wedge = idle >= u.deadline && u.state != MonitorState::wedged;
    const bool suspect =
        !wedge && idle >= u.deadline / 2 && !u.suspected && u.state != MonitorState::wedged;
    if (!wedge && !suspect) {
        return;
    }
    text d(detail_, sizeof detail_);
    d.str("no progress for ")
        .dur(idle)
        .str(" (deadline ")
        .dur(u.deadline)
        .str("), last token ")
        .num(u.token)
        .str(", ")
        .num(u.beats)
        .str(" beats; thread: ");
    char ev[160];
    std::size_t n = host_.evidence(u.index, ev, sizeof ev);
    d.str(std::string_view(ev, std::min(n, sizeof ev - 1)));
    if (suspect) {
        u.suspected = true;
        report(u, Reason::monitor_wedge_suspected, d.view());
        return;
    }
    u.suspected = true;
    enter(u, MonitorState::wedged, Reason::monitor_wedged, d.view());
    if (u.state == MonitorState::wedged && u.on_wedge == WedgeAction::exit) {
        host_.wedge_exit(u.index);
    }
}

// --- status ---

MonitorStatus machine::status(std::uint32_t m) noexcept {
    unit& u = units_[m];
    sample s;
    take_sample(u, s);
    mono_time now = host_.now();
    MonitorStatus st;
    st.name = u.name;
    st.state = u.state;
    st.reason = u.reason;
    st.since_ns = to_ns(u.since);
    st.critical = u.critical;
    st.started_ns = u.active ? to_ns(u.started) : 0;
    st.restart_at_ns = u.state == MonitorState::backoff ? to_ns(u.restart_at) : 0;
    // A run that has lasted stable_after has reset the count, even though
    // the backoff only learns it at the next crash.
    st.crashes = u.active && now - u.started >= u.policy.stable_after ? 0 : u.crashes;
    st.runs = u.runs;
    st.beats = u.beats;
    st.progress = u.token;
    st.last_progress_ns = u.runs != 0 ? to_ns(u.last_progress) : 0;
    st.last_crash = u.last_crash;
    st.degraded = u.overlay;
    st.ticks = s.ticks.ticks;
    st.tick_failures = s.ticks.failures;
    st.consecutive_failures = s.ticks.consecutive_failures;
    st.last_success_ns = s.ticks.last_success_ns;
    st.last_failure = s.ticks.last_failure;
    return st;
}

} // namespace custos::mon
