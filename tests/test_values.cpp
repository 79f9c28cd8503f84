// The value parsers of src/table/values.*: what each accepts, what it
// refuses, at which limit, and the exact sentence it refuses with (custosd
// prints these at FILE:LINE; tests/test_config.cpp checks them in context).
// The edges are the ones the config reader has always had: they are pinned
// here, not chosen here ("1.5s" is refused; "00" is a duration; 64 is the
// last signal number).
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "table/values.hpp"

using namespace custos;
using namespace custos::tbl;
using namespace std::chrono_literals;

namespace {

template <class T>
std::string message(const value_result<T>& r) {
    REQUIRE_FALSE(r.has_value());
    return r.error().message;
}

std::vector<std::string_view> names(std::string_view s) {
    std::vector<std::string_view> out;
    name_list l(s);
    for (std::string_view n; l.next(n);) {
        out.push_back(n);
    }
    return out;
}

} // namespace

TEST_CASE("clip: control bytes escaped, long text cut after 48 bytes, never inside UTF-8") {
    CHECK(std::string(clip("plain").str()) == "plain");
    CHECK(std::string(clip("").str()).empty());
    CHECK(std::string(clip("a\x1b[31mb").str()) == "a\\x1b[31mb");
    CHECK(std::string(clip(std::string_view("a\0b", 3)).str()) == "a\\x00b");
    CHECK(std::string(clip("\x7f").str()) == "\\x7f");
    const std::string exact(48, 'x');
    CHECK(std::string(clip(exact).str()) == exact);
    CHECK(std::string(clip(exact + "y").str()) == exact + "...");
    // An escape is never split: 47 bytes and a control byte do not fit.
    CHECK(std::string(clip(std::string(47, 'x') + "\x01").str()) == std::string(47, 'x') + "...");
    // "é" is two bytes; 24 of them are 48 bytes. One more byte of text is
    // cut; a 2-byte character across the limit is dropped whole.
    std::string e;
    for (int i = 0; i < 25; ++i) {
        e += "\xc3\xa9";
    }
    CHECK(std::string(clip(e).str()) == e.substr(0, 48) + "...");
    CHECK(std::string(clip("x" + e).str()) == "x" + e.substr(0, 46) + "...");
}

TEST_CASE("parse_uint: digits only, bounded without overflow") {
    std::uint64_t n = 7;
    CHECK(parse_uint("0", 10, n) == num_status::ok);
    CHECK(n == 0);
    CHECK(parse_uint("0010", 10, n) == num_status::ok);
    CHECK(n == 10);
    CHECK(parse_uint("11", 10, n) == num_status::too_big);
    CHECK(parse_uint("18446744073709551615", UINT64_MAX, n) == num_status::ok);
    CHECK(n == UINT64_MAX);
    CHECK(parse_uint("18446744073709551616", UINT64_MAX, n) == num_status::too_big);
    CHECK(parse_uint("99999999999999999999999", UINT64_MAX, n) == num_status::too_big);
    for (const char* bad : {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "1e3"}) {
        CAPTURE(bad);
        CHECK(parse_uint(bad, 100, n) == num_status::bad);
    }
    // A bad character anywhere wins over a number too large.
    CHECK(parse_uint("99999x", 10, n) == num_status::bad);
}

TEST_CASE("parse_x100: at most two decimals, as hundredths") {
    std::uint64_t v = 0;
    struct ok_case {
        const char* text;
        std::uint64_t x100;
    };
    for (auto c : {ok_case{"1", 100}, ok_case{"2", 200}, ok_case{"1.5", 150}, ok_case{"1.05", 105},
                   ok_case{"1.25", 125}, ok_case{"0.5", 50}, ok_case{"100", 10000},
                   ok_case{"100.00", 10000}}) {
        CAPTURE(c.text);
        REQUIRE(parse_x100(c.text, 10000, v) == num_status::ok);
        CHECK(v == c.x100);
    }
    for (const char* bad : {"", ".5", "2.", "1.234", "x", "1,5", "-2", "1.x", "1..5"}) {
        CAPTURE(bad);
        CHECK(parse_x100(bad, 10000, v) == num_status::bad);
    }
    CHECK(parse_x100("100.01", 10000, v) == num_status::too_big);
    CHECK(parse_x100("101", 10000, v) == num_status::too_big);
}

