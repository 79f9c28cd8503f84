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
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <custos/control.hpp>

#include "custosctl/client.hpp"
#include "table/values.hpp"

namespace {

namespace control = custos::control;
using custos::ctl::failure;
using custos::ctl::request_error;
using custos::ctl::response;

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
        "\n"
        "Options (anywhere on the line):\n"
        "  --socket PATH   custosd's control socket; else $%.*s; else %.*s\n"
        "  --json          print the JSON route's body as it comes (status: /status,\n"
        "                  status NAME: /services/NAME, health: /health?json, actions:\n"
        "                  their responses, wait-ready: /status at the end); metrics\n"
        "                  has no JSON form and prints its text\n"
        "  --wait          actions and check: wait until settled (?wait=)\n"
        "  --timeout D     with --wait and for wait-ready: how long to wait (30s);\n"
        "                  otherwise how long custosd has to answer (10s). Durations:\n"
        "                  1500ms, 30s, 5m, 1h\n"
        "  -h, --help      this text\n"
        "\n"
        "Anyone who can open the socket may read; actions (start, stop, restart,\n"
        "check, watchdog, reload) are for root and custosd's [control] operators.\n"
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

struct options {
    const char* socket = nullptr;
    bool json = false;
    bool wait = false;
    bool has_timeout = false;
    custos::Duration timeout{0};
    const char* args[256] = {};
    int nargs = 0;
};

constexpr std::int64_t default_io_ms = 10000;
constexpr std::int64_t default_wait_ms = 30000;

std::int64_t ms_of(custos::Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// --timeout when given, else `fallback`.
std::int64_t timeout_ms(const options& o, std::int64_t fallback) {
    return o.has_timeout ? ms_of(o.timeout) : fallback;
}

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

// --- talking to custosd ---

struct session {
    std::string_view socket;
    const char* verb = "";
};

// Exit 6, with what to do.
int unreachable(const session& s, const request_error& e) {
    const int len = static_cast<int>(s.socket.size());
    if (e.kind == failure::timeout) {
        std::fprintf(stderr, "custosctl: custosd at %.*s did not answer in time (%s)\n", len,
                     s.socket.data(), e.message);
        std::fprintf(stderr, "  custosd may be overloaded or stuck: check its log; a longer "
                             "--timeout gives it more time\n");
        return control::exit_unreachable;
    }
    std::fprintf(stderr, "custosctl: cannot reach custosd at %.*s: %s\n", len, s.socket.data(),
                 e.message);
    switch (e.sys_errno) {
    case ENOENT:
    case ENOTDIR:
        std::fprintf(stderr,
                     "  no socket there: is custosd running? Its [control] socket may be "
                     "elsewhere: give it with --socket PATH or %.*s\n",
                     static_cast<int>(control::env_socket.size()), control::env_socket.data());
        break;
    case ECONNREFUSED:
        std::fprintf(stderr, "  nothing listens there: custosd is not running (a stale socket "
                             "file), or its control plane is off ([control] enabled = no)\n");
        break;
    case EACCES:
    case EPERM:
        std::fprintf(stderr, "  the socket's mode and group decide who may connect: run as root, "
                             "or join the socket's group ([control] group)\n");
        break;
    default:
        std::fprintf(stderr, "  check that custosd runs and serves this socket ([control] "
                             "socket)\n");
        break;
    }
    return control::exit_unreachable;
}

// One request. -1 when a response came (any status); otherwise the exit
// code, the problem printed.
int ask(const session& s, const char* method, std::string_view target, std::int64_t timeout,
        response& r) {
    request_error e;
    // 503 from a route other than /health: every connection is in use;
    // asked again three times, 100, 200 and 400 ms later.
    const bool health = target.substr(0, control::route_health.size()) == control::route_health;
    for (int again = 0; custos::ctl::exchange(s.socket, method, target, timeout, r, e); ++again) {
        if (r.status != 503 || health || again == 3) {
            return -1;
        }
        ::usleep(static_cast<useconds_t>(100000 << again));
    }
    if (e.kind == failure::unreachable || e.kind == failure::timeout ||
        (e.kind == failure::broken && e.sys_errno == ECONNRESET)) {
        return unreachable(s, e);
    }
    std::fprintf(stderr, "custosctl: %s %.*s: %s\n", method, static_cast<int>(target.size()),
                 target.data(), e.message);
    return control::exit_failed;
}

// Writes `text` to `to`, ending it with a newline if it has none.
void print_body(std::FILE* to, std::string_view text) {
    if (text.empty()) {
        return;
    }
    std::fwrite(text.data(), 1, text.size(), to);
    if (text.back() != '\n') {
        std::fputc('\n', to);
    }
}

// A response that is not a success: what it says, and its exit code.
int refused(const session& s, const char* method, std::string_view target, const response& r,
            std::string_view name = {}) {
    std::fprintf(stderr, "custosctl: %s: %s %.*s: %d %.*s\n", s.verb, method,
                 static_cast<int>(target.size()), target.data(), r.status,
                 static_cast<int>(r.reason.size()), r.reason.data());
    print_body(stderr, r.body);
    switch (r.status) {
    case 400:
        return control::exit_usage;
    case 403:
        std::fprintf(stderr, "  only root and custosd's [control] operators may act; ask for "
                             "operator rights, or use sudo\n");
        return control::exit_denied;
    case 404:
        if (!name.empty()) {
            std::fprintf(stderr, "  no such name in custosd's table: 'custosctl status' lists "
                                 "the services\n");
        }
        return control::exit_unknown_name;
    case 503:
        return control::exit_failed;
    case 504:
        std::fprintf(stderr, "  not settled in time: a longer --timeout waits longer\n");
        return control::exit_failed;
    default:
        return control::exit_failed;
    }
}

// "/services/" + NAME, percent-encoded, + suffix, into `out`. False when it
// does not fit.
bool target_for(char* out, std::size_t cap, std::string_view prefix, std::string_view name,
                std::string_view suffix) {
    std::size_t w = 0;
    auto put = [&](char c) {
        if (w + 1 < cap) {
            out[w] = c;
        }
        ++w;
    };
    for (char c : prefix) {
        put(c);
    }
    constexpr char hex[] = "0123456789ABCDEF";
    for (char c : name) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        if (plain) {
            put(c);
        } else {
            const auto u = static_cast<unsigned char>(c);
            put('%');
            put(hex[u >> 4]);
            put(hex[u & 15]);
        }
    }
    for (char c : suffix) {
        put(c);
    }
    if (w >= cap) {
        return false;
    }
    out[w] = '\0';
    return true;
}

// --- the TSV (control.hpp): NAME STATE PID UPTIME_S RESTARTS LAST_EXIT REASON WANTED ---

struct row {
    std::string_view name, state, pid, uptime, restarts, last_exit, reason, wanted;
};

// The next row of `tsv` from `at`; false at the end. Lines with fewer than
// seven fields are skipped (a newer server may add fields at the end).
bool next_row(std::string_view tsv, std::size_t& at, row& r) {
    while (at < tsv.size()) {
        std::size_t eol = tsv.find('\n', at);
        if (eol == std::string_view::npos) {
            eol = tsv.size();
        }
        std::string_view line = tsv.substr(at, eol - at);
        at = eol + 1;
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        std::string_view f[8];
        std::size_t n = 0;
        while (n < 8) {
            const std::size_t tab = line.find('\t');
            f[n++] = line.substr(0, tab);
            if (tab == std::string_view::npos) {
                break;
            }
            line.remove_prefix(tab + 1);
        }
        if (n < 7 || f[0].empty()) {
            continue;
        }
        r = row{f[0], f[1], f[2], f[3], f[4], f[5], f[6], n > 7 ? f[7] : std::string_view{}};
        return true;
    }
    return false;
}

bool find_row(std::string_view tsv, std::string_view name, row& r) {
    std::size_t at = 0;
    while (next_row(tsv, at, r)) {
        if (r.name == name) {
            return true;
        }
    }
    return false;
}

// Not running: no process, none being started or stopped.
bool not_running(std::string_view state) {
    return state == "stopped" || state == "waiting" || state == "backoff" || state == "failed";
}

// 45s, 3m12s, 2h05m, 4d03h from "12.345" seconds; "-" as it is.
void human_uptime(std::string_view s, char* out, std::size_t cap) {
    unsigned long long secs = 0;
    std::size_t digits = 0;
    for (char c : s) {
        if (c < '0' || c > '9' || digits == 12) {
            break;
        }
        secs = secs * 10 + static_cast<unsigned>(c - '0');
        ++digits;
    }
    if (digits == 0) {
        std::snprintf(out, cap, "-");
    } else if (secs < 60) {
        std::snprintf(out, cap, "%llus", secs);
    } else if (secs < 3600) {
        std::snprintf(out, cap, "%llum%02llus", secs / 60, secs % 60);
    } else if (secs < 86400) {
        std::snprintf(out, cap, "%lluh%02llum", secs / 3600, secs % 3600 / 60);
    } else {
        std::snprintf(out, cap, "%llud%02lluh", secs / 86400, secs % 86400 / 3600);
    }
}

bool use_colour() {
    const char* no = std::getenv("NO_COLOR");
    const char* term = std::getenv("TERM");
    return ::isatty(1) == 1 && (no == nullptr || *no == '\0') &&
           (term == nullptr || std::strcmp(term, "dumb") != 0);
}

const char* colour_of(std::string_view state) {
    if (state == "ready") {
        return "\033[32m";
    }
    if (state == "failed") {
        return "\033[31m";
    }
    if (state == "backoff" || state == "starting") {
        return "\033[33m";
    }
    return nullptr;
}

// Text from the server, with control bytes as '?': a terminal must show it,
// not obey it.
void put_field(std::string_view f, int width) {
    for (char c : f) {
        const auto u = static_cast<unsigned char>(c);
        std::fputc(u < 0x20 || u == 0x7f ? '?' : c, stdout);
    }
    for (int i = static_cast<int>(f.size()); i < width; ++i) {
        std::fputc(' ', stdout);
    }
}

void print_table(std::string_view tsv) {
    constexpr int cols = 7;
    const char* head[cols] = {"NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LAST-EXIT", "REASON"};
    int width[cols];
    for (int i = 0; i < cols; ++i) {
        width[i] = static_cast<int>(std::strlen(head[i]));
    }
    auto fields = [](const row& r, char* up, std::size_t cap, std::string_view* f) {
        human_uptime(r.uptime, up, cap);
        f[0] = r.name;
        f[1] = r.state;
        f[2] = r.pid == "0" ? std::string_view("-") : r.pid;
        f[3] = up;
        f[4] = r.restarts;
        f[5] = r.last_exit;
        f[6] = r.reason;
    };
    row r;
    std::size_t at = 0;
    while (next_row(tsv, at, r)) {
        char up[32];
        std::string_view f[cols];
        fields(r, up, sizeof up, f);
        for (int i = 0; i < cols; ++i) {
            const int n = static_cast<int>(f[i].size() < 200 ? f[i].size() : 200);
            width[i] = n > width[i] ? n : width[i];
        }
    }
    for (int i = 0; i < cols; ++i) {
        put_field(head[i], i + 1 < cols ? width[i] + 2 : 0);
    }
    std::fputc('\n', stdout);
    const bool colour = use_colour();
    at = 0;
    while (next_row(tsv, at, r)) {
        char up[32];
        std::string_view f[cols];
        fields(r, up, sizeof up, f);
        for (int i = 0; i < cols; ++i) {
            const int w = i + 1 < cols ? width[i] + 2 : 0;
            const char* c = i == 1 && colour ? colour_of(f[i]) : nullptr;
            if (c != nullptr) {
                std::fputs(c, stdout);
                put_field(f[i], 0);
                std::fputs("\033[0m", stdout);
                put_field({}, w - static_cast<int>(f[i].size()));
            } else {
                put_field(f[i], w);
            }
        }
        std::fputc('\n', stdout);
    }
}

// GET /status?format=tsv into `r`; -1 when it came (200).
int get_tsv(const session& s, std::int64_t timeout, response& r) {
    constexpr std::string_view target = "/status?format=tsv";
    if (const int rc = ask(s, "GET", target, timeout, r); rc >= 0) {
        return rc;
    }
    return r.status == 200 ? -1 : refused(s, "GET", target, r);
}

// --- the verbs ---

int cmd_status(const session& s, const options& o) {
    response r;
    const std::int64_t io = timeout_ms(o, default_io_ms);
    if (o.nargs == 1) {
        const std::string_view target = o.json ? control::route_status : "/status?format=tsv";
        if (const int rc = ask(s, "GET", target, io, r); rc >= 0) {
            return rc;
        }
        if (r.status != 200) {
            return refused(s, "GET", target, r);
        }
        if (o.json) {
            print_body(stdout, r.body);
        } else {
            print_table(r.body);
        }
        return control::exit_ok;
    }
    if (o.nargs != 2) {
        std::fprintf(stderr, "custosctl: status takes at most one NAME\n");
        return control::exit_usage;
    }
    const std::string_view name = o.args[1];
    // The state first (the exit code), then the detail.
    if (const int rc = get_tsv(s, io, r); rc >= 0) {
        return rc;
    }
    row found;
    if (!find_row(r.body, name, found)) {
        std::fprintf(stderr, "custosctl: no service '%s': 'custosctl status' lists them\n",
                     o.args[1]);
        return control::exit_unknown_name;
    }
    char state[32];
    std::snprintf(state, sizeof state, "%.*s", static_cast<int>(found.state.size()),
                  found.state.data());
    char target[512];
    if (!target_for(target, sizeof target, control::prefix_services, name,
                    o.json ? "" : "?format=text")) {
        std::fprintf(stderr, "custosctl: the name is too long\n");
        return control::exit_usage;
    }
    if (const int rc = ask(s, "GET", target, io, r); rc >= 0) {
        return rc;
    }
    if (r.status != 200) {
        return refused(s, "GET", target, r, name);
    }
    print_body(stdout, r.body);
    return not_running(state) ? control::exit_not_running : control::exit_ok;
}

// start, stop, restart: each NAME in turn; the first failure's code.
int cmd_action(const session& s, const options& o, std::string_view action) {
    if (o.nargs < 2) {
        std::fprintf(stderr, "custosctl: %.*s needs at least one NAME\n",
                     static_cast<int>(action.size()), action.data());
        return control::exit_usage;
    }
    const std::int64_t wait = timeout_ms(o, default_wait_ms);
    const std::int64_t io = o.wait ? wait + default_io_ms : timeout_ms(o, default_io_ms);
    char suffix[64];
    if (o.wait) {
        std::snprintf(suffix, sizeof suffix, "/%.*s?wait=%lldms", static_cast<int>(action.size()),
                      action.data(), static_cast<long long>(wait));
    } else {
        std::snprintf(suffix, sizeof suffix, "/%.*s", static_cast<int>(action.size()),
                      action.data());
    }
    int result = control::exit_ok;
    for (int i = 1; i < o.nargs; ++i) {
        const std::string_view name = o.args[i];
        char target[512];
        if (!target_for(target, sizeof target, control::prefix_services, name, suffix)) {
            std::fprintf(stderr, "custosctl: the name is too long\n");
            return control::exit_usage;
        }
        response r;
        if (const int rc = ask(s, "POST", target, io, r); rc >= 0) {
            return rc;
        }
        if (r.status != 200) {
            const int rc = refused(s, "POST", target, r, name);
            if (rc == control::exit_denied) {
                return rc; // the same for every name
            }
            result = result == control::exit_ok ? rc : result;
            continue;
        }
        if (o.json) {
            print_body(stdout, r.body);
        }
        // The state it is in now, from the TSV.
        if (const int rc = get_tsv(s, default_io_ms, r); rc >= 0) {
            return rc;
        }
        row found;
        const bool known = find_row(r.body, name, found);
        const std::string_view state = known ? found.state : std::string_view("unknown");
        const bool failed = o.wait && state == "failed" && action != control::action_stop;
        if (!o.json) {
            std::printf("%.*s: %.*s%s: %.*s", static_cast<int>(name.size()), name.data(),
                        static_cast<int>(action.size()), action.data(), o.wait ? "" : " requested",
                        static_cast<int>(state.size()), state.data());
            if (known && found.reason != "-") {
                std::printf(" (%.*s)", static_cast<int>(found.reason.size()), found.reason.data());
            }
            std::printf("\n");
        }
        if (failed) {
            std::fprintf(stderr, "custosctl: %.*s failed: 'custosctl status %.*s' says why\n",
                         static_cast<int>(name.size()), name.data(), static_cast<int>(name.size()),
                         name.data());
            result = result == control::exit_ok ? control::exit_failed : result;
        }
    }
    return result;
}

// The /health line of `name` ("[+] probe NAME ready", "[-] NAME failed:
// ..."), empty when there is none.
std::string_view health_line(std::string_view text, std::string_view kind, std::string_view name) {
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t eol = text.find('\n', at);
        if (eol == std::string_view::npos) {
            eol = text.size();
        }
        const std::string_view line = text.substr(at, eol - at);
        at = eol + 1;
        if (line.size() < 4 || (line.substr(0, 4) != "[+] " && line.substr(0, 4) != "[-] ")) {
            continue;
        }
        std::string_view rest = line.substr(4);
        if (rest.substr(0, kind.size()) == kind && rest.size() > kind.size() &&
            rest[kind.size()] == ' ') {
            rest.remove_prefix(kind.size() + 1);
        }
        if (rest.substr(0, name.size()) == name && rest.size() > name.size() &&
            rest[name.size()] == ' ') {
            return line;
        }
    }
    return {};
}

