#include "probe/dns.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/ascii.hpp"
#include "core/assert.hpp"

namespace custos::probe {

namespace {

constexpr std::size_t header_len = 12;
constexpr std::size_t max_wire_name = 255; // RFC 1035 3.1, length octets included
constexpr std::uint16_t class_in = 1;
constexpr std::uint16_t dns_port = 53;
constexpr int max_pointer_hops = 32;

std::string_view without_final_dot(std::string_view s) noexcept {
    if (!s.empty() && s.back() == '.') {
        s.remove_suffix(1);
    }
    return s;
}

std::uint16_t get16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

void put16(std::uint8_t* p, std::uint16_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 8);
    p[1] = static_cast<std::uint8_t>(v & 0xff);
}

// Encodes `name` as length-prefixed labels ending in the root label, into
// out (at least max_wire_name bytes). Returns the length, 0 when invalid.
std::size_t encode_name(std::string_view name, std::uint8_t* out) noexcept {
    name = without_final_dot(name);
    if (name.empty() || name.size() > dns_max_name) {
        return 0;
    }
    std::size_t w = 0;
    std::size_t label_start = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '.') {
            std::size_t n = i - label_start;
            if (n == 0 || n > 63) {
                return 0;
            }
            out[w++] = static_cast<std::uint8_t>(n);
            std::memcpy(out + w, name.data() + label_start, n);
            w += n;
            label_start = i + 1;
            continue;
        }
        auto c = static_cast<unsigned char>(name[i]);
        if (c <= 0x20 || c >= 0x7f) {
            return 0;
        }
    }
    out[w++] = 0;
    return w; // <= 253 + 2: one length octet more than dots, plus the root
}

// Decodes the possibly compressed name at `pos` into lowercase wire form.
// `next` receives the offset just past the name where it sits (after its
// first pointer, if any). False when it overruns the message, uses a
// reserved label type, loops, or exceeds 255 bytes.
bool decode_name(const std::uint8_t* msg, std::size_t len, std::size_t pos, std::uint8_t* out,
                 std::size_t& out_len, std::size_t& next) noexcept {
    std::size_t p = pos;
    std::size_t w = 0;
    bool jumped = false;
    int hops = 0;
    for (;;) {
        if (p >= len) {
            return false;
        }
        std::uint8_t b = msg[p];
        if ((b & 0xc0) == 0xc0) {
            if (p + 1 >= len || ++hops > max_pointer_hops) {
                return false;
            }
            if (!jumped) {
                next = p + 2;
                jumped = true;
            }
            // The hop limit ends loops; the bound check below every read
            // keeps a pointer past the end harmless.
            p = static_cast<std::size_t>(((b & 0x3f) << 8) | msg[p + 1]);
            continue;
        }
        if ((b & 0xc0) != 0) {
            return false; // 0x40 and 0x80: extended/reserved label types
        }
        if (w + 1 + b > max_wire_name) {
            return false;
        }
        if (b == 0) {
            out[w++] = 0;
            if (!jumped) {
                next = p + 1;
            }
            out_len = w;
            return true;
        }
        if (p + 1 + b > len) {
            return false;
        }
        out[w++] = b;
        for (std::size_t i = 0; i < b; ++i) {
            out[w++] = static_cast<std::uint8_t>(ascii_lower(static_cast<char>(msg[p + 1 + i])));
        }
        p += 1 + b;
    }
}

