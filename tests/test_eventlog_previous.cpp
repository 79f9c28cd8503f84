// How the previous run ended, without a watchdog (src/eventlog/previous.*,
// log_dir's last record at open, the stop record, Runtime::impl's
// previous-run record): the pure classification, the log's last line read
// at open (an empty newest file falls back to the one before), and a real
// Runtime run again and again on one [log] dir: an orderly stop, a stop
// record cut off (same boot), a last line from another boot with and
// without a fake sysfs bootstatus holding WDIOF_CARDRESET, and a new dir.
//
// The Runtime cases run once per backend (CUSTOS_BACKEND, tests/meson.build);
// a backend the kernel refuses makes the run exit 77 (a skip).
#define DOCTEST_CONFIG_IMPLEMENT
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <custos/runtime.hpp>

#include "backend_probe.hpp"
#include "doctest.hpp"
#include "eventlog/files.hpp"
#include "eventlog/previous.hpp"
#include "eventlog/record.hpp"
#include "json_line.hpp"
#include "ports/reset_record.hpp"
#include "scratch_dir.hpp"

using namespace custos;
using custos_test::member;
using sv = std::string_view;

namespace {

std::string text_of(const std::vector<member>& m, sv key) {
    const member* f = custos_test::find(m, key);
    return f != nullptr ? f->text : std::string();
}

std::string raw_of(const std::vector<member>& m, sv key) {
    const member* f = custos_test::find(m, key);
    return f != nullptr ? f->raw : std::string();
}

// A member of the record's "fields" object.
std::string field_of(const std::vector<member>& m, sv key) {
    const member* f = custos_test::find(m, "fields");
    if (f == nullptr) {
        return {};
    }
    std::vector<member> inner;
    custos_test::json_reader jr{f->raw};
    REQUIRE(jr.object(inner));
    return text_of(inner, key);
}

std::string encoded(const eventlog::record& r, sv boot_id) {
    char line[eventlog::max_line];
    const std::size_t n = eventlog::encode(r, boot_id, line, sizeof line);
    REQUIRE(n != 0);
    return std::string(line, n);
}

eventlog::last_record parsed(const std::string& line) {
    eventlog::last_record l;
    CHECK(eventlog::parse_last_record(line.data(), line.size(), l));
    return l;
}

const char* boot_a = "0f5c7c1e-1111-4a4a-9b9b-000000000001";
const char* boot_b = "0f5c7c1e-2222-4a4a-9b9b-000000000002";

// The log files of `dir` in seq order (by the number in the name).
std::vector<std::string> log_files(const std::string& dir) {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir.c_str());
    REQUIRE(d != nullptr);
    for (dirent* e; (e = ::readdir(d)) != nullptr;) {
        const sv n = e->d_name;
        if (n.substr(0, 7) == "events-" && n.size() > 6 && n.substr(n.size() - 6) == ".jsonl") {
            out.emplace_back(n);
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
        return std::strtoull(a.c_str() + 7, nullptr, 10) <
               std::strtoull(b.c_str() + 7, nullptr, 10);
    });
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void spill(const std::string& path, const std::string& body) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << body;
}

// Every line of the log, in order.
std::vector<std::string> log_lines(const std::string& dir) {
    std::vector<std::string> out;
    for (const std::string& name : log_files(dir)) {
        const std::string body = slurp(dir + "/" + name);
        for (std::size_t at = 0; at < body.size();) {
            const std::size_t nl = body.find('\n', at);
            const std::size_t end = nl == std::string::npos ? body.size() : nl + 1;
            out.push_back(body.substr(at, end - at));
            at = end;
        }
    }
    return out;
}

} // namespace

// --- the pure parts ---------------------------------------------------------------

