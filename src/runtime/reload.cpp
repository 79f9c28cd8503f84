// Runtime::reload: a new table applied to the running runtime, services by
// name, within the slots init laid out.
//
// Order, so that a refusal changes nothing:
//   1. busy?       a previous reload's removed services still stopping
//   2. check       the new table through the table's one check, into the
//                  spare plan (a fixed block: nothing allocated)
//   3. restart?    what a reload does not apply (tbl::first_unsupported)
//   4. match       every new service to its slot: its own (same name), or a
//                  free one; too few free slots is ReloadCapacity
//   5. define      the added and changed services' definitions into their
//                  slots (process host: exec data, notify socket, cgroup;
//                  supervisor: the policy). A slot that cannot hold its
//                  definition undoes the ones done (the old definitions fit
//                  where they were) and the reload is ReloadCapacity.
//   6. act         the graph becomes the new one, removed services stop,
//                  changed ones stop and start again, added ones start;
//                  the spare plan becomes the current one.
// Steps 1-5 report nothing; step 6's transitions carry ReloadRemoved,
// ReloadChanged and ReloadAdded: each step is an event.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "core/text_out.hpp"
#include "runtime/impl.hpp"
#include "runtime/launches.hpp"
#include "table/diff.hpp"

namespace custos {

void ReloadReport::add(std::string_view line) noexcept {
    if (len + line.size() + 1 > capacity) {
        ++dropped;
        return;
    }
    for (char ch : line) {
        const auto u = static_cast<unsigned char>(ch);
        text[len++] = u < 0x20 || u == 0x7f ? '?' : ch;
    }
    text[len++] = '\n';
    ++lines;
}

namespace {

constexpr std::uint32_t none = UINT32_MAX;
// Tags on a slot number in reload_parts::scratch during apply().
constexpr std::uint32_t tag_added = 0x80000000u;
constexpr std::uint32_t tag_changed = 0x40000000u;
constexpr std::uint32_t slot_mask = 0x3fffffffu;
// A probe to add, before check_probes() gives it a slot.
constexpr std::uint32_t unassigned = tag_added | slot_mask;

} // namespace

// In layout(), both passes.
Result<void> Runtime::impl::layout_reload() noexcept {
    rt_detail::reload_parts& r = rl;
    r.view = mem.make_array<std::uint32_t>(r.slots);
    r.plan_slot = mem.make_array<std::uint32_t>(r.slots);
    r.scratch = mem.make_array<std::uint32_t>(r.slots);
    r.names = static_cast<char*>(mem.take(r.slots * rt_detail::reload_parts::name_bytes, 1));
    r.check_bytes = tbl::scratch_bytes(r.slots, nprobes);
    r.check_room =
        static_cast<std::byte*>(mem.take_unzeroed(r.check_bytes, alignof(std::uint32_t)));
    r.critical = mem.make_array<bool>(r.slots);
    r.draining = mem.make_array<bool>(r.slots);
    r.probe_slot = mem.make_array<std::uint32_t>(r.probe_slots);
    r.slot_probe = mem.make_array<std::uint32_t>(r.probe_slots);
    r.probe_scratch = mem.make_array<std::uint32_t>(r.probe_slots);
    r.engine_slot[0] = mem.make_array<std::uint32_t>(r.probe_slots);
    r.engine_slot[1] = mem.make_array<std::uint32_t>(r.probe_slots);
    r.cg_free = mem.make_array<std::uint32_t>(2 * std::size_t{r.check_capacity});
    if (r.slots != 0 && (r.view == nullptr || r.plan_slot == nullptr || r.scratch == nullptr ||
                         r.names == nullptr || r.critical == nullptr || r.draining == nullptr ||
                         r.check_room == nullptr)) {
        return fail(Reason::out_of_memory, ENOMEM, "service slots");
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        r.view[i] = i;
        r.plan_slot[i] = i;
        r.critical[i] = plan.table().services[i].critical;
    }
    if (r.probe_slots != 0 &&
        (r.probe_slot == nullptr || r.slot_probe == nullptr || r.probe_scratch == nullptr ||
         r.engine_slot[0] == nullptr || r.engine_slot[1] == nullptr)) {
        return fail(Reason::out_of_memory, ENOMEM, "probe slots");
    }
    if (r.check_capacity != 0 && r.cg_free == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "probe slots");
    }
    for (std::uint32_t p = 0; p < r.probe_slots; ++p) {
        const bool kept = p < nprobes;
        r.probe_slot[p] = kept ? p : none;
        r.slot_probe[p] = kept ? p : none;
        r.engine_slot[0][p] = kept ? p : none;
        r.engine_slot[1][p] = none;
    }
    return {};
}

