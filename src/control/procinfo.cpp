// The process's own figures for the process_* metrics (server.hpp's
// read_process_info): /proc/self/stat, /proc/stat's btime, RLIMIT_NOFILE
// and the entries of /proc/self/fd, read into stack buffers (opendir would
// allocate).
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string_view>

#include "control/server.hpp"
#include "io/files.hpp"

namespace custos::control {

namespace {

// The decimal number at the front of `s` (0 when none): /proc fields.
std::uint64_t leading_u64(std::string_view s) noexcept {
    std::size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
        ++n;
    }
    std::uint64_t v = 0;
    return io::files::parse_u64(s.substr(0, n), v) ? v : 0;
}

// The boot time (/proc/stat's btime, seconds since the epoch), line by line:
// the intr line before it runs to thousands of bytes on boards with many
// interrupts.
std::uint64_t boot_time_s() noexcept {
    std::uint64_t btime = 0;
    (void)io::files::scan_lines<128>("/proc/stat", [&](std::string_view line) {
        if (line.substr(0, 6) == "btime ") {
            btime = leading_u64(line.substr(6));
            return true;
        }
        return false;
    });
    return btime;
}

} // namespace

void read_process_info(status::process_info& out) noexcept {
    char buf[1024];
    const long n = io::files::read_file(AT_FDCWD, "/proc/self/stat", buf, sizeof(buf));
    std::string_view st(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    // Fields after the command's closing parenthesis, numbered from 3.
    std::size_t at = st.rfind(')');
    if (at != std::string_view::npos) {
        std::string_view rest = st.substr(at + 2);
        std::uint64_t f[53] = {};
        int field = 3;
        std::size_t i = 0;
        while (i < rest.size() && field < 53) {
            std::size_t sp = rest.find(' ', i);
            if (sp == std::string_view::npos) {
                sp = rest.size();
            }
            f[field++] = leading_u64(rest.substr(i, sp - i));
            i = sp + 1;
        }
        const long tick = ::sysconf(_SC_CLK_TCK);
        const long page = ::sysconf(_SC_PAGESIZE);
        if (tick > 0) {
            out.cpu_seconds = static_cast<double>(f[14] + f[15]) / static_cast<double>(tick);
            // starttime (22) is in ticks since boot.
            if (const std::uint64_t btime = boot_time_s(); btime != 0) {
                out.start_time_wall_ns = static_cast<std::int64_t>(
                    btime * 1'000'000'000u +
                    f[22] * 1'000'000'000u / static_cast<std::uint64_t>(tick));
            }
        }
        out.threads = static_cast<std::uint32_t>(f[20]);
        out.virtual_bytes = f[23];
        out.resident_bytes = page > 0 ? f[24] * static_cast<std::uint64_t>(page) : 0;
    }
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        out.max_fds = rl.rlim_cur;
    }
    // Open descriptors: the entries of /proc/self/fd, read with getdents64
    // into a stack buffer (opendir would allocate).
    int dfd = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        alignas(8) char dents[2048];
        std::uint32_t count = 0;
        for (;;) {
            long got = ::syscall(SYS_getdents64, dfd, dents, sizeof(dents));
            if (got <= 0) {
                break;
            }
            for (long off = 0; off < got;) {
                // Field by field (no cast: the records are only 8-aligned
                // where the kernel says so, and armhf's -Wcast-align).
                unsigned short reclen = 0;
                std::memcpy(&reclen, dents + off + offsetof(dirent64, d_reclen), sizeof(reclen));
                if (dents[off + static_cast<long>(offsetof(dirent64, d_name))] != '.') {
                    ++count;
                }
                if (reclen == 0) {
                    break;
                }
                off += reclen;
            }
        }
        ::close(dfd);
        out.open_fds = count > 0 ? count - 1 : 0; // not counting dfd itself
    }
}

} // namespace custos::control
