// custosd: the config-driven supervision daemon.
//
//   custosd [--config FILE] [--check]
//
// Reads the config (default /etc/custos/custosd.ini), validates the whole
// supervision table, and either stops there (--check) or runs it until
// SIGTERM/SIGINT, then stops every service in reverse dependency order
// within the [custos] stop_timeout and exits 0. Every problem in the config
// is printed as FILE:LINE: message, and nothing is started.
//
// Until the event log exists, every state transition is one line on stderr:
//   2026-11-22T01:02:03.456Z netd: starting -> ready (ReadyNotified) pid 812
// and so is every probe transition, a probe going down followed by what to do:
//   2026-11-22T01:02:04.000Z probe broker: unknown -> ready (ProbePassed)
//   2026-11-22T01:07:04.000Z probe broker: ready -> down (ProbeConnectRefused:
//     connect 127.0.0.1:1883: Connection refused)      [one line]
//     resolution: start the broker or fix its tcp = in the config
//
// Exit codes: 0 ok; 1 runtime failure; 2 bad usage or bad config.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>

#include "custosd/config.hpp"
#include "io/reactor.hpp"
#include "probe/validate.hpp"
#include "supervise/table.hpp"

namespace {

constexpr const char* default_config = "/etc/custos/custosd.ini";

void usage(std::FILE* to) {
    std::fprintf(to,
                 "usage: custosd [--config FILE] [--check] [--platform] [--help]\n"
                 "  --config FILE  the supervision table (default %s)\n"
                 "  --check        validate the config and exit: 0 valid, 2 invalid\n"
                 "  --platform     print the I/O backend custos chose and why, then exit\n"
                 "Runs until SIGTERM or SIGINT, then stops every service and exits 0.\n"
                 "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.\n"
                 "Environment: CUSTOS_BACKEND=uring|epoll|auto forces the I/O backend;\n"
                 "CUSTOS_SPAWN=clone|vfork|vfork-nopidfd forces how processes are started.\n"
                 "\n"
                 "Config keys:\n"
                 "  [custos]         stop_timeout, notify_dir, max_services, max_probes,\n"
                 "                   max_probe_checks\n"
                 "  [service:NAME]   exec, env (repeatable), cwd, user, group,\n"
                 "                   restart = never|always|on-failure,\n"
                 "                   backoff_initial, backoff_max, backoff_multiplier,\n"
                 "                   backoff_jitter, stable_after, max_restarts,\n"
                 "                   restart_limit = N/DURATION, start_delay,\n"
                 "                   depends_on = NAME... (services and probes),\n"
                 "                   ready = started|notify|fd:N|probe:NAME, ready_timeout,\n"
                 "                   watchdog, stop_signal, stop_timeout,\n"
                 "                   liveness = PROBE (restart when it goes down),\n"
                 "                   on_dependency_down = ignore|stop|restart\n"
                 "  [probe:NAME]     one kind: tcp = HOST:PORT, http = http://HOST[:PORT]/PATH\n"
                 "                   (no TLS), unix = /path, exec = COMMAND, file = /path,\n"
                 "                   all = NAME... (every member passes);\n"
                 "                   timeout (10s), startup_initial (2s), startup_max (60s),\n"
                 "                   startup_multiplier (2), startup_tries (10), interval (60s),\n"
                 "                   success_threshold (1), failure_threshold (1),\n"
                 "                   reason, resolution (text for the operator);\n"
                 "                   http: expect_status = CODE... (default 200-399);\n"
                 "                   file: exists = yes, owner = user[:group]|:group,\n"
                 "                   mode = 0755 (bits that must be set), writable = yes|no\n"
                 "  Durations take ms, s, m or h: 1500ms, 30s, 5m, 1h.\n",
                 default_config);
}

// Maps the table validator's (service, field) problems to config lines.
struct line_sink final : custos::sup::problem_sink {
    const custos::cfg::config& cfg;
    const char* file;
    unsigned count = 0;

    line_sink(const custos::cfg::config& c, const char* f) : cfg(c), file(f) {}

    void report(std::uint32_t service, custos::sup::spec_field field,
                const custos::Error& e) noexcept override {
        ++count;
        char text[512];
        e.format(text, sizeof text);
        unsigned line = service == UINT32_MAX ? 0 : cfg.line_of(service, field);
        if (service != UINT32_MAX && service < cfg.services().size()) {
            std::string_view n = cfg.services()[service].name;
            std::fprintf(stderr, "%s:%u: [service:%.*s] %s\n", file, line,
                         static_cast<int>(n.size()), n.data(), text);
        } else {
            std::fprintf(stderr, "%s:%u: %s\n", file, line, text);
        }
    }
};

// Maps probe::validate_probes()'s (probe, field) problems to config lines.
struct probe_line_sink final : custos::probe::probe_problem_sink {
    const custos::cfg::config& cfg;
    const char* file;
    unsigned count = 0;

    probe_line_sink(const custos::cfg::config& c, const char* f) : cfg(c), file(f) {}