int cmd_check(const session& s, const options& o) {
    if (o.nargs != 2) {
        std::fprintf(stderr, "custosctl: check takes one PROBE\n");
        return control::exit_usage;
    }
    const std::string_view name = o.args[1];
    const std::int64_t wait = timeout_ms(o, default_wait_ms);
    const std::int64_t io = o.wait ? wait + default_io_ms : timeout_ms(o, default_io_ms);
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "/%.*s", static_cast<int>(control::action_check.size()),
                  control::action_check.data());
    if (o.wait) {
        std::snprintf(suffix + std::strlen(suffix), sizeof suffix - std::strlen(suffix),
                      "?wait=%lldms", static_cast<long long>(wait));
    }
    char target[512];
    if (!target_for(target, sizeof target, control::prefix_probes, name, suffix)) {
        std::fprintf(stderr, "custosctl: the name is too long\n");
        return control::exit_usage;
    }
    response r;
    if (const int rc = ask(s, "POST", target, io, r); rc >= 0) {
        return rc;
    }
    if (r.status != 200) {
        return refused(s, "POST", target, r, name);
    }
    if (o.json) {
        print_body(stdout, r.body);
    }
    if (!o.wait) {
        if (!o.json) {
            std::printf("probe %s: check started\n", o.args[1]);
        }
        return control::exit_ok;
    }
    // Its result, as /health tells it.
    constexpr std::string_view health = control::route_health;
    if (const int rc = ask(s, "GET", health, default_io_ms, r); rc >= 0) {
        return rc;
    }
    const std::string_view line = health_line(r.body, "probe", name);
    if (!o.json && !line.empty()) {
        print_body(stdout, line);
    }
    return line.substr(0, 3) == "[-]" ? control::exit_failed : control::exit_ok;
}

