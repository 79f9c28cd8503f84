// The JSON of the status records: the objects of a service, a probe, a
// monitor, the watchdog, the counters and the health. The scalars they
// write with (strings, wall times) are json.cpp's; the documents around
// them are render.cpp's.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "status/render_detail.hpp"

namespace custos::status::detail {

namespace {

std::string_view device_name(WatchdogDevice d) noexcept {
    switch (d) {
    case WatchdogDevice::none:
        return "none";
    case WatchdogDevice::kernel:
        return "kernel";
    case WatchdogDevice::gpio:
        return "gpio";
    case WatchdogDevice::null:
        return "null";
    }
    return "unknown";
}

// --- JSON objects ------------------------------------------------------------

// {"reason", "errno", "message", "resolution", <at_key>} or null when
// nothing went wrong (reason unknown).
void put_error(text_out& o, const render_context& c, Reason r, int err, sv message, sv resolution,
               sv at_key, std::int64_t at_ns) noexcept {
    if (r == Reason::unknown) {
        o.put("null");
        return;
    }
    jobj j(o);
    j.str("reason", reason_id(r)).inum("errno", err).str("message", message);
    j.str("resolution", resolution.empty() ? Error(r, 0).resolution() : resolution);
    j.time(at_key, at_ns, c).close();
}

void put_monitor_error(text_out& o, const render_context& c, const MonitorError& e) noexcept {
    put_error(o, c, e.reason, e.sys_errno, e.message, {}, "at", e.at_ns);
}

void exit_fields(jobj& j, const ExitInfo& e) noexcept {
    j.inum("pid", e.pid).inum("code", e.code).inum("signal", e.signal);
    text_out& o = j.key("signal_name");
    if (e.signal == 0) {
        o.put("null");
    } else {
        auto m = o.mark();
        o.put('"');
        if (!put_signal_name(o, e.signal)) {
            o.rewind(m);
            o.put("null");
        } else {
            o.put('"');
        }
    }
    j.flag("core_dumped", e.core_dumped);
}

} // namespace

void put_service(text_out& o, const render_context& c, const ServiceStatus& s) noexcept {
    jobj j(o);
    j.str("name", s.name).flag("wanted", s.wanted).str("state", state_name(s.state));
    j.flag("ready", s.state == ServiceState::ready);
    if (s.pid != 0) {
        j.inum("pid", s.pid);
    } else {
        j.null("pid");
    }
    j.time("since", s.since_ns, c);
    j.moment("uptime_s", text_memo::moment::since, s.started_ns, running(s), c);
    j.reason("reason", s.reason);
    {
        jobj r(j.key("restarts"));
        r.num("total", restarts_all(s)).num("since_stable", s.restarts);
        for (std::size_t k = 0; k < restart_cause_count; ++k) {
            r.num(restart_cause_name(static_cast<RestartCause>(k)), s.restarts_by_cause[k]);
        }
        r.close();
    }
    if (s.last_exit.pid != 0) {
        jobj e(j.key("last_exit"));
        exit_fields(e, s.last_exit);
        e.close();
    } else {
        j.null("last_exit");
    }
    const bool in_backoff = s.state == ServiceState::backoff && s.restart_at_ns != 0;
    j.moment("backoff_remaining_s", text_memo::moment::until, s.restart_at_ns, in_backoff, c);
    const ServiceError& e = s.last_error;
    put_error(j.key("last_error"), c, e.reason, e.sys_errno, e.message, {}, "since", e.since_ns);
    j.str("status_text", s.status_text).num("deaths_total", s.death_count);
    {
        jobj out(j.key("output"));
        out.num("bytes", s.output_bytes).num("dropped_bytes", s.output_dropped_bytes);
        out.close();
    }
    text_out& d = j.key("deaths");
    d.put('[');
    const std::uint64_t n =
        s.death_count < death_history_capacity ? s.death_count : death_history_capacity;
    for (std::uint64_t k = 0; k < n; ++k) {
        if (k != 0) {
            d.put(',');
        }
        jobj x(d);
        x.time("at", s.deaths[k].at_ns, c).reason("reason", s.deaths[k].reason);
        exit_fields(x, s.deaths[k].exit);
        x.close();
    }
    d.put(']');
    j.close();
}

void put_probe(text_out& o, const render_context& c, const ProbeStatus& p) noexcept {
    jobj j(o);
    j.str("name", p.name)
        .str("kind", probe_kind_name(p.kind))
        .str("state", probe_state_name(p.state));
    j.str("phase", probe_phase_name(p.phase)).flag("checking", p.checking);
    j.time("last_check", p.last_check_ns, c).time("last_success", p.last_success_ns, c);
    j.time("last_failure", p.last_failure_ns, c);
    j.secs("last_duration_s", probe_duration(p), p.last_check_ns != 0);
    j.moment("next_check_in_s", text_memo::moment::until, p.next_check_ns,
             p.next_check_ns != 0 && !p.checking, c);
    j.num("consecutive_successes", p.consecutive_successes);
    j.num("consecutive_failures", p.consecutive_failures);
    j.num("checks", p.checks).num("failures", p.failures);
    const ProbeError& e = p.last_error;
    put_error(j.key("last_error"), c, e.reason, e.sys_errno, e.message, e.resolution, "since",
              e.since_ns);
    j.close();
}

void put_monitor(text_out& o, const render_context& c, const MonitorStatus& m) noexcept {
    jobj j(o);
    j.str("name", m.name).str("state", monitor_state_name(m.state)).flag("critical", m.critical);
    j.reason("reason", m.reason).time("since", m.since_ns, c);
    j.secs("uptime_s", c.now_ns - m.started_ns, m.started_ns != 0);
    j.num("crashes", m.crashes).num("runs", m.runs).num("beats", m.beats);
    put_monitor_error(j.key("last_crash"), c, m.last_crash);
    put_monitor_error(j.key("degraded"), c, m.degraded);
    j.num("ticks", m.ticks).num("tick_failures", m.tick_failures);
    j.close();
}

void put_watchdog(text_out& o, const WatchdogStatus& w) noexcept {
    jobj j(o);
    j.str("device", device_name(w.device)).str("state", watchdog_state_name(w.state));
    j.str("board", w.board).str("path", w.path).str("identity", w.identity);
    j.num("options", w.options).num("requested_s", w.requested_s).num("timeout_s", w.timeout_s);
    j.num("pretimeout_s", w.pretimeout_s).flag("clamped", w.clamped).str("notice", w.notice);
    j.inum("interval_ns", w.interval_ns).flag("gate_open", w.gate_open);
    j.flag("magic_close", w.magic_close).flag("nowayout", w.nowayout);
    j.flag("safe_mode", w.safe_mode).num("feeds", w.feeds).num("feed_errors", w.feed_errors);
    j.inum("first_feed_ns", w.first_feed_ns).inum("last_feed_ns", w.last_feed_ns);
    j.inum("starving_since_ns", w.starving_since_ns).inum("hold_until_ns", w.hold_until_ns);
    j.str("hold_by", w.hold_by);
    {
        const PreviousBoot& p = w.previous;
        jobj b(j.key("previous"));
        b.str("cls", reset_class_name(p.cls)).reason("reason", p.reason);
        b.str("subject", p.subject).str("message", p.message).inum("wall_ns", p.wall_ns);
        b.str("boot_id", p.boot_id).num("boot_status", p.boot_status).close();
    }
    {
        const WatchdogCounters& n = w.counters;
        jobj k(j.key("counters"));
        k.num("boots", n.boots).num("orderly", n.orderly).num("starved", n.starved);
        k.num("watchdog", n.watchdog).num("unreported", n.unreported);
        k.num("restarted", n.restarted).close();
    }
    j.num("record_writes", w.record_writes).num("record_failures", w.record_failures);
    j.close();
}

// --- counters ----------------------------------------------------------------

namespace {

template <class T, std::size_t N>
void counter_fields(jobj& j, const counter<T> (&table)[N], const T& v) noexcept {
    for (const counter<T>& k : table) {
        j.num(k.name, v.*k.field);
    }
}

} // namespace

void put_counters(text_out& o, const render_context& c) noexcept {
    jobj j(o);
    counter_fields(j, runtime_counters, c.snap->stats());
    counter_fields(j, log_counters, c.snap->stats());
    if (c.reactor != nullptr) {
        jobj r(j.key("reactor"));
        counter_fields(r, reactor_counters, *c.reactor);
        r.close();
    } else {
        j.null("reactor");
    }
    if (c.control != nullptr) {
        jobj k(j.key("control"));
        counter_fields(k, control_fields, *c.control);
        jobj codes(k.key("by_code"));
        for (std::size_t i = 0; i < std::size(c.control->by_code); ++i) {
            codes.num(code_label(i), c.control->by_code[i]);
        }
        codes.close();
        k.num("clients", c.control->clients).num("max_clients", c.control->max_clients).close();
    } else {
        j.null("control");
    }
    j.close();
}

// --- health ------------------------------------------------------------------

void put_health_head(jobj& j, const render_context& c, const HealthStatus& h) noexcept {
    j.str("health", health_name(h.health)).time("since", h.since_ns, c);
    j.flag("settled", h.settled).flag("critical_ready", h.critical_ready);
    j.str("summary", h.summary).num("services", h.services);
    j.num("services_ready", h.services_ready).num("probes", h.probes);
    j.num("probes_ready", h.probes_ready).num("monitors", h.monitors);
    j.num("monitors_running", h.monitors_running);
    j.key("reasons").put('[');
}

void put_health_reason(text_out& o, const render_context& c, const HealthReason& r) noexcept {
    jobj j(o);
    j.str("kind", subject_kind_name(r.kind)).str("name", r.name).flag("critical", r.critical);
    j.flag("fails", r.fails).str("state", r.state).reason("reason", r.reason);
    j.inum("errno", r.sys_errno).str("message", r.message);
    j.str("resolution",
          r.resolution.empty() ? Error(r.reason, 0).resolution() : r.resolution.view());
    j.time("since", r.since_ns, c).close();
}

} // namespace custos::status::detail
