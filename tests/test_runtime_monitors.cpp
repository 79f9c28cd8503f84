// custos::Runtime with monitors, health and the notify paths upward, through
// the public API only: real monitor threads, real service processes
// (tests/svc_helper.cpp), a real reactor. Monitors waiting for a service and
// a probe; on_dependency_down = stop; a crashing monitor, its degraded
// reports and health; the health of critical and non-critical failures and
// the boot grace; on_wedge = exit; the stop order and a monitor that ignores
// the stop; READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 to a datagram socket
// the test binds (with the health gate); reads of the status from another
// thread.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll); a
// backend the kernel refuses makes the run exit 77 (a skip).
//
// Driving: there is no timer API on Runtime, so a scenario acts from its
// hooks (on the reactor thread). A `step` sees every event at the points
// where acting is safe: a service transition into a settled state, a probe
// transition, a monitor report (from == to: heartbeats, degraded, suspected),
// a health change. Scenarios that need time to pass add a "clock" monitor
// whose heartbeats (every 50 ms) are such points.
//
// Timing: events are counted and ordered; lower bounds that custos promises
// (never early) are checked exactly, upper bounds are generous, plus
// CUSTOS_TEST_TOLERANCE_MS on slow runs (ASan, qemu-user).
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/health.hpp>
#include <custos/monitor.hpp>
#include <custos/runtime.hpp>

#include "backend_probe.hpp"
#include "process/fd_closer.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

// A scenario that hangs fails the binary instead of waiting for meson.
constexpr unsigned scenario_alarm_s = 120;

void on_alarm(int) {
    const char msg[] = "test_runtime_monitors: a scenario hung (alarm); failing\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::_Exit(1);
}

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr std::int64_t ms_ns(std::int64_t ms) {
    return ms * 1'000'000;
}

std::int64_t tolerance_ns() {
    const char* env = std::getenv("CUSTOS_TEST_TOLERANCE_MS");
    return ms_ns(env != nullptr ? std::atoi(env) : 0);
}

void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1'000'000};
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

std::string R(Reason r) {
    return std::string(reason_id(r));
}

const char* helper_path() {
    const char* p = std::getenv("CUSTOS_SVC_HELPER");
    REQUIRE_MESSAGE(p != nullptr, "CUSTOS_SVC_HELPER must name tests/svc_helper");
    return p;
}

bool env_is(const char* name, std::string_view value) {
    const char* v = std::getenv(name);
    return v != nullptr && value == v;
}

int count_fds() {
    DIR* d = ::opendir("/proc/self/fd");
    REQUIRE(d != nullptr);
    int n = 0;
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') {
            ++n;
        }
    }
    ::closedir(d);
    return n - 1; // the directory's own descriptor
}

// The first line of /proc/self/task/TID/NAME ("" when it cannot be read).
std::string task_file(int tid, const char* name) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/%s", tid, name);
    FILE* f = std::fopen(path, "re");
    if (f == nullptr) {
        return {};
    }
    char buf[512] = {};
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    return std::string(buf, n);
}

// Thread `tid` of this process is asleep in a futex wait (state S, and a
// wchan naming a futex function where the kernel tells), or gone.
bool sleeping(int tid) {
    const std::string stat = task_file(tid, "stat");
    // "TID (COMM) S ...": the state follows the last ')'.
    const std::size_t close = stat.rfind(')');
    if (stat.empty() || close == std::string::npos || close + 2 >= stat.size()) {
        return true; // gone
    }
    if (stat[close + 2] != 'S') {
        return false;
    }
    const std::string wchan = task_file(tid, "wchan");
    return wchan.empty() || wchan == "0" || wchan.find("futex") != std::string::npos;
}

// Exists and is neither a zombie nor dead.
bool alive(int pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    std::FILE* f = std::fopen(path, "r");
    if (f == nullptr) {
        return false;
    }
    char buf[512];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* close = std::strrchr(buf, ')');
    char st = 0;
    if (close == nullptr || std::sscanf(close + 1, " %c", &st) != 1) {
        return false;
    }
    return st != 'Z' && st != 'X';
}

struct tempdir {
    std::string path;
    tempdir() {
        // Short: socket paths must fit sun_path (108 bytes).
        char tmpl[] = "/tmp/crm.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~tempdir() { remove_tree(path); }
    // Files and one level of directories (the notify directory).
    static void remove_tree(const std::string& dir) {
        if (DIR* d = ::opendir(dir.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string name = e->d_name;
                if (name == "." || name == "..") {
                    continue;
                }
                std::string full = dir + "/" + name;
                if (::unlink(full.c_str()) != 0 && errno == EISDIR) {
                    remove_tree(full);
                }
            }
            ::closedir(d);
        }
        ::rmdir(dir.c_str());
    }
    tempdir(const tempdir&) = delete;
    tempdir& operator=(const tempdir&) = delete;
};

// --- monitors' run functions (on their own threads: atomics only) ---

// What a run function tells the test.
struct mon_state {
    std::atomic<std::uint32_t> runs{0};
    std::atomic<std::uint32_t> returns{0};
    std::atomic<std::uint32_t> last_run_number{0};
    std::atomic<std::int64_t> first_start_ns{0};
    std::atomic<std::int64_t> last_beat_ns{0};
    std::atomic<bool> stop_seen{false};
    std::atomic<bool> release{false}; // stubborn: may return now
    std::atomic<int> tid{0};          // the thread that runs it
};

void entered(MonitorContext& ctx, mon_state& s) {
    s.tid.store(static_cast<int>(::syscall(SYS_gettid)));
    s.runs.fetch_add(1);
    s.last_run_number.store(ctx.run_number());
    std::int64_t zero = 0;
    s.first_start_ns.compare_exchange_strong(zero, now_ns());
}

// Beats every 20 ms until asked to stop; a clean exit.
Result<void> idle_fn(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<mon_state*>(arg);
    entered(ctx, s);
    ctx.beat();
    while (ctx.wait_for(20ms)) {
        ctx.beat();
        s.last_beat_ns.store(now_ns());
    }
    s.stop_seen.store(ctx.stop_requested());
    s.returns.fetch_add(1);
    return {};
}

// Beats every 2 ms: state and counters change often (the readers' case).
Result<void> busy_fn(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<mon_state*>(arg);
    entered(ctx, s);
    std::uint64_t n = 0;
    while (ctx.wait_for(2ms)) {
        ctx.beat(++n);
        ctx.tick(n % 3 == 0 ? Result<void>(fail(Reason::probe_timeout, 0, "slow upstream"))
                            : Result<void>{});
    }
    s.returns.fetch_add(1);
    return {};
}

// Fails at once: a crash.
Result<void> crash_fn(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<mon_state*>(arg);
    entered(ctx, s);
    s.returns.fetch_add(1);
    return fail(Reason::probe_connect_refused, ECONNREFUSED, "device 10.0.0.9:502");
}

// Beats every 20 ms for 200 ms, then blocks on its stop descriptor without
// progress (alive, but wedged) until asked to stop.
Result<void> wedge_fn(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<mon_state*>(arg);
    entered(ctx, s);
    for (int i = 0; i < 10; ++i) {
        // The time first: the beat is no earlier than what the test records.
        s.last_beat_ns.store(now_ns());
        ctx.beat(static_cast<std::uint64_t>(i) + 1);
        if (!ctx.wait_for(20ms)) {
            s.returns.fetch_add(1);
            return {};
        }
    }
    pollfd p{ctx.stop_fd(), POLLIN, 0};
    while (::poll(&p, 1, -1) < 0) {
    }
    s.stop_seen.store(ctx.stop_requested());
    s.returns.fetch_add(1);
    return {};
}

// Ignores the stop; returns only once the test sets `release`.
Result<void> stubborn_fn(MonitorContext& ctx, void* arg) {
    auto& s = *static_cast<mon_state*>(arg);
    entered(ctx, s);
    while (!s.release.load()) {
        ctx.beat();
        sleep_ms(10);
    }
    s.stop_seen.store(ctx.stop_requested());
    s.returns.fetch_add(1);
    return {};
}

// --- the scenario ---

enum class ev_kind { service, probe, monitor, health };

// One event, copied out of a hook.
struct ev {
    ev_kind kind = ev_kind::service;
    std::string name; // "" for health
    std::string from, to;
    std::string reason;
    std::int64_t at_ns = 0;
    std::string detail;
    int pid = 0;
    std::uint32_t crashes = 0;
    std::int64_t delay_ns = 0;
    std::size_t health = 0; // index into scenario::healths (kind health)

