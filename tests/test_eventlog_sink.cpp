// The event log's writer (src/eventlog/sink.*) on a real reactor and a
// scratch directory, and log_event() through a running Runtime: many
// producer threads, drops and their count, rotation and the seq across a
// re-open, folding, a torn line at open, a full disk.
//
// The same cases run once per backend (CUSTOS_BACKEND, tests/meson.build);
// a backend the kernel refuses makes the run exit 77 (a skip).
//   --only=enospc  ENOSPC on a 64 KiB tmpfs (root, and a mount that works)
// Without --only, every other case runs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <custos/log.hpp>
#include <custos/runtime.hpp>

#include "backend_probe.hpp"
#include "core/arena.hpp"
#include "doctest.hpp"
#include "eventlog/record.hpp"
#include "eventlog/sink.hpp"
#include "json_line.hpp"
#include "scratch_dir.hpp"
#include "status/event.hpp"
#include "tiny_tmpfs.hpp"

using namespace custos;
using namespace std::chrono_literals;
using custos_test::member;
using custos_test::parse_line;
using sv = std::string_view;

namespace {

std::int64_t now_ns() {
    return to_ns(mono_clock::now());
}

// Sanitized and emulated runs are slower (CI sets this).
std::int64_t tolerance_ms() {
    const char* t = std::getenv("CUSTOS_TEST_TOLERANCE_MS");
    return t != nullptr ? std::atoll(t) : 60;
}

const member* field(const std::vector<member>& m, sv key) {
    return custos_test::find(m, key);
}

std::string text_of(const std::vector<member>& m, sv key) {
    const member* f = field(m, key);
    return f != nullptr ? f->text : std::string();
}

std::uint64_t u64_of(const std::vector<member>& m, sv key) {
    const member* f = field(m, key);
    return f != nullptr ? std::strtoull(f->raw.c_str(), nullptr, 10) : 0;
}

// One file of the log directory: its name's seq and its lines.
struct log_file {
    std::string name;
    std::uint64_t seq = 0;
    std::vector<std::string> lines; // each with its '\n'
    bool ends_whole = true;
    std::size_t bytes = 0;
};

// The event log files of `dir` (events-SEQ-UTC.jsonl), oldest first.
std::vector<log_file> read_log(const std::string& dir) {
    std::vector<log_file> out;
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    for (dirent* e; (e = ::readdir(d)) != nullptr;) {
        const sv n = e->d_name;
        if (n.substr(0, 7) != "events-" || n.size() < 6 || n.substr(n.size() - 6) != ".jsonl") {
            continue;
        }
        log_file f;
        f.name = std::string(n);
        f.seq = std::strtoull(f.name.c_str() + 7, nullptr, 10);
        std::string body;
        FILE* fp = std::fopen((dir + "/" + f.name).c_str(), "rb");
        REQUIRE(fp != nullptr);
        char b[65536];
        for (std::size_t k; (k = std::fread(b, 1, sizeof b, fp)) > 0;) {
            body.append(b, k);
        }
        std::fclose(fp);
        f.bytes = body.size();
        f.ends_whole = body.empty() || body.back() == '\n';
        for (std::size_t at = 0; at < body.size();) {
            const std::size_t nl = body.find('\n', at);
            const std::size_t end = nl == std::string::npos ? body.size() : nl + 1;
            f.lines.push_back(body.substr(at, end - at));
            at = end;
        }
        out.push_back(std::move(f));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(),
              [](const log_file& a, const log_file& b) { return a.seq < b.seq; });
    return out;
}

// Every line of the files, parsed (a failed check for each that is not one
// whole JSON object), oldest first.
std::vector<std::vector<member>> records_of(const std::vector<log_file>& files) {
    std::vector<std::vector<member>> out;
    for (const log_file& f : files) {
        CHECK_MESSAGE(f.ends_whole, f.name << " ends in a torn line");
        for (const std::string& l : f.lines) {
            if (l.empty() || l.back() != '\n') {
                continue; // the torn line, reported above
            }
            out.push_back(parse_line(l));
        }
    }
    return out;
}

// Seqs one after the other with no gap, each record once.
void check_seq_run(const std::vector<std::vector<member>>& recs) {
    std::uint64_t prev = 0;
    std::size_t gaps = 0;
    for (const auto& m : recs) {
        const std::uint64_t s = u64_of(m, "seq");
        if (prev != 0 && s != prev + 1) {
            ++gaps;
            if (gaps < 5) {
                MESSAGE("seq " << s << " after " << prev);
            }
        }
        prev = s;
    }
    CHECK(gaps == 0);
}

// A reactor, and a sink on it with its memory, driven turn by turn as the
// runtime drives it (a loop turn, then after_turn()). A pulse timer wakes
// the loop every few milliseconds so that a blocking turn never waits long.
struct loop {
    io::reactor r;
    std::vector<char> mem_buf;
    std::unique_ptr<eventlog::sink> s = std::make_unique<eventlog::sink>();
    io::timer pulse;
    std::string dir;
    LogConfig cfg;