// After layout(): both engines' blocks, as big as this table's checks need
// and room for a reload's, and the first engine laid out in one.
Result<void> Runtime::impl::layout_engines() noexcept {
    arena measure;
    (void)engines[0].init(reactor, plan, measure, &procs.spawner(), dns);
    const std::size_t need = measure.needed();
    rl.engine_room = need + need / 2 + 2048 * std::size_t{rl.probe_slots - nprobes} + 1024;
    for (arena& m : rl.engine_mem) {
        if (!m.reserve(rl.engine_room)) {
            return fail(Reason::out_of_memory, ENOMEM, "probe checks");
        }
        m.fix();
    }
    if (auto r = engines[0].init(reactor, plan, rl.engine_mem[0], &procs.spawner(), dns); !r) {
        return r;
    }
    for (std::uint32_t k = 0; k < nprobes; ++k) {
        probe::check& c = engines[0].root(k);
        c.done = &impl::on_check_done;
        c.user = this;
    }
    cur_engine = 0;
    rl.next_instance = plan.check_count();
    return {};
}

Result<void> Runtime::impl::attach_cgroups(process::cgroup_tree& tree) noexcept {
    if (auto r = engines[cur_engine].attach_cgroups(tree); !r) {
        return r;
    }
    rl.cgroups = &tree;
    rl.ncg_free = 0;
    for (std::uint32_t k = 0; k < rl.cg_capacity && rl.cg_free != nullptr; ++k) {
        auto u = tree.add_vacant();
        if (!u) {
            break; // a reload's exec checks then keep the process-group kill
        }
        rl.cg_free[rl.ncg_free++] = *u;
    }
    return {};
}

// Slot `p`'s check runs in the current engine (at its table index), or,
// for a probe a reload kept while its check ran, in the old one: looked for
// only while that one still runs checks.
void Runtime::impl::cancel_check(std::uint32_t p) noexcept {
    const std::uint32_t k = rl.slot_probe[p];
    if (k != none && checks().root(k).running()) {
        checks().cancel(checks().root(k));
        return;
    }
    if (!rl.old_engine_busy) {
        return;
    }
    const std::uint32_t e = cur_engine ^ 1;
    probe::engine& old = engines[e];
    for (std::uint32_t j = 0; j < old.size(); ++j) {
        if (rl.engine_slot[e][j] == p && old.root(j).running()) {
            old.cancel(old.root(j));
            return;
        }
    }
}

void Runtime::impl::old_engine_done() noexcept {
    probe::engine& old = engines[cur_engine ^ 1];
    rl.old_engine_busy = false;
    if (rl.cgroups != nullptr && rl.cg_free != nullptr) {
        rl.ncg_free += old.release_cgroups(rl.cg_free + rl.ncg_free);
    }
}

void Runtime::impl::rebuild_view() noexcept {
    std::uint32_t k = 0;
    for (std::uint32_t j = 0; j < plan.services().size(); ++j) {
        rl.view[k++] = rl.plan_slot[j];
    }
    for (std::uint32_t i = 0; i < rl.slots; ++i) {
        if (rl.draining[i]) {
            rl.view[k++] = i;
        }
    }
    count = k;
    for (std::uint32_t n = 0; n < rl.slots; ++n) {
        const bool shown = n < count;
        if (ctl.service_names != nullptr) {
            ctl.service_names[n] = shown ? sup.at(rl.view[n]).name : std::string_view();
        }
        harr.service_critical[n] = shown && rl.critical[rl.view[n]];
    }
    health_dirty.dirty = true;
    publisher.mark_stale();
}

// After a turn in which a service a reload removed reached `stopped`.
void Runtime::impl::vacate_stopped() noexcept {
    rl.vacate_soon = false;
    for (std::uint32_t i = 0; i < rl.slots; ++i) {
        if (rl.draining[i] && sup.vacant(i) && procs.pid(i) == 0) {
            vacated(i);
        }
    }
}

