#include "probe/dns.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/ascii.hpp"
#include "core/assert.hpp"
#include "probe/dns_detail.hpp"

namespace custos::probe {

using dns_detail::parse_address;
using dns_detail::set_port;
using dns_detail::without_final_dot;

namespace {

const char* verdict_text(dns_verdict v) noexcept {
    switch (v) {
    case dns_verdict::address:
        return "an address";
    case dns_verdict::no_data:
        return "no data";
    case dns_verdict::nxdomain:
        return "NXDOMAIN";
    case dns_verdict::server_failure:
        return "SERVFAIL";
    case dns_verdict::refused:
        return "REFUSED";
    case dns_verdict::truncated:
        return "a truncated answer (no TCP fallback)";
    case dns_verdict::malformed:
        return "a malformed answer";
    case dns_verdict::mismatch:
        return "a mismatched answer";
    }
    return "?";
}

// The errors a name server attempt can meet; strerror is avoided (locale
// machinery, not guaranteed allocation-free).
const char* errno_text(int err) noexcept {
    switch (err) {
    case ECONNREFUSED:
        return "connection refused (nothing listens on port 53?)";
    case EHOSTUNREACH:
        return "host unreachable";
    case ENETUNREACH:
        return "network unreachable";
    case ETIMEDOUT:
        return "timed out";
    case EMFILE:
    case ENFILE:
        return "out of file descriptors";
    case ENOBUFS:
    case ENOMEM:
        return "out of buffers";
    case EACCES:
    case EPERM:
        return "not permitted";
    case EAFNOSUPPORT:
        return "address family not supported";
    default:
        return "system error";
    }
}

struct addr_text {
    char s[INET6_ADDRSTRLEN] = "?";
    explicit addr_text(const sockaddr_storage& sa) noexcept {
        if (sa.ss_family == AF_INET) {
            inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&sa)->sin_addr, s, sizeof s);
        } else if (sa.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&sa)->sin6_addr, s,
                      sizeof s);
        }
    }
};

} // namespace

// --- resolver ---------------------------------------------------------------

Result<void> resolver::init(io::reactor& r, const resolver_config& cfg) noexcept {
    if (cfg.server_count > dns_max_servers || cfg.host_count > dns_max_hosts) {
        return fail(Reason::invalid_argument, 0, "resolver_config: count over capacity");
    }
    if (cfg.attempt_timeout.count() <= 0) {
        return fail(Reason::invalid_argument, 0, "resolver_config: attempt_timeout <= 0");
    }
    for (std::uint32_t i = 0; i < cfg.server_count; ++i) {
        sa_family_t f = cfg.servers[i].ss_family;
        socklen_t want = f == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
        if ((f != AF_INET && f != AF_INET6) || cfg.server_len[i] != want) {
            return fail(Reason::invalid_argument, 0, "resolver_config: bad name server address");
        }
    }
    reactor_ = &r;
    cfg_ = cfg;
    // Ids only need to be unpredictable to an off-path spoofer who does not
    // see the queries; the kernel's random source port adds 16 more bits
    // (core/prng.hpp says why that generator is enough here).
    timespec rt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    ids_ = prng(
        (static_cast<std::uint64_t>(to_ns(r.now())) * 0x9e3779b97f4a7c15ULL) ^
        (static_cast<std::uint64_t>(rt.tv_nsec) << 20) ^ static_cast<std::uint64_t>(rt.tv_sec) ^
        (static_cast<std::uint64_t>(::getpid()) << 40) ^ reinterpret_cast<std::uintptr_t>(this));
    return {};
}

std::uint16_t resolver::next_id() noexcept {
    return static_cast<std::uint16_t>(ids_.next() >> 48);
}

