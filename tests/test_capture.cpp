// Captured output (src/capture/): the framer's line boundaries and prefix,
// the ring's numbering, eviction and reads, the files' rotation, count,
// numbering across reopen, torn-line cut and free_oldest(), write failures
// with their marker (EFBIG through RLIMIT_FSIZE, any user), and the sink
// that bundles them, on real temporary directories.
//
// Tagged cases run alone, each exiting 77 (a skip) where it cannot run:
//   --only=enospc  ENOSPC on a 64 KiB tmpfs (root, and a mount that works)
// Without --only, every other case runs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "capture/files.hpp"
#include "capture/framer.hpp"
#include "capture/ring.hpp"
#include "capture/sink.hpp"
#include "doctest.hpp"
#include "prune/scan.hpp"
#include "scratch_dir.hpp"
#include "tiny_tmpfs.hpp"

using namespace custos;
using namespace custos::capture;
using custos_test::tmp_root;
using sv = std::string_view;

namespace {

constexpr std::int64_t ms = 1'000'000;
// 2026-12-07T21:50:58.123456789Z
constexpr std::int64_t wall0 = 1'796'680'258'123'456'789;

stamp mono(std::int64_t ns) {
    return stamp{0, ns, false};
}

// --- the framer ------------------------------------------------------------

struct lines_seen {
    std::vector<std::string> all;
    static void take(void* ctx, const char* line, std::size_t len) noexcept {
        static_cast<lines_seen*>(ctx)->all.emplace_back(line, len);
    }
    line_out out() { return line_out{&lines_seen::take, this}; }
};

struct framed {
    std::vector<char> buf = std::vector<char>(max_line);
    framer f;
    lines_seen seen;
    explicit framed(stream_id s = stream_id::out) { f.bind(buf.data(), s); }
    void feed(sv s, stamp at = mono(1000 * ms)) { f.feed(s.data(), s.size(), at, seen.out()); }
    void flush(stamp at = mono(1000 * ms)) { f.flush(at, seen.out()); }
    // The lines' texts without prefix and '\n' (each checked to have them).
    std::vector<std::string> texts() const {
        std::vector<std::string> out;
        for (const std::string& l : seen.all) {
            const std::size_t sp = l.find(' ');
            REQUIRE(sp != std::string::npos);
            REQUIRE(l.compare(sp + 1, 7, "stdout ") == 0);
            REQUIRE(l.back() == '\n');
            REQUIRE(std::count(l.begin(), l.end(), '\n') == 1);
            out.push_back(l.substr(sp + 8, l.size() - sp - 9));
        }
        return out;
    }
};

using strings = std::vector<std::string>;

} // namespace

TEST_CASE("framer: lines, empty lines, CRLF, and the prefix") {
    framed t;
    t.feed("one\r\ntwo\n\nthree\n");
    CHECK(t.seen.all == strings{"+1.000 stdout one\n", "+1.000 stdout two\n", "+1.000 stdout \n",
                                "+1.000 stdout three\n"});
    framed e(stream_id::err);
    e.feed("oops\n", stamp{wall0, 5 * ms, true});
    CHECK(e.seen.all == strings{"2026-12-07T21:50:58.123Z stderr oops\n"});
    // A lone '\r', or one not right before the '\n', is text.
    framed c;
    c.feed("a\rb\n"
           "c\r\r\n"
           "\r\n");
    CHECK(c.texts() == strings{"a\rb", "c\r", ""});
}

TEST_CASE("framer: '\\r' and '\\n' in different chunks") {
    framed t;
    t.feed("abc\r");
    CHECK(t.seen.all.empty());
    t.feed("\nnext");
    CHECK(t.texts() == strings{"abc"});
    t.feed("\r");
    t.feed("x\n"); // the held '\r' was text after all
    CHECK(t.texts() == strings{"abc", "next\rx"});
    t.feed("\r");
    t.flush(); // no '\n' came: the '\r' is kept
    CHECK(t.texts() == strings{"abc", "next\rx", "\r"});
}

