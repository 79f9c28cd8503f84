// No allocation after Runtime::start(): the whole malloc family is replaced
// by a counting allocator (counting_alloc.cpp), then a real Runtime runs a
// crash-looping service through dozens of spawns, exits and backoffs, an
// s6-readiness service, a service that orphans grandchildren (reaped by the
// subreaper drain), notify datagrams (attributed and not), an operator
// restart and a full stop, and the count must not move. With CLONE_VM the
// child shares custos's memory until exec, so an allocation in the child
// before exec would be counted too. Then a second Runtime with monitors (one
// beating with heartbeats and wedge checks, one crashing with a 10 ms
// backoff), a probe and the health model runs until dozens of crashes, and
// again nothing may be allocated from start() until run() returns. Then a
// third Runtime with a control socket, while a client thread (raw syscalls,
// stack buffers: it allocates nothing itself) hammers every route: reads,
// chunked documents, HEAD, 404, 405, 400, 505, 408, 503 beyond the slots,
// a client that never reads, pipelined keep-alive, and the actions with
// ?wait (200 and 504); the count must not move either. Then a fourth
// Runtime, driven by POST /reload from a client thread, reloads tables built
// before start() in turn (each reload changes a service, adds one and
// removes one; after each, an invalid table, its problem reported; the
// busy ones are retried): nothing may be allocated either.
//
// Not doctest (it allocates as it reports). Exit 0 pass, 1 fail, 77 skip
// (the requested backend is unavailable here).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include <custos/runtime.hpp>

#include "counting_alloc.hpp"
#include "process/cgroup.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t crash_spawns_wanted = 40;

struct run_state {
    Runtime* rt = nullptr;
    std::uint32_t crash_exits = 0;
    std::uint32_t ready_fd = 0;
    std::uint32_t orphan_exits = 0;
    std::uint32_t transitions = 0;
    bool restarted = false;
    bool stop_sent = false;
    int notify_fd = -1;
    sockaddr_un notify_addr{};
};

void send_notify(run_state& s, const char* text) {
    // To crash's own socket, from custos's own user: accepted (STATUS=);
    // then one with an embedded NUL, dropped and counted.
    ::sendto(s.notify_fd, text, std::strlen(text), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&s.notify_addr), sizeof s.notify_addr);
    static const char bad[] = {'X', '=', '1', '\0', 'Y'};
    ::sendto(s.notify_fd, bad, sizeof bad, MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&s.notify_addr), sizeof s.notify_addr);
}

void hook(const Transition& t, void* ctx) noexcept {
    auto& s = *static_cast<run_state*>(ctx);
    ++s.transitions;
    if (t.name == "crash" && t.to == ServiceState::backoff) {
        ++s.crash_exits;
        send_notify(s, "STATUS=from custos");
    }
    if (t.name == "s6" && t.reason == Reason::ready_fd) {
        ++s.ready_fd;
        if (!s.restarted) {
            s.restarted = true;
            (void)s.rt->restart_service("s6");
        }
    }
    if (t.name == "orphaner" && t.to == ServiceState::backoff) {
        ++s.orphan_exits;
    }
    if (!s.stop_sent && s.crash_exits >= crash_spawns_wanted && s.ready_fd >= 2 &&
        s.orphan_exits >= 3 && s.rt->stats().probe_checks >= 60) {
        s.stop_sent = true;
        s.rt->stop();
    }
}

// --- monitors ---

// Beats every 2 ms, ticks; returns when asked to stop.
Result<void> beating(MonitorContext& ctx, void*) {
    std::uint64_t n = 0;
    while (ctx.wait_for(2ms)) {
        ctx.beat(++n);
        ctx.tick();
    }
    return {};
}

// Fails at once: restarted after its backoff, degraded reports.
Result<void> crashing(MonitorContext&, void*) {
    return fail(Reason::probe_connect_refused, ECONNREFUSED, "device 10.0.0.9:502");
}

constexpr std::uint32_t monitor_crashes_wanted = 40;

struct monitor_run {
    Runtime* rt = nullptr;
    std::uint32_t crashes = 0;
    std::uint32_t degraded = 0;
    std::uint32_t heartbeats = 0;
    std::uint32_t health_changes = 0;
    std::uint32_t watchdog_events = 0;
    bool held = false;
    bool released = false;
    bool stop_sent = false;
};

void monitor_hook(const MonitorTransition& t, void* ctx) noexcept {
    auto& s = *static_cast<monitor_run*>(ctx);
    if (t.to == MonitorState::backoff && t.from != t.to) {
        ++s.crashes;
    }
    s.degraded += t.reason == Reason::monitor_crash_loop ? 1 : 0;
    s.heartbeats += t.reason == Reason::monitor_heartbeat ? 1 : 0;
    // The watchdog's hold and release, from the reactor thread.
    if (!s.held && s.crashes >= 10) {
        s.held = s.rt->hold_watchdog(10s, "no-alloc").has_value();
    }
    if (s.held && !s.released && s.crashes >= 20) {
        s.released = s.rt->release_watchdog("no-alloc").has_value();
    }
    if (!s.stop_sent && s.crashes >= monitor_crashes_wanted && s.heartbeats >= 5 &&
        s.rt->stats().probe_checks >= 20 && s.released && s.rt->watchdog().feeds >= 3) {
        s.stop_sent = true;
        s.rt->stop();
    }
}

