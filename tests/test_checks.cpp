// The check engine (src/probe/check.*) against real loopback peers: every
// kind of check, its reasons, its timing bounds, cancellation, composites,
// and many checks at once. Run once per backend like test_reactor: meson
// sets CUSTOS_BACKEND=uring and =epoll; a backend the kernel refuses makes
// the run exit 77 (skip).
//
// Cases that need something the host may lack have meson entries of their
// own, selected with --only=TAG, which exit 77 when it is missing:
//   backlog  a listener whose full accept queue drops SYNs (reliable())
//   ipv6     an ::1 loopback address
//   root     root and mounts (a private mount namespace): a full tmpfs, a
//            read-only tmpfs, a read-only bind mount
//   nonroot  not root: a chmod 0555 directory (root writes there anyway)
// Without --only, every untagged case runs.
//
// Exec checks: with a pidfd (the default spawner) the engine watches the
// exit itself. Without one (CUSTOS_SPAWN=vfork-nopidfd) it relies on the
// runtime's SIGCHLD drain, which this test stands in for (drain_children
// below, polled): that run has a meson entry of its own.
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend_probe.hpp"
#include "doctest.hpp"
#include "io/reactor.hpp"
#include "probe/check.hpp"
#include "probe/dns.hpp"
#include "probe_servers.hpp"
#include "process/spawn.hpp"

using namespace custos;
using namespace custos::probe;
using namespace std::chrono_literals;
using custos_test::http_mode;
using custos_test::loopback;

namespace {

// Set around every engine::start() and engine::cancel() call: done must
// never run while it is set.
bool g_in_call = false;

struct run_state {
    int done_count = 0;
    bool done_inside_call = false;
    mono_time finished{};
};

void on_done(check& c) {
    auto* s = static_cast<run_state*>(c.user);
    ++s->done_count;
    s->done_inside_call = s->done_inside_call || g_in_call;
    s->finished = mono_clock::now();
}

int open_fds() {
    int n = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
        while (readdir(d) != nullptr) {
            ++n;
        }
        closedir(d);
    }
    return n;
}

// Whether `pid` is gone: no such process, or a zombie nobody reaped yet
// (an orphan in a container whose init does not reap is still dead).
bool process_gone(int pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) {
        return true;
    }
    char buf[512] = {};
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    std::string_view s(buf, n);
    std::size_t paren = s.rfind(')');
    return paren != std::string_view::npos && paren + 2 < s.size() &&
           (s[paren + 2] == 'Z' || s[paren + 2] == 'X');
}

bool wait_gone(int pid, std::chrono::milliseconds timeout) {
    return custos_test::detail::wait_until([&] { return process_gone(pid); }, timeout);
}

// A pid written by a shell into `path`; 0 when it is not there (yet).
int read_pid(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return 0;
    }
    int pid = 0;
    if (std::fscanf(f, "%d", &pid) != 1) {
        pid = 0;
    }
    std::fclose(f);
    return pid;
}

// A private directory, removed (with what is left in it) at the end.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/custos-checks-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        ::chmod(path.c_str(), 0700);
        if (DIR* d = opendir(path.c_str())) {
            while (dirent* e = readdir(d)) {
                std::string_view n(e->d_name);
                if (n != "." && n != "..") {
                    std::string p = path + "/" + e->d_name;
                    if (::unlink(p.c_str()) != 0) {
                        ::umount2(p.c_str(), MNT_DETACH);
                        ::rmdir(p.c_str());
                    }
                }
            }
            closedir(d);
        }
        ::rmdir(path.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
    // Names in the directory besides . and ..
    std::vector<std::string> entries(const std::string& dir) const {
        std::vector<std::string> out;
        if (DIR* d = opendir(dir.c_str())) {
            while (dirent* e = readdir(d)) {
                std::string_view n(e->d_name);
                if (n != "." && n != "..") {
                    out.emplace_back(n);
                }
            }
            closedir(d);
        }
        return out;
    }
};

bool write_file(const std::string& path, std::string_view text, mode_t mode = 0644) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return false;
    }
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::fchmod(fd, mode);
    ::close(fd);
    return ok;
}

std::string port_target(std::uint16_t port, const char* host = "127.0.0.1") {
    return std::string(host) + ":" + std::to_string(port);
}

// A reactor, a spawner, a resolver and an engine over a probe table. The
// specs (and the strings they point to) must outlive the harness.
struct harness {
    io::reactor r;
    process::spawner sp;
    resolver res;
    std::unique_ptr<resolver_config> rc = std::make_unique<resolver_config>();
    custos::tbl::plan plan; // lives as long as the engine: it is laid out from it
    arena mem;
    std::unique_ptr<engine> e;
    std::vector<run_state> states;
    bool pidfd = true;
    io::timer tick{[](io::timer&) {}, nullptr}; // wakes a polling loop

    // `hosts`: the resolver's hosts table; `with_resolver`/`with_spawner`
    // false give the engine none (the checks that need one then fail).
    void init(std::span<const ProbeSpec> specs, bool with_resolver = true,
              bool with_spawner = true) {
        io::reactor_config cfg;
        cfg.max_ops = 1024;
        cfg.max_fds = 1024;
        cfg.uring_entries = 256;
        auto ri = r.init(cfg);
        REQUIRE(ri.has_value());
        REQUIRE(sp.init().has_value());
        pidfd = sp.method() != process::spawn_method::vfork;
        if (rc->host_count == 0) {
            parse_hosts("127.0.0.1 broker.test\n::1 broker6.test\n", *rc);
        }
        REQUIRE(res.init(r, *rc).has_value());
        resolver* dns = with_resolver ? &res : nullptr;
        process::spawner* spawner = with_spawner ? &sp : nullptr;
        // Checked and resolved as the runtime does (the real executables and
        // users: exec and file probes use them).
        custos::Table table;
        table.probes = specs;
        table.runtime.max_probes = static_cast<std::uint32_t>(specs.size());
        table.runtime.max_probe_checks = 4 * static_cast<std::uint32_t>(specs.size());
        auto planned = plan.build(table);
        if (!planned) {
            char buf[256];
            planned.error().format(buf, sizeof buf);
            MESSAGE(buf);
        }
        REQUIRE(planned.has_value());
        {
            engine sizing;
            auto first = sizing.init(r, plan, mem, spawner, dns);
            REQUIRE(!first.has_value());
            REQUIRE(first.error().reason() == Reason::out_of_memory);
        }
        REQUIRE(mem.reserve(mem.needed()));
        e = std::make_unique<engine>();
        auto second = e->init(r, plan, mem, spawner, dns);
        if (!second) {
            char buf[256];
            second.error().format(buf, sizeof buf);
            MESSAGE(buf);
        }
        REQUIRE(second.has_value());
        states.resize(specs.size());
        for (std::size_t i = 0; i < specs.size(); ++i) {
            check& c = e->root(static_cast<std::uint32_t>(i));
            c.done = &on_done;
            c.user = &states[i];
        }
    }

