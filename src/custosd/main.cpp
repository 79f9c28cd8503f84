// custosd: the config-driven supervision daemon.
//
//   custosd [--config FILE] [--check [FILE]] [--notify-fd N]
//
// Reads the config (default /etc/custos/custosd.ini), validates the whole
// supervision table, and either stops there (--check) or runs it until
// SIGTERM/SIGINT, then stops every service in reverse dependency order
// within the [custos] stop_timeout and exits 0. Every problem in the config
// is printed as FILE:LINE: message, and nothing is started. Config text in
// messages has its control bytes escaped (\x1b): a terminal shows it, never
// obeys it.
//
// Signals (the Runtime's handle_signals, runtime.hpp): SIGTERM and SIGINT
// stop in order; SIGHUP reloads; SIGUSR1, SIGUSR2 and SIGALRM are logged and
// ignored; SIGPIPE is ignored, so a log reader that goes away costs the log
// lines, not the supervision. Fatal signals (SIGSEGV, SIGBUS, SIGILL,
// SIGFPE, SIGABRT) keep their default action.
//
// Descriptors 0, 1 and 2 are made valid (/dev/null) before anything else is
// opened: started with one closed, the first descriptor custos opens would
// take its number and receive the log.
//
// Until the event log exists, every state transition is one line on stderr:
//   2026-11-22T01:02:03.456Z netd: starting -> ready (ReadyNotified) pid 812
// and so is every watchdog event (WatchdogOpened, PreviousBoot*, starving,
// fed again, the hold, the close), followed by what to do when the board
// resets, was reset or runs unwatched:
//   2026-11-22T01:02:03.456Z watchdog off -> booting (WatchdogOpened): ...
//   2026-11-22T01:02:03.456Z watchdog off (PreviousBootRestarted): ...
//     resolution: ...
// and so is every probe transition, a probe going down followed by what to do:
//   2026-11-22T01:02:04.000Z probe broker: unknown -> ready (ProbePassed)
//   2026-11-22T01:07:04.000Z probe broker: ready -> down (ProbeConnectRefused:
//     connect 127.0.0.1:1883: Connection refused)      [one line]
//     resolution: start the broker or fix its tcp = in the config
//
// The control plane (custosctl's socket, control.hpp) is on by default: with
// no [control] section custosd serves /run/custos/control.sock when it can
// make /run/custos and no other custosd answers there (else a note, and it
// runs without); [control] enabled = no turns it off; a [control] section
// makes every failure (a missing directory, an unknown group or operator,
// the socket in use) a config error at its line.
//
// Exit codes: 0 ok; 1 runtime failure; 2 bad usage or bad config.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>

#include "custosd/config.hpp"
#include "table/diff.hpp"
#include "table/users.hpp"
#include "table/values.hpp"