void health_hook(const HealthStatus&, void* ctx) noexcept {
    ++static_cast<monitor_run*>(ctx)->health_changes;
}

void watchdog_hook(const WatchdogTransition&, void* ctx) noexcept {
    ++static_cast<monitor_run*>(ctx)->watchdog_events;
}

// The second workload: 0 pass, 1 fail.
int run_monitors(const char* dir) {
    static const std::string_view monitor_deps[] = {"dir"};
    MonitorSpec monitors[2];
    monitors[0].name = "beating";
    monitors[0].run = beating;
    monitors[0].heartbeat_interval = 20ms;
    monitors[0].deadline = 500ms;
    monitors[0].depends_on = monitor_deps;
    monitors[0].stack_size = 64 * 1024;
    monitors[1].name = "crashing";
    monitors[1].run = crashing;
    monitors[1].backoff_initial = 10ms;
    monitors[1].backoff_max = 10ms;
    monitors[1].backoff_multiplier_x100 = 100;
    monitors[1].backoff_jitter_percent = 0;
    monitors[1].degraded_every = 5;
    monitors[1].stack_size = 64 * 1024;
    ProbeSpec probes[1];
    probes[0].name = "dir";
    probes[0].kind = ProbeKind::file;
    probes[0].target = dir;
    probes[0].writable = true;
    probes[0].startup_initial = 5ms;
    probes[0].startup_max = 10ms;
    probes[0].interval = 10ms;

    Table t;
    t.runtime.handle_signals = false;
    t.runtime.cgroup = "off";
    t.runtime.boot_grace = 1s;
    t.runtime.monitor_stop_timeout = 5s;
    t.runtime.stop_timeout = 5s;
    t.probes = probes;
    t.monitors = monitors;
    // A watchdog (the null port) fed every 100 ms, with its state file:
    // feeds, record writes, a hold and its release, the close.
    char state_file[128];
    std::snprintf(state_file, sizeof state_file, "%s/wd.state", dir);
    t.watchdog.device = WatchdogDevice::null;
    t.watchdog.board = "generic";
    t.watchdog.interval = 100ms;
    t.watchdog.state_file = state_file;

    Runtime rt;
    monitor_run s;
    s.rt = &rt;
    if (auto r = rt.init(t); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "monitors: init: %s\n", text);
        return 1;
    }
    rt.set_monitor_hook(&monitor_hook, &s);
    rt.set_health_hook(&health_hook, &s);
    rt.set_watchdog_hook(&watchdog_hook, &s);
    if (!rt.start()) {
        std::fprintf(stderr, "monitors: start failed\n");
        return 1;
    }
    std::uint64_t before = custos_test::allocation_count();
    rt.run();
    std::uint64_t after = custos_test::allocation_count();

    const MonitorStatus beat = rt.monitor_status(0);
    std::printf("monitors: %u crashes, %u degraded reports, %u heartbeats, %u health changes, "
                "%llu beats, %llu probe checks\n",
                s.crashes, s.degraded, s.heartbeats, s.health_changes,
                static_cast<unsigned long long>(beat.beats),
                static_cast<unsigned long long>(rt.stats().probe_checks));
    const WatchdogStatus wd = rt.watchdog();
    std::printf("monitors: watchdog: %llu feeds, %u events, %u record writes\n",
                static_cast<unsigned long long>(wd.feeds), s.watchdog_events, wd.record_writes);
    ::unlink(state_file);
    std::printf("monitors: allocations after start: %llu\n",
                static_cast<unsigned long long>(after - before));
    bool ok = true;
    if (!s.stop_sent || s.degraded == 0 || s.health_changes < 2 || beat.beats == 0 ||
        wd.feeds < 3 || s.watchdog_events < 4 || wd.record_writes < 2) {
        std::fprintf(stderr, "FAIL: the monitor workload did not exercise every path\n");
        ok = false;
    }
    if (after != before) {
        std::fprintf(stderr, "FAIL: %llu allocations after Runtime::start() with monitors\n",
                     static_cast<unsigned long long>(after - before));
        ok = false;
    }
    return ok ? 0 : 1;
}

// --- the control plane ---

struct control_run {
    Runtime* rt = nullptr;
    char sock[128] = {};
    std::atomic<bool> go{false};
    std::atomic<bool> done{false};
    bool stop_sent = false;
    // What the client saw (its thread only, read after join()).
    std::uint32_t requests = 0;
    std::uint32_t rounds = 0;
    std::uint32_t mismatches = 0;
    std::uint32_t chunked = 0; // responses framed chunked
    std::uint32_t by_status[600] = {};
    char first_mismatch[160] = {};
};

std::int64_t mono_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

int ctl_dial(const char* path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    timeval tv{};
    tv.tv_sec = 10;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path, std::strlen(path) + 1);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// The status of the first response on fd, reading everything to EOF (the
