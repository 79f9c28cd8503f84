// The control plane's server (server.hpp): connection slots on the reactor,
// routing, auth by peer credentials, ?wait parking.
#include "control/server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>

#include "control/http.hpp"
#include "core/assert.hpp"
#include "io/files.hpp"
#include "table/target.hpp"
#include "table/values.hpp"

namespace custos::control {

namespace {

constexpr std::uint32_t out_size = 16384;
// Room before the body for the response head and a chunk-size line, and
// after it for the chunk's CRLF and the last chunk.
constexpr std::uint32_t head_room = 512;
constexpr std::uint32_t tail_room = 8;
constexpr std::size_t param_cap = 64;

mono_time deadline_after(const io::reactor& r, Duration d) noexcept {
    return r.now() + std::chrono::duration_cast<nanos>(d);
}

// Sent to a client beyond the slots, without a slot.
constexpr char busy_response[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 141\r\n"
    "Connection: close\r\n"
    "\r\n"
    "{\"error\":\"CapacityExceeded\",\"message\":\"every control connection is in use\","
    "\"resolution\":\"Retry; raise [control] max_clients if it persists\"}\n";
// Content-Length said 150 for this 141-byte body (clients waited for 9
// more bytes, then saw the close as a truncated response): checked here.
constexpr std::string_view busy_view(busy_response, sizeof(busy_response) - 1);
static_assert(busy_view.size() - busy_view.find("\r\n\r\n") - 4 == 141,
              "busy_response's Content-Length must match its body");

} // namespace

struct server::conn {
    enum class phase : std::uint8_t { free, reading, waiting, sending, closing };
    enum class wait_kind : std::uint8_t { none, start, stop, restart, check };

