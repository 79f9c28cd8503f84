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
//
// This file: the options, the platform report, the instance's directories
// and main(). Its parts (daemon.hpp): check.cpp, the checks before the
// start; log.cpp, the log lines; reload.cpp, the reload.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <custos/error.hpp>
#include <custos/probe.hpp>
#include <custos/runtime.hpp>

#include "custosd/config.hpp"
#include "custosd/daemon.hpp"
#include "table/values.hpp"

using custos::daemon::check_board;
using custos::daemon::check_control;
using custos::daemon::check_cwds;
using custos::daemon::line_sink;
using custos::daemon::log_control;
using custos::daemon::log_health;
using custos::daemon::log_probe_transition;
using custos::daemon::log_prune;
using custos::daemon::log_signal;
using custos::daemon::log_transition;
using custos::daemon::log_watchdog;
using custos::daemon::reload_config;
using custos::daemon::reloader;
using custos::daemon::say;

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
        "  [prune:NAME]     (at most 64) dir = /PATH (required), glob (*),\n"
        "                   order = mtime|name|seq, time_pattern (order name: e.g.\n"
        "                   app-%%Y%%m%%d), seq_prefix (order seq), max_age, keep_newest,\n"
        "                   max_total_bytes (64K, 16M, 1G), min_free = BYTES|N%%,\n"
        "                   combine = any|all, max_files (4096), interval (1h; 0: only\n"
        "                   custosctl prune NAME)\n"
        "  Durations take ms, s, m or h: 1500ms, 30s, 5m, 1h.\n",
        default_config);
}

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
// --check's lines for the [prune:x] jobs, one each: where, how files are
// ordered, the rules set and the schedule.
void print_prunes(const custos::cfg::config& cfg) {
    for (const custos::PruneSpec& p : cfg.prunes()) {
        const char* order = p.order == custos::PruneOrder::name_time ? "name"
                            : p.order == custos::PruneOrder::seq     ? "seq"
                                                                     : "mtime";
        std::printf("  prune %.*s: %.*s (%.*s), order %s, combine %s,",
                    static_cast<int>(p.name.size()), p.name.data(), static_cast<int>(p.dir.size()),
                    p.dir.data(), static_cast<int>(p.glob.size()), p.glob.data(), order,
                    p.combine == custos::PruneCombine::all ? "all" : "any");
        bool any = false;
        if (p.max_age.count() > 0) {
            std::printf(" max_age %llds", static_cast<long long>(p.max_age.count() / 1000));
            any = true;
        }
        if (p.keep_newest > 0) {
            std::printf(" keep_newest %u", p.keep_newest);
            any = true;
        }
        if (p.max_total_bytes > 0) {
            std::printf(" max_total_bytes %llu",
                        static_cast<unsigned long long>(p.max_total_bytes));
            any = true;
        }
        if (p.min_free_percent > 0) {
            std::printf(" min_free %u%%", static_cast<unsigned>(p.min_free_percent));
            any = true;
        } else if (p.min_free_bytes > 0) {
            std::printf(" min_free %llu", static_cast<unsigned long long>(p.min_free_bytes));
            any = true;
        }
        if (!any) {
            std::printf(" no rule (nothing is deleted)");
        }
        if (p.interval.count() > 0) {
            std::printf(", every %llds\n", static_cast<long long>(p.interval.count() / 1000));
        } else {
            std::printf(", on demand only\n");
        }
    }
}

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
        print_prunes(cfg);
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
    rt.set_prune_hook(&log_prune, nullptr);
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
