// custos::Runtime: the supervisor's host on a real kernel.
//
// It owns the reactor, the spawner, the notify socket and, per service, what
// its process needs (argv, envp, credentials: laid out once in an arena at
// init) and what watches it (an exit op and a readiness pipe op).
//
// Exit watching, per process, the best the kernel offers:
//   1. io_uring IORING_OP_WAITID on the pidfd (6.7+): one completion reaps it;
//   2. a poll for the pidfd's POLLIN, then waitid(P_PIDFD) (5.3+; epoll);
//   3. no pidfd (before 5.3): SIGCHLD through a signalfd, then waitid.
// SIGCHLD is watched in every case, because custos is a child subreaper:
// grandchildren a service orphans are re-parented to custos and reaped in
// the SIGCHLD drain. The drain peeks (WNOWAIT) before it reaps, and leaves a
// service's main process to that process's own watcher, so each exit is
// delivered once, by the watcher chosen for it. Signals coalesce (fifty
// exits can raise one SIGCHLD), so the drain loops until nothing is left.
//
// Readiness: ReadyMode::notify through the notify socket (a datagram is
// attributed to the service whose process group sent it: systemd-notify and
// other helpers send from child processes); ReadyMode::fd through a pipe
// whose write end the child gets as fd N, ready on the first newline.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>

#include <custos/runtime.hpp>

#include "core/arena.hpp"
#include "io/reactor.hpp"
#include "probe/check.hpp"
#include "probe/dns.hpp"
#include "probe/machine.hpp"
#include "process/cgroup.hpp"
#include "process/fd_closer.hpp"
#include "process/notify.hpp"
#include "process/pid_record.hpp"
#include "process/procfs.hpp"
#include "process/spawn.hpp"
#include "supervise/supervisor.hpp"
#include "table/plan.hpp"

extern char** environ;

namespace custos {

namespace {

constexpr std::size_t status_text_max = 127;

// What one service's process needs and what watches it.
struct proc {
    char* path = nullptr;
    char** argv = nullptr;
    char** envp = nullptr;
    char* wd_pid_slot = nullptr;
    char* cwd = nullptr;
    int uid = -1;
    int gid = -1;
    process::notify_socket* notify = nullptr; // its own NOTIFY_SOCKET, or none
    int cg_slot = -1;                         // its cgroup, or none (process group only)
    // MAINPID= named this process (in the service): followed when the
    // process custos started exits.
    int main_pid = 0;
    ReadyMode ready_mode = ReadyMode::started;
    int ready_fd = -1;

    int pid = 0;
    int pidfd = -1;
    // The process group SIGKILLed when its leader exited in a stop, until
    // none of it is left (see exited()).
    int remnant_pgid = 0;
    io::op exit_op;
    siginfo_t info{};
    int ready_rd = -1;
    io::op ready_op;
    char ready_buf[64] = {};
    char status_text[status_text_max + 1] = {};
    std::uint8_t status_len = 0;
    int notify_errno = 0;
    // Discarding what an earlier process left queued on the socket.
    bool notify_stale = false;
    // Probes acting on this service (UINT32_MAX: none).
    std::uint32_t ready_probe = UINT32_MAX;
    std::uint32_t liveness = UINT32_MAX;
    mono_time spawned_at{};
    // The liveness probe passed a check that started after the spawn: only
    // then may its going down restart this process.
    bool liveness_armed = false;
    Runtime::impl* rt = nullptr;
    std::uint32_t index = 0;
};

ExitInfo exit_info(const siginfo_t& si) noexcept {
    ExitInfo e;
    e.pid = si.si_pid;
    switch (si.si_code) {
    case CLD_EXITED:
        e.code = si.si_status;
        break;
    case CLD_KILLED:
        e.signal = si.si_status;
        break;
    case CLD_DUMPED:
        e.signal = si.si_status;
        e.core_dumped = true;
        break;
    default:
        e.code = si.si_status;
        break;
    }
    return e;
}

struct signal_watch {
    int fd = -1;
    signalfd_siginfo buf{};
    io::op op;
};

} // namespace

struct Runtime::impl final : sup::host, process::notify_handler, probe::machine_host {
    RuntimeConfig cfg;
    tbl::plan plan; // the table checked and resolved
    io::reactor reactor;
    process::spawner spawner;
    process::notify_dir notify_dir;
    process::notify_buffers* notify_bufs = nullptr; // in the arena, when a service has a socket
    process::notify_socket* notify = nullptr;       // one per service (arena), or none
    process::cgroup_tree cgroups;
    process::pid_record pid_rec;
    bool use_cgroups = false;
    // Deletions in notify_dir (a tmp cleaner): the names are put back.
    io::op notify_watch_op;
    alignas(8) char notify_watch_buf[512] = {};
    sup::supervisor sup{*this};
    probe::machine probes{*this};
    probe::engine checks;
    probe::resolver* dns = nullptr;            // in the arena, when a probe names a host
    probe::resolver_config* dns_cfg = nullptr; // init only
    std::uint32_t probe_count = 0;
    ProbeHook probe_hook = nullptr;
    void* probe_hook_ctx = nullptr;
    std::uint64_t rng = 0x2545f4914f6cdd1dull;
    arena mem;
    proc* procs = nullptr;
    std::uint32_t count = 0;
    signal_watch chld;
    signal_watch term;
    TransitionHook hook = nullptr;
    void* hook_ctx = nullptr;
    SignalHook signal_hook = nullptr;
    void* signal_hook_ctx = nullptr;
    RuntimeStats stats{};
    bool started = false;
    bool done = false;
    char reason[640] = {};
    char leftovers[200] = {};   // what init() found and killed of a previous run
    bool drain_blocked = false; // a service's zombie waits for its own watcher
    // Runtime::stop() runs the stop from here, on the next loop turn.
    io::timer stop_soon{&impl::on_stop_soon, this};

    ~impl() override {
        // procs is null when init() failed before the table was laid out.
        for (std::uint32_t i = 0; procs != nullptr && i < count; ++i) {
            proc& p = procs[i];
            if (p.pidfd >= 0) {
                ::close(p.pidfd);
            }
            if (p.ready_rd >= 0) {
                ::close(p.ready_rd);
            }
            if (p.notify != nullptr) {
                p.notify->~notify_socket(); // made in the arena
            }
        }
        if (chld.fd >= 0) {
            ::close(chld.fd);
        }
        if (term.fd >= 0) {
            ::close(term.fd);
        }
        delete dns_cfg;
        if (dns != nullptr) {
            dns->~resolver();
        }
    }

