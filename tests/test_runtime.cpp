// custos::Runtime with real processes (tests/svc_helper.cpp plays the
// services): restarts and their reasons, SIGKILL escalation, grandchildren
// and the subreaper, readiness (notify, s6 fd), the software watchdog, the
// environment a service gets, exec failures, dependency and stop order, a
// crash storm, and operator actions.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll) and
// once more with CUSTOS_SPAWN=vfork-nopidfd on epoll, where exits are watched
// through SIGCHLD; a backend the kernel refuses makes the run exit 77. With
// --client=systemd-notify it runs only the "real client:" cases, and exits
// 77 when systemd-notify is not installed; with --subreaper only the
// "subreaper:" cases (grandchildren), exiting 77 where the process cannot
// be a child subreaper (qemu-user refuses the prctl): a skip, never a pass.
// With --embed only the "embedding:" case, in a process no earlier case has
// made a subreaper; meson runs it on every spawn method and backend, i.e.
// on every exit-watch tier.
//
// There is no timer API on Runtime, so a scenario is driven from the
// transition hook: each test gives a `step` that looks at the transitions
// so far and acts (kills a process, calls an operator action, stops the
// runtime). Steps run only at points where the supervisor has finished its
// own work for that transition (see safe_point()). Scenarios that need time
// to pass without transitions add a "tick" service that exits and restarts
// every 50 ms: a clock made of transitions.
//
// Every scenario also checks, once its Runtime is destroyed, that every
// process it spawned is gone, that the test process has no zombie child,
// and that it holds as many descriptors as before init().
#define DOCTEST_CONFIG_IMPLEMENT
#include "backend_probe.hpp"
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

#include <custos/runtime.hpp>
#include <custos/service.hpp>

#include "io/reactor.hpp"
#include "process/cgroup.hpp"
#include "process/fd_closer.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

// A hard guard: a scenario that hangs (no transition ever lets it stop)
// fails the binary instead of waiting for meson's timeout.
constexpr unsigned scenario_alarm_s = 120;

void on_alarm(int) {
    const char msg[] = "test_runtime: a scenario hung (alarm); failing\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::_Exit(1);
}

// --containment-off: the "no stray process:" cases with cgroups off and a
// pid record (the fallback); otherwise every scenario runs in a cgroup root
// of its own where cgroup2 is usable (root), so the binaries meson runs in
// parallel (one per backend) never share one.
bool g_cgroups_off = false;

std::string test_cgroup_root() {
    static int n = 0;
    char mount[256];
    if (g_cgroups_off || ::geteuid() != 0 ||
        !custos::process::find_cgroup2_mount(mount, sizeof mount).has_value()) {
        return "off";
    }
    return std::string(mount) + "/custos-rt-" + std::to_string(::getpid()) + "-" +
           std::to_string(n++);
}

std::int64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

constexpr std::int64_t ms_ns(std::int64_t ms) {
    return ms * 1'000'000;
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

std::string find_in_path(const char* prog) {
    const char* path = std::getenv("PATH");
    std::string p = path != nullptr ? path : "/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        if (end == std::string::npos) {
            end = p.size();
        }
        std::string cand = p.substr(start, end - start) + "/" + prog;
        if (::access(cand.c_str(), X_OK) == 0) {
            return cand;
        }
        start = end + 1;
    }
    return {};
}

// --- /proc ---

// Fields of /proc/PID/stat after the command: state, ppid. False when the
// process does not exist (any more).
bool proc_stat(int pid, char* state, int* ppid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    std::FILE* f = std::fopen(path, "r");
    if (f == nullptr) {
        return false;
    }
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* close = std::strrchr(buf, ')');
    if (close == nullptr) {
        return false;
    }
    char st = 0;
    int pp = 0;
    if (std::sscanf(close + 1, " %c %d", &st, &pp) != 2) {
        return false;
    }
    *state = st;
    *ppid = pp;
    return true;
}

// 0 when gone.
char proc_state(int pid) {
    char st = 0;
    int pp = 0;
    return proc_stat(pid, &st, &pp) ? st : 0;
}

int proc_ppid(int pid) {
    char st = 0;
    int pp = 0;
    return proc_stat(pid, &st, &pp) ? pp : -1;
}

// Alive: exists and is neither a zombie nor dead.
bool alive(int pid) {
    char s = proc_state(pid);
    return s != 0 && s != 'Z' && s != 'X';
}

// alive(), after giving a SIGKILL already sent up to `grace` to land: its
// delivery is asynchronous (under qemu-user, by a host thread, and slow).
bool still_alive(int pid, std::chrono::milliseconds grace = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + grace;
    while (alive(pid) && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return alive(pid);
}

// Children of this process in state Z.
std::vector<int> zombie_children() {
    std::vector<int> out;
    DIR* d = ::opendir("/proc");
    if (d == nullptr) {
        return out;
    }
    int self = ::getpid();
    while (dirent* e = ::readdir(d)) {
        int pid = std::atoi(e->d_name);
        char st = 0;
        int pp = 0;
        if (pid > 0 && proc_stat(pid, &st, &pp) && pp == self && st == 'Z') {
            out.push_back(pid);
        }
    }
    ::closedir(d);
    return out;
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

bool file_exists(const std::string& path) {
    return ::access(path.c_str(), F_OK) == 0;
}

std::string read_file(const std::string& path) {
    std::string out;
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return out;
    }
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.append(buf, n);
    }
    std::fclose(f);
    return out;
}

// The lines of `text` that start with `prefix`, prefix removed.
std::vector<std::string> lines_with(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string::npos) {
            end = text.size();
        }
        std::string line = text.substr(pos, end - pos);
        if (line.compare(0, prefix.size(), prefix) == 0) {
            out.push_back(line.substr(prefix.size()));
        }
        pos = end + 1;
    }
    return out;
}

// The value of "key=" in an env-mode report ("" if absent, "<absent>" to
// tell them apart).
std::string report_value(const std::string& text, const std::string& key) {
    auto v = lines_with(text, key + "=");
    return v.empty() ? std::string("<absent>") : v.front();
}

void copy_executable(const char* from, const std::string& to) {
    std::string data = read_file(from);
    REQUIRE(!data.empty());
    int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
    REQUIRE(::close(fd) == 0);
}

struct tempdir {
    std::string path;
    tempdir() {
        // Short: the notify socket's path must fit sun_path (108 bytes).
        char tmpl[] = "/tmp/crt.XXXXXX";
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

// One transition, copied out of the hook.
struct rec {
    std::string name;
    ServiceState from = ServiceState::stopped;
    ServiceState to = ServiceState::stopped;
    std::string reason;
    int err = 0;
    std::int64_t at_ns = 0;
    int pid = 0;
    ExitInfo exit;
    std::int64_t delay_ms = 0;
    std::uint32_t restarts = 0;
    std::string detail;
    int channel_fd = -1;
};

std::string describe(const rec& r) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%-8s %s -> %s (%s) pid %d exit %d sig %d delay %lld restarts %u%s%s",
                  r.name.c_str(), std::string(state_name(r.from)).c_str(),
                  std::string(state_name(r.to)).c_str(), r.reason.c_str(), r.pid, r.exit.code,
                  r.exit.signal, static_cast<long long>(r.delay_ms), r.restarts,
                  r.detail.empty() ? "" : " : ", r.detail.c_str());
    return buf;
}

// Where a step may act: the supervisor has finished reacting to the
// transition being reported (entering `starting` is followed by the spawn,
// entering `running` by arming the ready timeout; acting there would
// interleave with that work).
bool safe_point(ServiceState to) {
    switch (to) {
    case ServiceState::starting:
    case ServiceState::running:
        return false;
    case ServiceState::stopped:
    case ServiceState::waiting:
    case ServiceState::ready:
    case ServiceState::backoff:
    case ServiceState::stopping:
    case ServiceState::failed:
        return true;
    }
    return false;
}

struct probe_rec {
    std::string name;
    ProbeState from = ProbeState::unknown;
    ProbeState to = ProbeState::unknown;
    std::string reason;
    std::string message;
    std::int64_t at_ns = 0;
};

struct svc {
    std::string name;
    std::vector<std::string> argv;
    std::vector<std::string> env;
    std::vector<std::string> deps;
    std::vector<std::string_view> argv_v, env_v, deps_v;
    ServiceSpec spec;
};

class scenario {
public:
    using step_fn = std::function<void(scenario&, const rec&)>;

    tempdir dir;
    RuntimeConfig cfg;
    std::unique_ptr<Runtime> rt;
    std::vector<rec> log;
    step_fn step;
    std::int64_t start_ns = 0;
    std::int64_t stop_ns = 0;
    bool stop_sent = false;
    bool timed_out = false;
    int phase = 0;
    // Step at every transition, not only at safe points (regression tests).
    bool step_everywhere = false;
    std::vector<int> extra_pids; // not services' (grandchildren): must be gone at the end
    std::deque<ProbeSpec> probes;
    std::vector<probe_rec> probe_log;
    std::vector<std::unique_ptr<std::string>> strings_;
    std::string cgroup_root_;
    std::string pid_record_;
    bool cgroups() const { return cgroup_root_ != "off"; }

    scenario() {
        cfg.handle_signals = false;
        cfg.stop_timeout = 10s;
        cfg.seed = 42;
        cgroup_root_ = test_cgroup_root();
        cfg.cgroup = cgroup_root_;
        if (cgroup_root_ == "off") {
            pid_record_ = path("pids");
            cfg.pid_record = pid_record_;
        }
        alarm(scenario_alarm_s);
    }
    ~scenario() {
        rt.reset();
        for (int pid : extra_pids) {
            if (alive(pid)) {
                ::kill(pid, SIGKILL);
            }
        }
        alarm(0);
    }
    scenario(const scenario&) = delete;
    scenario& operator=(const scenario&) = delete;

    std::string path(const char* leaf) const { return dir.path + "/" + leaf; }

