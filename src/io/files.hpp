// Small allocation-free file readers: a whole small file into a caller's
// buffer, a file line by line through a fixed buffer, a decimal number.
// Used at init (the users and group files, mountinfo) and by the process
// host (kernfs and /proc files).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace custos::io::files {

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

// Reads up to `n` bytes of `fd` from offset `at` (retrying short reads and
// EINTR; fewer only at the end of the file). Returns the bytes read, or -1
// with errno set.
inline ssize_t pread_at(int fd, char* buf, std::size_t n, off_t at) noexcept {
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::pread(fd, buf + got, n - got, at + static_cast<off_t>(got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += static_cast<std::size_t>(r);
    }
    return static_cast<ssize_t>(got);
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

} // namespace custos::io::files
