// custos::Runtime with a watchdog (the null port: the gate, the records and
// the events as with a real one), through the public API and a real state
// file: the gate shutting after the boot grace when a critical service
// fails, with the record written first; the previous boot's class across
// runtimes in this same boot (orderly, restarted); safe mode starting only
// the critical set; the maintenance hold, and its end by itself; the status
// read from another thread.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll); a
// backend the kernel refuses makes the run exit 77 (a skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <custos/runtime.hpp>
#include <custos/watchdog.hpp>

#include "backend_probe.hpp"
#include "ports/reset_record.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

void on_alarm(int) {
    const char msg[] = "test_runtime_watchdog: a scenario hung (alarm); failing\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::_Exit(1);
}

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t wall_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string R(Reason r) {
    return std::string(reason_id(r));
}

std::string slurp(const std::string& path) {
    std::string out;
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return out;
    }
    char buf[2048];
    std::size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    out.assign(buf, n);
    return out;
}

struct tempdir {
    std::string path;
    tempdir() {
        char tmpl[] = "/tmp/crw.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~tempdir() {
        for (const char* f : {"/wd.state", "/wd.state.tmp"}) {
            ::unlink((path + f).c_str());
        }
        ::rmdir(path.c_str());
    }
    tempdir(const tempdir&) = delete;
    tempdir& operator=(const tempdir&) = delete;
};

struct seen_event {
    WatchdogState from;
    WatchdogState to;
    Reason reason;
    std::string message;
    std::int64_t mono_ns;
};

// One runtime with a null watchdog, its events and its health recorded.
struct world {
    tempdir dir;
    std::string state_file = dir.path + "/wd.state";
    RuntimeConfig cfg;
    WatchdogConfig wcfg;
    std::vector<ServiceSpec> services;
    std::unique_ptr<Runtime> rt;
    std::vector<seen_event> events;
    std::vector<Health> healths;
    std::vector<std::pair<std::uint32_t, ServiceState>> transitions;
    std::int64_t started_ns = 0;
    // Called from the watchdog hook after recording (may act on rt).
    void (*on_watchdog)(world& w, const WatchdogTransition& t) = nullptr;
    void (*on_health)(world& w, const HealthStatus& h) = nullptr;

    world() {
        cfg.handle_signals = false;
        cfg.stop_timeout = 5s;
        cfg.boot_grace = 300ms;
        wcfg.device = WatchdogDevice::null;
        wcfg.board = "generic";
        wcfg.state_file = state_file;
    }

    Result<void> init() {
        rt = std::make_unique<Runtime>();
        Table tab;
        tab.runtime = cfg;
        tab.services = services;
        tab.watchdog = wcfg;
        auto r = rt->init(tab);
        if (!r) {
            return r;
        }
        rt->set_watchdog_hook(
            [](const WatchdogTransition& t, void* ctx) {
                auto& w = *static_cast<world*>(ctx);
                w.events.push_back({t.from, t.to, t.reason, std::string(t.message), t.mono_ns});
                if (w.on_watchdog != nullptr) {
                    w.on_watchdog(w, t);
                }
            },
            this);
        rt->set_transition_hook(
            [](const Transition& st, void* ctx) {
                static_cast<world*>(ctx)->transitions.emplace_back(st.service, st.to);
            },
            this);
        rt->set_health_hook(
            [](const HealthStatus& h, void* ctx) {
                auto& self = *static_cast<world*>(ctx);
                self.healths.push_back(h.health);
                if (self.on_health != nullptr) {
                    self.on_health(self, h);
                }
            },
            this);
        return r;
    }
    void start() {
        started_ns = now_ns();
        REQUIRE(rt->start().has_value());
    }
    const seen_event* find(Reason r) const {
        for (const seen_event& e : events) {
            if (e.reason == r) {
                return &e;
            }
        }
        return nullptr;
    }
    std::size_t index_of(Reason r) const {
        for (std::size_t i = 0; i < events.size(); ++i) {
            if (events[i].reason == r) {
                return i;
            }
        }
        return events.size();
    }
};