    static void on_pulse(io::timer& t) noexcept {
        loop& l = *static_cast<loop*>(t.user);
        l.r.arm_after(l.pulse, 5ms);
    }

    explicit loop(std::string d, LogConfig c = {}) : dir(std::move(d)), cfg(c) {
        auto i = r.init();
        REQUIRE(i.has_value()); // main() checked that the backend starts
        cfg.dir = dir;
        mem_buf.resize(cfg.ring_bytes + 2 * eventlog::sink::stage_bytes + 4096);
        arena mem(mem_buf.data(), mem_buf.size());
        REQUIRE(s->reserve(mem, cfg).has_value());
        REQUIRE(s->open(r, cfg, "boot-test").has_value());
        pulse.fire = &loop::on_pulse;
        pulse.user = this;
        r.arm_after(pulse, 5ms);
    }
    ~loop() {
        r.cancel(pulse);
        // The mailbox's read stays in flight: the sink goes first, the
        // reactor no longer runs (mailbox.hpp).
    }
    loop(const loop&) = delete;
    loop& operator=(const loop&) = delete;

    void turn(bool block = true) {
        r.run_once(block);
        s->after_turn();
    }
    // Turns until `done()` or the time is up; false when the time ran out.
    template <class F>
    bool run_until(F done, std::chrono::milliseconds limit = 10s) {
        const auto until = mono_clock::now() + limit;
        while (!done()) {
            if (mono_clock::now() > until) {
                return false;
            }
            turn();
        }
        return true;
    }
    // What is staged or in flight written (as the runtime does at its stop,
    // with the loop still turning), then close().
    void close() {
        for (int k = 0; k < 20; ++k) {
            turn(false);
        }
        CHECK(run_until([&] { return !s->busy(); }));
        s->close();
    }
};

eventlog::record custom(sv reason, sv message, std::initializer_list<LogField> fields = {},
                        LogLevel lvl = LogLevel::info) {
    eventlog::record r;
    const std::vector<LogField> f(fields);
    REQUIRE(
        eventlog::make_custom(r, reason, message, f, lvl, "test", now_ns(), status::wall_now_ns()));
    return r;
}

// A service transition as the supervisor reports it.
status::event transition(sv name, ServiceState from, ServiceState to, std::int64_t at) {
    Transition t;
    t.name = name;
    t.from = from;
    t.to = to;
    t.reason = to == ServiceState::backoff ? Reason::process_exited : Reason::unknown;
    t.at_ns = at;
    return status::make_event(t, status::wall_now_ns());
}

// The records the log says did not reach the disk: the sum of its
// "N records did not reach the disk ..." records.
std::uint64_t disk_losses_reported(const std::vector<std::vector<member>>& recs) {
    std::uint64_t n = 0;
    for (const auto& m : recs) {
        const std::string msg = text_of(m, "message");
        if (text_of(m, "reason") == "EventLogRecordsLost" &&
            msg.find("did not reach the disk") != std::string::npos) {
            n += std::strtoull(msg.c_str(), nullptr, 10);
        }
    }
    return n;
}

constexpr int producers = 8;
constexpr int per_producer = 5000;

// The custom records of the producers in `recs`: per thread, each i at
// most once and in order; with `all`, every i (none dropped).
void check_producer_records(const std::vector<std::vector<member>>& recs,
                            std::vector<std::uint64_t>& per_thread, bool all) {
    per_thread.assign(producers, 0);
    std::vector<long> last(producers, -1);
    std::size_t bad = 0;
    for (const auto& m : recs) {
        if (text_of(m, "kind") != "custom") {
            continue;
        }
        const member* fl = field(m, "fields");
        REQUIRE(fl != nullptr);
        // "fields":{"t":"3","i":"17"}
        std::vector<member> inner;
        custos_test::json_reader jr{fl->raw};
        REQUIRE(jr.object(inner));
        const long t = std::atol(text_of(inner, "t").c_str());
        const long i = std::atol(text_of(inner, "i").c_str());
        REQUIRE(t >= 0);
        REQUIRE(t < producers);
        const long prev = last[static_cast<std::size_t>(t)];
        if (all ? i != prev + 1 : i <= prev) {
            ++bad;
        }
        last[static_cast<std::size_t>(t)] = i;
        ++per_thread[static_cast<std::size_t>(t)];
    }
    CHECK(bad == 0); // each thread's records once, in its order
}

// Posts `per_producer` custom records from each of `producers` threads while
// the loop turns; with `retry`, a refused post is tried again after a yield.
// Returns the posts refused (never retried) when !retry.
std::uint64_t run_producers(loop& l, bool retry, std::atomic<std::uint64_t>& accepted) {
    std::atomic<int> finished{0};
    std::atomic<std::uint64_t> refused{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < producers; ++t) {
        threads.emplace_back([&, t] {
            char tb[8];
            char ib[16];
            std::snprintf(tb, sizeof tb, "%d", t);
            for (int i = 0; i < per_producer; ++i) {
                std::snprintf(ib, sizeof ib, "%d", i);
                eventlog::record r;
                const LogField f[] = {{"t", tb}, {"i", ib}};
                (void)eventlog::make_custom(r, "Producer", "a record from a producer thread", f,
                                            LogLevel::info, "producer", now_ns(), 0);
                bool ok = l.s->post(r);
                while (!ok && retry) {
                    std::this_thread::yield();
                    ok = l.s->post(r);
                }
                if (ok) {
                    accepted.fetch_add(1, std::memory_order_relaxed);
                } else {
                    refused.fetch_add(1, std::memory_order_relaxed);
                }
            }
            finished.fetch_add(1, std::memory_order_release);
        });
    }
    const bool drained = l.run_until(
        [&] {
            return finished.load(std::memory_order_acquire) == producers &&
                   l.s->counters().custom == accepted.load(std::memory_order_relaxed);
        },
        60s);
    for (auto& th : threads) {
        th.join();
    }
    CHECK(drained);
    l.close();
    return refused.load();
}

} // namespace

