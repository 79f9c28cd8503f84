// The notify paths upward (ports/): systemd's NOTIFY_SOCKET protocol against
// a test datagram server bound to a path and to an abstract name, the
// keepalive WATCHDOG_USEC asks for (and its health gate), and s6's
// notification fd. Run once per backend like test_reactor: meson sets
// CUSTOS_BACKEND=uring and =epoll; a backend the kernel refuses makes the
// run exit 77 (skip). Timing checks count events with generous tolerances.
//
// `--client=s6` runs only the real-supervisor case: this binary, as an s6
// service (`--s6-child N`), signals readiness through the driver on
// notification-fd N, and s6-svwait -U must return. It exits 77 (a skip)
// where s6 is not installed (apt-get install s6) or on cross builds.
#define DOCTEST_CONFIG_IMPLEMENT
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "backend_probe.hpp"
#include "doctest.hpp"
#include "io/reactor.hpp"
#include "ports/s6/notify.hpp"
#include "ports/systemd/notify.hpp"
#include "ports/upward.hpp"

extern char** environ;

using namespace custos;
using namespace custos::ports;
using namespace std::chrono_literals;

namespace {

// A private directory, removed with what is left in it at the end.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/custos-up-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        unlink((path + "/notify").c_str());
        rmdir(path.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

// The receiving end systemd would hold: a datagram socket bound to a path
// or (name starting with '@') to an abstract name.
struct dgram_server {
    int fd = -1;
    std::string name; // as NOTIFY_SOCKET gives it

    explicit dgram_server(std::string where) : name(std::move(where)) {
        fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        REQUIRE(fd >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        socklen_t len;
        if (name[0] == '@') {
            std::memcpy(a.sun_path + 1, name.data() + 1, name.size() - 1);
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
        } else {
            std::memcpy(a.sun_path, name.data(), name.size());
            len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
        }
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), len) == 0);
    }
    ~dgram_server() { ::close(fd); }

    // Every datagram waiting, in order.
    std::vector<std::string> take() {
        std::vector<std::string> out;
        char buf[4096];
        while (true) {
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0) {
                break;
            }
            out.emplace_back(buf, static_cast<std::size_t>(n));
        }
        return out;
    }
};

std::string abstract_name() {
    static int serial = 0;
    return "@custos-test-up-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
}

// Turns the reactor for `d` (its own timers fire meanwhile).
void pump(io::reactor& r, nanos d) {
    bool done = false;
    io::timer stop([](io::timer& t) { *static_cast<bool*>(t.user) = true; }, &done);
    r.arm_after(stop, d);
    while (!done) {
        r.run_once(true);
    }
}

HealthStatus health(Health h, bool settled, bool critical_ready, std::string_view summary) {
    HealthStatus s;
    s.health = h;
    s.settled = settled;
    s.critical_ready = critical_ready;
    s.summary = summary;
    return s;
}

upward_env env_for(const char* socket, const char* usec = nullptr, const char* pid = nullptr) {
    upward_env e;
    e.notify_socket = socket;
    e.watchdog_usec = usec;
    e.watchdog_pid = pid;
    e.self = ::getpid();
    return e;
}

std::size_t count(const std::vector<std::string>& v, std::string_view what) {
    std::size_t n = 0;
    for (const auto& s : v) {
        n += s == what ? 1 : 0;
    }
    return n;
}

std::string describe(const upward_notifier& u) {
    char buf[256];
    u.describe(buf, sizeof buf);
    return buf;
}

struct fixture {
    io::reactor r;
    fixture() { REQUIRE(r.init()); }
};

} // namespace

