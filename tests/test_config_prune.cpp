// custosd's [prune:NAME] sections: every key, its value and its line; the
// table carrying the jobs; bad values at the key's line; sections named,
// unique and bounded; the table check's prune problems mapped back to the
// line of their key; and the size parser the keys share (table/values).
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "custosd/config.hpp"
#include "table/values.hpp"

using custos::PruneCombine;
using custos::PruneField;
using custos::PruneOrder;
using custos::PruneSpec;
using custos::Reason;
using custos::cfg::config;
using custos::cfg::problem;
using custos::cfg::problem_list;
using namespace std::chrono_literals;

namespace {

std::string lines(std::initializer_list<std::string_view> ls) {
    std::string s;
    for (std::string_view l : ls) {
        s += l;
        s += '\n';
    }
    return s;
}

struct parsed {
    config cfg;
    problem_list problems;
    bool ok = false;
};

std::unique_ptr<parsed> parse(std::string_view text) {
    auto r = std::make_unique<parsed>();
    r->ok = r->cfg.parse(text, r->problems);
    return r;
}

std::string dump(const problem_list& ps) {
    std::string out;
    char buf[300];
    for (const problem& p : ps) {
        custos::cfg::format_problem("t.conf", p, buf, sizeof buf);
        out += buf;
        out += '\n';
    }
    return out;
}

void expect_one(std::string_view text, unsigned line, Reason reason, std::string_view msg) {
    auto r = parse(text);
    INFO("problems:\n" << dump(r->problems));
    CHECK_FALSE(r->ok);
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].line == line);
    CHECK(r->problems[0].error.reason() == reason);
    CHECK(std::string_view(r->problems[0].message).find(msg) != std::string_view::npos);
    CHECK(r->cfg.prunes().empty());
}

// The table check's prune problems, each with the line custosd prints.
struct prune_sink final : custos::TableProblemSink {
    const config& cfg;
    struct seen {
        std::uint32_t index;
        PruneField field;
        Reason reason;
        unsigned line;
    };
    std::vector<seen> problems;
    std::string text;

    explicit prune_sink(const config& c) : cfg(c) {}
    void report(const custos::TableProblem& p) noexcept override {
        char buf[512];
        p.error.format(buf, sizeof buf);
        text += buf;
        text += '\n';
        if (p.kind == custos::TableKind::prune) {
            problems.push_back({p.index, p.prune_field(), p.error.reason(),
                                cfg.prune_line_of(p.index, p.prune_field())});
        }
    }
};

} // namespace

