// bench/control: what the control plane costs the reactor thread per request,
// how many requests it serves, and what it costs when nobody asks.
//
// A custos::Runtime with 64 services (/bin/sleep 3600, ready when started)
// and 64 file probes (on the temporary directory), its control socket in
// that directory; the runtime runs (init, start, run) on its own thread.
// Clients are raw Unix-socket HTTP/1.1 clients on other threads.
//
//   per request  one keep-alive client, N sequential requests of GET
//                /status, /metrics and /health: the runtime thread's CPU
//                time over them (pthread_getcpuclockid) divided by N, and
//                the wall latency of each (request sent -> last byte read);
//                R repetitions, their medians. The runtime is settled
//                (no record changes between requests), so /status is
//                served from the server's text memo (render.hpp): the
//                warm-up's first request renders each record and keeps
//                its text, the measured ones copy it and write only the
//                values of the moment (uptime, backoff, next check).
//   throughput   4 concurrent keep-alive clients for T seconds each: /status
//                and /health requests per second.
//   baseline     in the same run: a tiny server on the same kind of socket
//                and the same custos reactor (accept, recv, then a send op
//                per 16 KiB piece of a fixed body, one reactor turn each;
//                the control server writes its chunks with direct
//                non-blocking sends in one turn while the socket takes
//                them) on a thread of its own, answering a body of the
//                same size as each custos response; its thread's CPU time
//                per request, latency and throughput, and custos / baseline.
//   idle         the runtime thread's voluntary context switches (each one
//                a blocking wait that returned: a wake-up) over S seconds
//                with no client, the control socket on; then the same in a
//                child process with no control socket. Beside it, the
//                reactor's own wake-up counter from GET /metrics at the
//                window's start and end, less what one GET itself costs
//                (measured on two back-to-back GETs).
//
// Targets (issue 13): rendering /status <= 50 us of CPU per request for
// 64 + 64, and within 2x of the fixed-body baseline; 0 extra idle wake-ups.
// Figures are printed, never judged as a failure: a loaded machine moves
// them.
//
//   --quick        N = 100, R = 3, T = 1 s, S = 2 s (emulators)
//   --idle-off     (internal) the child: runtime without control socket,
//                  prints "idle_off_wakeups=W" and exits
#include <pthread.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/runtime.hpp>

#include "common.hpp"
#include "io/reactor.hpp"

namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t nservices = 64;
constexpr std::uint32_t nprobes = 64;
constexpr std::uint32_t nclients = 4;
constexpr std::size_t client_buf = 1 << 20;
constexpr std::uint32_t piece = 16384; // the control server's response buffer

std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t thread_cpu_ns(pthread_t t) noexcept {
    clockid_t id{};
    if (pthread_getcpuclockid(t, &id) != 0) {
        return 0;
    }
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// voluntary_ctxt_switches of one thread of this process.
std::uint64_t voluntary_switches(int tid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) {
        return 0;
    }
    char line[256];
    std::uint64_t v = 0;
    while (std::fgets(line, sizeof line, f) != nullptr) {
        if (std::strncmp(line, "voluntary_ctxt_switches:", 24) == 0) {
            v = std::strtoull(line + 24, nullptr, 10);
        }
    }
    std::fclose(f);
    return v;
}

// ---- a raw HTTP/1.1 client -------------------------------------------------

struct response {
    int status = 0;
    std::size_t head_bytes = 0;
    std::size_t body_bytes = 0; // payload, chunk framing excluded
    std::size_t wire_bytes = 0; // everything read
    bool close = false;
};

class client {
public:
    explicit client(std::string path) : path_(std::move(path)), buf_(client_buf) {}
    ~client() { disconnect(); }

    bool connect_now() {
        disconnect();
        fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
        if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
            disconnect();
            return false;
        }
        have_ = 0;
        return true;
    }

    void disconnect() {
        if (fd_ >= 0) {
            close(fd_);
            fd_ = -1;
        }
    }

    // One request; reconnects when the server closed the connection.
    bool request(const char* method, const char* target, response& r) {
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (fd_ < 0 && !connect_now()) {
                return false;
            }
            char req[256];
            int n = std::snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: custos\r\n\r\n", method,
                                  target);
            if (send(fd_, req, static_cast<std::size_t>(n), MSG_NOSIGNAL) == n &&
                read_response(r)) {
                if (r.close) {
                    disconnect();
                }
                return true;
            }
            disconnect();
        }
        return false;
    }

    // The whole last response (head and framed body).
    std::string_view last() const { return {buf_.data(), last_len_}; }

