// src/prune/decide: classification (name times, sequence numbers, the
// trust floor), the spec's validation, and decide() as one table: each row
// a directory of files, the rules, the moment, and the exact set deleted.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "doctest.hpp"
#include "prune/decide.hpp"

using namespace custos;
using namespace custos::prune;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
constexpr std::int64_t day = 86'400 * sec;
// 2026-06-01T00:00:00Z
constexpr std::int64_t now_ns = 1'780'272'000 * sec;

constexpr std::int64_t ago(int days) {
    return now_ns - days * day;
}

struct file_row {
    std::string name;
    std::uint64_t size = 100;
    std::int64_t mtime_ns = 0;
    bool open = false;
};

struct row {
    const char* what;
    std::vector<file_row> files;
    std::set<std::string> expected;
    // The spec's rules.
    int max_age_days = 0;
    std::uint32_t keep = 0;
    std::uint64_t max_total = 0;
    std::uint64_t min_free = 0;
    PruneCombine combine = PruneCombine::any;
    // The moment.
    bool clock_trusted = true;
    std::uint64_t free = 1'000'000;
    std::vector<std::string_view> protected_names = {};
    PruneOrder order = PruneOrder::mtime;
};

// Four files a day to forty days old, 100 bytes each.
std::vector<file_row> four() {
    return {{"a.log", 100, ago(40)},
            {"b.log", 100, ago(20)},
            {"c.log", 100, ago(10)},
            {"d.log", 100, ago(1)}};
}

std::vector<file_row> four_with_open(const char* open_name) {
    auto f = four();
    for (auto& x : f) {
        x.open = x.name == open_name;
    }
    return f;
}

constexpr PruneCombine any = PruneCombine::any;
constexpr PruneCombine all = PruneCombine::all;
constexpr const char* name_pattern = "%Y%m%dT%H%M%SZ";

