// The table's one check: every problem reported, each with the entry it
// is about and the field at fault, and a valid table passes clean. Also the
// executable lookup (absolute paths and PATH search).
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <custos/error.hpp>
#include <custos/monitor.hpp>
#include <custos/service.hpp>
#include <custos/table.hpp>

#include "table/validate.hpp"

using custos::Error;
using custos::ReadyMode;
using custos::Reason;
using custos::ServiceSpec;
using custos::tbl::resolve_executable;
using spec_field = custos::ServiceField;
using namespace std::chrono_literals;

namespace doctest {
template <>
struct StringMaker<custos::Reason> {
    static String convert(custos::Reason r) {
        std::string_view n = custos::reason_id(r);
        return String(n.data(), static_cast<String::size_type>(n.size()));
    }
};
} // namespace doctest

namespace {

struct problem {
    std::uint32_t service;
    spec_field field;
    Reason reason;
    int sys_errno;
    std::string subject;
};

class collect final : public custos::TableProblemSink {
public:
    void report(const custos::TableProblem& p) noexcept override {
        const Error& e = p.error;
        CHECK(!e.resolution().empty());
        CHECK(p.kind == custos::TableKind::service);
        all.push_back(
            {p.index, p.service_field(), e.reason(), e.sys_errno(), std::string(e.subject())});
    }
    std::vector<problem> all;
};

// The table check's options, and the table's own capacity.
struct validate_options : custos::tbl::options {
    std::uint32_t max_services = 64;
};

const std::string_view prog[] = {"/bin/sh"};

ServiceSpec svc(std::string_view name) {
    ServiceSpec s;
    s.name = name;
    s.argv = prog;
    return s;
}

// Pure logic: no file system or user database lookups.
validate_options pure() {
    validate_options o;
    o.check_executables = false;
    o.resolve_users = false;
    return o;
}

std::vector<problem> validate(std::span<const ServiceSpec> t, const validate_options& o = pure()) {
    collect c;
    custos::Table table;
    table.runtime.max_services = o.max_services;
    table.services = t;
    const std::uint32_t n = custos::tbl::validate(table, o, &c);
    CHECK(n == c.all.size());
    CHECK(custos::tbl::validate(table, o, nullptr) == n); // the count does not need a sink
    return c.all;
}

// The first problem, or one that matches nothing when there was none (a
// failed check must not end the binary: the other tests still run).
problem first(const std::vector<problem>& p) {
    return p.empty() ? problem{UINT32_MAX - 1, spec_field::section, Reason::unknown, -1, "<none>"}
                     : p[0];
}

// Exactly one problem, about service `i`, field `f`, reason `r`.
#define CHECK_ONE(problems, i, f, r)                                                               \
    do {                                                                                           \
        const auto& p_ = (problems);                                                               \
        CHECK(p_.size() == 1);                                                                     \
        const problem q_ = first(p_);                                                              \
        CHECK(q_.service == (i));                                                                  \
        CHECK(q_.field == (f));                                                                    \
        CHECK(q_.reason == (r));                                                                   \
    } while (0)

} // namespace

TEST_CASE("a valid table has no problems, with real executable checks") {
    const std::string_view bare[] = {"sh", "-c", "exit 0"};
    const std::string_view env[] = {"A=1", "EMPTY="};
    const std::string_view b_deps[] = {"a"};
    const std::string_view c_deps[] = {"a", "b"};
    ServiceSpec t[] = {svc("a"), svc("b"), svc("c"), svc("Name.with_all-chars9")};
    t[1].argv = bare;
    t[1].env = env;
    t[1].cwd = "/";
    t[1].depends_on = b_deps;
    t[1].ready = ReadyMode::notify;
    t[1].watchdog = 3s;
    t[2].depends_on = c_deps;
    t[2].ready = ReadyMode::fd;
    t[2].ready_fd = 3;
    t[2].intensity_restarts = 5;
    t[2].intensity_window = 60s;
    t[2].backoff_multiplier_x100 = 100;
    t[2].backoff_jitter_percent = 100;
    t[3].stop_signal = SIGKILL;
    t[3].channel_fd = 3;
    validate_options o;
    o.resolve_users = false;
    auto p = validate(t, o);
    CHECK(p.empty());
    for (const auto& x : p) {
        CAPTURE(x.service);
        CAPTURE(x.subject);
        CHECK(false);
    }
    // The empty table is valid too.
    CHECK(validate(std::span<const ServiceSpec>{}).empty());
}

