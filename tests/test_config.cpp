// custosd's config reader: the issue's example read to the exact table, every
// key and its line, every kind of error with its line and message, several
// errors in one file, exec quoting, CRLF, comments, limits, and load().
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "custosd/config.hpp"

using custos::DependencyDownAction;
using custos::ProbeField;
using custos::ProbeKind;
using custos::ProbeSpec;
using custos::ReadyMode;
using custos::Reason;
using custos::RestartPolicy;
using custos::ServiceField;
using custos::ServiceSpec;
using custos::cfg::config;
using custos::cfg::problem;
using custos::cfg::problem_list;
using namespace std::chrono_literals;

namespace {

// One line per element, so that a test's line numbers are its indices + 1.
std::string lines(std::initializer_list<std::string_view> ls, std::string_view eol = "\n") {
    std::string s;
    for (std::string_view l : ls) {
        s += l;
        s += eol;
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

std::vector<std::string> argv_of(const ServiceSpec& s) {
    return {s.argv.begin(), s.argv.end()};
}

std::vector<std::string> strings(std::span<const std::string_view> v) {
    return {v.begin(), v.end()};
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

// The file has exactly one problem: at `line`, for `reason`, and its message
// contains `text`.
void expect_one(std::string_view text, unsigned line, Reason reason, std::string_view msg) {
    auto r = parse(text);
    INFO("problems:\n" << dump(r->problems));
    CHECK_FALSE(r->ok);
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].line == line);
    CHECK(r->problems[0].error.reason() == reason);
    CHECK(std::string_view(r->problems[0].message).find(msg) != std::string_view::npos);
    CHECK(r->cfg.services().empty());
}

// A one-service file with `key_line` as its third line.
std::string service_with(std::string_view key_line) {
    return lines({"[service:a]", "exec = /bin/true", key_line});
}

const char* const example = "[custos]\n"                                 // 1
                            "stop_timeout = 30s\n"                       // 2
                            "notify_dir = /run/custos/notify.sock\n"     // 3
                            "\n"                                         // 4
                            "[service:netd]\n"                           // 5
                            "exec = /usr/sbin/netd --foreground\n"       // 6
                            "restart = always\n"                         // 7
                            "backoff_initial = 1s\n"                     // 8
                            "backoff_max = 60s\n"                        // 9
                            "ready = notify\n"                           // 10
                            "\n"                                         // 11
                            "[service:uploader]\n"                       // 12
                            "exec = /usr/bin/uploader --queue /data/q\n" // 13
                            "depends_on = netd\n"                        // 14
                            "restart = on-failure\n"                     // 15
                            "restart_limit = 5/60s\n";                   // 16

} // namespace

TEST_CASE("the issue's example reads to the exact table, every field checked") {
    // The text is a temporary: the config keeps its own copy.
    auto r = parse(std::string(example));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(r->problems.empty());

    const custos::RuntimeConfig& rt = r->cfg.runtime();
    CHECK(rt.stop_timeout == 30s);
    CHECK(rt.notify_dir == "/run/custos/notify.sock");
    CHECK(rt.max_services == 64);
    CHECK(rt.max_probes == 64);
    CHECK(rt.max_probe_checks == 256);
    CHECK(r->cfg.probes().empty());
    CHECK(rt.handle_signals);
    CHECK(rt.seed == 0);
    CHECK(rt.notify_fd == -1);
    CHECK(rt.keepalive_gate == custos::KeepaliveGate::none);

    REQUIRE(r->cfg.services().size() == 2);
    const ServiceSpec& netd = r->cfg.services()[0];
    CHECK(netd.name == "netd");
    CHECK(argv_of(netd) == std::vector<std::string>{"/usr/sbin/netd", "--foreground"});
    CHECK(netd.env.empty());
    CHECK(netd.cwd.empty());
    CHECK(netd.user.empty());
    CHECK(netd.group.empty());
    CHECK(netd.restart == RestartPolicy::always);
    CHECK(netd.backoff_initial == 1s);
    CHECK(netd.backoff_max == 60s);
    CHECK(netd.backoff_multiplier_x100 == 200);
    CHECK(netd.backoff_jitter_percent == 25);
    CHECK(netd.stable_after == 60s);
    CHECK(netd.max_restarts == 0);
    CHECK(netd.intensity_restarts == 0);
    CHECK(netd.intensity_window == 0ms);
    CHECK(netd.start_delay == 0ms);
    CHECK(netd.depends_on.empty());
    CHECK(netd.ready == ReadyMode::notify);
    CHECK(netd.ready_fd == -1);
    CHECK(netd.ready_timeout == 90s);
    CHECK(netd.watchdog == 0ms);
    CHECK(netd.stop_signal == SIGTERM);
    CHECK(netd.stop_timeout == 5s);
    CHECK(netd.ready_probe.empty());
    CHECK(netd.liveness.empty());
    CHECK(netd.on_dependency_down == DependencyDownAction::ignore);

    const ServiceSpec& up = r->cfg.services()[1];
    CHECK(up.name == "uploader");
    CHECK(argv_of(up) == std::vector<std::string>{"/usr/bin/uploader", "--queue", "/data/q"});
    CHECK(up.env.empty());
    CHECK(up.cwd.empty());
    CHECK(up.user.empty());
    CHECK(up.group.empty());
    CHECK(up.restart == RestartPolicy::on_failure);
    CHECK(up.backoff_initial == 1s);
    CHECK(up.backoff_max == 60s);
    CHECK(up.backoff_multiplier_x100 == 200);
    CHECK(up.backoff_jitter_percent == 25);
    CHECK(up.stable_after == 60s);
    CHECK(up.max_restarts == 0);
    CHECK(up.intensity_restarts == 5);
    CHECK(up.intensity_window == 60s);
    CHECK(up.start_delay == 0ms);
    CHECK(strings(up.depends_on) == std::vector<std::string>{"netd"});
    CHECK(up.ready == ReadyMode::started);
    CHECK(up.ready_fd == -1);
    CHECK(up.ready_timeout == 90s);
    CHECK(up.watchdog == 0ms);
    CHECK(up.stop_signal == SIGTERM);
    CHECK(up.stop_timeout == 5s);

    // Lines: keys where set, the header otherwise.
    CHECK(r->cfg.line_of(0, ServiceField::section) == 5);
    CHECK(r->cfg.line_of(0, ServiceField::name) == 5);
    CHECK(r->cfg.line_of(0, ServiceField::argv) == 6);
    CHECK(r->cfg.line_of(0, ServiceField::restart) == 7);
    CHECK(r->cfg.line_of(0, ServiceField::backoff_initial) == 8);
    CHECK(r->cfg.line_of(0, ServiceField::backoff_max) == 9);
    CHECK(r->cfg.line_of(0, ServiceField::ready) == 10);
    CHECK(r->cfg.line_of(0, ServiceField::depends_on) == 5);
    CHECK(r->cfg.line_of(0, ServiceField::stop_signal) == 5);
    CHECK(r->cfg.line_of(1, ServiceField::section) == 12);
    CHECK(r->cfg.line_of(1, ServiceField::argv) == 13);
    CHECK(r->cfg.line_of(1, ServiceField::depends_on) == 14);
    CHECK(r->cfg.line_of(1, ServiceField::restart) == 15);
    CHECK(r->cfg.line_of(1, ServiceField::intensity) == 16);
    CHECK(r->cfg.line_of(1, ServiceField::ready) == 12);
    CHECK(r->cfg.line_of(2, ServiceField::section) == 0); // no such service
    CHECK(std::string_view(r->cfg.path()).empty());
}

TEST_CASE("every service key, its value and its line") {
    auto r = parse(lines({
        "[service:all]",                // 1
        "exec = /bin/prog -v",          // 2
        "env = A=1",                    // 3
        "cwd = /var/lib/all",           // 4
        "env = B=two=2",                // 5
        "user = nobody",                // 6
        "group = nogroup",              // 7
        "restart = never",              // 8
        "backoff_initial = 1500ms",     // 9
        "backoff_max = 5m",             // 10
        "backoff_multiplier = 1.5",     // 11
        "backoff_jitter = 10%",         // 12
        "stable_after = 2m",            // 13
        "max_restarts = 7",             // 14
        "restart_limit = 3 / 1h",       // 15
        "start_delay = 250ms",          // 16
        "depends_on = a, b c,d",        // 17
        "ready = fd:3",                 // 18
        "ready_timeout = 1h",           // 19
        "watchdog = 10s",               // 20
        "stop_signal = SIGINT",         // 21
        "stop_timeout = 0",             // 22
        "liveness = own-http",          // 23
        "on_dependency_down = restart", // 24
        "channel = fd:4",               // 25
        "runtime_dir = yes",            // 26
        "output = ring",                // 27
        "[custos]",                     // 28
        "max_services = 4096",          // 29
        "stop_timeout = 1500ms",        // 30
        "notify_dir = @custos-notify",  // 31
        "max_probes = 4096",            // 32
        "max_probe_checks = 65536",     // 33
        "runtime_dir_root = /run/x",    // 34
    }));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    REQUIRE(r->cfg.services().size() == 1);
    const ServiceSpec& s = r->cfg.services()[0];
    CHECK(s.name == "all");
    CHECK(argv_of(s) == std::vector<std::string>{"/bin/prog", "-v"});
    CHECK(strings(s.env) == std::vector<std::string>{"A=1", "B=two=2"});
    CHECK(s.cwd == "/var/lib/all");
    CHECK(s.user == "nobody");
    CHECK(s.group == "nogroup");
    CHECK(s.restart == RestartPolicy::never);
    CHECK(s.backoff_initial == 1500ms);
    CHECK(s.backoff_max == 5min);
    CHECK(s.backoff_multiplier_x100 == 150);
    CHECK(s.backoff_jitter_percent == 10);
    CHECK(s.stable_after == 2min);
    CHECK(s.max_restarts == 7);
    CHECK(s.intensity_restarts == 3);
    CHECK(s.intensity_window == 1h);
    CHECK(s.start_delay == 250ms);
    CHECK(strings(s.depends_on) == std::vector<std::string>{"a", "b", "c", "d"});
    CHECK(s.ready == ReadyMode::fd);
    CHECK(s.channel_fd == 4);
    CHECK(s.runtime_dir);
    CHECK(s.ready_fd == 3);
    CHECK(s.ready_timeout == 1h);
    CHECK(s.watchdog == 10s);
    CHECK(s.stop_signal == SIGINT);
    CHECK(s.stop_timeout == 0ms);
    CHECK(s.liveness == "own-http");
    CHECK(s.on_dependency_down == DependencyDownAction::restart);
    CHECK(s.ready_probe.empty());
    CHECK(s.output == custos::OutputMode::ring);

    CHECK(r->cfg.runtime().max_services == 4096);
    CHECK(r->cfg.runtime().stop_timeout == 1500ms);
    CHECK(r->cfg.runtime().notify_dir == "@custos-notify");
    CHECK(r->cfg.runtime().runtime_dir_root == "/run/x");
    CHECK(r->cfg.runtime().max_probes == 4096);
    CHECK(r->cfg.runtime().max_probe_checks == 65536);
    CHECK(r->cfg.probes().empty());

    const std::pair<ServiceField, unsigned> expect[] = {
        {ServiceField::section, 1},
        {ServiceField::name, 1},
        {ServiceField::argv, 2},
        {ServiceField::env, 3}, // the first env line
        {ServiceField::cwd, 4},
        {ServiceField::user, 6},
        {ServiceField::group, 7},
        {ServiceField::restart, 8},
        {ServiceField::backoff_initial, 9},
        {ServiceField::backoff_max, 10},
        {ServiceField::backoff_multiplier, 11},
        {ServiceField::backoff_jitter, 12},
        {ServiceField::stable_after, 13},
        {ServiceField::max_restarts, 14},
        {ServiceField::intensity, 15},
        {ServiceField::start_delay, 16},
        {ServiceField::depends_on, 17},
        {ServiceField::ready, 18},
        {ServiceField::ready_timeout, 19},
        {ServiceField::watchdog, 20},
        {ServiceField::stop_signal, 21},
        {ServiceField::stop_timeout, 22},
        {ServiceField::liveness, 23},
        {ServiceField::on_dependency_down, 24},
        {ServiceField::channel, 25},
        {ServiceField::runtime_dir, 26},
        {ServiceField::output, 27},
    };
    static_assert(std::size(expect) == custos::service_field_count);
    for (const auto& e : expect) {
        INFO("field " << static_cast<int>(e.first));
        CHECK(r->cfg.line_of(0, e.first) == e.second);
    }
}

TEST_CASE("[custos] notify_fd and keepalive_gate: the notify paths upward") {
    auto r = parse(lines({"[custos]", "notify_fd = 5", "keepalive_gate = health"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(r->cfg.runtime().notify_fd == 5);
    CHECK(r->cfg.runtime().keepalive_gate == custos::KeepaliveGate::health);
}

TEST_CASE("each error kind: its line, its reason and a message that says what to do") {
    SUBCASE("unknown key, with a suggestion") {
        auto r = parse(lines({"[service:netd]", "exec = /bin/true", "restrat = always"}));
        REQUIRE(r->problems.size() == 1);
        CHECK(r->problems[0].line == 3);
        CHECK(r->problems[0].error.reason() == Reason::config_unknown_key);
        CHECK(r->problems[0].error.subject() == "restrat");
        CHECK(std::string_view(r->problems[0].message) ==
              "unknown key 'restrat' in [service:netd] (did you mean 'restart'?)");
        expect_one(lines({"[custos]", "frobnicate = 1"}), 2, Reason::config_unknown_key,
                   "unknown key 'frobnicate' in [custos]");
        expect_one(lines({"[custos]", "stop_timout = 1s"}), 2, Reason::config_unknown_key,
                   "(did you mean 'stop_timeout'?)");
    }
    SUBCASE("unknown section; its keys are not reported again") {
        expect_one(lines({"[services:a]", "exec = /bin/true", "whatever = 1"}), 1,
                   Reason::config_syntax,
                   "unknown section '[services:a]': expected [custos], [service:NAME], "
                   "[probe:NAME], [watchdog], [control] or [log]");
        expect_one(lines({"[service:]"}), 1, Reason::config_syntax, "has no name");
        expect_one(lines({"[custos"}), 1, Reason::config_syntax, "bad section header '[custos'");
    }
    SUBCASE("key outside any section") {
        expect_one(lines({"# header comment", "stop_timeout = 30s", "[custos]"}), 2,
                   Reason::config_syntax,
                   "key 'stop_timeout' is outside any section: put it under [custos], "
                   "[service:NAME], [probe:NAME], [watchdog], [control] or [log]");
    }
    SUBCASE("duplicate section") {
        expect_one(lines({"[service:a]", "exec = /bin/a", "[service:b]", "exec = /bin/b",
                          "[service:a]", "exec = /bin/c", "restart = bogus"}),
                   5, Reason::config_syntax,
                   "duplicate section [service:a] (first at line 1): merge the two or rename one");
        expect_one(lines({"[custos]", "[custos]", "stop_timeout = 1s"}), 2, Reason::config_syntax,
                   "duplicate section [custos] (first at line 1)");
    }
    SUBCASE("duplicate key; env may repeat") {
        expect_one(
            lines({"[service:a]", "exec = /bin/a", "restart = always", "", "restart = never"}), 5,
            Reason::config_syntax,
            "duplicate key 'restart' in [service:a] (first at line 3): keep one");
        expect_one(lines({"[service:a]", "exec = /bin/a", "depends_on = x", "depends_on = y"}), 4,
                   Reason::config_syntax, "duplicate key 'depends_on'");
        expect_one(lines({"[custos]", "max_services = 1", "max_services = 2"}), 3,
                   Reason::config_syntax, "duplicate key 'max_services' in [custos]");
    }
    SUBCASE("bad duration and missing unit") {
        expect_one(lines({"[custos]", "stop_timeout = 30x"}), 2, Reason::config_bad_value,
                   "bad duration '30x' for stop_timeout: use a number with ms, s, m or h");
        expect_one(lines({"[custos]", "stop_timeout = 30"}), 2, Reason::config_bad_value,
                   "missing unit in duration '30' for stop_timeout: write 30s");
        expect_one(service_with("backoff_max = 99999999999h"), 3, Reason::config_bad_value,
                   "duration '99999999999h' for backoff_max is too large");
    }
    SUBCASE("bad restart") {
        expect_one(service_with("restart = sometimes"), 3, Reason::config_bad_value,
                   "bad restart 'sometimes': use never, always or on-failure");
    }
    SUBCASE("bad ready; fd:2 and lower rejected") {
        expect_one(service_with("ready = eventually"), 3, Reason::config_bad_value,
                   "bad ready 'eventually': use started, notify, fd:N with N from 3 to 1023, or "
                   "probe:NAME");
        expect_one(service_with("ready = fd:2"), 3, Reason::config_bad_value,
                   "ready 'fd:2' names a standard stream");
        expect_one(service_with("ready = fd:0"), 3, Reason::config_bad_value, "use fd:3");
        expect_one(service_with("ready = fd:1024"), 3, Reason::config_bad_value, "bad ready");
        expect_one(service_with("ready = fd:"), 3, Reason::config_bad_value, "bad ready");
    }
    SUBCASE("bad restart_limit") {
        expect_one(service_with("restart_limit = 5"), 3, Reason::config_bad_value,
                   "bad restart_limit '5': write N/DURATION, e.g. 5/60s");
        expect_one(service_with("restart_limit = x/60s"), 3, Reason::config_bad_value,
                   "write N/DURATION");
        expect_one(service_with("restart_limit = 0/60s"), 3, Reason::config_bad_value,
                   "allows no restart");
        expect_one(service_with("restart_limit = 5/60"), 3, Reason::config_bad_value,
                   "missing unit in duration '60' for restart_limit");
        expect_one(service_with("restart_limit = 5/0"), 3, Reason::config_bad_value,
                   "has no time window");
    }
    SUBCASE("bad multiplier") {
        for (const char* bad : {"0.99", "100.01", "101", "1.234", ".5", "2.", "x", "1,5", "-2"}) {
            INFO(bad);
            expect_one(service_with(std::string("backoff_multiplier = ") + bad), 3,
                       Reason::config_bad_value,
                       "use a number from 1 to 100 with at most two decimals");
        }
    }
    SUBCASE("bad jitter, max_restarts, max_services, env, notify_dir, depends_on") {
        expect_one(service_with("backoff_jitter = 101"), 3, Reason::config_bad_value,
                   "bad backoff_jitter '101': use a percentage from 0 to 100");
        expect_one(service_with("backoff_jitter = 25 %"), 3, Reason::config_bad_value,
                   "bad backoff_jitter");
        expect_one(service_with("max_restarts = 4294967296"), 3, Reason::config_bad_value,
                   "bad max_restarts");
        expect_one(lines({"[custos]", "max_services = 0"}), 2, Reason::config_bad_value,
                   "use a whole number from 1 to 4096");
        expect_one(lines({"[custos]", "max_services = 4097"}), 2, Reason::config_bad_value,
                   "bad max_services '4097'");
        expect_one(service_with("env = NOEQUALS"), 3, Reason::config_bad_value,
                   "bad env 'NOEQUALS': write env = KEY=value");
        expect_one(service_with("env = =value"), 3, Reason::config_bad_value, "bad env '=value'");
        expect_one(lines({"[custos]", "notify_dir = /" + std::string(107, 'x')}), 2,
                   Reason::config_bad_value, "must fit a Unix socket address of 107 bytes");
        expect_one(service_with("depends_on = , ,"), 3, Reason::config_bad_value,
                   "names no service");
        expect_one(lines({"[custos]", "notify_fd = 1"}), 2, Reason::config_bad_value,
                   "notify_fd '1' names a standard stream");
        expect_one(lines({"[custos]", "notify_fd = 3", "keepalive_gate = always"}), 3,
                   Reason::config_bad_value, "bad keepalive_gate 'always': use none");
        expect_one(service_with("user ="), 3, Reason::config_bad_value, "key 'user' has no value");
    }
    SUBCASE("bad signal") {
        expect_one(service_with("stop_signal = TREM"), 3, Reason::config_bad_value,
                   "bad stop_signal 'TREM': use TERM, INT, HUP, QUIT, KILL, USR1, USR2 or a "
                   "number from 1 to 64");
        for (const char* bad : {"0", "65", "SIG", "SIGX", "-15", "TE RM", "15x", "SIGSIGTERM"}) {
            INFO(bad);
            expect_one(service_with(std::string("stop_signal = ") + bad), 3,
                       Reason::config_bad_value, "bad stop_signal");
        }
    }
    SUBCASE("unterminated quote, with its column") {
        expect_one(lines({"[service:a]", "user = u", "exec = /bin/echo \"hello world"}), 3,
                   Reason::config_bad_value,
                   "unterminated double quote in exec at column 18: close it with \"");
        expect_one(lines({"[service:a]", "user = u", "exec = /bin/echo 'it"}), 3,
                   Reason::config_bad_value,
                   "unterminated single quote in exec at column 18: close it with '");
        // An escaped closing quote does not close.
        expect_one(lines({"[service:a]", "user = u", "exec = /bin/echo \"a\\\""}), 3,
                   Reason::config_bad_value, "unterminated double quote");
    }
    SUBCASE("missing exec, reported at the section's header") {
        expect_one(
            lines({"[service:a]", "exec = /bin/a", "[service:b]", "restart = always", "[custos]"}),
            3, Reason::config_bad_value, "[service:b] has no exec: add exec = /path/to/program");
        expect_one(lines({"[service:last]"}), 1, Reason::config_bad_value, "has no exec");
    }
    SUBCASE("line too long: 4096 bytes pass, 4097 do not") {
        // "exec = /bin/" is 12 bytes.
        std::string ok_line = "exec = /bin/" + std::string(4096 - 12, 'x');
        REQUIRE(ok_line.size() == 4096);
        auto r = parse(lines({"[service:a]", ok_line}));
        CHECK(r->ok);
        // The CR of a CRLF end is not part of the line.
        auto crlf = parse(lines({"[service:a]", ok_line}, "\r\n"));
        CHECK(crlf->ok);
        expect_one(lines({"[service:a]", "exec = /bin/true", "cwd = /" + std::string(4090, 'x')}),
                   3, Reason::config_syntax, "line is 4097 bytes long; the limit is 4096");
        // The damage stays on that line: an overlong exec is not also missing,
        // and an overlong header's keys do not land in the section before it.
        expect_one(lines({"[service:a]", ok_line + "x"}), 2, Reason::config_syntax,
                   "line is 4097 bytes long");
        expect_one(lines({"[service:a]", "exec = /bin/a",
                          "[service:" + std::string(4096, 'b') + "]", "exec = /bin/b"}),
                   3, Reason::config_syntax, "line is 4106 bytes long");
    }
    SUBCASE("NUL byte") {
        std::string text = lines({"[service:a]", "exec = /bin/true", "cwd = /a"});
        text[text.size() - 3] = '\0'; // "cwd = " then NUL where '/' was
        expect_one(text, 3, Reason::config_syntax,
                   "NUL byte at column 7: the config must be a text file");
        expect_one(std::string("[service:a]\nexec = /bin/\0a\n", 27), 2, Reason::config_syntax,
                   "NUL byte at column 13");
    }
    SUBCASE("missing '='") {
        expect_one(lines({"[service:a]", "exec /bin/true", "exec = /bin/true"}), 2,
                   Reason::config_syntax, "no '=' in 'exec /bin/true': expected key = value");
        expect_one(lines({"[service:a]", "exec = /bin/true", "= x"}), 3, Reason::config_syntax,
                   "no key before '='");
    }
}

TEST_CASE("several errors in one file are all reported, each with its line, in line order") {
    auto r = parse(lines({
        "stray = 1",             // 1 outside any section
        "[custos]",              // 2
        "stop_timeout = 30",     // 3 missing unit
        "[service:netd]",        // 4 no exec: reported at 4
        "restrat = always",      // 5 unknown key
        "ready = fd:2",          // 6
        "ready = notify",        // 7 duplicate
        "garbage line",          // 8 no '='
        "[service:ok]",          // 9
        "exec = /bin/ok",        // 10
        "stop_signal = 99",      // 11
        "[service:netd]",        // 12 duplicate section
        "exec = \"unterminated", // 13 (skipped with its section)
        "[bogus]",               // 14
    }));
    INFO(dump(r->problems));
    CHECK_FALSE(r->ok);
    CHECK(r->cfg.services().empty());
    CHECK(r->problems.dropped() == 0);
    const unsigned want[] = {1, 3, 4, 5, 6, 7, 8, 11, 12, 14};
    REQUIRE(r->problems.size() == std::size(want));
    for (std::size_t i = 0; i < std::size(want); ++i) {
        CHECK(r->problems[i].line == want[i]);
    }
    CHECK(std::string_view(r->problems[2].message).find("has no exec") != std::string_view::npos);
}

TEST_CASE("a full problem list counts what it drops") {
    std::string text = "[service:a]\nexec = /bin/a\n";
    for (int i = 0; i < 100; ++i) {
        text += "bogus_" + std::to_string(i) + " = 1\n";
    }
    auto r = parse(text);
    CHECK_FALSE(r->ok);
    CHECK(r->problems.size() == problem_list::capacity);
    CHECK(r->problems.dropped() == 100 - problem_list::capacity);
    CHECK(r->problems.total() == 100);
    CHECK(r->problems[0].line == 3);
    CHECK(r->problems[problem_list::capacity - 1].line == 2 + problem_list::capacity);
}

TEST_CASE("exec quoting: double and single quotes, escapes, joined parts, empty arguments") {
    auto r = parse(lines({
        "[service:q]",
        R"(exec =  /bin/sh   -c 'echo "$HOME" \n'	"a \"quoted\" \\ word" --name="x y"z '' "\n" x#y)",
    }));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(argv_of(r->cfg.services()[0]) ==
          std::vector<std::string>{"/bin/sh", "-c", R"(echo "$HOME" \n)", R"(a "quoted" \ word)",
                                   "--name=x yz", "", R"(\n)", "x#y"});
}

TEST_CASE("relative cwd and notify_dir are kept as written (custosd's directory)") {
    auto r = parse(lines(
        {"[custos]", "notify_dir = notify.sock", "[service:a]", "exec = /bin/a", "cwd = var/a"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(r->cfg.runtime().notify_dir == "notify.sock");
    CHECK(r->cfg.services()[0].cwd == "var/a");
}

TEST_CASE("env repeats, in order, and its line is the first env line") {
    auto r = parse(lines({"[service:a]", "env = PATH=/usr/bin:/bin", "exec = /bin/a",
                          "env = EMPTY=", "env = A=b c"}));
    REQUIRE(r->ok);
    CHECK(strings(r->cfg.services()[0].env) ==
          std::vector<std::string>{"PATH=/usr/bin:/bin", "EMPTY=", "A=b c"});
    CHECK(r->cfg.line_of(0, ServiceField::env) == 2);
}

TEST_CASE("argv, env and depends_on of several services do not mix") {
    auto r = parse(lines({"[service:a]", "env = A=1", "exec = /bin/a 1", "env = A=2",
                          "depends_on = b", "[service:b]", "exec = /bin/b 2 3", "env = B=1",
                          "[service:c]", "depends_on = a b", "exec = /bin/c"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    auto s = r->cfg.services();
    REQUIRE(s.size() == 3);
    CHECK(argv_of(s[0]) == std::vector<std::string>{"/bin/a", "1"});
    CHECK(strings(s[0].env) == std::vector<std::string>{"A=1", "A=2"});
    CHECK(strings(s[0].depends_on) == std::vector<std::string>{"b"});
    CHECK(argv_of(s[1]) == std::vector<std::string>{"/bin/b", "2", "3"});
    CHECK(strings(s[1].env) == std::vector<std::string>{"B=1"});
    CHECK(s[1].depends_on.empty());
    CHECK(argv_of(s[2]) == std::vector<std::string>{"/bin/c"});
    CHECK(s[2].env.empty());
    CHECK(strings(s[2].depends_on) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("CRLF line ends read like LF, and blanks around keys and values are trimmed") {
    auto lf = parse(example);
    std::string crlf_text;
    for (const char* p = example; *p != '\0'; ++p) {
        if (*p == '\n') {
            crlf_text += '\r';
        }
        crlf_text += *p;
    }
    auto crlf = parse(crlf_text);
    INFO(dump(crlf->problems));
    REQUIRE(crlf->ok);
    REQUIRE(crlf->cfg.services().size() == 2);
    CHECK(argv_of(crlf->cfg.services()[0]) == argv_of(lf->cfg.services()[0]));
    CHECK(crlf->cfg.runtime().notify_dir == "/run/custos/notify.sock");
    CHECK(crlf->cfg.line_of(1, ServiceField::intensity) == 16);

    auto blanks = parse(lines({"  [ service:t ]  ", "\texec\t=\t/bin/t\t", "restart=always"}));
    REQUIRE(blanks->ok);
    CHECK(blanks->cfg.services()[0].name == "t");
    CHECK(argv_of(blanks->cfg.services()[0]) == std::vector<std::string>{"/bin/t"});
    CHECK(blanks->cfg.services()[0].restart == RestartPolicy::always);
}

TEST_CASE("comments: # and ; as first non-blank character only; values keep '#'") {
    auto r = parse(lines({"# custos config", "; another", "   # indented", "", "[service:c]",
                          "\t; indented", "exec = /bin/c --color=#fff ;x", "cwd = /srv/#1"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(argv_of(r->cfg.services()[0]) ==
          std::vector<std::string>{"/bin/c", "--color=#fff", ";x"});
    CHECK(r->cfg.services()[0].cwd == "/srv/#1");
}

TEST_CASE("an empty file, or one of comments only, is valid with no services") {
    for (const char* text : {"", "\n\n", "# nothing yet\n", "[custos]\n"}) {
        INFO(text);
        auto r = parse(text);
        CHECK(r->ok);
        CHECK(r->problems.empty());
        CHECK(r->cfg.services().empty());
        CHECK(r->cfg.runtime().stop_timeout == 30s);
    }
    // No final newline is fine too.
    auto r = parse("[service:a]\nexec = /bin/a");
    REQUIRE(r->ok);
    CHECK(argv_of(r->cfg.services()[0]) == std::vector<std::string>{"/bin/a"});
}

TEST_CASE("durations: units, zero, overflow") {
    struct ok_case {
        const char* text;
        custos::Duration want;
    };
    for (const auto& c : {ok_case{"0", 0ms}, ok_case{"000", 0ms}, ok_case{"0s", 0ms},
                          ok_case{"1500ms", 1500ms}, ok_case{"30s", 30s}, ok_case{"5m", 5min},
                          ok_case{"1h", 1h}, ok_case{"2562047h", 2562047h}}) {
        INFO(c.text);
        auto r = parse(service_with(std::string("watchdog = ") + c.text));
        REQUIRE(r->ok);
        CHECK(r->cfg.services()[0].watchdog == c.want);
    }
    for (const char* text : {"30x", "-1s", "1.5s", "s", "30 s", "1h30m", "30S", "+5s", "ms"}) {
        INFO(text);
        expect_one(service_with(std::string("watchdog = ") + text), 3, Reason::config_bad_value,
                   "bad duration");
    }
    for (const char* text : {"2562048h", "153722821m", "99999999999999999999999s"}) {
        INFO(text);
        expect_one(service_with(std::string("watchdog = ") + text), 3, Reason::config_bad_value,
                   "is too large: at most 2562047h");
    }
}

TEST_CASE("multiplier x100, jitter and signals accepted") {
    struct mult {
        const char* text;
        std::uint32_t x100;
    };
    for (const auto& c : {mult{"1", 100}, mult{"2", 200}, mult{"1.5", 150}, mult{"1.05", 105},
                          mult{"2.50", 250}, mult{"100", 10000}, mult{"100.00", 10000}}) {
        INFO(c.text);
        auto r = parse(service_with(std::string("backoff_multiplier = ") + c.text));
        REQUIRE(r->ok);
        CHECK(r->cfg.services()[0].backoff_multiplier_x100 == c.x100);
    }
    for (const auto& c : {mult{"0", 0}, mult{"100", 100}, mult{"50%", 50}}) {
        INFO(c.text);
        auto r = parse(service_with(std::string("backoff_jitter = ") + c.text));
        REQUIRE(r->ok);
        CHECK(r->cfg.services()[0].backoff_jitter_percent == c.x100);
    }
    struct sig {
        const char* text;
        int number;
    };
    for (const auto& c :
         {sig{"TERM", SIGTERM}, sig{"SIGTERM", SIGTERM}, sig{"INT", SIGINT}, sig{"HUP", SIGHUP},
          sig{"QUIT", SIGQUIT}, sig{"KILL", SIGKILL}, sig{"USR1", SIGUSR1}, sig{"sigusr2", SIGUSR2},
          sig{"1", 1}, sig{"64", 64}}) {
        INFO(c.text);
        auto r = parse(service_with(std::string("stop_signal = ") + c.text));
        REQUIRE(r->ok);
        CHECK(r->cfg.services()[0].stop_signal == c.number);
    }
}

TEST_CASE("capacity: at most 4096 service sections; the next is reported at its header") {
    std::string text;
    for (unsigned i = 0; i <= config::max_service_sections; ++i) {
        text += "[service:s" + std::to_string(i) + "]\nexec = /bin/x\n";
    }
    auto r = parse(text);
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].error.reason() == Reason::capacity_exceeded);
    CHECK(r->problems[0].line == 2 * config::max_service_sections + 1);

    text.resize(text.size() - std::string("[service:s4096]\nexec = /bin/x\n").size());
    auto full = parse(text);
    REQUIRE(full->ok);
    CHECK(full->cfg.services().size() == config::max_service_sections);
    CHECK(full->cfg.services()[4095].name == "s4095");
    CHECK(full->cfg.line_of(4095, ServiceField::argv) == 2 * 4096);
}

TEST_CASE("a text over 1 MiB is refused as a whole") {
    std::string text(config::max_file_bytes + 1, '#');
    auto r = parse(text);
    CHECK_FALSE(r->ok);
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].line == 0);
    CHECK(r->problems[0].error.reason() == Reason::config_unreadable);
    CHECK(r->problems[0].error.sys_errno() == EFBIG);
}

TEST_CASE("a config parsed again replaces the old table; a failed parse leaves none") {
    auto r = std::make_unique<parsed>();
    REQUIRE(r->cfg.parse(example, r->problems));
    REQUIRE(r->cfg.services().size() == 2);
    REQUIRE(r->cfg.parse(service_with("restart = never"), r->problems));
    REQUIRE(r->cfg.services().size() == 1);
    CHECK(r->cfg.services()[0].name == "a");
    CHECK(r->cfg.runtime().notify_dir.empty());
    CHECK_FALSE(r->cfg.parse(service_with("restart = maybe"), r->problems));
    CHECK(r->cfg.services().empty());
    CHECK(r->cfg.line_of(0, ServiceField::section) == 0);
}

TEST_CASE("format_problem: FILE:LINE: message, FILE: message for the file as a whole") {
    problem p;
    p.line = 12;
    std::snprintf(p.message, sizeof p.message, "bad restart 'x': use never, always or on-failure");
    char buf[128];
    custos::cfg::format_problem("/etc/custos.conf", p, buf, sizeof buf);
    CHECK(std::string_view(buf) ==
          "/etc/custos.conf:12: bad restart 'x': use never, always or on-failure");
    p.line = 0;
    custos::cfg::format_problem("/etc/custos.conf", p, buf, sizeof buf);
    CHECK(std::string_view(buf) ==
          "/etc/custos.conf: bad restart 'x': use never, always or on-failure");
    custos::cfg::format_problem(nullptr, p, buf, 12);
    CHECK(std::string_view(buf) == "config: bad"); // 11 bytes and the NUL
}

TEST_CASE("messages quote user text safely and briefly") {
    std::string key = "a\x1b[31m" + std::string(300, 'k');
    auto r = parse(lines({"[custos]", key + " = 1"}));
    REQUIRE(r->problems.size() == 1);
    std::string_view msg = r->problems[0].message;
    CHECK(msg.find('\x1b') == std::string_view::npos);
    CHECK(msg.find("unknown key 'a\\x1b[31mkkk") != std::string_view::npos);
    CHECK(msg.find("...'") != std::string_view::npos);
    CHECK(msg.size() < 120);
}

namespace {

std::string temp_path(const char* name) {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/custos-test-config-" +
           std::to_string(getpid()) + "-" + name;
}

bool write_file(const std::string& path, std::string_view text) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return false;
    }
    bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    return close(fd) == 0 && ok;
}

} // namespace

TEST_CASE("load: a file reads like its text, a missing file is ConfigUnreadable with errno") {
    auto r = std::make_unique<parsed>();
    std::string missing = temp_path("missing");
    CHECK_FALSE(r->cfg.load(missing.c_str(), r->problems));
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].line == 0);
    CHECK(r->problems[0].error.reason() == Reason::config_unreadable);
    CHECK(r->problems[0].error.sys_errno() == ENOENT);
    CHECK(r->problems[0].error.subject() == missing);
    char buf[300];
    custos::cfg::format_problem(missing.c_str(), r->problems[0], buf, sizeof buf);
    CHECK(std::string_view(buf) == missing + ": cannot open: " + std::strerror(ENOENT));

    r->problems.clear();
    CHECK_FALSE(r->cfg.load("/", r->problems));
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].error.sys_errno() == EISDIR);

    std::string path = temp_path("example.conf");
    REQUIRE(write_file(path, example));
    r->problems.clear();
    CHECK(r->cfg.load(path.c_str(), r->problems));
    CHECK(r->problems.empty());
    CHECK(std::string_view(r->cfg.path()) == path);
    REQUIRE(r->cfg.services().size() == 2);
    CHECK(argv_of(r->cfg.services()[1]) ==
          std::vector<std::string>{"/usr/bin/uploader", "--queue", "/data/q"});
    CHECK(r->cfg.line_of(1, ServiceField::intensity) == 16);

    REQUIRE(write_file(path, service_with("restart = maybe")));
    r->problems.clear();
    CHECK_FALSE(r->cfg.load(path.c_str(), r->problems));
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].line == 3);
    custos::cfg::format_problem(r->cfg.path(), r->problems[0], buf, sizeof buf);
    CHECK(std::string_view(buf) ==
          path + ":3: bad restart 'maybe': use never, always or on-failure");

    REQUIRE(write_file(path, std::string(config::max_file_bytes + 1, '\n')));
    r->problems.clear();
    CHECK_FALSE(r->cfg.load(path.c_str(), r->problems));
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].error.sys_errno() == EFBIG);
    unlink(path.c_str());

    // Not a regular file: refused, never read.
    r->problems.clear();
    CHECK_FALSE(r->cfg.load("/dev/null", r->problems));
    REQUIRE(r->problems.total() == 1);
    CHECK(std::string_view(r->problems[0].message) == "not a regular file (character device)");
}

TEST_CASE("a FIFO or a directory as the config is refused at once, not read (it hung)") {
    auto r = std::make_unique<parsed>();
    std::string fifo = temp_path("fifo");
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    // No writer: a blocking open or read would wait for ever. The alarm
    // turns that hang into a failure.
    alarm(10);
    CHECK_FALSE(r->cfg.load(fifo.c_str(), r->problems));
    alarm(0);
    unlink(fifo.c_str());
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].line == 0);
    CHECK(r->problems[0].error.reason() == Reason::config_unreadable);
    char buf[300];
    custos::cfg::format_problem(fifo.c_str(), r->problems[0], buf, sizeof buf);
    CHECK(std::string_view(buf) == fifo + ": not a regular file (fifo)");

    r->problems.clear();
    CHECK_FALSE(r->cfg.load("/", r->problems));
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].error.sys_errno() == EISDIR);
    CHECK(std::string_view(r->problems[0].message) == "not a regular file (directory)");
}

