// The DNS stub resolver probes use: host names resolved on the reactor,
// never blocking it and never allocating after init() (getaddrinfo does
// both, so it is not used).
//
// Owns nothing shared at run time: the resolver holds a copy of its
// configuration (name servers, the /etc/hosts table, the attempt timeout)
// and an id generator; every lookup's state, buffers, socket, ops and timer
// live in the caller's dns_lookup. What it does, in order:
//   1. an IPv4 or IPv6 literal ("10.0.0.1", "::1", "[::1]") answers itself;
//   2. "localhost" and any name under it ("foo.localhost") is 127.0.0.1,
//      whatever the hosts table or a name server would say (RFC 6761 6.3:
//      resolvers SHOULD answer these themselves; firmware images often have
//      no /etc/hosts at all);
//   3. the hosts table (case-insensitive; the first IPv4 entry, else the
//      first IPv6 one);
//   4. an A query to each name server in turn (one UDP socket per attempt,
//      connected, so the kernel picks a random source port and filters
//      other senders), then AAAA when the A query found the name but no
//      A record (no_data). NXDOMAIN is final. A timeout, a send/recv error
//      (ECONNREFUSED: nothing listens), SERVFAIL, REFUSED or a truncated
//      answer (TC) moves on to the next server.
// Not supported, on purpose (probes name their targets fully): the search
// list and ndots (names are queried as given), TCP fallback for truncated
// answers (an A/AAAA answer that does not fit 512 bytes is treated as that
// server failing), EDNS, DNSSEC, named IPv6 scope ids (fe80::1%eth0; numeric
// ones work), rotate. Responses that do not match the query (wrong id,
// question, or not a response at all) and garbled ones are dropped and
// counted; the lookup keeps listening until the attempt's deadline, so a
// spoofer must guess the 16-bit id and the source port.
//
// A lookup's states (dns_lookup::phase_): idle -> sending -> receiving ->
// closing -> (next attempt: sending | finishing) -> idle; literals,
// localhost names, hosts entries and early failures go idle -> finishing ->
// idle. Invariants: at
// most one I/O op of a lookup is in flight; the attempt's socket is closed
// (through the reactor, so the epoll backend forgets the number before it
// is reused) before the next attempt opens one or done runs; done runs
// exactly once per resolve(), from a zero-delay timer in the reactor loop,
// after the lookup went idle (so done may resolve() again).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

#include "core/prng.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"

