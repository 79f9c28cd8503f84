// Runtime::reload through a real custos::Runtime (custos issue 13): a table
// applied to the running runtime, unchanged, with a service changed, added
// or removed, and refused (invalid, unsupported, over capacity, busy), by
// SIGHUP and by POST /reload on the control socket, with and without a
// reload hook.
//
// The runtime runs on a thread of its own with handle_signals: the signals
// it handles are blocked in main() before any thread exists, so only its
// signalfd takes them. Its reload hook reloads the table the test thread
// named (world::next) and records what came of it; SIGUSR1 (the signal
// hook, on the reactor thread) takes a picture of every service's status
// for the test thread, so nothing here reads supervision state from another
// thread. Every transition is recorded by the transition hook. The cases
// run in a child process; the parent kills the services a failed case
// left behind.
//
// Reload compares against the tables it was given: every table a case
// builds lives (world::tables) until the case's runtime is gone.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll); a
// backend the kernel refuses makes the run exit 77 (a skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <sys/mman.h>
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
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/runtime.hpp>

#include "backend_probe.hpp"

using namespace custos;
using namespace std::chrono_literals;

namespace {

const char* g_helper = nullptr; // CUSTOS_SVC_HELPER

// The services' processes. A failed REQUIRE ends the test process at once
// (_Exit: no handler runs), and the services (in process groups of their
// own) would outlive it, holding meson's output pipe open. So main() forks:
// the child runs the cases, the parent waits for it and then kills whatever
// the child's transition hook noted as started and not yet exited, in
// memory both share.
constexpr std::size_t max_pids = 64;
std::atomic<int>* g_pids = nullptr; // max_pids, MAP_SHARED

void note_pid(int pid, bool alive) {
    for (std::size_t i = 0; i < max_pids; ++i) {
        int want = alive ? 0 : pid;
        if (g_pids[i].compare_exchange_strong(want, alive ? pid : 0)) {
            return;
        }
    }
}

void kill_services() {
    for (std::size_t i = 0; i < max_pids; ++i) {
        const int pid = g_pids[i].exchange(0);
        if (pid > 0) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
        }
    }
}

void on_alarm(int) {
    const char msg[] = "test_reload: a case hung (alarm); failing\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::_Exit(1);
}

std::int64_t now_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

// Generous: CI runs this under sanitizers and qemu on loaded machines.
constexpr std::int64_t deadline_ms = 20000;

// --- the control socket -------------------------------------------------

struct answer {
    int status = 0; // 0: no answer
    std::string body;
};

// One request on a fresh connection that asks for a close; read to EOF.
answer ask(const std::string& sock, const std::string& req) {
    answer a;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return a;
    }
    timeval tv{};
    tv.tv_sec = 10;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return a;
    }
    std::string_view rest = req;
    while (!rest.empty()) {
        const ssize_t n = ::send(fd, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            ::close(fd);
            return a;
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
    std::string all;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        all.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const std::size_t end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) {
        return a;
    }
    a.status = std::atoi(all.c_str() + 9);
    a.body = all.substr(end + 4);
    return a;
}

const std::string post_reload = "POST /reload HTTP/1.1\r\nContent-Length: 0\r\n"
                                "Connection: close\r\n\r\n";

// --- tables -----------------------------------------------------------------

struct svc_def {
    std::string name;
    std::vector<std::string> argv;
    std::vector<std::string> deps;
    DependencyDownAction on_down = DependencyDownAction::ignore;
    ReadyMode ready = ReadyMode::started;
    int ready_fd = -1;
};

svc_def sleeper(std::string name, std::vector<std::string> deps = {}) {
    svc_def d;
    d.name = std::move(name);
    d.argv = {g_helper, "sleep"};
    d.deps = std::move(deps);
    return d;
}

// A table and everything its views point at; built in place, never moved.
struct owned_table {
    std::vector<svc_def> defs;
    std::vector<std::vector<std::string_view>> argvs;
    std::vector<std::vector<std::string_view>> deps;
    std::vector<ServiceSpec> specs;
    ProbeSpec probe;
    std::vector<ProbeSpec> probes; // a case's own (tweak: o.t.probes = o.probes)
    std::string text;              // a string they point at
    Table t;
};

// What every table of a case shares (a reload cannot change it).
struct settings {
    std::string dir;
    std::string sock;
    std::uint32_t slots = 0;
};

// --- the runtime under test -------------------------------------------------

struct seen_transition {
    std::string name;
    ServiceState from = ServiceState::stopped;
    ServiceState to = ServiceState::stopped;
    Reason reason = Reason::unknown;
    int pid = 0;
    // For the reload's own transitions: service_count() and the names in
    // status order at that moment ("a,b,c").
    std::uint32_t count_at = 0;
    std::string order_at;
};

struct reload_result {
    bool ok = false;
    ReloadSummary sum;
    Reason reason = Reason::unknown;
    std::string subject;
    std::vector<std::string> problems; // what the sink saw
};

struct svc_seen {
    std::string name;
    ServiceState state = ServiceState::stopped;
    Reason reason = Reason::unknown;
    int pid = 0;
    std::int64_t since_ns = 0;
    std::uint32_t restarts = 0;
    std::uint64_t total_restarts = 0;
    std::uint64_t by_operator = 0;
    std::uint64_t deaths = 0;
};

struct probe_seen {
    std::string name;
    ProbeState state = ProbeState::unknown;
    std::uint64_t checks = 0;
    std::string message; // the last error's
};

// Every service's status, taken on the reactor thread.
struct picture {
    std::uint32_t count = 0;
    std::vector<svc_seen> svcs;
    std::vector<probe_seen> probes;

    const probe_seen* probe(std::string_view name) const {
        for (const probe_seen& p : probes) {
            if (p.name == name) {
                return &p;
            }
        }
        return nullptr;
    }
    std::string probe_order() const {
        std::string o;
        for (const probe_seen& p : probes) {
            o += (o.empty() ? "" : ",") + p.name;
        }
        return o;
    }

    const svc_seen* find(std::string_view name) const {
        for (const svc_seen& s : svcs) {
            if (s.name == name) {
                return &s;
            }
        }
        return nullptr;
    }
    std::string order() const {
        std::string o;
        for (const svc_seen& s : svcs) {
            o += (o.empty() ? "" : ",") + s.name;
        }
        return o;
    }
    bool all_ready() const {
        return std::all_of(svcs.begin(), svcs.end(),
                           [](const svc_seen& s) { return s.state == ServiceState::ready; });
    }
};

