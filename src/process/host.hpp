// process::host: the services' processes on a real kernel.
//
// It owns, per service slot, what its process needs (argv, envp,
// credentials: laid out in the slot's room in the arena at init, rewritten
// in place by a reload's redefine()) and what watches it (an exit op and a
// readiness pipe op); the spawner; the SIGCHLD watch and its drain; the
// remnants a service leaves at its exit; containment (cgroups, else process
// groups and the pid record); the notify sockets, their directory and the
// attribution of what arrives on them, MAINPID= following included.
//
// Exit watching, per process, the best the kernel offers:
//   1. io_uring IORING_OP_WAITID on the pidfd (6.7+): one completion reaps it;
//   2. a poll for the pidfd's POLLIN, then waitid(P_PIDFD) (5.3+; epoll);
//   3. no pidfd (before 5.3): SIGCHLD through a signalfd, then waitid.
// SIGCHLD is watched in every case. With reap_orphans, custos is a child
// subreaper: grandchildren a service orphans are re-parented to custos and
// reaped in the SIGCHLD drain, which then waits for any child (P_ALL). It
// peeks (WNOWAIT) before it reaps, and leaves a process watched by its own
// op to that watcher, so each exit is delivered once, by the watcher chosen
// for it. Without reap_orphans the drain waits only for the pids it started
// (services' processes, followed MAINPIDs, exec-probe children), one by one
// (P_PID): the embedding program's own children stay its own to wait for.
// Signals coalesce (fifty exits can raise one SIGCHLD), so the drain loops
// until nothing is left.
//
// Channels: a service with a channel_fd gets a new AF_UNIX stream socket
// pair at each spawn; the child's end goes to it at that number, the host
// keeps the other (non-blocking, close-on-exec) for the layer above until
// the process has exited and events::exited() has returned, then closes
// it. So one descriptor per running service at most, none leaked.
//
// Runtime directories (runtime_dir.hpp): ROOT/NAME is laid out at init,
// emptied of what a previous run left in contain(), made (0700, the
// service's owner) before each spawn and kept across its restarts, and
// removed by remove_runtime_dir() (the runtime calls it when the service
// stops or fails) and by remove_runtime_dirs() at the end.
//
// Output (launch::output): inherit leaves the child custos's stdout and
// stderr; null gives it /dev/null for both (opened once, in open());
// automatic, file and ring capture: the slot gets two pipes (stdout,
// stderr) at its first spawn that captures, kept for the slot's life,
// across restarts, so a restart loses nothing and a grandchild still
// holding a write end is harmless. The host keeps its own write ends open
// too: the read never sees EOF while the slot lives, and no spawn races a
// pipe closing. Each read end has a read always in flight into a fixed
// buffer of output_buffer bytes (laid out at init for every slot, reload's
// vacant ones included; untouched pages stay out of the resident set);
// each completion goes to events::output(), then the read is submitted
// again at once, whatever the listener did: the pipes are always drained,
// so a service never blocks on them for long. A read the reactor refuses
// (-ENOBUFS: full) is retried on a timer (output_retry). vacate() and
// close_output() close the pipes (a read in flight is cancelled first);
// close_output(), at the end, delivers what they still hold before.
// Bytes are counted per slot and in total (host_stats::output_bytes).
//
// Readiness: ReadyMode::notify through the notify socket (a datagram is
// attributed to the service whose process group sent it: systemd-notify and
// other helpers send from child processes); ReadyMode::fd through a pipe
// whose write end the child gets as fd N, ready on the first newline.
//
// What happens to a process is reported upward through `events`: the host
// knows nothing of restart policies or probes (the runtime forwards to the
// supervisor and the probe engine). Reactor thread only.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/service.hpp>

#include "core/arena.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"
#include "process/cgroup.hpp"
#include "process/notify.hpp"
#include "process/pid_record.hpp"
#include "process/spawn.hpp"