    // A probe; its strings live as long as the scenario.
    ProbeSpec& add_probe(const std::string& name, ProbeKind kind, const std::string& target) {
        strings_.push_back(std::make_unique<std::string>(name));
        std::string_view n = *strings_.back();
        strings_.push_back(std::make_unique<std::string>(target));
        std::string_view t = *strings_.back();
        probes.emplace_back();
        ProbeSpec& p = probes.back();
        p.name = n;
        p.kind = kind;
        p.target = t;
        // Quick defaults, as for services.
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
    int probe_count(const std::string& name, ProbeState to) const {
        int n = 0;
        for (const probe_rec& r : probe_log) {
            n += r.name == name && r.to == to ? 1 : 0;
        }
        return n;
    }

    void use_notify() {
        notify_path_ = path("n");
        cfg.notify_dir = notify_path_;
    }
    // The notify directory, or service `name`'s socket in it.
    std::string notify_path(const std::string& name = {}) const {
        return name.empty() ? notify_path_ : notify_path_ + "/" + name;
    }

    // A service running svc_helper with `args`.
    ServiceSpec& add(const std::string& name, std::vector<std::string> args) {
        args.insert(args.begin(), helper_path());
        return add_exec(name, std::move(args));
    }
    ServiceSpec& add_exec(const std::string& name, std::vector<std::string> argv) {
        auto s = std::make_unique<svc>();
        s->name = name;
        s->argv = std::move(argv);
        // Quick defaults: nothing in these tests should wait long by accident.
        s->spec.backoff_initial = 50ms;
        s->spec.backoff_max = 1s;
        s->spec.backoff_jitter_percent = 0;
        s->spec.stop_timeout = 3s;
        s->spec.ready_timeout = 20s;
        svcs_.push_back(std::move(s));
        return svcs_.back()->spec;
    }
    svc& find_svc(const std::string& name) {
        for (auto& s : svcs_) {
            if (s->name == name) {
                return *s;
            }
        }
        REQUIRE_MESSAGE(false, "no service " << name);
        return *svcs_.front();
    }
    void depends(const std::string& name, std::vector<std::string> deps) {
        find_svc(name).deps = std::move(deps);
    }
    void env(const std::string& name, std::vector<std::string> env) {
        find_svc(name).env = std::move(env);
    }
    // A service that exits and is restarted every `period`: its transitions
    // give steps a chance to run while nothing else happens.
    void add_ticker(Duration period = 50ms) {
        ServiceSpec& t = add("tick", {"exit", "0"});
        t.restart = RestartPolicy::always;
        t.backoff_initial = period;
        t.backoff_max = period;
        t.backoff_multiplier_x100 = 100;
        t.backoff_jitter_percent = 0;
        t.stable_after = 1h;
    }

    // Builds the table and initialises a fresh Runtime.
    Result<void> init() {
        table_.clear();
        for (auto& s : svcs_) {
            s->argv_v.assign(s->argv.begin(), s->argv.end());
            s->env_v.assign(s->env.begin(), s->env.end());
            s->deps_v.assign(s->deps.begin(), s->deps.end());
            s->spec.name = s->name;
            s->spec.argv = s->argv_v;
            s->spec.env = s->env_v;
            s->spec.depends_on = s->deps_v;
            table_.push_back(s->spec);
        }
        probe_table_.assign(probes.begin(), probes.end());
        fds_before_ = count_fds();
        rt = std::make_unique<Runtime>();
        auto r = rt->init(cfg, table_, probe_table_);
        if (!r) {
            return r;
        }
        check_backend(*rt);
        rt->set_transition_hook(&scenario::on_transition, this);
        rt->set_probe_hook(&scenario::on_probe, this);
        return r;
    }

    // init() if not done, start(), run() until stopped; `limit` after
    // start, the next safe point stops the runtime and fails the test.
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
            stop_ns = now_ns();
            rt->stop();
        }
    }

    // Destroys the runtime, then checks it left nothing behind.
    void finish() {
        std::vector<int> pids;
        for (const rec& r : log) {
            if (r.pid > 0) {
                pids.push_back(r.pid);
            }
        }
        rt.reset();
        for (int pid : pids) {
            CHECK_MESSAGE(proc_state(pid) == 0, "service process " << pid << " still exists");
        }
        for (int pid : extra_pids) {
            CHECK_MESSAGE(!alive(pid), "process " << pid << " still alive");
        }
        auto z = zombie_children();
        CHECK_MESSAGE(z.empty(),
                      z.size() << " zombie children, the first " << (z.empty() ? 0 : z.front()));
        CHECK(count_fds() == fds_before_);
    }

    // Transitions of `name`, in order.
    std::vector<rec> of(const std::string& name) const {
        std::vector<rec> out;
        for (const rec& r : log) {
            if (r.name == name) {
                out.push_back(r);
            }
        }
        return out;
    }
    // Position in the log of the n-th (0-based) transition of `name` into
    // `to`, or -1.
    int index_of(const std::string& name, ServiceState to, int nth = 0) const {
        for (std::size_t i = 0; i < log.size(); ++i) {
            if (log[i].name == name && log[i].to == to && nth-- == 0) {
                return static_cast<int>(i);
            }
        }
        return -1;
    }
    int count(const std::string& name, ServiceState to) const {
        int n = 0;
        for (const rec& r : log) {
            n += r.name == name && r.to == to ? 1 : 0;
        }
        return n;
    }
    std::uint32_t index(const std::string& name) const {
        for (std::uint32_t i = 0; i < svcs_.size(); ++i) {
            if (svcs_[i]->name == name) {
                return i;
            }
        }
        return UINT32_MAX;
    }
    // The target states of `name`'s transitions, as one string.
    std::string states(const std::string& name) const {
        std::string out;
        for (const rec& r : log) {
            if (r.name == name) {
                out += out.empty() ? "" : " ";
                out += state_name(r.to);
            }
        }
        return out;
    }

    void dump() const {
        std::printf("--- transitions (%zu) ---\n", log.size());
        for (const rec& r : log) {
            std::printf("%+8.3f ms %s\n", static_cast<double>(r.at_ns - start_ns) / 1e6,
                        describe(r).c_str());
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
        if (env_is("CUSTOS_SPAWN", "vfork-nopidfd")) {
            REQUIRE(std::string(r.exit_watch_name()) == "SIGCHLD signalfd + waitid");
            REQUIRE(std::string(r.spawn_method_name()) == "vfork (no pidfd)");
        }
    }

    static void on_transition(const Transition& t, void* ctx) {
        auto& s = *static_cast<scenario*>(ctx);
        rec r;
        r.name = std::string(t.name);
        r.from = t.from;
        r.to = t.to;
        r.reason = R(t.reason);
        r.err = t.sys_errno;
        r.at_ns = t.at_ns;
        r.pid = t.pid;
        r.exit = t.exit;
        r.delay_ms = t.delay.count();
        r.restarts = t.restarts;
        r.detail = std::string(t.detail);
        r.channel_fd = t.channel_fd;
        s.log.push_back(r);
        // Transitions caused by a step's own actions are recorded, not
        // stepped on again.
        if (s.stop_sent || s.in_step_ || (!safe_point(t.to) && !s.step_everywhere)) {
            return;
        }
        if (now_ns() > s.deadline_ns_) {
            s.timed_out = true;
            s.stop();
            return;
        }
        if (s.step) {
            s.in_step_ = true;
            s.step(s, r);
            s.in_step_ = false;
        }
    }

    static void on_probe(const ProbeTransition& t, void* ctx) {
        auto& s = *static_cast<scenario*>(ctx);
        probe_rec pr;
        pr.name = std::string(t.name);
        pr.from = t.from;
        pr.to = t.to;
        pr.reason = R(t.reason);
        pr.message = std::string(t.message);
        pr.at_ns = t.at_ns;
        s.probe_log.push_back(pr);
        if (s.stop_sent || s.in_step_ || !s.step) {
            return;
        }
        rec r;
        r.name = "probe:" + pr.name;
        r.reason = pr.reason;
        r.at_ns = t.at_ns;
        s.in_step_ = true;
        s.step(s, r);
        s.in_step_ = false;
    }

    std::vector<std::unique_ptr<svc>> svcs_;
    std::vector<ServiceSpec> table_;
    std::vector<ProbeSpec> probe_table_;
    std::string notify_path_;
    std::int64_t deadline_ns_ = 0;
    bool in_step_ = false;
    int fds_before_ = -1;
};

// Stops at the first safe point where `done` holds.
scenario::step_fn stop_when(std::function<bool(scenario&)> done) {
    return [done = std::move(done)](scenario& s, const rec&) {
        if (done(s)) {
            s.stop();
        }
    };
}

} // namespace

TEST_CASE("a crashing service backs off exponentially, then fails when max_restarts is spent") {
    scenario s;
    ServiceSpec& c = s.add("crash", {"exit", "3"});
    c.restart = RestartPolicy::on_failure;
    c.backoff_initial = 50ms;
    c.backoff_max = 1s;
    c.backoff_multiplier_x100 = 200;
    c.max_restarts = 3;
    s.step = stop_when([](scenario& sc) { return sc.count("crash", ServiceState::failed) > 0; });
    s.run();
    MESSAGE("runtime: " << std::string(s.rt->backend_reason()));

    CHECK(s.states("crash") ==
          "starting ready backoff starting ready backoff starting ready backoff starting ready "
          "failed");
    auto l = s.of("crash");
    REQUIRE(l.size() == 12);
    CHECK(l[0].reason == "RuntimeStart");
    CHECK(l[1].reason == "ReadyStarted");
    const std::int64_t delays[] = {50, 100, 200};
    for (int k = 0; k < 3; ++k) {
        const rec& bo = l[2 + 3 * k];
        const rec& next = l[3 + 3 * k];
        CAPTURE(k);
        CHECK(bo.reason == "ProcessExited");
        CHECK(bo.exit.code == 3);
        CHECK(bo.exit.signal == 0);
        CHECK(bo.exit.pid == l[1 + 3 * k].pid);
        CHECK(bo.restarts == static_cast<std::uint32_t>(k + 1));
        CHECK(bo.delay_ms == delays[k]);
        CHECK(next.reason == "BackoffElapsed");
        // Never early: the restart waits its whole delay.
        CHECK(next.at_ns - bo.at_ns >= ms_ns(delays[k]));
    }
    const rec& failed = l.back();
    CHECK(failed.reason == "MaxRestartsExhausted");
    CHECK(failed.detail == "ProcessExited");
    CHECK(failed.exit.code == 3);

    ServiceStatus st = s.rt->status(s.index("crash"));
    CHECK(st.state == ServiceState::failed);
    CHECK(st.restarts == 3);
    CHECK(st.total_restarts == 3);
    CHECK(st.last_exit.code == 3);
    CHECK(st.pid == 0);
    RuntimeStats stats = s.rt->stats();
    CHECK(stats.spawns == 4);
    CHECK(stats.exits == 4);
    CHECK(stats.spawn_failures == 0);
    s.finish();
}

TEST_CASE("death by a signal is ProcessKilled; by the service's own stop signal, a clean exit") {
    scenario s;
    ServiceSpec& u = s.add("usr1", {"signal", std::to_string(SIGUSR1)});
    u.restart = RestartPolicy::on_failure;
    u.max_restarts = 1;
    ServiceSpec& t = s.add("term", {"signal", std::to_string(SIGTERM)});
    t.restart = RestartPolicy::on_failure;
    s.step = stop_when([](scenario& sc) {
        return sc.count("usr1", ServiceState::failed) > 0 &&
               sc.count("term", ServiceState::stopped) > 0;
    });
    s.run();

    CHECK(s.states("usr1") == "starting ready backoff starting ready failed");
    int bo = s.index_of("usr1", ServiceState::backoff);
    REQUIRE(bo >= 0);
    CHECK(s.log[bo].reason == "ProcessKilled");
    CHECK(s.log[bo].exit.signal == SIGUSR1);
    CHECK(s.log[bo].exit.code == 0);
    CHECK_FALSE(s.log[bo].exit.core_dumped);
    int failed = s.index_of("usr1", ServiceState::failed);
    CHECK(s.log[failed].reason == "MaxRestartsExhausted");
    CHECK(s.log[failed].detail == "ProcessKilled");
    CHECK(s.log[failed].exit.signal == SIGUSR1);

    // on-failure does not restart a service that ended by its stop signal.
    CHECK(s.states("term") == "starting ready stopped");
    int st = s.index_of("term", ServiceState::stopped);
    CHECK(s.log[st].reason == "ExitedCleanly");
    CHECK(s.log[st].exit.signal == SIGTERM);
    s.finish();
}

