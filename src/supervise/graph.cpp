// The supervisor's dependency graph: the plan's edges laid out in the pool
// by slot, and each service's rank for the ordered start and stop.
#include "supervise/supervisor.hpp"

namespace custos {
namespace sup {

// Lays the plan's edges out in the pool, by slot (slot_of empty: the plan's
// service k is slot k), and computes the ranks. Checks everything before
// changing anything.
Result<void> supervisor::link(const tbl::plan& plan,
                              std::span<const std::uint32_t> slot_of) noexcept {
    const std::span<const tbl::service_plan> sp = plan.services();
    const auto n = static_cast<std::uint32_t>(sp.size());
    auto slot = [&slot_of](std::uint32_t k) { return slot_of.empty() ? k : slot_of[k]; };
    // A repeated name in depends_on is one edge.
    auto first = [](std::span<const std::uint32_t> list, std::size_t m) {
        for (std::size_t e = 0; e < m; ++e) {
            if (list[e] == list[m]) {
                return false;
            }
        }
        return true;
    };
    std::uint64_t edges = 0;
    for (std::uint32_t k = 0; k < n; ++k) {
        if (slot(k) >= count_) {
            return fail(Reason::invalid_argument, 0, sp[k].name);
        }
        for (std::size_t m = 0; m < sp[k].deps.size(); ++m) {
            if (sp[k].deps[m] >= n || sp[k].deps[m] == k) {
                return fail(Reason::invalid_argument, 0, sp[k].name);
            }
            edges += first(sp[k].deps, m) ? 1 : 0;
        }
        for (std::uint32_t p : sp[k].probe_deps) {
            if (p >= nprobes_) {
                return fail(Reason::invalid_argument, 0, sp[k].name);
            }
        }
    }
    if (2 * edges > edge_capacity_) {
        return fail(Reason::reload_capacity, 0, "dependencies");
    }
    // Count, place the slices, fill.
    for (std::uint32_t i = 0; i < count_; ++i) {
        units_[i].ndeps = 0;
        units_[i].ndependents = 0;
        units_[i].nprobe_deps = 0;
    }
    for (std::uint32_t k = 0; k < n; ++k) {
        for (std::size_t m = 0; m < sp[k].deps.size(); ++m) {
            if (first(sp[k].deps, m)) {
                ++units_[slot(k)].ndeps;
                ++units_[slot(sp[k].deps[m])].ndependents;
            }
        }
    }
    std::size_t at = 0;
    for (std::uint32_t i = 0; i < count_; ++i) {
        unit& u = units_[i];
        u.deps = edges_ + at;
        at += u.ndeps;
        u.dependents = edges_ + at;
        at += u.ndependents;
        u.ndeps = 0;
        u.ndependents = 0;
    }
    for (std::uint32_t k = 0; k < n; ++k) {
        unit& u = units_[slot(k)];
        for (std::size_t m = 0; m < sp[k].deps.size(); ++m) {
            if (first(sp[k].deps, m)) {
                unit& d = units_[slot(sp[k].deps[m])];
                u.deps[u.ndeps++] = d.index;
                d.dependents[d.ndependents++] = u.index;
            }
        }
        for (std::size_t m = 0; m < sp[k].probe_deps.size(); ++m) {
            if (first(sp[k].probe_deps, m)) {
                u.probe_deps[u.nprobe_deps++] = sp[k].probe_deps[m];
            }
        }
    }
    compute_ranks();
    return {};
}

// Ranks by relaxation: the graph is acyclic, so count_ rounds suffice.
void supervisor::compute_ranks() noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        units_[i].rank = 0;
    }
    for (std::uint32_t round = 0; round < count_; ++round) {
        bool changed = false;
        for (std::uint32_t i = 0; i < count_; ++i) {
            for (std::uint32_t k = 0; k < units_[i].ndeps; ++k) {
                std::uint32_t r = units_[units_[i].deps[k]].rank + 1;
                if (r > units_[i].rank) {
                    units_[i].rank = r;
                    changed = true;
                }
            }
        }
        if (!changed) {
            break;
        }
    }
}

} // namespace sup
} // namespace custos