namespace custos::probe {

inline constexpr std::size_t dns_max_servers = 3;   // glibc's MAXNS
inline constexpr std::size_t dns_max_hosts = 64;    // /etc/hosts entries kept
inline constexpr std::size_t dns_max_name = 253;    // textual, without the final dot
inline constexpr std::size_t dns_max_message = 512; // UDP without EDNS (RFC 1035 4.2.1)

inline constexpr std::uint16_t dns_type_a = 1;
inline constexpr std::uint16_t dns_type_cname = 5;
inline constexpr std::uint16_t dns_type_aaaa = 28;

struct dns_host_entry {
    char name[dns_max_name + 1]; // NUL-terminated, as written in the file
    sockaddr_storage addr;       // port 0
    socklen_t addr_len;
};

struct resolver_config {
    sockaddr_storage servers[dns_max_servers]; // with port (53 normally)
    socklen_t server_len[dns_max_servers];
    std::uint32_t server_count = 0;
    dns_host_entry hosts[dns_max_hosts];
    std::uint32_t host_count = 0;
    std::uint32_t hosts_dropped = 0;                 // names beyond dns_max_hosts
    std::chrono::milliseconds attempt_timeout{2000}; // per query to one server
};

// Pure parsers (fuzzed). Bad lines are skipped, never fatal.
//
// parse_resolv_conf resets the server list, then keeps the first
// dns_max_servers "nameserver ADDR" lines (IPv4, or IPv6 with an optional
// numeric %scope); "options timeout:N" (1..30 s, glibc's cap) sets
// attempt_timeout. '#' and ';' start comments. No usable nameserver line:
// 127.0.0.1:53, glibc's default.
void parse_resolv_conf(std::string_view text, resolver_config& out) noexcept;
// Resets the hosts table, then adds every "ADDR NAME [ALIASES...]" name
// ('#' starts a comment); names past dns_max_hosts count in hosts_dropped.
void parse_hosts(std::string_view text, resolver_config& out) noexcept;
// Reads both files with plain open/read (a missing or unreadable file reads
// as empty) and parses them. Init time only: it blocks on the filesystem.
void load_system_resolver_config(resolver_config& out, const char* resolv_conf = "/etc/resolv.conf",
                                 const char* hosts = "/etc/hosts") noexcept;

// Whether `host` is "localhost" or a name under it ("a.b.localhost"),
// ignoring ASCII case and one final dot, and a valid DNS name otherwise
// (no empty label). "notlocalhost" and ".localhost" are not.
bool is_localhost_name(std::string_view host) noexcept;

// Writes a recursive query for (name, qtype, class IN) with `id` into buf.
// One final dot is allowed. Returns the query length; 0 when `name` is not a
// valid DNS name (empty, an empty label, a label over 63 bytes, more than
// 253 bytes, a byte outside printable ASCII) or cap is too small.
std::size_t build_dns_query(std::uint16_t id, std::string_view name, std::uint16_t qtype,
                            std::uint8_t* buf, std::size_t cap) noexcept;

enum class dns_verdict : std::uint8_t {
    address,        // out/out_len hold the first record of the asked type
    no_data,        // the name exists, but has no record of that type
    nxdomain,       // the name does not exist
    server_failure, // SERVFAIL, FORMERR, NOTIMP and other rcodes
    refused,
    truncated, // TC set: the answer did not fit (no TCP fallback here)
    malformed, // ours (id, question), but its records overrun or are garbled
    mismatch,  // not an answer to this query: too short, not a response, other id/question
};

// Parses a response to (id, name, qtype). Compression pointers are followed
// (at most 32 hops, always inside the message); CNAMEs are skipped over: the
// first record of type qtype (class IN, 4 or 16 bytes) anywhere in the
// answer section is the address, once the whole answer section checked out
// (so a cut-off message never yields one). On `address`, writes it with
// `port` into out/out_len; otherwise leaves them alone.
dns_verdict parse_dns_response(const std::uint8_t* msg, std::size_t len, std::uint16_t id,
                               std::string_view name, std::uint16_t qtype, std::uint16_t port,
                               sockaddr_storage& out, socklen_t& out_len) noexcept;

class resolver;

// One lookup; embedded by the caller (one per probe check). Reusable once
// done ran. Keep it alive, and the resolver too, while busy().
struct dns_lookup {
    void (*done)(dns_lookup& l) = nullptr;
    void* user = nullptr;

    // Results, valid in done(): reason == Reason::unknown means success,
    // else Reason::probe_dns_failed.
    custos::Reason reason = custos::Reason::unknown;
    // ETIMEDOUT (no server answered in time), ECANCELED (cancel()),
    // ENOBUFS (the reactor was full), EINVAL (not a valid host name),
    // EHOSTUNREACH/ECONNREFUSED/... from socket/connect/send/recv on the
    // last server tried; 0 for NXDOMAIN, no data, SERVFAIL, REFUSED,
    // truncated, no name server configured.
    int sys_errno = 0;
    // For the operator: "broker.lan: not found (NXDOMAIN from 10.0.0.1)".
    char detail[120] = {};
    sockaddr_storage addr{}; // with the port asked for
    socklen_t addr_len = 0;

    dns_lookup() noexcept = default;
    dns_lookup(const dns_lookup&) = delete;
    dns_lookup& operator=(const dns_lookup&) = delete;

    bool busy() const noexcept { return phase_ != phase::idle; }

private:
    friend class resolver;

    enum class phase : std::uint8_t { idle, sending, receiving, closing, finishing };
    // What to do once the attempt's socket is closed.
    enum class then : std::uint8_t { next_server, query_aaaa, finish };