const std::string_view false_argv[] = {"/bin/false"};
const std::string_view sleep_argv[] = {"/bin/sleep", "30"};

ServiceSpec failing(std::string_view name) {
    ServiceSpec s;
    s.name = name;
    s.argv = false_argv;
    s.critical = true;
    s.max_restarts = 1;
    s.backoff_initial = 20ms;
    s.backoff_jitter_percent = 0;
    return s;
}

ServiceSpec sleeper(std::string_view name, bool critical) {
    ServiceSpec s;
    s.name = name;
    s.argv = sleep_argv;
    s.critical = critical;
    s.stop_timeout = 2s;
    return s;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("a critical failure shuts the gate after the boot grace, record first") {
        world w;
        w.services.push_back(failing("bad"));
        // Its stop lasts 300 ms (SIGCONT changes nothing; SIGKILL ends it):
        // the runtime stays `starving` that long, long enough for the reader
        // below to see it however loaded the machine, not one loop turn.
        ServiceSpec lingering = sleeper("lingering", false);
        lingering.stop_signal = SIGCONT;
        lingering.stop_timeout = 300ms;
        w.services.push_back(lingering);
        REQUIRE(w.init().has_value());
        w.on_watchdog = [](world& self, const WatchdogTransition& t) {
            if (t.reason == Reason::watchdog_starving) {
                // The record is on disk before the gate shut.
                const std::string rec = slurp(self.state_file);
                CHECK(rec.find("state starving") != std::string::npos);
                CHECK(rec.find("bad") != std::string::npos);
                self.rt->stop();
            }
        };
        std::atomic<bool> reader_saw_starving{false};
        std::atomic<bool> done{false};
        std::thread reader([&] {
            while (!done.load()) {
                WatchdogStatus s = w.rt->watchdog();
                if (s.state == WatchdogState::starving && s.starving_since_ns != 0) {
                    reader_saw_starving = true;
                }
                std::this_thread::sleep_for(1ms);
            }
        });
        alarm(60);
        w.start();
        w.rt->run();
        alarm(0);
        done = true;
        reader.join();

        const seen_event* opened = w.find(Reason::watchdog_opened);
        REQUIRE(opened != nullptr);
        const seen_event* starving = w.find(Reason::watchdog_starving);
        REQUIRE(starving != nullptr);
        CHECK(starving->to == WatchdogState::starving);
        // Fed through the grace whatever the health: never starved early.
        // (Counted from the start as the runtime saw it: the opened event.)
        CHECK(starving->mono_ns - opened->mono_ns >= 300'000'000);
        CHECK(w.index_of(Reason::watchdog_opened) < w.index_of(Reason::watchdog_starving));
        // The orderly stop: recorded, and disarmed (the generic profile allows it).
        CHECK(w.find(Reason::watchdog_disarmed) != nullptr);
        CHECK(slurp(w.state_file).find("state orderly") != std::string::npos);
        const WatchdogStatus s = w.rt->watchdog();
        CHECK(s.state == WatchdogState::closed);
        CHECK(s.device == WatchdogDevice::null);
        CHECK(s.feeds >= 1);
        CHECK(s.record_writes >= 3); // running, starving, orderly
        CHECK(reader_saw_starving.load());
    }

    TEST_CASE("the previous boot across runtimes of this same boot: orderly, then restarted") {
        tempdir dir;
        const std::string file = dir.path + "/wd.state";
        auto run_one = [&](bool orderly) {
            world w;
            w.wcfg.state_file = file;
            REQUIRE(w.init().has_value());
            w.start();
            if (orderly) {
                w.rt->run(); // nothing to supervise: returns at once, in order
            }
            std::vector<seen_event> ev = w.events;
            const WatchdogStatus s = w.rt->watchdog();
            w.rt.reset(); // not orderly: closed without a record
            return std::make_pair(ev, s);
        };
        const auto r1 = run_one(true);
        CHECK(r1.second.previous.cls == ResetClass::unknown);
        const auto r2 = run_one(false);
        CHECK(r2.second.previous.cls == ResetClass::orderly);
        bool saw = false;
        for (const seen_event& e : r2.first) {
            saw = saw || e.reason == Reason::previous_boot_orderly;
        }
        CHECK(saw);
        const auto r3 = run_one(true);
        CHECK(r3.second.previous.cls == ResetClass::restarted);
        saw = false;
        for (const seen_event& e : r3.first) {
            saw = saw || e.reason == Reason::previous_boot_restarted;
        }
        CHECK(saw);
        CHECK(r3.second.counters.orderly == 1);
        CHECK(r3.second.counters.restarted == 1);
    }

    TEST_CASE("safe mode after watchdog-caused boots starts only the critical set") {
        world w;
        // Two resets by the watchdog in the last minute, the last one
        // starved by custos (another boot's record).
        ports::reset_record rec;
        rec.state = ports::record_state::starving;
        rec.boot_id = std::string_view("00000000-0000-0000-0000-000000000001");
        rec.wall_ns = wall_ns() - 1'000'000'000;
        rec.reason = Reason::max_restarts_exhausted;
        rec.subject = std::string_view("service crit");
        rec.counters.boots = 3;
        rec.counters.starved = 1;
        rec.recent[0] = wall_ns() - 60'000'000'000;
        rec.recent_count = 1;
        REQUIRE(ports::write_record(w.state_file.c_str(), rec).has_value());
        w.wcfg.safe_mode_boots = 2;
        w.wcfg.safe_mode_window = 1h;
        w.services.push_back(sleeper("base", false));
        w.services.push_back(sleeper("crit", true));
        static const std::string_view deps[] = {"base"};
        w.services.back().depends_on = deps;
        w.services.push_back(sleeper("extra", false));
        REQUIRE(w.init().has_value());
        w.on_health = [](world& self, const HealthStatus& h) {
            if (h.settled && h.health == Health::ok) {
                self.rt->stop();
            }
        };
        alarm(60);
        w.start();
        const WatchdogStatus s = w.rt->watchdog();
        CHECK(s.safe_mode);
        CHECK(s.previous.cls == ResetClass::starved);
        w.rt->run();
        alarm(0);
        CHECK(w.find(Reason::safe_mode) != nullptr);
        CHECK(w.find(Reason::previous_boot_starved) != nullptr);
        // base and crit ran; extra was never started.
        bool started[3] = {};
        for (const auto& [i, to] : w.transitions) {
            if (to == ServiceState::starting) {
                started[i] = true;
            }
        }
        CHECK(started[0]);
        CHECK(started[1]);
        CHECK_FALSE(started[2]);
    }

    TEST_CASE("a maintenance hold keeps feeding while health is failed, and ends by itself") {
        world w;
        w.services.push_back(failing("bad"));
        w.wcfg.max_hold = 10s;
        REQUIRE(w.init().has_value());
        // Before start(): nothing is fed yet, so nothing to hold.
        CHECK(w.rt->hold_watchdog(1s, "test").error().reason() == Reason::watchdog_unavailable);
        w.on_health = [](world& self, const HealthStatus& h) {
            if (h.health == Health::failed && self.find(Reason::watchdog_hold_started) == nullptr) {
                CHECK(self.rt->hold_watchdog(600ms, "test").has_value());
            }
        };
        w.on_watchdog = [](world& self, const WatchdogTransition& t) {
            if (t.reason == Reason::watchdog_starving) {
                self.rt->stop();
            }
        };
        alarm(60);
        w.start();
        // Refused beyond max_hold, and a release without a hold.
        CHECK(w.rt->hold_watchdog(11s, "test").error().reason() == Reason::invalid_argument);
        CHECK(w.rt->release_watchdog("test").error().reason() == Reason::invalid_argument);
        w.rt->run();
        alarm(0);
        const std::size_t held = w.index_of(Reason::watchdog_hold_started);
        const std::size_t ended = w.index_of(Reason::watchdog_hold_ended);
        const std::size_t starving = w.index_of(Reason::watchdog_starving);
        REQUIRE(held < w.events.size());
        REQUIRE(ended < w.events.size());
        REQUIRE(starving < w.events.size());
        CHECK(held < ended);
        CHECK(ended < starving);
        // Not before the hold's end (never early).
        CHECK(w.events[ended].mono_ns - w.events[held].mono_ns >= 600'000'000 - 5'000'000);
        CHECK(w.events[held].to == WatchdogState::held);
    }

    TEST_CASE("no watchdog configured: the API says so") {
        Runtime rt;
        RuntimeConfig cfg;
        cfg.handle_signals = false;
        REQUIRE(rt.init(Table{cfg, {}, {}, {}, {}, {}, {}, {}}).has_value());
        CHECK(rt.watchdog().state == WatchdogState::off);
        CHECK(rt.watchdog().device == WatchdogDevice::none);
        CHECK(rt.hold_watchdog(1s, "x").error().reason() == Reason::watchdog_unavailable);
    }

    TEST_CASE("an unknown board is refused at init, as a watchdog problem") {
        struct sink final : TableProblemSink {
            std::vector<TableProblem> got;
            void report(const TableProblem& p) noexcept override { got.push_back(p); }
        } problems;
        Runtime rt;
        Table t;
        t.runtime.handle_signals = false;
        t.watchdog.device = WatchdogDevice::null;
        t.watchdog.board = "no-such-board";
        auto r = rt.init(t, &problems);
        REQUIRE_FALSE(r.has_value());
        CHECK(R(r.error().reason()) == R(Reason::board_unknown));
        REQUIRE(problems.got.size() == 1);
        CHECK(problems.got[0].kind == TableKind::watchdog);
        CHECK(problems.got[0].watchdog_field() == WatchdogField::board);
    }

    TEST_CASE("a failed init leaves the s6 notify fd open; the next init takes it over") {
        int p[2];
        REQUIRE(::pipe(p) == 0);
        auto rt = std::make_unique<Runtime>();
        Table t;
        t.runtime.handle_signals = false;
        t.runtime.notify_fd = p[1];
        t.watchdog.device = WatchdogDevice::null;
        t.watchdog.board = "no-such-board"; // refused last in init, after the notify paths
        REQUIRE_FALSE(rt->init(t).has_value());
        CHECK(::fcntl(p[1], F_GETFD) >= 0);
        t.watchdog.board = {};
        REQUIRE(rt->init(t).has_value());
        // It was open and is ours now: the second init took it (a closed fd
        // is refused: "notify_fd N: not open"). The first health change
        // ends the run; the fd is closed by then or with the runtime
        // (after READY's newline, if that went first).
        rt->set_health_hook(
            [](const HealthStatus&, void* ctx) { static_cast<Runtime*>(ctx)->stop(); }, rt.get());
        REQUIRE(rt->start().has_value());
        rt->run();
        rt.reset(); // whatever the stop left open closes here
        char buf[4] = {};
        std::size_t got = 0;
        ssize_t n = 0;
        do {
            n = ::read(p[0], buf + got, sizeof buf - got);
            got += n > 0 ? static_cast<std::size_t>(n) : 0;
        } while ((n > 0 && got < sizeof buf) || (n < 0 && errno == EINTR));
        CHECK(n == 0); // EOF: custos closed its end
        CHECK(got <= 1);
        CHECK((got == 0 || buf[0] == '\n'));
        ::close(p[0]);
    }

} // TEST_SUITE("runtime")

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    struct sigaction sa {};
    sa.sa_handler = &on_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, nullptr);
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
