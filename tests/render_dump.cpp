// render_dump: renders every control-plane document of a 64-service,
// 64-probe, 4-monitor snapshot (states, deaths, errors and texts varied)
// into files, for tests/test_render.sh to check with real clients (jq,
// promtool, python3's prometheus_client); with --bench, also times the
// /status and /metrics renders.
//
//   render_dump DIR           writes DIR/<document> (names below)
//   render_dump DIR --bench [status|metrics|health]
//                             the same, then prints the timings (of one;
//                             "/metrics+" is /metrics with the metrics
//                             scratch the server gives it, "/status+"
//                             /status with the text memo it gives it, every
//                             record's text kept from the previous render;
//                             "/status+ miss" the same with the wall clock
//                             moved 1 ms before each render, so that the
//                             memo replays no record with a time)
// Either way it checks that /metrics is the same bytes with the scratch as
// without, and /status the same with the memo (filling it, replaying it,
// chunk by chunk) as without (exit 1 otherwise).
//
// Times are fixed (now = 1000 s monotonic = 2026-12-07T08:02:52.123Z), so
// the script can check exact values.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>
#include <custos/service.hpp>
#include <custos/watchdog.hpp>

#include "core/arena.hpp"
#include "core/text_out.hpp"
#include "status/render.hpp"
#include "status/snapshot.hpp"

using namespace custos;
using namespace std::string_view_literals;