TEST_CASE("sink: 8 threads x 5000 records, retried when refused: each once, in seq order") {
    custos_test::scratch_dir t("custos-sink");
    LogConfig c;
    c.max_file_bytes = 1 << 20;
    c.max_files = 64;
    loop l(t.at("log"), c);
    std::atomic<std::uint64_t> accepted{0};
    const std::uint64_t refused = run_producers(l, true, accepted);
    CHECK(refused == 0);
    CHECK(accepted.load() == producers * per_producer);

    const auto files = read_log(l.dir);
    CHECK(files.size() > 1); // it rotated on the way
    const auto recs = records_of(files);
    REQUIRE(!recs.empty());
    const eventlog::sink_counters& k = l.s->counters();
    CHECK(k.custom == producers * per_producer);
    CHECK(k.write_errors == 0);
    // Every record given a seq is in the files or counted lost, and the
    // losses are reported in the files.
    CHECK(recs.size() + k.lost == k.records);
    CHECK(disk_losses_reported(recs) == k.lost);
    // Producers that retry lose nothing: while both staging buffers are
    // taken the mailbox is held (it fills, and they retry), so a record it
    // took is never lost to a disk slower than the flood.
    CHECK(k.lost == 0);
    check_seq_run(recs);
    CHECK(u64_of(recs.front(), "seq") == 1);
    CHECK(u64_of(recs.back(), "seq") + 1 == l.s->next_seq());
    std::vector<std::uint64_t> per_thread;
    check_producer_records(recs, per_thread, true);
    for (int n = 0; n < producers; ++n) {
        CHECK(per_thread[static_cast<std::size_t>(n)] == per_producer);
    }
    MESSAGE(k.custom_dropped << " posts refused and retried, " << k.batches << " batches, "
                             << files.size() << " files");
}