    Result<void> init(const Table& t, TableProblemSink* problems) noexcept;
    Result<void> layout(std::span<const ServiceSpec> table, std::span<const ProbeSpec> probe_table,
                        std::uint64_t seed) noexcept;
    Result<void> contain(std::span<const ServiceSpec> table, char* what, std::size_t cap) noexcept;
    // SIGKILL to everything left in service `p`'s cgroup (or process group).
    void kill_remnants(proc& p, int leader) noexcept;
    bool in_service(const proc& p, int pid) const noexcept;

    // sup::host and probe::machine_host
    mono_time now() noexcept override { return reactor.now(); }
    void arm(io::timer& t, mono_time deadline) noexcept override { reactor.arm(t, deadline); }
    void cancel(io::timer& t) noexcept override { reactor.cancel(t); }
    bool probe_ready(std::uint32_t p) noexcept override {
        return p < probe_count && probes.at(p).state == ProbeState::ready;
    }

    // probe::machine_host
    void arm(io::timer& t, mono_time deadline, nanos slack) noexcept override {
        reactor.arm(t, deadline, slack);
    }
    void start_check(std::uint32_t p, mono_time deadline) noexcept override {
        ++stats.probe_checks;
        checks.start(checks.root(p), deadline);
    }
    void cancel_check(std::uint32_t p) noexcept override { checks.cancel(checks.root(p)); }
    void checked(std::uint32_t p, bool passed, mono_time started) noexcept override;
    void transition(const ProbeTransition& t) noexcept override;
    std::uint64_t random() noexcept override {
        // xorshift64: jitter needs spread, not secrecy.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    }
    static void on_check_done(probe::check& c) noexcept;
    // Service `i` lost its process: its probes' checks in flight are about
    // a process that is gone.
    void forget_probes(proc& p) noexcept;
    Result<int> spawn(std::uint32_t i) noexcept override;
    void kill(std::uint32_t i, int sig) noexcept override {
        proc& p = procs[i];
        if (p.pid <= 0) {
            return;
        }
        // A stopped (T-state) process would sit on its stop signal until
        // the SIGKILL: wake it, as s6, runit and systemd do.
        const bool cont = sig != SIGKILL && sig != SIGCONT;
        if (p.cg_slot >= 0) {
            // Everything the service started, setsid() children included.
            const auto slot = static_cast<std::uint32_t>(p.cg_slot);
            (void)cgroups.kill(slot, sig);
            if (cont) {
                (void)cgroups.kill(slot, SIGCONT);
            }
            return;
        }
        process::signal_group(p.pidfd, p.pid, sig);
        if (cont) {
            process::signal_group(p.pidfd, p.pid, SIGCONT);
        }
    }
    void transition(const Transition& t) noexcept override {
        if (hook != nullptr) {
            hook(t, hook_ctx);
        }
    }
    bool owns_probe_child(int pid, bool* watched) const noexcept {
        return probe_count != 0 && checks.owns_child(pid, watched);
    }
    void all_stopped() noexcept override {
        done = true;
        reactor.stop();
    }

    // process::notify_handler
    bool on_notify(std::uint32_t i, const ucred& cred,
                   const process::notify_message& m) noexcept override;
    bool may_speak_for(const proc& p, const ucred& cred) const noexcept;
    void flush_notify(std::uint32_t i) noexcept override {
        if (procs[i].notify != nullptr) {
            procs[i].notify->drain();
        }
    }
    bool wants_notify(const ServiceSpec& s) const noexcept {
        return s.ready == ReadyMode::notify || s.watchdog.count() > 0;
    }

    void watch_exit(proc& p) noexcept;
    void exited(proc& p, const siginfo_t& si) noexcept;
    void drain_children() noexcept;
    bool remnants_left() noexcept;
    void reap_remnants() noexcept;
    void close_ready_pipe(proc& p) noexcept;
    std::uint32_t find_by_pid(int pid) const noexcept {
        for (std::uint32_t i = 0; i < count; ++i) {
            if (procs[i].pid == pid) {
                return i;
            }
        }
        return UINT32_MAX;
    }

    static void on_notify_watch(io::op& o, std::int32_t result) noexcept;
    static void on_exit_op(io::op& o, std::int32_t result) noexcept;
    static void on_ready_read(io::op& o, std::int32_t result) noexcept;
    static void on_sigchld(io::op& o, std::int32_t result) noexcept;
    static void on_term(io::op& o, std::int32_t result) noexcept;
    static void on_stop_soon(io::timer& t) noexcept;
};

// Lays out the supervisor and every service's exec data in `mem`. Run twice:
// to measure (no block), then for real.
Result<void> Runtime::impl::layout(std::span<const ServiceSpec> table,
                                   std::span<const ProbeSpec> probe_table,
                                   std::uint64_t seed) noexcept {
    bool ok = true;
    auto s = sup.init(plan, mem, seed);
    ok = ok && s.has_value();
    auto pm = probes.init(probe_table, mem);
    ok = ok && pm.has_value();
    if (dns_cfg != nullptr) {
        void* where = mem.take(sizeof(probe::resolver), alignof(probe::resolver));
        if (where != nullptr) {
            dns = new (where) probe::resolver;
            if (auto r = dns->init(reactor, *dns_cfg); !r) {
                return fail(r.error());
            }
        }
        ok = ok && where != nullptr;
    }
    auto ck = checks.init(reactor, plan, mem, &spawner, dns);
    if (!ck && ck.error().reason() != Reason::out_of_memory) {
        return fail(ck.error());
    }
    ok = ok && ck.has_value();
    for (std::uint32_t i = 0; ok && i < probe_table.size(); ++i) {
        probe::check& c = checks.root(i);
        c.done = &impl::on_check_done;
        c.user = this;
    }
    procs = mem.make_array<proc>(count);
    ok = ok && procs != nullptr;
    std::uint32_t sockets = 0;
    for (const ServiceSpec& spec : table) {
        sockets += wants_notify(spec) ? 1 : 0;
    }
    if (sockets != 0) {
        notify_bufs = static_cast<process::notify_buffers*>(
            mem.take(sizeof(process::notify_buffers), alignof(process::notify_buffers)));
        notify = mem.make_array<process::notify_socket>(sockets);
        ok = ok && notify_bufs != nullptr && notify != nullptr;
    }
    std::uint32_t next_socket = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
        const ServiceSpec& spec = table[i];
        char* path = mem.copy(plan.services()[i].path);
        auto argv = process::build_argv(mem, spec.argv);
        // custos's own entries for this service.
        char wd_usec[48] = {};
        char notify_env[sizeof(sockaddr_un::sun_path) + 16] = {};
        std::string_view ours[2];
        std::size_t nours = 0;
        if (wants_notify(spec)) {
            std::memcpy(notify_env, "NOTIFY_SOCKET=", 14);
            if (!notify_dir.address(spec.name, notify_env + 14, sizeof notify_env - 14)) {
                Error e(Reason::notify_socket_unavailable, ENAMETOOLONG, spec.name);
                e.with_resolution("Use a shorter notify_dir or service name: DIR/NAME must fit "
                                  "a socket address (107 bytes)");
                return fail(e);
            }
            ours[nours++] = notify_env;
        }
        if (spec.watchdog.count() > 0) {
            long long usec = static_cast<long long>(spec.watchdog.count()) * 1000;
            int n = std::snprintf(wd_usec, sizeof wd_usec, "WATCHDOG_USEC=%lld", usec);
            ours[nours++] = std::string_view(wd_usec, static_cast<std::size_t>(n));
        }
        process::env_spec es;
        es.inherited = environ;
        es.service = spec.env;
        es.custos = std::span<const std::string_view>(ours, nours);
        es.watchdog_pid = spec.watchdog.count() > 0;
        auto env = process::build_env(mem, es);
        char* cwd = spec.cwd.empty() ? nullptr : mem.copy(spec.cwd);
        if (!argv && argv.error().reason() != Reason::capacity_exceeded) {
            return fail(argv.error());
        }
        if (!env && env.error().reason() != Reason::capacity_exceeded) {
            return fail(env.error());
        }
        ok = ok && path != nullptr && argv.has_value() && env.has_value() &&
             (spec.cwd.empty() || cwd != nullptr);
        if (!ok) {
            continue;
        }
        proc& p = procs[i];
        p.path = path;
        p.argv = *argv;
        p.envp = env->envp;
        p.wd_pid_slot = env->watchdog_pid_slot;
        p.cwd = cwd;
        p.ready_mode = spec.ready;
        p.ready_fd = spec.ready_fd;
        if (wants_notify(spec) && notify != nullptr) {
            p.notify = &notify[next_socket++];
        }
        p.rt = this;
        p.index = i;
        p.exit_op.done = &impl::on_exit_op;
        p.exit_op.user = &p;
        p.ready_op.done = &impl::on_ready_read;
        p.ready_op.user = &p;
        p.ready_probe = plan.services()[i].ready_probe;
        p.liveness = plan.services()[i].liveness;
        p.uid = plan.services()[i].uid;
        p.gid = plan.services()[i].gid;
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime arena");
    }
    return {};
}

Result<void> Runtime::impl::init(const Table& t, TableProblemSink* problems) noexcept {
    if (auto r = plan.build(t, tbl::options{}, problems); !r) {
        return r;
    }
    cfg = t.runtime;
    const std::span<const ServiceSpec> table = t.services;
    const std::span<const ProbeSpec> probe_table = t.probes;
    count = static_cast<std::uint32_t>(table.size());
    probe_count = static_cast<std::uint32_t>(probe_table.size());
    const std::uint32_t check_count = plan.check_count();
    std::uint32_t sockets = 0;
    for (const ServiceSpec& s : table) {
        sockets += wants_notify(s) ? 1 : 0;
    }
    if (sockets != 0 && cfg.notify_dir.empty()) {
        Error e(Reason::notify_socket_unavailable, EINVAL, "notify_dir");
        e.with_resolution("Set notify_dir: a service uses ready = notify or a watchdog");
        return fail(e);
    }
    if (!cfg.notify_dir.empty()) {
        // Before anything else is created: a second instance stops here
        // (also when no service uses notify: the directory is the
        // instance's, and custosd keeps its pid record there).
        if (auto r = notify_dir.open(cfg.notify_dir); !r) {
            return fail(r.error());
        }
    }

    // Reactor: every service can have an exit op and a readiness read in
    // flight, and its notify socket a poll and a close; every check
    // instance an op and a name lookup's; plus the signal watches.
    io::reactor_config rc;
    rc.max_ops = 4 * count + 2 * check_count + 16;
    rc.max_fds = 3 * count + 2 * check_count + 16;
    if (auto r = reactor.init(rc); !r) {
        return fail(r.error());
    }
    if (auto r = spawner.init(); !r) {
        return fail(r.error());
    }

    std::uint64_t seed = cfg.seed != 0 ? cfg.seed : static_cast<std::uint64_t>(to_ns(now()));
    rng = seed | 1;
    if (probe::engine::needs_resolver(probe_table)) {
        // Read once, here: /etc/resolv.conf and /etc/hosts.
        dns_cfg = new (std::nothrow) probe::resolver_config;
        if (dns_cfg == nullptr) {
            return fail(Reason::out_of_memory, ENOMEM, "resolver");
        }
        probe::load_system_resolver_config(*dns_cfg);
    }
    // Two passes over the same layout: measure, then take the block once.
    if (auto r = layout(table, probe_table, seed);
        !r && r.error().reason() != Reason::out_of_memory) {
        return fail(r.error());
    }
    if (!mem.reserve(mem.needed())) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime arena");
    }
    dns = nullptr;
    if (auto r = layout(table, probe_table, seed); !r) {
        return fail(r.error());
    }
    delete dns_cfg;
    dns_cfg = nullptr;

