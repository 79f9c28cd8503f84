// The process spawner (see spawn.hpp for the methods and the invariants).
#include "process/spawn.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
// Syscalls added after 5.0 have one number on every architecture.
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
// 32-bit ARM (and i386) have 16-bit-id legacy calls under the plain names.
#ifdef SYS_setresuid32
#define CUSTOS_SYS_SETRESUID SYS_setresuid32
#define CUSTOS_SYS_SETRESGID SYS_setresgid32
#define CUSTOS_SYS_SETGROUPS SYS_setgroups32
#else
#define CUSTOS_SYS_SETRESUID SYS_setresuid
#define CUSTOS_SYS_SETRESGID SYS_setresgid
#define CUSTOS_SYS_SETGROUPS SYS_setgroups
#endif

// The child runs on a stack ASan does not know (ours, or the parent's below
// its frame) and never returns: instrumenting it would only leave stale
// shadow behind and warn about the unknown stack.
#if defined(__GNUC__) // gcc and clang
#define CUSTOS_CHILD_CODE __attribute__((no_sanitize_address, noinline))
#else
#define CUSTOS_CHILD_CODE
#endif

namespace custos::process {
namespace {

constexpr std::size_t child_stack_size = 32 * 1024;

// Where the child failed; sent to the parent with the errno.
enum class stage : std::int32_t {
    setsid,
    stdin_null,
    ready_fd,
    close_range,
    setgroups,
    setgid,
    setuid,
    chdir,
    exec,
    cgroup,
    channel_fd,
    stdout_fd,
    stderr_fd,
};

const char* stage_name(stage s) noexcept {
    switch (s) {
    case stage::setsid:
        return "setsid";
    case stage::stdin_null:
        return "stdin";
    case stage::ready_fd:
        return "ready_fd";
    case stage::channel_fd:
        return "channel_fd";
    case stage::close_range:
        return "close_range";
    case stage::setgroups:
        return "setgroups";
    case stage::setgid:
        return "setgid";
    case stage::setuid:
        return "setuid";
    case stage::chdir:
        return "chdir";
    case stage::exec:
        return "exec";
    case stage::cgroup:
        return "cgroup";
    case stage::stdout_fd:
        return "stdout";
    case stage::stderr_fd:
        return "stderr";
    }
    return "unknown";
}

struct failure_record {
    std::int32_t where;
    std::int32_t err;
};

struct child_ctx {
    const spawn_request* rq;
    int err_fd; // write end of the exec-error pipe, O_CLOEXEC, >= 3
};

[[noreturn]] CUSTOS_CHILD_CODE void child_fail(int err_fd, stage s) noexcept {
    failure_record rec{static_cast<std::int32_t>(s), errno};
    // 8 bytes < PIPE_BUF: written whole or not at all.
    if (::write(err_fd, &rec, sizeof rec) < 0) {
    }
    ::_exit(127);
}

// Closes [3, ~0U] except the (up to three) descriptors in keep[], sorted
// with -1 first. Returns 0 or an errno.
CUSTOS_CHILD_CODE int close_all_but(const int keep[3]) noexcept {
    unsigned lo = 3;
    long r = 0;
    for (int i = 0; i < 3 && r == 0; ++i) {
        if (keep[i] >= 3) {
            auto k = static_cast<unsigned>(keep[i]);
            if (k > lo) {
                r = ::syscall(SYS_close_range, lo, k - 1, 0);
            }
            lo = k + 1;
        }
    }
    if (r == 0) {
        r = ::syscall(SYS_close_range, lo, ~0U, 0);
    }
    if (r == 0) {
        return 0;
    }
    if (errno != ENOSYS) {
        return errno;
    }
    // Before 5.9: close one by one up to the descriptor limit (capped at the
    // default fs.nr_open). /proc/self/fd would need opendir, i.e. malloc.
    struct rlimit rl {};
    rlim_t limit = 1u << 20;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < limit) {
        limit = rl.rlim_cur;
    }
    for (rlim_t fd = 3; fd < limit; ++fd) {
        int f = static_cast<int>(fd);
        if (f != keep[0] && f != keep[1] && f != keep[2]) {
            ::close(f);
        }
    }
    return 0;
}

// Runs in the child, which shares the parent's memory (clone/vfork) or has
// a copy of it (qemu-user's fork emulation). Never returns.
CUSTOS_CHILD_CODE int child_main(void* arg) noexcept {
    const auto* ctx = static_cast<const child_ctx*>(arg);
    const spawn_request& rq = *ctx->rq;
    const int err_fd = ctx->err_fd;

    // 1. Default dispositions, then an empty mask: the parent blocked every
    // signal around clone/vfork, so no custos handler runs here. sigaction
    // refuses SIGKILL, SIGSTOP and glibc's internal RT signals (EINVAL).
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            ::sigaction(sig, &dfl, nullptr);
        }
    }
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);

    // 2. Own session and process group: custos stops the service by pgid.
    if (::setsid() < 0) {
        child_fail(err_fd, stage::setsid);
    }
    // 2b. Into the unit's cgroup ("0": the writing process), before anything
    // here can fork. The descriptor is O_CLOEXEC and closed in step 5.
    if (rq.cgroup_procs_fd >= 0) {
        ssize_t w;
        do {
            w = ::write(rq.cgroup_procs_fd, "0", 1);
        } while (w < 0 && errno == EINTR);
        if (w != 1) {
            if (w >= 0) {
                errno = EIO;
            }
            child_fail(err_fd, stage::cgroup);
        }
    }
    // 3. stdin from /dev/null.
    int nul = ::open("/dev/null", O_RDONLY);
    if (nul < 0) {
        child_fail(err_fd, stage::stdin_null);
    }
    if (nul != 0) {
        if (::dup2(nul, 0) < 0) {
            child_fail(err_fd, stage::stdin_null);
        }
        ::close(nul);
    }
    // 3b. stdout and stderr where the caller wants them. The sources are
    // >= 3 (checked by the parent), so neither dup can replace the other's
    // source, and the dups below target >= 3: they cannot undo these. The
    // sources are O_CLOEXEC; 1 and 2 are not.
    if (rq.stdout_fd >= 0 && ::dup2(rq.stdout_fd, 1) < 0) {
        child_fail(err_fd, stage::stdout_fd);
    }
    if (rq.stderr_fd >= 0 && ::dup2(rq.stderr_fd, 2) < 0) {
        child_fail(err_fd, stage::stderr_fd);
    }
    // 4. The s6 readiness fd (the parent keeps err_fd above the target).
    const int target = rq.ready_fd_target;
    if (target >= 0) {
        int r = rq.ready_fd_source == target ? ::fcntl(target, F_SETFD, 0)
                                             : ::dup2(rq.ready_fd_source, target);
        if (r < 0) {
            child_fail(err_fd, stage::ready_fd);
        }
    }
    // 4b. The channel's end (the parent made sure that the readiness dup
    // above cannot have landed on its source).
    const int channel = rq.channel_fd_target;
    if (channel >= 0) {
        int r = rq.channel_fd_source == channel ? ::fcntl(channel, F_SETFD, 0)
                                                : ::dup2(rq.channel_fd_source, channel);
        if (r < 0) {
            child_fail(err_fd, stage::channel_fd);
        }
    }
    // 5. Nothing else of the parent's leaks in; err_fd stays open until
    // execve closes it (O_CLOEXEC), which is how the parent sees success.
    const int keep[3] = {target < channel ? target : channel, target < channel ? channel : target,
                         err_fd}; // both targets < err_fd
    if (int e = close_all_but(keep); e != 0) {
        errno = e;
        child_fail(err_fd, stage::close_range);
    }
    // 6. Identity, group first (after setuid we could no longer change it),
    // by raw syscalls: glibc's wrappers would signal the parent's threads.
    if (rq.gid != -1 || rq.uid != -1) {
        gid_t g = static_cast<gid_t>(rq.gid);
        if (::syscall(CUSTOS_SYS_SETGROUPS, rq.gid != -1 ? 1 : 0, &g) != 0) {
            child_fail(err_fd, stage::setgroups);
        }
    }
    if (rq.gid != -1 && ::syscall(CUSTOS_SYS_SETRESGID, rq.gid, rq.gid, rq.gid) != 0) {
        child_fail(err_fd, stage::setgid);
    }
    if (rq.uid != -1 && ::syscall(CUSTOS_SYS_SETRESUID, rq.uid, rq.uid, rq.uid) != 0) {
        child_fail(err_fd, stage::setuid);
    }
    // 7. cwd, with the service's own permissions.
    if (rq.cwd != nullptr && ::chdir(rq.cwd) != 0) {
        child_fail(err_fd, stage::chdir);
    }
    // 8. WATCHDOG_PID must be the service's pid, known only here.
    if (rq.watchdog_pid_slot != nullptr) {
        auto pid = static_cast<unsigned long>(::syscall(SYS_getpid));
        char digits[11];
        int n = 0;
        do {
            digits[n++] = static_cast<char>('0' + pid % 10);
            pid /= 10;
        } while (pid != 0 && n < 11);
        char* out = rq.watchdog_pid_slot + 13; // after "WATCHDOG_PID="
        for (int i = 0; i < n; ++i) {
            out[i] = digits[n - 1 - i];
        }
        out[n] = '\0';
    }
    // 9.
    ::execve(rq.path, rq.argv, rq.envp);
    child_fail(err_fd, stage::exec);
}

