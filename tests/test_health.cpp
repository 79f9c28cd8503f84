// src/status/health: the derivation of one health from the status of the
// services, probes and monitors (a pure function: no runtime, no clock but
// the one passed in), and the model that keeps it and reports changes.
#include <csignal>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <custos/error.hpp>
#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/probe.hpp>
#include <custos/service.hpp>

#include "doctest.hpp"
#include "status/health.hpp"

using namespace custos;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t t0 = 1000 * sec; // the start

// A table's live state, as the runtime would hand it over.
struct world {
    std::vector<ServiceStatus> services;
    std::vector<char> service_critical; // vector<bool> has no data()
    std::vector<ProbeStatus> probes;
    std::vector<char> probe_critical;
    std::vector<std::int64_t> probe_grace;
    std::vector<MonitorStatus> monitors;
    std::int64_t boot_grace = 120 * sec;
    std::int64_t started = t0;
    std::int64_t now = t0 + 1 * sec;
    bool settled = false;
    // What the spans of bool point to (vector<bool> has no data()).
    bool sc[64] = {};
    bool pc[64] = {};

    std::size_t service(std::string_view name, ServiceState st, bool critical = false) {
        ServiceStatus s;
        s.name = name;
        s.state = st;
        s.since_ns = t0;
        services.push_back(s);
        service_critical.push_back(critical ? 1 : 0);
        return services.size() - 1;
    }
    std::size_t probe(std::string_view name, ProbeState st, bool critical = false,
                      std::int64_t grace = 60 * sec) {
        ProbeStatus p;
        p.name = name;
        p.state = st;
        probes.push_back(p);
        probe_critical.push_back(critical ? 1 : 0);
        probe_grace.push_back(grace);
        return probes.size() - 1;
    }
    // A probe down since `since`.
    std::size_t probe_down(std::string_view name, std::int64_t since, bool critical = false,
                           std::int64_t grace = 60 * sec) {
        std::size_t p = probe(name, ProbeState::down, critical, grace);
        probes[p].last_error.reason = Reason::probe_connect_refused;
        probes[p].last_error.sys_errno = 111;
        probes[p].last_error.message = std::string_view("connect 10.0.0.2:1883: refused");
        probes[p].last_error.since_ns = since;
        probes[p].last_failure_ns = since;
        return p;
    }
    std::size_t monitor(std::string_view name, MonitorState st, bool critical = false) {
        MonitorStatus m;
        m.name = name;
        m.state = st;
        m.critical = critical;
        m.since_ns = t0;
        monitors.push_back(m);
        return monitors.size() - 1;
    }

    status::health_input input() {
        for (std::size_t i = 0; i < service_critical.size(); ++i) {
            sc[i] = service_critical[i] != 0;
        }
        for (std::size_t i = 0; i < probe_critical.size(); ++i) {
            pc[i] = probe_critical[i] != 0;
        }
        status::health_input in;
        in.services = services;
        in.service_critical = std::span<const bool>(sc, service_critical.size());
        in.probes = probes;
        in.probe_critical = std::span<const bool>(pc, probe_critical.size());
        in.probe_grace_ns = probe_grace;
        in.monitors = monitors;
        in.boot_grace_ns = boot_grace;
        in.started_ns = started;
        in.now_ns = now;
        in.settled = settled;
        return in;
    }

    // Derives; returns the next deadline.
    std::int64_t derive(HealthStatus& out) { return status::derive(input(), out); }
    Health health() {
        HealthStatus out;
        status::derive(input(), out);
        return out.health;
    }
};

std::string summary(const HealthStatus& h) {
    return std::string(h.summary.view());
}

} // namespace

TEST_CASE("health: stable names") {
    CHECK(health_name(Health::starting) == "starting");
    CHECK(health_name(Health::ok) == "ok");
    CHECK(health_name(Health::degraded) == "degraded");
    CHECK(health_name(Health::failed) == "failed");
    CHECK(subject_kind_name(SubjectKind::service) == "service");
    CHECK(subject_kind_name(SubjectKind::probe) == "probe");
    CHECK(subject_kind_name(SubjectKind::monitor) == "monitor");
}

