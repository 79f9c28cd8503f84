// The pid record (see pid_record.hpp for the layout, the invariants and
// what it cannot do).
#include "process/pid_record.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "process/procfs.hpp"

namespace custos::process {
namespace {

constexpr off_t slot_offset(std::uint32_t i) noexcept {
    return static_cast<off_t>(sizeof(pid_record::header) + sizeof(pid_record::slot) * i);
}

void read_boot_id(char (&out)[36]) noexcept {
    std::memset(out, 0, sizeof out);
    char buf[64];
    long n = procfs::read_file(AT_FDCWD, "/proc/sys/kernel/random/boot_id", buf, sizeof buf);
    if (n >= 36) {
        std::memcpy(out, buf, sizeof out);
    }
}

bool write_at(int fd, const void* data, std::size_t len, off_t at) noexcept {
    ssize_t n;
    do {
        n = ::pwrite(fd, data, len, at);
    } while (n < 0 && errno == EINTR);
    if (n >= 0 && static_cast<std::size_t>(n) != len) {
        errno = EIO;
    }
    return n >= 0 && static_cast<std::size_t>(n) == len;
}

bool read_at(int fd, void* data, std::size_t len, off_t at) noexcept {
    ssize_t n;
    do {
        n = ::pread(fd, data, len, at);
    } while (n < 0 && errno == EINTR);
    if (n >= 0 && static_cast<std::size_t>(n) != len) {
        errno = EIO;
    }
    return n >= 0 && static_cast<std::size_t>(n) == len;
}

// SIGKILLs every live process of session `sid` (or group `sid`) that
// started no earlier than its leader, scanning /proc until a pass finds
// none alive (dying processes linger a moment before they are zombies).
// Returns how many the first pass found.
int kill_session(int sid, std::uint64_t leader_start) noexcept {
    int dir = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) {
        return ::kill(-sid, SIGKILL) == 0 ? 1 : 0;
    }
    const int self = static_cast<int>(::getpid());
    int first = -1;
    for (int pass = 0; pass < 20; ++pass) {
        int found = 0;
        procfs::for_each_entry(dir, [&](const char* nm, unsigned char) {
            std::uint64_t pid = 0;
            if (!procfs::parse_u64(nm, pid) || pid > INT_MAX || static_cast<int>(pid) == self) {
                return true;
            }
            procfs::stat_fields f;
            if (!procfs::read_stat(static_cast<int>(pid), f)) {
                return true;
            }
            if ((f.session == sid || f.pgrp == sid) && f.starttime >= leader_start &&
                f.state != 'Z' && f.state != 'X') {
                if (::kill(static_cast<pid_t>(pid), SIGKILL) == 0) {
                    ++found;
                }
            }
            return true;
        });
        // The group at once too: a member forked after the scan passed it.
        ::kill(-sid, SIGKILL);
        if (first < 0) {
            first = found;
        }
        if (found == 0) {
            break;
        }
        struct timespec ts {
            0, 5 * 1000 * 1000
        };
        ::nanosleep(&ts, nullptr);
    }
    ::close(dir);
    return first < 0 ? 0 : first;
}

} // namespace

bool process_start_time(int pid, std::uint64_t& out) noexcept {
    procfs::stat_fields f;
    if (pid <= 0 || !procfs::read_stat(pid, f)) {
        return false;
    }
    out = f.starttime;
    return true;
}