// A service a reload removed has stopped: its slot is free.
void Runtime::impl::vacated(std::uint32_t slot) noexcept {
    procs.vacate(slot);
    wires[slot] = rt_detail::wire{};
    rl.draining[slot] = false;
    rl.critical[slot] = false;
    --rl.ndraining;
    rebuild_view();
}

// Probes: which slot each of the new table's probes takes (rl.probe_scratch,
// tagged added or changed), and, when any probe is added, removed,
// changed or moved, the new checks laid out in the other engine. Nothing
// the runtime runs changes here. `work`: whether apply_probes() has any.
Result<void> Runtime::impl::check_probes(const Table& t, const tbl::plan& next,
                                         bool* work) noexcept {
    *work = false;
    const auto nnew = static_cast<std::uint32_t>(t.probes.size());
    if (nnew > rl.probe_slots) {
        char what[96];
        std::snprintf(what, sizeof what, "%u probes, %u slots (probe_slots)", nnew, rl.probe_slots);
        return fail(Reason::reload_capacity, 0, what);
    }
    std::uint32_t* slot_of = rl.probe_scratch;
    std::uint32_t kept = 0;
    for (std::uint32_t k = 0; k < nnew; ++k) {
        slot_of[k] = probes.find(t.probes[k].name);
        if (slot_of[k] == none) {
            slot_of[k] = unassigned; // a slot below
            *work = true;
            continue;
        }
        ++kept;
        const std::uint32_t j = rl.slot_probe[slot_of[k]];
        if (j != k) {
            *work = true; // moved: the engine's checks are by index
        }
        if (!tbl::same_probe(plan.table().probes[j], plan.probes()[j], t.probes[k],
                             next.probes()[k])) {
            slot_of[k] |= tag_changed;
            *work = true;
        }
    }
    *work = *work || kept != nprobes; // some removed
    if (!*work) {
        return {};
    }
    // A composite runs its members' checks in its own tree: a member added
    // or changed changes it too.
    for (bool more = true; more;) {
        more = false;
        for (std::uint32_t k = 0; k < nnew; ++k) {
            if ((slot_of[k] & (tag_added | tag_changed)) != 0) {
                continue;
            }
            for (std::uint32_t m : next.probes()[k].members) {
                if ((slot_of[m] & (tag_added | tag_changed)) != 0) {
                    slot_of[k] |= tag_changed;
                    more = true;
                    break;
                }
            }
        }
    }
    if (rl.old_engine_busy) {
        return fail(Reason::reload_busy, 0, "the previous reload's probe checks are still running");
    }
    if (dns == nullptr && probe::engine::needs_resolver(t.probes)) {
        return fail(Reason::reload_unsupported, 0,
                    "a probe names a host, and none did at start (the resolver is made then)");
    }
    if (next.check_count() > rl.check_capacity) {
        char what[96];
        std::snprintf(what, sizeof what, "%u probe check instances, room for %u (probe_slots)",
                      next.check_count(), rl.check_capacity);
        return fail(Reason::reload_capacity, 0, what);
    }
    // The reactor's ops were counted for both engines' instances together;
    // the running ones stay until they end (the old engine starts none).
    const std::uint32_t running = checks().running_instances();
    if (running + next.check_count() > rl.check_total) {
        char what[128];
        std::snprintf(what, sizeof what,
                      "%u probe check instances run, and the new table has %u (room for %u)",
                      running, next.check_count(), rl.check_total);
        return fail(Reason::reload_busy, 0, what);
    }
    // Added probes take slots that are vacant or whose probe is removed.
    std::uint32_t next_free = 0;
    auto taken = [&](std::uint32_t slot) noexcept {
        for (std::uint32_t k = 0; k < nnew; ++k) {
            if ((slot_of[k] & slot_mask) == slot) {
                return true; // kept, or added and placed already
            }
        }
        return false;
    };
    for (std::uint32_t k = 0; k < nnew; ++k) {
        if (slot_of[k] != unassigned) {
            continue;
        }
        while (next_free < rl.probe_slots && taken(next_free)) {
            ++next_free;
        }
        if (next_free == rl.probe_slots) {
            char what[96];
            std::snprintf(what, sizeof what, "%u probes, %u slots (probe_slots)", nnew,
                          rl.probe_slots);
            return fail(Reason::reload_capacity, 0, what);
        }
        slot_of[k] = next_free | tag_added;
    }
    for (std::uint32_t k = 0; k < nnew; ++k) {
        if ((slot_of[k] & (tag_added | tag_changed)) != 0 &&
            !probes.fits(slot_of[k] & slot_mask, t.probes[k])) {
            char what[96];
            std::snprintf(what, sizeof what, "probe '%.*s': its reason and resolution texts",
                          static_cast<int>(t.probes[k].name.size()), t.probes[k].name.data());
            return fail(Reason::reload_capacity, 0, what);
        }
    }
    // The new checks, in the other engine's block (its checks have ended).
    const std::uint32_t e = cur_engine ^ 1;
    for (std::uint32_t k = 0; k < rl.probe_slots; ++k) {
        rl.engine_slot[e][k] = none;
    }
    (void)rl.engine_mem[e].reserve(rl.engine_room); // fixed: starts it over
    if (auto r = engines[e].init(reactor, next, rl.engine_mem[e], &procs.spawner(), dns,
                                 rl.next_instance);
        !r) {
        if (r.error().reason() != Reason::out_of_memory) {
            return fail(r.error());
        }
        char what[128];
        std::snprintf(what, sizeof what, "probe checks need %zu bytes, room for %zu (probe_slots)",
                      rl.engine_mem[e].needed(), rl.engine_room);
        return fail(Reason::reload_capacity, 0, what);
    }
    return {};
}