TEST_CASE("health: not started is starting, with no deadline") {
    world w;
    w.started = 0;
    w.service("web", ServiceState::stopped);
    HealthStatus h;
    CHECK(w.derive(h) == 0);
    CHECK(h.health == Health::starting);
    CHECK_FALSE(h.settled);
    CHECK(h.services == 0); // stopped: not wanted
    CHECK(summary(h) == "starting: 0/0 ready");
}

TEST_CASE("health: everything as wanted is ok, with counts and summary") {
    world w;
    w.service("web", ServiceState::ready, true);
    w.service("db", ServiceState::ready);
    w.service("old", ServiceState::stopped); // not wanted: not counted
    w.probe("broker", ProbeState::ready, true);
    HealthStatus h;
    CHECK(w.derive(h) == 0);
    CHECK(h.health == Health::ok);
    CHECK(h.settled);
    CHECK(h.critical_ready);
    CHECK(h.services == 2);
    CHECK(h.services_ready == 2);
    CHECK(h.probes == 1);
    CHECK(h.probes_ready == 1);
    CHECK(h.monitors == 0);
    CHECK(h.reason_total == 0);
    CHECK(h.reason_count == 0);
    CHECK(summary(h) == "2/2 ready");

    w.monitor("poller", MonitorState::running);
    w.monitor("uploader", MonitorState::running, true);
    w.monitor("done", MonitorState::stopped); // returned cleanly: not wanted
    w.derive(h);
    CHECK(h.health == Health::ok);
    CHECK(h.monitors == 2);
    CHECK(h.monitors_running == 2);
    CHECK(summary(h) == "2/2 ready, 2/2 monitors running");
}

TEST_CASE("health: settle rules") {
    SUBCASE("a wanted service neither ready nor failed keeps it starting") {
        for (ServiceState st :
             {ServiceState::waiting, ServiceState::starting, ServiceState::running,
              ServiceState::backoff, ServiceState::stopping}) {
            world w;
            w.service("a", ServiceState::ready);
            w.service("b", st);
            HealthStatus h;
            CHECK(w.derive(h) == t0 + 120 * sec); // the boot grace's end
            CHECK(h.health == Health::starting);
            CHECK_FALSE(h.settled);
            CHECK(summary(h) == "starting: 1/2 ready");
            // Listed while starting too: it is not as wanted.
            CHECK(h.reason_total == 1);
            CHECK(h.reasons[0].name == "b");
            CHECK(h.reasons[0].state == state_name(st));
        }
    }
    SUBCASE("a non-critical failed service settles, as degraded") {
        world w;
        w.service("a", ServiceState::ready);
        w.service("b", ServiceState::failed);
        HealthStatus h;
        CHECK(w.derive(h) == 0);
        CHECK(h.settled);
        CHECK(h.health == Health::degraded);
    }
    SUBCASE("a probe in unknown keeps it starting; down or ready settles it") {
        world w;
        w.service("a", ServiceState::ready);
        std::size_t p = w.probe("broker", ProbeState::unknown);
        HealthStatus h;
        w.derive(h);
        CHECK(h.health == Health::starting);
        CHECK(h.reason_total == 1);
        CHECK(h.reasons[0].kind == SubjectKind::probe);
        CHECK(h.reasons[0].reason == Reason::health_starting); // no failure yet
        CHECK(h.reasons[0].since_ns == t0);
        w.probes[p].state = ProbeState::ready;
        w.derive(h);
        CHECK(h.health == Health::ok);
        w.probes[p].state = ProbeState::down;
        w.probes[p].last_error.since_ns = w.now;
        w.derive(h);
        CHECK(h.settled);
        CHECK(h.health == Health::degraded);
    }
    SUBCASE("a wanted monitor waiting keeps it starting; backoff settles it") {
        world w;
        std::size_t m = w.monitor("poller", MonitorState::waiting);
        HealthStatus h;
        w.derive(h);
        CHECK(h.health == Health::starting);
        w.monitors[m].state = MonitorState::backoff;
        w.derive(h);
        CHECK(h.settled);
        CHECK(h.health == Health::degraded);
        w.monitors[m].state = MonitorState::running;
        w.derive(h);
        CHECK(h.health == Health::ok);
    }
    SUBCASE("once settled (the latch), a restart is degraded, not starting") {
        world w;
        w.service("a", ServiceState::starting);
        w.settled = true;
        HealthStatus h;
        CHECK(w.derive(h) == 0); // no boot grace to wait for
        CHECK(h.settled);
        CHECK(h.health == Health::degraded);
    }
    SUBCASE("critical_ready waits for every wanted critical service") {
        world w;
        w.service("a", ServiceState::ready, true);
        std::size_t b = w.service("b", ServiceState::running, true);
        w.service("c", ServiceState::running); // not critical: no matter
        HealthStatus h;
        w.derive(h);
        CHECK_FALSE(h.critical_ready);
        w.services[b].state = ServiceState::ready;
        w.derive(h);
        CHECK(h.critical_ready);
        CHECK_FALSE(h.settled);                      // c is still coming up
        w.services[b].state = ServiceState::stopped; // stopped: not wanted
        w.derive(h);
        CHECK(h.critical_ready);
    }
}

