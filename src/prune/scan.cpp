// The pruner's file-system side (scan.hpp).
#include "prune/scan.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>

namespace custos::prune {
namespace {

constexpr int probe_flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

std::int64_t mtime_of(const struct stat& st) noexcept {
    // time_t may be 32 bits (armhf): widen before scaling.
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 +
           static_cast<std::int64_t>(st.st_mtim.tv_nsec);
}

bool same_file(const struct stat& st, const entry& e) noexcept {
    return static_cast<std::uint64_t>(st.st_dev) == e.dev &&
           static_cast<std::uint64_t>(st.st_ino) == e.ino && S_ISREG(st.st_mode) &&
           static_cast<std::uint64_t>(st.st_size) == e.size && mtime_of(st) == e.mtime_ns;
}

// A write lease on `fd`: 0, or the errno (EAGAIN: open elsewhere). A lease
// break (another open() while it is held) signals SIGURG, ignored by
// default, instead of SIGIO, which would terminate the process.
int take_lease(int fd) noexcept {
    if (::fcntl(fd, F_SETSIG, SIGURG) != 0) {
        return errno;
    }
    if (::fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
        return errno;
    }
    return 0;
}

void drop_lease(int fd) noexcept {
    (void)::fcntl(fd, F_SETLEASE, F_UNLCK);
}

void close_fd(int fd) noexcept {
    // close() is not retried: on Linux the descriptor is gone even on EINTR.
    (void)::close(fd);
}

// Deletes the file of `e` if it is still the scanned one and (check_open)
// closed, holding a lease across the unlink. Errors: PruneFileChanged,
// PruneUnlinkFailed.
Result<void> delete_one(int dirfd, const entry& e, bool check_open) noexcept {
    const char* name = e.name.data(); // NUL-terminated in the workspace
    const int fd = ::openat(dirfd, name, probe_flags);
    if (fd < 0) {
        return fail(Reason::prune_file_changed, errno, e.name);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !same_file(st, e)) {
        close_fd(fd);
        return fail(Reason::prune_file_changed, 0, e.name);
    }
    const int err = check_open ? take_lease(fd) : 0;
    if (err != 0) {
        close_fd(fd);
        return fail(Reason::prune_file_changed, err, e.name); // opened since the scan
    }
    Result<void> out{};
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !same_file(st, e)) {
        out = fail(Reason::prune_file_changed, 0, e.name); // the name now means another file
    } else if (::unlinkat(dirfd, name, 0) != 0) {
        out = fail(Reason::prune_unlink_failed, errno, e.name);
    }
    if (check_open) {
        drop_lease(fd);
    }
    close_fd(fd);
    return out;
}

} // namespace

workspace::~workspace() {
    close_dir();
}

void workspace::close_dir() noexcept {
    if (dirfd_ >= 0) {
        close_fd(dirfd_);
        dirfd_ = -1;
    }
}

std::size_t workspace::footprint(std::uint32_t max_files) noexcept {
    const std::size_t n = max_files;
    return sizeof(entry) * n + alignof(entry) + sizeof(std::uint32_t) * n + alignof(std::uint32_t) +
           sizeof(decision) * n + alignof(decision) + name_room * n + dirent_room +
           alignof(std::uint64_t);
}

Result<void> workspace::init(arena& mem, std::uint32_t max_files) noexcept {
    if (max_files == 0) {
        return fail(Reason::invalid_argument, 0, "prune workspace: max_files 0");
    }
    const std::size_t n = max_files;
    auto* entries = mem.make_array<entry>(n);
    auto* order = static_cast<std::uint32_t*>(
        mem.take_unzeroed(sizeof(std::uint32_t) * n, alignof(std::uint32_t)));
    auto* decisions = mem.make_array<decision>(n);
    auto* names = static_cast<char*>(mem.take_unzeroed(name_room * n, 1));
    auto* dirents = static_cast<std::byte*>(mem.take_unzeroed(dirent_room, alignof(std::uint64_t)));
    if (entries == nullptr || order == nullptr || decisions == nullptr || names == nullptr ||
        dirents == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "prune workspace");
    }
    entries_ = entries;
    order_ = order;
    decisions_ = decisions;
    names_ = names;
    dirents_ = dirents;
    cap_ = max_files;
    count_ = 0;
    decided_ = 0;
    // glibc's fnmatch loads the locale's multibyte converters on its first
    // call under a UTF-8 locale (a malloc, once per locale): here, not in a
    // run.
    (void)::fnmatch("*", "x", FNM_PERIOD);
    return {};
}

