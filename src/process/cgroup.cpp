// The cgroup tree (see cgroup.hpp for what it owns and its invariants).
// Finding where its root is, is in cgroup_root.cpp.
#include "process/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "process/cgroup_root.hpp"
#include "process/procfs.hpp"

namespace custos::process {
namespace {

using cgroup_root::not_cgroup2;
using cgroup_root::resolve_auto;
using cgroup_root::resolve_explicit;
using cgroup_root::root_paths;
using cgroup_root::unavailable;
using cgroup_root::unified_path;

bool on_cgroup2(int fd) noexcept {
    struct statfs sf {};
    return ::fstatfs(fd, &sf) == 0 && static_cast<unsigned long>(sf.f_type) == CGROUP2_SUPER_MAGIC;
}

bool events_populated(int events_fd) noexcept {
    char buf[256];
    long n = procfs::pread_all(events_fd, buf, sizeof buf);
    if (n <= 0) {
        return false;
    }
    std::string_view t(buf, static_cast<std::size_t>(n));
    std::size_t at = t.find("populated ");
    return at != std::string_view::npos && (at == 0 || t[at - 1] == '\n') &&
           t.substr(at + 10, 1) == "1";
}

std::int64_t now_ms() noexcept {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int write_one(int fd) noexcept {
    ssize_t n;
    do {
        n = ::write(fd, "1", 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : (n < 0 ? errno : EIO);
}

bool name_ok(std::string_view name) noexcept {
    return !name.empty() && name.size() <= cgroup_tree::name_capacity && name != "." &&
           name != ".." && name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos && name.substr(0, 7) != "cgroup.";
}

// Sends sig (0: count only) to each pid of the cgroup.procs under dir_fd,
// reading it in 512-byte chunks with a carried-over partial line, so any
// number of pids fits. Returns the number found, or -errno.
int signal_procs(int dir_fd, int sig) noexcept {
    int fd = ::openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    const int self = static_cast<int>(::getpid());
    char buf[512];
    std::size_t have = 0;
    int count = 0;
    int err = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = errno;
            break;
        }
        have += static_cast<std::size_t>(n);
        std::size_t start = 0;
        for (std::size_t i = 0; i < have; ++i) {
            if (buf[i] != '\n' && !(n == 0 && i + 1 == have)) {
                continue;
            }
            std::size_t end = buf[i] == '\n' ? i : i + 1;
            std::uint64_t pid = 0;
            if (procfs::parse_u64(std::string_view(buf + start, end - start), pid) && pid > 0 &&
                pid <= INT_MAX && static_cast<int>(pid) != self) {
                if (sig == 0 || ::kill(static_cast<pid_t>(pid), sig) == 0) {
                    ++count;
                } else if (errno != ESRCH && err == 0) {
                    err = errno;
                }
            }
            start = i + 1;
        }
        if (n == 0) {
            break;
        }
        std::memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf) {
            have = 0; // no pid is 512 digits long: garbage, drop it
        }
    }
    ::close(fd);
    if (count == 0 && err != 0) {
        return -err;
    }
    return count;
}

// SIGKILLs what dir_fd holds (through kill_fd when >= 0) until events_fd
// says empty or the deadline passes. Returns what the first round found,
// -ETIMEDOUT, or -errno.
int kill_dir_until_empty(int dir_fd, int kill_fd, int events_fd, std::int64_t deadline) noexcept {
    int first = -1;
    for (;;) {
        int n = signal_procs(dir_fd, kill_fd >= 0 ? 0 : SIGKILL);
        if (kill_fd >= 0) {
            if (int e = write_one(kill_fd); e != 0) {
                return -e;
            }
        }
        if (first < 0) {
            if (n < 0) {
                return n;
            }
            first = n;
        }
        if (!events_populated(events_fd)) {
            return first;
        }
        std::int64_t left = deadline - now_ms();
        if (left <= 0) {
            return -ETIMEDOUT;
        }
        // The kernel flags cgroup.events (POLLPRI|POLLERR) at every change
        // since our last read; the 20 ms cap re-kills what the pid path
        // missed (a fork between reading cgroup.procs and the kill).
        struct pollfd p {
            events_fd, POLLPRI, 0
        };
        ::poll(&p, 1, static_cast<int>(left < 20 ? left : 20));
    }
}

} // namespace

Result<void> cgroup_tree::open(std::string_view root, std::uint32_t max_units) noexcept {
    if (is_open() || max_units == 0 || (!root.empty() && root.front() != '/') ||
        root.size() >= PATH_MAX) {
        return fail(Reason::invalid_argument, 0, root.empty() ? "cgroup root" : root);
    }
    root_paths r;
    if (root.empty()) {
        if (auto ok = resolve_auto(r); !ok) {
            return ok;
        }
        remove_root_ = true; // <own>/custos is ours whoever created it
    } else {
        r.path_len = root.size();
        while (r.path_len > 1 && root[r.path_len - 1] == '/') {
            --r.path_len;
        }
        std::memcpy(r.path, root.data(), r.path_len);
        r.path[r.path_len] = '\0';
        if (auto ok = resolve_explicit(r); !ok) {
            return ok;
        }
        remove_root_ = r.created;
    }
    const char* path = r.path;
    const std::size_t path_len = r.path_len;
    const bool created = r.created;

    auto undo = [&](int err) {
        if (root_fd_ >= 0) {
            ::close(root_fd_);
            root_fd_ = -1;
        }
        if (created) {
            ::rmdir(path);
        }
        remove_root_ = false;
        return unavailable(err, std::string_view(path, path_len));
    };
    root_fd_ = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd_ < 0) {
        return undo(errno);
    }
    if (!on_cgroup2(root_fd_)) {
        (void)undo(ENOTSUP);
        return not_cgroup2(std::string_view(path, path_len));
    }
    // One custos per root: a second one would count the first one's
    // processes as leftovers and kill them. Released when root_fd_ closes.
    if (::flock(root_fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        ::close(root_fd_);
        root_fd_ = -1;
        remove_root_ = false; // the holder's, not ours to remove
        Error e(Reason::instance_running, err, std::string_view(path, path_len));
        e.with_resolution("Another custos instance uses this cgroup: stop it first, or give "
                          "this one its own cgroup = PATH");
        return fail(e);
    }

    // One block: the units, then the two paths.
    std::size_t bytes = sizeof(unit) * max_units + alignof(unit) + path_len + 1 + r.rel_len + 1;
    if (!mem_.reserve(bytes)) {
        (void)undo(ENOMEM);
        return fail(Reason::out_of_memory, ENOMEM, "cgroup tree");
    }
    units_ = mem_.make_array<unit>(max_units);
    root_path_ = mem_.copy(std::string_view(path, path_len));
    rel_path_ = mem_.copy(std::string_view(r.rel, r.rel_len));
    root_len_ = path_len;
    rel_len_ = r.rel_len;
    cap_ = max_units;
    count_ = 0;
    return {};
}

bool cgroup_tree::check_name(std::string_view name, Error& why) const noexcept {
    if (!name_ok(name)) {
        why = Error(Reason::name_invalid, 0, name);
        why.with_resolution("Give the unit a name of 1-63 characters without '/', other than '.' "
                            "and '..', not starting with 'cgroup.'");
        return false;
    }
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (this->name(i) == name) {
            why = Error(Reason::name_duplicate, 0, name);
            return false;
        }
    }
    return true;
}