TEST_CASE("stop sends SIGTERM, then SIGKILL after stop_timeout to a service that ignores it") {
    scenario s;
    // It says ready (fd 3) only once SIGTERM is ignored: no race with the stop.
    ServiceSpec& x = s.add("stubborn", {"ignore-term", "3"});
    x.ready = ReadyMode::fd;
    x.ready_fd = 3;
    x.stop_timeout = 300ms;
    s.step = stop_when([](scenario& sc) { return sc.count("stubborn", ServiceState::ready) > 0; });
    s.run();

    CHECK(s.states("stubborn") == "starting running ready stopping stopped");
    int a = s.index_of("stubborn", ServiceState::stopping);
    int b = s.index_of("stubborn", ServiceState::stopped);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    CHECK(s.log[a].reason == "RuntimeStop");
    CHECK(s.log[b].reason == "StopTimeout");
    CHECK(s.log[b].exit.signal == SIGKILL);
    const std::int64_t took = s.log[b].at_ns - s.log[a].at_ns;
    CHECK(took >= ms_ns(300));
    CHECK(took < ms_ns(10'000));
    s.finish();
}

TEST_CASE("subreaper: a grandchild orphaned by its service's exit is killed with the service, "
          "re-parented to the runtime and reaped") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    std::string pidfile = s.path("gc.pid");
    ServiceSpec& g = s.add("gc", {"grandchild", "orphan", pidfile});
    g.restart = RestartPolicy::never;
    s.add_ticker();
    int gpid = 0;
    s.step = [&](scenario& sc, const rec&) {
        if (sc.phase == 0 && sc.count("gc", ServiceState::stopped) > 0 && file_exists(pidfile)) {
            gpid = std::atoi(read_file(pidfile).c_str());
            REQUIRE(gpid > 0);
            sc.extra_pids.push_back(gpid);
            // Its parent exited: the subreaper (this process) is its parent
            // now, or it is already dead (SIGKILLed as the service ended).
            const int ppid = proc_ppid(gpid);
            CHECK((ppid == ::getpid() || ppid == -1));
            sc.phase = 1;
        } else if (sc.phase == 1 && sc.rt->stats().orphans_reaped >= 1) {
            sc.stop();
        }
    };
    s.run();

    REQUIRE(gpid > 0);
    // The service ended: nothing it started outlives it (README, "No
    // stray process"), and the subreaper reaped it: not even a zombie.
    CHECK(s.rt->stats().remnants_killed >= 1);
    CHECK(s.rt->stats().orphans_reaped >= 1);
    CHECK(proc_state(gpid) == 0);
    int st = s.index_of("gc", ServiceState::stopped);
    REQUIRE(st >= 0);
    CHECK(s.log[st].reason == "ExitedCleanly");
    s.finish();
}

TEST_CASE("subreaper: stopping a service ends its whole process group, grandchildren included") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    std::string pidfile = s.path("fam.pid");
    s.add("fam", {"grandchild", "family", pidfile});
    s.add_ticker();
    int gpid = 0;
    s.step = [&](scenario& sc, const rec&) {
        if (file_exists(pidfile)) {
            gpid = std::atoi(read_file(pidfile).c_str());
            REQUIRE(gpid > 0);
            sc.extra_pids.push_back(gpid);
            int parent = sc.log[sc.index_of("fam", ServiceState::ready)].pid;
            CHECK(alive(gpid));
            CHECK(proc_ppid(gpid) == parent);
            sc.stop();
        }
    };
    s.run();

    REQUIRE(gpid > 0);
    int st = s.index_of("fam", ServiceState::stopped);
    REQUIRE(st >= 0);
    CHECK(s.log[st].reason == "StoppedByRequest");
    CHECK(s.log[st].exit.signal == SIGTERM);
    // Gone with its leader, and reaped before run() returned: not a zombie.
    CHECK(proc_state(gpid) == 0);
    s.finish();
}

TEST_CASE("subreaper: a grandchild that ignores SIGTERM does not outlive its service's stop") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    std::string pidfile = s.path("stubborn.pid");
    s.add("stub", {"grandchild", "stubborn", pidfile});
    s.add_ticker();
    int gpid = 0;
    s.step = [&](scenario& sc, const rec&) {
        if (file_exists(pidfile)) {
            gpid = std::atoi(read_file(pidfile).c_str());
            REQUIRE(gpid > 0);
            sc.extra_pids.push_back(gpid);
            CHECK(alive(gpid));
            sc.stop();
        }
    };
    s.run();

    REQUIRE(gpid > 0);
    int st = s.index_of("stub", ServiceState::stopped);
    REQUIRE(st >= 0);
    // The leader obeyed SIGTERM; what it left in its group was killed and reaped.
    CHECK(s.log[st].reason == "StoppedByRequest");
    CHECK(s.log[st].exit.signal == SIGTERM);
    CHECK(proc_state(gpid) == 0);
    CHECK(s.rt->stats().orphans_reaped >= 1);
    s.finish();
}

TEST_CASE("READY=1 over NOTIFY_SOCKET makes a service ready and its STATUS= is kept") {
    scenario s;
    s.use_notify();
    ServiceSpec& n = s.add("nr", {"notify-ready", "50", "hello from the helper"});
    n.ready = ReadyMode::notify;
    std::string status;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name == "nr" && r.to == ServiceState::ready) {
            status = std::string(sc.rt->status(sc.index("nr")).status_text);
            sc.stop();
        }
    };
    s.run();

    CHECK(s.states("nr") == "starting running ready stopping stopped");
    auto l = s.of("nr");
    REQUIRE(l.size() == 5);
    CHECK(l[1].reason == "Spawned");
    CHECK(l[2].reason == "ReadyNotified");
    CHECK(l[2].at_ns - l[0].at_ns >= ms_ns(50));
    CHECK(status == "hello from the helper");
    CHECK(s.rt->stats().notify_received >= 1);
    CHECK(s.rt->stats().notify_dropped == 0);
    // The runtime removed its socket on the way out.
    CHECK_FALSE(file_exists(s.notify_path("nr")));
    s.finish();
}

TEST_CASE("real client: systemd-notify --ready --status=hello from a shell service") {
    std::string sdn = find_in_path("systemd-notify");
    REQUIRE(!sdn.empty());
    scenario s;
    s.use_notify();
    std::string script = sdn + " --ready --status=hello; exec sleep 1000";
    ServiceSpec& n = s.add_exec("sdn", {"/bin/sh", "-c", script});
    n.ready = ReadyMode::notify;
    std::string status;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name == "sdn" && r.to == ServiceState::ready) {
            status = std::string(sc.rt->status(sc.index("sdn")).status_text);
            sc.stop();
        }
    };
    s.run();

    CHECK(s.states("sdn") == "starting running ready stopping stopped");
    int rd = s.index_of("sdn", ServiceState::ready);
    REQUIRE(rd >= 0);
    CHECK(s.log[rd].reason == "ReadyNotified");
    CHECK(status == "hello");
    s.finish();
}

TEST_CASE("a dependent is spawned only once its dependency is ready") {
    scenario s;
    s.use_notify();
    ServiceSpec& a = s.add("a", {"notify-ready", "200"});
    a.ready = ReadyMode::notify;
    s.add("b", {"sleep"});
    s.depends("b", {"a"});
    s.step = stop_when([](scenario& sc) { return sc.count("b", ServiceState::ready) > 0; });
    s.run();

    CHECK(s.states("a") == "starting running ready stopping stopped");
    CHECK(s.states("b") == "waiting starting ready stopping stopped");
    int a_ready = s.index_of("a", ServiceState::ready);
    int b_wait = s.index_of("b", ServiceState::waiting);
    int b_start = s.index_of("b", ServiceState::starting);
    REQUIRE(a_ready >= 0);
    REQUIRE(b_start >= 0);
    CHECK(s.log[b_wait].reason == "WaitingForDependencies");
    CHECK(s.log[b_start].reason == "DependenciesReady");
    CHECK(a_ready < b_start);
    CHECK(s.log[b_start].at_ns >= s.log[a_ready].at_ns);
    // `starting` is reported before the spawn, `running` after it: the
    // helper's delay may begin before the latter.
    int a_start = s.index_of("a", ServiceState::starting);
    CHECK(s.log[a_ready].at_ns - s.log[a_start].at_ns >= ms_ns(200));
    s.finish();
}

TEST_CASE("s6 readiness: a newline on fd N makes the service ready") {
    scenario s;
    ServiceSpec& x = s.add("s6", {"s6", "5", "100"});
    x.ready = ReadyMode::fd;
    x.ready_fd = 5;
    s.step = stop_when([](scenario& sc) { return sc.count("s6", ServiceState::ready) > 0; });
    s.run();

    CHECK(s.states("s6") == "starting running ready stopping stopped");
    int start = s.index_of("s6", ServiceState::starting);
    int rd = s.index_of("s6", ServiceState::ready);
    REQUIRE(rd >= 0);
    CHECK(s.log[rd].reason == "ReadyFd");
    CHECK(s.log[rd].at_ns - s.log[start].at_ns >= ms_ns(100));
    s.finish();
}

TEST_CASE("software watchdog: pings keep a service up, silence gets it restarted") {
    scenario s;
    s.use_notify();
    // READY, then five pings 100 ms apart, then silence.
    ServiceSpec& w = s.add("wd", {"notify-watchdog", "100", "5"});
    w.ready = ReadyMode::notify;
    w.watchdog = 500ms;
    w.restart = RestartPolicy::on_failure;
    s.step = stop_when([](scenario& sc) { return sc.count("wd", ServiceState::ready) >= 2; });
    s.run();

    CHECK(s.states("wd") == "starting running ready stopping backoff starting running ready "
                            "stopping stopped");
    int rd = s.index_of("wd", ServiceState::ready);
    int kill = s.index_of("wd", ServiceState::stopping);
    int bo = s.index_of("wd", ServiceState::backoff);
    REQUIRE(bo >= 0);
    CHECK(s.log[rd].reason == "ReadyNotified");
    CHECK(s.log[kill].reason == "WatchdogTimeout");
    // Unpinged, it would time out 500 ms after READY; the pings carried it
    // past 500 + 500 ms (less the READY's own latency).
    CHECK(s.log[kill].at_ns - s.log[rd].at_ns >= ms_ns(750));
    CHECK(s.log[bo].reason == "WatchdogTimeout");
    CHECK(s.log[bo].exit.signal == SIGTERM);
    CHECK(s.log[bo].restarts == 1);
    CHECK(s.rt->stats().notify_received >= 6);
    s.finish();
}

TEST_CASE("a service's environment: custos's NOTIFY_SOCKET and WATCHDOG_*, never inherited ones") {
    // What this process's own supervisor might have left in its environment.
    REQUIRE(::setenv("NOTIFY_SOCKET", "/run/not/ours.sock", 1) == 0);
    REQUIRE(::setenv("WATCHDOG_USEC", "1", 1) == 0);
    REQUIRE(::setenv("WATCHDOG_PID", "1", 1) == 0);
    REQUIRE(::setenv("CUSTOS_TEST_INHERITED", "yes", 1) == 0);
    struct unset_guard {
        ~unset_guard() {
            ::unsetenv("NOTIFY_SOCKET");
            ::unsetenv("WATCHDOG_USEC");
            ::unsetenv("WATCHDOG_PID");
            ::unsetenv("CUSTOS_TEST_INHERITED");
        }
    } guard;
    scenario s;
    s.use_notify();
    std::string with = s.path("with.env");
    std::string without = s.path("without.env");
    ServiceSpec& n = s.add("withwd", {"env", with});
    n.ready = ReadyMode::notify;
    n.watchdog = 500ms;
    s.add("plain", {"env", without});
    s.env("plain", {"FOO=bar", "CUSTOS_TEST_INHERITED=replaced"});
    s.add_ticker();
    s.step = stop_when([&](scenario& sc) {
        return sc.count("withwd", ServiceState::ready) > 0 && file_exists(with) &&
               file_exists(without);
    });
    s.run();

    // A slow machine may let the watchdog restart it before the stop: the
    // report is from one of its processes, whichever wrote last.
    std::string a = read_file(with);
    std::string pid = report_value(a, "pid");
    bool ours = false;
    for (const rec& r : s.of("withwd")) {
        ours = ours || (r.to == ServiceState::running && std::to_string(r.pid) == pid);
    }
    CHECK_MESSAGE(ours, "pid " << pid << " is not one withwd was spawned as");
    CHECK(report_value(a, "pgid") == pid);
    CHECK(report_value(a, "sid") == pid);
    CHECK(report_value(a, "env:NOTIFY_SOCKET") == s.notify_path("withwd"));
    CHECK(report_value(a, "env:WATCHDOG_USEC") == "500000");
    CHECK(report_value(a, "env:WATCHDOG_PID") == pid);
    CHECK(report_value(a, "env:CUSTOS_TEST_INHERITED") == "yes");
    CHECK(lines_with(a, "env:NOTIFY_SOCKET=").size() == 1);

    std::string b = read_file(without);
    std::string bpid = report_value(b, "pid");
    CHECK(bpid == std::to_string(s.log[s.index_of("plain", ServiceState::ready)].pid));
    CHECK(report_value(b, "pgid") == bpid);
    CHECK(report_value(b, "sid") == bpid);
    CHECK(report_value(b, "env:NOTIFY_SOCKET") == "<absent>");
    CHECK(report_value(b, "env:WATCHDOG_USEC") == "<absent>");
    CHECK(report_value(b, "env:WATCHDOG_PID") == "<absent>");
    CHECK(report_value(b, "env:FOO") == "bar");
    CHECK(report_value(b, "env:CUSTOS_TEST_INHERITED") == "replaced");
    s.finish();
}

