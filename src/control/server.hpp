// The control plane's server: HTTP/1.1 on a Unix stream socket, served by
// the reactor (accept, recv and send are reactor ops, so io_uring and epoll
// serve it alike), routes per include/custos/control.hpp.
//
// Owns: the listening socket (made and bound at start(), unlinked at
// stop()), and a fixed set of connection slots taken from the runtime's
// arena at init (ControlConfig::max_clients, each with a request buffer of
// max_head + max_body bytes and a 16 KiB response buffer), one metrics
// scratch shared by all, in the server itself: render.hpp's figures of up
// to 64 services and 64 probes, ~100 bytes a record; and GET /status's
// text memo (render.hpp's text_memo), from the arena: ~700 bytes a
// service and ~500 a probe of the snapshot's room, whose text pool pages
// stay out of the resident set until /status is asked for. Nothing is
// allocated after init: a client beyond the slots is accepted, answered 503
// with one non-blocking send from a static buffer, closed and counted.
//
// A connection: recv until the head parses (head_timeout from the first
// byte of each request; idle_timeout between keep-alive requests), then the
// body, then the route: a read renders a status::document into the response
// buffer (Content-Length when it fits at once, else chunked, a buffer at a
// time); an action asks `actions` and, with ?wait, parks the connection
// until after_publish() sees it settled or its timer fires (504). A send
// that the client does not take within send_timeout closes it. Pipelined
// requests are served in order. Every refusal (400, 408, 413, 431, 505)
// closes the connection.
//
// A second, read-only listener on TCP (ControlConfig::metrics_listen)
// serves GET/HEAD /metrics and /health to scrapers that cannot reach a
// Unix socket; its clients share the slots and can never act.
//
// Auth: SO_PEERCRED at accept. Reads are open to whoever can connect;
// actions need uid 0 or an operator (uid, or primary gid). Every action,
// allowed or not, is dispatched on the event stream (control_action) with
// the peer's pid, uid and command (/proc/PID/comm).
//
// Threads: reactor thread only.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/control.hpp>
#include <custos/error.hpp>
#include <custos/prune.hpp>

#include "core/arena.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"
#include "status/render.hpp"
#include "status/snapshot.hpp"
#include "status/stream.hpp"

namespace custos::control {

// What the server asks of the runtime, on the reactor thread. Errors carry
// the Reason the client is told.
class actions {
public:
    virtual Result<void> start_service(std::uint32_t i) noexcept = 0;
    virtual Result<void> stop_service(std::uint32_t i) noexcept = 0;
    virtual Result<void> restart_service(std::uint32_t i) noexcept = 0;
    virtual Result<void> check_probe(std::uint32_t p) noexcept = 0;
    virtual Result<void> hold_watchdog(Duration d, std::string_view by) noexcept = 0;
    virtual Result<void> release_watchdog(std::string_view by) noexcept = 0;
    // POST /reload (Runtime::reload through the embedder's reload hook):
    // every problem found goes to `report`.
    virtual Result<ReloadSummary> reload(ReloadReport& report) noexcept = 0;
    // The retention pruner's jobs (GET /prune, POST /prune/NAME): how many,
    // one's status (InvalidArgument past the count), and a run now
    // (Runtime::prune_now, by index).
    virtual std::uint32_t prune_jobs() const noexcept = 0;
    virtual Result<PruneJobStatus> prune_job_status(std::uint32_t j) const noexcept = 0;
    virtual Result<PruneSummary> prune_job_run(std::uint32_t j, bool dry_run,
                                               PruneVisitor* v) noexcept = 0;

protected:
    ~actions() = default;
};

// Who may act besides uid 0, and the socket file's group, resolved at init
// from ControlConfig::operators and ::group.
struct operator_ids {
    std::span<const uid_t> uids;
    std::span<const gid_t> gids;
    gid_t socket_group = static_cast<gid_t>(-1); // -1: custos's own
};

// The process's own figures for the process_* metrics, from /proc/self.
void read_process_info(status::process_info& out) noexcept;

// The names the routes look up, in table order (the plan's, outliving the
// server).
struct route_names {
    std::span<const std::string_view> services;
    std::span<const std::string_view> probes;
    std::span<const std::string_view> monitors;
};

class server {
public:
    struct conn;

