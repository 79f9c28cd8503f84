// The event log's core (src/eventlog/): the record's JSON line, from_event()
// for every kind, the folding of repeated transitions, and the log
// directory on a real temporary directory (rotation at its boundary, the
// files kept, seq across reopen, torn-line recovery, ENOSPC on a tiny
// tmpfs when root may mount one).
//
// Tagged cases run alone, each exiting 77 (a skip) where it cannot run:
//   --only=enospc  ENOSPC on a 64 KiB tmpfs (root, and a mount that works)
// Without --only, every other case runs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doctest.hpp"
#include "eventlog/files.hpp"
#include "eventlog/lines.hpp"
#include "eventlog/record.hpp"
#include "json_line.hpp"
#include "scratch_dir.hpp"
#include "status/event.hpp"
#include "tiny_tmpfs.hpp"

using namespace custos;
using namespace custos::eventlog;
using sv = std::string_view;
using custos_test::find;
using custos_test::keys_of;
using custos_test::member;
using custos_test::parse_line;

namespace {

constexpr std::int64_t sec = 1'000'000'000;
// 2023-11-14T22:13:20.123456789Z
constexpr std::int64_t wall0 = 1'700'000'000 * sec + 123'456'789;

std::string encode_str(const record& r, sv boot_id = "b00t") {
    char buf[max_line];
    const std::size_t n = encode(r, boot_id, buf, sizeof buf);
    REQUIRE(n > 0);
    return std::string(buf, n);
}

record full_record() {
    record r{};
    r.seq = 42;
    r.mono_ns = 123'456;
    r.wall_ns = wall0;
    r.clock_trusted = true;
    r.level = level::error;
    r.kind = status::event_kind::service_transition;
    r.set_name("broker");
    r.set_from("running");
    r.set_to("backoff");
    r.reason = Reason::process_exited;
    r.sys_errno = 5;
    r.pid = 4321;
    ExitInfo e;
    e.pid = 4321;
    e.code = 3;
    r.set_exit(e);
    r.set_message("exited with status 3");
    r.set_resolution("look at its output");
    return r;
}

bool jq_available() {
    return std::system("command -v jq >/dev/null 2>&1") == 0;
}

} // namespace

// --- the record's line -----------------------------------------------------------

TEST_CASE("encode: every field, in order, as JSON") {
    const std::string line = encode_str(full_record());
    const auto m = parse_line(line);
    CHECK(keys_of(m) == std::vector<std::string>{"seq", "boot_id", "mono_ns", "ts", "clock_trusted",
                                                 "level", "kind", "name", "from", "to", "reason",
                                                 "errno", "pid", "exit", "message", "resolution"});
    CHECK(find(m, "seq")->raw == "42");
    CHECK(find(m, "boot_id")->text == "b00t");
    CHECK(find(m, "mono_ns")->raw == "123456");
    CHECK(find(m, "ts")->text == "2023-11-14T22:13:20.123Z");
    CHECK(find(m, "clock_trusted")->raw == "true");
    CHECK(find(m, "level")->text == "error");
    CHECK(find(m, "kind")->text == "service");
    CHECK(find(m, "name")->text == "broker");
    CHECK(find(m, "from")->text == "running");
    CHECK(find(m, "to")->text == "backoff");
    CHECK(find(m, "reason")->text == "ProcessExited");
    CHECK(find(m, "errno")->raw == "5");
    CHECK(find(m, "pid")->raw == "4321");
    CHECK(find(m, "exit")->raw == R"({"code":3})");
    CHECK(find(m, "message")->text == "exited with status 3");
    CHECK(find(m, "resolution")->text == "look at its output");
    CHECK(line.find('\n') == line.size() - 1);
}

TEST_CASE("encode: empty and zero optional fields are omitted; a signal exit") {
    record r{};
    r.seq = 1;
    r.kind = status::event_kind::custom;
    auto m = parse_line(encode_str(r, ""));
    CHECK(keys_of(m) ==
          std::vector<std::string>{"seq", "mono_ns", "clock_trusted", "level", "kind"});
    CHECK(find(m, "kind")->text == "custom");
    CHECK(find(m, "clock_trusted")->raw == "false");
    CHECK(find(m, "level")->text == "info");

    ExitInfo e;
    e.pid = 9;
    e.signal = 11;
    e.core_dumped = true;
    r.set_exit(e);
    r.mono_ns = -5; // negative monotonic values still parse
    m = parse_line(encode_str(r, ""));
    REQUIRE(find(m, "exit") != nullptr);
    CHECK(find(m, "exit")->raw == R"({"signal":11,"core_dumped":true})");
    CHECK(find(m, "mono_ns")->raw == "-5");
    e.core_dumped = false;
    r.set_exit(e);
    CHECK(find(parse_line(encode_str(r, "")), "exit")->raw == R"({"signal":11})");
    ExitInfo clean;
    clean.pid = 7; // exit status 0 is still an exit
    r.set_exit(clean);
    CHECK(find(parse_line(encode_str(r, "")), "exit")->raw == R"({"code":0})");
}