int cmd_health(const session& s, const options& o) {
    if (o.nargs != 1) {
        std::fprintf(stderr, "custosctl: health takes no argument\n");
        return control::exit_usage;
    }
    const std::int64_t io = timeout_ms(o, default_io_ms);
    response r;
    constexpr std::string_view text = control::route_health;
    if (const int rc = ask(s, "GET", text, io, r); rc >= 0) {
        return rc;
    }
    if (r.status != 200 && r.status != 503) {
        return refused(s, "GET", text, r);
    }
    // "health: degraded" when the server says it; else by the status alone.
    int code = r.status == 200 ? control::exit_ok : control::exit_failed;
    const std::size_t h = r.body.find("health: ");
    if (h != std::string_view::npos && (h == 0 || r.body[h - 1] == '\n')) {
        const std::string_view word = r.body.substr(h + 8, 2);
        code = word == "ok" ? control::exit_ok : control::exit_failed;
    }
    if (!o.json) {
        print_body(stdout, r.body);
        return code;
    }
    constexpr std::string_view json = "/health?json";
    if (const int rc = ask(s, "GET", json, io, r); rc >= 0) {
        return rc;
    }
    if (r.status != 200 && r.status != 503) {
        return refused(s, "GET", json, r);
    }
    print_body(stdout, r.body);
    return code;
}