TEST_CASE("sink: refused posts are not retried: written + dropped == posted") {
    custos_test::scratch_dir t("custos-sink");
    LogConfig c;
    c.max_file_bytes = 1 << 20;
    c.max_files = 64;
    loop l(t.at("log"), c);
    std::atomic<std::uint64_t> accepted{0};
    const std::uint64_t refused = run_producers(l, false, accepted);
    CHECK(accepted.load() + refused == producers * per_producer);

    const auto recs = records_of(read_log(l.dir));
    std::vector<std::uint64_t> per_thread;
    check_producer_records(recs, per_thread, false);
    std::uint64_t written = 0;
    for (std::uint64_t n : per_thread) {
        written += n;
    }
    // The drops as the log reports them: "N custom records dropped: ..."
    // for the full mailbox, "N records did not reach the disk ..." for
    // records that found both staging buffers full (io_uring: a write in
    // flight while the mailbox keeps delivering).
    std::uint64_t dropped = 0;
    std::uint64_t prev = 0;
    bool ordered = true;
    for (const auto& m : recs) {
        const std::uint64_t seq = u64_of(m, "seq");
        ordered = ordered && seq > prev;
        prev = seq;
        const std::string msg = text_of(m, "message");
        if (text_of(m, "reason") == "EventLogRecordsLost" &&
            msg.find("custom records dropped") != std::string::npos) {
            dropped += std::strtoull(msg.c_str(), nullptr, 10);
        }
    }
    const std::uint64_t missed = disk_losses_reported(recs);
    const eventlog::sink_counters& k = l.s->counters();
    CHECK(ordered);
    CHECK(k.custom == accepted.load());
    CHECK(k.custom_dropped == refused);
    // Every record given a seq is in the files or counted lost, and every
    // loss is reported in the files.
    CHECK(recs.size() + k.lost == k.records);
    CHECK(missed == k.lost);
    if (k.lost == 0) {
        check_seq_run(recs);
        CHECK(written == accepted.load());
        CHECK(dropped == refused);
        CHECK(written + dropped == producers * per_producer);
    } else {
        // Some of the lost records may be custom ones or drop reports.
        CHECK(written <= accepted.load());
        CHECK(written + k.lost >= accepted.load());
        CHECK(dropped <= refused);
    }
    MESSAGE(k.lost << " records lost to the disk");
    MESSAGE(refused << " of " << producers * per_producer << " posts refused");
}