TEST_CASE("encode: escaping of quotes, control characters and malformed UTF-8") {
    record r = full_record();
    r.set_message("say \"hi\"\\ \n\t\r\x01\x1f\x7f end \xff\xc3( \xe2\x82\xac ok");
    r.set_name("caf\xc3\xa9");
    const std::string line = encode_str(r);
    CHECK(line.find(R"(say \"hi\"\\ \n\t\r\u0001\u001f\u007f end \ufffd\ufffd( )") !=
          std::string::npos);
    const auto m = parse_line(line);
    REQUIRE(find(m, "message") != nullptr);
    CHECK(find(m, "message")->text ==
          "say \"hi\"\\ \n\t\r\x01\x1f\x7f end \xef\xbf\xbd\xef\xbf\xbd( \xe2\x82\xac ok");
    CHECK(find(m, "name")->text == "caf\xc3\xa9");
}

TEST_CASE("record: long texts are cut at a UTF-8 boundary with a marker") {
    record r{};
    // 2-byte characters: a cut at cap - 3 falls inside one for an odd cap - 3.
    std::string two;
    for (int i = 0; i < 200; ++i) {
        two += "\xc3\xa9";
    }
    r.set_message(two);
    const sv msg = r.message_view();
    CHECK(msg.size() <= record::message_cap);
    CHECK(msg.substr(msg.size() - 3) == "\xe2\x80\xa6");
    const sv body = msg.substr(0, msg.size() - 3);
    CHECK(body.size() % 2 == 0); // whole characters only
    CHECK(body == sv(two).substr(0, body.size()));
    // 4-byte characters in a name.
    std::string four;
    for (int i = 0; i < 30; ++i) {
        four += "\xf0\x9f\x98\x80";
    }
    r.set_name(four);
    CHECK(r.name_view().size() <= record::name_cap);
    CHECK((r.name_view().size() - 3) % 4 == 0);
    // Exactly the capacity: kept whole, no marker.
    const std::string exact(record::resolution_cap, 'x');
    r.set_resolution(exact);
    CHECK(r.resolution_view() == exact);
    r.set_resolution(exact + "y");
    CHECK(r.resolution_view().size() == record::resolution_cap);
    CHECK(r.resolution_view().substr(record::resolution_cap - 3) == "\xe2\x80\xa6");
    // The line stays valid UTF-8 JSON (the reader rejects malformed UTF-8).
    r.set_from("runningrunningrunning");
    const auto m = parse_line(encode_str(r));
    REQUIRE(find(m, "message") != nullptr);
    CHECK(find(m, "message")->text == std::string(msg));
    CHECK(find(m, "from")->text.size() <= record::state_cap);
}

TEST_CASE("encode: fold fields only when count > 1") {
    record r = full_record();
    r.count = 1;
    r.first_mono_ns = 7;
    r.first_wall_ns = wall0 - sec;
    CHECK(find(parse_line(encode_str(r)), "count") == nullptr);
    r.count = 17;
    const auto m = parse_line(encode_str(r));
    const auto k = keys_of(m);
    REQUIRE(k.size() == 19);
    CHECK(k[16] == "count");
    CHECK(k[17] == "first_ts");
    CHECK(k[18] == "first_mono_ns");
    CHECK(find(m, "count")->raw == "17");
    CHECK(find(m, "first_ts")->text == "2023-11-14T22:13:19.123Z");
    CHECK(find(m, "first_mono_ns")->raw == "7");
    r.first_wall_ns = 0; // unknown: no first_ts
    CHECK(find(parse_line(encode_str(r)), "first_ts") == nullptr);
}

TEST_CASE("encode: never writes past cap; 0 when the line does not fit") {
    const record r = full_record();
    const std::string whole = encode_str(r);
    std::vector<char> buf(whole.size() + 16);
    for (std::size_t cap = 0; cap <= whole.size() + 1; ++cap) {
        std::fill(buf.begin(), buf.end(), '#');
        const std::size_t n = encode(r, "b00t", buf.data(), cap);
        if (cap < whole.size()) {
            CHECK(n == 0);
        } else {
            CHECK(n == whole.size());
            CHECK(std::string(buf.data(), n) == whole);
        }
        for (std::size_t k = cap; k < buf.size(); ++k) {
            REQUIRE(buf[k] == '#');
        }
    }
}

TEST_CASE("encode: the worst record fits max_line") {
    record r{};
    r.seq = UINT64_MAX;
    r.mono_ns = INT64_MIN;
    r.wall_ns = INT64_MAX;
    r.first_mono_ns = INT64_MIN;
    r.first_wall_ns = INT64_MIN;
    r.count = UINT32_MAX;
    r.sys_errno = INT32_MIN;
    r.pid = INT32_MIN;
    r.reason = Reason::restart_intensity_exceeded;
    r.kind = status::event_kind::service_transition;
    r.level = level::critical;
    r.clock_trusted = true;
    r.has_exit = true;
    r.exit_signal = INT32_MIN;
    r.exit_core = true;
    const std::string bad(1000, '\x01');
    r.set_name(bad);
    r.set_from(bad);
    r.set_to(bad);
    r.set_message(bad);
    r.set_resolution(bad);
    const std::string boot(200, '\x02');
    std::vector<char> buf(max_line);
    const std::size_t n = encode(r, boot, buf.data(), buf.size());
    CHECK(n > 0);
    CHECK(n <= max_line);
    parse_line(sv(buf.data(), n));
}

