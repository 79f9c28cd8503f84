// The process spawner: starts a service's process and hands back its pid and
// pidfd, plus the builders for the argv/envp arrays it execs with.
//
// Three methods, best first; the spawner starts at one (auto: the best,
// CUSTOS_SPAWN forces a starting point) and steps down, stickily, the first
// time the kernel refuses it:
//   clone_pidfd       glibc clone(CLONE_VM|CLONE_VFORK|CLONE_PIDFD|SIGCHLD):
//                     the pidfd comes back atomically with the child (no
//                     PID-reuse window) and no page tables are copied (never
//                     plain fork(): 31 ms vs 0.5 ms for a 1 GiB parent).
//                     Not a raw clone3 syscall: a raw syscall cannot switch
//                     the child onto a new stack safely from C, and glibc
//                     2.36 exports no clone3 wrapper; glibc's clone()
//                     trampoline does the stack switch for every arch.
//                     Linux >= 5.2; qemu-user refuses CLONE_PIDFD (EINVAL).
//   vfork_pidfd_open  vfork(), then pidfd_open(pid) in the parent. Safe from
//                     PID reuse because custos is the only reaper of its
//                     children: the pid cannot be recycled before we wait.
//                     Linux >= 5.3.
//   vfork             no pidfd at all (pidfd = -1): callers watch exits
//                     through SIGCHLD.
//
// The child (child_main in spawn.cpp) shares the parent's memory until it
// execs, so it calls no malloc, stdio, locks, or glibc set*id wrappers (those
// broadcast to the parent's threads), only async-signal-safe calls and raw
// syscalls. It reports a failure as {stage, errno} over a CLOEXEC pipe, never
// through shared memory: qemu-user emulates vfork as fork.
//
// Invariants: after init() nothing here allocates; spawn() leaves no zombie
// and no descriptor behind when it fails; a returned child has exec'd (or
// is about to, under qemu's fork emulation) with signals at their defaults,
// an empty mask, its own session and process group, its cgroup when asked
// (moved before exec), stdin on /dev/null,
// stdout/stderr inherited or on the descriptors the request names, and no
// other descriptor than the readiness fd and the channel fd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>

#include "core/arena.hpp"

namespace custos::process {

// `fd` moved to a number >= 3 (closing the original) when it is below:
// never one a child dups onto its stdin, stdout or stderr. -1 when that
// fails (errno set).
int above_stdio(int fd) noexcept;

enum class spawn_method : std::uint8_t { clone_pidfd, vfork_pidfd_open, vfork };

// "clone(CLONE_PIDFD)", "vfork+pidfd_open", "vfork (no pidfd)".
const char* spawn_method_name(spawn_method m) noexcept;

// Everything the child needs, prepared by the caller (in an arena, at init).
struct spawn_request {
    const char* path = nullptr; // absolute; execve does no PATH search
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    const char* cwd = nullptr; // nullptr: inherit; entered after the ids change
    // -1: keep. When either is set the supplementary groups become {gid}
    // (or none), so setting them needs CAP_SETGID/CAP_SETUID (root).
    int uid = -1;
    int gid = -1;
    int ready_fd_target = -1; // s6 notification fd number in the child (>= 3), -1: none
    int ready_fd_source = -1; // the parent's descriptor dup'ed there (>= 3)
    // The service's channel end (>= 3, not the ready target), from a
    // source that is not the ready target either (the ready dup comes
    // first and would replace it).
    int channel_fd_target = -1;
    int channel_fd_source = -1;
    // Points at a "WATCHDOG_PID=" entry inside envp with room for 11 digits
    // and a NUL (env_block::watchdog_pid_slot); the child writes its pid
    // there. Pass it whenever the block has one, or the entry stays empty.
    char* watchdog_pid_slot = nullptr;
    // >= 0: a cgroup's cgroup.procs opened for writing
    // (cgroup_tree::procs_fd). The child writes "0" to it right after
    // setsid(), before it can fork or exec, so nothing it starts escapes
    // the cgroup; a failure is exec_failed with stage "cgroup".
    int cgroup_procs_fd = -1;
    // Where the child's stdout (1) and stderr (2) go: -1 keeps custos's
    // own; else a descriptor of the parent's (>= 3) that the child dups
    // there before anything else it is given (a pipe the host drains,
    // /dev/null). Both may name the same descriptor. A failure is
    // exec_failed with stage "stdout" or "stderr".
    int stdout_fd = -1;
    int stderr_fd = -1;
};

struct spawned {
    int pid = -1;
    int pidfd = -1; // -1 when the method has none; O_CLOEXEC; the caller closes it
};

// Used from one thread at a time (the reactor's): the child stack is one.
class spawner {
public:
    spawner() = default;
    ~spawner();
    spawner(const spawner&) = delete;
    spawner& operator=(const spawner&) = delete;