    check& root(std::uint32_t i) { return e->root(i); }

    void start(std::uint32_t i, std::chrono::milliseconds timeout) {
        states[i] = run_state{};
        g_in_call = true;
        e->start(e->root(i), r.now() + timeout);
        g_in_call = false;
    }
    void cancel(std::uint32_t i) {
        g_in_call = true;
        e->cancel(e->root(i));
        g_in_call = false;
    }

    // Without a pidfd, what the runtime's SIGCHLD drain does for exec
    // checks: reap their children and report the exits.
    void drain_children() {
        for (;;) {
            siginfo_t si{};
            if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
                return;
            }
            bool watched = false;
            if (!e->owns_child(si.si_pid, &watched) || watched) {
                return;
            }
            siginfo_t reaped{};
            if (::waitid(P_PID, static_cast<id_t>(si.si_pid), &reaped, WEXITED | WNOHANG) != 0) {
                return;
            }
            e->on_child_exit(si.si_pid, reaped);
        }
    }

    // Runs the loop until `done()` or `limit` passes. It polls when `done`
    // waits for something outside the reactor (`external`), and without a
    // pidfd (a child's exit wakes nothing here).
    template <class Done>
    bool loop_until(Done done, std::chrono::milliseconds limit, bool external = false) {
        mono_time end = r.now() + limit;
        while (!done()) {
            if (r.now() >= end) {
                return false;
            }
            if (pidfd && !external) {
                r.run_once(true);
            } else {
                // Not run_once(false): on an io_uring set up with
                // DEFER_TASKRUN a non-blocking turn never enters the kernel
                // to run its deferred completions; a blocking turn with a
                // 1 ms timer does.
                r.arm_after(tick, 1ms);
                r.run_once(true);
                r.cancel(tick);
                if (!pidfd) {
                    drain_children();
                }
            }
        }
        return true;
    }

    // Starts check i and runs until its done ran. Returns the elapsed time.
    std::chrono::milliseconds run(std::uint32_t i, std::chrono::milliseconds timeout) {
        mono_time t0 = r.now();
        start(i, timeout);
        CHECK(!states[i].done_inside_call);
        bool ended = loop_until([&] { return states[i].done_count > 0; }, timeout + 10s);
        REQUIRE(ended);
        settle();
        CHECK(states[i].done_count == 1);
        CHECK(!states[i].done_inside_call);
        CHECK(!root(i).running());
        return std::chrono::duration_cast<std::chrono::milliseconds>(states[i].finished - t0);
    }

    // A few more turns of the loop: a second done would show here.
    void settle() {
        for (int k = 0; k < 5; ++k) {
            r.arm_after(tick, 1ms);
            r.run_once(true);
            r.cancel(tick);
        }
    }

    const check_result& result(std::uint32_t i) { return root(i).result; }
};

// Prints the result's message when an expectation fails.
#define CHECK_REASON(h, i, want)                                                                   \
    do {                                                                                           \
        INFO("message: ", (h).result(i).message, " errno ", (h).result(i).sys_errno);              \
        CHECK((h).result(i).reason == (want));                                                     \
    } while (0)

#define CHECK_PASSED(h, i)                                                                         \
    do {                                                                                           \
        INFO("message: ", (h).result(i).message, " errno ", (h).result(i).sys_errno);              \
        CHECK((h).result(i).passed());                                                             \
    } while (0)

ProbeSpec tcp_spec(const char* name, std::string_view target) {
    ProbeSpec s;
    s.name = name;
    s.kind = ProbeKind::tcp;
    s.target = target;
    return s;
}

ProbeSpec kind_spec(const char* name, ProbeKind k, std::string_view target) {
    ProbeSpec s;
    s.name = name;
    s.kind = k;
    s.target = target;
    return s;
}

} // namespace

// ---------------------------------------------------------------- tcp

TEST_CASE("tcp: a listener passes, a closed port is refused") {
    custos_test::tcp_listener l;
    REQUIRE(l.ok());
    auto closed = custos_test::closed_port();
    REQUIRE(closed.ok());
    std::string ok_t = port_target(l.port());
    std::string refused_t = port_target(closed.port());
    ProbeSpec specs[] = {tcp_spec("up", ok_t), tcp_spec("refused", refused_t)};
    harness h;
    h.init(specs);

    auto t = h.run(0, 2s);
    CHECK_PASSED(h, 0);
    CHECK(t < 1500ms);
    CHECK(l.wait_accepts(1, 2s));

    int before = open_fds();
    t = h.run(1, 2s);
    CHECK_REASON(h, 1, Reason::probe_connect_refused);
    CHECK(h.result(1).sys_errno == ECONNREFUSED);
    CHECK(std::string_view(h.result(1).message).find(refused_t) != std::string_view::npos);
    CHECK(t < 1500ms);
    CHECK(open_fds() == before); // the socket was closed
    CHECK(h.r.ops_in_flight() == 0);

    // A check is reusable once done ran.
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    h.run(1, 2s);
    CHECK_REASON(h, 1, Reason::probe_connect_refused);
}

TEST_CASE("tcp: host names come from the resolver's hosts table") {
    custos_test::tcp_listener l;
    REQUIRE(l.ok());
    std::string t = port_target(l.port(), "broker.test");
    ProbeSpec specs[] = {tcp_spec("named", t)};
    REQUIRE(engine::needs_resolver(specs));
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    CHECK(l.wait_accepts(1, 2s));
}