TEST_CASE("sink: rotation at 4 KiB, 3 files kept, named by their first seq; seq goes on") {
    custos_test::scratch_dir t("custos-sink");
    LogConfig c;
    c.max_file_bytes = 4096;
    c.max_files = 3;
    std::uint64_t next = 0;
    {
        loop l(t.at("log"), c);
        for (int i = 0; i < 200; ++i) {
            l.s->emit(custom("Filler", "a record to fill the files with, about two hundred bytes"));
            if (i % 7 == 0) { // a few a turn, each turn's batch written before the next
                l.turn(false);
                REQUIRE(l.run_until([&] { return !l.s->busy(); }));
            }
        }
        l.close();
        next = l.s->next_seq();
        CHECK(next == 201);
        CHECK(l.s->file_counters().rotated > 3);
    }
    auto files = read_log(t.at("log"));
    REQUIRE(files.size() == 3);
    std::uint64_t expect = files.front().seq;
    for (const log_file& f : files) {
        CHECK(f.bytes <= 4096);
        REQUIRE(!f.lines.empty());
        const auto first = parse_line(f.lines.front());
        CHECK(u64_of(first, "seq") == f.seq); // named by its first seq
        CHECK(f.seq == expect);
        expect = f.seq + f.lines.size();
    }
    check_seq_run(records_of(files));
    CHECK(expect == next);

    // A new sink on the same directory goes on from the last seq.
    {
        loop l(t.at("log"), c);
        CHECK(l.s->next_seq() == next);
        l.s->emit(custom("After", "the first record after the re-open"));
        l.close();
    }
    files = read_log(t.at("log"));
    CHECK(files.size() <= 3);
    const auto recs = records_of(files);
    REQUIRE(!recs.empty());
    CHECK(u64_of(recs.back(), "seq") == next);
    CHECK(text_of(recs.back(), "reason") == "After");
    check_seq_run(recs);
}

TEST_CASE("sink: a crash loop folds into records with a count; the boot record stays") {
    custos_test::scratch_dir t("custos-sink");
    LogConfig c;
    c.max_file_bytes = 4096;
    c.max_files = 3;
    c.fold_window = std::chrono::seconds(60);
    loop l(t.at("log"), c);
    eventlog::record boot;
    boot.kind = status::event_kind::log;
    boot.level = eventlog::level::notice;
    boot.reason = Reason::runtime_started;
    boot.set_name("custos");
    boot.set_message("the boot record");
    l.s->emit(boot, true);
    l.turn(false);
    // 300 rounds of starting -> running -> backoff -> starting.
    const ServiceState cycle[] = {ServiceState::starting, ServiceState::running,
                                  ServiceState::backoff};
    for (int i = 0; i < 300; ++i) {
        for (int k = 0; k < 3; ++k) {
            l.s->on_event(transition("flappy", cycle[k], cycle[(k + 1) % 3], now_ns()));
        }
        if (i % 10 == 0) {
            l.turn(false);
        }
    }
    l.close();
    CHECK(l.s->counters().folded >= 3 * 297);

    const auto files = read_log(l.dir);
    REQUIRE(!files.empty());
    CHECK(files.front().seq == 1); // nothing rotated away
    const auto recs = records_of(files);
    REQUIRE(!recs.empty());
    CHECK(text_of(recs.front(), "reason") == "RuntimeStarted");
    std::uint64_t to_backoff = 0;
    std::size_t flappy = 0;
    for (const auto& m : recs) {
        if (text_of(m, "name") != "flappy") {
            continue;
        }
        ++flappy;
        if (text_of(m, "to") == "backoff") {
            to_backoff += field(m, "count") != nullptr ? u64_of(m, "count") : 1;
        }
    }
    CHECK(to_backoff == 300);
    CHECK(flappy <= 9); // each step: the first two at once (folder::immediate), then one fold
    MESSAGE(flappy << " records for 900 transitions");
}

TEST_CASE("sink: a torn last line at open is cut and becomes an EventLogTornLine record") {
    custos_test::scratch_dir t("custos-sink");
    std::string newest;
    const sv torn = R"({"seq":4,"boot_id":"boot-test","mono_ns":12)";
    {
        loop l(t.at("log"), {});
        for (int i = 0; i < 3; ++i) {
            l.s->emit(custom("Before", "a whole line"));
        }
        l.close();
        const auto files = read_log(l.dir);
        REQUIRE(files.size() == 1);
        newest = l.dir + "/" + files.back().name;
    }
    {
        const int fd = ::open(newest.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, torn.data(), torn.size()) == static_cast<ssize_t>(torn.size()));
        ::close(fd);
    }
    loop l(t.at("log"), {});
    CHECK(l.s->next_seq() == 5); // seq 4 is the torn-line record
    l.close();
    const auto recs = records_of(read_log(l.dir));
    REQUIRE(recs.size() == 4);
    check_seq_run(recs);
    CHECK(text_of(recs.back(), "reason") == "EventLogTornLine");
    CHECK(text_of(recs.back(), "kind") == "log");
    CHECK(text_of(recs.back(), "message")
              .find("cut a torn last line of " + std::to_string(torn.size()) + " bytes") == 0);
}