    // Takes the child stack and chooses the starting method from CUSTOS_SPAWN
    // (clone | vfork | vfork-nopidfd; unset or empty: clone, the best).
    // Errors: invalid_argument (bad CUSTOS_SPAWN), out_of_memory (mmap).
    Result<void> init() noexcept;
    // Same, starting at `start` whatever the environment says (tests).
    Result<void> init(spawn_method start) noexcept;

    // Starts the child and returns once it has exec'd. Allocates nothing.
    // Errors: invalid_argument (not initialised, null path/argv/envp, ready
    // or channel fd below 3, a channel target or source on the ready
    // target, a stdout or stderr source below 3 but not -1); spawn_failed (pipe2, clone/vfork or
    // pidfd_open failed, e.g. EAGAIN/ENOMEM/EMFILE; subject: the path); exec_failed (the child
    // failed before or at execve; errno is the child's, subject
    // "<stage>: <path>" with stage one of setsid, cgroup, stdin, stdout,
    // stderr, ready_fd, channel_fd, close_range, setgroups, setgid, setuid, chdir, exec). On either
    // failure the child has been reaped and its pidfd closed.
    Result<spawned> spawn(const spawn_request& rq) noexcept;

    // The method in use now (after any downgrade).
    spawn_method method() const noexcept { return method_; }
    // errno that made the spawner step down from its starting method (EINVAL,
    // ENOSYS, EPERM; 0 = none; -1 = the kernel ignored CLONE_PIDFD), for the
    // runtime to log once.
    int fallback_errno() const noexcept { return fallback_errno_; }

private:
    void step_down(spawn_method to, int err) noexcept;

    void* stack_map_ = nullptr; // guard page + stack, from mmap
    std::size_t stack_map_len_ = 0;
    void* stack_top_ = nullptr; // 16-byte aligned top (stacks grow down)
    spawn_method method_ = spawn_method::clone_pidfd;
    int fallback_errno_ = 0;
};

// Sends `sig` to the process group `pgid` (a service's leader's pid):
// pidfd_send_signal to the leader when pidfd >= 0, which cannot hit a
// recycled pid, and kill(-pgid) for the rest of the group. Returns 0 when
// anything received it, -ESRCH when nothing was left, -EINVAL for pgid <= 1
// (kill(0)/kill(-1) would hit custos's own group or everything), or another
// -errno (EPERM).
//
// Residual race of kill(-pgid): a pgid is the pid of its leader, and the
// kernel does not hand out a pid number while any process still uses it as
// pid, pgid or sid. The leader is a session leader, so it can never leave
// its group, and custos keeps it as a zombie until custos itself reaps it:
// until then the pgid cannot be recycled. After the leader is reaped, the
// number stays reserved as long as one member of the group lives; only when
// the last member exits between the caller's decision and this kill, and
// the pid counter wraps onto that number in that window, could a stranger's
// new group be hit. Callers signal a group whose leader they have reaped
// only during a stop sequence, right after the leader's exit.
int signal_group(int pidfd, int pgid, int sig) noexcept;

// Bytes of a "WATCHDOG_PID=" entry: the name, 11 digits, a NUL.
inline constexpr std::size_t watchdog_pid_entry_size = 13 + 11 + 1;

struct env_spec {
    // Environment to inherit (usually `environ`; nullptr: none). Copied.
    char* const* inherited = nullptr;
    // The service's own "KEY=value" entries; they replace inherited ones.
    std::span<const std::string_view> service{};
    // custos's entries (NOTIFY_SOCKET=..., WATCHDOG_USEC=...); they replace
    // both the inherited and the service's entries of the same key.
    std::span<const std::string_view> custos{};
    // Reserve a "WATCHDOG_PID=" entry the child fills with its pid.
    bool watchdog_pid = false;
};

struct env_block {
    char** envp = nullptr;             // NULL-terminated, in the arena
    char* watchdog_pid_slot = nullptr; // for spawn_request; nullptr unless asked
};

// Lays out envp in `a`: the inherited entries minus NOTIFY_SOCKET,
// WATCHDOG_USEC, WATCHDOG_PID and any key set below, then the service's
// entries (the last of a repeated key wins), then custos's, then the
// WATCHDOG_PID slot. Two-pass sizing: run against an arena with no block,
// read a.needed(), reserve, run again.
// Errors: invalid_argument (a service or custos entry without '=' or with
// an empty key; subject: the entry); capacity_exceeded (the arena is too
// small; a.needed() then says how much the whole layout takes).
Result<env_block> build_env(arena& a, const env_spec& spec) noexcept;

// Lays out a NULL-terminated argv copy of `args` in `a` (same sizing).
// Errors: invalid_argument (no arguments: argv[0] is required);
// capacity_exceeded (as build_env).
Result<char**> build_argv(arena& a, std::span<const std::string_view> args) noexcept;

} // namespace custos::process
