// The table's one check, its probes: targets, kinds' fields, value ranges,
// composite members and cycles, capacities; owner resolution.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "table/target.hpp"
#include "table/users.hpp"
#include "table/validate.hpp"

namespace custos::tbl {
namespace {

constexpr std::uint32_t max_table = 4096;

bool parse_id(std::string_view s, long& out) noexcept {
    if (s.empty() || s.size() > 10) {
        return false;
    }
    long v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

// Walks composites depth-first from `root` and counts check instances;
// UINT32_MAX on a cycle or overflow. `on_path` marks the probes on the
// current path (bounded by the table size).
std::uint32_t count_from(std::span<const ProbeSpec> t, std::uint32_t root, std::uint8_t* on_path,
                         std::uint32_t depth) noexcept {
    if (on_path[root] != 0 || depth > t.size()) {
        return UINT32_MAX;
    }
    std::uint64_t n = 1;
    if (t[root].kind == ProbeKind::all) {
        on_path[root] = 1;
        for (std::string_view m : t[root].members) {
            std::uint32_t j = find_probe(t, m);
            if (j == UINT32_MAX) {
                continue; // reported as unknown elsewhere
            }
            std::uint32_t c = count_from(t, j, on_path, depth + 1);
            if (c == UINT32_MAX) {
                on_path[root] = 0;
                return UINT32_MAX;
            }
            n += c;
            if (n >= UINT32_MAX) {
                on_path[root] = 0;
                return UINT32_MAX;
            }
        }
        on_path[root] = 0;
    }
    return static_cast<std::uint32_t>(n);
}

void check_target(std::span<const ProbeSpec> t, std::uint32_t i, const options& opt,
                  reporter& rep) noexcept {
    const ProbeSpec& p = t[i];
    switch (p.kind) {
    case ProbeKind::tcp: {
        auto r = parse_host_port(p.target);
        if (!r) {
            rep.probe(i, ProbeField::target, r.error().reason(), 0, r.error().subject(),
                      "Write tcp = HOST:PORT, e.g. 127.0.0.1:1883, [::1]:80 or broker.lan:1883");
        }
        return;
    }
    case ProbeKind::http: {
        auto r = parse_http_url(p.target);
        if (!r) {
            rep.probe(i, ProbeField::target, r.error().reason(), 0, r.error().subject(),
                      "Write http = http://HOST[:PORT]/PATH (no TLS: https is not supported)");
        }
        return;
    }
    case ProbeKind::unix_socket:
    case ProbeKind::file:
        if (p.target.empty() || p.target[0] != '/' || p.target.size() > 107 ||
            p.target.find('\0') != std::string_view::npos) {
            rep.probe(i, ProbeField::target, Reason::invalid_argument, 0,
                      p.target.empty() ? std::string_view("empty path") : p.target,
                      p.kind == ProbeKind::unix_socket
                          ? "Give unix = an absolute socket path of at most 107 bytes"
                          : "Give file = an absolute path of at most 107 bytes");
        }
        return;
    case ProbeKind::exec:
        if (p.argv.empty() || p.argv[0].empty()) {
            rep.probe(i, ProbeField::target, Reason::invalid_argument, 0, p.name,
                      "Give the exec probe a command to run");
        } else if (opt.check_executables) {
            char path[512];
            auto r = resolve_executable(p.argv[0], path, sizeof path);
            if (!r) {
                rep.probe(i, ProbeField::target, r.error());
            }
        }
        return;
    case ProbeKind::all:
        if (p.members.empty()) {
            rep.probe(i, ProbeField::target, Reason::invalid_argument, 0, p.name,
                      "Give all = the names of the probes that must all pass");
        }
        for (std::string_view m : p.members) {
            if (m == p.name) {
                rep.probe(i, ProbeField::target, Reason::dependency_cycle, 0, m,
                          "A composite probe cannot contain itself");
            } else if (find_probe(t, m) == UINT32_MAX) {
                rep.probe(i, ProbeField::target, Reason::probe_unknown, 0, m,
                          "Name only probes declared in the same table in all =");
            }
        }
        return;
    }
}

void check_probe(std::span<const ProbeSpec> t, std::span<const ServiceSpec> services,
                 std::uint32_t i, const options& opt, reporter& rep) noexcept {
    const ProbeSpec& p = t[i];
    const std::string_view n = p.name;
    if (!name_valid(n)) {
        rep.probe(i, ProbeField::name, Reason::name_invalid, 0, n,
                  "Give every probe a name of 1-31 characters from [A-Za-z0-9._-]");
    } else {
        bool dup = false;
        for (std::uint32_t j = 0; j < i && !dup; ++j) {
            dup = t[j].name == n;
        }
        for (const ServiceSpec& s : services) {
            dup = dup || s.name == n;
        }
        if (dup) {
            rep.probe(i, ProbeField::name, Reason::name_duplicate, 0, n,
                      "Rename the probe: names must be unique among services and probes");
        }
    }
    check_target(t, i, opt, rep);

    const bool is_file = p.kind == ProbeKind::file;
    if (!p.owner.empty()) {
        if (!is_file) {
            rep.probe(i, ProbeField::owner, Reason::invalid_argument, 0, n,
                      "owner applies to file probes only");
        } else if (opt.resolve_users) {
            auto r = resolve_owner(p.owner, opt.passwd_path, opt.group_path);
            if (!r) {
                rep.probe(i, ProbeField::owner, r.error());
            }
        }
    }
    if (p.mode != -1 && (!is_file || p.mode < 0 || p.mode > 07777)) {
        rep.probe(i, ProbeField::mode, Reason::invalid_argument, 0, n,
                  is_file ? "Give mode as octal permission bits, at most 07777"
                          : "mode applies to file probes only");
    }
    if (p.writable && !is_file) {
        rep.probe(i, ProbeField::writable, Reason::invalid_argument, 0, n,
                  "writable applies to file probes only");
    }
    if (!p.expect_status.empty() && p.kind != ProbeKind::http) {
        rep.probe(i, ProbeField::expect_status, Reason::invalid_argument, 0, n,
                  "expect_status applies to http probes only");
    }
    for (std::uint16_t st : p.expect_status) {
        if (st < 100 || st > 599) {
            rep.probe(i, ProbeField::expect_status, Reason::invalid_argument, 0, n,
                      "Give expect_status as HTTP statuses from 100 to 599");
            break;
        }
    }

    // A probe check must end: a zero timeout would be no timeout at all.
    if (p.timeout.count() <= 0 || p.timeout > std::chrono::hours(1)) {
        rep.probe(i, ProbeField::timeout, Reason::invalid_argument, 0, n,
                  "Set timeout between 1 ms and 1 h");
    }
    if (p.startup_initial.count() <= 0) {
        rep.probe(i, ProbeField::startup_initial, Reason::invalid_argument, 0, n,
                  "Set startup_initial above zero");
    }
    if (p.startup_max < p.startup_initial) {
        rep.probe(i, ProbeField::startup_max, Reason::invalid_argument, 0, n,
                  "Make startup_max at least startup_initial");
    }
    if (p.startup_multiplier_x100 < 100 || p.startup_multiplier_x100 > 10000) {
        rep.probe(i, ProbeField::startup_multiplier, Reason::invalid_argument, 0, n,
                  "Set startup_multiplier between 1 and 100");
    }
    if (p.startup_tries < 1 || p.startup_tries > 1'000'000) {
        rep.probe(i, ProbeField::startup_tries, Reason::invalid_argument, 0, n,
                  "Set startup_tries between 1 and 1000000");
    }
    if (p.grace.count() < 0) {
        rep.probe(i, ProbeField::grace, Reason::invalid_argument, 0, n,
                  "Durations cannot be negative");
    }
    if (p.interval.count() <= 0 || p.interval > std::chrono::hours(24 * 7)) {
        rep.probe(i, ProbeField::interval, Reason::invalid_argument, 0, n,
                  "Set interval between 1 ms and 7 days");
    }
    if (p.success_threshold < 1 || p.success_threshold > 1000) {
        rep.probe(i, ProbeField::success_threshold, Reason::invalid_argument, 0, n,
                  "Set success_threshold between 1 and 1000");
    }
    if (p.failure_threshold < 1 || p.failure_threshold > 1000) {
        rep.probe(i, ProbeField::failure_threshold, Reason::invalid_argument, 0, n,
                  "Set failure_threshold between 1 and 1000");
    }
    if (p.reason.size() > 200) {
        rep.probe(i, ProbeField::reason, Reason::invalid_argument, 0, n,
                  "Keep reason at most 200 bytes");
    }
    if (p.resolution.size() > 200) {
        rep.probe(i, ProbeField::resolution, Reason::invalid_argument, 0, n,
                  "Keep resolution at most 200 bytes");
    }
}

} // namespace

std::uint32_t find_probe(std::span<const ProbeSpec> probes, std::string_view name) noexcept {
    return find_named(probes, name);
}

Result<owner_ids> resolve_owner(std::string_view owner, const char* passwd_path,
                                const char* group_path) noexcept {
    owner_ids ids;
    std::size_t colon = owner.find(':');
    std::string_view user_part = owner.substr(0, colon);
    std::string_view group_part =
        colon == std::string_view::npos ? std::string_view() : owner.substr(colon + 1);
    if (owner.empty() || (colon != std::string_view::npos && group_part.empty()) ||
        user_part.size() > 63 || group_part.size() > 63) {
        Error e(Reason::invalid_argument, 0, owner);
        e.with_resolution("Write owner as user, user:group or :group");
        return fail(e);
    }
    if (!user_part.empty() && !parse_id(user_part, ids.uid)) {
        auto u = find_user(user_part, passwd_path);
        if (!u) {
            return fail(u.error());
        }
        ids.uid = static_cast<long>(u->uid);
    }
    if (!group_part.empty() && !parse_id(group_part, ids.gid)) {
        auto g = find_group(group_part, group_path);
        if (!g) {
            return fail(g.error());
        }
        ids.gid = static_cast<long>(g->gid);
    }
    return ids;
}

// probes.size() + 1 zeroed bytes: the caller's scratch when it is large
// enough (nothing allocated: a reload), else new ones; *owned says which.
static std::uint8_t* path_marks(std::size_t n, std::span<std::byte> scratch, bool* owned) noexcept {
    if (scratch.size() >= n + 1) {
        auto* p = reinterpret_cast<std::uint8_t*>(scratch.data());
        for (std::size_t i = 0; i <= n; ++i) {
            p[i] = 0;
        }
        *owned = false;
        return p;
    }
    *owned = true;
    return new (std::nothrow) std::uint8_t[n + 1]();
}

std::uint32_t count_checks(std::span<const ProbeSpec> probes,
                           std::span<std::byte> scratch) noexcept {
    if (probes.size() > max_table) {
        return UINT32_MAX;
    }
    bool owned = false;
    std::uint8_t* on_path = path_marks(probes.size(), scratch, &owned);
    if (on_path == nullptr) {
        return UINT32_MAX;
    }
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < probes.size() && total < UINT32_MAX; ++i) {
        std::uint32_t c = count_from(probes, i, on_path, 0);
        total = c == UINT32_MAX ? UINT32_MAX : total + c;
    }
    if (owned) {
        delete[] on_path;
    }
    return total >= UINT32_MAX ? UINT32_MAX : static_cast<std::uint32_t>(total);
}

void validate_probes(const Table& tab, const options& opt, reporter& rep) noexcept {
    std::span<const ProbeSpec> probes = tab.probes;
    std::span<const ServiceSpec> services = tab.services;
    if (probes.size() > tab.runtime.max_probes || probes.size() > max_table) {
        char text[64];
        std::snprintf(text, sizeof text, "%zu probes, max_probes %u", probes.size(),
                      tab.runtime.max_probes);
        rep.probe(UINT32_MAX, ProbeField::section, Reason::capacity_exceeded, 0, text,
                  "Raise max_probes or declare fewer probes");
        return;
    }
    for (std::uint32_t i = 0; i < probes.size(); ++i) {
        check_probe(probes, services, i, opt, rep);
    }
    // Cycles through composites: count from each composite alone so the
    // report names the probe on the cycle.
    bool owned = false;
    std::uint8_t* on_path = path_marks(probes.size(), opt.scratch, &owned);
    if (on_path == nullptr) {
        rep.probe(UINT32_MAX, ProbeField::section, Reason::out_of_memory, ENOMEM, "probe check");
        return;
    }
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < probes.size(); ++i) {
        std::uint32_t c = count_from(probes, i, on_path, 0);
        if (c == UINT32_MAX) {
            rep.probe(i, ProbeField::target, Reason::dependency_cycle, 0, probes[i].name,
                      "Composite probes contain each other: remove a member from the cycle");
            total = UINT32_MAX;
        } else if (total != UINT32_MAX) {
            total += c;
        }
    }
    if (owned) {
        delete[] on_path;
    }
    if (total != UINT32_MAX && total > tab.runtime.max_probe_checks) {
        char text[64];
        std::snprintf(text, sizeof text, "%llu probe checks, max_probe_checks %u",
                      static_cast<unsigned long long>(total), tab.runtime.max_probe_checks);
        rep.probe(UINT32_MAX, ProbeField::section, Reason::capacity_exceeded, 0, text,
                  "Raise max_probe_checks or nest fewer composites");
    }
}

} // namespace custos::tbl