// vfork() in a frame of its own that stays live while the child runs in it.
CUSTOS_CHILD_CODE pid_t vfork_child(child_ctx* ctx) noexcept {
    pid_t pid = ::vfork();
    if (pid == 0) {
        child_main(ctx);
    }
    return pid;
}

int wait_gone(int pid) noexcept {
    siginfo_t si{};
    int r;
    do {
        r = ::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED);
    } while (r < 0 && errno == EINTR);
    return r;
}

bool unsupported(int err) noexcept {
    return err == EINVAL || err == ENOSYS || err == EPERM;
}

} // namespace

const char* spawn_method_name(spawn_method m) noexcept {
    switch (m) {
    case spawn_method::clone_pidfd:
        return "clone(CLONE_PIDFD)";
    case spawn_method::vfork_pidfd_open:
        return "vfork+pidfd_open";
    case spawn_method::vfork:
        return "vfork (no pidfd)";
    }
    return "unknown";
}

spawner::~spawner() {
    if (stack_map_ != nullptr) {
        ::munmap(stack_map_, stack_map_len_);
    }
}

Result<void> spawner::init() noexcept {
    spawn_method start = spawn_method::clone_pidfd;
    const char* env = std::getenv("CUSTOS_SPAWN");
    if (env != nullptr && *env != '\0') {
        std::string_view v(env);
        if (v == "clone") {
            start = spawn_method::clone_pidfd;
        } else if (v == "vfork") {
            start = spawn_method::vfork_pidfd_open;
        } else if (v == "vfork-nopidfd") {
            start = spawn_method::vfork;
        } else {
            Error e(Reason::invalid_argument, 0, "CUSTOS_SPAWN");
            e.with_resolution(
                "Set CUSTOS_SPAWN to clone, vfork or vfork-nopidfd, or unset it to choose "
                "automatically");
            return fail(e);
        }
    }
    return init(start);
}

