// The table's one check: the entry point, the services and their
// dependency graph, and executable lookup. Probes: table/probes.cpp.
#include "table/validate.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "table/users.hpp"

namespace custos::tbl {
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
    // `room`: scratch_bytes(t.size(), 0) bytes, 4-aligned.
    cycle_finder(std::span<const ServiceSpec> t, reporter& rep, std::byte* room) noexcept
        : t_(t), rep_(rep) {
        stack_ = static_cast<std::uint32_t*>(static_cast<void*>(room)); // 4-aligned: see above
        edge_ = stack_ + t.size();
        colour_ = reinterpret_cast<std::uint8_t*>(edge_ + t.size());
        for (std::size_t i = 0; i < t.size(); ++i) {
            colour_[i] = white;
        }
    }

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
            std::uint32_t w = find_service(t_, t_[v].depends_on[e]);
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
        rep_.service(stack_[depth - 1], ServiceField::depends_on, Reason::dependency_cycle, 0,
                     std::string_view(text, n));
    }

    std::span<const ServiceSpec> t_;
    reporter& rep_;
    std::uint32_t* stack_ = nullptr; // t_.size() each
    std::uint32_t* edge_ = nullptr;
    std::uint8_t* colour_ = nullptr;
};

void check_service(std::span<const ServiceSpec> t, std::span<const ProbeSpec> probes,
                   std::uint32_t i, const options& opt, reporter& rep) noexcept {
    const ServiceSpec& s = t[i];
    const std::string_view n = s.name;
    if (!name_valid(n)) {
        rep.service(i, ServiceField::name, Reason::name_invalid, 0, n);
    } else {
        for (std::uint32_t j = 0; j < i; ++j) {
            if (t[j].name == n) {
                rep.service(i, ServiceField::name, Reason::name_duplicate, 0, n);
                break;
            }
        }
    }

    if (s.argv.empty() || s.argv[0].empty()) {
        rep.service(i, ServiceField::argv, Reason::invalid_argument, 0, n,
                    "Give the service a program to run (exec)");
    } else if (opt.check_executables) {
        char path[512];
        auto r = resolve_executable(s.argv[0], path, sizeof path);
        if (!r) {
            rep.service(i, ServiceField::argv, r.error());
        }
    }
    for (std::string_view e : s.env) {
        auto eq = e.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            rep.service(i, ServiceField::env, Reason::invalid_argument, 0, e,
                        "Write environment entries as KEY=value");
        }
    }
    if (!s.cwd.empty() && s.cwd[0] != '/') {
        rep.service(i, ServiceField::cwd, Reason::invalid_argument, 0, s.cwd,
                    "Give cwd as an absolute path");
    }
    if (opt.resolve_users) {
        if (!s.user.empty()) {
            if (auto u = tbl::find_user(s.user, opt.passwd_path); !u) {
                rep.service(i, ServiceField::user, u.error());
            }
        }
        if (!s.group.empty()) {
            if (auto g = tbl::find_group(s.group, opt.group_path); !g) {
                rep.service(i, ServiceField::group, g.error());
            }
        }
    }

    auto negative = [&](Duration d, ServiceField f) {
        if (d.count() < 0) {
            rep.service(i, f, Reason::invalid_argument, 0, n, "Durations cannot be negative");
            return true;
        }
        return false;
    };
    negative(s.backoff_initial, ServiceField::backoff_initial);
    if (!negative(s.backoff_max, ServiceField::backoff_max) && s.backoff_max < s.backoff_initial) {
        rep.service(i, ServiceField::backoff_max, Reason::invalid_argument, 0, n,
                    "Make backoff_max at least backoff_initial");
    }
    if (s.backoff_multiplier_x100 < 100 || s.backoff_multiplier_x100 > 10000) {
        rep.service(i, ServiceField::backoff_multiplier, Reason::invalid_argument, 0, n,
                    "Set backoff_multiplier between 1 and 100");
    }
    if (s.backoff_jitter_percent > 100) {
        rep.service(i, ServiceField::backoff_jitter, Reason::invalid_argument, 0, n,
                    "Set backoff_jitter between 0 and 100 percent");
    }
    negative(s.stable_after, ServiceField::stable_after);
    if (!negative(s.intensity_window, ServiceField::intensity) &&
        (s.intensity_restarts == 0) != (s.intensity_window.count() == 0)) {
        rep.service(i, ServiceField::intensity, Reason::invalid_argument, 0, n,
                    "Give restart_limit as N/T with both N and T above zero, e.g. 5/60s");
    }
    if (s.intensity_restarts > 1024) {
        rep.service(i, ServiceField::intensity, Reason::invalid_argument, 0, n,
                    "Keep restart_limit's N at or below 1024");
    }
    negative(s.start_delay, ServiceField::start_delay);
    negative(s.ready_timeout, ServiceField::ready_timeout);
    negative(s.stop_timeout, ServiceField::stop_timeout);
    if (!negative(s.watchdog, ServiceField::watchdog) && s.watchdog.count() > 0 &&
        s.ready != ReadyMode::notify) {
        rep.service(i, ServiceField::watchdog, Reason::invalid_argument, 0, n,
                    "Use watchdog only with ready = notify: the service pings with WATCHDOG=1");
    }
    if (s.ready == ReadyMode::fd && (s.ready_fd < 3 || s.ready_fd > 1023)) {
        rep.service(i, ServiceField::ready, Reason::invalid_argument, 0, n,
                    "Give the readiness descriptor as fd:N with N from 3 to 1023");
    }
    if (s.channel_fd != -1 && (s.channel_fd < 3 || s.channel_fd > 1023)) {
        rep.service(i, ServiceField::channel, Reason::invalid_argument, 0, n,
                    "Give the channel as fd:N with N from 3 to 1023");
    } else if (s.channel_fd != -1 && s.ready == ReadyMode::fd && s.channel_fd == s.ready_fd) {
        rep.service(i, ServiceField::channel, Reason::invalid_argument, 0, n,
                    "Give the channel a descriptor number of its own: ready uses it");
    }
    if (s.stop_signal <= 0 || s.stop_signal >= 65 || s.stop_signal == SIGSTOP) {
        rep.service(i, ServiceField::stop_signal, Reason::invalid_argument, 0, n,
                    "Use a signal that ends the process (TERM, INT, HUP, QUIT, KILL...)");
    }

    for (std::uint32_t d = 0; d < s.depends_on.size(); ++d) {
        std::string_view dep = s.depends_on[d];
        if (dep == n) {
            char text[80];
            int len = std::snprintf(text, sizeof text, "%.*s -> %.*s", static_cast<int>(n.size()),
                                    n.data(), static_cast<int>(n.size()), n.data());
            rep.service(i, ServiceField::depends_on, Reason::dependency_cycle, 0,
                        std::string_view(text, static_cast<std::size_t>(len) < sizeof text
                                                   ? static_cast<std::size_t>(len)
                                                   : sizeof text - 1));
        } else if (find_service(t, dep) == no_index && find_probe(probes, dep) == no_index) {
            rep.service(
                i, ServiceField::depends_on, Reason::dependency_unknown, 0, dep,
                "Fix depends_on: it must name a service or a probe declared in the same table");
        }
    }
    if (s.ready == ReadyMode::probe && find_probe(probes, s.ready_probe) == no_index) {
        rep.service(i, ServiceField::ready, Reason::probe_unknown, 0,
                    s.ready_probe.empty() ? std::string_view("ready = probe: without a name")
                                          : s.ready_probe,
                    "Give ready = probe:NAME with NAME a probe declared in the same table");
    }
    if (!s.liveness.empty() && find_probe(probes, s.liveness) == no_index) {
        rep.service(i, ServiceField::liveness, Reason::probe_unknown, 0, s.liveness,
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

void validate_services(const Table& tab, const options& opt, reporter& rep) noexcept {
    std::span<const ServiceSpec> table = tab.services;
    if (table.size() > tab.runtime.max_services || table.size() > max_table) {
        char text[64];
        std::snprintf(text, sizeof text, "%zu services, max_services %u", table.size(),
                      tab.runtime.max_services);
        rep.service(UINT32_MAX, ServiceField::section, Reason::capacity_exceeded, 0, text,
                    "Raise max_services or declare fewer services");
        return; // the per-service walk below assumes a bounded table
    }
    for (std::uint32_t i = 0; i < table.size(); ++i) {
        check_service(table, tab.probes, i, opt, rep);
        if (table[i].output == OutputMode::file && tab.log.dir.empty()) {
            rep.service(i, ServiceField::output, Reason::invalid_argument, 0, table[i].name,
                        "Set the log directory ([log] dir), or capture to the RAM ring "
                        "(output = ring)");
        }
    }
    // The walk's room: the caller's (a reload: nothing allocated), else
    // taken here, at init, only as big as the table.
    const std::size_t need = scratch_bytes(table.size(), 0);
    std::byte* room = nullptr;
    std::byte* owned = nullptr;
    if (opt.scratch.size() >= need &&
        reinterpret_cast<std::uintptr_t>(opt.scratch.data()) % alignof(std::uint32_t) == 0) {
        room = opt.scratch.data();
    } else {
        owned = new (std::nothrow) std::byte[need];
        room = owned;
    }
    if (room == nullptr) {
        rep.service(UINT32_MAX, ServiceField::section, Reason::out_of_memory, ENOMEM,
                    "dependency check");
        return;
    }
    cycle_finder cf(table, rep, room);
    cf.run();
    delete[] owned;
}

std::uint32_t validate(const Table& t, const options& opt, TableProblemSink* sink) noexcept {
    reporter rep(t, sink);
    validate_services(t, opt, rep);
    validate_probes(t, opt, rep);
    validate_monitors(t, rep);
    validate_watchdog(t, rep);
    validate_prunes(t, rep);
    return rep.count();
}

std::uint32_t find_service(std::span<const ServiceSpec> services, std::string_view name) noexcept {
    return find_named(services, name);
}

void reporter::report(TableKind kind, std::uint32_t i, std::uint8_t field,
                      const Error& e) noexcept {
    ++count_;
    if (sink_ == nullptr) {
        return;
    }
    TableProblem p;
    p.kind = kind;
    p.index = i;
    if (kind == TableKind::probe && i < table_.probes.size()) {
        p.name = table_.probes[i].name;
    } else if (kind == TableKind::service && i < table_.services.size()) {
        p.name = table_.services[i].name;
    } else if (kind == TableKind::monitor && i < table_.monitors.size()) {
        p.name = table_.monitors[i].name;
    } else if (kind == TableKind::watchdog) {
        p.name = "watchdog";
    } else if (kind == TableKind::prune && i < table_.prunes.size()) {
        p.name = table_.prunes[i].name;
    }
    p.field = field;
    p.error = e;
    sink_->report(p);
}

Error reporter::make(Reason r, int err, std::string_view subject, const char* resolution) noexcept {
    Error e(r, err, subject);
    if (resolution != nullptr) {
        e.with_resolution(resolution);
    }
    return e;
}

} // namespace custos::tbl

namespace custos {

std::uint32_t validate_table(const Table& table, TableProblemSink* sink) noexcept {
    return tbl::validate(table, tbl::options{}, sink);
}

std::string_view field_name(ServiceField f) noexcept {
    static constexpr std::string_view names[service_field_count] = {
        "section",
        "name",
        "argv",
        "env",
        "cwd",
        "user",
        "group",
        "restart",
        "backoff_initial",
        "backoff_max",
        "backoff_multiplier",
        "backoff_jitter",
        "stable_after",
        "max_restarts",
        "intensity",
        "start_delay",
        "depends_on",
        "ready",
        "ready_timeout",
        "watchdog",
        "stop_signal",
        "stop_timeout",
        "liveness",
        "on_dependency_down",
        "channel",
        "runtime_dir",
        "output",
    };
    const auto i = static_cast<std::size_t>(f);
    return i < service_field_count ? names[i] : std::string_view("unknown");
}

std::string_view field_name(ProbeField f) noexcept {
    static constexpr std::string_view names[probe_field_count] = {
        "section",
        "name",
        "target",
        "expect_status",
        "owner",
        "mode",
        "writable",
        "timeout",
        "startup_initial",
        "startup_max",
        "startup_multiplier",
        "startup_tries",
        "interval",
        "success_threshold",
        "failure_threshold",
        "reason",
        "resolution",
        "grace",
    };
    const auto i = static_cast<std::size_t>(f);
    return i < probe_field_count ? names[i] : std::string_view("unknown");
}

std::string_view field_name(MonitorField f) noexcept {
    static constexpr std::string_view names[monitor_field_count] = {
        "section",
        "name",
        "run",
        "backoff_initial",
        "backoff_max",
        "backoff_multiplier",
        "backoff_jitter",
        "stable_after",
        "degraded_every",
        "heartbeat_interval",
        "deadline",
        "depends_on",
        "stack_size",
    };
    const auto i = static_cast<std::size_t>(f);
    return i < monitor_field_count ? names[i] : std::string_view("unknown");
}

} // namespace custos