std::int64_t now_ms() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

int cmd_wait_ready(const session& s, const options& o) {
    if (o.nargs < 2) {
        std::fprintf(stderr, "custosctl: wait-ready needs at least one NAME\n");
        return control::exit_usage;
    }
    const std::int64_t deadline = now_ms() + timeout_ms(o, default_wait_ms);
    response r;
    while (true) {
        const std::int64_t left = deadline - now_ms();
        const std::int64_t io = left < 1000 ? 1000 : left < default_io_ms ? left : default_io_ms;
        if (const int rc = get_tsv(s, io, r); rc >= 0) {
            return rc;
        }
        int ready = 0;
        for (int i = 1; i < o.nargs; ++i) {
            row found;
            if (!find_row(r.body, o.args[i], found)) {
                std::fprintf(stderr, "custosctl: no service '%s': 'custosctl status' lists them\n",
                             o.args[i]);
                return control::exit_unknown_name;
            }
            if (found.state == "failed") {
                std::fprintf(stderr,
                             "custosctl: %s failed (%.*s): 'custosctl status %s' says why\n",
                             o.args[i], static_cast<int>(found.reason.size()), found.reason.data(),
                             o.args[i]);
                return control::exit_failed;
            }
            ready += found.state == "ready" ? 1 : 0;
        }
        if (ready == o.nargs - 1) {
            break;
        }
        if (now_ms() >= deadline) {
            std::fprintf(stderr, "custosctl: not ready in time:");
            for (int i = 1; i < o.nargs; ++i) {
                row found;
                if (find_row(r.body, o.args[i], found) && found.state != "ready") {
                    std::fprintf(stderr, " %s (%.*s)", o.args[i],
                                 static_cast<int>(found.state.size()), found.state.data());
                }
            }
            std::fprintf(stderr, "\n");
            return control::exit_failed;
        }
        ::usleep(200 * 1000);
    }
    if (o.json) {
        constexpr std::string_view target = control::route_status;
        if (const int rc = ask(s, "GET", target, default_io_ms, r); rc >= 0) {
            return rc;
        }
        print_body(stdout, r.body);
    } else {
        for (int i = 1; i < o.nargs; ++i) {
            std::printf("%s: ready\n", o.args[i]);
        }
    }
    return control::exit_ok;
}