// A reload's step on a probe, as an event (never a state change).
static void probe_event(status::fixed_stream<Runtime::impl::max_listeners>& listeners,
                        const probe::probe_unit& u, std::uint32_t k, Reason why,
                        mono_time now) noexcept {
    ProbeTransition t;
    t.probe = k;
    t.name = u.name;
    t.from = u.state;
    t.to = u.state;
    t.reason = why;
    t.at_ns = to_ns(now);
    listeners.dispatch(status::make_event(t, status::wall_now_ns()));
}

// Applies what check_probes() prepared: removed probes go (their checks in
// flight are cancelled, their results dropped), changed ones take their new
// definition (keeping ready or down) and start their startup phase again,
// added ones start; kept ones are not touched: a check of theirs still
// running in the old engine reports to them. The new engine becomes the
// current one.
void Runtime::impl::apply_probes(const Table& t, const tbl::plan& next,
                                 ReloadSummary& sum) noexcept {
    const auto nnew = static_cast<std::uint32_t>(t.probes.size());
    const std::uint32_t* slot_of = rl.probe_scratch;
    const std::uint32_t old_e = cur_engine;
    const std::uint32_t new_e = cur_engine ^ 1;
    const mono_time now = reactor.now();
    // The old engine reports only to the probes kept unchanged.
    probe::engine& old = engines[old_e];
    for (std::uint32_t j = 0; j < old.size(); ++j) {
        const std::uint32_t slot = rl.engine_slot[old_e][j];
        bool keep = false;
        for (std::uint32_t k = 0; k < nnew && !keep && slot != none; ++k) {
            keep = slot_of[k] == slot; // untagged: kept as it was
        }
        if (!keep) {
            rl.engine_slot[old_e][j] = none;
            old.cancel(old.root(j));
        }
    }
    // Removed.
    for (std::uint32_t slot = 0; slot < rl.probe_slots; ++slot) {
        if (rl.slot_probe[slot] == none) {
            continue;
        }
        bool kept = false;
        for (std::uint32_t k = 0; k < nnew && !kept; ++k) {
            kept = (slot_of[k] & slot_mask) == slot && (slot_of[k] & tag_added) == 0;
        }
        if (!kept) {
            probe_event(listeners, probes.at(slot), rl.slot_probe[slot], Reason::reload_removed,
                        now);
            probes.vacate(slot);
            ++sum.probes_removed;
        }
    }
    // Changed and added; every probe's index in the new table.
    for (std::uint32_t slot = 0; slot < rl.probe_slots; ++slot) {
        rl.slot_probe[slot] = none;
    }
    for (std::uint32_t k = 0; k < nnew; ++k) {
        const std::uint32_t slot = slot_of[k] & slot_mask;
        if ((slot_of[k] & tag_added) != 0) {
            (void)probes.redefine(slot, t.probes[k]); // fits: check_probes()
        } else if ((slot_of[k] & tag_changed) != 0) {
            (void)probes.redefine(slot, t.probes[k], true);
        }
        rl.probe_slot[k] = slot;
        rl.slot_probe[slot] = k;
        rl.engine_slot[new_e][k] = slot;
        probes.renumber(slot, k);
        harr.probe_critical[k] = t.probes[k].critical;
        harr.probe_grace_ns[k] = std::chrono::duration_cast<nanos>(t.probes[k].grace).count();
    }
    for (std::uint32_t k = nnew; k < rl.probe_slots; ++k) {
        rl.probe_slot[k] = none;
    }
    nprobes = nnew;
    if (ctl.probe_names != nullptr) {
        for (std::uint32_t k = 0; k < rl.probe_slots; ++k) {
            ctl.probe_names[k] = k < nnew ? probes.at(rl.probe_slot[k]).name : std::string_view();
        }
    }
    // The new engine is the current one.
    probe::engine& cur = engines[new_e];
    for (std::uint32_t k = 0; k < nnew; ++k) {
        probe::check& c = cur.root(k);
        c.done = &impl::on_check_done;
        c.user = this;
    }
    cur_engine = new_e;
    rl.next_instance += next.check_count();
    if (rl.cgroups != nullptr && rl.cg_free != nullptr) {
        const std::uint32_t used = cur.assign_cgroups(*rl.cgroups, {rl.cg_free, rl.ncg_free});
        std::memmove(rl.cg_free, rl.cg_free + used, (rl.ncg_free - used) * sizeof *rl.cg_free);
        rl.ncg_free -= used;
    }
    rl.old_engine_busy = true;
    if (!old.running()) {
        old_engine_done();
    }
    for (std::uint32_t k = 0; k < nnew; ++k) {
        const std::uint32_t slot = slot_of[k] & slot_mask;
        if ((slot_of[k] & tag_added) != 0) {
            probe_event(listeners, probes.at(slot), k, Reason::reload_added, now);
            probes.start(slot);
            ++sum.probes_added;
        } else if ((slot_of[k] & tag_changed) != 0) {
            probe_event(listeners, probes.at(slot), k, Reason::reload_changed, now);
            probes.start(slot);
            ++sum.probes_changed;
        } else {
            ++sum.probes_unchanged;
        }
    }
    health_dirty.dirty = true;
}