std::string order_of(const Runtime& rt) {
    std::string o;
    for (std::uint32_t i = 0; i < rt.service_count(); ++i) {
        const ServiceStatus s = rt.status(i);
        o += (o.empty() ? "" : ",") + std::string(s.name.view());
    }
    return o;
}

struct world {
    settings set;
    std::deque<std::unique_ptr<owned_table>> tables; // alive until the runtime is gone
    std::unique_ptr<Runtime> rt;
    std::thread runner;
    std::atomic<int> phase{0}; // 1 running, -1 init or start failed, 2 run() returned
    std::string init_error;
    bool with_hook = true;

    std::atomic<const Table*> next{nullptr}; // what the reload hook reloads
    std::mutex mu;                           // guards everything below
    std::vector<seen_transition> transitions;
    std::vector<std::pair<std::string, Reason>> probe_events; // probe, reason
    std::vector<reload_result> results;
    std::vector<int> signals;
    std::uint64_t pictures = 0;
    picture last;

    // A runtime on `first` (the init table), every service ready.
    world(std::vector<svc_def> first, std::uint32_t slots, bool hook = true) : with_hook(hook) {
        char tmpl[] = "/tmp/custos-reload.XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        set.dir = tmpl;
        set.sock = set.dir + "/control.sock";
        set.slots = slots;
        const Table& t = make(std::move(first));
        runner = std::thread([this, &t] { run_thread(t); });
        const std::int64_t until = now_ms() + deadline_ms;
        while (phase.load() == 0 && now_ms() < until) {
            std::this_thread::sleep_for(5ms);
        }
        REQUIRE_MESSAGE(phase.load() == 1, "runtime did not start: ", init_error);
        const picture p = wait_for([](const picture& q) { return q.all_ready(); });
        REQUIRE_MESSAGE(p.all_ready(), "not all ready: ", p.order());
    }

    ~world() {
        if (phase.load() == 1) {
            ::kill(::getpid(), SIGTERM);
        }
        if (runner.joinable()) {
            runner.join();
        }
        ::unlink(set.sock.c_str());
        ::rmdir(set.dir.c_str());
    }
    world(const world&) = delete;
    world& operator=(const world&) = delete;

