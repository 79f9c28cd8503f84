// The check engine: layout, start, cancel, end, composites. See check.hpp
// for the steps of each kind; check_net.cpp and check_local.cpp run them.
#include "probe/check.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "core/assert.hpp"
#include "probe/check_def.hpp"
#include "process/cgroup.hpp"

extern char** environ;

namespace custos::probe {

bool engine::needs_resolver(std::span<const ProbeSpec> probes) noexcept {
    for (const ProbeSpec& p : probes) {
        if (p.kind == ProbeKind::tcp) {
            auto r = parse_host_port(p.target);
            if (r && !r->literal) {
                return true;
            }
        } else if (p.kind == ProbeKind::http) {
            auto r = parse_http_url(p.target);
            if (r && !r->where.literal) {
                return true;
            }
        }
    }
    return false;
}

bool engine::needs_spawner(std::span<const ProbeSpec> probes) noexcept {
    for (const ProbeSpec& p : probes) {
        if (p.kind == ProbeKind::exec) {
            return true;
        }
    }
    return false;
}

Result<void> engine::init(io::reactor& r, const tbl::plan& plan, arena& mem,
                          process::spawner* spawner, resolver* dns,
                          std::uint32_t first_instance) noexcept {
    const std::span<const ProbeSpec> probes = plan.table().probes;
    const std::span<const tbl::probe_plan> resolved = plan.probes();
    r_ = &r;
    spawner_ = spawner;
    dns_ = dns;
    first_ = first_instance;
    instances_ = first_instance;
    exec_count_ = 0;
    execs_ = nullptr;
    cg_ = nullptr;
    // Counted in only once laid out whole: an engine a failed init left is
    // empty, never half there (a reload's spare is asked for its checks).
    count_ = 0;
    const auto total_probes = static_cast<std::uint32_t>(probes.size());
    defs_ = mem.make_array<check_def>(total_probes);
    roots_ = mem.make_array<check>(total_probes);
    bool ok = total_probes == 0 || (defs_ != nullptr && roots_ != nullptr);
    std::uint32_t execs = 0;
    for (std::uint32_t i = 0; i < total_probes; ++i) {
        const ProbeSpec& s = probes[i];
        check_def scratch;
        check_def& d = ok ? defs_[i] : scratch;
        d.kind = s.kind;
        char* name = mem.copy(s.name);
        ok = ok && name != nullptr;
        d.name = name != nullptr ? std::string_view(name, s.name.size()) : s.name;
        switch (s.kind) {
        case ProbeKind::tcp: {
            char* text = mem.copy(s.target);
            auto hp = parse_host_port(text != nullptr ? std::string_view(text, s.target.size())
                                                      : s.target);
            if (!hp) {
                return fail(hp.error());
            }
            d.where = *hp;
            std::snprintf(d.label, sizeof d.label, "%.*s", static_cast<int>(s.target.size()),
                          s.target.data());
            ok = ok && text != nullptr;
            break;
        }
        case ProbeKind::http: {
            char* text = mem.copy(s.target);
            auto u = parse_http_url(text != nullptr ? std::string_view(text, s.target.size())
                                                    : s.target);
            if (!u) {
                return fail(u.error());
            }
            d.where = u->where;
            char req[1024];
            std::size_t n = build_http_request(*u, req, sizeof req);
            if (n == 0) {
                return fail(Reason::invalid_argument, 0, "http probe URL too long");
            }
            char* stored = mem.copy(std::string_view(req, n));
            d.request = stored;
            d.request_len = static_cast<std::uint32_t>(n);
            auto* expect = mem.make_array<std::uint16_t>(s.expect_status.size());
            if (expect != nullptr) {
                for (std::size_t k = 0; k < s.expect_status.size(); ++k) {
                    expect[k] = s.expect_status[k];
                }
                d.expect = std::span<const std::uint16_t>(expect, s.expect_status.size());
            }
            std::snprintf(d.label, sizeof d.label, "%.*s", static_cast<int>(s.target.size()),
                          s.target.data());
            ok = ok && text != nullptr && stored != nullptr &&
                 (expect != nullptr || s.expect_status.empty());
            break;
        }
        case ProbeKind::unix_socket:
            if (s.target.empty() || s.target.size() >= sizeof d.unix_addr.sun_path) {
                return fail(Reason::invalid_argument, 0, s.target);
            }
            d.unix_addr.sun_family = AF_UNIX;
            std::memcpy(d.unix_addr.sun_path, s.target.data(), s.target.size());
            d.unix_len =
                static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + s.target.size() + 1);
            std::snprintf(d.label, sizeof d.label, "%.*s", static_cast<int>(s.target.size()),
                          s.target.data());
            break;
        case ProbeKind::file: {
            d.mode = s.mode;
            d.writable = s.writable;
            d.owner = resolved[i].owner;
            char* path = mem.copy(s.target);
            d.path = path;
            std::snprintf(d.label, sizeof d.label, "%.*s", static_cast<int>(s.target.size()),
                          s.target.data());
            ok = ok && path != nullptr;
            if (s.writable) {
                // Per probe and per custos process, so two probes or two
                // runtimes never race on one file; dot-named to stay out of
                // directory listings.
                char tmp[256];
                std::string_view p = s.target;
                while (p.size() > 1 && p.back() == '/') {
                    p.remove_suffix(1);
                }
                int n = std::snprintf(tmp, sizeof tmp, "%.*s/.custos-probe-%.*s.%d",
                                      static_cast<int>(p.size()), p.data(),
                                      static_cast<int>(s.name.size()), s.name.data(),
                                      static_cast<int>(::getpid()));
                if (n < 0 || static_cast<std::size_t>(n) >= sizeof tmp) {
                    return fail(Reason::invalid_argument, ENAMETOOLONG, s.target);
                }
                char* inside = mem.copy(std::string_view(tmp, static_cast<std::size_t>(n)));
                std::size_t slash = p.rfind('/');
                std::string_view parent = slash == 0 || slash == std::string_view::npos
                                              ? std::string_view("")
                                              : p.substr(0, slash);
                n = std::snprintf(tmp, sizeof tmp, "%.*s/.custos-probe-%.*s.%d",
                                  static_cast<int>(parent.size()), parent.data(),
                                  static_cast<int>(s.name.size()), s.name.data(),
                                  static_cast<int>(::getpid()));
                char* beside = n > 0 && static_cast<std::size_t>(n) < sizeof tmp
                                   ? mem.copy(std::string_view(tmp, static_cast<std::size_t>(n)))
                                   : nullptr;
                d.tmp_inside = inside;
                d.tmp_beside = beside;
                ok = ok && inside != nullptr && beside != nullptr;
            }
            break;
        }
        case ProbeKind::exec: {
            const char* path = resolved[i].path; // the plan looked it up
            char* stored = mem.copy(path);
            auto argv = process::build_argv(mem, s.argv);
            if (!argv && argv.error().reason() != Reason::capacity_exceeded) {
                return fail(argv.error());
            }
            process::env_spec es;
            es.inherited = environ;
            auto env = process::build_env(mem, es);
            if (!env && env.error().reason() != Reason::capacity_exceeded) {
                return fail(env.error());
            }
            d.rq.path = stored;
            d.rq.argv = argv ? *argv : nullptr;
            d.rq.envp = env ? env->envp : nullptr;
            std::snprintf(d.label, sizeof d.label, "%s", path);
            ok = ok && stored != nullptr && argv.has_value() && env.has_value();
            ++execs;
            break;
        }
        case ProbeKind::all: {
            auto* members = mem.make_array<std::uint32_t>(s.members.size());
            ok = ok && (members != nullptr || s.members.empty());
            for (std::size_t k = 0; k < s.members.size() && members != nullptr; ++k) {
                members[k] = resolved[i].members[k];
            }
            d.members = members;
            d.member_count = static_cast<std::uint32_t>(s.members.size());
            std::snprintf(d.label, sizeof d.label, "all of %zu", s.members.size());
            break;
        }
        }
    }
    if (!ok) {
        // Sizing pass: the trees need the definitions; measure them by the
        // specs instead (the same sizes build() takes below).
        mem.make_array<check*>(plan.check_count());
        for (std::uint32_t i = 0; i < total_probes; ++i) {
            measure(plan, i, mem);
        }
        return fail(Reason::out_of_memory, ENOMEM, "probe checks");
    }
    // Every exec instance, composites included: at most every check.
    const std::uint32_t total = plan.check_count();
    execs_ = mem.make_array<check*>(total);
    if (execs_ == nullptr && total != 0) {
        return fail(Reason::out_of_memory, ENOMEM, "probe checks");
    }
    for (std::uint32_t i = 0; i < total_probes; ++i) {
        if (!build(roots_[i], i, nullptr, mem)) {
            exec_count_ = 0;
            return fail(Reason::out_of_memory, ENOMEM, "probe checks");
        }
    }
    count_ = total_probes;
    (void)execs;
    return {};
}

