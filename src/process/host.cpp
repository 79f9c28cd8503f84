// process::host: spawn, exit watching, the SIGCHLD drain and remnants (see
// host.hpp). Setting up (layout, child watch, containment) is in
// host_setup.cpp, the notify side in host_notify.cpp, the captured output
// in host_output.cpp.
#include "process/host.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "process/fd_closer.hpp"
#include "process/host_proc.hpp"
#include "process/procfs.hpp"
#include "process/runtime_dir.hpp"

extern char** environ;

namespace custos::process {

namespace {

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

// The parent pid of `pid` (0 when unknown).
int parent_of(int pid) noexcept {
    procfs::stat_fields f;
    return procfs::read_stat(pid, f) ? f.ppid : 0;
}

} // namespace

host::~host() {
    // procs_ is null when init failed before the table was laid out.
    for (std::uint32_t i = 0; procs_ != nullptr && i < count_; ++i) {
        proc& p = procs_[i];
        if (p.pidfd >= 0) {
            ::close(p.pidfd);
        }
        if (p.ready_rd >= 0) {
            ::close(p.ready_rd);
        }
        if (p.channel >= 0) {
            ::close(p.channel);
        }
        for (out_stream& o : p.out) {
            for (int fd : {o.rd, o.wr, o.next_rd}) {
                if (fd >= 0) {
                    ::close(fd);
                }
            }
        }
    }
    if (devnull_ >= 0) {
        ::close(devnull_);
    }
    for (std::uint32_t k = 0; notify_ != nullptr && k < sockets_; ++k) {
        notify_[k].~notify_socket(); // made in the arena
    }
    if (chld_fd_ >= 0) {
        ::close(chld_fd_);
    }
}

void host::start() noexcept {
    chld_op_.done = &host::on_sigchld;
    chld_op_.user = this;
    io::reactor::make_internal(chld_op_);
    reactor_.read(chld_op_, chld_fd_, &chld_buf_, sizeof chld_buf_);
    started_ = true;
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (procs_[i].notify != nullptr && procs_[i].notify->is_open()) {
            procs_[i].notify->start(reactor_, this, *notify_bufs_, i, &fd_closer::process());
        }
    }
    if (notify_dir_.watch_fd() >= 0) {
        notify_watch_op_.done = &host::on_notify_watch;
        notify_watch_op_.user = this;
        io::reactor::make_internal(notify_watch_op_);
        reactor_.read(notify_watch_op_, notify_dir_.watch_fd(), notify_watch_buf_,
                      sizeof notify_watch_buf_);
    }
}