TEST_CASE("health: the boot grace bounds starting, and is the next deadline") {
    world w;
    w.boot_grace = 30 * sec;
    w.service("a", ServiceState::ready);
    w.service("slow", ServiceState::running);
    w.probe("broker", ProbeState::unknown);
    HealthStatus h;
    w.now = t0 + 29 * sec;
    CHECK(w.derive(h) == t0 + 30 * sec);
    CHECK(h.health == Health::starting);
    CHECK_FALSE(h.settled);

    w.now = t0 + 30 * sec; // the timer fires at the deadline
    CHECK(w.derive(h) == 0);
    CHECK(h.settled);
    CHECK(h.health == Health::degraded);
    REQUIRE(h.reason_count == 2);
    CHECK(h.reasons[0].name == "slow");
    CHECK(h.reasons[1].name == "broker");
    CHECK(h.reasons[1].state == "unknown");
    CHECK(h.reasons[1].reason == Reason::boot_grace_expired);
    CHECK(summary(h) == "degraded: slow running (Unknown) (+1 more)");

    SUBCASE("a boot grace of for ever: no timer, starting until settled") {
        w.boot_grace = std::numeric_limits<std::int64_t>::max();
        w.now = t0 + 100000 * sec;
        CHECK(w.derive(h) == 0);
        CHECK(h.health == Health::starting);
    }
    SUBCASE("boot_grace 0: settled at the start") {
        w.boot_grace = 0;
        w.now = t0;
        CHECK(w.derive(h) == 0);
        CHECK(h.settled);
        CHECK(h.health == Health::degraded);
    }
    SUBCASE("the earlier of the boot grace and a critical probe's grace") {
        w.now = t0 + 1 * sec;
        w.probe_down("cloud", t0, true, 10 * sec);
        CHECK(w.derive(h) == t0 + 10 * sec);
        w.probe_grace.back() = 60 * sec;
        CHECK(w.derive(h) == t0 + 30 * sec);
    }
}

TEST_CASE("health: a critical probe is failed only beyond its grace") {
    world w;
    w.service("a", ServiceState::ready);
    w.probe_down("cloud", t0 + 5 * sec, true, 20 * sec);
    HealthStatus h;
    w.now = t0 + 10 * sec;
    CHECK(w.derive(h) == t0 + 25 * sec);
    CHECK(h.health == Health::degraded);
    REQUIRE(h.reason_count == 1);
    CHECK(h.reasons[0].critical);
    CHECK_FALSE(h.reasons[0].fails);
    CHECK(h.reasons[0].since_ns == t0 + 5 * sec);

    w.now = t0 + 25 * sec; // exactly at the end of the grace
    CHECK(w.derive(h) == 0);
    CHECK(h.health == Health::failed);
    CHECK(h.reasons[0].fails);

    SUBCASE("without last_error.since_ns, from the last failure") {
        w.probes[0].last_error.since_ns = 0;
        w.probes[0].last_failure_ns = t0 + 20 * sec;
        CHECK(w.derive(h) == t0 + 40 * sec);
        CHECK(h.health == Health::degraded);
        CHECK(h.reasons[0].since_ns == t0 + 20 * sec);
    }
    SUBCASE("with no time at all, it is past its grace") {
        w.probes[0].last_error.since_ns = 0;
        w.probes[0].last_failure_ns = 0;
        CHECK(w.derive(h) == 0);
        CHECK(h.health == Health::failed);
    }
    SUBCASE("a non-critical probe is never failed") {
        w.probe_critical[0] = 0;
        w.now = t0 + 1000 * sec;
        CHECK(w.derive(h) == 0);
        CHECK(h.health == Health::degraded);
    }
    SUBCASE("a grace of for ever neither wraps nor arms a timer") {
        w.probe_grace[0] = std::numeric_limits<std::int64_t>::max();
        w.now = t0 + 1000 * sec;
        CHECK(w.derive(h) == 0);
        CHECK(h.health == Health::degraded);
        w.probes.push_back(w.probes[0]);
        w.probe_critical.push_back(1);
        w.probe_grace.push_back(1000 * sec); // a real one is still the deadline
        CHECK(w.derive(h) == t0 + 1005 * sec);
    }
    SUBCASE("a grace missing from the span is 0") {
        w.probe_grace.clear();
        w.now = t0 + 6 * sec;
        CHECK(w.derive(h) == 0);
        CHECK(h.health == Health::failed);
    }
}