TEST_CASE("env = KEY=\"a b\" kept its quotes: one level comes off, as in systemd") {
    auto r = parse(lines({
        "[service:a]",
        "exec = /bin/true",
        "env = A=\"a b\"",
        "env = B='c d'",
        "env = \"C=e f\"",
        "env = 'D=g'",
        "env = E=\"\"",
        "env = F=\"unclosed",
        "env = G=\"mixed'",
        "env = H=a \"b\"",
        "env = I=\"\"x\"\"",
        "env = J=\"",
    }));
    INFO("problems:\n" << dump(r->problems));
    REQUIRE(r->ok);
    CHECK(strings(r->cfg.services()[0].env) ==
          std::vector<std::string>{"A=a b", "B=c d", "C=e f", "D=g", "E=", "F=\"unclosed",
                                   "G=\"mixed'", "H=a \"b\"", "I=\"x\"", "J=\""});
    // Quotes around nothing but the key are no assignment.
    expect_one(service_with("env = \"=x\""), 3, Reason::config_bad_value, "bad env");
}

TEST_CASE("a UTF-8 byte order mark at the start is skipped (it glued onto the first line)") {
    auto r = parse("\xEF\xBB\xBF" + lines({"[service:a]", "exec = /bin/true", "restart = never"}));
    INFO("problems:\n" << dump(r->problems));
    REQUIRE(r->ok);
    REQUIRE(r->cfg.services().size() == 1);
    CHECK(r->cfg.services()[0].name == "a");
    CHECK(r->cfg.line_of(0, ServiceField::restart) == 3);
    // The same through load(), before a key.
    std::string path = temp_path("bom.conf");
    REQUIRE(write_file(path, "\xEF\xBB\xBF# comment\n[custos]\nstop_timeout = 3s\n"));
    auto l = std::make_unique<parsed>();
    CHECK(l->cfg.load(path.c_str(), l->problems));
    CHECK(l->cfg.runtime().stop_timeout == 3s);
    unlink(path.c_str());
    // Only at the start: elsewhere it is text like any other.
    expect_one(lines({"[custos]", "\xEF\xBB\xBFstop_timeout = 3s"}), 2, Reason::config_unknown_key,
               "unknown key '\xEF\xBB\xBFstop_timeout'");
}

