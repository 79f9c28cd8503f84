// custosctl: the operator's command line for a running custosd, over its
// control socket (HTTP/1.1 on a Unix socket; the routes, the TSV and the
// exit codes are include/custos/control.hpp's).
//
//   custosctl [--socket PATH] [--json] VERB [ARGS] [--wait] [--timeout D]
//
// It links no runtime: its own small HTTP client (client.hpp) and the value
// parsers custosd's config uses (table/values.hpp), for durations. It never
// parses JSON: the human output comes from the routes made for it (the TSV,
// the service detail, the /health lines), and --json prints the JSON route's
// body as it came.
//
// Here: the usage, the command line and the dispatch to the verbs
// (verbs.cpp); cli.hpp lists the parts.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <custos/control.hpp>

#include "custosctl/cli.hpp"
#include "table/values.hpp"

namespace custos::ctl::cli {

namespace {

void usage(std::FILE* to) {
    std::fprintf(
        to,
        "usage: custosctl [--socket PATH] [--json] VERB [ARGS] [--wait] [--timeout D]\n"
        "\n"
        "Verbs:\n"
        "  status               every service: NAME STATE PID UPTIME RESTARTS LAST-EXIT\n"
        "                       REASON (the STATE word in colour on a terminal, unless\n"
        "                       NO_COLOR is set)\n"
        "  status NAME          one service in detail: its last error, what to do about\n"
        "                       it, its deaths; exit 3 when it is not running (stopped,\n"
        "                       waiting, backoff or failed)\n"
        "  start NAME...        start (also a failed service), stop (it stays stopped:\n"
        "  stop NAME...         nothing restarts it) or restart services; with --wait,\n"
        "  restart NAME...      until settled (start, restart: ready, or failed: exit 1;\n"
        "                       stop: stopped), at most --timeout (30s)\n"
        "  check PROBE          run a probe's check now; with --wait, its result (exit\n"
        "                       1 when it failed)\n"
        "  health               the health and one line per check; exit 0 when ok, 1 when\n"
        "                       degraded, starting or failed\n"
        "  wait-ready NAME...   until every NAME is ready (exit 0), one fails (exit 1)\n"
        "                       or --timeout (30s) passes (exit 1); polls every 200 ms\n"
        "  watchdog hold D      hold the hardware watchdog's health gate for D\n"
        "                       (maintenance: the board is fed meanwhile)\n"
        "  watchdog release     end the hold\n"
        "  reload               custosd re-reads its config\n"
        "  metrics              the Prometheus metrics\n"
        "  logs NAME [-n LINES] [-f]\n"
        "                       a service's captured output, its last LINES (100)\n"
        "                       lines from custosd's RAM ring, each TIME STREAM TEXT;\n"
        "                       -f: then the new lines as they come, until interrupted\n"
        "  events [--since SEQ] [-f]\n"
        "                       the event log's records (those custosd holds in RAM),\n"
        "                       one line each: #SEQ TIME LEVEL KIND NAME FROM -> TO\n"
        "                       REASON: MESSAGE (TIME ends in '?' while the clock is\n"
        "                       not trusted); --since: from that seq on; -f: then\n"
        "                       wait for new ones, until interrupted; --json: the\n"
        "                       records as JSON, one a line\n"
        "  prune                the retention pruner's jobs, their counters and last runs\n"
        "  prune NAME           run a job now: each file deleted (FILE BYTES RULES), then\n"
        "                       the summary; exit 1 when the run failed\n"
        "  prune NAME --dry-run what the job would delete now; nothing is deleted\n"
        "\n"
        "Options (anywhere on the line):\n"
        "  --socket PATH   custosd's control socket; else $%.*s; else %.*s\n"
        "  --json          print the JSON route's body as it comes (status: /status,\n"
        "                  status NAME: /services/NAME, health: /health?json, actions:\n"
        "                  their responses, wait-ready: /status at the end); metrics\n"
        "                  has no JSON form and prints its text\n"
        "  --wait          actions and check: wait until settled (?wait=)\n"
        "  --dry-run       prune NAME: list what would go, delete nothing\n"
        "  --timeout D     with --wait and for wait-ready: how long to wait (30s);\n"
        "                  otherwise how long custosd has to answer (10s). Durations:\n"
        "                  1500ms, 30s, 5m, 1h\n"
        "  -h, --help      this text\n"
        "\n"
        "Anyone who can open the socket may read; actions (start, stop, restart,\n"
        "check, watchdog, reload, prune NAME) are for root and custosd's [control]\n"
        "operators.\n"
        "\n"
        "Exit codes:\n"
        "  0  done; healthy; ready\n"
        "  1  failed, degraded, or not ready in time (or an error custosd reported)\n"
        "  2  bad command line (or a parameter custosd refused: 400)\n"
        "  3  the service is not running (status NAME)\n"
        "  4  no such service or probe\n"
        "  5  permission denied: not root nor an operator (403)\n"
        "  6  custosd not reachable on the socket (missing, refused, no permission to\n"
        "     connect, no answer in time)\n",
        static_cast<int>(control::env_socket.size()), control::env_socket.data(),
        static_cast<int>(control::default_socket.size()), control::default_socket.data());
}

// --- the command line ---

// The socket's path: --socket, else $CUSTOS_SOCKET, else the default.
std::string_view socket_path(const options& o) {
    if (o.socket != nullptr) {
        return o.socket;
    }
    char name[32];
    std::snprintf(name, sizeof name, "%.*s", static_cast<int>(control::env_socket.size()),
                  control::env_socket.data());
    const char* env = std::getenv(name);
    if (env != nullptr && *env != '\0') {
        return env;
    }
    return control::default_socket;
}

// Reads the options, anywhere on the line, and the words. False on a
// usage error (printed).
bool parse_args(int argc, char** argv, options& o, bool& help) {
    bool words_only = false;
    auto value = [&](int& i, const char* opt, const char*& out) {
        const std::size_t n = std::strlen(opt);
        if (std::strncmp(argv[i], opt, n) == 0 && argv[i][n] == '=') {
            out = argv[i] + n + 1;
            return true;
        }
        if (std::strcmp(argv[i], opt) == 0) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "custosctl: %s needs a value\n", opt);
                return false;
            }
            out = argv[++i];
            return true;
        }
        return false;
    };
    for (int i = 1; i < argc; ++i) {
        const char* a = argv[i];
        const char* v = nullptr;
        if (words_only || a[0] != '-' || a[1] == '\0') {
            if (o.nargs == static_cast<int>(std::size(o.args))) {
                std::fprintf(stderr, "custosctl: too many arguments (at most %zu)\n",
                             std::size(o.args));
                return false;
            }
            o.args[o.nargs++] = a;
        } else if (std::strcmp(a, "--") == 0) {
            words_only = true;
        } else if (std::strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (std::strcmp(a, "--wait") == 0) {
            o.wait = true;
        } else if (std::strcmp(a, "-f") == 0 || std::strcmp(a, "--follow") == 0) {
            o.follow = true;
        } else if (value(i, "-n", v)) {
            if (v == nullptr || *v == '\0') {
                std::fprintf(stderr, "custosctl: -n needs a line count\n");
                return false;
            }
            o.lines = v;
        } else if (value(i, "--since", v)) {
            if (v == nullptr || *v == '\0') {
                std::fprintf(stderr, "custosctl: --since needs a record's seq\n");
                return false;
            }
            o.since = v;
        } else if (std::strcmp(a, "--dry-run") == 0) {
            o.dry_run = true;
        } else if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
            help = true;
        } else if (value(i, "--socket", v)) {
            if (v == nullptr || *v == '\0') {
                std::fprintf(stderr, "custosctl: --socket needs a path\n");
                return false;
            }
            o.socket = v;
        } else if (value(i, "--timeout", v)) {
            if (v == nullptr || !duration_arg("--timeout", v, o.timeout)) {
                return false;
            }
            if (o.timeout <= custos::Duration{0}) {
                std::fprintf(stderr, "custosctl: --timeout must be above 0\n");
                return false;
            }
            o.has_timeout = true;
        } else {
            std::fprintf(stderr, "custosctl: unknown option '%s'\n", a);
            return false;
        }
    }
    return true;
}

} // namespace

