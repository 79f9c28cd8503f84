// An appliance daemon that embeds libcustos: what a firmware engineer copies.
//
// It declares a static table: two services (netd, and an agent that talks to
// the daemon over a channel), a probe (a writable /tmp), and three of the
// daemon's own tasks as monitors:
//   telemetry  healthy: beats from its work loop, heartbeats, talks to the
//              agent over the agent's channel;
//   poller     fails every second or so: restarted with backoff, reported
//              as degraded at every third crash in a row;
//   stuck      beats until the daemon gets SIGUSR1, then stops making
//              progress: custos reports it suspected, then wedged.
// Health and its summary are printed whenever they change, and so are the
// transitions. SIGTERM or SIGINT stops everything in order; the exit code
// is the runtime's (non-zero only if a monitor with on_wedge = exit wedged).
//
//   appliance-daemon [--state-dir DIR]
//
// DIR (default: a new directory under /tmp) holds the notify sockets.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/runtime.hpp>
#include <custos/table.hpp>

using namespace std::chrono_literals;
using custos::Error;
using custos::MonitorContext;
using custos::Reason;
using custos::Result;

namespace {

// Pongs the agent sent back (telemetry counts; GET /appliance/pings reads).
std::atomic<std::uint64_t> pongs{0};

// --- shared between the reactor thread (hooks) and the monitors ---

// SIGUSR1 arrived: "stuck" stops making progress.
std::atomic<bool> wedge_requested{false};
// The daemon's own copy of the agent's channel (dup()ed in the hook, so the
// runtime closing its end at the agent's exit cannot pull it from under the
// telemetry thread). Handed over once per agent instance; -1: none waiting.
std::atomic<int> agent_channel{-1};

// --- the monitors ---

// Healthy: does its work every 200 ms, beats with a progress counter, and
// pings the agent over its channel.
Result<void> telemetry(MonitorContext& ctx, void*) {
    std::uint64_t n = 0;
    int ch = -1;
    while (ctx.wait_for(200ms)) {
        ctx.beat(++n);
        int fresh = agent_channel.exchange(-1);
        if (fresh >= 0) {
            if (ch >= 0) {
                ::close(ch);
            }
            ch = fresh;
        }
        if (ch >= 0 && n % 10 == 0) {
            char line[64];
            int len = std::snprintf(line, sizeof line, "ping %llu\n",
                                    static_cast<unsigned long long>(n / 10));
            if (::write(ch, line, static_cast<std::size_t>(len)) != len) {
                ctx.tick(Error(Reason::monitor_crashed, errno, "write to the agent"));
                ::close(ch);
                ch = -1;
                continue;
            }
            pollfd p{ch, POLLIN, 0};
            char reply[64];
            ssize_t got = ::poll(&p, 1, 500) == 1 ? ::read(ch, reply, sizeof reply - 1) : -1;
            if (got > 0) {
                reply[got] = '\0';
                std::printf("telemetry: agent says %s", reply);
                pongs.fetch_add(1);
                std::fflush(stdout);
                ctx.tick();
            } else {
                ctx.tick(Error(Reason::monitor_crashed, errno, "no answer from the agent"));
            }
        }
    }
    if (ch >= 0) {
        ::close(ch);
    }
    return {}; // a clean exit: not restarted
}

// Flaky: works for a while, then fails as a real device poller would.
Result<void> poller(MonitorContext& ctx, void*) {
    for (int i = 0; i < 5; ++i) {
        if (!ctx.wait_for(100ms)) {
            return {};
        }
        ctx.beat();
    }
    return custos::fail(Reason::monitor_crashed, EIO, "read /dev/ttyS1: no answer");
}

// Beats until SIGUSR1, then blocks without progress (but still stops when
// asked: a real wedge would not, and would be abandoned at the stop).
Result<void> stuck(MonitorContext& ctx, void*) {
    while (ctx.wait_for(100ms)) {
        if (!wedge_requested.load()) {
            ctx.beat();
        }
    }
    return {};
}

// --- what the daemon prints ---

void on_service(const custos::Transition& t, void*) {
    std::printf("service %.*s: %.*s -> %.*s (%s)\n", static_cast<int>(t.name.size()), t.name.data(),
                static_cast<int>(custos::state_name(t.from).size()),
                custos::state_name(t.from).data(),
                static_cast<int>(custos::state_name(t.to).size()), custos::state_name(t.to).data(),
                Error(t.reason, 0).id().data());
    if (t.name == "agent" && t.channel_fd >= 0) {
        int mine = ::dup(t.channel_fd);
        int old = agent_channel.exchange(mine);
        if (old >= 0) {
            ::close(old);
        }
    }
    std::fflush(stdout);
}

void on_monitor(const custos::MonitorTransition& t, void*) {
    std::printf("monitor %.*s: %.*s -> %.*s (%s) %.*s\n", static_cast<int>(t.name.size()),
                t.name.data(), static_cast<int>(custos::monitor_state_name(t.from).size()),
                custos::monitor_state_name(t.from).data(),
                static_cast<int>(custos::monitor_state_name(t.to).size()),
                custos::monitor_state_name(t.to).data(), Error(t.reason, 0).id().data(),
                static_cast<int>(t.detail.size()), t.detail.data());
    std::fflush(stdout);
}

void on_health(const custos::HealthStatus& h, void*) {
    // The summary names the health itself, but for ok ("2/2 ready").
    std::printf("health: %s%s\n", h.health == custos::Health::ok ? "ok: " : "", h.summary.c_str());
    for (std::uint32_t i = 0; i < h.reason_count; ++i) {
        const custos::HealthReason& r = h.reasons[i];
        std::printf("  [-] %s %s %s: %s%s%s\n", custos::subject_kind_name(r.kind).data(),
                    r.name.c_str(), r.state.c_str(), Error(r.reason, 0).id().data(),
                    r.message.empty() ? "" : ": ", r.message.c_str());
    }
    std::fflush(stdout);
}

// An appliance route: GET /appliance/pings says how many pongs the agent
// sent (the telemetry monitor counts them); POST /appliance/pings/reset
// (operators only: custos checks the peer before calling this) zeroes it.

void appliance_route(const custos::ControlRequest& req, custos::ControlResponse& resp, void*) {
    if (req.path == "/appliance/pings" && (req.method == "GET" || req.method == "HEAD")) {
        char body[64];
        int n = std::snprintf(body, sizeof body, "{\"pongs\":%llu}\n",
                              static_cast<unsigned long long>(pongs.load()));
        resp.append(std::string_view(body, static_cast<std::size_t>(n)));
        return;
    }
    if (req.path == "/appliance/pings/reset" && req.method == "POST") {
        pongs.store(0);
        resp.append("{\"pongs\":0}\n");
        return;
    }
    resp.status = 404;
    resp.append("{\"error\":\"no such appliance route\"}\n");
}

void on_signal(int sig, void*) {
    if (sig == SIGUSR1) {
        std::printf("SIGUSR1: monitor stuck stops making progress\n");
        std::fflush(stdout);
        wedge_requested.store(true);
    }
}

} // namespace