Result<void> pid_record::open(const char* path, std::uint32_t slots, bool lock) noexcept {
    if (path == nullptr || *path == '\0' || slots == 0 || is_open()) {
        return fail(Reason::invalid_argument, 0, path != nullptr ? path : "pid record");
    }
    int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return fail(Reason::pid_record_unavailable, errno, path);
    }
    auto bad = [&](Reason r, int err) {
        ::close(fd);
        return fail(r, err, path);
    };
    if (lock && ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        return bad(e == EWOULDBLOCK ? Reason::instance_running : Reason::pid_record_unavailable, e);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return bad(Reason::pid_record_unavailable, errno);
    }
    header want{};
    want.magic = magic;
    want.version = version;
    want.slot_size = sizeof(slot);
    want.slots = slots;
    read_boot_id(want.boot_id);

    header have{};
    bool keep = st.st_size >= static_cast<off_t>(sizeof have) &&
                read_at(fd, &have, sizeof have, 0) && have.magic == magic &&
                have.version == version && have.slot_size == sizeof(slot) &&
                std::memcmp(have.boot_id, want.boot_id, sizeof want.boot_id) == 0 &&
                st.st_size >= slot_offset(have.slots);
    std::uint32_t file_slots = slots;
    if (keep) {
        if (have.slots > slots) {
            file_slots = have.slots;
        }
        want.slots = file_slots;
    } else if (::ftruncate(fd, 0) != 0) {
        return bad(Reason::pid_record_unavailable, errno);
    }
    // Growing zero-fills, and a zero pid is an empty slot.
    if (st.st_size < slot_offset(file_slots) || !keep) {
        if (::ftruncate(fd, slot_offset(file_slots)) != 0) {
            return bad(Reason::pid_record_unavailable, errno);
        }
    }
    if (!write_at(fd, &want, sizeof want, 0)) {
        return bad(Reason::pid_record_unavailable, errno);
    }
    fd_ = fd;
    slots_ = slots;
    file_slots_ = file_slots;
    return {};
}

Result<void> pid_record::record(std::uint32_t i, int pid, std::string_view name) noexcept {
    if (!is_open() || i >= slots_ || pid <= 1) {
        return fail(Reason::invalid_argument, 0, name);
    }
    slot s{};
    if (!process_start_time(pid, s.start_time)) {
        return fail(Reason::process_exited, ESRCH, name);
    }
    s.pid = pid;
    std::size_t n = name.size() < name_capacity ? name.size() : name_capacity;
    if (n != 0) {
        std::memcpy(s.name, name.data(), n);
    }
    if (!write_at(fd_, &s, sizeof s, slot_offset(i))) {
        return fail(Reason::pid_record_unavailable, errno, name);
    }
    return {};
}

Result<void> pid_record::clear(std::uint32_t i) noexcept {
    if (!is_open() || i >= file_slots_) {
        return fail(Reason::invalid_argument, 0, "pid record slot");
    }
    slot s{};
    if (!write_at(fd_, &s, sizeof s, slot_offset(i))) {
        return fail(Reason::pid_record_unavailable, errno, "pid record");
    }
    return {};
}

Result<std::uint32_t> pid_record::reap_leftovers(leftover_report report, void* ctx) noexcept {
    if (!is_open()) {
        return fail(Reason::invalid_argument, 0, "pid record not open");
    }
    const int self = static_cast<int>(::getpid());
    std::uint32_t reaped = 0;
    for (std::uint32_t i = 0; i < file_slots_; ++i) {
        slot s{};
        if (!read_at(fd_, &s, sizeof s, slot_offset(i))) {
            return fail(Reason::pid_record_unavailable, errno, "pid record");
        }
        if (s.pid == 0) {
            continue;
        }
        s.name[name_capacity] = '\0';
        procfs::stat_fields f;
        // The same pid, started at the same tick of the same boot, still
        // leading its session: the process custos recorded.
        if (s.pid > 1 && s.pid != self && procfs::read_stat(s.pid, f) &&
            f.starttime == s.start_time && f.session == s.pid && f.state != 'Z' && f.state != 'X') {
            leftover l;
            l.name = std::string_view(s.name, ::strnlen(s.name, name_capacity));
            l.pid = s.pid;
            l.killed = kill_session(s.pid, s.start_time);
            ++reaped;
            if (report != nullptr) {
                report(ctx, l);
            }
        }
        if (auto r = clear(i); !r) {
            return fail(r.error());
        }
    }
    return reaped;
}

void pid_record::close() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    slots_ = 0;
    file_slots_ = 0;
}

} // namespace custos::process