TEST_CASE("every [prune:x] key, its value and its line; the table carries the jobs") {
    const std::string text = lines({
        "[service:a]",               // 1
        "exec = /bin/true",          // 2
        "[prune:logs]",              // 3
        "dir = /var/log/app",        // 4
        "glob = app-*.log",          // 5
        "order = name",              // 6
        "time_pattern = app-%Y%m%d", // 7
        "max_age = 7d",              // 8 (a bad unit: replaced below)
    });
    // Durations take ms, s, m and h: 168h is a week.
    const std::string good = lines({
        "[service:a]",               // 1
        "exec = /bin/true",          // 2
        "[prune:logs]",              // 3
        "dir = /var/log/app",        // 4
        "glob = app-*.log",          // 5
        "order = name",              // 6
        "time_pattern = app-%Y%m%d", // 7
        "max_age = 168h",            // 8
        "keep_newest = 5",           // 9
        "max_total_bytes = 16M",     // 10
        "min_free = 15%",            // 11
        "combine = all",             // 12
        "max_files = 100",           // 13
        "interval = 30m",            // 14
        "",                          // 15
        "[prune:spool]",             // 16
        "dir = /data/spool",         // 17
        "order = seq",               // 18
        "seq_prefix = events-",      // 19
        "min_free = 64MiB",          // 20
        "interval = 0",              // 21
    });
    CHECK_FALSE(parse(text)->ok);
    auto r = parse(good);
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    REQUIRE(r->cfg.prunes().size() == 2);
    const PruneSpec& a = r->cfg.prunes()[0];
    CHECK(a.name == "logs");
    CHECK(a.dir == "/var/log/app");
    CHECK(a.glob == "app-*.log");
    CHECK(a.order == PruneOrder::name_time);
    CHECK(a.time_pattern == "app-%Y%m%d");
    CHECK(a.max_age == 168h);
    CHECK(a.keep_newest == 5);
    CHECK(a.max_total_bytes == 16ULL << 20);
    CHECK(a.min_free_percent == 15);
    CHECK(a.min_free_bytes == 0);
    CHECK(a.combine == PruneCombine::all);
    CHECK(a.max_files == 100);
    CHECK(a.interval == 30min);
    const PruneSpec& b = r->cfg.prunes()[1];
    CHECK(b.name == "spool");
    CHECK(b.glob == "*"); // the defaults
    CHECK(b.order == PruneOrder::seq);
    CHECK(b.seq_prefix == "events-");
    CHECK(b.min_free_bytes == 64ULL << 20);
    CHECK(b.min_free_percent == 0);
    CHECK(b.combine == PruneCombine::any);
    CHECK(b.max_files == 4096);
    CHECK(b.interval.count() == 0);
    CHECK(b.keep_newest == 0);

    const std::pair<PruneField, unsigned> want[] = {
        {PruneField::section, 3},     {PruneField::name, 3},
        {PruneField::dir, 4},         {PruneField::glob, 5},
        {PruneField::order, 6},       {PruneField::time_pattern, 7},
        {PruneField::seq_prefix, 3},  {PruneField::max_age, 8},
        {PruneField::keep_newest, 9}, {PruneField::max_total_bytes, 10},
        {PruneField::min_free, 11},   {PruneField::combine, 12},
        {PruneField::max_files, 13},  {PruneField::interval, 14},
    };
    for (const auto& fl : want) {
        CAPTURE(custos::field_name(fl.first));
        CHECK(r->cfg.prune_line_of(0, fl.first) == fl.second);
    }
    CHECK(r->cfg.prune_line_of(1, PruneField::section) == 16);
    CHECK(r->cfg.prune_line_of(1, PruneField::seq_prefix) == 19);
    CHECK(r->cfg.prune_line_of(1, PruneField::glob) == 16); // not set: the header's
    CHECK(r->cfg.prune_line_of(2, PruneField::dir) == 0);
    CHECK(r->cfg.prune_line_of(0, static_cast<PruneField>(200)) == 0);

    const custos::Table t = r->cfg.table();
    REQUIRE(t.prunes.size() == 2);
    CHECK(t.prunes[1].name == "spool");
    CHECK(custos::validate_table(t, nullptr) == 0);
}

TEST_CASE("[prune:x] bad values: at the key's line, saying what to write") {
    auto bad = [](std::string_view key_line, std::string_view msg) {
        INFO(key_line);
        expect_one(lines({"[prune:p]", "dir = /tmp", key_line}), 3, Reason::config_bad_value, msg);
    };
    bad("order = newest", "bad order 'newest': use mtime");
    bad("combine = both", "bad combine 'both': use any");
    bad("max_age = 7d", "max_age");
    bad("max_age = -1s", "max_age");
    bad("interval = often", "interval");
    bad("keep_newest = -1", "keep_newest");
    bad("keep_newest = 5x", "keep_newest");
    bad("max_total_bytes = 10X", "bad max_total_bytes '10X': give bytes");
    bad("max_total_bytes = 1.5G", "bad max_total_bytes");
    bad("max_total_bytes = 99999999999999999999", "max_total_bytes '99999999999999999999' is too");
    bad("max_total_bytes = 20000000T", "is too large");
    bad("min_free = 100%", "bad min_free '100%': a share is from 0% to 99%");
    bad("min_free = x%", "bad min_free 'x%'");
    bad("min_free = lots", "bad min_free 'lots': give bytes");
    bad("max_files = 0", "max_files");
    bad("max_files = 65537", "max_files");
    bad("glob =", "key 'glob' has no value");
}

TEST_CASE("[prune:x] sections: named, unique, bounded, dir required; unknown keys get a hint") {
    expect_one(lines({"[prune:]", "dir = /tmp"}), 1, Reason::config_syntax,
               "section [prune:] has no name: write [prune:NAME]");
    expect_one(lines({"[prune:a]", "dir = /tmp", "[prune:a]", "dir = /var"}), 3,
               Reason::config_syntax, "duplicate section [prune:a] (first at line 1)");
    expect_one(lines({"[prune:a]", "glob = *.log"}), 1, Reason::config_bad_value,
               "[prune:a] has no dir: add dir = /absolute/path");
    expect_one(lines({"[prune:a]", "dir = /tmp", "keep_newset = 3"}), 3, Reason::config_unknown_key,
               "unknown key 'keep_newset' in [prune:a] (did you mean 'keep_newest'?)");
    expect_one(lines({"[prune:a]", "dir = /tmp", "dir = /var"}), 3, Reason::config_syntax,
               "duplicate key 'dir' in [prune:a] (first at line 2): keep one");
    // A prune job and a service may share a name: they are apart.
    auto same = parse(lines({"[service:a]", "exec = /bin/true", "[prune:a]", "dir = /tmp"}));
    CHECK(same->ok);
    std::string many;
    for (int i = 0; i < 65; ++i) {
        many += "[prune:p" + std::to_string(i) + "]\ndir = /tmp\n";
    }
    expect_one(many, 129, Reason::capacity_exceeded, "at most 64 [prune:NAME] sections");
}