bool resolver::answer_locally(dns_lookup& l) noexcept {
    std::string_view host(l.name_, l.name_len_);
    std::string_view literal = host;
    if (literal.size() >= 2 && literal.front() == '[' && literal.back() == ']') {
        literal = literal.substr(1, literal.size() - 2);
    }
    if (parse_address(literal, l.addr, l.addr_len)) {
        set_port(l.addr, l.port_);
        return true;
    }
    if (is_localhost_name(host)) {
        // IPv4, like the A-before-AAAA order of the hosts table and queries.
        auto* in = reinterpret_cast<sockaddr_in*>(&l.addr);
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l.addr_len = sizeof(sockaddr_in);
        set_port(l.addr, l.port_);
        return true;
    }
    std::string_view want = without_final_dot(host);
    const dns_host_entry* v6 = nullptr;
    for (std::uint32_t i = 0; i < cfg_.host_count; ++i) {
        const dns_host_entry& e = cfg_.hosts[i];
        if (!ascii_iequal(without_final_dot(e.name), want)) {
            continue;
        }
        if (e.addr.ss_family == AF_INET) {
            v6 = &e; // an IPv4 entry wins, like the A-before-AAAA order below
            break;
        }
        if (v6 == nullptr) {
            v6 = &e;
        }
    }
    if (v6 == nullptr) {
        return false;
    }
    l.addr = v6->addr;
    l.addr_len = v6->addr_len;
    set_port(l.addr, l.port_);
    return true;
}

void resolver::resolve(dns_lookup& l, std::string_view host, std::uint16_t port,
                       mono_time deadline) noexcept {
    CUSTOS_ASSERT(reactor_ != nullptr && !l.busy() && l.done != nullptr);
    ++stats_.lookups;
    l.owner_ = this;
    l.io_op_.done = &resolver::on_io;
    l.io_op_.user = &l;
    l.close_op_.done = &resolver::on_closed;
    l.close_op_.user = &l;
    io::reactor::make_internal(l.close_op_);
    l.finish_timer_.fire = &resolver::on_finish;
    l.finish_timer_.user = &l;

    l.reason = Reason::unknown;
    l.sys_errno = 0;
    l.detail[0] = '\0';
    l.addr = {};
    l.addr_len = 0;
    l.cancel_requested_ = false;
    l.then_ = dns_lookup::then::finish;
    l.fd_ = -1;
    l.server_ = 0;
    l.attempts_ = 0;
    l.timeouts_ = 0;
    l.qtype_ = dns_type_a;
    l.port_ = port;
    l.last_errno_ = 0;
    l.errno_server_ = 0;
    l.answered_ = false;
    l.answer_server_ = 0;
    l.last_verdict_ = dns_verdict::mismatch;
    l.deadline_ = deadline == io::no_deadline ? mono_time::max() : deadline;

    if (host.size() > dns_max_name + 1) { // a final dot may follow 253 bytes
        set_failure(l, EINVAL, "%.*s...: host name longer than 253 bytes", 60, host.data());
        finish(l);
        return;
    }
    std::memcpy(l.name_, host.data(), host.size());
    l.name_[host.size()] = '\0';
    l.name_len_ = static_cast<std::uint8_t>(host.size());

    if (answer_locally(l)) {
        finish(l);
        return;
    }
    if (build_dns_query(0, host, dns_type_a, l.query_, sizeof l.query_) == 0) {
        set_failure(l, EINVAL, "%s: not a valid host name", l.name_);
        finish(l);
        return;
    }
    if (cfg_.server_count == 0) {
        set_failure(l, 0, "%s: not in the hosts table and no name server configured", l.name_);
        finish(l);
        return;
    }
    start_attempt(l);
}

void resolver::cancel(dns_lookup& l) noexcept {
    if (!l.busy()) {
        return;
    }
    CUSTOS_ASSERT(l.owner_ == this);
    l.cancel_requested_ = true;
    switch (l.phase_) {
    case dns_lookup::phase::sending:
    case dns_lookup::phase::receiving:
        // Its callback sees cancel_requested_, whatever result it gets.
        reactor_->cancel(l.io_op_);
        return;
    case dns_lookup::phase::closing:
        return; // on_closed sees cancel_requested_
    case dns_lookup::phase::finishing:
        set_failure(l, ECANCELED, "%s: lookup cancelled", l.name_);
        l.addr_len = 0;
        return;
    case dns_lookup::phase::idle:
        return;
    }
}