std::vector<row> table() {
    std::vector<row> t;
    // No rule, and each rule alone.
    t.push_back({"no rule enabled", four(), {}});
    t.push_back({"max_age", four(), {"a.log", "b.log"}, 15});
    t.push_back({"max_age: exactly the age is not over it", {{"x", 100, ago(15)}}, {}, 15});
    t.push_back({"keep_newest 2", four(), {"a.log", "b.log"}, 0, 2});
    t.push_back({"keep_newest 3", four(), {"a.log"}, 0, 3});
    t.push_back({"keep_newest over the count", four(), {}, 0, 9});
    t.push_back({"max_total_bytes", four(), {"a.log", "b.log"}, 0, 0, 250});
    t.push_back({"max_total_bytes: at the budget is not over", four(), {}, 0, 0, 400});
    t.push_back({"min_free_bytes", four(), {"a.log", "b.log"}, 0, 0, 0, 1000, any, true, 850});
    t.push_back(
        {"min_free_bytes: one file enough", four(), {"a.log"}, 0, 0, 0, 1000, any, true, 950});
    t.push_back(
        {"min_free_bytes: already free enough", four(), {}, 0, 0, 0, 1000, any, true, 1000});
    // Every pair, under any and all.
    t.push_back({"age+keep any", four(), {"a.log", "b.log"}, 15, 3, 0, 0, any});
    t.push_back({"age+keep all", four(), {"a.log"}, 15, 3, 0, 0, all});
    t.push_back({"age+total any", four(), {"a.log", "b.log", "c.log"}, 30, 0, 150, 0, any});
    t.push_back({"age+total all", four(), {"a.log"}, 30, 0, 150, 0, all});
    t.push_back({"age+free any", four(), {"a.log", "b.log"}, 30, 0, 0, 1000, any, true, 800});
    t.push_back({"age+free all", four(), {"a.log"}, 30, 0, 0, 1000, all, true, 800});
    t.push_back({"keep+total any", four(), {"a.log", "b.log", "c.log"}, 0, 3, 150, 0, any});
    t.push_back({"keep+total all", four(), {"a.log"}, 0, 3, 150, 0, all});
    t.push_back({"keep+free any", four(), {"a.log", "b.log"}, 0, 3, 0, 1000, any, true, 850});
    t.push_back({"keep+free all", four(), {"a.log"}, 0, 3, 0, 1000, all, true, 850});
    t.push_back({"total+free any", four(), {"a.log", "b.log"}, 0, 0, 350, 1000, any, true, 800});
    t.push_back({"total+free all", four(), {"a.log"}, 0, 0, 350, 1000, all, true, 800});
    // The budgets count what the other rules really delete.
    t.push_back({"keep+total any: the count frees enough", four(), {"a.log", "b.log"}, 0, 2, 250});
    t.push_back({"keep+total all: a file keep_newest keeps stays in the total",
                 four(),
                 {"a.log"},
                 0,
                 3,
                 100,
                 0,
                 all});
    t.push_back({"keep+total+free any",
                 four(),
                 {"a.log", "b.log", "c.log"},
                 0,
                 3,
                 150,
                 350,
                 any,
                 true,
                 100});
    // Unclassifiable files: never deleted, never counted.
    t.push_back({"name_time: a budget only the unclassified file exceeds",
                 {{"log-20260101T000000Z.txt", 100, ago(1)}, {"log-garbage.txt", 10000, ago(90)}},
                 {},
                 0,
                 0,
                 5000,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::name_time});
    t.push_back({"name_time: keep_newest does not count the unclassified",
                 {{"log-20260101T000000Z.txt", 100, ago(1)},
                  {"log-20260201T000000Z.txt", 100, ago(90)},
                  {"log-2026.txt", 100, ago(2)},
                  {"log-20260230T000000Z.txt", 100, ago(3)}},
                 {"log-20260101T000000Z.txt"},
                 0,
                 1,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::name_time});
    t.push_back({"name_time: age from the name, not the mtime",
                 {{"a-20260101T120000Z", 100, ago(0)}, {"b-20260530T000000Z", 100, ago(100)}},
                 {"a-20260101T120000Z"},
                 30,
                 0,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::name_time});
    // The clock rule.
    t.push_back({"untrusted clock: age off", four(), {}, 15, 0, 0, 0, any, false});
    t.push_back({"untrusted clock: keep still on", four(), {"a.log"}, 15, 3, 0, 0, any, false});
    t.push_back(
        {"untrusted clock: total still on", four(), {"a.log", "b.log"}, 15, 0, 250, 0, any, false});
    t.push_back(
        {"untrusted clock: free still on", four(), {"a.log"}, 15, 0, 0, 1000, any, false, 950});
    t.push_back({"untrusted clock under all: the age rule keeps everything",
                 four(),
                 {},
                 15,
                 3,
                 0,
                 0,
                 all,
                 false});
    t.push_back({"untrusted file times (1970, 1986) with a trusted clock",
                 {{"boot-1970.log", 100, 100 * sec},
                  {"boot-1986.log", 100, 504'921'600 * sec},
                  {"a.log", 100, ago(40)},
                  {"d.log", 100, ago(1)}},
                 {"a.log"},
                 15});
    t.push_back({"untrusted file times still count for keep_newest",
                 {{"boot-1970.log", 100, 100 * sec},
                  {"boot-1986.log", 100, 504'921'600 * sec},
                  {"a.log", 100, ago(40)},
                  {"d.log", 100, ago(1)}},
                 {"boot-1970.log", "boot-1986.log", "a.log"},
                 15,
                 2});
    t.push_back({"untrusted file times under all: age+total keeps them",
                 {{"boot-1970.log", 100, 100 * sec},
                  {"a.log", 100, ago(40)},
                  {"b.log", 100, ago(20)},
                  {"d.log", 100, ago(1)}},
                 {"a.log", "b.log"},
                 15,
                 0,
                 250,
                 0,
                 all});
    // Protected and open files: kept, and still counted.
    t.push_back({"open file is never deleted by age", four_with_open("a.log"), {"b.log"}, 15});
    t.push_back({"open file still counts in the total",
                 four_with_open("a.log"),
                 {"b.log", "c.log"},
                 0,
                 0,
                 250});
    t.push_back({"open file holds a place in keep_newest",
                 four_with_open("d.log"),
                 {"a.log", "b.log"},
                 0,
                 2});
    t.push_back({"protected name (the current log)",
                 four(),
                 {"a.log", "b.log"},
                 0,
                 1,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {"c.log", "nonexistent"}});
    t.push_back({"everything open: nothing goes", {{"x", 100, ago(50), true}}, {}, 1, 0, 1, 0});
    // Ties: the greater name is the newer, every time.
    t.push_back({"ties on mtime",
                 {{"x2.log", 100, ago(5)}, {"x1.log", 100, ago(5)}, {"x3.log", 100, ago(5)}},
                 {"x1.log", "x2.log"},
                 0,
                 1});
    t.push_back({"ties on seq",
                 {{"events-7-b", 100, ago(1)}, {"events-7-a", 100, ago(1)}},
                 {"events-7-a"},
                 0,
                 1,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::seq});
    // seq: numeric across a width change, never lexical; mtimes reversed.
    t.push_back({"seq across a width change",
                 {{"events-9.jsonl", 100, ago(1)},
                  {"events-10.jsonl", 100, ago(2)},
                  {"events-11.jsonl", 100, ago(3)}},
                 {"events-9.jsonl"},
                 0,
                 2,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::seq});
    t.push_back({"seq: no number, or an overflowing one, is unclassified",
                 {{"events-.jsonl", 100, ago(50)},
                  {"events-99999999999999999999999.jsonl", 100, ago(50)},
                  {"events-1.jsonl", 100, ago(50)},
                  {"events-2.jsonl", 100, ago(50)}},
                 {"events-1.jsonl"},
                 0,
                 1,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::seq});
    t.push_back({"seq: max_age from a trusted mtime only",
                 {{"events-1.jsonl", 100, ago(40)},
                  {"events-2.jsonl", 100, 100 * sec},
                  {"events-3.jsonl", 100, ago(1)}},
                 {"events-1.jsonl"},
                 15,
                 0,
                 0,
                 0,
                 any,
                 true,
                 1'000'000,
                 {},
                 PruneOrder::seq});
    t.push_back({"empty directory", {}, {}, 15, 1, 1, 1'000'000, any, true, 0});
    return t;
}