namespace custos::process {

// What one service's process is started with, resolved before the host sees
// it (executable found, users and groups as ids): the validated table's plan
// supplies exactly these values. The views need only last through layout():
// what the host keeps is copied into the arena.
struct launch {
    std::string_view name;                  // the service: socket, cgroup, pid record
    std::string_view path;                  // resolved executable
    std::span<const std::string_view> argv; // argv[0] included
    std::span<const std::string_view> env;  // the service's own KEY=value entries
    std::string_view cwd;                   // "": inherited
    int uid = -1;                           // -1: unchanged
    int gid = -1;                           // -1: unchanged (else the user's primary group)
    ReadyMode ready = ReadyMode::started;
    int ready_fd = -1; // ReadyMode::fd: the descriptor number the child writes to
    // The child's end of a new socket pair per process, at this number (-1:
    // none; never ready_fd).
    int channel_fd = -1;
    nanos watchdog{0}; // exported as WATCHDOG_USEC (0: none)
    // Its own NOTIFY_SOCKET (ready = notify, or a watchdog).
    bool notify = false;
    // A runtime directory, host_config::runtime_dir_root/NAME.
    bool runtime_dir = false;
    // Where stdout and stderr go: automatic, file and ring are captured
    // (events::output); the host does not tell them apart.
    OutputMode output = OutputMode::automatic;
};

// Whether `m` is captured through the slot's pipes.
constexpr bool captures(OutputMode m) noexcept {
    return m == OutputMode::automatic || m == OutputMode::file || m == OutputMode::ring;
}

// What the host tells the layer above. Reactor thread, from inside the
// host's callbacks.
class events {
public:
    // Service `i`'s process (the last one it followed) has ended and been
    // reaped; its remnants are killed, its readiness pipe closed.
    virtual void exited(std::uint32_t i, const ExitInfo& e) noexcept = 0;
    // Service `i` said it is ready (Reason::ready_notified, ready_fd).
    virtual void ready(std::uint32_t i, Reason why) noexcept = 0;
    // sd_notify EXTEND_TIMEOUT_USEC= and WATCHDOG_USEC=, already clamped to
    // host::max_notify_timeout; WATCHDOG=1 and WATCHDOG=trigger.
    virtual void extend_timeout(std::uint32_t i, nanos by) noexcept = 0;
    virtual void watchdog_usec(std::uint32_t i, nanos interval) noexcept = 0;
    virtual void watchdog_ping(std::uint32_t i) noexcept = 0;
    virtual void watchdog_trigger(std::uint32_t i) noexcept = 0;
    // Service slot `i` wrote `len` (> 0) bytes to its stdout (stream 1) or
    // stderr (2), captured: in the order written per stream, nothing lost
    // across its restarts. `data` is the host's buffer, valid only during
    // the call (copy what is kept). The bytes are consumed whatever this
    // does: the host reads on at once.
    virtual void output(std::uint32_t i, int stream, const char* data, std::size_t len) noexcept {
        (void)i;
        (void)stream;
        (void)data;
        (void)len;
    }

    // Children the host did not start for a service (exec-probe runs)
    // whose exits the SIGCHLD drain reports. claims_child: whether `pid`
    // is one, and whether an op of its own watches its exit (then the drain
    // leaves it). child_at: the pid of such child slot `k` (< child_slots()),
    // 0 when none runs there, for a drain that may only wait for pids it
    // knows. child_exited: `pid` was reaped with `si`.
    virtual bool claims_child(int, bool*) noexcept { return false; }
    virtual std::uint32_t child_slots() noexcept { return 0; }
    virtual int child_at(std::uint32_t, bool*) noexcept { return 0; }
    virtual void child_exited(int, const siginfo_t&) noexcept {}
    // Containment in cgroups was chosen: give those children cgroups in
    // `tree` too. An error makes containment fall back to process groups.
    virtual Result<void> attach_cgroups(cgroup_tree&) noexcept { return {}; }

protected:
    ~events() = default;
};

struct host_config {
    // See RuntimeConfig: notify_dir, cgroup, pid_record, reap_orphans,
    // runtime_dir_root.
    std::string_view notify_dir;
    std::string_view runtime_dir_root;
    std::string_view cgroup;
    std::string_view pid_record;
    bool reap_orphans = false;
};

struct host_stats {
    std::uint64_t spawns = 0;
    std::uint64_t spawn_failures = 0;
    std::uint64_t exits = 0;
    std::uint64_t orphans_reaped = 0;
    std::uint64_t notify_received = 0;
    std::uint64_t notify_dropped = 0;
    std::uint64_t notify_foreign = 0;
    std::uint64_t fds_closed = 0;
    std::uint64_t fds_closed_inline = 0;
    std::uint64_t notify_restored = 0;
    std::uint64_t leftovers_killed = 0;
    std::uint64_t remnants_killed = 0;
    // Names a runtime directory's removal left behind (limits, permissions).
    std::uint64_t runtime_dir_leftovers = 0;
    std::uint64_t main_pid_followed = 0;
    std::uint64_t main_pid_refused = 0;
    // Captured bytes read from the services' stdout and stderr, all slots
    // (vacated ones included: the count never goes back).
    std::uint64_t output_bytes = 0;
    // Output reads the reactor refused (-ENOBUFS), retried on a timer.
    std::uint64_t output_read_retries = 0;
};

struct proc;
struct out_stream;
struct exec_data;

// How exits are watched for processes started with method `m`, on a reactor
// that does (or not) have io_uring's waitid: "io_uring waitid", "pidfd poll
// + waitid" or "SIGCHLD signalfd + waitid".
const char* exit_watch_name(spawn_method m, bool native_waitid) noexcept;

class host final : notify_handler {
public:
    // Notify timeouts and intervals received are clamped to this before any
    // unit conversion (2^63 us in ns would overflow).
    static constexpr nanos max_notify_timeout = std::chrono::hours(24);
    // Per captured stream: the read buffer, one page of a pipe's buffer:
    // a service writing flat out is drained a page per completion.
    static constexpr std::uint32_t output_buffer = 4096;
    // A refused output read is tried again after this.
    static constexpr nanos output_retry = std::chrono::milliseconds(50);

