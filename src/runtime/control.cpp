// The control plane's wiring (impl.hpp's control_parts): operators and the
// socket's group resolved at init, the server laid out in the arena, and
// the actions it asks of the runtime.
#include <unistd.h>

#include <cerrno>

#include "ports/reset_record.hpp"
#include "runtime/impl.hpp"
#include "table/users.hpp"

namespace custos {

namespace {
constexpr std::string_view version = "0.1.0";
} // namespace

Result<void> Runtime::impl::resolve_control(const ControlConfig& c) noexcept {
    if (c.socket.empty()) {
        return {};
    }
    if (c.max_clients == 0 || c.max_head_bytes < 256 || c.max_body_bytes == 0 ||
        c.max_requests == 0) {
        return fail(Reason::invalid_argument, EINVAL,
                    "control: max_clients, max_requests and the limits must be positive (a head "
                    "at least 256 bytes)");
    }
    if (!c.group.empty()) {
        auto g = tbl::find_group(c.group);
        if (!g) {
            return fail(g.error());
        }
        ctl.socket_group = g->gid;
    }
    for (std::string_view op : c.operators) {
        if (!op.empty() && op[0] == '@') {
            auto g = tbl::find_group(op.substr(1));
            if (!g) {
                return fail(g.error());
            }
        } else {
            auto u = tbl::find_user(op);
            if (!u) {
                return fail(u.error());
            }
        }
    }
    return {};
}

Result<void> Runtime::impl::layout_control(const ControlConfig& c) noexcept {
    ctl.ctx.snap = &snap;
    ctl.ctx.version = version;
    ctl.ctx.pid = static_cast<int>(::getpid());
    ctl.ctx.reactor = &reactor.stats();
    auto tf = ctl.textfile.init(mem, c, reactor, ctl.ctx);
    if (!tf && tf.error().reason() != Reason::out_of_memory) {
        return tf;
    }
    if (c.socket.empty()) {
        return tf;
    }
    bool ok = true;
    std::uint32_t nu = 0;
    std::uint32_t ng = 0;
    for (std::string_view op : c.operators) {
        ++(!op.empty() && op[0] == '@' ? ng : nu);
    }
    ctl.uids = mem.make_array<uid_t>(nu);
    ctl.gids = mem.make_array<gid_t>(ng);
    // Room for every slot: the names past the shown ones are empty (a name
    // in a request is never), and a reload changes them (rebuild_view()).
    ctl.service_names = mem.make_array<std::string_view>(rl.slots);
    ctl.probe_names = mem.make_array<std::string_view>(rl.probe_slots);
    ctl.monitor_names = mem.make_array<std::string_view>(nmonitors);
    ok = (nu == 0 || ctl.uids != nullptr) && (ng == 0 || ctl.gids != nullptr) &&
         (count == 0 || ctl.service_names != nullptr) &&
         (rl.probe_slots == 0 || ctl.probe_names != nullptr) &&
         (nmonitors == 0 || ctl.monitor_names != nullptr);
    if (ok) {
        // Resolved in resolve_control() already: these lookups succeed.
        ctl.nuids = 0;
        ctl.ngids = 0;
        for (std::string_view op : c.operators) {
            if (!op.empty() && op[0] == '@') {
                auto g = tbl::find_group(op.substr(1));
                ctl.gids[ctl.ngids++] = g ? g->gid : static_cast<gid_t>(-1);
            } else {
                auto u = tbl::find_user(op);
                ctl.uids[ctl.nuids++] = u ? u->uid : static_cast<uid_t>(-1);
            }
        }
        for (std::uint32_t i = 0; i < count; ++i) {
            ctl.service_names[i] = sup.at(i).name;
        }
        for (std::uint32_t p = 0; p < nprobes; ++p) {
            ctl.probe_names[p] = probes.at(p).name;
        }
        for (std::uint32_t m = 0; m < nmonitors; ++m) {
            ctl.monitor_names[m] = monitors.at(m).name;
        }
    }
    control::operator_ids ids;
    ids.uids = {ctl.uids, ok ? ctl.nuids : 0};
    ids.gids = {ctl.gids, ok ? ctl.ngids : 0};
    ids.socket_group = ctl.socket_group;
    control::route_names names;
    if (ok) {
        names.services = {ctl.service_names, rl.slots};
        names.probes = {ctl.probe_names, rl.probe_slots};
        names.monitors = {ctl.monitor_names, nmonitors};
    }
    auto r = ctl.server.init(mem, c, ids, names, reactor, snap, ctl.ctx, listeners, *this);
    if (!r) {
        return r;
    }
    return ok && tf ? Result<void>{} : fail(Reason::out_of_memory, ENOMEM, "control plane");
}

void Runtime::set_control_hook(ControlHook hook, void* ctx) noexcept {
    if (impl_ != nullptr) {
        impl_->user_hooks.set_control_hook(hook, ctx);
    }
}

Result<void> Runtime::add_control_route(std::string_view component, ControlHandler handler,
                                        void* ctx) noexcept {
    if (impl_ == nullptr || impl_->started) {
        return fail(Reason::invalid_argument, 0, "add_control_route: after init, before start");
    }
    return impl_->ctl.server.add_route(component, handler, ctx);
}

// `k`: the service's place in status order (the server's names).
Result<void> Runtime::impl::start_service(std::uint32_t k) noexcept {
    sup.start(slot_at(k));
    return {};
}

Result<void> Runtime::impl::stop_service(std::uint32_t k) noexcept {
    sup.stop(slot_at(k));
    return {};
}

Result<void> Runtime::impl::restart_service(std::uint32_t k) noexcept {
    sup.restart(slot_at(k));
    return {};
}

Result<void> Runtime::impl::check_probe(std::uint32_t p) noexcept {
    probes.check_now(probe_at(p));
    return {};
}

} // namespace custos