TEST_CASE("encode: jq reads every line") {
    if (!jq_available()) {
        MESSAGE("skipped: jq is not installed");
        return;
    }
    char path[] = "/tmp/custos-eventlog-jq-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    record a = full_record();
    a.set_message("quote \" backslash \\ ctl \x01 bad \xff");
    record b{};
    b.count = 3;
    b.first_wall_ns = wall0;
    for (const record* r : {&a, &b}) {
        const std::string l = encode_str(*r);
        REQUIRE(::write(fd, l.data(), l.size()) == static_cast<ssize_t>(l.size()));
    }
    ::close(fd);
    const std::string cmd = std::string("jq -e -s 'length == 2 and .[0].seq == 42 and "
                                        ".[0].message == \"quote \\\" backslash \\\\ ctl "
                                        "\\u0001 bad \\ufffd\" and .[1].count == 3' ") +
                            path + " >/dev/null";
    CHECK(std::system(cmd.c_str()) == 0);
    ::unlink(path);
}

// --- from_event ------------------------------------------------------------------

TEST_CASE("to_text: a line for people; custom fields are not taken for the record's members") {
    char text[max_line];
    const std::string line = encode_str(full_record());
    std::size_t n = lines::to_text(line.data(), line.size(), text, sizeof text);
    REQUIRE(n > 0);
    CHECK(sv(text, n) == "#42 2023-11-14T22:13:20.123Z error service broker running -> backoff "
                         "ProcessExited: exited with status 3\n");

    // No name and no message of its own, and fields named like members.
    record r;
    const LogField f[] = {{"name", "forged"},  {"from", "a"},  {"to", "running"},
                          {"message", "fake"}, {"count", "9"}, {"level", "critical"}};
    REQUIRE(make_custom(r, "Upload", "", f, LogLevel::info, "", 0, wall0));
    r.seq = 7;
    const std::string custom = encode_str(r);
    n = lines::to_text(custom.data(), custom.size(), text, sizeof text);
    REQUIRE(n > 0);
    const sv out(text, n);
    const std::size_t at = out.find(" {");
    REQUIRE(at != sv::npos);
    CHECK(out.substr(0, at) == "#7 2023-11-14T22:13:20.123Z? info custom Upload");
    CHECK(out.substr(at).find("\"to\":\"running\"") != sv::npos); // the fields, as they are
}

TEST_CASE("from_event: a service transition") {
    Transition t;
    t.service = 2;
    t.name = "broker";
    t.from = ServiceState::running;
    t.to = ServiceState::backoff;
    t.reason = Reason::process_exited;
    t.pid = 77;
    t.exit.pid = 77;
    t.exit.code = 1;
    t.at_ns = 555;
    t.detail = "exit status 1";
    const status::event e = status::make_event(t, wall0);
    const record r = from_event(e);
    CHECK(r.kind == status::event_kind::service_transition);
    CHECK(r.level == level::warning);
    CHECK(r.name_view() == "broker");
    CHECK(r.from_view() == "running");
    CHECK(r.to_view() == "backoff");
    CHECK(r.reason == Reason::process_exited);
    CHECK(r.pid == 77);
    CHECK(r.has_exit);
    CHECK(r.exit_code == 1);
    CHECK(r.exit_signal == 0);
    CHECK(r.mono_ns == 555);
    CHECK(r.wall_ns == wall0);
    CHECK(r.message_view() == "exit status 1");
    // No resolution on the event: the reason's own.
    CHECK(r.resolution_view() == Error(Reason::process_exited, 0).resolution());
    CHECK(r.count == 1);

    t.from = ServiceState::backoff;
    t.to = ServiceState::failed;
    t.reason = Reason::max_restarts_exhausted;
    CHECK(from_event(status::make_event(t, wall0)).level == level::critical);
    t.from = ServiceState::running;
    t.to = ServiceState::ready;
    t.reason = Reason::ready_notified;
    t.exit = ExitInfo{};
    const record ready = from_event(status::make_event(t, wall0));
    CHECK(ready.level == level::info);
    CHECK(!ready.has_exit);
    t.reason = Reason::operator_restart;
    CHECK(from_event(status::make_event(t, wall0)).level == level::notice);
    // The level given wins.
    CHECK(from_event(status::make_event(t, wall0), level::debug).level == level::debug);
}

TEST_CASE("from_event: a probe transition keeps its resolution") {
    ProbeTransition t;
    t.name = "mqtt";
    t.from = ProbeState::ready;
    t.to = ProbeState::down;
    t.reason = Reason::probe_connect_refused;
    t.sys_errno = ECONNREFUSED;
    t.message = "connect 10.0.0.2:1883: Connection refused";
    t.resolution = "start the broker";
    t.at_ns = 9;
    const record r = from_event(status::make_event(t, wall0));
    CHECK(r.kind == status::event_kind::probe_transition);
    CHECK(r.level == level::warning);
    CHECK(r.from_view() == "ready");
    CHECK(r.to_view() == "down");
    CHECK(r.sys_errno == ECONNREFUSED);
    CHECK(r.message_view() == "connect 10.0.0.2:1883: Connection refused");
    CHECK(r.resolution_view() == "start the broker");
    t.from = ProbeState::down;
    t.to = ProbeState::ready;
    t.reason = Reason::probe_recovered;
    t.resolution = {};
    CHECK(from_event(status::make_event(t, wall0)).level == level::notice);
}

