// The cgroup tree (see cgroup.hpp for what it owns and its invariants).
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
#include <cstdlib>
#include <cstring>

#include "process/procfs.hpp"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace custos::process {
namespace {

constexpr std::string_view root_dir_name = "custos";

tl::unexpected<Error> unavailable(int err, std::string_view subject) noexcept {
    return fail(Reason::cgroup_unavailable, err, subject);
}

tl::unexpected<Error> not_cgroup2(std::string_view path) noexcept {
    Error e(Reason::cgroup_unavailable, ENOTSUP, path);
    e.with_resolution("Point cgroup at a directory on a cgroup2 filesystem (mount -t cgroup2), "
                      "or set cgroup = off");
    return fail(e);
}

bool on_cgroup2(int fd) noexcept {
    struct statfs sf {};
    return ::fstatfs(fd, &sf) == 0 && static_cast<unsigned long>(sf.f_type) == CGROUP2_SUPER_MAGIC;
}

// Undoes mountinfo's octal escapes (\040 for a space, ...) in place.
std::size_t unescape(char* s, std::size_t n) noexcept {
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            s[out++] =
                static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            s[out++] = s[i];
        }
    }
    return out;
}

struct mount_info {
    char point[PATH_MAX];
    std::size_t point_len = 0;
    char root[PATH_MAX]; // the mount's root inside the hierarchy ("/" usually)
    std::size_t root_len = 0;
};

// Handles one mountinfo line; returns true (and fills m) for a cgroup2
// mount, which must also be a prefix of `inside` when that is non-empty.
bool parse_mount_line(const char* line, std::size_t len, std::string_view inside,
                      mount_info& m) noexcept {
    std::string_view l(line, len);
    std::size_t sep = l.find(" - ");
    if (sep == std::string_view::npos || l.substr(sep + 3, 8) != "cgroup2 ") {
        return false;
    }
    // Fields: id parent major:minor root mountpoint ...
    std::size_t at = 0;
    std::size_t starts[5] = {};
    std::size_t ends[5] = {};
    for (int f = 0; f < 5; ++f) {
        starts[f] = at;
        std::size_t e = l.find(' ', at);
        if (e == std::string_view::npos || e > sep) {
            return false;
        }
        ends[f] = e;
        at = e + 1;
    }
    std::size_t rl = ends[3] - starts[3];
    std::size_t pl = ends[4] - starts[4];
    if (rl >= sizeof m.root || pl >= sizeof m.point) {
        return false;
    }
    mount_info cand;
    std::memcpy(cand.root, line + starts[3], rl);
    cand.root_len = unescape(cand.root, rl);
    cand.root[cand.root_len] = '\0';
    std::memcpy(cand.point, line + starts[4], pl);
    cand.point_len = unescape(cand.point, pl);
    cand.point[cand.point_len] = '\0';
    if (!inside.empty()) {
        std::string_view p(cand.point, cand.point_len);
        bool prefix = p == "/" || (inside.substr(0, p.size()) == p &&
                                   (inside.size() == p.size() || inside[p.size()] == '/'));
        // The longest matching mount point wins (a later, deeper mount).
        if (!prefix || (m.point_len != 0 && cand.point_len < m.point_len)) {
            return false;
        }
    }
    m = cand;
    return true;
}

// Scans /proc/self/mountinfo for the first cgroup2 mount (inside empty) or
// the deepest one containing `inside`. Returns 0 or an errno (ENOENT: none).
int find_mount(std::string_view inside, mount_info& m) noexcept {
    m.point_len = 0;
    bool found = false;
    // A line longer than 8 KiB comes cut: no fstype, so never a match.
    int err = procfs::scan_lines<8192>("/proc/self/mountinfo", [&](std::string_view line) noexcept {
        if (parse_mount_line(line.data(), line.size(), inside, m)) {
            found = true;
        }
        return found && inside.empty(); // the first one will do
    });
    if (err != 0) {
        return err;
    }
    return found ? 0 : ENOENT;
}

// The path of the "0::" line of a /proc/<pid>/cgroup text, or empty.
std::string_view unified_path(std::string_view text) noexcept {
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t e = text.find('\n', at);
        std::string_view line = text.substr(at, e == std::string_view::npos ? e : e - at);
        if (line.substr(0, 3) == "0::") {
            return line.substr(3);
        }
        if (e == std::string_view::npos) {
            break;
        }
        at = e + 1;
    }
    return {};
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

// Where the custos cgroup is: its absolute path, the same relative to the
// cgroup2 mount as /proc/<pid>/cgroup shows it, and whether open() made it.
struct root_paths {
    char path[PATH_MAX];
    std::size_t path_len = 0;
    char rel[PATH_MAX];
    std::size_t rel_len = 0;
    bool created = false;
};

