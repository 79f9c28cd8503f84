// ports/reset_record: the state file's text (format, strict parse, crc),
// its reading and its crash-safe writing in a temporary directory, and the
// classification of the previous boot for every case of classify_boot().
#define DOCTEST_CONFIG_IMPLEMENT
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "doctest.hpp"
#include "ports/reset_record.hpp"
#include "ports/watchdog.hpp"

using namespace custos;
using namespace custos::ports;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t hour = 3600 * sec;
constexpr std::int64_t now_wall = 1'796'000'000 * sec;

// The [readonly] case's directory (set up by main()), and how it is made
// writable or read-only.
std::string readonly_dir;
bool readonly_by_mount = false;

bool make_writable(bool yes) {
    if (readonly_by_mount) {
        unsigned long flags = MS_REMOUNT | (yes ? 0 : MS_RDONLY);
        return ::mount("tmpfs", readonly_dir.c_str(), "tmpfs", flags, "size=64k") == 0;
    }
    return ::chmod(readonly_dir.c_str(), yes ? 0755 : 0555) == 0;
}

struct temp_dir {
    std::string path;
    temp_dir() {
        char buf[] = "/tmp/custos-rr-XXXXXX";
        REQUIRE(::mkdtemp(buf) != nullptr);
        path = buf;
    }
    ~temp_dir() {
        std::string cmd = "rm -rf '" + path + "'";
        (void)std::system(cmd.c_str());
    }
    std::string file(const char* name) const { return path + "/" + name; }
};

std::string format(const reset_record& r) {
    char buf[reset_record_max_bytes + 1];
    const std::size_t n = format_record(r, buf, sizeof buf);
    REQUIRE(n < sizeof buf);
    return std::string(buf, n);
}

void put_file(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
}

std::string get_file(const std::string& path) {
    std::string out;
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) {
        return out;
    }
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        out.append(buf, n);
    }
    std::fclose(f);
    return out;
}

reset_record sample() {
    reset_record r;
    r.state = record_state::starving;
    r.boot_id = std::string_view("0f5c2d1e-1111-2222-3333-444455556666");
    r.wall_ns = now_wall - 5 * sec;
    r.reason = Reason::max_restarts_exhausted;
    r.subject = std::string_view("service uploader");
    r.message = std::string_view("failed: uploader failed (MaxRestartsExhausted)");
    r.counters = {12, 3, 2, 1, 6, 0};
    r.recent[0] = now_wall - 2 * hour;
    r.recent[1] = now_wall - 10 * sec;
    r.recent_count = 2;
    return r;
}

// The crc line recomputed for an edited body (to test the field checks
// behind a valid crc).
std::string with_crc(const std::string& body) {
    std::uint32_t c = 0xffffffffu;
    for (char ch : body) {
        c ^= static_cast<std::uint8_t>(ch);
        for (int k = 0; k < 8; ++k) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", c ^ 0xffffffffu);
    return body + "crc " + crc + "\n";
}

std::string body_of(const std::string& text) {
    const std::size_t at = text.rfind("crc ");
    return text.substr(0, at);
}

void check_corrupt(const std::string& text, std::string_view where) {
    auto r = parse_record(text);
    REQUIRE_FALSE(r);
    CHECK(r.error().reason() == Reason::reset_record_corrupt);
    CHECK(r.error().sys_errno() == 0);
    CHECK(r.error().subject() == where);
}

} // namespace