TEST_CASE("NOTIFY_SOCKET: a path, an abstract name with its exact length; others refused") {
    auto p = parse_notify_socket("/run/systemd/notify");
    REQUIRE(p);
    CHECK_FALSE(p->abstract);
    CHECK(std::string_view(p->addr.sun_path) == "/run/systemd/notify");
    CHECK(p->len == offsetof(sockaddr_un, sun_path) + 20);

    auto a = parse_notify_socket("@sd-notify");
    REQUIRE(a);
    CHECK(a->abstract);
    CHECK(a->addr.sun_path[0] == '\0');
    CHECK(std::string_view(a->addr.sun_path + 1, 9) == "sd-notify");
    // Not sizeof(sockaddr_un): that would name another abstract socket.
    CHECK(a->len == offsetof(sockaddr_un, sun_path) + 1 + 9);
    CHECK(std::string_view(a->text) == "@sd-notify");

    for (const char* bad : {"vsock:2:1234", "vsock-stream:2:1234", "relative/path", "@", "", "x"}) {
        CAPTURE(bad);
        auto r = parse_notify_socket(bad);
        REQUIRE_FALSE(r);
        CHECK(r.error().reason() == Reason::notify_socket_unavailable);
        CHECK(r.error().subject() == bad);
    }
    auto v = parse_notify_socket("vsock:2:1234");
    CHECK(v.error().resolution().find("vsock is not supported") != std::string_view::npos);

    std::string longest = "/" + std::string(106, 'a'); // 107 bytes: fits with its NUL
    CHECK(parse_notify_socket(longest));
    CHECK_FALSE(parse_notify_socket(longest + "a"));
    std::string abs_longest = "@" + std::string(107, 'a');
    CHECK(parse_notify_socket(abs_longest));
    CHECK_FALSE(parse_notify_socket(abs_longest + "a"));
}

TEST_CASE("WATCHDOG_USEC and WATCHDOG_PID as sd_watchdog_enabled reads them") {
    const pid_t self = 4242;
    auto none = parse_watchdog(nullptr, nullptr, self);
    REQUIRE(none);
    CHECK(none->usec == 0);
    auto ok = parse_watchdog("30000000", nullptr, self);
    REQUIRE(ok);
    CHECK(ok->usec == 30000000);
    auto mine = parse_watchdog("400000", "4242", self);
    REQUIRE(mine);
    CHECK(mine->usec == 400000);
    CHECK_FALSE(mine->not_ours);
    auto other = parse_watchdog("400000", "1", self);
    REQUIRE(other);
    CHECK(other->usec == 0);
    CHECK(other->not_ours);
    CHECK(other->pid == 1);
    for (const char* bad : {"0", "-1", "12s", " 5", "99999999999999999999"}) {
        CAPTURE(bad);
        auto r = parse_watchdog(bad, nullptr, self);
        REQUIRE_FALSE(r);
        CHECK(r.error().reason() == Reason::invalid_argument);
        CHECK(r.error().subject() == "WATCHDOG_USEC");
    }
    auto bad_pid = parse_watchdog("400000", "abc", self);
    REQUIRE_FALSE(bad_pid);
    CHECK(bad_pid.error().subject() == "WATCHDOG_PID");
}

TEST_CASE("unset NOTIFY_SOCKET and no notify fd: nothing to do, not an error") {
    fixture f;
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for(nullptr, "400000")));
    CHECK_FALSE(u.active());
    CHECK(u.notices().empty());
    CHECK(u.keepalive_interval() == 0ns);
    CHECK(f.r.timers_pending() == 0);
    CHECK(describe(u) == "none");
    u.on_health(health(Health::ok, true, true, "1/1 ready"));
    u.on_stopping();
    CHECK(u.stats().sent == 0);
    CHECK(u.stats().dropped == 0);

    upward_notifier empty;
    REQUIRE(empty.init(f.r, cfg, env_for("")));
    CHECK_FALSE(empty.active());
}

TEST_CASE("an unsupported NOTIFY_SOCKET is refused with a clear error and ignored") {
    fixture f;
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for("vsock:2:1234", "400000")));
    CHECK_FALSE(u.active());
    REQUIRE(u.notices().size() == 1);
    CHECK(u.notices()[0].reason() == Reason::notify_socket_unavailable);
    CHECK(u.notices()[0].subject() == "vsock:2:1234");
    CHECK(u.keepalive_interval() == 0ns);

    temp_dir d;
    dgram_server srv(d.file("notify"));
    upward_notifier w;
    REQUIRE(w.init(f.r, cfg, env_for(srv.name.c_str(), "soon")));
    CHECK(w.active());
    REQUIRE(w.notices().size() == 1);
    CHECK(w.notices()[0].subject() == "WATCHDOG_USEC");
    CHECK(w.keepalive_interval() == 0ns);
}