TEST_CASE("from_event: monitor, watchdog and health events") {
    MonitorTransition m;
    m.name = "poller";
    m.from = MonitorState::running;
    m.to = MonitorState::wedged;
    m.reason = Reason::monitor_wedged;
    m.detail = "no progress in 30 s";
    const record rm = from_event(status::make_event(m, wall0));
    CHECK(rm.kind == status::event_kind::monitor);
    CHECK(rm.level == level::error);
    CHECK(rm.from_view() == "running");
    CHECK(rm.to_view() == "wedged");
    CHECK(rm.message_view() == "no progress in 30 s");
    m.from = m.to = MonitorState::running;
    m.reason = Reason::monitor_heartbeat;
    CHECK(from_event(status::make_event(m, wall0)).level == level::debug);

    WatchdogTransition w;
    w.from = WatchdogState::feeding;
    w.to = WatchdogState::starving;
    w.reason = Reason::watchdog_starving;
    w.message = "health failed";
    const record rw = from_event(status::make_event(w, wall0));
    CHECK(rw.kind == status::event_kind::watchdog);
    CHECK(rw.level == level::critical);
    CHECK(rw.name_view() == "watchdog");
    CHECK(rw.from_view() == "feeding");
    CHECK(rw.to_view() == "starving");
    w.from = WatchdogState::starving;
    w.to = WatchdogState::feeding;
    w.reason = Reason::watchdog_fed_again;
    CHECK(from_event(status::make_event(w, wall0)).level == level::notice);

    HealthStatus h;
    h.health = Health::failed;
    const record rh = from_event(status::make_event(h, Health::ok, wall0, 5));
    CHECK(rh.kind == status::event_kind::health);
    CHECK(rh.level == level::error);
    CHECK(rh.from_view() == "ok");
    CHECK(rh.to_view() == "failed");
    CHECK(rh.name_view() == "health");
    h.health = Health::degraded;
    CHECK(from_event(status::make_event(h, Health::ok, wall0, 5)).level == level::warning);
}

TEST_CASE("from_event: a control action, with its answer") {
    status::event e;
    e.kind = status::event_kind::control_action;
    e.name = "broker";
    e.detail = "POST /services/broker/restart by custosctl";
    e.pid = 99;
    e.peer_uid = 0;
    e.http_status = 202;
    e.reason = Reason::control_action;
    e.mono_ns = 1;
    const record r = from_event(e);
    CHECK(r.kind == status::event_kind::control_action);
    CHECK(r.level == level::notice);
    CHECK(r.pid == 99);
    CHECK(r.from_len == 0);
    CHECK(r.to_len == 0);
    CHECK(r.message_view() == "POST /services/broker/restart by custosctl (HTTP 202, uid 0)");
    const auto m = parse_line(encode_str(r));
    CHECK(find(m, "kind")->text == "control");
    CHECK(find(m, "from") == nullptr);
    e.reason = Reason::control_denied;
    e.http_status = 403;
    CHECK(from_event(e).level == level::warning);
}

// --- folding -----------------------------------------------------------------------

namespace {

record transition(sv name, sv from, sv to, std::int64_t at_ns,
                  Reason why = Reason::process_exited) {
    record r{};
    r.kind = status::event_kind::service_transition;
    r.set_name(name);
    r.set_from(from);
    r.set_to(to);
    r.reason = why;
    r.mono_ns = at_ns;
    r.wall_ns = wall0 + at_ns;
    return r;
}

} // namespace

TEST_CASE("folder: a crash loop of 1000 identical transitions is a handful of records") {
    static folder f; // 64 records in place: not on the stack
    f = folder(folder::default_window_ns, 1);
    std::vector<record> written;
    record out[2];
    record boot = transition("boot", "", "", 0, Reason::previous_boot_watchdog);
    boot.kind = status::event_kind::watchdog;
    for (std::size_t k = 0, n = f.offer(boot, out); k < n; ++k) {
        written.push_back(out[k]);
    }
    const std::int64_t step = sec / 10; // ten a second: 100 s in all
    for (int i = 0; i < 1000; ++i) {
        const std::int64_t at = 1 + i * step;
        for (std::size_t k = 0, n = f.offer(transition("svc", "running", "backoff", at), out);
             k < n; ++k) {
            written.push_back(out[k]);
        }
        if (i % 10 == 0) { // the writer's timer, about once a second
            record due[4];
            for (std::size_t k = 0, n = f.flush_due(at, due, 4); k < n; ++k) {
                written.push_back(due[k]);
            }
        }
    }
    record rest[8];
    for (std::size_t k = 0, n = f.flush_all(rest, 8); k < n; ++k) {
        written.push_back(rest[k]);
    }
    std::uint64_t sum = 0;
    std::size_t svc_records = 0;
    for (const record& r : written) {
        if (r.name_view() == "svc") {
            sum += r.count;
            ++svc_records;
            CHECK(r.first_mono_ns <= r.mono_ns);
        }
    }
    CHECK(sum == 1000);
    CHECK(svc_records >= 2);
    CHECK(svc_records <= 16); // one a 10 s window, and the first
    MESSAGE(svc_records << " records for 1000 transitions");
    CHECK(written.front().name_view() == "boot");
    CHECK(f.folded() == 999); // all but the first, written at once
    // The first is written at once; the fold after it spans its window.
    CHECK(written[1].count == 1);
    CHECK(written[1].mono_ns == 1);
    CHECK(written[2].count > 1);
    CHECK(written[2].first_mono_ns == 1 + step);
}