private:
    bool fill_to(std::size_t want) {
        while (have_ < want) {
            if (have_ == buf_.size()) {
                return false;
            }
            ssize_t n = recv(fd_, buf_.data() + have_, buf_.size() - have_, 0);
            if (n <= 0) {
                if (n < 0 && errno == EINTR) {
                    continue;
                }
                return false;
            }
            have_ += static_cast<std::size_t>(n);
        }
        return true;
    }

    // Index just past "\r\n" at or after `from`, reading more as needed; 0
    // when the connection ended first.
    std::size_t line_end(std::size_t from) {
        for (;;) {
            for (std::size_t i = from; i + 1 < have_; ++i) {
                if (buf_[i] == '\r' && buf_[i + 1] == '\n') {
                    return i + 2;
                }
            }
            if (!fill_to(have_ + 1)) {
                return 0;
            }
        }
    }

    bool read_response(response& r) {
        r = {};
        // The head: lines until an empty one.
        std::size_t pos = 0;
        std::int64_t length = -1;
        bool chunked = false;
        for (;;) {
            std::size_t e = line_end(pos);
            if (e == 0) {
                return false;
            }
            std::string_view line(buf_.data() + pos, e - pos - 2);
            if (pos == 0) {
                if (line.size() < 12) {
                    return false;
                }
                r.status = std::atoi(std::string(line.substr(9, 3)).c_str());
            } else if (line.empty()) {
                pos = e;
                break;
            } else if (line.size() > 16 && strncasecmp(line.data(), "content-length:", 15) == 0) {
                length = std::atoll(std::string(line.substr(15)).c_str());
            } else if (strncasecmp(line.data(), "transfer-encoding: chunked", 26) == 0) {
                chunked = true;
            } else if (strncasecmp(line.data(), "connection: close", 17) == 0) {
                r.close = true;
            }
            pos = e;
        }
        r.head_bytes = pos;
        if (chunked) {
            for (;;) {
                std::size_t e = line_end(pos);
                if (e == 0) {
                    return false;
                }
                std::size_t size = std::strtoul(buf_.data() + pos, nullptr, 16);
                pos = e;
                if (!fill_to(pos + size + 2)) {
                    return false;
                }
                pos += size + 2;
                r.body_bytes += size;
                if (size == 0) {
                    break;
                }
            }
        } else if (length >= 0) {
            if (!fill_to(pos + static_cast<std::size_t>(length))) {
                return false;
            }
            pos += static_cast<std::size_t>(length);
            r.body_bytes = static_cast<std::size_t>(length);
        }
        r.wire_bytes = pos;
        last_len_ = pos;
        // Nothing is pipelined: whatever follows belongs to no request.
        have_ = 0;
        return true;
    }

    std::string path_;
    std::vector<char> buf_;
    std::size_t have_ = 0;
    std::size_t last_len_ = 0;
    int fd_ = -1;
};

// ---- the baseline: a fixed-body server on a custos reactor -------------------

// "GET /N HTTP/1.1": a 200 with a body of N bytes, Content-Length, keep-alive.
class fixed_server {
public:
    static constexpr std::uint32_t max_conns = 8;
    static constexpr std::size_t max_body = 1 << 20;

    bool start(const std::string& path) {
        body_.assign(max_body, 'x');
        if (!r_.init()) {
            return false;
        }
        listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
        unlink(path.c_str());
        if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            listen(listen_fd_, 64) != 0) {
            return false;
        }
        accept_op_.done = &on_accept;
        accept_op_.user = this;
        for (auto& c : conns_) {
            c.owner = this;
            c.rop.done = &on_recv;
            c.rop.user = &c;
            c.sop.done = &on_sent;
            c.sop.user = &c;
        }
        r_.accept(accept_op_, listen_fd_, nullptr, nullptr);
        return true;
    }

    // Loops on the calling thread until stop_flag is set (checked after each
    // wake-up; the stopper connects once to make one).
    void run(std::atomic<bool>& stop_flag) {
        while (!stop_flag.load(std::memory_order_relaxed)) {
            r_.run_once(true);
        }
    }

    const char* backend() const { return r_.backend_name(); }