namespace {

void ready_once_after_settled(const std::string& where) {
    fixture f;
    temp_dir d;
    dgram_server srv(where.empty() ? d.file("notify") : where);
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str())));
    REQUIRE(u.active());
    CHECK(srv.take().empty());

    u.on_health(health(Health::starting, false, false, "starting: 0/2 ready"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=starting: 0/2 ready"});
    // Settled, but a critical service is not ready: no READY=1 yet.
    u.on_health(health(Health::degraded, true, false, "degraded: db failed (ExecFailed)"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=degraded: db failed (ExecFailed)"});
    // Critical ones ready but the start has not settled: not yet either.
    u.on_health(health(Health::starting, false, true, "starting: 1/2 ready"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=starting: 1/2 ready"});
    CHECK_FALSE(u.ready_sent());

    u.on_health(health(Health::ok, true, true, "2/2 ready"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=2/2 ready", "READY=1"});
    CHECK(u.ready_sent());
    // Never again, whatever health does next.
    u.on_health(health(Health::degraded, true, false, "degraded: web failed"));
    u.on_health(health(Health::ok, true, true, "2/2 ready"));
    auto later = srv.take();
    CHECK(count(later, "READY=1") == 0);
    CHECK(later == std::vector<std::string>{"STATUS=degraded: web failed", "STATUS=2/2 ready"});

    u.on_stopping();
    u.on_stopping();
    CHECK(srv.take() == std::vector<std::string>{"STOPPING=1"});
    CHECK(u.stats().sent == 8);
    CHECK(u.stats().dropped == 0);
}

} // namespace

TEST_CASE("READY=1 exactly once, after settled && critical_ready (path socket)") {
    ready_once_after_settled("");
}

TEST_CASE("READY=1 exactly once, after settled && critical_ready (abstract socket)") {
    ready_once_after_settled(abstract_name());
}

TEST_CASE("STATUS= on every change of the summary, never on a repeat; one line only") {
    fixture f;
    dgram_server srv(abstract_name());
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str())));
    // No summary yet: nothing to say.
    u.on_health(health(Health::starting, false, false, ""));
    CHECK(srv.take().empty());
    u.on_health(health(Health::starting, false, false, "starting"));
    u.on_health(health(Health::starting, false, false, "starting"));
    // Health changes, the text does not: no new STATUS=.
    u.on_health(health(Health::degraded, false, false, "starting"));
    u.on_health(health(Health::degraded, false, false, "degraded: a"));
    u.on_health(health(Health::degraded, false, false, "degraded: b"));
    u.on_health(health(Health::degraded, false, false, "degraded: b"));
    CHECK(srv.take() ==
          std::vector<std::string>{"STATUS=starting", "STATUS=degraded: a", "STATUS=degraded: b"});
    // A newline would smuggle in another assignment.
    u.on_health(health(Health::degraded, false, false, "x\nREADY=1\r\tWATCHDOG=1"));
    auto got = srv.take();
    REQUIRE(got.size() == 1);
    CHECK(got[0] == "STATUS=x READY=1  WATCHDOG=1");
    CHECK_FALSE(u.ready_sent());
}

TEST_CASE("WATCHDOG=1 at half of WATCHDOG_USEC from init on") {
    fixture f;
    dgram_server srv(abstract_name());
    upward_notifier u;
    RuntimeConfig cfg;
    const std::string self = std::to_string(::getpid());
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str(), "400000", self.c_str())));
    CHECK(u.keepalive_interval() == 200ms);
    CHECK(describe(u) == "systemd: " + srv.name + ", watchdog 400 ms every 200 ms, gate none");
    // 2 s at 200 ms: 10 pings at most (never early); a loaded machine (TSan,
    // qemu) may wake late, so as few as 4 pass.
    pump(f.r, 2s);
    auto got = srv.take();
    const std::size_t pings = count(got, "WATCHDOG=1");
    CHECK(pings == got.size());
    CHECK(pings >= 4);
    CHECK(pings <= 10);
    CHECK(u.stats().pings == pings);
    CHECK(u.stats().withheld == 0);
}

TEST_CASE("no WATCHDOG=1 when WATCHDOG_PID names another process") {
    fixture f;
    dgram_server srv(abstract_name());
    upward_notifier u;
    RuntimeConfig cfg;
    const std::string other = std::to_string(::getppid());
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str(), "100000", other.c_str())));
    CHECK(u.keepalive_interval() == 0ns);
    CHECK(u.notices().empty());
    CHECK(describe(u) ==
          "systemd: " + srv.name + ", watchdog not ours (WATCHDOG_PID=" + other + ")");
    pump(f.r, 500ms);
    CHECK(srv.take().empty());
    CHECK(u.stats().pings == 0);
}

