// Loopback servers for the probe tests: the other end of a tcp, http or
// unix-socket probe, each in its own thread with plain blocking sockets
// (test code: simplicity over the runtime's rules).
//
// Every server binds 127.0.0.1 (or ::1 when asked for loopback::v6) on an
// ephemeral port, so tests run in parallel without clashing. A constructor
// cannot fail loudly without exceptions: check ok() first. The destructor
// wakes the thread through a pipe, joins it and closes every descriptor it
// opened: no thread or fd outlives the object.
//
// After construction the server threads allocate nothing (fixed buffers, a
// mutex, atomics), so they can run beside a test that counts allocations
// (tests/counting_alloc.hpp). Only last_request() returning std::string
// allocates, in the caller's thread.
//
//   tcp_listener            accepts and closes; counts accepts
//   full_backlog_listener   listen(fd, 0), never accepts, queue pre-filled:
//                           a further connect hangs (see reliable())
//   closed_port()           a port nothing listens on: connect is refused
//   http_server             reads a request head, records it, then answers
//                           as its mode says
//   unix_listener           AF_UNIX stream socket at a path; accepts and closes
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace custos_test {

enum class loopback : std::uint8_t { v4, v6 };

namespace detail {

inline void close_fd(int& fd) noexcept {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

// A socket of `type` bound to the loopback address of `fam` on an ephemeral
// port, which is stored in `port`. -1 on failure (errno set).
inline int bind_loopback(loopback fam, int type, std::uint16_t& port) noexcept {
    int domain = fam == loopback::v4 ? AF_INET : AF_INET6;
    int fd = ::socket(domain, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (fam == loopback::v4) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
    }
    port = ntohs(fam == loopback::v4 ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return fd;
}

inline int listen_loopback(loopback fam, int backlog, std::uint16_t& port) noexcept {
    int fd = bind_loopback(fam, SOCK_STREAM, port);
    if (fd >= 0 && ::listen(fd, backlog) != 0) {
        detail::close_fd(fd);
    }
    return fd;
}

// The loopback address of `fam` with `port`, for connect().
inline socklen_t loopback_addr(loopback fam, std::uint16_t port, sockaddr_storage& ss) noexcept {
    ss = {};
    if (fam == loopback::v4) {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(port);
        return sizeof *a;
    }
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    return sizeof *a;
}

// Wakes a server thread out of poll(): the destructor writes one byte.
class wake_pipe {
public:
    wake_pipe() noexcept {
        int p[2];
        if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0) {
            r_ = p[0];
            w_ = p[1];
        }
    }
    ~wake_pipe() {
        close_fd(r_);
        close_fd(w_);
    }
    wake_pipe(const wake_pipe&) = delete;
    wake_pipe& operator=(const wake_pipe&) = delete;

    bool ok() const noexcept { return r_ >= 0; }
    int fd() const noexcept { return r_; }
    void signal() noexcept {
        char c = 1;
        [[maybe_unused]] ssize_t n = ::write(w_, &c, 1);
    }

private:
    int r_ = -1;
    int w_ = -1;
};

// Waits until `fd` has `events` or the wake pipe fires. Returns false on a
// wake-up (stop now), a timeout, or an error; `timeout_ms` < 0 waits forever.
inline bool wait_for(const wake_pipe& wake, int fd, short events, int timeout_ms) noexcept {
    pollfd p[2] = {{fd, events, 0}, {wake.fd(), POLLIN, 0}};
    for (;;) {
        int n = ::poll(p, 2, timeout_ms);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || p[1].revents != 0) {
            return false;
        }
        return p[0].revents != 0;
    }
}

// Polls `done` every millisecond until it is true or `timeout` passes.
template <class Done>
bool wait_until(Done done, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= end) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// A listening socket whose thread accepts connections and closes them at
// once, counting them: the server side of tcp and unix-socket probes.
class accept_closer {
public:
    accept_closer() = default;
    ~accept_closer() { stop(); }
    accept_closer(const accept_closer&) = delete;
    accept_closer& operator=(const accept_closer&) = delete;

    // Takes ownership of the listening `fd`; false when the thread cannot run.
    bool start(int fd) {
        fd_ = fd;
        if (fd_ < 0 || !wake_.ok()) {
            return false;
        }
        thread_ = std::thread([this] { run(); });
        return true;
    }
    void stop() noexcept {
        if (thread_.joinable()) {
            wake_.signal();
            thread_.join();
        }
        close_fd(fd_);
    }
    std::uint32_t accepts() const noexcept { return accepts_.load(std::memory_order_acquire); }

private:
    void run() noexcept {
        while (wait_for(wake_, fd_, POLLIN, -1)) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                ::close(c);
                accepts_.fetch_add(1, std::memory_order_release); // pairs with accepts()
            }
        }
    }

    int fd_ = -1;
    wake_pipe wake_;
    std::thread thread_;
    std::atomic<std::uint32_t> accepts_{0};
};

} // namespace detail