TEST_CASE("folder: each transition of a subject folds on its own") {
    static folder f;
    f = folder(folder::default_window_ns, 1);
    record out[2];
    CHECK(f.offer(transition("a", "running", "backoff", 1), out) == 1);
    CHECK(f.offer(transition("b", "running", "backoff", 2), out) == 1);
    CHECK(f.offer(transition("a", "running", "backoff", 3), out) == 0);
    CHECK(f.offer(transition("b", "running", "backoff", 4), out) == 0);
    CHECK(f.offer(transition("a", "running", "backoff", 5), out) == 0);
    CHECK(f.next_due() == 1 + folder::default_window_ns); // a's run began at 1
    // Another transition of a: written at once; a's held fold stays held.
    REQUIRE(f.offer(transition("a", "backoff", "starting", 6, Reason::backoff_elapsed), out) == 1);
    CHECK(out[0].to_view() == "starting");
    CHECK(out[0].count == 1);
    // Another reason is another transition, too.
    REQUIRE(f.offer(transition("b", "running", "backoff", 7, Reason::process_killed), out) == 1);
    CHECK(out[0].reason == Reason::process_killed);
    CHECK(f.subjects() == 4);
    record rest[8];
    REQUIRE(f.flush_all(rest, 8) == 2);
    CHECK(rest[0].name_view() == "a");
    CHECK(rest[0].count == 2); // 3 .. 5
    CHECK(rest[0].first_mono_ns == 3);
    CHECK(rest[0].mono_ns == 5);
    CHECK(rest[1].name_view() == "b");
    CHECK(rest[1].count == 1); // one repeat held: a plain record
    CHECK(rest[1].mono_ns == 4);
    CHECK(f.flush_all(rest, 8) == 0);
}

TEST_CASE("folder: a crash loop through several states folds every step") {
    static folder f;
    f = folder(folder::default_window_ns, 1);
    std::vector<record> written;
    record out[2];
    auto take = [&written](const record* rs, std::size_t n) {
        for (std::size_t k = 0; k < n; ++k) {
            written.push_back(rs[k]);
        }
    };
    // 1000 cycles, 100 a second: running -> backoff (the crash), backoff ->
    // starting, starting -> running; 10 s in all, with the writer's timer
    // every 100 ms.
    const std::int64_t cycle = sec / 100;
    for (int i = 0; i < 1000; ++i) {
        const std::int64_t at = 1 + i * cycle;
        take(out, f.offer(transition("svc", "running", "backoff", at), out));
        take(out, f.offer(transition("svc", "backoff", "starting", at + 1, Reason::backoff_elapsed),
                          out));
        take(out, f.offer(transition("svc", "starting", "running", at + 2, Reason::spawned), out));
        if (i % 10 == 0) {
            record due[4];
            take(due, f.flush_due(at, due, 4));
        }
    }
    record rest[8];
    take(rest, f.flush_all(rest, 8));
    std::uint64_t sum = 0;
    for (const record& r : written) {
        sum += r.count;
    }
    CHECK(sum == 3000);
    CHECK(written.size() <= 9); // per step: the first, then a fold a window
    MESSAGE(written.size() << " records for 3000 transitions");
    CHECK(f.folded() + written.size() >= 3000);
}

TEST_CASE("folder: window expiry") {
    static folder f;
    const std::int64_t w = 10 * sec;
    f = folder(w, 1);
    record out[2];
    record due[4];
    CHECK(f.offer(transition("a", "x", "y", 0), out) == 1);
    CHECK(f.offer(transition("a", "x", "y", sec), out) == 0);
    CHECK(f.flush_due(w - 1, due, 4) == 0);
    REQUIRE(f.flush_due(w, due, 4) == 1);
    CHECK(due[0].count == 1);
    CHECK(f.next_due() == 0);
    // A repeat in the next window is held again.
    CHECK(f.offer(transition("a", "x", "y", w + sec), out) == 0);
    CHECK(f.offer(transition("a", "x", "y", w + 2 * sec), out) == 0);
    // One past the window, seen by offer() itself: the held fold goes out
    // and the newcomer opens the next window's.
    REQUIRE(f.offer(transition("a", "x", "y", 2 * w + 1), out) == 1);
    CHECK(out[0].count == 2);
    CHECK(out[0].first_mono_ns == w + sec);
    REQUIRE(f.flush_all(due, 4) == 1);
    CHECK(due[0].count == 1);
    CHECK(due[0].mono_ns == 2 * w + 1);
    // After a quiet window (nothing held), a repeat is written at once.
    CHECK(f.offer(transition("a", "x", "y", 10 * w), out) == 1);
}

