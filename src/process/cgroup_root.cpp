// Where the custos cgroup is (see cgroup_root.hpp): mountinfo and
// /proc/self/cgroup parsing, and the root directory's resolution.
#include "process/cgroup_root.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "process/cgroup.hpp"
#include "process/procfs.hpp"

namespace custos::process {
namespace {

constexpr std::string_view root_dir_name = "custos";

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

} // namespace

namespace cgroup_root {

tl::unexpected<Error> unavailable(int err, std::string_view subject) noexcept {
    return fail(Reason::cgroup_unavailable, err, subject);
}

tl::unexpected<Error> not_cgroup2(std::string_view path) noexcept {
    Error e(Reason::cgroup_unavailable, ENOTSUP, path);
    e.with_resolution("Point cgroup at a directory on a cgroup2 filesystem (mount -t cgroup2), "
                      "or set cgroup = off");
    return fail(e);
}

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

} // namespace cgroup_root

Result<std::size_t> find_cgroup2_mount(char* buf, std::size_t len) noexcept {
    static_assert(sizeof(mount_info) < 9000, "mount_info lives on the stack");
    mount_info m;
    if (int e = find_mount({}, m); e != 0) {
        return cgroup_root::unavailable(e, "/proc/self/mountinfo");
    }
    if (m.point_len + 1 > len) {
        return cgroup_root::unavailable(ENAMETOOLONG, "cgroup2 mount point");
    }
    std::memcpy(buf, m.point, m.point_len + 1);
    return m.point_len;
}

} // namespace custos::process