TEST_CASE("format and parse round-trip, readable text") {
    const reset_record r = sample();
    const std::string text = format(r);
    CHECK(text.rfind("custos-watchdog 1\nstate starving\nboot_id 0f5c2d1e", 0) == 0);
    CHECK(text.find("\nreason MaxRestartsExhausted\n") != std::string::npos);
    CHECK(text.find("\nsubject service uploader\n") != std::string::npos);
    CHECK(text.find("\ncounters 12 3 2 1 6 0\n") != std::string::npos);
    auto p = parse_record(text);
    REQUIRE(p);
    CHECK(p->state == r.state);
    CHECK(p->boot_id == r.boot_id);
    CHECK(p->wall_ns == r.wall_ns);
    CHECK(p->reason == r.reason);
    CHECK(p->subject == r.subject);
    CHECK(p->message == r.message);
    CHECK(p->counters.boots == 12);
    CHECK(p->counters.unreported == 6);
    CHECK(p->recent_count == 2);
    CHECK(p->recent[1] == r.recent[1]);
    // Formatting again gives the same bytes.
    CHECK(format(*p) == text);
}

TEST_CASE("empty fields, negative and extreme numbers, full recent, newlines in text") {
    reset_record r;
    r.state = record_state::orderly;
    r.wall_ns = INT64_MIN;
    r.counters = {UINT64_MAX, 0, 0, 0, 0, 0};
    for (std::size_t i = 0; i < reset_record_recent; ++i) {
        r.recent[i] = INT64_MAX - static_cast<std::int64_t>(i);
    }
    r.recent_count = reset_record_recent;
    r.message = std::string_view("two\nlines\tand a tab");
    const std::string text = format(r);
    CHECK(text.find("\nsubject\n") != std::string::npos);
    CHECK(text.find("\nboot_id\n") != std::string::npos);
    auto p = parse_record(text);
    REQUIRE(p);
    CHECK(p->wall_ns == INT64_MIN);
    CHECK(p->counters.boots == UINT64_MAX);
    CHECK(p->recent_count == reset_record_recent);
    CHECK(p->recent[reset_record_recent - 1] == INT64_MAX - 7);
    CHECK(p->message == std::string_view("two lines and a tab"));
    CHECK(p->subject.empty());
    CHECK(p->boot_id.empty());

    // The longest record fits the bound.
    reset_record big = sample();
    const std::string longtext_s(200, 'x');
    const std::string_view longtext = longtext_s;
    big.subject = longtext;
    big.message = longtext;
    big.boot_id = longtext;
    big.wall_ns = INT64_MIN;
    big.counters = {UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX};
    for (auto& t : big.recent) {
        t = INT64_MIN;
    }
    big.recent_count = reset_record_recent;
    big.reason = Reason::restart_intensity_exceeded;
    char buf[reset_record_max_bytes + 1];
    CHECK(format_record(big, buf, sizeof buf) <= reset_record_max_bytes);
    CHECK(parse_record(buf));

    // A short buffer gets a NUL-terminated prefix and the needed length.
    char small[16];
    const std::size_t need = format_record(sample(), small, sizeof small);
    CHECK(need == format(sample()).size());
    CHECK(std::strlen(small) == 15);
}

TEST_CASE("an unknown reason id parses as unknown, not corrupt") {
    std::string body = body_of(format(sample()));
    const std::size_t at = body.find("reason MaxRestartsExhausted");
    body.replace(at, std::strlen("reason MaxRestartsExhausted"), "reason SomethingFromTheFuture");
    auto p = parse_record(with_crc(body));
    REQUIRE(p);
    CHECK(p->reason == Reason::unknown);
}