TEST_CASE("parse_duration: ms, s, m, h; 0 alone; whole numbers; at most 2562047h") {
    Duration d{-1};
    struct ok_case {
        const char* text;
        Duration expect;
    };
    for (auto c : {ok_case{"0", 0ms}, ok_case{"000", 0ms}, ok_case{"0s", 0ms},
                   ok_case{"1500ms", 1500ms}, ok_case{"30s", 30s}, ok_case{"5m", 5min},
                   ok_case{"1h", 1h}, ok_case{"2562047h", 2562047h}, ok_case{"007s", 7s}}) {
        CAPTURE(c.text);
        REQUIRE(parse_duration(c.text, d) == dur_status::ok);
        CHECK(d == c.expect);
    }
    for (const char* bad :
         {"", "s", "ms", "1.5s", "30x", "-1s", "+5s", "30 s", "1h30m", "30S", "1H", " 1s"}) {
        CAPTURE(bad);
        CHECK(parse_duration(bad, d) == dur_status::bad);
    }
    CHECK(parse_duration("5", d) == dur_status::missing_unit);
    CHECK(parse_duration("01", d) == dur_status::missing_unit);
    // The limit is the same in every unit; one more is too big, and so is a
    // number past 64 bits.
    CHECK(parse_duration("2562048h", d) == dur_status::too_big);
    CHECK(parse_duration("153722820m", d) == dur_status::ok);
    CHECK(parse_duration("153722821m", d) == dur_status::too_big);
    CHECK(parse_duration("9223369200000ms", d) == dur_status::ok);
    CHECK(d.count() == static_cast<Duration::rep>(max_duration_ms));
    CHECK(parse_duration("9223369200001ms", d) == dur_status::too_big);
    CHECK(parse_duration("99999999999999999999999s", d) == dur_status::too_big);
}

TEST_CASE("duration_value: the three sentences, naming the key") {
    value_result<Duration> ok = duration_value("timeout", "30s");
    REQUIRE(ok.has_value());
    CHECK(*ok == 30s);
    CHECK(message(duration_value("timeout", "1.5s")) ==
          "bad duration '1.5s' for timeout: use a number with ms, s, m or h, e.g. 30s");
    CHECK(message(duration_value("backoff_max", "90")) ==
          "missing unit in duration '90' for backoff_max: write 90s (or 90ms, 90m, 90h)");
    CHECK(message(duration_value("watchdog", "2562048h")) ==
          "duration '2562048h' for watchdog is too large: at most 2562047h");
}

TEST_CASE("multiplier_value: 1 to 100, two decimals") {
    value_result<std::uint32_t> r = multiplier_value("backoff_multiplier", "1.5");
    REQUIRE(r.has_value());
    CHECK(*r == 150);
    r = multiplier_value("backoff_multiplier", "100");
    REQUIRE(r.has_value());
    CHECK(*r == 10000);
    for (const char* bad : {"0.99", "0", "100.01", "1.234", "x"}) {
        CAPTURE(bad);
        CHECK(message(multiplier_value("startup_multiplier", bad)) ==
              std::string("bad startup_multiplier '") + bad +
                  "': use a number from 1 to 100 with at most two decimals, e.g. 2 or 1.5");
    }
}