// Parses an IPv4 or IPv6 literal (IPv6 with an optional numeric %scope) into
// out, port 0. False when `text` is not one.
bool parse_address(std::string_view text, sockaddr_storage& out, socklen_t& out_len) noexcept {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos) {
        return false;
    }
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    if (text.find(':') == std::string_view::npos) {
        sockaddr_in sin{};
        if (inet_pton(AF_INET, buf, &sin.sin_addr) != 1) {
            return false;
        }
        sin.sin_family = AF_INET;
        out = {};
        std::memcpy(&out, &sin, sizeof sin);
        out_len = sizeof sin;
        return true;
    }
    std::uint32_t scope = 0;
    if (char* pct = std::strchr(buf, '%')) {
        *pct = '\0';
        const char* s = pct + 1;
        if (*s == '\0') {
            return false;
        }
        for (; *s != '\0'; ++s) {
            if (*s < '0' || *s > '9' || scope > (UINT32_MAX - 9) / 10) {
                return false; // interface names need if_nametoindex: not here
            }
            scope = scope * 10 + static_cast<std::uint32_t>(*s - '0');
        }
    }
    sockaddr_in6 sin6{};
    if (inet_pton(AF_INET6, buf, &sin6.sin6_addr) != 1) {
        return false;
    }
    sin6.sin6_family = AF_INET6;
    sin6.sin6_scope_id = scope;
    out = {};
    std::memcpy(&out, &sin6, sizeof sin6);
    out_len = sizeof sin6;
    return true;
}

void set_port(sockaddr_storage& sa, std::uint16_t port) noexcept {
    if (sa.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&sa)->sin_port = htons(port);
    } else if (sa.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port = htons(port);
    }
}

bool printable(std::string_view s) noexcept {
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) {
            return false;
        }
    }
    return true;
}

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Splits a line into blank-separated words, comments ('#', and ';' where
// `semicolon_comments`) cut off first.
struct words {
    std::string_view rest;

    words(std::string_view line, bool semicolon_comments) noexcept : rest(line) {
        for (std::size_t i = 0; i < rest.size(); ++i) {
            if (rest[i] == '#' || (semicolon_comments && rest[i] == ';')) {
                rest = rest.substr(0, i);
                break;
            }
        }
    }
    // The next word, empty at the end.
    std::string_view next() noexcept {
        std::size_t i = 0;
        while (i < rest.size() && is_blank(rest[i])) {
            ++i;
        }
        std::size_t j = i;
        while (j < rest.size() && !is_blank(rest[j])) {
            ++j;
        }
        std::string_view w = rest.substr(i, j - i);
        rest = rest.substr(j);
        return w;
    }
};

void reset_servers(resolver_config& out) noexcept {
    out.server_count = 0;
}

void resolv_conf_line(std::string_view line, resolver_config& out) noexcept {
    words ws(line, true);
    std::string_view key = ws.next();
    if (key == "nameserver") {
        if (out.server_count >= dns_max_servers) {
            return; // glibc keeps the first MAXNS too
        }
        sockaddr_storage sa;
        socklen_t sa_len = 0;
        if (!parse_address(ws.next(), sa, sa_len)) {
            return;
        }
        set_port(sa, dns_port);
        out.servers[out.server_count] = sa;
        out.server_len[out.server_count] = sa_len;
        ++out.server_count;
    } else if (key == "options") {
        for (std::string_view opt = ws.next(); !opt.empty(); opt = ws.next()) {
            if (opt.substr(0, 8) != "timeout:" || opt.size() == 8 || opt.size() > 8 + 4) {
                continue;
            }
            unsigned v = 0;
            bool ok = true;
            for (char c : opt.substr(8)) {
                ok = ok && c >= '0' && c <= '9';
                v = v * 10 + static_cast<unsigned>(c - '0');
            }
            if (ok && v > 0) {
                // glibc's RES_MAXRETRANS caps it at 30 seconds.
                out.attempt_timeout = std::chrono::seconds(v > 30 ? 30 : v);
            }
        }
    }
}

void finish_resolv_conf(resolver_config& out) noexcept {
    if (out.server_count == 0) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(dns_port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out.servers[0] = {};
        std::memcpy(&out.servers[0], &sin, sizeof sin);
        out.server_len[0] = sizeof sin;
        out.server_count = 1;
    }
}

void reset_hosts(resolver_config& out) noexcept {
    out.host_count = 0;
    out.hosts_dropped = 0;
}

void hosts_line(std::string_view line, resolver_config& out) noexcept {
    words ws(line, false);
    sockaddr_storage sa;
    socklen_t sa_len = 0;
    if (!parse_address(ws.next(), sa, sa_len)) {
        return;
    }
    for (std::string_view name = ws.next(); !name.empty(); name = ws.next()) {
        if (name.size() > dns_max_name || !printable(name)) {
            continue; // could never match a name resolve() accepts
        }
        if (out.host_count >= dns_max_hosts) {
            ++out.hosts_dropped;
            continue;
        }
        dns_host_entry& e = out.hosts[out.host_count++];
        std::memcpy(e.name, name.data(), name.size());
        e.name[name.size()] = '\0';
        e.addr = sa;
        e.addr_len = sa_len;
    }
}

template <class F>
void for_each_line(std::string_view text, resolver_config& out, F line_fn) noexcept {
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        line_fn(line, out);
        if (nl == std::string_view::npos) {
            break;
        }
        text.remove_prefix(nl + 1);
    }
}