    // SIGCHLD: must not be ignored (the kernel would reap for us and
    // waitid would find nothing), and is taken through a signalfd.
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGCHLD, &sa, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    // With handle_signals, TERM and INT stop; the others would kill the
    // process by default and leave its services unsupervised: they are
    // read, counted and reported instead (runtime.hpp, "Signals").
    static constexpr int watched[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
    if (cfg.handle_signals) {
        for (int sig : watched) {
            sigaddset(&set, sig);
        }
    }
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    if (cfg.handle_signals) {
        // Not ignored either (now that they are blocked, the default action
        // cannot strike): an ignored signal is discarded and never reaches
        // the signalfd, and shells start background jobs with SIGINT ignored.
        for (int sig : watched) {
            ::sigaction(sig, &sa, nullptr);
        }
        // EPIPE instead: a log reader that went away is no reason to die.
        // Children get SIG_DFL back from the spawner.
        struct sigaction ign {};
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        ::sigaction(SIGPIPE, &ign, nullptr);
    }
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGCHLD);
    chld.fd = ::signalfd(-1, &only, SFD_NONBLOCK | SFD_CLOEXEC);
    if (chld.fd < 0) {
        return fail(Reason::signalfd_unavailable, errno, "SIGCHLD");
    }
    if (cfg.handle_signals) {
        sigemptyset(&only);
        for (int sig : watched) {
            sigaddset(&only, sig);
        }
        term.fd = ::signalfd(-1, &only, SFD_NONBLOCK | SFD_CLOEXEC);
        if (term.fd < 0) {
            return fail(Reason::signalfd_unavailable, errno, "SIGTERM/SIGINT");
        }
    }
    // Orphaned grandchildren come to us, not to init: reaped, never zombies.
    // Refused by qemu-user (EINVAL): not fatal, but said in backend_reason().
    const int subreaper_errno = ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno;