private:
    struct conn {
        fixed_server* owner = nullptr;
        int fd = -1;
        custos::io::op rop;
        custos::io::op sop;
        char in[4096];
        std::uint32_t in_len = 0;
        char head[128];
        std::uint32_t head_len = 0;
        std::size_t body_len = 0;
        std::size_t sent = 0; // of head + body
    };

    static void on_accept(custos::io::op& o, std::int32_t res) {
        auto* s = static_cast<fixed_server*>(o.user);
        if (res >= 0) {
            conn* free_slot = nullptr;
            for (auto& c : s->conns_) {
                if (c.fd < 0) {
                    free_slot = &c;
                    break;
                }
            }
            if (free_slot == nullptr) {
                close(res);
            } else {
                free_slot->fd = res;
                free_slot->in_len = 0;
                s->read_more(*free_slot);
            }
        }
        s->r_.accept(s->accept_op_, s->listen_fd_, nullptr, nullptr);
    }

    void read_more(conn& c) {
        r_.recv(c.rop, c.fd, c.in + c.in_len, static_cast<std::uint32_t>(sizeof c.in - c.in_len));
    }

    void drop(conn& c) {
        close(c.fd);
        c.fd = -1;
    }

    static void on_recv(custos::io::op& o, std::int32_t res) {
        auto& c = *static_cast<conn*>(o.user);
        fixed_server& s = *c.owner;
        if (res <= 0) {
            s.drop(c);
            return;
        }
        c.in_len += static_cast<std::uint32_t>(res);
        std::string_view in(c.in, c.in_len);
        std::size_t end = in.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            if (c.in_len == sizeof c.in) {
                s.drop(c);
            } else {
                s.read_more(c);
            }
            return;
        }
        // "GET /N ..."
        std::size_t slash = in.find('/');
        std::size_t n =
            slash == std::string_view::npos ? 0 : std::strtoull(c.in + slash + 1, nullptr, 10);
        c.body_len = n > max_body ? max_body : n;
        c.head_len = static_cast<std::uint32_t>(std::snprintf(
            c.head, sizeof c.head,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
            c.body_len));
        c.sent = 0;
        c.in_len = 0; // one request at a time: the clients do not pipeline
        s.send_more(c);
    }

    // The head with the first piece of the body, then 16 KiB pieces.
    void send_more(conn& c) {
        const std::size_t total = c.head_len + c.body_len;
        if (c.sent == total) {
            read_more(c);
            return;
        }
        if (c.sent < c.head_len) {
            // Head and body are not contiguous: put the head in front of the
            // first piece through one copy, as the control server's buffer has.
            std::size_t first = c.body_len < piece - c.head_len ? c.body_len : piece - c.head_len;
            std::memcpy(first_, c.head, c.head_len);
            std::memcpy(first_ + c.head_len, body_.data(), first);
            first_len_ = c.head_len + first;
            r_.send(c.sop, c.fd, first_ + c.sent, static_cast<std::uint32_t>(first_len_ - c.sent),
                    MSG_NOSIGNAL);
            return;
        }
        std::size_t left = total - c.sent;
        std::size_t n = left < piece ? left : piece;
        r_.send(c.sop, c.fd, body_.data() + (c.sent - c.head_len), static_cast<std::uint32_t>(n),
                MSG_NOSIGNAL);
    }

    static void on_sent(custos::io::op& o, std::int32_t res) {
        auto& c = *static_cast<conn*>(o.user);
        if (res <= 0) {
            c.owner->drop(c);
            return;
        }
        c.sent += static_cast<std::size_t>(res);
        c.owner->send_more(c);
    }

    custos::io::reactor r_;
    int listen_fd_ = -1;
    custos::io::op accept_op_;
    conn conns_[max_conns];
    std::string body_;
    char first_[piece];
    std::size_t first_len_ = 0;
};

// ---- the runtime on its thread ------------------------------------------------