TEST_CASE("tcp: an unknown name with no name server reachable is ProbeDnsFailed") {
    // A UDP port nothing listens on: the query is answered by ICMP port
    // unreachable (ECONNREFUSED) at once.
    std::uint16_t port = 0;
    int fd = custos_test::detail::bind_loopback(loopback::v4, SOCK_DGRAM, port);
    REQUIRE(fd >= 0);
    ::close(fd);

    std::string t = "nowhere.test:80";
    ProbeSpec specs[] = {tcp_spec("unknown", t)};
    harness h;
    auto* a = reinterpret_cast<sockaddr_in*>(&h.rc->servers[0]);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    h.rc->server_len[0] = sizeof *a;
    h.rc->server_count = 1;
    h.rc->attempt_timeout = 200ms;
    h.init(specs);
    auto elapsed = h.run(0, 3s);
    CHECK_REASON(h, 0, Reason::probe_dns_failed);
    CHECK((h.result(0).sys_errno == ECONNREFUSED || h.result(0).sys_errno == ETIMEDOUT));
    CHECK(elapsed < 2s);
}

TEST_CASE("tcp: a host name without a resolver fails, from the loop") {
    std::string t = "broker.test:80";
    ProbeSpec specs[] = {tcp_spec("noresolver", t)};
    harness h;
    h.init(specs, /*with_resolver=*/false);
    h.run(0, 2s); // run() checks done did not run inside start()
    CHECK_REASON(h, 0, Reason::probe_dns_failed);
}

TEST_CASE("tcp [backlog]: a full accept queue runs into the timeout") {
    custos_test::full_backlog_listener l;
    REQUIRE(l.ok());
    REQUIRE(l.reliable());
    std::string t = port_target(l.port());
    ProbeSpec specs[] = {tcp_spec("hang", t)};
    harness h;
    h.init(specs);
    int before = open_fds();
    auto elapsed = h.run(0, 400ms);
    CHECK_REASON(h, 0, Reason::probe_timeout);
    CHECK(h.result(0).sys_errno == ETIMEDOUT);
    CHECK(elapsed >= 390ms);
    CHECK(elapsed < 1500ms);
    CHECK(open_fds() == before);
}

TEST_CASE("tcp [ipv6]: [::1] literals and names with IPv6 addresses") {
    custos_test::tcp_listener l(loopback::v6);
    REQUIRE(l.ok());
    auto closed = custos_test::closed_port(loopback::v6);
    REQUIRE(closed.ok());
    std::string ok_t = "[::1]:" + std::to_string(l.port());
    std::string refused_t = "[::1]:" + std::to_string(closed.port());
    std::string named_t = "broker6.test:" + std::to_string(l.port());
    ProbeSpec specs[] = {tcp_spec("v6", ok_t), tcp_spec("v6refused", refused_t),
                         tcp_spec("v6named", named_t)};
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    h.run(1, 2s);
    CHECK_REASON(h, 1, Reason::probe_connect_refused);
    h.run(2, 2s);
    CHECK_PASSED(h, 2);
    CHECK(l.wait_accepts(2, 2s));
}

// ---------------------------------------------------------------- http

namespace {

ProbeSpec http_spec(const char* name, std::string_view url,
                    std::span<const std::uint16_t> expect = {}) {
    ProbeSpec s = kind_spec(name, ProbeKind::http, url);
    s.expect_status = expect;
    return s;
}

std::string url_of(const custos_test::http_server& s, const char* path = "/health") {
    return "http://127.0.0.1:" + std::to_string(s.port()) + path;
}

} // namespace

TEST_CASE("http: 200 passes; the request has the path, Host and Connection: close") {
    custos_test::http_server s;
    REQUIRE(s.ok());
    std::string u = url_of(s, "/path");
    ProbeSpec specs[] = {http_spec("web", u)};
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    REQUIRE(s.wait_requests(1, 2s));
    std::string req = s.last_request();
    INFO("request: ", req);
    CHECK(req.rfind("GET /path HTTP/1.1\r\n", 0) == 0);
    CHECK(req.find("\r\nHost: 127.0.0.1:" + std::to_string(s.port()) + "\r\n") !=
          std::string::npos);
    CHECK(req.find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(req.size() >= 4);
    CHECK(req.substr(req.size() - 4) == "\r\n\r\n");
}

TEST_CASE("http: statuses, expect_status, redirects") {
    custos_test::http_server s("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(s.ok());
    std::string u = url_of(s);
    const std::uint16_t only503[] = {503};
    const std::uint16_t only204[] = {204};
    ProbeSpec specs[] = {http_spec("plain", u), http_spec("want503", u, only503),
                         http_spec("want204", u, only204)};
    harness h;
    h.init(specs);

    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_http_status);
    CHECK(std::string_view(h.result(0).message).find("503") != std::string_view::npos);
    h.run(1, 2s);
    CHECK_PASSED(h, 1);
    h.run(2, 2s);
    CHECK_REASON(h, 2, Reason::probe_http_status);

    s.set(http_mode::respond, "HTTP/1.1 301 Moved Permanently\r\nLocation: /elsewhere\r\n\r\n");
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    h.run(1, 2s);
    CHECK_REASON(h, 1, Reason::probe_http_status);

    s.set(http_mode::respond, "HTTP/1.0 204 No Content\r\n\r\n");
    h.run(2, 2s);
    CHECK_PASSED(h, 2);
}

TEST_CASE("http: not HTTP is ProbeHttpMalformed") {
    custos_test::http_server s("SSH-2.0-OpenSSH_9.6\r\n");
    REQUIRE(s.ok());
    std::string u = url_of(s);
    ProbeSpec specs[] = {http_spec("ssh", u)};
    harness h;
    h.init(specs);
    auto elapsed = h.run(0, 3s);
    CHECK_REASON(h, 0, Reason::probe_http_malformed);
    CHECK(elapsed < 2s);

    // A clean close without a word.
    s.set(http_mode::close_after_request, "");
    h.run(0, 3s);
    CHECK_REASON(h, 0, Reason::probe_http_malformed);
}

TEST_CASE("http: a server that never answers runs into the timeout") {
    custos_test::http_server s("", http_mode::never_answer);
    REQUIRE(s.ok());
    std::string u = url_of(s);
    ProbeSpec specs[] = {http_spec("silent", u)};
    harness h;
    h.init(specs);
    auto elapsed = h.run(0, 400ms);
    CHECK_REASON(h, 0, Reason::probe_timeout);
    CHECK(elapsed >= 390ms);
    CHECK(elapsed < 1500ms);
    CHECK(s.requests() == 1);
}

TEST_CASE("http: a connection reset after the request is an I/O failure") {
    custos_test::http_server s("", http_mode::reset_after_request);
    REQUIRE(s.ok());
    std::string u = url_of(s);
    ProbeSpec specs[] = {http_spec("reset", u)};
    harness h;
    h.init(specs);
    h.run(0, 3s);
    CHECK_REASON(h, 0, Reason::probe_io_failed);
    CHECK(h.result(0).sys_errno == ECONNRESET);
}

TEST_CASE("http: a slow server, and a head larger than the buffer") {
    custos_test::http_server s("HTTP/1.1 200 OK\r\nServer: slow\r\nContent-Length: 0\r\n\r\n",
                               http_mode::respond_slowly);
    REQUIRE(s.ok());
    std::string u = url_of(s);
    ProbeSpec specs[] = {http_spec("slow", u)};
    harness h;
    h.init(specs);
    h.run(0, 3s);
    CHECK_PASSED(h, 0);

    std::string big = "HTTP/1.1 200 OK\r\nX-Padding: " + std::string(3000, 'a') + "\r\n\r\nbody";
    s.set(http_mode::respond, big);
    h.run(0, 3s);
    CHECK_PASSED(h, 0);

    std::string big503 =
        "HTTP/1.1 503 Busy\r\nX-Padding: " + std::string(3000, 'a') + "\r\n\r\nbody";
    s.set(http_mode::respond, big503);
    h.run(0, 3s);
    CHECK_REASON(h, 0, Reason::probe_http_status);
}

TEST_CASE("http: a closed port is refused") {
    auto closed = custos_test::closed_port();
    REQUIRE(closed.ok());
    std::string u = "http://127.0.0.1:" + std::to_string(closed.port()) + "/";
    ProbeSpec specs[] = {http_spec("gone", u)};
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_connect_refused);
}