// Feeds the file's lines to line_fn through a fixed buffer; a line longer
// than the buffer is skipped whole. A file that cannot be opened has no lines.
void for_each_file_line(const char* path, resolver_config& out,
                        void (*line_fn)(std::string_view, resolver_config&)) noexcept {
    if (path == nullptr) {
        return;
    }
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    char buf[4096];
    std::size_t have = 0;
    bool skipping = false; // inside a line that did not fit
    for (;;) {
        ssize_t n = ::read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += static_cast<std::size_t>(n);
        std::size_t start = 0;
        while (const void* nl = std::memchr(buf + start, '\n', have - start)) {
            std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf);
            if (!skipping) {
                line_fn(std::string_view(buf + start, end - start), out);
            }
            skipping = false;
            start = end + 1;
        }
        std::memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf) {
            skipping = true;
            have = 0;
        }
    }
    if (have > 0 && !skipping) {
        line_fn(std::string_view(buf, have), out);
    }
    ::close(fd);
}

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

void parse_resolv_conf(std::string_view text, resolver_config& out) noexcept {
    reset_servers(out);
    for_each_line(text, out, resolv_conf_line);
    finish_resolv_conf(out);
}

void parse_hosts(std::string_view text, resolver_config& out) noexcept {
    reset_hosts(out);
    for_each_line(text, out, hosts_line);
}

void load_system_resolver_config(resolver_config& out, const char* resolv_conf,
                                 const char* hosts) noexcept {
    reset_servers(out);
    for_each_file_line(resolv_conf, out, resolv_conf_line);
    finish_resolv_conf(out);
    reset_hosts(out);
    for_each_file_line(hosts, out, hosts_line);
}

std::size_t build_dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype,
                            std::uint8_t* buf, std::size_t cap) noexcept {
    std::uint8_t wire[max_wire_name + 2];
    std::size_t n = encode_name(name, wire);
    if (n == 0 || buf == nullptr || cap < header_len + n + 4) {
        return 0;
    }
    put16(buf, id);
    put16(buf + 2, 0x0100); // a standard query, recursion desired
    put16(buf + 4, 1);      // one question
    put16(buf + 6, 0);
    put16(buf + 8, 0);
    put16(buf + 10, 0);
    std::memcpy(buf + header_len, wire, n);
    put16(buf + header_len + n, qtype);
    put16(buf + header_len + n + 2, class_in);
    return header_len + n + 4;
}