namespace {

constexpr std::int64_t s_ns = 1'000'000'000;
constexpr std::int64_t now_ns = 1000 * s_ns;
constexpr std::int64_t wall_now_ns = 1'796'630'572'123'000'000; // 2026-12-07T08:02:52.123Z
constexpr std::uint32_t services = 64;
constexpr std::uint32_t probes = 64;
constexpr std::uint32_t monitors = 4;

FixedText<name_capacity> name_of(const char* prefix, std::uint32_t i) {
    char b[32];
    std::snprintf(b, sizeof b, "%s%02u", prefix, i);
    return std::string_view(b);
}

ServiceStatus make_service(std::uint32_t i) {
    ServiceStatus s;
    s.name = name_of("svc-", i);
    s.state = static_cast<ServiceState>(i % service_state_count);
    s.wanted = s.state != ServiceState::stopped;
    s.since_ns = now_ns - (i + 1) * s_ns;
    s.reason = s.state == ServiceState::ready     ? Reason::ready_notified
               : s.state == ServiceState::failed  ? Reason::max_restarts_exhausted
               : s.state == ServiceState::backoff ? Reason::process_exited
                                                  : Reason::spawned;
    if (i == 0) {
        s.reason = Reason::unknown; // never started
    }
    const bool alive = s.state == ServiceState::running || s.state == ServiceState::ready ||
                       s.state == ServiceState::stopping;
    if (alive) {
        s.pid = static_cast<int>(1000 + i);
        s.started_ns = now_ns - (i + 1) * s_ns - 250'000'000;
    }
    if (s.state == ServiceState::backoff) {
        s.restart_at_ns = now_ns + 2 * s_ns + 500'000'000;
    }
    s.restarts = i % 4;
    for (std::size_t k = 0; k < restart_cause_count; ++k) {
        s.restarts_by_cause[k] = (i + k) % 3;
    }
    s.total_restarts = s.restarts_by_cause[0] + s.restarts_by_cause[1] + s.restarts_by_cause[2] +
                       s.restarts_by_cause[4];
    s.death_count = i % 21; // 0..20: some beyond the 16 kept
    const std::uint64_t kept = std::min<std::uint64_t>(s.death_count, death_history_capacity);
    for (std::uint64_t k = 0; k < kept; ++k) {
        DeathRecord& d = s.deaths[k];
        d.at_ns = now_ns - static_cast<std::int64_t>(100 - k) * s_ns;
        d.exit.pid = static_cast<int>(500 + k);
        if (k % 3 == 2) {
            d.exit.signal = k % 2 != 0 ? 9 : 11;
            d.exit.core_dumped = d.exit.signal == 11;
            d.reason = Reason::process_killed;
        } else {
            d.exit.code = static_cast<int>(k % 4);
            d.reason = Reason::process_exited;
        }
    }
    if (kept != 0) {
        s.last_exit = s.deaths[kept - 1].exit;
    }
    if (i % 5 == 1) {
        s.last_error.reason = Reason::process_exited;
        s.last_error.message = "exit status 1"sv;
        s.last_error.since_ns = now_ns - 7 * s_ns;
    } else if (i % 5 == 3) {
        s.last_error.reason = Reason::spawn_failed;
        s.last_error.sys_errno = ENOENT;
        s.last_error.message = "execve /usr/bin/missing"sv;
        s.last_error.since_ns = now_ns - 9 * s_ns;
    }
    if (i % 7 == 0) {
        s.status_text = "serving \"clients\"\n\ttab\\slash \x01 caf\xc3\xa9"sv;
    } else if (i % 7 == 3) {
        s.status_text = "ready, 12 connections"sv;
    }
    return s;
}

ProbeStatus make_probe(std::uint32_t i) {
    ProbeStatus p;
    p.name = name_of("probe-", i);
    p.kind = static_cast<ProbeKind>(i % 6);
    p.state = static_cast<ProbeState>(i % 3);
    p.phase = i % 3 == 0 ? ProbePhase::startup : ProbePhase::polling;
    p.checking = i % 8 == 5;
    p.checks = 10 + i;
    p.failures = i % 3 == 2 ? 4 : 0;
    if (i % 3 != 0 || i % 2 != 0) {
        p.last_check_ns = now_ns - 3 * s_ns;
        p.last_success_ns = now_ns - 3 * s_ns + 1'500'000; // 1.5 ms check
        p.next_check_ns = now_ns + 57 * s_ns;
    }
    if (i % 3 == 2) {
        p.last_failure_ns = now_ns - 3 * s_ns + 2'000'000;
        p.consecutive_failures = 4;
        p.last_error.reason = Reason::probe_connect_refused;
        p.last_error.sys_errno = ECONNREFUSED;
        p.last_error.message = "connect 127.0.0.1:1883: Connection refused"sv;
        if (i % 2 == 0) {
            p.last_error.resolution = "start the broker: systemctl start mosquitto"sv;
        }
        p.last_error.since_ns = now_ns - 30 * s_ns;
    } else {
        p.consecutive_successes = p.state == ProbeState::ready ? 3 : 0;
    }
    return p;
}

MonitorStatus make_monitor(std::uint32_t i) {
    static constexpr MonitorState states[] = {MonitorState::running, MonitorState::backoff,
                                              MonitorState::wedged, MonitorState::degraded};
    MonitorStatus m;
    m.name = name_of("mon-", i);
    m.state = states[i % 4];
    m.critical = i == 2;
    m.reason = m.state == MonitorState::backoff ? Reason::monitor_crashed : Reason::unknown;
    m.since_ns = now_ns - 20 * s_ns;
    m.started_ns = m.state == MonitorState::backoff ? 0 : now_ns - 60 * s_ns;
    m.runs = 3;
    m.beats = 1200 + i;
    m.ticks = 50;
    m.tick_failures = i;
    if (m.state == MonitorState::backoff) {
        m.crashes = 2;
        m.last_crash = MonitorError{Reason::io_uring_unavailable, EPERM, "upload failed"sv,
                                    now_ns - 21 * s_ns};
    }
    if (m.state == MonitorState::degraded) {
        m.degraded =
            MonitorError{Reason::probe_timeout, 0, "device poll timed out"sv, now_ns - 5 * s_ns};
    }
    return m;
}

HealthStatus make_health() {
    HealthStatus h;
    h.health = Health::degraded;
    h.since_ns = now_ns - 40 * s_ns;
    h.settled = true;
    h.critical_ready = true;
    h.services = 56;
    h.services_ready = 8;
    h.probes = probes;
    h.probes_ready = 21;
    h.monitors = 4;
    h.monitors_running = 1;
    h.reason_total = 20;
    h.reason_count = health_reason_capacity;
    for (std::uint32_t k = 0; k < health_reason_capacity; ++k) {
        HealthReason& r = h.reasons[k];
        r.kind = static_cast<SubjectKind>(k % 3);
        r.index = k;
        r.critical = k == 0;
        r.name = name_of(k % 3 == 0 ? "svc-" : k % 3 == 1 ? "probe-" : "mon-", k);
        r.state = "failed"sv;
        r.reason = Reason::max_restarts_exhausted;
        r.message = "exited 1"sv;
        r.since_ns = now_ns - 12 * s_ns;
    }
    h.summary = "degraded: svc-07 failed (MaxRestartsExhausted) and 19 more"sv;
    return h;
}

WatchdogStatus make_watchdog() {
    WatchdogStatus w;
    w.device = WatchdogDevice::kernel;
    w.state = WatchdogState::feeding;
    w.board = "qemu-virt"sv;
    w.path = "/dev/watchdog0"sv;
    w.identity = "i6300ESB timer"sv;
    w.options = 0x8180;
    w.requested_s = 30;
    w.timeout_s = 30;
    w.interval_ns = 15 * s_ns;
    w.gate_open = true;
    w.magic_close = true;
    w.feeds = 4242;
    w.first_feed_ns = 2 * s_ns;
    w.last_feed_ns = now_ns - s_ns;
    w.previous.cls = ResetClass::starved;
    w.previous.reason = Reason::max_restarts_exhausted;
    w.previous.subject = "service uploader"sv;
    w.previous.wall_ns = wall_now_ns - 3600 * s_ns;
    w.counters.boots = 7;
    w.counters.orderly = 5;
    w.counters.starved = 2;
    return w;
}

struct fixture {
    arena mem;
    status::snapshot snap;
    io::reactor_stats reactor;
    status::control_counters control;
    status::process_info process;
    status::render_context ctx;