TEST_CASE("count_value, limit_value, percent_value: the bounds") {
    value_result<std::uint32_t> r = count_value("startup_tries", "4294967295");
    REQUIRE(r.has_value());
    CHECK(*r == 4294967295u);
    for (const char* bad : {"0", "-1", "1.5", "x", "4294967296"}) {
        CAPTURE(bad);
        CHECK(message(count_value("startup_tries", bad)) ==
              std::string("bad startup_tries '") + bad +
                  "': use a whole number from 1 to 4294967295");
    }
    CHECK(message(count_value("max_services", "4097", 4096)) ==
          "bad max_services '4097': use a whole number from 1 to 4096");
    REQUIRE(count_value("max_services", "4096", 4096).has_value());

    r = limit_value("max_restarts", "0");
    REQUIRE(r.has_value());
    CHECK(*r == 0);
    CHECK(message(limit_value("max_restarts", "4294967296")) ==
          "bad max_restarts '4294967296': use a whole number up to 4294967295 (0 = unlimited)");

    // No structured bindings: clang 14 cannot capture them in doctest's lambdas.
    for (auto c : {std::pair{"0", 0u}, std::pair{"25", 25u}, std::pair{"25%", 25u},
                   std::pair{"100%", 100u}}) {
        CAPTURE(c.first);
        value_result<std::uint32_t> p = percent_value("backoff_jitter", c.first);
        REQUIRE(p.has_value());
        CHECK(*p == c.second);
    }
    for (const char* bad : {"101", "%", "25%%", "-1", "2.5"}) {
        CAPTURE(bad);
        CHECK(message(percent_value("backoff_jitter", bad)) ==
              std::string("bad backoff_jitter '") + bad +
                  "': use a percentage from 0 to 100, e.g. 25 or 25%");
    }
}

TEST_CASE("booleans: yes, no, true, false, lower case only") {
    bool b = false;
    CHECK((parse_bool("yes", b) && b));
    CHECK((parse_bool("true", b) && b));
    CHECK((parse_bool("no", b) && !b));
    CHECK((parse_bool("false", b) && !b));
    for (const char* bad : {"Yes", "TRUE", "1", "0", "on", "off", "y", ""}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_bool(bad, b));
    }
    CHECK(message(bool_value("writable", "on")) == "bad writable 'on': use yes, no, true or false");
}

TEST_CASE("signals: names with or without SIG in any case, numbers 1 to 64") {
    CHECK(parse_signal("TERM") == SIGTERM);
    CHECK(parse_signal("sigterm") == SIGTERM);
    CHECK(parse_signal("SigKill") == SIGKILL);
    CHECK(parse_signal("usr2") == SIGUSR2);
    CHECK(parse_signal("1") == 1);
    CHECK(parse_signal("64") == 64);
    for (const char* bad : {"0", "65", "SIG", "SIGSIGTERM", "STOP", "-9", "", "TERM "}) {
        CAPTURE(bad);
        CHECK(parse_signal(bad) == 0);
    }
    value_result<int> r = signal_value("stop_signal", "SIGINT");
    REQUIRE(r.has_value());
    CHECK(*r == SIGINT);
    CHECK(message(signal_value("stop_signal", "STOP")) ==
          "bad stop_signal 'STOP': use TERM, INT, HUP, QUIT, KILL, USR1, USR2 or a number from 1 "
          "to 64");
}

TEST_CASE("restart and on_dependency_down: their words only") {
    value_result<RestartPolicy> p = restart_value("on-failure");
    REQUIRE(p.has_value());
    CHECK(*p == RestartPolicy::on_failure);
    CHECK(message(restart_value("on_failure")) ==
          "bad restart 'on_failure': use never, always or on-failure");
    value_result<DependencyDownAction> a = dependency_down_value("restart");
    REQUIRE(a.has_value());
    CHECK(*a == DependencyDownAction::restart);
    CHECK(message(dependency_down_value("Stop")) ==
          "bad on_dependency_down 'Stop': use ignore, stop or restart");
}