TEST_CASE("a config parsed again replaces its prune jobs; a failed parse leaves none") {
    config c;
    problem_list ps;
    REQUIRE(c.parse(lines({"[prune:a]", "dir = /tmp"}), ps));
    CHECK(c.prunes().size() == 1);
    REQUIRE(c.parse(lines({"[custos]", "stop_timeout = 1s"}), ps));
    CHECK(c.prunes().empty());
    CHECK(c.prune_line_of(0, PruneField::dir) == 0);
    CHECK_FALSE(c.parse(lines({"[prune:a]", "dir = /tmp", "bogus = 1"}), ps));
    CHECK(c.prunes().empty());
}

TEST_CASE("the table check's prune problems map to the line of their key") {
    auto r = parse(lines({
        "[prune:a]",           // 1
        "dir = relative/dir",  // 2
        "order = name",        // 3
        "time_pattern = %Y%m", // 4
        "interval = 500ms",    // 5
        "[prune:b-ok]",        // 6
        "dir = /tmp",          // 7
        "seq_prefix = x-",     // 8
        "[prune:bad name]",    // 9
        "dir = /tmp",          // 10
    }));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    prune_sink sink(r->cfg);
    CHECK(custos::validate_table(r->cfg.table(), &sink) == 5);
    INFO(sink.text);
    REQUIRE(sink.problems.size() == 5);
    auto find = [&](std::uint32_t index, PruneField f) -> const prune_sink::seen* {
        for (const auto& s : sink.problems) {
            if (s.index == index && s.field == f) {
                return &s;
            }
        }
        return nullptr;
    };
    const auto* dir = find(0, PruneField::dir);
    REQUIRE(dir != nullptr);
    CHECK(dir->line == 2);
    const auto* pattern = find(0, PruneField::time_pattern);
    REQUIRE(pattern != nullptr);
    CHECK(pattern->line == 4);
    const auto* interval = find(0, PruneField::interval);
    REQUIRE(interval != nullptr);
    CHECK(interval->line == 5);
    const auto* prefix = find(1, PruneField::seq_prefix); // without order = seq
    REQUIRE(prefix != nullptr);
    CHECK(prefix->line == 8);
    const auto* name = find(2, PruneField::name);
    REQUIRE(name != nullptr);
    CHECK(name->reason == Reason::name_invalid);
    CHECK(name->line == 9);
}

TEST_CASE("sizes: digits, then K, M, G or T (powers of 1024), optionally B or iB") {
    using custos::tbl::num_status;
    using custos::tbl::parse_size;
    std::uint64_t n = 0;
    CHECK(parse_size("0", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 0);
    CHECK(parse_size("4096", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 4096);
    CHECK(parse_size("64K", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 65536);
    CHECK(parse_size("64k", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 65536);
    CHECK(parse_size("16MiB", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 16ULL << 20);
    CHECK(parse_size("1GB", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 1ULL << 30);
    CHECK(parse_size("2T", UINT64_MAX, n) == num_status::ok);
    CHECK(n == 2ULL << 40);
    CHECK(parse_size("16777215T", UINT64_MAX, n) == num_status::ok);
    CHECK(parse_size("16777216T", UINT64_MAX, n) == num_status::too_big);
    CHECK(parse_size("2K", 2047, n) == num_status::too_big);
    CHECK(parse_size("", UINT64_MAX, n) == num_status::bad);
    CHECK(parse_size("K", UINT64_MAX, n) == num_status::bad);
    CHECK(parse_size("1 K", UINT64_MAX, n) == num_status::bad);
    CHECK(parse_size("1Kb", UINT64_MAX, n) == num_status::bad);
    CHECK(parse_size("1P", UINT64_MAX, n) == num_status::bad);
    CHECK(parse_size("-1", UINT64_MAX, n) == num_status::bad);
    CHECK(parse_size("1.5M", UINT64_MAX, n) == num_status::bad);
}
