// The check engine: runs probe checks over the reactor.
//
// Each probe has a tree of check instances laid out at init: one for the
// probe, plus, for a composite (`all`), one per member, recursively. A
// member reached through a composite has its own instance, so a composite's
// run never disturbs the member probe's own schedule. Every instance owns
// the ops and buffers its kind needs (from the arena), so starting a check
// allocates nothing.
//
// Per kind, each step one reactor op (io_uring: SOCKET, CONNECT with a linked
// timeout, SEND/RECV with linked timeouts, CLOSE, STATX, OPENAT, WRITE,
// UNLINKAT, WAITID; epoll: the same through non-blocking calls), all bounded
// by the check's absolute deadline:
//   tcp   [resolve] socket connect close
//   http  [resolve] socket connect send recv... close: the status line and
//         headers only, into a fixed 1 KiB buffer; the body is never read
//   unix  socket connect close
//   exec  spawn (the process layer) waitid; at the deadline SIGKILL to its
//         process group, then reap. Without a pidfd the runtime's SIGCHLD
//         drain reports the exit (owns_child / on_child_exit). Its stdout
//         and stderr go into one pipe per run with a read always in flight
//         (a second op), so the child never blocks on it; only the last
//         line is kept (exec_tail). At the exit that read is cancelled and
//         what the pipe still holds is read without waiting (a grandchild
//         holding the pipe is never waited for); a failure's message ends
//         with that line, a pass drops it.
//   file  statx [openat write close unlinkat]
//   all   start every member; the first failure cancels the rest; the
//         composite ends when every member has ended
// Whatever happens, a check ends with its descriptors closed and its child
// reaped, and its `done` runs exactly once from the reactor loop, never
// inside start() or cancel().
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstdint>
#include <span>

#include <custos/probe.hpp>

#include "core/arena.hpp"
#include "io/reactor.hpp"
#include "probe/dns.hpp"
#include "probe/machine.hpp"
#include "probe/target.hpp"
#include "process/cgroup.hpp"
#include "process/spawn.hpp"
#include "table/plan.hpp"

namespace custos::probe {

class engine;
struct check_def;
// The step a running check is at, one enum per kind (check_def.hpp).
enum class net_stage : std::uint8_t;
enum class exec_stage : std::uint8_t;
enum class file_stage : std::uint8_t;
struct exec_tail;

struct check {
    // Root instances: called when the check has ended (result in `result`).
    void (*done)(check& c) = nullptr;
    void* user = nullptr;
    check_result result;
    bool cancelled = false; // cancel() was called during this run

    check() noexcept = default;
    check(const check&) = delete;
    check& operator=(const check&) = delete;

    bool running() const noexcept { return running_; }

private:
    friend class engine;

    const check_def* def_ = nullptr;
    engine* owner_ = nullptr;
    check* parent_ = nullptr;
    check* children_ = nullptr; // def_->member_count of them
    std::uint32_t pending_ = 0; // members still running
    bool running_ = false;
    bool failed_member_ = false;
    bool timed_out_ = false; // exec: killed at the deadline
    net_stage net_step_{};   // tcp, http, unix
    exec_stage exec_step_{}; // exec
    file_stage file_step_{}; // file
    mono_time deadline_{};
    int fd_ = -1;
    int pid_ = 0;
    int pidfd_ = -1;
    int out_rd_ = -1;      // exec: the read end of the run's output pipe
    int cg_slot_ = -1;     // exec: this instance's cgroup (attach_cgroups), or none
    bool created_ = false; // file: the temporary file exists
    std::uint32_t len_ = 0;
    io::op op_;
    io::timer timer_; // deferred end; exec without a pidfd: the kill deadline
    sockaddr_storage addr_{};
    socklen_t addr_len_ = 0;
    // Per kind, from the arena.
    dns_lookup* dns_ = nullptr;
    char* buf_ = nullptr; // http: the response head
    struct statx* stx_ = nullptr;
    const char* tmp_inside_ = nullptr; // file, writable: the temporary file in
    const char* tmp_beside_ = nullptr; // the directory, or beside the file
    siginfo_t* info_ = nullptr;
    exec_tail* tail_ = nullptr; // exec: the last line, and out_op_'s buffer
    io::op out_op_;             // exec: the read on the output pipe
};

struct engine_stats {
    std::uint64_t started = 0;
    std::uint64_t failed = 0;
    std::uint64_t cancelled = 0;
    std::uint64_t children_killed = 0; // exec checks killed at their deadline
};

class engine {
public:
    engine() noexcept = default;
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    // Lays out every probe's check tree from the plan (members by index,
    // owners as ids, exec programs as paths) and parses its target. Call
    // with an arena without a block to measure (OutOfMemory, and
    // mem.needed() says how much), then with one reserved that big.
    // `spawner` serves exec checks and `dns` host names (either may be null
    // when no probe needs it). Errors: OutOfMemory; InvalidArgument for a
    // target that does not parse; the errors of build_argv/build_env.
    // Instance numbers (in writable file checks' temporary files and exec
    // checks' cgroup names) start at `first_instance`: a reload's engine
    // runs beside the one before it until that one's checks have ended, so
    // the two must not share a name. Stats are kept across init() calls.
    Result<void> init(io::reactor& r, const tbl::plan& plan, arena& mem, process::spawner* spawner,
                      resolver* dns, std::uint32_t first_instance = 0) noexcept;