TEST_CASE("control characters in quoted config text are escaped, not sent raw to a terminal") {
    // A name, a value and a header, each with ESC, BEL, DEL and a tab.
    auto r = parse(lines({
        "[service:a\x1b]0;pwn\x07]",
        "exec = /bin/true",
        "[service:b]",
        "exec = /bin/true",
        "restart = al\x7fways\x1b[2J",
        "[bogus\x1b[31m]",
        "x\ty",
    }));
    std::string all = dump(r->problems);
    INFO("problems:\n" << all);
    CHECK_FALSE(r->ok);
    for (char c : all) {
        auto u = static_cast<unsigned char>(c);
        const bool printable = (u >= 0x20 && u != 0x7f) || c == '\n';
        CHECK(printable);
    }
    CHECK(all.find("bad restart 'al\\x7fways\\x1b[2J'") != std::string::npos);
    CHECK(all.find("unknown section '[bogus\\x1b[31m]'") != std::string::npos);
    CHECK(all.find("no '=' in 'x\\x09y'") != std::string::npos);
    // Escapes never make the text longer than it may be, nor cut one.
    std::string ctl(100, '\x01');
    auto c = parse(lines({"[custos]", ctl + " = 1"}));
    REQUIRE(c->problems.size() == 1);
    std::string_view msg = c->problems[0].message;
    CHECK(msg.find(std::string(12, '\x01')) == std::string_view::npos);
    CHECK(msg.find("\\x01\\x01...'") != std::string_view::npos);
}