namespace {

constexpr const char* default_config = "/etc/custos/custosd.ini";

void usage(std::FILE* to) {
    std::fprintf(
        to,
        "usage: custosd [--config FILE] [--check [FILE]] [--notify-fd N] [--platform]\n"
        "               [--help]\n"
        "  --config FILE  the supervision table (default %s); a regular file\n"
        "  --check        validate the config and exit: 0 valid, 2 invalid\n"
        "                 (--check FILE is --config FILE --check)\n"
        "  --notify-fd N  s6 readiness: write a newline to descriptor N and close it\n"
        "                 once the start settled (the number in the service directory's\n"
        "                 notification-fd file); overrides [custos] notify_fd\n"
        "  --platform     print what the runtime chooses on this kernel (I/O backend,\n"
        "                 process start and exit watch, cgroup2, subreaper), then exit\n"
        "Runs until SIGTERM or SIGINT, then stops every service and exits 0.\n"
        "SIGHUP reloads the config (as custosctl reload); SIGUSR1, SIGUSR2 and SIGALRM\n"
        "are logged and ignored; SIGPIPE is ignored (a closed log pipe loses log lines,\n"
        "never the supervision).\n"
        "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.\n"
        "Environment: CUSTOS_BACKEND=uring|epoll|auto forces the I/O backend;\n"
        "CUSTOS_SPAWN=clone|vfork|vfork-nopidfd forces how processes are started.\n"
        "Under systemd (Type=notify): READY=1, STATUS=, STOPPING=1 to NOTIFY_SOCKET, and\n"
        "WATCHDOG=1 at half of WATCHDOG_USEC; none of these reach the services.\n"
        "\n"
        "Config keys:\n"
        "  [custos]         stop_timeout, notify_dir, cgroup = auto|off|PATH, pid_record,\n"
        "                   runtime_dir_root,\n"
        "                   max_services, max_probes,\n"
        "                   max_probe_checks, notify_fd = N (s6 readiness),\n"
        "                   service_slots, probe_slots (services, probes + 4: room\n"
        "                   for reload to add),\n"
        "                   keepalive_gate = none|health (systemd's WATCHDOG=1),\n"
        "                   boot_grace (2m: health stays starting at most this long)\n"
        "  [service:NAME]   exec, env = KEY=value (repeatable; one level of quotes\n"
        "                   comes off: KEY=\"a b\" or \"KEY=a b\", as in systemd),\n"
        "                   cwd (must exist, and user must be able to enter it),\n"
        "                   user, group,\n"
        "                   restart = never|always|on-failure,\n"
        "                   backoff_initial, backoff_max, backoff_multiplier,\n"
        "                   backoff_jitter, stable_after, max_restarts,\n"
        "                   restart_limit = N/DURATION, start_delay,\n"
        "                   depends_on = NAME... (services and probes),\n"
        "                   ready = started|notify|fd:N|probe:NAME, ready_timeout,\n"
        "                   watchdog, stop_signal, stop_timeout,\n"
        "                   liveness = PROBE (restart when it goes down),\n"
        "                   on_dependency_down = ignore|stop|restart,\n"
        "                   critical = yes|no (failed makes health failed),\n"
        "                   runtime_dir = yes|no (RUNTIME_DIRECTORY, removed at the stop),\n"
        "                   channel = fd:N (a socket pair per process; for an\n"
        "                   embedding program, custosd only closes its end)\n"
        "  [probe:NAME]     one kind: tcp = HOST:PORT, http = http://HOST[:PORT]/PATH\n"
        "                   (no TLS), unix = /path, exec = COMMAND, file = /path,\n"
        "                   all = NAME... (every member passes);\n"
        "                   timeout (10s), startup_initial (2s), startup_max (60s),\n"
        "                   startup_multiplier (2), startup_tries (10), interval (60s),\n"
        "                   success_threshold (1), failure_threshold (1),\n"
        "                   reason, resolution (text for the operator);\n"
        "                   critical = yes|no, grace (60s: down longer is failed);\n"
        "                   http: expect_status = CODE... (default 200-399);\n"
        "                   file: exists = yes, owner = user[:group]|:group,\n"
        "                   mode = 0755 (bits that must be set), writable = yes|no\n"
        "  [watchdog]       (at most one) device = none|kernel|gpio|null (required),\n"
        "                   board = auto|generic|raspberrypi|imx|sunxi|qemu-virt|...,\n"
        "                   path (the profile's /dev/watchdogN), timeout (whole seconds;\n"
        "                   0: the profile's), interval (0: timeout/2), pretimeout,\n"
        "                   magic_close = profile|yes|no, required = yes|no (yes),\n"
        "                   max_hold (60m), state_file (reset reasons across resets),\n"
        "                   safe_mode_boots = N (0: off; needs state_file),\n"
        "                   safe_mode_window (1h), gpio_chip, gpio_line,\n"
        "                   gpio_enable_line (-1: none), gpio_active_low = yes|no, led\n"
        "  [control]        (at most one; custosctl's HTTP socket) enabled = yes|no (yes),\n"
        "                   socket = /PATH (/run/custos/control.sock), mode = 0660,\n"
        "                   group = NAME|GID (the socket file's), operators = USER|UID|\n"
        "                   @GROUP|@GID ... (at most 16; may act besides root),\n"
        "                   max_clients (8), max_head_bytes (8192), max_body_bytes (4096),\n"
        "                   head_timeout (5s), idle_timeout (30s), send_timeout (10s),\n"
        "                   max_requests (100 per connection), max_wait (5m: the longest\n"
        "                   ?wait= of an action), metrics_listen = IP:PORT (a read-only\n"
        "                   TCP listener: GET /metrics and /health only), metrics_textfile\n"
        "                   = /PATH (written whole every metrics_textfile_interval, 15s,\n"
        "                   for node_exporter's textfile collector). Without [control], custosd "
        "serves\n"
        "                   /run/custos/control.sock when it can (not when another\n"
        "                   custosd answers there, nor when /run/custos cannot be made:\n"
        "                   a note says so); enabled = no: no socket.\n"
        "  Durations take ms, s, m or h: 1500ms, 30s, 5m, 1h.\n",
        default_config);
}

// One line on stderr, printf-style, with every control byte of the result
// (config text: names, paths, values) written as \xHH: a terminal must show
// it, not obey it. The line end is added here.
// While a reload runs: what say() prints also goes to the reload's answer.
custos::ReloadReport* say_tee = nullptr;

[[gnu::format(printf, 1, 2)]] void say(const char* fmt, ...) noexcept {
    char raw[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    std::size_t len =
        static_cast<std::size_t>(n) < sizeof raw ? static_cast<std::size_t>(n) : sizeof raw - 1;
    if (say_tee != nullptr) {
        say_tee->add(std::string_view(raw, len));
    }
    char out[4 * sizeof raw + 2];
    std::size_t w = 0;
    for (std::size_t i = 0; i < len; ++i) {
        auto c = static_cast<unsigned char>(raw[i]);
        if (c < 0x20 || c == 0x7f) {
            w += static_cast<std::size_t>(std::snprintf(out + w, 5, "\\x%02x", c));
        } else {
            out[w++] = raw[i];
        }
    }
    out[w++] = '\n';
    // EPIPE or a closed stderr: the line is lost, nothing else.
    (void)std::fwrite(out, 1, w, stderr);
}

// The line of the first section over a capacity: the table's own problem
// ("65 services, max_services 64") is about the file, but the operator
// wants the place where the excess begins.
unsigned excess_line(const custos::cfg::config& cfg, std::uint32_t limit, bool probes) {
    if (probes) {
        return limit < cfg.probes().size() ? cfg.probe_line_of(limit, custos::ProbeField::section)
                                           : 0;
    }
    return limit < cfg.services().size() ? cfg.line_of(limit, custos::ServiceField::section) : 0;
}

// Maps the table's problems (kind, entry, field) to config lines.
struct line_sink final : custos::TableProblemSink {
    const custos::cfg::config& cfg;
    const char* file;
    unsigned count = 0;

    line_sink(const custos::cfg::config& c, const char* f) : cfg(c), file(f) {}

    void report(const custos::TableProblem& p) noexcept override {
        ++count;
        char text[512];
        p.error.format(text, sizeof text);
        if (p.kind == custos::TableKind::watchdog) {
            // The key's line; the header's for a key not set; 0 without a
            // [watchdog] section.
            say("%s:%u: [watchdog] %s", file, cfg.watchdog_line_of(p.watchdog_field()), text);
            return;
        }
        if (p.kind != custos::TableKind::service && p.kind != custos::TableKind::probe) {
            say("%s:0: %s", file, text); // no section of a config file gives the others
            return;
        }
        const bool probe = p.kind == custos::TableKind::probe;
        const std::size_t entries = probe ? cfg.probes().size() : cfg.services().size();
        const std::uint32_t limit = probe ? cfg.runtime().max_probes : cfg.runtime().max_services;
        if (p.index != UINT32_MAX && p.index < entries) {
            const unsigned line = probe ? cfg.probe_line_of(p.index, p.probe_field())
                                        : cfg.line_of(p.index, p.service_field());
            say("%s:%u: [%s:%.*s] %s", file, line, probe ? "probe" : "service",
                static_cast<int>(p.name.size()), p.name.data(), text);
        } else if (p.error.reason() == custos::Reason::capacity_exceeded &&
                   (!probe || entries > limit)) {
            // max_probe_checks, by contrast, is about no section.
            say("%s:%u: %s", file, excess_line(cfg, limit, probe), text);
        } else {
            say("%s:0: %s", file, text);
        }
    }
};

// The [watchdog] line behind an init() failure about the watchdog (the
// device could not be had, an unknown board), 0 for the others.
unsigned watchdog_init_line(const custos::cfg::config& cfg, custos::Reason r) {
    using custos::Reason;
    using custos::WatchdogField;
    const custos::WatchdogConfig& w = cfg.watchdog();
    if (r == Reason::board_unknown) {
        return cfg.watchdog_line_of(WatchdogField::board);
    }
    if (r == Reason::gpio_unavailable) {
        return cfg.watchdog_line_of(w.gpio_chip.empty() ? WatchdogField::device
                                                        : WatchdogField::gpio_chip);
    }
    if (r == Reason::watchdog_unavailable || r == Reason::watchdog_busy ||
        r == Reason::watchdog_unsupported) {
        return cfg.watchdog_line_of(w.path.empty() ? WatchdogField::device : WatchdogField::path);
    }
    if (r == Reason::reset_record_unwritable || r == Reason::reset_record_corrupt) {
        return cfg.watchdog_line_of(WatchdogField::state_file);
    }
    return 0;
}

// The [control] line behind an init() failure of the control plane: the
// group's or the operators' when the reason is about them, else the
// socket's (the header's when the file does not set it).
unsigned control_init_line(const custos::cfg::config& cfg, custos::Reason r) {
    using custos::cfg::control_field;
    const std::string_view id = custos::reason_id(r);
    if (id.find("Group") != std::string_view::npos) {
        return cfg.control_line_of(control_field::group);
    }
    if (id.find("Operator") != std::string_view::npos) {
        return cfg.control_line_of(control_field::operators);
    }
    return cfg.control_line_of(control_field::socket);
}

// A [watchdog] board that names no profile: BoardUnknown at the board key's
// line, before anything is opened, so that --check finds it too (the
// resolution lists the profiles). "auto" and "" (the build's default) are
// resolved at init. Returns the number of problems printed.
unsigned check_board(const custos::cfg::config& cfg, const char* file) {
    const custos::WatchdogConfig& w = cfg.watchdog();
    if (w.device == custos::WatchdogDevice::none || custos::watchdog_board_known(w.board)) {
        return 0;
    }
    char text[512];
    custos::Error(custos::Reason::board_unknown, 0, w.board).format(text, sizeof text);
    say("%s:%u: [watchdog] %s", file, cfg.watchdog_line_of(custos::WatchdogField::board), text);
    return 1;
}

// The [control] names custosd can check before anything is opened, each at
// its key's line: the group exists, every operator exists (uids and gids
// are taken as they are: a peer's credentials are numbers), and the
// socket's directory exists (the default's, /run/custos, is made at the
// start). The same files the runtime reads, never NSS. Returns the number
// of problems printed.
unsigned check_control(const custos::cfg::config& cfg, const char* file) {
    using custos::cfg::control_field;
    const custos::ControlConfig& c = cfg.control();
    if (!cfg.has_control_section() || c.socket.empty()) {
        return 0;
    }
    unsigned problems = 0;
    if (c.socket != custos::control::default_socket) {
        // The config reader bounds the path (107 bytes) and makes it absolute.
        char dir[128];
        const std::size_t slash = c.socket.rfind('/');
        const std::size_t n = slash == 0 ? 1 : slash;
        std::memcpy(dir, c.socket.data(), n);
        dir[n] = '\0';
        struct stat st {};
        int e = 0;
        if (::stat(dir, &st) != 0) {
            e = errno;
        } else if (!S_ISDIR(st.st_mode)) {
            e = ENOTDIR;
        }
        if (e != 0) {
            say("%s:%u: [control] socket %.*s: directory %s: %s", file,
                cfg.control_line_of(control_field::socket), static_cast<int>(c.socket.size()),
                c.socket.data(), dir, std::strerror(e));
            say("  resolution: create the directory, or choose a socket path in one that exists");
            ++problems;
        }
    }
    auto numeric = [](std::string_view s) {
        std::uint32_t id = 0;
        return custos::tbl::parse_numeric_id(s, id);
    };
    // Unknown: not in the file (errno 0); else the file could not be read.
    auto report = [&](control_field f, const char* what, std::string_view name,
                      const custos::Error& e) {
        const unsigned line = cfg.control_line_of(f);
        const char* db = e.reason() == custos::Reason::group_unknown ? "/etc/group" : "/etc/passwd";
        if (e.sys_errno() != 0) {
            say("%s:%u: [control] %s %.*s: %s: %s", file, line, what, static_cast<int>(name.size()),
                name.data(), db, std::strerror(e.sys_errno()));
        } else {
            say("%s:%u: [control] %s %.*s: %.*s: not in %s", file, line, what,
                static_cast<int>(name.size()), name.data(), static_cast<int>(e.id().size()),
                e.id().data(), db);
        }
        say("  resolution: create it on the image, or give its number, or fix the %s",
            f == control_field::group ? "group" : "operators");
        ++problems;
    };
    if (!c.group.empty() && !numeric(c.group)) {
        if (auto g = custos::tbl::find_group(c.group); !g) {
            report(control_field::group, "group", c.group, g.error());
        }
    }
    for (std::string_view op : c.operators) {
        const bool group = op.front() == '@';
        const std::string_view name = group ? op.substr(1) : op;
        if (numeric(name)) {
            continue;
        }
        if (group) {
            if (auto g = custos::tbl::find_group(name); !g) {
                report(control_field::operators, "operator group", name, g.error());
            }
        } else if (auto u = custos::tbl::find_user(name); !u) {
            report(control_field::operators, "operator", name, u.error());
        }
    }
    return problems;
}

// Whether something answers on the Unix socket `path` (another custosd).
bool socket_answers(std::string_view path) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path) {
        return false;
    }
    std::memcpy(sa.sun_path, path.data(), path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    const bool yes = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0;
    ::close(fd);
    return yes;
}

// Whether an init() failure is the control plane's (its reasons' ids begin
// with "Control").
bool control_failure(custos::Reason r) {
    const std::string_view id = custos::reason_id(r);
    return id.substr(0, 7) == "Control";
}

// May `uid`/`gid` search (enter) the directory `st` describes? The owner's,
// else the group's, else the others' x bit, as the kernel decides for a
// process whose only group is `gid` (the spawner gives a service exactly
// that one). ACLs and capabilities other than root's are not evaluated.
bool may_enter(const struct stat& st, uid_t uid, gid_t gid) {
    if (uid == 0) {
        return true;
    }
    if (st.st_uid == uid) {
        return (st.st_mode & S_IXUSR) != 0;
    }
    if (st.st_gid == gid) {
        return (st.st_mode & S_IXGRP) != 0;
    }
    return (st.st_mode & S_IXOTH) != 0;
}

// Checks every service's cwd now, so that --check finds what the chdir
// would: it exists and is a directory, and, when custosd runs as root and
// the service has a user, that user can enter it and every directory above.
// Relative cwds are the table validator's to refuse. Returns the number of
// problems printed (FILE:LINE on the cwd line).
unsigned check_cwds(const custos::cfg::config& cfg, const char* file) {
    unsigned problems = 0;
    for (std::uint32_t i = 0; i < cfg.services().size(); ++i) {
        const custos::ServiceSpec& s = cfg.services()[i];
        if (s.cwd.empty() || s.cwd[0] != '/') {
            continue;
        }
        const unsigned line = cfg.line_of(i, custos::ServiceField::cwd);
        const int len = static_cast<int>(s.cwd.size());
        char dir[PATH_MAX];
        if (s.cwd.size() >= sizeof dir) {
            say("%s:%u: cwd %.40s...: %s", file, line, s.cwd.data(), std::strerror(ENAMETOOLONG));
            ++problems;
            continue;
        }
        std::memcpy(dir, s.cwd.data(), s.cwd.size());
        dir[s.cwd.size()] = '\0';
        struct stat st {};
        if (::stat(dir, &st) != 0) {
            say("%s:%u: cwd %.*s: %s", file, line, len, s.cwd.data(), std::strerror(errno));
            say("  resolution: create the directory, or fix cwd");
            ++problems;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            say("%s:%u: cwd %.*s: %s", file, line, len, s.cwd.data(), std::strerror(ENOTDIR));
            say("  resolution: point cwd at a directory");
            ++problems;
            continue;
        }
        if (s.user.empty() || ::geteuid() != 0) {
            continue; // the service runs as custosd (root can enter anything)
        }
        // The same files the runtime reads (src/supervise/users), never NSS.
        auto pw = custos::tbl::find_user(s.user);
        if (!pw) {
            continue; // UserUnknown, from the table validator
        }
        const uid_t uid = pw->uid;
        gid_t gid = pw->gid;
        if (!s.group.empty()) {
            auto gr = custos::tbl::find_group(s.group);
            if (!gr) {
                continue; // GroupUnknown, from the table validator
            }
            gid = gr->gid;
        }
        // Every directory from the root down: each must let the user through.
        for (std::size_t end = 1; end <= s.cwd.size(); ++end) {
            if (end != 1 && end != s.cwd.size() && dir[end] != '/') {
                continue;
            }
            const char saved = dir[end];
            dir[end] = '\0';
            const bool ok = ::stat(dir, &st) == 0 && may_enter(st, uid, gid);
            if (!ok) {
                say("%s:%u: cwd %.*s: %s: user %.*s (uid %u, gid %u) cannot enter %s "
                    "(mode %04o, owner %u:%u)",
                    file, line, len, s.cwd.data(), std::strerror(EACCES),
                    static_cast<int>(s.user.size()), s.user.data(), static_cast<unsigned>(uid),
                    static_cast<unsigned>(gid), dir, static_cast<unsigned>(st.st_mode & 07777),
                    static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_gid));
                say("  resolution: give the user search (x) permission there (chmod o+x, or "
                    "the user's group), or choose another cwd");
                ++problems;
                break;
            }
            dir[end] = saved;
        }
    }
    return problems;
}

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

