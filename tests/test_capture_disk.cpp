// The capture sink (src/capture/) writing through a real reactor: batches
// go out as the reactor's write ops, one per service in flight, and a
// disk that does not keep up costs lines (counted, then a marker line),
// never a wait. The slow disk is a FIFO as `current` (a stream: files.hpp)
// that the test reads as slowly as it likes. Last, the whole runtime: a
// service writing 100 MB flat out into such a disk finishes at its own
// pace, custos's resident set stays flat, and every byte is accounted for.
//
// meson runs this binary once per backend (CUSTOS_BACKEND=uring|epoll); a
// backend the kernel refuses makes the run exit 77 (a skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <custos/runtime.hpp>

#include "backend_probe.hpp"
#include "capture/sink.hpp"
#include "rss.hpp"
#include "scratch_dir.hpp"

using namespace custos;
using namespace custos::capture;
using namespace std::chrono_literals;

namespace {

constexpr std::int64_t ms = 1'000'000;

// A sink on a reactor, with its memory.
struct rig {
    io::reactor r;
    arena mem;
    sink s;
    explicit rig(std::span<const slot_spec> slots, const LogConfig& cfg) {
        REQUIRE(r.init().has_value());
        s.attach(r);
        REQUIRE(!s.reserve(mem, slots, cfg).has_value()); // the measuring pass
        REQUIRE(mem.reserve(mem.needed()));
        auto res = s.reserve(mem, slots, cfg);
        REQUIRE_MESSAGE(res.has_value(), (res ? "" : std::string(res.error().id())));
    }
    ~rig() { s.close(); }
    void out(std::uint32_t slot, std::string_view data, std::int64_t mono_ns = 1000 * ms) {
        s.on_output(slot, 1, data.data(), data.size(), 0, mono_ns, false);
    }
    // One loop turn as the runtime has it: completions, then flush().
    void turn() {
        r.run_once(false);
        s.flush();
    }
    void settle() {
        for (int k = 0; k < 1000 && s.busy(); ++k) {
            r.run_once(false);
            s.flush();
            if (s.busy()) {
                std::this_thread::sleep_for(1ms);
            }
        }
    }
    std::string ring(std::uint32_t slot) {
        std::string b(1 << 16, '\0');
        auto t = s.output(slot).tail(UINT64_MAX, b.data(), b.size());
        b.resize(t.bytes);
        return b;
    }
};

// Every line in `text` whole, of the form "+S.mmm stdout ..." or a drop
// marker; returns the markers' byte counts summed, and counts the lines.
struct parsed {
    std::uint64_t marked = 0;
    std::uint64_t markers = 0;
    std::uint64_t marker_bytes = 0;
    std::uint64_t lines = 0;
    bool ok = true;
    std::string bad;
};

// Feeds bytes as they come (a stream reader); lines checked when whole.
struct line_check {
    parsed p;
    std::string partial;
    void feed(const char* b, std::size_t n) {
        partial.append(b, n);
        std::size_t at = 0;
        for (std::size_t nl; (nl = partial.find('\n', at)) != std::string::npos; at = nl + 1) {
            line(std::string_view(partial).substr(at, nl + 1 - at));
        }
        partial.erase(0, at);
    }
    void line(std::string_view l) {
        ++p.lines;
        const std::size_t sp = l.find(' ');
        const bool stamped = l.size() > 1 && l[0] == '+' && sp != std::string_view::npos;
        const std::string_view rest = stamped ? l.substr(sp + 1) : std::string_view();
        constexpr std::string_view dropped = "custos dropped ";
        if (rest.substr(0, 7) == "stdout ") {
            return;
        }
        if (rest.substr(0, dropped.size()) == dropped) {
            ++p.markers;
            p.marker_bytes += l.size();
            p.marked +=
                std::strtoull(std::string(rest.substr(dropped.size())).c_str(), nullptr, 10);
            if (rest.find("bytes (the disk was too slow)\n") == std::string_view::npos) {
                p.ok = false;
                p.bad = std::string(l);
            }
            return;
        }
        p.ok = false;
        p.bad = std::string(l.substr(0, 120));
    }
};

} // namespace