TEST_CASE("restart_limit: N/DURATION with N >= 1 and a window above 0") {
    value_result<restart_limit> r = restart_limit_value("5/60s");
    REQUIRE(r.has_value());
    CHECK(r->restarts == 5);
    CHECK(r->window == 60s);
    r = restart_limit_value("3 / 1m");
    REQUIRE(r.has_value());
    CHECK(r->restarts == 3);
    CHECK(r->window == 1min);
    for (const char* bad : {"5", "/60s", "x/60s", "4294967296/1s", "-1/1s"}) {
        CAPTURE(bad);
        CHECK(message(restart_limit_value(bad)) ==
              std::string("bad restart_limit '") + bad +
                  "': write N/DURATION, e.g. 5/60s for at most 5 restarts within 60s");
    }
    CHECK(message(restart_limit_value("0/60s")) ==
          "restart_limit '0/60s' allows no restart: N must be 1 or more (leave restart_limit "
          "out for no limit)");
    CHECK(message(restart_limit_value("5/0")) ==
          "restart_limit '5/0' has no time window: use a duration above 0, e.g. 5/60s");
    // The window's own problem is a duration's sentence, for restart_limit.
    CHECK(message(restart_limit_value("5/60")) ==
          "missing unit in duration '60' for restart_limit: write 60s (or 60ms, 60m, 60h)");
    CHECK(message(restart_limit_value("5/")) ==
          "bad duration '' for restart_limit: use a number with ms, s, m or h, e.g. 30s");
}

TEST_CASE("ready: started, notify, fd:3..1023, probe:NAME") {
    value_result<readiness> r = ready_value("notify");
    REQUIRE(r.has_value());
    CHECK(r->mode == ReadyMode::notify);
    CHECK(r->fd == -1);
    r = ready_value("fd:1023");
    REQUIRE(r.has_value());
    CHECK(r->mode == ReadyMode::fd);
    CHECK(r->fd == 1023);
    r = ready_value("probe: db ");
    REQUIRE(r.has_value());
    CHECK(r->mode == ReadyMode::probe);
    CHECK(r->probe == "db");
    CHECK(message(ready_value("fd:2")) ==
          "ready 'fd:2' names a standard stream (0, 1 and 2 are stdin, stdout and stderr): use "
          "fd:3 or higher");
    CHECK(message(ready_value("probe:")) ==
          "ready 'probe:' names no probe: write ready = probe:NAME");
    for (const char* bad : {"fd:1024", "fd:", "fd:x", "Started", "probe", "fd: 3"}) {
        CAPTURE(bad);
        CHECK(message(ready_value(bad)) ==
              std::string("bad ready '") + bad +
                  "': use started, notify, fd:N with N from 3 to 1023, or probe:NAME");
    }
}

TEST_CASE("owner: user, user:group or :group") {
    for (const char* ok : {"root", "root:wheel", ":wheel", "a-b_c.d"}) {
        CAPTURE(ok);
        value_result<std::string_view> r = owner_value(ok);
        REQUIRE(r.has_value());
        CHECK(*r == ok);
    }
    for (const char* bad : {":", "root:", "a:b:c", "a b", "a\tb", "::g"}) {
        CAPTURE(bad);
        CHECK_FALSE(is_owner(bad));
        CHECK(message(owner_value(bad)) ==
              std::string("bad owner '") + clip(bad).str() + "': write user, user:group or :group");
    }
}

TEST_CASE("mode: octal up to 7777, at most five digits") {
    for (auto c : {std::pair{"0755", 0755}, std::pair{"755", 0755}, std::pair{"4755", 04755},
                   std::pair{"7777", 07777}, std::pair{"07777", 07777}, std::pair{"0", 0}}) {
        CAPTURE(c.first);
        value_result<int> r = mode_value(c.first);
        REQUIRE(r.has_value());
        CHECK(*r == c.second);
    }
    // mode_overflow: eleven octal digits were multiplied into an int before
    // the length refused them (signed overflow; UBSan under fuzz_config).
    for (const char* bad : {"17777", "000755", "8", "0x1ff", "-1", "75 5", "77777777777",
                            "00000000000000000000000000000000000000000"}) {
        CAPTURE(bad);
        CHECK(message(mode_value(bad)) == std::string("bad mode '") + bad +
                                              "': use octal permission bits up to 7777, e.g. 0755");
    }
}

