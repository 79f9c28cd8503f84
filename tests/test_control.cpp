// The control plane under abuse, through a real custos::Runtime and raw
// AF_UNIX clients (no curl): every read route's status and Content-Type,
// HEAD, keep-alive pipelining, chunked framing; slowloris, a 1 MiB header,
// 200 connections at once, garbage bytes, half-closed sockets, a client
// that never reads; the actions with ?wait; peer-credential auth as uid
// 65534 and the control hook. After each case the server still answers and
// a crash-looping service is still restarted on schedule (a sampler thread
// watches its death count from outside the reactor).
//
// The runtime runs on a thread of its own with handle_signals (SIGTERM
// stops it): the signals it handles are blocked in main() before any
// thread exists, so only its signalfd takes them.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll); a
// backend the kernel refuses makes the run exit 77 (a skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/runtime.hpp>

#include "backend_probe.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

const char* g_helper = nullptr; // CUSTOS_SVC_HELPER

// The running runtime, for the handlers below: a failed REQUIRE aborts the
// process, and the services (in process groups of their own) would outlive
// it, holding meson's output pipe open.
std::atomic<Runtime*> g_running{nullptr};

void kill_services() {
    Runtime* rt = g_running.load();
    if (rt == nullptr) {
        return;
    }
    for (std::uint32_t i = 0; i < rt->service_count(); ++i) {
        const int pid = rt->status(i).pid;
        if (pid > 0) {
            ::kill(pid, SIGKILL);
        }
    }
}

void on_alarm(int) {
    const char msg[] = "test_control: a case hung (alarm); failing\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    kill_services();
    std::_Exit(1);
}

void on_abort(int) {
    kill_services();
    ::signal(SIGABRT, SIG_DFL);
    ::raise(SIGABRT);
}

std::int64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

void set_timeouts(int fd, int ms) {
    timeval tv{};
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

sockaddr_un addr_of(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), std::min(path.size() + 1, sizeof a.sun_path - 1));
    return a;
}

// A blocking client with 10 s receive and send timeouts: -1 on failure.
int dial(const std::string& path, int timeout_ms = 10000) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    set_timeouts(fd, timeout_ms);
    sockaddr_un a = addr_of(path);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool send_all(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

struct response {
    int status = 0;
    std::string head; // status line and headers
    std::string body; // de-chunked
    bool chunked = false;
    std::size_t chunks = 0;

    // The value of a header (name without case), or "" when absent.
    std::string header(std::string_view name) const {
        const std::string want = lower(name) + ":";
        std::size_t at = head.find("\r\n");
        while (at != std::string::npos && at + 2 < head.size()) {
            std::size_t end = head.find("\r\n", at + 2);
            std::string line =
                head.substr(at + 2, end == std::string::npos ? std::string::npos : end - at - 2);
            if (lower(line).rfind(want, 0) == 0) {
                std::string v = line.substr(want.size());
                while (!v.empty() && v.front() == ' ') {
                    v.erase(0, 1);
                }
                return v;
            }
            at = end;
        }
        return {};
    }
};

// One connection, read response by response (pipelined bytes kept).
struct conn {
    int fd = -1;
    std::string buf;
    bool eof = false;
    int err = 0; // the errno that ended reading (ECONNRESET after a refusal)

    explicit conn(const std::string& path, int timeout_ms = 10000) : fd(dial(path, timeout_ms)) {}
    ~conn() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    conn(const conn&) = delete;
    conn& operator=(const conn&) = delete;

    bool ok() const { return fd >= 0; }
    bool send(std::string_view s) { return send_all(fd, s); }

    // More bytes into buf: false on EOF, error or timeout.
    bool fill() {
        if (eof) {
            return false;
        }
        char tmp[65536];
        for (;;) {
            ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                eof = true;
                err = n < 0 ? errno : 0;
                return false;
            }
            buf.append(tmp, static_cast<std::size_t>(n));
            return true;
        }
    }

    // Bytes [0, n) of buf, reading more as needed.
    bool need(std::size_t n) {
        while (buf.size() < n) {
            if (!fill()) {
                return false;
            }
        }
        return true;
    }

    // Up to and including the next CRLF from `from`; npos when the
    // connection ended first.
    std::size_t line_end(std::size_t from) {
        for (;;) {
            std::size_t at = buf.find("\r\n", from);
            if (at != std::string::npos) {
                return at;
            }
            if (!fill()) {
                return std::string::npos;
            }
        }
    }

    // The next response: framed by Content-Length or chunked (checked
    // strictly), or to EOF with neither. nullopt when the connection
    // ended before a whole one.
    std::optional<response> read(bool head_only = false) {
        std::size_t end;
        for (;;) {
            end = buf.find("\r\n\r\n");
            if (end != std::string::npos) {
                break;
            }
            if (!fill()) {
                return std::nullopt;
            }
        }
        response r;
        r.head = buf.substr(0, end + 2);
        buf.erase(0, end + 4);
        if (r.head.rfind("HTTP/1.1 ", 0) != 0 || r.head.size() < 12) {
            return std::nullopt;
        }
        r.status = std::atoi(r.head.c_str() + 9);
        if (head_only) {
            return r;
        }
        const std::string te = lower(r.header("Transfer-Encoding"));
        const std::string cl = r.header("Content-Length");
        if (te == "chunked") {
            r.chunked = true;
            for (;;) {
                std::size_t le = line_end(0);
                if (le == std::string::npos) {
                    return std::nullopt;
                }
                char* stop = nullptr;
                const std::string size_line = buf.substr(0, le);
                unsigned long n = std::strtoul(size_line.c_str(), &stop, 16);
                if (size_line.empty() || stop == nullptr || *stop != '\0') {
                    return std::nullopt; // not a bare hex size
                }
                buf.erase(0, le + 2);
                if (!need(n + 2) || buf.compare(n, 2, "\r\n") != 0) {
                    return std::nullopt;
                }
                if (n == 0) {
                    buf.erase(0, 2);
                    return r;
                }
                ++r.chunks;
                r.body.append(buf, 0, n);
                buf.erase(0, n + 2);
            }
        }
        if (!cl.empty()) {
            const std::size_t n = std::strtoul(cl.c_str(), nullptr, 10);
            if (!need(n)) {
                return std::nullopt;
            }
            r.body = buf.substr(0, n);
            buf.erase(0, n);
            return r;
        }
        while (fill()) {
        }
        r.body = std::move(buf);
        buf.clear();
        return r;
    }

    // True when the server closes: EOF (or a reset) with nothing more.
    bool closed_by_server() {
        while (fill()) {
        }
        return buf.empty() && (err == 0 || err == ECONNRESET || err == EPIPE);
    }
};