    server() noexcept = default;
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server();

    // Lays out the slots in `mem` (two-pass sizing: OutOfMemory on the
    // measuring pass). `cfg.socket` empty: nothing is taken, start() does
    // nothing. `ctx` is the render context the runtime keeps current (its
    // now/wall times are set by the server per request).
    [[nodiscard]] Result<void> init(arena& mem, const ControlConfig& cfg, operator_ids ops,
                                    route_names names, io::reactor& r, const status::snapshot& snap,
                                    status::render_context& ctx, status::stream& events,
                                    actions& act) noexcept;
    // Makes, binds and listens on the socket (a stale file is replaced when
    // nothing answers on it), sets its mode and group, and starts
    // accepting. Errors: ControlSocketInUse, ControlSocketUnavailable.
    [[nodiscard]] Result<void> start() noexcept;
    // Closes every connection and the socket, and unlinks its file.
    void stop() noexcept;
    bool enabled() const noexcept { return slots_ != nullptr; }

    // After each publication of the snapshot: answers the parked ?wait
    // actions that have settled.
    void after_publish() noexcept;

    const status::control_counters& counters() const noexcept { return counters_; }
    // Reactor callbacks the server has run (accepts, receives, sends, wait
    // timers): the runtime tells a turn that served only clients by it.
    std::uint64_t callbacks() const noexcept { return callbacks_; }

    // A read the runtime serves under one of the reserved components
    // (GET /events): the handler writes the answer into `resp` and returns
    // true, or, when `can_wait` (the request asked ?follow), may return
    // false: nothing to say yet. The connection is then parked until
    // wake_feeds() (the handler is asked again) or until the follow time
    // (?follow=DURATION, default 30 s, at most max_wait) runs out (asked a
    // last time with can_wait false). GET and HEAD only; open to every
    // reader, like the other reads. Before start(). Errors: InvalidArgument,
    // CapacityExceeded (more than max_feeds).
    using feed_handler = bool (*)(const ControlRequest& req, ControlResponse& resp, bool can_wait,
                                  void* ctx);
    static constexpr std::uint32_t max_feeds = 4;
    [[nodiscard]] Result<void> add_feed(std::string_view component, feed_handler handler,
                                        void* ctx) noexcept;
    // Something new for the feeds: every parked follower (of `component`'s
    // feed; empty: of every feed) asks again.
    void wake_feeds(std::string_view component = {}) noexcept;

    // An appliance route (Runtime::add_control_route): before start().
    // Errors: InvalidArgument, CapacityExceeded (see runtime.hpp).
    [[nodiscard]] Result<void> add_route(std::string_view component, ControlHandler handler,
                                         void* ctx) noexcept;

    // A listening socket: the Unix one, or the read-only TCP one.
    struct listener {
        server* owner = nullptr;
        int fd = -1;
        bool tcp = false;
        io::op op;
    };