TEST_CASE("gate = health: WATCHDOG=1 withheld while failed, resumed at once after") {
    fixture f;
    dgram_server srv(abstract_name());
    upward_notifier u;
    RuntimeConfig cfg;
    cfg.keepalive_gate = KeepaliveGate::health;
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str(), "200000")));
    CHECK(u.keepalive_interval() == 100ms);
    CHECK(describe(u) == "systemd: " + srv.name + ", watchdog 200 ms every 100 ms, gate health");
    pump(f.r, 600ms);
    CHECK(count(srv.take(), "WATCHDOG=1") >= 2);

    u.on_health(health(Health::failed, true, true, "failed: db failed"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=failed: db failed", "READY=1"});
    pump(f.r, 800ms);
    CHECK(count(srv.take(), "WATCHDOG=1") == 0);
    const auto withheld = u.stats().withheld;
    CHECK(withheld >= 2); // 8 on time; fewer when the machine wakes us late
    CHECK(withheld <= 8);

    // Leaving `failed` pings at once, then on schedule again.
    u.on_health(health(Health::degraded, true, true, "degraded: db restarting"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=degraded: db restarting", "WATCHDOG=1"});
    pump(f.r, 600ms);
    CHECK(count(srv.take(), "WATCHDOG=1") >= 2);
    CHECK(u.stats().withheld == withheld);
}

TEST_CASE("gate = none: the keepalive goes on while health is failed") {
    fixture f;
    dgram_server srv(abstract_name());
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str(), "200000")));
    u.on_health(health(Health::failed, true, false, "failed: db failed"));
    srv.take();
    pump(f.r, 600ms);
    CHECK(count(srv.take(), "WATCHDOG=1") >= 2);
    CHECK(u.stats().withheld == 0);
}

TEST_CASE("s6: the notification fd gets exactly one newline, then is closed") {
    fixture f;
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    REQUIRE(::fcntl(p[1], F_SETFD, 0) == 0); // as s6-supervise hands it over: inheritable
    upward_notifier u;
    RuntimeConfig cfg;
    cfg.notify_fd = p[1];
    REQUIRE(u.init(f.r, cfg, env_for(nullptr)));
    CHECK(u.active());
    // No service may inherit it, and it never blocks.
    CHECK((::fcntl(p[1], F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(p[1], F_GETFL) & O_NONBLOCK) != 0);
    CHECK(describe(u) == "s6: fd " + std::to_string(p[1]));

    u.on_health(health(Health::starting, false, false, "starting"));
    u.on_health(health(Health::ok, true, false, "1/2 ready"));
    pollfd pf{p[0], POLLIN, 0};
    CHECK(::poll(&pf, 1, 0) == 0); // nothing yet

    u.on_health(health(Health::ok, true, true, "2/2 ready"));
    CHECK(u.ready_sent());
    char buf[8];
    CHECK(::read(p[0], buf, sizeof buf) == 1);
    CHECK(buf[0] == '\n');
    // Its only write end is closed: end of file.
    CHECK(::read(p[0], buf, sizeof buf) == 0);
    CHECK(::fcntl(p[1], F_GETFD) < 0);
    CHECK(describe(u) == "s6: fd " + std::to_string(p[1]) + " (ready sent)");

    u.on_health(health(Health::degraded, true, false, "1/2 ready"));
    u.on_health(health(Health::ok, true, true, "2/2 ready"));
    u.on_stopping();
    CHECK(u.s6().counters().sent == 1);
    CHECK(u.stats().dropped == 0);
    ::close(p[0]);
}

TEST_CASE("s6: a notify fd that is not open, read-only or a standard stream is refused") {
    fixture f;
    RuntimeConfig cfg;
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    ::close(p[1]);
    for (int bad : {p[1], p[0], 1}) {
        CAPTURE(bad);
        upward_notifier u;
        cfg.notify_fd = bad;
        auto r = u.init(f.r, cfg, env_for(nullptr));
        REQUIRE_FALSE(r);
        CHECK(r.error().reason() == Reason::invalid_argument);
        CHECK(r.error().subject() == "notify_fd " + std::to_string(bad));
        CHECK_FALSE(u.active());
    }
    // Refusing it did not close it: it was never taken over.
    CHECK(::fcntl(p[0], F_GETFD) >= 0);
    ::close(p[0]);
}

TEST_CASE("s6: a reader that has gone costs a counted drop, not SIGPIPE") {
    fixture f;
    // The default action, as in an embedding daemon that did not ignore it.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    struct sigaction old {};
    ::sigaction(SIGPIPE, &dfl, &old);
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    ::close(p[0]);
    upward_notifier u;
    RuntimeConfig cfg;
    cfg.notify_fd = p[1];
    REQUIRE(u.init(f.r, cfg, env_for(nullptr)));
    u.on_health(health(Health::ok, true, true, "1/1 ready"));
    CHECK(u.stats().dropped == 1);
    CHECK(u.stats().last_errno == EPIPE);
    CHECK(u.stats().sent == 0);
    CHECK_FALSE(u.active()); // closed for good: nothing to send again
    CHECK(describe(u) == "s6: fd " + std::to_string(p[1]) + " (reader gone)");
    sigset_t pending;
    ::sigpending(&pending);
    CHECK(::sigismember(&pending, SIGPIPE) == 0);
    pump(f.r, 300ms);
    CHECK(u.stats().dropped == 1);
    ::sigaction(SIGPIPE, &old, nullptr);
}

TEST_CASE("systemd and s6 together: one READY=1 each") {
    fixture f;
    dgram_server srv(abstract_name());
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    upward_notifier u;
    RuntimeConfig cfg;
    cfg.notify_fd = p[1];
    cfg.keepalive_gate = KeepaliveGate::health;
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str(), "30000000")));
    CHECK(describe(u) == "systemd: " + srv.name +
                             ", watchdog 30 s every 15 s, gate health; s6: fd " +
                             std::to_string(p[1]));
    u.on_health(health(Health::ok, true, true, "3/3 ready"));
    CHECK(srv.take() == std::vector<std::string>{"STATUS=3/3 ready", "READY=1"});
    char buf[4];
    CHECK(::read(p[0], buf, sizeof buf) == 1);
    CHECK(::read(p[0], buf, sizeof buf) == 0);
    u.on_stopping();
    CHECK(srv.take() == std::vector<std::string>{"STOPPING=1"});
    ::close(p[0]);
}