TEST_CASE("damaged text is corrupt: crc, magic, torn, fields") {
    const std::string good = format(sample());
    // One bit flipped in the body.
    std::string flipped = good;
    flipped[30] ^= 0x01;
    check_corrupt(flipped, "crc");
    // Torn: any prefix.
    for (std::size_t n : {std::size_t(0), std::size_t(5), good.size() / 2, good.size() - 1}) {
        auto p = parse_record(good.substr(0, n));
        CHECK_FALSE(p);
    }
    // Garbage and the wrong magic.
    check_corrupt("hello world\n", "magic");
    check_corrupt("custos-watchdog 2\nstate running\n", "magic");
    check_corrupt(std::string(2000, 'a'), "size");
    // A bad crc line.
    std::string badcrc = body_of(good) + "crc xyz\n";
    check_corrupt(badcrc, "crc");

    // Behind a good crc: each field is checked.
    const std::string body = body_of(good);
    auto edit = [&](std::string_view from, std::string_view to) {
        std::string b = body;
        const std::size_t at = b.find(from);
        REQUIRE(at != std::string::npos);
        b.replace(at, from.size(), to);
        return with_crc(b);
    };
    check_corrupt(edit("state starving", "state dozing"), "line 2");
    check_corrupt(edit("state starving", "stat starving"), "line 2");
    check_corrupt(edit("wall_ns ", "wall_ns x"), "line 4");
    check_corrupt(edit("counters 12 3 2 1 6 0", "counters 12 3 2 1 6"), "line 8");
    check_corrupt(edit("counters 12 3 2 1 6 0", "counters 12 3 2 1 6 0 7"), "line 8");
    check_corrupt(edit("counters 12", "counters 99999999999999999999999"), "line 8");
    check_corrupt(edit("recent ", "recent  "), "line 9");
    check_corrupt(edit("subject service", "subject serv\x01ice"), "line 6");
    check_corrupt(edit("subject service uploader\n", ""), "line 6");
    check_corrupt(edit("recent", "extra 1\nrecent"), "line 9");
    check_corrupt(with_crc(body + "extra 1\n"), "line 10");
    std::string many = "recent";
    for (int i = 0; i < 9; ++i) {
        many += " 1";
    }
    check_corrupt(edit("recent " + std::to_string(sample().recent[0]) + " " +
                           std::to_string(sample().recent[1]),
                       many),
                  "line 9");
}

TEST_CASE("write_record and read_record: a file, its tmp, errors") {
    temp_dir d;
    const std::string path = d.file("watchdog.state");
    auto missing = read_record(path.c_str());
    REQUIRE_FALSE(missing);
    CHECK(missing.error().reason() == Reason::reset_record_corrupt);
    CHECK(missing.error().sys_errno() == ENOENT);

    REQUIRE(write_record(path.c_str(), sample()));
    CHECK(get_file(path) == format(sample()));
    CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    auto back = read_record(path.c_str());
    REQUIRE(back);
    CHECK(back->subject == sample().subject);

    // Damaged on disk: errno 0.
    put_file(path, "custos-watchdog 1\nstate run");
    auto torn = read_record(path.c_str());
    REQUIRE_FALSE(torn);
    CHECK(torn.error().sys_errno() == 0);
    put_file(path, std::string(5000, 'z'));
    auto huge = read_record(path.c_str());
    REQUIRE_FALSE(huge);
    CHECK(huge.error().sys_errno() == 0);
    CHECK(huge.error().subject() == std::string_view("size"));

    // A directory that cannot be read as a file.
    auto dir = read_record(d.path.c_str());
    REQUIRE_FALSE(dir);
    CHECK(dir.error().sys_errno() == EISDIR);

    // Into a missing directory.
    const std::string nowhere = d.file("no/such/watchdog.state");
    auto w = write_record(nowhere.c_str(), sample());
    REQUIRE_FALSE(w);
    CHECK(w.error().reason() == Reason::reset_record_unwritable);
    CHECK(w.error().sys_errno() == ENOENT);
}

// Run only with --only=readonly (main() below): not root, a chmod 0555
// directory; root, a tmpfs remounted read-only in a private mount
// namespace (exit 77 where neither can be had).
TEST_CASE("write_record into a read-only directory leaves the old file intact [readonly]") {
    REQUIRE(!readonly_dir.empty());
    const std::string path = readonly_dir + "/watchdog.state";
    REQUIRE(make_writable(true));
    REQUIRE(write_record(path.c_str(), sample()));
    const std::string before = get_file(path);
    REQUIRE(make_writable(false));
    reset_record other = sample();
    other.state = record_state::orderly;
    auto w = write_record(path.c_str(), other);
    REQUIRE_FALSE(w);
    CHECK(w.error().reason() == Reason::reset_record_unwritable);
    CHECK((w.error().sys_errno() == EACCES || w.error().sys_errno() == EROFS));
    CHECK(get_file(path) == before);
    CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
    auto back = read_record(path.c_str());
    REQUIRE(back);
    CHECK(back->state == record_state::starving);
}