std::string get_req(std::string_view target, bool close = false) {
    std::string r = "GET ";
    r += target;
    r += " HTTP/1.1\r\n";
    if (close) {
        r += "Connection: close\r\n";
    }
    r += "\r\n";
    return r;
}

std::string post_req(std::string_view target, std::string_view verb = "POST") {
    std::string r(verb);
    r += ' ';
    r += target;
    r += " HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    return r;
}

// One request on a fresh connection.
std::optional<response> ask(const std::string& sock, const std::string& req) {
    conn c(sock);
    if (!c.ok() || !c.send(req)) {
        return std::nullopt;
    }
    return c.read();
}

// A metric's value from the Prometheus text ("name 12", or "name{...} 12"
// when `series` carries the labels); -1 when missing.
double metric(const std::string& text, const std::string& series) {
    std::size_t at = 0;
    while ((at = text.find(series + " ", at)) != std::string::npos) {
        if (at == 0 || text[at - 1] == '\n') {
            return std::strtod(text.c_str() + at + series.size() + 1, nullptr);
        }
        at += series.size();
    }
    return -1;
}

// --- the runtime under test -------------------------------------------------

struct action_seen {
    std::string subject;
    std::string request;
    int uid = -1;
    int pid = 0;
    int http_status = 0;
    Reason reason = Reason::unknown;
};

Result<void> ticking(MonitorContext& ctx, void*) {
    while (ctx.wait_for(50ms)) {
        ctx.tick();
    }
    return {};
}

struct world {
    std::string dir;
    std::string sock;
    std::vector<std::string> extra_names;
    std::vector<std::string_view> steady_argv;
    std::vector<std::string_view> flap_argv;
    std::vector<ServiceSpec> services;
    ProbeSpec probe;
    MonitorSpec monitor;
    std::unique_ptr<Runtime> rt;
    std::thread runner;
    std::atomic<int> phase{0}; // 1 running, -1 init or start failed, 2 run() returned
    std::string init_error;
    std::mutex mu;
    std::vector<action_seen> actions;

    static constexpr std::uint32_t steady = 0;
    static constexpr std::uint32_t flapping = 1;

    // The flapping service's deaths, sampled from outside the reactor.
    std::thread sampler;
    std::atomic<bool> sampling{false};
    std::atomic<std::int64_t> longest_gap_ms{0};
    std::atomic<std::uint64_t> deaths_at_reset{0};
    std::atomic<bool> reset_gap{false};

    explicit world(int extra = 0) {
        char tmpl[] = "/tmp/custos-ctl.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        ::chmod(dir.c_str(), 0755); // uid 65534 must reach the socket
        sock = dir + "/control.sock";
        steady_argv = {g_helper, "sleep"};
        flap_argv = {g_helper, "exit", "1"};
        ServiceSpec s;
        s.name = "steady";
        s.argv = steady_argv;
        s.restart = RestartPolicy::always;
        s.stop_timeout = 2s;
        services.push_back(s);
        ServiceSpec f;
        f.name = "flapping";
        f.argv = flap_argv;
        f.restart = RestartPolicy::always;
        f.backoff_initial = 200ms;
        f.backoff_max = 200ms;
        f.backoff_jitter_percent = 0;
        f.ready = ReadyMode::notify; // never says so: never ready
        f.stop_timeout = 2s;
        services.push_back(f);
        extra_names.reserve(static_cast<std::size_t>(extra));
        for (int i = 0; i < extra; ++i) {
            extra_names.push_back("sleeper-" + std::to_string(i));
            ServiceSpec e = s;
            e.name = extra_names.back();
            services.push_back(e);
        }
        probe.name = "dir";
        probe.kind = ProbeKind::file;
        probe.target = dir;
        probe.interval = 1s;
        monitor.name = "ticker";
        monitor.run = ticking;
        monitor.stack_size = 64 * 1024;

        runner = std::thread([this] { run_thread(); });
        const std::int64_t until = now_ms() + 20000;
        while (phase.load() == 0 && now_ms() < until) {
            std::this_thread::sleep_for(5ms);
        }
        REQUIRE_MESSAGE(phase.load() == 1, "runtime did not start: ", init_error);
        // Past the boot grace: health is settled (degraded: flapping is
        // never ready), and flapping has died a few times.
        while (now_ms() < until &&
               (rt->health().health == Health::starting || rt->status(flapping).death_count < 2)) {
            std::this_thread::sleep_for(10ms);
        }
        REQUIRE(rt->status(flapping).death_count >= 2);
        sampling = true;
        sampler = std::thread([this] { sample(); });
    }

