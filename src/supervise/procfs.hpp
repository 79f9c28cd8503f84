// Small allocation-free readers of /proc and kernfs files, shared by the
// cgroup tree and the pid record: a whole small file into a caller's buffer,
// the fields of /proc/<pid>/stat custos needs, and directory listing through
// getdents64 into a fixed buffer (opendir would allocate).
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace custos::sup::procfs {

// Reads up to len - 1 bytes from offset 0 of `fd` (pread: the same
// descriptor can be read again) and NUL-terminates. Returns the length or
// -errno.
inline long pread_all(int fd, char* buf, std::size_t len) noexcept {
    std::size_t got = 0;
    while (got + 1 < len) {
        ssize_t n = ::pread(fd, buf + got, len - 1 - got, static_cast<off_t>(got));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    buf[got] = '\0';
    return static_cast<long>(got);
}

// Opens `path` (relative to dir_fd, or absolute with AT_FDCWD) and reads it
// as pread_all does. Returns the length or -errno.
inline long read_file(int dir_fd, const char* path, char* buf, std::size_t len) noexcept {
    int fd = ::openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    long n = pread_all(fd, buf, len);
    ::close(fd);
    return n;
}

// Feeds each line of the file at `path` to `line_fn` (returning true to
// stop) through a buffer of Cap bytes on the stack. A longer line is fed
// once, cut to the buffer (callers parse only its first fields, or reject
// it), and its rest is skipped. Returns 0, or the errno of open/read.
template <std::size_t Cap, class F>
int scan_lines(const char* path, F line_fn) noexcept {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    char buf[Cap];
    std::size_t have = 0;
    bool skipping = false; // in the rest of a line that was fed cut
    bool stop = false;
    int err = 0;
    while (!stop) {
        ssize_t n = ::read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0) {
            if (have > 0 && !skipping) {
                stop = line_fn(std::string_view(buf, have));
            }
            break;
        }
        have += static_cast<std::size_t>(n);
        std::size_t start = 0;
        while (!stop) {
            const void* nl = std::memchr(buf + start, '\n', have - start);
            if (nl == nullptr) {
                break;
            }
            std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf);
            if (!skipping) {
                stop = line_fn(std::string_view(buf + start, end - start));
            }
            skipping = false;
            start = end + 1;
        }
        std::memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf) { // full, no newline: a line too long
            if (!skipping) {
                stop = line_fn(std::string_view(buf, have));
            }
            skipping = true;
            have = 0;
        }
    }
    ::close(fd);
    return err;
}

// Parses a decimal number at the front of s (no sign); false if none.
inline bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty()) {
        return false;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

// Writes "/proc/<pid>/<leaf>" into `out` (32 bytes hold any pid and the
// leaves used here: stat, cgroup). No snprintf: usable anywhere.
inline void pid_path(int pid, const char* leaf, char (&out)[32]) noexcept {
    std::memcpy(out, "/proc/", 6);
    std::size_t n = 6;
    char digits[12];
    int d = 0;
    auto v = static_cast<unsigned>(pid);
    do {
        digits[d++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (d > 0) {
        out[n++] = digits[--d];
    }
    out[n++] = '/';
    for (const char* c = leaf; *c != '\0' && n + 1 < sizeof out; ++c) {
        out[n++] = *c;
    }
    out[n] = '\0';
}

struct stat_fields {
    char state = '?';            // field 3 (Z: zombie, X: dead)
    int ppid = 0;                // field 4
    int pgrp = 0;                // field 5
    int session = 0;             // field 6
    std::uint64_t starttime = 0; // field 22, clock ticks after boot
};

// Parses the text of /proc/<pid>/stat. The command (field 2) may hold
// spaces and parentheses, so the fields are counted from its last ')'.
inline bool parse_stat(std::string_view text, stat_fields& out) noexcept {
    std::size_t close = text.rfind(')');
    if (close == std::string_view::npos) {
        return false;
    }
    std::string_view rest = text.substr(close + 1);
    int field = 2;
    std::uint64_t v = 0;
    bool have_pgrp = false;
    bool have_session = false;
    while (!rest.empty()) {
        std::size_t b = rest.find_first_not_of(' ');
        if (b == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(b);
        std::size_t e = rest.find_first_of(" \n");
        std::string_view tok = rest.substr(0, e);
        rest.remove_prefix(e == std::string_view::npos ? rest.size() : e);
        ++field;
        if (field == 3) {
            out.state = tok.empty() ? '?' : tok[0];
        } else if (field == 4 && parse_u64(tok, v)) {
            out.ppid = static_cast<int>(v);
        } else if (field == 5 && parse_u64(tok, v)) {
            out.pgrp = static_cast<int>(v);
            have_pgrp = true;
        } else if (field == 6 && parse_u64(tok, v)) {
            out.session = static_cast<int>(v);
            have_session = true;
        } else if (field == 22) {
            return have_pgrp && have_session && parse_u64(tok, out.starttime);
        }
    }
    return false;
}

// Reads /proc/<pid>/stat. False when the process does not exist (or is
// unreadable).
inline bool read_stat(int pid, stat_fields& out) noexcept {
    char path[32];
    char buf[1024];
    pid_path(pid, "stat", path);
    long len = read_file(AT_FDCWD, path, buf, sizeof buf);
    return len > 0 && parse_stat(std::string_view(buf, static_cast<std::size_t>(len)), out);
}

// Calls fn(name, d_type) for every entry of the directory `fd` except "."
// and "..", from its start. fn returns false to stop. Returns 0 or -errno.
template <class F>
int for_each_entry(int fd, F&& fn) noexcept {
    if (::lseek(fd, 0, SEEK_SET) < 0) {
        return -errno;
    }
    alignas(8) char buf[4096];
    for (;;) {
        long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        if (n == 0) {
            return 0;
        }
        for (long at = 0; at < n;) {
            // struct linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, name.
            const char* rec = buf + at;
            unsigned short reclen;
            std::memcpy(&reclen, rec + 16, sizeof reclen);
            auto type = static_cast<unsigned char>(rec[18]);
            const char* name = rec + 19;
            at += reclen;
            if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) {
                continue;
            }
            if (!fn(name, type)) {
                return 0;
            }
        }
    }
}

} // namespace custos::sup::procfs