TEST_CASE("write_record whose rename fails unlinks the tmp and keeps the old") {
    // The target is a non-empty directory: rename(2) fails (EISDIR), which
    // root cannot bypass either.
    temp_dir d;
    const std::string path = d.file("state");
    REQUIRE(::mkdir(path.c_str(), 0755) == 0);
    put_file(path + "/keep", "x");
    auto w = write_record(path.c_str(), sample());
    REQUIRE_FALSE(w);
    CHECK(w.error().reason() == Reason::reset_record_unwritable);
    CHECK(w.error().sys_errno() != 0);
    CHECK(::access((path + ".tmp").c_str(), F_OK) != 0);
    CHECK(get_file(path + "/keep") == "x");
}

namespace {

constexpr std::string_view this_boot = "aaaaaaaa-0000-0000-0000-000000000002";
constexpr std::string_view last_boot = "aaaaaaaa-0000-0000-0000-000000000001";

Result<reset_record> prev_with(record_state s) {
    reset_record r = sample();
    r.state = s;
    r.boot_id = last_boot;
    r.recent_count = 0;
    return r;
}

} // namespace

TEST_CASE("classify_boot: every case") {
    SUBCASE("missing file: unknown, counters anew") {
        Result<reset_record> prev = fail(Reason::reset_record_corrupt, ENOENT, "x");
        auto v = classify_boot(prev, this_boot, 0, now_wall, 0, hour);
        CHECK(v.previous.cls == ResetClass::unknown);
        CHECK_FALSE(v.corrupt);
        CHECK(v.next.counters.boots == 1);
        CHECK(v.next.state == record_state::running);
        CHECK(v.next.boot_id == this_boot);
        CHECK(v.next.wall_ns == now_wall);
    }
    SUBCASE("damaged or unreadable: unknown, corrupt, counters anew") {
        for (int err : {0, EACCES, EIO}) {
            Result<reset_record> prev = fail(Reason::reset_record_corrupt, err, "crc");
            auto v = classify_boot(prev, this_boot, wdiof_cardreset, now_wall, 0, hour);
            CHECK(v.previous.cls == ResetClass::unknown);
            CHECK(v.corrupt);
            CHECK(v.next.counters.boots == 1);
            CHECK(v.previous.boot_status == wdiof_cardreset);
        }
    }
    SUBCASE("same boot id: restarted, not a boot") {
        for (record_state s : {record_state::running, record_state::starving}) {
            Result<reset_record> prev = prev_with(s);
            prev->boot_id = this_boot;
            auto v = classify_boot(prev, this_boot, wdiof_cardreset, now_wall, 0, hour);
            CHECK(v.previous.cls == ResetClass::restarted);
            CHECK(v.next.counters.boots == 12);
            CHECK(v.next.counters.restarted == 1);
            CHECK(v.next.counters.watchdog == 1);
        }
        Result<reset_record> prev = prev_with(record_state::orderly);
        prev->boot_id = this_boot;
        auto v = classify_boot(prev, this_boot, 0, now_wall, 0, hour);
        CHECK(v.previous.cls == ResetClass::orderly);
        CHECK(v.next.counters.boots == 12);
        CHECK(v.next.counters.orderly == 4);
    }
    SUBCASE("an empty boot id never matches") {
        Result<reset_record> prev = prev_with(record_state::running);
        prev->boot_id = std::string_view();
        auto v = classify_boot(prev, "", 0, now_wall, 0, hour);
        CHECK(v.previous.cls == ResetClass::unreported);
    }
    SUBCASE("orderly") {
        Result<reset_record> prev = prev_with(record_state::orderly);
        prev->recent[0] = now_wall - sec;
        prev->recent_count = 1;
        auto v = classify_boot(prev, this_boot, wdiof_cardreset, now_wall, 1, hour);
        CHECK(v.previous.cls == ResetClass::orderly);
        CHECK(v.next.counters.boots == 13);
        CHECK(v.next.counters.orderly == 4);
        CHECK(v.next.recent_count == 0);
        CHECK_FALSE(v.safe_mode);
    }
    SUBCASE("starving: starved, with its reason and subject") {
        auto v = classify_boot(prev_with(record_state::starving), this_boot, 0, now_wall, 0, hour);
        CHECK(v.previous.cls == ResetClass::starved);
        CHECK(v.previous.reason == Reason::max_restarts_exhausted);
        CHECK(v.previous.subject == std::string_view("service uploader"));
        CHECK(v.previous.message == sample().message);
        CHECK(v.previous.boot_id == last_boot);
        CHECK(v.previous.wall_ns == sample().wall_ns);
        CHECK(v.next.counters.boots == 13);
        CHECK(v.next.counters.starved == 3);
        CHECK(v.next.recent_count == 1);
        CHECK(v.next.recent[0] == now_wall);
    }
    SUBCASE("running with CARDRESET: watchdog") {
        auto v = classify_boot(prev_with(record_state::running), this_boot,
                               wdiof_cardreset | wdiof_settimeout, now_wall, 0, hour);
        CHECK(v.previous.cls == ResetClass::watchdog);
        CHECK(v.next.counters.watchdog == 2);
        CHECK(v.next.recent_count == 1);
    }
    SUBCASE("running without CARDRESET: unreported") {
        auto v = classify_boot(prev_with(record_state::running), this_boot, 0, now_wall, 0, hour);
        CHECK(v.previous.cls == ResetClass::unreported);
        CHECK(v.next.counters.unreported == 7);
        CHECK(v.next.recent_count == 0);
    }
}