Result<void> spawner::init(spawn_method start) noexcept {
    if (stack_map_ == nullptr) {
        long page = ::sysconf(_SC_PAGESIZE);
        std::size_t guard = page > 0 ? static_cast<std::size_t>(page) : 4096;
        std::size_t len = guard + ((child_stack_size + guard - 1) / guard) * guard;
        void* m = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (m == MAP_FAILED) {
            return fail(Reason::out_of_memory, errno, "spawn stack");
        }
        // The lowest page traps an overflow instead of letting the child
        // scribble over whatever lies below.
        ::mprotect(m, guard, PROT_NONE);
        stack_map_ = m;
        stack_map_len_ = len;
        auto top = reinterpret_cast<std::uintptr_t>(m) + len;
        stack_top_ = reinterpret_cast<void*>(top & ~std::uintptr_t{15});
    }
    method_ = start;
    fallback_errno_ = 0;
    return {};
}

void spawner::step_down(spawn_method to, int err) noexcept {
    method_ = to;
    if (fallback_errno_ == 0) {
        fallback_errno_ = err;
    }
}

Result<spawned> spawner::spawn(const spawn_request& rq) noexcept {
    const char* path = rq.path != nullptr ? rq.path : "";
    if (stack_top_ == nullptr || rq.path == nullptr || rq.argv == nullptr || rq.envp == nullptr ||
        (rq.ready_fd_target >= 0 && (rq.ready_fd_target < 3 || rq.ready_fd_source < 3)) ||
        (rq.channel_fd_target >= 0 && (rq.channel_fd_target < 3 || rq.channel_fd_source < 3 ||
                                       rq.channel_fd_target == rq.ready_fd_target ||
                                       rq.channel_fd_source == rq.ready_fd_target)) ||
        (rq.stdout_fd != -1 && rq.stdout_fd < 3) || (rq.stderr_fd != -1 && rq.stderr_fd < 3)) {
        return fail(Reason::invalid_argument, 0, path);
    }
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return fail(Reason::spawn_failed, errno, path);
    }
    // The child dups onto 0 and the ready and channel targets: keep the
    // write end above all, so none clobbers it.
    const int top =
        rq.ready_fd_target > rq.channel_fd_target ? rq.ready_fd_target : rq.channel_fd_target;
    if (pipe_fds[1] < 3 || pipe_fds[1] <= top) {
        int above = top >= 3 ? top + 1 : 3;
        int moved = ::fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, above);
        int err = errno;
        ::close(pipe_fds[1]);
        if (moved < 0) {
            ::close(pipe_fds[0]);
            return fail(Reason::spawn_failed, err, path);
        }
        pipe_fds[1] = moved;
    }
    child_ctx ctx{&rq, pipe_fds[1]};

    sigset_t all;
    sigset_t old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    int pidfd = -1;
    pid_t pid = -1;
    int err = 0;
    if (method_ == spawn_method::clone_pidfd) {
        pid = ::clone(child_main, stack_top_, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &ctx,
                      &pidfd);
        err = errno;
        if (pid < 0 && unsupported(err)) {
            step_down(spawn_method::vfork_pidfd_open, err);
        }
    }
    if (method_ != spawn_method::clone_pidfd) {
        pid = vfork_child(&ctx);
        err = errno;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::close(pipe_fds[1]);
    if (pid < 0) {
        ::close(pipe_fds[0]);
        return fail(Reason::spawn_failed, err, path);
    }

    // EOF: execve closed the write end. A record: the child failed and exited.
    failure_record rec{};
    ssize_t n;
    do {
        n = ::read(pipe_fds[0], &rec, sizeof rec);
    } while (n < 0 && errno == EINTR);
    err = n < 0 ? errno : EIO;
    ::close(pipe_fds[0]);
    if (n != 0) {
        bool reported = n == static_cast<ssize_t>(sizeof rec);
        if (!reported) {
            ::kill(pid, SIGKILL); // cannot tell what it is doing: do not leave it
        }
        wait_gone(pid);
        if (pidfd >= 0) {
            ::close(pidfd);
        }
        if (!reported) {
            return fail(Reason::spawn_failed, err, path);
        }
        const char* what = stage_name(static_cast<stage>(rec.where));
        char subject[Error::subject_capacity + 1];
        std::size_t wl = std::strlen(what);
        std::size_t pl = std::strlen(path);
        std::size_t room = sizeof subject - wl - 2;
        if (pl > room) {
            pl = room;
        }
        std::memcpy(subject, what, wl);
        std::memcpy(subject + wl, ": ", 2);
        std::memcpy(subject + wl + 2, path, pl);
        return fail(Reason::exec_failed, rec.err, std::string_view(subject, wl + 2 + pl));
    }

    // Before 5.2 the kernel ignores the CLONE_PIDFD bit: no pidfd came back.
    if (method_ == spawn_method::clone_pidfd && pidfd < 0) {
        step_down(spawn_method::vfork_pidfd_open, -1);
    }
    if (method_ == spawn_method::vfork_pidfd_open && pidfd < 0) {
        // The child cannot have been reaped (we are its only reaper), so pid
        // still names it, even if it has already exited.
        pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (pidfd < 0) {
            err = errno;
            if (err == ENOSYS) {
                step_down(spawn_method::vfork, err);
            } else {
                ::kill(pid, SIGKILL);
                wait_gone(pid);
                return fail(Reason::spawn_failed, err, path);
            }
        }
    }
    return spawned{pid, pidfd};
}