TEST_CASE("name lists and status codes") {
    CHECK(names("a b,c") == std::vector<std::string_view>{"a", "b", "c"});
    CHECK(names(" ,a,,\tb , ") == std::vector<std::string_view>{"a", "b"});
    CHECK(names("").empty());
    CHECK(names(" , ,").empty());
    value_result<std::uint16_t> s = status_code_value("204");
    REQUIRE(s.has_value());
    CHECK(*s == 204);
    REQUIRE(status_code_value("100").has_value());
    REQUIRE(status_code_value("599").has_value());
    for (const char* bad : {"99", "600", "2xx", "0200x"}) {
        CAPTURE(bad);
        CHECK(message(status_code_value(bad)) ==
              std::string("bad status '") + bad +
                  "' in expect_status: use HTTP status codes from 100 to 599 separated by "
                  "spaces, e.g. 200 204");
    }
}

TEST_CASE("cgroup and notify_dir") {
    value_result<std::string_view> c = cgroup_value("auto");
    REQUIRE(c.has_value());
    CHECK(c->empty());
    c = cgroup_value("off");
    REQUIRE(c.has_value());
    CHECK(*c == "off");
    c = cgroup_value("/sys/fs/cgroup/custos");
    REQUIRE(c.has_value());
    CHECK(*c == "/sys/fs/cgroup/custos");
    CHECK(message(cgroup_value("custos")) ==
          "bad cgroup 'custos': use auto, off or an absolute path on cgroup2");

    // sun_path is 108 bytes: DIR, "/", a name and the NUL must fit.
    const std::string fits(105, 'd');
    REQUIRE(notify_dir_value(fits).has_value());
    CHECK(message(notify_dir_value(fits + "d")) ==
          "notify_dir is 106 bytes long; DIR/SERVICE must fit a Unix socket address of 107 "
          "bytes");
}

TEST_CASE("notify_fd: 3 to 1023; keepalive_gate: none or health") {
    value_result<int> fd = notify_fd_value("3");
    REQUIRE(fd.has_value());
    CHECK(*fd == 3);
    fd = notify_fd_value("1023");
    REQUIRE(fd.has_value());
    CHECK(*fd == 1023);
    CHECK(message(notify_fd_value("2")) ==
          "notify_fd '2' names a standard stream (0, 1 and 2 are stdin, stdout and stderr): use "
          "3 or higher");
    for (const char* bad : {"1024", "-1", "fd:5", "", " 5", "5x"}) {
        INFO(bad);
        CHECK(message(notify_fd_value(bad)) ==
              std::string("bad notify_fd '") + bad +
                  "': write the descriptor number, from 3 to 1023, that s6-supervise opens (the "
                  "service directory's notification-fd file)");
    }

    value_result<KeepaliveGate> g = keepalive_gate_value("none");
    REQUIRE(g.has_value());
    CHECK(*g == KeepaliveGate::none);
    g = keepalive_gate_value("health");
    REQUIRE(g.has_value());
    CHECK(*g == KeepaliveGate::health);
    CHECK(message(keepalive_gate_value("Health")) ==
          "bad keepalive_gate 'Health': use none (keepalive while custos runs) or health "
          "(withheld while health is failed)");
}

TEST_CASE("refuse: a message cut to fit, always terminated") {
    const std::string long_text(300, 'x');
    value_result<int> r = refuse("%s", long_text.c_str());
    CHECK(std::strlen(message(r).c_str()) == sizeof(value_error::message) - 1);
}