TEST_CASE("framer: the 4096-byte split, exactly at and around it") {
    const std::string k4095(4095, 'a');
    const std::string k4096(4096, 'b');
    const std::string k4097(4097, 'c');
    {
        framed t;
        t.feed(k4095 + "\n");
        CHECK(t.texts() == strings{k4095});
        CHECK(t.f.splits() == 0);
    }
    {
        framed t; // exactly max_line_text: one line, no empty one after it
        t.feed(k4096 + "\n");
        CHECK(t.texts() == strings{k4096});
        CHECK(t.f.splits() == 0);
        CHECK(t.seen.all[0].size() == std::string("+1.000 stdout ").size() + 4096 + 1);
    }
    {
        framed t;
        t.feed(k4097 + "\n");
        CHECK(t.texts() == strings{std::string(4096, 'c'), "c"});
        CHECK(t.f.splits() == 1);
    }
    {
        framed t; // CRLF right after a full line
        t.feed(k4096 + "\r\n");
        CHECK(t.texts() == strings{k4096});
    }
    {
        framed t; // in odd chunks, 2 lines and a bit
        const std::string big = std::string(4096, 'x') + std::string(4096, 'y') + "z\n";
        for (std::size_t at = 0; at < big.size(); at += 1000) {
            t.feed(sv(big).substr(at, 1000));
        }
        CHECK(t.texts() == strings{std::string(4096, 'x'), std::string(4096, 'y'), "z"});
        CHECK(t.f.splits() == 2);
    }
    {
        framed t; // a full line held, then flushed: one line
        t.feed(k4096);
        CHECK(t.f.held() == 4096);
        CHECK(t.seen.all.empty());
        t.flush();
        CHECK(t.texts() == strings{k4096});
    }
}

TEST_CASE("framer: a partial line is held until flush; NUL bytes are kept") {
    framed t;
    t.feed("no newline yet");
    CHECK(t.seen.all.empty());
    CHECK(t.f.held() == 14);
    t.flush();
    CHECK(t.texts() == strings{"no newline yet"});
    t.flush(); // nothing held: nothing more
    CHECK(t.seen.all.size() == 1);
    const std::string nul("a\0b\0\n", 5);
    t.feed(nul);
    REQUIRE(t.seen.all.size() == 2);
    CHECK(t.texts()[1] == std::string("a\0b\0", 4));
}