TEST_CASE("sink: ENOSPC: the loop keeps its time, losses counted, then reported [enospc]") {
    custos_test::scratch_dir t("custos-sink");
    const custos_test::tiny_tmpfs fs(t.at("mnt"), "custos-sink"); // main() checked
    const std::string& mnt = fs.path;
    const std::string filler = fs.fill(52 * 1024);
    LogConfig c;
    c.max_file_bytes = 1 << 20;
    loop l(mnt + "/log", c);
    // A 20 ms timer, re-armed from its own firing: how late it ever was.
    struct pacer {
        io::reactor* r;
        io::timer tm;
        mono_time due{};
        std::int64_t worst_ns = 0;
        int fired = 0;
        static void fire(io::timer& x) noexcept {
            pacer& p = *static_cast<pacer*>(x.user);
            const std::int64_t late = to_ns(p.r->now()) - to_ns(p.due);
            p.worst_ns = std::max(p.worst_ns, late);
            ++p.fired;
            p.due = p.r->now() + 20ms;
            p.r->arm(p.tm, p.due);
        }
    } pace{&l.r, {}, {}, 0, 0};
    pace.tm.fire = &pacer::fire;
    pace.tm.user = &pace;
    pace.due = l.r.now() + 20ms;
    l.r.arm(pace.tm, pace.due);

    // Records until writes fail, for a second at most.
    const auto until = mono_clock::now() + 1s;
    while (l.s->counters().write_errors == 0 && mono_clock::now() < until) {
        for (int k = 0; k < 5; ++k) {
            l.s->emit(custom("Filler", std::string(200, 'x')));
        }
        l.turn();
    }
    REQUIRE(l.s->counters().write_errors > 0);
    // More while the disk is full: lost to the disk, the loop unbothered.
    const auto full_until = mono_clock::now() + 300ms;
    while (mono_clock::now() < full_until) {
        l.s->emit(custom("WhileFull", "lost to the disk"));
        l.turn();
    }
    // A write still in flight (io_uring) fails too: its records are lost
    // once it ends, so the count is read after it.
    CHECK(l.run_until([&] { return !l.s->busy(); }));
    const std::uint64_t lost = l.s->counters().lost;
    CHECK(lost > 0);
    CHECK(pace.fired >= 10);
    CHECK(pace.worst_ns < tolerance_ms() * 1'000'000);
    MESSAGE(lost << " records lost, the timer at most " << pace.worst_ns / 1000 << " us late");

    // Space again: the next write works and one record tells the count.
    REQUIRE(::truncate(filler.c_str(), 0) == 0);
    const std::uint64_t written = l.s->counters().written_bytes;
    l.s->emit(custom("AfterFull", "written again"));
    CHECK(l.run_until([&] { return l.s->counters().written_bytes > written && !l.s->busy(); }));
    for (int k = 0; k < 5; ++k) {
        l.turn(false);
    }
    l.r.cancel(pace.tm);
    l.close();
    const auto recs = records_of(read_log(l.dir));
    std::uint64_t reported = 0;
    bool after = false;
    for (const auto& m : recs) {
        if (text_of(m, "reason") == "EventLogRecordsLost") {
            reported += std::strtoull(text_of(m, "message").c_str(), nullptr, 10);
            MESSAGE("seq " << u64_of(m, "seq") << ": " << text_of(m, "message"));
        }
        after = after || text_of(m, "reason") == "AfterFull";
    }
    CHECK(after);
    CHECK(reported == lost);
}