// ": MESSAGE: STRERROR", ": MESSAGE" or ": STRERROR" (nothing when both are
// empty) into buf, truncated to fit: a log line need not be whole. The
// errno's text is left out when the message spells it out already.
void message_detail(char* buf, std::size_t len, std::string_view message, int sys_errno) noexcept {
    const char* err = sys_errno != 0 ? std::strerror(sys_errno) : nullptr;
    if (err != nullptr && message.find(err) != std::string_view::npos) {
        err = nullptr;
    }
    buf[0] = '\0';
    int n = 0;
    if (!message.empty() && err != nullptr) {
        n = std::snprintf(buf, len, ": %.*s: %.80s", static_cast<int>(message.size()),
                          message.data(), err);
    } else if (!message.empty()) {
        n = std::snprintf(buf, len, ": %.*s", static_cast<int>(message.size()), message.data());
    } else if (err != nullptr) {
        n = std::snprintf(buf, len, ": %.80s", err);
    }
    (void)n;
}

void log_probe_transition(const custos::ProbeTransition& t, void*) noexcept {
    utc_stamp at;
    std::string_view from = custos::probe_state_name(t.from);
    std::string_view to = custos::probe_state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    char detail[256];
    message_detail(detail, sizeof detail, t.message, t.sys_errno);
    say("%s probe %.*s: %.*s -> %.*s (%.*s%s)", at.text, static_cast<int>(t.name.size()),
        t.name.data(), static_cast<int>(from.size()), from.data(), static_cast<int>(to.size()),
        to.data(), static_cast<int>(why.size()), why.data(), detail);
    if (t.to == custos::ProbeState::down && !t.resolution.empty()) {
        say("  resolution: %.*s", static_cast<int>(t.resolution.size()), t.resolution.data());
    }
}