Result<int> host::spawn(std::uint32_t i) noexcept {
    if (i >= count_ || !procs_[i].occupied) {
        return fail(Reason::invalid_argument, 0, "vacant service slot");
    }
    proc& p = procs_[i];
    if (p.notify != nullptr) {
        // What the previous process (or its helpers) left queued must not
        // speak for the new one: a stale READY=1 would make it ready early.
        p.notify_stale = true;
        p.notify->drain();
        p.notify_stale = false;
    }
    spawn_request rq;
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
        if (cgroups_.populated(slot)) {
            int n = cgroups_.kill(slot, SIGKILL);
            stats_.remnants_killed += n > 0 ? static_cast<std::uint64_t>(n) : 0;
        }
        rq.cgroup_procs_fd = cgroups_.procs_fd(slot);
    }
    if (p.make_rundir) {
        if (auto r = make_runtime_dir(p.runtime_dir, p.uid, p.gid); !r) {
            ++stats_.spawn_failures;
            return fail(r.error());
        }
    }
    // Output first: a failure here leaves nothing else to undo (the pipes
    // are the slot's, kept whatever happens next).
    if (captures(p.output)) {
        if (auto r = open_output(p); !r) {
            ++stats_.spawn_failures;
            return fail(r.error());
        }
        rq.stdout_fd = p.out[0].wr;
        rq.stderr_fd = p.out[1].wr;
    } else if (p.output == OutputMode::null) {
        rq.stdout_fd = devnull_;
        rq.stderr_fd = devnull_;
    }
    int wr = -1;
    if (p.ready_mode == ReadyMode::fd) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
            ++stats_.spawn_failures;
            return fail(Reason::spawn_failed, errno, "readiness pipe");
        }
        p.ready_rd = fds[0];
        wr = fds[1];
        rq.ready_fd_target = p.ready_fd;
        rq.ready_fd_source = wr;
    }
    int child_end = -1;
    if (p.channel_fd >= 0) {
        if (p.channel >= 0) {
            ::close(p.channel); // not expected: closed at every exit
            p.channel = -1;
        }
        int sv[2];
        int err = 0;
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            err = errno;
        } else {
            child_end = sv[1];
            p.channel = sv[0];
            // Ours only: the ends are separate open files, so the child's
            // stays blocking, as a program expects of a descriptor it is given.
            (void)::fcntl(p.channel, F_SETFL, ::fcntl(p.channel, F_GETFL) | O_NONBLOCK);
            if (child_end == p.ready_fd) {
                // The child dups the readiness pipe there first.
                int moved = ::fcntl(child_end, F_DUPFD_CLOEXEC, 3);
                err = moved < 0 ? errno : 0;
                ::close(child_end);
                child_end = moved;
            }
        }
        if (child_end < 0) {
            if (p.channel >= 0) {
                ::close(p.channel);
                p.channel = -1;
            }
            if (wr >= 0) {
                ::close(wr);
            }
            if (p.ready_rd >= 0) {
                ::close(p.ready_rd);
                p.ready_rd = -1;
            }
            ++stats_.spawn_failures;
            return fail(Reason::spawn_failed, err, "channel socket pair");
        }
        rq.channel_fd_target = p.channel_fd;
        rq.channel_fd_source = child_end;
    }
    auto r = spawner_.spawn(rq);
    if (wr >= 0) {
        ::close(wr); // the child has its copy (or never will)
    }
    if (child_end >= 0) {
        ::close(child_end);
    }
    if (!r) {
        ++stats_.spawn_failures;
        if (p.ready_rd >= 0) {
            ::close(p.ready_rd);
            p.ready_rd = -1;
        }
        if (p.channel >= 0) {
            ::close(p.channel);
            p.channel = -1;
        }
        return fail(r.error());
    }
    ++stats_.spawns;
    p.pid = r->pid;
    p.pidfd = r->pidfd;
    p.main_pid = 0;
    p.run_uid = p.uid;
    p.run_ready = p.ready_mode;
    if (pid_rec_.is_open()) {
        (void)pid_rec_.record(i, p.pid, p.name); // best effort: a full disk loses it
    }
    watch_exit(p);
    if (p.ready_rd >= 0) {
        reactor_.read(p.ready_op, p.ready_rd, p.ready_buf, sizeof p.ready_buf);
    }
    return p.pid;
}

void host::kill(std::uint32_t i, int sig) noexcept {
    proc& p = procs_[i];
    if (p.pid <= 0) {
        return;
    }
    // A stopped (T-state) process would sit on its stop signal until the
    // SIGKILL: wake it, as s6, runit and systemd do.
    const bool cont = sig != SIGKILL && sig != SIGCONT;
    if (p.cg_slot >= 0) {
        // Everything the service started, setsid() children included.
        const auto slot = static_cast<std::uint32_t>(p.cg_slot);
        (void)cgroups_.kill(slot, sig);
        if (cont) {
            (void)cgroups_.kill(slot, SIGCONT);
        }
        return;
    }
    signal_group(p.pidfd, p.pid, sig);
    if (cont) {
        signal_group(p.pidfd, p.pid, SIGCONT);
    }
}

void host::watch_exit(proc& p) noexcept {
    if (p.pidfd >= 0) {
        reactor_.waitid(p.exit_op, p.pidfd, &p.info);
    }
    // Without a pidfd the SIGCHLD drain is the watcher. A child that exited
    // before this point has already raised SIGCHLD: nothing is missed.
}