    explicit host(io::reactor& r, events& ev) noexcept : reactor_(r), ev_(ev) {}
    ~host() override;
    host(const host&) = delete;
    host& operator=(const host&) = delete;

    // Init, in this order. open(): takes the configuration and opens and
    // locks notify_dir when set, before anything else is created (a second
    // instance stops here), then opens /dev/null (output = null). Errors:
    // those of notify_dir::open; SpawnFailed (subject "/dev/null", with
    // errno) when /dev/null cannot be opened.
    Result<void> open(const host_config& cfg) noexcept;
    // The spawner (after the reactor's init). Errors: spawner::init's.
    Result<void> init_spawner() noexcept;
    // Lays out every service's exec data and record in `mem`: run twice, to
    // measure (no block: OutOfMemory) and for real. Errors: OutOfMemory;
    // NotifySocketUnavailable (DIR/NAME too long); build_argv's
    // InvalidArgument.
    // `slots` (0: services.size(); never fewer) slots are laid out: slot
    // i < services.size() is services[i], the rest vacant, for reload.
    // Every slot gets its two output buffers (2 * output_buffer, unzeroed).
    // Room for exec data: a table's service has its first definition's
    // size plus slot_bytes / 4 (for a changed definition to grow into); a
    // vacant slot `slot_bytes` + the inherited environment's size: each
    // slot copies custos's environment (measured here, once), so
    // slot_bytes is what a definition may take beyond it (argv, env, path,
    // cwd, name, NOTIFY_SOCKET/WATCHDOG_*/RUNTIME_DIRECTORY entries and
    // the pointer arrays). Fixed per slot beside the room: one proc record
    // (~900 B on x86-64), a cgroup unit in the cgroup tree (~80 B) or a
    // pid record slot (64 B of file). Notify sockets (~740 B each): one per
    // service with notify; with slots != 0 also one per vacant slot and two
    // spares and the shared receive buffers (~5 KiB) whatever the table
    // holds; contain() starts the fd closer thread only when a service of
    // the table has a socket (else a socket a reload adds closes received
    // descriptors on the loop, counted fds_closed_inline). A redefine that finds no
    // free socket is ReloadCapacity (NotifySocketUnavailable with EBUSY
    // while one is still closing).
    Result<void> layout(std::span<const launch> services, arena& mem, std::uint32_t slots = 0,
                        std::size_t slot_bytes = 0) noexcept;
    // SIGCHLD to its default action, blocked and read through a signalfd;
    // with reap_orphans, a child subreaper (refused by qemu-user: not fatal,
    // said in describe()). Errors: SignalfdUnavailable.
    Result<void> watch_children() noexcept;
    // Opens the notify sockets and sets up containment (cgroups for the
    // services and, through events::attach_cgroups, for `extra_units` more;
    // else process groups and the pid record), then kills what a previous
    // run left in them. Errors: the sockets' open, the fd closer's start,
    // CgroupUnavailable (an explicit root), the pid record's open.
    Result<void> contain(std::uint32_t extra_units) noexcept;
    // Subreaper, containment and leftovers, for backend_reason().
    void describe(char* out, std::size_t cap) const noexcept;