    // Internal: the reactor callbacks' targets.
    void on_accept(listener& l, std::int32_t res) noexcept;
    void on_recv(conn& c, std::int32_t res) noexcept;
    void on_sent(conn& c, std::int32_t res) noexcept;
    void on_wait_timeout(conn& c) noexcept;

private:
    void accept_next(listener& l) noexcept;
    void close_listener(listener& l) noexcept;
    [[nodiscard]] Result<void> listen_tcp() noexcept;
    void refuse_full(int fd) noexcept;
    void read_more(conn& c) noexcept;
    void serve(conn& c) noexcept;
    void route(conn& c) noexcept;
    void route_get(conn& c) noexcept;
    void route_action(conn& c) noexcept;
    void route_reload_(conn& c) noexcept;
    // GET /prune, GET /prune/NAME and POST /prune/NAME (prune.cpp); true
    // when the path is the pruner's.
    bool route_prune_(conn& c) noexcept;
    // Sends what was written at c.out + head_room (`len` bytes) with its head.
    void reply_in_place(conn& c, int status, std::string_view type, std::size_t len) noexcept;
    // True when an appliance route took the request.
    bool route_custom(conn& c) noexcept;
    // True when a feed took the request.
    bool route_feed(conn& c) noexcept;
    // The feed registered for `component`, or UINT32_MAX.
    std::uint32_t find_feed(std::string_view component) const noexcept;
    // Serves feed `i` to c: at once, or parked with ?follow.
    void start_feed(conn& c, std::uint32_t i) noexcept;
    // Asks feed `f` for conn c's answer; false: parked (can_wait only).
    bool serve_feed(conn& c, std::uint32_t f, bool can_wait) noexcept;
    // Sends a route's or a feed's answer (the body already at
    // c.out + head_room).
    void reply_route(conn& c, const ControlResponse& resp) noexcept;
    void reply_doc(conn& c, int status, status::doc kind, std::uint32_t index = 0) noexcept;
    void reply_error(conn& c, int status, Reason why, std::string_view message,
                     std::string_view extra_head = {}) noexcept;
    void reply_text(conn& c, int status, std::string_view type, std::string_view body,
                    std::string_view extra_head = {}) noexcept;
    void send_more(conn& c) noexcept;
    void send_op(conn& c) noexcept;
    bool next_piece(conn& c) noexcept;
    void finish_response(conn& c) noexcept;
    void close_conn(conn& c) noexcept;
    bool is_operator(const conn& c) const noexcept;
    void record_action(conn& c, std::string_view subject, int status) noexcept;
    bool settled(const conn& c) const noexcept;
    void refresh_context() noexcept;
    std::uint32_t find(std::span<const std::string_view> names,
                       std::string_view name) const noexcept;

    ControlConfig cfg_;
    operator_ids ops_;
    route_names names_;
    io::reactor* reactor_ = nullptr;
    const status::snapshot* snap_ = nullptr;
    status::render_context* ctx_ = nullptr;
    status::stream* events_ = nullptr;
    actions* act_ = nullptr;

    conn* slots_ = nullptr;
    std::uint32_t nslots_ = 0;
    std::uint32_t in_cap_ = 0;
    listener unix_;
    listener tcp_;
    sockaddr_storage tcp_addr_{};
    socklen_t tcp_addr_len_ = 0;
    bool stopped_ = false;
    bool sending_inline_ = false; // send_more() is on the stack
    char path_[108] = {};
    struct custom_route {
        char component[32] = {};
        std::size_t len = 0;
        ControlHandler handler = nullptr;
        void* ctx = nullptr;
    };
    custom_route routes_[max_routes];
    std::uint32_t nroutes_ = 0;
    struct feed {
        char component[32] = {};
        std::size_t len = 0;
        feed_handler handler = nullptr;
        void* ctx = nullptr;
    };
    feed feeds_[max_feeds];
    std::uint32_t nfeeds_ = 0;
    std::uint64_t callbacks_ = 0;
    status::control_counters counters_;
    status::process_info process_;
    // The metrics scratch is a fixed part of the server, not taken from the
    // arena: the runtime's sizing pass lays the server out before the
    // table's names (and so its counts) are known. Records beyond it are
    // read per family (render.hpp), so a larger table is served the same,
    // only slower.
    static constexpr std::size_t scratch_records = 64;
    status::service_figures scratch_services_[scratch_records];
    status::probe_figures scratch_probes_[scratch_records];
    status::metrics_scratch scratch_;
    // GET /status's record texts (render.hpp), sized from the snapshot's
    // room and taken from the arena at init.
    status::text_memo memo_;
};

} // namespace custos::control