TEST_CASE("framer: a line is stamped when its first byte came; untrusted clock prefix") {
    framed t;
    t.feed("ab", mono(12'345'678'901));
    t.feed("c\n", mono(99 * 1000 * ms));
    t.feed("\n", mono(7 * ms));
    CHECK(t.seen.all == strings{"+12.345 stdout abc\n", "+0.007 stdout \n"});
    char b[32];
    CHECK(sv(b, put_time(b, mono(-5))) == "+0.000");
    CHECK(sv(b, put_time(b, mono(9'223'372'036'854'775'807))) == "+9223372036.854");
    CHECK(sv(b, put_time(b, stamp{wall0, 0, true})) == "2026-12-07T21:50:58.123Z");
    CHECK(stream_name(stream_id::err) == "stderr");
}

// --- the ring --------------------------------------------------------------

namespace {

std::string line_n(std::uint64_t n, std::size_t len) {
    // "<n> xxxx...\n", len bytes in all.
    std::string s = std::to_string(n) + " ";
    s.resize(len - 1, 'x');
    s += '\n';
    return s;
}

struct ring_box {
    arena mem;
    ring r;
    explicit ring_box(std::size_t cap) {
        REQUIRE(mem.reserve(cap + 64));
        REQUIRE(r.reserve(mem, cap).has_value());
    }
    std::uint64_t push(const std::string& l) { return r.push(l.data(), l.size()); }
};

} // namespace

TEST_CASE("ring: numbers from 1, eviction of whole lines only") {
    ring_box b(5000);
    CHECK(b.r.first() == 1);
    CHECK(b.r.next() == 1);
    for (std::uint64_t n = 1; n <= 4; ++n) {
        CHECK(b.push(line_n(n, 1000)) == n);
    }
    CHECK(b.r.size() == 4000);
    CHECK(b.r.evicted_lines() == 0);
    CHECK(b.push(line_n(5, 1000)) == 5); // 5000: fits exactly
    CHECK(b.r.first() == 1);
    CHECK(b.push(line_n(6, 1)) == 6); // one byte over: line 1 goes, whole
    CHECK(b.r.first() == 2);
    CHECK(b.r.evicted_bytes() == 1000);
    CHECK(b.r.size() == 4001);
    CHECK(b.push(line_n(7, 3000)) == 7); // lines 2..4 go
    CHECK(b.r.first() == 5);
    CHECK(b.r.evicted_lines() == 4);
    CHECK(b.r.size() == 4001);
    std::string out(8000, '\0');
    auto all = b.r.since(1, out.data(), out.size());
    CHECK(all.lost == 4);
    CHECK(all.first == 5);
    CHECK(all.lines == 3);
    CHECK(all.next == 8);
    CHECK(out.substr(0, all.bytes) == line_n(5, 1000) + line_n(6, 1) + line_n(7, 3000));
    // Not reserved, empty, too long: nothing kept.
    ring none;
    CHECK(none.push("x\n", 2) == 0);
    CHECK(b.push(std::string()) == 0);
    CHECK(b.push(line_n(0, 5001)) == 0);
    CHECK(b.r.next() == 8);
}

TEST_CASE("ring: tail(n) with n larger than held, and with a small buffer") {
    ring_box b(5000);
    char out[6000];
    auto none = b.r.tail(10, out, sizeof out);
    CHECK(none.bytes == 0);
    CHECK(none.lines == 0);
    CHECK(none.first == 1);
    for (std::uint64_t n = 1; n <= 3; ++n) {
        b.push(line_n(n, 100));
    }
    auto t = b.r.tail(10, out, sizeof out);
    CHECK(t.lines == 3);
    CHECK(t.first == 1);
    CHECK(t.next == 4);
    CHECK(sv(out, t.bytes) == line_n(1, 100) + line_n(2, 100) + line_n(3, 100));
    auto two = b.r.tail(2, out, sizeof out);
    CHECK(two.lines == 2);
    CHECK(two.first == 2);
    CHECK(sv(out, two.bytes) == line_n(2, 100) + line_n(3, 100));
    auto fit = b.r.tail(3, out, 250); // whole lines only: two fit
    CHECK(fit.lines == 2);
    CHECK(fit.bytes == 200);
    auto tiny = b.r.tail(3, out, 99);
    CHECK(tiny.lines == 0);
    CHECK(tiny.bytes == 0);
    CHECK(b.r.tail(0, out, sizeof out).lines == 0);
}

TEST_CASE("ring: since() follows, reports what eviction took, never repeats") {
    ring_box b(4200);
    char out[9000];
    std::uint64_t next = 1;
    std::uint64_t seen = 0;
    std::uint64_t lost = 0;
    std::uint64_t pushed = 0;
    for (int round = 0; round < 50; ++round) {
        const int burst = round % 7 == 6 ? 60 : 3; // now and then more than the ring holds
        for (int k = 0; k < burst; ++k) {
            ++pushed;
            REQUIRE(b.push(line_n(pushed, 90 + (pushed % 5) * 17)) == pushed);
        }
        auto r = b.r.since(next, out, sizeof out);
        CHECK(r.first == next + r.lost);
        // Each line read is the one its number says.
        std::size_t at = 0;
        for (std::uint64_t n = r.first; n < r.next; ++n) {
            const std::string want = line_n(n, 90 + (n % 5) * 17);
            REQUIRE(sv(out + at, want.size()) == want);
            at += want.size();
        }
        CHECK(at == r.bytes);
        seen += r.lines;
        lost += r.lost;
        next = r.next;
    }
    CHECK(next == pushed + 1);
    CHECK(seen + lost == pushed);
    CHECK(lost > 0);
    // From 0: the same as from 1 (no line 0 to have lost).
    ring_box fresh(5000);
    fresh.push(line_n(1, 10));
    auto zero = fresh.r.since(0, out, sizeof out);
    CHECK(zero.lost == 0);
    CHECK(zero.lines == 1);
    CHECK(zero.next == 2);
    // Past the end: nothing, and the same number back.
    auto past = b.r.since(pushed + 10, out, sizeof out);
    CHECK(past.bytes == 0);
    CHECK(past.next == pushed + 1);
}

TEST_CASE("ring: contents against a model across wrap-around") {
    ring_box b(4500);
    std::deque<std::string> model;
    std::size_t held = 0;
    std::uint64_t seed = 7;
    std::vector<char> out(5000);
    for (std::uint64_t n = 1; n <= 3000; ++n) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        const std::size_t len = 2 + (seed >> 33) % (n % 50 == 0 ? 4100 : 300);
        const std::string l = line_n(n, std::max<std::size_t>(len, std::to_string(n).size() + 2));
        REQUIRE(b.push(l) == n);
        model.push_back(l);
        held += l.size();
        while (held > 4500) {
            held -= model.front().size();
            model.pop_front();
        }
        REQUIRE(b.r.size() == held);
        REQUIRE(b.r.first() == n + 1 - model.size());
        if (n % 97 == 0) {
            auto t = b.r.tail(UINT64_MAX, out.data(), out.size());
            std::string all;
            for (const std::string& s : model) {
                all += s;
            }
            REQUIRE(t.lines == model.size());
            REQUIRE(sv(out.data(), t.bytes) == all);
        }
    }
}

TEST_CASE("ring: capacity below a longest line is refused; two-pass sizing") {
    arena m;
    ring r;
    auto bad = r.reserve(m, max_line - 1);
    REQUIRE(!bad.has_value());
    CHECK(bad.error().reason() == Reason::invalid_argument);
    auto measure = r.reserve(m, 5000);
    REQUIRE(!measure.has_value());
    CHECK(measure.error().reason() == Reason::out_of_memory);
    CHECK(m.needed() >= 5000);
    REQUIRE(m.reserve(m.needed()));
    CHECK(r.reserve(m, 5000).has_value());
    CHECK(r.capacity() == 5000);
}

// --- the files ---------------------------------------------------------------

namespace {

struct tmp_dir : custos_test::scratch_dir {
    tmp_dir() : scratch_dir("custos-capture") {}
    std::vector<std::string> files(const std::string& sub) const {
        std::vector<std::string> out;
        const std::string cmd = "ls -1 '" + at(sub) + "'";
        FILE* p = ::popen(cmd.c_str(), "r");
        REQUIRE(p != nullptr);
        char line[512];
        while (std::fgets(line, sizeof line, p) != nullptr) {
            std::string s(line);
            if (!s.empty() && s.back() == '\n') {
                s.pop_back();
            }
            out.push_back(s);
        }
        ::pclose(p);
        return out;
    }
    void write(const std::string& name, sv body) const {
        const int fd = ::open(at(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()));
        ::close(fd);
    }
};

std::string archive(std::uint64_t seq) {
    char b[64];
    std::snprintf(b, sizeof b, "output-%020llu.log", static_cast<unsigned long long>(seq));
    return b;
}

// A files object with its arena and a pruner workspace.
struct disk {
    arena mem;
    prune::workspace ws;
    files f;
    disk(const std::string& dir, sv service, std::uint32_t keep = 8) {
        REQUIRE(mem.reserve(prune::workspace::footprint(files::scan_capacity(keep)) + 8192));
        REQUIRE(ws.init(mem, files::scan_capacity(keep)).has_value());
        REQUIRE(f.reserve(mem, dir, service).has_value());
    }
    files_report open(std::uint64_t bytes, std::uint32_t keep) {
        auto r = f.open(ws, bytes, keep);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : std::string(r.error().id())));
        return *r;
    }
    // Appends `s` from a buffer with the marker's room before it.
    Result<void> try_append(const std::string& s, std::int64_t at = 1000 * ms) {
        std::string buf(files::marker_room, '\0');
        buf += s;
        return f.append(buf.data() + files::marker_room, s.size(), mono(at));
    }
    void append(const std::string& s) {
        auto r = try_append(s);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : std::string(r.error().id())));
    }
};

} // namespace