    // A table of `defs` with the case's settings; `tweak` may change it
    // (what a reload cannot apply) before it is used.
    const Table& make(std::vector<svc_def> defs,
                      const std::function<void(owned_table&)>& tweak = {}) {
        tables.push_back(std::make_unique<owned_table>());
        owned_table& o = *tables.back();
        o.defs = std::move(defs);
        const std::size_t n = o.defs.size();
        o.argvs.resize(n);
        o.deps.resize(n);
        o.specs.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            const svc_def& d = o.defs[i];
            for (const std::string& a : d.argv) {
                o.argvs[i].push_back(a);
            }
            for (const std::string& a : d.deps) {
                o.deps[i].push_back(a);
            }
            ServiceSpec& s = o.specs[i];
            s.name = d.name;
            s.argv = o.argvs[i];
            s.depends_on = o.deps[i];
            s.restart = RestartPolicy::always;
            s.backoff_initial = 100ms;
            s.backoff_max = 100ms;
            s.stop_timeout = 2s;
            s.on_dependency_down = d.on_down;
            s.ready = d.ready;
            s.ready_fd = d.ready_fd;
        }
        o.probe.name = "dir";
        o.probe.kind = ProbeKind::file;
        o.probe.target = set.dir;
        o.probe.interval = 10s;
        o.t.runtime.handle_signals = true;
        o.t.runtime.cgroup = "off";
        o.t.runtime.stop_timeout = 10s;
        o.t.runtime.boot_grace = 300ms;
        o.t.runtime.service_slots = set.slots;
        o.t.runtime.probe_slots = 4;
        o.t.services = o.specs;
        o.t.probes = std::span<const ProbeSpec>(&o.probe, 1);
        o.t.control.socket = set.sock;
        o.t.control.mode = 0600;
        if (tweak) {
            tweak(o);
        }
        return o.t;
    }

    void run_thread(const Table& t) {
        rt = std::make_unique<Runtime>();
        auto r = rt->init(t);
        if (!r) {
            char text[512];
            r.error().format(text, sizeof text);
            init_error = text;
            phase = -1;
            rt.reset();
            return;
        }
        rt->set_transition_hook(&world::on_transition, this);
        rt->set_signal_hook(&world::on_signal, this);
        rt->set_probe_hook(&world::on_probe, this);
        if (with_hook) {
            rt->set_reload_hook(&world::on_reload, this);
        }
        if (auto s = rt->start(); !s) {
            init_error = "start failed";
            phase = -1;
            rt.reset();
            return;
        }
        phase = 1;
        rt->run();
        phase = 2;
        // Destroyed on its own thread, after the readers have stopped.
    }

    // --- hooks, on the reactor thread ---

    static void on_transition(const Transition& t, void* ctx) noexcept {
        auto& w = *static_cast<world*>(ctx);
        seen_transition s;
        s.name = std::string(t.name);
        s.from = t.from;
        s.to = t.to;
        s.reason = t.reason;
        s.pid = t.pid;
        if (t.from == ServiceState::starting &&
            (t.to == ServiceState::running || t.to == ServiceState::ready) && t.pid > 0) {
            note_pid(t.pid, true);
        }
        if (t.exit.pid > 0) {
            note_pid(t.exit.pid, false);
        }
        if (t.reason == Reason::reload_removed || t.reason == Reason::reload_added ||
            t.reason == Reason::reload_changed) {
            s.count_at = w.rt->service_count();
            s.order_at = order_of(*w.rt);
        }
        std::lock_guard<std::mutex> lock(w.mu);
        w.transitions.push_back(std::move(s));
    }

    static void on_probe(const ProbeTransition& t, void* ctx) noexcept {
        auto& w = *static_cast<world*>(ctx);
        std::lock_guard<std::mutex> lock(w.mu);
        w.probe_events.emplace_back(std::string(t.name), t.reason);
    }

    static void on_signal(int sig, void* ctx) noexcept {
        auto& w = *static_cast<world*>(ctx);
        picture p;
        if (sig == SIGUSR1) {
            p.count = w.rt->service_count();
            for (std::uint32_t i = 0; i < p.count; ++i) {
                const ServiceStatus st = w.rt->status(i);
                svc_seen s;
                s.name = std::string(st.name.view());
                s.state = st.state;
                s.reason = st.reason;
                s.pid = st.pid;
                s.since_ns = st.since_ns;
                s.restarts = st.restarts;
                s.total_restarts = st.total_restarts;
                s.by_operator =
                    st.restarts_by_cause[static_cast<std::size_t>(RestartCause::operator_)];
                s.deaths = st.death_count;
                p.svcs.push_back(std::move(s));
            }
            for (std::uint32_t i = 0; i < w.rt->probe_count(); ++i) {
                const ProbeStatus st = w.rt->probe_status(i);
                probe_seen q;
                q.name = std::string(st.name.view());
                q.state = st.state;
                q.checks = st.checks;
                q.message = std::string(st.last_error.message.view());
                p.probes.push_back(std::move(q));
            }
        }
        std::lock_guard<std::mutex> lock(w.mu);
        w.signals.push_back(sig);
        if (sig == SIGUSR1) {
            w.last = std::move(p);
            ++w.pictures;
        }
    }

    struct sink final : TableProblemSink {
        ReloadReport& out;
        std::vector<std::string>& seen;
        sink(ReloadReport& r, std::vector<std::string>& s) : out(r), seen(s) {}
        void report(const TableProblem& p) noexcept override {
            char text[512];
            p.error.format(text, sizeof text);
            std::string line = std::string(p.name) + ": " + text;
            out.add(line);
            seen.push_back(std::move(line));
        }
    };

    static Result<ReloadSummary> on_reload(Runtime& rt, ReloadReport& report, void* ctx) {
        auto& w = *static_cast<world*>(ctx);
        const Table* t = w.next.load();
        if (t == nullptr) {
            return fail(Reason::reload_invalid, 0, "the test named no table");
        }
        reload_result rr;
        sink s(report, rr.problems);
        Result<ReloadSummary> r = rt.reload(*t, &s);
        rr.ok = r.has_value();
        if (r) {
            rr.sum = *r;
        } else {
            rr.reason = r.error().reason();
            rr.subject = std::string(r.error().subject());
        }
        std::lock_guard<std::mutex> lock(w.mu);
        w.results.push_back(std::move(rr));
        return r;
    }

    // --- the test thread's side ---

    // A picture of every service, taken on the reactor thread.
    picture look() {
        std::uint64_t before = 0;
        {
            std::lock_guard<std::mutex> lock(mu);
            before = pictures;
        }
        ::kill(::getpid(), SIGUSR1);
        const std::int64_t until = now_ms() + deadline_ms;
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(mu);
                if (pictures > before) {
                    return last;
                }
            }
            REQUIRE_MESSAGE(now_ms() < until, "the runtime took no picture (SIGUSR1)");
            std::this_thread::sleep_for(2ms);
        }
    }

    // Pictures until `pred` holds or the deadline passes: the last one.
    picture wait_for(const std::function<bool(const picture&)>& pred) {
        const std::int64_t until = now_ms() + deadline_ms;
        for (;;) {
            picture p = look();
            if (pred(p) || now_ms() >= until) {
                return p;
            }
            std::this_thread::sleep_for(20ms);
        }
    }

    std::size_t result_count() {
        std::lock_guard<std::mutex> lock(mu);
        return results.size();
    }

    // Result number `n` of the hook, once it is there.
    reload_result result(std::size_t n) {
        const std::int64_t until = now_ms() + deadline_ms;
        for (;;) {
            {
                std::lock_guard<std::mutex> lock(mu);
                if (results.size() > n) {
                    return results[n];
                }
            }
            REQUIRE_MESSAGE(now_ms() < until, "the reload hook did not run");
            std::this_thread::sleep_for(2ms);
        }
    }

    // A reload of `t` by SIGHUP.
    reload_result reload_by_signal(const Table& t) {
        next = &t;
        const std::size_t n = result_count();
        ::kill(::getpid(), SIGHUP);
        return result(n);
    }

    // A reload of `t` by POST /reload: the answer, and what the hook saw.
    answer reload_by_post(const Table& t, reload_result* r = nullptr) {
        next = &t;
        const std::size_t n = result_count();
        answer a = ask(set.sock, post_reload);
        if (r != nullptr && a.status != 0 && a.status != 501) {
            *r = result(n);
        }
        return a;
    }

    // Whether a probe event of `name` with `why` was seen.
    bool probe_event(std::string_view name, Reason why) {
        std::lock_guard<std::mutex> lock(mu);
        return std::any_of(probe_events.begin(), probe_events.end(),
                           [&](const auto& e) { return e.first == name && e.second == why; });
    }

    std::size_t transition_count() {
        std::lock_guard<std::mutex> lock(mu);
        return transitions.size();
    }

    // The transitions recorded from number `from` on.
    std::vector<seen_transition> transitions_since(std::size_t from) {
        std::lock_guard<std::mutex> lock(mu);
        return {transitions.begin() + static_cast<std::ptrdiff_t>(from), transitions.end()};
    }
};

std::string show(const reload_result& r) {
    if (r.ok) {
        return "ok: added " + std::to_string(r.sum.added) + ", removed " +
               std::to_string(r.sum.removed) + ", changed " + std::to_string(r.sum.changed) +
               ", unchanged " + std::to_string(r.sum.unchanged);
    }
    std::string s = std::string(reason_id(r.reason)) + ": " + r.subject;
    for (const std::string& p : r.problems) {
        s += "\n  problem: " + p;
    }
    return s;
}

void check_summary(const reload_result& r, std::uint32_t added, std::uint32_t removed,
                   std::uint32_t changed, std::uint32_t unchanged) {
    INFO(show(r));
    REQUIRE(r.ok);
    CHECK(r.sum.added == added);
    CHECK(r.sum.removed == removed);
    CHECK(r.sum.changed == changed);
    CHECK(r.sum.unchanged == unchanged);
}

// Nothing a refused reload could have touched moved: the same services in
// the same order, each with its process, state, since and counters.
void check_unchanged(const picture& before, const picture& after) {
    CHECK(after.count == before.count);
    CHECK(after.order() == before.order());
    for (const svc_seen& b : before.svcs) {
        const svc_seen* a = after.find(b.name);
        REQUIRE_MESSAGE(a != nullptr, b.name);
        INFO(b.name);
        CHECK(a->pid == b.pid);
        CHECK(a->state == b.state);
        CHECK(a->since_ns == b.since_ns);
        CHECK(a->restarts == b.restarts);
        CHECK(a->total_restarts == b.total_restarts);
        CHECK(a->by_operator == b.by_operator);
        CHECK(a->deaths == b.deaths);
    }
}