void resolver::set_failure(dns_lookup& l, int err, const char* fmt, ...) noexcept {
    l.reason = Reason::probe_dns_failed;
    l.sys_errno = err;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(l.detail, sizeof l.detail, fmt, ap);
    va_end(ap);
}

void resolver::finish(dns_lookup& l) noexcept {
    l.phase_ = dns_lookup::phase::finishing;
    // A zero delay: done must run from the loop, never inside resolve().
    reactor_->arm_after(l.finish_timer_, nanos(0));
}

void resolver::on_finish(io::timer& t) noexcept {
    auto& l = *static_cast<dns_lookup*>(t.user);
    if (l.reason != Reason::unknown) {
        ++l.owner_->stats_.failures;
        l.addr_len = 0;
    }
    l.phase_ = dns_lookup::phase::idle;
    l.done(l); // last: it may resolve() again
}

void resolver::deadline_passed(dns_lookup& l) noexcept {
    set_failure(l, ETIMEDOUT, "%s: no answer in time from %u name server%s", l.name_,
                static_cast<unsigned>(l.attempts_), l.attempts_ == 1 ? "" : "s");
    finish(l);
}

void resolver::start_attempt(dns_lookup& l) noexcept {
    for (; l.server_ < cfg_.server_count; ++l.server_) {
        mono_time now = reactor_->now();
        if (now >= l.deadline_) {
            deadline_passed(l);
            return;
        }
        const sockaddr_storage& sa = cfg_.servers[l.server_];
        int fd = ::socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            l.last_errno_ = errno;
            l.errno_server_ = l.server_;
            continue;
        }
        // UDP connect only sets the peer (and picks a random source port):
        // it does not block. The kernel then drops datagrams from others.
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), cfg_.server_len[l.server_]) !=
            0) {
            l.last_errno_ = errno;
            l.errno_server_ = l.server_;
            ::close(fd); // never seen by the reactor: a plain close is safe
            continue;
        }
        ++l.attempts_;
        l.fd_ = fd;
        l.id_ = next_id();
        std::size_t n = build_dns_query(l.id_, std::string_view(l.name_, l.name_len_), l.qtype_,
                                        l.query_, sizeof l.query_);
        CUSTOS_ASSERT(n != 0); // the name was checked in resolve()
        l.query_len_ = static_cast<std::uint16_t>(n);
        mono_time attempt_end = now + cfg_.attempt_timeout;
        l.attempt_deadline_ = attempt_end < l.deadline_ ? attempt_end : l.deadline_;
        l.phase_ = dns_lookup::phase::sending;
        ++stats_.queries_sent;
        reactor_->send(l.io_op_, fd, l.query_, l.query_len_, 0, l.attempt_deadline_);
        return;
    }
    servers_exhausted(l);
}

void resolver::servers_exhausted(dns_lookup& l) noexcept {
    if (reactor_->now() >= l.deadline_) {
        deadline_passed(l); // the deadline, not an earlier server's failure, ended it
        return;
    }
    if (l.answered_) {
        addr_text server(cfg_.servers[l.answer_server_]);
        set_failure(l, 0, "%s: %s from %s", l.name_, verdict_text(l.last_verdict_), server.s);
    } else if (l.last_errno_ != 0 && l.last_errno_ != ETIMEDOUT) {
        addr_text server(cfg_.servers[l.errno_server_]);
        set_failure(l, l.last_errno_, "%s: name server %s: %s", l.name_, server.s,
                    errno_text(l.last_errno_));
    } else {
        set_failure(l, ETIMEDOUT, "%s: no answer from %u name server%s", l.name_,
                    static_cast<unsigned>(l.attempts_), l.attempts_ == 1 ? "" : "s");
    }
    finish(l);
}

void resolver::end_attempt(dns_lookup& l, dns_lookup::then next) noexcept {
    l.then_ = next;
    l.phase_ = dns_lookup::phase::closing;
    int fd = l.fd_;
    l.fd_ = -1;
    // Through the reactor: the epoll backend must forget the descriptor
    // before the next attempt's socket can get the same number.
    reactor_->close(l.close_op_, fd);
}

