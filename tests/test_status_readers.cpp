// Status reads from other threads: Runtime::status(), probe_status() and
// stats() called in tight loops by reader threads while the runtime's
// reactor thread runs 16 crash-looping services and file probes that a
// toggler thread makes flip. Every record read must be whole: the invariants
// below tie its fields together, so a read that mixed two publications (or
// two halves of one record) breaks one of them. Run under TSan in CI.
//
// Public API only, as an embedding daemon uses it.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/runtime.hpp>

using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t services = 16;
constexpr std::uint32_t probes = 4;

// Enough crashes, and at least a second of reading: then stop. Counted,
// not timed, so a slow machine (qemu-user, a sanitizer) runs longer rather
// than testing less; the deadline only bounds a run that cannot crash.
constexpr std::uint64_t crashes_wanted = 150;

struct scenario {
    custos::Runtime rt;
    std::int64_t min_end_ns = 0;
    std::int64_t deadline_ns = 0;
    std::atomic<std::uint64_t> transitions{0};
    std::uint64_t crashes = 0; // reactor thread only
};

void on_transition(const custos::Transition& t, void* ctx) noexcept {
    auto& sc = *static_cast<scenario*>(ctx);
    sc.transitions.fetch_add(1, std::memory_order_relaxed);
    sc.crashes += t.to == custos::ServiceState::backoff ? 1 : 0;
    if ((sc.crashes >= crashes_wanted && t.at_ns >= sc.min_end_ns) || t.at_ns >= sc.deadline_ns) {
        sc.rt.stop();
    }
}

bool has_process(custos::ServiceState s) {
    return s == custos::ServiceState::running || s == custos::ServiceState::ready ||
           s == custos::ServiceState::stopping;
}

// What the readers found wrong; one counter per invariant, so a failure
// says which.
struct tally {
    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> bad_name{0};
    std::atomic<std::uint64_t> bad_pid{0};
    std::atomic<std::uint64_t> bad_exit{0};
    std::atomic<std::uint64_t> bad_restarts{0};
    std::atomic<std::uint64_t> went_back{0};
    std::atomic<std::uint64_t> bad_probe{0};
    std::atomic<std::uint64_t> bad_stats{0};
    std::atomic<std::uint64_t> saw_exit{0};
    std::atomic<std::uint64_t> saw_probe_ready{0};
    std::atomic<std::uint64_t> saw_probe_down{0};
};

void reader(const custos::Runtime& rt, const std::vector<std::string>& names,
            const std::vector<std::string>& probe_names, const std::atomic<bool>& done, tally& t) {
    std::vector<std::uint64_t> last_total(services, 0);
    std::uint64_t last_spawns = 0;
    while (!done.load(std::memory_order_acquire)) {
        for (std::uint32_t i = 0; i < services; ++i) {
            const custos::ServiceStatus s = rt.status(i);
            t.reads.fetch_add(1, std::memory_order_relaxed);
            if (s.name.view() != names[i]) {
                t.bad_name.fetch_add(1, std::memory_order_relaxed);
            }
            // The supervisor's invariant: a process exactly in running,
            // ready and stopping.
            if ((s.pid != 0) != has_process(s.state)) {
                t.bad_pid.fetch_add(1, std::memory_order_relaxed);
            }
            if (s.restarts > s.total_restarts) {
                t.bad_restarts.fetch_add(1, std::memory_order_relaxed);
            }
            if (s.total_restarts < last_total[i]) {
                t.went_back.fetch_add(1, std::memory_order_relaxed);
            }
            last_total[i] = s.total_restarts;
            if (s.last_exit.pid != 0) {
                // Every exit of these services is "exit 3", or the stop's
                // signal at the end.
                const bool crash = s.last_exit.code == 3 && s.last_exit.signal == 0;
                const bool stopped = s.last_exit.code == 0 && (s.last_exit.signal == SIGTERM ||
                                                               s.last_exit.signal == SIGKILL);
                if (!crash && !stopped) {
                    t.bad_exit.fetch_add(1, std::memory_order_relaxed);
                }
                t.saw_exit.fetch_add(1, std::memory_order_relaxed);
            }
        }
        for (std::uint32_t p = 0; p < probes; ++p) {
            const custos::ProbeStatus s = rt.probe_status(p);
            t.reads.fetch_add(1, std::memory_order_relaxed);
            if (s.name.view() != probe_names[p]) {
                t.bad_name.fetch_add(1, std::memory_order_relaxed);
            }
            const bool ready = s.state == custos::ProbeState::ready;
            const bool down = s.state == custos::ProbeState::down;
            // A probe down says why; a ready one carries no error.
            if ((down &&
                 (s.last_error.reason == custos::Reason::unknown || s.last_failure_ns == 0)) ||
                s.failures > s.checks || s.consecutive_failures > s.failures ||
                s.consecutive_successes > s.checks) {
                t.bad_probe.fetch_add(1, std::memory_order_relaxed);
            }
            t.saw_probe_ready.fetch_add(ready ? 1 : 0, std::memory_order_relaxed);
            t.saw_probe_down.fetch_add(down ? 1 : 0, std::memory_order_relaxed);
        }
        const custos::RuntimeStats st = rt.stats();
        t.reads.fetch_add(1, std::memory_order_relaxed);
        // Two cores are shared with the reactor: leave it room to crash-loop.
        std::this_thread::yield();
        // Counted together on the reactor thread: an exit follows its spawn.
        if (st.exits > st.spawns || st.spawns < last_spawns) {
            t.bad_stats.fetch_add(1, std::memory_order_relaxed);
        }
        last_spawns = st.spawns;
    }
}

} // namespace

