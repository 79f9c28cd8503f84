// The DNS message format (RFC 1035): queries built, responses parsed,
// names checked. Pure functions, fuzzed (tests/fuzz/fuzz_dns.cpp).
#include <arpa/inet.h>

#include <cstring>

#include "core/ascii.hpp"
#include "probe/dns.hpp"
#include "probe/dns_detail.hpp"

namespace custos::probe {

using dns_detail::without_final_dot;

namespace {

constexpr std::size_t header_len = 12;
constexpr std::size_t max_wire_name = 255; // RFC 1035 3.1, length octets included
constexpr std::uint16_t class_in = 1;
constexpr int max_pointer_hops = 32;

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

} // namespace

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

} // namespace custos::probe
