// Reason ids, default resolutions, and Error formatting.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include <custos/error.hpp>

namespace custos {
namespace {

struct reason_info {
    Reason reason;
    const char* id;
    const char* resolution;
};

// Indexed by the enum's value; the static_assert below keeps it complete.
constexpr reason_info reasons[] = {
    {Reason::unknown, "Unknown", "Report this as a custos bug with the log around it"},
    {Reason::out_of_memory, "OutOfMemory",
     "Free memory on the device or lower the configured capacities"},
    {Reason::capacity_exceeded, "CapacityExceeded",
     "Raise the capacity named in the message in the runtime configuration"},
    {Reason::invalid_argument, "InvalidArgument", "Fix the value named in the message"},
    {Reason::backend_unknown, "BackendUnknown",
     "Set CUSTOS_BACKEND to 'uring' or 'epoll', or unset it to choose automatically"},
    {Reason::io_uring_unavailable, "IoUringUnavailable",
     "The kernel refuses io_uring (CONFIG_IO_URING off, kernel.io_uring_disabled, seccomp, "
     "qemu-user, or RLIMIT_MEMLOCK too low before Linux 5.12); unset CUSTOS_BACKEND to fall "
     "back to epoll"},
    {Reason::io_uring_opcode_missing, "IoUringOpcodeMissing",
     "The kernel's io_uring lacks an operation custos needs (kernel older than 5.6); unset "
     "CUSTOS_BACKEND to fall back to epoll"},
    {Reason::epoll_unavailable, "EpollUnavailable",
     "Check the process's open-file limit (ulimit -n): epoll_create1 failed"},
    {Reason::timerfd_unavailable, "TimerfdUnavailable",
     "Check the open-file limit and that the kernel has CONFIG_TIMERFD"},
    {Reason::eventfd_unavailable, "EventfdUnavailable",
     "Check the open-file limit and that the kernel has CONFIG_EVENTFD"},
    {Reason::clock_unavailable, "ClockUnavailable",
     "CLOCK_MONOTONIC is not readable; this kernel cannot run custos"},
};

static_assert(sizeof(reasons) / sizeof(reasons[0]) == reason_count,
              "every Reason needs an entry in the table");

constexpr bool table_in_order() {
    for (std::size_t i = 0; i < reason_count; ++i) {
        if (static_cast<std::size_t>(reasons[i].reason) != i) {
            return false;
        }
    }
    return true;
}
static_assert(table_in_order(), "the reason table must be indexed by the enum value");

const reason_info& info(Reason r) noexcept {
    auto i = static_cast<std::size_t>(r);
    return i < reason_count ? reasons[i] : reasons[0];
}

} // namespace

Error::Error(Reason reason, int sys_errno, std::string_view subject) noexcept
    : reason_(reason), errno_(sys_errno) {
    std::size_t n = std::min(subject.size(), subject_capacity);
    if (n != 0) { // an empty string_view's data() may be null, which memcpy forbids
        std::memcpy(subject_, subject.data(), n);
    }
    subject_[n] = '\0';
    subject_len_ = static_cast<std::uint8_t>(n);
}

std::string_view Error::id() const noexcept {
    return info(reason_).id;
}

std::string_view Error::resolution() const noexcept {
    return resolution_ != nullptr ? resolution_ : info(reason_).resolution;
}

std::string_view reason_id(Reason r) noexcept {
    return info(r).id;
}

std::size_t Error::format(char* buf, std::size_t len) const noexcept {
    // strerror() is not thread-safe in every libc; strerrordesc_np is glibc
    // only. The errno number is always printed, its text where available.
    char sys[96] = "";
    if (errno_ != 0) {
        char text[64] = "";
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        const char* d = strerrordesc_np(errno_);
        std::snprintf(text, sizeof text, "%s", d != nullptr ? d : "unknown error");
#else
        std::snprintf(text, sizeof text, "error");
#endif
        std::snprintf(sys, sizeof sys, ": %s (errno %d)", text, errno_);
    }
    std::string_view res = resolution();
    int n = std::snprintf(buf, len, "%s%s%.*s%s. %.*s", info(reason_).id,
                          subject_len_ != 0 ? ": " : "", static_cast<int>(subject_len_), subject_,
                          sys, static_cast<int>(res.size()), res.data());
    return n < 0 ? 0 : static_cast<std::size_t>(n);
}

} // namespace custos