// requests ask for a close); -1 when none came.
int ctl_read_all(int fd, std::uint32_t& chunked) {
    char buf[16384];
    char first[16] = {};
    std::size_t have = 0;
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (have == 0 &&
            std::string_view(buf, static_cast<std::size_t>(n))
                    .find("Transfer-Encoding: chunked\r\n") != std::string_view::npos) {
            ++chunked;
        }
        for (ssize_t i = 0; i < n && have < 12; ++i) {
            first[have++] = buf[i];
        }
    }
    if (have < 12 || std::memcmp(first, "HTTP/1.1 ", 9) != 0) {
        return -1;
    }
    return (first[9] - '0') * 100 + (first[10] - '0') * 10 + (first[11] - '0');
}

void ctl_note(control_run& s, const char* req, int want, int got) {
    ++s.requests;
    if (got >= 0 && got < 600) {
        ++s.by_status[got];
    }
    // want 0: /health, 200 or 503 by the health of the moment.
    if (got != want && !(want == 0 && (got == 200 || got == 503))) {
        if (s.mismatches++ == 0) {
            const std::size_t n = std::min(std::strlen(req), sizeof s.first_mismatch - 1);
            std::memcpy(s.first_mismatch, req, n);
            for (std::size_t i = 0; i < n; ++i) {
                if (s.first_mismatch[i] == '\r' || s.first_mismatch[i] == '\n') {
                    s.first_mismatch[i] = ' ';
                }
            }
        }
        std::fprintf(stderr, "control: wanted %d, got %d\n", want, got);
    }
}

// One request on a fresh connection; its status is checked against `want`.
void ctl_ask(control_run& s, const char* req, int want) {
    int fd = ctl_dial(s.sock);
    int got = -1;
    if (fd >= 0) {
        // Read whatever the send did: a client refused for want of a slot
        // finds its 503 waiting, even when the server closed before the
        // request was sent (EPIPE).
        (void)::send(fd, req, std::strlen(req), MSG_NOSIGNAL);
        got = ctl_read_all(fd, s.chunked);
        ::close(fd);
    }
    ctl_note(s, req, want, got);
}

struct ctl_case {
    const char* req;
    int want;
};