    void report(std::uint32_t probe, custos::probe::probe_field field,
                const custos::Error& e) noexcept override {
        ++count;
        char text[512];
        e.format(text, sizeof text);
        unsigned line = probe == UINT32_MAX ? 0 : cfg.probe_line_of(probe, field);
        if (probe != UINT32_MAX && probe < cfg.probes().size()) {
            std::string_view n = cfg.probes()[probe].name;
            std::fprintf(stderr, "%s:%u: [probe:%.*s] %s\n", file, line, static_cast<int>(n.size()),
                         n.data(), text);
        } else {
            std::fprintf(stderr, "%s:%u: %s\n", file, line, text);
        }
    }
};

// "2026-11-22T01:02:03.456Z", the wall clock in UTC.
struct utc_stamp {
    char text[64] = ""; // room for any tm the compiler can imagine

    utc_stamp() noexcept {
        timespec now{};
        clock_gettime(CLOCK_REALTIME, &now);
        tm utc{};
        gmtime_r(&now.tv_sec, &utc);
        std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                      utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                      now.tv_nsec / 1'000'000);
    }
};

void log_probe_transition(const custos::ProbeTransition& t, void*) noexcept {
    utc_stamp at;
    std::string_view from = custos::probe_state_name(t.from);
    std::string_view to = custos::probe_state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    char detail[256] = "";
    // The check may have spelt the errno out in its message already.
    const char* err = t.sys_errno != 0 ? std::strerror(t.sys_errno) : nullptr;
    if (err != nullptr && t.message.find(err) != std::string_view::npos) {
        err = nullptr;
    }
    // Truncated to fit (the return values say by how much; a log line
    // need not be whole).
    int n = 0;
    if (!t.message.empty() && err != nullptr) {
        n = std::snprintf(detail, sizeof detail, ": %.*s: %.80s",
                          static_cast<int>(t.message.size()), t.message.data(), err);
    } else if (!t.message.empty()) {
        n = std::snprintf(detail, sizeof detail, ": %.*s", static_cast<int>(t.message.size()),
                          t.message.data());
    } else if (err != nullptr) {
        n = std::snprintf(detail, sizeof detail, ": %.80s", err);
    }
    (void)n;
    std::fprintf(stderr, "%s probe %.*s: %.*s -> %.*s (%.*s%s)\n", at.text,
                 static_cast<int>(t.name.size()), t.name.data(), static_cast<int>(from.size()),
                 from.data(), static_cast<int>(to.size()), to.data(), static_cast<int>(why.size()),
                 why.data(), detail);
    if (t.to == custos::ProbeState::down && !t.resolution.empty()) {
        std::fprintf(stderr, "  resolution: %.*s\n", static_cast<int>(t.resolution.size()),
                     t.resolution.data());
    }
}

void log_transition(const custos::Transition& t, void*) noexcept {
    utc_stamp at;
    char extra[256] = "";
    std::size_t n = 0;
    auto add = [&](const char* fmt, auto... args) {
        if (n < sizeof extra) {
            int w = std::snprintf(extra + n, sizeof extra - n, fmt, args...);
            if (w > 0) {
                n += static_cast<std::size_t>(w);
            }
        }
    };
    if (t.pid != 0) {
        add(" pid %d", t.pid);
    }
    if (t.exit.pid != 0) {
        if (t.exit.signal != 0) {
            add(" killed by signal %d (%s)%s", t.exit.signal, strsignal(t.exit.signal),
                t.exit.core_dumped ? " core dumped" : "");
        } else {
            add(" exit %d", t.exit.code);
        }
    }
    if (t.to == custos::ServiceState::backoff) {
        add(" restart %u in %lld ms", t.restarts, static_cast<long long>(t.delay.count()));
    }
    if (t.sys_errno != 0) {
        add(" errno %d (%s)", t.sys_errno, std::strerror(t.sys_errno));
    }
    if (!t.detail.empty()) {
        add(": %.*s", static_cast<int>(t.detail.size()), t.detail.data());
    }
    std::string_view from = custos::state_name(t.from);
    std::string_view to = custos::state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    std::fprintf(stderr, "%s %.*s: %.*s -> %.*s (%.*s)%s\n", at.text,
                 static_cast<int>(t.name.size()), t.name.data(), static_cast<int>(from.size()),
                 from.data(), static_cast<int>(to.size()), to.data(), static_cast<int>(why.size()),
                 why.data(), extra);
    // Failures get the operator's next step on its own line.
    if (t.to == custos::ServiceState::failed) {
        custos::Error e(t.reason, t.sys_errno, t.name);
        std::string_view fix = e.resolution();
        std::fprintf(stderr, "  resolution: %.*s\n", static_cast<int>(fix.size()), fix.data());
    }
}