    for (std::uint32_t i = 0; i < count; ++i) {
        if (procs[i].notify == nullptr) {
            continue;
        }
        char where[sizeof(sockaddr_un::sun_path)];
        (void)notify_dir.address(table[i].name, where, sizeof where); // checked in layout()
        if (auto r = procs[i].notify->open(where); !r) {
            return fail(r.error());
        }
    }
    if (sockets != 0) {
        if (auto r = process::fd_closer::process().start(); !r) {
            return fail(r.error());
        }
    }
    char containment[200] = {};
    if (auto r = contain(table, containment, sizeof containment); !r) {
        return fail(r.error());
    }
    // The spawn method and exit watch are not part of this: the spawner may
    // still step down at its first spawn; spawn_method_name() and
    // exit_watch_name() say what is in use when asked.
    int n = std::snprintf(reason, sizeof reason, "%.260s%s%s; %s%s%s", reactor.backend_reason(),
                          subreaper_errno != 0 ? "; not a subreaper (orphans go to init): " : "",
                          subreaper_errno != 0 ? std::strerror(subreaper_errno) : "", containment,
                          leftovers[0] != '\0' ? "; " : "", leftovers);
    (void)n;
    return {};
}

// Sets up where services' processes are contained (cgroups, else process
// groups and the pid record), then kills what a previous custos left in
// them. Describes the choice in `what`.
Result<void> Runtime::impl::contain(std::span<const ServiceSpec> table, char* what,
                                    std::size_t cap) noexcept {
    const bool off = cfg.cgroup == "off";
    const bool explicit_root = !off && !cfg.cgroup.empty();
    Error why;
    if (!off) {
        const std::uint32_t units = count + checks.exec_instances();
        auto r =
            cgroups.open(explicit_root ? cfg.cgroup : std::string_view(), units != 0 ? units : 1);
        bool ok = r.has_value();
        for (std::uint32_t i = 0; ok && i < count; ++i) {
            auto slot = cgroups.add(table[i].name);
            if (!slot) {
                r = fail(slot.error());
                ok = false;
                break;
            }
            procs[i].cg_slot = static_cast<int>(*slot);
        }
        if (ok && probe_count != 0) {
            r = checks.attach_cgroups(cgroups);
            ok = r.has_value();
        }
        if (!ok) {
            if (explicit_root) {
                return fail(r.error());
            }
            why = r.error(); // auto: fall back to process groups, and say why
            cgroups.close();
            for (std::uint32_t i = 0; i < count; ++i) {
                procs[i].cg_slot = -1;
            }
        }
        use_cgroups = ok;
    }
    std::uint64_t killed = 0;
    std::size_t used = 0;
    auto note = [&](std::string_view name, int n) {
        if (n <= 0 || used + 1 >= sizeof leftovers) {
            return;
        }
        int w = std::snprintf(leftovers + used, sizeof leftovers - used, "%s%.*s: %d",
                              used == 0 ? "killed what a previous run left: " : ", ",
                              static_cast<int>(name.size()), name.data(), n);
        used += w > 0 ? static_cast<std::size_t>(w) : 0;
        used = used < sizeof leftovers ? used : sizeof leftovers - 1;
    };
    if (use_cgroups) {
        auto report = [&](const process::cgroup_tree::leftover& l) {
            killed += static_cast<std::uint64_t>(l.killed > 0 ? l.killed : 0);
            note(l.name, l.killed);
        };
        (void)cgroups.reap_leftovers(report, std::chrono::milliseconds(2000));
        std::snprintf(what, cap, "each service in its own cgroup under %.150s",
                      cgroups.root_path().data());
    } else {
        if (!cfg.pid_record.empty()) {
            char path[256];
            std::snprintf(path, sizeof path, "%.*s", static_cast<int>(cfg.pid_record.size()),
                          cfg.pid_record.data());
            if (auto r = pid_rec.open(path, count != 0 ? count : 1); !r) {
                return fail(r.error());
            }
            auto report = [&](const process::pid_record::leftover& l) {
                killed += static_cast<std::uint64_t>(l.killed > 0 ? l.killed : 0);
                note(l.name, l.killed);
            };
            (void)pid_rec.reap_leftovers(report);
        }
        char err[96] = {};
        if (!off) {
            why.format(err, sizeof err);
        }
        std::snprintf(what, cap, "process groups only (%.96s)%s", off ? "cgroup = off" : err,
                      pid_rec.is_open() ? ", pids recorded" : "");
    }
    stats.leftovers_killed = killed;
    return {};
}