// ---------------------------------------------------------------- unix

TEST_CASE("unix: a listener passes; an absent path or a stale socket is refused") {
    temp_dir d;
    std::string path = d.file("api.sock");
    std::string absent = d.file("absent.sock");
    std::string stale = d.file("stale.sock");
    custos_test::unix_listener l(path.c_str());
    REQUIRE(l.ok());
    {
        // Bound, then closed: the file stays, nobody listens.
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, stale.c_str(), stale.size() + 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        ::close(fd);
    }
    ProbeSpec specs[] = {kind_spec("sock", ProbeKind::unix_socket, path),
                         kind_spec("absent", ProbeKind::unix_socket, absent),
                         kind_spec("stale", ProbeKind::unix_socket, stale)};
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    CHECK(l.wait_accepts(1, 2s));

    int before = open_fds();
    h.run(1, 2s);
    CHECK_REASON(h, 1, Reason::probe_connect_refused);
    CHECK(h.result(1).sys_errno == ENOENT);
    h.run(2, 2s);
    CHECK_REASON(h, 2, Reason::probe_connect_refused);
    CHECK(h.result(2).sys_errno == ECONNREFUSED);
    CHECK(open_fds() == before);
}

// ---------------------------------------------------------------- exec

namespace {

ProbeSpec exec_spec(const char* name, std::span<const std::string_view> argv) {
    ProbeSpec s;
    s.name = name;
    s.kind = ProbeKind::exec;
    s.argv = argv;
    return s;
}

} // namespace

TEST_CASE("exec: exit 0 passes, exit 1 and a signal fail with ProbeExitStatus") {
    const std::string_view t[] = {"/bin/true"};
    const std::string_view f[] = {"/bin/false"};
    const std::string_view sig[] = {"/bin/sh", "-c", "kill -TERM $$"};
    const std::string_view three[] = {"sh", "-c", "exit 3"}; // found in PATH
    ProbeSpec specs[] = {exec_spec("true", t), exec_spec("false", f), exec_spec("sig", sig),
                         exec_spec("three", three)};
    REQUIRE(engine::needs_spawner(specs));
    harness h;
    h.init(specs);
    MESSAGE("spawn method: ", std::string(process::spawn_method_name(h.sp.method())));
    int before = open_fds();
    h.run(0, 5s);
    CHECK_PASSED(h, 0);
    h.run(1, 5s);
    CHECK_REASON(h, 1, Reason::probe_exit_status);
    CHECK(std::string_view(h.result(1).message).find("exit status 1") != std::string_view::npos);
    h.run(2, 5s);
    CHECK_REASON(h, 2, Reason::probe_exit_status);
    CHECK(std::string_view(h.result(2).message).find("signal 15") != std::string_view::npos);
    h.run(3, 5s);
    CHECK_REASON(h, 3, Reason::probe_exit_status);
    CHECK(std::string_view(h.result(3).message).find("exit status 3") != std::string_view::npos);
    CHECK(open_fds() == before); // pidfds closed
    CHECK(h.e->stats().children_killed == 0);
}

TEST_CASE("exec: a hung command is killed with its group at the timeout") {
    temp_dir d;
    std::string leader = d.file("leader.pid");
    std::string child = d.file("child.pid");
    // The shell writes its pid and its background child's, then waits: at
    // the timeout both must die (the child through the process group).
    std::string script = "sleep 30 & echo $! > " + child + "; echo $$ > " + leader + "; wait";
    const std::string_view argv[] = {"/bin/sh", "-c", script};
    ProbeSpec specs[] = {exec_spec("hang", argv)};
    harness h;
    h.init(specs);
    auto elapsed = h.run(0, 300ms);
    CHECK_REASON(h, 0, Reason::probe_timeout);
    CHECK(elapsed >= 290ms);
    CHECK(elapsed < 1s);
    CHECK(h.e->stats().children_killed == 1);
    int lp = read_pid(leader);
    int cp = read_pid(child);
    REQUIRE(lp > 0);
    REQUIRE(cp > 0);
    CHECK(wait_gone(lp, 1s));
    CHECK(wait_gone(cp, 1s));
    // The leader was reaped by the check: it is not our zombie.
    siginfo_t si{};
    CHECK(::waitid(P_PID, static_cast<id_t>(lp), &si, WEXITED | WNOHANG) == -1);
}

