// The control plane's routes (server.hpp): the dispatch of a parsed request,
// the reads (GET and HEAD of the documents in control.hpp), and the
// appliance routes (Runtime::add_control_route).
#include <cstdint>
#include <cstring>

#include "control/http.hpp"
#include "control/server.hpp"
#include "control/server_conn.hpp"
#include "table/values.hpp"

namespace custos::control {

using server_detail::head_room;
using server_detail::out_size;
using server_detail::param_cap;
using server_detail::tail_room;

std::uint32_t server::find(std::span<const std::string_view> names,
                           std::string_view name) const noexcept {
    for (std::uint32_t i = 0; i < names.size(); ++i) {
        if (names[i] == name) {
            return i;
        }
    }
    return UINT32_MAX;
}

Result<void> server::add_route(std::string_view component, ControlHandler handler,
                               void* ctx) noexcept {
    if (!enabled()) {
        return fail(Reason::invalid_argument, 0, "no control socket: add_control_route");
    }
    bool plain = !component.empty() && component.size() < sizeof(custom_route::component);
    for (char ch : component) {
        plain = plain &&
                ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
    }
    for (std::string_view r : reserved_components) {
        plain = plain && r != component;
    }
    for (std::uint32_t i = 0; i < nroutes_; ++i) {
        plain = plain && std::string_view(routes_[i].component, routes_[i].len) != component;
    }
    if (!plain || handler == nullptr) {
        return fail(Reason::invalid_argument, 0, component);
    }
    if (nroutes_ == max_routes) {
        return fail(Reason::capacity_exceeded, 0, component);
    }
    custom_route& r = routes_[nroutes_++];
    std::memcpy(r.component, component.data(), component.size());
    r.len = component.size();
    r.handler = handler;
    r.ctx = ctx;
    return {};
}

bool server::route_custom(conn& c) noexcept {
    const std::string_view path = c.req.path;
    for (std::uint32_t i = 0; i < nroutes_; ++i) {
        const custom_route& r = routes_[i];
        const std::string_view comp(r.component, r.len);
        if (path.size() < comp.size() + 1 || path[0] != '/' ||
            path.substr(1, comp.size()) != comp ||
            (path.size() > comp.size() + 1 && path[comp.size() + 1] != '/')) {
            continue;
        }
        const bool reads = c.req.verb == method::get || c.req.verb == method::head;
        if (!reads && !is_operator(c)) {
            ++counters_.actions_denied;
            record_action(c, comp, 403);
            reply_error(c, 403, Reason::control_denied, "actions need root or an operator");
            return true;
        }
        ControlRequest q;
        q.method = method_name(c.req.verb);
        q.path = path;
        q.query = c.req.query;
        q.body = std::string_view(c.in + c.req.head_bytes, c.req.content_length);
        q.peer_pid = c.pid;
        q.peer_uid = static_cast<int>(c.uid);
        q.operator_ = is_operator(c);
        // The body goes where reply_text() would put it: after room for the head.
        ControlResponse resp(c.out + head_room, out_size - head_room - tail_room);
        r.handler(q, resp, r.ctx);
        if (!reads) {
            ++counters_.actions;
            record_action(c, comp, resp.overflowed() ? 500 : resp.status);
        }
        reply_route(c, resp);
        return true;
    }
    return false;
}

Result<void> server::add_feed(std::string_view component, feed_handler handler,
                              void* ctx) noexcept {
    if (!enabled()) {
        return {}; // no control plane: nothing to serve
    }
    if (component.empty() || component.size() >= sizeof(feed::component) || handler == nullptr) {
        return fail(Reason::invalid_argument, 0, component);
    }
    if (nfeeds_ == max_feeds) {
        return fail(Reason::capacity_exceeded, 0, component);
    }
    feed& f = feeds_[nfeeds_++];
    std::memcpy(f.component, component.data(), component.size());
    f.len = component.size();
    f.handler = handler;
    f.ctx = ctx;
    return {};
}

bool server::route_feed(conn& c) noexcept {
    const std::string_view path = c.req.path;
    for (std::uint32_t i = 0; i < nfeeds_; ++i) {
        const feed& f = feeds_[i];
        const std::string_view comp(f.component, f.len);
        if (path.size() < comp.size() + 1 || path[0] != '/' ||
            path.substr(1, comp.size()) != comp ||
            (path.size() > comp.size() + 1 && path[comp.size() + 1] != '/')) {
            continue;
        }
        start_feed(c, i);
        return true;
    }
    return false;
}

std::uint32_t server::find_feed(std::string_view component) const noexcept {
    for (std::uint32_t i = 0; i < nfeeds_; ++i) {
        if (std::string_view(feeds_[i].component, feeds_[i].len) == component) {
            return i;
        }
    }
    return UINT32_MAX;
}

void server::start_feed(conn& c, std::uint32_t i) noexcept {
    if (c.req.verb != method::get && c.req.verb != method::head) {
        reply_error(c, 405, Reason::control_bad_request, "this route is read-only",
                    "Allow: GET, HEAD\r\n");
        return;
    }
    char buf[param_cap];
    auto fq = query_param(c.req.query, "follow", buf, sizeof(buf));
    Duration follow{0};
    if (fq.present) {
        follow = std::chrono::seconds(30);
        if (!fq.value.empty() &&
            (!fq.valid || tbl::parse_duration(fq.value, follow) != tbl::dur_status::ok)) {
            reply_error(c, 400, Reason::invalid_argument,
                        "follow= takes a duration (30s, 5m), or nothing");
            return;
        }
        if (follow > cfg_.max_wait) {
            follow = cfg_.max_wait;
        }
    }
    if (serve_feed(c, i, follow.count() > 0)) {
        return;
    }
    c.state = conn::phase::waiting;
    c.waiting = conn::wait_kind::feed;
    c.subject = i;
    reactor_->arm_after(c.wait_timer, std::chrono::duration_cast<nanos>(follow));
}

bool server::serve_feed(conn& c, std::uint32_t fi, bool can_wait) noexcept {
    const feed& f = feeds_[fi];
    ControlRequest q;
    q.method = method_name(c.req.verb);
    q.path = c.req.path;
    q.query = c.req.query;
    q.peer_pid = c.pid;
    q.peer_uid = static_cast<int>(c.uid);
    q.operator_ = is_operator(c);
    ControlResponse resp(c.out + head_room, out_size - head_room - tail_room);
    if (!f.handler(q, resp, can_wait, f.ctx)) {
        return false;
    }
    reply_route(c, resp);
    return true;
}

void server::wake_feeds(std::string_view component) noexcept {
    const std::uint32_t only = component.empty() ? UINT32_MAX : find_feed(component);
    if (!component.empty() && only == UINT32_MAX) {
        return;
    }
    for (std::uint32_t i = 0; i < nslots_; ++i) {
        conn& c = slots_[i];
        if (c.state != conn::phase::waiting || c.waiting != conn::wait_kind::feed ||
            (only != UINT32_MAX && c.subject != only)) {
            continue;
        }
        if (serve_feed(c, c.subject, true)) {
            reactor_->cancel(c.wait_timer);
            c.waiting = conn::wait_kind::none;
        }
    }
}

void server::reply_route(conn& c, const ControlResponse& resp) noexcept {
    if (resp.overflowed() || resp.status < 200 || resp.status > 599) {
        reply_error(c, 500, Reason::capacity_exceeded,
                    resp.overflowed() ? "the route's response did not fit its buffer"
                                      : "the route set an invalid status");
        return;
    }
    ++counters_.requests;
    ++counters_.by_code[status::code_index(resp.status)];
    char head[head_room];
    text_out h(head, sizeof(head));
    write_head(h, resp.status, resp.content_type, static_cast<std::int64_t>(resp.size()),
               c.keep_alive, resp.headers);
    if (h.overflowed()) {
        reply_error(c, 500, Reason::invalid_argument, "the route's content type is too long");
        return;
    }
    c.doc_active = false;
    c.chunked = false;
    c.send_at = head_room - static_cast<std::uint32_t>(h.size());
    std::memcpy(c.out + c.send_at, head, h.size());
    c.send_end = head_room + static_cast<std::uint32_t>(c.head_only ? 0 : resp.size());
    c.state = conn::phase::sending;
    send_more(c);
}

void server::route(conn& c) noexcept {
    if (c.tcp) {
        // The TCP listener serves the scrapers' two routes, read-only.
        const bool reads = c.req.verb == method::get || c.req.verb == method::head;
        if (!reads || (c.req.path != route_metrics && c.req.path != route_health)) {
            reply_error(c, 404, Reason::control_bad_request,
                        "only GET /metrics and /health are served over TCP");
            return;
        }
        route_get(c);
        return;
    }
    if (route_custom(c) || route_feed(c) || route_prune_(c)) {
        return;
    }
    const method m = c.req.verb;
    if (m == method::get || m == method::head) {
        route_get(c);
        return;
    }
    if (m == method::post && c.req.path == route_reload) {
        route_reload_(c);
        return;
    }
    if (m == method::post || m == method::delete_) {
        route_action(c);
        return;
    }
    reply_error(c, 405, Reason::control_bad_request, "only GET, HEAD, POST and DELETE are served",
                "Allow: GET, HEAD, POST, DELETE\r\n");
}

void server::route_get(conn& c) noexcept {
    const std::string_view path = c.req.path;
    const std::string_view q = c.req.query;
    char buf[param_cap];
    std::string_view seg;
    std::string_view rest;
    if (path == route_health) {
        const int code = status::health_http_status(snap_->health());
        reply_doc(c, code,
                  query_param(q, "json", buf, sizeof(buf)).present ? status::doc::health_json
                                                                   : status::doc::health_text);
        return;
    }
    if (path == route_status) {
        auto f = query_param(q, "format", buf, sizeof(buf));
        reply_doc(c, 200,
                  f.present && f.value == "tsv" ? status::doc::status_tsv
                                                : status::doc::status_json);
        return;
    }
    if (path == route_metrics) {
        reply_doc(c, 200, status::doc::metrics);
        return;
    }
    if (path == route_watchdog) {
        reply_doc(c, 200, status::doc::watchdog_json);
        return;
    }
    struct table_route {
        std::string_view prefix;
        std::span<const std::string_view> names;
        status::doc kind;
    };
    const table_route tables[] = {
        {prefix_services, names_.services, status::doc::service_json},
        {prefix_probes, names_.probes, status::doc::probe_json},
        {prefix_monitors, names_.monitors, status::doc::monitor_json},
    };
    for (const table_route& t : tables) {
        if (!split_path(path, t.prefix, seg, rest)) {
            continue;
        }
        std::uint32_t i = find(t.names, seg);
        if (i == UINT32_MAX) {
            reply_error(c, 404, Reason::control_bad_request, "no such name");
            return;
        }
        if (rest == "logs" && t.kind == status::doc::service_json &&
            find_feed("logs") != UINT32_MAX) {
            start_feed(c, find_feed("logs")); // the service's captured output
            return;
        }
        if (!rest.empty()) {
            reply_error(c, 405, Reason::control_bad_request, "actions are POST", "Allow: POST\r\n");
            return;
        }
        status::doc kind = t.kind;
        auto f = query_param(q, "format", buf, sizeof(buf));
        if (kind == status::doc::service_json && f.present && f.value == "text") {
            kind = status::doc::service_text;
        }
        reply_doc(c, 200, kind, i);
        return;
    }
    reply_error(c, 404, Reason::control_bad_request, "no such route");
}

} // namespace custos::control
