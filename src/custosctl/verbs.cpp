// custosctl's verbs (cli.hpp): status, start, stop, restart, check, health,
// wait-ready, watchdog, reload, metrics and prune, each a request or a few and its
// output, returning the exit code.
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

#include <custos/control.hpp>

#include "custosctl/cli.hpp"
#include "table/values.hpp"

namespace custos::ctl::cli {

namespace {

constexpr std::int64_t default_io_ms = 10000;
constexpr std::int64_t default_wait_ms = 30000;

std::int64_t ms_of(custos::Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

// --timeout when given, else `fallback`.
std::int64_t timeout_ms(const options& o, std::int64_t fallback) {
    return o.has_timeout ? ms_of(o.timeout) : fallback;
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

// Not running: no process, none being started or stopped.
bool not_running(std::string_view state) {
    return state == "stopped" || state == "waiting" || state == "backoff" || state == "failed";
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

std::int64_t now_ms() {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

} // namespace

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

// The seq of the last line of `body` (#SEQ ... or {"seq":SEQ,...});
// false when it has none.
static bool last_seq(std::string_view body, std::uint64_t& out) {
    while (!body.empty() && body.back() == '\n') {
        body.remove_suffix(1);
    }
    const std::size_t nl = body.rfind('\n');
    std::string_view line = nl == std::string_view::npos ? body : body.substr(nl + 1);
    constexpr std::string_view json_lead = "{\"seq\":";
    if (line.substr(0, 1) == "#") {
        line.remove_prefix(1);
    } else if (line.substr(0, json_lead.size()) == json_lead) {
        line.remove_prefix(json_lead.size());
    } else {
        return false;
    }
    std::uint64_t v = 0;
    std::size_t i = 0;
    for (; i < line.size() && i < 20 && line[i] >= '0' && line[i] <= '9'; ++i) {
        v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
    }
    out = v;
    return i != 0;
}

int cmd_events(const session& s, const options& o) {
    if (o.nargs != 1) {
        std::fprintf(stderr, "custosctl: events takes no argument (--since SEQ, -f)\n");
        return control::exit_usage;
    }
    std::uint64_t since = 0;
    if (o.since != nullptr) {
        std::uint64_t v = 0;
        if (custos::tbl::parse_uint(o.since, UINT64_MAX / 10, v) != custos::tbl::num_status::ok) {
            std::fprintf(stderr, "custosctl: --since takes a record's seq (a number)\n");
            return control::exit_usage;
        }
        since = v;
    }
    // Catch up a page at a time; then, with -f, long-poll (30 s a request).
    bool caught_up = false;
    bool paged = false; // a page was printed
    for (;;) {
        const bool poll = caught_up && o.follow;
        char target[160];
        std::snprintf(target, sizeof target, "/events?since=%llu&limit=1000&format=%s%s",
                      static_cast<unsigned long long>(since), o.json ? "json" : "text",
                      poll ? "&follow=30s" : "");
        response r;
        const std::int64_t io = poll ? 30000 + default_io_ms : timeout_ms(o, default_io_ms);
        if (const int rc = ask(s, "GET", target, io, r); rc >= 0) {
            return rc;
        }
        if (r.status != 200) {
            return refused(s, "GET", target, r);
        }
        if (r.body.empty()) {
            if (!o.follow) {
                return control::exit_ok;
            }
            caught_up = true;
            continue;
        }
        // Records from --since on that custosd no longer keeps (rotated
        // out of the files, evicted from the RAM ring): said on stderr, so
        // the output stays records only. Without --since the first page
        // starts at the oldest kept, which is no loss.
        std::uint64_t lost = 0;
        if ((o.since != nullptr || paged) && !r.lost.empty() &&
            custos::tbl::parse_uint(r.lost, UINT64_MAX / 10, lost) == custos::tbl::num_status::ok &&
            lost != 0) {
            std::fprintf(stderr, "custosctl: %llu records from #%llu on are no longer kept\n",
                         static_cast<unsigned long long>(lost),
                         static_cast<unsigned long long>(since));
        }
        std::fwrite(r.body.data(), 1, r.body.size(), stdout);
        if (std::fflush(stdout) != 0) {
            return control::exit_failed; // a closed pipe: nobody reads
        }
        // The next page from X-Custos-Next (the files and the ring page the
        // same way); from the last record's seq where custosd sends none.
        std::uint64_t next = 0;
        std::uint64_t last = 0;
        if (r.next.empty() ||
            custos::tbl::parse_uint(r.next, UINT64_MAX / 10, next) != custos::tbl::num_status::ok) {
            if (!last_seq(r.body, last)) {
                return control::exit_failed;
            }
            next = last + 1;
        }
        if (next <= since) {
            std::fprintf(stderr, "custosctl: custosd's next page (#%llu) is not after #%llu\n",
                         static_cast<unsigned long long>(next),
                         static_cast<unsigned long long>(since));
            return control::exit_failed; // no progress: never a loop without end
        }
        since = next;
        paged = true;
    }
}

int cmd_prune(const session& s, const options& o) {
    if (o.nargs > 2 || (o.dry_run && o.nargs != 2)) {
        std::fprintf(stderr, "custosctl: write 'prune', 'prune NAME' or 'prune NAME --dry-run'\n");
        return control::exit_usage;
    }
    char target[256];
    const char* method = "GET";
    if (o.nargs == 1) {
        std::snprintf(target, sizeof target, "%.*s%s",
                      static_cast<int>(control::route_prune.size()), control::route_prune.data(),
                      o.json ? "" : "?format=text");
    } else {
        method = "POST";
        const char* query = o.dry_run ? (o.json ? "?dry_run=1" : "?dry_run=1&format=text")
                                      : (o.json ? "" : "?format=text");
        if (!target_for(target, sizeof target, control::prefix_prune, o.args[1], query)) {
            std::fprintf(stderr, "custosctl: the job name is too long\n");
            return control::exit_usage;
        }
    }
    response r;
    if (const int rc = ask(s, method, target, timeout_ms(o, default_io_ms), r); rc >= 0) {
        return rc;
    }
    if (r.status == 404 && o.nargs == 2) {
        std::fprintf(stderr, "custosctl: no prune job '%s': 'custosctl prune' lists them\n",
                     o.args[1]);
        return control::exit_unknown_name;
    }
    if (r.status == 503 && o.nargs == 2) {
        // The run failed: its reason and what to do, as custosd said them.
        refused(s, method, target, r, o.args[1]);
        return control::exit_failed;
    }
    if (r.status != 200) {
        return refused(s, method, target, r, o.nargs == 2 ? o.args[1] : std::string_view());
    }
    if (r.body.empty() && !o.json) {
        std::printf("no prune jobs\n");
        return control::exit_ok;
    }
    print_body(stdout, r.body);
    return control::exit_ok;
}

int cmd_logs(const session& s, const options& o) {
    if (o.nargs != 2) {
        std::fprintf(stderr, "custosctl: logs takes one NAME (-n LINES, -f)\n");
        return control::exit_usage;
    }
    std::uint64_t n = 100;
    if (o.lines != nullptr &&
        (custos::tbl::parse_uint(o.lines, 10000, n) != custos::tbl::num_status::ok || n == 0)) {
        std::fprintf(stderr, "custosctl: -n takes a line count from 1 to 10000\n");
        return control::exit_usage;
    }
    const std::string_view name = o.args[1];
    std::uint64_t since = 0;
    bool first = true;
    for (;;) {
        char query[96];
        if (first) {
            std::snprintf(query, sizeof query, "/logs?n=%llu", static_cast<unsigned long long>(n));
        } else {
            std::snprintf(query, sizeof query, "/logs?since=%llu&follow=30s",
                          static_cast<unsigned long long>(since));
        }
        char target[512];
        if (!target_for(target, sizeof target, control::prefix_services, name, query)) {
            std::fprintf(stderr, "custosctl: the name is too long\n");
            return control::exit_usage;
        }
        response r;
        const std::int64_t io = first ? timeout_ms(o, default_io_ms) : 30000 + default_io_ms;
        if (const int rc = ask(s, "GET", target, io, r); rc >= 0) {
            return rc;
        }
        if (r.status != 200) {
            return refused(s, "GET", target, r, name);
        }
        std::uint64_t lost = 0;
        if (!first && !r.lost.empty() &&
            custos::tbl::parse_uint(r.lost, UINT64_MAX / 10, lost) == custos::tbl::num_status::ok &&
            lost != 0) {
            std::printf("custosctl: %llu lines were dropped from the ring before they were "
                        "read\n",
                        static_cast<unsigned long long>(lost));
        }
        std::fwrite(r.body.data(), 1, r.body.size(), stdout);
        if (std::fflush(stdout) != 0) {
            return control::exit_failed;
        }
        if (!o.follow) {
            return control::exit_ok;
        }
        if (custos::tbl::parse_uint(r.next, UINT64_MAX / 10, since) !=
            custos::tbl::num_status::ok) {
            std::fprintf(stderr, "custosctl: custosd sent no X-Custos-Next\n");
            return control::exit_failed;
        }
        first = false;
    }
}

} // namespace custos::ctl::cli
