// The control plane's actions (server.hpp): who may act, the control_action
// event every action dispatches, the actions and POST /reload, and the
// parking of a ?wait action until it settles.
#include <fcntl.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "control/http.hpp"
#include "control/server.hpp"
#include "control/server_conn.hpp"
#include "io/files.hpp"
#include "table/values.hpp"

namespace custos::control {

using server_detail::param_cap;

bool server::is_operator(const conn& c) const noexcept {
    if (c.uid == 0) {
        return true;
    }
    if (c.uid == static_cast<uid_t>(-1)) {
        return false;
    }
    for (uid_t u : ops_.uids) {
        if (u == c.uid) {
            return true;
        }
    }
    for (gid_t g : ops_.gids) {
        if (g == c.gid) {
            return true;
        }
    }
    return false;
}

void server::record_action(conn& c, std::string_view subject, int code) noexcept {
    char comm[32] = {};
    std::size_t n = 0;
    if (c.pid > 0) {
        char path[32];
        text_out p(path, sizeof(path) - 1);
        p.put("/proc/").put_u64(static_cast<std::uint64_t>(c.pid)).put("/comm");
        path[p.size()] = '\0';
        const long got = io::files::read_file(AT_FDCWD, path, comm, sizeof(comm));
        n = got > 0 ? static_cast<std::size_t>(got) : 0;
        while (n > 0 && comm[n - 1] == '\n') {
            --n;
        }
    }
    char detail[192];
    text_out d(detail, sizeof(detail));
    d.put(method_name(c.req.verb)).put(' ');
    d.put(c.req.target.substr(0, 120)).put(" by ");
    d.put(n > 0 ? std::string_view(comm, n) : std::string_view("?"));
    status::event e;
    e.kind = status::event_kind::control_action;
    e.reason = code == 403 ? Reason::control_denied : Reason::control_action;
    e.mono_ns = to_ns(reactor_->now());
    e.wall_ns = status::wall_now_ns();
    e.pid = c.pid;
    e.peer_uid = static_cast<int>(c.uid);
    e.http_status = code;
    e.name = subject;
    e.detail = d.view();
    events_->dispatch(e);
}

void server::route_action(conn& c) noexcept {
    const std::string_view path = c.req.path;
    const std::string_view q = c.req.query;
    char buf[param_cap];
    std::string_view seg;
    std::string_view rest;
    const bool post = c.req.verb == method::post;

    // What is asked, before who asks: an unknown route is 404 for anyone.
    enum class what : std::uint8_t { none, service, probe, hold, release } w = what::none;
    std::uint32_t index = 0;
    std::string_view subject;
    if (post && split_path(path, prefix_services, seg, rest) &&
        (rest == action_start || rest == action_stop || rest == action_restart)) {
        w = what::service;
        index = find(names_.services, seg);
        subject = seg;
    } else if (post && split_path(path, prefix_probes, seg, rest) && rest == action_check) {
        w = what::probe;
        index = find(names_.probes, seg);
        subject = seg;
    } else if (path == route_watchdog_hold) {
        w = post ? what::hold : what::release;
        subject = "watchdog";
    }
    if (w == what::none) {
        // A route that exists for reading: the method is wrong, not the path.
        const bool readable = path == route_health || path == route_status ||
                              path == route_metrics || path == route_watchdog ||
                              ((split_path(path, prefix_services, seg, rest) ||
                                split_path(path, prefix_probes, seg, rest) ||
                                split_path(path, prefix_monitors, seg, rest)) &&
                               rest.empty());
        if (readable) {
            reply_error(c, 405, Reason::control_bad_request, "this route is read with GET",
                        "Allow: GET, HEAD\r\n");
        } else {
            reply_error(c, 404, Reason::control_bad_request, "no such route");
        }
        return;
    }
    if (index == UINT32_MAX) {
        reply_error(c, 404, Reason::control_bad_request, "no such name");
        return;
    }
    if (!is_operator(c)) {
        ++counters_.actions_denied;
        record_action(c, subject, 403);
        reply_error(c, 403, Reason::control_denied, "actions need root or an operator");
        return;
    }
    ++counters_.actions;

    Duration wait{0};
    auto wq = query_param(q, "wait", buf, sizeof(buf));
    if (wq.present) {
        if (!wq.valid || tbl::parse_duration(wq.value, wait) != tbl::dur_status::ok ||
            wait > cfg_.max_wait) {
            record_action(c, subject, 400);
            reply_error(c, 400, Reason::invalid_argument,
                        "wait= takes a duration (5s, 2m) up to [control] max_wait");
            return;
        }
    }
    Result<void> done{};
    conn::wait_kind kind = conn::wait_kind::none;
    status::doc reply = status::doc::service_json;
    switch (w) {
    case what::service: {
        const ServiceStatus s = snap_->service(index);
        c.before = s.started_ns;
        if (rest == action_start) {
            done = act_->start_service(index);
            kind = conn::wait_kind::start;
        } else if (rest == action_stop) {
            done = act_->stop_service(index);
            kind = conn::wait_kind::stop;
        } else {
            done = act_->restart_service(index);
            kind = conn::wait_kind::restart;
        }
        break;
    }
    case what::probe:
        c.before = static_cast<std::int64_t>(snap_->probe(index).checks);
        done = act_->check_probe(index);
        kind = conn::wait_kind::check;
        reply = status::doc::probe_json;
        break;
    case what::hold: {
        Duration for_{0};
        auto f = query_param(q, "for", buf, sizeof(buf));
        if (!f.present || !f.valid || tbl::parse_duration(f.value, for_) != tbl::dur_status::ok) {
            record_action(c, subject, 400);
            reply_error(c, 400, Reason::invalid_argument, "for= takes a duration (10m, 1h)");
            return;
        }
        done = act_->hold_watchdog(for_, "control");
        reply = status::doc::watchdog_json;
        break;
    }
    case what::release:
        done = act_->release_watchdog("control");
        reply = status::doc::watchdog_json;
        break;
    case what::none:
        break;
    }
    if (!done) {
        const Error& e = done.error();
        const int code = e.reason() == Reason::invalid_argument ? 409 : 503;
        record_action(c, subject, code);
        reply_error(c, code, e.reason(),
                    e.subject().empty() ? "the action was refused" : e.subject());
        return;
    }
    if (!wq.present || wait.count() == 0 || kind == conn::wait_kind::none) {
        record_action(c, subject, 200);
        reply_doc(c, 200, reply, index);
        return;
    }
    // Parked until after_publish() sees it settled, or the timer.
    c.state = conn::phase::waiting;
    c.waiting = kind;
    c.subject = index;
    reactor_->arm_after(c.wait_timer, std::chrono::duration_cast<nanos>(wait));
    record_action(c, subject, 202);
}

bool server::settled(const conn& c) const noexcept {
    if (c.waiting == conn::wait_kind::check) {
        const ProbeStatus p = snap_->probe(c.subject);
        return !p.checking && static_cast<std::int64_t>(p.checks) > c.before;
    }
    const ServiceStatus s = snap_->service(c.subject);
    switch (c.waiting) {
    case conn::wait_kind::start:
        return s.state == ServiceState::ready || s.state == ServiceState::failed;
    case conn::wait_kind::restart:
        return (s.state == ServiceState::ready && s.started_ns != c.before) ||
               s.state == ServiceState::failed;
    case conn::wait_kind::stop:
        return s.state == ServiceState::stopped || s.state == ServiceState::failed;
    case conn::wait_kind::check:
    case conn::wait_kind::feed:
    case conn::wait_kind::none:
        break;
    }
    return true;
}

void server::after_publish() noexcept {
    for (std::uint32_t i = 0; i < nslots_; ++i) {
        conn& c = slots_[i];
        if (c.state != conn::phase::waiting || c.waiting == conn::wait_kind::feed || !settled(c)) {
            continue;
        }
        reactor_->cancel(c.wait_timer);
        const bool probe = c.waiting == conn::wait_kind::check;
        c.waiting = conn::wait_kind::none;
        reply_doc(c, 200, probe ? status::doc::probe_json : status::doc::service_json, c.subject);
    }
}

void server::on_wait_timeout(conn& c) noexcept {
    ++callbacks_;
    if (c.state != conn::phase::waiting) {
        return;
    }
    if (c.waiting == conn::wait_kind::feed) {
        c.waiting = conn::wait_kind::none;
        (void)serve_feed(c, c.subject, false);
        return;
    }
    const bool probe = c.waiting == conn::wait_kind::check;
    c.waiting = conn::wait_kind::none;
    reply_doc(c, 504, probe ? status::doc::probe_json : status::doc::service_json, c.subject);
}

// POST /reload: the embedder reads its config again and the runtime
// applies it; the answer carries every problem found.
void server::route_reload_(conn& c) noexcept {
    const std::string_view subject = "reload";
    if (!is_operator(c)) {
        ++counters_.actions_denied;
        record_action(c, subject, 403);
        reply_error(c, 403, Reason::control_denied, "actions need root or an operator");
        return;
    }
    ++counters_.actions;
    ReloadReport report;
    const Result<ReloadSummary> r = act_->reload(report);
    char buf[param_cap];
    const bool text = query_param(c.req.query, "format", buf, sizeof(buf)).value == "text";
    char body[2 * ReloadReport::capacity + 512];
    text_out b(body, sizeof(body));
    int code = 200;
    if (r) {
        if (text) {
            b.put("reloaded: ").put_u64(r->added).put(" added, ").put_u64(r->removed);
            b.put(" removed, ").put_u64(r->changed).put(" changed, ").put_u64(r->unchanged);
            b.put(" unchanged; probes: ").put_u64(r->probes_added).put(" added, ");
            b.put_u64(r->probes_removed).put(" removed, ").put_u64(r->probes_changed);
            b.put(" changed, ").put_u64(r->probes_unchanged).put(" unchanged\n");
        } else {
            b.put("{\"reloaded\":true,\"added\":").put_u64(r->added);
            b.put(",\"removed\":").put_u64(r->removed).put(",\"changed\":").put_u64(r->changed);
            b.put(",\"unchanged\":").put_u64(r->unchanged);
            b.put(",\"probes\":{\"added\":").put_u64(r->probes_added);
            b.put(",\"removed\":").put_u64(r->probes_removed);
            b.put(",\"changed\":").put_u64(r->probes_changed);
            b.put(",\"unchanged\":").put_u64(r->probes_unchanged).put("}}\n");
        }
    } else {
        const Error& e = r.error();
        // ENOSYS: the embedder gave no reload hook.
        code = e.reason() == Reason::reload_busy ? 409 : e.sys_errno() == ENOSYS ? 501 : 422;
        const std::string_view message =
            e.subject().empty() ? std::string_view("the reload was refused") : e.subject();
        std::string_view lines(report.text, report.len);
        if (text) {
            b.put(reason_id(e.reason())).put(": ").put(message).put("\n");
            b.put("  resolution: ").put(e.resolution()).put("\n").put(lines);
            if (report.dropped != 0) {
                b.put_u64(report.dropped).put(" more problems not shown\n");
            }
        } else {
            b.put("{\"error\":").put_json(reason_id(e.reason())).put(",\"message\":");
            b.put_json(message).put(",\"resolution\":").put_json(e.resolution());
            b.put(",\"problems\":[");
            bool first = true;
            while (!lines.empty()) {
                const std::size_t nl = lines.find('\n');
                b.put(first ? "" : ",").put_json(lines.substr(0, nl));
                lines = nl == std::string_view::npos ? std::string_view() : lines.substr(nl + 1);
                first = false;
            }
            b.put("],\"problems_dropped\":").put_u64(report.dropped).put("}\n");
        }
    }
    record_action(c, subject, code);
    reply_text(c, code, text ? content_text : content_json, b.view());
}

} // namespace custos::control
