// Small allocation-free readers of /proc and kernfs files, shared by the
// cgroup tree and the pid record: the fields of /proc/<pid>/stat custos
// needs, and directory listing through getdents64 into a fixed buffer
// (opendir would allocate). Whole files and lines: io/files.hpp.
#pragma once

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "io/files.hpp"

namespace custos::process::procfs {

using io::files::parse_u64;
using io::files::pread_all;
using io::files::read_file;
using io::files::scan_lines;

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

} // namespace custos::process::procfs