TEST_CASE("files: a new directory, `current`, and bad arguments") {
    tmp_dir t;
    disk d(t.path, "web");
    auto o = d.open(1000, 4);
    CHECK(o.created);
    CHECK(o.archives == 0);
    CHECK(o.next_seq == 1);
    CHECK(o.size == 0);
    struct stat st;
    REQUIRE(::stat(t.at("web").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0750);
    CHECK(d.f.path() == t.at("web"));
    d.append("hello\n");
    CHECK(t.read("web/current") == "hello\n");
    CHECK(d.try_append("").has_value()); // empty: no write

    arena m;
    REQUIRE(m.reserve(4096));
    files f;
    CHECK(f.reserve(m, "relative/dir", "x").error().reason() == Reason::invalid_argument);
    CHECK(f.reserve(m, t.path, "..").error().reason() == Reason::invalid_argument);
    CHECK(f.reserve(m, t.path, "a/b").error().reason() == Reason::invalid_argument);
    CHECK(f.reserve(m, t.path, "").error().reason() == Reason::invalid_argument);
    char room[files::marker_room + 2] = {};
    CHECK(f.append(room + files::marker_room, 2, mono(0)).error().reason() ==
          Reason::invalid_argument);
    REQUIRE(f.reserve(m, t.at("no/such"), "svc").has_value());
    auto missing = f.open(d.ws, 1000, 4);
    REQUIRE(!missing.has_value());
    CHECK(missing.error().reason() == Reason::capture_unavailable);
    CHECK(missing.error().sys_errno() == ENOENT);
    REQUIRE(f.reserve(m, t.path, "svc").has_value());
    CHECK(f.open(d.ws, 0, 4).error().reason() == Reason::invalid_argument);
    CHECK(f.open(d.ws, 100, 0).error().reason() == Reason::invalid_argument);
    CHECK(!f.is_open());
}

TEST_CASE("files: rotation exactly at the size boundary, between whole lines") {
    tmp_dir t;
    disk d(t.path, "svc");
    d.open(1000, 8);
    const std::string a(599, 'a'), b(399, 'b');
    d.append(a + "\n");
    d.append(b + "\n"); // 1000: fits exactly
    CHECK(d.f.current_size() == 1000);
    CHECK(d.f.counters().rotated == 0);
    d.append("c\n"); // one line over: rotates first
    CHECK(d.f.counters().rotated == 1);
    CHECK(t.read("svc/" + archive(1)) == a + "\n" + b + "\n");
    CHECK(t.read("svc/current") == "c\n");
    // A write longer than a whole file goes in alone, into a new file (the
    // sink cuts its batches at the file size, so only a line can be).
    std::string batch;
    for (int k = 0; k < 5; ++k) {
        batch += std::string(299, static_cast<char>('0' + k)) + "\n";
    }
    d.append(batch);
    CHECK(d.f.counters().rotated == 2);
    CHECK(t.read("svc/" + archive(2)) == "c\n");
    CHECK(t.read("svc/current") == batch);
    // A line longer than a whole file goes in alone.
    const std::string huge(1500, 'h');
    d.append(huge + "\n");
    CHECK(d.f.counters().rotated == 3);
    CHECK(t.read("svc/current") == huge + "\n");
    d.append("after\n");
    CHECK(t.read("svc/current") == "after\n");
    CHECK(d.f.next_seq() == 5);
}

TEST_CASE("files: output_files kept, oldest go by number; numbering continues after reopen") {
    tmp_dir t;
    {
        disk d(t.path, "svc");
        d.open(100, 3);
        for (int k = 0; k < 20; ++k) {
            d.append(std::string(59, 'x') + "\n"); // one line a file
        }
        CHECK(d.f.counters().rotated == 19);
        CHECK(d.f.counters().deleted == 17);
        CHECK(t.files("svc") == strings{"current", archive(18), archive(19)});
    }
    t.write("svc/notes.txt", "not ours\n");
    t.write("svc/output-latest.log", "a stray that matches the glob\n");
    disk d(t.path, "svc");
    auto o = d.open(100, 3);
    CHECK(!o.created);
    CHECK(o.archives == 2);
    CHECK(o.next_seq == 20);
    CHECK(o.size == 60);
    d.append(std::string(59, 'y') + "\n");
    CHECK(t.files("svc") ==
          strings{"current", "notes.txt", archive(19), archive(20), "output-latest.log"});
    // A smaller count at the next open deletes the extra archives at once.
    disk d2(t.path, "svc");
    d2.open(100, 2);
    CHECK(t.files("svc") == strings{"current", "notes.txt", archive(20), "output-latest.log"});
    CHECK(t.read("svc/notes.txt") == "not ours\n");
}

TEST_CASE("files: output_files 1 empties `current` instead of archiving") {
    tmp_dir t;
    disk d(t.path, "svc");
    d.open(100, 1);
    d.append(std::string(79, 'a') + "\n");
    d.append(std::string(79, 'b') + "\n");
    CHECK(d.f.counters().rotated == 1);
    CHECK(t.files("svc") == strings{"current"});
    CHECK(t.read("svc/current") == std::string(79, 'b') + "\n");
}

TEST_CASE("files: a torn last line is cut at open") {
    tmp_dir t;
    REQUIRE(::mkdir(t.at("svc").c_str(), 0750) == 0);
    t.write("svc/current", "whole\nline two\ntorn li");
    disk d(t.path, "svc");
    auto o = d.open(1000, 4);
    CHECK(o.cut_bytes == 7);
    CHECK(o.size == 15);
    CHECK(d.f.counters().cut_bytes == 7);
    CHECK(t.read("svc/current") == "whole\nline two\n");
    d.append("next\n");
    CHECK(t.read("svc/current") == "whole\nline two\nnext\n");
    // One torn line only, longer than a read chunk: emptied.
    t.write("svc/current", std::string(9000, 'z'));
    disk d2(t.path, "svc");
    auto o2 = d2.open(1000, 4);
    CHECK(o2.cut_bytes == 9000);
    CHECK(t.read("svc/current").empty());
}

TEST_CASE("files: free_oldest deletes the oldest archive, never `current`") {
    tmp_dir t;
    disk d(t.path, "svc");
    d.open(100, 4);
    CHECK(d.f.free_oldest() == 0); // none yet
    for (int k = 0; k < 3; ++k) {
        d.append(std::string(59 + k, 'x') + "\n");
    }
    const std::string last = std::string(49, 'l') + "\n";
    d.append(last);
    CHECK(t.files("svc") == strings{"current", archive(1), archive(2), archive(3)});
    CHECK(d.f.free_oldest() == 60);
    CHECK(t.files("svc") == strings{"current", archive(2), archive(3)});
    CHECK(d.f.free_oldest() == 61);
    CHECK(d.f.free_oldest() == 62); // the last archive
    CHECK(t.files("svc") == strings{"current"});
    CHECK(d.f.free_oldest() == 0);
    CHECK(t.read("svc/current") == last);
    CHECK(d.f.counters().freed_bytes == 183);
}

namespace {

// RLIMIT_FSIZE makes writes past it fail with EFBIG (SIGXFSZ ignored): a
// failing disk any user can have.
struct fsize_limit {
    rlimit old{};
    void (*old_handler)(int) = nullptr;
    explicit fsize_limit(rlim_t bytes) {
        REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
        old_handler = ::signal(SIGXFSZ, SIG_IGN);
        rlimit lim = old;
        lim.rlim_cur = bytes;
        REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
    }
    ~fsize_limit() {
        (void)::setrlimit(RLIMIT_FSIZE, &old);
        ::signal(SIGXFSZ, old_handler);
    }
};

} // namespace

TEST_CASE("files: a failed write is cut back and counted; a marker line comes first after") {
    tmp_dir t;
    disk d(t.path, "svc");
    d.open(1 << 20, 4);
    const std::string l(99, 'a');
    d.append(l + "\n");
    {
        fsize_limit lim(250);
        // 100 + 200 > 250: a short write (150 of 200), cut back.
        const std::string two = l + "\n" + l + "\n";
        auto r = d.try_append(two, 0);
        REQUIRE(!r.has_value());
        CHECK(r.error().reason() == Reason::capture_write_failed);
        CHECK(r.error().sys_errno() == ENOSPC); // a short write reads as a full disk
        CHECK(d.f.counters().cut_bytes == 150);
        CHECK(t.read("svc/current") == l + "\n");
        fsize_limit full(100); // now at the limit: EFBIG
        auto r2 = d.try_append(two, 0);
        REQUIRE(!r2.has_value());
        CHECK(r2.error().sys_errno() == EFBIG);
        CHECK(t.read("svc/current") == l + "\n");
        CHECK(d.f.counters().dropped_bytes == 400);
        CHECK(d.f.counters().write_errors == 2);
        CHECK(d.f.pending_drop() == 400);
    }
    d.append("back\n");
    CHECK(d.f.pending_drop() == 0);
    CHECK(d.f.counters().markers == 1);
    CHECK(t.read("svc/current") ==
          l + "\n" + "+1.000 custos dropped 400 bytes (ENOSPC)\n" + "back\n");
    d.append("more\n"); // no second marker
    CHECK(d.f.counters().markers == 1);
}

// --- the sink ----------------------------------------------------------------

namespace {

struct sink_box {
    arena mem;
    sink s;
    LogConfig cfg;
    sink_box(std::span<const slot_spec> slots, const LogConfig& c) : cfg(c) {
        auto m = s.reserve(mem, slots, cfg); // the measuring pass
        REQUIRE(!m.has_value());
        REQUIRE(m.error().reason() == Reason::out_of_memory);
        REQUIRE(mem.reserve(mem.needed()));
        auto r = s.reserve(mem, slots, cfg);
        REQUIRE_MESSAGE(r.has_value(), (r ? "" : std::string(r.error().id())));
    }
    void out(std::uint32_t slot, int stream, sv data, std::int64_t mono_ns = 1000 * ms) {
        s.on_output(slot, stream, data.data(), data.size(), 0, mono_ns, false);
    }
    std::string tail(std::uint32_t slot) {
        std::string b(1 << 16, '\0');
        auto r = s.output(slot).tail(UINT64_MAX, b.data(), b.size());
        b.resize(r.bytes);
        return b;
    }
};

} // namespace

TEST_CASE("sink: modes, ring and files hold the same lines, batches go out at flush") {
    tmp_dir t;
    const slot_spec slots[] = {
        {"web", OutputMode::automatic}, {"db", OutputMode::ring},   {"quiet", OutputMode::null},
        {"loud", OutputMode::inherit},  {"file", OutputMode::file},
    };
    LogConfig cfg;
    cfg.dir = t.path;
    cfg.output_file_bytes = 1 << 20;
    cfg.output_files = 3;
    cfg.output_ring_bytes = 8192;
    sink_box b(slots, cfg);
    CHECK(b.s.size() == 5);
    CHECK(b.s.captures(0));
    CHECK(b.s.captures(1));
    CHECK(!b.s.captures(2));
    CHECK(!b.s.captures(3));
    CHECK(b.s.files_of(0) != nullptr);
    CHECK(b.s.files_of(1) == nullptr);
    CHECK(!b.s.has_files(0)); // not opened yet
    REQUIRE(b.s.open_files(0).has_value());
    REQUIRE(b.s.open_files(4).has_value());
    CHECK(!b.s.open_files(1).has_value());
    CHECK(b.s.has_files(0));

    b.out(0, 1, "hello\nwor");
    b.out(0, 2, "an error\n");
    b.out(0, 1, "ld\n");
    b.out(1, 1, "ring only\n");
    b.out(2, 1, "not captured\n");
    b.out(0, 3, "bad stream\n");
    const std::string want = "+1.000 stdout hello\n+1.000 stderr an error\n+1.000 stdout world\n";
    CHECK(b.tail(0) == want);
    CHECK(b.tail(1) == "+1.000 stdout ring only\n");
    CHECK(b.tail(2).empty());
    CHECK(t.read("web/current").empty()); // batched until flush
    b.s.flush();
    CHECK(t.read("web/current") == want);
    CHECK(t.files("").size() == 2); // web, file: no directory for the others
    b.out(0, 1, "partial");
    b.s.on_stop(0, 0, 2000 * ms, false);
    CHECK(t.read("web/current") == want + "+1.000 stdout partial\n");
    auto c = b.s.counters(0);
    CHECK(c.bytes_in == 9 + 9 + 3 + 7);
    CHECK(c.lines == 4);
    CHECK(c.dropped_bytes == 0);
    CHECK(c.written_bytes == want.size() + 22);
    CHECK(b.s.totals().lines == 5);
    CHECK(b.s.totals().bytes_in == 9 + 9 + 3 + 7 + 10);
    CHECK(b.s.counters(2).bytes_in == 0);
}

TEST_CASE("sink: a full batch is written before the next line; rotation and free_oldest") {
    tmp_dir t;
    const slot_spec slots[] = {{"a", OutputMode::file}, {"b", OutputMode::file}};
    LogConfig cfg;
    cfg.dir = t.path;
    cfg.output_file_bytes = 4096;
    cfg.output_files = 4;
    cfg.output_ring_bytes = max_line;
    sink_box b(slots, cfg);
    REQUIRE(b.s.open_files(0).has_value());
    REQUIRE(b.s.open_files(1).has_value());
    const std::string text(85, 't'); // 100-byte lines with the prefix
    for (int k = 0; k < 100; ++k) {
        b.out(0, 1, text + "\n");
    }
    // Batches are cut at the file size (4096 here, under the 8 KiB
    // buffer): 40 lines each; two went out, the rest waits for flush().
    CHECK(b.s.counters(0).written_bytes == 8000);
    b.s.flush();
    CHECK(b.s.counters(0).written_bytes == 10000);
    CHECK(b.s.files_of(0)->counters().rotated == 2);
    CHECK(t.files("a") == strings{"current", archive(1), archive(2)});
    CHECK(t.read("a/" + archive(1)).size() == 4000); // 40 whole lines
    // The ring kept the newest whole lines only.
    CHECK(b.s.output(0).size() == 4100);
    CHECK(b.s.output(0).first() == 60);
    // free_oldest takes the services in turn; b has nothing.
    CHECK(b.s.free_oldest() == 4000);
    CHECK(b.s.free_oldest() == 4000);
    CHECK(b.s.free_oldest() == 0);
    CHECK(t.files("a") == strings{"current"});
}

TEST_CASE("sink: bad configurations are init errors") {
    tmp_dir t;
    arena m;
    sink s;
    const slot_spec file[] = {{"svc", OutputMode::file}};
    LogConfig cfg; // no dir
    CHECK(s.reserve(m, file, cfg).error().reason() == Reason::invalid_argument);
    cfg.dir = "relative";
    CHECK(s.reserve(m, file, cfg).error().reason() == Reason::invalid_argument);
    cfg.dir = t.path;
    cfg.output_ring_bytes = 1024;
    CHECK(s.reserve(m, file, cfg).error().reason() == Reason::invalid_argument);
    cfg.output_ring_bytes = 16 * 1024;
    cfg.output_files = 0;
    CHECK(s.reserve(m, file, cfg).error().reason() == Reason::invalid_argument);
    const slot_spec bad_name[] = {{"../up", OutputMode::file}};
    cfg.output_files = 4;
    CHECK(s.reserve(m, bad_name, cfg).error().reason() == Reason::invalid_argument);
    // Without a dir, automatic means ring and needs no file settings.
    const slot_spec autos[] = {{"svc", OutputMode::automatic}};
    LogConfig ring_only;
    ring_only.output_files = 0;
    sink_box b(autos, ring_only);
    CHECK(b.s.captures(0));
    CHECK(b.s.files_of(0) == nullptr);
    // Out of range slots are ignored.
    b.out(7, 1, "x\n");
    b.s.on_stop(7, 0, 0, false);
    CHECK(b.s.output(7).size() == 0);
    CHECK(b.s.counters(7).bytes_in == 0);
}

TEST_CASE("capture on a tiny tmpfs: ENOSPC drops are counted, a marker after recovery [enospc]") {
    tmp_dir t;
    const custos_test::tiny_tmpfs fs(t.at("mnt"), "custos-capture"); // main() checked
    const std::string& mnt = fs.path;
    const std::string filler = fs.fill(40 * 1024);
    const slot_spec slots[] = {{"svc", OutputMode::file}};
    LogConfig cfg;
    cfg.dir = mnt;
    cfg.output_file_bytes = 1 << 20;
    cfg.output_files = 2;
    sink_box b(slots, cfg);
    REQUIRE(b.s.open_files(0).has_value());
    const std::string text(185, 'o'); // 200-byte lines
    std::uint64_t fed = 0;
    for (int k = 0; k < 400; ++k) {
        b.out(0, 1, text + "\n");
        fed += 200;
        b.s.flush();
    }
    auto c = b.s.counters(0);
    CHECK(c.lines == 400);
    CHECK(c.dropped_bytes > 0);
    CHECK(c.last_error == Reason::capture_write_failed);
    CHECK(c.last_errno == ENOSPC);
    CHECK(c.markers == 0); // no write worked since the first drop
    CHECK(c.written_bytes + c.dropped_bytes == fed);
    CHECK(b.s.totals().dropped_bytes == c.dropped_bytes);
    const std::string cur = mnt + "/svc/current";
    auto whole_lines = [&]() {
        std::string body;
        FILE* f = std::fopen(cur.c_str(), "rb");
        REQUIRE(f != nullptr);
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) {
            body.append(buf, n);
        }
        std::fclose(f);
        REQUIRE(!body.empty());
        CHECK(body.back() == '\n');
        return body;
    };
    const std::string before = whole_lines();
    CHECK(before.size() == c.written_bytes);
    CHECK(before.size() % 200 == 0);
    // The ring never dropped a line.
    CHECK(b.s.output(0).next() == 401);
    // Space again: the next batch is preceded by the marker.
    REQUIRE(::truncate(filler.c_str(), 0) == 0);
    b.out(0, 1, "recovered\n", 5000 * ms);
    b.s.flush();
    const std::string after = whole_lines();
    const std::string marker =
        "+5.000 custos dropped " + std::to_string(c.dropped_bytes) + " bytes (ENOSPC)\n";
    CHECK(after == before + marker + "+5.000 stdout recovered\n");
    CHECK(b.s.counters(0).markers == 1);
    CHECK(b.s.totals().markers == 1);
    // A reopen finds nothing torn.
    disk d(mnt, "svc");
    CHECK(d.open(1 << 20, 2).cut_bytes == 0);
}

int main(int argc, char** argv) {
    return custos_test::enospc_main(argc, argv, "custos-capture");
}