// Every combination of the conditions below, each on its own subject in one
// table: health is failed iff any condition that fails is present, else
// degraded iff any is present (the table is settled), else ok; every present
// condition is one reason, in tier order.
TEST_CASE("health: the derivation table, every combination") {
    struct condition {
        const char* what;
        bool fails;
        bool critical;
    };
    // Probes: down since t0 + 100 s with a 60 s grace; now is t0 + 200 s
    // for "beyond", t0 + 130 s for "inside".
    const condition conds[] = {
        {"service failed, critical", true, true},
        {"service failed", false, false},
        {"service backoff, critical", false, true},
        {"service waiting", false, false},
        {"probe down beyond grace, critical", true, true},
        {"probe down inside grace, critical", false, true},
        {"probe down beyond grace", false, false},
        {"monitor wedged, critical", true, true},
        {"monitor wedged", false, false},
        {"monitor backoff, critical", false, true},
        {"monitor degraded", false, false},
        {"monitor degraded, critical", false, true},
    };
    constexpr std::size_t n = sizeof conds / sizeof conds[0];
    std::size_t checked = 0;
    for (std::uint32_t mask = 0; mask < (1u << n); ++mask) {
        world w;
        w.now = t0 + 200 * sec;
        w.service("base", ServiceState::ready, true);
        w.probe("base-probe", ProbeState::ready, true);
        w.monitor("base-mon", MonitorState::running, true);
        std::size_t present = 0;
        bool any_fails = false;
        std::size_t fails = 0;
        std::size_t critical = 0;
        for (std::size_t c = 0; c < n; ++c) {
            if ((mask & (1u << c)) == 0) {
                continue;
            }
            ++present;
            any_fails = any_fails || conds[c].fails;
            fails += conds[c].fails ? 1 : 0;
            critical += (!conds[c].fails && conds[c].critical) ? 1 : 0;
            switch (c) {
            case 0:
                w.service("s0", ServiceState::failed, true);
                break;
            case 1:
                w.service("s1", ServiceState::failed);
                break;
            case 2:
                w.service("s2", ServiceState::backoff, true);
                break;
            case 3:
                w.service("s3", ServiceState::waiting);
                break;
            case 4:
                w.probe_down("p4", t0 + 100 * sec, true, 60 * sec);
                break;
            case 5:
                w.probe_down("p5", t0 + 150 * sec, true, 60 * sec);
                break;
            case 6:
                w.probe_down("p6", t0 + 100 * sec, false, 60 * sec);
                break;
            case 7:
                w.monitor("m7", MonitorState::wedged, true);
                break;
            case 8:
                w.monitor("m8", MonitorState::wedged);
                break;
            case 9:
                w.monitor("m9", MonitorState::backoff, true);
                break;
            case 10:
                w.monitor("m10", MonitorState::degraded);
                break;
            case 11:
                w.monitor("m11", MonitorState::degraded, true);
                break;
            }
        }
        HealthStatus h;
        const std::int64_t next = w.derive(h);
        const Health want = any_fails ? Health::failed : present ? Health::degraded : Health::ok;
        const bool inside_grace = (mask & (1u << 5)) != 0;
        // Checked by hand (CHECK per combination would flood the report).
        bool ok = h.health == want && h.settled && h.reason_total == present &&
                  h.reason_count == (present < 8 ? present : 8) &&
                  next == (inside_grace ? t0 + 210 * sec : 0);
        // Tiers: `fails` ones first, then critical ones, then the rest.
        for (std::uint32_t k = 0; k < h.reason_count; ++k) {
            const HealthReason& r = h.reasons[k];
            const bool want_fails = k < fails;
            const bool want_critical = k < fails + critical;
            ok = ok && r.fails == want_fails && r.critical == want_critical;
        }
        if (!ok) {
            INFO("mask ", mask, " health ", health_name(h.health), " want ", health_name(want),
                 " reasons ", h.reason_total, " present ", present, " next ", next);
            CHECK(ok);
            break;
        }
        ++checked;
    }
    CHECK(checked == (1u << n));
}