TEST_CASE("stop record: encoded, read back from the line, recognised") {
    const eventlog::record s = eventlog::stop_record(0, 123456789, 1796000000000000000, 4242);
    eventlog::record numbered = s;
    numbered.seq = 77;
    const std::string line = encoded(numbered, boot_a);
    const auto m = custos_test::parse_line(line);
    CHECK(text_of(m, "reason") == "RuntimeStop");
    CHECK(text_of(m, "kind") == "log");
    CHECK(text_of(m, "name") == "custos");
    CHECK(text_of(m, "level") == "notice");
    CHECK(raw_of(m, "exit") == "{\"code\":0}");

    const eventlog::last_record l = parsed(line);
    CHECK(l.seq == 77);
    CHECK(l.mono_ns == 123456789);
    CHECK(l.boot_id.view() == boot_a);
    CHECK(l.ts.view() == text_of(m, "ts"));
    CHECK(l.kind.view() == "log");
    CHECK(l.name.view() == "custos");
    CHECK(l.reason.view() == "RuntimeStop");
    CHECK(l.has_exit);
    CHECK(l.exit_code == 0);
    CHECK(eventlog::is_stop_record(l));

    // A non-zero status is still a stop record; warning level.
    eventlog::record wedged = eventlog::stop_record(70, 1, 0, 1);
    CHECK(wedged.level == eventlog::level::warning);
    const eventlog::last_record w = parsed(encoded(wedged, {}));
    CHECK(w.exit_code == 70);
    CHECK(w.boot_id.empty());
    CHECK(w.ts.empty());
    CHECK(eventlog::is_stop_record(w));
}

TEST_CASE("last line: a service's RuntimeStop, a custom record with look-alike fields, junk") {
    // A service stopped by the runtime's stop has the same reason: not a stop record.
    const std::string svc = R"({"seq":9,"boot_id":"b","mono_ns":5,"clock_trusted":false,)"
                            R"("level":"info","kind":"service","name":"custos","from":"stopping",)"
                            R"("to":"stopped","reason":"RuntimeStop"})"
                            "\n";
    const eventlog::last_record s = parsed(svc);
    CHECK(s.kind.view() == "service");
    CHECK_FALSE(eventlog::is_stop_record(s));
    // Look-alike keys inside escaped strings and in the fields object are
    // not taken for the record's members.
    const std::string custom =
        R"({"seq":10,"mono_ns":6,"clock_trusted":false,"level":"info","kind":"custom",)"
        R"("name":"a\",\"kind\":\"log","reason":"Mine","message":"x,\"reason\":\"RuntimeStop\"",)"
        R"("fields":{"kind":"log","name":"custos","exit":"{\"code\":0}"}})"
        "\n";
    const eventlog::last_record c = parsed(custom);
    CHECK(c.seq == 10);
    CHECK(c.kind.view() == "custom");
    CHECK(c.name.empty()); // escaped: not plain, left out
    CHECK(c.reason.view() == "Mine");
    CHECK_FALSE(c.has_exit);
    CHECK_FALSE(eventlog::is_stop_record(c));
    // No seq: nothing.
    eventlog::last_record j;
    const std::string junk = "hello world\n";
    CHECK_FALSE(eventlog::parse_last_record(junk.data(), junk.size(), j));
    CHECK_FALSE(j.found);
}

