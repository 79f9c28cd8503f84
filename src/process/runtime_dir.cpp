// Per-service runtime directories (see runtime_dir.hpp).
#include "process/runtime_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace custos::process {

namespace {

// The kernel's linux_dirent64: getdents64 has no glibc wrapper before 2.30
// and readdir would allocate (fdopendir).
struct dirent64_head {
    std::uint64_t ino;
    std::int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[1];
};

struct walk {
    std::uint32_t entries = 0; // names looked at, against max_entries
    std::uint32_t left = 0;    // names that could not be removed
};

// Empties the directory open at `dir` (which it closes), `depth` levels
// down. Subdirectories are entered by descriptor, never followed as
// symlinks. Whatever the limits stop is counted in w.left.
void empty_dir(int dir, int depth, walk& w) noexcept {
    alignas(8) char buf[2048];
    bool progress = true;
    // Removing entries while reading shifts the directory's offsets on some
    // file systems: read again from the start until a pass removes nothing.
    while (progress) {
        progress = false;
        if (::lseek(dir, 0, SEEK_SET) < 0) {
            break;
        }
        for (;;) {
            long n = ::syscall(SYS_getdents64, dir, buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            for (long off = 0; off < n;) {
                // The kernel aligns each record to 8 bytes (buf is too);
                // read the header by copy, which needs no alignment proof.
                dirent64_head d;
                std::memcpy(&d, buf + off, offsetof(dirent64_head, name));
                const char* name = buf + off + offsetof(dirent64_head, name);
                if (d.reclen == 0) {
                    break; // never from the kernel; no endless loop if it were
                }
                off += d.reclen;
                if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) {
                    continue;
                }
                if (++w.entries > runtime_dir_limits::max_entries) {
                    ++w.left;
                    ::close(dir);
                    return;
                }
                if (::unlinkat(dir, name, 0) == 0) {
                    progress = true;
                    continue;
                }
                if (errno != EISDIR && errno != EPERM) {
                    ++w.left;
                    continue;
                }
                if (depth + 1 >= runtime_dir_limits::max_depth) {
                    ++w.left;
                    continue;
                }
                int sub = ::openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0) {
                    ++w.left;
                    continue;
                }
                const std::uint32_t before = w.left;
                empty_dir(sub, depth + 1, w);
                if (::unlinkat(dir, name, AT_REMOVEDIR) == 0) {
                    progress = true;
                } else if (w.left == before) {
                    ++w.left;
                }
            }
        }
        if (w.left != 0) {
            break; // what is left stays: another pass would find it again
        }
    }
    ::close(dir);
}

} // namespace

Result<void> open_runtime_root(std::string_view root) noexcept {
    char path[256];
    if (root.size() < 2 || root.front() != '/' || root.find('\0') != std::string_view::npos) {
        return fail(Reason::runtime_dir_unavailable, EINVAL, root);
    }
    // Room for "/" and the longest service name (31).
    if (root.size() + 33 > sizeof path) {
        return fail(Reason::runtime_dir_unavailable, ENAMETOOLONG, root);
    }
    std::memcpy(path, root.data(), root.size());
    path[root.size()] = '\0';
    if (::mkdir(path, 0755) == 0) {
        (void)::chmod(path, 0755); // whatever the umask: services enter it as their users
    } else if (errno != EEXIST) {
        return fail(Reason::runtime_dir_unavailable, errno, root);
    }
    struct stat st {};
    if (::stat(path, &st) != 0) {
        return fail(Reason::runtime_dir_unavailable, errno, root);
    }
    if (!S_ISDIR(st.st_mode)) {
        return fail(Reason::runtime_dir_unavailable, ENOTDIR, root);
    }
    return {};
}

Result<void> make_runtime_dir(const char* path, int uid, int gid) noexcept {
    struct stat st {};
    if (::lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
        (void)::unlink(path); // not a directory (a planted symlink): not ours to keep
    }
    if (::mkdir(path, 0700) != 0 && errno != EEXIST) {
        return fail(Reason::runtime_dir_unavailable, errno, path);
    }
    // By descriptor: the mode and owner go to this directory, never through
    // a symlink swapped in meanwhile.
    int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return fail(Reason::runtime_dir_unavailable, errno, path);
    }
    int err = 0;
    if ((uid != -1 || gid != -1) &&
        ::fchown(fd, static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
        err = errno;
    }
    if (err == 0 && ::fchmod(fd, 0700) != 0) {
        err = errno;
    }
    ::close(fd);
    if (err != 0) {
        return fail(Reason::runtime_dir_unavailable, err, path);
    }
    return {};
}

std::uint32_t remove_runtime_dir(const char* path) noexcept {
    int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return 0;
        }
        return ::unlink(path) == 0 || errno == ENOENT ? 0 : 1; // a file or a symlink
    }
    walk w;
    empty_dir(fd, 0, w);
    if (::rmdir(path) != 0 && errno != ENOENT && w.left == 0) {
        ++w.left;
    }
    return w.left;
}

} // namespace custos::process