TEST_CASE("exec: a failure's message ends with the last line written; a pass drops its output") {
    const std::string_view said[] = {"/bin/sh", "-c",
                                     "echo starting; echo 'db locked' >&2; exit 1"};
    // ~140 KiB: more than the line buffer, and more than the pipe holds
    // (the child would block on it if it were read only at the exit).
    const std::string_view many[] = {
        "/bin/sh", "-c",
        "i=0; while [ $i -lt 6000 ]; do echo \"line $i of the noise\"; i=$((i+1)); done; "
        "echo 'final words'; exit 2"};
    // Control bytes as '?', a CRLF's CR dropped, empty lines after it
    // skipped, the line cut at 120 bytes.
    const std::string_view ugly[] = {
        "/bin/sh", "-c",
        "printf 'a\\tb\\033[31m'; i=0; while [ $i -lt 200 ]; do printf y; i=$((i+1)); done; "
        "printf '\\r\\n\\n\\n'; exit 3"};
    const std::string_view crlf[] = {"/bin/sh", "-c", "printf 'short\\r\\n'; exit 4"};
    const std::string_view silent[] = {"/bin/false"};
    const std::string_view chatty[] = {"/bin/sh", "-c", "echo all is well; echo fine >&2"};
    const std::string_view dying[] = {"/bin/sh", "-c", "echo going down; kill -TERM $$"};
    const std::string_view unterminated[] = {"/bin/sh", "-c", "printf 'no newline'; exit 5"};
    ProbeSpec specs[] = {exec_spec("said", said),     exec_spec("many", many),
                         exec_spec("ugly", ugly),     exec_spec("crlf", crlf),
                         exec_spec("silent", silent), exec_spec("chatty", chatty),
                         exec_spec("dying", dying),   exec_spec("unterminated", unterminated)};
    harness h;
    h.init(specs);
    int before = open_fds();
    auto msg = [&](std::uint32_t i) { return std::string_view(h.result(i).message); };
    h.run(0, 5s);
    CHECK_REASON(h, 0, Reason::probe_exit_status);
    CHECK(msg(0) == "/bin/sh: exit status 1: db locked");
    h.run(1, 5s);
    CHECK_REASON(h, 1, Reason::probe_exit_status);
    CHECK(msg(1) == "/bin/sh: exit status 2: final words");
    h.run(2, 5s);
    CHECK_REASON(h, 2, Reason::probe_exit_status);
    const std::string want = "a?b?[31m" + std::string(120 - 8, 'y');
    CHECK(msg(2) == "/bin/sh: exit status 3: " + want);
    h.run(3, 5s);
    CHECK(msg(3) == "/bin/sh: exit status 4: short");
    h.run(4, 5s);
    CHECK_REASON(h, 4, Reason::probe_exit_status);
    CHECK(msg(4) == "/bin/false: exit status 1"); // nothing said: as before
    h.run(5, 5s);
    CHECK_PASSED(h, 5);
    h.run(6, 5s);
    CHECK_REASON(h, 6, Reason::probe_exit_status);
    CHECK(msg(6) == "/bin/sh: killed by signal 15: going down");
    h.run(7, 5s);
    CHECK(msg(7) == "/bin/sh: exit status 5: no newline");
    CHECK(open_fds() == before); // pipes and pidfds closed
}

TEST_CASE("exec: a run killed at the timeout keeps its last line; a grandchild holding the "
          "pipe is not waited for") {
    // The background sleep keeps the write end open: the check must not
    // wait for EOF (it is killed with the group anyway).
    const std::string_view argv[] = {"/bin/sh", "-c",
                                     "sleep 30 & echo 'waiting for the lock'; sleep 30"};
    ProbeSpec specs[] = {exec_spec("stuck", argv)};
    harness h;
    h.init(specs);
    int before = open_fds();
    auto elapsed = h.run(0, 300ms);
    CHECK_REASON(h, 0, Reason::probe_timeout);
    CHECK(elapsed < 1s);
    CHECK(std::string_view(h.result(0).message) ==
          "/bin/sh: still running at the timeout: killed: waiting for the lock");
    CHECK(open_fds() == before);
}

TEST_CASE("exec: without a spawner the check fails, from the loop") {
    const std::string_view t[] = {"/bin/true"};
    ProbeSpec specs[] = {exec_spec("true", t)};
    harness h;
    h.init(specs, true, /*with_spawner=*/false);
    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_exec_failed);
}

// ---------------------------------------------------------------- file

namespace {

ProbeSpec file_spec(const char* name, std::string_view path) {
    return kind_spec(name, ProbeKind::file, path);
}

} // namespace

TEST_CASE("file: exists, missing, owner, mode") {
    temp_dir d;
    std::string f = d.file("data");
    REQUIRE(write_file(f, "x", 0600));
    std::string missing = d.file("missing");
    std::string me_group = std::to_string(::geteuid()) + ":" + std::to_string(::getegid());
    // Not us: root is 0; as root, nobody (65534) is someone else.
    std::string other = ::geteuid() == 0 ? "65534" : "0";
    std::string other_group = ":" + std::string(::getegid() == 0 ? "65534" : "0");

    ProbeSpec specs[7];
    specs[0] = file_spec("exists", f);
    specs[1] = file_spec("missing", missing);
    specs[2] = file_spec("mine", f);
    specs[2].owner = me_group;
    specs[3] = file_spec("theirs", f);
    specs[3].owner = other;
    specs[4] = file_spec("theirgroup", f);
    specs[4].owner = other_group;
    specs[5] = file_spec("mode644", f);
    specs[5].mode = 0644;
    specs[6] = file_spec("mode600", f);
    specs[6].mode = 0600;
    harness h;
    h.init(specs);

    int before = open_fds();
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
    h.run(1, 2s);
    CHECK_REASON(h, 1, Reason::probe_file_missing);
    CHECK(h.result(1).sys_errno == ENOENT);
    h.run(2, 2s);
    CHECK_PASSED(h, 2);
    h.run(3, 2s);
    CHECK_REASON(h, 3, Reason::probe_owner_mismatch);
    h.run(4, 2s);
    CHECK_REASON(h, 4, Reason::probe_owner_mismatch);
    h.run(5, 2s);
    CHECK_REASON(h, 5, Reason::probe_mode_mismatch);
    CHECK(std::string_view(h.result(5).message).find("0600") != std::string_view::npos);
    h.run(6, 2s);
    CHECK_PASSED(h, 6);
    CHECK(open_fds() == before);
}