// One line per change of health, with its summary (what STATUS= carries
// upward), then one per reason while it is not ok.
void log_health(const custos::HealthStatus& h, void*) noexcept {
    utc_stamp at;
    // The summary names the health itself, but for ok ("12/12 ready").
    say("%s health %s%s", at.text, h.health == custos::Health::ok ? "ok: " : "", h.summary.c_str());
    if (h.health == custos::Health::ok || h.health == custos::Health::starting) {
        return;
    }
    for (std::uint32_t i = 0; i < h.reason_count; ++i) {
        const custos::HealthReason& r = h.reasons[i];
        std::string_view kind = custos::subject_kind_name(r.kind);
        std::string_view why = custos::reason_id(r.reason);
        say("  %s %.*s %s %s: %.*s%s%s", r.fails ? "[!]" : "[-]", static_cast<int>(kind.size()),
            kind.data(), r.name.c_str(), r.state.c_str(), static_cast<int>(why.size()), why.data(),
            r.message.empty() ? "" : ": ", r.message.c_str());
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
        // To the microsecond: a 1 ms backoff with jitter is not "0 ms".
        const long long ns = t.delay_ns;
        if (ns % 1'000'000 == 0) {
            add(" restart %u in %lld ms", t.restarts, ns / 1'000'000);
        } else if (ns >= 1'000'000) {
            add(" restart %u in %lld.%03lld ms", t.restarts, ns / 1'000'000, ns % 1'000'000 / 1000);
        } else if (ns >= 1000) {
            add(" restart %u in %lld us", t.restarts, ns / 1000);
        } else {
            add(" restart %u in %lld ns", t.restarts, ns);
        }
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
    say("%s %.*s: %.*s -> %.*s (%.*s)%s", at.text, static_cast<int>(t.name.size()), t.name.data(),
        static_cast<int>(from.size()), from.data(), static_cast<int>(to.size()), to.data(),
        static_cast<int>(why.size()), why.data(), extra);
    // Failures get the operator's next step on its own line.
    if (t.to == custos::ServiceState::failed) {
        custos::Error e(t.reason, t.sys_errno, t.name);
        std::string_view fix = e.resolution();
        say("  resolution: %.*s", static_cast<int>(fix.size()), fix.data());
    }
}

// Whether a watchdog event calls for the operator: the board resets, was
// reset, runs unwatched, or custos cannot keep its records.
bool watchdog_needs_action(custos::Reason r) noexcept {
    using custos::Reason;
    static constexpr Reason act[] = {
        Reason::watchdog_starving,
        Reason::watchdog_timeout_clamped,
        Reason::watchdog_lost,
        Reason::watchdog_feed_failed,
        Reason::watchdog_left_armed,
        Reason::previous_boot_starved,
        Reason::previous_boot_watchdog,
        Reason::previous_boot_unreported,
        Reason::previous_boot_restarted,
        Reason::reset_record_unwritable,
        Reason::reset_record_corrupt,
        Reason::safe_mode,
        // It could not be opened (required = no runs on without it).
        Reason::watchdog_unavailable,
        Reason::watchdog_busy,
        Reason::gpio_unavailable,
        Reason::board_unknown,
    };
    for (Reason a : act) {
        if (a == r) {
            return true;
        }
    }
    return false;
}

// One line per action through the control socket, allowed or refused:
//   2026-11-22T01:02:03.456Z control POST /services/netd/stop by custosctl
//     (pid 812 uid 0): 200 (ControlAction)
void log_control(const custos::ControlAction& a, void*) noexcept {
    utc_stamp at;
    std::string_view why = custos::reason_id(a.reason);
    say("%s control %.*s (pid %d uid %d): %d (%.*s)", at.text, static_cast<int>(a.request.size()),
        a.request.data(), a.pid, a.uid, a.http_status, static_cast<int>(why.size()), why.data());
}

// One line per watchdog event: a change of state, or a report (the
// previous boot, a clamped timeout, a record that failed):
//   2026-11-22T01:02:03.456Z watchdog off -> booting (WatchdogOpened): ...
//   2026-11-22T01:02:03.456Z watchdog off (PreviousBootStarved): ...
//     resolution: ...
// The ReasonIds are greppable: the emulated-board job reads them.
void log_watchdog(const custos::WatchdogTransition& t, void*) noexcept {
    utc_stamp at;
    std::string_view from = custos::watchdog_state_name(t.from);
    std::string_view to = custos::watchdog_state_name(t.to);
    std::string_view why = custos::reason_id(t.reason);
    char detail[320];
    message_detail(detail, sizeof detail, t.message, t.sys_errno);
    if (t.from != t.to) {
        say("%s watchdog %.*s -> %.*s (%.*s)%s", at.text, static_cast<int>(from.size()),
            from.data(), static_cast<int>(to.size()), to.data(), static_cast<int>(why.size()),
            why.data(), detail);
    } else {
        say("%s watchdog %.*s (%.*s)%s", at.text, static_cast<int>(to.size()), to.data(),
            static_cast<int>(why.size()), why.data(), detail);
    }
    if (watchdog_needs_action(t.reason)) {
        std::string_view fix = t.resolution;
        if (fix.empty()) {
            fix = custos::Error(t.reason, t.sys_errno).resolution();
        }
        say("  resolution: %.*s", static_cast<int>(fix.size()), fix.data());
    }
}

// SIGHUP, SIGUSR1, SIGUSR2, SIGALRM: the runtime kept them from killing
// custosd; say so, once per signal.
void log_signal(int sig, void*) noexcept {
    utc_stamp at;
    const char* name = sig == SIGHUP    ? "SIGHUP"
                       : sig == SIGUSR1 ? "SIGUSR1"
                       : sig == SIGUSR2 ? "SIGUSR2"
                       : sig == SIGALRM ? "SIGALRM"
                                        : "signal";
    std::fprintf(stderr, "%s custosd: %s received: reserved; ignored\n", at.text, name);
}

// SIGHUP and POST /reload: the config file read again (into the spare
// config, whose memory was taken at start) and applied. The sections a
// reload does not apply are compared as the file gives them; when they are
// unchanged the runtime gets what init() got for them (custosd's own
// choices: reap_orphans, the notify directory, the control socket).
// Three configs: the one read at start (init()'s table and `started` point
// into it: never read into again) and two whose memory is fixed at start,
// which reloads alternate between.
struct reloader {
    custos::cfg::config* current = nullptr;
    custos::cfg::config* spare = nullptr;
    custos::cfg::config* a = nullptr;
    custos::cfg::config* b = nullptr;
    const char* path = nullptr;
    custos::Table started; // what init() was given (runtime, watchdog, control)
};

custos::Result<custos::ReloadSummary>
reload_config(custos::Runtime& rt, custos::ReloadReport& report, void* ctx) noexcept {
    using custos::Reason;
    reloader& r = *static_cast<reloader*>(ctx);
    utc_stamp at;
    say_tee = &report;
    static custos::cfg::problem_list problems;
    problems.clear();
    custos::Result<custos::ReloadSummary> out = custos::fail(Reason::reload_invalid, 0, r.path);
    if (!r.spare->load(r.path, problems)) {
        for (const custos::cfg::problem& p : problems) {
            char line[512];
            custos::cfg::format_problem(r.path, p, line, sizeof line);
            say("%s", line);
        }
        if (problems.dropped() != 0) {
            say("%s: %zu more problems not shown", r.path, problems.dropped());
        }
        char what[128];
        std::snprintf(what, sizeof what, "%s: %zu problem%s", r.path, problems.total(),
                      problems.total() == 1 ? "" : "s");
        out = custos::fail(Reason::reload_invalid, 0, what);
    } else {
        const custos::cfg::config& now = *r.current;
        const custos::cfg::config& next = *r.spare;
        const char* unsupported =
            !custos::tbl::same_runtime(now.runtime(), next.runtime())      ? "[custos]"
            : !custos::tbl::same_watchdog(now.watchdog(), next.watchdog()) ? "[watchdog]"
            : !custos::tbl::same_control(now.control(), next.control()) ||
                    now.has_control_section() != next.has_control_section()
                ? "[control]"
                : nullptr;
        line_sink sink(next, r.path);
        sink.count = check_cwds(next, r.path);
        if (unsupported != nullptr) {
            char what[64];
            std::snprintf(what, sizeof what, "%s changed", unsupported);
            out = custos::fail(Reason::reload_unsupported, 0, what);
        } else if (sink.count == 0) {
            custos::Table t = next.table();
            t.runtime = r.started.runtime;
            t.watchdog = r.started.watchdog;
            t.control = r.started.control;
            out = rt.reload(t, &sink);
            if (out) {
                r.current = r.spare; // the other fixed one is the next reload's
                r.spare = r.current == r.a ? r.b : r.a;
            }
        } else {
            char what[128];
            std::snprintf(what, sizeof what, "%s: %u problem%s", r.path, sink.count,
                          sink.count == 1 ? "" : "s");
            out = custos::fail(Reason::reload_invalid, 0, what);
        }
    }
    say_tee = nullptr;
    if (out) {
        std::fprintf(stderr,
                     "%s custosd: reloaded %s: %u added, %u removed, %u changed, %u unchanged; "
                     "probes: %u added, %u removed, %u changed, %u unchanged\n",
                     at.text, r.path, out->added, out->removed, out->changed, out->unchanged,
                     out->probes_added, out->probes_removed, out->probes_changed,
                     out->probes_unchanged);
    } else {
        char text[512];
        out.error().format(text, sizeof text);
        std::fprintf(stderr, "%s custosd: reload of %s refused, nothing changed: %s\n", at.text,
                     r.path, text);
    }
    return out;
}

// Started with descriptor 0, 1 or 2 closed (custosd >&- 2>&-), the first
// descriptor opened takes the number and stderr would be, say, a timerfd:
// every one that is closed becomes /dev/null. Before anything else opens.
// Returns false when /dev/null cannot be had (no message: there may be no
// stderr to print it on).
bool sane_stdio() noexcept {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) {
            continue;
        }
        // Lowest free number: this one, as the lower ones are open.
        int got = ::open("/dev/null", O_RDWR | O_NOCTTY);
        if (got != fd) {
            if (got >= 0) {
                ::close(got);
            }
            return false;
        }
    }
    return true;
}