bool has(const std::string& text, std::string_view what) {
    return text.find(what) != std::string::npos;
}

// A transition of `name` to `to` with `why` among `ts`.
const seen_transition* find_transition(const std::vector<seen_transition>& ts,
                                       std::string_view name, ServiceState to, Reason why) {
    for (const seen_transition& t : ts) {
        if (t.name == name && t.to == to && t.reason == why) {
            return &t;
        }
    }
    return nullptr;
}

std::vector<svc_def> abc() {
    return {sleeper("a"), sleeper("b", {"a"}), sleeper("c")};
}

} // namespace

TEST_CASE("reload: the same table again changes nothing (SIGHUP and POST)") {
    world w(abc(), 4);
    const picture before = w.look();
    REQUIRE(before.count == 3);
    const std::size_t t0 = w.transition_count();

    // An equal table (other storage, the same values) by SIGHUP.
    check_summary(w.reload_by_signal(w.make(abc())), 0, 0, 0, 3);
    // The init table itself by POST /reload.
    reload_result r;
    const answer a = w.reload_by_post(w.tables.front()->t, &r);
    INFO(a.body);
    CHECK(a.status == 200);
    CHECK(has(a.body, "\"reloaded\":true"));
    CHECK(has(a.body, "\"added\":0"));
    CHECK(has(a.body, "\"removed\":0"));
    CHECK(has(a.body, "\"changed\":0"));
    CHECK(has(a.body, "\"unchanged\":3"));
    check_summary(r, 0, 0, 0, 3);

    std::this_thread::sleep_for(200ms);
    check_unchanged(before, w.look());
    CHECK(w.transition_count() == t0);
}

TEST_CASE("reload: a changed service stops and starts again: the others are untouched") {
    world w(abc(), 4);
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();
    std::vector<svc_def> defs = abc();
    defs[2].argv.push_back("changed");
    check_summary(w.reload_by_signal(w.make(defs)), 0, 0, 1, 2);

    const svc_seen* c0 = before.find("c");
    REQUIRE(c0 != nullptr);
    const picture after = w.wait_for([&](const picture& p) {
        const svc_seen* c = p.find("c");
        return c != nullptr && c->state == ServiceState::ready && c->pid != c0->pid;
    });
    const svc_seen* c = after.find("c");
    REQUIRE(c != nullptr);
    CHECK(c->state == ServiceState::ready);
    CHECK(c->pid != 0);
    CHECK(c->pid != c0->pid);
    CHECK(c->by_operator == c0->by_operator + 1);
    CHECK(c->total_restarts == c0->total_restarts); // not an automatic restart
    CHECK(after.count == 3);
    CHECK(after.order() == "a,b,c");
    for (const char* name : {"a", "b"}) {
        INFO(name);
        CHECK(after.find(name)->pid == before.find(name)->pid);
        CHECK(after.find(name)->since_ns == before.find(name)->since_ns);
        CHECK(after.find(name)->by_operator == before.find(name)->by_operator);
    }
    const std::vector<seen_transition> ts = w.transitions_since(t0);
    const seen_transition* stopping =
        find_transition(ts, "c", ServiceState::stopping, Reason::reload_changed);
    const seen_transition* stopped =
        find_transition(ts, "c", ServiceState::stopped, Reason::reload_changed);
    CHECK(stopping != nullptr);
    CHECK(stopped != nullptr);
    bool started_again = false;
    for (const seen_transition& t : ts) {
        CHECK_MESSAGE(t.name == "c", "only c moves: ", t.name, " ", state_name(t.to));
        started_again =
            started_again || (t.from == ServiceState::stopped && t.to != ServiceState::stopped &&
                              t.reason == Reason::reload_changed);
    }
    CHECK(started_again);
}

TEST_CASE("reload: an added service starts after its dependency - in the new table's order") {
    world w(abc(), 4);
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();
    // d between a and b: the status order is the new table's.
    const Table& t = w.make({sleeper("a"), sleeper("d", {"a"}), sleeper("b", {"a"}), sleeper("c")});
    check_summary(w.reload_by_signal(t), 1, 0, 0, 3);

    const picture after = w.wait_for([](const picture& p) {
        const svc_seen* d = p.find("d");
        return d != nullptr && d->state == ServiceState::ready;
    });
    CHECK(after.count == 4);
    CHECK(after.order() == "a,d,b,c");
    const svc_seen* d = after.find("d");
    REQUIRE(d != nullptr);
    CHECK(d->state == ServiceState::ready);
    CHECK(d->pid > 0);
    for (const char* name : {"a", "b", "c"}) {
        INFO(name);
        CHECK(after.find(name)->pid == before.find(name)->pid);
        CHECK(after.find(name)->since_ns == before.find(name)->since_ns);
    }
    const std::vector<seen_transition> ts = w.transitions_since(t0);
    REQUIRE(!ts.empty());
    CHECK(ts.front().name == "d");
    CHECK(ts.front().from == ServiceState::stopped);
    CHECK(ts.front().reason == Reason::reload_added);
    CHECK(ts.front().count_at == 4);
    for (const seen_transition& t2 : ts) {
        CHECK_MESSAGE(t2.name == "d", "only d moves: ", t2.name, " ", state_name(t2.to));
    }
}