TEST_CASE("previous_run_record: every class") {
    eventlog::record stop = eventlog::stop_record(0, 10, 1796000000000000000, 1);
    stop.seq = 41;
    const eventlog::last_record orderly = parsed(encoded(stop, boot_a));
    eventlog::record svc;
    svc.kind = status::event_kind::service_transition;
    svc.reason = Reason::process_exited;
    svc.set_name("web");
    svc.seq = 52;
    svc.wall_ns = 1796000000000000000;
    const eventlog::last_record unclean = parsed(encoded(svc, boot_a));
    const eventlog::boot_status none;
    const eventlog::boot_status zero{true, 0};
    const eventlog::boot_status card{true, eventlog::boot_status_cardreset};
    eventlog::record r;

    SUBCASE("no earlier record: nothing to say") {
        CHECK_FALSE(eventlog::previous_run_record(eventlog::last_record{}, boot_a, card, 1, 2, r));
    }
    SUBCASE("orderly, same boot") {
        REQUIRE(eventlog::previous_run_record(orderly, boot_a, none, 1, 2, r));
        const auto m = custos_test::parse_line(encoded(r, boot_a));
        CHECK(text_of(m, "reason") == "PreviousBootOrderly");
        CHECK(text_of(m, "level") == "notice");
        CHECK(text_of(m, "kind") == "log");
        CHECK(text_of(m, "name") == "custos");
        CHECK(text_of(m, "message").find("stopped in order, exit status 0") != std::string::npos);
        CHECK(text_of(m, "message").find("same boot") != std::string::npos);
        CHECK(field_of(m, "prev_seq") == "41");
        CHECK(field_of(m, "prev_boot_id") == boot_a);
        CHECK(field_of(m, "prev_reason") == "RuntimeStop");
        CHECK(field_of(m, "rebooted") == "no");
        CHECK(field_of(m, "bootstatus") == "unknown");
    }
    SUBCASE("orderly, rebooted since, CARDRESET: still orderly, said, a warning") {
        REQUIRE(eventlog::previous_run_record(orderly, boot_b, card, 1, 2, r));
        CHECK(r.reason == Reason::previous_boot_orderly);
        CHECK(r.level == eventlog::level::warning);
        CHECK(r.message_view().find("rebooted since") != sv::npos);
        CHECK(r.message_view().find("CARDRESET") != sv::npos);
        const auto m = custos_test::parse_line(encoded(r, boot_b));
        CHECK(field_of(m, "bootstatus") == "0x20");
        CHECK(field_of(m, "rebooted") == "yes");
    }
    SUBCASE("unclean, same boot: restarted") {
        REQUIRE(eventlog::previous_run_record(unclean, boot_a, card, 1, 2, r));
        CHECK(r.reason == Reason::previous_boot_restarted);
        CHECK(r.level == eventlog::level::warning);
        const sv msg = r.message_view();
        CHECK(msg.find("ended without its stop record") != sv::npos);
        CHECK(msg.find("last record seq 52 at 2026-") != sv::npos);
        CHECK(msg.find("(ProcessExited)") != sv::npos);
        CHECK(msg.find("CARDRESET") == sv::npos); // about an earlier boot: not this one's
        // The Reason's own resolution (cut to resolution_cap with a marker).
        CHECK(Error(Reason::previous_boot_restarted, 0).resolution().substr(0, 100) ==
              r.resolution_view().substr(0, 100));
    }
    SUBCASE("unclean, rebooted, CARDRESET: the watchdog") {
        REQUIRE(eventlog::previous_run_record(unclean, boot_b, card, 1, 2, r));
        CHECK(r.reason == Reason::previous_boot_watchdog);
        CHECK(r.level == eventlog::level::critical);
        CHECK(r.message_view().find("the watchdog reset it") != sv::npos);
    }
    SUBCASE("unclean, rebooted, no CARDRESET or no bootstatus: unreported") {
        REQUIRE(eventlog::previous_run_record(unclean, boot_b, zero, 1, 2, r));
        CHECK(r.reason == Reason::previous_boot_unreported);
        const auto m = custos_test::parse_line(encoded(r, boot_b));
        CHECK(field_of(m, "bootstatus") == "0x0");
        REQUIRE(eventlog::previous_run_record(unclean, boot_b, none, 1, 2, r));
        CHECK(r.reason == Reason::previous_boot_unreported);
    }
    SUBCASE("unclean, no boot_id: unreported, the reboot unknown") {
        REQUIRE(eventlog::previous_run_record(unclean, {}, none, 1, 2, r));
        CHECK(r.reason == Reason::previous_boot_unreported);
        CHECK(r.message_view().find("unknown") != sv::npos);
        const auto m = custos_test::parse_line(encoded(r, {}));
        CHECK(field_of(m, "rebooted") == "unknown");
    }
}

TEST_CASE("read_sysfs_boot_status: a fake sysfs tree") {
    custos_test::scratch_dir t("custos-bootstatus");
    CHECK_FALSE(ports::read_sysfs_boot_status(t.path).has_value()); // no watchdog
    const std::string dir = t.at("class/watchdog/watchdog0");
    REQUIRE(std::system(("mkdir -p '" + dir + "'").c_str()) == 0);
    spill(dir + "/bootstatus", "32\n");
    auto b = ports::read_sysfs_boot_status(t.path);
    REQUIRE(b.has_value());
    CHECK(*b == eventlog::boot_status_cardreset);
    spill(dir + "/bootstatus", "0\n");
    b = ports::read_sysfs_boot_status(t.path);
    REQUIRE(b.has_value());
    CHECK(*b == 0);
    spill(dir + "/bootstatus", "x\n");
    CHECK_FALSE(ports::read_sysfs_boot_status(t.path).has_value());
}

// --- the log's last record at open -------------------------------------------------