int report_platform() {
    auto info = custos::Runtime::platform();
    if (!info) {
        char buf[512];
        info.error().format(buf, sizeof buf);
        say("custosd: %s", buf);
        return info.error().reason() == custos::Reason::backend_unknown ? 2 : 1;
    }
    std::printf("custosd: I/O backend %s\n", info->backend);
    std::printf("custosd: process start: %s\n", info->spawn);
    std::printf("custosd: process exits: %s\n", info->exit_watch);
    std::printf("custosd: cgroup2: %s\n", info->cgroup2);
    std::printf("custosd: child subreaper: %s\n", info->subreaper);
    return 0;
}

// Where custosd keeps an instance's files when the config names no
// notify_dir: one directory per config file, so two custosd instances on
// different configs never share a lock, a pid record or a socket, and a
// second one on the same config is refused by the lock (as an explicit
// notify_dir is).
constexpr const char* run_base = "/run/custos";

// Writes "STEM-XXXXXXXX" for `config` into `out`: the file name without
// ".ini"/".conf" (at most 24 bytes of [A-Za-z0-9._-], others as '_') and
// an FNV-1a hash of its absolute path.
void instance_name(const char* config, char* out, std::size_t cap) {
    char abs[PATH_MAX];
    const char* key = ::realpath(config, abs) != nullptr ? abs : config;
    std::uint32_t h = 2166136261u;
    for (const char* c = key; *c != '\0'; ++c) {
        h = (h ^ static_cast<unsigned char>(*c)) * 16777619u;
    }
    const char* base = std::strrchr(key, '/');
    base = base != nullptr ? base + 1 : key;
    std::size_t n = std::strlen(base);
    for (const char* ext : {".ini", ".conf"}) {
        std::size_t e = std::strlen(ext);
        if (n > e && std::strcmp(base + n - e, ext) == 0) {
            n -= e;
            break;
        }
    }
    n = n < 24 ? n : 24;
    char stem[25] = {};
    for (std::size_t i = 0; i < n; ++i) {
        const char c = base[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        stem[i] = ok ? c : '_';
    }
    std::snprintf(out, cap, "%s-%08x", n != 0 ? stem : "custosd", static_cast<unsigned>(h));
}

// Whether a service asks for a runtime directory.
bool needs_runtime_dir(const custos::cfg::config& cfg) {
    for (const custos::ServiceSpec& s : cfg.services()) {
        if (s.runtime_dir) {
            return true;
        }
    }
    return false;
}

// Whether a service needs a notify socket (ready = notify or a watchdog).
bool needs_notify(const custos::cfg::config& cfg) {
    for (const custos::ServiceSpec& s : cfg.services()) {
        if (s.ready == custos::ReadyMode::notify || s.watchdog.count() > 0) {
            return true;
        }
    }
    return false;
}

// Makes `dir` (one level) 0755 whatever the umask, if it is missing:
// services that run as other users enter it. Whether it is a directory
// custosd may create entries in.
bool usable_dir(const char* dir, mode_t mode) {
    if (::mkdir(dir, mode) == 0) {
        (void)::chmod(dir, mode);
    }
    struct stat st {};
    return ::stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && ::access(dir, W_OK | X_OK) == 0;
}

// The instance's directory, run_base/NAME, made if custosd may (root, or
// run_base writable). False when it cannot be.
bool instance_dir(const char* config, char* out, std::size_t cap) {
    char name[40];
    instance_name(config, name, sizeof name);
    int n = std::snprintf(out, cap, "%s/%s", run_base, name);
    return n > 0 && static_cast<std::size_t>(n) < cap && usable_dir(run_base, 0755) &&
           usable_dir(out, 0755);
}

// The default notify_dir: INSTANCE/notify, else abstract sockets
// "@custos-NAME" (no files: reachable by every user, and bind() refuses a
// second instance). Writes it into `out`.
void default_notify_dir(const char* config, char* out, std::size_t cap) {
    char dir[96];
    if (instance_dir(config, dir, sizeof dir)) {
        const int n = std::snprintf(out, cap, "%s/notify", dir);
        if (n > 0 && static_cast<std::size_t>(n) < cap) {
            return;
        }
    }
    char name[40];
    instance_name(config, name, sizeof name);
    std::snprintf(out, cap, "@custos-%s", name);
}

// The default runtime_dir_root: INSTANCE/services, else
// $XDG_RUNTIME_DIR/custos/NAME/services (a user's own custosd). False when
// there is neither: init then says to set runtime_dir_root.
bool default_runtime_root(const char* config, char* out, std::size_t cap) {
    char dir[96];
    if (instance_dir(config, dir, sizeof dir)) {
        std::snprintf(out, cap, "%s/services", dir);
        return true;
    }
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg == nullptr || xdg[0] != '/' || std::strlen(xdg) > 120) {
        return false;
    }
    char name[40];
    instance_name(config, name, sizeof name);
    char base[160];
    std::snprintf(base, sizeof base, "%s/custos", xdg);
    char inst[200];
    std::snprintf(inst, sizeof inst, "%s/%s", base, name);
    if (!usable_dir(base, 0700) || !usable_dir(inst, 0700)) {
        return false;
    }
    std::snprintf(out, cap, "%s/services", inst);
    return true;
}

} // namespace