struct runtime_thread {
    custos::Runtime rt;
    std::string sock; // empty: no control plane
    std::string dir;
    std::atomic<int> tid{0};
    std::atomic<int> state{0}; // 1 running, -1 init/start failed
    pthread_t handle{};
    std::thread th;
    std::string uid_text;

    std::atomic<bool> stop_wanted{false};

    static void on_control(const custos::ControlAction&, void* ctx) {
        // Any action ends the run (the bench's way to stop the runtime from
        // another thread: a POST through the control plane).
        static_cast<runtime_thread*>(ctx)->rt.stop();
    }
    // Without a control plane: the main thread sets stop_wanted and kills
    // one service; its exit is a transition, on the reactor thread.
    static void on_transition(const custos::Transition&, void* ctx) {
        auto* self = static_cast<runtime_thread*>(ctx);
        if (self->stop_wanted.load()) {
            self->rt.stop();
        }
    }

    void start() {
        th = std::thread([this] { body(); });
        handle = th.native_handle();
    }

    void body() {
        tid.store(static_cast<int>(syscall(SYS_gettid)));
        static constexpr std::string_view argv[] = {"/bin/sleep", "3600"};
        static char snames[nservices][8];
        static char pnames[nprobes][8];
        std::vector<custos::ServiceSpec> svcs(nservices);
        std::vector<custos::ProbeSpec> probes(nprobes);
        for (std::uint32_t i = 0; i < nservices; ++i) {
            std::snprintf(snames[i], sizeof snames[i], "svc%02u", i);
            svcs[i].name = snames[i];
            svcs[i].argv = argv;
            svcs[i].ready = custos::ReadyMode::started;
        }
        for (std::uint32_t i = 0; i < nprobes; ++i) {
            std::snprintf(pnames[i], sizeof pnames[i], "prb%02u", i);
            probes[i].name = pnames[i];
            probes[i].kind = custos::ProbeKind::file;
            probes[i].target = dir;
        }
        custos::RuntimeConfig cfg;
        cfg.max_services = nservices;
        cfg.max_probes = nprobes;
        cfg.handle_signals = false;
        cfg.cgroup = "off";
        cfg.seed = 1;
        std::string_view ops[] = {uid_text};
        custos::Table table{cfg, svcs, probes, {}, {}, {}, {}, {}};
        table.control.socket = sock;
        table.control.operators = ops;
        table.control.max_requests = 1u << 30;
        if (auto r = rt.init(table); !r) {
            char text[512];
            r.error().format(text, sizeof text);
            std::printf("Runtime::init failed: %s\n", text);
            state.store(-1);
            return;
        }
        if (!sock.empty()) {
            rt.set_control_hook(&on_control, this);
        }
        rt.set_transition_hook(&on_transition, this);
        if (auto r = rt.start(); !r) {
            std::printf("Runtime::start failed\n");
            state.store(-1);
            return;
        }
        state.store(1);
        rt.run();
    }
};

struct per_request {
    double cpu_us = 0;  // median over repetitions of (CPU / N)
    double wall_us = 0; // median of every request's latency
    double wall_p99 = 0;
    std::size_t body_bytes = 0;
    std::size_t wire_bytes = 0;
    double cpu_lo = 0, cpu_hi = 0;
};

bool measure_sequential(const std::string& path, const char* target, pthread_t server, unsigned n,
                        unsigned reps, per_request& out) {
    client c(path);
    response r;
    for (unsigned i = 0; i < 20; ++i) { // warm-up
        if (!c.request("GET", target, r)) {
            return false;
        }
    }
    std::vector<double> cpu;
    std::vector<double> wall;
    wall.reserve(static_cast<std::size_t>(n) * reps);
    for (unsigned rep = 0; rep < reps; ++rep) {
        std::int64_t c0 = thread_cpu_ns(server);
        for (unsigned i = 0; i < n; ++i) {
            std::int64_t t0 = now_ns();
            if (!c.request("GET", target, r) || r.status != 200) {
                std::printf("  %s: request failed (status %d)\n", target, r.status);
                return false;
            }
            wall.push_back(static_cast<double>(now_ns() - t0) / 1000.0);
        }
        std::int64_t c1 = thread_cpu_ns(server);
        cpu.push_back(static_cast<double>(c1 - c0) / 1000.0 / n);
    }
    custos::bench::summary s = custos::bench::summarize(cpu.data(), cpu.size());
    out.cpu_us = s.median;
    out.cpu_lo = s.lo;
    out.cpu_hi = s.hi;
    out.wall_us = custos::bench::summarize(wall.data(), wall.size()).median;
    out.wall_p99 = custos::bench::percentile(wall.data(), wall.size(), 99);
    out.body_bytes = r.body_bytes;
    out.wire_bytes = r.wire_bytes;
    return true;
}

