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
    return {};
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
    if (t.probes.size() != nprobes) {
        char what[96];
        std::snprintf(what, sizeof what, "probes (%u before, %zu now) changed", nprobes,
                      t.probes.size());
        return fail(Reason::reload_unsupported, 0, what);
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
    }
    // 4. Every new service to a slot.
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

    // 6. Act. Which old services go, before the graph forgets them.
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
    sum.added = nadded;
    sum.changed = nchanged;
    sum.unchanged = nnew - nadded - nchanged;
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
