// The text documents: the /health lines, the TSV custosctl reads and the
// human detail of one service, with the exit and signal names they share
// with the JSON.
#include <csignal>
#include <cstddef>
#include <cstdint>

#include "status/render_detail.hpp"

namespace custos::status::detail {

// --- exits and signals ---------------------------------------------------------

bool put_signal_name(text_out& o, int sig) noexcept {
    struct entry {
        int sig;
        const char* name;
    };
    static constexpr entry names[] = {
        {SIGHUP, "SIGHUP"},       {SIGINT, "SIGINT"},   {SIGQUIT, "SIGQUIT"},
        {SIGILL, "SIGILL"},       {SIGTRAP, "SIGTRAP"}, {SIGABRT, "SIGABRT"},
        {SIGBUS, "SIGBUS"},       {SIGFPE, "SIGFPE"},   {SIGKILL, "SIGKILL"},
        {SIGUSR1, "SIGUSR1"},     {SIGSEGV, "SIGSEGV"}, {SIGUSR2, "SIGUSR2"},
        {SIGPIPE, "SIGPIPE"},     {SIGALRM, "SIGALRM"}, {SIGTERM, "SIGTERM"},
        {SIGCHLD, "SIGCHLD"},     {SIGCONT, "SIGCONT"}, {SIGSTOP, "SIGSTOP"},
        {SIGTSTP, "SIGTSTP"},     {SIGTTIN, "SIGTTIN"}, {SIGTTOU, "SIGTTOU"},
        {SIGURG, "SIGURG"},       {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"},
        {SIGVTALRM, "SIGVTALRM"}, {SIGPROF, "SIGPROF"}, {SIGWINCH, "SIGWINCH"},
        {SIGIO, "SIGIO"},         {SIGPWR, "SIGPWR"},   {SIGSYS, "SIGSYS"},
    };
    for (const entry& e : names) {
        if (e.sig == sig) {
            o.put(e.name);
            return true;
        }
    }
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        o.put("SIGRTMIN+").put_i64(sig - SIGRTMIN);
        return true;
    }
    return false;
}

namespace {

// "exit 3", "signal SIGKILL (core)": the TSV's LAST_EXIT and the detail's.
void put_exit_text(text_out& o, const ExitInfo& e) noexcept {
    if (e.signal == 0) {
        o.put("exit ").put_i64(e.code);
        return;
    }
    o.put("signal ");
    if (!put_signal_name(o, e.signal)) {
        o.put_i64(e.signal);
    }
    if (e.core_dumped) {
        o.put(" (core)");
    }
}

} // namespace

// --- health ------------------------------------------------------------------

check check_at(const snapshot& snap, std::uint32_t i) noexcept {
    check k;
    if (i < snap.service_count()) {
        const ServiceStatus& s = service_part(snap, i, snapshot::service_part::head);
        k.name = s.name;
        k.state = state_name(s.state);
        k.ok = s.state == ServiceState::ready || s.state == ServiceState::stopped;
        k.reason = s.reason;
        return k;
    }
    i -= snap.service_count();
    if (i < snap.probe_count()) {
        const ProbeStatus& p = probe_part(snap, i, snapshot::probe_part::head);
        k.kind = SubjectKind::probe;
        k.name = p.name;
        k.state = probe_state_name(p.state);
        k.ok = p.state == ProbeState::ready;
        // Unknown without a failure: its first checks are still running.
        k.reason =
            p.last_error.reason != Reason::unknown ? p.last_error.reason : Reason::health_starting;
        return k;
    }
    const MonitorStatus m = snap.monitor(i - snap.probe_count());
    k.kind = SubjectKind::monitor;
    k.name = m.name;
    k.state = monitor_state_name(m.state);
    k.ok = m.state == MonitorState::running || m.state == MonitorState::stopped;
    k.reason = m.reason;
    if (m.state == MonitorState::backoff && m.last_crash.reason != Reason::unknown) {
        k.reason = m.last_crash.reason;
    } else if (m.state == MonitorState::degraded) {
        k.reason =
            m.degraded.reason != Reason::unknown ? m.degraded.reason : Reason::monitor_degraded;
    } else if (m.state == MonitorState::wedged && k.reason == Reason::unknown) {
        k.reason = Reason::monitor_wedged;
    }
    return k;
}

// --- the text documents' items ------------------------------------------------

bool check_line(const item& it) noexcept {
    const check k = check_at(*it.c.snap, it.i);
    it.o.put(k.ok ? "[+] " : "[-] ");
    if (k.kind != SubjectKind::service) {
        it.o.put(subject_kind_name(k.kind)).put(' ');
    }
    it.o.put(k.name).put(' ').put(k.state);
    if (!k.ok) {
        it.o.put(": ").put(reason_id(k.reason));
    }
    it.o.put('\n');
    return false;
}

bool health_line(const item& it) noexcept {
    it.o.put("health: ").put(health_name(health_of(*it.c.snap).health)).put('\n');
    return false;
}

bool tsv_line(const item& it) noexcept {
    const ServiceStatus& s = service_part(*it.c.snap, it.i, snapshot::service_part::no_deaths);
    text_out& o = it.o;
    o.put(s.name).put('\t').put(state_name(s.state)).put('\t').put_i64(s.pid).put('\t');
    if (running(s)) {
        o.put_seconds(it.c.now_ns - s.started_ns, 3);
    } else {
        o.put('-');
    }
    o.put('\t').put_u64(restarts_all(s)).put('\t');
    if (s.last_exit.pid != 0) {
        put_exit_text(o, s.last_exit);
    } else {
        o.put('-');
    }
    o.put('\t').put(s.reason == Reason::unknown ? "-" : reason_id(s.reason));
    o.put('\t').put(s.wanted ? "yes" : "no").put('\n');
    return false;
}

namespace {

// A time in the detail: "2026-12-07T08:02:52.123Z (5.123 s ago)", or "-".
void put_when(text_out& o, const render_context& c, std::int64_t at_ns) noexcept {
    const std::int64_t wall = wall_of(c, at_ns);
    if (at_ns == 0) {
        o.put('-');
        return;
    }
    if (wall != 0) {
        put_wall(o, wall);
        o.put(" (");
    }
    o.put_seconds(c.now_ns - at_ns, 3).put(" s ago");
    if (wall != 0) {
        o.put(')');
    }
}

} // namespace

// The detail as `systemctl status` would give it; the STATUS= text and the
// error message quoted and escaped as JSON strings (no raw control byte
// reaches the terminal).
bool service_detail(const item& it) noexcept {
    const render_context& c = it.c;
    const ServiceStatus& s = service_part(*c.snap, it.index, snapshot::service_part::shown);
    text_out& o = it.o;
    o.put(s.name).put(": ").put(state_name(s.state));
    if (s.reason != Reason::unknown) {
        o.put(" (").put(reason_id(s.reason)).put(')');
    }
    o.put(" since ");
    put_when(o, c, s.since_ns);
    o.put("\n  wanted:      ").put(s.wanted ? "yes" : "no").put("\n  pid:         ");
    if (s.pid != 0) {
        o.put_i64(s.pid);
    } else {
        o.put('-');
    }
    o.put("\n  uptime:      ");
    if (running(s)) {
        o.put_seconds(c.now_ns - s.started_ns, 3).put(" s");
    } else {
        o.put('-');
    }
    o.put("\n  restarts:    ").put_u64(restarts_all(s)).put(" (since stable ").put_u64(s.restarts);
    for (std::size_t k = 0; k < restart_cause_count; ++k) {
        o.put(k == 0 ? "; " : ", ").put(restart_cause_name(static_cast<RestartCause>(k)));
        o.put(' ').put_u64(s.restarts_by_cause[k]);
    }
    o.put(")\n  last exit:   ");
    if (s.last_exit.pid != 0) {
        put_exit_text(o, s.last_exit);
        o.put(" (pid ").put_i64(s.last_exit.pid).put(')');
    } else {
        o.put('-');
    }
    if (s.state == ServiceState::backoff && s.restart_at_ns != 0) {
        o.put("\n  backoff:     restart in ").put_seconds(until(c, s.restart_at_ns), 3).put(" s");
    }
    o.put("\n  status:      ");
    put_str(o, s.status_text);
    const ServiceError& e = s.last_error;
    o.put("\n  last error:  ");
    if (e.reason == Reason::unknown) {
        o.put('-');
    } else {
        o.put(reason_id(e.reason));
        if (!e.message.empty()) {
            o.put(": ");
            put_str(o, e.message);
        }
        if (e.sys_errno != 0) {
            o.put(" (errno ").put_i64(e.sys_errno).put(')');
        }
        o.put(", ");
        put_when(o, c, e.since_ns);
        o.put("\n  resolution:  ").put(Error(e.reason, 0).resolution());
    }
    o.put("\n  deaths:      ").put_u64(s.death_count);
    const std::uint64_t n =
        s.death_count < death_history_capacity ? s.death_count : death_history_capacity;
    if (n != 0) {
        o.put(n < s.death_count ? " (the last 16, oldest first)" : " (oldest first)");
    }
    for (std::uint64_t k = 0; k < n; ++k) {
        const DeathRecord& d = s.deaths[k];
        o.put("\n    ");
        put_when(o, c, d.at_ns);
        o.put("  ");
        put_exit_text(o, d.exit);
        o.put(" (pid ").put_i64(d.exit.pid).put(")  ").put(reason_id(d.reason));
    }
    o.put('\n');
    return false;
}

} // namespace custos::status::detail