TEST_CASE("classify_boot: the safe-mode counter") {
    // Boots chained through the record, as init does them.
    auto boot = [](Result<reset_record> prev, record_state ended, std::int64_t wall,
                   std::uint32_t k, std::int64_t window) {
        if (prev) {
            prev->state = ended;
        }
        auto v = classify_boot(prev, "b" + std::to_string(wall), wdiof_cardreset, wall, k, window);
        return v;
    };
    SUBCASE("K watchdog-caused boots within the window: safe mode") {
        Result<reset_record> prev = fail(Reason::reset_record_corrupt, ENOENT);
        boot_verdict v = boot(prev, record_state::running, now_wall, 3, hour);
        CHECK_FALSE(v.safe_mode);
        v = boot(v.next, record_state::starving, now_wall + 60 * sec, 3, hour);
        CHECK(v.streak == 1);
        CHECK_FALSE(v.safe_mode);
        v = boot(v.next, record_state::running, now_wall + 120 * sec, 3, hour); // CARDRESET
        CHECK(v.streak == 2);
        CHECK_FALSE(v.safe_mode);
        v = boot(v.next, record_state::starving, now_wall + 180 * sec, 3, hour);
        CHECK(v.streak == 3);
        CHECK(v.safe_mode);
        // A restart in the same boot stays in safe mode.
        Result<reset_record> same = v.next;
        auto r = classify_boot(same, v.next.boot_id, 0, now_wall + 200 * sec, 3, hour);
        CHECK(r.previous.cls == ResetClass::restarted);
        CHECK(r.safe_mode);
        // An orderly stop clears it.
        v = boot(v.next, record_state::orderly, now_wall + 240 * sec, 3, hour);
        CHECK(v.streak == 0);
        CHECK_FALSE(v.safe_mode);
    }
    SUBCASE("outside the window: not") {
        Result<reset_record> prev = prev_with(record_state::starving);
        prev->recent[0] = now_wall - 3 * hour;
        prev->recent[1] = now_wall - 2 * hour;
        prev->recent_count = 2;
        auto v = classify_boot(prev, this_boot, 0, now_wall, 3, hour);
        CHECK(v.next.recent_count == 3);
        CHECK(v.streak == 1);
        CHECK_FALSE(v.safe_mode);
        auto wide = classify_boot(prev, this_boot, 0, now_wall, 3, 4 * hour);
        CHECK(wide.streak == 3);
        CHECK(wide.safe_mode);
    }
    SUBCASE("a clock that stepped back: later entries count as within") {
        Result<reset_record> prev = prev_with(record_state::starving);
        prev->recent[0] = now_wall + 10 * hour;
        prev->recent[1] = now_wall + 20 * hour;
        prev->recent_count = 2;
        auto v = classify_boot(prev, this_boot, 0, now_wall, 3, hour);
        CHECK(v.streak == 3);
        CHECK(v.safe_mode);
    }
    SUBCASE("off when safe_mode_boots is 0; recent keeps the newest") {
        Result<reset_record> prev = prev_with(record_state::starving);
        for (std::size_t i = 0; i < reset_record_recent; ++i) {
            prev->recent[i] = now_wall - static_cast<std::int64_t>(reset_record_recent - i);
        }
        prev->recent_count = reset_record_recent;
        auto v = classify_boot(prev, this_boot, 0, now_wall, 0, hour);
        CHECK_FALSE(v.safe_mode);
        CHECK(v.next.recent_count == reset_record_recent);
        CHECK(v.next.recent[0] == now_wall - static_cast<std::int64_t>(reset_record_recent - 1));
        CHECK(v.next.recent[reset_record_recent - 1] == now_wall);
    }
}