TEST_CASE("folder: table full, the least recently seen subject makes room") {
    static folder f;
    f = folder(folder::default_window_ns, 1);
    record out[2];
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < folder::capacity; ++i) {
        const std::string name = "s" + std::to_string(i);
        CHECK(f.offer(transition(name, "x", "y", 1), out) == 1);
        CHECK(f.offer(transition(name, "x", "y", 2), out) == 0); // held
        ++total;
    }
    CHECK(f.subjects() == folder::capacity);
    // s0 is the oldest: its held fold goes out before the newcomer.
    REQUIRE(f.offer(transition("new", "x", "y", 3), out) == 2);
    CHECK(out[0].name_view() == "s0");
    CHECK(out[0].count == 1);
    CHECK(out[1].name_view() == "new");
    CHECK(f.evictions() == 1);
    CHECK(f.subjects() == folder::capacity);
    // s0 again is a new subject: written at once (s1's fold makes room).
    REQUIRE(f.offer(transition("s0", "x", "y", 4), out) == 2);
    CHECK(out[0].name_view() == "s1");
    CHECK(out[1].name_view() == "s0");
    // Everything held comes out; the bounded flush says when to call again.
    record some[8];
    std::size_t held = 0;
    for (std::size_t n; (n = f.flush_all(some, 8)) != 0;) {
        held += n;
    }
    CHECK(held == total - 2);
}

TEST_CASE("folder: by default a repeat is written at once, a run of them is folded") {
    static folder f;
    f = folder(); // immediate: the first two of a run at once
    record out[2];
    // A restart an operator asked for: the same starting -> ready as at
    // boot, five seconds later, is written at once (not held for 10 s).
    CHECK(f.offer(transition("web", "starting", "ready", 1, Reason::ready_started), out) == 1);
    REQUIRE(f.offer(transition("web", "starting", "ready", 5 * sec, Reason::ready_started), out) ==
            1);
    CHECK(out[0].count == 1);
    CHECK(out[0].mono_ns == 5 * sec);
    // A third within the window is a run: held, then one record.
    CHECK(f.offer(transition("web", "starting", "ready", 6 * sec, Reason::ready_started), out) ==
          0);
    CHECK(f.offer(transition("web", "starting", "ready", 7 * sec, Reason::ready_started), out) ==
          0);
    record due[4];
    REQUIRE(f.flush_due(1 + folder::default_window_ns, due, 4) == 1);
    CHECK(due[0].count == 2);
    CHECK(due[0].first_mono_ns == 6 * sec);
    CHECK(due[0].mono_ns == 7 * sec);
    CHECK(f.folded() == 2);
}

// --- the log directory ---------------------------------------------------------------

namespace {

struct tmp_dir : custos_test::scratch_dir {
    tmp_dir() : scratch_dir("custos-eventlog") {}
    std::vector<std::string> files() const {
        std::vector<std::string> out;
        const std::string cmd = "ls -1 '" + path + "'";
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
    void write(sv name, sv body) const {
        const int fd = ::open(at(name).c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()));
        ::close(fd);
    }
};

// A line of exactly `len` bytes for `seq` (padding in the message).
std::string line_of(std::uint64_t seq, std::size_t len) {
    std::string head = "{\"seq\":" + std::to_string(seq) + ",\"message\":\"";
    const std::string tail = "\"}\n";
    REQUIRE(len >= head.size() + tail.size());
    return head + std::string(len - head.size() - tail.size(), 'p') + tail;
}

std::string encoded(std::uint64_t seq) {
    record r = full_record();
    r.seq = seq;
    return encode_str(r);
}

void must_append(log_dir& d, const std::string& line) {
    auto r = d.append(line.data(), line.size());
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : std::string(r.error().id())));
}

std::string padded(std::uint64_t seq) {
    char b[32];
    std::snprintf(b, sizeof b, "%020llu", static_cast<unsigned long long>(seq));
    return b;
}

} // namespace

TEST_CASE("log_dir: a new directory, its first file, names") {
    tmp_dir t;
    const std::string dir = t.at("log"); // created by open()
    log_dir d;
    auto o = d.open(dir);
    REQUIRE(o.has_value());
    CHECK(o->created);
    CHECK(o->files == 0);
    CHECK(o->next_seq == 1);
    CHECK(o->cut_bytes == 0);
    struct stat st;
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0750);
    const sv name = d.current_name();
    CHECK(name == sv(o->file));
    CHECK(name == "events-" + padded(1) + "-19700101T000000Z.jsonl"); // clock untrusted
    must_append(d, encoded(1));
    must_append(d, encoded(2));
    CHECK(d.next_seq() == 3);
    CHECK(d.counters().written == 2);
    // A trusted clock names the next file with the time.
    d.set_clock_trusted(true);
    log_dir d2;
    tmp_dir t2;
    d2.set_clock_trusted(true);
    REQUIRE(d2.open(t2.path, 4096, 8, 500).has_value());
    const std::string n2(d2.current_name());
    REQUIRE(n2.size() == 7 + 20 + 1 + 16 + 6);
    CHECK(n2.substr(0, 28) == "events-" + padded(500) + "-");
    CHECK(n2.substr(28, 2) == "20"); // this century
    CHECK(n2[36] == 'T');
    CHECK(n2[43] == 'Z');
    CHECK(d2.next_seq() == 500);
}