    bool init() {
        if (!mem.reserve(status::snapshot::footprint(services, probes, monitors)) ||
            !snap.init(mem, services, probes, monitors)) {
            return false;
        }
        snap.begin_publish();
        for (std::uint32_t i = 0; i < services; ++i) {
            (void)snap.put_service(i, make_service(i));
        }
        for (std::uint32_t i = 0; i < probes; ++i) {
            (void)snap.put_probe(i, make_probe(i));
        }
        for (std::uint32_t i = 0; i < monitors; ++i) {
            (void)snap.put_monitor(i, make_monitor(i));
        }
        (void)snap.put_health(make_health());
        (void)snap.put_watchdog(make_watchdog());
        RuntimeStats st;
        st.spawns = 321;
        st.exits = 300;
        st.probe_checks = 5000;
        st.probe_failures = 77;
        snap.put_stats(st);
        snap.end_publish();

        reactor.ops_submitted = 9000;
        reactor.ops_completed = 8990;
        reactor.syscalls = 12345;
        control.connections = 40;
        control.requests = 120;
        control.by_code[status::code_index(200)] = 100;
        control.by_code[status::code_index(404)] = 15;
        control.by_code[status::code_index(503)] = 5;
        control.refused_full = 5;
        control.clients = 1;
        control.max_clients = 8;
        process.cpu_seconds = 12.34;
        process.open_fds = 42;
        process.max_fds = 1024;
        process.virtual_bytes = 20u << 20;
        process.resident_bytes = 3u << 20;
        process.start_time_wall_ns = wall_now_ns - 1000 * s_ns;
        process.threads = 6;

        ctx.snap = &snap;
        ctx.version = "0.1.0";
        ctx.backend = "io_uring";
        ctx.backend_reason = "io_uring: every opcode present";
        ctx.boot_id = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        ctx.pid = 4321;
        ctx.now_ns = now_ns;
        ctx.wall_now_ns = wall_now_ns;
        ctx.started_ns = 5 * s_ns;
        ctx.reactor = &reactor;
        ctx.control = &control;
        ctx.process = &process;
        return true;
    }
};

// Big enough for any document of this snapshot.
char big[1 << 20];

bool write_file(const std::string& path, std::string_view data) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
        std::fprintf(stderr, "render_dump: %s: %s\n", path.c_str(), std::strerror(errno));
        return false;
    }
    const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
    return std::fclose(f) == 0 && ok;
}

// The document through a buffer of exactly item_max bytes, emptied after
// every fill(), as the server sends it in chunks.
std::string render_chunked(status::doc kind, const status::render_context& ctx,
                           std::uint32_t index = 0) {
    static char small[status::item_max];
    std::string all;
    status::document d;
    d.begin(kind, ctx, index);
    for (;;) {
        text_out out(small, sizeof small);
        const bool done = d.fill(out);
        all.append(out.view());
        if (done) {
            return all;
        }
    }
}