TEST_CASE("a full receiver never blocks: drops are counted, the latest STATUS= follows") {
    fixture f;
    dgram_server srv(abstract_name());
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for(srv.name.c_str())));
    // The receiver never reads: its queue (net.unix.max_dgram_qlen, or its
    // buffer) fills, and each further message is a drop.
    const auto t0 = std::chrono::steady_clock::now();
    std::string last;
    for (int i = 0; i < 2000; ++i) {
        last = "degraded: change " + std::to_string(i);
        u.on_health(health(Health::degraded, false, false, last));
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < 10s); // a stall would be a hang, not a slow second
    const auto s = u.stats();
    CHECK(s.dropped > 0);
    CHECK(s.sent + s.dropped == 2000);
    CHECK(s.last_errno == EAGAIN);

    // Once the receiver reads again, the retry sends the latest text.
    const auto first = srv.take();
    CHECK(first.size() == s.sent);
    pump(f.r, 400ms);
    auto again = srv.take();
    REQUIRE(again.size() == 1);
    CHECK(again[0] == "STATUS=" + last);
    CHECK(u.stats().abandoned == 0);
}

TEST_CASE("an absent receiver: READY=1 is dropped, counted, and sent when it appears") {
    fixture f;
    temp_dir d;
    const std::string path = d.file("notify");
    upward_notifier u;
    RuntimeConfig cfg;
    REQUIRE(u.init(f.r, cfg, env_for(path.c_str())));
    u.on_health(health(Health::ok, true, true, "1/1 ready"));
    CHECK(u.ready_sent());
    CHECK(u.stats().dropped == 2); // STATUS= and READY=1
    CHECK(u.stats().last_errno == ENOENT);
    pump(f.r, 150ms); // the first retry finds nobody either
    CHECK(u.stats().dropped == 4);

    dgram_server srv(path);
    pump(f.r, 1500ms); // the second retry is due 300 ms after the drop
    CHECK(srv.take() == std::vector<std::string>{"STATUS=1/1 ready", "READY=1"});
    CHECK(u.stats().sent == 2);
    pump(f.r, 500ms);
    CHECK(srv.take().empty());
}