Result<ReloadSummary> Runtime::impl::apply(const Table& t, TableProblemSink* problems) noexcept {
    if (!started || stopping) {
        return fail(Reason::reload_busy, 0, "the runtime is not running");
    }
    // 1. One reload at a time: a removed service's slot frees when it stops.
    if (rl.ndraining != 0) {
        for (std::uint32_t i = 0; i < rl.slots; ++i) {
            if (rl.draining[i]) {
                char what[96];
                std::snprintf(what, sizeof what, "'%.*s' is still stopping",
                              static_cast<int>(sup.at(i).name.size()), sup.at(i).name.data());
                return fail(Reason::reload_busy, 0, what);
            }
        }
    }
    // 2. The table's one check, into the spare plan (its walks in room
    // taken at init, for at most the slots and the probes there are).
    if (t.services.size() > rl.slots) {
        char what[96];
        std::snprintf(what, sizeof what, "%zu services, %u slots (service_slots)",
                      t.services.size(), rl.slots);
        return fail(Reason::reload_capacity, 0, what);
    }
    tbl::plan& next = rl.spare;
    tbl::options opt;
    opt.scratch = std::span<std::byte>(rl.check_room, rl.check_bytes);
    if (auto r = next.build(t, opt, problems); !r) {
        if (r.error().reason() == Reason::reload_capacity) {
            return fail(r.error());
        }
        char what[Error::subject_capacity + 1];
        r.error().format(what, sizeof what);
        return fail(Reason::reload_invalid, 0, what);
    }
    // 3. What only a restart applies.
    {
        char what[96];
        if (!tbl::first_unsupported(plan.table(), t, what, sizeof what).empty()) {
            char subject[128];
            std::snprintf(subject, sizeof subject, "%s changed", what);
            return fail(Reason::reload_unsupported, 0, subject);
        }
        if (!same_prunes(t.prunes)) {
            // The jobs' workspaces are laid out at init, each sized by
            // its max_files: a restart applies new ones.
            return fail(Reason::reload_unsupported, 0, "[prune:NAME] sections changed");
        }
    }
    // 4. Every new probe to a slot, its checks laid out; every new service
    // to a slot.
    bool probe_work = false;
    if (auto r = check_probes(t, next, &probe_work); !r) {
        return fail(r.error());
    }
    const std::span<const tbl::service_plan> nsp = next.services();
    const std::uint32_t nnew = static_cast<std::uint32_t>(nsp.size());
    std::uint32_t* slot_of = rl.scratch; // the new plan's k -> slot
    std::uint32_t added = 0;
    for (std::uint32_t k = 0; k < nnew; ++k) {
        slot_of[k] = sup.find(t.services[k].name);
        added += slot_of[k] == none ? 1 : 0;
    }
    std::uint32_t free_slots = 0;
    for (std::uint32_t i = 0; i < rl.slots; ++i) {
        free_slots += sup.vacant(i) ? 1 : 0;
    }
    if (added > free_slots) {
        char what[96];
        std::snprintf(what, sizeof what, "%u services to add, %u free slots (service_slots %u)",
                      added, free_slots, rl.slots);
        return fail(Reason::reload_capacity, 0, what);
    }
    // What each old service becomes: kept (by the new plan's k), or removed.
    const std::span<const tbl::service_plan> osp = plan.services();
    const std::span<const ServiceSpec> old_specs = plan.table().services;
    auto old_index = [&](std::uint32_t slot) noexcept {
        for (std::uint32_t j = 0; j < osp.size(); ++j) {
            if (rl.plan_slot[j] == slot) {
                return j;
            }
        }
        return none;
    };
    std::uint32_t next_free = 0;
    for (std::uint32_t k = 0; k < nnew; ++k) {
        if (slot_of[k] != none) {
            continue;
        }
        while (!sup.vacant(next_free)) {
            ++next_free;
        }
        slot_of[k] = next_free++;
    }
    // 5. Definitions into their slots; undone on the first that does not fit.
    ReloadSummary sum;
    std::uint32_t defined = 0; // new services whose definitions went in
    Error refused;
    bool ok = true;
    for (; ok && defined < nnew; ++defined) {
        const std::uint32_t k = defined;
        const std::uint32_t slot = slot_of[k];
        const ServiceSpec& spec = t.services[k];
        const bool is_new = sup.vacant(slot);
        if (!is_new) {
            const std::uint32_t j = old_index(slot);
            if (j != none && tbl::same_service(old_specs[j], osp[j], spec, nsp[k])) {
                continue;
            }
        }
        const process::launch l = rt_detail::launches::make(next, k);
        if (auto r = procs.redefine(slot, l); !r) {
            refused = r.error();
            ok = false;
            break;
        }
        Result<void> s{};
        if (is_new) {
            char* name = rl.names + std::size_t{slot} * rt_detail::reload_parts::name_bytes;
            const std::size_t n = spec.name.size() < rt_detail::reload_parts::name_bytes - 1
                                      ? spec.name.size()
                                      : rt_detail::reload_parts::name_bytes - 1;
            std::memcpy(name, spec.name.data(), n);
            name[n] = '\0';
            s = sup.occupy(slot, spec, std::string_view(name, n));
        } else {
            s = sup.redefine(slot, spec);
        }
        if (!s) {
            refused = s.error();
            ok = false;
            // This slot's process host definition is undone below with the rest.
            ++defined;
            break;
        }
    }
    if (!ok) {
        for (std::uint32_t k = 0; k < defined; ++k) {
            const std::uint32_t slot = slot_of[k];
            const std::uint32_t j = old_index(slot);
            if (j == none) {
                procs.vacate(slot); // it was free: free again
                continue;
            }
            if (tbl::same_service(old_specs[j], osp[j], t.services[k], nsp[k])) {
                continue;
            }
            (void)procs.redefine(slot, rt_detail::launches::make(plan, j));
            (void)sup.redefine(slot, old_specs[j]);
        }
        // The supervisor's occupy and redefine fail before changing the slot.
        return fail(refused);
    }

    // 6. Act. The probes first: the graph's probe dependencies are by the
    // new table's indices, and services the relink starts check theirs.
    // The monitors look at their dependencies once it is all done.
    rl.applying = true;
    if (probe_work) {
        apply_probes(t, next, sum);
        for (std::uint32_t k = 0; k < nnew; ++k) {
            wires[slot_of[k]].ready_probe = nsp[k].ready_probe;
            wires[slot_of[k]].liveness = nsp[k].liveness;
        }
    }
    // Which old services go, before the graph forgets them.
    for (std::uint32_t j = 0; j < osp.size(); ++j) {
        const std::uint32_t slot = rl.plan_slot[j];
        bool kept = false;
        for (std::uint32_t k = 0; k < nnew && !kept; ++k) {
            kept = slot_of[k] == slot;
        }
        if (!kept) {
            rl.draining[slot] = true;
            ++rl.ndraining;
            ++sum.removed;
        }
    }
    if (auto r = sup.relink(next, {slot_of, nnew}); !r) {
        // Laid out for every slot at init: cannot happen for a checked table.
        for (std::uint32_t i = 0; i < rl.slots; ++i) {
            rl.draining[i] = false;
        }
        rl.ndraining = 0;
        rl.applying = false;
        return fail(r.error());
    }
    // The plan and the status order become the new table's.
    std::uint32_t nchanged = 0;
    std::uint32_t nadded = 0;
    // Classify before the plans are swapped (the old one is compared).
    for (std::uint32_t k = 0; k < nnew; ++k) {
        const std::uint32_t slot = slot_of[k];
        const std::uint32_t j = old_index(slot);
        if (j == none) {
            rl.scratch[k] = slot | tag_added; // added
            ++nadded;
        } else if (!tbl::same_service(old_specs[j], osp[j], t.services[k], nsp[k])) {
            rl.scratch[k] = slot | tag_changed; // changed
            ++nchanged;
        }
    }
    plan.swap(next);
    for (std::uint32_t k = 0; k < nnew; ++k) {
        const std::uint32_t slot = rl.scratch[k] & slot_mask;
        rl.plan_slot[k] = slot;
        rl.critical[slot] = t.services[k].critical;
        wires[slot].ready_probe = plan.services()[k].ready_probe;
        wires[slot].liveness = plan.services()[k].liveness;
    }
    rebuild_view();
    // Removed ones stop (a slot with no process is vacant at once).
    for (std::uint32_t i = 0; i < rl.slots; ++i) {
        if (rl.draining[i] && !sup.vacant(i)) {
            sup.reload_stop(i, false);
        }
    }
    for (std::uint32_t k = 0; k < nnew; ++k) {
        const std::uint32_t tag = rl.scratch[k];
        const std::uint32_t slot = tag & slot_mask;
        if ((tag & tag_added) != 0) {
            sup.start(slot, Reason::reload_added);
        } else if ((tag & tag_changed) != 0) {
            sup.reload_stop(slot, true);
        }
    }
    if (!probe_work) {
        sum.probes_unchanged = nprobes;
    }
    sum.added = nadded;
    sum.changed = nchanged;
    sum.unchanged = nnew - nadded - nchanged;
    rl.applying = false;
    if (rl.monitors_due) {
        rl.monitors_due = false;
        monitors.on_dependency_change();
    }
    publisher.mark_stale();
    return sum;
}