int cmd_watchdog(const session& s, const options& o) {
    const std::int64_t io = default_io_ms;
    const bool hold = o.nargs == 3 && std::strcmp(o.args[1], "hold") == 0;
    const bool release = o.nargs == 2 && std::strcmp(o.args[1], "release") == 0;
    if (!hold && !release) {
        std::fprintf(stderr, "custosctl: write 'watchdog hold DURATION' or 'watchdog release'\n");
        return control::exit_usage;
    }
    char target[128];
    const char* method = "DELETE";
    custos::Duration d{0};
    if (hold) {
        if (!duration_arg("hold", o.args[2], d)) {
            return control::exit_usage;
        }
        method = "POST";
        std::snprintf(target, sizeof target, "%.*s?for=%lldms",
                      static_cast<int>(control::route_watchdog_hold.size()),
                      control::route_watchdog_hold.data(), static_cast<long long>(ms_of(d)));
    } else {
        std::snprintf(target, sizeof target, "%.*s",
                      static_cast<int>(control::route_watchdog_hold.size()),
                      control::route_watchdog_hold.data());
    }
    response r;
    if (const int rc = ask(s, method, target, io, r); rc >= 0) {
        return rc;
    }
    if (r.status == 409 && release) {
        std::fprintf(stderr, "custosctl: no watchdog hold to release\n");
        return control::exit_failed;
    }
    if (r.status != 200) {
        return refused(s, method, target, r);
    }
    if (o.json) {
        print_body(stdout, r.body);
    } else if (hold) {
        std::printf("watchdog: held for %s\n", o.args[2]);
    } else {
        std::printf("watchdog: hold released\n");
    }
    return control::exit_ok;
}

