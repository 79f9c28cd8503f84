#include "probe/target.hpp"

#include <cstdio>
#include <cstring>

#include "core/ascii.hpp"

namespace custos::probe {

namespace {

// RFC 9110 tchar: what a header field name is made of.
bool is_tchar(char c) noexcept {
    if (ascii_digit(c) || ascii_alpha(c)) {
        return true;
    }
    return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Field and reason text: HTAB, SP, VCHAR and obs-text (bytes >= 0x80).
bool is_text(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
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
            if (!ascii_digit(c)) {
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
            if (!ascii_digit(c)) {
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
            return malformed(ascii_digit(c) ? "bad status code" : "bad status line");
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