    // Whether any probe needs the resolver (a host name, not a literal).
    static bool needs_resolver(std::span<const ProbeSpec> probes) noexcept;
    static bool needs_spawner(std::span<const ProbeSpec> probes) noexcept;

    // Gives every exec instance a cgroup of its own in `tree`, named
    // "probe:NAME.K": a run's whole tree (setsid() children included) is
    // killed when it ends or times out, and what a previous run left is
    // killed before the next. At init, after init(). Errors: add()'s
    // (CgroupUnavailable, CapacityExceeded). Instances left without one
    // keep the process-group kill.
    Result<void> attach_cgroups(process::cgroup_tree& tree) noexcept;
    // A reload's engine: exec instance k gets unit units[k] (vacant units
    // of `tree`), as long as there are units; the rest keep the
    // process-group kill. Returns how many units it took (units[0, n)).
    std::uint32_t assign_cgroups(process::cgroup_tree& tree,
                                 std::span<const std::uint32_t> units) noexcept;
    // Every exec instance's unit released (vacant again), its number
    // written to `freed` (room for exec_instances()); returns how many.
    // Only when no check runs.
    std::uint32_t release_cgroups(std::uint32_t* freed) noexcept;
    // SIGKILL to an exec run: its cgroup, if any, and its process group.
    void kill_run(check& c, int pidfd) noexcept;
    std::uint32_t exec_instances() const noexcept { return exec_count_; }

    check& root(std::uint32_t probe) noexcept { return roots_[probe]; }
    std::uint32_t size() const noexcept { return count_; }
    // Whether a check of any probe is running.
    bool running() const noexcept;
    // Instances of the probes whose checks are running (a composite's with
    // its members'): the most ops they can still hold, two each.
    std::uint32_t running_instances() const noexcept;

    // Starts `c` (idle), to end by `deadline`. done runs exactly once.
    void start(check& c, mono_time deadline) noexcept;
    // Ends a running check early: done still runs, with `cancelled` set.
    void cancel(check& c) noexcept;

    // Exec checks without a pidfd: whether `pid` is one of their children
    // (then the caller reaps it and calls on_child_exit), and whether its
    // exit is watched by an op instead (then the caller must leave it).
    bool owns_child(int pid, bool* watched_by_op) const noexcept;
    // The pid of exec instance `k`'s child (k < exec_instances()), 0 when
    // none runs, and whether an op watches its exit: for a caller that may
    // wait only for the pids it knows.
    int child_at(std::uint32_t k, bool* watched_by_op) const noexcept;
    void on_child_exit(int pid, const siginfo_t& si) noexcept;

    const engine_stats& stats() const noexcept { return stats_; }

private:
    bool build(check& c, std::uint32_t def, check* parent, arena& mem) noexcept;
    static std::uint32_t instances(const check& c) noexcept;
    void cgroup_name(std::uint32_t k,
                     char (&out)[process::cgroup_tree::name_capacity + 1]) const noexcept;
    static void measure(const tbl::plan& plan, std::uint32_t i, arena& mem) noexcept;
    void begin(check& c) noexcept;
    void finish(check& c) noexcept;
    void defer_finish(check& c) noexcept;
    void close_then_finish(check& c) noexcept;
    void connect_step(check& c) noexcept;
    void exec_start(check& c) noexcept;
    void exec_exited(check& c, const siginfo_t& si) noexcept;
    void exec_conclude(check& c) noexcept;
    void read_output(check& c) noexcept;
    static void on_output(io::op& o, std::int32_t result) noexcept;
    void file_checks(check& c) noexcept;
    void file_cleanup(check& c) noexcept;
    void member_done(check& parent, check& member) noexcept;
    void fail_io(check& c, const char* what, int err) noexcept;
    static void on_dns(dns_lookup& l) noexcept;
    static void on_op(io::op& o, std::int32_t result) noexcept;
    static void on_timer(io::timer& t) noexcept;
    void net_step(check& c, std::int32_t result) noexcept;
    void exec_step(check& c, std::int32_t result) noexcept;
    void file_step(check& c, std::int32_t result) noexcept;

    io::reactor* r_ = nullptr;
    process::spawner* spawner_ = nullptr;
    resolver* dns_ = nullptr;
    check_def* defs_ = nullptr;
    check* roots_ = nullptr;
    std::uint32_t count_ = 0;
    // Every exec instance, for on_child_exit.
    check** execs_ = nullptr;
    std::uint32_t exec_count_ = 0;
    process::cgroup_tree* cg_ = nullptr;
    std::uint32_t instances_ = 0; // writable file instances numbered so far (from first_)
    std::uint32_t first_ = 0;
    engine_stats stats_;
};

} // namespace custos::probe
