// bench/capture_core: how fast does the capture library take a service's
// output?
//
// One service in file mode (ring of 16 KiB, files of 256 KiB x 4, the
// defaults) fed 4 KiB chunks of 80-byte text lines through
// sink::on_output(), with sink::flush() after every chunk (the reactor's
// worst case: one drained chunk per turn), so each chunk is cut into
// lines, stamped, copied into the ring and written with the rotations and
// the pruning they bring. Baseline, in the same run and interleaved
// repetition by repetition: plain write() of the same chunks to a file on
// O_APPEND in the same directory (what `cat > file` does).
//
// Prints MB/s of input (median [min..max] over the repetitions), the
// baseline's, their ratio, and the allocations during the measured phase
// (0 expected). The capture writes more bytes than it takes (the prefix).
//
//   --quick   8 MiB and 3 repetitions (emulators); else 64 MiB and 7
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <custos/log.hpp>

#include "capture/sink.hpp"
#include "common.hpp"

namespace {

using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point a) {
    return std::chrono::duration<double>(steady::now() - a).count();
}

char chunk[4096];

} // namespace

int main(int argc, char** argv) {
    using namespace custos;
    bench::print_header("capture_core");
    const bool quick = bench::has_flag(argc, argv, "--quick");
    const std::size_t total = (quick ? 8u : 64u) << 20;
    const int reps = quick ? 3 : 7;

    std::string dir =
        std::string(std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp") +
        "/custos-bench-capture-XXXXXX";
    if (::mkdtemp(dir.data()) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    for (std::size_t k = 0; k < sizeof chunk; ++k) {
        chunk[k] = k % 80 == 79 ? '\n' : static_cast<char>('a' + k % 26);
    }

    const capture::slot_spec slots[] = {{"svc", OutputMode::file}};
    LogConfig cfg;
    cfg.dir = dir;
    static arena mem;
    static capture::sink s;
    if (s.reserve(mem, slots, cfg).has_value() || !mem.reserve(mem.needed()) ||
        !s.reserve(mem, slots, cfg).has_value() || !s.open_files(0).has_value()) {
        std::fprintf(stderr, "capture_core: sink init failed\n");
        return 1;
    }
    const std::string plain = dir + "/plain.log";

    std::printf("input: %zu MiB in 4 KiB chunks of 80-byte lines, %d repetitions, %s\n",
                total >> 20, reps, dir.c_str());
    std::printf("capture: sink::on_output() + flush() per chunk into ring and files "
                "(256 KiB x 4, rotating)\n");
    std::printf("baseline: write() of the same chunks to one O_APPEND file\n");

    double cap_mbs[16];
    double base_mbs[16];
    std::uint64_t allocs = 0;
    std::int64_t mono = 1'000'000'000;
    for (int r = 0; r < reps; ++r) {
        const std::uint64_t a0 = bench::allocation_count();
        auto t0 = steady::now();
        for (std::size_t done = 0; done < total; done += sizeof chunk) {
            s.on_output(0, 1, chunk, sizeof chunk, 0, mono, false);
            s.flush();
            mono += 1000;
        }
        const double ct = seconds_since(t0);
        allocs += bench::allocation_count() - a0;

        const int fd =
            ::open(plain.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0) {
            std::perror("open");
            return 1;
        }
        auto t1 = steady::now();
        for (std::size_t done = 0; done < total; done += sizeof chunk) {
            if (::write(fd, chunk, sizeof chunk) != static_cast<ssize_t>(sizeof chunk)) {
                std::perror("write");
                return 1;
            }
        }
        const double bt = seconds_since(t1);
        ::close(fd);
        cap_mbs[r] = static_cast<double>(total) / ct / 1e6;
        base_mbs[r] = static_cast<double>(total) / bt / 1e6;
        std::printf("  rep %d: capture %.1f MB/s, write() %.1f MB/s\n", r + 1, cap_mbs[r],
                    base_mbs[r]);
    }
    const bench::summary c = bench::summarize(cap_mbs, static_cast<std::size_t>(reps));
    const bench::summary b = bench::summarize(base_mbs, static_cast<std::size_t>(reps));
    const capture::slot_counters k = s.counters(0);
    std::printf("capture  %.1f MB/s [%.1f..%.1f]\n", c.median, c.lo, c.hi);
    std::printf("write()  %.1f MB/s [%.1f..%.1f]\n", b.median, b.lo, b.hi);
    std::printf("ratio    capture / write() = %.2f\n", c.median / b.median);
    std::printf(
        "lines %llu, bytes written %llu (prefix included), rotations %llu, "
        "dropped %llu, allocations while measuring %llu\n",
        static_cast<unsigned long long>(k.lines), static_cast<unsigned long long>(k.written_bytes),
        static_cast<unsigned long long>(s.files_of(0)->counters().rotated),
        static_cast<unsigned long long>(k.dropped_bytes), static_cast<unsigned long long>(allocs));
    s.close();
    const std::string cmd = "rm -rf '" + dir + "'";
    (void)std::system(cmd.c_str());
    return allocs == 0 && k.dropped_bytes == 0 ? 0 : 1;
}