// Whether ::1 can be bound here (containers without IPv6 cannot).
inline bool ipv6_loopback_available() noexcept {
    std::uint16_t port = 0;
    int fd = detail::bind_loopback(loopback::v6, SOCK_STREAM, port);
    bool ok = fd >= 0;
    detail::close_fd(fd);
    return ok;
}

// A blocking connect to the loopback address of `fam`: 0, or the errno
// (ECONNREFUSED for a closed port). For the smoke tests of these servers.
inline int connect_loopback(loopback fam, std::uint16_t port) noexcept {
    int fd = ::socket(fam == loopback::v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return errno;
    }
    sockaddr_storage ss;
    socklen_t len = detail::loopback_addr(fam, port, ss);
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
}

// Accepts every connection and closes it.
class tcp_listener {
public:
    explicit tcp_listener(loopback fam = loopback::v4) {
        ok_ = loop_.start(detail::listen_loopback(fam, 64, port_));
    }
    bool ok() const noexcept { return ok_; }
    std::uint16_t port() const noexcept { return port_; }
    std::uint32_t accepts() const noexcept { return loop_.accepts(); }
    // True once `n` connections have been accepted, false after `timeout`.
    bool wait_accepts(std::uint32_t n, std::chrono::milliseconds timeout) const {
        return detail::wait_until([&] { return accepts() >= n; }, timeout);
    }

private:
    std::uint16_t port_ = 0;
    bool ok_ = false;
    detail::accept_closer loop_;
};