TEST_CASE("log_dir: the last record at open; a torn line is not it; an empty newest file") {
    custos_test::scratch_dir t("custos-lastrec");
    const std::string dir = t.at("log");
    {
        eventlog::log_dir d;
        auto rep = d.open(dir, 4096, 4);
        REQUIRE(rep.has_value());
        CHECK(rep->created);
        CHECK_FALSE(rep->last.found); // a new log: no earlier record
        for (std::uint64_t s = 1; s <= 3; ++s) {
            eventlog::record r;
            r.seq = s;
            r.kind = status::event_kind::log;
            r.reason = Reason::runtime_started;
            r.set_name("custos");
            const std::string line = encoded(r, boot_a);
            REQUIRE(d.append(line.data(), line.size()).has_value());
        }
        // A torn line after them.
        const std::string torn = R"({"seq":4,"boot_id":"x","mono_ns":)";
        REQUIRE(::write(d.fd(), torn.data(), torn.size()) == static_cast<ssize_t>(torn.size()));
    }
    {
        eventlog::log_dir d;
        auto rep = d.open(dir, 4096, 4);
        REQUIRE(rep.has_value());
        CHECK(rep->cut_bytes != 0);
        REQUIRE(rep->last.found);
        CHECK(rep->last.seq == 3);
        CHECK(rep->last.boot_id.view() == boot_a);
        CHECK(rep->last.reason.view() == "RuntimeStarted");
    }
    // A newer file, empty (a rotation the run never wrote into): the last
    // record is the one before it.
    spill(dir + "/events-00000000000000000004-19700101T000000Z.jsonl", "");
    {
        eventlog::log_dir d;
        auto rep = d.open(dir, 4096, 4);
        REQUIRE(rep.has_value());
        CHECK(rep->next_seq == 4);
        REQUIRE(rep->last.found);
        CHECK(rep->last.seq == 3);
    }
}

// --- a real Runtime, run after run on one [log] dir ---------------------------------

namespace {

// One run: init, start, an orderly stop from the loop; the log's records
// (parsed) afterwards. With `state_file`, a null watchdog keeps its reset
// record there.
std::vector<std::vector<member>> run_once(const std::string& dir,
                                          const std::string& state_file = {}) {
    Table table;
    table.runtime.cgroup = "off";
    table.log.dir = dir;
    if (!state_file.empty()) {
        table.watchdog.device = WatchdogDevice::null;
        table.watchdog.state_file = state_file;
    }
    Runtime rt;
    auto i = rt.init(table);
    REQUIRE_MESSAGE(i.has_value(), i.error().id());
    REQUIRE(rt.start().has_value());
    rt.stop();
    rt.run();
    CHECK(rt.stopped());
    std::vector<std::vector<member>> out;
    for (const std::string& l : log_lines(dir)) {
        REQUIRE_MESSAGE(l.back() == '\n', "a torn line: " << l);
        out.push_back(custos_test::parse_line(l));
    }
    return out;
}

// The records of the newest run: from its last RuntimeStarted on.
std::vector<std::vector<member>> last_run(const std::vector<std::vector<member>>& all) {
    std::size_t from = 0;
    for (std::size_t k = 0; k < all.size(); ++k) {
        if (text_of(all[k], "reason") == "RuntimeStarted") {
            from = k;
        }
    }
    return {all.begin() + static_cast<std::ptrdiff_t>(from), all.end()};
}

// The run's records whose reason begins PreviousBoot.
std::vector<std::vector<member>> previous_records(const std::vector<std::vector<member>>& run) {
    std::vector<std::vector<member>> out;
    for (const auto& m : run) {
        if (text_of(m, "reason").rfind("PreviousBoot", 0) == 0) {
            out.push_back(m);
        }
    }
    return out;
}

// Cuts the last line off the newest log file; returns it.
std::string cut_last_line(const std::string& dir) {
    const auto files = log_files(dir);
    REQUIRE(!files.empty());
    const std::string path = dir + "/" + files.back();
    std::string body = slurp(path);
    REQUIRE(body.size() > 1);
    const std::size_t nl = body.rfind('\n', body.size() - 2);
    const std::size_t start = nl == std::string::npos ? 0 : nl + 1;
    const std::string line = body.substr(start);
    body.resize(start);
    spill(path, body);
    return line;
}

void append_line(const std::string& dir, const std::string& line) {
    const auto files = log_files(dir);
    REQUIRE(!files.empty());
    std::ofstream f(dir + "/" + files.back(), std::ios::binary | std::ios::app);
    f << line;
}

} // namespace