TEST_CASE("file: writable in a directory and beside a file leaves nothing behind") {
    temp_dir d;
    std::string f = d.file("data");
    REQUIRE(write_file(f, "x"));
    ProbeSpec specs[3];
    specs[0] = file_spec("dir", d.path);
    specs[0].writable = true;
    std::string slash = d.path + "/";
    specs[1] = file_spec("dirslash", slash);
    specs[1].writable = true;
    specs[2] = file_spec("beside", f);
    specs[2].writable = true;
    harness h;
    h.init(specs);
    int before = open_fds();
    for (std::uint32_t i = 0; i < 3; ++i) {
        h.run(i, 2s);
        CHECK_PASSED(h, i);
        auto left = d.entries(d.path);
        CHECK(left.size() == 1); // only "data"
        CHECK(left.front() == "data");
    }
    CHECK(open_fds() == before);
}

// Run only with --only=nonroot (skipped as root, who bypasses permission
// bits: the [root] read-only bind mount case stands in for it there).
TEST_CASE("file [nonroot]: writable on a read-only directory fails with ProbeNotWritable") {
    REQUIRE(::geteuid() != 0);
    temp_dir d;
    std::string sub = d.file("ro");
    REQUIRE(::mkdir(sub.c_str(), 0755) == 0);
    REQUIRE(::chmod(sub.c_str(), 0555) == 0);
    ProbeSpec specs[] = {file_spec("ro", sub)};
    specs[0].writable = true;
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_not_writable);
    CHECK(h.result(0).sys_errno == EACCES);
    ::chmod(sub.c_str(), 0755);
    CHECK(d.entries(sub).empty());
}

namespace {

// A mount point in `d`; unmounted (lazily) in the destructor.
struct mount_point {
    std::string path;
    bool mounted = false;
    mount_point(const temp_dir& d, const char* name) : path(d.file(name)) {
        REQUIRE(::mkdir(path.c_str(), 0755) == 0);
    }
    ~mount_point() {
        if (mounted) {
            ::umount2(path.c_str(), MNT_DETACH);
        }
        ::rmdir(path.c_str());
    }
};

} // namespace

TEST_CASE("file [root]: a full tmpfs is ProbeNotWritable (ENOSPC), nothing left behind") {
    temp_dir d;
    mount_point m(d, "full");
    REQUIRE(::mount("tmpfs", m.path.c_str(), "tmpfs", 0, "size=4k,mode=0755") == 0);
    m.mounted = true;
    // Fill it: one 4 KiB page, then nothing more fits.
    std::string fill = m.path + "/fill";
    int fd = ::open(fill.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    char page[4096];
    std::memset(page, 'x', sizeof page);
    while (::write(fd, page, sizeof page) > 0) {
    }
    ::close(fd);
    ProbeSpec specs[] = {file_spec("full", m.path)};
    specs[0].writable = true;
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_not_writable);
    CHECK(h.result(0).sys_errno == ENOSPC);
    auto left = d.entries(m.path);
    CHECK(left.size() == 1);
    CHECK(left.front() == "fill");
}

TEST_CASE("file [root]: a read-only tmpfs is ProbeNotWritable (EROFS)") {
    temp_dir d;
    mount_point m(d, "ro");
    REQUIRE(::mount("tmpfs", m.path.c_str(), "tmpfs", MS_RDONLY, "size=64k") == 0);
    m.mounted = true;
    ProbeSpec specs[2];
    specs[0] = file_spec("ro", m.path);
    specs[0].writable = true;
    specs[1] = file_spec("ro_exists", m.path); // existing is fine
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_not_writable);
    CHECK(h.result(0).sys_errno == EROFS);
    h.run(1, 2s);
    CHECK_PASSED(h, 1);
}

TEST_CASE("file [root]: a read-only bind mount is ProbeNotWritable") {
    temp_dir d;
    std::string src = d.file("src");
    REQUIRE(::mkdir(src.c_str(), 0755) == 0);
    mount_point m(d, "bound");
    REQUIRE(::mount(src.c_str(), m.path.c_str(), nullptr, MS_BIND, nullptr) == 0);
    m.mounted = true;
    REQUIRE(::mount(nullptr, m.path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) ==
            0);
    ProbeSpec specs[2];
    specs[0] = file_spec("robind", m.path);
    specs[0].writable = true;
    specs[1] = file_spec("rwsrc", src);
    specs[1].writable = true;
    harness h;
    h.init(specs);
    h.run(0, 2s);
    CHECK_REASON(h, 0, Reason::probe_not_writable);
    CHECK(h.result(0).sys_errno == EROFS);
    h.run(1, 2s);
    CHECK_PASSED(h, 1);
    CHECK(d.entries(src).empty());
}

// ---------------------------------------------------------------- all

