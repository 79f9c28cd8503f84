#include "io/clock.hpp"

#include <fcntl.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

#include "core/time.hpp"

namespace custos {

mono_clock::time_point mono_clock::now() noexcept {
    timespec ts;
    // CLOCK_MONOTONIC is served by the vDSO: no system call. It cannot fail
    // for a valid clock id and pointer; reactor::init checks the clock once.
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return time_point(nanos(std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec));
}

} // namespace custos

namespace custos::io {

namespace {

// 2024-01-01T00:00:00Z, as prune_trust_floor_ns (prune.hpp).
constexpr std::int64_t trust_floor_ns = 1704067200LL * 1000000000LL;

bool rtc_set_clock() noexcept {
    char path[] = "/sys/class/rtc/rtc0/hctosys";
    for (char n = '0'; n <= '3'; ++n) {
        path[18] = n;
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            continue;
        }
        char c = 0;
        const ssize_t got = ::read(fd, &c, 1);
        ::close(fd);
        if (got == 1 && c == '1') {
            return true;
        }
    }
    return false;
}

} // namespace

bool wall_clock_trusted(ClockTrust mode, std::int64_t wall_ns) noexcept {
    switch (mode) {
    case ClockTrust::trusted:
        return true;
    case ClockTrust::untrusted:
        return false;
    case ClockTrust::automatic:
        break;
    }
    if (wall_ns < trust_floor_ns) {
        return false;
    }
    timex tx{};
    const int state = ::adjtimex(&tx);
    if (state >= 0 && state != TIME_ERROR && (tx.status & STA_UNSYNC) == 0) {
        return true;
    }
    return rtc_set_clock();
}

} // namespace custos::io