    bool report() const { return kind == ev_kind::monitor && from == to; }
};

std::string describe(const ev& e) {
    static const char* kinds[] = {"service", "probe", "monitor", "health"};
    std::string out = kinds[static_cast<int>(e.kind)];
    out += " " + e.name + " " + e.from + " -> " + e.to + " (" + e.reason + ")";
    if (e.crashes != 0) {
        out += " crashes " + std::to_string(e.crashes);
    }
    if (!e.detail.empty()) {
        out += " : " + e.detail;
    }
    return out;
}

struct svc {
    std::string name;
    std::vector<std::string> argv, deps;
    std::vector<std::string_view> argv_v, deps_v;
    ServiceSpec spec;
};

struct mon {
    std::string name;
    std::vector<std::string> deps;
    std::vector<std::string_view> deps_v;
    MonitorSpec spec;
    mon_state state;
};

class scenario {
public:
    using step_fn = std::function<void(scenario&, const ev&)>;

    tempdir dir;
    RuntimeConfig cfg;
    std::unique_ptr<Runtime> rt;
    std::vector<ev> log;
    std::vector<HealthStatus> healths;
    step_fn step;
    // Called on every event, after it is logged (not only at safe points).
    std::function<void(scenario&)> on_any;
    std::int64_t start_ns = 0;
    bool stop_sent = false;
    bool timed_out = false;
    // Descriptors open before init() that the runtime takes over and closes
    // (RuntimeConfig::notify_fd), or that the test closes itself.
    int fds_gone = 0;
    int phase = 0;

    scenario() {
        cfg.handle_signals = false;
        cfg.stop_timeout = 10s;
        cfg.seed = 42;
        // Containment is not what this suite tests: process groups, so the
        // per-backend runs never share a cgroup.
        cfg.cgroup = "off";
        ::alarm(scenario_alarm_s);
    }
    ~scenario() {
        release_all();
        rt.reset();
        ::alarm(0);
    }
    scenario(const scenario&) = delete;
    scenario& operator=(const scenario&) = delete;

    std::string path(const char* leaf) const { return dir.path + "/" + leaf; }

    void use_notify() {
        notify_path_ = path("n");
        cfg.notify_dir = notify_path_;
    }

    // A service running svc_helper with `args`.
    ServiceSpec& add(const std::string& name, std::vector<std::string> args,
                     std::vector<std::string> deps = {}) {
        auto s = std::make_unique<svc>();
        s->name = name;
        s->argv = std::move(args);
        s->argv.insert(s->argv.begin(), helper_path());
        s->deps = std::move(deps);
        s->spec.backoff_initial = 50ms;
        s->spec.backoff_max = 1s;
        s->spec.backoff_jitter_percent = 0;
        s->spec.stop_timeout = 3s;
        s->spec.ready_timeout = 20s;
        svcs_.push_back(std::move(s));
        return svcs_.back()->spec;
    }

    ProbeSpec& add_probe(const std::string& name, ProbeKind kind, const std::string& target) {
        probes_.emplace_back();
        ProbeSpec& p = probes_.back();
        p.name = keep(name);
        p.kind = kind;
        p.target = keep(target);
        p.timeout = 2s;
        p.startup_initial = 50ms;
        p.startup_max = 200ms;
        p.startup_tries = 1000;
        p.interval = 100ms;
        return p;
    }
    std::string_view keep(const std::string& text) {
        strings_.push_back(std::make_unique<std::string>(text));
        return *strings_.back();
    }

    MonitorSpec& add_monitor(const std::string& name, MonitorFn fn,
                             std::vector<std::string> deps = {}) {
        auto m = std::make_unique<mon>();
        m->name = name;
        m->deps = std::move(deps);
        m->spec.run = fn;
        m->spec.arg = &m->state;
        m->spec.backoff_jitter_percent = 0;
        m->spec.stack_size = 64 * 1024;
        mons_.push_back(std::move(m));
        return mons_.back()->spec;
    }
    // A monitor that only waits: its heartbeats are the scenario's clock.
    MonitorSpec& add_clock(Duration period = 50ms) {
        MonitorSpec& c = add_monitor("clock", idle_fn);
        c.heartbeat_interval = period;
        return c;
    }
    mon_state& state_of(const std::string& name) {
        for (auto& m : mons_) {
            if (m->name == name) {
                return m->state;
            }
        }
        REQUIRE_MESSAGE(false, "no monitor " << name);
        return mons_.front()->state;
    }
    void release_all() {
        for (auto& m : mons_) {
            m->state.release.store(true);
        }
    }

    Result<void> init() {
        services_.clear();
        for (auto& s : svcs_) {
            s->argv_v.assign(s->argv.begin(), s->argv.end());
            s->deps_v.assign(s->deps.begin(), s->deps.end());
            s->spec.name = s->name;
            s->spec.argv = s->argv_v;
            s->spec.depends_on = s->deps_v;
            services_.push_back(s->spec);
        }
        monitors_.clear();
        for (auto& m : mons_) {
            m->deps_v.assign(m->deps.begin(), m->deps.end());
            m->spec.name = m->name;
            m->spec.depends_on = m->deps_v;
            monitors_.push_back(m->spec);
        }
        probe_table_.assign(probes_.begin(), probes_.end());
        fds_before_ = count_fds();
        rt = std::make_unique<Runtime>();
        Table t;
        t.runtime = cfg;
        t.services = services_;
        t.probes = probe_table_;
        t.monitors = monitors_;
        auto r = rt->init(t);
        if (!r) {
            return r;
        }
        check_backend(*rt);
        rt->set_transition_hook(&scenario::on_transition, this);
        rt->set_probe_hook(&scenario::on_probe, this);
        rt->set_monitor_hook(&scenario::on_monitor, this);
        rt->set_health_hook(&scenario::on_health, this);
        return r;
    }