TEST_CASE("log_dir: rotation exactly at the boundary") {
    tmp_dir t;
    log_dir d;
    REQUIRE(d.open(t.path, 1000, 8).has_value());
    const std::string first(d.current_name());
    must_append(d, line_of(1, 600));
    must_append(d, line_of(2, 400)); // 1000: fits exactly
    CHECK(d.current_name() == first);
    CHECK(d.current_size() == 1000);
    CHECK(d.counters().rotated == 0);
    must_append(d, line_of(3, 100)); // one byte over: a new file for seq 3
    CHECK(d.counters().rotated == 1);
    CHECK(d.current_name().substr(0, 27) == "events-" + padded(3));
    CHECK(d.current_size() == 100);
    CHECK(t.read(first).size() == 1000);
    // 977 + 23 = 1000 fits; 1000 + 23 does not.
    must_append(d, line_of(4, 877));
    must_append(d, line_of(5, 23));
    CHECK(d.counters().rotated == 1);
    const std::string second(d.current_name());
    must_append(d, line_of(6, 23));
    CHECK(d.counters().rotated == 2);
    CHECK(t.read(second).size() == 1000);
    // A line longer than a whole file still goes in (into a file of its own).
    must_append(d, line_of(7, 1500));
    CHECK(d.current_name().substr(0, 27) == "events-" + padded(7));
    CHECK(d.current_size() == 1500);
    must_append(d, line_of(8, 30));
    CHECK(d.current_name().substr(0, 27) == "events-" + padded(8));
}