Result<int> Runtime::impl::spawn(std::uint32_t i) noexcept {
    proc& p = procs[i];
    if (p.notify != nullptr) {
        // What the previous process (or its helpers) left queued must not
        // speak for the new one: a stale READY=1 would make it ready early.
        p.notify_stale = true;
        p.notify->drain();
        p.notify_stale = false;
    }
    process::spawn_request rq;
    rq.path = p.path;
    rq.argv = p.argv;
    rq.envp = p.envp;
    rq.cwd = p.cwd;
    rq.uid = p.uid;
    rq.gid = p.gid;
    rq.watchdog_pid_slot = p.wd_pid_slot;
    if (p.cg_slot >= 0) {
        const auto slot = static_cast<std::uint32_t>(p.cg_slot);
        // A restart first ends what the previous process left behind.
        if (cgroups.populated(slot)) {
            int n = cgroups.kill(slot, SIGKILL);
            stats.remnants_killed += n > 0 ? static_cast<std::uint64_t>(n) : 0;
        }
        rq.cgroup_procs_fd = cgroups.procs_fd(slot);
    }
    int wr = -1;
    if (p.ready_mode == ReadyMode::fd) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
            ++stats.spawn_failures;
            return fail(Reason::spawn_failed, errno, "readiness pipe");
        }
        p.ready_rd = fds[0];
        wr = fds[1];
        rq.ready_fd_target = p.ready_fd;
        rq.ready_fd_source = wr;
    }
    auto r = spawner.spawn(rq);
    if (wr >= 0) {
        ::close(wr); // the child has its copy (or never will)
    }
    if (!r) {
        ++stats.spawn_failures;
        if (p.ready_rd >= 0) {
            ::close(p.ready_rd);
            p.ready_rd = -1;
        }
        return fail(r.error());
    }
    ++stats.spawns;
    p.pid = r->pid;
    p.pidfd = r->pidfd;
    p.main_pid = 0;
    if (pid_rec.is_open()) {
        (void)pid_rec.record(i, p.pid, sup.at(i).name); // best effort: a full disk loses it
    }
    p.spawned_at = reactor.now();
    p.liveness_armed = false;
    watch_exit(p);
    // Check the new process soon, not at the probe's next poll.
    if (p.ready_probe != UINT32_MAX) {
        probes.restart_startup(p.ready_probe);
    }
    if (p.liveness != UINT32_MAX && p.liveness != p.ready_probe) {
        probes.restart_startup(p.liveness);
    }
    if (p.ready_rd >= 0) {
        reactor.read(p.ready_op, p.ready_rd, p.ready_buf, sizeof p.ready_buf);
    }
    return p.pid;
}

void Runtime::impl::watch_exit(proc& p) noexcept {
    if (p.pidfd >= 0) {
        reactor.waitid(p.exit_op, p.pidfd, &p.info);
    }
    // Without a pidfd the SIGCHLD drain is the watcher. A child that exited
    // before this point has already raised SIGCHLD: nothing is missed.
}

void Runtime::impl::close_ready_pipe(proc& p) noexcept {
    if (p.ready_op.busy()) {
        reactor.cancel(p.ready_op); // its callback closes the pipe
        return;
    }
    if (p.ready_rd >= 0) {
        ::close(p.ready_rd);
        p.ready_rd = -1;
    }
}

namespace {

// The parent pid of `pid` (0 when unknown).
int parent_of(int pid) noexcept {
    process::procfs::stat_fields f;
    return process::procfs::read_stat(pid, f) ? f.ppid : 0;
}

} // namespace

// Whether `pid` belongs to service `p`: in its cgroup, else in its process
// group or session (what MAINPID= may name).
bool Runtime::impl::in_service(const proc& p, int pid) const noexcept {
    if (pid <= 1 || p.pid <= 0) {
        return false;
    }
    if (p.cg_slot >= 0) {
        return cgroups.contains(static_cast<std::uint32_t>(p.cg_slot), pid);
    }
    return ::getpgid(pid) == p.pid || ::getsid(pid) == p.pid;
}

void Runtime::impl::kill_remnants(proc& p, int leader) noexcept {
    if (p.cg_slot >= 0) {
        int n = cgroups.kill(static_cast<std::uint32_t>(p.cg_slot), SIGKILL);
        stats.remnants_killed += n > 0 ? static_cast<std::uint64_t>(n) : 0;
        return;
    }
    // The process group, right after the leader's exit, while its pgid
    // cannot have been reused (spawn.hpp, signal_group).
    if (process::signal_group(-1, leader, SIGKILL) == 0) {
        p.remnant_pgid = leader;
        ++stats.remnants_killed; // at least one; the group's size is unknown
    }
}

void Runtime::impl::exited(proc& p, const siginfo_t& si) noexcept {
    ++stats.exits;
    if (p.pidfd >= 0) {
        ::close(p.pidfd);
        p.pidfd = -1;
    }
    // MAINPID= moved the service to another of its processes (a daemon
    // that forks): follow it, as systemd does, if it is still alive, still
    // the service's, and ours to wait for (re-parented to us: we are a
    // subreaper). Its exit then ends the service.
    const int main = p.main_pid;
    p.main_pid = 0;
    if (main > 0 && main != si.si_pid && in_service(p, main) && parent_of(main) == ::getpid()) {
        p.pid = main;
        p.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, main, 0));
        if (p.pidfd >= 0) {
            ::fcntl(p.pidfd, F_SETFD, FD_CLOEXEC);
        }
        ++stats.main_pid_followed;
        watch_exit(p); // without a pidfd, the SIGCHLD drain finds it by pid
        return;
    }
    // The service has ended: nothing it started may outlive it (as systemd's
    // KillMode=control-group). Children that ignore the stop signal, or
    // daemons it forked without saying MAINPID=, get SIGKILL now.
    kill_remnants(p, p.pid);
    if (pid_rec.is_open()) {
        (void)pid_rec.clear(p.index);
    }
    p.pid = 0;
    close_ready_pipe(p);
    forget_probes(p);
    sup.on_exit(p.index, exit_info(si));
}

void Runtime::impl::forget_probes(proc& p) noexcept {
    p.liveness_armed = false;
    if (p.ready_probe != UINT32_MAX) {
        probes.abandon_check(p.ready_probe);
    }
    if (p.liveness != UINT32_MAX) {
        probes.abandon_check(p.liveness);
    }
}

void Runtime::impl::on_check_done(probe::check& c) noexcept {
    impl& rt = *static_cast<impl*>(c.user);
    auto p = static_cast<std::uint32_t>(&c - &rt.checks.root(0));
    if (!c.result.passed() && !c.cancelled) {
        ++rt.stats.probe_failures;
    }
    rt.probes.on_result(p, c.result);
    if (rt.drain_blocked) {
        rt.drain_children(); // orphans queued behind an exec check's zombie
    }
}