TEST_CASE("on a reactor: batches go out as write ops; the files hold what the ring holds") {
    custos_test::scratch_dir t("custos-capdisk");
    const slot_spec slots[] = {{"a", OutputMode::file}, {"b", OutputMode::file}};
    LogConfig cfg;
    cfg.dir = t.path;
    cfg.output_file_bytes = 1 << 20;
    cfg.output_files = 2;
    cfg.output_ring_bytes = 64 * 1024;
    rig g(slots, cfg);
    REQUIRE(g.s.open_files(0).has_value());
    REQUIRE(g.s.open_files(1).has_value());
    const std::uint64_t writes_before = g.r.stats().ops_completed;
    const std::string text(85, 'w'); // 100-byte lines
    for (int k = 0; k < 300; ++k) {
        g.out(0, text + "\n");
        g.out(1, "b\n");
    }
    // a's 30 000 bytes: three full batches (81 lines, 8100 bytes) handed
    // off as they filled: the first went to a write, the next two were
    // copied into one buffer behind it; none written yet.
    CHECK(g.s.busy());
    g.turn();
    g.settle();
    CHECK(!g.s.busy());
    CHECK(g.s.counters(0).written_bytes == 30000);
    CHECK(g.s.counters(1).written_bytes == 300 * 16);
    // Fewer writes than batches (a's 4, b's 1): those that waited went
    // out together.
    const std::uint64_t writes = g.r.stats().ops_completed - writes_before;
    CHECK(writes >= 3);
    CHECK(writes <= 4);
    CHECK(t.read("a/current") == g.ring(0).substr(g.ring(0).size() - 30000));
    CHECK(t.read("b/current") == g.ring(1));
    CHECK(g.s.counters(0).dropped_bytes == 0);
    // A partial batch while a write is in flight waits for it, then goes
    // out whole; on_stop() and close() write what is left.
    g.out(0, "one\n");
    g.turn();
    g.out(0, "two\n");
    g.out(0, "three");
    g.s.on_stop(0, 0, 2000 * ms, false);
    g.settle();
    g.s.close();
    const std::string a = t.read("a/current");
    // (A line is stamped when its first byte came.)
    const std::string last = "+1.000 stdout one\n+1.000 stdout two\n+1.000 stdout three\n";
    REQUIRE(a.size() == 30000 + last.size());
    CHECK(a.substr(30000) == last);
    CHECK(g.s.totals().dropped_bytes == 0);
}

TEST_CASE("a stalled disk: batches past max_queued are dropped at once, counted, then a marker") {
    custos_test::scratch_dir t("custos-capdisk");
    REQUIRE(::mkdir(t.at("svc").c_str(), 0750) == 0);
    const std::string fifo = t.at("svc/current");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // The reader: opened, but read only when the test says.
    const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rd >= 0);
    const slot_spec slots[] = {{"svc", OutputMode::file}, {"quiet", OutputMode::file}};
    LogConfig cfg;
    cfg.dir = t.path;
    cfg.output_file_bytes = 4096; // never rotated: a stream
    cfg.output_files = 2;
    cfg.output_ring_bytes = 16 * 1024;
    rig g(slots, cfg);
    REQUIRE(g.s.open_files(0).has_value());
    REQUIRE(g.s.open_files(1).has_value());
    REQUIRE(g.s.files_of(0)->is_stream());
    CHECK(!g.s.files_of(1)->is_stream());
    // 1 MiB of lines, with turns between, and nobody reading: the pipe
    // takes 64 KiB, then one write waits, max_queued - 1 buffers fill
    // behind it, and the rest are dropped as they come.
    const std::string text(85, 's');
    std::uint64_t emitted = 0;
    for (int k = 0; k < 10486; ++k) {
        g.out(0, text + "\n");
        emitted += 100;
        if (k % 50 == 0) {
            g.turn();
        }
    }
    g.out(1, "quiet goes on\n");
    g.turn();
    g.turn();
    // Each batch is cut at the file size: 40 lines, 4000 bytes.
    auto c = g.s.counters(0);
    CHECK(g.s.busy());
    CHECK(c.lines == 10486);
    CHECK(c.unwritten_bytes > 900u * 1024);
    CHECK(c.dropped_bytes == c.unwritten_bytes);
    CHECK(c.unwritten_bytes % 4000 == 0);
    CHECK(c.written_bytes <= 80u * 1024);
    CHECK(g.s.totals().dropped_bytes == c.dropped_bytes);
    // Another service's disk is not held up by this one's.
    g.settle();
    CHECK(t.read("quiet/current") == "+1.000 stdout quiet goes on\n");
    // The ring never refused a line.
    CHECK(g.s.output(0).next() == 10487);

    // The reader catches up: what was waiting goes, and the next batch
    // begins with the marker.
    line_check lc;
    char b[65536];
    auto drain = [&] {
        for (;;) {
            const ssize_t n = ::read(rd, b, sizeof b);
            if (n <= 0) {
                break;
            }
            lc.feed(b, static_cast<std::size_t>(n));
        }
    };
    for (int k = 0; k < 200 && (g.s.busy() || k < 3); ++k) {
        drain();
        g.turn();
        std::this_thread::sleep_for(1ms);
    }
    CHECK(!g.s.busy());
    g.out(0, "caught up\n", 5000 * ms);
    g.turn();
    g.settle();
    drain();
    g.s.close();
    ::close(rd);
    c = g.s.counters(0);
    CHECK(lc.partial.empty()); // whole lines only
    REQUIRE_MESSAGE(lc.p.ok, lc.p.bad);
    // Each gap is reported once, by a marker where it is (after the
    // batches that were queued when it happened).
    CHECK(lc.p.markers >= 1);
    CHECK(lc.p.marked == c.dropped_bytes);
    CHECK(c.markers == lc.p.markers);
    // Every byte emitted is in the stream or counted as dropped.
    CHECK(c.written_bytes - lc.p.marker_bytes + c.dropped_bytes == emitted + 24);
    // The 100-byte lines, the markers and "caught up".
    CHECK(lc.p.lines == (c.written_bytes - lc.p.marker_bytes - 24) / 100 + lc.p.markers + 1);
}

