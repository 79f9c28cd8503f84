#include "probe/target.hpp"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace custos::probe {

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

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_hex(char c) noexcept {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9110 tchar: what a header field name is made of.
bool is_tchar(char c) noexcept {
    if (is_digit(c) || is_alpha(c)) {
        return true;
    }
    return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Field and reason text: HTAB, SP, VCHAR and obs-text (bytes >= 0x80).
bool is_text(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
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
        } else if (is_alpha(c) || is_digit(c) || c == '-') {
            if ((label == 0 && c == '-') || ++label > 63) {
                return "bad host name";
            }
            all_digits = all_digits && is_digit(c);
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
        if (!is_digit(c)) {
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

// Writes pieces one after another, remembering whether everything fit.
struct appender {
    char* buf;
    std::size_t cap;
    std::size_t len = 0;
    bool overflow = false;

    void put(std::string_view s) noexcept {
        if (overflow || s.size() > cap - len) {
            overflow = true;
            return;
        }
        std::memcpy(buf + len, s.data(), s.size());
        len += s.size();
    }
};

// One step of the response-head scanner.
enum class step : std::uint8_t { ok, need_more, malformed };

struct scan {
    step s = step::ok;
    const char* problem = "";
    std::size_t next = 0; // on ok: the offset just past the parsed line(s)
    int status = 0;
};

scan malformed(const char* why) noexcept {
    return {step::malformed, why, 0, 0};
}

// The end of the line starting at `at`, after checking that every byte of it
// is text. ok: next is past the LF. need_more: the line has not ended yet
// (possibly a final CR waiting for its LF).
scan line_rest(const char* buf, std::size_t len, std::size_t at, const char* bad_char) noexcept {
    for (std::size_t i = at; i < len; ++i) {
        char c = buf[i];
        if (c == '\n') {
            return {step::ok, "", i + 1, 0};
        }
        if (c == '\r') {
            if (i + 1 == len) {
                return {step::need_more, "", 0, 0};
            }
            if (buf[i + 1] != '\n') {
                return malformed("bare CR in the response head");
            }
            return {step::ok, "", i + 2, 0};
        }
        if (!is_text(c)) {
            return malformed(bad_char);
        }
    }
    return {step::need_more, "", 0, 0};
}

// "HTTP/d.d SP ddd [SP reason] EOL" at `at`; `first`: the first bytes of the
// whole response, where a mismatch means the peer does not speak HTTP.
scan status_line(const char* buf, std::size_t len, std::size_t at, bool first) noexcept {
    static constexpr char prefix[] = "HTTP/";
    for (std::size_t k = 0; k < 5; ++k) {
        if (at + k >= len) {
            return {step::need_more, "", 0, 0};
        }
        if (buf[at + k] != prefix[k]) {
            return malformed(first ? "not an HTTP response" : "bad status line");
        }
    }
    // Offsets after "HTTP/": 0 digit, 1 '.', 2 digit, 3 SP, 4-6 status, 7 end or SP.
    int status = 0;
    for (std::size_t k = 0; k < 8; ++k) {
        std::size_t i = at + 5 + k;
        if (i >= len) {
            return {step::need_more, "", 0, 0};
        }
        char c = buf[i];
        switch (k) {
        case 0:
        case 2:
            if (!is_digit(c)) {
                return malformed("bad HTTP version");
            }
            break;
        case 1:
            if (c != '.') {
                return malformed("bad HTTP version");
            }
            break;
        case 3:
            if (c != ' ') {
                return malformed("bad status line");
            }
            break;
        case 4:
            if (c < '1' || c > '5') {
                return malformed("bad status code");
            }
            status = c - '0';
            break;
        case 5:
        case 6:
            if (!is_digit(c)) {
                return malformed("bad status code");
            }
            status = status * 10 + (c - '0');
            break;
        default:
            // A missing reason phrase ("HTTP/1.1 200\r\n") is tolerated:
            // servers send it, and only the status matters here.
            if (c == ' ') {
                break;
            }
            if (c == '\r' || c == '\n') {
                scan r = line_rest(buf, len, i, "bad status line");
                r.status = status;
                return r;
            }
            return malformed(is_digit(c) ? "bad status code" : "bad status line");
        }
    }
    scan r = line_rest(buf, len, at + 13, "bad status line");
    r.status = status;
    return r;
}

// One header line, or the empty line that ends the head, at `at`.
// ok: next is past it; status is 1 for the empty line, 0 for a field.
scan header_line(const char* buf, std::size_t len, std::size_t at) noexcept {
    if (at >= len) {
        return {step::need_more, "", 0, 0};
    }
    char c0 = buf[at];
    if (c0 == '\r' || c0 == '\n') {
        scan r = line_rest(buf, len, at, "");
        r.status = 1;
        return r;
    }
    std::size_t i = at;
    if (c0 != ' ' && c0 != '\t') { // else an obs-fold continuation: all value
        for (; i < len; ++i) {
            char c = buf[i];
            if (c == ':') {
                if (i == at) {
                    return malformed("bad header name");
                }
                break;
            }
            if (c == '\r' || c == '\n') {
                return malformed("header line without ':'");
            }
            if (!is_tchar(c)) {
                return malformed("bad header name");
            }
        }
        if (i == len) {
            return {step::need_more, "", 0, 0};
        }
    }
    return line_rest(buf, len, i + 1, "control character in a header");
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
            (i + 2 >= tail.size() || !is_hex(tail[i + 1]) || !is_hex(tail[i + 2]))) {
            return bad("bad percent-encoding", s);
        }
    }
    u.path = tail.empty() ? std::string_view("/") : tail;
    return u;
}

std::size_t build_http_request(const http_url& u, char* buf, std::size_t cap) noexcept {
    appender a{buf, cap};
    a.put("GET ");
    if (u.path.empty() || u.path.front() != '/') {
        a.put("/"); // origin-form needs the '/' that "http://h?q" leaves out
    }
    a.put(u.path);
    a.put(" HTTP/1.1\r\nHost: ");
    a.put(u.authority);
    a.put("\r\nUser-Agent: custos-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    return a.overflow ? 0 : a.len;
}

http_head parse_http_head(const char* buf, std::size_t len, bool eof, bool full) noexcept {
    std::size_t at = 0;
    bool first = true;
    for (;;) {
        // The status line of a response (the first, or one after an interim 1xx).
        scan sl = status_line(buf, len, at, first);
        switch (sl.s) {
        case step::malformed:
            return {http_verdict::malformed, 0, sl.problem};
        case step::need_more:
            if (full) {
                return {http_verdict::malformed, 0, "status line too long"};
            }
            if (eof) {
                return {http_verdict::malformed, 0, "connection closed before the status line"};
            }
            return {};
        case step::ok:
            break;
        }
        // RFC 9110 15.2: 1xx responses come before the final one. 101 would
        // switch protocols, which a GET without Upgrade never asks for: it
        // is final (and fails the probe).
        bool interim = sl.status < 200 && sl.status != 101;
        at = sl.next;
        first = false;
        for (;;) {
            scan hl = header_line(buf, len, at);
            switch (hl.s) {
            case step::malformed:
                return {http_verdict::malformed, 0, hl.problem};
            case step::need_more:
                if (interim && full) {
                    return {http_verdict::malformed, 0, "interim response too long"};
                }
                if (interim && eof) {
                    return {http_verdict::malformed, 0,
                            "connection closed after an interim response"};
                }
                if (eof || full) {
                    return {http_verdict::complete, sl.status, ""};
                }
                return {};
            case step::ok:
                break;
            }
            at = hl.next;
            if (hl.status == 1) {
                break; // the empty line: end of this head
            }
        }
        if (!interim) {
            return {http_verdict::complete, sl.status, ""};
        }
    }
}

bool http_status_accepted(int status, std::span<const std::uint16_t> expect) noexcept {
    if (expect.empty()) {
        return status >= 200 && status <= 399;
    }
    for (std::uint16_t s : expect) {
        if (s == status) {
            return true;
        }
    }
    return false;
}

} // namespace custos::probe