TEST_CASE("all: every member passes; the first failure cancels the rest") {
    custos_test::tcp_listener l;
    REQUIRE(l.ok());
    auto closed = custos_test::closed_port();
    REQUIRE(closed.ok());
    custos_test::http_server silent("", http_mode::never_answer);
    REQUIRE(silent.ok());
    temp_dir d;
    std::string pidfile = d.file("sleep.pid");
    std::string script = "echo $$ > " + pidfile + "; exec sleep 30";
    const std::string_view sleep_argv[] = {"/bin/sh", "-c", script};

    std::string ok_t = port_target(l.port());
    std::string refused_t = port_target(closed.port());
    std::string silent_u = url_of(silent);
    const std::string_view both_ok[] = {"a", "b"};
    const std::string_view mixed[] = {"refused", "silent", "sleeper"};
    const std::string_view inner[] = {"a", "refused"};
    const std::string_view outer[] = {"b", "inner"};
    ProbeSpec specs[9];
    specs[0] = tcp_spec("a", ok_t);
    specs[1] = tcp_spec("b", ok_t);
    specs[2] = tcp_spec("refused", refused_t);
    specs[3] = http_spec("silent", silent_u);
    specs[4] = exec_spec("sleeper", sleep_argv);
    specs[5] = kind_spec("both", ProbeKind::all, "");
    specs[5].members = both_ok;
    specs[6] = kind_spec("mixed", ProbeKind::all, "");
    specs[6].members = mixed;
    specs[7] = kind_spec("inner", ProbeKind::all, "");
    specs[7].members = inner;
    specs[8] = kind_spec("outer", ProbeKind::all, "");
    specs[8].members = outer;
    harness h;
    h.init(specs);

    h.run(5, 2s);
    CHECK_PASSED(h, 5);
    CHECK(l.wait_accepts(2, 2s));

    // The refused member fails at once; the silent HTTP server and the
    // sleeping command would hold on for 5 s: they are cancelled.
    auto elapsed = h.run(6, 5s);
    CHECK_REASON(h, 6, Reason::probe_connect_refused);
    CHECK(elapsed < 2s);
    CHECK(std::string_view(h.result(6).message).find("refused: ") == 0);
    int sp = read_pid(pidfile);
    if (sp > 0) { // it may have been killed before the shell wrote it
        CHECK(wait_gone(sp, 1s));
    }
    CHECK(h.r.ops_in_flight() == 0);
    CHECK(!h.root(6).cancelled); // the composite itself was not cancelled

    h.run(8, 2s);
    CHECK_REASON(h, 8, Reason::probe_connect_refused);
    CHECK(std::string_view(h.result(8).message).find("inner: refused: ") == 0);

    // The member probes' own checks are independent of the composites'.
    h.run(2, 2s);
    CHECK_REASON(h, 2, Reason::probe_connect_refused);
    h.run(0, 2s);
    CHECK_PASSED(h, 0);
}

// Regression: a member cancelled while its op's completion was already
// queued (reactor::cancel() returns false then) went on to its next step
// and held the composite until the member's deadline.
TEST_CASE("all: a member cancelled with its completion queued stops at once") {
    auto closed = custos_test::closed_port();
    REQUIRE(closed.ok());
    custos_test::http_server silent("", http_mode::never_answer);
    REQUIRE(silent.ok());
    std::string refused_t = port_target(closed.port());
    std::string silent_u = url_of(silent);
    const std::string_view first[] = {"refused", "silent"};
    const std::string_view last[] = {"silent", "refused"};
    ProbeSpec specs[4];
    specs[0] = tcp_spec("refused", refused_t);
    specs[1] = http_spec("silent", silent_u);
    specs[2] = kind_spec("first", ProbeKind::all, "");
    specs[2].members = first;
    specs[3] = kind_spec("last", ProbeKind::all, "");
    specs[3].members = last;
    harness h;
    h.init(specs);
    for (int round = 0; round < 10; ++round) {
        for (std::uint32_t i : {2u, 3u}) {
            auto elapsed = h.run(i, 5s);
            CHECK_REASON(h, i, Reason::probe_connect_refused);
            CHECK(elapsed < 1s);
        }
    }
}

TEST_CASE("all [backlog]: a hanging connect is cancelled when another member fails") {
    custos_test::full_backlog_listener full;
    REQUIRE(full.ok());
    REQUIRE(full.reliable());
    auto closed = custos_test::closed_port();
    REQUIRE(closed.ok());
    std::string full_t = port_target(full.port());
    std::string refused_t = port_target(closed.port());
    const std::string_view members[] = {"refused", "hang"};
    ProbeSpec specs[3];
    specs[0] = tcp_spec("refused", refused_t);
    specs[1] = tcp_spec("hang", full_t);
    specs[2] = kind_spec("both", ProbeKind::all, "");
    specs[2].members = members;
    harness h;
    h.init(specs);
    int before = open_fds();
    auto elapsed = h.run(2, 5s);
    CHECK_REASON(h, 2, Reason::probe_connect_refused);
    CHECK(std::string_view(h.result(2).message).find("refused: ") == 0);
    CHECK(elapsed < 1s);
    CHECK(open_fds() == before);
    CHECK(h.r.ops_in_flight() == 0);
}

// ---------------------------------------------------------------- cancel