int signal_group(int pidfd, int pgid, int sig) noexcept {
    if (pgid <= 1) {
        return -EINVAL;
    }
    bool delivered = false;
    int err = 0;
    if (pidfd >= 0) {
        if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0) {
            delivered = true;
        } else if (errno != ESRCH && errno != ENOSYS) {
            err = errno;
        }
    }
    if (::kill(-pgid, sig) == 0) {
        delivered = true;
    } else if (errno != ESRCH && err == 0) {
        err = errno;
    }
    if (delivered) {
        return 0;
    }
    return err != 0 ? -err : -ESRCH;
}

// ---- argv and envp ----------------------------------------------------------

namespace {

std::string_view key_of(std::string_view entry) noexcept {
    return entry.substr(0, entry.find('='));
}

bool valid_entry(std::string_view e) noexcept {
    auto eq = e.find('=');
    return eq != std::string_view::npos && eq > 0;
}

bool has_key(std::span<const std::string_view> entries, std::string_view key) noexcept {
    for (std::string_view e : entries) {
        if (key_of(e) == key) {
            return true;
        }
    }
    return false;
}

bool inherited_kept(std::string_view entry, const env_spec& s) noexcept {
    std::string_view k = key_of(entry);
    return k != "NOTIFY_SOCKET" && k != "WATCHDOG_USEC" && k != "WATCHDOG_PID" &&
           !has_key(s.service, k) && !has_key(s.custos, k);
}

// A service entry survives unless a later one or custos's sets its key.
bool service_kept(std::size_t i, const env_spec& s) noexcept {
    std::string_view k = key_of(s.service[i]);
    return !has_key(s.service.subspan(i + 1), k) && !has_key(s.custos, k) &&
           !(s.watchdog_pid && k == "WATCHDOG_PID");
}

} // namespace

