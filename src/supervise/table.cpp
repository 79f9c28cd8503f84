// Whole-table validation. Every check reports and goes on, so one run lists
// every problem; nothing here starts or changes anything.
#include "supervise/table.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "probe/validate.hpp"
#include "table/users.hpp"

namespace custos::sup {
namespace {

constexpr std::size_t max_name = 31;
// What the cycle search can walk; custosd's max_services stops at it too.
constexpr std::size_t max_table = 4096;

} // namespace

bool name_valid(std::string_view n) noexcept {
    if (n.empty() || n.size() > max_name) {
        return false;
    }
    for (char c : n) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

namespace {

struct reporter {
    problem_sink* sink;
    std::uint32_t count = 0;

    void operator()(std::uint32_t svc, spec_field f, const Error& e) noexcept {
        ++count;
        if (sink != nullptr) {
            sink->report(svc, f, e);
        }
    }
    void operator()(std::uint32_t svc, spec_field f, Reason r, int err, std::string_view subject,
                    const char* resolution = nullptr) noexcept {
        Error e(r, err, subject);
        if (resolution != nullptr) {
            e.with_resolution(resolution);
        }
        (*this)(svc, f, e);
    }
};

// Index of `name` in the table, or UINT32_MAX.
std::uint32_t find(std::span<const ServiceSpec> t, std::string_view name) noexcept {
    for (std::uint32_t i = 0; i < t.size(); ++i) {
        if (t[i].name == name) {
            return i;
        }
    }
    return UINT32_MAX;
}

bool is_executable_file(const char* path, int* err) noexcept {
    struct stat st {};
    if (::stat(path, &st) != 0) {
        *err = errno;
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = S_ISDIR(st.st_mode) ? EISDIR : EACCES;
        return false;
    }
    if (::access(path, X_OK) != 0) {
        *err = errno;
        return false;
    }
    return true;
}

// Cycle search: iterative depth-first search with colours over the
// dependency edges; each back edge found is one cycle, spelled from the
// stack. Tables are small (<= max_services), so the O(V+E) walk with a
// fixed stack is enough.
class cycle_finder {
public:
    cycle_finder(std::span<const ServiceSpec> t, reporter& rep) noexcept : t_(t), rep_(rep) {}

    void run() noexcept {
        for (std::uint32_t i = 0; i < t_.size() && i < max_nodes; ++i) {
            if (colour_[i] == white) {
                visit(i);
            }
        }
    }

private:
    static constexpr std::uint32_t max_nodes = 4096;
    enum : std::uint8_t { white, grey, black };

    void visit(std::uint32_t root) noexcept {
        std::uint32_t depth = 0;
        stack_[depth] = root;
        edge_[depth] = 0;
        colour_[root] = grey;
        ++depth;
        while (depth > 0) {
            std::uint32_t v = stack_[depth - 1];
            std::uint32_t& e = edge_[depth - 1];
            if (e >= t_[v].depends_on.size()) {
                colour_[v] = black;
                --depth;
                continue;
            }
            std::uint32_t w = find(t_, t_[v].depends_on[e]);
            ++e;
            if (w == UINT32_MAX || w >= max_nodes || w == v) {
                continue; // unknown dependency or self-dependency: reported elsewhere
            }
            if (colour_[w] == grey) {
                report(w, depth);
            } else if (colour_[w] == white) {
                colour_[w] = grey;
                stack_[depth] = w;
                edge_[depth] = 0;
                ++depth;
            }
        }
    }

    // The cycle is the stack from w's position to the top, back to w.
    void report(std::uint32_t w, std::uint32_t depth) noexcept {
        std::uint32_t from = 0;
        while (stack_[from] != w) {
            ++from;
        }
        char text[Error::subject_capacity + 1];
        std::size_t n = 0;
        auto put = [&](std::string_view s) {
            for (char c : s) {
                if (n + 1 < sizeof text) {
                    text[n++] = c;
                }
            }
        };
        for (std::uint32_t i = from; i < depth; ++i) {
            put(t_[stack_[i]].name);
            put(" -> ");
        }
        put(t_[w].name);
        text[n] = '\0';
        rep_(stack_[depth - 1], spec_field::depends_on, Reason::dependency_cycle, 0,
             std::string_view(text, n));
    }

    std::span<const ServiceSpec> t_;
    reporter& rep_;
    std::uint8_t colour_[max_nodes] = {};
    std::uint32_t stack_[max_nodes] = {};
    std::uint32_t edge_[max_nodes] = {};
};

void check_service(std::span<const ServiceSpec> t, std::uint32_t i, const validate_options& opt,
                   reporter& rep) noexcept {
    const ServiceSpec& s = t[i];
    const std::string_view n = s.name;
    if (!name_valid(n)) {
        rep(i, spec_field::name, Reason::name_invalid, 0, n);
    } else {
        for (std::uint32_t j = 0; j < i; ++j) {
            if (t[j].name == n) {
                rep(i, spec_field::name, Reason::name_duplicate, 0, n);
                break;
            }
        }
    }

    if (s.argv.empty() || s.argv[0].empty()) {
        rep(i, spec_field::argv, Reason::invalid_argument, 0, n,
            "Give the service a program to run (exec)");
    } else if (opt.check_executables) {
        char path[512];
        auto r = resolve_executable(s.argv[0], path, sizeof path);
        if (!r) {
            rep(i, spec_field::argv, r.error());
        }
    }
    for (std::string_view e : s.env) {
        auto eq = e.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            rep(i, spec_field::env, Reason::invalid_argument, 0, e,
                "Write environment entries as KEY=value");
        }
    }
    if (!s.cwd.empty() && s.cwd[0] != '/') {
        rep(i, spec_field::cwd, Reason::invalid_argument, 0, s.cwd, "Give cwd as an absolute path");
    }
    if (opt.resolve_users) {
        if (!s.user.empty()) {
            if (auto u = tbl::find_user(s.user, opt.passwd_path); !u) {
                rep(i, spec_field::user, u.error());
            }
        }
        if (!s.group.empty()) {
            if (auto g = tbl::find_group(s.group, opt.group_path); !g) {
                rep(i, spec_field::group, g.error());
            }
        }
    }

    auto negative = [&](Duration d, spec_field f) {
        if (d.count() < 0) {
            rep(i, f, Reason::invalid_argument, 0, n, "Durations cannot be negative");
            return true;
        }
        return false;
    };
    negative(s.backoff_initial, spec_field::backoff_initial);
    if (!negative(s.backoff_max, spec_field::backoff_max) && s.backoff_max < s.backoff_initial) {
        rep(i, spec_field::backoff_max, Reason::invalid_argument, 0, n,
            "Make backoff_max at least backoff_initial");
    }
    if (s.backoff_multiplier_x100 < 100 || s.backoff_multiplier_x100 > 10000) {
        rep(i, spec_field::backoff_multiplier, Reason::invalid_argument, 0, n,
            "Set backoff_multiplier between 1 and 100");
    }
    if (s.backoff_jitter_percent > 100) {
        rep(i, spec_field::backoff_jitter, Reason::invalid_argument, 0, n,
            "Set backoff_jitter between 0 and 100 percent");
    }
    negative(s.stable_after, spec_field::stable_after);
    if (!negative(s.intensity_window, spec_field::intensity) &&
        (s.intensity_restarts == 0) != (s.intensity_window.count() == 0)) {
        rep(i, spec_field::intensity, Reason::invalid_argument, 0, n,
            "Give restart_limit as N/T with both N and T above zero, e.g. 5/60s");
    }
    if (s.intensity_restarts > 1024) {
        rep(i, spec_field::intensity, Reason::invalid_argument, 0, n,
            "Keep restart_limit's N at or below 1024");
    }
    negative(s.start_delay, spec_field::start_delay);
    negative(s.ready_timeout, spec_field::ready_timeout);
    negative(s.stop_timeout, spec_field::stop_timeout);
    if (!negative(s.watchdog, spec_field::watchdog) && s.watchdog.count() > 0 &&
        s.ready != ReadyMode::notify) {
        rep(i, spec_field::watchdog, Reason::invalid_argument, 0, n,
            "Use watchdog only with ready = notify: the service pings with WATCHDOG=1");
    }
    if (s.ready == ReadyMode::fd && (s.ready_fd < 3 || s.ready_fd > 1023)) {
        rep(i, spec_field::ready, Reason::invalid_argument, 0, n,
            "Give the readiness descriptor as fd:N with N from 3 to 1023");
    }
    if (s.stop_signal <= 0 || s.stop_signal >= 65 || s.stop_signal == SIGSTOP) {
        rep(i, spec_field::stop_signal, Reason::invalid_argument, 0, n,
            "Use a signal that ends the process (TERM, INT, HUP, QUIT, KILL...)");
    }

    for (std::uint32_t d = 0; d < s.depends_on.size(); ++d) {
        std::string_view dep = s.depends_on[d];
        if (dep == n) {
            char text[80];
            int len = std::snprintf(text, sizeof text, "%.*s -> %.*s", static_cast<int>(n.size()),
                                    n.data(), static_cast<int>(n.size()), n.data());
            rep(i, spec_field::depends_on, Reason::dependency_cycle, 0,
                std::string_view(text, static_cast<std::size_t>(len) < sizeof text
                                           ? static_cast<std::size_t>(len)
                                           : sizeof text - 1));
        } else if (find(t, dep) == UINT32_MAX && probe::find_probe(opt.probes, dep) == UINT32_MAX) {
            rep(i, spec_field::depends_on, Reason::dependency_unknown, 0, dep,
                "Fix depends_on: it must name a service or a probe declared in the same table");
        }
    }
    if (s.ready == ReadyMode::probe && probe::find_probe(opt.probes, s.ready_probe) == UINT32_MAX) {
        rep(i, spec_field::ready, Reason::probe_unknown, 0,
            s.ready_probe.empty() ? std::string_view("ready = probe: without a name")
                                  : s.ready_probe,
            "Give ready = probe:NAME with NAME a probe declared in the same table");
    }
    if (!s.liveness.empty() && probe::find_probe(opt.probes, s.liveness) == UINT32_MAX) {
        rep(i, spec_field::liveness, Reason::probe_unknown, 0, s.liveness,
            "Give liveness the name of a probe declared in the same table");
    }
}

} // namespace

Result<void> resolve_executable(std::string_view argv0, char* out, std::size_t out_len) noexcept {
    if (argv0.empty()) {
        return fail(Reason::executable_missing, ENOENT, argv0);
    }
    int err = ENOENT;
    if (argv0.find('/') != std::string_view::npos) {
        if (argv0.size() + 1 > out_len) {
            return fail(Reason::executable_missing, ENAMETOOLONG, argv0);
        }
        std::memcpy(out, argv0.data(), argv0.size());
        out[argv0.size()] = '\0';
        if (is_executable_file(out, &err)) {
            return {};
        }
        return fail(Reason::executable_missing, err, argv0);
    }
    const char* path = std::getenv("PATH");
    if (path == nullptr || *path == '\0') {
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    }
    while (true) {
        const char* end = std::strchr(path, ':');
        std::size_t dlen =
            end != nullptr ? static_cast<std::size_t>(end - path) : std::strlen(path);
        if (dlen > 0 && dlen + 1 + argv0.size() + 1 <= out_len) {
            std::memcpy(out, path, dlen);
            out[dlen] = '/';
            std::memcpy(out + dlen + 1, argv0.data(), argv0.size());
            out[dlen + 1 + argv0.size()] = '\0';
            int e = 0;
            if (is_executable_file(out, &e)) {
                return {};
            }
            if (e != ENOENT && e != ENOTDIR) {
                err = e; // found but unusable: say why, not just "missing"
            }
        }
        if (end == nullptr) {
            break;
        }
        path = end + 1;
    }
    return fail(Reason::executable_missing, err, argv0);
}

std::uint32_t validate_table(std::span<const ServiceSpec> table, const validate_options& opt,
                             problem_sink* sink) noexcept {
    reporter rep{sink};
    if (table.size() > opt.max_services || table.size() > max_table) {
        char text[64];
        std::snprintf(text, sizeof text, "%zu services, max_services %u", table.size(),
                      opt.max_services);
        rep(UINT32_MAX, spec_field::section, Reason::capacity_exceeded, 0, text,
            "Raise max_services or declare fewer services");
        return rep.count; // the per-service walk below assumes a bounded table
    }
    for (std::uint32_t i = 0; i < table.size(); ++i) {
        check_service(table, i, opt, rep);
    }
    // Allocated only here, at init, and only as big as the bound it checks.
    auto* cf = new (std::nothrow) cycle_finder(table, rep);
    if (cf == nullptr) {
        rep(UINT32_MAX, spec_field::section, Reason::out_of_memory, ENOMEM, "dependency check");
        return rep.count;
    }
    cf->run();
    delete cf;
    return rep.count;
}

} // namespace custos::sup
