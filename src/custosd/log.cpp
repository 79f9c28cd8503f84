// custosd's log on stderr: say(), the one way a line is printed, and the
// Runtime's hooks that print its events (services, probes, health, the
// watchdog, control actions, the pruner, ignored signals).
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "custosd/daemon.hpp"

namespace custos::daemon {

namespace {

// ": MESSAGE: STRERROR", ": MESSAGE" or ": STRERROR" (nothing when both are
// empty) into buf, truncated to fit: a log line need not be whole. The
// errno's text is left out when the message spells it out already.
void message_detail(char* buf, std::size_t len, std::string_view message, int sys_errno) noexcept {
    const char* err = sys_errno != 0 ? std::strerror(sys_errno) : nullptr;
    if (err != nullptr && message.find(err) != std::string_view::npos) {
        err = nullptr;
    }
    buf[0] = '\0';
    int n = 0;
    if (!message.empty() && err != nullptr) {
        n = std::snprintf(buf, len, ": %.*s: %.80s", static_cast<int>(message.size()),
                          message.data(), err);
    } else if (!message.empty()) {
        n = std::snprintf(buf, len, ": %.*s", static_cast<int>(message.size()), message.data());
    } else if (err != nullptr) {
        n = std::snprintf(buf, len, ": %.80s", err);
    }
    (void)n;
}

// Whether a watchdog event calls for the operator: the board resets, was
// reset, runs unwatched, or custos cannot keep its records.
bool watchdog_needs_action(custos::Reason r) noexcept {
    using custos::Reason;
    static constexpr Reason act[] = {
        Reason::watchdog_starving,
        Reason::watchdog_timeout_clamped,
        Reason::watchdog_lost,
        Reason::watchdog_feed_failed,
        Reason::watchdog_left_armed,
        Reason::previous_boot_starved,
        Reason::previous_boot_watchdog,
        Reason::previous_boot_unreported,
        Reason::previous_boot_restarted,
        Reason::reset_record_unwritable,
        Reason::reset_record_corrupt,
        Reason::safe_mode,
        // It could not be opened (required = no runs on without it).
        Reason::watchdog_unavailable,
        Reason::watchdog_busy,
        Reason::gpio_unavailable,
        Reason::board_unknown,
    };
    for (Reason a : act) {
        if (a == r) {
            return true;
        }
    }
    return false;
}

} // namespace

// One line on stderr, printf-style, with every control byte of the result
// (config text: names, paths, values) written as \xHH: a terminal must show
// it, not obey it. The line end is added here.
// While a reload runs: what say() prints also goes to the reload's answer.
custos::ReloadReport* say_tee = nullptr;

[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) noexcept {
    char raw[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    std::size_t len =
        static_cast<std::size_t>(n) < sizeof raw ? static_cast<std::size_t>(n) : sizeof raw - 1;
    if (say_tee != nullptr) {
        say_tee->add(std::string_view(raw, len));
    }
    char out[4 * sizeof raw + 2];
    std::size_t w = 0;
    for (std::size_t i = 0; i < len; ++i) {
        auto c = static_cast<unsigned char>(raw[i]);
        if (c < 0x20 || c == 0x7f) {
            w += static_cast<std::size_t>(std::snprintf(out + w, 5, "\\x%02x", c));
        } else {
            out[w++] = raw[i];
        }
    }
    out[w++] = '\n';
    // EPIPE or a closed stderr: the line is lost, nothing else.
    (void)std::fwrite(out, 1, w, stderr);
}

void log_probe_transition(const custos::ProbeTransition& t, void*) noexcept {
    utc_stamp at;
    std::string_view from = custos::probe_state_name(t.from);
    std::string_view to = custos::probe_state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    char detail[256];
    message_detail(detail, sizeof detail, t.message, t.sys_errno);
    say("%s probe %.*s: %.*s -> %.*s (%.*s%s)", at.text, static_cast<int>(t.name.size()),
        t.name.data(), static_cast<int>(from.size()), from.data(), static_cast<int>(to.size()),
        to.data(), static_cast<int>(why.size()), why.data(), detail);
    if (t.to == custos::ProbeState::down && !t.resolution.empty()) {
        say("  resolution: %.*s", static_cast<int>(t.resolution.size()), t.resolution.data());
    }
}

// One line per change of health, with its summary (what STATUS= carries
// upward), then one per reason while it is not ok.
void log_health(const custos::HealthStatus& h, void*) noexcept {
    utc_stamp at;
    // The summary names the health itself, but for ok ("12/12 ready").
    say("%s health %s%s", at.text, h.health == custos::Health::ok ? "ok: " : "", h.summary.c_str());
    if (h.health == custos::Health::ok || h.health == custos::Health::starting) {
        return;
    }
    for (std::uint32_t i = 0; i < h.reason_count; ++i) {
        const custos::HealthReason& r = h.reasons[i];
        std::string_view kind = custos::subject_kind_name(r.kind);
        std::string_view why = custos::reason_id(r.reason);
        say("  %s %.*s %s %s: %.*s%s%s", r.fails ? "[!]" : "[-]", static_cast<int>(kind.size()),
            kind.data(), r.name.c_str(), r.state.c_str(), static_cast<int>(why.size()), why.data(),
            r.message.empty() ? "" : ": ", r.message.c_str());
    }
}

void log_transition(const custos::Transition& t, void*) noexcept {
    utc_stamp at;
    char extra[256] = "";
    std::size_t n = 0;
    auto add = [&](const char* fmt, auto... args) {
        if (n < sizeof extra) {
            int w = std::snprintf(extra + n, sizeof extra - n, fmt, args...);
            if (w > 0) {
                n += static_cast<std::size_t>(w);
            }
        }
    };
    if (t.pid != 0) {
        add(" pid %d", t.pid);
    }
    if (t.exit.pid != 0) {
        if (t.exit.signal != 0) {
            add(" killed by signal %d (%s)%s", t.exit.signal, strsignal(t.exit.signal),
                t.exit.core_dumped ? " core dumped" : "");
        } else {
            add(" exit %d", t.exit.code);
        }
    }
    if (t.to == custos::ServiceState::backoff) {
        // To the microsecond: a 1 ms backoff with jitter is not "0 ms".
        const long long ns = t.delay_ns;
        if (ns % 1'000'000 == 0) {
            add(" restart %u in %lld ms", t.restarts, ns / 1'000'000);
        } else if (ns >= 1'000'000) {
            add(" restart %u in %lld.%03lld ms", t.restarts, ns / 1'000'000, ns % 1'000'000 / 1000);
        } else if (ns >= 1000) {
            add(" restart %u in %lld us", t.restarts, ns / 1000);
        } else {
            add(" restart %u in %lld ns", t.restarts, ns);
        }
    }
    if (t.sys_errno != 0) {
        add(" errno %d (%s)", t.sys_errno, std::strerror(t.sys_errno));
    }
    if (!t.detail.empty()) {
        add(": %.*s", static_cast<int>(t.detail.size()), t.detail.data());
    }
    std::string_view from = custos::state_name(t.from);
    std::string_view to = custos::state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    say("%s %.*s: %.*s -> %.*s (%.*s)%s", at.text, static_cast<int>(t.name.size()), t.name.data(),
        static_cast<int>(from.size()), from.data(), static_cast<int>(to.size()), to.data(),
        static_cast<int>(why.size()), why.data(), extra);
    // Failures get the operator's next step on its own line.
    if (t.to == custos::ServiceState::failed) {
        custos::Error e(t.reason, t.sys_errno, t.name);
        std::string_view fix = e.resolution();
        say("  resolution: %.*s", static_cast<int>(fix.size()), fix.data());
    }
}

// One line per action through the control socket, allowed or refused:
//   2026-11-22T01:02:03.456Z control POST /services/netd/stop by custosctl
//     (pid 812 uid 0): 200 (ControlAction)
void log_control(const custos::ControlAction& a, void*) noexcept {
    utc_stamp at;
    std::string_view why = custos::reason_id(a.reason);
    say("%s control %.*s (pid %d uid %d): %d (%.*s)", at.text, static_cast<int>(a.request.size()),
        a.request.data(), a.pid, a.uid, a.http_status, static_cast<int>(why.size()), why.data());
}

// One line per watchdog event: a change of state, or a report (the
// previous boot, a clamped timeout, a record that failed):
//   2026-11-22T01:02:03.456Z watchdog off -> booting (WatchdogOpened): ...
//   2026-11-22T01:02:03.456Z watchdog off (PreviousBootStarved): ...
//     resolution: ...
// The ReasonIds are greppable: the emulated-board job reads them.
void log_watchdog(const custos::WatchdogTransition& t, void*) noexcept {
    utc_stamp at;
    std::string_view from = custos::watchdog_state_name(t.from);
    std::string_view to = custos::watchdog_state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    char detail[320];
    message_detail(detail, sizeof detail, t.message, t.sys_errno);
    if (t.from != t.to) {
        say("%s watchdog %.*s -> %.*s (%.*s)%s", at.text, static_cast<int>(from.size()),
            from.data(), static_cast<int>(to.size()), to.data(), static_cast<int>(why.size()),
            why.data(), detail);
    } else {
        say("%s watchdog %.*s (%.*s)%s", at.text, static_cast<int>(to.size()), to.data(),
            static_cast<int>(why.size()), why.data(), detail);
    }
    if (watchdog_needs_action(t.reason)) {
        std::string_view fix = t.resolution;
        if (fix.empty()) {
            fix = custos::Error(t.reason, t.sys_errno).resolution();
        }
        say("  resolution: %.*s", static_cast<int>(fix.size()), fix.data());
    }
}

// One line per pruner event: a file deleted, a chosen file kept, a run
// that failed (with what to do):
//   2026-11-22T01:02:03.456Z prune logs: app-20250101.log (100 bytes,
//     keep_newest) (PruneDeleted)
//   2026-11-22T01:02:03.456Z prune spool: /data/spool (PruneScanFailed):
//     No such file or directory
//     resolution: ...
void log_prune(const custos::PruneEvent& e, void*) noexcept {
    utc_stamp at;
    std::string_view why = custos::reason_id(e.reason);
    char err[96] = "";
    if (e.sys_errno != 0) {
        std::snprintf(err, sizeof err, ": %.80s", std::strerror(e.sys_errno));
    }
    say("%s prune %.*s: %.*s (%.*s)%s", at.text, static_cast<int>(e.job.size()), e.job.data(),
        static_cast<int>(e.detail.size()), e.detail.data(), static_cast<int>(why.size()),
        why.data(), err);
    if (e.reason != custos::Reason::prune_deleted && !e.resolution.empty()) {
        say("  resolution: %.*s", static_cast<int>(e.resolution.size()), e.resolution.data());
    }
}

// SIGHUP, SIGUSR1, SIGUSR2, SIGALRM: the runtime kept them from killing
// custosd; say so, once per signal.
void log_signal(int sig, void*) noexcept {
    utc_stamp at;
    const char* name = sig == SIGHUP    ? "SIGHUP"
                       : sig == SIGUSR1 ? "SIGUSR1"
                       : sig == SIGUSR2 ? "SIGUSR2"
                       : sig == SIGALRM ? "SIGALRM"
                                        : "signal";
    std::fprintf(stderr, "%s custosd: %s received: reserved; ignored\n", at.text, name);
}

} // namespace custos::daemon