Result<env_block> build_env(arena& a, const env_spec& s) noexcept {
    for (std::string_view e : s.service) {
        if (!valid_entry(e)) {
            return fail(Reason::invalid_argument, 0, e);
        }
    }
    for (std::string_view e : s.custos) {
        if (!valid_entry(e)) {
            return fail(Reason::invalid_argument, 0, e);
        }
    }
    std::size_t count = s.custos.size() + (s.watchdog_pid ? 1 : 0);
    for (char* const* p = s.inherited; p != nullptr && *p != nullptr; ++p) {
        count += inherited_kept(*p, s) ? 1 : 0;
    }
    for (std::size_t i = 0; i < s.service.size(); ++i) {
        count += service_kept(i, s) ? 1 : 0;
    }
    // Every take() runs even after one failed, so needed() covers the whole
    // layout in the sizing pass.
    bool fits = true;
    char** envp = a.make_array<char*>(count + 1);
    fits = envp != nullptr;
    std::size_t at = 0;
    auto add = [&](std::string_view e) {
        char* c = a.copy(e);
        if (c == nullptr || envp == nullptr) {
            fits = false;
            return c;
        }
        envp[at++] = c;
        return c;
    };
    for (char* const* p = s.inherited; p != nullptr && *p != nullptr; ++p) {
        if (inherited_kept(*p, s)) {
            add(*p);
        }
    }
    for (std::size_t i = 0; i < s.service.size(); ++i) {
        if (service_kept(i, s)) {
            add(s.service[i]);
        }
    }
    for (std::string_view e : s.custos) {
        add(e);
    }
    char* slot = nullptr;
    if (s.watchdog_pid) {
        // Room for the digits; the child writes them (and a NUL) before exec.
        char buf[watchdog_pid_entry_size - 1] = "WATCHDOG_PID=";
        slot = add(std::string_view(buf, sizeof buf));
    }
    if (!fits) {
        return fail(Reason::capacity_exceeded, 0, "environment arena");
    }
    envp[at] = nullptr;
    return env_block{envp, slot};
}

Result<char**> build_argv(arena& a, std::span<const std::string_view> args) noexcept {
    if (args.empty()) {
        return fail(Reason::invalid_argument, 0, "argv is empty");
    }
    char** argv = a.make_array<char*>(args.size() + 1);
    bool fits = argv != nullptr;
    for (std::size_t i = 0; i < args.size(); ++i) {
        char* c = a.copy(args[i]);
        if (c == nullptr || argv == nullptr) {
            fits = false;
        } else {
            argv[i] = c;
        }
    }
    if (!fits) {
        return fail(Reason::capacity_exceeded, 0, "argv arena");
    }
    argv[args.size()] = nullptr;
    return argv;
}

int above_stdio(int fd) noexcept {
    if (fd >= 3) {
        return fd;
    }
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    ::close(fd);
    errno = err;
    return moved;
}

} // namespace custos::process