TEST_CASE("runtime: orderly -> orderly; cut stop record -> restarted; another boot -> "
          "unreported or watchdog (CARDRESET); a new dir -> none") {
    custos_test::scratch_dir t("custos-prevrun");
    const std::string dir = t.at("log");
    const std::string sysfs = t.at("sys");
    REQUIRE(std::system(("mkdir -p '" + sysfs + "/class/watchdog/watchdog0'").c_str()) == 0);
    // No watchdog in sysfs for the first runs: bootstatus unknown.
    REQUIRE(::setenv("CUSTOS_SYSFS_ROOT", t.at("nosys").c_str(), 1) == 0);

    // Run 1: a new dir. No previous record (a new log says nothing about
    // an earlier run); its last line is its stop record.
    auto all = run_once(dir);
    REQUIRE(all.size() >= 2);
    CHECK(previous_records(all).empty());
    CHECK(text_of(all.front(), "reason") == "RuntimeStarted");
    const auto& stop1 = all.back();
    CHECK(text_of(stop1, "reason") == "RuntimeStop");
    CHECK(text_of(stop1, "kind") == "log");
    CHECK(text_of(stop1, "name") == "custos");
    CHECK(raw_of(stop1, "exit") == "{\"code\":0}");
    const std::string stop1_seq = raw_of(stop1, "seq");
    const std::string boot_id = text_of(stop1, "boot_id");

    // Run 2: the previous run stopped in order, in this same boot.
    all = run_once(dir);
    auto run = last_run(all);
    auto prev = previous_records(run);
    REQUIRE(prev.size() == 1);
    CHECK(text_of(prev[0], "reason") == "PreviousBootOrderly");
    CHECK(text_of(prev[0], "level") == "notice");
    CHECK(field_of(prev[0], "prev_seq") == stop1_seq);
    CHECK(field_of(prev[0], "rebooted") == (boot_id.empty() ? "unknown" : "no"));
    CHECK(field_of(prev[0], "bootstatus") == "unknown");
    // Right after the boot record.
    REQUIRE(run.size() >= 2);
    CHECK(text_of(run[1], "reason") == "PreviousBootOrderly");
    CHECK(text_of(all.back(), "reason") == "RuntimeStop");

    // Run 3: run 2's stop record cut off (a kill -9 after its last record).
    const std::string cut = cut_last_line(dir);
    CHECK(cut.find("\"RuntimeStop\"") != std::string::npos);
    const std::string before_cut = raw_of(custos_test::parse_line(log_lines(dir).back()), "seq");
    all = run_once(dir);
    prev = previous_records(last_run(all));
    REQUIRE(prev.size() == 1);
    if (!boot_id.empty()) {
        CHECK(text_of(prev[0], "reason") == "PreviousBootRestarted");
        CHECK(field_of(prev[0], "rebooted") == "no");
    } else {
        CHECK(text_of(prev[0], "reason") == "PreviousBootUnreported");
    }
    CHECK(field_of(prev[0], "prev_seq") == before_cut);
    CHECK(text_of(prev[0], "message")
              .find("ended without its stop record; last record seq " + before_cut) !=
          std::string::npos);

    // Run 4: the log ends in a record of another boot (no stop record);
    // bootstatus readable, without CARDRESET: unreported.
    REQUIRE(::setenv("CUSTOS_SYSFS_ROOT", sysfs.c_str(), 1) == 0);
    spill(sysfs + "/class/watchdog/watchdog0/bootstatus", "0\n");
    (void)cut_last_line(dir);
    const auto lines = log_lines(dir);
    std::uint64_t next =
        std::strtoull(raw_of(custos_test::parse_line(lines.back()), "seq").c_str(), nullptr, 10) +
        1;
    const std::string other = "{\"seq\":" + std::to_string(next) + ",\"boot_id\":\"" + boot_b +
                              "\",\"mono_ns\":99,\"ts\":\"2026-12-07T19:01:02.123Z\","
                              "\"clock_trusted\":true,\"level\":\"info\",\"kind\":\"service\","
                              "\"name\":\"web\",\"from\":\"starting\",\"to\":\"ready\","
                              "\"reason\":\"ReadyStarted\"}\n";
    append_line(dir, other);
    all = run_once(dir);
    prev = previous_records(last_run(all));
    REQUIRE(prev.size() == 1);
    CHECK(text_of(prev[0], "reason") == "PreviousBootUnreported");
    CHECK(field_of(prev[0], "prev_seq") == std::to_string(next));
    CHECK(field_of(prev[0], "prev_boot_id") == boot_b);
    CHECK(field_of(prev[0], "prev_reason") == "ReadyStarted");
    CHECK(field_of(prev[0], "bootstatus") == "0x0");
    CHECK(text_of(prev[0], "message").find("at 2026-12-07T19:01:02.123Z") != std::string::npos);
    if (!boot_id.empty()) {
        CHECK(field_of(prev[0], "rebooted") == "yes");
    }

    // Run 5: the same, and the fake watchdog says CARDRESET: the watchdog.
    spill(sysfs + "/class/watchdog/watchdog0/bootstatus", "32\n");
    (void)cut_last_line(dir);
    next = std::strtoull(raw_of(custos_test::parse_line(log_lines(dir).back()), "seq").c_str(),
                         nullptr, 10) +
           1;
    append_line(dir, "{\"seq\":" + std::to_string(next) + ",\"boot_id\":\"" + boot_b +
                         "\",\"mono_ns\":99,\"clock_trusted\":false,\"level\":\"info\","
                         "\"kind\":\"log\",\"name\":\"custos\",\"reason\":\"RuntimeStarted\"}\n");
    all = run_once(dir);
    prev = previous_records(last_run(all));
    REQUIRE(prev.size() == 1);
    if (!boot_id.empty()) {
        CHECK(text_of(prev[0], "reason") == "PreviousBootWatchdog");
        CHECK(text_of(prev[0], "level") == "critical");
        CHECK(text_of(prev[0], "message").find("CARDRESET") != std::string::npos);
    }
    CHECK(field_of(prev[0], "bootstatus") == "0x20");

    // Run 6: stopped in order again, CARDRESET still set but the same
    // boot: orderly, and the bit is not blamed on this boot.
    all = run_once(dir);
    prev = previous_records(last_run(all));
    REQUIRE(prev.size() == 1);
    CHECK(text_of(prev[0], "reason") == "PreviousBootOrderly");
    if (!boot_id.empty()) {
        CHECK(text_of(prev[0], "message").find("CARDRESET") == std::string::npos);
    }

    // Every seq once, in order, across all the runs (the stop records
    // included).
    std::uint64_t last_seq = 0;
    for (const auto& m : all) {
        const std::uint64_t s = std::strtoull(raw_of(m, "seq").c_str(), nullptr, 10);
        CHECK(s > last_seq);
        last_seq = s;
    }

    // A new dir beside it: no previous record.
    all = run_once(t.at("log2"));
    CHECK(previous_records(all).empty());
    ::unsetenv("CUSTOS_SYSFS_ROOT");
}