int cmd_reload(const session& s, const options& o) {
    if (o.nargs != 1) {
        std::fprintf(stderr, "custosctl: reload takes no argument\n");
        return control::exit_usage;
    }
    const std::string_view target = o.json ? "/reload" : "/reload?format=text";
    response r;
    if (const int rc = ask(s, "POST", target, timeout_ms(o, default_wait_ms), r); rc >= 0) {
        return rc;
    }
    if (r.status == 404 || r.status == 501) {
        std::fprintf(stderr,
                     "custosctl: this custosd cannot reload (POST /reload: %d); restart "
                     "it to apply a new config\n",
                     r.status);
        return control::exit_failed;
    }
    if (r.status == 403) {
        return refused(s, "POST", target, r);
    }
    if (r.status != 200) {
        // The config's problems, each FILE:LINE: nothing was changed.
        refused(s, "POST", target, r);
        return control::exit_failed;
    }
    print_body(stdout, r.body);
    return control::exit_ok;
}

int cmd_metrics(const session& s, const options& o) {
    if (o.nargs != 1) {
        std::fprintf(stderr, "custosctl: metrics takes no argument\n");
        return control::exit_usage;
    }
    constexpr std::string_view target = control::route_metrics;
    response r;
    if (const int rc = ask(s, "GET", target, timeout_ms(o, default_io_ms), r); rc >= 0) {
        return rc;
    }
    if (r.status != 200) {
        return refused(s, "GET", target, r);
    }
    print_body(stdout, r.body);
    return control::exit_ok;
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

int main(int argc, char** argv) {
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