void resolver::attempt_error(dns_lookup& l, int err) noexcept {
    if (err == ENOBUFS) {
        // The reactor is full: other servers would meet the same.
        set_failure(l, ENOBUFS, "%s: too many operations in flight (reactor max_ops)", l.name_);
        end_attempt(l, dns_lookup::then::finish);
        return;
    }
    if (err == ETIMEDOUT) {
        ++l.timeouts_;
    }
    l.last_errno_ = err;
    l.errno_server_ = l.server_;
    end_attempt(l, dns_lookup::then::next_server);
}

void resolver::on_io(io::op& o, std::int32_t result) noexcept {
    auto& l = *static_cast<dns_lookup*>(o.user);
    resolver& self = *l.owner_;
    if (l.cancel_requested_) {
        self.end_attempt(l, dns_lookup::then::finish);
        return;
    }
    if (result < 0) {
        self.attempt_error(l, -result);
        return;
    }
    switch (l.phase_) {
    case dns_lookup::phase::sending:
        l.phase_ = dns_lookup::phase::receiving;
        self.reactor_->recv(l.io_op_, l.fd_, l.answer_, sizeof l.answer_, 0, l.attempt_deadline_);
        return;
    case dns_lookup::phase::receiving:
        self.on_answer(l, static_cast<std::size_t>(result));
        return;
    case dns_lookup::phase::idle:
    case dns_lookup::phase::closing:
    case dns_lookup::phase::finishing:
        break;
    }
    CUSTOS_ASSERT(!"dns: I/O completion outside sending/receiving");
}

void resolver::on_answer(dns_lookup& l, std::size_t len) noexcept {
    dns_verdict v =
        parse_dns_response(l.answer_, len, l.id_, std::string_view(l.name_, l.name_len_), l.qtype_,
                           l.port_, l.addr, l.addr_len);
    switch (v) {
    case dns_verdict::address:
        end_attempt(l, dns_lookup::then::finish);
        return;
    case dns_verdict::no_data:
        if (l.qtype_ == dns_type_a) {
            end_attempt(l, dns_lookup::then::query_aaaa);
            return;
        }
        {
            addr_text server(cfg_.servers[l.server_]);
            set_failure(l, 0, "%s: no A or AAAA record (from %s)", l.name_, server.s);
        }
        end_attempt(l, dns_lookup::then::finish);
        return;
    case dns_verdict::nxdomain: {
        addr_text server(cfg_.servers[l.server_]);
        set_failure(l, 0, "%s: not found (NXDOMAIN from %s)", l.name_, server.s);
        end_attempt(l, dns_lookup::then::finish);
        return;
    }
    case dns_verdict::server_failure:
    case dns_verdict::refused:
    case dns_verdict::truncated:
        l.answered_ = true;
        l.answer_server_ = l.server_;
        l.last_verdict_ = v;
        end_attempt(l, dns_lookup::then::next_server);
        return;
    case dns_verdict::malformed:
    case dns_verdict::mismatch:
        // Possibly a stale or spoofed datagram: keep listening until the
        // attempt's deadline.
        ++stats_.responses_dropped;
        reactor_->recv(l.io_op_, l.fd_, l.answer_, sizeof l.answer_, 0, l.attempt_deadline_);
        return;
    }
}

void resolver::on_closed(io::op& o, std::int32_t) noexcept {
    // Linux releases the descriptor whatever close() reports.
    auto& l = *static_cast<dns_lookup*>(o.user);
    resolver& self = *l.owner_;
    if (l.cancel_requested_) {
        self.set_failure(l, ECANCELED, "%s: lookup cancelled", l.name_);
        self.finish(l);
        return;
    }
    switch (l.then_) {
    case dns_lookup::then::finish:
        self.finish(l);
        return;
    case dns_lookup::then::next_server:
        ++l.server_;
        self.start_attempt(l);
        return;
    case dns_lookup::then::query_aaaa:
        l.qtype_ = dns_type_aaaa; // from the server that knew the name
        self.start_attempt(l);
        return;
    }
}

} // namespace custos::probe