TEST_CASE("health: failed wins over starting; degraded does not") {
    world w;
    w.service("coming", ServiceState::starting);
    std::size_t b = w.service("core", ServiceState::failed, true);
    HealthStatus h;
    CHECK(w.derive(h) == t0 + 120 * sec);
    CHECK_FALSE(h.settled);
    CHECK(h.health == Health::failed);
    CHECK(summary(h) == "failed: core failed (Unknown) (+1 more)");

    w.service_critical[b] = 0;
    w.derive(h);
    CHECK(h.health == Health::starting);

    w.service_critical[b] = 1;
    w.services[b].state = ServiceState::ready;
    w.monitor("watch", MonitorState::wedged, true);
    w.derive(h);
    CHECK(h.health == Health::failed);
}

TEST_CASE("health: reasons are ordered by tier then table order, capped, all counted") {
    world w;
    // Table order: services, probes, monitors; tiers interleaved.
    w.service("s-other", ServiceState::backoff);
    w.service("s-crit", ServiceState::backoff, true);
    w.service("s-fails", ServiceState::failed, true);
    w.probe_down("p-other", t0, false);
    w.probe_down("p-fails", t0 - 100 * sec, true, 60 * sec);
    w.monitor("m-crit", MonitorState::degraded, true);
    w.monitor("m-fails", MonitorState::wedged, true);
    for (int k = 0; k < 5; ++k) {
        w.service("extra", ServiceState::waiting);
    }
    HealthStatus h;
    w.derive(h);
    CHECK(h.health == Health::failed);
    CHECK(h.reason_total == 12);
    REQUIRE(h.reason_count == health_reason_capacity);
    const char* want[] = {"s-fails", "p-fails", "m-fails", "s-crit",
                          "m-crit",  "s-other", "extra",   "extra"};
    for (std::size_t k = 0; k < health_reason_capacity; ++k) {
        CAPTURE(k);
        CHECK(h.reasons[k].name == want[k]);
    }
    CHECK(h.reasons[0].kind == SubjectKind::service);
    CHECK(h.reasons[0].index == 2);
    CHECK(h.reasons[1].kind == SubjectKind::probe);
    CHECK(h.reasons[1].index == 1);
    CHECK(h.reasons[2].kind == SubjectKind::monitor);
    CHECK(h.reasons[2].index == 1);
    CHECK(h.reasons[6].index == 3); // the first "extra"
    CHECK(h.reasons[7].index == 4);
    CHECK(summary(h) == "failed: s-fails failed (Unknown) (+11 more)");
}

