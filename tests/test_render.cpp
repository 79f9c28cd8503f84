// src/status/render: the control plane's documents from a hand-built
// snapshot. Fields and escaping, RFC 3339 times against gmtime_r, the
// resumable fill() (through a buffer of exactly item_max bytes, emptied
// after every call, a document concatenates to the same bytes as in one
// big buffer; no item is ever cut), the worst-case items within item_max,
// the metrics' family grouping, the /health status, and /status through
// the text memo (the same bytes as without it, whatever changed in
// between: records, the clocks, a full pool). The real clients
// (jq, promtool, prometheus_client) read render_dump's output in
// test_render.sh.
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <set>
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
#include "doctest.hpp"
#include "status/render.hpp"
#include "status/snapshot.hpp"

using namespace custos;
using namespace std::string_view_literals;
using status::doc;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t now = 500 * sec;
constexpr std::int64_t wall_now = 1'796'630'572'123'000'000; // 2026-12-07T08:02:52.123Z

constexpr doc all_docs[] = {
    doc::health_text,  doc::health_json, doc::status_json,  doc::status_tsv,    doc::service_json,
    doc::service_text, doc::probe_json,  doc::monitor_json, doc::watchdog_json, doc::metrics};

// Eight services, one per state; three probes, one per state; two monitors.
struct world {
    arena mem;
    status::snapshot snap;
    io::reactor_stats reactor;
    status::control_counters control;
    status::process_info process;
    status::render_context ctx;

    explicit world(std::uint32_t services = service_state_count, std::uint32_t probes = 3,
                   std::uint32_t monitors = 2) {
        REQUIRE(mem.reserve(status::snapshot::footprint(services, probes, monitors)));
        REQUIRE(snap.init(mem, services, probes, monitors));
        ctx.snap = &snap;
        ctx.version = "0.1.0";
        ctx.backend = "epoll";
        ctx.backend_reason = "epoll: CUSTOS_BACKEND=epoll";
        ctx.boot_id = "b00t";
        ctx.pid = 77;
        ctx.now_ns = now;
        ctx.wall_now_ns = wall_now;
        ctx.started_ns = 10 * sec;
        ctx.reactor = &reactor;
        ctx.control = &control;
        ctx.process = &process;
        snap.begin_publish();
        for (std::uint32_t i = 0; i < services; ++i) {
            (void)snap.put_service(i, service(i));
        }
        for (std::uint32_t p = 0; p < probes; ++p) {
            (void)snap.put_probe(p, probe(p));
        }
        for (std::uint32_t m = 0; m < monitors; ++m) {
            MonitorStatus s;
            s.name = m == 0 ? "poller"sv : "uploader-task"sv;
            s.state = m == 0 ? MonitorState::running : MonitorState::wedged;
            s.started_ns = now - 30 * sec;
            (void)snap.put_monitor(m, s);
        }
        HealthStatus h;
        h.health = Health::degraded;
        h.since_ns = now - sec;
        h.reason_count = 1;
        h.reason_total = 1;
        h.reasons[0].name = "crashy"sv;
        h.reasons[0].state = "failed"sv;
        h.reasons[0].reason = Reason::max_restarts_exhausted;
        (void)snap.put_health(h);
        snap.end_publish();
    }

    static ServiceStatus service(std::uint32_t i) {
        ServiceStatus s;
        static constexpr std::string_view names[] = {"idle", "waiter", "starter", "runner",
                                                     "netd", "crashy", "stopper", "broken"};
        s.name = names[i % 8];
        s.state = static_cast<ServiceState>(i % service_state_count);
        s.wanted = s.state != ServiceState::stopped;
        s.reason = Reason::spawned;
        s.since_ns = now - 2 * sec;
        if (s.state == ServiceState::running || s.state == ServiceState::ready) {
            s.pid = static_cast<int>(100 + i);
            s.started_ns = now - 3 * sec;
            s.output_bytes = 1000 + i;
            s.output_dropped_bytes = i;
        }
        if (s.state == ServiceState::backoff) {
            s.restart_at_ns = now + 1500 * 1'000'000;
            s.last_exit = ExitInfo{41, 0, 9, false};
            s.death_count = 20;
            for (std::size_t k = 0; k < death_history_capacity; ++k) {
                s.deaths[k].at_ns = now - static_cast<std::int64_t>(20 - k) * sec;
                s.deaths[k].exit = ExitInfo{static_cast<int>(k + 1), static_cast<int>(k), 0, false};
                s.deaths[k].reason = Reason::process_exited;
            }
            s.restarts_by_cause[static_cast<int>(RestartCause::crash)] = 18;
            s.restarts_by_cause[static_cast<int>(RestartCause::operator_)] = 2;
            s.restarts = 5;
            s.status_text = "say \"hi\"\nback\\slash\t\x01\x7f caf\xc3\xa9 bad\xff"sv;
        }
        if (s.state == ServiceState::failed) {
            s.reason = Reason::max_restarts_exhausted;
            s.last_error.reason = Reason::exec_failed;
            s.last_error.sys_errno = ENOENT;
            s.last_error.message = "execve /opt/missing"sv;
            s.last_error.since_ns = now - 4 * sec;
            s.last_exit = ExitInfo{55, 0, 11, true};
        }
        return s;
    }