struct decided {
    Result<std::uint32_t> n;
    std::set<std::string> names;
    std::vector<decision> list;
    PruneSummary sum;
    std::vector<entry> entries;
    std::vector<std::string> storage;
};

PruneSpec spec_of(const row& r) {
    PruneSpec s;
    s.name = "test";
    s.dir = "/var/log/test";
    s.order = r.order;
    s.time_pattern = name_pattern;
    s.seq_prefix = "events-";
    s.max_age = Duration(std::int64_t{r.max_age_days} * 86'400'000);
    s.keep_newest = r.keep;
    s.max_total_bytes = r.max_total;
    s.min_free_bytes = r.min_free;
    s.combine = r.combine;
    return s;
}

decided run_row(const row& r, std::size_t out_cap = 64) {
    decided d{0, {}, {}, {}, {}, {}};
    const PruneSpec spec = spec_of(r);
    d.storage.reserve(r.files.size());
    for (const auto& f : r.files) {
        d.storage.push_back(f.name);
        entry e;
        e.name = d.storage.back();
        e.size = f.size;
        e.mtime_ns = f.mtime_ns;
        e.open = f.open;
        classify(spec, e, prune_trust_floor_ns);
        d.entries.push_back(e);
    }
    std::vector<std::uint32_t> order(d.entries.size());
    d.list.resize(out_cap);
    moment m;
    m.now_wall_ns = now_ns;
    m.clock_trusted = r.clock_trusted;
    m.free_bytes = r.free;
    m.protected_names = r.protected_names;
    d.n = decide(spec, d.entries, order, m, d.list, d.sum);
    if (d.n) {
        d.list.resize(*d.n);
        for (const auto& x : d.list) {
            d.names.insert(std::string(d.entries[x.index].name));
        }
    }
    return d;
}

std::string show(const std::set<std::string>& s) {
    std::string out = "{";
    for (const auto& x : s) {
        out += " " + x;
    }
    return out + " }";
}

} // namespace