TEST_CASE("names: empty, too long, bad characters") {
    const std::string_view bad[] = {"",   "abcdefghijklmnopqrstuvwxyz012345", "a b", "a/b", "é",
                                    "a\n"};
    for (std::string_view n : bad) {
        CAPTURE(std::string(n));
        ServiceSpec t[] = {svc("ok"), svc(n)};
        auto p = validate(t);
        CHECK_ONE(p, 1u, spec_field::name, Reason::name_invalid);
        CHECK(first(p).subject == n);
    }
    ServiceSpec t[] = {svc("abcdefghijklmnopqrstuvwxyz01234")}; // 31: the longest allowed
    CHECK(validate(t).empty());
}

TEST_CASE("a duplicate name is reported once, at the later service") {
    ServiceSpec t[] = {svc("x"), svc("y"), svc("x")};
    auto p = validate(t);
    CHECK_ONE(p, 2u, spec_field::name, Reason::name_duplicate);
    CHECK(first(p).subject == "x");
}

TEST_CASE("an unknown dependency names the dependency") {
    const std::string_view deps[] = {"a", "nope"};
    ServiceSpec t[] = {svc("a"), svc("b")};
    t[1].depends_on = deps;
    auto p = validate(t);
    CHECK_ONE(p, 1u, spec_field::depends_on, Reason::dependency_unknown);
    CHECK(first(p).subject == "nope");
}

TEST_CASE("a self-dependency is a cycle spelled \"a -> a\", reported once") {
    const std::string_view deps[] = {"a"};
    ServiceSpec t[] = {svc("z"), svc("a")};
    t[1].depends_on = deps;
    auto p = validate(t);
    CHECK_ONE(p, 1u, spec_field::depends_on, Reason::dependency_cycle);
    CHECK(first(p).subject == "a -> a");
}

namespace {

// Splits "x -> y -> z -> x" into its names.
std::vector<std::string> cycle_names(const std::string& s) {
    std::vector<std::string> out;
    std::size_t at = 0;
    for (;;) {
        std::size_t arrow = s.find(" -> ", at);
        out.push_back(s.substr(at, arrow == std::string::npos ? std::string::npos : arrow - at));
        if (arrow == std::string::npos) {
            return out;
        }
        at = arrow + 4;
    }
}

} // namespace

TEST_CASE("a 3-cycle is reported once with the cycle spelled out") {
    const std::string_view a_deps[] = {"b"};
    const std::string_view b_deps[] = {"c"};
    const std::string_view c_deps[] = {"a"};
    const std::string_view d_deps[] = {"a"};
    SUBCASE("found from its first member") {
        ServiceSpec t[] = {svc("a"), svc("b"), svc("c"), svc("d")};
        t[0].depends_on = a_deps;
        t[1].depends_on = b_deps;
        t[2].depends_on = c_deps;
        t[3].depends_on = d_deps; // leads into the cycle, is not part of it
        auto p = validate(t);
        CHECK(p.size() == 1);
        if (p.size() != 1) {
            return;
        }
        CHECK(p[0].reason == Reason::dependency_cycle);
        CHECK(p[0].field == spec_field::depends_on);
        REQUIRE(p[0].service <= 2u);
        auto names = cycle_names(first(p).subject);
        CAPTURE(first(p).subject);
        REQUIRE(names.size() == 4);
        CHECK(names.front() == names.back());
        std::vector<std::string> members(names.begin(), names.end() - 1);
        std::sort(members.begin(), members.end());
        CHECK(members == std::vector<std::string>{"a", "b", "c"});
        // Each arrow is a real edge: the reported service is the one whose
        // dependency closes the cycle.
        CHECK(names[names.size() - 2] == std::string(t[p[0].service].name));
    }
    SUBCASE("found from outside it") {
        ServiceSpec t[] = {svc("d"), svc("a"), svc("b"), svc("c")};
        t[0].depends_on = d_deps;
        t[1].depends_on = a_deps;
        t[2].depends_on = b_deps;
        t[3].depends_on = c_deps;
        auto p = validate(t);
        REQUIRE(p.size() == 1);
        CHECK(p[0].reason == Reason::dependency_cycle);
        CHECK(first(p).subject == "a -> b -> c -> a");
        CHECK(p[0].service == 3u);
    }
}