    static ProbeStatus probe(std::uint32_t p) {
        ProbeStatus s;
        s.name = p == 0 ? "broker"sv : p == 1 ? "cloud"sv : "disk"sv;
        s.kind = p == 2 ? ProbeKind::file : ProbeKind::tcp;
        s.state = static_cast<ProbeState>(p % 3);
        s.checks = 9;
        if (p != 0) {
            s.last_check_ns = now - 10 * sec;
            s.last_success_ns = now - 10 * sec + 2'500'000;
            s.next_check_ns = now + 50 * sec;
        }
        if (s.state == ProbeState::down) {
            s.last_failure_ns = now - 10 * sec + 3'000'000;
            s.last_error.reason = Reason::probe_not_writable;
            s.last_error.message = "/data: Read-only file system"sv;
            s.last_error.since_ns = now - 60 * sec;
        }
        return s;
    }
};

std::string render(const status::render_context& ctx, doc kind, std::uint32_t index = 0) {
    static char big[1 << 20];
    text_out out(big, sizeof big);
    REQUIRE(status::render_all(kind, ctx, out, index));
    return std::string(out.view());
}

// The document through a buffer of `cap` bytes, emptied after each fill().
// Every chunk but the last must be non-empty (progress) and within `cap`.
std::string render_chunked(const status::render_context& ctx, doc kind, std::size_t cap,
                           std::uint32_t index = 0) {
    std::vector<char> buf(cap);
    status::document d;
    d.begin(kind, ctx, index);
    std::string all;
    for (int round = 0; round < 100'000; ++round) {
        text_out out(buf.data(), buf.size());
        const bool done = d.fill(out);
        CHECK_FALSE(out.overflowed());
        all.append(out.view());
        if (done) {
            CHECK(d.done());
            return all;
        }
        REQUIRE(out.size() > 0);
    }
    FAIL("fill() made no progress");
    return all;
}

bool contains(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (at < s.size()) {
        std::size_t nl = s.find('\n', at);
        REQUIRE(nl != std::string::npos); // every line ends with a newline
        out.push_back(s.substr(at, nl - at));
        at = nl + 1;
    }
    return out;
}

std::string time_of(std::int64_t at_ns, const status::render_context& ctx) {
    char b[64];
    text_out out(b, sizeof b);
    status::put_time(out, at_ns, ctx);
    return std::string(out.view());
}

} // namespace

TEST_CASE("put_time: RFC 3339 UTC with milliseconds, as gmtime_r says; null when unknown") {
    status::render_context ctx;
    ctx.now_ns = now;
    ctx.wall_now_ns = wall_now;
    CHECK(time_of(now, ctx) == "\"2026-12-07T08:02:52.123Z\"");
    CHECK(time_of(now - 52 * sec - 123'000'000, ctx) == "\"2026-12-07T08:02:00.000Z\"");
    CHECK(time_of(0, ctx) == "null");
    {
        // Past 2038 and before 1901, without time_t: fixed answers.
        status::render_context far;
        far.now_ns = 0;
        far.wall_now_ns = 1;
        CHECK(time_of(4'107'542'400'000'000'000 - 1, far) == "\"2100-03-01T00:00:00.000Z\"");
        CHECK(time_of(-2'208'988'800'000'000'000 - 1, far) == "\"1900-01-01T00:00:00.000Z\"");
    }
    ctx.wall_now_ns = 0;
    CHECK(time_of(now, ctx) == "null");

    // Against gmtime_r, over leap days, century years and before 1970.
    const std::int64_t walls_ms[] = {0,
                                     -1,
                                     951'782'400'000,   // 2000-02-29
                                     1'709'251'199'999, // 2024-02-29T23:59:59.999
                                     4'107'542'400'000, // 2100-03-01
                                     -2'208'988'800'000,
                                     9'223'372'036'853};
    for (std::int64_t ms : walls_ms) {
        // A 32-bit time_t (armhf's glibc by default) cannot hold the
        // reference for dates past 2038 or before 1901: only the renderer
        // can (it does not use time_t); the fixed dates above check it.
        if (sizeof(std::time_t) < 8 && (ms / 1000 > INT32_MAX || ms / 1000 < INT32_MIN)) {
            continue;
        }
        ctx.now_ns = 0;
        ctx.wall_now_ns = 1; // wall = 1 - (0 - at) = at + 1
        const std::int64_t at = ms * 1'000'000 - 1;
        const std::time_t t = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        std::tm tm{};
        REQUIRE(gmtime_r(&t, &tm) != nullptr);
        char want[64];
        std::strftime(want, sizeof want, "\"%Y-%m-%dT%H:%M:%S", &tm);
        const std::int64_t frac = ((ms % 1000) + 1000) % 1000;
        std::string expect =
            std::string(want) + "." + std::to_string(1000 + frac).substr(1) + "Z\"";
        CHECK_MESSAGE(time_of(at, ctx) == expect, "wall ms ", ms);
    }
}