    server* owner = nullptr;
    int fd = -1;
    phase state = phase::free;
    io::op rx;
    io::op tx;
    io::timer wait_timer;
    char* in = nullptr;
    std::uint32_t in_len = 0;
    char* out = nullptr;
    std::uint32_t send_at = 0;  // next byte to send
    std::uint32_t send_end = 0; // end of what is to send
    request req;
    bool keep_alive = true;
    bool head_only = false;
    bool chunked = false;
    bool doc_active = false;
    bool tcp = false;           // from the read-only TCP listener
    bool continue_sent = false; // 100 Continue answered this request's Expect
    bool interim = false;       // what is being sent is the 100 Continue
    std::uint32_t requests = 0;
    mono_time request_start{};
    status::document doc;
    // ?wait
    wait_kind waiting = wait_kind::none;
    std::uint32_t subject = 0;
    std::int64_t before = 0;
    // The peer.
    pid_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
};

namespace {

void accept_done(io::op& o, std::int32_t res) noexcept {
    auto* l = static_cast<server::listener*>(o.user);
    l->owner->on_accept(*l, res);
}

void recv_done(io::op& o, std::int32_t res) noexcept {
    auto* c = static_cast<server::conn*>(o.user);
    c->owner->on_recv(*c, res);
}

void send_done(io::op& o, std::int32_t res) noexcept {
    auto* c = static_cast<server::conn*>(o.user);
    c->owner->on_sent(*c, res);
}

void wait_fired(io::timer& t) noexcept {
    auto* c = static_cast<server::conn*>(t.user);
    c->owner->on_wait_timeout(*c);
}

} // namespace

server::~server() {
    stop();
}

Result<void> server::init(arena& mem, const ControlConfig& cfg, operator_ids ops, route_names names,
                          io::reactor& r, const status::snapshot& snap, status::render_context& ctx,
                          status::stream& events, actions& act) noexcept {
    cfg_ = cfg;
    ops_ = ops;
    names_ = names;
    reactor_ = &r;
    snap_ = &snap;
    ctx_ = &ctx;
    events_ = &events;
    act_ = &act;
    if (cfg.socket.empty()) {
        return {};
    }
    if (cfg.socket.size() >= sizeof(path_)) {
        return fail(Reason::control_socket_unavailable, ENAMETOOLONG, cfg.socket);
    }
    nslots_ = cfg.max_clients;
    in_cap_ = cfg.max_head_bytes + cfg.max_body_bytes;
    auto* slots = mem.make_array<conn>(nslots_);
    // Taken, not constructed: the buffers are written before they are read,
    // and pages never touched stay out of the resident set until a client
    // uses its slot (8 slots are 224 KiB).
    auto* in =
        static_cast<char*>(mem.take_unzeroed(static_cast<std::size_t>(in_cap_) * nslots_, 64));
    auto* out =
        static_cast<char*>(mem.take_unzeroed(static_cast<std::size_t>(out_size) * nslots_, 64));
    // The snapshot's room, known on the measuring pass too (where its init
    // failed): the memo is sized the same on both.
    const bool memo_ok = static_cast<bool>(memo_.init(mem, snap.service_room(), snap.probe_room()));
    if (slots == nullptr || in == nullptr || out == nullptr || !memo_ok) {
        return fail(Reason::out_of_memory, ENOMEM, "control connections");
    }
    // One metrics scratch for all connections (render.hpp): each record
    // copied once per /metrics instead of once per family.
    scratch_.services = std::span(scratch_services_);
    scratch_.probes = std::span(scratch_probes_);
    for (std::uint32_t i = 0; i < nslots_; ++i) {
        conn& c = slots[i];
        c.owner = this;
        c.rx.done = recv_done;
        c.rx.user = &c;
        c.tx.done = send_done;
        c.tx.user = &c;
        c.wait_timer.fire = wait_fired;
        c.wait_timer.user = &c;
        c.in = in + static_cast<std::size_t>(in_cap_) * i;
        c.out = out + static_cast<std::size_t>(out_size) * i;
    }
    slots_ = slots;
    std::memcpy(path_, cfg.socket.data(), cfg.socket.size());
    path_[cfg.socket.size()] = '\0';
    // The table's strings live only until init returns.
    cfg_.socket = std::string_view(path_, cfg.socket.size());
    cfg_.group = {};
    cfg_.operators = {};
    counters_.max_clients = nslots_;
    ctx.control = &counters_;
    ctx.scratch = &scratch_;
    ctx.memo = &memo_;
    ctx.process = &process_;
    for (listener* l : {&unix_, &tcp_}) {
        l->owner = this;
        l->op.done = accept_done;
        l->op.user = l;
    }
    tcp_.tcp = true;
    if (!cfg.metrics_listen.empty()) {
        auto hp = tbl::parse_host_port(cfg.metrics_listen);
        if (!hp || !hp->literal) {
            Error e(Reason::invalid_argument, 0, cfg.metrics_listen);
            e.with_resolution("Give metrics_listen as a literal address and a port: "
                              "127.0.0.1:9101 or [::1]:9101");
            return fail(e);
        }
        tcp_addr_ = hp->addr;
        tcp_addr_len_ = hp->addr_len;
    }
    cfg_.metrics_listen = {};
    cfg_.metrics_textfile = {};
    return {};
}

Result<void> server::start() noexcept {
    if (!enabled()) {
        return {};
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail(Reason::control_socket_unavailable, errno, "socket");
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_, std::strlen(path_) + 1);
    auto* sa = reinterpret_cast<const sockaddr*>(&addr);
    if (::bind(fd, sa, sizeof(addr)) != 0) {
        int err = errno;
        if (err == EADDRINUSE) {
            // A file is there: a live custos answers on it, a stale one
            // does not (ECONNREFUSED); only a stale socket is replaced.
            int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            const bool alive = probe >= 0 && ::connect(probe, sa, sizeof(addr)) == 0;
            const int why = errno;
            if (probe >= 0) {
                ::close(probe);
            }
            if (alive) {
                ::close(fd);
                return fail(Reason::control_socket_in_use, EADDRINUSE, cfg_.socket);
            }
            struct stat st {};
            if (why == ECONNREFUSED && ::lstat(path_, &st) == 0 && S_ISSOCK(st.st_mode) &&
                ::unlink(path_) == 0 && ::bind(fd, sa, sizeof(addr)) == 0) {
                err = 0;
            } else {
                err = why == ECONNREFUSED ? errno : EADDRINUSE;
            }
        }
        if (err != 0) {
            ::close(fd);
            return fail(Reason::control_socket_unavailable, err, cfg_.socket);
        }
    }
    if (::chmod(path_, cfg_.mode & 07777) != 0 ||
        (ops_.socket_group != static_cast<gid_t>(-1) &&
         ::chown(path_, static_cast<uid_t>(-1), ops_.socket_group) != 0) ||
        ::listen(fd, 16) != 0) {
        int err = errno;
        ::close(fd);
        ::unlink(path_);
        return fail(Reason::control_socket_unavailable, err, cfg_.socket);
    }
    unix_.fd = fd;
    if (tcp_addr_len_ != 0) {
        if (auto r = listen_tcp(); !r) {
            ::close(unix_.fd);
            unix_.fd = -1;
            ::unlink(path_);
            return r;
        }
    }
    stopped_ = false;
    accept_next(unix_);
    accept_next(tcp_);
    return {};
}

Result<void> server::listen_tcp() noexcept {
    int fd = ::socket(tcp_addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return fail(Reason::control_socket_unavailable, errno, "metrics_listen");
    }
    const int one = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&tcp_addr_), tcp_addr_len_) != 0 ||
        ::listen(fd, 16) != 0) {
        const int err = errno;
        ::close(fd);
        Error e(Reason::control_socket_unavailable, err, "metrics_listen");
        e.with_resolution("Choose a free port and an address of this host for metrics_listen");
        return fail(e);
    }
    tcp_.fd = fd;
    return {};
}