TEST_CASE("record_state_name and read_boot_id") {
    CHECK(record_state_name(record_state::running) == "running");
    CHECK(record_state_name(record_state::starving) == "starving");
    CHECK(record_state_name(record_state::orderly) == "orderly");
    const FixedText<36> id = read_boot_id();
    if (::access("/proc/sys/kernel/random/boot_id", R_OK) == 0) {
        CHECK(id.size() == 36);
        CHECK(read_boot_id() == id);
    } else {
        CHECK(id.empty());
    }
}

int main(int argc, char** argv) {
    // --only=readonly runs the [readonly] case (exit 77 when no read-only
    // directory can be had); without it, every other case runs.
    std::string_view only;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.substr(0, 7) == "--only=") {
            only = a.substr(7);
        }
    }
    doctest::Context ctx;
    char tmpl[] = "/tmp/custos-rr-ro-XXXXXX";
    if (only == "readonly") {
        if (::mkdtemp(tmpl) == nullptr) {
            return 1;
        }
        readonly_dir = tmpl;
        if (::geteuid() == 0) {
            // Root writes through mode bits: a tmpfs of our own, in a
            // private mount namespace (it never shows on the host).
            if (::unshare(CLONE_NEWNS) != 0 ||
                ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
                ::mount("tmpfs", tmpl, "tmpfs", 0, "size=64k") != 0) {
                std::printf("SKIP: root without a private tmpfs mount: %s\n", std::strerror(errno));
                ::rmdir(tmpl);
                return 77;
            }
            readonly_by_mount = true;
        }
        ctx.addFilter("test-case", "*[readonly]*");
    } else if (!only.empty()) {
        std::printf("unknown --only=%.*s\n", static_cast<int>(only.size()), only.data());
        return 2;
    } else {
        ctx.addFilter("test-case-exclude", "*[readonly]*");
    }
    ctx.applyCommandLine(argc, argv);
    const int rc = ctx.run();
    if (!readonly_dir.empty()) {
        if (readonly_by_mount) {
            ::umount2(tmpl, MNT_DETACH);
        } else {
            ::chmod(tmpl, 0755);
            std::string f = readonly_dir + "/watchdog.state";
            ::unlink(f.c_str());
        }
        ::rmdir(tmpl);
    }
    return rc;
}