void host::close_ready_pipe(proc& p) noexcept {
    if (p.ready_op.busy()) {
        reactor_.cancel(p.ready_op); // its callback closes the pipe
        return;
    }
    if (p.ready_rd >= 0) {
        ::close(p.ready_rd);
        p.ready_rd = -1;
    }
}

// Whether `pid` belongs to service `p`: in its cgroup, else in its process
// group or session (what MAINPID= may name).
bool host::in_service(const proc& p, int pid) const noexcept {
    if (pid <= 1 || p.pid <= 0) {
        return false;
    }
    if (p.cg_slot >= 0) {
        return cgroups_.contains(static_cast<std::uint32_t>(p.cg_slot), pid);
    }
    return ::getpgid(pid) == p.pid || ::getsid(pid) == p.pid;
}

void host::kill_remnants(proc& p, int leader) noexcept {
    if (p.cg_slot >= 0) {
        int n = cgroups_.kill(static_cast<std::uint32_t>(p.cg_slot), SIGKILL);
        stats_.remnants_killed += n > 0 ? static_cast<std::uint64_t>(n) : 0;
        return;
    }
    // The process group, right after the leader's exit, while its pgid
    // cannot have been reused (spawn.hpp, signal_group).
    if (signal_group(-1, leader, SIGKILL) == 0) {
        p.remnant_pgid = leader;
        ++stats_.remnants_killed; // at least one; the group's size is unknown
    }
}

void host::exited(proc& p, const siginfo_t& si) noexcept {
    ++stats_.exits;
    // What the process sent before it exited is read first, as systemd
    // reads notifications before SIGCHLD: a launcher's READY=1 and
    // MAINPID= must not lose the race with its own exit.
    if (p.notify != nullptr) {
        p.notify->drain();
    }
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
        ++stats_.main_pid_followed;
        watch_exit(p); // without a pidfd, the SIGCHLD drain finds it by pid
        return;
    }
    // The service has ended: nothing it started may outlive it (as systemd's
    // KillMode=control-group). Children that ignore the stop signal, or
    // daemons it forked without saying MAINPID=, get SIGKILL now.
    kill_remnants(p, p.pid);
    if (pid_rec_.is_open()) {
        (void)pid_rec_.clear(p.index);
    }
    p.pid = 0;
    close_ready_pipe(p);
    // The channel outlives the exit transition (the layer above may still
    // read what the process wrote last), then goes; a restart from inside
    // the call makes a new one.
    const int channel = p.channel;
    p.channel = -1;
    ev_.exited(p.index, exit_info(si));
    if (channel >= 0) {
        ::close(channel);
    }
}

std::uint32_t host::find_by_pid(int pid) const noexcept {
    for (std::uint32_t i = 0; pid > 0 && i < count_; ++i) {
        if (procs_[i].pid == pid) {
            return i;
        }
    }
    return UINT32_MAX;
}