// <mount><own cgroup>/custos, created if missing.
Result<void> resolve_auto(root_paths& r) noexcept {
    mount_info m;
    if (int e = find_mount({}, m); e != 0) {
        return unavailable(e, "cgroup2 mount (/proc/self/mountinfo)");
    }
    char own_buf[PATH_MAX + 64];
    long n = procfs::read_file(AT_FDCWD, "/proc/self/cgroup", own_buf, sizeof own_buf);
    if (n < 0) {
        return unavailable(static_cast<int>(-n), "/proc/self/cgroup");
    }
    std::string_view own = unified_path(std::string_view(own_buf, static_cast<std::size_t>(n)));
    if (own.empty() || own.front() != '/') {
        return unavailable(ENOENT, "/proc/self/cgroup has no 0:: line");
    }
    // Our cgroup is shown relative to our cgroup namespace's root, as is
    // the mount's root: strip the latter to get the path under the mount.
    std::string_view mroot(m.root, m.root_len);
    std::string_view under = own;
    if (mroot != "/") {
        if (own.substr(0, mroot.size()) != mroot ||
            (own.size() > mroot.size() && own[mroot.size()] != '/')) {
            return unavailable(ENOENT, "our cgroup is outside the cgroup2 mount");
        }
        under = own.substr(mroot.size());
    }
    if (under == "/") {
        under = {};
    }
    std::size_t need = m.point_len + under.size() + 1 + root_dir_name.size();
    if (need >= PATH_MAX) {
        return unavailable(ENAMETOOLONG, own);
    }
    std::memcpy(r.path, m.point, m.point_len);
    r.path_len = m.point_len;
    if (r.path_len == 1) {
        r.path_len = 0; // a mount at "/": no double slash
    }
    if (!under.empty()) { // an empty view's data() may be null: no memcpy from it
        std::memcpy(r.path + r.path_len, under.data(), under.size());
        r.path_len += under.size();
    }
    r.path[r.path_len++] = '/';
    std::memcpy(r.path + r.path_len, root_dir_name.data(), root_dir_name.size());
    r.path_len += root_dir_name.size();
    r.path[r.path_len] = '\0';
    r.rel_len = own.size() == 1 ? 0 : own.size();
    std::memcpy(r.rel, own.data(), r.rel_len);
    r.rel[r.rel_len++] = '/';
    std::memcpy(r.rel + r.rel_len, root_dir_name.data(), root_dir_name.size());
    r.rel_len += root_dir_name.size();
    r.rel[r.rel_len] = '\0';
    if (::mkdir(r.path, 0755) == 0) {
        r.created = true;
    } else if (errno != EEXIST) {
        return unavailable(errno, std::string_view(r.path, r.path_len));
    }
    return {};
}

// An explicit absolute directory (r.path), created if missing under a
// cgroup2 parent.
Result<void> resolve_explicit(root_paths& r) noexcept {
    mount_info m;
    struct statfs sf {};
    if (::statfs(r.path, &sf) != 0) {
        if (errno != ENOENT) {
            return unavailable(errno, std::string_view(r.path, r.path_len));
        }
        // Missing: its parent must be a cgroup2 directory.
        char parent[PATH_MAX];
        std::size_t slash = std::string_view(r.path, r.path_len).rfind('/');
        std::size_t pl = slash == 0 ? 1 : slash;
        std::memcpy(parent, r.path, pl);
        parent[pl] = '\0';
        if (::statfs(parent, &sf) != 0) {
            return unavailable(errno, std::string_view(parent, pl));
        }
        if (static_cast<unsigned long>(sf.f_type) != CGROUP2_SUPER_MAGIC) {
            return not_cgroup2(std::string_view(r.path, r.path_len));
        }
        if (::mkdir(r.path, 0755) == 0) {
            r.created = true;
        } else if (errno != EEXIST) {
            return unavailable(errno, std::string_view(r.path, r.path_len));
        }
    }
    char resolved[PATH_MAX];
    if (::realpath(r.path, resolved) == nullptr) {
        int e = errno;
        if (r.created) {
            ::rmdir(r.path);
        }
        return unavailable(e, std::string_view(r.path, r.path_len));
    }
    std::string_view res(resolved);
    int e = find_mount(res, m);
    if (e != 0) {
        if (r.created) {
            ::rmdir(r.path);
        }
        return e == ENOENT ? not_cgroup2(res) : unavailable(e, res);
    }
    std::string_view mroot(m.root, m.root_len);
    std::string_view below = res.substr(m.point_len == 1 ? 0 : m.point_len);
    r.rel_len = 0;
    if (mroot != "/") {
        std::memcpy(r.rel, mroot.data(), mroot.size());
        r.rel_len = mroot.size();
    }
    if (r.rel_len + below.size() >= PATH_MAX) {
        return unavailable(ENAMETOOLONG, res);
    }
    std::memcpy(r.rel + r.rel_len, below.data(), below.size());
    r.rel_len += below.size();
    r.rel[r.rel_len] = '\0';
    return {};
}

} // namespace

Result<std::size_t> find_cgroup2_mount(char* buf, std::size_t len) noexcept {
    static_assert(sizeof(mount_info) < 9000, "mount_info lives on the stack");
    mount_info m;
    if (int e = find_mount({}, m); e != 0) {
        return unavailable(e, "/proc/self/mountinfo");
    }
    if (m.point_len + 1 > len) {
        return unavailable(ENAMETOOLONG, "cgroup2 mount point");
    }
    std::memcpy(buf, m.point, m.point_len + 1);
    return m.point_len;
}

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