Result<int> open_dir(const PruneSpec& spec) noexcept {
    char path[4096];
    if (spec.dir.empty() || spec.dir.size() >= sizeof path) {
        return fail(Reason::prune_scan_failed, ENAMETOOLONG, spec.dir);
    }
    std::memcpy(path, spec.dir.data(), spec.dir.size());
    path[spec.dir.size()] = '\0';
    const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return fail(Reason::prune_scan_failed, errno, spec.dir);
    }
    return fd;
}

bool held_open(int dirfd, const char* name, bool& unprovable) noexcept {
    unprovable = false;
    const int fd = ::openat(dirfd, name, probe_flags);
    if (fd < 0) {
        // EWOULDBLOCK: another process holds a lease on it, so it is open.
        unprovable = errno != EWOULDBLOCK;
        return true;
    }
    const int err = take_lease(fd);
    if (err == 0) {
        drop_lease(fd);
    } else if (err != EAGAIN) {
        unprovable = true; // EACCES/EPERM (not ours), EINVAL (no leases here)
    }
    close_fd(fd);
    return err != 0;
}

Result<std::uint32_t> scan(const PruneSpec& spec, int dirfd, std::span<entry> entries,
                           std::span<char> names, std::span<std::byte> dirents,
                           bool check_open) noexcept {
    char glob[256];
    if (spec.glob.empty() || spec.glob.size() >= sizeof glob) {
        return fail(Reason::invalid_argument, 0, "prune glob");
    }
    std::memcpy(glob, spec.glob.data(), spec.glob.size());
    glob[spec.glob.size()] = '\0';
    if (::lseek(dirfd, 0, SEEK_SET) < 0) {
        return fail(Reason::prune_scan_failed, errno, spec.dir);
    }
    std::uint32_t count = 0;
    std::size_t used = 0;
    for (;;) {
        const ssize_t got = ::getdents64(dirfd, dirents.data(), dirents.size());
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            return fail(Reason::prune_scan_failed, errno, spec.dir);
        }
        if (got == 0) {
            break;
        }
        const auto len = static_cast<std::size_t>(got);
        std::size_t step = 0;
        for (std::size_t at = 0; at < len; at += step) {
            // Fields read by offset: the buffer holds packed records whose
            // alignment a cast could not promise (-Wcast-align).
            unsigned short reclen = 0;
            std::memcpy(&reclen, dirents.data() + at + offsetof(struct dirent64, d_reclen),
                        sizeof reclen);
            if (reclen == 0) {
                return fail(Reason::prune_scan_failed, EIO, spec.dir);
            }
            step = reclen;
            const auto type =
                static_cast<unsigned char>(dirents[at + offsetof(struct dirent64, d_type)]);
            const char* name = reinterpret_cast<const char*>(dirents.data() + at +
                                                             offsetof(struct dirent64, d_name));
            const std::size_t name_len = ::strnlen(name, reclen);
            if (name_len == 0 || name[0] == '.') {
                continue; // ".", ".." and every dot file
            }
            if (type != DT_UNKNOWN && type != DT_REG) {
                continue;
            }
            if (::fnmatch(glob, name, FNM_PERIOD) != 0) {
                continue;
            }
            struct stat st {};
            if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
                continue; // gone since, or not a regular file
            }
            if (count >= entries.size() || used + name_len + 1 > names.size()) {
                return fail(Reason::prune_too_many_files, 0,
                            spec.name.empty() ? spec.dir : spec.name);
            }
            char* kept = names.data() + used;
            std::memcpy(kept, name, name_len);
            kept[name_len] = '\0';
            used += name_len + 1;
            entry e{};
            e.name = std::string_view(kept, name_len);
            e.size = static_cast<std::uint64_t>(st.st_size);
            e.mtime_ns = mtime_of(st);
            e.dev = static_cast<std::uint64_t>(st.st_dev);
            e.ino = static_cast<std::uint64_t>(st.st_ino);
            e.open = check_open && held_open(dirfd, kept, e.unprovable);
            entries[count++] = e;
        }
    }
    return count;
}