TEST_CASE("a 2-cycle and two disjoint cycles: each reported once") {
    const std::string_view to_a[] = {"a"};
    const std::string_view to_b[] = {"b"};
    const std::string_view to_c[] = {"c"};
    const std::string_view to_d[] = {"d"};
    ServiceSpec t[] = {svc("a"), svc("b"), svc("c"), svc("d")};
    t[0].depends_on = to_b;
    t[1].depends_on = to_a;
    auto p = validate(std::span<const ServiceSpec>(t, 2));
    CHECK_ONE(p, 1u, spec_field::depends_on, Reason::dependency_cycle);
    CHECK(first(p).subject == "a -> b -> a");

    t[2].depends_on = to_d;
    t[3].depends_on = to_c;
    p = validate(t);
    CHECK(p.size() == 2);
    for (const auto& x : p) {
        CHECK(x.reason == Reason::dependency_cycle);
    }
    if (p.size() == 2) {
        CHECK(p[0].subject == "a -> b -> a");
        CHECK(p[1].subject == "c -> d -> c");
    }
}

TEST_CASE("executables: missing, not executable, a directory, a bare name in PATH") {
    validate_options o;
    o.resolve_users = false;

    const std::string_view missing[] = {"/nonexistent/x"};
    ServiceSpec t[] = {svc("a")};
    t[0].argv = missing;
    auto p = validate(t, o);
    CHECK_ONE(p, 0u, spec_field::argv, Reason::executable_missing);
    CHECK(first(p).sys_errno == ENOENT);
    CHECK(first(p).subject == "/nonexistent/x");

    // A regular file without any execute bit: EACCES, even for root.
    const char* dir = std::getenv("TMPDIR");
    std::string path =
        std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/custos-test-table-XXXXXX";
    int fd = ::mkstemp(path.data());
    REQUIRE(fd >= 0);
    ::close(fd);
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    const std::string_view noexec[] = {path};
    t[0].argv = noexec;
    p = validate(t, o);
    CHECK_ONE(p, 0u, spec_field::argv, Reason::executable_missing);
    CHECK(first(p).sys_errno == EACCES);
    // With an execute bit it is fine.
    REQUIRE(::chmod(path.c_str(), 0755) == 0);
    CHECK(validate(t, o).empty());
    ::unlink(path.c_str());

    const std::string_view directory[] = {"/"};
    t[0].argv = directory;
    p = validate(t, o);
    CHECK_ONE(p, 0u, spec_field::argv, Reason::executable_missing);
    CHECK(first(p).sys_errno != 0);

    const std::string_view bare[] = {"sh"};
    t[0].argv = bare;
    CHECK(validate(t, o).empty());

    const std::string_view bare_missing[] = {"custos-no-such-program-xyz"};
    t[0].argv = bare_missing;
    p = validate(t, o);
    CHECK_ONE(p, 0u, spec_field::argv, Reason::executable_missing);
    CHECK(first(p).sys_errno == ENOENT);

    t[0].argv = {};
    p = validate(t, o);
    CHECK_ONE(p, 0u, spec_field::argv, Reason::invalid_argument);
}