TEST_CASE("the systemd socket is close-on-exec and non-blocking") {
    fixture f;
    dgram_server srv(abstract_name());
    systemd_notify n;
    auto to = parse_notify_socket(srv.name);
    REQUIRE(to);
    REQUIRE(n.open(*to));
    // Find it: the newest descriptor of ours that is a datagram socket.
    int found = -1;
    for (int fd = 3; fd < 1024; ++fd) {
        int type = 0;
        socklen_t len = sizeof type;
        if (fd != srv.fd && ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
            type == SOCK_DGRAM) {
            found = fd;
        }
    }
    REQUIRE(found >= 0);
    CHECK((::fcntl(found, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(found, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(n.ready() == notify_outcome::sent);
    CHECK(n.status("x") == notify_outcome::sent);
    CHECK(srv.take() == std::vector<std::string>{"READY=1", "STATUS=x"});
    n.close();
    CHECK_FALSE(n.active());
    CHECK(n.ready() == notify_outcome::unsupported);
}

namespace {

// Runs `argv` and waits for it (at most `limit`); its exit status, or -1.
int run_and_wait(std::vector<const char*> argv, std::chrono::seconds limit) {
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char**>(argv.data()), environ) !=
        0) {
        return -1;
    }
    const auto until = std::chrono::steady_clock::now() + limit;
    int st = 0;
    while (::waitpid(pid, &st, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &st, 0);
            return -1;
        }
        ::usleep(20'000);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void write_text(const std::string& path, const std::string& text, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    ::close(fd);
}

// The s6 service: the driver on notification-fd `fd`; ready after a
// settled health, then it idles until s6 stops it.
int s6_child(int fd) {
    io::reactor r;
    if (!r.init()) {
        return 1;
    }
    upward_notifier u;
    RuntimeConfig cfg;
    cfg.notify_fd = fd;
    if (auto ok = u.init(r, cfg, env_for(nullptr)); !ok) {
        char buf[512];
        ok.error().format(buf, sizeof buf);
        std::fprintf(stderr, "s6 child: %s\n", buf);
        return 1;
    }
    u.on_health(health(Health::starting, false, false, "starting"));
    pump(r, 200ms);
    u.on_health(health(Health::ok, true, true, "1/1 ready"));
    while (true) {
        pump(r, 1s);
    }
}

} // namespace

TEST_CASE("real client: s6-supervise sees the driver's readiness (s6-svwait -U returns)") {
    temp_dir d;
    const std::string svc = d.path + "/svc";
    REQUIRE(::mkdir(svc.c_str(), 0755) == 0);
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    REQUIRE(n > 0);
    self[n] = '\0';
    write_text(svc + "/run", std::string("#!/bin/sh\nexec ") + self + " --s6-child 3\n", 0755);
    write_text(svc + "/notification-fd", "3\n", 0644);

    pid_t sup = 0;
    const char* sup_argv[] = {"/usr/bin/s6-supervise", svc.c_str(), nullptr};
    REQUIRE(::posix_spawn(&sup, sup_argv[0], nullptr, nullptr, const_cast<char**>(sup_argv),
                          environ) == 0);
    const int rc = run_and_wait({"/usr/bin/s6-svwait", "-U", "-t", "20000", svc.c_str()}, 30s);
    CHECK(rc == 0);
    // Down and exit: s6-supervise stops the service and itself.
    run_and_wait({"/usr/bin/s6-svc", "-dx", svc.c_str()}, 10s);
    int st = 0;
    for (int i = 0; i < 500 && ::waitpid(sup, &st, WNOHANG) == 0; ++i) {
        ::usleep(20'000);
    }
    if (::waitpid(sup, &st, WNOHANG) == 0) {
        ::kill(sup, SIGKILL);
        ::waitpid(sup, &st, 0);
    }
    // What s6-supervise leaves in the service directory.
    run_and_wait({"/bin/rm", "-rf", svc.c_str()}, 10s);
}

int main(int argc, char** argv) {
    std::string_view client;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a == "--s6-child" && i + 1 < argc) {
            return s6_child(std::atoi(argv[i + 1]));
        }
        if (a.substr(0, 9) == "--client=") {
            client = a.substr(9);
            continue;
        }
        args.push_back(argv[i]);
    }
    if (client == "s6") {
        for (const char* tool :
             {"/usr/bin/s6-supervise", "/usr/bin/s6-svwait", "/usr/bin/s6-svc"}) {
            if (::access(tool, X_OK) != 0) {
                std::printf("SKIP: real client s6: %s missing (apt-get install s6)\n", tool);
                return 77;
            }
        }
    } else if (!client.empty()) {
        std::printf("unknown client '%.*s'\n", static_cast<int>(client.size()), client.data());
        return 2;
    }
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    doctest::Context ctx;
    if (client.empty()) {
        ctx.addFilter("test-case-exclude", "real client:*");
    } else {
        ctx.addFilter("test-case", "real client: s6*");
    }
    ctx.applyCommandLine(static_cast<int>(args.size()), args.data());
    return ctx.run();
}