// A listener that never accepts, with its accept queue full: a further
// connect gets no answer, so a connect probe runs into its timeout.
//
// Linux drops a SYN when the listener's accept queue is full
// (tcp_conn_request(): sk_acceptq_is_full() -> drop), whatever
// net.ipv4.tcp_syncookies says: syncookies only stand in for a full SYN
// queue, they never bypass a full accept queue. With listen(fd, 0) the queue
// holds one connection. The constructor connects clients of its own until a
// non-blocking connect stays in progress for 200 ms; reliable() says whether
// that state was reached (a kernel that completes every handshake anyway
// would make a "times out" test meaningless: skip it then). The clients are
// kept open until the destructor, so the queue stays full.
class full_backlog_listener {
public:
    explicit full_backlog_listener(loopback fam = loopback::v4) : fam_(fam) {
        fd_ = detail::listen_loopback(fam, 0, port_);
        if (fd_ < 0) {
            return;
        }
        sockaddr_storage ss;
        socklen_t len = detail::loopback_addr(fam, port_, ss);
        for (int& c : clients_) {
            c = ::socket(fam == loopback::v4 ? AF_INET : AF_INET6,
                         SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c < 0) {
                return;
            }
            if (::connect(c, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
                continue; // established and queued
            }
            if (errno != EINPROGRESS) {
                return;
            }
            pollfd p{c, POLLOUT, 0};
            if (::poll(&p, 1, 200) == 0) {
                reliable_ = true; // this SYN was dropped: the queue is full
                return;
            }
            int err = 0;
            socklen_t el = sizeof err;
            if (::getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
                return;
            }
        }
    }
    ~full_backlog_listener() {
        for (int& c : clients_) {
            detail::close_fd(c);
        }
        detail::close_fd(fd_);
    }
    full_backlog_listener(const full_backlog_listener&) = delete;
    full_backlog_listener& operator=(const full_backlog_listener&) = delete;

    bool ok() const noexcept { return fd_ >= 0; }
    // A new connect to port() is known not to complete: SYNs are dropped.
    bool reliable() const noexcept { return reliable_; }
    std::uint16_t port() const noexcept { return port_; }
    loopback family() const noexcept { return fam_; }

private:
    loopback fam_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    bool reliable_ = false;
    int clients_[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
};

// A port nothing listens on, reserved while the object lives: a TCP socket
// bound to it but not listening, so nobody else takes the port and a
// connect gets RST (ECONNREFUSED) rather than reaching some other server.
class reserved_port {
public:
    explicit reserved_port(loopback fam = loopback::v4) noexcept {
        fd_ = detail::bind_loopback(fam, SOCK_STREAM, port_);
    }
    ~reserved_port() { detail::close_fd(fd_); }
    reserved_port(reserved_port&& o) noexcept : fd_(o.fd_), port_(o.port_) { o.fd_ = -1; }
    reserved_port(const reserved_port&) = delete;
    reserved_port& operator=(const reserved_port&) = delete;
    reserved_port& operator=(reserved_port&&) = delete;

    bool ok() const noexcept { return fd_ >= 0; }
    std::uint16_t port() const noexcept { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

// `auto closed = closed_port(); connect to closed.port()` -> refused.
inline reserved_port closed_port(loopback fam = loopback::v4) noexcept {
    return reserved_port(fam);
}

enum class http_mode : std::uint8_t {
    respond,             // read the request head, write the response, close
    respond_slowly,      // the same, one byte every 2 ms (tests reassembly)
    never_answer,        // read the request head, then hold the connection silently
    close_immediately,   // accept and close without reading
    close_after_request, // read the request head, close without a word (clean EOF)
    reset_after_request, // read the request head, close with RST (SO_LINGER 0)
};

// An HTTP server for the http probe: for every connection it reads the
// request head (up to CRLFCRLF, at most request_capacity bytes, 2 s),
// records it, then does what the mode says. The response is the exact
// bytes the test gives ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
// "SSH-2.0-OpenSSH_9.6\r\n", ...). Connections are served one at a time,
// except that never_answer ones are held (up to max_held) while the server
// goes on accepting.
class http_server {
public:
    static constexpr std::size_t request_capacity = 4096;
    static constexpr std::size_t response_capacity = 8192;
    static constexpr std::size_t max_held = 16;

    explicit http_server(std::string_view response = "HTTP/1.1 200 OK\r\nContent-Length: "
                                                     "2\r\nConnection: close\r\n\r\nok",
                         http_mode mode = http_mode::respond, loopback fam = loopback::v4) {
        set(mode, response);
        fd_ = detail::listen_loopback(fam, 64, port_);
        if (fd_ >= 0 && wake_.ok()) {
            thread_ = std::thread([this] { run(); });
        }
    }
    ~http_server() {
        if (thread_.joinable()) {
            wake_.signal();
            thread_.join();
        }
        detail::close_fd(fd_);
    }
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    bool ok() const noexcept { return thread_.joinable(); }
    std::uint16_t port() const noexcept { return port_; }

    // Changes what the next connections get (longer responses are cut to
    // response_capacity).
    void set(http_mode mode, std::string_view response) noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        mode_ = mode;
        response_len_ = response.size() < response_capacity ? response.size() : response_capacity;
        std::memcpy(response_, response.data(), response_len_);
    }

    std::uint32_t connections() const noexcept { return connections_.load(); }
    // Request heads read (complete or not) so far.
    std::uint32_t requests() const noexcept { return requests_.load(); }
    bool wait_requests(std::uint32_t n, std::chrono::milliseconds timeout) const {
        return detail::wait_until([&] { return requests() >= n; }, timeout);
    }
    bool wait_connections(std::uint32_t n, std::chrono::milliseconds timeout) const {
        return detail::wait_until([&] { return connections() >= n; }, timeout);
    }

    // The last request head as read (allocates: the caller's thread).
    std::string last_request() const {
        std::lock_guard<std::mutex> lock(mu_);
        return std::string(request_, request_len_);
    }
    // The same into `out`, truncated to `cap`; returns the length copied.
    std::size_t copy_last_request(char* out, std::size_t cap) const noexcept {
        std::lock_guard<std::mutex> lock(mu_);
        std::size_t n = request_len_ < cap ? request_len_ : cap;
        std::memcpy(out, request_, n);
        return n;
    }

private:
    void run() noexcept {
        int held[max_held];
        std::size_t nheld = 0;
        while (detail::wait_for(wake_, fd_, POLLIN, -1)) {
            int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (c < 0) {
                continue;
            }
            connections_.fetch_add(1);
            if (!serve(c)) {
                break; // woken for shutdown
            }
            if (c < 0) {
                continue; // closed by serve()
            }
            if (nheld < max_held) {
                held[nheld++] = c;
            } else {
                ::close(c);
            }
        }
        for (std::size_t i = 0; i < nheld; ++i) {
            ::close(held[i]);
        }
    }

    // Serves one connection; closes `c` (and sets it to -1) unless the mode
    // holds it. False when woken for shutdown (c closed).
    bool serve(int& c) noexcept {
        http_mode mode;
        std::size_t rlen = 0;
        {
            std::lock_guard<std::mutex> lock(mu_);
            mode = mode_;
            rlen = response_len_;
            std::memcpy(out_, response_, rlen);
        }
        if (mode == http_mode::close_immediately) {
            detail::close_fd(c);
            return true;
        }
        if (!read_request(c)) {
            detail::close_fd(c);
            return false;
        }
        switch (mode) {
        case http_mode::respond:
        case http_mode::respond_slowly:
            if (!write_response(c, rlen, mode == http_mode::respond_slowly)) {
                detail::close_fd(c);
                return false;
            }
            ::shutdown(c, SHUT_WR);
            detail::close_fd(c);
            return true;
        case http_mode::never_answer:
            return true;
        case http_mode::close_immediately:
        case http_mode::close_after_request:
            detail::close_fd(c);
            return true;
        case http_mode::reset_after_request: {
            linger l{1, 0};
            ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
            detail::close_fd(c);
            return true;
        }
        }
        return true;
    }

    // Reads until CRLFCRLF (or a bare-LF blank line), EOF, a full buffer or
    // 2 s of silence, and records what came. False only on a wake-up.
    bool read_request(int c) noexcept {
        std::size_t len = 0;
        bool woken = false;
        while (len < request_capacity) {
            pollfd p[2] = {{c, POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
            int n = ::poll(p, 2, 2000);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n > 0 && p[1].revents != 0) {
                woken = true;
                break;
            }
            if (n <= 0) {
                break;
            }
            ssize_t got = ::read(c, in_ + len, request_capacity - len);
            if (got <= 0) {
                break;
            }
            len += static_cast<std::size_t>(got);
            std::string_view head(in_, len);
            if (head.find("\r\n\r\n") != std::string_view::npos ||
                head.find("\n\n") != std::string_view::npos) {
                break;
            }
        }
        {
            std::lock_guard<std::mutex> lock(mu_);
            std::memcpy(request_, in_, len);
            request_len_ = len;
        }
        requests_.fetch_add(1);
        return !woken;
    }

    bool write_response(int c, std::size_t rlen, bool slowly) noexcept {
        if (slowly) {
            int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        std::size_t off = 0;
        while (off < rlen) {
            std::size_t n = slowly ? 1 : rlen - off;
            ssize_t w = ::send(c, out_ + off, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                return true; // the client went away: its business
            }
            off += static_cast<std::size_t>(w);
            if (slowly && off < rlen) {
                pollfd p{wake_.fd(), POLLIN, 0};
                if (::poll(&p, 1, 2) > 0) {
                    return false;
                }
            }
        }
        return true;
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    detail::wake_pipe wake_;
    std::thread thread_;
    std::atomic<std::uint32_t> connections_{0};
    std::atomic<std::uint32_t> requests_{0};
    mutable std::mutex mu_; // guards mode_, response_, request_
    http_mode mode_ = http_mode::respond;
    char response_[response_capacity];
    std::size_t response_len_ = 0;
    char request_[request_capacity];
    std::size_t request_len_ = 0;
    char in_[request_capacity];   // the server thread's own
    char out_[response_capacity]; // the server thread's own
};

// A listening AF_UNIX stream socket at `path` (an old file there is
// replaced) that accepts and closes connections; the path is removed in
// the destructor. Paths longer than sun_path leave ok() false.
class unix_listener {
public:
    explicit unix_listener(const char* path) {
        std::size_t n = std::strlen(path);
        sockaddr_un a{};
        if (n == 0 || n >= sizeof a.sun_path) {
            return;
        }
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, path, n);
        std::memcpy(path_, path, n + 1);
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return;
        }
        ::unlink(path_);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            ::close(fd);
            return;
        }
        bound_ = true;
        if (::listen(fd, 64) != 0) {
            ::close(fd);
            return;
        }
        ok_ = loop_.start(fd);
    }
    ~unix_listener() {
        loop_.stop();
        if (bound_) {
            ::unlink(path_);
        }
    }
    unix_listener(const unix_listener&) = delete;
    unix_listener& operator=(const unix_listener&) = delete;

    bool ok() const noexcept { return ok_; }
    const char* path() const noexcept { return path_; }
    std::uint32_t accepts() const noexcept { return loop_.accepts(); }
    bool wait_accepts(std::uint32_t n, std::chrono::milliseconds timeout) const {
        return detail::wait_until([&] { return accepts() >= n; }, timeout);
    }

private:
    char path_[sizeof(sockaddr_un::sun_path)] = {};
    bool bound_ = false;
    bool ok_ = false;
    detail::accept_closer loop_;
};

// The variants a probe test binary runs with --only=NAME: the doctest
// filter for "ipv6" and "backlog", or nullptr for any other name. When the
// machine cannot run the variant, *skip_exit is 77 (the reason printed),
// else 0.
inline const char* loopback_variant(std::string_view only, int* skip_exit) noexcept {
    *skip_exit = 0;
    if (only == "ipv6") {
        if (!ipv6_loopback_available()) {
            std::printf("SKIP: no ::1 loopback address here\n");
            *skip_exit = 77;
        }
        return "*[ipv6]*";
    }
    if (only == "backlog") {
        full_backlog_listener probe;
        if (!probe.ok() || !probe.reliable()) {
            std::printf("SKIP: this kernel completes connects to a full accept queue\n");
            *skip_exit = 77;
        }
        return "*[backlog]*";
    }
    return nullptr;
}

} // namespace custos_test