TEST_CASE("log_dir: max_files kept, oldest deleted by numeric seq (9 to 10 digits)") {
    tmp_dir t;
    // Files from an earlier run whose names cross 9 to 10 digits, written
    // without padding (a name sort would put 1000000000 first).
    t.write("events-999999997-19700101T000000Z.jsonl", line_of(999'999'997, 50));
    t.write("events-999999998-19700101T000000Z.jsonl", line_of(999'999'998, 50));
    t.write("events-999999999-19700101T000000Z.jsonl", line_of(999'999'999, 50));
    t.write("events-1000000000-19700101T000000Z.jsonl", line_of(1'000'000'000, 50));
    t.write("notes.txt", "not a log file\n");
    t.write("events-latest.jsonl", "a stray that matches the glob\n");
    // A reader holding the oldest open does not keep it (no lease probe:
    // the log must stay bounded; the reader keeps its data until it closes).
    const int reader =
        ::open(t.at("events-999999997-19700101T000000Z.jsonl").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(reader >= 0);
    log_dir d;
    auto o = d.open(t.path, 100, 3);
    REQUIRE_MESSAGE(o.has_value(), (o ? "" : std::string(o.error().id()))
                                       << " " << (o ? 0 : o.error().sys_errno()));
    CHECK(o->files == 4);
    CHECK(!o->created);
    CHECK(d.current_name() == "events-1000000000-19700101T000000Z.jsonl");
    CHECK(d.next_seq() == 1'000'000'001);
    must_append(d, line_of(1'000'000'001, 60)); // 50 + 60 > 100: rotates
    CHECK(d.counters().rotated == 1);
    CHECK(d.counters().deleted == 2);
    char first[8] = {};
    CHECK(::pread(reader, first, 7, 0) == 7); // still readable through the reader's fd
    CHECK(std::string_view(first, 7) == "{\"seq\":");
    ::close(reader);
    auto names = t.files();
    CHECK(names == std::vector<std::string>{
                       "events-" + padded(1'000'000'001) + "-19700101T000000Z.jsonl",
                       "events-1000000000-19700101T000000Z.jsonl",
                       "events-999999999-19700101T000000Z.jsonl",
                       "events-latest.jsonl",
                       "notes.txt",
                   });
    for (std::uint64_t s = 1'000'000'002; s < 1'000'000'006; ++s) {
        must_append(d, line_of(s, 60));
    }
    names = t.files();
    REQUIRE(names.size() == 5);
    CHECK(names[0] == "events-" + padded(1'000'000'003) + "-19700101T000000Z.jsonl");
    CHECK(names[2] == "events-" + padded(1'000'000'005) + "-19700101T000000Z.jsonl");
    CHECK(names[3] == "events-latest.jsonl");
    CHECK(names[4] == "notes.txt");
    CHECK(t.read("notes.txt") == "not a log file\n");
}

TEST_CASE("log_dir: seq continues across close and reopen") {
    tmp_dir t;
    {
        log_dir d;
        REQUIRE(d.open(t.path, 4096, 8, 1).has_value());
        for (std::uint64_t s = 1; s <= 5; ++s) {
            must_append(d, encoded(s));
        }
        REQUIRE(d.sync().has_value());
    }
    log_dir d;
    auto o = d.open(t.path, 4096, 8, 1);
    REQUIRE(o.has_value());
    CHECK(o->files == 1);
    CHECK(!o->created);
    CHECK(o->cut_bytes == 0);
    CHECK(o->next_seq == 6);
    must_append(d, encoded(d.next_seq()));
    CHECK(d.next_seq() == 7);
    // Reopening the same object starts over cleanly.
    REQUIRE(d.open(t.path, 4096, 8, 1).has_value());
    CHECK(d.next_seq() == 7);
    const std::string body = t.read(d.current_name());
    CHECK(std::count(body.begin(), body.end(), '\n') == 6);
}

TEST_CASE("log_dir: a torn last line is cut and reported; seq from the last whole line") {
    tmp_dir t;
    const std::string name = "events-" + padded(10) + "-19700101T000000Z.jsonl";
    const std::string whole = encoded(10) + encoded(11) + encoded(12);
    const std::string torn = encoded(13).substr(0, 40);
    t.write(name, whole + torn);
    log_dir d;
    auto o = d.open(t.path);
    REQUIRE(o.has_value());
    CHECK(o->cut_bytes == 40);
    CHECK(d.counters().cut_bytes == 40);
    CHECK(o->next_seq == 13);
    CHECK(t.read(name) == whole);
    must_append(d, encoded(13));
    CHECK(t.read(name) == whole + encoded(13));
    // A file that is one torn line only: empty after the cut, seq from the name.
    const std::string name2 = "events-" + padded(20) + "-19700101T000000Z.jsonl";
    t.write(name2, "{\"seq\":20,\"mess");
    log_dir d2;
    auto o2 = d2.open(t.path);
    REQUIRE(o2.has_value());
    CHECK(o2->cut_bytes == 15);
    CHECK(o2->next_seq == 20);
    CHECK(d2.current_name() == name2);
    CHECK(t.read(name2).empty());
    // A long last line (longer than a read chunk) torn: cut back to the
    // line before it.
    const std::string name3 = "events-" + padded(30) + "-19700101T000000Z.jsonl";
    const std::string before = line_of(30, 5000);
    t.write(name3, before + line_of(31, 9000).substr(0, 8999));
    log_dir d3;
    auto o3 = d3.open(t.path);
    REQUIRE(o3.has_value());
    CHECK(o3->cut_bytes == 8999);
    CHECK(o3->next_seq == 31);
    CHECK(t.read(name3) == before);
}

TEST_CASE("log_dir: an empty newest file; a last line without a seq") {
    tmp_dir t;
    t.write("events-" + padded(3) + "-19700101T000000Z.jsonl", encoded(3) + encoded(4));
    t.write("events-" + padded(5) + "-19700101T000000Z.jsonl", "");
    log_dir d;
    auto o = d.open(t.path);
    REQUIRE(o.has_value());
    CHECK(o->files == 2);
    CHECK(o->next_seq == 5);
    CHECK(o->cut_bytes == 0);
    CHECK(d.current_name().substr(0, 27) == "events-" + padded(5));
    // Lines without a seq (another writer's): one number each.
    tmp_dir t2;
    t2.write("events-" + padded(40) + "-19700101T000000Z.jsonl", "{}\n{}\n{}\n");
    log_dir d2;
    auto o2 = d2.open(t2.path);
    REQUIRE(o2.has_value());
    CHECK(o2->next_seq == 43);
}

TEST_CASE("log_dir: bad arguments") {
    tmp_dir t;
    log_dir d;
    CHECK(!d.append("x\n", 2).has_value()); // not open
    CHECK(!d.sync().has_value());
    auto a = d.open(t.path, 0, 8);
    REQUIRE(!a.has_value());
    CHECK(a.error().reason() == Reason::invalid_argument);
    auto b = d.open(t.path, 100, 0);
    REQUIRE(!b.has_value());
    auto c = d.open(t.at("no/such/parent"));
    REQUIRE(!c.has_value());
    CHECK(c.error().reason() == Reason::event_log_unavailable);
    CHECK(c.error().sys_errno() == ENOENT);
    CHECK(!d.is_open());
}

TEST_CASE("log_dir: ENOSPC on a tiny tmpfs: whole lines only, and it recovers [enospc]") {
    tmp_dir t;
    const custos_test::tiny_tmpfs fs(t.at("mnt"), "custos-eventlog"); // main() checked
    const std::string& mnt = fs.path;
    // A filler that leaves less than a few lines of room.
    const std::string filler = fs.fill(48 * 1024);
    log_dir d;
    REQUIRE(d.open(mnt + "/log", 1 << 20, 8).has_value());
    const std::string name = mnt + "/log/" + std::string(d.current_name());
    int failed = 0;
    Error last;
    std::uint64_t ok_lines = 0;
    for (int i = 0; i < 200 && failed == 0; ++i) {
        const std::string l = line_of(d.next_seq(), 300 + (i % 7) * 13);
        auto r = d.append(l.data(), l.size());
        if (r) {
            ++ok_lines;
        } else {
            ++failed;
            last = r.error();
        }
    }
    REQUIRE(failed == 1);
    CHECK(last.reason() == Reason::event_log_write_failed);
    CHECK(last.sys_errno() == ENOSPC);
    CHECK(d.counters().write_errors == 1);
    // Only whole lines, each with its seq in order.
    auto check_whole = [&](std::uint64_t expect_lines) {
        std::string body;
        FILE* f = std::fopen(name.c_str(), "rb");
        REQUIRE(f != nullptr);
        char b[4096];
        for (std::size_t n; (n = std::fread(b, 1, sizeof b, f)) > 0;) {
            body.append(b, n);
        }
        std::fclose(f);
        CHECK(!body.empty());
        CHECK(body.back() == '\n');
        CHECK(static_cast<std::uint64_t>(std::count(body.begin(), body.end(), '\n')) ==
              expect_lines);
    };
    check_whole(ok_lines);
    // Space freed: appends work again, and the seq goes on from the last.
    REQUIRE(::truncate(filler.c_str(), 0) == 0);
    const std::uint64_t next = d.next_seq();
    CHECK(next == ok_lines + 1);
    must_append(d, line_of(next, 300));
    check_whole(ok_lines + 1);
    // A reopen finds nothing torn.
    log_dir again;
    auto o = again.open(mnt + "/log", 1 << 20, 8);
    REQUIRE(o.has_value());
    CHECK(o->cut_bytes == 0);
    CHECK(o->next_seq == next + 1);
}

int main(int argc, char** argv) {
    return custos_test::enospc_main(argc, argv, "custos-eventlog");
}