// Every route, each with Connection: close.
const ctl_case ctl_cases[] = {
    {"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
    {"GET /health?json HTTP/1.1\r\nConnection: close\r\n\r\n", 0},
    {"GET /status HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /status?format=tsv HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /watchdog HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /services/steady HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /services/steady?format=text HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /services/flap HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /probes/dir HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"HEAD /status HTTP/1.1\r\nConnection: close\r\n\r\n", 200},
    {"GET /probes/nope HTTP/1.1\r\nConnection: close\r\n\r\n", 404},
    {"GET /services/nope HTTP/1.1\r\nConnection: close\r\n\r\n", 404},
    {"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", 404},
    {"POST /status HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405},
    {"PUT /status HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405},
    {"GET / HTTP/2.0\r\n\r\n", 505},
    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 400},
    {"GET /a\x01 HTTP/1.1\r\n\r\n", 400},
    {"POST /services/nope/stop HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 404},
    {"POST /services/steady/stop?wait=xyz HTTP/1.1\r\nContent-Length: 0\r\nConnection: "
     "close\r\n\r\n",
     400},
    {"POST /watchdog/hold?for=1m HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 503},
    {"POST /probes/dir/check?wait=2s HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     200},
    {"POST /services/flap/start?wait=50ms HTTP/1.1\r\nContent-Length: 0\r\nConnection: "
     "close\r\n\r\n",
     504},
    {"POST /services/steady/stop?wait=5s HTTP/1.1\r\nContent-Length: 0\r\nConnection: "
     "close\r\n\r\n",
     200},
    {"POST /services/steady/start?wait=5s HTTP/1.1\r\nContent-Length: 0\r\nConnection: "
     "close\r\n\r\n",
     200},
    {"POST /services/steady/restart HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
     200},
    // Pipelined on one keep-alive connection, the last one closing.
    {"GET /health HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\nHEAD /health HTTP/1.1\r\n\r\n"
     "GET /status HTTP/1.1\r\nConnection: close\r\n\r\n",
     0},
};

// Every slot held by a keep-alive client that had its answer: the next one
// is 503.
void ctl_busy(control_run& s) {
    static const char hold[] = "GET /health HTTP/1.1\r\n\r\n";
    int holders[4];
    // Every holder must have been served (200/503 of /health), not refused:
    // a slot of the round before may still be closing on the server's side
    // (it sees the close a moment after the client), and then a holder is
    // the one refused and the knock below would find a free slot. Try again
    // until the four hold all the slots.
    for (int attempt = 0; attempt < 40; ++attempt) {
        bool all_held = true;
        for (int& fd : holders) {
            fd = ctl_dial(s.sock);
            char buf[4096];
            ssize_t n = -1;
            if (fd >= 0 && ::send(fd, hold, sizeof hold - 1, MSG_NOSIGNAL) > 0) {
                n = ::recv(fd, buf, sizeof buf, 0); // the small answer, whole or not
            }
            // A refusal says Connection: close; a served /health keeps it.
            all_held = all_held && n > 0 &&
                       std::string_view(buf, static_cast<std::size_t>(n)).find("keep-alive") !=
                           std::string_view::npos;
        }
        if (all_held) {
            break;
        }
        for (int fd : holders) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
        ::usleep(50 * 1000);
    }
    ctl_ask(s, "GET /status HTTP/1.1\r\nConnection: close\r\n\r\n", 503);
    for (int fd : holders) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
    // The server sees the closes a moment later.
    ::usleep(50 * 1000);
}

// Half a head: 408 after head_timeout.
void ctl_slowloris(control_run& s) {
    ctl_ask(s, "GET /hea", 408);
}

// Pipelines /metrics without reading until the server gives up on it
// (send_timeout), then closes.
void ctl_never_reads(control_run& s) {
    int fd = ctl_dial(s.sock);
    if (fd < 0) {
        ctl_note(s, "never-reader", 0, -1);
        return;
    }
    static const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
    for (int i = 0; i < 5000; ++i) {
        if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL | MSG_DONTWAIT) !=
            static_cast<ssize_t>(sizeof req - 1)) {
            break;
        }
    }
    bool hup = false;
    const std::int64_t t0 = mono_ms();
    while (!hup && mono_ms() - t0 < 10000) {
        pollfd p{fd, 0, 0};
        hup = ::poll(&p, 1, 50) > 0 && (p.revents & POLLHUP) != 0;
    }
    ::close(fd);
    ctl_note(s, "never-reader", 1, hup ? 1 : 0);
}

void ctl_client(control_run* sp) {
    control_run& s = *sp;
    while (!s.go.load(std::memory_order_acquire)) {
        ::usleep(1000);
    }
    const std::int64_t t0 = mono_ms();
    while (s.rounds < 3 || mono_ms() - t0 < 1500) {
        for (const ctl_case& c : ctl_cases) {
            ctl_ask(s, c.req, c.want);
        }
        ctl_busy(s);
        if (s.rounds == 0) {
            ctl_slowloris(s);
            ctl_never_reads(s);
        }
        ++s.rounds;
    }
    // The reactor stops the runtime at flap's next transition.
    s.done.store(true, std::memory_order_release);
}

void control_hook(const Transition&, void* ctx) noexcept {
    auto& s = *static_cast<control_run*>(ctx);
    if (!s.stop_sent && s.done.load(std::memory_order_acquire)) {
        s.stop_sent = true;
        s.rt->stop();
    }
}

// The third workload: 0 pass, 1 fail.
int run_control(const char* dir) {
    static const std::string_view sleep_argv[] = {"/bin/sleep", "1000"};
    static const std::string_view flap_argv[] = {"/bin/sh", "-c", "exit 1"};
    // Enough services that /status and /metrics are chunked (over 16 KiB).
    constexpr std::size_t nsvc = 40;
    static char names[nsvc][8];
    static ServiceSpec specs[nsvc];
    for (std::size_t i = 0; i < nsvc; ++i) {
        if (i < 2) {
            std::snprintf(names[i], sizeof names[i], "%s", i == 0 ? "steady" : "flap");
        } else {
            std::snprintf(names[i], sizeof names[i], "s%02zu", i);
        }
        specs[i].name = names[i];
        specs[i].argv = sleep_argv;
        specs[i].restart = RestartPolicy::always;
        specs[i].stop_timeout = 2s;
    }
    specs[1].argv = flap_argv;
    specs[1].backoff_initial = 50ms;
    specs[1].backoff_max = 50ms;
    specs[1].ready = ReadyMode::notify; // never ready: its ?wait runs out
    ProbeSpec probes[1];
    probes[0].name = "dir";
    probes[0].kind = ProbeKind::file;
    probes[0].target = dir;
    probes[0].interval = 1s;

    static control_run s;
    std::snprintf(s.sock, sizeof s.sock, "%s/control.sock", dir);
    Table t;
    t.runtime.handle_signals = false;
    t.runtime.cgroup = "off";
    t.runtime.stop_timeout = 5s;
    t.runtime.boot_grace = 200ms;
    t.services = std::span<const ServiceSpec>(specs, nsvc);
    t.probes = probes;
    t.control.socket = s.sock;
    t.control.max_clients = 4;
    t.control.head_timeout = 300ms;
    t.control.idle_timeout = 2s;
    t.control.send_timeout = 500ms;

    static Runtime rt;
    s.rt = &rt;
    if (auto r = rt.init(t); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "control: init: %s\n", text);
        return 1;
    }
    rt.set_transition_hook(&control_hook, &s);
    // The client thread exists before start(): creating it allocates.
    std::thread client(ctl_client, &s);
    if (!rt.start()) {
        std::fprintf(stderr, "control: start failed\n");
        s.go = true;
        client.join();
        return 1;
    }
    std::uint64_t before = custos_test::allocation_count();
    s.go.store(true, std::memory_order_release);
    rt.run();
    std::uint64_t after = custos_test::allocation_count();
    client.join();

    std::printf("control: %u requests in %u rounds: 200 %u, 400 %u, 404 %u, 405 %u, 408 %u, "
                "503 %u, 504 %u, 505 %u; %u chunked; %u not as expected\n",
                s.requests, s.rounds, s.by_status[200], s.by_status[400], s.by_status[404],
                s.by_status[405], s.by_status[408], s.by_status[503], s.by_status[504],
                s.by_status[505], s.chunked, s.mismatches);
    std::printf("control: allocations after start: %llu\n",
                static_cast<unsigned long long>(after - before));
    bool ok = true;
    if (s.mismatches != 0) {
        std::fprintf(stderr, "FAIL: control: %u answers not as expected, the first to: %s\n",
                     s.mismatches, s.first_mismatch);
        ok = false;
    }
    if (!s.stop_sent || s.rounds < 3 || s.chunked < 2 * s.rounds) {
        std::fprintf(stderr, "FAIL: the control workload did not complete\n");
        ok = false;
    }
    if (after != before) {
        std::fprintf(stderr, "FAIL: %llu allocations after Runtime::start() with control clients\n",
                     static_cast<unsigned long long>(after - before));
        ok = false;
    }
    return ok ? 0 : 1;
}

// --- reload ---

// Table problems into the hook's report, with no allocation.
struct report_sink final : TableProblemSink {
    ReloadReport* out = nullptr;
    std::uint32_t seen = 0;
    void report(const TableProblem& p) noexcept override {
        char line[256];
        p.error.format(line, sizeof line);
        out->add(line);
        ++seen;
    }
};

struct reload_run {
    Runtime* rt = nullptr;
    char sock[128] = {};
    std::atomic<bool> go{false};
    std::atomic<bool> done{false};
    bool stop_sent = false;
    // Built before start(): [0] the init table (keep, change, drop), [1]
    // change changed, drop removed, add added; reloading them in turn
    // changes one service, adds one and removes one every time. [2] has
    // an unknown dependency (ReloadInvalid, its problem in the report),
    // reloaded after each that applied.
    const Table* tables[3] = {};
    // The reactor's side (the hook).
    std::uint32_t calls = 0;
    bool bad_due = false; // the bad table's turn
    std::uint32_t applied = 0;
    std::uint32_t busy = 0;    // ReloadBusy: the last removed one still stops
    std::uint32_t invalid = 0; // the bad table, refused as it should be
    std::uint32_t problems = 0;
    std::uint32_t other = 0; // anything else: a failure
    Reason first_other = Reason::unknown;
    // The client's side (its thread only, read after join()).
    std::uint32_t ok200 = 0;
    std::uint32_t busy409 = 0;
    std::uint32_t invalid422 = 0;
    std::uint32_t unexpected = 0;
    int first_unexpected = 0;
};

constexpr std::uint32_t reloads_wanted = 8;

Result<ReloadSummary> reload_hook(Runtime& rt, ReloadReport& report, void* ctx) {
    auto& s = *static_cast<reload_run*>(ctx);
    if (s.done.load(std::memory_order_acquire)) {
        if (!s.stop_sent) {
            s.stop_sent = true;
            rt.stop();
        }
        return fail(Reason::reload_busy, 0, "stopping");
    }
    // After each reload applied, the bad table until it is refused as
    // invalid (not busy); otherwise the other good one.
    ++s.calls;
    const bool bad = s.bad_due;
    const Table& t = bad ? *s.tables[2] : *s.tables[s.applied % 2 == 0 ? 1 : 0];
    report_sink sink;
    sink.out = &report;
    Result<ReloadSummary> r = rt.reload(t, &sink);
    s.problems += sink.seen;
    if (r) {
        ++s.applied;
        s.bad_due = true;
    } else if (r.error().reason() == Reason::reload_busy) {
        ++s.busy;
    } else if (bad && r.error().reason() == Reason::reload_invalid) {
        ++s.invalid;
        s.bad_due = false;
    } else {
        if (s.other++ == 0) {
            s.first_other = r.error().reason();
        }
    }
    return r;
}

void reload_client(reload_run* sp) {
    reload_run& s = *sp;
    while (!s.go.load(std::memory_order_acquire)) {
        ::usleep(1000);
    }
    static const char req[] = "POST /reload HTTP/1.1\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n";
    const std::int64_t t0 = mono_ms();
    // Enough 422s for the bad table's share, and then some: more means the
    // good tables are refused too (the hook counts that as a failure).
    while (s.ok200 < reloads_wanted && s.unexpected < 3 && s.invalid422 < 2 * reloads_wanted + 10 &&
           mono_ms() - t0 < 30000) {
        int fd = ctl_dial(s.sock);
        int status = -1;
        std::uint32_t chunked = 0;
        if (fd >= 0) {
            if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) ==
                static_cast<ssize_t>(sizeof req - 1)) {
                status = ctl_read_all(fd, chunked);
            }
            ::close(fd);
        }
        if (status == 200) {
            ++s.ok200;
        } else if (status == 409) {
            ++s.busy409;
        } else if (status == 422) {
            ++s.invalid422; // the bad table's, checked against the hook's count
        } else {
            if (s.unexpected++ == 0) {
                s.first_unexpected = status;
            }
        }
        if (status != 200) {
            ::usleep(5 * 1000); // a removed service stops meanwhile
        }
    }
    s.done.store(true, std::memory_order_release);
    // One more: the hook sees `done` and stops the runtime (until one is
    // answered: run() returns only then).
    for (int attempt = 0; attempt < 100; ++attempt) {
        int fd = ctl_dial(s.sock);
        int status = -1;
        if (fd >= 0) {
            std::uint32_t chunked = 0;
            if (::send(fd, req, sizeof req - 1, MSG_NOSIGNAL) > 0) {
                status = ctl_read_all(fd, chunked);
            }
            ::close(fd);
        }
        if (status > 0) {
            break;
        }
        ::usleep(20 * 1000);
    }
}

// The fourth workload: 0 pass, 1 fail.
int run_reload(const char* dir) {
    static const std::string_view argv_a[] = {"/bin/sleep", "1000"};
    static const std::string_view argv_b[] = {"/bin/sleep", "1001"};
    static const std::string_view dep_keep[] = {"keep"};
    static const std::string_view dep_none[] = {"nosuch"};
    static ServiceSpec first[3];
    static ServiceSpec second[3];
    static ServiceSpec bad[3];
    const char* first_names[] = {"keep", "change", "drop"};
    const char* second_names[] = {"keep", "change", "add"};
    for (std::size_t i = 0; i < 3; ++i) {
        for (ServiceSpec* sp : {&first[i], &second[i], &bad[i]}) {
            sp->argv = argv_a;
            sp->restart = RestartPolicy::always;
            sp->stop_timeout = 2s;
        }
        first[i].name = first_names[i];
        second[i].name = second_names[i];
        bad[i].name = first_names[i];
    }
    // The one removed each time ignores SIGTERM (SIG_IGN survives the
    // exec) and is killed after 100 ms: the reloads meanwhile are busy.
    static const std::string_view argv_stubborn[] = {"/bin/sh", "-c",
                                                     "trap '' TERM; exec /bin/sleep 1000"};
    first[2].argv = argv_stubborn;
    first[2].stop_timeout = 100ms;
    second[2].argv = argv_stubborn;
    second[2].stop_timeout = 100ms;
    bad[2].argv = argv_stubborn;
    second[1].argv = argv_b;         // changed
    second[2].depends_on = dep_keep; // added, after keep
    bad[2].depends_on = dep_none;    // unknown

    // Probes too: one kept, one changed, one removed and one added (an
    // exec check, spawned from the reload's engine) each time.
    static const std::string_view argv_true[] = {"/bin/true"};
    static ProbeSpec first_probes[3];
    static ProbeSpec second_probes[3];
    const char* first_probe_names[] = {"keep-p", "change-p", "drop-p"};
    const char* second_probe_names[] = {"keep-p", "change-p", "add-p"};
    for (std::size_t i = 0; i < 3; ++i) {
        for (ProbeSpec* p : {&first_probes[i], &second_probes[i]}) {
            p->kind = ProbeKind::file;
            p->target = "/";
            p->interval = 50ms;
            p->startup_initial = 20ms;
        }
        first_probes[i].name = first_probe_names[i];
        second_probes[i].name = second_probe_names[i];
    }
    first_probes[2].kind = ProbeKind::tcp;
    first_probes[2].target = "127.0.0.1:1";
    second_probes[1].target = "/tmp"; // changed
    second_probes[2].kind = ProbeKind::exec;
    second_probes[2].target = {};
    second_probes[2].argv = argv_true;

    static reload_run s;
    std::snprintf(s.sock, sizeof s.sock, "%s/reload.sock", dir);
    static Table t[3];
    const std::span<const ProbeSpec> probe_sets[] = {first_probes, second_probes, first_probes};
    const std::span<const ServiceSpec> specs[] = {first, second, bad};
    for (int i = 0; i < 3; ++i) {
        t[i].runtime.handle_signals = false;
        t[i].runtime.cgroup = "off";
        t[i].runtime.stop_timeout = 5s;
        t[i].runtime.service_slots = 4;
        t[i].runtime.probe_slots = 4;
        t[i].services = specs[i];
        t[i].probes = probe_sets[i];
        t[i].control.socket = s.sock;
        t[i].control.max_clients = 4;
        s.tables[i] = &t[i];
    }

    static Runtime rt;
    s.rt = &rt;
    if (auto r = rt.init(t[0]); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "reload: init: %s\n", text);
        return 1;
    }
    rt.set_reload_hook(&reload_hook, &s);
    // The client thread exists before start(): creating it allocates.
    std::thread client(reload_client, &s);
    if (!rt.start()) {
        std::fprintf(stderr, "reload: start failed\n");
        s.go = true;
        client.join();
        return 1;
    }
    std::uint64_t before = custos_test::allocation_count();
    s.go.store(true, std::memory_order_release);
    rt.run();
    std::uint64_t after = custos_test::allocation_count();
    client.join();

    std::printf("reload: %u hook calls: %u applied, %u busy, %u invalid (%u problems), %u other; "
                "client: 200 %u, 409 %u, 422 %u, unexpected %u\n",
                s.calls, s.applied, s.busy, s.invalid, s.problems, s.other, s.ok200, s.busy409,
                s.invalid422, s.unexpected);
    std::printf("reload: allocations after start: %llu\n",
                static_cast<unsigned long long>(after - before));
    bool ok = true;
    if (s.other != 0 || s.unexpected != 0) {
        std::fprintf(stderr,
                     "FAIL: reload: %u refused unexpectedly (first %.*s), %u answers "
                     "unexpected (first %d)\n",
                     s.other, static_cast<int>(reason_id(s.first_other).size()),
                     reason_id(s.first_other).data(), s.unexpected, s.first_unexpected);
        ok = false;
    }
    if (!s.stop_sent || s.applied < reloads_wanted || s.invalid == 0 || s.problems == 0 ||
        s.invalid422 != s.invalid) {
        std::fprintf(stderr, "FAIL: the reload workload did not complete\n");
        ok = false;
    }
    if (after != before) {
        std::fprintf(stderr, "FAIL: %llu allocations after Runtime::start() with reloads\n",
                     static_cast<unsigned long long>(after - before));
        ok = false;
    }
    return ok ? 0 : 1;
}
} // namespace

