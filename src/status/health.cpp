#include "status/health.hpp"

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace custos {

std::string_view health_name(Health h) noexcept {
    switch (h) {
    case Health::starting:
        return "starting";
    case Health::ok:
        return "ok";
    case Health::degraded:
        return "degraded";
    case Health::failed:
        return "failed";
    }
    return "unknown";
}

std::string_view subject_kind_name(SubjectKind k) noexcept {
    switch (k) {
    case SubjectKind::service:
        return "service";
    case SubjectKind::probe:
        return "probe";
    case SubjectKind::monitor:
        return "monitor";
    }
    return "unknown";
}

} // namespace custos

namespace custos::status {
namespace {

std::string_view signal_text(int sig) noexcept {
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGILL:
        return "SIGILL";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGALRM:
        return "SIGALRM";
    case SIGTERM:
        return "SIGTERM";
    default:
        return {};
    }
}

// A line of at most N bytes: what does not fit is dropped (ASCII only goes
// in here: names, state names, reason ids, numbers).
template <std::size_t N>
struct line {
    char buf[N] = {};
    std::size_t n = 0;

    void put(std::string_view s) noexcept {
        for (char c : s) {
            if (n == N) {
                return;
            }
            buf[n++] = c;
        }
    }
    void put_num(std::int64_t v) noexcept {
        char digits[24];
        std::size_t k = 0;
        const bool neg = v < 0;
        // Negate as unsigned: INT64_MIN has no positive counterpart.
        std::uint64_t u = neg ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
        do {
            digits[k++] = static_cast<char>('0' + u % 10);
            u /= 10;
        } while (u != 0);
        if (neg) {
            put("-");
        }
        while (k > 0) {
            char c = digits[--k];
            put(std::string_view(&c, 1));
        }
    }
    std::string_view view() const noexcept { return {buf, n}; }
};

// How one subject stands.
struct verdict {
    bool listed = false; // wanted, and not as wanted: a reason
    bool fails = false;  // it alone makes health `failed`
    bool critical = false;
};

constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

// a + b for a time and a non-negative span, saturating at `never`: a grace
// of "for ever" must not wrap into the past.
std::int64_t later(std::int64_t a, std::int64_t b) noexcept {
    if (b <= 0) {
        return a;
    }
    return a > never - b ? never : a + b;
}

bool flag(std::span<const bool> s, std::size_t i) noexcept {
    return i < s.size() && s[i];
}

std::int64_t grace_of(const health_input& in, std::size_t p) noexcept {
    return p < in.probe_grace_ns.size() ? in.probe_grace_ns[p] : 0;
}

// Since when probe `p` has been down (see the header for the fallbacks).
std::int64_t down_since(const ProbeStatus& s) noexcept {
    return s.last_error.since_ns != 0 ? s.last_error.since_ns : s.last_failure_ns;
}

verdict judge_service(const health_input& in, std::size_t i) noexcept {
    verdict v;
    v.critical = flag(in.service_critical, i);
    const ServiceState st = in.services[i].state;
    if (st == ServiceState::stopped || st == ServiceState::ready) {
        return v;
    }
    v.listed = true;
    v.fails = v.critical && st == ServiceState::failed;
    return v;
}

// Lowers `next` (0: none) to `at`, unless `at` is never.
void sooner(std::int64_t& next, std::int64_t at) noexcept {
    if (at != never && (next == 0 || at < next)) {
        next = at;
    }
}

// Also lowers `next` to the end of a critical probe's grace still running.
verdict judge_probe(const health_input& in, std::size_t p, std::int64_t& next) noexcept {
    verdict v;
    v.critical = flag(in.probe_critical, p);
    const ProbeStatus& s = in.probes[p];
    if (s.state == ProbeState::ready) {
        return v;
    }
    v.listed = true;
    if (s.state == ProbeState::down && v.critical) {
        const std::int64_t since = down_since(s);
        const std::int64_t until = since == 0 ? 0 : later(since, grace_of(in, p));
        if (in.now_ns >= until) {
            v.fails = true;
        } else {
            sooner(next, until);
        }
    }
    return v;
}

verdict judge_monitor(const health_input& in, std::size_t m) noexcept {
    verdict v;
    const MonitorStatus& s = in.monitors[m];
    v.critical = s.critical;
    if (s.state == MonitorState::stopped || s.state == MonitorState::running) {
        return v;
    }
    v.listed = true;
    v.fails = v.critical && s.state == MonitorState::wedged;
    return v;
}

std::string_view default_resolution(Reason r) noexcept {
    return Error(r, 0).resolution();
}

void fill_service(const health_input& in, std::size_t i, HealthReason& r) noexcept {
    const ServiceStatus& s = in.services[i];
    r.kind = SubjectKind::service;
    r.name = s.name;
    r.state = state_name(s.state);
    r.reason = s.reason;
    r.sys_errno = 0;
    r.since_ns = s.since_ns;
    const bool exited = s.state == ServiceState::backoff || s.state == ServiceState::failed;
    if (exited && s.last_exit.pid != 0) {
        // The exit that put it here: "exited 3", "killed by SIGKILL".
        line<health_message_capacity> m;
        if (s.last_exit.signal != 0) {
            m.put("killed by ");
            std::string_view name = signal_text(s.last_exit.signal);
            if (name.empty()) {
                m.put("signal ");
                m.put_num(s.last_exit.signal);
            } else {
                m.put(name);
            }
            if (s.last_exit.core_dumped) {
                m.put(" (core dumped)");
            }
        } else {
            m.put("exited ");
            m.put_num(s.last_exit.code);
        }
        r.message = m.view();
    } else {
        r.message = s.status_text.view();
    }
    r.resolution = default_resolution(r.reason);
}

void fill_probe(const health_input& in, std::size_t p, bool settled, HealthReason& r) noexcept {
    const ProbeStatus& s = in.probes[p];
    r.kind = SubjectKind::probe;
    r.name = s.name;
    r.state = probe_state_name(s.state);
    r.reason = s.last_error.reason;
    r.sys_errno = s.last_error.sys_errno;
    r.message = s.last_error.message.view();
    if (s.state == ProbeState::down) {
        r.since_ns = down_since(s);
    } else {
        // unknown: since its failures began, else since the start.
        r.since_ns = s.last_error.since_ns != 0 ? s.last_error.since_ns : in.started_ns;
    }
    if (r.reason == Reason::unknown) {
        // No check has failed yet: the first checks are still running, or
        // the boot grace ran out before they finished.
        r.reason = settled ? Reason::boot_grace_expired : Reason::health_starting;
    }
    r.resolution = s.last_error.resolution.empty() ? default_resolution(r.reason)
                                                   : s.last_error.resolution.view();
}

void fill_monitor(const health_input& in, std::size_t m, HealthReason& r) noexcept {
    const MonitorStatus& s = in.monitors[m];
    r.kind = SubjectKind::monitor;
    r.name = s.name;
    r.state = monitor_state_name(s.state);
    r.reason = s.reason;
    r.sys_errno = 0;
    r.message = std::string_view();
    r.since_ns = s.since_ns;
    const MonitorError* e = nullptr;
    switch (s.state) {
    case MonitorState::backoff:
        e = &s.last_crash;
        break;
    case MonitorState::degraded:
        e = &s.degraded;
        if (e->reason == Reason::unknown) {
            r.reason = Reason::monitor_degraded;
        }
        break;
    case MonitorState::wedged:
        if (r.reason == Reason::unknown) {
            r.reason = Reason::monitor_wedged;
        }
        r.message = std::string_view("no progress within its deadline");
        break;
    case MonitorState::stopped:
    case MonitorState::waiting:
    case MonitorState::running:
    case MonitorState::stopping:
        break;
    }
    if (e != nullptr && e->reason != Reason::unknown) {
        r.reason = e->reason;
        r.sys_errno = e->sys_errno;
        r.message = e->message.view();
    }
    r.resolution = default_resolution(r.reason);
}

enum class tier : std::uint8_t { fails, critical, other };

tier tier_of(const verdict& v) noexcept {
    return v.fails ? tier::fails : v.critical ? tier::critical : tier::other;
}

void make_summary(HealthStatus& out) noexcept {
    line<health_summary_capacity> s;
    switch (out.health) {
    case Health::ok:
        s.put_num(out.services_ready);
        s.put("/");
        s.put_num(out.services);
        s.put(" ready");
        if (out.monitors != 0) {
            s.put(", ");
            s.put_num(out.monitors_running);
            s.put("/");
            s.put_num(out.monitors);
            s.put(" monitors running");
        }
        break;
    case Health::starting:
        s.put("starting: ");
        s.put_num(out.services_ready);
        s.put("/");
        s.put_num(out.services);
        s.put(" ready");
        break;
    case Health::degraded:
    case Health::failed:
        s.put(health_name(out.health));
        s.put(":");
        if (out.reason_count != 0) {
            const HealthReason& r = out.reasons[0];
            s.put(" ");
            s.put(r.name.view());
            s.put(" ");
            s.put(r.state.view());
            s.put(" (");
            s.put(reason_id(r.reason));
            s.put(")");
        }
        if (out.reason_total > 1) {
            s.put(" (+");
            s.put_num(out.reason_total - 1);
            s.put(" more)");
        }
        break;
    }
    out.summary = s.view();
}

} // namespace