// --- log_event() through a running Runtime ---------------------------------------

namespace {

// The newest record of the log directory whose reason is `reason`.
std::vector<member> wait_for_record(const std::string& dir, sv reason) {
    const auto until = mono_clock::now() + 5s;
    while (mono_clock::now() < until) {
        const auto recs = records_of(read_log(dir));
        for (auto it = recs.rbegin(); it != recs.rend(); ++it) {
            if (text_of(*it, "reason") == reason) {
                return *it;
            }
        }
        std::this_thread::sleep_for(10ms);
    }
    return {};
}

} // namespace

TEST_CASE("log_event: no runtime, bad reasons and keys, fields cut whole, levels") {
    CHECK_FALSE(log_event("NoRuntime", "no runtime has started"));

    custos_test::scratch_dir t("custos-logevent");
    const std::string dir = t.at("log");
    Table table;
    table.runtime.cgroup = "off";
    table.log.dir = dir;
    Runtime rt;
    auto i = rt.init(table);
    REQUIRE(i.has_value());
    REQUIRE(rt.start().has_value());
    CHECK(log_event("NotYet", "started: taken, though the loop has not turned yet"));

    // The thread is made after init(): SIGTERM is blocked in it as well,
    // so the kill below reaches the runtime's signalfd.
    std::thread th([&] {
        CHECK_FALSE(log_event("has space", "a reason with a space"));
        CHECK_FALSE(log_event("", "an empty reason"));
        CHECK_FALSE(log_event(std::string(32, 'r'), "a reason of 32 characters"));
        const LogField bad_key[] = {{"Bad-Key", "v"}};
        CHECK_FALSE(log_event("BadKey", "a key out of [a-z0-9_]", bad_key));
        LogField nine[9];
        for (auto& f : nine) {
            f = {"k", "v"};
        }
        CHECK_FALSE(log_event("TooMany", "nine fields", nine));

        const std::string big(150, 'b');
        const std::string mid(60, 'm');
        const LogField fields[] = {{"big", big}, {"mid", mid}, {"quote", "a \"quoted\"\n"}};
        CHECK(log_event("Upload.Failed_1", "the upload failed", fields, LogLevel::critical,
                        "uploader"));
        const auto m = wait_for_record(dir, "Upload.Failed_1");
        REQUIRE(!m.empty());
        CHECK(text_of(m, "kind") == "custom");
        CHECK(text_of(m, "level") == "critical");
        CHECK(text_of(m, "name") == "uploader");
        CHECK(text_of(m, "message") == "the upload failed");
        const member* fl = field(m, "fields");
        REQUIRE(fl != nullptr);
        std::vector<member> inner;
        custos_test::json_reader jr{fl->raw};
        REQUIRE(jr.object(inner));
        // "big" fits; "mid" would pass log_fields_bytes: left out whole;
        // "quote" still fits after it.
        CHECK(text_of(inner, "big") == big);
        CHECK(field(inner, "mid") == nullptr);
        CHECK(text_of(inner, "quote") == "a \"quoted\"\n");

        CHECK(log_event("Plain", "a record at the default level"));
        const auto p = wait_for_record(dir, "Plain");
        CHECK(text_of(p, "level") == "info");
        CHECK(field(p, "fields") == nullptr);
        ::kill(::getpid(), SIGTERM);
    });
    rt.run();
    th.join();
    CHECK(rt.stopped());
    const auto recs = records_of(read_log(dir));
    REQUIRE(!recs.empty());
    CHECK(text_of(recs.front(), "reason") == "RuntimeStarted");
    check_seq_run(recs);
}

TEST_CASE("log_event: false again once the runtime is gone") {
    CHECK_FALSE(log_event("Gone", "the last runtime was destroyed"));
}

int main(int argc, char** argv) {
    return custos_test::enospc_main(argc, argv, "custos-sink", custos_test::probe_backend);
}