TEST_CASE("reload: a removed service is shown while it stops - then gone: its slot is reused") {
    world w(abc(), 4); // 3 services, 4 slots
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();
    check_summary(w.reload_by_signal(w.make({sleeper("a"), sleeper("b", {"a"})})), 0, 1, 0, 2);

    const picture gone = w.wait_for([](const picture& p) { return p.count == 2; });
    CHECK(gone.count == 2);
    CHECK(gone.order() == "a,b");
    for (const char* name : {"a", "b"}) {
        INFO(name);
        CHECK(gone.find(name)->pid == before.find(name)->pid);
    }
    const std::vector<seen_transition> ts = w.transitions_since(t0);
    const seen_transition* stopping =
        find_transition(ts, "c", ServiceState::stopping, Reason::reload_removed);
    const seen_transition* stopped =
        find_transition(ts, "c", ServiceState::stopped, Reason::reload_removed);
    REQUIRE(stopping != nullptr);
    REQUIRE(stopped != nullptr);
    // While it stops it is shown, after the new table's services.
    CHECK(stopping->count_at == 3);
    CHECK(stopping->order_at == "a,b,c");
    // The control plane knows it no longer.
    CHECK(ask(w.set.sock, "GET /services/c HTTP/1.1\r\nConnection: close\r\n\r\n").status == 404);
    for (const seen_transition& t : ts) {
        CHECK_MESSAGE(t.name == "c", "only c moves: ", t.name, " ", state_name(t.to));
    }

    // Two added services need c's slot as well as the spare one.
    reload_result r;
    const answer a = w.reload_by_post(
        w.make({sleeper("a"), sleeper("b", {"a"}), sleeper("d", {"b"}), sleeper("e")}), &r);
    INFO(a.body);
    CHECK(a.status == 200);
    CHECK(has(a.body, "\"added\":2"));
    check_summary(r, 2, 0, 0, 2);
    const picture full = w.wait_for([](const picture& p) { return p.count == 4 && p.all_ready(); });
    CHECK(full.count == 4);
    CHECK(full.order() == "a,b,d,e");
    CHECK(full.all_ready());
    const answer d = ask(w.set.sock, "GET /services/d HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(d.status == 200);
    CHECK(has(d.body, "\"d\""));
}

TEST_CASE("reload: a changed service an operator stopped stays stopped") {
    world w(abc(), 4);
    const answer stop = ask(w.set.sock, "POST /services/c/stop HTTP/1.1\r\nContent-Length: 0\r\n"
                                        "Connection: close\r\n\r\n");
    INFO(stop.body);
    REQUIRE(stop.status == 200);
    const picture before = w.wait_for([](const picture& p) {
        return p.find("c")->state == ServiceState::stopped && p.find("c")->pid == 0;
    });
    REQUIRE(before.find("c")->state == ServiceState::stopped);
    const std::size_t t0 = w.transition_count();

    std::vector<svc_def> defs = abc();
    defs[2].argv.push_back("changed");
    check_summary(w.reload_by_signal(w.make(defs)), 0, 0, 1, 2);
    std::this_thread::sleep_for(300ms);
    const picture after = w.look();
    CHECK(after.find("c")->state == ServiceState::stopped);
    CHECK(after.find("c")->pid == 0);
    CHECK(after.find("a")->pid == before.find("a")->pid);
    CHECK(after.find("b")->pid == before.find("b")->pid);
    for (const seen_transition& t : w.transitions_since(t0)) {
        INFO(t.name, ": ", state_name(t.from), " -> ", state_name(t.to), " ", reason_id(t.reason));
        CHECK(t.name == "c");
        CHECK(t.to == ServiceState::stopped); // a reload stop of a stopped service, nothing more
    }

    // An operator start gives it the new definition.
    const answer start = ask(w.set.sock, "POST /services/c/start HTTP/1.1\r\nContent-Length: "
                                         "0\r\nConnection: close\r\n\r\n");
    CHECK(start.status == 200);
    const picture started = w.wait_for([](const picture& p) { return p.all_ready(); });
    CHECK(started.all_ready());
}

TEST_CASE("reload: an invalid table is refused with its problems: nothing changes") {
    world w(abc(), 4);
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();

    reload_result r;
    const answer a = w.reload_by_post(
        w.make({sleeper("a"), sleeper("b", {"a", "nosuch"}), sleeper("c"), sleeper("d")}), &r);
    INFO(a.body);
    INFO(show(r));
    CHECK(a.status == 422);
    CHECK(has(a.body, "\"error\":\"ReloadInvalid\""));
    CHECK(has(a.body, "\"problems\":[\""));
    CHECK(has(a.body, "nosuch"));
    CHECK(!r.ok);
    CHECK(r.reason == Reason::reload_invalid);
    CHECK(has(r.subject, "nosuch"));
    REQUIRE(!r.problems.empty());
    CHECK(std::any_of(r.problems.begin(), r.problems.end(), [](const std::string& p) {
        return has(p, "nosuch") && has(p, "DependencyUnknown");
    }));

    // A cycle too, by SIGHUP.
    const reload_result cyc =
        w.reload_by_signal(w.make({sleeper("a", {"c"}), sleeper("b", {"a"}), sleeper("c", {"b"})}));
    INFO(show(cyc));
    CHECK(!cyc.ok);
    CHECK(cyc.reason == Reason::reload_invalid);
    CHECK(std::any_of(cyc.problems.begin(), cyc.problems.end(),
                      [](const std::string& p) { return has(p, "DependencyCycle"); }));

    std::this_thread::sleep_for(200ms);
    check_unchanged(before, w.look());
    CHECK(w.transition_count() == t0);
}

TEST_CASE("reload: what only a restart applies is refused - naming it: nothing changes") {
    world w(abc(), 4);
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();

    // A runtime setting, with a service changed too: nothing of it applies.
    std::vector<svc_def> defs = abc();
    defs[2].argv.push_back("changed");
    const reload_result set =
        w.reload_by_signal(w.make(defs, [](owned_table& o) { o.t.runtime.stop_timeout = 11s; }));
    INFO(show(set));
    CHECK(!set.ok);
    CHECK(set.reason == Reason::reload_unsupported);
    CHECK(has(set.subject, "[custos] settings"));

    // The probe slots.
    reload_result r;
    const answer a =
        w.reload_by_post(w.make(abc(), [](owned_table& o) { o.t.runtime.probe_slots = 5; }), &r);
    INFO(a.body);
    INFO(show(r));
    CHECK(a.status == 422);
    CHECK(has(a.body, "\"error\":\"ReloadUnsupported\""));
    CHECK(has(a.body, "\"problems\":[]"));
    CHECK(!r.ok);
    CHECK(r.reason == Reason::reload_unsupported);
    CHECK(has(r.subject, "[custos] settings"));

    // The [log] section: every field is laid out at init.
    const reload_result lg =
        w.reload_by_signal(w.make(abc(), [](owned_table& o) { o.t.log.output_files = 7; }));
    INFO(show(lg));
    CHECK(!lg.ok);
    CHECK(lg.reason == Reason::reload_unsupported);
    CHECK(has(lg.subject, "[log]"));
    const reload_result lc = w.reload_by_signal(
        w.make(abc(), [](owned_table& o) { o.t.log.clock = ClockTrust::untrusted; }));
    INFO(show(lc));
    CHECK(!lc.ok);
    CHECK(has(lc.subject, "[log]"));
    // A kept service's output mode: its pipes and capture are laid out at
    // init.
    const reload_result out = w.reload_by_signal(
        w.make(abc(), [](owned_table& o) { o.specs[0].output = OutputMode::null; }));
    INFO(show(out));
    CHECK(!out.ok);
    CHECK(out.reason == Reason::reload_unsupported);
    CHECK(has(out.subject, "output"));

    std::this_thread::sleep_for(200ms);
    check_unchanged(before, w.look());
    CHECK(w.transition_count() == t0);
}

// File probes: `dir` passes (the case's directory), a missing path fails.
static ProbeSpec file_probe(const char* name, const std::string& target) {
    ProbeSpec p;
    p.name = name;
    p.kind = ProbeKind::file;
    p.target = target;
    p.interval = 150ms;
    p.startup_initial = 50ms;
    p.startup_max = 50ms;
    return p;
}

TEST_CASE("reload: probes added, removed and changed - a kept one is not touched") {
    world w(abc(), 4);
    // The runtime starts on the one `dir` probe; this table brings two more.
    const std::string missing = w.set.dir + "/missing";
    const Table& t1 = w.make(abc(), [&](owned_table& o) {
        o.probes = {file_probe("keep", w.set.dir), file_probe("gone", w.set.dir),
                    file_probe("swap", w.set.dir)};
        o.t.probes = o.probes;
    });
    check_summary(w.reload_by_signal(t1), 0, 0, 0, 3);
    CHECK(w.probe_event("keep", Reason::reload_added));
    CHECK(w.probe_event("dir", Reason::reload_removed));
    picture p = w.wait_for([](const picture& q) {
        return q.probes.size() == 3 && std::all_of(q.probes.begin(), q.probes.end(), [](auto& x) {
                   return x.state == ProbeState::ready && x.checks >= 2;
               });
    });
    INFO(p.probe_order());
    REQUIRE(p.probe_order() == "keep,gone,swap");
    REQUIRE(p.probe("keep")->state == ProbeState::ready);
    const std::uint64_t keep_checks = p.probe("keep")->checks;

    // gone goes, swap now checks a missing path, new comes, keep stays;
    // the order is the new table's.
    const std::size_t e0 = [&] {
        std::lock_guard<std::mutex> lock(w.mu);
        return w.probe_events.size();
    }();
    const Table& t2 = w.make(abc(), [&](owned_table& o) {
        o.probes = {file_probe("new", w.set.dir), file_probe("swap", missing),
                    file_probe("keep", w.set.dir)};
        o.t.probes = o.probes;
    });
    const reload_result r = w.reload_by_signal(t2);
    INFO(show(r));
    REQUIRE(r.ok);
    CHECK(w.probe_event("gone", Reason::reload_removed));
    CHECK(w.probe_event("swap", Reason::reload_changed));
    CHECK(w.probe_event("new", Reason::reload_added));
    {
        std::lock_guard<std::mutex> lock(w.mu);
        for (std::size_t i = e0; i < w.probe_events.size(); ++i) {
            CHECK(w.probe_events[i].first != "keep"); // untouched: no event
        }
    }
    p = w.wait_for([](const picture& q) {
        const probe_seen* s = q.probe("swap");
        const probe_seen* n = q.probe("new");
        return s != nullptr && s->state == ProbeState::down && n != nullptr &&
               n->state == ProbeState::ready;
    });
    INFO(p.probe_order());
    CHECK(p.probe_order() == "new,swap,keep");
    CHECK(p.probe("gone") == nullptr);
    REQUIRE(p.probe("swap") != nullptr);
    CHECK(p.probe("swap")->state == ProbeState::down);
    CHECK(has(p.probe("swap")->message, "missing"));
    REQUIRE(p.probe("keep") != nullptr);
    CHECK(p.probe("keep")->state == ProbeState::ready);
    CHECK(p.probe("keep")->checks >= keep_checks); // its counters kept
    // The services were not touched by any of it.
    CHECK(p.all_ready());

    // Over the control socket: /probes/NAME follows the new table.
    const answer gone = ask(w.set.sock, "GET /probes/gone HTTP/1.1\r\nHost: x\r\n"
                                        "Connection: close\r\n\r\n");
    CHECK(gone.status == 404);
    const answer fresh = ask(w.set.sock, "GET /probes/new HTTP/1.1\r\nHost: x\r\n"
                                         "Connection: close\r\n\r\n");
    CHECK(fresh.status == 200);
    CHECK(has(fresh.body, "\"name\":\"new\""));
}

TEST_CASE("reload: a service's ready probe moves in the table - still its probe") {
    // b is ready when its probe passes; a reload puts another probe before
    // it (its index changes) and restarts b (changed): b becomes ready
    // again through the same probe, at its new index.
    std::vector<svc_def> defs = abc();
    world w(defs, 4);
    auto with = [&](bool extra, bool change_b) {
        std::vector<svc_def> d = abc();
        if (change_b) {
            d[1].argv.push_back("changed");
        }
        return w.make(d, [&, extra](owned_table& o) {
            if (extra) {
                o.text = w.set.dir + "/missing";
                o.probes = {file_probe("first", o.text), file_probe("gate", w.set.dir)};
            } else {
                o.probes = {file_probe("gate", w.set.dir)};
            }
            o.t.probes = o.probes;
            o.specs[1].ready = ReadyMode::probe;
            o.specs[1].ready_probe = "gate";
        });
    };
    // First with the gate alone (b changed: ready by probe now).
    check_summary(w.reload_by_signal(with(false, false)), 0, 0, 1, 2);
    picture p = w.wait_for([](const picture& q) { return q.all_ready(); });
    REQUIRE(p.all_ready());
    const int b_pid = p.find("b")->pid;
    check_summary(w.reload_by_signal(with(true, true)), 0, 0, 1, 2);
    p = w.wait_for([&](const picture& q) {
        const svc_seen* b = q.find("b");
        return b != nullptr && b->pid != b_pid && b->state == ServiceState::ready;
    });
    INFO(p.probe_order());
    CHECK(p.probe_order() == "first,gate");
    REQUIRE(p.find("b") != nullptr);
    CHECK(p.find("b")->pid != b_pid);
    CHECK(p.find("b")->state == ServiceState::ready);
    CHECK(p.find("b")->reason == Reason::ready_probe);
}

TEST_CASE("reload: while checks the last reload replaced still run, the next is busy") {
    // An exec probe whose check takes ~1.5 s is kept by a first reload (a
    // probe added beside it): its check goes on in the engine replaced, so
    // a second reload is busy until it has ended; then it applies.
    static const std::string_view slow_argv[] = {"/bin/sleep", "1.5"};
    auto with = [&](world& w, int extra) -> const Table& {
        return w.make(abc(), [&w, extra](owned_table& o) {
            ProbeSpec slow;
            slow.name = "slow";
            slow.kind = ProbeKind::exec;
            slow.argv = slow_argv;
            slow.timeout = 10s;
            slow.interval = 60s;
            o.probes = {slow};
            if (extra >= 1) {
                o.probes.push_back(file_probe("one", w.set.dir));
            }
            if (extra >= 2) {
                o.probes.push_back(file_probe("two", w.set.dir));
            }
            o.t.probes = o.probes;
        });
    };
    world w(abc(), 4);
    check_summary(w.reload_by_signal(with(w, 0)), 0, 0, 0, 3);
    // Its first check has started with the reload: wait for it to end and
    // the next (a startup retry or the first poll) to be far away; then
    // run one by hand.
    std::this_thread::sleep_for(2500ms);
    const answer run = ask(w.set.sock, "POST /probes/slow/check HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 0\r\nConnection: close\r\n\r\n");
    REQUIRE(run.status == 200);
    const reload_result first = w.reload_by_signal(with(w, 1));
    INFO(show(first));
    REQUIRE(first.ok);
    CHECK(first.sum.probes_added == 1);
    CHECK(first.sum.probes_unchanged == 1);
    const reload_result busy = w.reload_by_signal(with(w, 2));
    INFO(show(busy));
    CHECK(!busy.ok);
    CHECK(busy.reason == Reason::reload_busy);
    // Once slow's check has ended (in the old engine, reported to slow).
    const std::int64_t until = now_ms() + deadline_ms;
    reload_result again;
    do {
        std::this_thread::sleep_for(200ms);
        again = w.reload_by_signal(with(w, 2));
    } while (!again.ok && again.reason == Reason::reload_busy && now_ms() < until);
    INFO(show(again));
    CHECK(again.ok);
    CHECK(again.sum.probes_added == 1);
    const picture p = w.look();
    REQUIRE(p.probe("slow") != nullptr);
    CHECK(p.probe("slow")->state == ProbeState::ready);
    CHECK(p.probe_order() == "slow,one,two");
}

TEST_CASE("reload: a composite whose member changed is changed too") {
    static const std::string_view members[] = {"m"};
    world w(abc(), 4);
    auto with = [&](bool broken) -> const Table& {
        return w.make(abc(), [&w, broken](owned_table& o) {
            o.text = w.set.dir + (broken ? "/missing" : "");
            ProbeSpec both = file_probe("both", w.set.dir);
            both.kind = ProbeKind::all;
            both.target = {};
            both.members = members;
            o.probes = {file_probe("m", o.text), both, file_probe("other", w.set.dir)};
            o.t.probes = o.probes;
        });
    };
    const reload_result first = w.reload_by_signal(with(false));
    INFO(show(first));
    REQUIRE(first.ok);
    CHECK(first.sum.probes_added == 3);
    picture p = w.wait_for([](const picture& q) {
        const probe_seen* b = q.probe("both");
        return b != nullptr && b->state == ProbeState::ready;
    });
    REQUIRE(p.probe("both") != nullptr);
    REQUIRE(p.probe("both")->state == ProbeState::ready);
    const reload_result second = w.reload_by_signal(with(true));
    INFO(show(second));
    REQUIRE(second.ok);
    CHECK(second.sum.probes_changed == 2); // m, and both through m
    CHECK(second.sum.probes_unchanged == 1);
    CHECK(w.probe_event("both", Reason::reload_changed));
    p = w.wait_for([](const picture& q) {
        const probe_seen* b = q.probe("both");
        return b != nullptr && b->state == ProbeState::down;
    });
    REQUIRE(p.probe("both") != nullptr);
    CHECK(p.probe("both")->state == ProbeState::down);
    CHECK(has(p.probe("both")->message, "missing"));
    CHECK(p.probe("other")->state == ProbeState::ready);
}

TEST_CASE("reload: more probes than probe_slots is refused: nothing changes") {
    world w(abc(), 4);
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();
    reload_result r;
    const answer a = w.reload_by_post(
        w.make(abc(),
               [&](owned_table& o) {
                   o.probes = {file_probe("p1", w.set.dir), file_probe("p2", w.set.dir),
                               file_probe("p3", w.set.dir), file_probe("p4", w.set.dir),
                               file_probe("p5", w.set.dir)};
                   o.t.probes = o.probes;
               }),
        &r);
    INFO(a.body);
    INFO(show(r));
    CHECK(a.status == 422);
    CHECK(r.reason == Reason::reload_capacity);
    CHECK(has(r.subject, "probe_slots"));
    const picture after = w.look();
    check_unchanged(before, after);
    CHECK(after.probe_order() == "dir");
    CHECK(w.transition_count() == t0);
}

TEST_CASE("reload: more added services than free slots is refused: nothing changes") {
    world w(abc(), 4); // one free slot
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();

    reload_result r;
    const answer a = w.reload_by_post(
        w.make({sleeper("a"), sleeper("b", {"a"}), sleeper("c"), sleeper("d"), sleeper("e")}), &r);
    INFO(a.body);
    INFO(show(r));
    CHECK(a.status == 422);
    CHECK(has(a.body, "\"error\":\"ReloadCapacity\""));
    CHECK(!r.ok);
    CHECK(r.reason == Reason::reload_capacity);

    // As many services as slots, but b and c still hold theirs until they
    // have stopped: three to add, one slot free.
    const reload_result free =
        w.reload_by_signal(w.make({sleeper("a"), sleeper("d", {"a"}), sleeper("e"), sleeper("f")}));
    INFO(show(free));
    CHECK(!free.ok);
    CHECK(free.reason == Reason::reload_capacity);
    CHECK(has(free.subject, "free slot"));

    std::this_thread::sleep_for(200ms);
    check_unchanged(before, w.look());
    CHECK(w.transition_count() == t0);
}

TEST_CASE("reload: capacity without service_slots: the table's services are every slot") {
    world w(abc(), 0);
    const picture before = w.look();
    const reload_result r =
        w.reload_by_signal(w.make({sleeper("a"), sleeper("b", {"a"}), sleeper("c"), sleeper("d")}));
    INFO(show(r));
    CHECK(!r.ok);
    CHECK(r.reason == Reason::reload_capacity);
    check_unchanged(before, w.look());
}

TEST_CASE("reload: another reload while a removed service still stops is busy") {
    svc_def stubborn;
    stubborn.name = "stubborn";
    stubborn.argv = {g_helper, "ignore-term", "3"}; // ready once SIGTERM is ignored
    stubborn.ready = ReadyMode::fd;
    stubborn.ready_fd = 3;
    world w({sleeper("a"), stubborn}, 3);
    const std::size_t t0 = w.transition_count();

    const Table& only_a = w.make({sleeper("a")});
    check_summary(w.reload_by_signal(only_a), 0, 1, 0, 1);
    // At once: its stop takes stop_timeout (2 s) and a SIGKILL.
    reload_result r;
    const answer a = w.reload_by_post(only_a, &r);
    INFO(a.body);
    INFO(show(r));
    CHECK(a.status == 409);
    CHECK(has(a.body, "\"error\":\"ReloadBusy\""));
    CHECK(r.reason == Reason::reload_busy);
    CHECK(has(r.subject, "stubborn"));
    const reload_result again = w.reload_by_signal(only_a);
    CHECK(again.reason == Reason::reload_busy);
    const picture stopping = w.look();
    CHECK(stopping.count == 2);
    CHECK(stopping.order() == "a,stubborn");

    const picture gone = w.wait_for([](const picture& p) { return p.count == 1; });
    CHECK(gone.order() == "a");
    const std::vector<seen_transition> ts = w.transitions_since(t0);
    CHECK(find_transition(ts, "stubborn", ServiceState::stopped, Reason::reload_removed) !=
          nullptr);

    // Stopped: a reload works again, and the slot takes a new service.
    check_summary(w.reload_by_signal(only_a), 0, 0, 0, 1);
    check_summary(w.reload_by_signal(w.make({sleeper("a"), sleeper("late", {"a"})})), 1, 0, 0, 1);
    const picture late = w.wait_for([](const picture& p) { return p.count == 2 && p.all_ready(); });
    CHECK(late.order() == "a,late");
    CHECK(late.all_ready());
}

TEST_CASE("reload: a changed dependency takes its dependents through their policy") {
    std::vector<svc_def> defs = {sleeper("a"), sleeper("b", {"a"}), sleeper("c")};
    defs[1].on_down = DependencyDownAction::stop;
    world w(defs, 3);
    const picture before = w.look();
    const std::size_t t0 = w.transition_count();

    defs[0].argv.push_back("changed");
    check_summary(w.reload_by_signal(w.make(defs)), 0, 0, 1, 2);
    const picture after = w.wait_for([&](const picture& p) {
        return p.all_ready() && p.find("a")->pid != before.find("a")->pid &&
               p.find("b")->pid != before.find("b")->pid;
    });
    INFO(after.order());
    CHECK(after.all_ready());
    CHECK(after.find("a")->pid != before.find("a")->pid);
    CHECK(after.find("b")->pid != before.find("b")->pid); // stopped, then started again
    CHECK(after.find("c")->pid == before.find("c")->pid);
    CHECK(after.find("a")->by_operator == before.find("a")->by_operator + 1);

    // b stopped because a went down, and started again only once a was ready.
    const std::vector<seen_transition> ts = w.transitions_since(t0);
    std::size_t b_down = ts.size();
    std::size_t a_ready = ts.size();
    std::size_t b_start = ts.size();
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const seen_transition& t = ts[i];
        MESSAGE(t.name, ": ", state_name(t.from), " -> ", state_name(t.to), " ",
                reason_id(t.reason));
        if (t.name == "b" && t.from == ServiceState::ready && b_down == ts.size()) {
            b_down = i;
        }
        if (t.name == "a" && t.to == ServiceState::ready && a_ready == ts.size()) {
            a_ready = i;
        }
        if (t.name == "b" && t.to == ServiceState::starting && b_start == ts.size()) {
            b_start = i;
        }
    }
    REQUIRE(b_down < ts.size());
    REQUIRE(a_ready < ts.size());
    REQUIRE(b_start < ts.size());
    CHECK(ts[b_down].to == ServiceState::stopping);
    CHECK(ts[b_down].reason == Reason::dependency_down);
    CHECK(b_start > a_ready);
}