    ~world() {
        sampling = false;
        if (sampler.joinable()) {
            sampler.join();
        }
        if (phase.load() == 1) {
            ::kill(::getpid(), SIGTERM);
        }
        if (runner.joinable()) {
            runner.join();
        }
        ::unlink(sock.c_str());
        ::rmdir(dir.c_str());
    }
    world(const world&) = delete;
    world& operator=(const world&) = delete;

    void run_thread() {
        rt = std::make_unique<Runtime>();
        Table t;
        t.runtime.handle_signals = true;
        t.runtime.cgroup = "off";
        t.runtime.stop_timeout = 5s;
        t.runtime.boot_grace = 300ms;
        t.services = services;
        t.probes = std::span<const ProbeSpec>(&probe, 1);
        t.monitors = std::span<const MonitorSpec>(&monitor, 1);
        t.control.socket = sock;
        t.control.mode = 0666;
        t.control.max_clients = 4;
        t.control.head_timeout = 500ms;
        t.control.idle_timeout = 1s;
        t.control.send_timeout = 1s;
        auto r = rt->init(t);
        if (!r) {
            char text[512];
            r.error().format(text, sizeof text);
            init_error = text;
            phase = -1;
            rt.reset();
            return;
        }
        rt->set_control_hook(
            [](const ControlAction& a, void* ctx) {
                auto& w = *static_cast<world*>(ctx);
                std::lock_guard<std::mutex> lock(w.mu);
                w.actions.push_back({std::string(a.subject), std::string(a.request), a.uid, a.pid,
                                     a.http_status, a.reason});
            },
            this);
        if (auto s = rt->start(); !s) {
            init_error = "start failed";
            phase = -1;
            rt.reset();
            return;
        }
        g_running = rt.get();
        phase = 1;
        rt->run();
        g_running = nullptr;
        phase = 2;
        // Destroyed on its own thread, after the readers have stopped.
    }

    void sample() {
        std::uint64_t last = rt->status(flapping).death_count;
        std::int64_t last_ms = now_ms();
        while (sampling.load()) {
            if (reset_gap.exchange(false)) {
                longest_gap_ms = 0;
                last_ms = now_ms();
            }
            const std::uint64_t d = rt->status(flapping).death_count;
            const std::int64_t t = now_ms();
            if (d != last) {
                last = d;
                last_ms = t;
            }
            if (t - last_ms > longest_gap_ms.load()) {
                longest_gap_ms = t - last_ms;
            }
            std::this_thread::sleep_for(10ms);
        }
    }

    std::uint64_t deaths() const { return rt->status(flapping).death_count; }

    // A case begins: the gap watch starts over.
    struct mark {
        std::uint64_t deaths;
        std::int64_t at_ms;
    };
    mark begin() {
        reset_gap = true;
        std::this_thread::sleep_for(30ms);
        return {deaths(), now_ms()};
    }

    // A case ended: the server answers a plain GET /health, and flapping
    // went on dying and being restarted every ~200 ms throughout (a
    // generous bound: no gap of 3 s, and at least one death a second).
    void still_fine(const mark& m) {
        auto h = ask(sock, get_req("/health"));
        REQUIRE(h.has_value());
        CHECK((h->status == 200 || h->status == 503));
        CHECK(h->body.find("health: ") != std::string::npos);
        // At least two more deaths, whatever the case took.
        const std::int64_t until = now_ms() + 5000;
        while (deaths() < m.deaths + 2 && now_ms() < until) {
            std::this_thread::sleep_for(10ms);
        }
        const std::uint64_t d = deaths() - m.deaths;
        const std::int64_t took = now_ms() - m.at_ms;
        MESSAGE("flapping: ", d, " deaths in ", took, " ms; longest gap ", longest_gap_ms.load(),
                " ms");
        CHECK(d >= 2);
        CHECK(static_cast<std::int64_t>(d) * 1000 >= took - 1000);
        CHECK(longest_gap_ms.load() < 3000);
        CHECK(rt->status(flapping).total_restarts >= 2);
        CHECK(rt->status(steady).state != ServiceState::failed);
    }

    // custos_control_clients once it has come down to `want` (the one
    // asking): a client's close reaches the server a moment after it.
    double clients_settled(double want = 1) {
        double got = -1;
        for (const std::int64_t until = now_ms() + 5000; now_ms() < until;) {
            got = metric(metrics(), "custos_control_clients");
            if (got == want) {
                break;
            }
            std::this_thread::sleep_for(20ms);
        }
        return got;
    }

    std::string metrics() {
        auto r = ask(sock, get_req("/metrics"));
        REQUIRE(r.has_value());
        REQUIRE(r->status == 200);
        return r->body;
    }
};

