// No allocation in the capture paths after init: with the whole malloc
// family counted (counting_alloc.cpp), sink::on_output() into rings and
// files (written through a reactor's write ops, as in the runtime) with
// rotations and the pruning they start, partial lines and the
// 4096-byte split, on_stop(), flush(), the ring's reads, free_oldest() and
// a files object reopened must not move the count. The framer's wall-time
// prefix is exercised too (the day cache of status::wall_into).
//
// Not doctest (it allocates as it reports). Exit 0 pass, 1 fail, 77 when
// the backend CUSTOS_BACKEND asks for is not available.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>

#include "backend_probe.hpp"
#include "capture/sink.hpp"
#include "counting_alloc.hpp"
#include "io/reactor.hpp"

using namespace custos;
using namespace custos::capture;

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAIL: %s\n", what);
        ++failures;
    }
}

char chunk[4096];
char out[16 * 1024];

} // namespace

int main() {
    char dir[256];
    const char* t = std::getenv("TMPDIR");
    std::snprintf(dir, sizeof dir, "%s/custos-capture-noalloc-XXXXXX",
                  (t != nullptr && *t != '\0') ? t : "/tmp");
    if (::mkdtemp(dir) == nullptr) {
        std::printf("FAIL: mkdtemp: %s\n", std::strerror(errno));
        return 1;
    }
    const slot_spec slots[] = {
        {"web", OutputMode::file},
        {"db", OutputMode::ring},
        {"off", OutputMode::null},
        {"api", OutputMode::automatic},
    };
    LogConfig cfg;
    cfg.dir = dir;
    cfg.output_file_bytes = 16 * 1024;
    cfg.output_files = 3;
    cfg.output_ring_bytes = 8 * 1024;
    static arena mem;
    static sink s;
    // The writes go through a reactor, as in the runtime (its write ops).
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc; // 77: the backend CUSTOS_BACKEND asks for is not here
    }
    static io::reactor loop;
    if (!loop.init().has_value()) {
        std::printf("FAIL: reactor init\n");
        return 1;
    }
    s.attach(loop);
    if (s.reserve(mem, slots, cfg).has_value() || !mem.reserve(mem.needed()) ||
        !s.reserve(mem, slots, cfg).has_value()) {
        std::printf("FAIL: reserve\n");
        return 1;
    }
    for (std::uint32_t i : {0U, 3U}) {
        if (!s.open_files(i).has_value()) {
            std::printf("FAIL: open_files(%u)\n", i);
            return 1;
        }
    }
    // Chunks of mixed lines: short ones, CRLF, a NUL, and a run longer
    // than a line (split at 4096), cut at odd places.
    for (std::size_t k = 0; k < sizeof chunk; ++k) {
        chunk[k] = static_cast<char>('a' + k % 26);
        if (k % 61 == 60) {
            chunk[k] = '\n';
        }
    }
    chunk[100] = '\r';
    chunk[101] = '\n';
    chunk[200] = '\0';
    // The first wall-time render before the count (the day cache).
    s.on_output(0, 1, "warm\n", 5, 1'796'680'258'123'456'789, 1, true);
    s.flush();
    while (s.busy()) {
        loop.run_once(true);
    }

    const std::uint64_t before = custos_test::allocation_count();
    std::int64_t mono = 1'000'000'000;
    for (int round = 0; round < 200; ++round) {
        for (std::uint32_t i = 0; i < 4; ++i) {
            const std::size_t len = 500 + static_cast<std::size_t>((round * 37 + i * 11) % 3500);
            const int stream = (round + static_cast<int>(i)) % 2 + 1;
            s.on_output(i, stream, chunk, len, 1'796'680'258'123'456'789 + mono, mono,
                        round % 3 != 0);
        }
        if (round % 50 == 49) {
            // 5000 bytes without a newline: cut at 4096.
            char run[5000];
            std::memset(run, 'r', sizeof run);
            s.on_output(0, 1, run, sizeof run, 0, mono, false);
            s.on_stop(0, 0, mono, false);
        }
        s.flush();
        while (s.busy()) {
            loop.run_once(true); // the writes' completions
            s.flush();
        }
        mono += 10'000'000;
        auto r = s.output(round % 4).tail(20, out, sizeof out);
        (void)r;
        auto f = s.output(1).since(static_cast<std::uint64_t>(round) * 5, out, sizeof out);
        (void)f;
    }
    const std::uint64_t freed = s.free_oldest() + s.free_oldest();
    const std::uint64_t after = custos_test::allocation_count();

    expect(s.counters(0).lines > 1000, "lines were captured");
    expect(s.counters(0).split_lines >= 4, "long runs were split");
    expect(s.files_of(0)->counters().rotated > 3, "the files rotated");
    expect(s.files_of(0)->counters().deleted > 0, "rotation deleted archives");
    expect(s.output(1).evicted_lines() > 0, "the ring evicted");
    expect(s.counters(2).bytes_in == 0, "the null slot took nothing");
    expect(freed > 0, "free_oldest freed an archive");
    expect(s.totals().dropped_bytes == 0, "nothing dropped");
    if (after != before) {
        std::printf("FAIL: %llu allocations after init\n",
                    static_cast<unsigned long long>(after - before));
        ++failures;
    }
    expect(custos_test::counter_works(after), "the counting allocator counts");
    s.close();
    char cmd[512];
    std::snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)std::system(cmd);
    if (failures == 0) {
        std::printf("ok: %llu lines, %llu rotations, no allocation\n",
                    static_cast<unsigned long long>(s.totals().lines),
                    static_cast<unsigned long long>(s.files_of(0)->counters().rotated));
    }
    return failures == 0 ? 0 : 1;
}