int main(int argc, char** argv) {
    if (!sane_stdio()) {
        return 1;
    }
    const char* path = nullptr;
    bool check_only = false;
    int notify_fd = -1; // --notify-fd: overrides [custos] notify_fd
    auto set_notify_fd = [&](const char* v) {
        auto fd = custos::tbl::notify_fd_value(v);
        if (!fd) {
            say("custosd: --notify-fd: %s", fd.error().message);
            return false;
        }
        notify_fd = *fd;
        return true;
    };
    // Given twice (--config A --check B) is refused: which one was meant?
    auto set_path = [&](const char* p) {
        if (path != nullptr) {
            say("custosd: two config files given, '%s' and '%s': give one", path, p);
            return false;
        }
        if (*p == '\0') {
            say("custosd: --config: empty file name");
            return false;
        }
        path = p;
        return true;
    };
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            if (!set_path(argv[++i])) {
                return 2;
            }
        } else if (std::strncmp(argv[i], "--config=", 9) == 0) {
            if (!set_path(argv[i] + 9)) {
                return 2;
            }
        } else if (std::strcmp(argv[i], "--check") == 0) {
            check_only = true;
            // --check FILE, as nginx -t and sshd -t users type it.
            if (i + 1 < argc && argv[i + 1][0] != '-' && !set_path(argv[++i])) {
                return 2;
            }
        } else if (std::strncmp(argv[i], "--check=", 8) == 0) {
            check_only = true;
            if (!set_path(argv[i] + 8)) {
                return 2;
            }
        } else if (std::strcmp(argv[i], "--notify-fd") == 0 && i + 1 < argc) {
            if (!set_notify_fd(argv[++i])) {
                return 2;
            }
        } else if (std::strncmp(argv[i], "--notify-fd=", 12) == 0) {
            if (!set_notify_fd(argv[i] + 12)) {
                return 2;
            }
        } else if (std::strcmp(argv[i], "--platform") == 0) {
            return report_platform();
        } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            say("custosd: unknown or incomplete argument '%s'", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (path == nullptr) {
        path = default_config;
    }

    static custos::cfg::config cfg;
    static custos::cfg::problem_list problems;
    if (!cfg.load(path, problems)) {
        for (const custos::cfg::problem& p : problems) {
            char line[512];
            custos::cfg::format_problem(path, p, line, sizeof line);
            say("%s", line);
        }
        if (problems.dropped() != 0) {
            say("%s: %zu more problems not shown", path, problems.dropped());
        }
        return 2;
    }

    // The whole table, before anything starts: every problem, with its line.
    line_sink sink(cfg, path);
    custos::validate_table(cfg.table(), &sink);
    sink.count += check_cwds(cfg, path);
    sink.count += check_board(cfg, path);
    sink.count += check_control(cfg, path);
    if (sink.count != 0) {
        return 2;
    }
    if (check_only) {
        const custos::WatchdogDevice wd = cfg.watchdog().device;
        const char* watchdog = wd == custos::WatchdogDevice::none     ? ""
                               : wd == custos::WatchdogDevice::kernel ? ", watchdog kernel"
                               : wd == custos::WatchdogDevice::gpio   ? ", watchdog gpio"
                                                                      : ", watchdog null";
        const custos::ControlConfig& ctl = cfg.control();
        const bool off = ctl.socket.empty();
        std::printf("%s: ok, %zu services, %zu probes%s, control %.*s%s\n", path,
                    cfg.services().size(), cfg.probes().size(), watchdog,
                    static_cast<int>(off ? 3 : ctl.socket.size()), off ? "off" : ctl.socket.data(),
                    cfg.has_control_section() || off ? "" : " (when it can)");
        return 0;
    }

    // A relative notify_dir is taken from the working directory, made
    // absolute here: services may chdir, and NOTIFY_SOCKET must still work.
    custos::RuntimeConfig rc = cfg.runtime();
    // A supervisor process: orphans of its services are its to reap.
    rc.reap_orphans = true;
    // Room for a reload to add services: four slots beyond the file's
    // services unless [custos] service_slots says how many.
    if (rc.service_slots == 0) {
        const std::size_t want = cfg.services().size() + 4;
        rc.service_slots =
            static_cast<std::uint32_t>(want < rc.max_services ? want : rc.max_services);
    }
    // The same for probes.
    if (rc.probe_slots == 0) {
        const std::size_t want = cfg.probes().size() + 4;
        rc.probe_slots = static_cast<std::uint32_t>(want < rc.max_probes ? want : rc.max_probes);
    }
    if (notify_fd >= 0) {
        rc.notify_fd = notify_fd;
    }
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
    // No notify_dir while a service needs one: the instance's own, under
    // /run/custos when custosd may create it there.
    static char default_dir[96];
    if (rc.notify_dir.empty() && needs_notify(cfg)) {
        default_notify_dir(path, default_dir, sizeof default_dir);
        rc.notify_dir = default_dir;
        say("custosd: notify sockets in %s (no notify_dir in [custos])", default_dir);
    }
    static char default_root[256];
    if (rc.runtime_dir_root.empty() && needs_runtime_dir(cfg) &&
        default_runtime_root(path, default_root, sizeof default_root)) {
        rc.runtime_dir_root = default_root;
        say("custosd: runtime directories in %s (no runtime_dir_root in [custos])", default_root);
    }
    // Without cgroups, the pid record lives beside the notify sockets unless
    // the config names one: a restarted custosd still finds its leftovers.
    static char record_path[600];
    if (rc.pid_record.empty() && !rc.notify_dir.empty() && rc.notify_dir[0] == '/') {
        std::snprintf(record_path, sizeof record_path, "%.*s/.pids",
                      static_cast<int>(rc.notify_dir.size()), rc.notify_dir.data());
        rc.pid_record = record_path;
    }

    static custos::Runtime rt;
    custos::Table table = cfg.table();
    table.runtime = rc;
    // The control socket. Without a [control] section custosd serves the
    // default one only when it can: /run/custos can be made, and no other
    // custosd answers there (a second instance on another config runs
    // without, and says so). With the section, any failure is the config's.
    const bool implicit_control = !cfg.has_control_section();
    if (table.control.socket == custos::control::default_socket && !usable_dir(run_base, 0755)) {
        const int e = errno;
        if (implicit_control) {
            say("custosd: no control socket: %s cannot be made here (%s); add [control] socket = "
                "PATH to serve one, or enabled = no",
                run_base, std::strerror(e));
            table.control.socket = {};
        } else {
            say("%s:%u: [control] socket %s: cannot make %s: %s", path,
                cfg.control_line_of(custos::cfg::control_field::socket),
                custos::control::default_socket.data(), run_base, std::strerror(e));
            say("  resolution: run custosd as root, or set socket = PATH in a directory it may "
                "write");
            return 2;
        }
    }
    if (implicit_control && !table.control.socket.empty() && socket_answers(table.control.socket)) {
        say("custosd: no control socket: another custosd serves %s; give this one [control] "
            "socket = PATH",
            custos::control::default_socket.data());
        table.control.socket = {};
    }
    // What only init() can check (the board profile, for one) comes back
    // through the sink, with its line: a config problem.
    const unsigned reported = sink.count;
    auto inited = rt.init(table, &sink);
    if (!inited && implicit_control && !table.control.socket.empty() &&
        control_failure(inited.error().reason()) && sink.count == reported) {
        // Taken between the check above and the bind: run without.
        char buf[512];
        inited.error().format(buf, sizeof buf);
        say("custosd: no control socket: %s", buf);
        table.control.socket = {};
        inited = rt.init(table, &sink);
    }
    if (const auto& r = inited; !r) {
        if (sink.count != reported) {
            return 2;
        }
        char buf[512];
        r.error().format(buf, sizeof buf);
        if (const unsigned line = watchdog_init_line(cfg, r.error().reason()); line != 0) {
            say("%s:%u: [watchdog] %s", path, line, buf);
        } else if (control_failure(r.error().reason()) && !implicit_control) {
            say("%s:%u: [control] %s", path, control_init_line(cfg, r.error().reason()), buf);
        } else {
            say("custosd: %s", buf);
        }
        return r.error().reason() == custos::Reason::backend_unknown ? 2 : 1;
    }
    rt.set_transition_hook(&log_transition, nullptr);
    rt.set_probe_hook(&log_probe_transition, nullptr);
    rt.set_signal_hook(&log_signal, nullptr);
    // Reload: a second config with room for this one's growth, taken now.
    static custos::cfg::config reload_a;
    static custos::cfg::config reload_b;
    const std::size_t sections = cfg.services().size() + cfg.probes().size() + 8;
    for (custos::cfg::config* c : {&reload_a, &reload_b}) {
        c->fix(2 * cfg.text_bytes() + 16384, 4 * cfg.data_bytes() + 16384,
               sections < 64 ? 64 : 2 * sections);
    }
    static reloader reload_state;
    reload_state.current = &cfg;
    reload_state.a = &reload_a;
    reload_state.b = &reload_b;
    reload_state.spare = &reload_a;
    reload_state.path = path;
    reload_state.started = table;
    rt.set_reload_hook(&reload_config, &reload_state);
    rt.set_health_hook(&log_health, nullptr);
    rt.set_watchdog_hook(&log_watchdog, nullptr);
    rt.set_control_hook(&log_control, nullptr);
    say("custosd: %s: %u services, %u probes; %s", path, rt.service_count(), rt.probe_count(),
        rt.backend_reason());
    if (cfg.services().empty()) {
        say("custosd: warning: %s declares no services", path);
    }
    if (auto r = rt.start(); !r) {
        char buf[512];
        r.error().format(buf, sizeof buf);
        say("custosd: %s", buf);
        return 1;
    }
    rt.run();
    custos::RuntimeStats st = rt.stats();
    std::fprintf(stderr,
                 "custosd: stopped; spawn: %s; exits: %s; %llu spawns, %llu exits, %llu orphans "
                 "reaped, %llu notify messages (%llu dropped), %llu probe checks (%llu failed), "
                 "%llu liveness restarts, %llu signals ignored\n",
                 rt.spawn_method_name(), rt.exit_watch_name(),
                 static_cast<unsigned long long>(st.spawns),
                 static_cast<unsigned long long>(st.exits),
                 static_cast<unsigned long long>(st.orphans_reaped),
                 static_cast<unsigned long long>(st.notify_received),
                 static_cast<unsigned long long>(st.notify_dropped),
                 static_cast<unsigned long long>(st.probe_checks),
                 static_cast<unsigned long long>(st.probe_failures),
                 static_cast<unsigned long long>(st.liveness_restarts),
                 static_cast<unsigned long long>(st.signals_ignored));
    return rt.exit_code();
}
