// process::host at init: opening the instance, laying out the processes,
// the child watch and containment (cgroups or the pid record), and the
// description of what was chosen (see host.hpp). Running them is in
// host.cpp, the notify side in host_notify.cpp, the captured output in
// host_output.cpp.
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
#include "process/host.hpp"
#include "process/host_proc.hpp"
#include "process/procfs.hpp"
#include "process/runtime_dir.hpp"

namespace custos::process {
Result<void> host::open(const host_config& cfg) noexcept {
    cfg_ = cfg;
    if (!cfg_.notify_dir.empty()) {
        // The directory is the instance's even when no service uses notify
        // (custosd keeps its pid record there).
        if (auto r = notify_dir_.open(cfg_.notify_dir); !r) {
            return fail(r.error());
        }
    }
    // For output = null, whatever the table says now: a reload may add
    // such a service.
    if (devnull_ < 0) {
        devnull_ = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull_ < 0) {
            return fail(Reason::spawn_failed, errno, "/dev/null");
        }
        if (devnull_ < 3) {
            // Never one of the numbers the child dups onto (spawn_request).
            int moved = ::fcntl(devnull_, F_DUPFD_CLOEXEC, 3);
            int err = errno;
            ::close(devnull_);
            devnull_ = moved;
            if (moved < 0) {
                return fail(Reason::spawn_failed, err, "/dev/null");
            }
        }
    }
    return {};
}

Result<void> host::init_spawner() noexcept {
    return spawner_.init();
}

// Lays out `l`'s exec data in `s`: path, name, argv, envp (with custos's
// entries), cwd and the runtime directory's path (also when `keep_rundir`:
// a redefine that drops it keeps the path for the running process's stop).
// A counting arena measures (capacity_exceeded, s.needed() the size) and
// checks everything else first. Errors: NotifySocketUnavailable (DIR/NAME
// too long, or no notify_dir), RuntimeDirUnavailable (no or too long
// runtime_dir_root), build_argv's and build_env's.
Result<void> host::lay_exec(const launch& l, arena& s, bool keep_rundir,
                            exec_data& out) const noexcept {
    out = exec_data{};
    char* path = s.copy(l.path);
    char* name = s.copy(l.name);
    auto argv = build_argv(s, l.argv);
    // custos's own entries for this service.
    char wd_usec[48] = {};
    char notify_env[sizeof(sockaddr_un::sun_path) + 16] = {};
    char rundir_env[320] = {};
    std::string_view ours[3];
    std::size_t nours = 0;
    if (l.notify) {
        std::memcpy(notify_env, "NOTIFY_SOCKET=", 14);
        if (!notify_dir_.address(l.name, notify_env + 14, sizeof notify_env - 14)) {
            Error e(Reason::notify_socket_unavailable, ENAMETOOLONG, l.name);
            e.with_resolution("Use a shorter notify_dir or service name: DIR/NAME must fit "
                              "a socket address (107 bytes)");
            return fail(e);
        }
        ours[nours++] = notify_env;
    }
    if (l.watchdog.count() > 0) {
        long long usec = static_cast<long long>(
            std::chrono::duration_cast<std::chrono::microseconds>(l.watchdog).count());
        int n = std::snprintf(wd_usec, sizeof wd_usec, "WATCHDOG_USEC=%lld", usec);
        ours[nours++] = std::string_view(wd_usec, static_cast<std::size_t>(n));
    }
    char* rundir = nullptr;
    if (l.runtime_dir || keep_rundir) {
        constexpr std::string_view key = "RUNTIME_DIRECTORY=";
        const std::size_t need = key.size() + cfg_.runtime_dir_root.size() + 1 + l.name.size();
        if (cfg_.runtime_dir_root.empty() || need + 1 > sizeof rundir_env) {
            Error e(Reason::runtime_dir_unavailable,
                    cfg_.runtime_dir_root.empty() ? EINVAL : ENAMETOOLONG, l.name);
            e.with_resolution("Set runtime_dir_root to a short absolute directory: a "
                              "service asks for a runtime directory ROOT/NAME");
            return fail(e);
        }
        std::memcpy(rundir_env, key.data(), key.size());
        std::memcpy(rundir_env + key.size(), cfg_.runtime_dir_root.data(),
                    cfg_.runtime_dir_root.size());
        rundir_env[key.size() + cfg_.runtime_dir_root.size()] = '/';
        std::memcpy(rundir_env + key.size() + cfg_.runtime_dir_root.size() + 1, l.name.data(),
                    l.name.size());
        rundir_env[need] = '\0';
        if (l.runtime_dir) {
            ours[nours++] = std::string_view(rundir_env, need);
        }
        rundir = s.copy(std::string_view(rundir_env + key.size(), need - key.size()));
    }
    env_spec es;
    es.inherited = environ;
    es.service = l.env;
    es.custos = std::span<const std::string_view>(ours, nours);
    es.watchdog_pid = l.watchdog.count() > 0;
    auto env = build_env(s, es);
    char* cwd = l.cwd.empty() ? nullptr : s.copy(l.cwd);
    if (!argv && argv.error().reason() != Reason::capacity_exceeded) {
        return fail(argv.error());
    }
    if (!env && env.error().reason() != Reason::capacity_exceeded) {
        return fail(env.error());
    }
    if (path == nullptr || name == nullptr || !argv || !env || (!l.cwd.empty() && cwd == nullptr) ||
        (rundir_env[0] != '\0' && rundir == nullptr)) {
        return fail(Reason::capacity_exceeded, 0, l.name);
    }
    out.path = path;
    out.name = name;
    out.argv = *argv;
    out.envp = env->envp;
    out.wd_pid_slot = env->watchdog_pid_slot;
    out.cwd = cwd;
    out.runtime_dir = rundir;
    return {};
}