TEST_CASE("ready_timeout: a service that never says ready is stopped and backs off") {
    scenario s;
    s.use_notify();
    ServiceSpec& x = s.add("mute", {"sleep"});
    x.ready = ReadyMode::notify;
    x.ready_timeout = 300ms;
    x.restart = RestartPolicy::on_failure;
    x.backoff_initial = 100ms;
    s.step = stop_when([](scenario& sc) { return sc.count("mute", ServiceState::backoff) > 0; });
    s.run();

    CHECK(s.states("mute") == "starting running stopping backoff stopped");
    int run = s.index_of("mute", ServiceState::running);
    int kill = s.index_of("mute", ServiceState::stopping);
    int bo = s.index_of("mute", ServiceState::backoff);
    REQUIRE(bo >= 0);
    CHECK(s.log[kill].reason == "ReadyTimeout");
    CHECK(s.log[kill].at_ns - s.log[run].at_ns >= ms_ns(300));
    CHECK(s.log[bo].reason == "ReadyTimeout");
    CHECK(s.log[bo].exit.signal == SIGTERM);
    CHECK(s.log[bo].delay_ms == 100);
    CHECK(s.log.back().reason == "RuntimeStop");
    s.finish();
}

TEST_CASE("an executable deleted after init fails to start with ExecFailed/ENOENT; all else runs") {
    scenario s;
    std::string copy = s.path("helper-copy");
    copy_executable(helper_path(), copy);
    ServiceSpec& g = s.add_exec("gone", {copy, "sleep"});
    g.restart = RestartPolicy::on_failure;
    g.max_restarts = 2;
    s.add("ok", {"sleep"});
    REQUIRE(s.init().has_value());
    REQUIRE(::unlink(copy.c_str()) == 0);
    s.step = stop_when([](scenario& sc) { return sc.count("gone", ServiceState::failed) > 0; });
    s.run();

    CHECK(s.states("gone") == "starting backoff starting backoff starting failed");
    for (int k = 0; k < 2; ++k) {
        int bo = s.index_of("gone", ServiceState::backoff, k);
        REQUIRE(bo >= 0);
        CHECK(s.log[bo].reason == "ExecFailed");
        CHECK(s.log[bo].err == ENOENT);
        CHECK(s.log[bo].pid == 0);
    }
    int failed = s.index_of("gone", ServiceState::failed);
    CHECK(s.log[failed].reason == "MaxRestartsExhausted");
    CHECK(s.log[failed].detail == "ExecFailed");
    CHECK(s.log[failed].err == ENOENT);
    // The other service was never disturbed.
    CHECK(s.states("ok") == "starting ready stopping stopped");
    RuntimeStats st = s.rt->stats();
    CHECK(st.spawn_failures == 3);
    CHECK(st.spawns == 1);
    s.finish();
}

TEST_CASE("stop order is the reverse of the dependency order") {
    scenario s;
    s.add("a", {"sleep"});
    s.add("b", {"sleep"});
    s.add("c", {"sleep"});
    s.depends("b", {"a"});
    s.depends("c", {"b"});
    s.step = stop_when([](scenario& sc) { return sc.count("c", ServiceState::ready) > 0; });
    s.run();

    CHECK(s.index_of("a", ServiceState::ready) < s.index_of("b", ServiceState::starting));
    CHECK(s.index_of("b", ServiceState::ready) < s.index_of("c", ServiceState::starting));
    const int c1 = s.index_of("c", ServiceState::stopping);
    const int c2 = s.index_of("c", ServiceState::stopped);
    const int b1 = s.index_of("b", ServiceState::stopping);
    const int b2 = s.index_of("b", ServiceState::stopped);
    const int a1 = s.index_of("a", ServiceState::stopping);
    const int a2 = s.index_of("a", ServiceState::stopped);
    REQUIRE(c1 >= 0);
    REQUIRE(a2 >= 0);
    CHECK(c1 < c2);
    CHECK(c2 < b1);
    CHECK(b1 < b2);
    CHECK(b2 < a1);
    CHECK(a1 < a2);
    for (const char* n : {"a", "b", "c"}) {
        CAPTURE(n);
        CHECK(s.log[s.index_of(n, ServiceState::stopping)].reason == "RuntimeStop");
        const rec& st = s.log[s.index_of(n, ServiceState::stopped)];
        CHECK(st.reason == "StoppedByRequest");
        CHECK(st.exit.signal == SIGTERM);
    }
    s.finish();
}

TEST_CASE("crash storm: 64 services crashing together restart no faster than their backoff") {
    constexpr int n = 64;
    constexpr std::int64_t run_ms = 3000;
    constexpr std::int64_t initial_ms = 100;
    constexpr std::int64_t max_ms = 1000;
    constexpr std::int64_t jitter = 25;
    scenario s;
    s.cfg.max_services = n;
    for (int i = 0; i < n; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "s%02d", i);
        ServiceSpec& x = s.add(name, {"exit", "1"});
        x.restart = RestartPolicy::always;
        x.backoff_initial = std::chrono::milliseconds(initial_ms);
        x.backoff_max = std::chrono::milliseconds(max_ms);
        x.backoff_multiplier_x100 = 200;
        x.backoff_jitter_percent = jitter;
        x.stable_after = 60s;
    }
    // Until run_ms and every service has come back at least once: under a
    // sanitizer on a loaded machine, 64 slow-starting processes may take
    // seconds to reach their first exit. The bound below is computed from
    // the time actually elapsed, so waiting longer loosens nothing.
    s.step = [](scenario& sc, const rec&) {
        const std::int64_t t = now_ns() - sc.start_ns;
        if (t < ms_ns(run_ms)) {
            return;
        }
        bool all_back = true;
        for (int i = 0; i < n && all_back; ++i) {
            char name[16];
            std::snprintf(name, sizeof name, "s%02d", i);
            all_back = sc.count(name, ServiceState::ready) >= 2;
        }
        if (all_back || t >= ms_ns(30'000)) {
            sc.stop();
        }
    };
    s.run(60s);
    const std::int64_t elapsed = s.stop_ns - s.start_ns;
    REQUIRE(elapsed >= ms_ns(run_ms));

    // The schedule: the k-th delay (from 0) has base min(initial * 2^k, max)
    // and lies within base -/+ jitter %, clamped to max. A service spawns at
    // most once at start plus once per delay that fits in the elapsed time
    // when every delay is as short as the jitter allows.
    auto base_ms = [](int k) {
        std::int64_t b = initial_ms;
        for (int i = 0; i < k && b < max_ms; ++i) {
            b *= 2;
        }
        return b < max_ms ? b : max_ms;
    };
    auto shortest_ns = [&](int k) { return ms_ns(base_ms(k)) * (100 - jitter) / 100; };
    auto longest_ns = [&](int k) {
        std::int64_t l = ms_ns(base_ms(k)) * (100 + jitter) / 100;
        return l < ms_ns(max_ms) ? l : ms_ns(max_ms);
    };
    int per_service = 1;
    std::int64_t sum = 0;
    for (int k = 0;; ++k) {
        sum += shortest_ns(k);
        if (sum > elapsed) {
            break;
        }
        ++per_service;
    }
    int spawns = 0;
    int bad_delays = 0;
    for (int i = 0; i < n; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "s%02d", i);
        spawns += s.count(name, ServiceState::ready);
        int k = 0;
        for (const rec& r : s.of(name)) {
            if (r.to != ServiceState::backoff) {
                continue;
            }
            const std::int64_t d = ms_ns(r.delay_ms);
            // delay_ms is truncated to whole milliseconds.
            if (r.restarts != static_cast<std::uint32_t>(k + 1) || d + ms_ns(1) <= shortest_ns(k) ||
                d > longest_ns(k)) {
                ++bad_delays;
                MESSAGE(describe(r) << " is off the schedule at step " << k);
            }
            ++k;
        }
    }
    const RuntimeStats st = s.rt->stats();
    MESSAGE(spawns << " spawns in " << elapsed / 1'000'000 << " ms; the schedule allows "
                   << per_service << " per service, " << n * per_service << " in all");
    CHECK(bad_delays == 0);
    CHECK(static_cast<std::uint64_t>(spawns) == st.spawns);
    CHECK(st.spawn_failures == 0);
    CHECK(spawns <= n * per_service);
    // And it did restart them: the first delay is at most 125 ms.
    CHECK(spawns >= 2 * n);
    // finish() checks for zombies and leaked descriptors.
    s.finish();
}

TEST_CASE("operator actions: stop, start, restart; restarting a failed service clears its budget") {
    scenario s;
    s.add("svc", {"sleep"});
    ServiceSpec& b = s.add("bad", {"exit", "1"});
    b.restart = RestartPolicy::on_failure;
    b.max_restarts = 1;
    s.add_ticker();
    REQUIRE(s.init().has_value());
    {
        auto r1 = s.rt->start_service("nope");
        auto r2 = s.rt->stop_service("nope");
        auto r3 = s.rt->restart_service("");
        REQUIRE_FALSE(r1.has_value());
        REQUIRE_FALSE(r2.has_value());
        REQUIRE_FALSE(r3.has_value());
        CHECK(R(r1.error().reason()) == "ServiceUnknown");
        CHECK(R(r2.error().reason()) == "ServiceUnknown");
        CHECK(R(r3.error().reason()) == "ServiceUnknown");
    }
    const std::uint32_t bad = s.index("bad");
    int pid_before_restart = 0;
    std::uint32_t bad_restarts_after = 99;
    s.step = [&](scenario& sc, const rec&) {
        switch (sc.phase) {
        case 0:
            if (sc.count("svc", ServiceState::ready) >= 1 &&
                sc.count("bad", ServiceState::failed) >= 1) {
                CHECK(sc.rt->stop_service("svc").has_value());
                sc.phase = 1;
            }
            return;
        case 1:
            if (sc.count("svc", ServiceState::stopped) >= 1) {
                CHECK(sc.rt->start_service("svc").has_value());
                sc.phase = 2;
            }
            return;
        case 2:
            if (sc.count("svc", ServiceState::ready) >= 2) {
                pid_before_restart = sc.rt->status(sc.index("svc")).pid;
                CHECK(sc.rt->restart_service("svc").has_value());
                sc.phase = 3;
            }
            return;
        case 3:
            if (sc.count("svc", ServiceState::ready) >= 3) {
                CHECK(sc.rt->status(bad).state == ServiceState::failed);
                CHECK(sc.rt->status(bad).restarts == 1);
                CHECK(sc.rt->restart_service("bad").has_value());
                bad_restarts_after = sc.rt->status(bad).restarts;
                sc.phase = 4;
            }
            return;
        case 4:
            if (sc.count("bad", ServiceState::failed) >= 2) {
                sc.stop();
            }
            return;
        }
    };
    s.run();

    REQUIRE(s.phase == 4);
    CHECK(s.states("svc") == "starting ready stopping stopped starting ready stopping stopped "
                             "starting ready stopping stopped");
    auto l = s.of("svc");
    REQUIRE(l.size() == 12);
    CHECK(l[2].reason == "OperatorStop");
    CHECK(l[3].reason == "StoppedByRequest");
    CHECK(l[3].exit.signal == SIGTERM);
    CHECK(l[4].reason == "OperatorStart");
    CHECK(l[6].reason == "OperatorRestart");
    CHECK(l[7].reason == "StoppedByRequest");
    CHECK(l[8].reason == "OperatorRestart");
    CHECK(l[9].pid != pid_before_restart);
    CHECK(l[10].reason == "RuntimeStop");
    // Operator actions are not crashes.
    CHECK(s.rt->status(s.index("svc")).total_restarts == 0);

    CHECK(bad_restarts_after == 0);
    CHECK(s.states("bad") == "starting ready backoff starting ready failed "
                             "starting ready backoff starting ready failed");
    int again = s.index_of("bad", ServiceState::starting, 2);
    REQUIRE(again >= 0);
    CHECK(s.log[again].reason == "OperatorRestart");
    // A fresh budget: one more automatic restart before failing again.
    int bo = s.index_of("bad", ServiceState::backoff, 1);
    CHECK(s.log[bo].restarts == 1);
    CHECK(s.log[s.index_of("bad", ServiceState::failed, 1)].reason == "MaxRestartsExhausted");
    s.finish();
}