    // Run time. start(): begins reading SIGCHLD, the notify sockets and the
    // notify directory's deletions.
    void start() noexcept;
    // Starts service `i`'s process and watches its exit and readiness.
    // Returns the pid. Errors: InvalidArgument (a vacant slot), SpawnFailed (subject "channel
    // socket pair" when socketpair() failed, "output pipe" when a captured slot's pipe2()
    // failed, e.g. EMFILE), RuntimeDirUnavailable (its runtime directory could not be made),
    // ExecFailed (with errno).
    Result<int> spawn(std::uint32_t i) noexcept;
    // `sig` to service `i`'s cgroup, else its process group (with SIGCONT
    // after it unless it is SIGKILL or SIGCONT).
    void kill(std::uint32_t i, int sig) noexcept;
    // Delivers what service `i`'s socket holds now.
    void flush_notify(std::uint32_t i) noexcept;
    // The SIGCHLD drain stopped at a zombie another watcher was to reap:
    // run it again (after an exec check ended).
    void drain_if_blocked() noexcept;
    // After the loop: kills and reaps what services left (bounded), then
    // closes the notify sockets. busy(): their closes are still in flight.
    void reap_remnants() noexcept;
    // Removes service `i`'s runtime directory (if it has one) with what is
    // in it, bounded (runtime_dir.hpp). Call when no process of it runs.
    void remove_runtime_dir(std::uint32_t i) noexcept;
    // The same for every service.
    void remove_runtime_dirs() noexcept;
    void close_notify() noexcept;
    // After the loop: every slot's output pipes closed (reads in flight
    // cancelled first; busy() until their callbacks have run). What a
    // pipe still holds (a stopping service's last words) is read without
    // waiting and delivered first, at most 256 KiB a stream.
    void close_output() noexcept;
    bool busy() const noexcept;

    // Reload. redefine(): slot `i`, vacant or holding the same service (the
    // same name), takes `l` for its next spawn. A process that runs or
    // stops is not touched: its pid, exit watch, readiness pipe, notify
    // socket, channel and cgroup stay until it has exited. A vacant slot
    // gets here what contain() gives a service at init: its notify socket
    // (when l.notify; bound and read from now on), its cgroup (created, and
    // what a previous run left in it SIGKILLed: leftovers_killed), its
    // place in the pid record (the slot's index), its runtime directory
    // root (what a previous run left at ROOT/NAME removed). A service that
    // now wants a notify socket and had none gets one.
    // What takes effect when: everything of `l` at the next spawn(), except
    // that the running process keeps being judged by its own definition:
    // who may speak for it (its uid) and whether READY=1 makes it ready
    // (its ready mode) are copied at each spawn. A definition that drops
    // notify keeps the socket (its file stays; the next process is not
    // given NOTIFY_SOCKET) until vacate(). One that drops runtime_dir
    // keeps the path, so remove_runtime_dir() still removes the directory
    // the running process used; the next spawn does not make it.
    // Does not allocate. Errors (the slot unchanged): InvalidArgument (no
    // such slot, another service's slot, build_argv's/build_env's);
    // ReloadCapacity (the exec data does not fit the slot's room, subject
    // "NAME: exec data of N bytes, room for M"; or slots == 0 at layout and
    // `l` gains notify); NotifySocketUnavailable (DIR/NAME too long, no
    // notify_dir, the socket's open; EBUSY: every spare socket is still
    // closing, reload again a moment later); RuntimeDirUnavailable;
    // CgroupUnavailable and cgroup_tree::assign's others.
    Result<void> redefine(std::uint32_t i, const launch& l) noexcept;
    // Slot `i`, whose process has exited (none runs), becomes vacant: its
    // notify socket is closed and its file removed, its cgroup (a cgroup
    // still populated by remnants dying from their SIGKILL is removed by a
    // later SIGCHLD, see cgroup_tree::release) and runtime directory
    // removed, its pid record slot cleared, its status text and errno
    // forgotten, its output pipes closed (what they still hold is lost)
    // and its byte count reset. Its room is kept for the next redefine().
    // A no-op on a vacant slot, and on a slot whose process still runs
    // (pid() > 0: vacate it once it has exited).
    void vacate(std::uint32_t i) noexcept;
    // True for a slot without a definition (and for i >= size()).
    bool vacant(std::uint32_t i) const noexcept;