bool is_valid_json_doc(const std::string& body) {
    return !body.empty() && (body.front() == '{' || body.front() == '[') && body.back() == '\n';
}

} // namespace

TEST_SUITE("control") {

    TEST_CASE("every read route: status, Content-Type, HEAD, keep-alive, 404") {
        world w;
        auto m = w.begin();
        const Health h = w.rt->health().health;
        const int health_code = h == Health::ok || h == Health::degraded ? 200 : 503;
        struct route {
            const char* target;
            int status;
            std::string_view type;
        };
        const route routes[] = {
            {"/health", health_code, control::content_text},
            {"/health?json", health_code, control::content_json},
            {"/status", 200, control::content_json},
            {"/status?format=tsv", 200, control::content_tsv},
            {"/metrics", 200, control::content_metrics},
            {"/watchdog", 200, control::content_json},
            {"/services/steady", 200, control::content_json},
            {"/services/flapping", 200, control::content_json},
            {"/services/steady?format=text", 200, control::content_text},
            {"/probes/dir", 200, control::content_json},
            {"/monitors/ticker", 200, control::content_json},
            {"/services/nope", 404, control::content_json},
            {"/probes/nope", 404, control::content_json},
            {"/monitors/nope", 404, control::content_json},
            {"/nope", 404, control::content_json},
            {"/", 404, control::content_json},
        };
        for (const route& r : routes) {
            CAPTURE(r.target);
            auto got = ask(w.sock, get_req(r.target));
            REQUIRE(got.has_value());
            CHECK(got->status == r.status);
            CHECK(got->header("Content-Type") == r.type);
            CHECK(!got->body.empty());
            if (r.type == control::content_json) {
                CHECK(is_valid_json_doc(got->body));
            }
        }
        // The contents, roughly: the service's own object, the TSV's lines.
        auto svc = ask(w.sock, get_req("/services/steady"));
        REQUIRE(svc.has_value());
        CHECK(svc->body.find("\"name\":\"steady\"") != std::string::npos);
        auto tsv = ask(w.sock, get_req("/status?format=tsv"));
        REQUIRE(tsv.has_value());
        CHECK(tsv->body.rfind("steady\t", 0) == 0);
        CHECK(tsv->body.find("\nflapping\t") != std::string::npos);
        auto notfound = ask(w.sock, get_req("/services/nope"));
        REQUIRE(notfound.has_value());
        CHECK(notfound->body.find("\"error\":") != std::string::npos);
        // A read route asked with POST: 405 with Allow.
        auto wrong = ask(w.sock, post_req("/status"));
        REQUIRE(wrong.has_value());
        CHECK(wrong->status == 405);
        CHECK(!wrong->header("Allow").empty());

        SUBCASE("HEAD gives the head only; the next response follows it directly") {
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send("HEAD /status HTTP/1.1\r\n\r\n" + get_req("/services/steady")));
            auto head = c.read(true);
            REQUIRE(head.has_value());
            CHECK(head->status == 200);
            CHECK(head->header("Content-Type") == control::content_json);
            CHECK((!head->header("Content-Length").empty() ||
                   !head->header("Transfer-Encoding").empty()));
            // No body bytes: the GET's status line is next.
            REQUIRE(c.need(9));
            CHECK(c.buf.rfind("HTTP/1.1 ", 0) == 0);
            auto next = c.read();
            REQUIRE(next.has_value());
            CHECK(next->body.find("\"name\":\"steady\"") != std::string::npos);
        }
        SUBCASE("keep-alive: two requests in one write, two responses in order") {
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send(get_req("/services/flapping") + get_req("/services/steady")));
            auto one = c.read();
            auto two = c.read();
            REQUIRE(one.has_value());
            REQUIRE(two.has_value());
            CHECK(one->body.find("\"name\":\"flapping\"") != std::string::npos);
            CHECK(two->body.find("\"name\":\"steady\"") != std::string::npos);
            CHECK(one->header("Connection") == "keep-alive");
            // A third on the same connection, after the pause, and a close.
            REQUIRE(c.send(get_req("/health", true)));
            auto three = c.read();
            REQUIRE(three.has_value());
            CHECK(three->header("Connection") == "close");
            CHECK(c.closed_by_server());
        }
        SUBCASE("HTTP/1.0 without keep-alive is closed after its response") {
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send("GET /health HTTP/1.0\r\n\r\n"));
            auto r = c.read();
            REQUIRE(r.has_value());
            CHECK(c.closed_by_server());
        }
        w.still_fine(m);
    }

    TEST_CASE("large documents: chunked framing is well-formed and complete") {
        world w(40);
        auto m = w.begin();
        for (const char* target : {"/status", "/metrics", "/status?format=tsv", "/health"}) {
            CAPTURE(target);
            conn c(w.sock);
            REQUIRE(c.ok());
            // Twice on one connection: the framing must leave nothing over.
            REQUIRE(c.send(get_req(target) + get_req(target)));
            for (int round = 0; round < 2; ++round) {
                auto r = c.read();
                REQUIRE(r.has_value());
                CHECK((r->status == 200 || r->status == 503));
                MESSAGE(std::string(target), ": ", r->body.size(), " bytes, ",
                        r->chunked ? "chunked in " + std::to_string(r->chunks) + " chunks"
                                   : std::string("Content-Length"));
                CHECK(r->body.back() == '\n');
                for (const std::string& n : w.extra_names) {
                    if (std::string_view(target) != "/metrics" &&
                        std::string_view(target) != "/health" &&
                        std::string_view(target) != "/status?format=tsv") {
                        CHECK(r->body.find("\"" + n + "\"") != std::string::npos);
                    } else {
                        CHECK(r->body.find(n) != std::string::npos);
                    }
                }
                if (std::string_view(target) == "/status") {
                    CHECK(r->chunked); // 42 services do not fit one buffer
                    CHECK(r->body.find("\"counters\"") != std::string::npos);
                }
                if (std::string_view(target) == "/metrics") {
                    CHECK(r->chunked);
                    CHECK(r->body.find("custos_control_max_clients 4") != std::string::npos);
                }
            }
        }
        w.still_fine(m);
    }

    TEST_CASE("slowloris: a head not in within head_timeout is 408, then a close") {
        world w;
        auto m = w.begin();
        SUBCASE("half a request line, then nothing") {
            conn c(w.sock);
            REQUIRE(c.ok());
            const std::int64_t t0 = now_ms();
            REQUIRE(c.send("GET /hea"));
            auto r = c.read();
            const std::int64_t took = now_ms() - t0;
            REQUIRE(r.has_value());
            CHECK(r->status == 408);
            CHECK(took >= 400); // not before head_timeout (500 ms), a little slack
            CHECK(c.closed_by_server());
        }
        SUBCASE("one byte every 100 ms does not extend it") {
            conn c(w.sock);
            REQUIRE(c.ok());
            const std::string line = "GET /status?" + std::string(200, 'a');
            bool answered = false;
            std::size_t sent = 0;
            // Up to 10 s of dribbling: the 408 must come while it goes on.
            for (; sent < line.size() && !answered; ++sent) {
                if (!c.send(std::string_view(line).substr(sent, 1))) {
                    break; // closed: the answer is waiting
                }
                pollfd p{c.fd, POLLIN, 0};
                answered = ::poll(&p, 1, 100) > 0;
            }
            MESSAGE("dribbled ", sent, " bytes before the answer");
            CHECK(sent < 100);
            auto r = c.read();
            REQUIRE(r.has_value());
            CHECK(r->status == 408);
            CHECK(c.closed_by_server());
        }
        SUBCASE("an idle keep-alive connection is closed after idle_timeout") {
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send(get_req("/health")));
            REQUIRE(c.read().has_value());
            const std::int64_t t0 = now_ms();
            CHECK(c.closed_by_server());
            CHECK(now_ms() - t0 >= 800);
        }
        auto met = w.metrics();
        CHECK(metric(met, "custos_control_timeouts_total") >= 1);
        w.still_fine(m);
    }

    TEST_CASE("a 1 MiB header: 431 and a close") {
        world w;
        auto m = w.begin();
        conn c(w.sock);
        REQUIRE(c.ok());
        std::string big = "GET /status HTTP/1.1\r\nX-Big: ";
        big += std::string(1024 * 1024, 'x');
        big += "\r\n\r\n";
        std::size_t sent = 0;
        while (sent < big.size()) {
            const std::size_t n = std::min<std::size_t>(65536, big.size() - sent);
            ssize_t got = ::send(c.fd, big.data() + sent, n, MSG_NOSIGNAL);
            if (got <= 0) {
                break; // EPIPE/ECONNRESET once the server closed
            }
            sent += static_cast<std::size_t>(got);
        }
        MESSAGE("sent ", sent, " of ", big.size(), " bytes before the server stopped taking them");
        CHECK(sent < big.size());
        auto r = c.read();
        REQUIRE(r.has_value());
        CHECK(r->status == 431);
        CHECK(c.closed_by_server());
        w.still_fine(m);
    }

    TEST_CASE("200 connections at once: served, 503 or refused; none hangs") {
        world w;
        auto m = w.begin();
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 1024) {
            rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1024);
            ::setrlimit(RLIMIT_NOFILE, &rl);
        }
        const double refused_before = metric(w.metrics(), "custos_control_refused_total");
        constexpr int n = 200;
        std::vector<int> fds(n, -1);
        std::vector<std::string> got(n);
        int refused_connect = 0;
        const std::string req = get_req("/status", true);
        sockaddr_un a = addr_of(w.sock);
        for (int i = 0; i < n; ++i) {
            int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            REQUIRE(fd >= 0);
            if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
                CHECK((errno == EAGAIN || errno == ECONNREFUSED));
                ++refused_connect;
                ::close(fd);
                continue;
            }
            fds[i] = fd;
        }
        // The requests only once every connect is done: meanwhile the
        // first connections hold the slots (waiting for their heads), so
        // the server answers the next ones 503 and drains its backlog.
        for (int i = 0; i < n; ++i) {
            if (fds[i] >= 0) {
                (void)::send(fds[i], req.data(), req.size(), MSG_NOSIGNAL);
            }
        }
        // Every connected one ends (EOF or reset) within the bound.
        const std::int64_t until = now_ms() + 30000;
        int open = n - refused_connect;
        while (open > 0 && now_ms() < until) {
            std::vector<pollfd> ps;
            std::vector<int> idx;
            for (int i = 0; i < n; ++i) {
                if (fds[i] >= 0) {
                    ps.push_back({fds[i], POLLIN, 0});
                    idx.push_back(i);
                }
            }
            if (::poll(ps.data(), ps.size(), 200) <= 0) {
                continue;
            }
            for (std::size_t k = 0; k < ps.size(); ++k) {
                if (ps[k].revents == 0) {
                    continue;
                }
                const int i = idx[k];
                char buf[65536];
                ssize_t r = ::recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
                if (r > 0) {
                    got[i].append(buf, static_cast<std::size_t>(r));
                } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    ::close(fds[i]);
                    fds[i] = -1;
                    --open;
                }
            }
        }
        int served = 0;
        int busy = 0;
        for (int i = 0; i < n; ++i) {
            if (fds[i] >= 0) {
                ::close(fds[i]);
                continue;
            }
            if (got[i].rfind("HTTP/1.1 200 ", 0) == 0) {
                ++served;
            } else if (got[i].rfind("HTTP/1.1 503 ", 0) == 0) {
                ++busy;
                CHECK(got[i].find("CapacityExceeded") != std::string::npos);
                // Its Content-Length is its body's (it once said 150 for 141).
                const std::size_t cl = got[i].find("Content-Length: ");
                const std::size_t body = got[i].find("\r\n\r\n");
                REQUIRE(cl != std::string::npos);
                REQUIRE(body != std::string::npos);
                CHECK(std::strtoul(got[i].c_str() + cl + 16, nullptr, 10) ==
                      got[i].size() - body - 4);
            }
        }
        // Anything else (nothing at all, another status) is neither.
        const int other = n - refused_connect - served - busy - open;
        MESSAGE("200 at once: ", served, " served, ", busy, " answered 503, ", refused_connect,
                " refused at connect, ", other, " other, ", open, " still open after 30 s");
        CHECK(open == 0);
        CHECK(served >= 1);
        CHECK(other == 0);
        CHECK(served + busy + refused_connect == n);
        // Where the server drained its backlog faster than the slots filled
        // (io_uring often does), hold every slot with a keep-alive client
        // (idle for up to idle_timeout) and knock again: 503 then.
        std::vector<std::unique_ptr<conn>> holders;
        for (int i = 0; i < 4; ++i) {
            holders.push_back(std::make_unique<conn>(w.sock));
            REQUIRE(holders.back()->ok());
            REQUIRE(holders.back()->send(get_req("/health")));
            REQUIRE(holders.back()->read().has_value());
        }
        int knocked_busy = 0;
        for (int i = 0; i < 10; ++i) {
            conn c(w.sock);
            REQUIRE(c.ok());
            (void)c.send(req);
            auto r = c.read();
            REQUIRE(r.has_value());
            // 200 only if a holder's idle_timeout ran out meanwhile.
            CHECK((r->status == 503 || r->status == 200));
            knocked_busy += r->status == 503 ? 1 : 0;
        }
        holders.clear();
        MESSAGE("with every slot held: ", knocked_busy, " of 10 answered 503");
        CHECK(knocked_busy >= 1);
        busy += knocked_busy;
        // A fresh GET works; the refusals are counted.
        // (The holders' closes reach the server a moment later: until then
        // a new client may still be 503, which is counted too.)
        std::optional<response> fresh;
        for (const std::int64_t until_free = now_ms() + 5000;;) {
            fresh = ask(w.sock, get_req("/status"));
            REQUIRE(fresh.has_value());
            if (fresh->status != 503 || now_ms() > until_free) {
                break;
            }
            ++busy;
            std::this_thread::sleep_for(20ms);
        }
        CHECK(fresh->status == 200);
        const std::string met = w.metrics();
        CHECK(metric(met, "custos_control_refused_total") - refused_before == busy);
        CHECK(w.clients_settled() == 1);
        CHECK(metric(met, "custos_control_requests_total{code=\"503\"}") >= busy);
        w.still_fine(m);
    }

    TEST_CASE("garbage bytes: 400 or 505, then a close") {
        world w;
        auto m = w.begin();
        std::mt19937 prng(1234);
        std::string random_bytes(4096, '\0');
        for (char& ch : random_bytes) {
            ch = static_cast<char>(prng() & 0xff);
        }
        const std::string tls("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
        const struct {
            const char* what;
            std::string bytes;
            bool may_505;
        } cases[] = {
            {"random binary", random_bytes, false},
            {"a TLS client hello", tls + std::string(500, '\x00'), false},
            {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true},
            {"HTTP/2.0 request line", "GET / HTTP/2.0\r\n\r\n", true},
            {"a NUL in the target", std::string("GET /a\0b HTTP/1.1\r\n\r\n", 21), false},
            {"a bare CR", "GET / HTTP/1.1\rX\r\n\r\n", false},
            {"transfer-encoding",
             "POST /services/steady/stop HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
        };
        for (const auto& gc : cases) {
            CAPTURE(gc.what);
            conn c(w.sock);
            REQUIRE(c.ok());
            (void)c.send(gc.bytes); // may fail midway once the server closed
            auto r = c.read();
            REQUIRE(r.has_value());
            if (gc.may_505) {
                CHECK((r->status == 400 || r->status == 505));
            } else {
                CHECK(r->status == 400);
            }
            CHECK(r->header("Connection") == "close");
            CHECK(c.closed_by_server());
        }
        CHECK(w.rt->status(world::steady).state == ServiceState::ready);
        w.still_fine(m);
    }

    TEST_CASE("half-closed: the response to a whole request still arrives") {
        world w;
        auto m = w.begin();
        {
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send(get_req("/status")));
            REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
            auto r = c.read();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(is_valid_json_doc(r->body));
            CHECK(c.closed_by_server());
        }
        {
            // Pipelined, then half-closed: both answered.
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send(get_req("/health") + get_req("/metrics")));
            REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
            REQUIRE(c.read().has_value());
            auto r = c.read();
            REQUIRE(r.has_value());
            CHECK(r->status == 200);
            CHECK(c.closed_by_server());
        }
        {
            // Half a head, then half-closed: closed promptly, no answer owed.
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send("GET /stat"));
            REQUIRE(::shutdown(c.fd, SHUT_WR) == 0);
            while (c.fill()) {
            }
            CHECK(c.eof);
        }
        w.still_fine(m);
    }

    TEST_CASE("a client that never reads is closed after send_timeout; its slot is freed") {
        world w;
        auto m = w.begin();
        const double timeouts_before = metric(w.metrics(), "custos_control_timeouts_total");
        int fd = dial(w.sock);
        REQUIRE(fd >= 0);
        const int fl = ::fcntl(fd, F_GETFL);
        ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        const std::string one = get_req("/metrics");
        std::size_t requests = 0;
        for (; requests < 20000; ++requests) {
            ssize_t n = ::send(fd, one.data(), one.size(), MSG_NOSIGNAL);
            if (n != static_cast<ssize_t>(one.size())) {
                break; // the server stopped reading: it is stuck sending
            }
        }
        MESSAGE("pipelined ", requests, " GET /metrics without reading");
        CHECK(requests >= 100);
        // Meanwhile others are served.
        auto other = ask(w.sock, get_req("/health"));
        REQUIRE(other.has_value());
        // The server gives up on it: hang-up within a bound.
        const std::int64_t t0 = now_ms();
        bool hup = false;
        while (!hup && now_ms() - t0 < 15000) {
            pollfd p{fd, 0, 0};
            hup = ::poll(&p, 1, 100) > 0 && (p.revents & POLLHUP) != 0;
        }
        MESSAGE("closed by the server after ", now_ms() - t0, " ms");
        CHECK(hup);
        ::close(fd);
        // The slot is back: a new client is served, one client connected
        // (the asker), a send timeout counted.
        const std::string met = w.metrics();
        CHECK(w.clients_settled() == 1);
        CHECK(metric(met, "custos_control_timeouts_total") > timeouts_before);
        // Every slot is usable: max_clients keep-alive clients at once.
        std::vector<std::unique_ptr<conn>> all;
        for (int i = 0; i < 4; ++i) {
            all.push_back(std::make_unique<conn>(w.sock));
            REQUIRE(all.back()->ok());
            REQUIRE(all.back()->send(get_req("/health")));
        }
        for (auto& c : all) {
            auto r = c->read();
            REQUIRE(r.has_value());
            CHECK((r->status == 200 || r->status == 503));
        }
        all.clear();
        w.still_fine(m);
    }

    TEST_CASE("actions: stop and start with ?wait, 504, 404, 400, the watchdog") {
        world w;
        auto m = w.begin();
        auto stop = ask(w.sock, post_req("/services/steady/stop?wait=5s"));
        REQUIRE(stop.has_value());
        CHECK(stop->status == 200);
        CHECK(stop->body.find("\"state\":\"stopped\"") != std::string::npos);
        std::this_thread::sleep_for(1s);
        CHECK(w.rt->status(world::steady).state == ServiceState::stopped);
        CHECK(!w.rt->status(world::steady).wanted);
        auto start = ask(w.sock, post_req("/services/steady/start?wait=5s"));
        REQUIRE(start.has_value());
        CHECK(start->status == 200);
        CHECK(start->body.find("\"state\":\"ready\"") != std::string::npos);
        CHECK(w.rt->status(world::steady).state == ServiceState::ready);
        // restart with wait: ready again, a new process.
        const int pid_before = w.rt->status(world::steady).pid;
        auto restart = ask(w.sock, post_req("/services/steady/restart?wait=5s"));
        REQUIRE(restart.has_value());
        CHECK(restart->status == 200);
        CHECK(w.rt->status(world::steady).pid != pid_before);
        // flapping never becomes ready: the wait runs out.
        const std::int64_t t0 = now_ms();
        auto never = ask(w.sock, post_req("/services/flapping/start?wait=300ms"));
        REQUIRE(never.has_value());
        CHECK(never->status == 504);
        CHECK(now_ms() - t0 >= 250);
        CHECK(never->body.find("\"name\":\"flapping\"") != std::string::npos);
        auto unknown = ask(w.sock, post_req("/services/nope/stop"));
        REQUIRE(unknown.has_value());
        CHECK(unknown->status == 404);
        auto bad_wait = ask(w.sock, post_req("/services/steady/stop?wait=xyz"));
        REQUIRE(bad_wait.has_value());
        CHECK(bad_wait->status == 400);
        CHECK(w.rt->status(world::steady).state == ServiceState::ready); // not stopped
        auto too_long = ask(w.sock, post_req("/services/steady/stop?wait=10h"));
        REQUIRE(too_long.has_value());
        CHECK(too_long->status == 400);
        auto hold = ask(w.sock, post_req("/watchdog/hold?for=1m"));
        REQUIRE(hold.has_value());
        CHECK(hold->status != 200);
        CHECK(hold->status >= 400);
        auto release = ask(w.sock, post_req("/watchdog/hold", "DELETE"));
        REQUIRE(release.has_value());
        CHECK(release->status >= 400);
        auto check = ask(w.sock, post_req("/probes/dir/check?wait=5s"));
        REQUIRE(check.has_value());
        CHECK(check->status == 200);
        CHECK(check->body.find("\"name\":\"dir\"") != std::string::npos);
        auto put = ask(w.sock, post_req("/status", "PUT"));
        REQUIRE(put.has_value());
        CHECK(put->status == 405);
        // A client that goes away while parked: the wait is dropped, the
        // slot freed.
        {
            conn c(w.sock);
            REQUIRE(c.ok());
            REQUIRE(c.send(post_req("/services/flapping/start?wait=2s")));
            std::this_thread::sleep_for(100ms);
        }
        std::this_thread::sleep_for(2500ms);
        CHECK(w.clients_settled() == 1);
        w.still_fine(m);
    }

    TEST_CASE("auth: uid 65534 reads but may not act; the hook sees both") {
        if (::geteuid() != 0) {
            MESSAGE("SKIP: not root: cannot run a client as uid 65534");
            return;
        }
        world w;
        auto m = w.begin();
        const int pid_before = w.rt->status(world::steady).pid;
        REQUIRE(pid_before > 0);
        // The child: only syscalls and stack buffers after fork().
        const std::string get = get_req("/status", true);
        const std::string post =
            "POST /services/steady/stop HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        const sockaddr_un a = addr_of(w.sock);
        pid_t child = ::fork();
        REQUIRE(child >= 0);
        if (child == 0) {
            const gid_t nobody_g = 65534;
            if (::setgroups(0, nullptr) != 0 || ::setresgid(nobody_g, nobody_g, nobody_g) != 0 ||
                ::setresuid(65534, 65534, 65534) != 0) {
                ::_exit(10);
            }
            auto status_of = [&a](const std::string& req) -> int {
                int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
                    return -1;
                }
                set_timeouts(fd, 10000);
                if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) !=
                    static_cast<ssize_t>(req.size())) {
                    return -2;
                }
                char buf[16];
                std::size_t got = 0;
                while (got < 12) {
                    ssize_t n = ::recv(fd, buf + got, 12 - got, 0);
                    if (n <= 0) {
                        return -3;
                    }
                    got += static_cast<std::size_t>(n);
                }
                ::close(fd);
                return (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
            };
            const int read_status = status_of(get);
            const int act_status = status_of(post);
            ::_exit(read_status == 200 && act_status == 403 ? 0 : read_status != 200 ? 11 : 12);
        }
        int st = 0;
        REQUIRE(::waitpid(child, &st, 0) == child);
        REQUIRE(WIFEXITED(st));
        CHECK_MESSAGE(WEXITSTATUS(st) == 0,
                      "child: 10 drop failed, 11 GET /status not 200, 12 POST not 403");
        // Still running, the same process.
        CHECK(w.rt->status(world::steady).state == ServiceState::ready);
        CHECK(w.rt->status(world::steady).pid == pid_before);
        // Root acts: 200.
        auto root = ask(w.sock, post_req("/services/steady/restart"));
        REQUIRE(root.has_value());
        CHECK(root->status == 200);
        const std::string met = w.metrics();
        CHECK(metric(met, "custos_control_actions_denied_total") == 1);
        CHECK(metric(met, "custos_control_requests_total{code=\"403\"}") == 1);
        std::vector<action_seen> seen;
        {
            std::lock_guard<std::mutex> lock(w.mu);
            seen = w.actions;
        }
        bool denied = false;
        bool allowed = false;
        for (const action_seen& s : seen) {
            MESSAGE("hook: ", s.request, " uid ", s.uid, " pid ", s.pid, " -> ", s.http_status, " ",
                    reason_id(s.reason));
            if (s.uid == 65534 && s.http_status == 403 && s.subject == "steady" &&
                s.reason == Reason::control_denied && s.pid == child) {
                denied = true;
            }
            if (s.uid == 0 && s.http_status == 200 && s.subject == "steady" &&
                s.reason == Reason::control_action &&
                s.request.find("POST /services/steady/restart") == 0) {
                allowed = true;
            }
        }
        CHECK(denied);
        CHECK(allowed);
        w.still_fine(m);
    }
}

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    g_helper = std::getenv("CUSTOS_SVC_HELPER");
    if (g_helper == nullptr || g_helper[0] == '\0') {
        std::printf("CUSTOS_SVC_HELPER is not set (run through meson test)\n");
        return 1;
    }
    // The runtime's signals, blocked before any thread exists: every thread
    // inherits the mask, so SIGTERM and SIGCHLD reach only its signalfd.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2}) {
        sigaddset(&set, sig);
    }
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    struct sigaction sa {};
    sa.sa_handler = &on_alarm;
    ::sigaction(SIGALRM, &sa, nullptr);
    struct sigaction ab {};
    ab.sa_handler = &on_abort;
    ::sigaction(SIGABRT, &ab, nullptr);
    ::alarm(600);
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