// Points slot `p` at `x` (laid out in its room) for definition `l`.
void host::define(proc& p, const launch& l, const exec_data& x) noexcept {
    p.path = x.path;
    p.argv = x.argv;
    p.envp = x.envp;
    p.wd_pid_slot = x.wd_pid_slot;
    p.cwd = x.cwd;
    p.runtime_dir = x.runtime_dir;
    p.make_rundir = l.runtime_dir;
    p.uid = l.uid;
    p.gid = l.gid;
    p.ready_mode = l.ready;
    p.ready_fd = l.ready_fd;
    p.channel_fd = l.channel_fd;
    p.output = l.output;
    p.name = std::string_view(x.name, l.name.size());
    p.occupied = true;
}

Result<void> host::layout(std::span<const launch> services, arena& mem, std::uint32_t slots,
                          std::size_t slot_bytes) noexcept {
    const auto defined = static_cast<std::uint32_t>(services.size());
    reloadable_ = slots != 0;
    count_ = slots > defined ? slots : defined;
    procs_ = mem.make_array<proc>(count_);
    bool ok = procs_ != nullptr;
    // A socket per service that asks for one. With slots, also one per
    // vacant slot and two spares: a changed service may gain notify, and a
    // slot vacated a moment ago may still be closing its socket (through
    // the reactor) when a reload gives the slot, or another, to a new
    // service. (One per slot would cost ~47 KiB, resident, at 64 slots.)
    sockets_ = 0;
    for (const launch& l : services) {
        sockets_ += l.notify ? 1 : 0;
    }
    if (reloadable_) {
        sockets_ += count_ - defined + 2;
    }
    if (sockets_ != 0) {
        notify_bufs_ =
            static_cast<notify_buffers*>(mem.take(sizeof(notify_buffers), alignof(notify_buffers)));
        notify_ = mem.make_array<notify_socket>(sockets_);
        ok = ok && notify_bufs_ != nullptr && notify_ != nullptr;
    }
    // Every slot copies the environment custos inherits: slot_bytes is for
    // the rest (the definition's own argv, env, paths), so the room does
    // not depend on how large the environment custos was started with is.
    std::size_t inherited = 0;
    if (slot_bytes != 0) {
        env_spec es;
        es.inherited = environ;
        arena count;
        (void)build_env(count, es);
        inherited = count.needed();
    }
    const std::size_t least = slot_bytes != 0 ? slot_bytes + inherited : 0;
    // Every slot's two output buffers in one page-aligned block, unzeroed:
    // the pages of a slot that never captures are never touched, so never
    // resident.
    auto* out_bufs = static_cast<char*>(
        mem.take_unzeroed(std::size_t{count_} * 2 * output_buffer, output_buffer));
    ok = ok && (count_ == 0 || out_bufs != nullptr);
    std::uint32_t next_socket = 0;
    for (std::uint32_t i = 0; i < count_; ++i) {
        // Each slot's room: a vacant one slot_bytes beyond the inherited
        // environment; measured first (the counting arena checks
        // everything).
        std::size_t need = 0;
        exec_data x;
        if (i < defined) {
            arena count;
            auto r = lay_exec(services[i], count, false, x);
            if (!r && r.error().reason() != Reason::capacity_exceeded) {
                return fail(r.error());
            }
            need = count.needed();
        }
        // A table's service: its size and a quarter of slot_bytes for a
        // changed definition to grow into (the pages written at init are
        // resident: a full slot_bytes more each cost ~120 KiB at 64).
        const std::size_t room_bytes = i < defined ? need + slot_bytes / 4 : least;
        // Unzeroed: written before read, a vacant slot's pages stay out of
        // the resident set until a reload fills them.
        void* room = room_bytes != 0 ? mem.take_unzeroed(room_bytes) : nullptr;
        ok = ok && (room_bytes == 0 || room != nullptr);
        if (!ok) {
            continue;
        }
        proc& p = procs_[i];
        p.room = room;
        p.room_bytes = room_bytes;
        p.owner = this;
        p.index = i;
        p.exit_op.done = &host::on_exit_op;
        p.exit_op.user = &p;
        p.ready_op.done = &host::on_ready_read;
        p.ready_op.user = &p;
        for (int k = 0; k < 2; ++k) {
            out_stream& o = p.out[k];
            o.stream = k + 1;
            o.owner = &p;
            o.buf = out_bufs + (std::size_t{i} * 2 + static_cast<std::size_t>(k)) * output_buffer;
            o.op.done = &host::on_output_read;
            o.op.user = &o;
            // Always in flight, never to be refused for max_ops (the
            // runtime counts them in max_fds).
            io::reactor::make_internal(o.op);
        }
        if (i >= defined) {
            continue; // vacant
        }
        const launch& l = services[i];
        arena real(room, room_bytes);
        if (auto r = lay_exec(l, real, false, x); !r) {
            return fail(r.error()); // measured above: the environment changed meanwhile
        }
        define(p, l, x);
        if (l.notify && notify_ != nullptr) {
            p.notify = &notify_[next_socket++];
        }
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime arena");
    }
    return {};
}