// "probe:NAME.K": exec instance k's cgroup, numbered from first_.
void engine::cgroup_name(std::uint32_t k,
                         char (&out)[process::cgroup_tree::name_capacity + 1]) const noexcept {
    const std::string_view n = execs_[k]->def_->name;
    const int len = static_cast<int>(n.size() < 40 ? n.size() : 40);
    std::snprintf(out, sizeof out, "probe:%.*s.%u", len, n.data(), first_ + k);
}

Result<void> engine::attach_cgroups(process::cgroup_tree& tree) noexcept {
    cg_ = &tree;
    for (std::uint32_t k = 0; k < exec_count_; ++k) {
        check& c = *execs_[k];
        char name[process::cgroup_tree::name_capacity + 1];
        cgroup_name(k, name);
        auto slot = tree.add(name);
        if (!slot) {
            return fail(slot.error());
        }
        c.cg_slot_ = static_cast<int>(*slot);
    }
    return {};
}

std::uint32_t engine::assign_cgroups(process::cgroup_tree& tree,
                                     std::span<const std::uint32_t> units) noexcept {
    cg_ = &tree;
    std::uint32_t used = 0;
    for (std::uint32_t k = 0; k < exec_count_ && used < units.size(); ++k) {
        check& c = *execs_[k];
        char name[process::cgroup_tree::name_capacity + 1];
        cgroup_name(k, name);
        if (tree.assign(units[used], name)) {
            c.cg_slot_ = static_cast<int>(units[used++]);
        }
    }
    return used;
}