TEST_CASE("service JSON: every field, escaping, deaths oldest first, nulls") {
    world w;
    const std::string backoff = render(w.ctx, doc::service_json, 5);
    CHECK(backoff.back() == '\n');
    CHECK(contains(backoff,
                   R"({"name":"crashy","wanted":true,"state":"backoff","ready":false,)"
                   R"("pid":null,"since":"2026-12-07T08:02:50.123Z","uptime_s":null,)"
                   R"("reason":"Spawned","restarts":{"total":20,"since_stable":5,)"
                   R"("crash":18,"probe":0,"watchdog":0,"operator":2,"dependency":0},)"
                   R"("last_exit":{"pid":41,"code":0,"signal":9,"signal_name":"SIGKILL",)"
                   R"("core_dumped":false},"backoff_remaining_s":1.500,"last_error":null,)"));
    // STATUS= text: quotes, backslash, newline, tab, control bytes escaped;
    // valid UTF-8 kept, a malformed byte replaced.
    CHECK(contains(backoff,
                   R"("status_text":"say \"hi\"\nback\\slash\t\u0001\u007f café bad\ufffd")"));
    CHECK(contains(backoff, R"("deaths_total":20,"output":{"bytes":0,"dropped_bytes":0},)"
                            R"("deaths":[{"at":"2026-12-07T08:02:32.123Z",)"
                            R"("reason":"ProcessExited","pid":1,"code":0,"signal":0,)"
                            R"("signal_name":null,"core_dumped":false},)"));
    CHECK(contains(backoff,
                   R"({"at":"2026-12-07T08:02:47.123Z","reason":"ProcessExited","pid":16,)"));
    CHECK(backoff.find("\"at\"") != std::string::npos);
    std::size_t deaths = 0;
    for (std::size_t at = 0; (at = backoff.find("\"at\":", at)) != std::string::npos; ++at) {
        ++deaths;
    }
    CHECK(deaths == death_history_capacity);

    const std::string ready = render(w.ctx, doc::service_json, 4);
    CHECK(contains(ready, R"("state":"ready","ready":true,"pid":104,)"));
    CHECK(contains(ready, R"("uptime_s":3.000,)"));
    CHECK(contains(ready, R"("last_exit":null,"backoff_remaining_s":null,"last_error":null,)"
                          R"("status_text":"","deaths_total":0,)"
                          R"("output":{"bytes":1004,"dropped_bytes":4},"deaths":[]})"));

    const std::string failed = render(w.ctx, doc::service_json, 7);
    CHECK(contains(failed, R"("reason":"MaxRestartsExhausted")"));
    CHECK(contains(failed, R"("last_error":{"reason":"ExecFailed","errno":2,)"
                           R"("message":"execve /opt/missing","resolution":")"));
    CHECK(contains(failed, R"("since":"2026-12-07T08:02:48.123Z"})"));
    CHECK(contains(failed, R"("signal":11,"signal_name":"SIGSEGV","core_dumped":true)"));
}

TEST_CASE("JSON strings: a byte that escapes anywhere in a plain text, near the 8-byte steps") {
    // put_str copies plain texts eight bytes a step: an escaped byte at every
    // position, before, across and after a step, must come out as alone.
    struct special {
        std::string_view raw;
        std::string_view json;
    };
    constexpr special specials[] = {
        {"\"", "\\\""},
        {"\\", "\\\\"},
        {"\n", "\\n"},
        {"\x01", "\\u0001"},
        {"\x7f", "\\u007f"},
        {"\xff", "\\ufffd"},
        {"caf\xc3\xa9", "caf\xc3\xa9"},
    };
    const std::string plain = "abcdefghijklmnopqrstuvwx";
    for (const special& sp : specials) {
        for (std::size_t at = 0; at <= plain.size(); ++at) {
            world w;
            ServiceStatus s = w.service(0);
            const std::string raw = plain.substr(0, at) + std::string(sp.raw) + plain.substr(at);
            s.status_text = std::string_view(raw);
            w.snap.begin_publish();
            (void)w.snap.put_service(0, s);
            w.snap.end_publish();
            const std::string want = "\"status_text\":\"" + plain.substr(0, at) +
                                     std::string(sp.json) + plain.substr(at) + "\"";
            CAPTURE(at);
            CHECK(contains(render(w.ctx, doc::service_json, 0), want));
        }
    }
}

TEST_CASE("status JSON: the sections in order, probes, monitors, counters") {
    world w;
    w.reactor.syscalls = 99;
    w.control.by_code[status::code_index(404)] = 3;
    const std::string s = render(w.ctx, doc::status_json);
    CHECK(s.rfind(R"({"runtime":{"version":"0.1.0","backend":"epoll",)", 0) == 0);
    CHECK(contains(s, R"("pid":77,"uptime_s":490.000,"boot_id":"b00t","previous_boot":null,)"
                      R"("now_ns":500000000000,"now":"2026-12-07T08:02:52.123Z"},)"));
    CHECK(contains(s, R"("health":{"health":"degraded","since":"2026-12-07T08:02:51.123Z",)"));
    CHECK(contains(s, R"("reasons":[{"kind":"service","name":"crashy","critical":false,)"));
    CHECK(contains(s, R"(],"reasons_total":1},"services":[{"name":"idle")"));
    const auto pos = [&](std::string_view k) { return s.find(k); };
    CHECK(pos("\"services\":[") < pos("\"probes\":["));
    CHECK(pos("\"probes\":[") < pos("\"monitors\":["));
    CHECK(pos("\"monitors\":[") < pos("\"watchdog\":{"));
    CHECK(pos("\"watchdog\":{") < pos("\"counters\":{"));
    CHECK(s.size() >= 3);
    CHECK(s.substr(s.size() - 3) == "}}\n");
    CHECK(contains(s, R"({"name":"cloud","kind":"tcp","state":"ready","phase":"startup",)"
                      R"("checking":false,"last_check":"2026-12-07T08:02:42.123Z",)"
                      R"("last_success":"2026-12-07T08:02:42.125Z","last_failure":null,)"
                      R"("last_duration_s":0.002,"next_check_in_s":50.000,)"));
    CHECK(contains(s, R"({"name":"broker","kind":"tcp","state":"unknown","phase":"startup",)"
                      R"("checking":false,"last_check":null,"last_success":null,)"
                      R"("last_failure":null,"last_duration_s":null,"next_check_in_s":null,)"));
    // A probe without a resolution of its own gets its reason's.
    const std::string disk = render(w.ctx, doc::probe_json, 2);
    CHECK(contains(disk, R"("last_error":{"reason":"ProbeNotWritable","errno":0,)"
                         R"("message":"/data: Read-only file system","resolution":")"));
    CHECK_FALSE(contains(disk, R"("resolution":"")"));
    CHECK(
        contains(s, R"({"name":"uploader-task","state":"wedged","critical":false,"reason":null,)"));
    CHECK(contains(s, R"("last_crash":null,"degraded":null,"ticks":0,"tick_failures":0})"));
    CHECK(contains(s, R"("watchdog":{"device":"none","state":"off",)"));
    CHECK(contains(s, R"("reactor":{"ops_submitted":0,)"));
    CHECK(contains(s, R"("syscalls":99})"));
    CHECK(contains(s, R"("by_code":{"200":0,"400":0,"403":0,"404":3,"4xx":0,"413":0,"503":0,)"
                      R"("5xx":0},"clients":0,"max_clients":0}})"));

    w.ctx.reactor = nullptr;
    w.ctx.control = nullptr;
    w.ctx.wall_now_ns = 0;
    const std::string bare = render(w.ctx, doc::status_json);
    CHECK(contains(bare, R"("reactor":null,"control":null})"));
    CHECK(contains(bare, R"("now":null)"));
    CHECK_FALSE(contains(bare, "2026-"));
}

TEST_CASE("health: one line per check, the verdict last; its JSON; the HTTP status") {
    world w;
    const std::vector<std::string> lines = lines_of(render(w.ctx, doc::health_text));
    REQUIRE(lines.size() == service_state_count + 3 + 2 + 1);
    CHECK(lines[0] == "[+] idle stopped");
    CHECK(lines[1] == "[-] waiter waiting: Spawned");
    CHECK(lines[4] == "[+] netd ready");
    CHECK(lines[7] == "[-] broken failed: MaxRestartsExhausted");
    CHECK(lines[8] == "[-] probe broker unknown: HealthStarting");
    CHECK(lines[9] == "[+] probe cloud ready");
    CHECK(lines[10] == "[-] probe disk down: ProbeNotWritable");
    CHECK(lines[11] == "[+] monitor poller running");
    CHECK(lines[12] == "[-] monitor uploader-task wedged: MonitorWedged");
    CHECK(lines[13] == "health: degraded");

    const std::string j = render(w.ctx, doc::health_json);
    CHECK(j.rfind(R"({"health":"degraded",)", 0) == 0);
    CHECK(contains(j, R"(],"reasons_total":1,"checks":[{"kind":"service","name":"idle",)"
                      R"("state":"stopped","ok":true,"reason":null},)"));
    CHECK(contains(j, R"({"kind":"probe","name":"disk","state":"down","ok":false,)"
                      R"("reason":"ProbeNotWritable"})"));
    CHECK(j.substr(j.size() - 3) == "]}\n");

    HealthStatus h;
    h.health = Health::starting;
    CHECK(status::health_http_status(h) == 503);
    h.health = Health::ok;
    CHECK(status::health_http_status(h) == 200);
    h.health = Health::degraded;
    CHECK(status::health_http_status(h) == 200);
    h.health = Health::failed;
    CHECK(status::health_http_status(h) == 503);
}

TEST_CASE("TSV: one line per service, eight fields, no tab or newline inside") {
    world w;
    const std::vector<std::string> lines = lines_of(render(w.ctx, doc::status_tsv));
    REQUIRE(lines.size() == service_state_count);
    for (const std::string& l : lines) {
        CHECK(std::count(l.begin(), l.end(), '\t') == 7);
    }
    CHECK(lines[0] == "idle\tstopped\t0\t-\t0\t-\tSpawned\tno");
    CHECK(lines[4] == "netd\tready\t104\t3.000\t0\t-\tSpawned\tyes");
    CHECK(lines[5] == "crashy\tbackoff\t0\t-\t20\tsignal SIGKILL\tSpawned\tyes");
    CHECK(lines[7] == "broken\tfailed\t0\t-\t0\tsignal SIGSEGV (core)\tMaxRestartsExhausted\tyes");
}

TEST_CASE("service text: the human detail") {
    world w;
    const std::string t = render(w.ctx, doc::service_text, 5);
    CHECK(t.rfind("crashy: backoff (Spawned) since 2026-12-07T08:02:50.123Z (2.000 s ago)\n", 0) ==
          0);
    CHECK(contains(t, "\n  backoff:     restart in 1.500 s\n"));
    CHECK(contains(t, "\n  restarts:    20 (since stable 5; crash 18, probe 0, watchdog 0, "
                      "operator 2, dependency 0)\n"));
    CHECK(contains(t,
                   "\n  deaths:      20 (the last 16, oldest first)\n"
                   "    2026-12-07T08:02:32.123Z (20.000 s ago)  exit 0 (pid 1)  ProcessExited\n"));
    // The STATUS= text cannot reach the terminal raw.
    CHECK(contains(t, R"(  status:      "say \"hi\"\nback\\slash\t\u0001\u007f café bad\ufffd")"));
    const std::string f = render(w.ctx, doc::service_text, 7);
    CHECK(contains(f, "\n  last error:  ExecFailed: \"execve /opt/missing\" (errno 2), "
                      "2026-12-07T08:02:48.123Z (4.000 s ago)\n  resolution:  "));
}

TEST_CASE("metrics: HELP and TYPE once before each family, its samples together") {
    world w;
    const std::string m = render(w.ctx, doc::metrics);
    const std::vector<std::string> lines = lines_of(m);
    std::set<std::string> typed;
    std::set<std::string> helped;
    std::string current;
    std::size_t samples = 0;
    for (const std::string& l : lines) {
        REQUIRE_FALSE(l.empty());
        if (l.rfind("# HELP ", 0) == 0) {
            const std::string name = l.substr(7, l.find(' ', 7) - 7);
            CHECK_MESSAGE(helped.insert(name).second, "HELP twice: ", name);
            continue;
        }
        if (l.rfind("# TYPE ", 0) == 0) {
            current = l.substr(7, l.find(' ', 7) - 7);
            CHECK_MESSAGE(helped.count(current) == 1, "TYPE before HELP: ", current);
            CHECK_MESSAGE(typed.insert(current).second, "TYPE twice: ", current);
            continue;
        }
        // A sample of the family whose TYPE came last.
        const std::string name = l.substr(0, l.find_first_of("{ "));
        CHECK_MESSAGE(name == current, "sample out of its family: ", l);
        ++samples;
    }
    CHECK(typed.size() == helped.size());
    CHECK(contains(m, "custos_service_state{service=\"crashy\",state=\"backoff\"} 1\n"));
    CHECK(contains(m, "custos_service_up{service=\"runner\"} 1\n"));
    CHECK(contains(m, "custos_service_ready{service=\"runner\"} 0\n"));
    CHECK(contains(m, "custos_service_restarts_total{service=\"crashy\",cause=\"operator\"} 2\n"));
    CHECK(contains(m, "custos_service_start_time_seconds{service=\"netd\"} 1796630569.123\n"));
    CHECK(contains(m, "custos_service_output_bytes_total{service=\"netd\"} 1004\n"));
    CHECK(contains(m, "custos_service_output_dropped_bytes_total{service=\"netd\"} 4\n"));
    CHECK(contains(m, "custos_service_start_time_seconds{service=\"crashy\"} 0.000\n"));
    CHECK(contains(m, "custos_probe_duration_seconds{probe=\"cloud\"} 0.002500\n"));
    CHECK(contains(m, "custos_monitor_state{monitor=\"uploader-task\",state=\"wedged\"} 1\n"));
    CHECK(contains(m, "custos_watchdog_state{state=\"off\"} 1\n"));
    CHECK(contains(m, "custos_build_info{version=\"0.1.0\",backend=\"epoll\"} 1\n"));
    CHECK(typed.count("process_cpu_seconds_total") == 1);
    CHECK(typed.count("custos_reactor_syscalls_total") == 1);
    CHECK(typed.count("custos_control_requests_total") == 1);
    CHECK(samples > 100);

    w.ctx.reactor = nullptr;
    w.ctx.control = nullptr;
    w.ctx.process = nullptr;
    const std::string bare = render(w.ctx, doc::metrics);
    CHECK_FALSE(contains(bare, "process_"));
    CHECK_FALSE(contains(bare, "custos_reactor_"));
    CHECK_FALSE(contains(bare, "custos_control_"));
    CHECK(contains(bare, "custos_runtime_spawns_total 0\n"));
}

TEST_CASE("resumable: through an item_max buffer, every document is the same bytes") {
    world w;
    for (doc kind : all_docs) {
        for (std::uint32_t index : {0u, 5u}) {
            const std::string whole = render(w.ctx, kind, index);
            CHECK(render_chunked(w.ctx, kind, status::item_max, index) == whole);
            CHECK(render_chunked(w.ctx, kind, status::item_max + 1, index) == whole);
            CHECK(render_chunked(w.ctx, kind, 16384, index) == whole);
        }
    }
}

namespace {

// Every text at its capacity, every byte one that escapes to six.
template <std::size_t N>
FixedText<N> worst() {
    std::string s(N, '\x01');
    return std::string_view(s);
}

} // namespace

TEST_CASE("worst-case items fit in item_max; a 64-service document goes out chunk by chunk") {
    world w(64, 64, 16);
    ServiceStatus s = world::service(5);
    s.name = std::string_view(std::string(name_capacity, 'n'));
    s.status_text = worst<status_text_capacity>();
    s.last_error.reason = Reason::restart_intensity_exceeded;
    s.last_error.sys_errno = -2147483647;
    s.last_error.message = worst<service_error_message_capacity>();
    s.last_error.since_ns = now;
    s.last_exit = ExitInfo{-2147483647, -2147483647, 64, true};
    s.pid = -2147483647;
    s.started_ns = -1;
    s.death_count = ~std::uint64_t{0};
    for (DeathRecord& d : s.deaths) {
        d = DeathRecord{1, ExitInfo{-2147483647, -2147483647, 64, true},
                        Reason::max_restarts_exhausted};
    }
    for (std::uint64_t& r : s.restarts_by_cause) {
        r = ~std::uint64_t{0} / 8;
    }
    ProbeStatus p = world::probe(2);
    p.name = s.name;
    p.last_error.message = worst<probe_message_capacity>();
    p.last_error.resolution = worst<probe_resolution_capacity>();
    p.last_error.reason = Reason::probe_connect_refused;
    MonitorStatus m;
    m.name = s.name;
    m.last_crash = MonitorError{Reason::restart_intensity_exceeded, -2147483647,
                                worst<monitor_message_capacity>(), now};
    m.degraded = m.last_crash;
    m.last_failure = m.last_crash;
    HealthStatus h;
    h.reason_count = health_reason_capacity;
    h.reason_total = ~std::uint32_t{0};
    h.summary = worst<health_summary_capacity>();
    for (HealthReason& r : h.reasons) {
        r.name = s.name;
        r.state = worst<15>();
        r.reason = Reason::restart_intensity_exceeded;
        r.message = worst<health_message_capacity>();
        r.resolution = worst<health_resolution_capacity>();
        r.since_ns = now;
    }
    WatchdogStatus wd;
    wd.board = worst<31>();
    wd.path = worst<63>();
    wd.identity = worst<31>();
    wd.notice = worst<watchdog_text_capacity>();
    wd.hold_by = worst<31>();
    wd.previous.cls = ResetClass::restarted;
    wd.previous.subject = worst<watchdog_text_capacity>();
    wd.previous.message = worst<watchdog_text_capacity>();
    wd.previous.boot_id = worst<36>();
    std::string long_reason(256, '\x01');
    w.ctx.backend_reason = long_reason;
    w.ctx.boot_id = std::string_view(long_reason).substr(0, 36);
    w.snap.begin_publish();
    for (std::uint32_t i = 0; i < 64; ++i) {
        (void)w.snap.put_service(i, s);
        (void)w.snap.put_probe(i, p);
    }
    for (std::uint32_t i = 0; i < 16; ++i) {
        (void)w.snap.put_monitor(i, m);
    }
    (void)w.snap.put_health(h);
    (void)w.snap.put_watchdog(wd);
    w.snap.end_publish();

    for (doc kind : all_docs) {
        const std::string whole = render(w.ctx, kind, 3);
        CHECK(render_chunked(w.ctx, kind, status::item_max, 3) == whole);
    }
    // The largest items, for the margin under item_max.
    const std::size_t service = render(w.ctx, doc::service_json, 3).size();
    const std::size_t probe = render(w.ctx, doc::probe_json, 3).size();
    const std::size_t watchdog = render(w.ctx, doc::watchdog_json).size();
    MESSAGE("worst-case items: service ", service, ", probe ", probe, ", watchdog ", watchdog,
            " bytes; item_max ", status::item_max);
    CHECK(service < status::item_max);
    CHECK(probe < status::item_max);
    CHECK(watchdog < status::item_max);
}

TEST_CASE("a buffer smaller than item_max: the document ends cut, render_all says so") {
    world w;
    char small[100];
    text_out out(small, sizeof small);
    status::document d;
    d.begin(doc::status_json, w.ctx);
    CHECK(d.fill(out)); // ended: the head cannot fit
    CHECK(d.done());
    CHECK(out.overflowed());
    out.clear();
    CHECK_FALSE(status::render_all(doc::status_json, w.ctx, out));

    // A buffer already holding something: the item waits for the next one.
    char buf[status::item_max];
    text_out part(buf, sizeof buf);
    part.put(std::string(status::item_max - 10, 'x'));
    d.begin(doc::service_json, w.ctx, 5);
    CHECK_FALSE(d.fill(part));
    CHECK_FALSE(part.overflowed());
    CHECK(part.size() == status::item_max - 10);
    part.clear();
    CHECK(d.fill(part));
    CHECK(std::string(part.view()) == render(w.ctx, doc::service_json, 5));
}

TEST_CASE("an empty table: valid documents with empty arrays and bare families") {
    world w(0, 0, 0);
    const std::string s = render(w.ctx, doc::status_json);
    CHECK(contains(s, R"("services":[],"probes":[],"monitors":[],"watchdog":)"));
    CHECK(render(w.ctx, doc::status_tsv).empty());
    CHECK(render(w.ctx, doc::health_text) == "health: degraded\n");
    const std::string m = render(w.ctx, doc::metrics);
    CHECK(contains(m, "# TYPE custos_service_state gauge\n# HELP custos_service_up "));
}

TEST_CASE("code_index and code_label: the by_code slots") {
    CHECK(status::code_label(status::code_index(200)) == "200");
    CHECK(status::code_label(status::code_index(204)) == "200");
    CHECK(status::code_label(status::code_index(400)) == "400");
    CHECK(status::code_label(status::code_index(403)) == "403");
    CHECK(status::code_label(status::code_index(404)) == "404");
    CHECK(status::code_label(status::code_index(405)) == "4xx");
    CHECK(status::code_label(status::code_index(409)) == "4xx");
    CHECK(status::code_label(status::code_index(408)) == "413");
    CHECK(status::code_label(status::code_index(413)) == "413");
    CHECK(status::code_label(status::code_index(431)) == "413");
    CHECK(status::code_label(status::code_index(503)) == "503");
    CHECK(status::code_label(status::code_index(504)) == "5xx");
    CHECK(status::code_label(status::code_index(500)) == "5xx");
    for (std::size_t i = 0; i < std::size(status::control_counters{}.by_code); ++i) {
        CHECK(status::code_index(std::stoi(i == 4   ? "405"
                                           : i == 7 ? "500"
                                                    : std::string(status::code_label(i)))) == i);
    }
}

TEST_CASE("a health published between two fill() calls: the reasons array stays well-formed") {
    world w;
    auto publish_reasons = [&](std::uint32_t n) {
        HealthStatus h;
        h.health = Health::degraded;
        h.reason_count = n;
        h.reason_total = n;
        for (std::uint32_t k = 0; k < n; ++k) {
            h.reasons[k].name = "crashy"sv;
            h.reasons[k].reason = Reason::max_restarts_exhausted;
        }
        w.snap.begin_publish();
        (void)w.snap.put_health(h);
        w.snap.end_publish();
    };
    for (std::uint32_t after : {0u, 2u, 8u}) {
        publish_reasons(5);
        // A buffer that takes the head and about one reason at a time.
        std::vector<char> buf(status::item_max);
        status::document d;
        d.begin(doc::health_json, w.ctx);
        std::string all;
        int fills = 0;
        for (;;) {
            text_out out(buf.data(), buf.size());
            out.put(std::string(status::item_max - 700, ' ')); // room for about one item
            const bool done = d.fill(out);
            all.append(out.view().substr(status::item_max - 700));
            if (++fills == 2) {
                publish_reasons(after); // fewer or more reasons from the next item on
            }
            if (done) {
                break;
            }
        }
        CHECK(fills > 3);
        CHECK_FALSE(contains(all, "[,"));
        CHECK_FALSE(contains(all, ",,"));
        CHECK_FALSE(contains(all, ",]"));
        CHECK(contains(all, "],\"reasons_total\":" + std::to_string(after) + ",\"checks\":["));
    }
}

namespace {

// A text memo for a world's room, in an arena of its own.
struct memo_for {
    arena mem;
    status::text_memo memo;
    explicit memo_for(std::uint32_t services, std::uint32_t probes) {
        REQUIRE(mem.reserve(status::text_memo::footprint(services, probes)));
        REQUIRE(memo.init(mem, services, probes));
    }
};

// /status with the memo must be what it is without.
void same_status(status::render_context& plain, status::text_memo& memo) {
    status::render_context with = plain;
    with.memo = &memo;
    const std::string want = render(plain, doc::status_json);
    CHECK(render(with, doc::status_json) == want);
    CHECK(render_chunked(with, doc::status_json, status::item_max) == want);
}

} // namespace

TEST_CASE("text memo: the same bytes as without, as time passes and the clocks drift") {
    world w;
    // Room for twice the table: every text fits (the backoff service's 16
    // deaths take ~3 KiB).
    memo_for m(2 * service_state_count, 6);
    const std::uint32_t records = service_state_count + 3;
    same_status(w.ctx, m.memo); // fills it, then replays it (the chunked render)
    CHECK(m.memo.stats().misses == records);
    CHECK(m.memo.stats().hits == records);
    CHECK(m.memo.stats().uncached == 0);

    // Time passes, the wall clock in step: uptime_s, backoff_remaining_s
    // and next_check_in_s are written afresh, the rest replayed.
    for (std::int64_t step :
         {std::int64_t{1'234'567}, std::int64_t{250'000'000}, 3 * sec, 2 * sec}) {
        w.ctx.now_ns += step;
        w.ctx.wall_now_ns += step;
        const auto hits = m.memo.stats().hits;
        same_status(w.ctx, m.memo);
        CHECK(m.memo.stats().hits == hits + 2 * records);
    }
    CHECK(m.memo.stats().misses == records);

    // The clocks drift apart by 1 ns, then 100 us at a time: a text stays
    // while each of its times keeps its millisecond, and only then.
    w.ctx.wall_now_ns += 1;
    same_status(w.ctx, m.memo);
    for (int k = 0; k < 25; ++k) {
        w.ctx.wall_now_ns += 100'000;
        same_status(w.ctx, m.memo);
    }
    CHECK(m.memo.stats().misses > records);
    // Backwards too (a step of the wall clock), and a wall clock unknown.
    w.ctx.wall_now_ns -= 5 * sec + 999'999;
    same_status(w.ctx, m.memo);
    const std::int64_t wall = w.ctx.wall_now_ns;
    w.ctx.wall_now_ns = 0;
    same_status(w.ctx, m.memo);
    CHECK(contains(render(w.ctx, doc::status_json), "\"since\":null"));
    w.ctx.wall_now_ns = wall;
    same_status(w.ctx, m.memo);
}

TEST_CASE("text memo: a record stored again is rendered again, mid-document too") {
    world w;
    memo_for m(2 * service_state_count, 6);
    same_status(w.ctx, m.memo);

    // Stored between two requests: only it misses.
    ServiceStatus s = world::service(3);
    s.pid = 4242;
    s.status_text = "changed"sv;
    w.snap.begin_publish();
    REQUIRE(w.snap.put_service(3, s));
    ProbeStatus p = world::probe(1);
    p.checks = 10;
    REQUIRE(w.snap.put_probe(1, p));
    w.snap.end_publish();
    const auto misses = m.memo.stats().misses;
    same_status(w.ctx, m.memo);
    CHECK(m.memo.stats().misses == misses + 2);
    CHECK(contains(render(w.ctx, doc::status_json), "\"status_text\":\"changed\""));

    // Stored between two fill() calls of one document: the document with
    // the memo and one without, in step, change at the same point and
    // stay the same bytes (the records before it as they were, those
    // after it as they are).
    status::render_context with = w.ctx;
    with.memo = &m.memo;
    for (std::uint32_t changed : {0u, 4u, 7u}) {
        for (int when = 1; when < 4; ++when) {
            std::vector<char> b1(status::item_max);
            std::vector<char> b2(status::item_max);
            status::document d1;
            status::document d2;
            d1.begin(doc::status_json, w.ctx);
            d2.begin(doc::status_json, with);
            std::string all1;
            std::string all2;
            for (int fills = 1;; ++fills) {
                text_out o1(b1.data(), b1.size());
                text_out o2(b2.data(), b2.size());
                const bool done1 = d1.fill(o1);
                const bool done2 = d2.fill(o2);
                REQUIRE(done1 == done2);
                all1.append(o1.view());
                all2.append(o2.view());
                if (fills == when) {
                    ServiceStatus c = world::service(changed);
                    c.since_ns = now - static_cast<std::int64_t>(when) * sec - 7'000'000;
                    c.restarts = static_cast<std::uint32_t>(when);
                    w.snap.begin_publish();
                    REQUIRE(w.snap.put_service(changed, c));
                    w.snap.end_publish();
                }
                if (done1) {
                    break;
                }
            }
            CHECK(all2 == all1);
            same_status(w.ctx, m.memo); // and after it
        }
    }
}

TEST_CASE("text memo: a full pool keeps what fits, and refills when most of it is stale") {
    world w;
    memo_for m(service_state_count, 3);
    const std::size_t pool = m.memo.pool_bytes();
    CHECK(pool == service_state_count * status::text_memo::service_text +
                      3 * status::text_memo::probe_text);
    // Every service in backoff with 16 deaths (~3 KiB of text each): only
    // a few fit, the others are rendered every time.
    w.snap.begin_publish();
    for (std::uint32_t i = 0; i < service_state_count; ++i) {
        ServiceStatus s = world::service(5);
        REQUIRE(s.state == ServiceState::backoff);
        s.pid = static_cast<int>(i); // each its own
        (void)w.snap.put_service(i, s);
    }
    w.snap.end_publish();
    same_status(w.ctx, m.memo);
    const auto uncached = m.memo.stats().uncached;
    CHECK(uncached > 0);
    CHECK(m.memo.stats().hits > 0);
    CHECK(m.memo.stats().resets == 0);
    // The services it keeps change, again and again: their old texts are
    // garbage, until the pool is dropped and refilled.
    for (std::uint32_t round = 1; round <= 8; ++round) {
        w.snap.begin_publish();
        for (std::uint32_t i = 0; i < service_state_count; ++i) {
            ServiceStatus s = world::service(5);
            s.pid = static_cast<int>(i);
            s.restarts = round;
            (void)w.snap.put_service(i, s);
        }
        w.snap.end_publish();
        same_status(w.ctx, m.memo);
    }
    CHECK(m.memo.stats().resets > 0);
    CHECK(m.memo.stats().uncached > uncached);
}

TEST_CASE("text memo: two-pass sizing, and nothing at all for an empty table") {
    arena mem;
    status::text_memo memo;
    REQUIRE(mem.reserve(0));
    CHECK_FALSE(memo.init(mem, 4, 2));
    CHECK(mem.needed() <= status::text_memo::footprint(4, 2));
    REQUIRE(mem.reserve(status::text_memo::footprint(4, 2)));
    CHECK(memo.init(mem, 4, 2));
    CHECK(memo.pool_bytes() ==
          4 * status::text_memo::service_text + 2 * status::text_memo::probe_text);
    arena none;
    REQUIRE(none.reserve(0));
    status::text_memo empty;
    CHECK(empty.init(none, 0, 0));
    CHECK(status::text_memo::footprint(0, 0) == 0);
}
