// Probe targets: "HOST:PORT" and http:// URLs, parsed once when the table
// is checked (table/validate) and again when the probe engine lays its
// checks out. Pure: no allocation, no I/O.
#include "table/target.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

#include "core/ascii.hpp"

namespace custos::tbl {

namespace {

// "<what> in '<input>'": the subject of every target error, so the operator
// sees which target is wrong. Error copies it (and truncates long input).
tl::unexpected<Error> bad(const char* what, std::string_view input) noexcept {
    char text[Error::subject_capacity + 1];
    int n = std::snprintf(text, sizeof text, "%s in '%.*s'", what,
                          static_cast<int>(input.size() > 200 ? 200 : input.size()), input.data());
    std::size_t len = n < 0 ? 0 : static_cast<std::size_t>(n);
    if (len >= sizeof text) {
        len = sizeof text - 1;
    }
    return fail(Reason::invalid_argument, 0, std::string_view(text, len));
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) noexcept {
    if (s.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
        if (c != prefix[i]) {
            return false;
        }
    }
    return true;
}

// RFC 1123 host name (see parse_host_port). Returns the problem, or nullptr.
const char* check_host_name(std::string_view h) noexcept {
    if (!h.empty() && h.back() == '.') {
        h.remove_suffix(1); // the fully qualified form "host.example."
    }
    if (h.empty() || h.size() > 253) {
        return "bad host name";
    }
    std::size_t label = 0;
    bool all_digits = true; // of the current (in the end: the last) label
    char prev = '.';
    for (char c : h) {
        if (c == '.') {
            if (label == 0 || prev == '-') {
                return "bad host name";
            }
            label = 0;
            all_digits = true;
        } else if (ascii_alpha(c) || ascii_digit(c) || c == '-') {
            if ((label == 0 && c == '-') || ++label > 63) {
                return "bad host name";
            }
            all_digits = all_digits && ascii_digit(c);
        } else {
            return "bad host name";
        }
        prev = c;
    }
    if (label == 0 || prev == '-') {
        return "bad host name";
    }
    // No top-level domain is numeric: this was meant as an IPv4 address.
    return all_digits ? "bad IPv4 address" : nullptr;
}

// Decimal 1-65535. Returns the problem, or nullptr.
const char* parse_port(std::string_view t, std::uint16_t& out) noexcept {
    if (t.empty()) {
        return "missing port";
    }
    std::uint32_t v = 0;
    for (char c : t) {
        if (!ascii_digit(c)) {
            return "bad port";
        }
        if (v <= 65535) { // keeps going to reject the non-digits; no overflow
            v = v * 10 + static_cast<std::uint32_t>(c - '0');
        }
    }
    if (v == 0 || v > 65535) {
        return "port out of range";
    }
    out = static_cast<std::uint16_t>(v);
    return nullptr;
}

// "HOST[:PORT]" or "[V6][:PORT]", with the port required or defaulting to 80.
Result<host_port> parse_authority(std::string_view auth, std::string_view input,
                                  bool port_required) noexcept {
    host_port hp;
    std::string_view port_text;
    bool has_port = false;
    bool bracketed = false;
    if (!auth.empty() && auth.front() == '[') {
        std::size_t close = auth.find(']');
        if (close == std::string_view::npos) {
            return bad("bad IPv6 address", input);
        }
        bracketed = true;
        hp.host = auth.substr(1, close - 1);
        std::string_view rest = auth.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return bad("unexpected text after ']'", input);
            }
            has_port = true;
            port_text = rest.substr(1);
        }
    } else {
        std::size_t colon = auth.find(':');
        if (colon != std::string_view::npos &&
            auth.find(':', colon + 1) != std::string_view::npos) {
            return bad("IPv6 address needs brackets", input);
        }
        hp.host = auth.substr(0, colon);
        if (colon != std::string_view::npos) {
            has_port = true;
            port_text = auth.substr(colon + 1);
        }
    }
    if (hp.host.empty()) {
        return bad("missing host", input);
    }
    if (!has_port) {
        if (port_required) {
            return bad("missing port", input);
        }
        hp.port = 80;
    } else if (const char* p = parse_port(port_text, hp.port)) {
        return bad(port_required || port_text.size() > 0 ? p : "missing port after ':'", input);
    }

    if (bracketed) {
        if (hp.host.find('%') != std::string_view::npos) {
            return bad("IPv6 zone ids are not supported", input);
        }
        char text[INET6_ADDRSTRLEN + 1];
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&hp.addr);
        if (hp.host.size() >= sizeof text) {
            return bad("bad IPv6 address", input);
        }
        std::memcpy(text, hp.host.data(), hp.host.size());
        text[hp.host.size()] = '\0';
        if (inet_pton(AF_INET6, text, &a6->sin6_addr) != 1) {
            return bad("bad IPv6 address", input);
        }
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(hp.port);
        hp.addr_len = sizeof(sockaddr_in6);
        hp.literal = true;
        return hp;
    }

    char text[INET_ADDRSTRLEN + 1];
    auto* a4 = reinterpret_cast<sockaddr_in*>(&hp.addr);
    if (hp.host.size() < sizeof text) {
        std::memcpy(text, hp.host.data(), hp.host.size());
        text[hp.host.size()] = '\0';
        if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons(hp.port);
            hp.addr_len = sizeof(sockaddr_in);
            hp.literal = true;
            return hp;
        }
    }
    if (const char* p = check_host_name(hp.host)) {
        return bad(p, input);
    }
    return hp;
}

} // namespace

Result<host_port> parse_host_port(std::string_view s) noexcept {
    return parse_authority(s, s, true);
}

Result<http_url> parse_http_url(std::string_view s) noexcept {
    if (starts_with_nocase(s, "https://")) {
        return fail(Reason::invalid_argument, 0,
                    "https is not supported (no TLS): use http:// or a tcp probe");
    }
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) {
            return bad("space or control character in the URL", s);
        }
    }
    if (!starts_with_nocase(s, "http://")) {
        return bad("not an http:// URL", s);
    }
    std::string_view rest = s.substr(7);
    std::size_t end = rest.find_first_of("/?#");
    std::string_view auth = rest.substr(0, end);
    if (auth.find('@') != std::string_view::npos) {
        return bad("user info (user@) is not supported", s);
    }
    auto where = parse_authority(auth, s, false);
    if (!where) {
        return fail(where.error());
    }
    http_url u;
    u.where = *where;
    u.authority = auth;
    std::string_view tail = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    tail = tail.substr(0, tail.find('#'));
    for (std::size_t i = 0; i < tail.size(); ++i) {
        if (tail[i] == '%' &&
            (i + 2 >= tail.size() || !ascii_hex(tail[i + 1]) || !ascii_hex(tail[i + 2]))) {
            return bad("bad percent-encoding", s);
        }
    }
    u.path = tail.empty() ? std::string_view("/") : tail;
    return u;
}

} // namespace custos::tbl