std::int64_t derive(const health_input& in, HealthStatus& out) noexcept {
    std::int64_t next = 0;
    const std::int64_t since = out.since_ns;
    out = HealthStatus{};
    out.since_ns = since;

    // Counts, settle, critical_ready, and whether anything fails.
    bool unsettled = false;
    bool critical_ready = true;
    bool any_fails = false;
    bool any_listed = false;
    for (std::size_t i = 0; i < in.services.size(); ++i) {
        const ServiceState st = in.services[i].state;
        if (st == ServiceState::stopped) {
            continue;
        }
        ++out.services;
        if (st == ServiceState::ready) {
            ++out.services_ready;
        } else if (st != ServiceState::failed) {
            unsettled = true;
        }
        if (st != ServiceState::ready && flag(in.service_critical, i)) {
            critical_ready = false;
        }
        const verdict v = judge_service(in, i);
        any_fails = any_fails || v.fails;
        any_listed = any_listed || v.listed;
    }
    for (std::size_t p = 0; p < in.probes.size(); ++p) {
        const ProbeState st = in.probes[p].state;
        ++out.probes;
        if (st == ProbeState::ready) {
            ++out.probes_ready;
        } else if (st == ProbeState::unknown) {
            unsettled = true;
        }
        const verdict v = judge_probe(in, p, next);
        any_fails = any_fails || v.fails;
        any_listed = any_listed || v.listed;
    }
    for (std::size_t m = 0; m < in.monitors.size(); ++m) {
        const MonitorState st = in.monitors[m].state;
        if (st == MonitorState::stopped) {
            continue;
        }
        ++out.monitors;
        if (st == MonitorState::running) {
            ++out.monitors_running;
        } else if (st == MonitorState::waiting) {
            unsettled = true;
        }
        const verdict v = judge_monitor(in, m);
        any_fails = any_fails || v.fails;
        any_listed = any_listed || v.listed;
    }

    bool settled = in.settled;
    if (!settled && in.started_ns != 0) {
        const std::int64_t grace_end = later(in.started_ns, in.boot_grace_ns);
        if (!unsettled || in.now_ns >= grace_end) {
            settled = true;
        } else {
            sooner(next, grace_end);
        }
    }
    out.settled = settled;
    out.critical_ready = critical_ready;
    if (any_fails) {
        out.health = Health::failed;
    } else if (!settled) {
        out.health = Health::starting;
    } else if (any_listed) {
        out.health = Health::degraded;
    } else {
        out.health = Health::ok;
    }

    // Reasons, tier by tier, table order within a tier. Only the kept ones
    // are filled in; judging again is cheap (no text).
    std::int64_t ignored = 0;
    for (tier t : {tier::fails, tier::critical, tier::other}) {
        auto keep = [&](const verdict& v) {
            if (!v.listed || tier_of(v) != t) {
                return false;
            }
            ++out.reason_total;
            return out.reason_count < health_reason_capacity;
        };
        auto start = [&](const verdict& v, std::size_t index) -> HealthReason& {
            HealthReason& r = out.reasons[out.reason_count++];
            r.index = static_cast<std::uint32_t>(index);
            r.critical = v.critical;
            r.fails = v.fails;
            return r;
        };
        for (std::size_t i = 0; i < in.services.size(); ++i) {
            const verdict v = judge_service(in, i);
            if (keep(v)) {
                fill_service(in, i, start(v, i));
            }
        }
        for (std::size_t p = 0; p < in.probes.size(); ++p) {
            const verdict v = judge_probe(in, p, ignored);
            if (keep(v)) {
                fill_probe(in, p, settled, start(v, p));
            }
        }
        for (std::size_t m = 0; m < in.monitors.size(); ++m) {
            const verdict v = judge_monitor(in, m);
            if (keep(v)) {
                fill_monitor(in, m, start(v, m));
            }
        }
    }

    make_summary(out);
    return next;
}

namespace {

bool same_reasons(const HealthStatus& a, const HealthStatus& b) noexcept {
    if (a.reason_total != b.reason_total || a.reason_count != b.reason_count) {
        return false;
    }
    for (std::uint32_t k = 0; k < a.reason_count; ++k) {
        if (!(a.reasons[k] == b.reasons[k])) {
            return false;
        }
    }
    return true;
}

} // namespace

bool health_model::update(const health_input& in) noexcept {
    health_input with_latch = in;
    with_latch.settled = cur_.settled;
    next_.since_ns = cur_.since_ns;
    next_ns_ = derive(with_latch, next_);
    const bool health_changed = first_ || next_.health != cur_.health;
    if (health_changed) {
        next_.since_ns = in.now_ns;
    }
    const bool changed = health_changed || next_.settled != cur_.settled ||
                         next_.critical_ready != cur_.critical_ready ||
                         !same_reasons(next_, cur_) || !(next_.summary == cur_.summary);
    if (health_changed && !first_) {
        prev_ = cur_.health;
    }
    first_ = false;
    cur_ = next_;
    return changed;
}

} // namespace custos::status
