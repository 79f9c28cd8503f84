// The table resolved into indices, paths and ids (table/plan.hpp).
#include "table/plan.hpp"

#include <cerrno>
#include <cstdio>
#include <utility>

#include "table/users.hpp"

namespace custos::tbl {
namespace {

// The first problem, kept for the Result; every one goes on to the caller's
// sink as well.
struct first_problem final : TableProblemSink {
    TableProblemSink* next = nullptr;
    bool any = false;
    Error first;
    void report(const TableProblem& p) noexcept override {
        if (!any) {
            any = true;
            first = p.error;
        }
        if (next != nullptr) {
            next->report(p);
        }
    }
};

} // namespace

Result<void> plan::build(const Table& t, const options& opt, TableProblemSink* sink) noexcept {
    first_problem problems;
    problems.next = sink;
    if (validate(t, opt, &problems) != 0) {
        return fail(problems.first);
    }
    table_ = t;
    nservices_ = static_cast<std::uint32_t>(t.services.size());
    nprobes_ = static_cast<std::uint32_t>(t.probes.size());
    nmonitors_ = static_cast<std::uint32_t>(t.monitors.size());
    checks_ = count_checks(t.probes, opt.scratch);
    // Two passes over the same layout: measure, then take the block once.
    // A fixed block (a reload's) is started over, never grown.
    if (mem_.fixed()) {
        (void)mem_.reserve(0);
    }
    if (auto r = resolve(opt); !r && r.error().reason() != Reason::out_of_memory) {
        return r;
    }
    if (!mem_.reserve(mem_.needed())) {
        if (mem_.fixed()) {
            char what[96];
            std::snprintf(what, sizeof what, "table plan: %zu bytes, %zu reserved", mem_.needed(),
                          mem_.capacity());
            return fail(Reason::reload_capacity, 0, what);
        }
        return fail(Reason::out_of_memory, ENOMEM, "table plan");
    }
    return resolve(opt);
}

void plan::reserve_fixed(std::size_t bytes) noexcept {
    (void)mem_.reserve(bytes); // failed: no block, and every build fails
    mem_.fix();
}

void plan::swap(plan& o) noexcept {
    mem_.swap(o.mem_);
    std::swap(table_, o.table_);
    std::swap(services_, o.services_);
    std::swap(nservices_, o.nservices_);
    std::swap(probes_, o.probes_);
    std::swap(nprobes_, o.nprobes_);
    std::swap(monitors_, o.monitors_);
    std::swap(nmonitors_, o.nmonitors_);
    std::swap(checks_, o.checks_);
    std::swap(notify_, o.notify_);
}

// A depends_on list as service and probe indices, in two arrays from mem_.
// False when mem_ has no room (the sizing pass: the sizes are counted).
bool plan::split_deps(std::span<const std::string_view> names, dep_lists& out) noexcept {
    std::uint32_t nsvc = 0;
    std::uint32_t nprb = 0;
    for (std::string_view d : names) {
        (find_service(table_.services, d) != no_index ? nsvc : nprb) += 1;
    }
    auto* svc = mem_.make_array<std::uint32_t>(nsvc);
    auto* prb = mem_.make_array<std::uint32_t>(nprb);
    if ((nsvc != 0 && svc == nullptr) || (nprb != 0 && prb == nullptr)) {
        return false;
    }
    std::uint32_t a = 0;
    std::uint32_t b = 0;
    for (std::string_view d : names) {
        const std::uint32_t j = find_service(table_.services, d);
        if (j != no_index) {
            svc[a++] = j;
        } else {
            prb[b++] = find_probe(table_.probes, d);
        }
    }
    out.services = {svc, nsvc};
    out.probes = {prb, nprb};
    return true;
}

// Lays the plan out in mem_: with no block, only measures (OutOfMemory).
Result<void> plan::resolve(const options& opt) noexcept {
    const std::span<const ServiceSpec> svcs = table_.services;
    const std::span<const ProbeSpec> prbs = table_.probes;
    bool ok = true;
    notify_ = 0;
    services_ = mem_.make_array<service_plan>(nservices_);
    probes_ = mem_.make_array<probe_plan>(nprobes_);
    ok = ok && (nservices_ == 0 || services_ != nullptr) && (nprobes_ == 0 || probes_ != nullptr);
    for (std::uint32_t i = 0; i < nservices_; ++i) {
        const ServiceSpec& s = svcs[i];
        dep_lists dl;
        const bool deps_ok = split_deps(s.depends_on, dl);
        const char* name = mem_.copy(s.name);
        const char* path = nullptr;
        if (opt.check_executables) {
            char resolved[512];
            auto found = resolve_executable(s.argv[0], resolved, sizeof resolved);
            if (!found) {
                return fail(found.error()); // removed since the check
            }
            path = mem_.copy(resolved);
        } else {
            path = mem_.copy(s.argv[0]);
        }
        ok = ok && name != nullptr && path != nullptr && deps_ok;
        notify_ += s.ready == ReadyMode::notify || s.watchdog.count() > 0 ? 1 : 0;
        if (!ok) {
            continue;
        }
        service_plan& sp = services_[i];
        sp.name = std::string_view(name, s.name.size());
        sp.path = path;
        sp.deps = dl.services;
        sp.probe_deps = dl.probes;
        sp.ready_probe = s.ready == ReadyMode::probe ? find_probe(prbs, s.ready_probe) : no_index;
        sp.liveness = s.liveness.empty() ? no_index : find_probe(prbs, s.liveness);
        sp.notify = s.ready == ReadyMode::notify || s.watchdog.count() > 0;
        // Ids above INT_MAX wrap to negative ints, never to -1 ("unset"):
        // find_user/find_group refuse (uid_t)-1.
        if (opt.resolve_users && !s.user.empty()) {
            auto u = find_user(s.user, opt.passwd_path);
            if (!u) {
                return fail(u.error());
            }
            sp.uid = static_cast<int>(u->uid);
            sp.gid = static_cast<int>(u->gid);
        }
        if (opt.resolve_users && !s.group.empty()) {
            auto g = find_group(s.group, opt.group_path);
            if (!g) {
                return fail(g.error());
            }
            sp.gid = static_cast<int>(g->gid);
        }
    }
    for (std::uint32_t i = 0; i < nprobes_; ++i) {
        const ProbeSpec& p = prbs[i];
        const char* name = mem_.copy(p.name);
        auto* members = mem_.make_array<std::uint32_t>(p.members.size());
        const char* path = nullptr;
        if (p.kind == ProbeKind::exec) {
            char resolved[512];
            if (opt.check_executables) {
                auto found = resolve_executable(p.argv[0], resolved, sizeof resolved);
                if (!found) {
                    return fail(found.error());
                }
                path = mem_.copy(resolved);
            } else {
                path = mem_.copy(p.argv[0]);
            }
            ok = ok && path != nullptr;
        }
        ok = ok && name != nullptr && (p.members.empty() || members != nullptr);
        if (!ok) {
            continue;
        }
        probe_plan& pp = probes_[i];
        pp.name = std::string_view(name, p.name.size());
        pp.path = path;
        for (std::size_t k = 0; k < p.members.size(); ++k) {
            members[k] = find_probe(prbs, p.members[k]);
        }
        pp.members = {members, p.members.size()};
        if (p.kind == ProbeKind::file && !p.owner.empty() && opt.resolve_users) {
            auto o = resolve_owner(p.owner, opt.passwd_path, opt.group_path);
            if (!o) {
                return fail(o.error());
            }
            pp.owner = *o;
        }
    }
    monitors_ = mem_.make_array<monitor_plan>(nmonitors_);
    ok = ok && (nmonitors_ == 0 || monitors_ != nullptr);
    for (std::uint32_t i = 0; i < nmonitors_; ++i) {
        const MonitorSpec& m = table_.monitors[i];
        dep_lists dl;
        const bool deps_ok = split_deps(m.depends_on, dl);
        const char* name = mem_.copy(m.name);
        // Without a block (the sizing pass) nothing is taken: go on measuring.
        ok = ok && name != nullptr && deps_ok;
        if (!ok) {
            continue;
        }
        monitors_[i] = {std::string_view(name, m.name.size()), dl.services, dl.probes};
    }
    if (!ok) {
        return fail(Reason::out_of_memory, ENOMEM, "table plan");
    }
    return {};
}

} // namespace custos::tbl