TEST_CASE("health: what each reason says") {
    SUBCASE("a service: its reason, the exit that put it there, the default resolution") {
        world w;
        std::size_t a = w.service("uploader", ServiceState::failed);
        w.services[a].reason = Reason::max_restarts_exhausted;
        w.services[a].since_ns = t0 + 7;
        w.services[a].last_exit = ExitInfo{123, 3, 0, false};
        std::size_t b = w.service("crasher", ServiceState::backoff);
        w.services[b].reason = Reason::process_killed;
        w.services[b].last_exit = ExitInfo{124, 0, SIGKILL, false};
        std::size_t c = w.service("dumper", ServiceState::backoff);
        w.services[c].last_exit = ExitInfo{125, 0, SIGSEGV, true};
        std::size_t d = w.service("odd", ServiceState::backoff);
        w.services[d].last_exit = ExitInfo{126, 0, 63, false};
        std::size_t e = w.service("talker", ServiceState::running);
        w.services[e].status_text = std::string_view("loading 40%");
        w.settled = true; // `talker` is still coming up: past the settle
        HealthStatus h;
        w.derive(h);
        REQUIRE(h.reason_count == 5);
        const HealthReason& r = h.reasons[0];
        CHECK(r.kind == SubjectKind::service);
        CHECK(r.name == "uploader");
        CHECK(r.state == "failed");
        CHECK(r.reason == Reason::max_restarts_exhausted);
        CHECK(r.message == "exited 3");
        CHECK(r.resolution == Error(Reason::max_restarts_exhausted, 0).resolution());
        CHECK(r.since_ns == t0 + 7);
        CHECK_FALSE(r.critical);
        CHECK(h.reasons[1].message == "killed by SIGKILL");
        CHECK(h.reasons[2].message == "killed by SIGSEGV (core dumped)");
        CHECK(h.reasons[3].message == "killed by signal 63");
        CHECK(h.reasons[4].message == "loading 40%");
        CHECK(summary(h) == "degraded: uploader failed (MaxRestartsExhausted) (+4 more)");
    }
    SUBCASE("a probe: its last error; its own resolution, else the reason's") {
        world w;
        w.probe_down("broker", t0);
        std::size_t p = w.probe_down("cloud", t0);
        w.probes[p].last_error.resolution = std::string_view("start the broker");
        HealthStatus h;
        w.derive(h);
        REQUIRE(h.reason_count == 2);
        CHECK(h.reasons[0].state == "down");
        CHECK(h.reasons[0].reason == Reason::probe_connect_refused);
        CHECK(h.reasons[0].sys_errno == 111);
        CHECK(h.reasons[0].message == "connect 10.0.0.2:1883: refused");
        CHECK(h.reasons[0].resolution == Error(Reason::probe_connect_refused, 0).resolution());
        CHECK(h.reasons[1].resolution == "start the broker");
        CHECK(summary(h) == "degraded: broker down (ProbeConnectRefused) (+1 more)");
    }
    SUBCASE("a monitor: its crash, its overlay, its wedge") {
        world w;
        std::size_t a = w.monitor("uploader", MonitorState::backoff);
        w.monitors[a].reason = Reason::monitor_crashed;
        w.monitors[a].last_crash.reason = Reason::probe_timeout;
        w.monitors[a].last_crash.sys_errno = 110;
        w.monitors[a].last_crash.message = std::string_view("upload timed out");
        std::size_t b = w.monitor("poller", MonitorState::degraded);
        w.monitors[b].degraded.reason = Reason::probe_unreachable;
        w.monitors[b].degraded.message = std::string_view("device gone");
        w.monitors[b].since_ns = t0 + 3;
        std::size_t c = w.monitor("watcher", MonitorState::wedged);
        w.monitors[c].reason = Reason::monitor_wedged;
        std::size_t d = w.monitor("bare", MonitorState::degraded); // no overlay reason
        HealthStatus h;
        w.derive(h);
        REQUIRE(h.reason_count == 4);
        CHECK(h.reasons[0].state == "backoff");
        CHECK(h.reasons[0].reason == Reason::probe_timeout);
        CHECK(h.reasons[0].sys_errno == 110);
        CHECK(h.reasons[0].message == "upload timed out");
        CHECK(h.reasons[1].state == "degraded");
        CHECK(h.reasons[1].reason == Reason::probe_unreachable);
        CHECK(h.reasons[1].message == "device gone");
        CHECK(h.reasons[1].since_ns == t0 + 3);
        CHECK(h.reasons[2].state == "wedged");
        CHECK(h.reasons[2].reason == Reason::monitor_wedged);
        CHECK(h.reasons[2].resolution == Error(Reason::monitor_wedged, 0).resolution());
        CHECK_FALSE(h.reasons[2].message.empty());
        CHECK(h.reasons[3].reason == Reason::monitor_degraded);
        (void)d;
    }
}