std::int64_t cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * s_ns + ts.tv_nsec;
}

// Median CPU time of one render_all(kind) over `rounds` batches, and of a
// copy of the same bytes (the baseline: what a fixed body costs). With
// `step_wall`, the wall clock moves 1 ms before each render: every time
// in the document changes, so a memo replays no record that has one.
void bench(const char* label, status::doc kind, const status::render_context& base,
           bool step_wall = false) {
    status::render_context ctx = base;
    constexpr int rounds = 21;
    constexpr int per_round = 200;
    static char copy[sizeof big];
    std::vector<double> render_us;
    std::vector<double> copy_us;
    std::size_t bytes = 0;
    for (int r = 0; r < rounds; ++r) {
        std::int64_t t0 = cpu_ns();
        for (int k = 0; k < per_round; ++k) {
            if (step_wall) {
                ctx.wall_now_ns += 1'000'000;
            }
            text_out out(big, sizeof big);
            if (!status::render_all(kind, ctx, out)) {
                std::fprintf(stderr, "render_dump: %s did not fit\n", label);
                std::exit(1);
            }
            bytes = out.size();
            asm volatile("" : : "r"(big) : "memory");
        }
        std::int64_t t1 = cpu_ns();
        for (int k = 0; k < per_round; ++k) {
            std::memcpy(copy, big, bytes);
            asm volatile("" : : "r"(copy) : "memory");
        }
        std::int64_t t2 = cpu_ns();
        render_us.push_back(static_cast<double>(t1 - t0) / per_round / 1000.0);
        copy_us.push_back(static_cast<double>(t2 - t1) / per_round / 1000.0);
    }
    std::sort(render_us.begin(), render_us.end());
    std::sort(copy_us.begin(), copy_us.end());
    const double med = render_us[rounds / 2];
    std::printf("%-13s %7zu bytes  render %8.2f us (min %.2f, max %.2f)  copy %.2f us  "
                "%.0f MB/s\n",
                label, bytes, med, render_us.front(), render_us.back(), copy_us[rounds / 2],
                static_cast<double>(bytes) / med);
}

void run_bench(std::string_view only, const status::render_context& ctx);

arena memo_mem;
status::text_memo memo;

// /status with the memo as without: while it fills, when it replays, and
// through item_max buffers.
bool same_status_with_memo(const status::render_context& ctx) {
    static char plain[sizeof big];
    text_out a(plain, sizeof plain);
    if (!status::render_all(status::doc::status_json, ctx, a)) {
        return false;
    }
    status::render_context with = ctx;
    with.memo = &memo;
    for (int round = 0; round < 2; ++round) {
        text_out b(big, sizeof big);
        if (!status::render_all(status::doc::status_json, with, b) || a.view() != b.view()) {
            return false;
        }
    }
    return render_chunked(status::doc::status_json, with) == a.view();
}

status::service_figures scratch_services[services];
status::probe_figures scratch_probes[probes];
status::metrics_scratch scratch{scratch_services, scratch_probes};

