// The supervisor's side of probes, against a fake clock and fake processes
// (fake_host.hpp): services gated on probes, on_dependency_down (ignore,
// stop, restart) for probe and service dependencies, and liveness restarts
// counted as crashes.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <chrono>
#include <string_view>

#include "fake_host.hpp"

using custos::DependencyDownAction;
using custos::ProbeSpec;
using custos::Reason;
using custos::ServiceSpec;
using custos::ServiceState;
using custos_test::fake_host;
using namespace std::chrono_literals;

namespace {

const std::string_view argv_true[] = {"/bin/true"};

struct probe_rig {
    fake_host host;
    custos::arena mem;
    custos::sup::supervisor sup{host};

    custos::tbl::plan plan;

    probe_rig(std::span<const ServiceSpec> table, std::span<const ProbeSpec> probes) {
        REQUIRE(custos_test::build_plan(plan, table, probes));
        host.attach(sup);
        host.probes_ready.assign(probes.size(), false);
        auto sizing = sup.init(plan, mem, 1);
        REQUIRE(!sizing.has_value());
        REQUIRE(mem.reserve(mem.needed()));
        REQUIRE(sup.init(plan, mem, 1).has_value());
    }

    void probe(std::uint32_t p, bool ready) {
        host.probes_ready[p] = ready;
        sup.on_probe_change(p, ready, "broker");
        host.settle();
    }
    ServiceState state(std::uint32_t i) const { return sup.at(i).state; }
};

ServiceSpec service(std::string_view name, std::span<const std::string_view> deps = {}) {
    ServiceSpec s;
    s.name = name;
    s.argv = argv_true;
    s.depends_on = deps;
    s.backoff_initial = 1s;
    s.backoff_jitter_percent = 0;
    return s;
}

} // namespace

TEST_CASE("a service that depends on a probe starts only once the probe is ready") {
    const std::string_view deps[] = {"broker"};
    ServiceSpec s = service("app", deps);
    ProbeSpec p;
    p.name = "broker";
    p.target = "127.0.0.1:1883"; // a valid tcp probe: the plan checks it
    probe_rig r({&s, 1}, {&p, 1});
    r.sup.start_all();
    CHECK(r.state(0) == ServiceState::waiting);
    CHECK(r.host.spawns.empty());
    r.host.advance(30s);
    CHECK(r.host.spawns.empty()); // no sleep 10 in a start script: it just waits
    r.probe(0, true);
    CHECK(r.state(0) == ServiceState::ready);
    REQUIRE(r.host.spawns.size() == 1);
    CHECK(r.host.spawns[0].at_ms == 30000);
}

TEST_CASE("on_dependency_down = ignore keeps the service running") {
    const std::string_view deps[] = {"broker"};
    ServiceSpec s = service("app", deps);
    ProbeSpec p;
    p.name = "broker";
    p.target = "127.0.0.1:1883"; // a valid tcp probe: the plan checks it
    probe_rig r({&s, 1}, {&p, 1});
    r.host.probes_ready[0] = true;
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::ready);
    r.probe(0, false);
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(r.host.kills.empty());
}

TEST_CASE("on_dependency_down = stop stops it, and it starts again when the probe is back") {
    const std::string_view deps[] = {"broker"};
    ServiceSpec s = service("app", deps);
    s.on_dependency_down = DependencyDownAction::stop;
    s.stop_signal = SIGTERM;
    ProbeSpec p;
    p.name = "broker";
    p.target = "127.0.0.1:1883"; // a valid tcp probe: the plan checks it
    probe_rig r({&s, 1}, {&p, 1});
    r.host.set_on_stop_signal(0, fake_host::on_signal::die);
    r.host.probes_ready[0] = true;
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::ready);
    r.probe(0, false);
    REQUIRE(r.host.kills.size() >= 1);
    CHECK(r.host.kills[0].sig == SIGTERM);
    r.host.advance(1ms);
    CHECK(r.state(0) == ServiceState::waiting);
    bool saw_reason = false;
    for (const auto& t : r.host.transitions) {
        if (t.to == ServiceState::stopping) {
            CHECK(t.reason == Reason::dependency_down);
            CHECK(t.detail == "broker");
            saw_reason = true;
        }
    }
    CHECK(saw_reason);
    CHECK(r.sup.at(0).restarts == 0); // not a crash
    r.host.advance(10s);
    CHECK(r.host.spawns.size() == 1);
    r.probe(0, true);
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(r.host.spawns.size() == 2);
}