TEST_CASE("reload: without a reload hook POST /reload is 501 and SIGHUP is only a signal") {
    world w(abc(), 4, false);
    const picture before = w.look();
    const answer a = ask(w.set.sock, post_reload);
    INFO(a.body);
    CHECK(a.status == 501);
    CHECK(has(a.body, "\"error\":\"ReloadUnsupported\""));

    ::kill(::getpid(), SIGHUP);
    const std::int64_t until = now_ms() + deadline_ms;
    bool hup = false;
    while (!hup && now_ms() < until) {
        {
            std::lock_guard<std::mutex> lock(w.mu);
            hup = std::find(w.signals.begin(), w.signals.end(), SIGHUP) != w.signals.end();
        }
        std::this_thread::sleep_for(5ms);
    }
    CHECK(hup);
    CHECK(w.result_count() == 0);
    check_unchanged(before, w.look());
}

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    g_helper = std::getenv("CUSTOS_SVC_HELPER");
    if (g_helper == nullptr || g_helper[0] == '\0') {
        std::printf("CUSTOS_SVC_HELPER is not set (run through meson test)\n");
        return 1;
    }
    void* shared = ::mmap(nullptr, sizeof(std::atomic<int>) * max_pids, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        std::perror("mmap");
        return 1;
    }
    g_pids = new (shared) std::atomic<int>[max_pids]();
    const pid_t child = ::fork();
    if (child < 0) {
        std::perror("fork");
        return 1;
    }
    if (child > 0) {
        int st = 0;
        while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
        }
        kill_services(); // none, unless a case failed
        if (WIFSIGNALED(st)) {
            std::printf("test_reload: the cases died of signal %d\n", WTERMSIG(st));
            return 1;
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
    }
    // The runtime's signals, blocked before any thread exists: every thread
    // inherits the mask, so SIGTERM, SIGHUP, SIGUSR1 and SIGCHLD reach only
    // its signalfd.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR1, SIGUSR2}) {
        sigaddset(&set, sig);
    }
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    struct sigaction sa {};
    sa.sa_handler = &on_alarm;
    ::sigaction(SIGALRM, &sa, nullptr);
    ::alarm(600);
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