// Requests per second from `nclients` keep-alive clients over `seconds`.
double measure_throughput(const std::string& path, const char* target, double seconds) {
    std::atomic<bool> go{false};
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> done{0};
    std::vector<std::thread> ts;
    for (std::uint32_t i = 0; i < nclients; ++i) {
        ts.emplace_back([&] {
            client c(path);
            response r;
            std::uint64_t k = 0;
            while (!go.load()) {
                std::this_thread::yield();
            }
            while (!stop.load(std::memory_order_relaxed)) {
                if (!c.request("GET", target, r)) {
                    break;
                }
                ++k;
            }
            done.fetch_add(k);
        });
    }
    std::int64_t t0 = now_ns();
    go.store(true);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop.store(true);
    for (auto& t : ts) {
        t.join();
    }
    double el = static_cast<double>(now_ns() - t0) / 1e9;
    return static_cast<double>(done.load()) / el;
}

std::uint64_t metric_value(std::string_view text, std::string_view name) {
    std::string key = std::string("\n") + std::string(name) + " ";
    std::size_t at = text.find(key);
    if (at == std::string_view::npos) {
        return 0;
    }
    return std::strtoull(text.data() + at + key.size(), nullptr, 10);
}

bool wait_healthy(client& c, double seconds) {
    std::int64_t until = now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    response r;
    while (now_ns() < until) {
        if (c.request("GET", "/health", r) && r.status == 200) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

int idle_off_child(double seconds) {
    static runtime_thread rt;
    char tmpl[] = "/tmp/custos-bench-control-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        return 1;
    }
    rt.dir = tmpl;
    rt.start();
    while (rt.state.load() == 0) {
        std::this_thread::sleep_for(10ms);
    }
    if (rt.state.load() < 0) {
        return 1;
    }
    // No control plane to ask for health: give the probes' first checks and
    // the spawns the same settling time the parent's /health wait takes.
    std::this_thread::sleep_for(2s);
    std::uint64_t a = voluntary_switches(rt.tid.load());
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    std::uint64_t b = voluntary_switches(rt.tid.load());
    std::printf("idle_off_wakeups=%llu\n", static_cast<unsigned long long>(b - a));
    std::fflush(stdout);
    rt.stop_wanted.store(true);
    if (int pid = rt.rt.status(0).pid; pid > 0) {
        kill(pid, SIGKILL);
    }
    rt.th.join();
    rmdir(tmpl);
    return 0;
}

void print_pair(const char* what, const per_request& c, const per_request& b) {
    std::printf("  %-9s custos   CPU %7.1f us/req [%.1f .. %.1f]  wall median %7.1f us  p99 "
                "%7.1f us  body %zu B (%zu on the wire)\n",
                what, c.cpu_us, c.cpu_lo, c.cpu_hi, c.wall_us, c.wall_p99, c.body_bytes,
                c.wire_bytes);
    std::printf("  %-9s baseline CPU %7.1f us/req [%.1f .. %.1f]  wall median %7.1f us  p99 "
                "%7.1f us  body %zu B (%zu on the wire)\n",
                "", b.cpu_us, b.cpu_lo, b.cpu_hi, b.wall_us, b.wall_p99, b.body_bytes,
                b.wire_bytes);
    std::printf("  %-9s ratio    CPU %.2fx  wall %.2fx\n", "",
                b.cpu_us > 0 ? c.cpu_us / b.cpu_us : 0, b.wall_us > 0 ? c.wall_us / b.wall_us : 0);
}

} // namespace