void Runtime::impl::checked(std::uint32_t p, bool passed, mono_time check_start) noexcept {
    if (!passed) {
        return;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        proc& sp = procs[i];
        if (sp.pid == 0 || check_start < sp.spawned_at) {
            continue; // a check of an earlier process
        }
        if (sp.liveness == p) {
            sp.liveness_armed = true;
        }
        if (sp.ready_probe == p && sup.at(i).state == ServiceState::running) {
            sup.on_ready(i, Reason::ready_probe);
        }
    }
}

void Runtime::impl::transition(const ProbeTransition& t) noexcept {
    if (probe_hook != nullptr) {
        probe_hook(t, probe_hook_ctx);
    }
    const bool ready = t.to == ProbeState::ready;
    if (t.from == ProbeState::ready && !ready) {
        for (std::uint32_t i = 0; i < count; ++i) {
            proc& sp = procs[i];
            // Only about the process the probe last passed for: never a
            // stale pid, never a process still starting up.
            if (sp.liveness == t.probe && sp.liveness_armed && sp.pid != 0 &&
                probes.at(t.probe).check_started >= sp.spawned_at) {
                sp.liveness_armed = false;
                if (sup.on_liveness_down(i)) {
                    ++stats.liveness_restarts;
                }
            }
        }
    }
    sup.on_probe_change(t.probe, ready, t.name);
}

// Whether a group SIGKILLed in exited() still has members we are to reap
// (children of ours: alive, or zombies); forgets the groups that have none.
// Members that are not our children (not re-parented yet, or to init where
// we are no subreaper) are not waited for: we could not reap them anyway.
bool Runtime::impl::remnants_left() noexcept {
    bool left = false;
    for (std::uint32_t i = 0; i < count; ++i) {
        proc& p = procs[i];
        if (p.remnant_pgid > 0) {
            siginfo_t si{};
            if (::waitid(P_PGID, static_cast<id_t>(p.remnant_pgid), &si,
                         WEXITED | WNOHANG | WNOWAIT) == 0) {
                left = true;
            } else {
                p.remnant_pgid = 0;
            }
        }
    }
    return left;
}

// After the loop: the remnants SIGKILLed in exited() die within moments,
// re-parented to us; reap them so that no zombie outlives run(). Bounded: a
// process stuck in the kernel (D state) is left behind, as the supervisor
// abandons one.
void Runtime::impl::reap_remnants() noexcept {
    constexpr int step_ms = 2;
    constexpr int limit_ms = 1000;
    // Every cgroup emptied (setsid() children of services and of exec
    // probes included), each bounded: a process stuck in D state is left.
    for (std::uint32_t k = 0; use_cgroups && k < cgroups.size(); ++k) {
        if (cgroups.populated(k)) {
            int n = cgroups.kill_until_empty(k, std::chrono::milliseconds(limit_ms));
            stats.remnants_killed += n > 0 ? static_cast<std::uint64_t>(n) : 0;
        }
    }
    for (int waited = 0;; waited += step_ms) {
        drain_children();
        if (!remnants_left() || waited >= limit_ms) {
            return;
        }
        timespec ts{0, step_ms * 1'000'000L};
        ::nanosleep(&ts, nullptr);
    }
}

void Runtime::impl::on_notify_watch(io::op& o, std::int32_t result) noexcept {
    impl& rt = *static_cast<impl*>(o.user);
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        return; // inotify failed: deletions go unnoticed, as without inotify
    }
    // Whatever the events say, check every name: cheap, and a burst of
    // events (rm -rf) needs one pass.
    std::uint64_t n = rt.notify_dir.restore();
    for (std::uint32_t i = 0; i < rt.count; ++i) {
        if (rt.procs[i].notify != nullptr && rt.procs[i].notify->restore()) {
            ++n;
        }
    }
    rt.stats.notify_restored += n;
    rt.reactor.read(o, rt.notify_dir.watch_fd(), rt.notify_watch_buf, sizeof rt.notify_watch_buf);
}

void Runtime::impl::on_exit_op(io::op& o, std::int32_t result) noexcept {
    auto& p = *static_cast<proc*>(o.user);
    impl& rt = *p.rt;
    if (result == 0) {
        rt.exited(p, p.info);
        if (rt.drain_blocked) {
            rt.drain_children(); // orphans queued behind this zombie
        }
        return;
    }
    if (result == -ECANCELED || p.pid == 0) {
        return;
    }
    // The watch failed (ENOBUFS: the reactor was full; a poll error): the
    // SIGCHLD drain reaps it instead, at the latest at the next SIGCHLD.
    if (p.pidfd >= 0) {
        ::close(p.pidfd);
        p.pidfd = -1;
    }
    rt.drain_children();
}

void Runtime::impl::on_ready_read(io::op& o, std::int32_t result) noexcept {
    auto& p = *static_cast<proc*>(o.user);
    impl& rt = *p.rt;
    if (result > 0) {
        if (std::memchr(p.ready_buf, '\n', static_cast<std::size_t>(result)) != nullptr) {
            ::close(p.ready_rd);
            p.ready_rd = -1;
            rt.sup.on_ready(p.index, Reason::ready_fd);
            return;
        }
        rt.reactor.read(o, p.ready_rd, p.ready_buf, sizeof p.ready_buf);
        return;
    }
    // EOF (the service closed it without a newline), cancelled, or failed:
    // no readiness from here; ready_timeout decides.
    if (p.ready_rd >= 0) {
        ::close(p.ready_rd);
        p.ready_rd = -1;
    }
}

// Reaps every child that has exited and is not a service's main process
// watched by its own op. Peek first (WNOWAIT): if the first zombie is such a
// process, stop here; its watcher reaps it and calls this again.
void Runtime::impl::drain_children() noexcept {
    drain_blocked = false;
    for (;;) {
        siginfo_t si{};
        if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
            return;
        }
        std::uint32_t i = find_by_pid(si.si_pid);
        if (i != UINT32_MAX && procs[i].exit_op.busy()) {
            drain_blocked = true;
            return;
        }
        bool probe_watched = false;
        const bool probe_child = owns_probe_child(si.si_pid, &probe_watched);
        if (probe_child && probe_watched) {
            drain_blocked = true; // an exec check's own waitid reaps it
            return;
        }
        siginfo_t reaped{};
        if (::waitid(P_PID, static_cast<id_t>(si.si_pid), &reaped, WEXITED | WNOHANG) != 0) {
            return;
        }
        if (i != UINT32_MAX) {
            exited(procs[i], reaped);
        } else if (probe_child) {
            checks.on_child_exit(si.si_pid, reaped);
        } else {
            ++stats.orphans_reaped;
        }
    }
}