TEST_CASE("regression: stop() from the hook as a service enters starting leaves no process") {
    scenario s;
    s.add("late", {"sleep"});
    s.step_everywhere = true; // act inside the supervisor's work, as an embedder may
    s.step = [](scenario& sc, const rec& r) {
        if (r.name == "late" && r.to == ServiceState::starting) {
            sc.stop();
        }
    };
    s.run();

    for (const rec& r : s.log) {
        if (r.pid > 0) {
            s.extra_pids.push_back(r.pid); // killed by the destructor should this fail
        }
    }
    ServiceStatus st = s.rt->status(0);
    CHECK(st.state == ServiceState::stopped);
    CHECK(st.pid == 0);
    CHECK(s.log.back().to == ServiceState::stopped);
    s.finish();
}

namespace {

// Whether this process can be a child subreaper (qemu-user refuses it).
const char* subreaper_unavailable() {
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        return std::strerror(errno);
    }
    ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    return nullptr;
}

// Why the real-client cases cannot run here, or nullptr when they can.
const char* client_unavailable(std::string_view client) {
    if (client == "systemd-notify") {
        return find_in_path("systemd-notify").empty()
                   ? "systemd-notify is not installed (apt-get install systemd)"
                   : nullptr;
    }
    return "unknown client";
}

} // namespace

// --- probes ---

TEST_CASE("probe gating: a service that depends on a tcp probe starts once its target listens") {
    // Bound but not listening: connects are refused until listen().
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    {
        scenario s;
        s.add_probe("broker", ProbeKind::tcp, "127.0.0.1:" + std::to_string(ntohs(a.sin_port)));
        s.add("app", {"sleep"});
        s.depends("app", {"broker"});
        std::atomic<std::int64_t> listen_ns{0};
        std::thread later([&] {
            std::this_thread::sleep_for(400ms);
            listen_ns = now_ns();
            ::listen(fd, 64);
        });
        s.step = stop_when([](scenario& sc) { return sc.count("app", ServiceState::ready) > 0; });
        s.run();
        later.join();
        CHECK(s.states("app") == "waiting starting ready stopping stopped");
        int start = s.index_of("app", ServiceState::starting);
        REQUIRE(start >= 0);
        CHECK(s.log[start].at_ns >= listen_ns.load());
        CHECK(s.log[start].reason == "DependenciesReady");
        REQUIRE(s.probe_log.size() == 1);
        CHECK(s.probe_log[0].to == ProbeState::ready);
        CHECK(s.probe_log[0].reason == "ProbePassed");
        ProbeStatus ps = s.rt->probe_status(0);
        CHECK(ps.checks >= 3); // refused during the 400 ms, then the pass
        CHECK(ps.last_error.reason == Reason::probe_connect_refused);
        s.finish();
    }
    ::close(fd);
}

TEST_CASE("liveness: a probe going down restarts its service, counted as a crash") {
    scenario s;
    const std::string flag = s.path("alive");
    std::FILE* f = std::fopen(flag.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
    s.add_probe("alive", ProbeKind::file, flag);
    ServiceSpec& w = s.add("web", {"sleep"});
    w.liveness = "alive";
    s.step = [&flag](scenario& sc, const rec& r) {
        if (r.name == "probe:alive" && sc.probe_count("alive", ProbeState::ready) == 1 &&
            sc.count("web", ServiceState::backoff) == 0) {
            ::unlink(flag.c_str()); // the service "stops answering"
        }
        if (r.name == "web" && r.to == ServiceState::backoff) {
            std::FILE* g = std::fopen(flag.c_str(), "w"); // and recovers after the restart
            if (g != nullptr) {
                std::fclose(g);
            }
        }
        if (sc.count("web", ServiceState::ready) >= 2 &&
            sc.probe_count("alive", ProbeState::ready) >= 2) {
            sc.stop();
        }
    };
    s.run();
    int bo = s.index_of("web", ServiceState::backoff);
    REQUIRE(bo >= 0);
    CHECK(s.log[bo].reason == "LivenessFailed");
    CHECK(s.log[bo].restarts == 1);
    CHECK(s.count("web", ServiceState::backoff) == 1); // once, not a restart loop
    CHECK(s.rt->stats().liveness_restarts == 1);
    CHECK(s.probe_count("alive", ProbeState::down) == 1);
    s.finish();
}

TEST_CASE("ready = probe: a service is ready when its probe passes after the spawn") {
    scenario s;
    const std::string made = s.path("made");
    s.add_probe("made", ProbeKind::file, made);
    ServiceSpec& m = s.add("maker", {"env", made});
    m.ready = ReadyMode::probe;
    m.ready_probe = "made";
    s.step = stop_when([](scenario& sc) { return sc.count("maker", ServiceState::ready) > 0; });
    s.run();
    CHECK(s.states("maker") == "starting running ready stopping stopped");
    int rd = s.index_of("maker", ServiceState::ready);
    REQUIRE(rd >= 0);
    CHECK(s.log[rd].reason == "ReadyProbe");
    s.finish();
}

TEST_CASE("exec probes: exit 0 gates a service, exit 3 goes down; no child left behind") {
    scenario s;
    const std::string sh = find_in_path("sh");
    REQUIRE(!sh.empty());
    ProbeSpec& good = s.add_probe("good", ProbeKind::exec, "");
    static const std::string_view ok_argv[] = {"sh", "-c", "exit 0"};
    good.argv = ok_argv;
    ProbeSpec& bad = s.add_probe("bad", ProbeKind::exec, "");
    static const std::string_view bad_argv[] = {"sh", "-c", "exit 3"};
    bad.argv = bad_argv;
    bad.startup_tries = 2;
    s.add("app", {"sleep"});
    s.depends("app", {"good"});
    s.step = stop_when([](scenario& sc) {
        return sc.count("app", ServiceState::ready) > 0 &&
               sc.probe_count("bad", ProbeState::down) > 0;
    });
    s.run();
    CHECK(s.count("app", ServiceState::ready) == 1);
    bool saw = false;
    for (const probe_rec& r : s.probe_log) {
        if (r.name == "bad" && r.to == ProbeState::down) {
            CHECK(r.reason == "ProbeExitStatus");
            CHECK(r.message.find("exit status 3") != std::string::npos);
            saw = true;
        }
    }
    CHECK(saw);
    s.finish();
}

// --- hardening: what a sender, a signal or a stall may not do ---

namespace {

// A TCP connection whose last close lingers: the peer never reads, the
// send buffer holds unsent data, SO_LINGER {1, secs}. The caller passes
// `client` away and closes its own copy; `listener` and `peer` stay open
// (closed by the destructor) so the data can never drain.
struct lingering_socket {
    int listener = -1;
    int client = -1;
    int peer = -1;
    explicit lingering_socket(int secs) {
        listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listener >= 0);
        int small = 4096;
        ::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        REQUIRE(::listen(listener, 1) == 0);
        client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(client >= 0);
        ::setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        REQUIRE(peer >= 0);
        int fl = ::fcntl(client, F_GETFL);
        ::fcntl(client, F_SETFL, fl | O_NONBLOCK);
        char junk[4096] = {};
        std::size_t sent = 0;
        while (::send(client, junk, sizeof junk, MSG_NOSIGNAL) > 0) {
            sent += sizeof junk; // until the peer's window and our buffer are full
        }
        REQUIRE(sent > 0);
        linger l{1, secs};
        REQUIRE(::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0);
    }
    ~lingering_socket() {
        for (int fd : {client, peer, listener}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    lingering_socket(const lingering_socket&) = delete;
    lingering_socket& operator=(const lingering_socket&) = delete;
};

// Sends `text` with `fd` attached (SCM_RIGHTS) to the socket at `path`.
bool send_with_fd(const std::string& path, std::string_view text, int fd, bool wait = false) {
    int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        return false;
    }
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    iovec iov{const_cast<char*>(text.data()), text.size()};
    alignas(cmsghdr) unsigned char ctrl[CMSG_SPACE(sizeof(int))] = {};
    msghdr mh{};
    mh.msg_name = &a;
    mh.msg_namelen = sizeof a;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (fd >= 0) {
        mh.msg_control = ctrl;
        mh.msg_controllen = sizeof ctrl;
        cmsghdr* c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    bool ok = ::sendmsg(s, &mh, wait ? 0 : MSG_DONTWAIT) >= 0;
    ::close(s);
    return ok;
}

// The gaps between successive spawns (transitions out of starting) of `name`
// after `from_ns`, in ms.
std::vector<double> spawn_gaps_ms(const scenario& s, const std::string& name,
                                  std::int64_t from_ns) {
    std::vector<double> out;
    std::int64_t last = -1;
    for (const rec& r : s.of(name)) {
        if (r.from != ServiceState::starting || r.at_ns < from_ns) {
            continue; // a spawn is the transition out of starting
        }
        if (last >= 0) {
            out.push_back(static_cast<double>(r.at_ns - last) / 1e6);
        }
        last = r.at_ns;
    }
    return out;
}

} // namespace

TEST_CASE("lingering_fd_sender_cannot_stall_the_loop: a canary keeps its restart rhythm while the "
          "notify socket is attacked (lingering sockets, a flood, a foreign user)") {
    scenario s;
    s.use_notify();
    // The canary: exits at once, restarted every 1.3 s by the backoff timer.
    ServiceSpec& c = s.add("canary", {"exit", "1"});
    c.restart = RestartPolicy::always;
    c.backoff_initial = 1300ms;
    c.backoff_max = 1300ms;
    c.backoff_multiplier_x100 = 100;
    c.backoff_jitter_percent = 0;
    c.stable_after = 1h;
    // The target of the attack: a healthy notify service with a watchdog.
    ServiceSpec& n = s.add("target", {"notify-then", "100", "READY=1"});
    n.ready = ReadyMode::notify;
    n.watchdog = 1s;
    std::vector<std::unique_ptr<lingering_socket>> held;
    // Other users must reach the socket (as in /run/custos): the test's own
    // directory is mkdtemp's 0700.
    REQUIRE(::chmod(s.dir.path.c_str(), 0755) == 0);
    std::int64_t attack_ns = 0;
    pid_t flooder = -1;
    pid_t foreigner = -1;
    const bool root = ::geteuid() == 0;
    s.step = [&](scenario& sc, const rec& r) {
        if (attack_ns == 0 && sc.count("target", ServiceState::ready) > 0 &&
            sc.count("canary", ServiceState::ready) >= 2 && r.name == "canary" &&
            r.to == ServiceState::backoff) {
            attack_ns = now_ns();
            const std::string path = sc.notify_path("target");
            // Each close would block the loop for 20 s if it ran there.
            for (int k = 0; k < 4; ++k) {
                held.push_back(std::make_unique<lingering_socket>(20));
                CHECK(send_with_fd(path, "X_ATTACK=1", held.back()->client));
                ::close(held.back()->client);
                held.back()->client = -1;
            }
            // A flood: 20,000 datagrams from a child process, as fast as it can.
            flooder = ::fork();
            if (flooder == 0) {
                int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                sockaddr_un a{};
                a.sun_family = AF_UNIX;
                std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
                for (int k = 0; k < 20000; ++k) {
                    (void)::sendto(fd, "STATUS=flood", 12, 0, reinterpret_cast<sockaddr*>(&a),
                                   sizeof a);
                }
                std::_Exit(0);
            }
            // A foreign user (not root, not the service's): READY=1 and
            // WATCHDOG=trigger must not act, its lingering fd must not stall.
            if (root) {
                foreigner = ::fork();
                if (foreigner == 0) {
                    lingering_socket l(20);
                    if (::setresgid(65534, 65534, 65534) != 0 ||
                        ::setresuid(65534, 65534, 65534) != 0) {
                        std::_Exit(3);
                    }
                    // Blocking: the flood may have filled the queue.
                    if (!send_with_fd(path, "WATCHDOG=trigger", l.client, true)) {
                        std::_Exit(4);
                    }
                    ::close(l.client);
                    l.client = -1;
                    ::sleep(30); // keep the peer from draining
                    std::_Exit(0);
                }
            }
        }
        // Six canary periods after the attack, and at least six gaps to judge
        // (a loaded machine stretches the periods).
        if (attack_ns != 0 && now_ns() - attack_ns > ms_ns(6 * 1300 + 500) &&
            spawn_gaps_ms(sc, "canary", attack_ns - ms_ns(1400)).size() >= 6) {
            sc.stop();
        }
    };
    s.run(60s);
    if (flooder > 0) {
        int st = 0;
        ::waitpid(flooder, &st, 0);
    }
    if (foreigner > 0) {
        ::kill(foreigner, SIGKILL);
        int st = 0;
        ::waitpid(foreigner, &st, 0);
        // Killed in its sleep, after a successful send (exit 3 or 4: it failed).
        CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL));
    }
    held.clear();
    REQUIRE(attack_ns != 0);
    auto gaps = spawn_gaps_ms(s, "canary", attack_ns - ms_ns(1400));
    REQUIRE(gaps.size() >= 5);
    // One close run on the loop would stall it for the sockets' 20 s linger.
    // The bound sits far below that and far above scheduling noise: the
    // flooder spins on one of two shared cores, and under ASan with the suite
    // running in parallel the loop has been seen to lose a second.
    double worst = 0;
    for (double g : gaps) {
        CHECK_MESSAGE(g > 1300 - 200, "canary gap " << g << " ms");
        CHECK_MESSAGE(g < 1300 + 4000, "canary gap " << g << " ms");
        worst = g > worst ? g : worst;
    }
    MESSAGE("worst canary gap during the attack: " << worst << " ms (period 1300 ms)");
    // The target was never killed: its watchdog kept being fed through it all.
    CHECK(s.count("target", ServiceState::stopping) == 1); // the final stop only
    CHECK(s.of("target").back().reason == "StoppedByRequest");
    RuntimeStats st = s.rt->stats();
    CHECK(st.fds_closed >= 4);
    CHECK(st.fds_closed_inline == 0);
    if (root) {
        CHECK(st.notify_foreign >= 1);
    } else {
        MESSAGE("not root: the foreign-user sender was not exercised");
    }
    s.finish();
}

