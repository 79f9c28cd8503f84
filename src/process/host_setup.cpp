// process::host at init: opening the instance, laying out the processes,
// the child watch and containment (cgroups or the pid record), and the
// description of what was chosen (see host.hpp). Running them is in
// host.cpp, the notify side in host_notify.cpp.
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
    return {};
}

Result<void> host::init_spawner() noexcept {
    return spawner_.init();
}

Result<void> host::layout(std::span<const launch> services, arena& mem, std::uint32_t slots,
                          std::size_t slot_bytes) noexcept {
    (void)slots; // TODO(reload): slots
    (void)slot_bytes;
    count_ = static_cast<std::uint32_t>(services.size());
    procs_ = mem.make_array<proc>(count_);
    bool ok = procs_ != nullptr;
    sockets_ = 0;
    for (const launch& l : services) {
        sockets_ += l.notify ? 1 : 0;
    }
    if (sockets_ != 0) {
        notify_bufs_ =
            static_cast<notify_buffers*>(mem.take(sizeof(notify_buffers), alignof(notify_buffers)));
        notify_ = mem.make_array<notify_socket>(sockets_);
        ok = ok && notify_bufs_ != nullptr && notify_ != nullptr;
    }
    std::uint32_t next_socket = 0;
    for (std::uint32_t i = 0; i < count_; ++i) {
        const launch& l = services[i];
        char* path = mem.copy(l.path);
        char* name = mem.copy(l.name);
        auto argv = build_argv(mem, l.argv);
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
        if (l.runtime_dir) {
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
            ours[nours++] = std::string_view(rundir_env, need);
            rundir = mem.copy(std::string_view(rundir_env + key.size(), need - key.size()));
        }
        env_spec es;
        es.inherited = environ;
        es.service = l.env;
        es.custos = std::span<const std::string_view>(ours, nours);
        es.watchdog_pid = l.watchdog.count() > 0;
        auto env = build_env(mem, es);
        char* cwd = l.cwd.empty() ? nullptr : mem.copy(l.cwd);
        if (!argv && argv.error().reason() != Reason::capacity_exceeded) {
            return fail(argv.error());
        }
        if (!env && env.error().reason() != Reason::capacity_exceeded) {
            return fail(env.error());
        }
        ok = ok && path != nullptr && name != nullptr && argv.has_value() && env.has_value() &&
             (l.cwd.empty() || cwd != nullptr) && (!l.runtime_dir || rundir != nullptr);
        if (!ok) {
            continue;
        }
        proc& p = procs_[i];
        p.path = path;
        p.argv = *argv;
        p.envp = env->envp;
        p.wd_pid_slot = env->watchdog_pid_slot;
        p.cwd = cwd;
        p.runtime_dir = rundir;
        p.uid = l.uid;
        p.gid = l.gid;
        p.ready_mode = l.ready;
        p.ready_fd = l.ready_fd;
        p.channel_fd = l.channel_fd;
        p.name = std::string_view(name, l.name.size());
        if (l.notify && notify_ != nullptr) {
            p.notify = &notify_[next_socket++];
        }
        p.owner = this;
        p.index = i;
        p.exit_op.done = &host::on_exit_op;
        p.exit_op.user = &p;
        p.ready_op.done = &host::on_ready_read;
        p.ready_op.user = &p;
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
    if (sockets_ != 0) {
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
            auto slot = cgroups_.add(procs_[i].name);
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