void Runtime::impl::on_sigchld(io::op& o, std::int32_t result) noexcept {
    impl& rt = *static_cast<impl*>(o.user);
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        return; // the signalfd failed: exits still arrive through pidfds
    }
    rt.drain_children();
    rt.remnants_left(); // forget the groups that are gone
    rt.reactor.read(o, rt.chld.fd, &rt.chld.buf, sizeof rt.chld.buf);
}

void Runtime::impl::on_term(io::op& o, std::int32_t result) noexcept {
    impl& rt = *static_cast<impl*>(o.user);
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        return;
    }
    const auto sig = static_cast<int>(rt.term.buf.ssi_signo);
    if (result == static_cast<std::int32_t>(sizeof rt.term.buf) && sig != SIGTERM &&
        sig != SIGINT) {
        ++rt.stats.signals_ignored;
        if (rt.signal_hook != nullptr) {
            rt.signal_hook(sig, rt.signal_hook_ctx);
        }
    } else if (result >= 0) {
        rt.probes.stop_all();
        rt.sup.stop_all(std::chrono::duration_cast<nanos>(rt.cfg.stop_timeout));
    }
    rt.reactor.read(o, rt.term.fd, &rt.term.buf, sizeof rt.term.buf);
}

// Who may speak for service `p` on its socket: root; the service's own
// user (custos's, when it sets none); or any process in the service's
// process group or session (a daemon that dropped privileges after its
// start). A sender that has exited is judged by its uid alone, which is what
// the kernel stamped on the datagram. Everyone else is refused and counted:
// the socket file is writable by all, since services change users.
bool Runtime::impl::may_speak_for(const proc& p, const ucred& cred) const noexcept {
    const uid_t own = p.uid >= 0 ? static_cast<uid_t>(p.uid) : ::geteuid();
    if (cred.uid == 0 || cred.uid == own) {
        return true;
    }
    if (p.pid <= 0) {
        return false;
    }
    const pid_t pgid = ::getpgid(static_cast<pid_t>(cred.pid));
    const pid_t sid = ::getsid(static_cast<pid_t>(cred.pid));
    return pgid == p.pid || sid == p.pid;
}

bool Runtime::impl::on_notify(std::uint32_t i, const ucred& cred,
                              const process::notify_message& m) noexcept {
    if (i >= count || !may_speak_for(procs[i], cred)) {
        ++stats.notify_foreign;
        return false;
    }
    if (procs[i].notify_stale) {
        return true; // read and discarded: see spawn()
    }
    proc& p = procs[i];
    if (m.has_status) {
        std::size_t n = m.status.size() < status_text_max ? m.status.size() : status_text_max;
        std::memcpy(p.status_text, m.status.data(), n);
        p.status_text[n] = '\0';
        p.status_len = static_cast<std::uint8_t>(n);
    }
    if (m.has_errno) {
        p.notify_errno = m.errno_value;
    }
    if (m.has_mainpid && m.mainpid != p.pid) {
        // Only a process of this service: never a stranger to be followed
        // (and later signalled).
        if (in_service(p, m.mainpid)) {
            p.main_pid = m.mainpid;
        } else {
            ++stats.main_pid_refused;
        }
    }
    // Received numbers are clamped before any unit conversion: 2^63 us in
    // ns would overflow (undefined behaviour, a deadline centuries away).
    constexpr std::uint64_t max_usec = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(sup::supervisor::max_notify_timeout)
            .count());
    if (m.has_extend) {
        const std::uint64_t us = m.extend_usec < max_usec ? m.extend_usec : max_usec;
        sup.on_extend_timeout(i, std::chrono::microseconds(static_cast<std::int64_t>(us)));
    }
    if (m.has_watchdog_usec) {
        const std::uint64_t us = m.watchdog_usec < max_usec ? m.watchdog_usec : max_usec;
        sup.on_watchdog_usec(i, std::chrono::microseconds(static_cast<std::int64_t>(us)));
    }
    if (m.watchdog_ping) {
        sup.on_watchdog_ping(i);
    }
    if (m.ready && p.ready_mode == ReadyMode::notify) {
        sup.on_ready(i, Reason::ready_notified);
    }
    if (m.watchdog_trigger) {
        sup.on_watchdog_trigger(i);
    }
    return true;
}

Runtime::Runtime() noexcept = default;

Runtime::~Runtime() {
    delete impl_;
}

Result<void> Runtime::init(const Table& table, TableProblemSink* problems) noexcept {
    if (impl_ != nullptr) {
        return fail(Reason::invalid_argument, EBUSY, "Runtime::init called twice");
    }
    impl_ = new (std::nothrow) impl;
    if (impl_ == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime");
    }
    auto r = impl_->init(table, problems);
    if (!r) {
        delete impl_;
        impl_ = nullptr;
    }
    return r;
}

void Runtime::set_transition_hook(TransitionHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->hook = hook;
        impl_->hook_ctx = ctx;
    }
}

void Runtime::set_probe_hook(ProbeHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->probe_hook = hook;
        impl_->probe_hook_ctx = ctx;
    }
}

void Runtime::set_signal_hook(SignalHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->signal_hook = hook;
        impl_->signal_hook_ctx = ctx;
    }
}

Result<void> Runtime::start() noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "Runtime::start before init");
    }
    impl& rt = *impl_;
    if (rt.started) {
        return {};
    }
    rt.started = true;
    rt.chld.op.done = &impl::on_sigchld;
    rt.chld.op.user = &rt;
    io::reactor::make_internal(rt.chld.op);
    rt.reactor.read(rt.chld.op, rt.chld.fd, &rt.chld.buf, sizeof rt.chld.buf);
    if (rt.term.fd >= 0) {
        rt.term.op.done = &impl::on_term;
        rt.term.op.user = &rt;
        io::reactor::make_internal(rt.term.op);
        rt.reactor.read(rt.term.op, rt.term.fd, &rt.term.buf, sizeof rt.term.buf);
    }
    for (std::uint32_t i = 0; i < rt.count; ++i) {
        if (rt.procs[i].notify != nullptr && rt.procs[i].notify->is_open()) {
            rt.procs[i].notify->start(rt.reactor, &rt, *rt.notify_bufs, i,
                                      &process::fd_closer::process());
        }
    }
    if (rt.notify_dir.watch_fd() >= 0) {
        rt.notify_watch_op.done = &impl::on_notify_watch;
        rt.notify_watch_op.user = &rt;
        io::reactor::make_internal(rt.notify_watch_op);
        rt.reactor.read(rt.notify_watch_op, rt.notify_dir.watch_fd(), rt.notify_watch_buf,
                        sizeof rt.notify_watch_buf);
    }
    // Probes first: their first checks are in flight (never done inside
    // this call), so services that depend on them wait.
    rt.probes.start_all();
    rt.sup.start_all();
    if (rt.count == 0 && rt.probe_count == 0 && rt.term.fd < 0) {
        rt.done = true;
    }
    return {};
}