TEST_CASE("helper_exits_before_read: READY=1 from a helper reaped before custos reads it still "
          "makes its service ready") {
    scenario s;
    s.use_notify();
    const std::string h = helper_path();
    for (int k = 0; k < 6; ++k) {
        std::string name = "svc" + std::to_string(k);
        // The shell runs the helper and reaps it before execing the sleeper.
        ServiceSpec& v =
            s.add_exec(name, {"/bin/sh", "-c", h + " notify-send READY=1 && exec " + h + " sleep"});
        v.ready = ReadyMode::notify;
        v.ready_timeout = 10s;
    }
    s.step = stop_when([](scenario& sc) {
        for (int k = 0; k < 6; ++k) {
            if (sc.count("svc" + std::to_string(k), ServiceState::ready) == 0) {
                return false;
            }
        }
        return true;
    });
    s.run();
    for (int k = 0; k < 6; ++k) {
        CHECK(s.count("svc" + std::to_string(k), ServiceState::ready) == 1);
    }
    s.finish();
}

TEST_CASE("watchdog_after_stall: pings queued while the loop was stalled are read before the "
          "watchdog acts") {
    scenario s;
    s.use_notify();
    ServiceSpec& w = s.add("wd", {"notify-then", "100", "READY=1"});
    w.ready = ReadyMode::notify;
    w.watchdog = 500ms;
    s.add_ticker(100ms);
    int ticks_after_ready = 0;
    bool stalled = false;
    s.step = [&](scenario& sc, const rec& r) {
        if (sc.count("wd", ServiceState::ready) == 0 || r.name != "tick" ||
            r.to != ServiceState::backoff) {
            return;
        }
        ++ticks_after_ready;
        if (ticks_after_ready == 3 && !stalled) {
            stalled = true;
            // The loop stalls for 1.5 s (as under SIGSTOP or a slow disk);
            // the service goes on pinging every 100 ms meanwhile.
            std::this_thread::sleep_for(1500ms);
        }
        if (ticks_after_ready >= 8) {
            sc.stop();
        }
    };
    s.run();
    CHECK(stalled);
    CHECK(s.states("wd") == "starting running ready stopping stopped");
    CHECK(s.of("wd").back().reason == "StoppedByRequest");
    s.finish();
}

TEST_CASE("stopped_service_gets_sigcont: a SIGSTOPped service stops on its stop signal, not at "
          "stop_timeout") {
    scenario s;
    ServiceSpec& t = s.add("frozen", {"sleep"});
    t.stop_timeout = 5s;
    std::int64_t stop_at = 0;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name == "frozen" && r.to == ServiceState::ready && stop_at == 0) {
            REQUIRE(::kill(r.pid, SIGSTOP) == 0);
            // Wait until the kernel has stopped it (T state).
            for (int k = 0; k < 200 && proc_state(r.pid) != 'T'; ++k) {
                std::this_thread::sleep_for(5ms);
            }
            CHECK(proc_state(r.pid) == 'T');
            stop_at = now_ns();
            REQUIRE(sc.rt->stop_service("frozen").has_value());
        }
        if (r.name == "frozen" && r.to == ServiceState::stopped) {
            sc.stop();
        }
    };
    s.run();
    auto l = s.of("frozen");
    REQUIRE(l.size() >= 2);
    CHECK(l.back().to == ServiceState::stopped);
    CHECK(l.back().reason == "StoppedByRequest");
    CHECK(l.back().exit.signal == SIGTERM);
    CHECK(l.back().at_ns - stop_at < ms_ns(2000));
    s.finish();
}

namespace {

// A notify service with `watchdog` that sends READY=1 and then `messages`,
// and never pings: how long after READY its watchdog killed it (ns).
std::int64_t watchdog_kill_after(std::vector<std::string> messages, Duration watchdog) {
    scenario s;
    s.use_notify();
    messages.insert(messages.begin(), {"notify-then", "0", "READY=1"});
    ServiceSpec& w = s.add("wd", std::move(messages));
    w.ready = ReadyMode::notify;
    w.watchdog = watchdog;
    w.restart = RestartPolicy::never;
    s.step = stop_when([](scenario& sc) { return sc.count("wd", ServiceState::failed) > 0; });
    s.run(20s);
    int rd = s.index_of("wd", ServiceState::ready);
    int kill = s.index_of("wd", ServiceState::stopping);
    REQUIRE(rd >= 0);
    REQUIRE(kill >= 0);
    CHECK(s.log[kill].reason == "WatchdogTimeout");
    s.finish();
    return s.log[kill].at_ns - s.log[rd].at_ns;
}

} // namespace

TEST_CASE("extend_timeout_overflow: EXTEND_TIMEOUT_USEC near 2^63 cannot switch a watchdog off") {
    CHECK(watchdog_kill_after({"EXTEND_TIMEOUT_USEC=9223372036854775807"}, 300ms) < ms_ns(2000));
}

TEST_CASE("watchdog_usec_from_service: WATCHDOG_USEC= replaces the configured interval") {
    // Not at 300 ms: 1.5 s after the message (sent right after READY).
    CHECK(watchdog_kill_after({"WATCHDOG_USEC=1500000"}, 300ms) >= ms_ns(1400));
}

namespace {

// init() of a second Runtime, with `cfg`, on a copy of `first`'s service
// `name` (running svc_helper sleep): the error it is refused with.
Error second_runtime_error(scenario& first, const std::string& name, RuntimeConfig cfg) {
    cfg.handle_signals = false;
    ServiceSpec spec = first.find_svc(name).spec;
    const std::string h = helper_path();
    std::vector<std::string_view> argv = {h, "sleep"};
    spec.name = name;
    spec.argv = argv;
    Runtime second;
    auto r = second.init(cfg, std::span<const ServiceSpec>(&spec, 1));
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

bool cgroup2_usable() {
    char mount[256];
    return ::geteuid() == 0 && custos::process::find_cgroup2_mount(mount, sizeof mount).has_value();
}

} // namespace

TEST_CASE("second_instance_refused: a second runtime on the same notify_dir fails with "
          "InstanceRunning and leaves the first one's sockets alone") {
    scenario a;
    a.use_notify();
    ServiceSpec& n = a.add("n", {"notify-ready", "0"});
    n.ready = ReadyMode::notify;
    REQUIRE(a.init().has_value());
    struct stat before {};
    REQUIRE(::stat(a.notify_path("n").c_str(), &before) == 0);

    RuntimeConfig cfg;
    cfg.notify_dir = a.cfg.notify_dir;
    Error e = second_runtime_error(a, "n", cfg);
    CHECK(e.reason() == Reason::instance_running);
    CHECK(std::string(e.subject()).find("held by pid " + std::to_string(::getpid())) !=
          std::string::npos);
    struct stat after {};
    REQUIRE(::stat(a.notify_path("n").c_str(), &after) == 0);
    CHECK(after.st_ino == before.st_ino);
    // The first still works.
    a.step = stop_when([](scenario& sc) { return sc.count("n", ServiceState::ready) > 0; });
    a.run();
    CHECK(a.count("n", ServiceState::ready) == 1);
    a.finish();
}

TEST_CASE("socket_deleted_from_outside: a deleted socket file, or the whole notify_dir, is put "
          "back and still reaches the service; the lock too") {
    scenario s;
    s.use_notify();
    ServiceSpec& n = s.add("n", {"notify-ready", "0"});
    n.ready = ReadyMode::notify;
    s.add_ticker(50ms);
    struct stat first {};
    int ticks = 0;
    int phase = 0;
    std::string sock;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name != "tick" || r.to != ServiceState::backoff ||
            sc.count("n", ServiceState::ready) == 0) {
            return;
        }
        ++ticks;
        sock = sc.notify_path("n");
        if (phase == 0) {
            REQUIRE(::stat(sock.c_str(), &first) == 0);
            REQUIRE(::unlink(sock.c_str()) == 0); // a tmp cleaner
            phase = 1;
            ticks = 0;
        } else if (phase == 1 && ticks == 3) {
            struct stat now {};
            CHECK(::stat(sock.c_str(), &now) == 0);
            CHECK(S_ISSOCK(now.st_mode)); // a new socket at the same name
            CHECK(send_with_fd(sock, "STATUS=after unlink", -1));
            // Now the whole directory, as rm -rf would.
            tempdir::remove_tree(sc.notify_path());
            phase = 2;
            ticks = 0;
        } else if (phase == 2 && ticks == 3) {
            CHECK(::access((sc.notify_path() + "/.lock").c_str(), F_OK) == 0);
            CHECK(send_with_fd(sock, "STATUS=after rm -rf", -1));
            phase = 3;
            ticks = 0;
        } else if (phase == 3 && ticks == 2) {
            sc.stop();
        }
    };
    s.run();
    CHECK(phase == 3);
    // The socket twice, the directory, the lock.
    CHECK(s.rt->stats().notify_restored >= 4);
    // Both datagrams arrived through the restored names.
    ServiceStatus st = s.rt->status(s.index("n"));
    CHECK(st.status_text == "after rm -rf");
    CHECK(s.count("n", ServiceState::ready) == 1);
    s.finish();
}