int main(int argc, char** argv) {
    const bool quick = custos::bench::has_flag(argc, argv, "--quick");
    const unsigned n = quick ? 100 : 500;
    const unsigned reps = quick ? 3 : 7;
    const double tput_s = quick ? 1.0 : 2.0;
    const double idle_s = quick ? 2.0 : 3.0;
    if (custos::bench::has_flag(argc, argv, "--idle-off")) {
        return idle_off_child(idle_s);
    }
    custos::bench::print_header("control");
    std::printf("%u services (/bin/sleep), %u file probes, control socket; %u requests x %u "
                "repetitions per route, %u clients x %.0f s for throughput, %.0f s idle%s\n",
                nservices, nprobes, n, reps, nclients, tput_s, idle_s, quick ? " (--quick)" : "");
    std::fflush(stdout);

    char tmpl[] = "/tmp/custos-bench-control-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
        std::printf("mkdtemp failed\n");
        return 1;
    }
    const std::string dir = tmpl;
    const std::string sock = dir + "/control.sock";
    const std::string base_sock = dir + "/baseline.sock";

    static runtime_thread rt;
    rt.dir = dir;
    rt.sock = sock;
    rt.uid_text = std::to_string(getuid());
    rt.start();
    while (rt.state.load() == 0) {
        std::this_thread::sleep_for(10ms);
    }
    if (rt.state.load() < 0) {
        rt.th.join();
        return 1;
    }
    std::printf("backend: %s\n", rt.rt.backend_reason());

    static fixed_server base;
    std::atomic<bool> base_stop{false};
    if (!base.start(base_sock)) {
        std::printf("baseline server setup failed\n");
        return 1;
    }
    pthread_t base_handle{};
    std::thread base_th([&] { base.run(base_stop); });
    base_handle = base_th.native_handle();

    client ctl(sock);
    if (!wait_healthy(ctl, 60)) {
        std::printf("the runtime did not become healthy within 60 s\n");
        return 1;
    }

    // Idle first, on a settled runtime (the probes' next checks are 60 s away).
    std::this_thread::sleep_for(500ms);
    response r;
    ctl.request("GET", "/metrics", r);
    std::uint64_t w0 = metric_value(ctl.last(), "custos_reactor_wakeups_total");
    ctl.request("GET", "/metrics", r);
    std::uint64_t w1 = metric_value(ctl.last(), "custos_reactor_wakeups_total");
    const std::uint64_t per_get = w1 - w0;
    const int tid = rt.tid.load();
    // Let the GET's last completions (the send's) finish before the window.
    std::this_thread::sleep_for(200ms);
    std::uint64_t v0 = voluntary_switches(tid);
    std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
    std::uint64_t v1 = voluntary_switches(tid);
    ctl.request("GET", "/metrics", r);
    std::uint64_t w2 = metric_value(ctl.last(), "custos_reactor_wakeups_total");
    const std::uint64_t idle_on = v1 - v0;
    const std::uint64_t counter_on = w2 - w1 - per_get;

    // Loop turns (reactor wake-ups) per request: every turn ends with the
    // runtime publishing its snapshot, so they are part of a request's cost.
    auto turns = [&](const char* target) {
        constexpr int k = 20;
        response x;
        ctl.request("GET", "/metrics", x);
        const std::uint64_t a = metric_value(ctl.last(), "custos_reactor_wakeups_total");
        for (int i = 0; i < k; ++i) {
            ctl.request("GET", target, x);
        }
        ctl.request("GET", "/metrics", x);
        const std::uint64_t b = metric_value(ctl.last(), "custos_reactor_wakeups_total");
        return (static_cast<double>(b - a) - static_cast<double>(per_get)) / k;
    };
    const double turns_status = turns("/status");
    const double turns_health = turns("/health");

    // Per request.
    per_request st, st_b, me, me_b, he, he_b;
    bool ok = measure_sequential(sock, "/status", rt.handle, n, reps, st) &&
              measure_sequential(sock, "/metrics", rt.handle, n, reps, me) &&
              measure_sequential(sock, "/health", rt.handle, n, reps, he);
    if (ok) {
        char t[32];
        std::snprintf(t, sizeof t, "/%zu", st.body_bytes);
        ok = measure_sequential(base_sock, t, base_handle, n, reps, st_b);
        std::snprintf(t, sizeof t, "/%zu", me.body_bytes);
        ok = ok && measure_sequential(base_sock, t, base_handle, n, reps, me_b);
        std::snprintf(t, sizeof t, "/%zu", he.body_bytes);
        ok = ok && measure_sequential(base_sock, t, base_handle, n, reps, he_b);
    }
    if (!ok) {
        std::printf("a request failed\n");
        return 1;
    }
    std::printf("per request (one keep-alive client; CPU: the serving thread's, median of %u "
                "repetitions [min .. max]; baseline: fixed body of the same size on a custos "
                "reactor, backend %s):\n",
                reps, base.backend());
    print_pair("/status", st, st_b);
    print_pair("/metrics", me, me_b);
    print_pair("/health", he, he_b);
    std::printf("  reactor wake-ups per request (each one a loop turn and a snapshot "
                "publication): /status %.1f, /metrics %llu, /health %.1f\n",
                turns_status, static_cast<unsigned long long>(per_get), turns_health);

    // Throughput.
    char tb[32];
    std::snprintf(tb, sizeof tb, "/%zu", st.body_bytes);
    double ts_c = measure_throughput(sock, "/status", tput_s);
    double ts_b = measure_throughput(base_sock, tb, tput_s);
    std::snprintf(tb, sizeof tb, "/%zu", he.body_bytes);
    double th_c = measure_throughput(sock, "/health", tput_s);
    double th_b = measure_throughput(base_sock, tb, tput_s);
    std::printf("throughput (%u concurrent keep-alive clients, %.0f s each):\n", nclients, tput_s);
    std::printf("  /status   custos %8.0f req/s  baseline %8.0f req/s  ratio %.2fx\n", ts_c, ts_b,
                ts_b > 0 ? ts_c / ts_b : 0);
    std::printf("  /health   custos %8.0f req/s  baseline %8.0f req/s  ratio %.2fx\n", th_c, th_b,
                th_b > 0 ? th_c / th_b : 0);
    std::fflush(stdout);

    // Idle without a control socket: a child process (one Runtime per process).
    std::string cmd = std::string(argv[0]) + " --idle-off" + (quick ? " --quick" : "");
    long long idle_off = -1;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char line[128];
        while (std::fgets(line, sizeof line, p) != nullptr) {
            if (std::strncmp(line, "idle_off_wakeups=", 17) == 0) {
                idle_off = std::atoll(line + 17);
            }
        }
        pclose(p);
    }
    std::printf("idle over %.0f s, no client (runtime thread's voluntary context switches = "
                "blocking waits that returned):\n",
                idle_s);
    std::printf("  control on: %llu wake-ups (reactor counter from /metrics: %lld, one GET "
                "costing %llu subtracted)\n",
                static_cast<unsigned long long>(idle_on), static_cast<long long>(counter_on),
                static_cast<unsigned long long>(per_get));
    std::printf("  control off (baseline, separate process): %lld wake-ups\n", idle_off);

    std::printf("result: /status %.1f us CPU per request (target <= 50: %s), %.2fx the "
                "fixed-body baseline (target <= 2x: %s); /metrics %.1f us (%.2fx); idle "
                "wake-ups %llu with control, %lld without\n",
                st.cpu_us, st.cpu_us <= 50 ? "met" : "not met",
                st_b.cpu_us > 0 ? st.cpu_us / st_b.cpu_us : 0,
                st_b.cpu_us > 0 && st.cpu_us <= 2 * st_b.cpu_us ? "met" : "not met", me.cpu_us,
                me_b.cpu_us > 0 ? me.cpu_us / me_b.cpu_us : 0,
                static_cast<unsigned long long>(idle_on), idle_off);
    std::fflush(stdout);

    // Stop: the baseline with one last request after its flag, the runtime
    // through an action (its control hook calls stop()).
    base_stop.store(true);
    {
        // A connection alone wakes its loop (the accept completes); a request
        // would wait for an answer that the stopped loop never sends.
        client c(base_sock);
        (void)c.connect_now();
    }
    base_th.join();
    char stop_target[64];
    std::snprintf(stop_target, sizeof stop_target, "/services/svc00/stop");
    ctl.request("POST", stop_target, r);
    rt.th.join();
    unlink(base_sock.c_str());
    rmdir(dir.c_str());
    return 0;
}