Result<ReloadSummary> Runtime::impl::reload(ReloadReport& report) noexcept {
    if (rl.hook == nullptr) {
        return fail(Reason::reload_unsupported, ENOSYS, "this daemon has no reload hook");
    }
    return rl.hook(*owner, report, rl.hook_ctx);
}

void Runtime::impl::reload_on_signal(int pid, int uid) noexcept {
    ReloadReport report;
    const Result<ReloadSummary> r = reload(report);
    status::event e;
    e.kind = status::event_kind::control_action;
    e.reason = r ? Reason::control_action : r.error().reason();
    e.mono_ns = to_ns(reactor.now());
    e.wall_ns = status::wall_now_ns();
    e.pid = pid; // the sender's, from the signal
    e.peer_uid = uid;
    // The statuses POST /reload would have answered.
    e.http_status = r ? 200 : r.error().reason() == Reason::reload_busy ? 409 : 422;
    e.name = "reload";
    e.detail = "SIGHUP";
    listeners.dispatch(e);
}

Result<ReloadSummary> Runtime::reload(const Table& table, TableProblemSink* problems) noexcept {
    if (impl_ == nullptr) {
        return fail(Reason::reload_busy, 0, "the runtime is not running");
    }
    return impl_->apply(table, problems);
}

void Runtime::set_reload_hook(ReloadHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->rl.hook = hook;
        impl_->rl.hook_ctx = ctx;
    }
}

} // namespace custos