void Runtime::run() noexcept {
    if (impl_ == nullptr || !impl_->started) {
        return;
    }
    impl& rt = *impl_;
    while (!rt.done) {
        rt.reactor.run();
    }
    rt.reap_remnants();
    if (rt.notify_watch_op.busy()) {
        rt.reactor.cancel(rt.notify_watch_op);
    }
    auto busy = [&rt] {
        if (rt.notify_watch_op.busy()) {
            return true;
        }
        for (std::uint32_t i = 0; i < rt.count; ++i) {
            if (rt.procs[i].notify != nullptr && rt.procs[i].notify->busy()) {
                return true;
            }
        }
        return false;
    };
    for (std::uint32_t i = 0; i < rt.count; ++i) {
        if (rt.procs[i].notify != nullptr) {
            rt.procs[i].notify->close();
        }
    }
    // Let the notify sockets' closes complete while the reactor still runs.
    for (int k = 0; k < 100 && busy(); ++k) {
        rt.reactor.run_once(false);
    }
}

void Runtime::impl::on_stop_soon(io::timer& t) noexcept {
    impl& rt = *static_cast<impl*>(t.user);
    rt.probes.stop_all();
    rt.sup.stop_all(std::chrono::duration_cast<nanos>(rt.cfg.stop_timeout));
}

void Runtime::stop() noexcept {
    if (impl_ != nullptr && impl_->started) {
        // From the loop, not from here: stop() is typically called from the
        // transition hook, i.e. in the middle of the supervisor's work on a
        // transition, which would go on after stop_all() as if nothing had
        // happened (entering `starting` is followed by the spawn: a process
        // would be started after everything was declared stopped).
        impl_->reactor.arm(impl_->stop_soon, impl_->reactor.now());
    }
}

bool Runtime::stopped() const noexcept {
    return impl_ == nullptr || impl_->done;
}

namespace {
template <class F>
Result<void> with_service(Runtime::impl* rt, std::string_view name, F f) noexcept {
    if (rt == nullptr) {
        return fail(Reason::invalid_argument, 0, "runtime not initialised");
    }
    std::uint32_t i = rt->sup.find(name);
    if (i == UINT32_MAX) {
        return fail(Reason::service_unknown, 0, name);
    }
    f(i);
    return {};
}
} // namespace

Result<void> Runtime::start_service(std::string_view name) noexcept {
    return with_service(impl_, name, [this](std::uint32_t i) { impl_->sup.start(i); });
}

Result<void> Runtime::stop_service(std::string_view name) noexcept {
    return with_service(impl_, name, [this](std::uint32_t i) { impl_->sup.stop(i); });
}

Result<void> Runtime::restart_service(std::string_view name) noexcept {
    return with_service(impl_, name, [this](std::uint32_t i) { impl_->sup.restart(i); });
}

std::uint32_t Runtime::service_count() const noexcept {
    return impl_ != nullptr ? impl_->count : 0;
}

ServiceStatus Runtime::status(std::uint32_t index) const noexcept {
    ServiceStatus s;
    if (impl_ == nullptr || index >= impl_->count) {
        return s;
    }
    const sup::unit& u = impl_->sup.at(index);
    const proc& p = impl_->procs[index];
    s.name = u.name;
    s.state = u.state;
    s.reason = u.reason;
    s.since_ns = to_ns(u.since);
    s.pid = p.pid;
    s.restarts = u.restarts;
    s.total_restarts = u.total_restarts;
    s.last_exit = u.last_exit;
    s.status_text = std::string_view(p.status_text, p.status_len);
    s.notify_errno = p.notify_errno;
    return s;
}

std::uint32_t Runtime::probe_count() const noexcept {
    return impl_ != nullptr ? impl_->probe_count : 0;
}

ProbeStatus Runtime::probe_status(std::uint32_t index) const noexcept {
    if (impl_ == nullptr || index >= impl_->probe_count) {
        return {};
    }
    return impl_->probes.status(index);
}

Result<void> Runtime::check_probe(std::string_view name) noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::invalid_argument, 0, "runtime not initialised");
    }
    std::uint32_t p = impl_->probes.find(name);
    if (p == UINT32_MAX) {
        return fail(Reason::probe_unknown, 0, name);
    }
    impl_->probes.check_now(p);
    return {};
}

RuntimeStats Runtime::stats() const noexcept {
    if (impl_ == nullptr) {
        return {};
    }
    RuntimeStats s = impl_->stats;
    for (std::uint32_t i = 0; i < impl_->count; ++i) {
        if (impl_->procs[i].notify == nullptr) {
            continue;
        }
        const process::notify_stats& n = impl_->procs[i].notify->stats();
        s.notify_received += n.received;
        s.notify_dropped += n.dropped_malformed + n.dropped_unattributed;
        s.fds_closed += n.fds_closed;
        s.fds_closed_inline += n.fds_closed_inline;
    }
    return s;
}

const char* Runtime::backend_reason() const noexcept {
    return impl_ != nullptr ? impl_->reason : "not initialised";
}

const char* Runtime::exit_watch_name() const noexcept {
    if (impl_ == nullptr) {
        return "none";
    }
    if (impl_->spawner.method() == process::spawn_method::vfork) {
        return "SIGCHLD signalfd + waitid";
    }
    return impl_->reactor.native_waitid() ? "io_uring waitid" : "pidfd poll + waitid";
}

const char* Runtime::spawn_method_name() const noexcept {
    return impl_ != nullptr ? process::spawn_method_name(impl_->spawner.method()) : "none";
}

} // namespace custos