int main() {
    char dir[] = "/tmp/custos-noalloc.XXXXXX";
    if (mkdtemp(dir) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    char sock[64]; // with "/crash", it must fit sun_path
    std::snprintf(sock, sizeof sock, "%s/notify", dir);

    // It says something on both streams before each crash: the captured
    // output path (the host's pipes, Runtime::impl::on_output) is counted.
    static const std::string_view crash_argv[] = {"/bin/sh", "-c",
                                                  "echo crashing; echo oops >&2; exit 1"};
    static const std::string_view s6_argv[] = {"/bin/sh", "-c", "echo >&3; exec sleep 1000"};
    static const std::string_view orphan_argv[] = {"/bin/sh", "-c", "sleep 0.05 & exit 0"};
    ServiceSpec specs[3];
    specs[0].name = "crash";
    specs[0].argv = crash_argv;
    specs[0].restart = RestartPolicy::always;
    specs[0].backoff_initial = 5ms;
    specs[0].backoff_max = 20ms;
    specs[0].ready = ReadyMode::notify; // gives it a notify socket
    specs[1].name = "s6";
    specs[1].argv = s6_argv;
    specs[1].ready = ReadyMode::fd;
    specs[1].ready_fd = 3;
    specs[2].name = "orphaner";
    specs[2].argv = orphan_argv;
    specs[2].restart = RestartPolicy::always;
    specs[2].backoff_initial = 20ms;
    specs[2].backoff_max = 20ms;

    // Probes of every kind, polled fast: TCP to a listener (by address and
    // by name: "localhost", which the resolver answers itself, so the test
    // needs no /etc/hosts; minbase images have none), TCP refused, a file
    // written for real, an exec (chatty: its output is read and dropped),
    // a composite of them, and an exec failing with a last line.
    int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in la{};
    la.sin_family = AF_INET;
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t la_len = sizeof la;
    if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 ||
        ::listen(lfd, 4096) != 0 ||
        ::getsockname(lfd, reinterpret_cast<sockaddr*>(&la), &la_len) != 0) {
        std::perror("listener");
        return 1;
    }
    char tcp_ok[32];
    std::snprintf(tcp_ok, sizeof tcp_ok, "127.0.0.1:%u", ntohs(la.sin_port));
    char tcp_name[32];
    std::snprintf(tcp_name, sizeof tcp_name, "localhost:%u", ntohs(la.sin_port));
    static const std::string_view exec_argv[] = {"/bin/sh", "-c", "echo all fine; exit 0"};
    static const std::string_view exec_fail_argv[] = {"/bin/sh", "-c", "echo db locked; exit 1"};
    static const std::string_view members[] = {"tcp-ok", "dir"};
    ProbeSpec probes[7];
    const char* names[] = {"tcp-ok", "tcp-name", "refused", "dir", "exec", "both", "exec-fail"};
    for (int i = 0; i < 7; ++i) {
        probes[i].name = names[i];
        probes[i].timeout = 2s;
        probes[i].startup_initial = 5ms;
        probes[i].startup_max = 10ms;
        probes[i].startup_tries = 3;
        probes[i].interval = 10ms;
    }
    probes[0].kind = ProbeKind::tcp;
    probes[0].target = tcp_ok;
    probes[1].kind = ProbeKind::tcp;
    probes[1].target = tcp_name;
    probes[2].kind = ProbeKind::tcp;
    probes[2].target = "127.0.0.1:1";
    probes[3].kind = ProbeKind::file;
    probes[3].target = dir;
    probes[3].writable = true;
    probes[4].kind = ProbeKind::exec;
    probes[4].argv = exec_argv;
    probes[5].kind = ProbeKind::all;
    probes[5].members = members;
    probes[6].kind = ProbeKind::exec;
    probes[6].argv = exec_fail_argv;
    specs[2].depends_on = std::span<const std::string_view>(members, 1);

    RuntimeConfig cfg;
    cfg.handle_signals = false;
    cfg.notify_dir = sock;
    // A cgroup root of its own (the per-backend runs go in parallel), where
    // cgroup2 is usable; process groups otherwise.
    static char cg[300];
    char mount[256];
    if (::geteuid() == 0 && custos::process::find_cgroup2_mount(mount, sizeof mount).has_value()) {
        std::snprintf(cg, sizeof cg, "%s/custos-na-%d", mount, static_cast<int>(::getpid()));
        cfg.cgroup = cg;
    } else {
        cfg.cgroup = "off";
    }
    cfg.stop_timeout = 5s;
    cfg.reap_orphans = true; // the subreaper drain is part of what is counted

    static Runtime rt;
    static run_state s;
    s.rt = &rt;
    auto r = rt.init(cfg, specs, probes);
    if (!r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "init: %s\n", text);
        const char* want = std::getenv("CUSTOS_BACKEND");
        bool uring_refused = want != nullptr && std::string_view(want) == "uring" &&
                             (r.error().reason() == Reason::io_uring_unavailable ||
                              r.error().reason() == Reason::io_uring_opcode_missing);
        return uring_refused ? 77 : 1;
    }
    std::printf("runtime: %s\n", rt.backend_reason());
    rt.set_transition_hook(&hook, &s);
    s.notify_fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    s.notify_addr.sun_family = AF_UNIX;
    std::snprintf(s.notify_addr.sun_path, sizeof s.notify_addr.sun_path, "%s/crash", sock);

    if (!rt.start()) {
        std::fprintf(stderr, "start failed\n");
        return 1;
    }
    std::uint64_t before = custos_test::allocation_count();
    rt.run();
    std::uint64_t after = custos_test::allocation_count();

    RuntimeStats st = rt.stats();
    std::printf("spawns %llu, exits %llu, orphans reaped %llu, notify received %llu (dropped "
                "%llu), transitions %u\n",
                static_cast<unsigned long long>(st.spawns),
                static_cast<unsigned long long>(st.exits),
                static_cast<unsigned long long>(st.orphans_reaped),
                static_cast<unsigned long long>(st.notify_received),
                static_cast<unsigned long long>(st.notify_dropped), s.transitions);
    std::printf("output bytes %llu\n", static_cast<unsigned long long>(st.output_bytes));
    std::printf("probe checks %llu, failures %llu\n",
                static_cast<unsigned long long>(st.probe_checks),
                static_cast<unsigned long long>(st.probe_failures));
    for (std::uint32_t i = 0; i < rt.probe_count(); ++i) {
        ProbeStatus ps = rt.probe_status(i);
        std::printf("  probe %-8.*s %-7.*s checks %llu failures %llu\n",
                    static_cast<int>(ps.name.size()), ps.name.data(),
                    static_cast<int>(probe_state_name(ps.state).size()),
                    probe_state_name(ps.state).data(), static_cast<unsigned long long>(ps.checks),
                    static_cast<unsigned long long>(ps.failures));
    }
    std::printf("allocations after start: %llu\n", static_cast<unsigned long long>(after - before));
    ::close(s.notify_fd);
    ::close(lfd);
    char lock[160];
    std::snprintf(lock, sizeof lock, "%s/.lock", sock);
    ::unlink(lock);
    ::rmdir(sock);

    bool ok = true;
    if (run_monitors(dir) != 0) {
        ok = false;
    }
    if (run_control(dir) != 0) {
        ok = false;
    }
    if (run_reload(dir) != 0) {
        ok = false;
    }
    ::rmdir(dir);

    // The counter must see an allocation, or a 0 above proves nothing.
    void* volatile probe = std::malloc(24);
    if (custos_test::allocation_count() == after) {
        std::fprintf(stderr, "FAIL: the counting allocator missed a malloc\n");
        ok = false;
    }
    std::free(probe);
    if (!s.stop_sent) {
        std::fprintf(stderr, "FAIL: the workload did not complete\n");
        ok = false;
    }
    // Orphans come to us only where the kernel let us be a subreaper
    // (qemu-user refuses the prctl: they go to init there).
    int subreaper = 0;
    ::prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
    if (subreaper == 0) {
        std::printf("not a subreaper here: the orphan path is not exercised\n");
    }
    if (st.spawns < crash_spawns_wanted + 5 || (subreaper != 0 && st.orphans_reaped == 0) ||
        st.notify_dropped == 0 || st.output_bytes == 0) {
        std::fprintf(stderr, "FAIL: the workload did not exercise every path\n");
        ok = false;
    }
    for (std::uint32_t i = 0; i < rt.probe_count(); ++i) {
        ProbeStatus ps = rt.probe_status(i);
        const bool should_pass = ps.name != "refused" && ps.name != "exec-fail";
        if (ps.name == "exec-fail" && ps.last_error.message.view().find(
                                          "exit status 1: db locked") == std::string_view::npos) {
            std::fprintf(stderr, "FAIL: probe exec-fail: message '%.*s' lacks its last line\n",
                         static_cast<int>(ps.last_error.message.size()),
                         ps.last_error.message.data());
            ok = false;
        }
        if (ps.checks < 3 || (ps.state == ProbeState::ready) != should_pass) {
            std::fprintf(stderr, "FAIL: probe %.*s: %llu checks, state %.*s\n",
                         static_cast<int>(ps.name.size()), ps.name.data(),
                         static_cast<unsigned long long>(ps.checks),
                         static_cast<int>(probe_state_name(ps.state).size()),
                         probe_state_name(ps.state).data());
            ok = false;
        }
    }
    if (after != before) {
        std::fprintf(stderr, "FAIL: %llu allocations after Runtime::start()\n",
                     static_cast<unsigned long long>(after - before));
        ok = false;
    }
    return ok ? 0 : 1;
}