TEST_CASE("health: the summary is one line within its capacity") {
    world w;
    std::string longname(31, 'n');
    for (int k = 0; k < 40; ++k) {
        w.service(longname, ServiceState::failed, true);
    }
    w.services[0].reason = Reason::restart_intensity_exceeded;
    HealthStatus h;
    w.derive(h);
    CHECK(h.summary.size() <= health_summary_capacity);
    CHECK(summary(h) == "failed: " + longname + " failed (RestartIntensityExceeded) (+39 more)");
    CHECK(summary(h).find('\n') == std::string::npos);
}

TEST_CASE("health_model: reports changes, stamps since, latches settled") {
    world w;
    std::size_t a = w.service("web", ServiceState::starting);
    std::size_t p = w.probe("broker", ProbeState::unknown);
    status::health_model model;

    w.now = t0 + 1 * sec;
    CHECK(model.update(w.input())); // the first is always a change
    CHECK(model.current().health == Health::starting);
    CHECK(model.current().since_ns == t0 + 1 * sec);
    CHECK(model.next_deadline_ns() == t0 + 120 * sec);

    w.now = t0 + 2 * sec;
    CHECK_FALSE(model.update(w.input())); // nothing changed
    CHECK(model.current().since_ns == t0 + 1 * sec);

    // A reason changes (the service is running now), health does not.
    w.services[a].state = ServiceState::running;
    w.services[a].since_ns = t0 + 3 * sec;
    w.now = t0 + 3 * sec;
    CHECK(model.update(w.input()));
    CHECK(model.current().health == Health::starting);
    CHECK(model.current().since_ns == t0 + 1 * sec);

    // Settled and ok.
    w.services[a].state = ServiceState::ready;
    w.probes[p].state = ProbeState::ready;
    w.now = t0 + 4 * sec;
    CHECK(model.update(w.input()));
    CHECK(model.current().health == Health::ok);
    CHECK(model.current().settled);
    CHECK(model.current().critical_ready);
    CHECK(model.current().since_ns == t0 + 4 * sec);
    CHECK(model.previous() == Health::starting);
    CHECK(model.next_deadline_ns() == 0);

    // A restart after the settle: degraded (the latch), not starting.
    w.services[a].state = ServiceState::backoff;
    w.now = t0 + 5 * sec;
    CHECK(model.update(w.input()));
    CHECK(model.current().health == Health::degraded);
    CHECK(model.current().settled);
    CHECK(model.current().since_ns == t0 + 5 * sec);
    CHECK(model.previous() == Health::ok);

    // The same reason, still degraded: no change; a new since is a change.
    w.now = t0 + 6 * sec;
    CHECK_FALSE(model.update(w.input()));
    w.services[a].state = ServiceState::starting;
    w.services[a].since_ns = t0 + 6 * sec;
    CHECK(model.update(w.input()));
    CHECK(model.current().since_ns == t0 + 5 * sec); // still degraded since then

    // Back to ok; then a critical service that is stopped changes nothing.
    w.services[a].state = ServiceState::ready;
    w.now = t0 + 7 * sec;
    CHECK(model.update(w.input()));
    CHECK(model.current().health == Health::ok);
    w.service_critical[a] = 1;
    w.services.push_back(ServiceStatus{});
    w.services.back().name = std::string_view("side");
    w.services.back().state = ServiceState::stopped;
    w.service_critical.push_back(1);
    CHECK_FALSE(model.update(w.input())); // a stopped critical service is not wanted

    // A critical probe's grace runs out: the deadline, then failed.
    w.probes[p].state = ProbeState::down;
    w.probes[p].last_error.reason = Reason::probe_timeout;
    w.probes[p].last_error.since_ns = t0 + 8 * sec;
    w.probe_critical[p] = 1;
    w.probe_grace[p] = 10 * sec;
    w.now = t0 + 8 * sec;
    CHECK(model.update(w.input()));
    CHECK(model.current().health == Health::degraded);
    CHECK(model.next_deadline_ns() == t0 + 18 * sec);
    w.now = model.next_deadline_ns();
    CHECK(model.update(w.input()));
    CHECK(model.current().health == Health::failed);
    CHECK(model.current().since_ns == t0 + 18 * sec);
    CHECK(model.previous() == Health::degraded);
    CHECK(model.current().summary == "failed: broker down (ProbeTimeout)");
}