    // init() if not done, start(), run() until stopped. `limit` after the
    // start, the next event stops the runtime and fails the test.
    void run(std::chrono::milliseconds limit = 30s) {
        if (!rt) {
            auto r = init();
            if (!r) {
                char buf[512];
                r.error().format(buf, sizeof buf);
                REQUIRE_MESSAGE(false, "init: " << buf);
            }
        }
        start_ns = now_ns();
        deadline_ns_ = start_ns + std::chrono::duration_cast<nanos>(limit).count();
        REQUIRE(rt->start().has_value());
        rt->run();
        CHECK(rt->stopped());
        CHECK_FALSE(timed_out);
        if (timed_out || env_is("CUSTOS_TEST_VERBOSE", "1")) {
            dump();
        }
    }

    void stop() {
        if (!stop_sent) {
            stop_sent = true;
            rt->stop();
        }
    }

    // Releases stubborn monitors, waits for every run function to return,
    // destroys the runtime, then checks it left nothing behind.
    void finish() {
        release_all();
        const std::int64_t until = now_ns() + ms_ns(10'000);
        for (auto& m : mons_) {
            while (m->state.returns.load() < m->state.runs.load() && now_ns() < until) {
                sleep_ms(5);
            }
            CHECK_MESSAGE(m->state.returns.load() == m->state.runs.load(),
                          "monitor " << m->name << " never returned");
            // Back in the pool's futex wait, its only sleep once the run
            // function has returned. A thread still on its way there is
            // "running" to the runtime's destructor, which abandons it and
            // keeps its descriptors (pool.cpp): on a slow board that window
            // was hit, and the descriptor count below came out 4 high.
            while (m->state.tid.load() != 0 && !sleeping(m->state.tid.load()) && now_ns() < until) {
                sleep_ms(1);
            }
        }
        std::vector<int> pids;
        for (const ev& e : log) {
            if (e.pid > 0) {
                pids.push_back(e.pid);
            }
        }
        rt.reset();
        for (int pid : pids) {
            CHECK_MESSAGE(!alive(pid), "service process " << pid << " still alive");
        }
        CHECK(count_fds() == fds_before_ - fds_gone);
    }

    // --- queries on the log ---

    // Position of the n-th (0-based) event of `name` into `to`, or -1.
    int index_of(const std::string& name, const std::string& to, int nth = 0) const {
        for (std::size_t i = 0; i < log.size(); ++i) {
            if (log[i].name == name && log[i].to == to && !log[i].report() && nth-- == 0) {
                return static_cast<int>(i);
            }
        }
        return -1;
    }
    // Position of the n-th report of `name` with `reason`, or -1.
    int report_index(const std::string& name, const std::string& reason, int nth = 0) const {
        for (std::size_t i = 0; i < log.size(); ++i) {
            if (log[i].name == name && log[i].report() && log[i].reason == reason && nth-- == 0) {
                return static_cast<int>(i);
            }
        }
        return -1;
    }
    int count(const std::string& name, const std::string& to) const {
        int n = 0;
        for (const ev& e : log) {
            n += e.name == name && e.to == to && !e.report() ? 1 : 0;
        }
        return n;
    }
    int reports(const std::string& name, const std::string& reason) const {
        int n = 0;
        for (const ev& e : log) {
            n += e.name == name && e.report() && e.reason == reason ? 1 : 0;
        }
        return n;
    }
    // The target states of `name`'s state changes (not reports), as one string.
    std::string states(const std::string& name) const {
        std::string out;
        for (const ev& e : log) {
            if (e.name == name && !e.report() && e.kind != ev_kind::health) {
                out += out.empty() ? "" : " ";
                out += e.to;
            }
        }
        return out;
    }
    // The state `name` was last seen entering before log position `before`.
    std::string state_before(const std::string& name, std::size_t before) const {
        std::string st = "stopped";
        for (std::size_t i = 0; i < before && i < log.size(); ++i) {
            if (log[i].name == name && !log[i].report()) {
                st = log[i].to;
            }
        }
        return st;
    }
    std::uint32_t service_index(const std::string& name) const {
        for (std::uint32_t i = 0; i < svcs_.size(); ++i) {
            if (svcs_[i]->name == name) {
                return i;
            }
        }
        return UINT32_MAX;
    }
    std::uint32_t monitor_index(const std::string& name) const {
        for (std::uint32_t i = 0; i < mons_.size(); ++i) {
            if (mons_[i]->name == name) {
                return i;
            }
        }
        return UINT32_MAX;
    }
    const HealthStatus* last_health() const { return healths.empty() ? nullptr : &healths.back(); }

    void dump() const {
        std::printf("--- events (%zu) ---\n", log.size());
        for (const ev& e : log) {
            std::printf("%+9.3f ms %s\n", static_cast<double>(e.at_ns - start_ns) / 1e6,
                        describe(e).c_str());
        }
    }

private:
    static void check_backend(const Runtime& r) {
        std::string why = r.backend_reason();
        if (env_is("CUSTOS_BACKEND", "epoll")) {
            REQUIRE_MESSAGE(why.rfind("epoll", 0) == 0, why);
        } else if (env_is("CUSTOS_BACKEND", "uring")) {
            REQUIRE_MESSAGE(why.rfind("io_uring", 0) == 0, why);
        }
    }

    void logged(const ev& e, bool safe) {
        log.push_back(e);
        if (on_any) {
            on_any(*this);
        }
        if (stop_sent || in_step_ || !safe) {
            return;
        }
        if (now_ns() > deadline_ns_) {
            timed_out = true;
            stop();
            return;
        }
        if (step) {
            in_step_ = true;
            step(*this, log.back());
            in_step_ = false;
        }
    }

    // Where a step may act: the supervisor has finished its own work for
    // the transition (entering `starting` is followed by the spawn,
    // `running` by arming the ready timeout).
    static bool safe_point(ServiceState to) {
        return to != ServiceState::starting && to != ServiceState::running;
    }

    static void on_transition(const Transition& t, void* ctx) {
        auto& s = *static_cast<scenario*>(ctx);
        ev e;
        e.kind = ev_kind::service;
        e.name = std::string(t.name);
        e.from = std::string(state_name(t.from));
        e.to = std::string(state_name(t.to));
        e.reason = R(t.reason);
        e.at_ns = t.at_ns;
        e.detail = std::string(t.detail);
        e.pid = t.pid;
        s.logged(e, safe_point(t.to));
    }

    static void on_probe(const ProbeTransition& t, void* ctx) {
        auto& s = *static_cast<scenario*>(ctx);
        ev e;
        e.kind = ev_kind::probe;
        e.name = std::string(t.name);
        e.from = std::string(probe_state_name(t.from));
        e.to = std::string(probe_state_name(t.to));
        e.reason = R(t.reason);
        e.at_ns = t.at_ns;
        e.detail = std::string(t.message);
        s.logged(e, true);
    }

    static void on_monitor(const MonitorTransition& t, void* ctx) {
        auto& s = *static_cast<scenario*>(ctx);
        ev e;
        e.kind = ev_kind::monitor;
        e.name = std::string(t.name);
        e.from = std::string(monitor_state_name(t.from));
        e.to = std::string(monitor_state_name(t.to));
        e.reason = R(t.reason);
        e.at_ns = t.at_ns;
        e.detail = std::string(t.detail);
        e.crashes = t.crashes;
        e.delay_ns = t.delay_ns;
        // Only reports are points to act at: a state change is reported from
        // the middle of the machine's work.
        s.logged(e, t.from == t.to);
    }

    static void on_health(const HealthStatus& h, void* ctx) {
        auto& s = *static_cast<scenario*>(ctx);
        s.healths.push_back(h);
        ev e;
        e.kind = ev_kind::health;
        e.to = std::string(health_name(h.health));
        e.at_ns = now_ns();
        e.detail = h.summary.c_str();
        e.health = s.healths.size() - 1;
        s.logged(e, true);
    }

    std::vector<std::unique_ptr<svc>> svcs_;
    std::vector<std::unique_ptr<mon>> mons_;
    std::deque<ProbeSpec> probes_;
    std::vector<std::unique_ptr<std::string>> strings_;
    std::vector<ServiceSpec> services_;
    std::vector<ProbeSpec> probe_table_;
    std::vector<MonitorSpec> monitors_;
    std::string notify_path_;
    std::int64_t deadline_ns_ = 0;
    bool in_step_ = false;
    int fds_before_ = -1;
};

// A reason of `h` about `name`, or nullptr.
const HealthReason* reason_about(const HealthStatus& h, std::string_view name) {
    for (std::uint32_t i = 0; i < h.reason_count; ++i) {
        if (h.reasons[i].name == name) {
            return &h.reasons[i];
        }
    }
    return nullptr;
}

} // namespace

TEST_SUITE("runtime") {

    TEST_CASE("a monitor waits for its service and its probe, then runs") {
        scenario s;
        s.use_notify();
        ServiceSpec& svc_spec = s.add("svc", {"notify-ready", "300"});
        svc_spec.ready = ReadyMode::notify;
        const std::string flag = s.path("flag");
        s.add_probe("flag", ProbeKind::file, flag);
        MonitorSpec& m = s.add_monitor("m", idle_fn, {"svc", "flag"});
        m.heartbeat_interval = 50ms;
        // The probe passes only once the test creates its file, after the
        // service is ready: the monitor must wait for both.
        s.step = [&flag](scenario& sc, const ev& e) {
            if (e.name == "svc" && e.to == "ready" && sc.phase == 0) {
                sc.phase = 1;
                int fd = ::open(flag.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                REQUIRE(fd >= 0);
                ::close(fd);
            }
            if (e.name == "m" && e.reason == "MonitorHeartbeat" &&
                sc.rt->monitor_status(0).beats >= 2) {
                sc.stop();
            }
        };
        s.run();

        const mon_state& ms = s.state_of("m");
        CHECK(ms.runs.load() == 1);
        CHECK(ms.stop_seen.load());
        CHECK(s.states("m") == "waiting running stopping stopped");
        const int waiting = s.index_of("m", "waiting");
        const int svc_ready = s.index_of("svc", "ready");
        const int probe_ready = s.index_of("flag", "ready");
        const int running = s.index_of("m", "running");
        REQUIRE(waiting >= 0);
        REQUIRE(svc_ready >= 0);
        REQUIRE(probe_ready >= 0);
        REQUIRE(running >= 0);
        CHECK(s.log[static_cast<std::size_t>(waiting)].reason == "WaitingForDependencies");
        // The hook order: waiting from the start, through the service's
        // readiness and the probe's, and only then running.
        CHECK(waiting < svc_ready);
        CHECK(svc_ready < probe_ready);
        CHECK(probe_ready < running);
        CHECK(s.log[static_cast<std::size_t>(running)].reason == "DependenciesReady");
        // Its thread ran only after both were ready.
        CHECK(ms.first_start_ns.load() >= s.log[static_cast<std::size_t>(probe_ready)].at_ns);
        // The service took ~300 ms to be ready: the monitor did not run before.
        CHECK(ms.first_start_ns.load() - s.start_ns >= ms_ns(300));
        s.finish();
    }

    TEST_CASE("on_dependency_down = stop: an operator's stop of the service stops the monitor, a "
              "start runs it again") {
        scenario s;
        s.add("db", {"sleep"});
        s.add_clock();
        MonitorSpec& m = s.add_monitor("m", idle_fn, {"db"});
        m.on_dependency_down = DependencyDownAction::stop;
        s.step = [](scenario& sc, const ev& e) {
            if (e.name != "clock" || e.reason != "MonitorHeartbeat") {
                return;
            }
            switch (sc.phase) {
            case 0:
                if (sc.count("m", "running") == 1) {
                    sc.phase = 1;
                    REQUIRE(sc.rt->stop_service("db").has_value());
                }
                break;
            case 1:
                if (sc.count("m", "waiting") >= 1 &&
                    sc.state_before("db", sc.log.size()) == "stopped" &&
                    sc.state_before("m", sc.log.size()) == "waiting") {
                    sc.phase = 2;
                    REQUIRE(sc.rt->start_service("db").has_value());
                }
                break;
            case 2:
                if (sc.count("m", "running") == 2) {
                    sc.phase = 3;
                    sc.stop();
                }
                break;
            default:
                break;
            }
        };
        s.run();

        CHECK(s.phase == 3);
        const mon_state& ms = s.state_of("m");
        CHECK(ms.runs.load() == 2);
        CHECK(ms.last_run_number.load() == 2);
        // Asked to stop by the dependency, back to waiting, then running again.
        const int db_stopping = s.index_of("db", "stopping");
        const int m_stopping = s.index_of("m", "stopping");
        const int m_waiting = s.index_of("m", "waiting", s.count("m", "waiting") - 1);
        const int db_ready2 = s.index_of("db", "ready", 1);
        const int m_running2 = s.index_of("m", "running", 1);
        REQUIRE(db_stopping >= 0);
        REQUIRE(m_stopping >= 0);
        REQUIRE(m_waiting >= 0);
        REQUIRE(db_ready2 >= 0);
        REQUIRE(m_running2 >= 0);
        CHECK(s.log[static_cast<std::size_t>(m_stopping)].reason == "DependencyDown");
        CHECK(s.log[static_cast<std::size_t>(m_waiting)].reason == "DependencyDown");
        CHECK(s.log[static_cast<std::size_t>(m_running2)].reason == "DependenciesReady");
        CHECK(db_stopping < m_stopping);
        CHECK(m_stopping < m_waiting);
        CHECK(m_waiting < db_ready2);
        CHECK(db_ready2 < m_running2);
        // Nothing ran it between: exactly two runs, the first ended by the stop.
        CHECK(s.count("m", "running") == 2);
        CHECK(s.count("m", "backoff") == 0);
        s.finish();
    }

    TEST_CASE("a crashing monitor: MonitorCrashed at every crash, MonitorDegraded at 3 and 6, "
              "health degraded in its backoff") {
        scenario s;
        MonitorSpec& c = s.add_monitor("crash", crash_fn);
        c.backoff_initial = 50ms;
        c.backoff_max = 50ms;
        c.backoff_multiplier_x100 = 100;
        c.backoff_jitter_percent = 0;
        c.degraded_every = 3;
        s.add_clock();
        s.step = [](scenario& sc, const ev& e) {
            if (e.name == "clock" && sc.count("crash", "backoff") >= 7) {
                sc.stop();
            }
        };
        s.run();

        const int crashes = s.count("crash", "backoff");
        CHECK(crashes >= 7);
        std::uint32_t k = 0;
        for (std::size_t i = 0; i < s.log.size(); ++i) {
            const ev& e = s.log[i];
            if (e.name != "crash" || e.to != "backoff" || e.report()) {
                continue;
            }
            ++k;
            CAPTURE(k);
            CHECK(e.reason == "MonitorCrashed");
            CHECK(e.from == "running");
            CHECK(e.crashes == k); // consecutive: never reset (stable_after 60 s)
            CHECK(e.delay_ns == ms_ns(50));
            CHECK(e.detail.find("10.0.0.9:502") != std::string::npos);
            // Every third: MonitorDegraded on the crash's heels.
            const bool degraded_next = i + 1 < s.log.size() && s.log[i + 1].name == "crash" &&
                                       s.log[i + 1].report() &&
                                       s.log[i + 1].reason == "MonitorDegraded";
            CHECK(degraded_next == (k % 3 == 0));
            if (degraded_next) {
                CHECK(s.log[i + 1].crashes == k);
            }
        }
        REQUIRE(s.report_index("crash", "MonitorDegraded", 1) >= 0);
        CHECK(s.log[static_cast<std::size_t>(s.report_index("crash", "MonitorDegraded", 0))]
                  .crashes == 3);
        CHECK(s.log[static_cast<std::size_t>(s.report_index("crash", "MonitorDegraded", 1))]
                  .crashes == 6);
        // Every restart after its backoff.
        for (int n = 0; n + 1 < crashes; ++n) {
            const int bo = s.index_of("crash", "backoff", n);
            const int next = s.index_of("crash", "running", n + 1);
            REQUIRE(next > bo);
            CHECK(s.log[static_cast<std::size_t>(next)].reason == "BackoffElapsed");
            // (The backoff transition is stamped a moment after the time the
            // delay counts from: 1 ms of slack.)
            CHECK(s.log[static_cast<std::size_t>(next)].at_ns -
                      s.log[static_cast<std::size_t>(bo)].at_ns >=
                  ms_ns(49));
        }
        // Health: every change seen while the monitor was in its backoff says
        // degraded, with the crash as its reason; and there was such a change.
        int degraded_in_backoff = 0;
        for (std::size_t i = 0; i < s.log.size(); ++i) {
            const ev& e = s.log[i];
            if (e.kind != ev_kind::health) {
                continue;
            }
            const HealthStatus& h = s.healths[e.health];
            CAPTURE(e.detail);
            CHECK(h.health != Health::failed); // nothing critical
            if (s.state_before("crash", i) != "backoff") {
                continue;
            }
            CHECK(h.health == Health::degraded);
            const HealthReason* r = reason_about(h, "crash");
            REQUIRE(r != nullptr);
            CHECK(r->kind == SubjectKind::monitor);
            CHECK(r->state == std::string_view("backoff"));
            // The reason is the crash's own error, with its message.
            CHECK(r->reason == Reason::probe_connect_refused);
            CHECK(r->message == std::string_view("device 10.0.0.9:502"));
            CHECK_FALSE(r->fails);
            ++degraded_in_backoff;
        }
        CHECK(degraded_in_backoff >= 1);
        const MonitorStatus st = s.rt->monitor_status(s.monitor_index("crash"));
        CHECK(st.name == std::string_view("crash"));
        CHECK(st.crashes >= 7);
        CHECK(st.runs == s.state_of("crash").runs.load());
        CHECK(st.last_crash.reason == Reason::probe_connect_refused);
        CHECK(st.last_crash.message == std::string_view("device 10.0.0.9:502"));
        s.finish();
    }

    TEST_CASE("health: a critical service that fails makes it failed, at once") {
        scenario s;
        s.use_notify();
        ServiceSpec& core = s.add("core", {"exit", "1"});
        core.restart = RestartPolicy::never;
        core.critical = true;
        ServiceSpec& slow = s.add("slow", {"notify-ready", "300"});
        slow.ready = ReadyMode::notify;
        s.step = [](scenario& sc, const ev& e) {
            if (e.kind == ev_kind::health && e.to == "failed" && sc.healths[e.health].settled) {
                sc.stop();
            }
        };
        s.run();

        REQUIRE(!s.healths.empty());
        CHECK(s.healths.front().health == Health::starting);
        CHECK_FALSE(s.healths.front().settled);
        CHECK(s.index_of("core", "failed") >= 0);
        // failed from the core's failure on, even before the start settled.
        bool seen_failed = false;
        for (std::size_t i = 0; i < s.log.size(); ++i) {
            const ev& e = s.log[i];
            if (e.kind != ev_kind::health) {
                continue;
            }
            const HealthStatus& h = s.healths[e.health];
            CAPTURE(e.detail);
            if (s.state_before("core", i) != "failed") {
                CHECK(h.health != Health::failed);
                continue;
            }
            seen_failed = true;
            CHECK(h.health == Health::failed);
            REQUIRE(h.reason_count >= 1);
            const HealthReason& r = h.reasons[0];
            CHECK(r.name == std::string_view("core"));
            CHECK(r.kind == SubjectKind::service);
            CHECK(r.critical);
            CHECK(r.fails);
            CHECK(r.state == std::string_view("failed"));
            CHECK(std::string(h.summary.c_str()).find("core") != std::string::npos);
        }
        CHECK(seen_failed);
        const HealthStatus* last = s.last_health();
        REQUIRE(last != nullptr);
        CHECK(last->settled);
        CHECK_FALSE(last->critical_ready);
        // The whole-runtime view agrees.
        CHECK(s.rt->health().health == Health::failed);
        s.finish();
    }

    TEST_CASE("health: a non-critical service that fails makes it degraded once settled") {
        scenario s;
        s.use_notify();
        ServiceSpec& flaky = s.add("flaky", {"exit", "1"});
        flaky.restart = RestartPolicy::never;
        ServiceSpec& slow = s.add("slow", {"notify-ready", "300"});
        slow.ready = ReadyMode::notify;
        slow.critical = true;
        s.step = [](scenario& sc, const ev& e) {
            if (e.kind == ev_kind::health && sc.healths[e.health].settled) {
                sc.stop();
            }
        };
        s.run();

        REQUIRE(!s.healths.empty());
        const int slow_ready = s.index_of("slow", "ready");
        REQUIRE(slow_ready >= 0);
        CHECK(s.index_of("flaky", "failed") >= 0);
        int settled_at = -1;
        for (std::size_t i = 0; i < s.log.size(); ++i) {
            const ev& e = s.log[i];
            if (e.kind != ev_kind::health) {
                continue;
            }
            const HealthStatus& h = s.healths[e.health];
            CAPTURE(e.detail);
            CHECK(h.health != Health::failed);
            if (!h.settled) {
                CHECK(h.health == Health::starting);
                continue;
            }
            if (settled_at < 0) {
                settled_at = static_cast<int>(i);
            }
            CHECK(h.health == Health::degraded);
            CHECK(h.critical_ready);
            REQUIRE(h.reason_count >= 1);
            CHECK(h.reasons[0].name == std::string_view("flaky"));
            CHECK_FALSE(h.reasons[0].fails);
            CHECK_FALSE(h.reasons[0].critical);
            CHECK(h.reasons[0].state == std::string_view("failed"));
        }
        // Starting lasted until the slow service was ready.
        REQUIRE(settled_at >= 0);
        CHECK(slow_ready < settled_at);
        CHECK(s.healths.front().health == Health::starting);
        s.finish();
    }

    TEST_CASE("health: a probe that never leaves unknown keeps it starting until the boot grace, "
              "then degraded (BootGraceExpired)") {
        scenario s;
        s.cfg.boot_grace = 500ms;
        s.add("svc", {"sleep"});
        // Its first check never finishes (a run that sleeps, with a long
        // timeout): the probe stays unknown with no failure of its own.
        ProbeSpec& p = s.add_probe("never", ProbeKind::exec, "");
        const std::string_view never_argv[] = {s.keep(helper_path()), "sleep"};
        p.argv = never_argv;
        p.timeout = 30s;
        // One whose checks fail at once (a closed local port) but that stays in
        // its startup phase: unknown too, with its own failure as the reason.
        ProbeSpec& refused = s.add_probe("refused", ProbeKind::tcp, "127.0.0.1:1");
        refused.startup_initial = 100ms;
        refused.startup_max = 100ms;
        refused.startup_tries = 1000;
        s.step = [](scenario& sc, const ev& e) {
            if (e.kind == ev_kind::health && e.to != "starting") {
                sc.stop();
            }
        };
        s.run();

        // Starting (its reasons may change as the refused checks fail), then
        // degraded.
        std::size_t first = 0;
        while (first < s.healths.size() && s.healths[first].health == Health::starting) {
            CHECK_FALSE(s.healths[first].settled);
            ++first;
        }
        REQUIRE(first >= 1);
        REQUIRE(first < s.healths.size());
        // While starting, the reasons already say why the refused probe is
        // not ready (its checks fail without a transition).
        bool refused_seen = false;
        for (std::size_t i = 0; i < first; ++i) {
            const HealthReason* r = reason_about(s.healths[i], "refused");
            refused_seen =
                refused_seen || (r != nullptr && r->reason == Reason::probe_connect_refused);
        }
        CHECK(refused_seen);
        const HealthStatus& h = s.healths[first];
        CHECK(h.health == Health::degraded);
        CHECK(h.settled);
        // Never before the grace; not long after it.
        CHECK(h.since_ns - s.start_ns >= ms_ns(500));
        CHECK(h.since_ns - s.start_ns <= ms_ns(500 + 3000) + tolerance_ns());
        REQUIRE(h.reason_count >= 1);
        CHECK(h.reasons[0].kind == SubjectKind::probe);
        CHECK(h.reasons[0].name == std::string_view("never"));
        CHECK(h.reasons[0].state == std::string_view("unknown"));
        CHECK(h.reasons[0].reason == Reason::boot_grace_expired);
        CHECK_FALSE(h.reasons[0].fails);
        REQUIRE(h.reason_count >= 2);
        CHECK(h.reasons[1].name == std::string_view("refused"));
        CHECK(h.reasons[1].state == std::string_view("unknown"));
        CHECK(h.reasons[1].reason == Reason::probe_connect_refused);
        CHECK(s.rt->probe_status(1).state == ProbeState::unknown);
        CHECK(s.rt->probe_status(1).failures >= 1);
        s.finish();
    }

    TEST_CASE("on_wedge = exit: a monitor that stops beating stops the runtime, exit code 70") {
        scenario s;
        s.add("svc", {"sleep"});
        MonitorSpec& w = s.add_monitor("w", wedge_fn);
        w.deadline = 200ms;
        w.on_wedge = WedgeAction::exit;
        w.critical = true;
        // No step: run() must return on its own.
        s.run();

        CHECK(s.rt->exit_code() == Runtime::exit_wedged);
        const int suspected = s.report_index("w", "MonitorWedgeSuspected");
        const int wedged = s.index_of("w", "wedged");
        const int svc_stopping = s.index_of("svc", "stopping");
        REQUIRE(suspected >= 0);
        REQUIRE(wedged >= 0);
        REQUIRE(svc_stopping >= 0);
        CHECK(suspected < wedged);
        CHECK(wedged < svc_stopping);
        CHECK(s.log[static_cast<std::size_t>(wedged)].reason == "MonitorWedged");
        CHECK(s.log[static_cast<std::size_t>(wedged)].detail.find("wchan") != std::string::npos);
        // Never early: half the deadline, the whole deadline after the last beat.
        const std::int64_t last_beat = s.state_of("w").last_beat_ns.load();
        CHECK(s.log[static_cast<std::size_t>(suspected)].at_ns - last_beat >= ms_ns(100));
        CHECK(s.log[static_cast<std::size_t>(wedged)].at_ns - last_beat >= ms_ns(200));
        CHECK(s.log[static_cast<std::size_t>(wedged)].at_ns - last_beat <=
              ms_ns(200 + 2000) + tolerance_ns());
        // The monitor was asked to stop (it returns when asked), then the
        // service stopped: every service is stopped.
        CHECK(s.state_of("w").stop_seen.load());
        CHECK(s.index_of("w", "stopping") > wedged);
        CHECK(s.index_of("w", "stopping") < svc_stopping);
        for (std::uint32_t i = 0; i < s.rt->service_count(); ++i) {
            const ServiceStatus st = s.rt->status(i);
            CAPTURE(st.name.c_str());
            CHECK(st.state == ServiceState::stopped);
            CHECK(st.pid == 0);
        }
        CHECK(s.rt->monitor_status(0).state == MonitorState::stopped);
        // Critical and wedged: health failed, with it as the reason.
        bool failed_seen = false;
        for (std::size_t i = static_cast<std::size_t>(wedged); i < s.log.size(); ++i) {
            if (s.log[i].kind != ev_kind::health) {
                continue;
            }
            const HealthStatus& h = s.healths[s.log[i].health];
            CHECK(h.health == Health::failed);
            REQUIRE(h.reason_count >= 1);
            CHECK(h.reasons[0].name == std::string_view("w"));
            CHECK(h.reasons[0].kind == SubjectKind::monitor);
            CHECK(h.reasons[0].state == std::string_view("wedged"));
            CHECK(h.reasons[0].fails);
            failed_seen = true;
        }
        CHECK(failed_seen);
        s.finish();
    }

    TEST_CASE("the stop: monitors asked in reverse order, one ignoring it is reported "
              "(StopTimeout), services only after them") {
        scenario s;
        s.cfg.monitor_stop_timeout = 600ms;
        s.add("svc", {"sleep"});
        s.add_clock(); // "clock": first in the table, asked last
        s.add_monitor("stubborn", stubborn_fn);
        s.add_monitor("quick", idle_fn);
        s.step = [](scenario& sc, const ev& e) {
            if (e.name == "clock" && sc.count("clock", "running") == 1 &&
                sc.count("stubborn", "running") == 1 && sc.count("quick", "running") == 1) {
                sc.stop();
            }
        };
        s.run();

        const int quick_stopping = s.index_of("quick", "stopping");
        const int quick_stopped = s.index_of("quick", "stopped");
        const int stubborn_stopping = s.index_of("stubborn", "stopping");
        const int timeout = s.report_index("stubborn", "StopTimeout");
        const int clock_stopping = s.index_of("clock", "stopping");
        const int clock_stopped = s.index_of("clock", "stopped");
        const int svc_stopping = s.index_of("svc", "stopping");
        REQUIRE(quick_stopping >= 0);
        REQUIRE(quick_stopped >= 0);
        REQUIRE(stubborn_stopping >= 0);
        REQUIRE(timeout >= 0);
        REQUIRE(clock_stopping >= 0);
        REQUIRE(clock_stopped >= 0);
        REQUIRE(svc_stopping >= 0);
        for (int i : {quick_stopping, stubborn_stopping, clock_stopping}) {
            CHECK(s.log[static_cast<std::size_t>(i)].reason == "RuntimeStop");
        }
        // Reverse table order, one at a time: the next is asked once the one
        // before returned or ran out of its share.
        CHECK(quick_stopping < quick_stopped);
        CHECK(quick_stopped < stubborn_stopping);
        CHECK(stubborn_stopping < timeout);
        CHECK(timeout < clock_stopping);
        CHECK(clock_stopping < clock_stopped);
        // The services only after every monitor returned or was abandoned.
        CHECK(clock_stopped < svc_stopping);
        CHECK(timeout < svc_stopping);
        // The stubborn one had a share of the budget (600 ms over the two left,
        // less what the quick one took), and was abandoned, still stopping.
        const std::int64_t waited = s.log[static_cast<std::size_t>(timeout)].at_ns -
                                    s.log[static_cast<std::size_t>(stubborn_stopping)].at_ns;
        CHECK(waited >= ms_ns(100));
        CHECK(waited <= ms_ns(600 + 2000) + tolerance_ns());
        CHECK(s.log[static_cast<std::size_t>(timeout)].detail.find("abandoned") !=
              std::string::npos);
        CHECK(s.count("stubborn", "stopped") == 0);
        CHECK(s.rt->monitor_status(s.monitor_index("stubborn")).state == MonitorState::stopping);
        CHECK(s.rt->monitor_status(s.monitor_index("quick")).state == MonitorState::stopped);
        CHECK(s.rt->status(0).state == ServiceState::stopped);
        CHECK(s.state_of("quick").stop_seen.load());
        CHECK(s.state_of("clock").stop_seen.load());
        // finish() releases the stubborn one and waits for it to return.
        s.finish();
        CHECK(s.state_of("stubborn").stop_seen.load());
    }

    namespace {

    // A datagram socket standing in for systemd's NOTIFY_SOCKET; drained on the
    // reactor thread, at every event, so that what it holds at an event was
    // sent before that event.
    struct upstream {
        int fd = -1;
        std::string path;
        struct msg {
            std::string line;
            std::size_t at_event; // log size when it was drained
            std::int64_t at_ns;
        };
        std::vector<msg> got;

        explicit upstream(std::string p) : path(std::move(p)) {
            fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            REQUIRE(fd >= 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            REQUIRE(path.size() < sizeof a.sun_path);
            std::memcpy(a.sun_path, path.data(), path.size());
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
            int big = 1 << 20;
            ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        }
        ~upstream() {
            ::close(fd);
            ::unlink(path.c_str());
        }
        upstream(const upstream&) = delete;
        upstream& operator=(const upstream&) = delete;

        void drain(std::size_t at_event) {
            char buf[4096];
            while (true) {
                ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n < 0) {
                    break;
                }
                // One datagram may carry several lines.
                std::string d(buf, static_cast<std::size_t>(n));
                std::size_t pos = 0;
                while (pos < d.size()) {
                    std::size_t end = d.find('\n', pos);
                    if (end == std::string::npos) {
                        end = d.size();
                    }
                    if (end > pos) {
                        got.push_back({d.substr(pos, end - pos), at_event, now_ns()});
                    }
                    pos = end + 1;
                }
            }
        }
        int count(const std::string& line) const {
            int n = 0;
            for (const msg& m : got) {
                n += m.line == line ? 1 : 0;
            }
            return n;
        }
        int count_prefix(const std::string& prefix) const {
            int n = 0;
            for (const msg& m : got) {
                n += m.line.rfind(prefix, 0) == 0 ? 1 : 0;
            }
            return n;
        }
        // Position in `got` of the first `line`, or -1.
        int first(const std::string& line) const {
            for (std::size_t i = 0; i < got.size(); ++i) {
                if (got[i].line == line) {
                    return static_cast<int>(i);
                }
            }
            return -1;
        }
    };

    } // namespace

    TEST_CASE("upward: READY=1 after the critical service, STATUS=, WATCHDOG=1 withheld while "
              "failed under gate = health, STOPPING=1") {
        scenario s;
        s.use_notify();
        s.cfg.keepalive_gate = KeepaliveGate::health;
        ServiceSpec& core = s.add("core", {"notify-ready", "300"});
        core.ready = ReadyMode::notify;
        core.critical = true;
        ServiceSpec& vital = s.add("vital", {"sleep"});
        vital.critical = true;
        vital.restart = RestartPolicy::never;
        // What a service sees of the environment: never custos's own
        // NOTIFY_SOCKET and WATCHDOG_*.
        const std::string env_file = s.path("env");
        s.add("envdump", {"env", env_file});
        s.add_clock();
        upstream up(s.path("up"));
        // s6 readiness on a pipe at the same time: custos takes the write end.
        int s6[2];
        REQUIRE(::pipe2(s6, O_CLOEXEC | O_NONBLOCK) == 0);
        s.cfg.notify_fd = s6[1];
        s.fds_gone = 2; // the write end closed by the runtime, the read end here

        // Set for the whole run (the services are spawned meanwhile), unset
        // when the test ends however it ends.
        struct env_guard {
            ~env_guard() {
                ::unsetenv("NOTIFY_SOCKET");
                ::unsetenv("WATCHDOG_USEC");
                ::unsetenv("WATCHDOG_PID");
            }
        } guard;
        ::setenv("NOTIFY_SOCKET", up.path.c_str(), 1);
        ::setenv("WATCHDOG_USEC", "400000", 1);
        ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
        auto r = s.init();
        REQUIRE(r.has_value());
        CHECK(std::string(s.rt->backend_reason()).find("notify upward") != std::string::npos);

        // The pipe: the log position of its newline, and of its EOF.
        std::string s6_got;
        int s6_ready_at = -1;
        int s6_eof_at = -1;
        auto drain_s6 = [&](std::size_t at) {
            char buf[16];
            ssize_t n;
            while ((n = ::read(s6[0], buf, sizeof buf)) > 0) {
                s6_got.append(buf, static_cast<std::size_t>(n));
                if (s6_ready_at < 0) {
                    s6_ready_at = static_cast<int>(at);
                }
            }
            if (n == 0 && s6_eof_at < 0) {
                s6_eof_at = static_cast<int>(at);
            }
        };
        s.on_any = [&](scenario& sc) {
            up.drain(sc.log.size());
            drain_s6(sc.log.size());
        };
        int pings_at_failed = -1;
        std::int64_t failed_ns = 0;
        s.step = [&](scenario& sc, const ev& e) {
            switch (sc.phase) {
            case 0:
                // Ready upward, and a few keepalives while healthy: then the
                // critical "vital" dies (restart = never: failed).
                if (up.count("READY=1") == 1 && up.count("WATCHDOG=1") >= 3 &&
                    ::access(env_file.c_str(), F_OK) == 0) {
                    sc.phase = 1;
                    const ServiceStatus st = sc.rt->status(sc.service_index("vital"));
                    REQUIRE(st.pid > 0);
                    ::kill(st.pid, SIGKILL);
                }
                break;
            case 1:
                if (e.kind == ev_kind::health && e.to == "failed") {
                    sc.phase = 2;
                    pings_at_failed = up.count("WATCHDOG=1");
                    failed_ns = now_ns();
                }
                break;
            case 2:
                // About a second of failed health (5 keepalive intervals).
                if (now_ns() - failed_ns >= ms_ns(1000)) {
                    sc.phase = 3;
                    CHECK(up.count("WATCHDOG=1") == pings_at_failed);
                    sc.stop();
                }
                break;
            default:
                break;
            }
        };
        s.run();
        up.drain(s.log.size());
        drain_s6(s.log.size());
        ::close(s6[0]);
        for (const upstream::msg& m : up.got) {
            MESSAGE("upward at event " << m.at_event << ": " << m.line);
        }

        CHECK(s.phase == 3);
        const int core_ready = s.index_of("core", "ready");
        REQUIRE(core_ready >= 0);
        // READY=1 once, only after the critical service was ready (it was not
        // in the socket when the service's ready transition was reported).
        CHECK(up.count("READY=1") == 1);
        const int ready = up.first("READY=1");
        REQUIRE(ready >= 0);
        CHECK(up.got[static_cast<std::size_t>(ready)].at_event >
              static_cast<std::size_t>(core_ready));
        // STATUS= lines: at least the starting one and the failure.
        CHECK(up.count_prefix("STATUS=") >= 2);
        bool status_names_vital = false;
        for (const upstream::msg& m : up.got) {
            status_names_vital = status_names_vital || (m.line.rfind("STATUS=", 0) == 0 &&
                                                        m.line.find("vital") != std::string::npos);
        }
        CHECK(status_names_vital);
        // Keepalives while healthy; none while failed.
        CHECK(pings_at_failed >= 2);
        CHECK(up.count("WATCHDOG=1") == pings_at_failed);
        // STOPPING=1 at the stop, once, and nothing after it but STATUS=.
        CHECK(up.count("STOPPING=1") == 1);
        const int stopping = up.first("STOPPING=1");
        REQUIRE(stopping >= 0);
        for (std::size_t i = static_cast<std::size_t>(stopping) + 1; i < up.got.size(); ++i) {
            CHECK(up.got[i].line != "READY=1");
        }
        // s6: one newline, after the critical service was ready; then closed.
        CHECK(s6_got == "\n");
        CHECK(s6_ready_at > core_ready);
        CHECK(s6_eof_at >= s6_ready_at);
        // The service's environment had none of custos's own.
        std::string env;
        if (std::FILE* f = std::fopen(env_file.c_str(), "r")) {
            char buf[4096];
            std::size_t n;
            while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
                env.append(buf, n);
            }
            std::fclose(f);
        }
        REQUIRE(env.find("env:") != std::string::npos);
        CHECK(env.find("env:NOTIFY_SOCKET=") == std::string::npos);
        CHECK(env.find("env:WATCHDOG_USEC=") == std::string::npos);
        CHECK(env.find("env:WATCHDOG_PID=") == std::string::npos);
        s.finish();
    }

    TEST_CASE("monitor status and health read from another thread are whole records") {
        scenario s;
        s.add_monitor("beater", busy_fn);
        MonitorSpec& c = s.add_monitor("crasher", crash_fn);
        c.backoff_initial = 10ms;
        c.backoff_max = 10ms;
        c.backoff_multiplier_x100 = 100;
        c.degraded_every = 4;
        s.add_clock();
        REQUIRE(s.init().has_value());

        std::atomic<bool> done{false};
        std::atomic<std::uint64_t> reads{0};
        std::atomic<std::uint64_t> bad{0};
        std::atomic<std::uint32_t> states_seen{0}; // bit per crasher state
        const char* names[] = {"beater", "crasher", "clock"};
        std::thread reader([&] {
            Runtime& rt = *s.rt;
            while (!done.load()) {
                for (std::uint32_t i = 0; i < 3; ++i) {
                    const MonitorStatus st = rt.monitor_status(i);
                    // init() published the table: the name is always there.
                    const bool name_ok = st.name == std::string_view(names[i]);
                    const bool state_ok = static_cast<std::size_t>(st.state) < monitor_state_count;
                    const bool text_ok =
                        std::strlen(st.last_crash.message.c_str()) == st.last_crash.message.size();
                    if (!name_ok || !state_ok || !text_ok) {
                        bad.fetch_add(1);
                    }
                    if (i == 1 && state_ok) {
                        states_seen.fetch_or(1u << static_cast<unsigned>(st.state));
                    }
                }
                const HealthStatus h = rt.health();
                const bool health_ok = static_cast<std::size_t>(h.health) < health_count &&
                                       h.reason_count <= health_reason_capacity &&
                                       h.reason_count <= h.reason_total &&
                                       std::strlen(h.summary.c_str()) == h.summary.size();
                bool reasons_ok = true;
                for (std::uint32_t k = 0; health_ok && k < h.reason_count; ++k) {
                    const std::string_view n = h.reasons[k].name;
                    reasons_ok = reasons_ok && (n == "beater" || n == "crasher" || n == "clock");
                }
                if (!health_ok || !reasons_ok) {
                    bad.fetch_add(1);
                }
                reads.fetch_add(1);
            }
        });
        s.step = [&reads](scenario& sc, const ev& e) {
            if (e.name == "clock" && sc.count("crasher", "backoff") >= 30 && reads.load() >= 200) {
                sc.stop();
            }
        };
        s.run();
        done.store(true);
        reader.join();

        MESSAGE("reads: " << reads.load() << ", crashes: " << s.count("crasher", "backoff"));
        CHECK(reads.load() >= 200);
        CHECK(bad.load() == 0);
        // The reader saw the crasher both running and in its backoff.
        const std::uint32_t seen = states_seen.load();
        CHECK((seen & (1u << static_cast<unsigned>(MonitorState::backoff))) != 0);
        CHECK(s.rt->monitor_status(0).beats > 0);
        CHECK(s.rt->monitor_status(0).ticks > 0);
        s.finish();
    }

} // TEST_SUITE("runtime")

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    // The closer thread and its doorbell live as long as the process (the
    // first Runtime with a notify socket starts it): start it before any
    // scenario counts its descriptors.
    if (!custos::process::fd_closer::process().start().has_value()) {
        std::printf("cannot start the fd closer thread\n");
        return 1;
    }
    struct sigaction sa {};
    sa.sa_handler = &on_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, nullptr);

    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