std::uint32_t engine::release_cgroups(std::uint32_t* freed) noexcept {
    std::uint32_t n = 0;
    for (std::uint32_t k = 0; k < exec_count_; ++k) {
        check& c = *execs_[k];
        if (c.cg_slot_ >= 0 && cg_ != nullptr) {
            cg_->release(static_cast<std::uint32_t>(c.cg_slot_));
            freed[n++] = static_cast<std::uint32_t>(c.cg_slot_);
        }
        c.cg_slot_ = -1;
    }
    return n;
}

std::uint32_t engine::instances(const check& c) noexcept {
    std::uint32_t n = 1;
    if (c.children_ != nullptr) {
        for (std::uint32_t k = 0; k < c.def_->member_count; ++k) {
            n += instances(c.children_[k]);
        }
    }
    return n;
}

std::uint32_t engine::running_instances() const noexcept {
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; i < count_; ++i) {
        n += roots_[i].running_ ? instances(roots_[i]) : 0;
    }
    return n;
}

bool engine::running() const noexcept {
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (roots_[i].running_) {
            return true;
        }
    }
    return false;
}

// What build() takes from the arena for one instance of probe `i` and its
// members, from the specs alone (the sizing pass has no definitions).
void engine::measure(const tbl::plan& plan, std::uint32_t i, arena& mem) noexcept {
    const ProbeSpec& s = plan.table().probes[i];
    switch (s.kind) {
    case ProbeKind::tcp: {
        auto hp = parse_host_port(s.target);
        if (hp && !hp->literal) {
            mem.make_array<dns_lookup>(1);
        }
        return;
    }
    case ProbeKind::http: {
        auto u = parse_http_url(s.target);
        if (u && !u->where.literal) {
            mem.make_array<dns_lookup>(1);
        }
        mem.take(http_buffer, 8);
        return;
    }
    case ProbeKind::unix_socket:
        return;
    case ProbeKind::file:
        mem.make_array<struct statx>(1);
        if (s.writable) {
            mem.take(tmp_path_max, 1);
            mem.take(tmp_path_max, 1);
        }
        return;
    case ProbeKind::exec:
        mem.make_array<siginfo_t>(1);
        mem.make_array<exec_tail>(1);
        return;
    case ProbeKind::all:
        mem.make_array<check>(s.members.size());
        for (std::uint32_t j : plan.probes()[i].members) {
            measure(plan, j, mem);
        }
        return;
    }
}