TEST_CASE("status(), probe_status() and stats() from other threads: whole records, "
          "while 16 services crash-loop and probes flip") {
    char dir[] = "/tmp/custos-readers.XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string_view argv[] = {"/bin/sh", "-c", "exit 3"};
    std::vector<std::string> names;
    std::vector<std::string> probe_names;
    std::vector<std::string> paths;
    // Names of differing lengths, so a torn name shows.
    for (std::uint32_t i = 0; i < services; ++i) {
        names.push_back("svc" + std::string(i % 7 + 1, 'x') + std::to_string(i));
    }
    for (std::uint32_t p = 0; p < probes; ++p) {
        probe_names.push_back("flag" + std::string(p * 5 + 1, 'y') + std::to_string(p));
        paths.push_back(std::string(dir) + "/flag" + std::to_string(p));
    }
    std::vector<custos::ServiceSpec> specs(services);
    for (std::uint32_t i = 0; i < services; ++i) {
        custos::ServiceSpec& s = specs[i];
        s.name = names[i];
        s.argv = argv;
        s.restart = custos::RestartPolicy::always;
        s.backoff_initial = 1ms;
        s.backoff_max = 4ms;
        s.backoff_jitter_percent = 0;
        s.stop_timeout = 1s;
    }
    std::vector<custos::ProbeSpec> pspecs(probes);
    for (std::uint32_t p = 0; p < probes; ++p) {
        custos::ProbeSpec& s = pspecs[p];
        s.name = probe_names[p];
        s.kind = custos::ProbeKind::file;
        s.target = paths[p];
        s.interval = 3ms;
        s.startup_initial = 1ms;
        s.startup_max = 3ms;
        s.timeout = 1s;
    }
    custos::RuntimeConfig cfg;
    cfg.cgroup = "off";
    cfg.handle_signals = false;
    cfg.stop_timeout = 2s;

    auto* sc = new scenario;
    REQUIRE(sc->rt.init(cfg, specs, pspecs).has_value());
    sc->rt.set_transition_hook(&on_transition, sc);
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const std::int64_t start_ns = now.tv_sec * 1'000'000'000LL + now.tv_nsec;
    sc->min_end_ns = start_ns + 1'000'000'000LL;
    sc->deadline_ns = start_ns + 120'000'000'000LL;

    // Created after init, so the threads inherit its signal mask.
    std::atomic<bool> done{false};
    tally t;
    std::vector<std::thread> threads;
    for (int k = 0; k < 2; ++k) {
        threads.emplace_back(reader, std::cref(sc->rt), std::cref(names), std::cref(probe_names),
                             std::cref(done), std::ref(t));
    }
    std::thread toggler([&] {
        for (unsigned n = 0; !done.load(std::memory_order_acquire); ++n) {
            const std::string& f = paths[n % probes];
            if ((n / probes) % 2 == 0) {
                int fd = ::open(f.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                if (fd >= 0) {
                    ::close(fd);
                }
            } else {
                ::unlink(f.c_str());
            }
            std::this_thread::sleep_for(2ms);
        }
    });
    REQUIRE(sc->rt.start().has_value());
    sc->rt.run();
    done.store(true, std::memory_order_release);
    for (std::thread& th : threads) {
        th.join();
    }
    toggler.join();

    const custos::RuntimeStats st = sc->rt.stats();
    MESSAGE("reads " << t.reads.load() << ", transitions " << sc->transitions.load() << ", spawns "
                     << st.spawns << ", probe checks " << st.probe_checks);
    CHECK(t.bad_name.load() == 0);
    CHECK(t.bad_pid.load() == 0);
    CHECK(t.bad_exit.load() == 0);
    CHECK(t.bad_restarts.load() == 0);
    CHECK(t.went_back.load() == 0);
    CHECK(t.bad_probe.load() == 0);
    CHECK(t.bad_stats.load() == 0);
    // The run did what it was for: crash loops and flipping probes were
    // seen from the readers' side, many times.
    CHECK(sc->crashes >= crashes_wanted);
    CHECK(st.spawns >= crashes_wanted);
    CHECK(t.reads.load() >= 10'000);
    CHECK(t.saw_exit.load() > 0);
    CHECK(t.saw_probe_ready.load() > 0);
    CHECK(t.saw_probe_down.load() > 0);
    // After run() the last publication holds the end: every service stopped.
    std::atomic<bool> checked{false};
    std::thread after([&] {
        bool all_stopped = true;
        for (std::uint32_t i = 0; i < services; ++i) {
            all_stopped = all_stopped && sc->rt.status(i).state == custos::ServiceState::stopped;
        }
        checked.store(all_stopped);
    });
    after.join();
    CHECK(checked.load());
    delete sc;
    for (const std::string& f : paths) {
        ::unlink(f.c_str());
    }
    ::rmdir(dir);
}