// --- no stray process: cgroups, and the fallback with --containment-off ---

TEST_CASE("no stray process: a setsid() grandchild ends with its service (cgroups); without "
          "cgroups it is the documented limit") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    std::string pidfile = s.path("sid.pid");
    s.add("sid", {"grandchild", "setsid", pidfile});
    s.add_ticker();
    int gpid = 0;
    s.step = [&](scenario& sc, const rec&) {
        if (gpid == 0 && file_exists(pidfile)) {
            gpid = std::atoi(read_file(pidfile).c_str());
            REQUIRE(gpid > 0);
            CHECK(alive(gpid));
            sc.stop();
        }
    };
    s.run();
    REQUIRE(gpid > 0);
    if (s.cgroups()) {
        s.extra_pids.push_back(gpid);
        CHECK(!alive(gpid)); // killed with the cgroup
    } else {
        // Its own session: no process group or session of the service's
        // reaches it; only a cgroup could (README, "No stray process").
        CHECK(alive(gpid));
        ::kill(gpid, SIGKILL);
        ::waitpid(gpid, nullptr, 0); // ours: the runtime made us a subreaper
    }
    s.finish();
}

TEST_CASE("no stray process: a service that forks a daemon and exits leaves no copy behind at "
          "each restart") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    std::string pidfile = s.path("fork.pid");
    ServiceSpec& f = s.add("forker", {"grandchild", "orphan", pidfile});
    f.restart = RestartPolicy::always;
    f.backoff_initial = 100ms;
    f.backoff_max = 100ms;
    f.backoff_jitter_percent = 0;
    std::vector<int> daemons;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name != "forker" || r.to != ServiceState::backoff || !file_exists(pidfile)) {
            return;
        }
        int d = std::atoi(read_file(pidfile).c_str());
        if (d > 0 && (daemons.empty() || daemons.back() != d)) {
            daemons.push_back(d);
        }
        if (sc.count("forker", ServiceState::backoff) >= 6) {
            sc.stop();
        }
    };
    s.run();
    REQUIRE(daemons.size() >= 3);
    // Every daemon copy was killed when its service's process exited.
    for (int d : daemons) {
        s.extra_pids.push_back(d);
        CHECK_MESSAGE(!still_alive(d), "daemon copy " << d << " outlived its service");
    }
    CHECK(s.rt->stats().remnants_killed >= daemons.size() - 1);
    s.finish();
}

TEST_CASE("subreaper: MAINPID= is followed when the started process exits (the daemon is "
          "re-parented to custos)") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    s.use_notify();
    std::string pidfile = s.path("main.pid");
    ServiceSpec& d = s.add("daemon", {"fork-mainpid", pidfile});
    d.ready = ReadyMode::notify;
    d.restart = RestartPolicy::on_failure;
    s.add_ticker();
    int daemon_pid = 0;
    bool killed = false;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name != "tick" || r.to != ServiceState::backoff) {
            return;
        }
        if (daemon_pid == 0 && file_exists(pidfile) &&
            sc.count("daemon", ServiceState::ready) > 0 && sc.rt->stats().exits >= 1) {
            daemon_pid = std::atoi(read_file(pidfile).c_str());
        }
        if (daemon_pid > 0 && !killed && sc.rt->status(sc.index("daemon")).pid == daemon_pid) {
            killed = true;
            CHECK(::kill(daemon_pid, SIGKILL) == 0); // the daemon dies: the service ends
        }
        if (killed && sc.count("daemon", ServiceState::backoff) > 0) {
            sc.stop();
        }
    };
    s.run();
    REQUIRE(daemon_pid > 0);
    CHECK(killed);
    // Ready once; the launcher's exit 0 did not end it; the daemon's death did.
    auto l = s.of("daemon");
    REQUIRE(l.size() >= 4);
    CHECK(s.states("daemon").rfind("starting running ready backoff", 0) == 0);
    int bo = s.index_of("daemon", ServiceState::backoff);
    REQUIRE(bo >= 0);
    CHECK(s.log[bo].exit.signal == SIGKILL);
    CHECK(s.log[bo].exit.pid == daemon_pid);
    CHECK(s.rt->stats().main_pid_followed >= 1);
    s.finish();
}

TEST_CASE("no stray process: an exec probe's setsid() child is killed with its run") {
    scenario s;
    s.cfg.reap_orphans = true; // relies on the subreaper: orphans come to us
    std::string pidfile = s.path("probe.pid");
    const std::string h = helper_path();
    // The probe's command starts a grandchild in its own session, then
    // passes at once.
    ProbeSpec& p = s.add_probe("x", ProbeKind::exec, "");
    static std::vector<std::string> argv_s;
    argv_s = {"/bin/sh", "-c", h + " grandchild setsid " + pidfile + " & sleep 0.2; exit 0"};
    static std::vector<std::string_view> argv_v;
    argv_v.assign(argv_s.begin(), argv_s.end());
    p.argv = argv_v;
    p.interval = 1h;
    s.add_ticker();
    int gpid = 0;
    s.step = [&](scenario& sc, const rec&) {
        if (gpid == 0 && file_exists(pidfile) && sc.probe_count("x", ProbeState::ready) > 0) {
            gpid = std::atoi(read_file(pidfile).c_str());
        }
        if (gpid > 0 && sc.count("tick", ServiceState::backoff) > 20) {
            sc.stop();
        }
    };
    s.run();
    REQUIRE(gpid > 0);
    if (s.cgroups()) {
        s.extra_pids.push_back(gpid);
        CHECK_MESSAGE(!alive(gpid), "the probe's setsid() child " << gpid << " outlived its run");
    } else {
        CHECK(alive(gpid)); // the documented limit without cgroups
        ::kill(gpid, SIGKILL);
        ::waitpid(gpid, nullptr, 0); // ours: the runtime made us a subreaper
    }
    s.finish();
}

// Reported as skipped (not passed) where cgroup2 cannot be used.
TEST_CASE("cgroup root: a second runtime on the same root is refused" *
          doctest::skip(!cgroup2_usable())) {
    scenario a;
    REQUIRE(a.cgroups());
    a.add("x", {"sleep"});
    REQUIRE(a.init().has_value());
    RuntimeConfig cfg;
    cfg.cgroup = a.cfg.cgroup;
    CHECK(second_runtime_error(a, "x", cfg).reason() == Reason::instance_running);
    a.step = stop_when([](scenario& sc) { return sc.count("x", ServiceState::ready) > 0; });
    a.run();
    a.finish();
}

TEST_CASE("abstract_notify_dir: notify_dir = @NAME gives each service an abstract socket "
          "@NAME/SERVICE, and a second instance on the name is refused") {
    scenario s;
    const std::string name = "@custos-test-" + std::to_string(::getpid());
    s.cfg.notify_dir = name;
    ServiceSpec& n = s.add("env", {"env", s.path("env.out")});
    n.ready = ReadyMode::notify;
    REQUIRE(s.init().has_value());
    // The same name again: the kernel refuses the second bind.
    RuntimeConfig cfg;
    cfg.notify_dir = name;
    cfg.cgroup = "off";
    CHECK(second_runtime_error(s, "env", cfg).reason() == Reason::instance_running);
    s.step = stop_when([](scenario& sc) { return sc.count("env", ServiceState::ready) > 0; });
    s.run();
    CHECK(s.count("env", ServiceState::ready) == 1);
    CHECK(report_value(read_file(s.path("env.out")), "env:NOTIFY_SOCKET") == name + "/env");
    s.finish();
}

TEST_CASE("default_notify_dir: without notify_dir, ready = notify works over abstract sockets "
          "unique to the runtime") {
    scenario s;
    ServiceSpec& n = s.add("env", {"env", s.path("env.out")});
    n.ready = ReadyMode::notify;
    s.step = stop_when([](scenario& sc) { return sc.count("env", ServiceState::ready) > 0; });
    s.run();
    CHECK(s.count("env", ServiceState::ready) == 1);
    const std::string sock = report_value(read_file(s.path("env.out")), "env:NOTIFY_SOCKET");
    const std::string prefix = "@custos-" + std::to_string(::getpid()) + "-";
    CHECK(sock.rfind(prefix, 0) == 0);
    CHECK(sock.size() > 4);
    CHECK(sock.substr(sock.size() - 4) == "/env");
    s.finish();
}

TEST_CASE("notify_as_other_user: a service that runs as nobody signals READY=1 and becomes "
          "ready, over the default socket and in a notify_dir made under umask 077" *
          doctest::skip(::geteuid() != 0)) {
    const std::string tmp_dir = "/tmp/custos-nobody-" + std::to_string(::getpid());
    for (bool path_dir : {false, true}) {
        CAPTURE(path_dir);
        scenario s;
        mode_t old_mask = 0;
        if (path_dir) {
            // Not under the scenario's 0700 directory: only the notify
            // directory itself is custos's to make reachable.
            s.cfg.notify_dir = tmp_dir;
            old_mask = ::umask(077);
        }
        ServiceSpec& n = s.add("nb", {"notify-ready", "20"});
        n.ready = ReadyMode::notify;
        n.user = "nobody";
        auto r = s.init();
        if (path_dir) {
            ::umask(old_mask);
        }
        REQUIRE(r.has_value());
        if (path_dir) {
            struct stat st {};
            REQUIRE(::stat(tmp_dir.c_str(), &st) == 0);
            CHECK((st.st_mode & 07777) == 0755);
        }
        s.step = stop_when([](scenario& sc) { return sc.count("nb", ServiceState::ready) > 0; });
        s.run();
        CHECK(s.count("nb", ServiceState::ready) == 1);
        auto l = s.of("nb");
        REQUIRE(l.size() >= 3);
        CHECK(l[2].reason == "ReadyNotified");
        CHECK(s.rt->stats().notify_dropped == 0);
        s.finish();
    }
    ::unlink((tmp_dir + "/.lock").c_str());
    ::rmdir(tmp_dir.c_str());
}