TEST_CASE("runtime: the watchdog's reset record wins where it classified the previous boot") {
    custos_test::scratch_dir t("custos-prevwd");
    const std::string dir = t.at("log");
    const std::string state = t.at("wd.state");
    // Run 1: the watchdog's first recorded boot (it classifies nothing),
    // on a new log: neither says anything.
    auto all = run_once(dir, state);
    CHECK(previous_records(all).empty());
    // The watchdog's close reaches the log before the stop record, which
    // ends it (the last snapshot's write is waited for before close()).
    REQUIRE(all.size() >= 2);
    CHECK(text_of(all[all.size() - 2], "reason") == "WatchdogDisarmed");
    CHECK(text_of(all.back(), "reason") == "RuntimeStop");
    // Run 2: the watchdog's record says orderly; the log's is not added.
    all = run_once(dir, state);
    auto prev = previous_records(last_run(all));
    REQUIRE(prev.size() == 1);
    CHECK(text_of(prev[0], "reason") == "PreviousBootOrderly");
    CHECK(text_of(prev[0], "kind") == "watchdog");
    // Run 3: the state file gone (the watchdog's first boot again): the
    // log's record tells it.
    REQUIRE(::unlink(state.c_str()) == 0);
    all = run_once(dir, state);
    prev = previous_records(last_run(all));
    REQUIRE(prev.size() == 1);
    CHECK(text_of(prev[0], "reason") == "PreviousBootOrderly");
    CHECK(text_of(prev[0], "kind") == "log");
}

int main(int argc, char** argv) {
    if (const int b = custos_test::probe_backend(); b != 0) {
        return b;
    }
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