namespace {

std::string svc_helper() {
    const char* p = std::getenv("CUSTOS_SVC_HELPER");
    return p != nullptr ? p : "";
}

struct flood_run {
    bool exited = false;
    long took_ms = 0;
    std::uint64_t got = 0; // bytes the slow disk took
    RuntimeStats stats;
    long rss_before = 0;
    long rss_after = 0;
    line_check lines;
};

// A runtime whose one service writes `total` bytes flat out (output =
// file) into a FIFO `current` a thread reads 8 KiB every 10 ms (about
// 0.8 MB/s), until the service has exited and the runtime stopped.
void flood_into_slow_disk(std::uint64_t total, flood_run& out) {
    const std::string helper = svc_helper();
    REQUIRE_FALSE(helper.empty());
    custos_test::scratch_dir t("custos-capdisk");
    REQUIRE(::mkdir(t.at("flood").c_str(), 0750) == 0);
    const std::string fifo = t.at("flood/current");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const int rd = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(rd >= 0);
    std::atomic<bool> writer_gone{false};
    std::thread reader([&] {
        char b[8192];
        for (;;) {
            const ssize_t n = ::read(rd, b, sizeof b);
            if (n > 0) {
                out.lines.feed(b, static_cast<std::size_t>(n));
                out.got += static_cast<std::uint64_t>(n);
            } else if (n == 0 && writer_gone.load()) {
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
    });

    const std::string size = std::to_string(total);
    const std::string_view argv[] = {helper, "flood", size};
    ServiceSpec s;
    s.name = "flood";
    s.argv = argv;
    s.restart = RestartPolicy::never;
    s.output = OutputMode::file;
    Table tbl;
    tbl.runtime.handle_signals = false;
    tbl.log.dir = t.path;
    tbl.services = {&s, 1};
    struct state {
        Runtime rt;
        bool exited = false;
        std::chrono::steady_clock::time_point at;
    } st;
    REQUIRE(st.rt.init(tbl).has_value());
    st.rt.set_transition_hook(
        [](const Transition& tr, void* ctx) {
            auto& x = *static_cast<state*>(ctx);
            if (tr.to == ServiceState::stopped || tr.to == ServiceState::failed) {
                x.exited = true;
                x.at = std::chrono::steady_clock::now();
                x.rt.stop();
            }
        },
        &st);
    out.rss_before = custos_test::rss_kib();
    const auto started = std::chrono::steady_clock::now();
    REQUIRE(st.rt.start().has_value());
    st.rt.run();
    out.rss_after = custos_test::rss_kib();
    writer_gone.store(true);
    reader.join();
    ::close(rd);
    out.exited = st.exited;
    out.took_ms = static_cast<long>(
        std::chrono::duration_cast<std::chrono::milliseconds>(st.at - started).count());
    out.stats = st.rt.stats();
}

} // namespace

TEST_CASE("100 MB flat out into a slow disk: the service never waits, RSS flat, drops counted") {
    // A first, small run: the code paths and their pages (under qemu-user,
    // its translations too) before the resident set is measured.
    flood_run warm;
    flood_into_slow_disk(4ull << 20, warm);
    REQUIRE(warm.exited);
    constexpr std::uint64_t total = 100ull * 1024 * 1024;
    flood_run r;
    flood_into_slow_disk(total, r);
    REQUIRE(r.exited);
    MESSAGE("100 MB in " << r.took_ms << " ms; the disk took " << r.got << " bytes, "
                         << r.stats.log_dropped_bytes << " dropped; RSS " << r.rss_before << " -> "
                         << r.rss_after << " KiB");
    CHECK(r.stats.output_bytes == total);
    CHECK(r.took_ms < 60'000); // at the disk's pace it would take over 125 s
    CHECK(r.stats.log_dropped_bytes > total / 2);
    CHECK(r.rss_after - r.rss_before < 2048);
    CHECK(r.lines.partial.empty());
    REQUIRE_MESSAGE(r.lines.p.ok, r.lines.p.bad);
    CHECK(r.lines.p.markers >= 1);
    CHECK(r.lines.p.marked <= r.stats.log_dropped_bytes);
}

int main(int argc, char** argv) {
    if (int rc = custos_test::probe_backend(); rc != 0) {
        return rc;
    }
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