TEST_CASE("decide: the table of rules, combinations and edges") {
    for (const row& r : table()) {
        CAPTURE(r.what);
        decided d = run_row(r);
        REQUIRE(d.n);
        CHECK_MESSAGE(d.names == r.expected, "got ", show(d.names), " want ", show(r.expected));
        // The summary agrees with the list.
        CHECK(d.sum.scanned == r.files.size());
        CHECK(d.sum.classified + d.sum.unclassified == d.sum.scanned);
        CHECK(d.sum.deleted == r.expected.size());
        CHECK(d.sum.deleted + d.sum.kept == d.sum.classified);
        std::uint64_t bytes = 0;
        for (const auto& x : d.list) {
            bytes += d.entries[x.index].size;
            CHECK(d.entries[x.index].classified);
            CHECK(!d.entries[x.index].open);
            CHECK(x.rules != 0);
        }
        CHECK(d.sum.deleted_bytes == bytes);
    }
}

TEST_CASE("decide: decisions come oldest first with the rules that made them eligible") {
    row r{"mask", four(), {}, 30, 3, 150, 0, any};
    decided d = run_row(r);
    REQUIRE(d.n);
    REQUIRE(d.list.size() == 3);
    CHECK(d.entries[d.list[0].index].name == "a.log");
    CHECK(d.list[0].rules == (prune_rule_max_age | prune_rule_keep_newest));
    CHECK(d.entries[d.list[1].index].name == "b.log");
    CHECK(d.list[1].rules == prune_rule_max_total_bytes);
    CHECK(d.entries[d.list[2].index].name == "c.log");
    CHECK(d.list[2].rules == prune_rule_max_total_bytes);

    row a{"mask all", four(), {}, 30, 0, 150, 0, all};
    decided da = run_row(a);
    REQUIRE(da.n);
    REQUIRE(da.list.size() == 1);
    CHECK(da.list[0].rules == (prune_rule_max_age | prune_rule_max_total_bytes));

    row f{"mask free", four(), {}, 0, 0, 0, 1000, any, true, 850};
    decided df = run_row(f);
    REQUIRE(df.list.size() == 2);
    CHECK(df.list[0].rules == prune_rule_min_free_bytes);
}

TEST_CASE("decide: the summary counts the unclassified and the protected") {
    row r{"summary",
          {{"log-20260101T000000Z.txt", 10, ago(1)},
           {"log-20250101T000000Z.txt", 20, ago(1), true},
           {"log-20240101T000000Z.txt", 30, ago(1)},
           {"junk.txt", 1000, ago(1)}},
          {},
          0,
          1,
          0,
          0,
          any,
          true,
          0,
          {},
          PruneOrder::name_time};
    decided d = run_row(r);
    REQUIRE(d.n);
    CHECK(d.names == std::set<std::string>{"log-20240101T000000Z.txt"});
    CHECK(d.sum.scanned == 4);
    CHECK(d.sum.classified == 3);
    CHECK(d.sum.unclassified == 1);
    CHECK(d.sum.protected_files == 1);
    CHECK(d.sum.deleted == 1);
    CHECK(d.sum.deleted_bytes == 30);
    CHECK(d.sum.kept == 2);
    CHECK(d.sum.kept_bytes == 30);
}

TEST_CASE("decide: an output span too small refuses the whole run") {
    row r{"cap", four(), {}, 0, 1};
    decided d = run_row(r, 2);
    REQUIRE(!d.n);
    CHECK(d.n.error().reason() == Reason::capacity_exceeded);
    decided ok = run_row(r, 3);
    REQUIRE(ok.n);
    CHECK(*ok.n == 3);
}

TEST_CASE("decide: an age too large to subtract from now deletes nothing") {
    row r{"huge age", four(), {}, 0};
    PruneSpec spec = spec_of(r);
    spec.max_age = Duration::max();
    std::vector<entry> es(1);
    es[0].name = "a";
    es[0].mtime_ns = 100 * sec;
    classify(spec, es[0], 0);
    std::uint32_t order[1];
    decision out[1];
    PruneSummary sum;
    moment m;
    m.now_wall_ns = now_ns;
    m.clock_trusted = true;
    auto n = decide(spec, es, order, m, out, sum);
    REQUIRE(n);
    CHECK(*n == 0);
}