int main(int argc, char** argv) {
    char dir[256] = "/tmp/appliance-daemon.XXXXXX";
    if (argc == 3 && std::strcmp(argv[1], "--state-dir") == 0) {
        std::snprintf(dir, sizeof dir, "%s", argv[2]);
    } else if (argc != 1 || ::mkdtemp(dir) == nullptr) {
        std::fprintf(stderr, "usage: appliance-daemon [--state-dir DIR]\n");
        return 2;
    }
    char notify_dir[300];
    std::snprintf(notify_dir, sizeof notify_dir, "%s/notify", dir);
    // custosctl --socket DIR/control.sock status (or curl --unix-socket).
    char control_sock[300];
    std::snprintf(control_sock, sizeof control_sock, "%s/control.sock", dir);

    // The static table. Its storage need only last until init() returns.
    static const std::string_view netd_argv[] = {"sleep", "3600"};
    static const std::string_view agent_argv[] = {
        "sh", "-c", "while read -r line <&3; do echo \"pong ${line#ping }\" >&3; done"};
    static const std::string_view agent_deps[] = {"netd"};
    static const std::string_view monitor_deps[] = {"netd", "tmp"};

    custos::ServiceSpec services[2];
    services[0].name = "netd";
    services[0].argv = netd_argv;
    services[0].critical = true;
    services[1].name = "agent";
    services[1].argv = agent_argv;
    services[1].depends_on = agent_deps;
    services[1].channel_fd = 3;
    services[1].restart = custos::RestartPolicy::always;

    custos::ProbeSpec probes[1];
    probes[0].name = "tmp";
    probes[0].kind = custos::ProbeKind::file;
    probes[0].target = "/tmp";
    probes[0].writable = true;
    probes[0].interval = 5s;
    probes[0].critical = true;

    custos::MonitorSpec monitors[3];
    monitors[0].name = "telemetry";
    monitors[0].run = telemetry;
    monitors[0].depends_on = monitor_deps;
    monitors[0].heartbeat_interval = 5s;
    monitors[0].deadline = 2s;
    monitors[0].critical = true;
    monitors[1].name = "poller";
    monitors[1].run = poller;
    monitors[1].backoff_initial = 1s;
    monitors[1].backoff_max = 2s;
    monitors[1].degraded_every = 3;
    monitors[2].name = "stuck";
    monitors[2].run = stuck;
    monitors[2].deadline = 1s;
    monitors[2].stack_size = 64 * 1024;

    custos::Table table;
    table.runtime.notify_dir = notify_dir;
    table.runtime.boot_grace = 10s;
    table.services = services;
    table.probes = probes;
    table.monitors = monitors;
    table.control.socket = control_sock;

    custos::Runtime rt;
    if (auto r = rt.init(table); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "appliance-daemon: %s\n", text);
        return 1;
    }
    rt.set_transition_hook(on_service, nullptr);
    rt.set_monitor_hook(on_monitor, nullptr);
    rt.set_health_hook(on_health, nullptr);
    rt.set_signal_hook(on_signal, nullptr);
    if (auto r = rt.add_control_route("appliance", appliance_route, nullptr); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "appliance-daemon: %s\n", text);
        return 1;
    }
    if (auto r = rt.start(); !r) {
        char text[512];
        r.error().format(text, sizeof text);
        std::fprintf(stderr, "appliance-daemon: %s\n", text);
        return 1;
    }
    std::printf("appliance-daemon: running (pid %d); SIGUSR1 wedges a monitor, SIGTERM stops\n",
                static_cast<int>(::getpid()));
    std::fflush(stdout);
    rt.run();
    const custos::HealthStatus h = rt.health();
    std::printf("appliance-daemon: stopped; last health %s (%s); exit %d\n",
                custos::health_name(h.health).data(), h.summary.c_str(), rt.exit_code());
    return rt.exit_code();
}