namespace {

// One line from a non-blocking descriptor, waiting at most 10 s ("" on
// timeout or EOF).
std::string read_line(int fd) {
    std::string line;
    const std::int64_t until = now_ns() + 10'000'000'000LL;
    while (now_ns() < until) {
        char c = 0;
        ssize_t n = ::read(fd, &c, 1);
        if (n == 1) {
            if (c == '\n') {
                return line;
            }
            line += c;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            return line;
        }
        pollfd p{fd, POLLIN, 0};
        (void)::poll(&p, 1, 100);
    }
    return line;
}

bool write_all(int fd, const std::string& text) {
    return ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

} // namespace

TEST_CASE("channel: messages both ways over each instance's own socket pair, across restarts") {
    scenario s;
    ServiceSpec& c = s.add("ch", {"channel", "5"});
    c.channel_fd = 5;
    c.restart = RestartPolicy::always;
    struct seen {
        int pid = 0;
        int fd = -1;
        int api_fd = -1;
        std::string hello;
        std::string echo;
        int flags = 0;
    };
    std::vector<seen> instances;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name != "ch" || r.to != ServiceState::ready) {
            return;
        }
        seen v;
        v.pid = r.pid;
        v.fd = r.channel_fd;
        v.api_fd = sc.rt->channel_fd(sc.index("ch"));
        if (v.fd >= 0) {
            v.flags = ::fcntl(v.fd, F_GETFD);
            v.hello = read_line(v.fd);
            const std::string ping = "ping " + std::to_string(instances.size());
            if (write_all(v.fd, ping + "\n")) {
                v.echo = read_line(v.fd);
            }
        }
        instances.push_back(v);
        if (instances.size() == 3 || v.fd < 0) {
            sc.stop();
        } else {
            (void)write_all(v.fd, "exit 3\n"); // a crash: restarted after the backoff
        }
    };
    s.run();
    REQUIRE(instances.size() == 3);
    for (std::size_t k = 0; k < instances.size(); ++k) {
        const seen& v = instances[k];
        CAPTURE(k);
        CHECK(v.fd >= 0);
        CHECK(v.api_fd == v.fd);
        CHECK((v.flags & FD_CLOEXEC) != 0);
        CHECK(v.hello == "hello " + std::to_string(v.pid));
        CHECK(v.echo == "echo ping " + std::to_string(k));
    }
    CHECK(instances[0].pid != instances[1].pid);
    // Only the transition out of starting carries it.
    for (const rec& r : s.of("ch")) {
        if (r.from != ServiceState::starting) {
            CHECK(r.channel_fd == -1);
        }
    }
    CHECK(s.rt->channel_fd(s.index("ch")) == -1); // none once stopped
    s.finish();
}

TEST_CASE("channel: no descriptor leaked over 100 restarts") {
    scenario s;
    ServiceSpec& c = s.add("ch", {"exit", "0"});
    c.channel_fd = 7;
    c.restart = RestartPolicy::always;
    c.backoff_initial = 1ms;
    c.backoff_max = 1ms;
    c.backoff_multiplier_x100 = 100;
    c.stable_after = 1h;
    std::vector<int> fds_at_ready;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name == "ch" && r.to == ServiceState::ready) {
            CHECK(r.channel_fd >= 0);
            fds_at_ready.push_back(count_fds());
            if (fds_at_ready.size() == 100) {
                sc.stop();
            }
        }
    };
    s.run(60s);
    REQUIRE(fds_at_ready.size() == 100);
    // Each running instance holds one channel end at most: the count is
    // the same at every start.
    CHECK(*std::max_element(fds_at_ready.begin(), fds_at_ready.end()) ==
          *std::min_element(fds_at_ready.begin(), fds_at_ready.end()));
    s.finish(); // and back to the count before init()
}

TEST_CASE("runtime_dir: RUNTIME_DIRECTORY is the service's own, 0700 and its user's, and is "
          "gone after the stop") {
    const bool root = ::geteuid() == 0;
    // As nobody (root only), under a root every user may enter; else as
    // custos's own user, in the scenario's directory.
    const std::string shared_root = "/tmp/custos-rundir-" + std::to_string(::getpid());
    for (bool as_nobody : {false, true}) {
        if (as_nobody && !root) {
            MESSAGE("skipped: a service as nobody needs root");
            continue;
        }
        CAPTURE(as_nobody);
        scenario s;
        const std::string rd_root = as_nobody ? shared_root : s.path("rt");
        s.cfg.runtime_dir_root = rd_root;
        ServiceSpec& d = s.add("rd", {"rundir"});
        d.runtime_dir = true;
        d.restart = RestartPolicy::never;
        uid_t want_uid = ::geteuid();
        if (as_nobody) {
            d.user = "nobody";
            const passwd* pw = ::getpwnam("nobody");
            REQUIRE(pw != nullptr);
            want_uid = pw->pw_uid;
        }
        const std::string dir = rd_root + "/rd";
        struct stat st {};
        bool stat_ok = false;
        std::string written;
        s.step = [&](scenario& sc, const rec& r) {
            if (r.name != "rd" || r.to != ServiceState::ready) {
                return;
            }
            const std::int64_t until = now_ns() + 10'000'000'000LL;
            while (!file_exists(dir + "/written") && now_ns() < until) {
                ::usleep(10'000);
            }
            written = read_file(dir + "/written");
            stat_ok = ::lstat(dir.c_str(), &st) == 0;
            sc.stop();
        };
        s.run();
        REQUIRE(stat_ok);
        CHECK(S_ISDIR(st.st_mode));
        CHECK((st.st_mode & 07777) == 0700);
        CHECK(st.st_uid == want_uid);
        CHECK(written == std::to_string(s.of("rd")[1].pid) + "\n");
        // Gone with the stop, symlink and subdirectory included; the root
        // stays, and what the symlink pointed at is untouched.
        CHECK_FALSE(file_exists(dir));
        CHECK(file_exists(rd_root));
        CHECK(file_exists("/etc/passwd"));
        s.finish();
    }
    ::rmdir(shared_root.c_str());
}

TEST_CASE("runtime_dir: an operator's stop of the service removes it while the runtime runs") {
    scenario s;
    s.cfg.runtime_dir_root = s.keep(s.path("rt"));
    ServiceSpec& d = s.add("rd", {"rundir"});
    d.runtime_dir = true;
    s.add_ticker();
    const std::string dir = s.path("rt") + "/rd";
    bool existed = false;
    bool gone_while_running = false;
    s.step = [&](scenario& sc, const rec& r) {
        if (r.name == "rd" && r.to == ServiceState::ready) {
            const std::int64_t until = now_ns() + 10'000'000'000LL;
            while (!file_exists(dir + "/written") && now_ns() < until) {
                ::usleep(10'000);
            }
            existed = file_exists(dir + "/written");
            (void)sc.rt->stop_service("rd");
        } else if (r.name == "tick" && sc.count("rd", ServiceState::stopped) > 0) {
            gone_while_running = !file_exists(dir);
            sc.stop();
        }
    };
    s.run();
    CHECK(existed);
    CHECK(gone_while_running);
    s.finish();
}

TEST_CASE("runtime_dir: without runtime_dir_root, init fails with RuntimeDirUnavailable") {
    scenario s;
    ServiceSpec& d = s.add("rd", {"rundir"});
    d.runtime_dir = true;
    auto r = s.init();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().reason() == Reason::runtime_dir_unavailable);
}

TEST_CASE("init rejects a table whose services name unknown probes") {
    scenario s;
    ServiceSpec& w = s.add("web", {"sleep"});
    w.liveness = "nope";
    auto r = s.init();
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().reason() == Reason::probe_unknown);
    CHECK(r.error().subject() == "nope");
}

// --- embedding: custos inside a program with children of its own ---

namespace {

// A child of the test program itself, not custos's: exits with `code`
// after `ms`.
int fork_own_child(int code, int ms) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
        ::nanosleep(&ts, nullptr);
        ::_exit(code);
    }
    return pid;
}

// The program waits for its own child: it must get the child's status, not
// ECHILD (which is what it gets if custos reaped the child first).
void reap_own(int pid, int code) {
    int status = 0;
    pid_t r = -1;
    do {
        r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    const int err = r < 0 ? errno : 0;
    CHECK_MESSAGE(r == pid, "waitpid(" << pid << "): " << std::string(std::strerror(err)));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == code);
}

int subreaper_flag() {
    int on = 0;
    ::prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0);
    return on;
}

} // namespace

TEST_CASE("embedding: a program's own children stay its own to reap beside a crash-looping "
          "service and exec probes (reap_orphans off)") {
    const int was_subreaper = subreaper_flag();
    // One child forked before Runtime::init, one after it: both exit while
    // the runtime runs and drains SIGCHLD.
    const int before = fork_own_child(7, 200);
    REQUIRE(before > 0);
    scenario s; // reap_orphans is off by default
    ServiceSpec& c = s.add("crash", {"exit", "3"});
    c.restart = RestartPolicy::always;
    c.backoff_initial = 20ms;
    c.backoff_max = 20ms;
    c.backoff_multiplier_x100 = 100;
    c.backoff_jitter_percent = 0;
    c.stable_after = 1h;
    // Exec runs are custos's children too: reaped by pid like the services'.
    ProbeSpec& good = s.add_probe("good", ProbeKind::exec, "");
    static const std::string_view ok_argv[] = {"sh", "-c", "exit 0"};
    good.argv = ok_argv;
    good.interval = 50ms;
    REQUIRE(s.init().has_value());
    CHECK(subreaper_flag() == was_subreaper);
    CHECK(std::string(s.rt->backend_reason()).find("not a subreaper (reap_orphans off)") !=
          std::string::npos);
    const int after = fork_own_child(9, 300);
    REQUIRE(after > 0);
    s.step = stop_when([](scenario& sc) {
        return sc.count("crash", ServiceState::backoff) >= 10 &&
               sc.probe_count("good", ProbeState::ready) > 0 &&
               now_ns() - sc.start_ns >= ms_ns(600);
    });
    s.run();
    // What was exercised (the spawner steps down where the kernel refuses
    // the method asked for).
    MESSAGE("exit watch: " << std::string(s.rt->exit_watch_name())
                           << ", spawn: " << std::string(s.rt->spawn_method_name()));
    CHECK(s.count("crash", ServiceState::backoff) >= 10);
    const RuntimeStats st = s.rt->stats();
    CHECK(st.exits >= 10);
    CHECK(st.exits == st.spawns - (s.rt->status(s.index("crash")).pid != 0 ? 1 : 0));
    CHECK(st.orphans_reaped == 0);
    CHECK(st.probe_checks >= 1);
    reap_own(before, 7);
    reap_own(after, 9);
    s.finish();
}

int main(int argc, char** argv) {
    std::string_view client;
    bool subreaper = false;
    bool embed = false;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a.substr(0, 9) == "--client=") {
            client = a.substr(9);
            continue;
        }
        if (a == "--subreaper") {
            subreaper = true;
            continue;
        }
        if (a == "--embed") {
            embed = true;
            continue;
        }
        if (a == "--containment-off") {
            g_cgroups_off = true;
            continue;
        }
        args.push_back(argv[i]);
    }
    if (!client.empty()) {
        if (const char* why = client_unavailable(client)) {
            std::printf("SKIP: real client %.*s: %s\n", static_cast<int>(client.size()),
                        client.data(), why);
            return 77;
        }
    }
    if (subreaper) {
        if (const char* why = subreaper_unavailable()) {
            std::printf("SKIP: prctl(PR_SET_CHILD_SUBREAPER) refused here: %s\n", why);
            return 77;
        }
    }
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
    if (!client.empty()) {
        std::string filter = "real client: " + std::string(client) + "*";
        ctx.addFilter("test-case", filter.c_str());
    } else if (subreaper) {
        ctx.addFilter("test-case", "subreaper:*");
    } else if (g_cgroups_off) {
        ctx.addFilter("test-case", "no stray process:*");
    } else if (embed) {
        ctx.addFilter("test-case", "embedding:*");
    } else {
        ctx.addFilter("test-case-exclude", "real client:*,subreaper:*,embedding:*");
    }
    ctx.applyCommandLine(static_cast<int>(args.size()), args.data());
    return ctx.run();
}
