// The control plane's server (server.hpp): its connection slots and
// listeners, and a connection's life on the reactor: accept (with the peer's
// credentials), receive and parse, close.
#include "control/server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>

#include "control/http.hpp"
#include "control/server_conn.hpp"
#include "table/target.hpp"

namespace custos::control {

using server_detail::deadline_after;
using server_detail::out_size;

namespace {

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
            // does not (ECONNREFUSED); only a stale socket is replaced. A
            // custos that was just killed may still accept for a few
            // milliseconds (an io_uring's accept holds the socket until the
            // kernel tears the ring down): asked again over half a second,
            // only a live one keeps accepting.
            bool alive = true;
            int why = 0;
            for (int attempt = 0; alive && attempt < 10; ++attempt) {
                if (attempt != 0) {
                    const timespec pause{0, 50'000'000};
                    ::nanosleep(&pause, nullptr);
                }
                int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                alive = probe >= 0 && ::connect(probe, sa, sizeof(addr)) == 0;
                why = errno;
                if (probe >= 0) {
                    ::close(probe);
                }
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
