// No allocation after init in the notify paths upward: with the whole malloc
// family counted (counting_alloc.cpp), the driver is taken through READY=1,
// hundreds of STATUS= changes into a receiver that stops reading (drops and
// retries), the s6 newline, keepalive pings, the health gate, STOPPING=1
// and describe(), and the count must not move.
//
// Not doctest: a test framework allocates as it reports. Exit 0 pass, 1
// fail, 77 skip (the requested backend is unavailable here).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

#include "counting_alloc.hpp"
#include "io/reactor.hpp"
#include "ports/upward.hpp"

using namespace custos;
using namespace custos::ports;
using namespace std::chrono_literals;

namespace {

io::reactor r;
upward_notifier u;

void pump(nanos d) {
    bool done = false;
    io::timer stop([](io::timer& t) { *static_cast<bool*>(t.user) = true; }, &done);
    r.arm_after(stop, d);
    while (!done) {
        r.run_once(true);
    }
}

HealthStatus h;

void set_health(Health kind, bool settled, bool critical_ready, int n) {
    char text[64];
    std::snprintf(text, sizeof text, "degraded: change %d", n);
    h.health = kind;
    h.settled = settled;
    h.critical_ready = critical_ready;
    h.summary = std::string_view(text);
    u.on_health(h);
}

} // namespace

int main() {
    auto res = r.init();
    if (!res) {
        char buf[512];
        res.error().format(buf, sizeof buf);
        const bool unavailable = res.error().reason() == Reason::io_uring_unavailable ||
                                 res.error().reason() == Reason::io_uring_opcode_missing;
        std::printf("%s: %s\n", unavailable ? "SKIP" : "FAIL", buf);
        return unavailable ? 77 : 1;
    }
    std::printf("backend: %s\n", r.backend_reason());
    std::fflush(stdout);

    // The receiver systemd would hold, on an abstract name.
    char name[64];
    std::snprintf(name, sizeof name, "@custos-up-noalloc-%d", static_cast<int>(::getpid()));
    const int srv = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    const std::size_t len = std::strlen(name);
    std::memcpy(a.sun_path + 1, name + 1, len - 1);
    if (srv < 0 || ::bind(srv, reinterpret_cast<sockaddr*>(&a),
                          static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len)) != 0) {
        std::printf("FAIL: bind %s\n", name);
        return 1;
    }
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        return 1;
    }
    upward_env env;
    env.notify_socket = name;
    env.watchdog_usec = "20000"; // a ping every 10 ms
    env.self = ::getpid();
    RuntimeConfig cfg;
    cfg.notify_fd = p[1];
    cfg.keepalive_gate = KeepaliveGate::health;
    if (auto ok = u.init(r, cfg, env); !ok) {
        std::printf("FAIL: init\n");
        return 1;
    }
    r.run_once(false);

    const std::uint64_t before = custos_test::allocation_count();

    set_health(Health::starting, false, false, 0);
    set_health(Health::ok, true, true, 1); // READY=1 to both paths
    // The receiver does not read: its queue fills, the rest are drops, and
    // the latest text is retried.
    for (int i = 2; i < 500; ++i) {
        set_health(Health::degraded, true, true, i);
    }
    pump(150ms);
    char buf[4096];
    while (::recv(srv, buf, sizeof buf, MSG_DONTWAIT) >= 0) {
    }
    pump(300ms); // the retry gets through; pings go on
    set_health(Health::failed, true, true, 600);
    pump(100ms); // withheld
    set_health(Health::ok, true, true, 601);
    pump(100ms);
    u.on_stopping();
    char line[256];
    u.describe(line, sizeof line);
    while (::recv(srv, buf, sizeof buf, MSG_DONTWAIT) >= 0) {
    }

    const std::uint64_t after = custos_test::allocation_count();
    const upward_stats s = u.stats();
    std::printf("%s\nsent %llu, dropped %llu, pings %llu, withheld %llu; allocations %llu\n", line,
                static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.dropped),
                static_cast<unsigned long long>(s.pings),
                static_cast<unsigned long long>(s.withheld),
                static_cast<unsigned long long>(after - before));
    bool ok = after == before;
    // The workload did what it claims, or the count proves nothing.
    ok = ok && u.ready_sent() && s.dropped > 0 && s.pings >= 5 && s.withheld >= 1 &&
         u.s6().counters().sent == 1;
    u.close();
    ::close(srv);
    ::close(p[0]);
    std::printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