TEST_CASE("on_dependency_down = restart keeps it running, and restarts it on recovery") {
    const std::string_view deps[] = {"broker"};
    ServiceSpec s = service("app", deps);
    s.on_dependency_down = DependencyDownAction::restart;
    ProbeSpec p;
    p.name = "broker";
    p.target = "127.0.0.1:1883"; // a valid tcp probe: the plan checks it
    probe_rig r({&s, 1}, {&p, 1});
    r.host.set_on_stop_signal(0, fake_host::on_signal::die);
    r.host.probes_ready[0] = true;
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::ready);
    r.probe(0, false);
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(r.host.kills.empty());
    r.host.advance(5s);
    r.probe(0, true);
    r.host.advance(1ms);
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(r.host.spawns.size() == 2);
    CHECK(r.sup.at(0).restarts == 0);
    // Recovered once: a later unrelated probe pass restarts nothing.
    r.probe(0, true);
    r.host.advance(1ms);
    CHECK(r.host.spawns.size() == 2);
}

TEST_CASE("a service dependency leaving ready acts on its dependents too") {
    const std::string_view deps[] = {"db"};
    ServiceSpec table[] = {service("db"), service("app", deps)};
    table[1].on_dependency_down = DependencyDownAction::stop;
    probe_rig r(table, {});
    r.host.set_on_stop_signal(1, fake_host::on_signal::die);
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::ready);
    REQUIRE(r.state(1) == ServiceState::ready);
    r.host.exit(0, 1); // db crashes: backoff
    CHECK(r.state(0) == ServiceState::backoff);
    r.host.advance(1ms);
    CHECK(r.state(1) == ServiceState::waiting);
    r.host.advance(2s); // db restarts after its backoff, then app
    CHECK(r.state(0) == ServiceState::ready);
    CHECK(r.state(1) == ServiceState::ready);
    CHECK(r.host.spawns.size() == 4);
}

TEST_CASE("a liveness failure restarts a ready service and counts as a crash") {
    ServiceSpec s = service("web");
    s.max_restarts = 2;
    probe_rig r({&s, 1}, {});
    r.host.set_on_stop_signal(0, fake_host::on_signal::die);
    r.sup.start_all();
    REQUIRE(r.state(0) == ServiceState::ready);
    CHECK(r.sup.on_liveness_down(0));
    r.host.advance(1ms);
    CHECK(r.state(0) == ServiceState::backoff);
    CHECK(r.sup.at(0).restarts == 1);
    bool saw = false;
    for (const auto& t : r.host.transitions) {
        saw = saw || (t.to == ServiceState::backoff && t.reason == Reason::liveness_failed);
    }
    CHECK(saw);
    r.host.advance(2s);
    REQUIRE(r.state(0) == ServiceState::ready);
    CHECK(r.sup.on_liveness_down(0));
    r.host.advance(5s);
    REQUIRE(r.state(0) == ServiceState::ready);
    CHECK(r.sup.on_liveness_down(0));
    r.host.advance(1ms);
    // The budget counts liveness restarts like any crash.
    CHECK(r.state(0) == ServiceState::failed);
    CHECK(r.sup.at(0).reason == Reason::max_restarts_exhausted);
    // Not ready: nothing to do.
    CHECK_FALSE(r.sup.on_liveness_down(0));
}