bool same_metrics_with_scratch(const status::render_context& ctx) {
    static char plain[sizeof big];
    text_out a(plain, sizeof plain);
    status::render_context with = ctx;
    with.scratch = &scratch;
    text_out b(big, sizeof big);
    return status::render_all(status::doc::metrics, ctx, a) &&
           status::render_all(status::doc::metrics, with, b) && a.view() == b.view();
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argv[1][0] == '-') {
        std::fprintf(stderr, "usage: render_dump DIR [--bench]\n");
        return 2;
    }
    const std::string dir = argv[1];
    const bool do_bench = argc > 2 && std::string_view(argv[2]) == "--bench";
    static fixture fx;
    if (!fx.init()) {
        std::fprintf(stderr, "render_dump: no memory for the snapshot\n");
        return 1;
    }
    struct output {
        const char* file;
        status::doc kind;
        std::uint32_t index;
    };
    static constexpr output outputs[] = {
        {"health.txt", status::doc::health_text, 0},
        {"health.json", status::doc::health_json, 0},
        {"status.json", status::doc::status_json, 0},
        {"status.tsv", status::doc::status_tsv, 0},
        {"service.json", status::doc::service_json, 13},
        {"service.txt", status::doc::service_text, 17},
        {"probe.json", status::doc::probe_json, 2},
        {"monitor.json", status::doc::monitor_json, 1},
        {"watchdog.json", status::doc::watchdog_json, 0},
        {"metrics.txt", status::doc::metrics, 0},
    };
    for (const output& o : outputs) {
        text_out out(big, sizeof big);
        if (!status::render_all(o.kind, fx.ctx, out, o.index)) {
            std::fprintf(stderr, "render_dump: %s did not fit in %zu bytes\n", o.file, sizeof big);
            return 1;
        }
        if (!write_file(dir + "/" + o.file, out.view()) ||
            !write_file(dir + "/chunked-" + o.file, render_chunked(o.kind, fx.ctx, o.index))) {
            return 1;
        }
    }
    // The same without the optional parts: no reactor, control or process
    // metrics, no wall clock (times null), no boot id.
    status::render_context bare = fx.ctx;
    bare.reactor = nullptr;
    bare.control = nullptr;
    bare.process = nullptr;
    bare.wall_now_ns = 0;
    bare.boot_id = {};
    for (const output& o : {outputs[2], outputs[9]}) {
        text_out out(big, sizeof big);
        if (!status::render_all(o.kind, bare, out, o.index) ||
            !write_file(dir + "/bare-" + o.file, out.view())) {
            return 1;
        }
    }
    // /metrics with the scratch the server gives it must be the same bytes,
    // and /status with its memo.
    if (!same_metrics_with_scratch(fx.ctx)) {
        std::fprintf(stderr, "render_dump: /metrics differs with a metrics scratch\n");
        return 1;
    }
    if (!memo_mem.reserve(status::text_memo::footprint(services, probes)) ||
        !memo.init(memo_mem, services, probes)) {
        std::fprintf(stderr, "render_dump: no memory for the text memo\n");
        return 1;
    }
    if (!same_status_with_memo(fx.ctx)) {
        std::fprintf(stderr, "render_dump: /status differs with a text memo\n");
        return 1;
    }
    if (do_bench) {
        const std::string_view only = argc > 3 ? argv[3] : "";
        std::printf("varied: every state, 0-20 deaths a service (16 kept), errors, texts\n");
        run_bench(only, fx.ctx);
        // A healthy appliance: every service ready with 0-2 deaths, every
        // probe ready.
        fx.snap.begin_publish();
        for (std::uint32_t i = 0; i < services; ++i) {
            ServiceStatus s = make_service(i);
            s.state = ServiceState::ready;
            s.reason = Reason::ready_notified;
            s.pid = static_cast<int>(1000 + i);
            s.started_ns = now_ns - 3600 * s_ns;
            s.death_count = i % 3;
            s.last_error = ServiceError{};
            s.status_text = std::string_view();
            (void)fx.snap.put_service(i, s);
        }
        for (std::uint32_t i = 0; i < probes; ++i) {
            ProbeStatus p = make_probe(i);
            p.state = ProbeState::ready;
            p.phase = ProbePhase::polling;
            p.last_error = ProbeError{};
            (void)fx.snap.put_probe(i, p);
        }
        fx.snap.end_publish();
        if (!same_status_with_memo(fx.ctx)) {
            std::fprintf(stderr, "render_dump: /status differs with a text memo (healthy)\n");
            return 1;
        }
        std::printf("healthy: every service ready with 0-2 deaths, every probe ready\n");
        run_bench(only, fx.ctx);
    }
    return 0;
}

namespace {

void run_bench(std::string_view only, const status::render_context& ctx) {
    {
        if (only.empty() || only == "status") {
            bench("/status", status::doc::status_json, ctx);
            // As the server renders it: with the memo (filled by the first
            // render, every record unchanged after).
            status::render_context with = ctx;
            with.memo = &memo;
            bench("/status+", status::doc::status_json, with);
            // The memo's worst case: every record with a time rendered
            // again (and kept again) each time.
            bench("/status+ miss", status::doc::status_json, with, true);
        }
        if (only.empty() || only == "metrics") {
            bench("/metrics", status::doc::metrics, ctx);
            // As the server renders it: with a metrics scratch.
            status::render_context with = ctx;
            with.scratch = &scratch;
            bench("/metrics+", status::doc::metrics, with);
        }
        if (only.empty() || only == "health") {
            bench("/health", status::doc::health_text, ctx);
        }
    }
}

} // namespace