Result<void> host::watch_children() noexcept {
    // SIGCHLD: must not be ignored (the kernel would reap for us and
    // waitid would find nothing), and is taken through a signalfd.
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGCHLD, &sa, nullptr);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGCHLD);
    ::pthread_sigmask(SIG_BLOCK, &only, nullptr);
    chld_fd_ = ::signalfd(-1, &only, SFD_NONBLOCK | SFD_CLOEXEC);
    if (chld_fd_ < 0) {
        return fail(Reason::signalfd_unavailable, errno, "SIGCHLD");
    }
    if (cfg_.reap_orphans) {
        // Orphaned grandchildren come to us, not to init: reaped, never
        // zombies. Refused by qemu-user (EINVAL): not fatal, but said in
        // describe().
        subreaper_errno_ = ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : errno;
    }
    return {};
}

Result<void> host::contain(std::uint32_t extra_units) noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        proc& p = procs_[i];
        if (p.notify == nullptr) {
            continue;
        }
        char where[sizeof(sockaddr_un::sun_path)];
        (void)notify_dir_.address(p.name, where, sizeof where); // checked in layout()
        if (auto r = p.notify->open(where); !r) {
            return fail(r.error());
        }
    }
    // The closer thread only for a table with notify sockets: a socket a
    // reload adds to a process without one closes what it receives on the
    // loop instead (as when the closer is full: fds_closed_inline), which
    // saves the thread (~30 KiB resident) on every reload-ready host.
    bool any_socket = false;
    for (std::uint32_t i = 0; i < count_; ++i) {
        any_socket = any_socket || procs_[i].notify != nullptr;
    }
    if (any_socket) {
        if (auto r = fd_closer::process().start(); !r) {
            return fail(r.error());
        }
    }
    bool root_open = false;
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (procs_[i].runtime_dir == nullptr) {
            continue;
        }
        if (!root_open) {
            if (auto r = open_runtime_root(cfg_.runtime_dir_root); !r) {
                return fail(r.error());
            }
            root_open = true;
        }
        // What a previous run (a crashed custos) left is not this run's.
        stats_.runtime_dir_leftovers += process::remove_runtime_dir(procs_[i].runtime_dir);
    }
    const bool off = cfg_.cgroup == "off";
    const bool explicit_root = !off && !cfg_.cgroup.empty();
    Error why;
    if (!off) {
        const std::uint32_t units = count_ + extra_units;
        auto r =
            cgroups_.open(explicit_root ? cfg_.cgroup : std::string_view(), units != 0 ? units : 1);
        bool ok = r.has_value();
        for (std::uint32_t i = 0; ok && i < count_; ++i) {
            // A vacant slot's unit gets its directory when a reload fills it.
            auto slot = procs_[i].occupied ? cgroups_.add(procs_[i].name) : cgroups_.add_vacant();
            if (!slot) {
                r = fail(slot.error());
                ok = false;
                break;
            }
            procs_[i].cg_slot = static_cast<int>(*slot);
        }
        if (ok) {
            r = ev_.attach_cgroups(cgroups_);
            ok = r.has_value();
        }
        if (!ok) {
            if (explicit_root) {
                return fail(r.error());
            }
            why = r.error(); // auto: fall back to process groups, and say why
            cgroups_.close();
            for (std::uint32_t i = 0; i < count_; ++i) {
                procs_[i].cg_slot = -1;
            }
        }
        use_cgroups_ = ok;
    }
    std::uint64_t killed = 0;
    std::size_t used = 0;
    auto note = [&](std::string_view name, int n) {
        if (n <= 0 || used + 1 >= sizeof leftovers_) {
            return;
        }
        int w = std::snprintf(leftovers_ + used, sizeof leftovers_ - used, "%s%.*s: %d",
                              used == 0 ? "killed what a previous run left: " : ", ",
                              static_cast<int>(name.size()), name.data(), n);
        used += w > 0 ? static_cast<std::size_t>(w) : 0;
        used = used < sizeof leftovers_ ? used : sizeof leftovers_ - 1;
    };
    if (use_cgroups_) {
        auto report = [&](const cgroup_tree::leftover& l) {
            killed += static_cast<std::uint64_t>(l.killed > 0 ? l.killed : 0);
            note(l.name, l.killed);
        };
        (void)cgroups_.reap_leftovers(report, std::chrono::milliseconds(2000));
        std::snprintf(containment_, sizeof containment_,
                      "each service in its own cgroup under %.150s", cgroups_.root_path().data());
    } else {
        if (!cfg_.pid_record.empty()) {
            char path[256];
            std::snprintf(path, sizeof path, "%.*s", static_cast<int>(cfg_.pid_record.size()),
                          cfg_.pid_record.data());
            if (auto r = pid_rec_.open(path, count_ != 0 ? count_ : 1); !r) {
                return fail(r.error());
            }
            auto report = [&](const pid_record::leftover& l) {
                killed += static_cast<std::uint64_t>(l.killed > 0 ? l.killed : 0);
                note(l.name, l.killed);
            };
            (void)pid_rec_.reap_leftovers(report);
        }
        char err[96] = {};
        if (!off) {
            why.format(err, sizeof err);
        }
        std::snprintf(containment_, sizeof containment_, "process groups only (%.96s)%s",
                      off ? "cgroup = off" : err, pid_rec_.is_open() ? ", pids recorded" : "");
    }
    stats_.leftovers_killed = killed;
    return {};
}

void host::describe(char* out, std::size_t cap) const noexcept {
    const char* subreaper = "";
    if (!cfg_.reap_orphans) {
        subreaper = "; not a subreaper (reap_orphans off)";
    } else if (subreaper_errno_ != 0) {
        subreaper = "; not a subreaper (orphans go to init): ";
    }
    std::snprintf(out, cap, "%s%s; %s%s%s", subreaper,
                  subreaper_errno_ != 0 ? std::strerror(subreaper_errno_) : "", containment_,
                  leftovers_[0] != '\0' ? "; " : "", leftovers_);
}

} // namespace custos::process