Result<std::uint64_t> free_bytes(int dirfd) noexcept {
    struct statvfs sv {};
    if (::fstatvfs(dirfd, &sv) != 0) {
        return fail(Reason::prune_scan_failed, errno, "statvfs");
    }
    std::uint64_t out = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(sv.f_bavail),
                               static_cast<std::uint64_t>(sv.f_frsize), &out)) {
        out = std::numeric_limits<std::uint64_t>::max();
    }
    return out;
}

Result<void> plan(const PruneSpec& spec, const options& opt, workspace& ws, report& rep) noexcept {
    ws.close_dir();
    ws.count_ = 0;
    ws.decided_ = 0;
    rep.summary = PruneSummary{};
    if (auto ok = validate(spec); !ok) {
        return fail(ok.error());
    }
    if (ws.cap_ == 0) {
        return fail(Reason::invalid_argument, 0, "prune workspace: not initialised");
    }
    auto fd = open_dir(spec);
    if (!fd) {
        return fail(fd.error());
    }
    ws.dirfd_ = *fd;
    const std::uint32_t limit = std::min(spec.max_files, ws.cap_);
    auto n = scan(spec, ws.dirfd_, std::span<entry>(ws.entries_, limit),
                  std::span<char>(ws.names_, workspace::name_room * ws.cap_),
                  std::span<std::byte>(ws.dirents_, workspace::dirent_room), opt.check_open);
    if (!n) {
        ws.close_dir();
        return fail(n.error());
    }
    for (std::uint32_t i = 0; i < *n; ++i) {
        classify(spec, ws.entries_[i], opt.trust_floor_ns);
    }
    moment m;
    m.now_wall_ns = opt.now_wall_ns;
    m.clock_trusted = opt.clock_trusted;
    m.protected_names = opt.protected_names;
    if (spec.min_free_bytes > 0) {
        auto f = free_bytes(ws.dirfd_);
        if (!f) {
            ws.close_dir();
            return fail(f.error());
        }
        m.free_bytes = *f;
    }
    auto d = decide(spec, std::span<const entry>(ws.entries_, *n),
                    std::span<std::uint32_t>(ws.order_, *n), m,
                    std::span<decision>(ws.decisions_, ws.cap_), rep.summary);
    if (!d) {
        ws.close_dir();
        return fail(d.error());
    }
    ws.count_ = *n;
    ws.decided_ = *d;
    return {};
}

Result<void> apply(const PruneSpec& spec, const options& opt, workspace& ws, report& rep) noexcept {
    (void)spec;
    if (ws.dirfd_ < 0) {
        return fail(Reason::invalid_argument, 0, "prune apply without a plan");
    }
    PruneSummary& sum = rep.summary;
    for (std::uint32_t i = 0; i < ws.decided_; ++i) {
        const decision& d = ws.decisions_[i];
        const entry& e = ws.entries_[d.index];
        if (!opt.dry_run) {
            auto gone = delete_one(ws.dirfd_, e, opt.check_open);
            if (!gone) {
                sum.deleted -= 1;
                sum.deleted_bytes -= std::min(sum.deleted_bytes, e.size);
                sum.kept += 1;
                sum.kept_bytes += e.size;
                if (gone.error().reason() == Reason::prune_unlink_failed) {
                    sum.unlink_failed += 1;
                } else {
                    sum.changed += 1;
                }
                if (rep.on_kept != nullptr) {
                    rep.on_kept(rep.ctx, e.name, gone.error());
                }
                continue;
            }
        }
        if (rep.on_deleted != nullptr) {
            rep.on_deleted(rep.ctx, e.name, e.size, d.rules);
        }
    }
    ws.close_dir();
    return {};
}

Result<void> run(const PruneSpec& spec, const options& opt, workspace& ws, report& rep) noexcept {
    if (auto p = plan(spec, opt, ws, rep); !p) {
        return p;
    }
    return apply(spec, opt, ws, rep);
}

} // namespace custos::prune