TEST_CASE("parse_name_time: the pattern anywhere in the name, UTC") {
    std::int64_t t = 0;
    REQUIRE(parse_name_time(name_pattern, "crash-20240101T000000Z.core", t));
    CHECK(t == prune_trust_floor_ns);
    REQUIRE(parse_name_time("%Y-%m-%d", "x2026-06-01", t));
    CHECK(t == now_ns);
    // The first place it matches with valid fields wins.
    REQUIRE(parse_name_time("%Y%m%d", "99999999-20260601", t));
    CHECK(t == now_ns);
    REQUIRE(parse_name_time("%Y-%m-%dT%H:%M:%S", "a-2024-02-29T23:59:60", t));
    CHECK(t == 1'709'251'200 * sec);
    REQUIRE(parse_name_time("100%%-%Y%m%d", "100%-20260601", t));
    CHECK(t == now_ns);
    CHECK(!parse_name_time(name_pattern, "crash-20230229T000000Z", t)); // no 29 Feb in 2023
    CHECK(!parse_name_time(name_pattern, "crash-20241301T000000Z", t));
    CHECK(!parse_name_time(name_pattern, "crash-20240101T240000Z", t));
    CHECK(!parse_name_time(name_pattern, "crash-20240101T000000", t)); // the Z is part of it
    CHECK(!parse_name_time(name_pattern, "crash-2024011T000000Z", t));
    CHECK(!parse_name_time(name_pattern, "", t));
    // Beyond int64 ns (year 2262).
    CHECK(!parse_name_time("%Y%m%d", "99990101", t));
    CHECK(!parse_name_time("%Y%m%d", "00010101", t));
    REQUIRE(parse_name_time("%Y%m%d", "19700101", t));
    CHECK(t == 0);
    REQUIRE(parse_name_time("%Y%m%d", "19691231", t));
    CHECK(t == -day);
}

TEST_CASE("parse_seq: the number after the prefix") {
    std::uint64_t v = 0;
    REQUIRE(parse_seq("events-", "events-10-20260101T000000Z.jsonl", v));
    CHECK(v == 10);
    REQUIRE(parse_seq("events-", "old-events-x-events-007.jsonl", v));
    CHECK(v == 7);
    REQUIRE(parse_seq("", "42.dump", v));
    CHECK(v == 42);
    REQUIRE(parse_seq("e", "e18446744073709551615", v));
    CHECK(v == 18446744073709551615ULL);
    CHECK(!parse_seq("e", "e18446744073709551616", v));
    CHECK(!parse_seq("events-", "events-.jsonl", v));
    CHECK(!parse_seq("events-", "other-1", v));
    CHECK(!parse_seq("", "x1", v));
}

TEST_CASE("classify: the trust floor") {
    PruneSpec spec;
    spec.dir = "/d";
    entry e;
    e.name = "x";
    e.mtime_ns = prune_trust_floor_ns - 1;
    classify(spec, e, prune_trust_floor_ns);
    CHECK(e.classified);
    CHECK(!e.trusted_time);
    e.mtime_ns = prune_trust_floor_ns;
    classify(spec, e, prune_trust_floor_ns);
    CHECK(e.trusted_time);
    classify(spec, e, prune_trust_floor_ns + 1); // a floor set by the caller
    CHECK(!e.trusted_time);
    spec.order = PruneOrder::seq;
    spec.seq_prefix = "n";
    e.name = "n5";
    e.mtime_ns = 0;
    classify(spec, e, prune_trust_floor_ns);
    CHECK(e.classified);
    CHECK(e.seq == 5);
    CHECK(e.time_ns == 0);
    CHECK(!e.trusted_time);
}

TEST_CASE("validate: the spec") {
    PruneSpec s;
    s.dir = "/var/log";
    CHECK(validate(s));
    s.dir = "var/log";
    CHECK(!validate(s));
    s.dir = "/var/log";
    s.glob = "";
    CHECK(!validate(s));
    s.glob = "a/*";
    CHECK(!validate(s));
    s.glob = "*.log";
    s.max_files = 0;
    CHECK(!validate(s));
    s.max_files = 10;
    s.order = PruneOrder::name_time;
    s.time_pattern = "%Y%m%dT%H%M%SZ";
    CHECK(validate(s));
    for (const char* bad : {"", "%Y%m", "%Y%m%d%q", "%Y%m%d%Y", "%Y%m%d%"}) {
        CAPTURE(bad);
        s.time_pattern = bad;
        auto v = validate(s);
        REQUIRE(!v);
        CHECK(v.error().reason() == Reason::invalid_argument);
    }
    s.time_pattern = "%d.%m.%Y %%";
    CHECK(validate(s));
}
