// The check engine. See check.hpp for the steps of each kind.
#include "probe/check.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "core/assert.hpp"
#include "process/cgroup.hpp"
#include "supervise/table.hpp"

extern char** environ;

namespace custos::probe {

// What a probe's checks share, parsed once at init.
struct check_def {
    ProbeKind kind = ProbeKind::tcp;
    std::string_view name;
    char label[112] = {}; // "127.0.0.1:1883", "http://h/x", "/run/x.sock"
    // tcp, http
    host_port where;
    // http
    const char* request = nullptr;
    std::uint32_t request_len = 0;
    std::span<const std::uint16_t> expect;
    // unix
    sockaddr_un unix_addr{};
    socklen_t unix_len = 0;
    // file
    const char* path = nullptr;
    const char* tmp_inside = nullptr; // the temporary file when path is a directory
    const char* tmp_beside = nullptr; // ... when it is not: in its parent
    owner_ids owner;
    int mode = -1;
    bool writable = false;
    // exec
    process::spawn_request rq;
    // all
    std::uint32_t* members = nullptr;
    std::uint32_t member_count = 0;
};

namespace {

constexpr std::uint32_t http_buffer = 1024;
// A writable check's temporary file: the probe's prefix (under 256 bytes,
// checked at init) and the instance number.
constexpr std::size_t tmp_path_max = 256 + 12;

// Steps of the network kinds.
enum : std::uint8_t { net_resolve, net_socket, net_connect, net_send, net_recv, net_close };
// Steps of the exec kind.
enum : std::uint8_t { exec_wait, exec_reap };
// Steps of the file kind.
enum : std::uint8_t { file_stat, file_open, file_write, file_close, file_unlink };

const char* errno_name(int err) noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char* d = strerrordesc_np(err);
    return d != nullptr ? d : "unknown error";
#else
    (void)err;
    return "error";
#endif
}

// A failure of connect(): the reason an operator can act on.
Reason connect_reason(int err) noexcept {
    switch (err) {
    case ECONNREFUSED:
        return Reason::probe_connect_refused;
    case ETIMEDOUT:
        return Reason::probe_timeout;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        return Reason::probe_unreachable;
    case ENOENT: // a Unix socket path that does not exist
        return Reason::probe_connect_refused;
    default:
        return Reason::probe_connect_failed;
    }
}

} // namespace

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

Result<void> engine::init(io::reactor& r, std::span<const ProbeSpec> probes, arena& mem,
                          process::spawner* spawner, resolver* dns) noexcept {
    r_ = &r;
    spawner_ = spawner;
    dns_ = dns;
    count_ = static_cast<std::uint32_t>(probes.size());
    defs_ = mem.make_array<check_def>(count_);
    roots_ = mem.make_array<check>(count_);
    bool ok = count_ == 0 || (defs_ != nullptr && roots_ != nullptr);
    std::uint32_t execs = 0;
    for (std::uint32_t i = 0; i < count_; ++i) {
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
            if (!s.owner.empty()) {
                auto o = resolve_owner(s.owner);
                if (!o) {
                    return fail(o.error());
                }
                d.owner = *o;
            }
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
            char path[512];
            auto found = sup::resolve_executable(s.argv.empty() ? std::string_view() : s.argv[0],
                                                 path, sizeof path);
            if (!found) {
                return fail(found.error());
            }
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
                std::uint32_t j = find_probe(probes, s.members[k]);
                if (j == UINT32_MAX) {
                    return fail(Reason::probe_unknown, 0, s.members[k]);
                }
                members[k] = j;
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
        std::uint32_t total = count_checks(probes);
        if (total == UINT32_MAX) {
            return fail(Reason::dependency_cycle, 0, "composite probes");
        }
        mem.make_array<check*>(total);
        for (std::uint32_t i = 0; i < count_; ++i) {
            measure(probes, i, mem);
        }
        return fail(Reason::out_of_memory, ENOMEM, "probe checks");
    }
    // Every exec instance, composites included: at most every check.
    std::uint32_t total = count_checks(probes);
    execs_ = mem.make_array<check*>(total);
    if (execs_ == nullptr && total != 0) {
        return fail(Reason::out_of_memory, ENOMEM, "probe checks");
    }
    for (std::uint32_t i = 0; i < count_; ++i) {
        if (!build(roots_[i], i, nullptr, mem)) {
            return fail(Reason::out_of_memory, ENOMEM, "probe checks");
        }
    }
    (void)execs;
    return {};
}