// A duration argument, or a usage error printed.
bool duration_arg(const char* what, const char* v, custos::Duration& out) {
    auto d = custos::tbl::duration_value(what, v);
    if (!d) {
        std::fprintf(stderr, "custosctl: %s\n", d.error().message);
        return false;
    }
    out = *d;
    return true;
}

} // namespace custos::ctl::cli

int main(int argc, char** argv) {
    using namespace custos::ctl::cli;
    static options o;
    bool help = false;
    if (!parse_args(argc, argv, o, help)) {
        std::fprintf(stderr, "custosctl --help lists the verbs and options\n");
        return control::exit_usage;
    }
    if (help) {
        usage(stdout);
        return control::exit_ok;
    }
    if (o.nargs == 0) {
        usage(stderr);
        return control::exit_usage;
    }
    const std::string_view verb = o.args[0];
    session s{socket_path(o), o.args[0]};
    const bool acts = verb == control::action_start || verb == control::action_stop ||
                      verb == control::action_restart || verb == control::action_check;
    if (o.wait && !acts) {
        std::fprintf(stderr, "custosctl: --wait is for start, stop, restart and check\n");
        return control::exit_usage;
    }
    if (o.dry_run && verb != "prune") {
        std::fprintf(stderr, "custosctl: --dry-run is for prune NAME\n");
        return control::exit_usage;
    }
    if ((o.follow && verb != "events" && verb != "logs") ||
        (o.since != nullptr && verb != "events") || (o.lines != nullptr && verb != "logs")) {
        std::fprintf(stderr, "custosctl: -f is for events and logs, --since for events, -n "
                             "for logs\n");
        return control::exit_usage;
    }
    int rc = control::exit_usage;
    if (verb == "status") {
        rc = cmd_status(s, o);
    } else if (verb == control::action_start || verb == control::action_stop ||
               verb == control::action_restart) {
        rc = cmd_action(s, o, verb);
    } else if (verb == control::action_check) {
        rc = cmd_check(s, o);
    } else if (verb == "health") {
        rc = cmd_health(s, o);
    } else if (verb == "wait-ready") {
        rc = cmd_wait_ready(s, o);
    } else if (verb == "watchdog") {
        rc = cmd_watchdog(s, o);
    } else if (verb == "reload") {
        rc = cmd_reload(s, o);
    } else if (verb == "metrics") {
        rc = cmd_metrics(s, o);
    } else if (verb == "events") {
        rc = cmd_events(s, o);
    } else if (verb == "logs") {
        rc = cmd_logs(s, o);
    } else if (verb == "prune") {
        rc = cmd_prune(s, o);
    } else {
        std::fprintf(stderr, "custosctl: unknown verb '%s'\ncustosctl --help lists them\n",
                     o.args[0]);
        return control::exit_usage;
    }
    if (std::fflush(stdout) != 0 && rc == control::exit_ok) {
        return control::exit_failed; // a full disk or a closed pipe: not "done"
    }
    return rc;
}