dns_verdict parse_dns_response(const std::uint8_t* msg, std::size_t len, std::uint16_t id,
                               std::string_view name, std::uint16_t qtype, std::uint16_t port,
                               sockaddr_storage& out, socklen_t& out_len) noexcept {
    if (msg == nullptr || len < header_len || get16(msg) != id) {
        return dns_verdict::mismatch;
    }
    std::uint16_t flags = get16(msg + 2);
    bool is_response = (flags & 0x8000) != 0;
    unsigned opcode = (flags >> 11) & 0xf;
    if (!is_response || opcode != 0 || get16(msg + 4) != 1) {
        return dns_verdict::mismatch;
    }
    std::uint8_t want[max_wire_name + 2];
    std::size_t want_len = encode_name(name, want);
    if (want_len == 0) {
        return dns_verdict::mismatch; // never asked
    }
    for (std::size_t i = 0; i < want_len; ++i) {
        want[i] = static_cast<std::uint8_t>(ascii_lower(static_cast<char>(want[i])));
    }
    std::uint8_t got[max_wire_name + 1];
    std::size_t got_len = 0;
    std::size_t pos = 0;
    if (!decode_name(msg, len, header_len, got, got_len, pos)) {
        return dns_verdict::malformed;
    }
    if (pos + 4 > len) {
        return dns_verdict::malformed;
    }
    // Length octets are below 64, so lowering both sides only folds letters.
    if (got_len != want_len || std::memcmp(got, want, want_len) != 0 || get16(msg + pos) != qtype ||
        get16(msg + pos + 2) != class_in) {
        return dns_verdict::mismatch;
    }
    pos += 4;
    if ((flags & 0x0200) != 0) {
        return dns_verdict::truncated;
    }
    switch (flags & 0xf) {
    case 0:
        break;
    case 3:
        return dns_verdict::nxdomain;
    case 5:
        return dns_verdict::refused;
    default:
        return dns_verdict::server_failure;
    }
    std::size_t want_rdlen = qtype == dns_type_a ? 4 : qtype == dns_type_aaaa ? 16 : 0;
    std::size_t found = 0; // offset of the address's rdata, 0 when none yet
    std::uint16_t ancount = get16(msg + 6);
    for (std::uint16_t i = 0; i < ancount; ++i) {
        std::size_t next = 0;
        if (!decode_name(msg, len, pos, got, got_len, next) || next + 10 > len) {
            return dns_verdict::malformed;
        }
        std::uint16_t type = get16(msg + next);
        std::uint16_t klass = get16(msg + next + 2);
        std::size_t rdlen = get16(msg + next + 8);
        std::size_t rdata = next + 10;
        if (rdata + rdlen > len) {
            return dns_verdict::malformed;
        }
        if (found == 0 && type == qtype && klass == class_in) {
            if (rdlen != want_rdlen || want_rdlen == 0) {
                return dns_verdict::malformed;
            }
            found = rdata;
        }
        pos = rdata + rdlen;
    }
    if (found == 0) {
        return dns_verdict::no_data;
    }
    out = {};
    if (qtype == dns_type_a) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(port);
        std::memcpy(&sin.sin_addr, msg + found, 4);
        std::memcpy(&out, &sin, sizeof sin);
        out_len = sizeof sin;
    } else {
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(port);
        std::memcpy(&sin6.sin6_addr, msg + found, 16);
        std::memcpy(&out, &sin6, sizeof sin6);
        out_len = sizeof sin6;
    }
    return dns_verdict::address;
}

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
    // see the queries; the kernel's random source port adds 16 more bits.
    timespec rt{};
    clock_gettime(CLOCK_REALTIME, &rt);
    rng_ = (static_cast<std::uint64_t>(to_ns(r.now())) * 0x9e3779b97f4a7c15ULL) ^
           (static_cast<std::uint64_t>(rt.tv_nsec) << 20) ^ static_cast<std::uint64_t>(rt.tv_sec) ^
           (static_cast<std::uint64_t>(::getpid()) << 40) ^ reinterpret_cast<std::uintptr_t>(this);
    if (rng_ == 0) {
        rng_ = 0x2545f4914f6cdd1dULL;
    }
    return {};
}

bool is_localhost_name(std::string_view host) noexcept {
    std::uint8_t wire[max_wire_name + 2];
    if (encode_name(host, wire) == 0) {
        return false;
    }
    constexpr std::string_view local = "localhost";
    std::string_view name = without_final_dot(host);
    if (name.size() < local.size() ||
        !ascii_iequal(name.substr(name.size() - local.size()), local)) {
        return false;
    }
    // The whole name, or a label boundary just before the suffix; encode_name
    // already refused an empty label (".localhost").
    return name.size() == local.size() || name[name.size() - local.size() - 1] == '.';
}

std::uint16_t resolver::next_id() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return static_cast<std::uint16_t>(rng_ >> 32);
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