    // Slots (occupied and vacant).
    std::uint32_t size() const noexcept { return count_; }
    int pid(std::uint32_t i) const noexcept;
    // Custos's end of service `i`'s channel to its running process, -1
    // when it has none (no channel_fd, or no process).
    int channel_fd(std::uint32_t i) const noexcept;
    std::string_view status_text(std::uint32_t i) const noexcept;
    int notify_errno(std::uint32_t i) const noexcept;
    // Captured bytes read from slot `i` (both streams) since it was last
    // vacated (0 for i >= size()).
    std::uint64_t output_bytes(std::uint32_t i) const noexcept;
    host_stats stats() const noexcept;
    process::spawner& spawner() noexcept { return spawner_; }
    const char* exit_watch_name() const noexcept;
    const char* spawn_method_name() const noexcept;

private:
    friend struct proc;

    bool on_notify(std::uint32_t i, const ucred& cred, const notify_message& m) noexcept override;
    bool may_speak_for(const proc& p, const ucred& cred) const noexcept;
    bool in_service(const proc& p, int pid) const noexcept;
    void kill_remnants(proc& p, int leader) noexcept;
    void watch_exit(proc& p) noexcept;
    void exited(proc& p, const siginfo_t& si) noexcept;
    void drain_children() noexcept;
    void drain_all() noexcept;
    void drain_started() noexcept;
    bool remnants_left() noexcept;
    void close_ready_pipe(proc& p) noexcept;
    Result<void> open_output(proc& p) noexcept;
    void read_output(out_stream& s) noexcept;
    void deliver(proc& p, out_stream& s, std::size_t n) noexcept;
    void drain_now(proc& p, out_stream& s) noexcept;
    void close_output(proc& p, bool flush) noexcept;
    std::uint32_t find_by_pid(int pid) const noexcept;
    Result<void> lay_exec(const launch& l, arena& s, bool keep_rundir,
                          exec_data& out) const noexcept;
    void define(proc& p, const launch& l, const exec_data& x) noexcept;
    notify_socket* free_socket() noexcept;

    static void on_exit_op(io::op& o, std::int32_t result) noexcept;
    static void on_ready_read(io::op& o, std::int32_t result) noexcept;
    static void on_sigchld(io::op& o, std::int32_t result) noexcept;
    static void on_notify_watch(io::op& o, std::int32_t result) noexcept;
    static void on_output_read(io::op& o, std::int32_t result) noexcept;
    static void on_output_retry(io::timer& t) noexcept;

    io::reactor& reactor_;
    events& ev_;
    host_config cfg_;
    process::spawner spawner_;
    notify_dir notify_dir_;
    notify_buffers* notify_bufs_ = nullptr; // in the arena, when a service has a socket
    notify_socket* notify_ = nullptr;       // one per such service (arena), or none
    std::uint32_t sockets_ = 0; // in notify_: per notify service, or per slot + 1 (slots)
    bool reloadable_ = false;   // layout() was given slots
    bool started_ = false;      // start() has run: new sockets start at once
    cgroup_tree cgroups_;
    pid_record pid_rec_;
    bool use_cgroups_ = false;
    int subreaper_errno_ = 0;
    // Deletions in notify_dir (a tmp cleaner): the names are put back.
    io::op notify_watch_op_;
    alignas(8) char notify_watch_buf_[512] = {};
    int chld_fd_ = -1;
    signalfd_siginfo chld_buf_{};
    io::op chld_op_;
    proc* procs_ = nullptr;
    std::uint32_t count_ = 0;
    host_stats stats_{};
    char containment_[200] = {};
    char leftovers_[200] = {};   // what contain() found and killed of a previous run
    bool drain_blocked_ = false; // a zombie waits for its own watcher
    int devnull_ = -1;           // /dev/null, O_WRONLY: output = null
    io::timer output_retry_{&host::on_output_retry, this};
};

} // namespace custos::process