TEST_CASE("resolve_executable: a PATH entry holding the name without execute permission") {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/custos-test-path-XXXXXX";
    REQUIRE(::mkdtemp(dir.data()) != nullptr);
    const std::string tool = dir + "/custos-tool";
    int fd = ::open(tool.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
    const char* old = std::getenv("PATH");
    const std::string saved = old != nullptr ? old : "";
    // An empty entry and a missing directory first: skipped, not errors.
    const std::string path = "::/nonexistent-custos-dir:" + dir;
    REQUIRE(::setenv("PATH", path.c_str(), 1) == 0);

    char out[512];
    auto r = resolve_executable("custos-tool", out, sizeof out);
    CHECK(!r.has_value());
    if (!r.has_value()) {
        CHECK(r.error().reason() == Reason::executable_missing);
        CHECK(r.error().sys_errno() == EACCES); // found but unusable: not "missing"
    }
    REQUIRE(::chmod(tool.c_str(), 0755) == 0);
    r = resolve_executable("custos-tool", out, sizeof out);
    CHECK(r.has_value());
    CHECK(std::string(out) == tool);

    if (old != nullptr) {
        ::setenv("PATH", saved.c_str(), 1);
    } else {
        ::unsetenv("PATH");
    }
    ::unlink(tool.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("resolve_executable: the path it found, and a buffer too small") {
    char out[512];
    REQUIRE(resolve_executable("sh", out, sizeof out).has_value());
    std::string_view found(out);
    CHECK(found.size() > 3);
    CHECK(found.front() == '/');
    CHECK(found.substr(found.size() - 3) == "/sh");
    CHECK(::access(out, X_OK) == 0);

    REQUIRE(resolve_executable("/bin/sh", out, sizeof out).has_value());
    CHECK(std::string_view(out) == "/bin/sh");

    auto r = resolve_executable("/bin/sh", out, 4);
    REQUIRE(!r.has_value());
    CHECK(r.error().reason() == Reason::executable_missing);
    CHECK(r.error().sys_errno() == ENAMETOOLONG);

    auto e = resolve_executable("", out, sizeof out);
    REQUIRE(!e.has_value());
    CHECK(e.error().reason() == Reason::executable_missing);
}

TEST_CASE("field values: watchdog, readiness fd, backoff, intensity, signals, durations") {
    struct row {
        const char* what;
        void (*set)(ServiceSpec&);
        spec_field field;
    };
    const row rows[] = {
        {"watchdog without notify", [](ServiceSpec& s) { s.watchdog = 3s; }, spec_field::watchdog},
        {"watchdog with fd readiness",
         [](ServiceSpec& s) {
             s.ready = ReadyMode::fd;
             s.ready_fd = 3;
             s.watchdog = 3s;
         },
         spec_field::watchdog},
        {"fd readiness on fd 2",
         [](ServiceSpec& s) {
             s.ready = ReadyMode::fd;
             s.ready_fd = 2;
         },
         spec_field::ready},
        {"fd readiness without a fd", [](ServiceSpec& s) { s.ready = ReadyMode::fd; },
         spec_field::ready},
        {"channel on fd 2", [](ServiceSpec& s) { s.channel_fd = 2; }, spec_field::channel},
        {"channel above 1023", [](ServiceSpec& s) { s.channel_fd = 1024; }, spec_field::channel},
        {"channel on the readiness fd",
         [](ServiceSpec& s) {
             s.ready = ReadyMode::fd;
             s.ready_fd = 4;
             s.channel_fd = 4;
         },
         spec_field::channel},
        {"multiplier below x1", [](ServiceSpec& s) { s.backoff_multiplier_x100 = 50; },
         spec_field::backoff_multiplier},
        {"multiplier above x100", [](ServiceSpec& s) { s.backoff_multiplier_x100 = 10001; },
         spec_field::backoff_multiplier},
        {"jitter above 100 %", [](ServiceSpec& s) { s.backoff_jitter_percent = 101; },
         spec_field::backoff_jitter},
        {"intensity N without T", [](ServiceSpec& s) { s.intensity_restarts = 3; },
         spec_field::intensity},
        {"intensity T without N", [](ServiceSpec& s) { s.intensity_window = 10s; },
         spec_field::intensity},
        {"backoff_max below backoff_initial",
         [](ServiceSpec& s) {
             s.backoff_initial = 10s;
             s.backoff_max = 5s;
         },
         spec_field::backoff_max},
        {"negative start_delay", [](ServiceSpec& s) { s.start_delay = -1ms; },
         spec_field::start_delay},
        {"negative stop_timeout", [](ServiceSpec& s) { s.stop_timeout = -1ms; },
         spec_field::stop_timeout},
        {"negative ready_timeout", [](ServiceSpec& s) { s.ready_timeout = -1ms; },
         spec_field::ready_timeout},
        {"stop signal 0", [](ServiceSpec& s) { s.stop_signal = 0; }, spec_field::stop_signal},
        {"stop signal SIGSTOP", [](ServiceSpec& s) { s.stop_signal = SIGSTOP; },
         spec_field::stop_signal},
        {"relative cwd", [](ServiceSpec& s) { s.cwd = "var/run"; }, spec_field::cwd},
        {"intensity N above 1024",
         [](ServiceSpec& s) {
             s.intensity_restarts = 1025;
             s.intensity_window = 10s;
         },
         spec_field::intensity},
        {"negative stable_after", [](ServiceSpec& s) { s.stable_after = -1ms; },
         spec_field::stable_after},
        {"negative watchdog", [](ServiceSpec& s) { s.watchdog = -1ms; }, spec_field::watchdog},
    };
    for (const row& r : rows) {
        const std::string what = r.what;
        CAPTURE(what);
        ServiceSpec t[] = {svc("ok"), svc("bad")};
        r.set(t[1]);
        auto p = validate(t);
        CHECK_ONE(p, 1u, r.field, Reason::invalid_argument);
        // The subject names the service, or the bad value itself (cwd).
        CHECK((first(p).subject == "bad" || first(p).subject == t[1].cwd));
    }
    const std::string_view env[] = {"NOEQUALS"};
    ServiceSpec t[] = {svc("a")};
    t[0].env = env;
    auto p = validate(t);
    CHECK_ONE(p, 0u, spec_field::env, Reason::invalid_argument);
}

TEST_CASE("an unknown user or group") {
    validate_options o = pure();
    o.resolve_users = true;
    ServiceSpec t[] = {svc("a")};
    t[0].user = "custos-no-such-user";
    t[0].group = "custos-no-such-group";
    auto p = validate(t, o);
    CHECK(p.size() == 2);
    if (p.size() != 2) {
        return;
    }
    CHECK(p[0].field == spec_field::user);
    CHECK(p[0].reason == Reason::user_unknown);
    CHECK(first(p).subject == "custos-no-such-user");
    CHECK(p[1].field == spec_field::group);
    CHECK(p[1].reason == Reason::group_unknown);
}

TEST_CASE("users and groups come from the files given, not NSS") {
    char dir[] = "/tmp/custos-table-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string passwd = std::string(dir) + "/passwd";
    const std::string group = std::string(dir) + "/group";
    const std::string missing = std::string(dir) + "/none";
    auto write_file = [](const std::string& path, std::string_view text) {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        const ssize_t n = ::write(fd, text.data(), text.size());
        CHECK(n == static_cast<ssize_t>(text.size()));
        ::close(fd);
    };
    write_file(passwd, "app:x:1000:1000::/:/bin/sh\n");
    write_file(group, "gpio:x:997:app\n");
    validate_options o = pure();
    o.resolve_users = true;
    o.passwd_path = passwd.c_str();
    o.group_path = group.c_str();
    ServiceSpec t[] = {svc("a"), svc("b"), svc("c")};
    t[0].user = "app"; // a name only the test's file has
    t[0].group = "gpio";
    t[1].user = "1000";  // numeric: the uid's line
    t[1].group = "4242"; // numeric: taken as it is
    t[2].user = "root";  // in the machine's /etc/passwd, not in the file given
    t[2].group = "app";
    auto p = validate(t, o);
    REQUIRE(p.size() == 2);
    CHECK(p[0].service == 2u);
    CHECK(p[0].field == spec_field::user);
    CHECK(p[0].reason == Reason::user_unknown);
    CHECK(p[0].subject == "root");
    CHECK(p[1].service == 2u);
    CHECK(p[1].field == spec_field::group);
    CHECK(p[1].reason == Reason::group_unknown);

    // No file: UserUnknown with the errno, for the operator.
    o.passwd_path = missing.c_str();
    ServiceSpec one[] = {svc("a")};
    one[0].user = "app";
    p = validate(one, o);
    CHECK_ONE(p, 0u, spec_field::user, Reason::user_unknown);
    CHECK(first(p).sys_errno == ENOENT);
    ::unlink(passwd.c_str());
    ::unlink(group.c_str());
    ::rmdir(dir);
}

TEST_CASE("capacity: more services than max_services is one table-level problem") {
    ServiceSpec t[] = {svc("a"), svc("b"), svc("c")};
    validate_options o = pure();
    o.max_services = 2;
    auto p = validate(t, o);
    CHECK_ONE(p, UINT32_MAX, spec_field::section, Reason::capacity_exceeded);
    o.max_services = 3;
    CHECK(validate(t, o).empty());
}

TEST_CASE("several problems in one table are all reported") {
    const std::string_view b_deps[] = {"ghost"};
    const std::string_view e_deps[] = {"e"};
    ServiceSpec t[] = {svc("a b"), svc("b"), svc("b"), svc("d"), svc("e")};
    t[1].depends_on = b_deps;
    t[3].watchdog = 3s;
    t[3].backoff_jitter_percent = 200;
    t[4].depends_on = e_deps;
    auto p = validate(t);
    CHECK(p.size() == 6);
    struct want {
        std::uint32_t service;
        spec_field field;
        Reason reason;
    };
    const want w[] = {
        {0, spec_field::name, Reason::name_invalid},
        {1, spec_field::depends_on, Reason::dependency_unknown},
        {2, spec_field::name, Reason::name_duplicate},
        {3, spec_field::backoff_jitter, Reason::invalid_argument},
        {3, spec_field::watchdog, Reason::invalid_argument},
        {4, spec_field::depends_on, Reason::dependency_cycle},
    };
    for (const want& x : w) {
        CAPTURE(x.service);
        CHECK(std::count_if(p.begin(), p.end(), [&](const problem& q) {
                  return q.service == x.service && q.field == x.field && q.reason == x.reason;
              }) == 1);
    }
}

// The whole table through the one validator and its one sink: services and
// probes, each problem with its kind, entry name, field and words.
TEST_CASE("one validator: service and probe problems of one table, in order, with their names") {
    struct seen {
        custos::TableKind kind;
        std::uint32_t index;
        std::string name;
        std::string field;
        Reason reason;
        std::string words;
    };
    struct all_sink final : custos::TableProblemSink {
        std::vector<seen> got;
        void report(const custos::TableProblem& p) noexcept override {
            char text[512];
            p.error.format(text, sizeof text);
            std::string_view f = p.kind == custos::TableKind::probe
                                     ? custos::field_name(p.probe_field())
                                     : custos::field_name(p.service_field());
            got.push_back(
                {p.kind, p.index, std::string(p.name), std::string(f), p.error.reason(), text});
        }
    };
    const std::string_view deps[] = {"broker"};
    const std::string_view members[] = {"nowhere"};
    ServiceSpec s[] = {svc("web"), svc("api")};
    s[0].depends_on = deps; // a probe: fine
    s[1].ready = ReadyMode::probe;
    s[1].ready_probe = "ghost";
    s[1].backoff_jitter_percent = 101;
    custos::ProbeSpec p[3];
    p[0].name = "broker";
    p[0].kind = custos::ProbeKind::tcp;
    p[0].target = "localhost"; // no port
    p[1].name = "api";         // a service's name
    p[1].kind = custos::ProbeKind::all;
    p[1].members = members;
    p[2].name = "disk";
    p[2].kind = custos::ProbeKind::file;
    p[2].target = "/data";
    p[2].interval = 0s;
    custos::Table t;
    t.services = s;
    t.probes = p;
    all_sink sink;
    custos::tbl::options o;
    o.check_executables = false;
    o.resolve_users = false;
    const std::uint32_t n = custos::tbl::validate(t, o, &sink);
    REQUIRE(n == 6);
    REQUIRE(sink.got.size() == 6);
    using K = custos::TableKind;
    const seen want[] = {
        {K::service, 1, "api", "backoff_jitter", Reason::invalid_argument, ""},
        {K::service, 1, "api", "ready", Reason::probe_unknown, "ghost"},
        {K::probe, 0, "broker", "target", Reason::invalid_argument, "missing port"},
        {K::probe, 1, "api", "name", Reason::name_duplicate, "unique among services"},
        {K::probe, 1, "api", "target", Reason::probe_unknown, "nowhere"},
        {K::probe, 2, "disk", "interval", Reason::invalid_argument, "between 1 ms and 7 days"},
    };
    for (std::size_t i = 0; i < std::size(want); ++i) {
        CAPTURE(i);
        CHECK(sink.got[i].kind == want[i].kind);
        CHECK(sink.got[i].index == want[i].index);
        CHECK(sink.got[i].name == want[i].name);
        CHECK(sink.got[i].field == want[i].field);
        CHECK(sink.got[i].reason == want[i].reason);
        CHECK(sink.got[i].words.find(want[i].words) != std::string::npos);
    }
    // The public entry point is the same check (with executables looked
    // up: /bin/sh exists) and Runtime::init() stops at its first problem.
    CHECK(custos::validate_table(t, nullptr) == n);
}

namespace {

custos::Result<void> idle_monitor(custos::MonitorContext&, void*) {
    return {};
}

} // namespace

TEST_CASE("monitors: names unique among all kinds, run, durations, deadline, stack, deps") {
    struct seen {
        std::uint32_t index;
        std::string field;
        Reason reason;
        std::string words;
    };
    struct monitor_sink final : custos::TableProblemSink {
        std::vector<seen> got;
        void report(const custos::TableProblem& p) noexcept override {
            REQUIRE(p.kind == custos::TableKind::monitor);
            char text[512];
            p.error.format(text, sizeof text);
            got.push_back({p.index, std::string(custos::field_name(p.monitor_field())),
                           p.error.reason(), text});
        }
    };
    ServiceSpec s[] = {svc("web")};
    custos::ProbeSpec p[1];
    p[0].name = "disk";
    p[0].kind = custos::ProbeKind::file;
    p[0].target = "/";
    const std::string_view good_deps[] = {"web", "disk"};
    const std::string_view bad_deps[] = {"uploader", "nowhere"};
    custos::MonitorSpec m[6];
    for (auto& x : m) {
        x.run = idle_monitor;
    }
    m[0].name = "uploader";
    m[0].depends_on = good_deps;
    m[0].deadline = 5s;
    m[0].stack_size = 128 * 1024;
    m[1].name = "web"; // a service's name
    m[2].name = "poller";
    m[2].run = nullptr;
    m[2].backoff_max = 1s; // below backoff_initial (5 s)
    m[3].name = "watcher";
    m[3].deadline = 10ms;
    m[3].stack_size = 4096;
    m[4].name = "uploader"; // a duplicate
    m[4].depends_on = bad_deps;
    m[5].name = "bad name";
    m[5].backoff_jitter_percent = 200;
    custos::Table t;
    t.services = s;
    t.probes = p;
    t.monitors = m;
    monitor_sink sink;
    custos::tbl::options o;
    o.check_executables = false;
    o.resolve_users = false;
    const std::uint32_t n = custos::tbl::validate(t, o, &sink);
    const seen want[] = {
        {1, "name", Reason::name_duplicate, "unique among services, probes and monitors"},
        {2, "run", Reason::invalid_argument, "run function"},
        {2, "backoff_max", Reason::invalid_argument, "at least backoff_initial"},
        {3, "deadline", Reason::invalid_argument, "at least 100 ms"},
        {3, "stack_size", Reason::invalid_argument, "64 KiB"},
        {4, "name", Reason::name_duplicate, ""},
        {4, "depends_on", Reason::dependency_unknown, "not on another monitor"},
        {4, "depends_on", Reason::dependency_unknown, "nowhere"},
        {5, "name", Reason::name_invalid, ""},
        {5, "backoff_jitter", Reason::invalid_argument, ""},
    };
    REQUIRE(n == std::size(want));
    REQUIRE(sink.got.size() == std::size(want));
    for (std::size_t i = 0; i < std::size(want); ++i) {
        CAPTURE(i);
        CHECK(sink.got[i].index == want[i].index);
        CHECK(sink.got[i].field == want[i].field);
        CHECK(sink.got[i].reason == want[i].reason);
        CHECK(sink.got[i].words.find(want[i].words) != std::string::npos);
    }

    // Capacity: one problem for the whole span.
    custos::Table big;
    big.monitors = m;
    big.runtime.max_monitors = 2;
    monitor_sink cap;
    CHECK(custos::tbl::validate(big, o, &cap) == 1);
    REQUIRE(cap.got.size() == 1);
    CHECK(cap.got[0].index == UINT32_MAX);
    CHECK(cap.got[0].reason == Reason::capacity_exceeded);
    big.runtime.max_monitors = 65; // beyond what the runtime can hold at all
    custos::MonitorSpec one;
    one.name = "one";
    one.run = idle_monitor;
    big.monitors = std::span<const custos::MonitorSpec>(&one, 1);
    monitor_sink limit;
    CHECK(custos::tbl::validate(big, o, &limit) == 1);
    REQUIRE(limit.got.size() == 1);
    CHECK(limit.got[0].words.find("at most 64") != std::string::npos);
}