int report_platform() {
    static custos::io::reactor r;
    if (auto res = r.init(); !res) {
        char buf[512];
        res.error().format(buf, sizeof buf);
        std::fprintf(stderr, "custosd: %s\n", buf);
        return res.error().reason() == custos::Reason::backend_unknown ? 2 : 1;
    }
    std::printf("custosd: I/O backend %s\n", r.backend_reason());
    std::printf("custosd: process exits: %s\n",
                r.native_waitid() ? "io_uring waitid" : "pidfd poll + waitid");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const char* path = default_config;
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (std::strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
        } else if (std::strcmp(argv[i], "--check") == 0) {
            check_only = true;
        } else if (std::strcmp(argv[i], "--platform") == 0) {
            return report_platform();
        } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "custosd: unknown or incomplete argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    static custos::cfg::config cfg;
    static custos::cfg::problem_list problems;
    if (!cfg.load(path, problems)) {
        for (const custos::cfg::problem& p : problems) {
            char line[512];
            custos::cfg::format_problem(path, p, line, sizeof line);
            std::fprintf(stderr, "%s\n", line);
        }
        if (problems.dropped() != 0) {
            std::fprintf(stderr, "%s: %zu more problems not shown\n", path, problems.dropped());
        }
        return 2;
    }

    // The whole table, before anything starts: every problem, with its line.
    line_sink sink(cfg, path);
    custos::sup::validate_options vo;
    vo.max_services = cfg.runtime().max_services;
    vo.probes = cfg.probes();
    custos::sup::validate_table(cfg.services(), vo, &sink);
    probe_line_sink probe_sink(cfg, path);
    custos::probe::probe_validate_options po;
    po.max_probes = cfg.runtime().max_probes;
    po.max_checks = cfg.runtime().max_probe_checks;
    custos::probe::validate_probes(cfg.probes(), cfg.services(), po, &probe_sink);
    sink.count += probe_sink.count;
    if (cfg.runtime().notify_dir.empty()) {
        for (std::uint32_t i = 0; i < cfg.services().size(); ++i) {
            const custos::ServiceSpec& s = cfg.services()[i];
            if (s.ready == custos::ReadyMode::notify || s.watchdog.count() > 0) {
                const bool notify = s.ready == custos::ReadyMode::notify;
                std::fprintf(stderr, "%s:%u: %s needs notify_dir = DIR in [custos]\n", path,
                             cfg.line_of(i, notify ? custos::sup::spec_field::ready
                                                   : custos::sup::spec_field::watchdog),
                             notify ? "ready = notify" : "watchdog");
                ++sink.count;
            }
        }
    }
    if (sink.count != 0) {
        return 2;
    }
    if (check_only) {
        std::printf("%s: ok, %zu services, %zu probes\n", path, cfg.services().size(),
                    cfg.probes().size());
        return 0;
    }

    // A relative notify_dir is taken from the working directory, made
    // absolute here: services may chdir, and NOTIFY_SOCKET must still work.
    custos::RuntimeConfig rc = cfg.runtime();
    static char notify_path[512];
    if (!rc.notify_dir.empty() && rc.notify_dir[0] != '/' && rc.notify_dir[0] != '@') {
        char cwd[256];
        if (getcwd(cwd, sizeof cwd) == nullptr) {
            std::fprintf(stderr, "custosd: getcwd: %s\n", std::strerror(errno));
            return 1;
        }
        int n = std::snprintf(notify_path, sizeof notify_path, "%s/%.*s", cwd,
                              static_cast<int>(rc.notify_dir.size()), rc.notify_dir.data());
        if (n < 0 || static_cast<std::size_t>(n) >= sizeof notify_path) {
            std::fprintf(stderr, "custosd: notify_dir path too long\n");
            return 2;
        }
        rc.notify_dir = notify_path;
    }

    static custos::Runtime rt;
    if (auto r = rt.init(rc, cfg.services(), cfg.probes()); !r) {
        char buf[512];
        r.error().format(buf, sizeof buf);
        std::fprintf(stderr, "custosd: %s\n", buf);
        return r.error().reason() == custos::Reason::backend_unknown ? 2 : 1;
    }
    rt.set_transition_hook(&log_transition, nullptr);
    rt.set_probe_hook(&log_probe_transition, nullptr);
    std::fprintf(stderr, "custosd: %s: %u services, %u probes; %s\n", path, rt.service_count(),
                 rt.probe_count(), rt.backend_reason());
    if (cfg.services().empty()) {
        std::fprintf(stderr, "custosd: warning: %s declares no services\n", path);
    }
    if (auto r = rt.start(); !r) {
        char buf[512];
        r.error().format(buf, sizeof buf);
        std::fprintf(stderr, "custosd: %s\n", buf);
        return 1;
    }
    rt.run();
    custos::RuntimeStats st = rt.stats();
    std::fprintf(stderr,
                 "custosd: stopped; spawn: %s; exits: %s; %llu spawns, %llu exits, %llu orphans "
                 "reaped, %llu notify messages (%llu dropped), %llu probe checks (%llu failed), "
                 "%llu liveness restarts\n",
                 rt.spawn_method_name(), rt.exit_watch_name(),
                 static_cast<unsigned long long>(st.spawns),
                 static_cast<unsigned long long>(st.exits),
                 static_cast<unsigned long long>(st.orphans_reaped),
                 static_cast<unsigned long long>(st.notify_received),
                 static_cast<unsigned long long>(st.notify_dropped),
                 static_cast<unsigned long long>(st.probe_checks),
                 static_cast<unsigned long long>(st.probe_failures),
                 static_cast<unsigned long long>(st.liveness_restarts));
    return 0;
}
