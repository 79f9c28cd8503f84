// custosctl's requests to custosd (cli.hpp): one exchange with its retries,
// and what an unreachable socket or a refusal tells the operator, with the
// exit code.
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include <custos/control.hpp>

#include "custosctl/cli.hpp"
#include "custosctl/client.hpp"

namespace custos::ctl::cli {

namespace {

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

} // namespace

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
            std::string_view name) {
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

} // namespace custos::ctl::cli