Result<void> cgroup_tree::open_unit(unit& u, std::string_view name) noexcept {
    std::memcpy(u.name, name.data(), name.size());
    u.name[name.size()] = '\0';
    u.name_len = static_cast<std::uint8_t>(name.size());
    auto undo = [&](int err) {
        for (int* fd : {&u.dir, &u.procs, &u.kill, &u.events}) {
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
        }
        return unavailable(err, name);
    };
    if (::mkdirat(root_fd_, u.name, 0755) != 0 && errno != EEXIST) {
        return undo(errno);
    }
    u.dir = ::openat(root_fd_, u.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (u.dir < 0) {
        return undo(errno);
    }
    u.procs = ::openat(u.dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    if (u.procs < 0) {
        return undo(errno);
    }
    u.events = ::openat(u.dir, "cgroup.events", O_RDONLY | O_CLOEXEC);
    if (u.events < 0) {
        return undo(errno);
    }
    if (opts_.use_cgroup_kill) {
        u.kill = ::openat(u.dir, "cgroup.kill", O_WRONLY | O_CLOEXEC);
        if (u.kill < 0 && errno != ENOENT) { // ENOENT: before 5.14
            return undo(errno);
        }
    }
    return {};
}

Result<std::uint32_t> cgroup_tree::add(std::string_view name) noexcept {
    if (!is_open()) {
        return fail(Reason::invalid_argument, 0, "cgroup tree not open");
    }
    Error why;
    if (!check_name(name, why)) {
        return fail(why);
    }
    if (count_ == cap_) {
        return fail(Reason::capacity_exceeded, 0, "cgroup units");
    }
    if (auto r = open_unit(units_[count_], name); !r) {
        return fail(r.error());
    }
    return count_++;
}

Result<std::uint32_t> cgroup_tree::add_vacant() noexcept {
    if (!is_open()) {
        return fail(Reason::invalid_argument, 0, "cgroup tree not open");
    }
    if (count_ == cap_) {
        return fail(Reason::capacity_exceeded, 0, "cgroup units");
    }
    units_[count_].vacant = true;
    return count_++;
}

Result<int> cgroup_tree::assign(std::uint32_t slot, std::string_view name) noexcept {
    if (!is_open() || slot >= count_ || !units_[slot].vacant) {
        return fail(Reason::invalid_argument, 0, name);
    }
    Error why;
    if (!check_name(name, why)) {
        return fail(why);
    }
    unit& u = units_[slot];
    if (u.pending) {
        // The last chance for the previous name's directory: its dying
        // processes have had a reload's time. Left behind when still busy
        // (the next start's reap_leftovers() removes it).
        (void)::unlinkat(root_fd_, u.name, AT_REMOVEDIR);
        u.pending = false;
        --pending_;
    }
    if (auto r = open_unit(u, name); !r) {
        u.name_len = 0;
        u.name[0] = '\0';
        return fail(r.error());
    }
    u.vacant = false;
    int found = 0;
    if (events_populated(u.events)) {
        found = kill(slot, SIGKILL);
    }
    return found > 0 ? found : 0;
}

void cgroup_tree::release(std::uint32_t slot) noexcept {
    if (slot >= count_ || units_[slot].vacant) {
        return;
    }
    unit& u = units_[slot];
    if (events_populated(u.events)) {
        (void)kill(slot, SIGKILL);
    }
    for (int* fd : {&u.dir, &u.procs, &u.kill, &u.events}) {
        if (*fd >= 0) {
            ::close(*fd);
            *fd = -1;
        }
    }
    u.vacant = true;
    if (::unlinkat(root_fd_, u.name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
        u.name_len = 0;
        u.name[0] = '\0';
        return;
    }
    u.pending = true; // EBUSY: processes still dying in it
    ++pending_;
}

std::uint32_t cgroup_tree::sweep() noexcept {
    for (std::uint32_t i = 0; pending_ != 0 && i < count_; ++i) {
        unit& u = units_[i];
        if (u.pending && (::unlinkat(root_fd_, u.name, AT_REMOVEDIR) == 0 || errno == ENOENT)) {
            u.pending = false;
            u.name_len = 0;
            u.name[0] = '\0';
            --pending_;
        }
    }
    return pending_;
}

bool cgroup_tree::vacant(std::uint32_t slot) const noexcept {
    return slot < count_ && units_[slot].vacant;
}

int cgroup_tree::procs_fd(std::uint32_t slot) const noexcept {
    return slot < count_ ? units_[slot].procs : -1;
}

int cgroup_tree::kill(std::uint32_t slot, int sig) noexcept {
    if (slot >= count_ || units_[slot].vacant) {
        return -EINVAL;
    }
    const unit& u = units_[slot];
    if (sig == SIGKILL && u.kill >= 0) {
        int n = signal_procs(u.dir, 0);
        if (int e = write_one(u.kill); e != 0) {
            return -e;
        }
        return n < 0 ? 0 : n;
    }
    return signal_procs(u.dir, sig);
}

bool cgroup_tree::populated(std::uint32_t slot) const noexcept {
    return slot < count_ && events_populated(units_[slot].events);
}

int cgroup_tree::kill_until_empty(std::uint32_t slot, std::chrono::milliseconds limit) noexcept {
    if (slot >= count_ || units_[slot].vacant) {
        return -EINVAL;
    }
    const unit& u = units_[slot];
    return kill_dir_until_empty(u.dir, u.kill, u.events, now_ms() + limit.count());
}

bool cgroup_tree::contains(std::uint32_t slot, int pid) const noexcept {
    if (slot >= count_ || units_[slot].vacant || pid <= 0) {
        return false;
    }
    char path[32];
    procfs::pid_path(pid, "cgroup", path);
    char buf[PATH_MAX + 512];
    long len = procfs::read_file(AT_FDCWD, path, buf, sizeof buf);
    if (len <= 0) {
        return false;
    }
    std::string_view p = unified_path(std::string_view(buf, static_cast<std::size_t>(len)));
    std::string_view rel(rel_path_, rel_len_);
    std::string_view nm = name(slot);
    if (p.substr(0, rel.size()) != rel) {
        return false;
    }
    p.remove_prefix(rel.size());
    if (p.size() < 1 + nm.size() || p[0] != '/' || p.substr(1, nm.size()) != nm) {
        return false;
    }
    p.remove_prefix(1 + nm.size());
    return p.empty() || p[0] == '/';
}

Result<std::uint32_t> cgroup_tree::reap_leftovers(leftover_report report, void* ctx,
                                                  std::chrono::milliseconds limit_each) noexcept {
    if (!is_open()) {
        return fail(Reason::invalid_argument, 0, "cgroup tree not open");
    }
    std::uint32_t reaped = 0;
    int r = procfs::for_each_entry(root_fd_, [&](const char* nm, unsigned char type) {
        if (type != DT_DIR && type != DT_UNKNOWN) {
            return true;
        }
        int dir = ::openat(root_fd_, nm, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) {
            return true; // a file, or gone meanwhile
        }
        int events = ::openat(dir, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (events >= 0 && events_populated(events)) {
            int kfd =
                opts_.use_cgroup_kill ? ::openat(dir, "cgroup.kill", O_WRONLY | O_CLOEXEC) : -1;
            int n = kill_dir_until_empty(dir, kfd, events, now_ms() + limit_each.count());
            leftover l;
            l.name = nm;
            l.killed = n >= 0 ? n : 0;
            l.err = n >= 0 ? 0 : -n;
            if (n == -ETIMEDOUT) {
                // Report what was there even though some of it survives.
                int left = signal_procs(dir, 0);
                l.killed = left > 0 ? left : 0;
            }
            ++reaped;
            if (report != nullptr) {
                report(ctx, l);
            }
            if (kfd >= 0) {
                ::close(kfd);
            }
        }
        if (events >= 0) {
            ::close(events);
        }
        ::close(dir);
        return true;
    });
    if (r < 0) {
        return unavailable(-r, std::string_view(root_path_, root_len_));
    }
    // Removing entries while listing kernfs can skip some: list again until
    // a pass removes nothing (bounded).
    for (int pass = 0; pass < 4; ++pass) {
        int removed = 0;
        procfs::for_each_entry(root_fd_, [&](const char* nm, unsigned char type) {
            if (type != DT_DIR && type != DT_UNKNOWN) {
                return true;
            }
            for (std::uint32_t i = 0; i < count_; ++i) {
                if (name(i) == nm) {
                    return true;
                }
            }
            if (::unlinkat(root_fd_, nm, AT_REMOVEDIR) == 0) {
                ++removed;
            }
            return true;
        });
        if (removed == 0) {
            break;
        }
    }
    return reaped;
}

void cgroup_tree::close() noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        for (int* fd : {&u.dir, &u.procs, &u.kill, &u.events}) {
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
        }
        if (root_fd_ >= 0 && u.name_len != 0) {
            ::unlinkat(root_fd_, u.name, AT_REMOVEDIR); // EBUSY: still populated
        }
    }
    if (root_fd_ >= 0) {
        ::close(root_fd_);
        root_fd_ = -1;
        if (remove_root_) {
            ::rmdir(root_path_);
        }
    }
    remove_root_ = false;
    count_ = 0;
    cap_ = 0;
    pending_ = 0;
    units_ = nullptr;
    root_path_ = nullptr;
    rel_path_ = nullptr;
    root_len_ = 0;
    rel_len_ = 0;
}

std::string_view cgroup_tree::root_path() const noexcept {
    return root_path_ != nullptr ? std::string_view(root_path_, root_len_) : std::string_view{};
}

std::string_view cgroup_tree::relative_path() const noexcept {
    if (rel_path_ == nullptr) {
        return {};
    }
    return rel_len_ == 0 ? std::string_view("/") : std::string_view(rel_path_, rel_len_);
}

std::string_view cgroup_tree::name(std::uint32_t slot) const noexcept {
    return slot < count_ && !units_[slot].vacant
               ? std::string_view(units_[slot].name, units_[slot].name_len)
               : std::string_view{};
}

bool cgroup_tree::has_cgroup_kill(std::uint32_t slot) const noexcept {
    return slot < count_ && units_[slot].kill >= 0;
}

} // namespace custos::process