void server::stop() noexcept {
    if (unix_.fd < 0 || stopped_) {
        return;
    }
    stopped_ = true;
    for (std::uint32_t i = 0; i < nslots_; ++i) {
        if (slots_[i].state != conn::phase::free) {
            close_conn(slots_[i]);
        }
    }
    close_listener(unix_);
    close_listener(tcp_);
    ::unlink(path_);
}

// Closes `l` now, or, with its accept in flight, once that has come back.
void server::close_listener(listener& l) noexcept {
    if (l.fd < 0) {
        return;
    }
    if (l.op.busy()) {
        reactor_->cancel(l.op);
    }
    ::shutdown(l.fd, SHUT_RDWR);
    if (!l.op.busy()) {
        ::close(l.fd);
        l.fd = -1;
    }
}

void server::accept_next(listener& l) noexcept {
    if (stopped_ || l.fd < 0 || l.op.busy()) {
        return;
    }
    reactor_->accept(l.op, l.fd, nullptr, nullptr);
}

void server::on_accept(listener& l, std::int32_t res) noexcept {
    ++callbacks_;
    if (stopped_) {
        if (l.fd >= 0) {
            ::close(l.fd);
            l.fd = -1;
        }
        if (res >= 0) {
            ::close(res);
        }
        return;
    }
    if (res < 0) {
        // EMFILE and the like: the next accept tries again; the listen
        // queue holds the client meanwhile.
        accept_next(l);
        return;
    }
    ++counters_.connections;
    conn* c = nullptr;
    for (std::uint32_t i = 0; i < nslots_; ++i) {
        if (slots_[i].state == conn::phase::free) {
            c = &slots_[i];
            break;
        }
    }
    if (c == nullptr) {
        refuse_full(res);
        accept_next(l);
        return;
    }
    c->fd = res;
    c->tcp = l.tcp;
    c->state = conn::phase::reading;
    c->in_len = 0;
    c->requests = 0;
    c->keep_alive = true;
    c->continue_sent = false;
    c->interim = false;
    c->waiting = conn::wait_kind::none;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (!l.tcp && ::getsockopt(res, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
        c->gid = cred.gid;
    } else {
        c->pid = 0;
        c->uid = static_cast<uid_t>(-1); // unknown: may read, never act
        c->gid = static_cast<gid_t>(-1);
    }
    ++counters_.clients;
    c->request_start = reactor_->now();
    read_more(*c);
    accept_next(l);
}

void server::refuse_full(int fd) noexcept {
    ++counters_.refused_full;
    ++counters_.by_code[status::code_index(503)];
    // One attempt, never waiting: a client that cannot take 200 bytes now gets
    // only the close.
    (void)::send(fd, busy_response, sizeof(busy_response) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    ::close(fd);
}

void server::read_more(conn& c) noexcept {
    c.state = conn::phase::reading;
    // Between requests the idle timeout; within one, the head timeout from
    // its first byte.
    mono_time deadline =
        c.in_len == 0 ? deadline_after(*reactor_, cfg_.idle_timeout)
                      : c.request_start + std::chrono::duration_cast<nanos>(cfg_.head_timeout);
    reactor_->recv(c.rx, c.fd, c.in + c.in_len, in_cap_ - c.in_len, 0, deadline);
}

void server::on_recv(conn& c, std::int32_t res) noexcept {
    ++callbacks_;
    if (c.state == conn::phase::closing) {
        close_conn(c);
        return;
    }
    if (res == -ETIMEDOUT) {
        ++counters_.timeouts;
        if (c.in_len == 0) {
            close_conn(c); // idle keep-alive: just close
            return;
        }
        c.keep_alive = false;
        ++counters_.bad_requests;
        reply_error(c, 408, Reason::control_bad_request, "the request did not arrive in time");
        return;
    }
    if (res <= 0) {
        close_conn(c); // EOF or an error: the client is gone
        return;
    }
    if (c.in_len == 0) {
        c.request_start = reactor_->now();
    }
    c.in_len += static_cast<std::uint32_t>(res);
    serve(c);
}

// Parses what is buffered: a whole request is routed; more is read;
// anything malformed is refused and the connection closed.
void server::serve(conn& c) noexcept {
    parse_limits lim;
    lim.max_head = cfg_.max_head_bytes;
    lim.max_body = cfg_.max_body_bytes;
    parse_status ps = parse_request({c.in, c.in_len}, c.req, lim);
    if (ps == parse_status::incomplete) {
        if (c.in_len >= in_cap_) {
            ps = parse_status::head_too_large;
        } else {
            read_more(c);
            return;
        }
    }
    if (ps != parse_status::done) {
        c.keep_alive = false;
        ++counters_.bad_requests;
        reply_error(c, http_status(ps), Reason::control_bad_request,
                    ps == parse_status::head_too_large   ? "the request head is too large"
                    : ps == parse_status::body_too_large ? "the request body is too large"
                    : ps == parse_status::version        ? "only HTTP/1.0 and HTTP/1.1 are served"
                                                         : "not a well-formed HTTP request");
        return;
    }
    if (c.req.head_bytes + c.req.content_length > c.in_len) {
        if (c.req.expect_continue && !c.continue_sent) {
            // curl asks before a body over 1 KiB, and waits a second
            // without this interim answer.
            constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
            c.continue_sent = true;
            c.interim = true;
            std::memcpy(c.out, go_on.data(), go_on.size());
            c.send_at = 0;
            c.send_end = static_cast<std::uint32_t>(go_on.size());
            c.state = conn::phase::sending;
            send_more(c);
            return;
        }
        read_more(c); // the body is still coming
        return;
    }
    c.continue_sent = false;
    ++c.requests;
    c.keep_alive = c.req.keep_alive && c.requests < cfg_.max_requests && !stopped_;
    c.head_only = c.req.verb == method::head;
    route(c);
}

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
        if (resp.overflowed() || resp.status < 200 || resp.status > 599) {
            reply_error(c, 500, Reason::capacity_exceeded,
                        resp.overflowed() ? "the route's response did not fit its buffer"
                                          : "the route set an invalid status");
            return true;
        }
        ++counters_.requests;
        ++counters_.by_code[status::code_index(resp.status)];
        char head[head_room];
        text_out h(head, sizeof(head));
        write_head(h, resp.status, resp.content_type, static_cast<std::int64_t>(resp.size()),
                   c.keep_alive);
        if (h.overflowed()) {
            reply_error(c, 500, Reason::invalid_argument, "the route's content type is too long");
            return true;
        }
        c.doc_active = false;
        c.chunked = false;
        c.send_at = head_room - static_cast<std::uint32_t>(h.size());
        std::memcpy(c.out + c.send_at, head, h.size());
        c.send_end = head_room + static_cast<std::uint32_t>(c.head_only ? 0 : resp.size());
        c.state = conn::phase::sending;
        send_more(c);
        return true;
    }
    return false;
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
    if (route_custom(c)) {
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
    case conn::wait_kind::none:
        break;
    }
    return true;
}