Result<void> engine::attach_cgroups(process::cgroup_tree& tree) noexcept {
    cg_ = &tree;
    for (std::uint32_t k = 0; k < exec_count_; ++k) {
        check& c = *execs_[k];
        char name[process::cgroup_tree::name_capacity + 1];
        const int len = static_cast<int>(c.def_->name.size() < 40 ? c.def_->name.size() : 40);
        std::snprintf(name, sizeof name, "probe:%.*s.%u", len, c.def_->name.data(), k);
        auto slot = tree.add(name);
        if (!slot) {
            return fail(slot.error());
        }
        c.cg_slot_ = static_cast<int>(*slot);
    }
    return {};
}

// What build() takes from the arena for one instance of probe `i` and its
// members, from the specs alone (the sizing pass has no definitions).
void engine::measure(std::span<const ProbeSpec> probes, std::uint32_t i, arena& mem) noexcept {
    const ProbeSpec& s = probes[i];
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
        return;
    case ProbeKind::all:
        mem.make_array<check>(s.members.size());
        for (std::string_view m : s.members) {
            std::uint32_t j = find_probe(probes, m);
            if (j != UINT32_MAX) {
                measure(probes, j, mem);
            }
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
        if (c.info_ == nullptr) {
            return false;
        }
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
            c.step_ = net_socket;
            r_->socket(c.op_, c.addr_.ss_family, SOCK_STREAM, 0);
        } else {
            c.step_ = net_resolve;
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
        c.step_ = net_socket;
        r_->socket(c.op_, AF_UNIX, SOCK_STREAM, 0);
        return;
    case ProbeKind::exec:
        exec_start(c);
        return;
    case ProbeKind::file:
        c.step_ = file_stat;
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
        } else if (c.op_.busy() && c.step_ != net_close) {
            r_->cancel(c.op_);
        }
        return;
    case ProbeKind::exec:
        if (c.pid_ > 0 && c.step_ == exec_wait) {
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

void engine::fail_io(check& c, const char* what, int err) noexcept {
    const char* label = c.def_->label;
    if (err == ETIMEDOUT) {
        c.result.fail(Reason::probe_timeout, err, "%s %s: no answer in time", what, label);
    } else if (err == ECANCELED) {
        c.result.fail(Reason::probe_timeout, err, "%s %s: cancelled", what, label);
    } else if (c.step_ == net_connect || c.step_ == net_socket) {
        c.result.fail(c.step_ == net_socket ? Reason::probe_connect_failed : connect_reason(err),
                      err, "%s %s: %s", what, label, errno_name(err));
    } else {
        c.result.fail(Reason::probe_io_failed, err, "%s %s: %s", what, label, errno_name(err));
    }
}

void engine::close_then_finish(check& c) noexcept {
    if (c.fd_ < 0) {
        finish(c);
        return;
    }
    c.step_ = net_close;
    int fd = c.fd_;
    c.fd_ = -1;
    r_->close(c.op_, fd);
}

void engine::on_dns(dns_lookup& l) noexcept {
    auto& c = *static_cast<check*>(l.user);
    engine& e = *c.owner_;
    if (l.reason != Reason::unknown) {
        if (l.sys_errno == ECANCELED) {
            c.result.fail(Reason::probe_timeout, ECANCELED, "resolve %s: cancelled", c.def_->label);
        } else {
            c.result.fail(Reason::probe_dns_failed, l.sys_errno, "%s", l.detail);
        }
        e.finish(c);
        return;
    }
    if (c.cancelled) {
        c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", c.def_->label);
        e.finish(c);
        return;
    }
    std::memcpy(&c.addr_, &l.addr, sizeof c.addr_);
    c.addr_len_ = l.addr_len;
    c.step_ = net_socket;
    e.r_->socket(c.op_, c.addr_.ss_family, SOCK_STREAM, 0);
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
        if (c.step_ == exec_wait) {
            c.timed_out_ = true;
            ++e.stats_.children_killed;
            e.kill_run(c, -1);
        }
        return;
    }
    e.finish(c);
}

void engine::connect_step(check& c) noexcept {
    c.step_ = net_connect;
    r_->connect(c.op_, c.fd_, reinterpret_cast<const sockaddr*>(&c.addr_), c.addr_len_,
                c.deadline_);
}

void engine::net_step(check& c, std::int32_t result) noexcept {
    const check_def& d = *c.def_;
    // Fix (helper checks): a cancel() that came while this op's completion
    // was already queued could not stop the op (reactor::cancel() returns
    // false then), so the check went on to its next step and ran into its
    // deadline (a composite waited for a cancelled member's full timeout).
    // Stop before issuing any further step instead; close still runs.
    // (net_socket checks this itself; a tcp or unix connect that succeeded
    // has nothing left to do but close.)
    if (c.cancelled && result >= 0 &&
        (c.step_ == net_send || c.step_ == net_recv ||
         (c.step_ == net_connect && d.kind == ProbeKind::http))) {
        c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", d.label);
        close_then_finish(c);
        return;
    }
    switch (c.step_) {
    case net_resolve:
        return; // through on_dns
    case net_socket:
        if (result < 0) {
            fail_io(c, "socket for", -result);
            finish(c);
            return;
        }
        c.fd_ = result;
        if (c.cancelled) {
            c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", d.label);
            close_then_finish(c);
            return;
        }
        connect_step(c);
        return;
    case net_connect:
        if (result < 0) {
            fail_io(c, "connect", -result);
            close_then_finish(c);
            return;
        }
        if (d.kind != ProbeKind::http) {
            close_then_finish(c); // connected: passed
            return;
        }
        c.step_ = net_send;
        c.len_ = 0;
        r_->send(c.op_, c.fd_, d.request, d.request_len, 0, c.deadline_);
        return;
    case net_send:
        if (result <= 0) {
            fail_io(c, "GET", result == 0 ? EPIPE : -result);
            close_then_finish(c);
            return;
        }
        c.len_ += static_cast<std::uint32_t>(result);
        if (c.len_ < d.request_len) {
            r_->send(c.op_, c.fd_, d.request + c.len_, d.request_len - c.len_, 0, c.deadline_);
            return;
        }
        c.step_ = net_recv;
        c.len_ = 0;
        r_->recv(c.op_, c.fd_, c.buf_, http_buffer, 0, c.deadline_);
        return;
    case net_recv: {
        if (result < 0) {
            fail_io(c, "GET", -result);
            close_then_finish(c);
            return;
        }
        c.len_ += static_cast<std::uint32_t>(result);
        const bool eof = result == 0;
        const bool full = c.len_ >= http_buffer;
        http_head h = parse_http_head(c.buf_, c.len_, eof, full);
        switch (h.verdict) {
        case http_verdict::need_more:
            r_->recv(c.op_, c.fd_, c.buf_ + c.len_, http_buffer - c.len_, 0, c.deadline_);
            return;
        case http_verdict::malformed:
            c.result.fail(Reason::probe_http_malformed, 0, "GET %s: %s", d.label, h.problem);
            break;
        case http_verdict::complete:
            if (!http_status_accepted(h.status, d.expect)) {
                c.result.fail(Reason::probe_http_status, 0, "GET %s: status %d", d.label, h.status);
            }
            break;
        }
        close_then_finish(c);
        return;
    }
    case net_close:
        finish(c); // close errors change nothing: the descriptor is gone
        return;
    default:
        finish(c);
        return;
    }
}

void engine::kill_run(check& c, int pidfd) noexcept {
    // The whole cgroup (setsid() children included) where the run has one,
    // and the process group either way.
    if (cg_ != nullptr && c.cg_slot_ >= 0) {
        (void)cg_->kill(static_cast<std::uint32_t>(c.cg_slot_), SIGKILL);
    }
    process::signal_group(pidfd, c.pid_, SIGKILL);
}

void engine::exec_start(check& c) noexcept {
    const check_def& d = *c.def_;
    if (spawner_ == nullptr) {
        c.result.fail(Reason::probe_exec_failed, 0, "%s: no spawner", d.label);
        defer_finish(c);
        return;
    }
    process::spawn_request rq = d.rq;
    if (cg_ != nullptr && c.cg_slot_ >= 0) {
        const auto slot = static_cast<std::uint32_t>(c.cg_slot_);
        if (cg_->populated(slot)) {
            (void)cg_->kill(slot, SIGKILL); // what the previous run left behind
        }
        rq.cgroup_procs_fd = cg_->procs_fd(slot);
    }
    auto s = spawner_->spawn(rq);
    if (!s) {
        c.result.fail(Reason::probe_exec_failed, s.error().sys_errno(), "%s: %s", d.label,
                      s.error().subject().data());
        defer_finish(c);
        return;
    }
    c.pid_ = s->pid;
    c.pidfd_ = s->pidfd;
    c.step_ = exec_wait;
    if (c.pidfd_ >= 0) {
        r_->waitid(c.op_, c.pidfd_, c.info_, c.deadline_);
    } else {
        r_->arm(c.timer_, c.deadline_);
    }
}

void engine::exec_step(check& c, std::int32_t result) noexcept {
    if (result == 0) {
        exec_exited(c, *c.info_);
        return;
    }
    if ((result == -ETIMEDOUT || result == -ECANCELED) && c.step_ == exec_wait) {
        if (result == -ETIMEDOUT) {
            c.timed_out_ = true;
            ++stats_.children_killed;
        }
        kill_run(c, c.pidfd_);
        c.step_ = exec_reap;
        r_->waitid(c.op_, c.pidfd_, c.info_); // killed: it cannot take long
        return;
    }
    // The op failed (ECHILD: reaped elsewhere; ENOBUFS): nothing to wait for.
    c.result.fail(Reason::probe_exec_failed, -result, "%s: waiting for it: %s", c.def_->label,
                  errno_name(-result));
    siginfo_t none{};
    none.si_pid = c.pid_;
    none.si_code = CLD_KILLED;
    none.si_status = SIGKILL;
    kill_run(c, c.pidfd_);
    exec_exited(c, none);
}

void engine::exec_exited(check& c, const siginfo_t& si) noexcept {
    const check_def& d = *c.def_;
    r_->cancel(c.timer_);
    // Whatever it left in its group goes with it.
    kill_run(c, -1);
    if (c.pidfd_ >= 0) {
        ::close(c.pidfd_);
        c.pidfd_ = -1;
    }
    c.pid_ = 0;
    if (!c.result.passed()) {
        // Already failed: the wait itself failed (exec_step).
    } else if (c.timed_out_) {
        c.result.fail(Reason::probe_timeout, ETIMEDOUT, "%s: still running at the timeout: killed",
                      d.label);
    } else if (c.cancelled) {
        c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", d.label);
    } else if (si.si_code == CLD_EXITED && si.si_status == 0) {
        // passed
    } else if (si.si_code == CLD_EXITED) {
        c.result.fail(Reason::probe_exit_status, 0, "%s: exit status %d", d.label, si.si_status);
    } else {
        c.result.fail(Reason::probe_exit_status, 0, "%s: killed by signal %d", d.label,
                      si.si_status);
    }
    finish(c);
}

bool engine::owns_child(int pid, bool* watched_by_op) const noexcept {
    for (std::uint32_t i = 0; i < exec_count_; ++i) {
        const check& c = *execs_[i];
        if (c.pid_ == pid && c.pid_ > 0) {
            *watched_by_op = c.pidfd_ >= 0 && c.op_.busy();
            return true;
        }
    }
    return false;
}

int engine::child_at(std::uint32_t k, bool* watched_by_op) const noexcept {
    if (k >= exec_count_ || execs_[k]->pid_ <= 0) {
        return 0;
    }
    const check& c = *execs_[k];
    *watched_by_op = c.pidfd_ >= 0 && c.op_.busy();
    return c.pid_;
}

void engine::on_child_exit(int pid, const siginfo_t& si) noexcept {
    for (std::uint32_t i = 0; i < exec_count_; ++i) {
        check& c = *execs_[i];
        if (c.pid_ == pid && c.pid_ > 0 && c.pidfd_ < 0) {
            exec_exited(c, si);
            return;
        }
    }
}

void engine::file_checks(check& c) noexcept {
    const check_def& d = *c.def_;
    const struct statx& st = *c.stx_;
    if ((d.owner.uid >= 0 && static_cast<long>(st.stx_uid) != d.owner.uid) ||
        (d.owner.gid >= 0 && static_cast<long>(st.stx_gid) != d.owner.gid)) {
        c.result.fail(Reason::probe_owner_mismatch, 0, "%s: owner %u:%u, expected %ld:%ld", d.label,
                      st.stx_uid, st.stx_gid, d.owner.uid, d.owner.gid);
        finish(c);
        return;
    }
    if (d.mode >= 0 && (st.stx_mode & d.mode) != static_cast<unsigned>(d.mode)) {
        c.result.fail(Reason::probe_mode_mismatch, 0, "%s: mode %04o lacks %04o", d.label,
                      st.stx_mode & 07777u, static_cast<unsigned>(d.mode) & ~st.stx_mode & 07777u);
        finish(c);
        return;
    }
    if (!d.writable || c.cancelled) {
        finish(c);
        return;
    }
    c.step_ = file_open;
    const char* tmp = S_ISDIR(st.stx_mode) ? c.tmp_inside_ : c.tmp_beside_;
    r_->openat(c.op_, AT_FDCWD, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
}

void engine::file_cleanup(check& c) noexcept {
    if (c.fd_ >= 0) {
        c.step_ = file_close;
        int fd = c.fd_;
        c.fd_ = -1;
        r_->close(c.op_, fd);
        return;
    }
    if (c.created_) {
        c.created_ = false;
        c.step_ = file_unlink;
        const char* tmp = S_ISDIR(c.stx_->stx_mode) ? c.tmp_inside_ : c.tmp_beside_;
        r_->unlinkat(c.op_, AT_FDCWD, tmp, 0);
        return;
    }
    finish(c);
}

void engine::file_step(check& c, std::int32_t result) noexcept {
    const check_def& d = *c.def_;
    switch (c.step_) {
    case file_stat:
        if (result < 0) {
            c.result.fail(Reason::probe_file_missing, -result, "%s: %s", d.label,
                          errno_name(-result));
            finish(c);
            return;
        }
        file_checks(c);
        return;
    case file_open:
        if (result < 0) {
            c.result.fail(Reason::probe_not_writable, -result, "create a file beside/in %s: %s",
                          d.label, errno_name(-result));
            finish(c);
            return;
        }
        c.fd_ = result;
        c.created_ = true;
        c.step_ = file_write;
        r_->write(c.op_, c.fd_, "custos\n", 7);
        return;
    case file_write:
        if (result != 7) {
            int err = result < 0 ? -result : ENOSPC;
            c.result.fail(Reason::probe_not_writable, err, "write in %s: %s", d.label,
                          errno_name(err));
        }
        file_cleanup(c);
        return;
    case file_close:
        if (result < 0 && c.result.passed()) {
            // A delayed write error (NFS, quota) can surface at close.
            c.result.fail(Reason::probe_not_writable, -result, "close in %s: %s", d.label,
                          errno_name(-result));
        }
        file_cleanup(c);
        return;
    case file_unlink:
        if (result < 0 && c.result.passed()) {
            c.result.fail(Reason::probe_not_writable, -result, "remove the file in %s: %s", d.label,
                          errno_name(-result));
        }
        finish(c);
        return;
    default:
        finish(c);
        return;
    }
}

} // namespace custos::probe