    resolver* owner_ = nullptr;
    phase phase_ = phase::idle;
    then then_ = then::finish;
    bool cancel_requested_ = false;
    io::op io_op_;    // send, then recv (counted against the reactor's max_ops)
    io::op close_op_; // internal: the close that ends an attempt is never refused
    io::timer finish_timer_;
    int fd_ = -1;
    std::uint8_t server_ = 0;   // index into the resolver's servers
    std::uint8_t attempts_ = 0; // queries sent (sockets opened)
    std::uint8_t timeouts_ = 0; // attempts that got no answer in time
    std::uint16_t qtype_ = dns_type_a;
    std::uint16_t id_ = 0;
    std::uint16_t port_ = 0;
    std::uint16_t query_len_ = 0;
    std::uint8_t name_len_ = 0;
    // Why servers failed, for the report once all did: the last error
    // answer (SERVFAIL...) wins over the last system error, which wins over
    // timeouts.
    bool answered_ = false;
    std::uint8_t answer_server_ = 0;
    dns_verdict last_verdict_ = dns_verdict::mismatch;
    std::uint8_t errno_server_ = 0;
    int last_errno_ = 0;
    mono_time deadline_{};
    mono_time attempt_deadline_{};
    char name_[dns_max_name + 1] = {};
    std::uint8_t query_[dns_max_message];
    std::uint8_t answer_[dns_max_message];
};

struct resolver_stats {
    std::uint64_t lookups = 0;           // resolve() calls
    std::uint64_t queries_sent = 0;      // datagrams sent to name servers
    std::uint64_t responses_dropped = 0; // mismatched or malformed, ignored
    std::uint64_t failures = 0;          // lookups that ended in probe_dns_failed
};

class resolver {
public:
    resolver() noexcept = default;
    resolver(const resolver&) = delete;
    resolver& operator=(const resolver&) = delete;

    // Copies cfg and seeds the query-id generator (clock and pid); takes no
    // memory, and no system call per lookup afterwards except the attempt's
    // socket/connect. Zero name servers is allowed (literals and the hosts
    // table still work). Errors: InvalidArgument when a count exceeds its
    // capacity, a server is not AF_INET/AF_INET6 or its length is wrong, or
    // attempt_timeout is not positive.
    Result<void> init(io::reactor& r, const resolver_config& cfg) noexcept;

    // Starts resolving `host` (a name, or an IPv4/IPv6 literal) to an
    // address with `port`. done runs exactly once, from the reactor loop,
    // never inside resolve(). Each query to one server gets attempt_timeout,
    // capped by `deadline` (absolute); past the deadline the lookup fails
    // with ETIMEDOUT. `l` must not be busy and must have done set. Failures,
    // all Reason::probe_dns_failed, are reported in l (see dns_lookup).
    void resolve(dns_lookup& l, std::string_view host, std::uint16_t port,
                 mono_time deadline) noexcept;
    // Stops a lookup in flight: its done runs (from the loop) with
    // ECANCELED. No-op when idle.
    void cancel(dns_lookup& l) noexcept;

    const resolver_stats& stats() const noexcept { return stats_; }
    const resolver_config& config() const noexcept { return cfg_; }

private:
    std::uint16_t next_id() noexcept;
    bool answer_locally(dns_lookup& l) noexcept;
    void start_attempt(dns_lookup& l) noexcept;
    void end_attempt(dns_lookup& l, dns_lookup::then next) noexcept;
    void attempt_error(dns_lookup& l, int err) noexcept;
    void on_answer(dns_lookup& l, std::size_t len) noexcept;
    void servers_exhausted(dns_lookup& l) noexcept;
    void deadline_passed(dns_lookup& l) noexcept;
    static void set_failure(dns_lookup& l, int err, const char* fmt, ...) noexcept
        __attribute__((format(printf, 3, 4)));
    void finish(dns_lookup& l) noexcept;
    static void on_io(io::op& o, std::int32_t result) noexcept;
    static void on_closed(io::op& o, std::int32_t result) noexcept;
    static void on_finish(io::timer& t) noexcept;

    io::reactor* reactor_ = nullptr;
    resolver_config cfg_{};
    prng ids_; // query ids
    resolver_stats stats_;
};

} // namespace custos::probe