TEST_CASE("cancel: done runs once, from the loop, with cancelled set") {
    custos_test::http_server silent("", http_mode::never_answer);
    REQUIRE(silent.ok());
    custos_test::tcp_listener l;
    REQUIRE(l.ok());
    // A name server that never answers: the lookup is in flight when
    // cancelled.
    std::uint16_t dns_port = 0;
    int dns_fd = custos_test::detail::bind_loopback(loopback::v4, SOCK_DGRAM, dns_port);
    REQUIRE(dns_fd >= 0);

    temp_dir d;
    std::string pidfile = d.file("sleep.pid");
    std::string script = "echo $$ > " + pidfile + "; exec sleep 30";
    const std::string_view sleep_argv[] = {"/bin/sh", "-c", script};
    std::string silent_u = url_of(silent);
    std::string ok_t = port_target(l.port());
    std::string unknown_t = "slow.test:80";
    const std::string_view members[] = {"silent", "sleeper"};
    ProbeSpec specs[6];
    specs[0] = http_spec("silent", silent_u);
    specs[1] = exec_spec("sleeper", sleep_argv);
    specs[2] = kind_spec("both", ProbeKind::all, "");
    specs[2].members = members;
    specs[3] = tcp_spec("lookup", unknown_t);
    specs[4] = tcp_spec("quick", ok_t);
    specs[5] = file_spec("file", d.path);
    harness h;
    auto* a = reinterpret_cast<sockaddr_in*>(&h.rc->servers[0]);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(dns_port);
    h.rc->server_len[0] = sizeof *a;
    h.rc->server_count = 1;
    h.rc->attempt_timeout = 5000ms;
    h.init(specs);

    auto cancel_after = [&](std::uint32_t i, auto ready) {
        h.states[i] = run_state{};
        mono_time t0 = h.r.now();
        h.start(i, 10s);
        REQUIRE(h.loop_until(ready, 3s, /*external=*/true));
        CHECK(h.states[i].done_count == 0);
        h.cancel(i);
        h.cancel(i); // twice: still one done
        CHECK(h.states[i].done_count == 0);
        REQUIRE(h.loop_until([&] { return h.states[i].done_count > 0; }, 3s));
        h.settle();
        CHECK(h.states[i].done_count == 1);
        CHECK(!h.states[i].done_inside_call);
        CHECK(h.root(i).cancelled);
        CHECK(!h.root(i).running());
        CHECK(h.states[i].finished - t0 < 2s);
        h.cancel(i); // not running: nothing happens
        h.settle();
        CHECK(h.states[i].done_count == 1);
    };

    SUBCASE("http waiting for an answer") {
        std::uint32_t before = silent.requests();
        cancel_after(0, [&] { return silent.requests() > before; });
        CHECK_REASON(h, 0, Reason::probe_timeout);
        CHECK(h.result(0).sys_errno == ECANCELED);
    }
    SUBCASE("exec running") {
        ::unlink(pidfile.c_str());
        cancel_after(1, [&] { return read_pid(pidfile) > 0; });
        CHECK_REASON(h, 1, Reason::probe_timeout);
        CHECK(wait_gone(read_pid(pidfile), 1s));
        CHECK(h.e->stats().children_killed == 0); // cancelled, not timed out
    }
    SUBCASE("a composite") {
        ::unlink(pidfile.c_str());
        std::uint32_t before = silent.requests();
        cancel_after(2, [&] { return silent.requests() > before && read_pid(pidfile) > 0; });
        CHECK_REASON(h, 2, Reason::probe_timeout);
        CHECK(wait_gone(read_pid(pidfile), 1s));
    }
    SUBCASE("a name lookup in flight") {
        cancel_after(3, [&] { return h.res.stats().queries_sent > 0; });
        CHECK_REASON(h, 3, Reason::probe_timeout);
        CHECK(h.result(3).sys_errno == ECANCELED);
    }
    SUBCASE("right after start") {
        // Cancelled before the loop ran once: the socket step is queued.
        for (std::uint32_t i : {0u, 1u, 2u, 3u, 4u, 5u}) {
            h.states[i] = run_state{};
            h.start(i, 10s);
            h.cancel(i);
            CHECK(h.states[i].done_count == 0);
            REQUIRE(h.loop_until([&] { return h.states[i].done_count > 0; }, 3s));
            h.settle();
            CHECK(h.states[i].done_count == 1);
            CHECK(!h.states[i].done_inside_call);
            CHECK(h.root(i).cancelled);
        }
        CHECK(h.r.ops_in_flight() == 0);
    }
    ::close(dns_fd);
}

// ---------------------------------------------------------------- many

TEST_CASE("many: 200 tcp checks started together all pass") {
    constexpr std::uint32_t n = 200;
    custos_test::tcp_listener l;
    REQUIRE(l.ok());
    std::string t = port_target(l.port());
    std::vector<std::string> names(n);
    std::vector<ProbeSpec> specs(n);
    for (std::uint32_t i = 0; i < n; ++i) {
        names[i] = "p" + std::to_string(i);
        specs[i] = tcp_spec("", t);
        specs[i].name = names[i];
    }
    harness h;
    h.init(specs);
    int before = open_fds();
    for (int round = 0; round < 2; ++round) {
        for (std::uint32_t i = 0; i < n; ++i) {
            h.start(i, 10s);
        }
        bool all = h.loop_until(
            [&] {
                for (std::uint32_t i = 0; i < n; ++i) {
                    if (h.states[i].done_count == 0) {
                        return false;
                    }
                }
                return true;
            },
            15s);
        REQUIRE(all);
        h.settle();
        std::uint32_t passed = 0;
        for (std::uint32_t i = 0; i < n; ++i) {
            CHECK(h.states[i].done_count == 1);
            CHECK(!h.states[i].done_inside_call);
            if (h.result(i).passed()) {
                ++passed;
            } else {
                INFO("check ", i, ": ", h.result(i).message);
                CHECK(h.result(i).passed());
            }
        }
        CHECK(passed == n);
        CHECK(h.r.stats().ops_rejected == 0);
    }
    CHECK(l.wait_accepts(2 * n, 5s));
    CHECK(open_fds() == before);
    CHECK(h.e->stats().started == 2 * n);
    CHECK(h.e->stats().failed == 0);
}

int main(int argc, char** argv) {
    // --only=TAG runs the cases tagged [TAG] (and exits 77 when what they
    // need is missing); without it, every untagged case runs.
    std::string_view only;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.substr(0, 7) == "--only=") {
            only = a.substr(7);
        }
    }
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    doctest::Context ctx;
    int skip = 0;
    if (const char* filter = custos_test::loopback_variant(only, &skip); filter != nullptr) {
        if (skip != 0) {
            return skip;
        }
        ctx.addFilter("test-case", filter);
    } else if (only == "root") {
        if (::geteuid() != 0) {
            std::printf("SKIP: the mount cases need root\n");
            return 77;
        }
        // A private mount namespace: the test's mounts vanish with it, and
        // never show on the host. Every reactor (and so every io_uring
        // worker) is created after this, inside it.
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            std::printf("SKIP: no private mount namespace here: %s\n", std::strerror(errno));
            return 77;
        }
        char tmpl[] = "/tmp/custos-checks-mnt-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) {
            return 1;
        }
        bool can = ::mount("tmpfs", tmpl, "tmpfs", 0, "size=4k") == 0;
        int err = errno;
        if (can) {
            ::umount2(tmpl, MNT_DETACH);
        }
        ::rmdir(tmpl);
        if (!can) {
            std::printf("SKIP: cannot mount a tmpfs here: %s\n", std::strerror(err));
            return 77;
        }
        ctx.addFilter("test-case", "*[root]*");
    } else if (only == "nonroot") {
        if (::geteuid() == 0) {
            std::printf("SKIP: root bypasses permission bits (see the [root] cases)\n");
            return 77;
        }
        ctx.addFilter("test-case", "*[nonroot]*");
    } else if (!only.empty()) {
        std::printf("unknown --only=%.*s\n", static_cast<int>(only.size()), only.data());
        return 2;
    } else {
        ctx.addFilter("test-case-exclude", "*[ipv6]*,*[backlog]*,*[root]*,*[nonroot]*");
    }
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