void server::after_publish() noexcept {
    for (std::uint32_t i = 0; i < nslots_; ++i) {
        conn& c = slots_[i];
        if (c.state != conn::phase::waiting || !settled(c)) {
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
    const bool probe = c.waiting == conn::wait_kind::check;
    c.waiting = conn::wait_kind::none;
    reply_doc(c, 504, probe ? status::doc::probe_json : status::doc::service_json, c.subject);
}

void server::refresh_context() noexcept {
    ctx_->now_ns = to_ns(reactor_->now());
    ctx_->wall_now_ns = status::wall_now_ns();
    ctx_->reactor = &reactor_->stats();
}

// Renders the first buffer of a document and sends it: with Content-Length
// when the whole document fits, else chunked.
void server::reply_doc(conn& c, int code, status::doc kind, std::uint32_t index) noexcept {
    ++counters_.requests;
    ++counters_.by_code[status::code_index(code)];
    refresh_context();
    if (kind == status::doc::metrics) {
        // process_* figures, read now (procfs: no waiting on a peer).
        process_ = {};
        read_process_info(process_);
    }
    c.doc.begin(kind, *ctx_, index);
    text_out body(c.out + head_room, out_size - head_room - tail_room);
    const bool whole = c.doc.fill(body);
    c.chunked = !whole;
    c.doc_active = !whole;
    char head[head_room];
    text_out h(head, sizeof(head));
    const std::string_view type =
        kind == status::doc::metrics                                            ? content_metrics
        : kind == status::doc::health_text || kind == status::doc::service_text ? content_text
        : kind == status::doc::status_tsv                                       ? content_tsv
                                                                                : content_json;
    write_head(h, code, type, whole ? static_cast<std::int64_t>(body.size()) : -1, c.keep_alive);
    std::uint32_t len = static_cast<std::uint32_t>(body.size());
    if (c.head_only) {
        len = 0;
        c.doc_active = false;
        c.chunked = false;
    } else if (c.chunked) {
        write_chunk_size(h, body.size());
        std::memcpy(c.out + head_room + len, chunk_end.data(), chunk_end.size());
        len += static_cast<std::uint32_t>(chunk_end.size());
    }
    CUSTOS_ASSERT(!h.overflowed());
    c.send_at = head_room - static_cast<std::uint32_t>(h.size());
    std::memcpy(c.out + c.send_at, head, h.size());
    c.send_end = head_room + len;
    c.state = conn::phase::sending;
    send_more(c);
}

void server::reply_text(conn& c, int code, std::string_view type, std::string_view body,
                        std::string_view extra_head) noexcept {
    ++counters_.requests;
    ++counters_.by_code[status::code_index(code)];
    text_out o(c.out, out_size);
    write_head(o, code, type, static_cast<std::int64_t>(body.size()), c.keep_alive, extra_head);
    if (!c.head_only) {
        o.put(body);
    }
    c.doc_active = false;
    c.chunked = false;
    c.send_at = 0;
    c.send_end = static_cast<std::uint32_t>(o.size());
    c.state = conn::phase::sending;
    send_more(c);
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

void server::reply_error(conn& c, int code, Reason why, std::string_view message,
                         std::string_view extra_head) noexcept {
    char body[512];
    text_out b(body, sizeof(body));
    b.put("{\"error\":").put_json(reason_id(why)).put(",\"message\":").put_json(message);
    b.put(",\"resolution\":").put_json(Error(why, 0).resolution()).put("}\n");
    reply_text(c, code, content_json, b.view(), extra_head);
}

// What is in the buffer goes out by direct non-blocking send()s while the
// socket takes it, and the next buffer of a chunked document is rendered
// and sent in the same turn: a response that fits the socket's send buffer
// costs no reactor turn of its own. Only when the socket is full does a send
// op (with send_timeout) wait for it. A pipelined request served from
// inside (finish_response -> serve -> reply) sends through the op, so the
// stack never grows with the number of pipelined requests.
void server::send_more(conn& c) noexcept {
    if (sending_inline_) {
        send_op(c);
        return;
    }
    sending_inline_ = true;
    for (;;) {
        if (c.send_at < c.send_end) {
            const ssize_t n = ::send(c.fd, c.out + c.send_at, c.send_end - c.send_at,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                c.send_at += static_cast<std::uint32_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                send_op(c); // the client reads slower than we write: wait for it
            } else {
                close_conn(c); // the client is gone, as a failed send op would say
            }
            break;
        }
        if (!next_piece(c)) {
            break;
        }
    }
    sending_inline_ = false;
}

void server::send_op(conn& c) noexcept {
    reactor_->send(c.tx, c.fd, c.out + c.send_at, c.send_end - c.send_at, MSG_NOSIGNAL,
                   deadline_after(*reactor_, cfg_.send_timeout));
}

void server::on_sent(conn& c, std::int32_t res) noexcept {
    ++callbacks_;
    if (c.state == conn::phase::closing) {
        close_conn(c);
        return;
    }
    if (res <= 0) {
        if (res == -ETIMEDOUT) {
            ++counters_.timeouts; // a client that does not read
        }
        close_conn(c);
        return;
    }
    c.send_at += static_cast<std::uint32_t>(res);
    send_more(c);
}

// The buffer is out: sets up the next one of a chunked document (true), or
// moves on to what follows the response (false).
bool server::next_piece(conn& c) noexcept {
    if (c.interim) {
        c.interim = false; // 100 Continue is out: now the body
        read_more(c);
        return false;
    }
    if (!c.doc_active) {
        finish_response(c);
        return false;
    }
    // The next buffer of a chunked document.
    refresh_context();
    text_out body(c.out + head_room, out_size - head_room - tail_room);
    const bool whole = c.doc.fill(body);
    char line[16];
    text_out l(line, sizeof(line));
    std::uint32_t len = static_cast<std::uint32_t>(body.size());
    if (len > 0) {
        write_chunk_size(l, len);
        std::memcpy(c.out + head_room + len, chunk_end.data(), chunk_end.size());
        len += static_cast<std::uint32_t>(chunk_end.size());
    }
    if (whole) {
        std::memcpy(c.out + head_room + len, last_chunk.data(), last_chunk.size());
        len += static_cast<std::uint32_t>(last_chunk.size());
        c.doc_active = false;
    }
    c.send_at = head_room - static_cast<std::uint32_t>(l.size());
    std::memcpy(c.out + c.send_at, line, l.size());
    c.send_end = head_room + len;
    return true;
}

// The response is out: the next request (pipelined bytes first), or close.
void server::finish_response(conn& c) noexcept {
    if (!c.keep_alive) {
        close_conn(c);
        return;
    }
    const std::uint32_t used = c.req.head_bytes + c.req.content_length;
    const std::uint32_t left = c.in_len > used ? c.in_len - used : 0;
    if (left > 0) {
        std::memmove(c.in, c.in + used, left);
    }
    c.in_len = left;
    c.request_start = reactor_->now();
    if (left > 0) {
        serve(c);
        return;
    }
    read_more(c);
}

void server::close_conn(conn& c) noexcept {
    if (c.state == conn::phase::free) {
        return;
    }
    if (c.state != conn::phase::closing) {
        c.state = conn::phase::closing;
        reactor_->cancel(c.wait_timer);
        // Wakes a pending recv (0) and send (EPIPE) on both backends.
        ::shutdown(c.fd, SHUT_RDWR);
        if (c.rx.busy()) {
            reactor_->cancel(c.rx);
        }
        if (c.tx.busy()) {
            reactor_->cancel(c.tx);
        }
    }
    if (c.rx.busy() || c.tx.busy()) {
        return; // the last callback comes back here
    }
    ::close(c.fd);
    c.fd = -1;
    c.state = conn::phase::free;
    c.waiting = conn::wait_kind::none;
    c.doc_active = false;
    --counters_.clients;
}

} // namespace custos::control