// Whether a group SIGKILLed in exited() still has members we are to reap
// (children of ours: alive, or zombies); forgets the groups that have none.
// Members that are not our children (not re-parented yet, or to init where
// we are no subreaper) are not waited for: we could not reap them anyway.
bool host::remnants_left() noexcept {
    bool left = false;
    for (std::uint32_t i = 0; i < count_; ++i) {
        proc& p = procs_[i];
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
void host::reap_remnants() noexcept {
    constexpr int step_ms = 2;
    constexpr int limit_ms = 1000;
    // Every cgroup emptied (setsid() children of services and of exec
    // probes included), each bounded: a process stuck in D state is left.
    for (std::uint32_t k = 0; use_cgroups_ && k < cgroups_.size(); ++k) {
        if (cgroups_.populated(k)) {
            int n = cgroups_.kill_until_empty(k, std::chrono::milliseconds(limit_ms));
            stats_.remnants_killed += n > 0 ? static_cast<std::uint64_t>(n) : 0;
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

void host::on_exit_op(io::op& o, std::int32_t result) noexcept {
    auto& p = *static_cast<proc*>(o.user);
    host& h = *p.owner;
    if (result == 0) {
        h.exited(p, p.info);
        h.drain_if_blocked(); // orphans queued behind this zombie
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
    h.drain_children();
}

void host::on_ready_read(io::op& o, std::int32_t result) noexcept {
    auto& p = *static_cast<proc*>(o.user);
    host& h = *p.owner;
    if (result > 0) {
        if (std::memchr(p.ready_buf, '\n', static_cast<std::size_t>(result)) != nullptr) {
            ::close(p.ready_rd);
            p.ready_rd = -1;
            h.ev_.ready(p.index, Reason::ready_fd);
            return;
        }
        h.reactor_.read(o, p.ready_rd, p.ready_buf, sizeof p.ready_buf);
        return;
    }
    // EOF (the service closed it without a newline), cancelled, or failed:
    // no readiness from here; ready_timeout decides.
    if (p.ready_rd >= 0) {
        ::close(p.ready_rd);
        p.ready_rd = -1;
    }
}

void host::drain_if_blocked() noexcept {
    if (drain_blocked_) {
        drain_children();
    }
}

void host::drain_children() noexcept {
    if (cfg_.reap_orphans) {
        drain_all();
    } else {
        drain_started();
    }
}

// Reaps every child that has exited and is not watched by its own op. Peek
// first (WNOWAIT): if the first zombie is such a process, stop here; its
// watcher reaps it and calls this again.
void host::drain_all() noexcept {
    drain_blocked_ = false;
    for (;;) {
        siginfo_t si{};
        if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) {
            return;
        }
        std::uint32_t i = find_by_pid(si.si_pid);
        if (i != UINT32_MAX && procs_[i].exit_op.busy()) {
            drain_blocked_ = true;
            return;
        }
        bool child_watched = false;
        const bool child = ev_.claims_child(si.si_pid, &child_watched);
        if (child && child_watched) {
            drain_blocked_ = true; // an exec check's own waitid reaps it
            return;
        }
        siginfo_t reaped{};
        if (::waitid(P_PID, static_cast<id_t>(si.si_pid), &reaped, WEXITED | WNOHANG) != 0) {
            return;
        }
        if (i != UINT32_MAX) {
            exited(procs_[i], reaped);
        } else if (child) {
            ev_.child_exited(si.si_pid, reaped);
        } else {
            ++stats_.orphans_reaped;
        }
    }
}

// Reaps only the processes this host started or follows, each by its pid:
// any other child is the embedding program's to wait for. Nothing blocks
// here (no peek at a shared queue), so drain_blocked_ stays false. Repeats
// while a pass reaped something: an exit can start or follow another
// process that may already be gone.
void host::drain_started() noexcept {
    drain_blocked_ = false;
    for (bool again = true; again;) {
        again = false;
        for (std::uint32_t i = 0; i < count_; ++i) {
            proc& p = procs_[i];
            if (p.pid <= 0 || p.exit_op.busy()) {
                continue;
            }
            siginfo_t si{};
            if (::waitid(P_PID, static_cast<id_t>(p.pid), &si, WEXITED | WNOHANG) == 0 &&
                si.si_pid != 0) {
                exited(p, si);
                again = true;
            }
        }
        const std::uint32_t slots = ev_.child_slots();
        for (std::uint32_t k = 0; k < slots; ++k) {
            bool watched = false;
            const int pid = ev_.child_at(k, &watched);
            if (pid <= 0 || watched) {
                continue;
            }
            siginfo_t si{};
            if (::waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG) == 0 &&
                si.si_pid != 0) {
                ev_.child_exited(pid, si);
                again = true;
            }
        }
    }
}

void host::on_sigchld(io::op& o, std::int32_t result) noexcept {
    host& h = *static_cast<host*>(o.user);
    if (result < 0 && result != -EAGAIN && result != -EINTR) {
        return; // the signalfd failed: exits still arrive through pidfds
    }
    h.drain_children();
    h.remnants_left(); // forget the groups that are gone
    if (h.use_cgroups_) {
        (void)h.cgroups_.sweep(); // vacated cgroups whose last processes just died
    }
    h.reactor_.read(o, h.chld_fd_, &h.chld_buf_, sizeof h.chld_buf_);
}

int host::pid(std::uint32_t i) const noexcept {
    return i < count_ ? procs_[i].pid : 0;
}

void host::remove_runtime_dir(std::uint32_t i) noexcept {
    if (i < count_ && procs_[i].runtime_dir != nullptr) {
        stats_.runtime_dir_leftovers += process::remove_runtime_dir(procs_[i].runtime_dir);
    }
}

void host::remove_runtime_dirs() noexcept {
    for (std::uint32_t i = 0; procs_ != nullptr && i < count_; ++i) {
        remove_runtime_dir(i);
    }
}

int host::channel_fd(std::uint32_t i) const noexcept {
    return i < count_ ? procs_[i].channel : -1;
}

const char* exit_watch_name(spawn_method m, bool native_waitid) noexcept {
    if (m == spawn_method::vfork) {
        return "SIGCHLD signalfd + waitid";
    }
    return native_waitid ? "io_uring waitid" : "pidfd poll + waitid";
}

const char* host::exit_watch_name() const noexcept {
    return process::exit_watch_name(spawner_.method(), reactor_.native_waitid());
}

const char* host::spawn_method_name() const noexcept {
    return process::spawn_method_name(spawner_.method());
}

notify_socket* host::free_socket() noexcept {
    for (std::uint32_t k = 0; notify_ != nullptr && k < sockets_; ++k) {
        notify_socket& s = notify_[k];
        if (s.is_open() || s.busy()) {
            continue; // a slot's, or still closing
        }
        bool taken = false;
        for (std::uint32_t i = 0; i < count_ && !taken; ++i) {
            taken = procs_[i].notify == &s; // laid out for a socket contain() opens
        }
        if (!taken) {
            return &s;
        }
    }
    return nullptr;
}

Result<void> host::redefine(std::uint32_t i, const launch& l) noexcept {
    if (i >= count_ || procs_ == nullptr) {
        return fail(Reason::invalid_argument, 0, l.name);
    }
    proc& p = procs_[i];
    if (p.occupied && p.name != l.name) {
        return fail(Reason::invalid_argument, 0, l.name); // another service's slot
    }
    if (use_cgroups_) {
        (void)cgroups_.sweep(); // what earlier vacates could not remove yet
    }
    // Measured (and checked) before anything is touched.
    const bool keep_rundir = p.occupied && p.runtime_dir != nullptr;
    exec_data x;
    arena count;
    if (auto r = lay_exec(l, count, keep_rundir, x);
        !r && r.error().reason() != Reason::capacity_exceeded) {
        return fail(r.error());
    }
    if (count.needed() > p.room_bytes) {
        char subject[Error::subject_capacity + 1];
        std::snprintf(subject, sizeof subject, "%.*s: exec data of %zu bytes, room for %zu",
                      static_cast<int>(l.name.size()), l.name.data(), count.needed(), p.room_bytes);
        return fail(Reason::reload_capacity, 0, subject);
    }
    // Its notify socket, when it gains one.
    notify_socket* sock = nullptr;
    if (l.notify && p.notify == nullptr) {
        if (!reloadable_) {
            char subject[Error::subject_capacity + 1];
            std::snprintf(subject, sizeof subject, "%.*s: no notify socket laid out",
                          static_cast<int>(l.name.size()), l.name.data());
            Error e(Reason::reload_capacity, 0, subject);
            e.with_resolution("Set service_slots and restart custos: without slots, init lays "
                              "out notify sockets only for the services that had notify");
            return fail(e);
        }
        sock = free_socket();
        if (sock == nullptr) {
            bool closing = false;
            for (std::uint32_t k = 0; k < sockets_; ++k) {
                closing = closing || notify_[k].busy();
            }
            if (!closing) {
                char subject[Error::subject_capacity + 1];
                std::snprintf(subject, sizeof subject, "%.*s: all %u notify sockets in use",
                              static_cast<int>(l.name.size()), l.name.data(), sockets_);
                return fail(Reason::reload_capacity, 0, subject);
            }
            Error e(Reason::notify_socket_unavailable, EBUSY, l.name);
            e.with_resolution("Reload again in a moment: the sockets of removed services are "
                              "still closing");
            return fail(e);
        }
        char where[sizeof(sockaddr_un::sun_path)];
        (void)notify_dir_.address(l.name, where, sizeof where); // checked by lay_exec
        if (auto r = sock->open(where); !r) {
            return fail(r.error());
        }
    }
    // A new service's cgroup, as contain() makes one (what a previous run
    // left in it is killed).
    const bool new_cgroup = !p.occupied && use_cgroups_ && p.cg_slot >= 0;
    if (new_cgroup) {
        auto r = cgroups_.assign(static_cast<std::uint32_t>(p.cg_slot), l.name);
        if (!r) {
            if (sock != nullptr) {
                sock->close();
            }
            return fail(r.error());
        }
        stats_.leftovers_killed += static_cast<std::uint64_t>(*r);
    }
    if (!p.occupied && l.runtime_dir) {
        if (auto r = open_runtime_root(cfg_.runtime_dir_root); !r) {
            if (sock != nullptr) {
                sock->close();
            }
            if (new_cgroup) {
                cgroups_.release(static_cast<std::uint32_t>(p.cg_slot));
            }
            return fail(r.error());
        }
    }
    arena room(p.room, p.room_bytes);
    if (auto r = lay_exec(l, room, keep_rundir, x); !r) {
        // Measured above: only an environment changed meanwhile (by
        // another thread, which is undefined anyway) gets here. The room
        // is rewritten: the slot can no longer spawn its old definition.
        if (sock != nullptr) {
            sock->close();
        }
        p.path = nullptr;
        return fail(r.error());
    }
    const bool was_vacant = !p.occupied;
    define(p, l, x);
    if (was_vacant && p.runtime_dir != nullptr) {
        // Not this run's: a directory of that name is a previous run's.
        stats_.runtime_dir_leftovers += process::remove_runtime_dir(p.runtime_dir);
    }
    if (sock != nullptr) {
        p.notify = sock;
        if (started_) {
            sock->start(reactor_, this, *notify_bufs_, i, &fd_closer::process());
        }
    }
    return {};
}

void host::vacate(std::uint32_t i) noexcept {
    if (i >= count_ || procs_ == nullptr || !procs_[i].occupied || procs_[i].pid > 0) {
        return; // vacant already, or a process still runs (not to be vacated yet)
    }
    proc& p = procs_[i];
    if (p.notify != nullptr) {
        p.notify->close(); // removes its file; the object serves another slot later
        p.notify = nullptr;
    }
    if (use_cgroups_ && p.cg_slot >= 0) {
        cgroups_.release(static_cast<std::uint32_t>(p.cg_slot));
    }
    if (p.runtime_dir != nullptr) {
        stats_.runtime_dir_leftovers += process::remove_runtime_dir(p.runtime_dir);
    }
    if (pid_rec_.is_open()) {
        (void)pid_rec_.clear(i); // cleared at the exit already; a failed write retried
    }
    // The next service in this slot gets pipes of its own: nothing this
    // one's remnants write can be taken for its output.
    close_output(p, false);
    p.output_bytes = 0;
    p.occupied = false;
    p.make_rundir = false;
    p.path = nullptr;
    p.argv = nullptr;
    p.envp = nullptr;
    p.wd_pid_slot = nullptr;
    p.cwd = nullptr;
    p.runtime_dir = nullptr;
    p.uid = -1;
    p.gid = -1;
    p.name = {};
    p.main_pid = 0;
    p.ready_mode = ReadyMode::started;
    p.ready_fd = -1;
    p.channel_fd = -1;
    p.output = OutputMode::automatic;
    p.status_text[0] = '\0';
    p.status_len = 0;
    p.notify_errno = 0;
}

bool host::vacant(std::uint32_t i) const noexcept {
    return i >= count_ || procs_ == nullptr || !procs_[i].occupied;
}

} // namespace custos::process