// --- probes ---

namespace {

std::vector<std::uint16_t> codes(std::span<const std::uint16_t> v) {
    return {v.begin(), v.end()};
}

// A one-probe file: the header, then `key_lines` from line 2 on.
std::string probe_with(std::initializer_list<std::string_view> key_lines) {
    std::string s = "[probe:p]\n";
    for (std::string_view l : key_lines) {
        s += l;
        s += '\n';
    }
    return s;
}

} // namespace

TEST_CASE("every probe key, its value and its line") {
    auto r = parse(lines({
        "[service:web]",                                   // 1
        "exec = /bin/web",                                 // 2
        "ready = probe:web-http",                          // 3
        "liveness = web-http",                             // 4
        "depends_on = broker, data",                       // 5
        "on_dependency_down = stop",                       // 6
        "[probe:web-http]",                                // 7
        "timeout = 3s",                                    // 8
        "http = http://127.0.0.1:8080/health",             // 9
        "startup_initial = 500ms",                         // 10
        "startup_max = 2m",                                // 11
        "startup_multiplier = 1.5",                        // 12
        "startup_tries = 20",                              // 13
        "interval = 30s",                                  // 14
        "success_threshold = 2",                           // 15
        "failure_threshold = 3",                           // 16
        "expect_status = 200 204,301",                     // 17
        "reason = the web UI does not answer",             // 18
        "resolution = systemctl status web # see its log", // 19
        "[probe:broker]",                                  // 20
        "tcp = [::1]:1883",                                // 21
        "[probe:api]",                                     // 22
        "unix = /run/api.sock",                            // 23
        "[probe:script]",                                  // 24
        R"(exec = /bin/sh -c "test -e /run/ok" 'a b')",    // 25
        "[probe:data]",                                    // 26
        "writable = yes",                                  // 27
        "file = /data",                                    // 28
        "exists = true",                                   // 29
        "owner = app:app",                                 // 30
        "mode = 0750",                                     // 31
        "[probe:deps]",                                    // 32
        "all = broker api, data",                          // 33
    }));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    REQUIRE(r->cfg.services().size() == 1);
    const ServiceSpec& web = r->cfg.services()[0];
    CHECK(web.ready == ReadyMode::probe);
    CHECK(web.ready_probe == "web-http");
    CHECK(web.ready_fd == -1);
    CHECK(web.liveness == "web-http");
    CHECK(strings(web.depends_on) == std::vector<std::string>{"broker", "data"});
    CHECK(web.on_dependency_down == DependencyDownAction::stop);
    CHECK(r->cfg.line_of(0, ServiceField::ready) == 3);
    CHECK(r->cfg.line_of(0, ServiceField::liveness) == 4);
    CHECK(r->cfg.line_of(0, ServiceField::on_dependency_down) == 6);

    auto ps = r->cfg.probes();
    REQUIRE(ps.size() == 6);

    const ProbeSpec& h = ps[0];
    CHECK(h.name == "web-http");
    CHECK(h.kind == ProbeKind::http);
    CHECK(h.target == "http://127.0.0.1:8080/health");
    CHECK(h.argv.empty());
    CHECK(h.members.empty());
    CHECK(codes(h.expect_status) == std::vector<std::uint16_t>{200, 204, 301});
    CHECK(h.owner.empty());
    CHECK(h.mode == -1);
    CHECK_FALSE(h.writable);
    CHECK(h.timeout == 3s);
    CHECK(h.startup_initial == 500ms);
    CHECK(h.startup_max == 2min);
    CHECK(h.startup_multiplier_x100 == 150);
    CHECK(h.startup_tries == 20);
    CHECK(h.interval == 30s);
    CHECK(h.success_threshold == 2);
    CHECK(h.failure_threshold == 3);
    CHECK(h.reason == "the web UI does not answer");
    CHECK(h.resolution == "systemctl status web # see its log");
    CHECK((h.on_ready == nullptr && h.on_down == nullptr && h.hook_ctx == nullptr));

    const std::pair<ProbeField, unsigned> expect[] = {
        {ProbeField::section, 7},
        {ProbeField::name, 7},
        {ProbeField::target, 9},
        {ProbeField::expect_status, 17},
        {ProbeField::owner, 7}, // not set: the header
        {ProbeField::mode, 7},
        {ProbeField::writable, 7},
        {ProbeField::timeout, 8},
        {ProbeField::startup_initial, 10},
        {ProbeField::startup_max, 11},
        {ProbeField::startup_multiplier, 12},
        {ProbeField::startup_tries, 13},
        {ProbeField::interval, 14},
        {ProbeField::success_threshold, 15},
        {ProbeField::failure_threshold, 16},
        {ProbeField::reason, 18},
        {ProbeField::resolution, 19},
        {ProbeField::grace, 7}, // not set: the header
    };
    static_assert(std::size(expect) == custos::probe_field_count);
    for (const auto& e : expect) {
        INFO("field " << static_cast<int>(e.first));
        CHECK(r->cfg.probe_line_of(0, e.first) == e.second);
    }

    const ProbeSpec& b = ps[1];
    CHECK(b.name == "broker");
    CHECK(b.kind == ProbeKind::tcp);
    CHECK(b.target == "[::1]:1883");
    CHECK(b.expect_status.empty());
    // The issue's defaults.
    CHECK(b.timeout == 10s);
    CHECK(b.startup_initial == 2s);
    CHECK(b.startup_max == 60s);
    CHECK(b.startup_multiplier_x100 == 200);
    CHECK(b.startup_tries == 10);
    CHECK(b.interval == 60s);
    CHECK(b.success_threshold == 1);
    CHECK(b.failure_threshold == 1);
    CHECK(b.reason.empty());
    CHECK(b.resolution.empty());
    CHECK(r->cfg.probe_line_of(1, ProbeField::target) == 21);
    CHECK(r->cfg.probe_line_of(1, ProbeField::timeout) == 20);

    CHECK(ps[2].kind == ProbeKind::unix_socket);
    CHECK(ps[2].target == "/run/api.sock");

    const ProbeSpec& sh = ps[3];
    CHECK(sh.kind == ProbeKind::exec);
    CHECK(sh.target.empty());
    CHECK(strings(sh.argv) == std::vector<std::string>{"/bin/sh", "-c", "test -e /run/ok", "a b"});
    CHECK(r->cfg.probe_line_of(3, ProbeField::target) == 25);

    const ProbeSpec& d = ps[4];
    CHECK(d.kind == ProbeKind::file);
    CHECK(d.target == "/data");
    CHECK(d.owner == "app:app");
    CHECK(d.mode == 0750);
    CHECK(d.writable);
    // The kind key's line, not exists' (which shares target's field).
    CHECK(r->cfg.probe_line_of(4, ProbeField::target) == 28);
    CHECK(r->cfg.probe_line_of(4, ProbeField::writable) == 27);
    CHECK(r->cfg.probe_line_of(4, ProbeField::owner) == 30);
    CHECK(r->cfg.probe_line_of(4, ProbeField::mode) == 31);

    const ProbeSpec& all = ps[5];
    CHECK(all.kind == ProbeKind::all);
    CHECK(strings(all.members) == std::vector<std::string>{"broker", "api", "data"});
    CHECK(all.argv.empty());
    CHECK(r->cfg.probe_line_of(5, ProbeField::target) == 33);

    CHECK(r->cfg.probe_line_of(6, ProbeField::section) == 0); // no such probe
    CHECK(r->cfg.probe_line_of(0, static_cast<ProbeField>(200)) == 0);
}