bool engine::build(check& c, std::uint32_t def, check* parent, arena& mem) noexcept {
    const check_def& d = defs_[def];
    c.def_ = &d;
    c.owner_ = this;
    c.parent_ = parent;
    c.op_.done = &engine::on_op;
    c.op_.user = &c;
    c.timer_.fire = &engine::on_timer;
    c.timer_.user = &c;
    switch (d.kind) {
    case ProbeKind::tcp:
    case ProbeKind::http:
        if (!d.where.literal) {
            c.dns_ = mem.make_array<dns_lookup>(1);
            if (c.dns_ == nullptr) {
                return false;
            }
            c.dns_->done = &engine::on_dns;
            c.dns_->user = &c;
        }
        if (d.kind == ProbeKind::http) {
            c.buf_ = static_cast<char*>(mem.take(http_buffer, 8));
            if (c.buf_ == nullptr) {
                return false;
            }
        }
        return true;
    case ProbeKind::unix_socket:
        return true;
    case ProbeKind::file:
        c.stx_ = mem.make_array<struct statx>(1);
        if (c.stx_ == nullptr) {
            return false;
        }
        if (d.writable) {
            // One temporary file per instance: the probe's own check and a
            // composite's may run at once, and must not unlink each other's.
            auto* inside = static_cast<char*>(mem.take(tmp_path_max, 1));
            auto* beside = static_cast<char*>(mem.take(tmp_path_max, 1));
            if (inside == nullptr || beside == nullptr) {
                return false;
            }
            std::snprintf(inside, tmp_path_max, "%s.%u", d.tmp_inside, instances_);
            std::snprintf(beside, tmp_path_max, "%s.%u", d.tmp_beside, instances_);
            c.tmp_inside_ = inside;
            c.tmp_beside_ = beside;
            ++instances_;
        }
        return true;
    case ProbeKind::exec:
        c.info_ = mem.make_array<siginfo_t>(1);
        c.tail_ = mem.make_array<exec_tail>(1);
        if (c.info_ == nullptr || c.tail_ == nullptr) {
            return false;
        }
        c.out_op_.done = &engine::on_output;
        c.out_op_.user = &c;
        execs_[exec_count_++] = &c;
        return true;
    case ProbeKind::all:
        c.children_ = mem.make_array<check>(d.member_count);
        if (c.children_ == nullptr) {
            return false;
        }
        for (std::uint32_t k = 0; k < d.member_count; ++k) {
            if (!build(c.children_[k], d.members[k], &c, mem)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

void engine::start(check& c, mono_time deadline) noexcept {
    CUSTOS_ASSERT(!c.running_);
    c.running_ = true;
    c.cancelled = false;
    c.failed_member_ = false;
    c.timed_out_ = false;
    c.created_ = false;
    c.deadline_ = deadline;
    c.result.pass();
    c.len_ = 0;
    ++stats_.started;
    begin(c);
}

void engine::begin(check& c) noexcept {
    const check_def& d = *c.def_;
    switch (d.kind) {
    case ProbeKind::tcp:
    case ProbeKind::http:
        if (d.where.literal) {
            std::memcpy(&c.addr_, &d.where.addr, sizeof c.addr_);
            c.addr_len_ = d.where.addr_len;
            c.net_step_ = net_stage::socket;
            r_->socket(c.op_, c.addr_.ss_family, SOCK_STREAM, 0);
        } else {
            c.net_step_ = net_stage::resolve;
            if (dns_ == nullptr) {
                c.result.fail(Reason::probe_dns_failed, 0, "%s: no resolver", d.label);
                defer_finish(c);
                return;
            }
            dns_->resolve(*c.dns_, d.where.host, d.where.port, c.deadline_);
        }
        return;
    case ProbeKind::unix_socket:
        std::memcpy(&c.addr_, &d.unix_addr, sizeof d.unix_addr);
        c.addr_len_ = d.unix_len;
        c.net_step_ = net_stage::socket;
        r_->socket(c.op_, AF_UNIX, SOCK_STREAM, 0);
        return;
    case ProbeKind::exec:
        exec_start(c);
        return;
    case ProbeKind::file:
        c.file_step_ = file_stage::stat;
        r_->statx(c.op_, AT_FDCWD, d.path, 0, STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID,
                  c.stx_);
        return;
    case ProbeKind::all:
        c.pending_ = d.member_count;
        for (std::uint32_t k = 0; k < d.member_count; ++k) {
            start(c.children_[k], c.deadline_);
        }
        return;
    }
}

void engine::cancel(check& c) noexcept {
    if (!c.running_ || c.cancelled) {
        return;
    }
    c.cancelled = true;
    ++stats_.cancelled;
    switch (c.def_->kind) {
    case ProbeKind::tcp:
    case ProbeKind::http:
    case ProbeKind::unix_socket:
        if (c.dns_ != nullptr && c.dns_->busy()) {
            dns_->cancel(*c.dns_);
        } else if (c.op_.busy() && c.net_step_ != net_stage::close) {
            r_->cancel(c.op_);
        }
        return;
    case ProbeKind::exec:
        if (c.pid_ > 0 && c.exec_step_ == exec_stage::wait) {
            kill_run(c, c.pidfd_);
            if (c.pidfd_ >= 0) {
                r_->cancel(c.op_); // then reaped without a deadline
            }
        }
        return;
    case ProbeKind::file:
        return; // its steps are short: it ends by itself, marked cancelled
    case ProbeKind::all:
        for (std::uint32_t k = 0; k < c.def_->member_count; ++k) {
            cancel(c.children_[k]);
        }
        return;
    }
}

void engine::defer_finish(check& c) noexcept {
    r_->arm(c.timer_, r_->now());
}

void engine::finish(check& c) noexcept {
    c.running_ = false;
    if (!c.result.passed()) {
        ++stats_.failed;
    }
    if (c.parent_ != nullptr) {
        member_done(*c.parent_, c);
        return;
    }
    if (c.done != nullptr) {
        c.done(c);
    }
}

void engine::member_done(check& parent, check& member) noexcept {
    if (!member.result.passed() && !parent.failed_member_) {
        parent.failed_member_ = true;
        parent.result.fail(member.result.reason, member.result.sys_errno, "%.*s: %s",
                           static_cast<int>(member.def_->name.size()), member.def_->name.data(),
                           member.result.message);
        // The first failure decides: the others need not finish their work.
        for (std::uint32_t k = 0; k < parent.def_->member_count; ++k) {
            cancel(parent.children_[k]);
        }
    }
    CUSTOS_ASSERT(parent.pending_ > 0);
    if (--parent.pending_ == 0) {
        finish(parent);
    }
}

void engine::on_op(io::op& o, std::int32_t result) noexcept {
    auto& c = *static_cast<check*>(o.user);
    engine& e = *c.owner_;
    switch (c.def_->kind) {
    case ProbeKind::tcp:
    case ProbeKind::http:
    case ProbeKind::unix_socket:
        e.net_step(c, result);
        return;
    case ProbeKind::exec:
        e.exec_step(c, result);
        return;
    case ProbeKind::file:
        e.file_step(c, result);
        return;
    case ProbeKind::all:
        return; // composites issue no ops
    }
}

void engine::on_timer(io::timer& t) noexcept {
    auto& c = *static_cast<check*>(t.user);
    engine& e = *c.owner_;
    if (c.def_->kind == ProbeKind::exec && c.pid_ > 0) {
        // No pidfd: the kill deadline. The exit comes through the runtime.
        if (c.exec_step_ == exec_stage::wait) {
            c.timed_out_ = true;
            ++e.stats_.children_killed;
            e.kill_run(c, -1);
        }
        return;
    }
    e.finish(c);
}

} // namespace custos::probe