TEST_CASE("probes of several kinds keep their argv, members and statuses apart") {
    auto r = parse(
        lines({"[probe:a]", "exec = /bin/a 1", "[service:s]", "exec = /bin/s x", "[probe:b]",
               "all = a c", "[probe:c]", "http = http://h/", "expect_status = 503", "[probe:d]",
               "exec = /bin/d", "[probe:e]", "http = http://e/", "expect_status = 200 201"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    auto ps = r->cfg.probes();
    REQUIRE(ps.size() == 5);
    CHECK(strings(ps[0].argv) == std::vector<std::string>{"/bin/a", "1"});
    CHECK(argv_of(r->cfg.services()[0]) == std::vector<std::string>{"/bin/s", "x"});
    CHECK(strings(ps[1].members) == std::vector<std::string>{"a", "c"});
    CHECK(ps[1].argv.empty());
    CHECK(codes(ps[2].expect_status) == std::vector<std::uint16_t>{503});
    CHECK(strings(ps[3].argv) == std::vector<std::string>{"/bin/d"});
    CHECK(codes(ps[4].expect_status) == std::vector<std::uint16_t>{200, 201});
    CHECK(ps[3].expect_status.empty());
}

TEST_CASE("a probe needs exactly one kind") {
    SUBCASE("none: at the header") {
        expect_one(lines({"[probe:x]", "timeout = 1s", "[service:a]", "exec = /bin/a"}), 1,
                   Reason::config_bad_value,
                   "probe 'x' has no kind: set one of tcp, http, unix, exec, file, all");
        expect_one(lines({"[service:a]", "exec = /bin/a", "[probe:last]"}), 3,
                   Reason::config_bad_value, "probe 'last' has no kind");
    }
    SUBCASE("two different kinds: at the second") {
        auto r = parse(probe_with({"tcp = h:1", "interval = 5s", "http = http://h/"}));
        INFO(dump(r->problems));
        REQUIRE(r->problems.total() == 1);
        CHECK(r->problems[0].line == 4);
        CHECK(r->problems[0].error.reason() == Reason::config_bad_value);
        CHECK(r->problems[0].error.subject() == "http");
        CHECK(std::string_view(r->problems[0].message) ==
              "probe 'p' has two kinds, tcp (line 2) and http: keep one");
        CHECK(r->cfg.probes().empty());
        expect_one(probe_with({"exec = /bin/a", "all = a b"}), 3, Reason::config_bad_value,
                   "has two kinds, exec (line 2) and all");
        // Not also "no kind" when the kind key had no value.
        expect_one(probe_with({"unix ="}), 2, Reason::config_bad_value, "key 'unix' has no value");
    }
    SUBCASE("the same kind twice is a duplicate key") {
        expect_one(probe_with({"tcp = h:1", "tcp = h:2"}), 3, Reason::config_syntax,
                   "duplicate key 'tcp' in [probe:p] (first at line 2): keep one");
    }
    SUBCASE("an unreadable kind line is not also a missing kind") {
        expect_one(probe_with({"exec = /bin/" + std::string(4096, 'x')}), 2, Reason::config_syntax,
                   "line is 4108 bytes long");
        expect_one(probe_with({"exec = \"unterminated"}), 2, Reason::config_bad_value,
                   "unterminated double quote in exec at column 8");
    }
}

TEST_CASE("file-only and http-only keys on another kind: at the key's line, naming both") {
    expect_one(probe_with({"mode = 0755", "tcp = h:1"}), 2, Reason::config_bad_value,
               "mode applies to file probes only, and probe 'p' is a tcp probe: remove it");
    expect_one(probe_with({"http = http://h/", "owner = root"}), 3, Reason::config_bad_value,
               "owner applies to file probes only, and probe 'p' is a http probe");
    expect_one(probe_with({"unix = /s", "writable = no"}), 3, Reason::config_bad_value,
               "writable applies to file probes only, and probe 'p' is a unix probe");
    expect_one(probe_with({"exists = yes", "exec = /bin/x"}), 2, Reason::config_bad_value,
               "exists applies to file probes only, and probe 'p' is a exec probe");
    expect_one(probe_with({"all = a", "", "expect_status = 200"}), 4, Reason::config_bad_value,
               "expect_status applies to http probes only, and probe 'p' is a all probe");
    expect_one(probe_with({"file = /x", "expect_status = 200"}), 3, Reason::config_bad_value,
               "expect_status applies to http probes only, and probe 'p' is a file probe");
    auto r = parse(probe_with({"mode = 0755", "owner = a", "tcp = h:1", "exists = yes"}));
    INFO(dump(r->problems));
    const unsigned want[] = {2, 3, 5};
    REQUIRE(r->problems.size() == std::size(want));
    for (std::size_t i = 0; i < std::size(want); ++i) {
        CHECK(r->problems[i].line == want[i]);
        CHECK(r->problems[i].error.reason() == Reason::config_bad_value);
    }
    CHECK(r->problems[0].error.subject() == "mode");
    CHECK(r->problems[1].error.subject() == "owner");
    CHECK(r->problems[2].error.subject() == "exists");
}

TEST_CASE("probe values: good ones read, bad ones at their line") {
    SUBCASE("durations and the multiplier, as for services") {
        auto r = parse(probe_with({"tcp = h:1", "timeout = 0", "interval = 1h"}));
        REQUIRE(r->ok);
        CHECK(r->cfg.probes()[0].timeout == 0ms); // the validator's to refuse
        CHECK(r->cfg.probes()[0].interval == 1h);
        expect_one(probe_with({"tcp = h:1", "timeout = 10"}), 3, Reason::config_bad_value,
                   "missing unit in duration '10' for timeout: write 10s");
        expect_one(probe_with({"tcp = h:1", "startup_initial = 2x"}), 3, Reason::config_bad_value,
                   "bad duration '2x' for startup_initial");
        expect_one(probe_with({"tcp = h:1", "startup_max = 9999999h"}), 3, Reason::config_bad_value,
                   "duration '9999999h' for startup_max is too large");
        expect_one(probe_with({"tcp = h:1", "interval = -1s"}), 3, Reason::config_bad_value,
                   "bad duration '-1s' for interval");
        for (const char* bad : {"0.5", "101", "1.234", "x"}) {
            INFO(bad);
            expect_one(probe_with({"tcp = h:1", std::string("startup_multiplier = ") + bad}), 3,
                       Reason::config_bad_value,
                       "bad startup_multiplier '" + std::string(bad) +
                           "': use a number from 1 to 100 with at most two decimals");
        }
        auto m = parse(probe_with({"tcp = h:1", "startup_multiplier = 1"}));
        REQUIRE(m->ok);
        CHECK(m->cfg.probes()[0].startup_multiplier_x100 == 100);
    }
    SUBCASE("tries and thresholds: whole numbers from 1") {
        for (const char* key : {"startup_tries", "success_threshold", "failure_threshold"}) {
            INFO(key);
            for (const char* bad : {"0", "-1", "1.5", "x", "4294967296"}) {
                INFO(bad);
                expect_one(probe_with({"tcp = h:1", std::string(key) + " = " + bad}), 3,
                           Reason::config_bad_value,
                           "bad " + std::string(key) + " '" + bad +
                               "': use a whole number from 1 to 4294967295");
            }
            auto r = parse(probe_with({"tcp = h:1", std::string(key) + " = 4294967295"}));
            REQUIRE(r->ok);
        }
        auto r = parse(probe_with(
            {"tcp = h:1", "startup_tries = 1", "success_threshold = 1", "failure_threshold = 7"}));
        REQUIRE(r->ok);
        CHECK(r->cfg.probes()[0].startup_tries == 1);
        CHECK(r->cfg.probes()[0].failure_threshold == 7);
    }
    SUBCASE("expect_status: codes from 100 to 599") {
        auto r = parse(probe_with({"http = http://h/", "expect_status = 100,599  302"}));
        REQUIRE(r->ok);
        CHECK(codes(r->cfg.probes()[0].expect_status) == std::vector<std::uint16_t>{100, 599, 302});
        for (const char* bad : {"99", "600", "2OO", "-200", "200.0", "65736"}) {
            INFO(bad);
            expect_one(probe_with({"http = http://h/", std::string("expect_status = 200 ") + bad}),
                       3, Reason::config_bad_value,
                       "bad status '" + std::string(bad) +
                           "' in expect_status: use HTTP status codes from 100 to 599");
        }
        expect_one(probe_with({"http = http://h/", "expect_status = , ,"}), 3,
                   Reason::config_bad_value, "expect_status ', ,' names no status");
    }
    SUBCASE("mode: octal up to 7777") {
        for (const auto& c : {std::pair<const char*, int>{"0755", 0755},
                              {"755", 0755},
                              {"4755", 04755},
                              {"07777", 07777},
                              {"0", 0}}) {
            INFO(c.first);
            auto r = parse(probe_with({"file = /x", std::string("mode = ") + c.first}));
            REQUIRE(r->ok);
            CHECK(r->cfg.probes()[0].mode == c.second);
        }
        for (const char* bad : {"0789", "17777", "077777", "rwx", "0x1ff", "-755", "7 55"}) {
            INFO(bad);
            expect_one(probe_with({"file = /x", std::string("mode = ") + bad}), 3,
                       Reason::config_bad_value,
                       "bad mode '" + std::string(bad) +
                           "': use octal permission bits up to 7777, e.g. 0755");
        }
    }
    SUBCASE("owner: user, user:group or :group") {
        for (const char* good : {"root", "root:adm", ":adm", "app-user:app.grp"}) {
            INFO(good);
            auto r = parse(probe_with({"file = /x", std::string("owner = ") + good}));
            REQUIRE(r->ok);
            CHECK(r->cfg.probes()[0].owner == good);
        }
        for (const char* bad : {"root:", ":", "a:b:c", "a b", "a:\tb", "::g"}) {
            INFO(bad);
            expect_one(probe_with({"file = /x", std::string("owner = ") + bad}), 3,
                       Reason::config_bad_value, "': write user, user:group or :group");
        }
    }
    SUBCASE("writable and exists: booleans") {
        for (const auto& c : {std::pair<const char*, bool>{"yes", true},
                              {"true", true},
                              {"no", false},
                              {"false", false}}) {
            INFO(c.first);
            auto r = parse(probe_with({"file = /x", std::string("writable = ") + c.first}));
            REQUIRE(r->ok);
            CHECK(r->cfg.probes()[0].writable == c.second);
        }
        for (const char* bad : {"YES", "1", "on", "y"}) {
            INFO(bad);
            expect_one(probe_with({"file = /x", std::string("writable = ") + bad}), 3,
                       Reason::config_bad_value,
                       "bad writable '" + std::string(bad) + "': use yes, no, true or false");
            expect_one(probe_with({"file = /x", std::string("exists = ") + bad}), 3,
                       Reason::config_bad_value,
                       "bad exists '" + std::string(bad) + "': use yes, no, true or false");
        }
        auto r = parse(probe_with({"file = /x", "exists = yes"}));
        REQUIRE(r->ok);
        expect_one(probe_with({"file = /x", "exists = no"}), 3, Reason::config_bad_value,
                   "exists = no cannot be checked: a file probe always requires its file to exist");
    }
    SUBCASE("all needs a name; targets are the validator's") {
        expect_one(probe_with({"all = ,"}), 2, Reason::config_bad_value,
                   "all ',' names no probe: list names separated by spaces or commas");
        auto r = parse(probe_with({"tcp = not a target"}));
        REQUIRE(r->ok);
        CHECK(r->cfg.probes()[0].target == "not a target");
    }
    SUBCASE("unknown, duplicate and empty keys") {
        auto r = parse(probe_with({"tcp = h:1", "intervall = 5s"}));
        REQUIRE(r->problems.size() == 1);
        CHECK(r->problems[0].line == 3);
        CHECK(r->problems[0].error.reason() == Reason::config_unknown_key);
        CHECK(std::string_view(r->problems[0].message) ==
              "unknown key 'intervall' in [probe:p] (did you mean 'interval'?)");
        expect_one(probe_with({"tcp = h:1", "depends_on = x"}), 3, Reason::config_unknown_key,
                   "unknown key 'depends_on' in [probe:p]");
        expect_one(probe_with({"tcp = h:1", "timeout = 1s", "timeout = 2s"}), 4,
                   Reason::config_syntax,
                   "duplicate key 'timeout' in [probe:p] (first at line 3): keep one");
        expect_one(probe_with({"tcp = h:1", "reason ="}), 3, Reason::config_bad_value,
                   "key 'reason' has no value");
    }
}

TEST_CASE("probe sections: each once, named, counted apart from services") {
    expect_one(lines({"[probe:a]", "tcp = h:1", "[probe:a]", "tcp = h:2"}), 3,
               Reason::config_syntax,
               "duplicate section [probe:a] (first at line 1): merge the two or rename one");
    expect_one(lines({"[probe:]"}), 1, Reason::config_syntax,
               "section [probe:] has no name: write [probe:NAME]");
    // A service and a probe of one name: the validator's to report.
    auto r = parse(lines({"[service:a]", "exec = /bin/a", "[probe:a]", "tcp = h:1"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(r->cfg.services().size() == 1);
    CHECK(r->cfg.probes().size() == 1);
    auto blanks = parse(lines({"  [ probe: b ]", "unix=/s"}));
    REQUIRE(blanks->ok);
    CHECK(blanks->cfg.probes()[0].name == "b");
}

TEST_CASE("capacity: at most 4096 probe sections; the next is reported at its header") {
    std::string text;
    for (unsigned i = 0; i <= config::max_probe_sections; ++i) {
        text += "[probe:p" + std::to_string(i) + "]\ntcp = h:1\n";
    }
    auto r = parse(text);
    REQUIRE(r->problems.total() == 1);
    CHECK(r->problems[0].error.reason() == Reason::capacity_exceeded);
    CHECK(r->problems[0].line == 2 * config::max_probe_sections + 1);
    CHECK(std::string_view(r->problems[0].message).find("too many probes") !=
          std::string_view::npos);

    text.resize(text.size() - std::string("[probe:p4096]\ntcp = h:1\n").size());
    auto full = parse(text);
    REQUIRE(full->ok);
    CHECK(full->cfg.probes().size() == config::max_probe_sections);
    CHECK(full->cfg.probes()[4095].name == "p4095");
    CHECK(full->cfg.probe_line_of(4095, ProbeField::target) == 2 * 4096);
}

TEST_CASE("service keys for probes: ready = probe:NAME, liveness, on_dependency_down") {
    auto r = parse(service_with("ready = probe: own "));
    REQUIRE(r->ok);
    CHECK(r->cfg.services()[0].ready == ReadyMode::probe);
    CHECK(r->cfg.services()[0].ready_probe == "own");
    expect_one(service_with("ready = probe:"), 3, Reason::config_bad_value,
               "ready 'probe:' names no probe: write ready = probe:NAME");
    expect_one(service_with("ready = probe"), 3, Reason::config_bad_value, "bad ready 'probe'");
    for (const auto& c :
         {std::pair<const char*, DependencyDownAction>{"ignore", DependencyDownAction::ignore},
          {"stop", DependencyDownAction::stop},
          {"restart", DependencyDownAction::restart}}) {
        INFO(c.first);
        auto s = parse(service_with(std::string("on_dependency_down = ") + c.first));
        REQUIRE(s->ok);
        CHECK(s->cfg.services()[0].on_dependency_down == c.second);
    }
    expect_one(service_with("on_dependency_down = kill"), 3, Reason::config_bad_value,
               "bad on_dependency_down 'kill': use ignore, stop or restart");
    expect_one(service_with("liveness ="), 3, Reason::config_bad_value,
               "key 'liveness' has no value");
    expect_one(lines({"[service:a]", "exec = /bin/a", "liveness = x", "liveness = y"}), 4,
               Reason::config_syntax, "duplicate key 'liveness' in [service:a]");
}

TEST_CASE("[custos] max_probes and max_probe_checks") {
    auto r = parse(lines({"[custos]", "max_probes = 1", "max_probe_checks = 1"}));
    REQUIRE(r->ok);
    CHECK(r->cfg.runtime().max_probes == 1);
    CHECK(r->cfg.runtime().max_probe_checks == 1);
    expect_one(lines({"[custos]", "max_probes = 0"}), 2, Reason::config_bad_value,
               "bad max_probes '0': use a whole number from 1 to 4096");
    expect_one(lines({"[custos]", "max_probes = 4097"}), 2, Reason::config_bad_value,
               "bad max_probes '4097'");
    expect_one(lines({"[custos]", "max_probe_checks = 0"}), 2, Reason::config_bad_value,
               "bad max_probe_checks '0': use a whole number from 1 to 65536");
    expect_one(lines({"[custos]", "max_probe_checks = 65537"}), 2, Reason::config_bad_value,
               "bad max_probe_checks '65537'");
}

TEST_CASE("a failed parse leaves no probes; a new parse replaces them") {
    auto r = std::make_unique<parsed>();
    REQUIRE(r->cfg.parse(probe_with({"tcp = h:1"}), r->problems));
    REQUIRE(r->cfg.probes().size() == 1);
    CHECK_FALSE(r->cfg.parse(probe_with({"tcp = h:1", "mode = 1"}), r->problems));
    CHECK(r->cfg.probes().empty());
    CHECK(r->cfg.probe_line_of(0, ProbeField::section) == 0);
    r->problems.clear();
    REQUIRE(r->cfg.parse(lines({"[probe:x]", "file = /a", "[probe:y]", "file = /b"}), r->problems));
    REQUIRE(r->cfg.probes().size() == 2);
    CHECK(r->cfg.probes()[1].target == "/b");
}

TEST_CASE("several probe errors in one file are all reported, in line order") {
    auto r = parse(lines({
        "[probe:a]",           // 1 no kind
        "timeout = 5",         // 2 missing unit
        "[probe:b]",           // 3
        "tcp = h:1",           // 4
        "http = http://x/",    // 5 second kind
        "mode = 999",          // 6 bad mode (and not a file probe: reported once, bad value)
        "[service:s]",         // 7
        "exec = /bin/s",       // 8
        "ready = probe:",      // 9
        "[probe:b]",           // 10 duplicate
        "[probe:c]",           // 11
        "file = /x",           // 12
        "expect_status = 200", // 13 http only
    }));
    INFO(dump(r->problems));
    CHECK_FALSE(r->ok);
    CHECK(r->cfg.probes().empty());
    const unsigned want[] = {1, 2, 5, 6, 9, 10, 13};
    REQUIRE(r->problems.size() == std::size(want));
    for (std::size_t i = 0; i < std::size(want); ++i) {
        CHECK(r->problems[i].line == want[i]);
    }
}

// --- [watchdog] ---

namespace {

using custos::MagicClose;
using custos::WatchdogConfig;
using custos::WatchdogDevice;
using custos::WatchdogField;

// Every WatchdogConfig field equal to the defaults.
void check_watchdog_defaults(const WatchdogConfig& w) {
    const WatchdogConfig d;
    CHECK(w.device == d.device);
    CHECK(w.board == d.board);
    CHECK(w.path == d.path);
    CHECK(w.timeout == d.timeout);
    CHECK(w.interval == d.interval);
    CHECK(w.pretimeout == d.pretimeout);
    CHECK(w.magic_close == d.magic_close);
    CHECK(w.required == d.required);
    CHECK(w.max_hold == d.max_hold);
    CHECK(w.state_file == d.state_file);
    CHECK(w.safe_mode_boots == d.safe_mode_boots);
    CHECK(w.safe_mode_window == d.safe_mode_window);
    CHECK(w.gpio_chip == d.gpio_chip);
    CHECK(w.gpio_line == d.gpio_line);
    CHECK(w.gpio_enable_line == d.gpio_enable_line);
    CHECK(w.gpio_active_low == d.gpio_active_low);
    CHECK(w.led == d.led);
}

// The table check's watchdog problems, each with the line custosd prints.
struct watchdog_sink final : custos::TableProblemSink {
    const config& cfg;
    struct seen {
        WatchdogField field;
        Reason reason;
        unsigned line;
    };
    std::vector<seen> problems;
    std::string text;

    explicit watchdog_sink(const config& c) : cfg(c) {}
    void report(const custos::TableProblem& p) noexcept override {
        char buf[512];
        p.error.format(buf, sizeof buf);
        text += buf;
        text += '\n';
        if (p.kind == custos::TableKind::watchdog) {
            problems.push_back(
                {p.watchdog_field(), p.error.reason(), cfg.watchdog_line_of(p.watchdog_field())});
        }
    }
};

} // namespace

TEST_CASE("no [watchdog] section: the defaults, no lines, the table carries device none") {
    auto r = parse(example);
    REQUIRE(r->ok);
    check_watchdog_defaults(r->cfg.watchdog());
    check_watchdog_defaults(r->cfg.table().watchdog);
    CHECK(r->cfg.watchdog_line_of(WatchdogField::section) == 0);
    CHECK(r->cfg.watchdog_line_of(WatchdogField::timeout) == 0);
}

TEST_CASE("every [watchdog] key, its value and its line; the table carries it") {
    const std::string text = lines({
        "[custos]",                              // 1
        "stop_timeout = 5s",                     // 2
        "[watchdog]",                            // 3
        "device = gpio",                         // 4
        "board = raspberrypi",                   // 5
        "path = /dev/watchdog1",                 // 6
        "timeout = 12s",                         // 7
        "interval = 1500ms",                     // 8
        "pretimeout = 3s",                       // 9
        "magic_close = no",                      // 10
        "required = no",                         // 11
        "max_hold = 30m",                        // 12
        "state_file = /var/lib/custos/wd.state", // 13
        "safe_mode_boots = 3",                   // 14
        "safe_mode_window = 2h",                 // 15
        "gpio_chip = /dev/gpiochip1",            // 16
        "gpio_line = 17",                        // 17
        "gpio_enable_line = 27",                 // 18
        "gpio_active_low = yes",                 // 19
        "led = ACT",                             // 20
        "[service:a]",                           // 21
        "exec = /bin/true",                      // 22
    });
    auto r = parse(text);
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    const WatchdogConfig& w = r->cfg.watchdog();
    CHECK(w.device == WatchdogDevice::gpio);
    CHECK(w.board == "raspberrypi");
    CHECK(w.path == "/dev/watchdog1");
    CHECK(w.timeout == 12s);
    CHECK(w.interval == 1500ms);
    CHECK(w.pretimeout == 3s);
    CHECK(w.magic_close == MagicClose::no);
    CHECK_FALSE(w.required);
    CHECK(w.max_hold == 30min);
    CHECK(w.state_file == "/var/lib/custos/wd.state");
    CHECK(w.safe_mode_boots == 3);
    CHECK(w.safe_mode_window == 2h);
    CHECK(w.gpio_chip == "/dev/gpiochip1");
    CHECK(w.gpio_line == 17);
    CHECK(w.gpio_enable_line == 27);
    CHECK(w.gpio_active_low);
    CHECK(w.led == "ACT");
    // The table Runtime::init() gets is the same.
    const custos::Table t = r->cfg.table();
    CHECK(t.watchdog.device == WatchdogDevice::gpio);
    CHECK(t.watchdog.state_file == "/var/lib/custos/wd.state");
    CHECK(t.watchdog.gpio_line == 17);
    CHECK(t.services.size() == 1);
    // Each field's line.
    const std::pair<WatchdogField, unsigned> want[] = {
        {WatchdogField::section, 3},
        {WatchdogField::device, 4},
        {WatchdogField::board, 5},
        {WatchdogField::path, 6},
        {WatchdogField::timeout, 7},
        {WatchdogField::interval, 8},
        {WatchdogField::pretimeout, 9},
        {WatchdogField::magic_close, 10},
        {WatchdogField::max_hold, 12},
        {WatchdogField::state_file, 13},
        {WatchdogField::safe_mode_boots, 14},
        {WatchdogField::safe_mode_window, 15},
        {WatchdogField::gpio_chip, 16},
        {WatchdogField::gpio_line, 17},
        {WatchdogField::gpio_enable_line, 18},
        {WatchdogField::led, 20},
    };
    static_assert(std::size(want) == custos::watchdog_field_count);
    for (const auto& fl : want) {
        INFO(custos::field_name(fl.first));
        CHECK(r->cfg.watchdog_line_of(fl.first) == fl.second);
    }
    CHECK(r->cfg.watchdog_line_of(static_cast<WatchdogField>(200)) == 0);
}

TEST_CASE("[watchdog] with one key: the others keep their defaults, their lines the header's") {
    auto r = parse(lines({"[service:a]", "exec = /bin/true", "[watchdog]", "device = null"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    WatchdogConfig w = r->cfg.watchdog();
    CHECK(w.device == WatchdogDevice::null);
    w.device = WatchdogDevice::none;
    check_watchdog_defaults(w);
    CHECK(r->cfg.watchdog_line_of(WatchdogField::device) == 4);
    CHECK(r->cfg.watchdog_line_of(WatchdogField::timeout) == 3);
    CHECK(r->cfg.watchdog_line_of(WatchdogField::section) == 3);
}

TEST_CASE("[watchdog] words: every device, magic_close and the -1 of the GPIO lines") {
    const std::pair<std::string_view, WatchdogDevice> devices[] = {
        {"none", WatchdogDevice::none},
        {"kernel", WatchdogDevice::kernel},
        {"gpio", WatchdogDevice::gpio},
        {"null", WatchdogDevice::null},
    };
    for (const auto& d : devices) {
        auto r = parse(lines({"[watchdog]", "device = " + std::string(d.first)}));
        INFO(d.first);
        REQUIRE(r->ok);
        CHECK(r->cfg.watchdog().device == d.second);
    }
    const std::pair<std::string_view, MagicClose> closes[] = {
        {"profile", MagicClose::profile}, {"yes", MagicClose::yes},  {"no", MagicClose::no},
        {"true", MagicClose::yes},        {"false", MagicClose::no},
    };
    for (const auto& c : closes) {
        auto r =
            parse(lines({"[watchdog]", "device = null", "magic_close = " + std::string(c.first)}));
        INFO(c.first);
        REQUIRE(r->ok);
        CHECK(r->cfg.watchdog().magic_close == c.second);
    }
    auto r = parse(lines({"[watchdog]", "device = gpio", "gpio_line = -1", "gpio_enable_line = 0",
                          "safe_mode_boots = 0", "timeout = 0", "board = auto"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(r->cfg.watchdog().gpio_line == -1);
    CHECK(r->cfg.watchdog().gpio_enable_line == 0);
    CHECK(r->cfg.watchdog().safe_mode_boots == 0);
    CHECK(r->cfg.watchdog().timeout == 0s);
    CHECK(r->cfg.watchdog().board == "auto");
}

TEST_CASE("[watchdog] bad values: at the key's line, saying what to write") {
    auto bad = [](std::string_view key_line, std::string_view msg) {
        INFO(key_line);
        // The device after the key, so that the key stays at line 4.
        const bool device = key_line.substr(0, 6) == "device";
        expect_one(lines({"[service:a]", "exec = /bin/true", "[watchdog]", key_line,
                          device ? "# no second device" : "device = null"}),
                   4, Reason::config_bad_value, msg);
    };
    bad("device = foo", "bad device 'foo': use none, kernel");
    bad("device = Kernel", "bad device 'Kernel'");
    bad("magic_close = maybe", "bad magic_close 'maybe': use profile");
    bad("timeout = -1", "timeout");
    bad("timeout = 30", "timeout");
    bad("timeout = 1500ms", "timeout '1500ms' is not a whole number of seconds");
    bad("pretimeout = 2500ms", "pretimeout '2500ms' is not a whole number of seconds");
    bad("interval = soon", "interval");
    bad("max_hold = 1x", "max_hold");
    bad("safe_mode_window = -5m", "safe_mode_window");
    bad("required = maybe", "bad required 'maybe': use yes, no, true or false");
    bad("gpio_active_low = 2", "bad gpio_active_low '2'");
    bad("gpio_line = x", "bad gpio_line 'x': give the line's offset on its chip, 0 to 511");
    bad("gpio_line = 512", "bad gpio_line '512'");
    bad("gpio_line = -2", "bad gpio_line '-2'");
    bad("gpio_enable_line = 1.5", "bad gpio_enable_line '1.5'");
    bad("safe_mode_boots = -1", "bad safe_mode_boots '-1': give a whole number from 0 (off)");
    bad("safe_mode_boots = 1001", "bad safe_mode_boots '1001'");
    bad("device =", "key 'device' has no value");
}

TEST_CASE("[watchdog] sections: one only, a second names the first; unknown keys get a hint") {
    expect_one(lines({"[watchdog]", "device = null", "[service:a]", "exec = /bin/true",
                      "[watchdog]", "timeout = 4s"}),
               5, Reason::config_syntax, "duplicate section [watchdog] (first at line 1)");
    expect_one(lines({"[watchdog]", "device = null", "timout = 4s"}), 3, Reason::config_unknown_key,
               "unknown key 'timout' in [watchdog] (did you mean 'timeout'?)");
    expect_one(lines({"[watchdog]", "device = null", "statefile = /tmp/x"}), 3,
               Reason::config_unknown_key, "(did you mean 'state_file'?)");
    expect_one(lines({"[watchdog]", "device = gpio", "gpio_enable = 3"}), 3,
               Reason::config_unknown_key, "unknown key 'gpio_enable' in [watchdog]");
    expect_one(lines({"[watchdog]", "device = null", "device = kernel"}), 3, Reason::config_syntax,
               "duplicate key 'device' in [watchdog] (first at line 2): keep one");
    expect_one(lines({"[watchdog:x]"}), 1, Reason::config_syntax, "unknown section '[watchdog:x]'");
    // A forgotten device is not a silent "none": the section says which.
    expect_one(lines({"[custos]", "[watchdog]", "timeout = 10s", "state_file = /tmp/x"}), 2,
               Reason::config_bad_value,
               "[watchdog] has no device: add device = kernel, gpio or null (none keeps the "
               "watchdog off)");
    // A failed parse leaves the defaults.
    auto r = parse(lines({"[watchdog]", "device = null", "timeout = 4s", "bogus = 1"}));
    CHECK_FALSE(r->ok);
    check_watchdog_defaults(r->cfg.watchdog());
    CHECK(r->cfg.watchdog_line_of(WatchdogField::timeout) == 0);
}

TEST_CASE("a config parsed again replaces its [watchdog]") {
    config c;
    problem_list ps;
    REQUIRE(c.parse(lines({"[watchdog]", "device = null", "timeout = 4s"}), ps));
    CHECK(c.watchdog().timeout == 4s);
    REQUIRE(c.parse(lines({"[custos]", "stop_timeout = 1s"}), ps));
    check_watchdog_defaults(c.watchdog());
    CHECK(c.watchdog_line_of(WatchdogField::section) == 0);
}

TEST_CASE("the table check's watchdog problems map to the line of their key") {
    SUBCASE("safe_mode_boots without state_file") {
        auto r = parse(lines({"[watchdog]",             // 1
                              "device = null",          // 2
                              "safe_mode_boots = 3"})); // 3
        REQUIRE(r->ok);
        watchdog_sink sink(r->cfg);
        CHECK(custos::validate_table(r->cfg.table(), &sink) == 1);
        INFO(sink.text);
        REQUIRE(sink.problems.size() == 1);
        CHECK(sink.problems[0].field == WatchdogField::safe_mode_boots);
        CHECK(sink.problems[0].reason == Reason::invalid_argument);
        CHECK(sink.problems[0].line == 3);
        CHECK(sink.text.find("state_file") != std::string::npos);
    }
    SUBCASE("several, each at its own line, the others at the header") {
        auto r = parse(lines({"[service:a]",                 // 1
                              "exec = /bin/true",            // 2
                              "[watchdog]",                  // 3
                              "device = kernel",             // 4
                              "path = dev/watchdog",         // 5
                              "timeout = 10s",               // 6
                              "pretimeout = 10s",            // 7
                              "state_file = relative.state", // 8
                              "max_hold = 48h",              // 9
                              "led = ../../x"}));            // 10
        REQUIRE(r->ok);
        watchdog_sink sink(r->cfg);
        custos::validate_table(r->cfg.table(), &sink);
        INFO(sink.text);
        std::vector<std::pair<WatchdogField, unsigned>> got;
        for (const auto& p : sink.problems) {
            got.emplace_back(p.field, p.line);
        }
        const std::vector<std::pair<WatchdogField, unsigned>> want = {
            {WatchdogField::pretimeout, 7}, {WatchdogField::max_hold, 9}, {WatchdogField::path, 5},
            {WatchdogField::state_file, 8}, {WatchdogField::led, 10},
        };
        for (const auto& w : want) {
            INFO(custos::field_name(w.first) << " at line " << w.second);
            CHECK(std::find(got.begin(), got.end(), w) != got.end());
        }
        CHECK(got.size() == want.size());
    }
    SUBCASE("a missing state-file directory is ResetRecordUnwritable at state_file") {
        auto r = parse(lines(
            {"[watchdog]", "device = null", "state_file = /nonexistent-custos-dir/wd.state"}));
        REQUIRE(r->ok);
        watchdog_sink sink(r->cfg);
        custos::validate_table(r->cfg.table(), &sink);
        REQUIRE(sink.problems.size() == 1);
        CHECK(sink.problems[0].reason == Reason::reset_record_unwritable);
        CHECK(sink.problems[0].line == 3);
    }
    SUBCASE("device none: nothing checked") {
        auto r = parse(lines({"[watchdog]", "device = none", "safe_mode_boots = 3"}));
        REQUIRE(r->ok);
        watchdog_sink sink(r->cfg);
        CHECK(custos::validate_table(r->cfg.table(), &sink) == 0);
    }
}

// --- [control] ---

namespace {

using custos::ControlConfig;
using custos::cfg::control_field;

// Every ControlConfig field but the socket equal to the defaults.
void check_control_defaults(const ControlConfig& c) {
    const ControlConfig d;
    CHECK(c.mode == d.mode);
    CHECK(c.group == d.group);
    CHECK(c.operators.empty());
    CHECK(c.max_clients == d.max_clients);
    CHECK(c.max_head_bytes == d.max_head_bytes);
    CHECK(c.max_body_bytes == d.max_body_bytes);
    CHECK(c.head_timeout == d.head_timeout);
    CHECK(c.idle_timeout == d.idle_timeout);
    CHECK(c.max_requests == d.max_requests);
    CHECK(c.send_timeout == d.send_timeout);
    CHECK(c.max_wait == d.max_wait);
}

} // namespace

TEST_CASE("no [control] section: the default socket, the defaults, no lines") {
    auto r = parse(example);
    REQUIRE(r->ok);
    CHECK_FALSE(r->cfg.has_control_section());
    CHECK(r->cfg.control().socket == "/run/custos/control.sock");
    CHECK(r->cfg.control().socket == custos::control::default_socket);
    check_control_defaults(r->cfg.control());
    CHECK(r->cfg.table().control.socket == "/run/custos/control.sock");
    check_control_defaults(r->cfg.table().control);
    CHECK(r->cfg.control_line_of(control_field::section) == 0);
    CHECK(r->cfg.control_line_of(control_field::socket) == 0);
    // A config never parsed says the same.
    config fresh;
    CHECK(fresh.control().socket == custos::control::default_socket);
    CHECK_FALSE(fresh.has_control_section());
}

TEST_CASE("every [control] key, its value and its line; the table carries it") {
    const std::string text = lines({
        "[service:a]",                                           // 1
        "exec = /bin/true",                                      // 2
        "[control]",                                             // 3
        "enabled = yes",                                         // 4
        "socket = /run/app/ctl.sock",                            // 5
        "mode = 0640",                                           // 6
        "group = adm",                                           // 7
        "operators = alice 1001, @wheel @27",                    // 8
        "max_clients = 4",                                       // 9
        "max_head_bytes = 4096",                                 // 10
        "max_body_bytes = 1024",                                 // 11
        "head_timeout = 2s",                                     // 12
        "idle_timeout = 1m",                                     // 13
        "send_timeout = 1500ms",                                 // 14
        "max_requests = 50",                                     // 15
        "max_wait = 10m",                                        // 16
        "metrics_listen = 127.0.0.1:9101",                       // 17
        "metrics_textfile = /var/lib/node_exporter/custos.prom", // 18
        "metrics_textfile_interval = 30s",                       // 19
        "[custos]",                                              // 20
        "stop_timeout = 5s",                                     // 21
    });
    auto r = parse(text);
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    CHECK(r->cfg.has_control_section());
    const ControlConfig& c = r->cfg.control();
    CHECK(c.socket == "/run/app/ctl.sock");
    CHECK(c.mode == 0640);
    CHECK(c.group == "adm");
    CHECK(strings(c.operators) == std::vector<std::string>{"alice", "1001", "@wheel", "@27"});
    CHECK(c.max_clients == 4);
    CHECK(c.max_head_bytes == 4096);
    CHECK(c.max_body_bytes == 1024);
    CHECK(c.head_timeout == 2s);
    CHECK(c.idle_timeout == 1min);
    CHECK(c.send_timeout == 1500ms);
    CHECK(c.max_requests == 50);
    CHECK(c.max_wait == 10min);
    CHECK(c.metrics_listen == "127.0.0.1:9101");
    CHECK(c.metrics_textfile == "/var/lib/node_exporter/custos.prom");
    CHECK(c.metrics_textfile_interval == 30s);
    // The table Runtime::init() gets is the same.
    const custos::Table t = r->cfg.table();
    CHECK(t.control.socket == "/run/app/ctl.sock");
    CHECK(t.control.operators.size() == 4);
    CHECK(t.control.operators.data() == c.operators.data());
    CHECK(t.control.max_wait == 10min);
    CHECK(t.runtime.stop_timeout == 5s);
    const std::pair<control_field, unsigned> want[] = {
        {control_field::section, 3},
        {control_field::enabled, 4},
        {control_field::socket, 5},
        {control_field::mode, 6},
        {control_field::group, 7},
        {control_field::operators, 8},
        {control_field::max_clients, 9},
        {control_field::max_head_bytes, 10},
        {control_field::max_body_bytes, 11},
        {control_field::head_timeout, 12},
        {control_field::idle_timeout, 13},
        {control_field::send_timeout, 14},
        {control_field::max_requests, 15},
        {control_field::max_wait, 16},
        {control_field::metrics_listen, 17},
        {control_field::metrics_textfile, 18},
        {control_field::metrics_textfile_interval, 19},
    };
    static_assert(std::size(want) == custos::cfg::control_field_count);
    for (const auto& fl : want) {
        INFO("field " << static_cast<int>(fl.first));
        CHECK(r->cfg.control_line_of(fl.first) == fl.second);
    }
    CHECK(r->cfg.control_line_of(static_cast<control_field>(200)) == 0);
}

TEST_CASE("[control] with one key: the default socket, the other lines the header's") {
    auto r = parse(lines({"[service:a]", "exec = /bin/true", "[control]", "operators = ops"}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    const ControlConfig& c = r->cfg.control();
    CHECK(c.socket == custos::control::default_socket);
    CHECK(strings(c.operators) == std::vector<std::string>{"ops"});
    ControlConfig rest = c;
    rest.operators = {};
    check_control_defaults(rest);
    CHECK(r->cfg.control_line_of(control_field::operators) == 4);
    CHECK(r->cfg.control_line_of(control_field::socket) == 3);
    CHECK(r->cfg.control_line_of(control_field::section) == 3);
    // An empty section is the default socket too.
    auto e = parse(lines({"[control]"}));
    REQUIRE(e->ok);
    CHECK(e->cfg.has_control_section());
    CHECK(e->cfg.control().socket == custos::control::default_socket);
}

TEST_CASE("[control] enabled = no: no socket; with a socket, a contradiction at enabled") {
    for (std::string_view no : {"no", "false"}) {
        auto r = parse(lines({"[control]", "enabled = " + std::string(no), "mode = 0600"}));
        INFO(dump(r->problems));
        REQUIRE(r->ok);
        CHECK(r->cfg.control().socket.empty());
        CHECK(r->cfg.table().control.socket.empty());
        CHECK(r->cfg.control().mode == 0600);
    }
    expect_one(lines({"[control]", "socket = /tmp/c.sock", "enabled = no"}), 3,
               Reason::config_bad_value,
               "enabled = no turns the control plane off, but socket is set (line 2): remove one");
    auto r = parse(lines({"[control]", "enabled = yes"}));
    REQUIRE(r->ok);
    CHECK(r->cfg.control().socket == custos::control::default_socket);
}

TEST_CASE("[control] bad values: at the key's line, saying what to write") {
    auto bad = [](std::string_view key_line, std::string_view msg) {
        INFO(key_line);
        expect_one(
            lines({"[service:a]", "exec = /bin/true", "[control]", key_line, "max_clients = 2"}), 4,
            Reason::config_bad_value, msg);
    };
    bad("enabled = maybe", "bad enabled 'maybe': use yes, no, true or false");
    bad("socket = run/ctl.sock", "socket 'run/ctl.sock' must be an absolute path");
    bad("socket = /" + std::string(107, 'x'), "a Unix socket's path holds at most 107");
    bad("mode = 0999", "bad mode '0999'");
    bad("mode = 4770", "bad mode '4770': a socket's mode is permission bits up to 0777");
    bad("mode = rw", "bad mode 'rw'");
    bad("group = a:b", "bad group 'a:b': give one group name or gid");
    bad("group = adm wheel", "bad group 'adm wheel'");
    bad("operators = alice bo:b", "bad operator 'bo:b': write a user name or uid, or @group");
    bad("operators = @", "bad operator '@'");
    bad("operators = @@ops", "bad operator '@@ops'");
    bad("operators = , ,", "operators ', ,' names no one");
    bad("max_head_bytes = 100",
        "bad max_head_bytes '100': give a whole number from 256 to 1048576");
    bad("max_head_bytes = 2000000", "bad max_head_bytes '2000000'");
    bad("max_body_bytes = 0", "bad max_body_bytes '0': give a whole number from 1 to 1048576");
    bad("max_requests = -1", "bad max_requests '-1': give a whole number from 1 to 1000000");
    bad("max_requests = 1000001", "bad max_requests '1000001'");
    bad("head_timeout = 0", "head_timeout '0' must be above 0");
    bad("head_timeout = 5", "head_timeout");
    bad("idle_timeout = soon", "idle_timeout");
    bad("send_timeout = 0ms", "send_timeout '0ms' must be above 0");
    bad("max_wait = 5x", "max_wait");
    bad("metrics_listen = localhost:9101", "bad metrics_listen 'localhost:9101': give a literal");
    bad("metrics_listen = 127.0.0.1", "bad metrics_listen '127.0.0.1'");
    bad("metrics_textfile = custos.prom", "bad metrics_textfile 'custos.prom': an absolute path");
    bad("metrics_textfile_interval = 500ms",
        "metrics_textfile_interval '500ms' must be 1s or more");
    bad("socket =", "key 'socket' has no value");
    // max_clients itself, with another key after it.
    expect_one(lines({"[control]", "max_clients = 0", "mode = 0600"}), 2, Reason::config_bad_value,
               "bad max_clients '0': give a whole number from 1 to 1024");
    expect_one(lines({"[control]", "max_clients = 1025"}), 2, Reason::config_bad_value,
               "bad max_clients '1025'");
    // A wait of 0 is allowed: actions then never wait.
    auto r = parse(lines({"[control]", "max_wait = 0"}));
    REQUIRE(r->ok);
    CHECK(r->cfg.control().max_wait == 0s);
}

TEST_CASE("[control] operators: 16 fit, a 17th is an error at the line") {
    std::string sixteen = "operators =";
    for (int i = 0; i < 16; ++i) {
        sixteen += " u" + std::to_string(i);
    }
    auto r = parse(lines({"[control]", sixteen}));
    INFO(dump(r->problems));
    REQUIRE(r->ok);
    REQUIRE(r->cfg.control().operators.size() == 16);
    CHECK(r->cfg.control().operators[0] == "u0");
    CHECK(r->cfg.control().operators[15] == "u15");
    expect_one(lines({"[service:a]", "exec = /bin/true", "[control]", sixteen + " @extra"}), 4,
               Reason::config_bad_value,
               "too many operators: at most 16 entries (put the people in a group and write "
               "@group)");
    static_assert(config::max_operators == 16);
}

TEST_CASE("[control] sections: one only; unknown keys get a hint; duplicates named") {
    expect_one(lines({"[control]", "mode = 0600", "[service:a]", "exec = /bin/true", "[control]",
                      "group = adm"}),
               5, Reason::config_syntax, "duplicate section [control] (first at line 1)");
    expect_one(lines({"[control]", "sockt = /tmp/x.sock"}), 2, Reason::config_unknown_key,
               "unknown key 'sockt' in [control] (did you mean 'socket'?)");
    expect_one(lines({"[control]", "operator = root"}), 2, Reason::config_unknown_key,
               "(did you mean 'operators'?)");
    expect_one(lines({"[control]", "mode = 0600", "mode = 0660"}), 3, Reason::config_syntax,
               "duplicate key 'mode' in [control] (first at line 2): keep one");
    expect_one(lines({"[control:x]"}), 1, Reason::config_syntax, "unknown section '[control:x]'");
    // A failed parse leaves the defaults.
    auto r = parse(lines({"[control]", "socket = /tmp/x.sock", "operators = a b", "bogus = 1"}));
    CHECK_FALSE(r->ok);
    CHECK(r->cfg.control().socket == custos::control::default_socket);
    check_control_defaults(r->cfg.control());
    CHECK_FALSE(r->cfg.has_control_section());
    CHECK(r->cfg.control_line_of(control_field::socket) == 0);
}

TEST_CASE("a config parsed again replaces its [control]") {
    config c;
    problem_list ps;
    REQUIRE(c.parse(lines({"[control]", "socket = /tmp/a.sock", "operators = a b c"}), ps));
    CHECK(c.control().socket == "/tmp/a.sock");
    CHECK(c.control().operators.size() == 3);
    REQUIRE(c.parse(lines({"[control]", "operators = z"}), ps));
    CHECK(c.control().socket == custos::control::default_socket);
    CHECK(strings(c.control().operators) == std::vector<std::string>{"z"});
    REQUIRE(c.parse(lines({"[custos]", "stop_timeout = 1s"}), ps));
    CHECK(c.control().operators.empty());
    CHECK_FALSE(c.has_control_section());
}
