// HTTP/1.1 request parsing and response heads (http.hpp).
//
// parse_request() is one left-to-right pass over the head's window, the
// first max_head bytes: it stops at the first byte that settles the verdict
// (a refusal, or the blank line), and running off the window's end is
// `incomplete`, or head_too_large when the buffer holds max_head bytes. So
// the verdict depends only on the bytes before the one that settled it: a
// longer buffer gives the same verdict, which is what lets the server call
// it again after each recv, and what the fuzzer checks.
#include "control/http.hpp"

#include <iterator>

namespace custos::control {

namespace {

bool is_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

// RFC 9110 5.6.2.
bool is_tchar(char c) noexcept {
    constexpr std::string_view marks = "!#$%&'*+-.^_`|~";
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           marks.find(c) != std::string_view::npos;
}

// Visible ASCII: no space, no control, no byte >= 0x80 (a target is ASCII).
bool is_target_byte(char c) noexcept {
    return c > 0x20 && c < 0x7f;
}

// A field value's bytes (RFC 9110 5.5): visible ASCII, obs-text, SP, HTAB.
bool is_field_byte(char c) noexcept {
    auto u = static_cast<unsigned char>(c);
    return c == '\t' || (u >= 0x20 && u != 0x7f);
}

bool is_ows(char c) noexcept {
    return c == ' ' || c == '\t';
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

char to_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// `lower` is lower case already.
bool iequals(std::string_view s, std::string_view lower) noexcept {
    if (s.size() != lower.size()) {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (to_lower(s[i]) != lower[i]) {
            return false;
        }
    }
    return true;
}

int hex_digit(char c) noexcept {
    char l = to_lower(c);
    return is_digit(c) ? c - '0' : l >= 'a' && l <= 'f' ? l - 'a' + 10 : -1;
}

constexpr std::string_view method_names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OTHER"};
static_assert(std::size(method_names) == static_cast<std::size_t>(method::other) + 1);

// The head's window is buf[0, end), end = min(size, max_head): the scan
// never looks at or past `end`, and running into it means "more bytes",
// which is a refusal (431) once the buffer holds max_head bytes.
struct scanner {
    std::string_view buf;
    std::size_t end;
    parse_status more;
    std::size_t i = 0;

    // Moves past the bytes that pass `ok`: true when it stopped at one that
    // does not (at i), false when the window ended first.
    bool span(bool (*ok)(char) noexcept) noexcept {
        while (i < end && ok(buf[i])) {
            ++i;
        }
        return i < end;
    }
    // Past an LF or a CR LF at i; a CR alone, or anything else, is refused.
    parse_status line_end() noexcept {
        if (i == end) {
            return more;
        }
        if (buf[i] == '\r' && ++i == end) {
            return more;
        }
        return buf[i++] == '\n' ? parse_status::done : parse_status::bad_request;
    }
};

struct fields {
    bool has_length = false;
    bool close = false;
    bool keep_alive = false;
    bool expect_continue = false;
    std::uint32_t length = 0;
};

// The meaning of one header field; `done` when it is acceptable.
parse_status on_field(std::string_view name, std::string_view value, fields& f,
                      const parse_limits& limits) noexcept {
    if (iequals(name, "content-length")) {
        std::uint64_t n = 0; // saturates just above max_body
        for (char c : value) {
            if (!is_digit(c)) {
                return parse_status::bad_request;
            }
            n = n <= limits.max_body ? n * 10 + static_cast<unsigned>(c - '0') : n;
        }
        if (value.empty() || (f.has_length && n != f.length)) {
            return parse_status::bad_request;
        }
        if (n > limits.max_body) {
            return parse_status::body_too_large;
        }
        f.has_length = true;
        f.length = static_cast<std::uint32_t>(n);
    } else if (iequals(name, "transfer-encoding")) {
        return parse_status::bad_request;
    } else if (iequals(name, "connection")) {
        while (!value.empty()) {
            auto comma = value.find(',');
            auto token = trim_ows(value.substr(0, comma));
            value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
            f.close = f.close || iequals(token, "close");
            f.keep_alive = f.keep_alive || iequals(token, "keep-alive");
        }
    } else if (iequals(name, "expect")) {
        f.expect_continue = f.expect_continue || iequals(value, "100-continue");
    }
    return parse_status::done;
}

// After an item written from `start`: true, or (it overflowed) none of it
// is left and `out` stays overflowed.
bool whole_or_nothing(text_out& out, text_out::mark_t start) noexcept {
    if (out.overflowed()) {
        out.rewind({start.len, true});
    }
    return !out.overflowed();
}

} // namespace

std::string_view method_name(method m) noexcept {
    auto i = static_cast<std::size_t>(m);
    return i < std::size(method_names) ? method_names[i] : "OTHER";
}

parse_status parse_request(std::string_view buf, request& out,
                           const parse_limits& limits) noexcept {
    constexpr parse_status bad = parse_status::bad_request;
    constexpr parse_status ok = parse_status::done;
    const bool full = buf.size() >= limits.max_head;
    scanner sc{buf, full ? limits.max_head : buf.size(),
               full ? parse_status::head_too_large : parse_status::incomplete};
    std::size_t& i = sc.i;
    while (i < sc.end && (buf[i] == '\r' || buf[i] == '\n')) { // RFC 9112 2.2
        if (auto s = sc.line_end(); s != ok) {
            return s;
        }
    }
    const std::size_t method_at = i;
    if (!sc.span(is_tchar)) {
        return sc.more;
    }
    if (buf[i] != ' ' || i == method_at) {
        return bad;
    }
    request r;
    r.verb = method::other;
    for (std::size_t m = 0; m < static_cast<std::size_t>(method::other); ++m) {
        if (buf.substr(method_at, i - method_at) == method_names[m]) {
            r.verb = static_cast<method>(m);
        }
    }
    const std::size_t target_at = ++i;
    if (i < sc.end && buf[i] != '/') {
        return bad;
    }
    bool stopped = sc.span(is_target_byte);
    if (i - target_at > limits.max_target) {
        return bad;
    }
    if (!stopped) {
        return sc.more;
    }
    if (buf[i] != ' ') {
        return bad;
    }
    r.target = buf.substr(target_at, i - target_at);
    ++i;
    char major = 0; // "HTTP/" DIGIT "." DIGIT
    for (char want : std::string_view("HTTP/D.D")) {
        if (i == sc.end) {
            return sc.more;
        }
        char c = buf[i++];
        if (want == 'D' ? !is_digit(c) : c != want) {
            return bad;
        }
        if (want == 'D') {
            major = major == 0 ? c : major;
            r.minor = static_cast<std::uint8_t>(c - '0');
        }
    }
    if (auto s = sc.line_end(); s != ok) {
        return s;
    }
    if (major != '1') {
        return parse_status::version;
    }
    fields f;
    for (;;) { // header fields, up to the blank line
        if (i == sc.end) {
            return sc.more;
        }
        if (buf[i] == '\r' || buf[i] == '\n') {
            break;
        }
        // A space or tab at the start of a line is obs-fold (or whitespace
        // before the first field), one before the colon is not allowed
        // either (RFC 9112 5.1, 5.2): both are refused as non-token bytes.
        const std::size_t name_at = i;
        if (!sc.span(is_tchar)) {
            return sc.more;
        }
        if (buf[i] != ':' || i == name_at) {
            return bad;
        }
        auto name = buf.substr(name_at, i - name_at);
        const std::size_t value_at = ++i;
        if (!sc.span(is_field_byte)) {
            return sc.more;
        }
        auto value = trim_ows(buf.substr(value_at, i - value_at));
        if (auto s = sc.line_end(); s != ok) {
            return s;
        }
        if (auto s = on_field(name, value, f, limits); s != ok) {
            return s;
        }
    }
    if (auto s = sc.line_end(); s != ok) {
        return s;
    }
    auto q = r.target.find('?');
    r.path = r.target.substr(0, q);
    r.query = q == std::string_view::npos ? std::string_view{} : r.target.substr(q + 1);
    r.keep_alive = !f.close && (r.minor >= 1 || f.keep_alive);
    r.expect_continue = f.expect_continue && r.minor >= 1;
    r.content_length = f.length;
    r.head_bytes = static_cast<std::uint32_t>(i);
    out = r;
    return ok;
}

int http_status(parse_status s) noexcept {
    switch (s) {
    case parse_status::done:
    case parse_status::incomplete:
        return 0;
    case parse_status::bad_request:
        return 400;
    case parse_status::head_too_large:
        return 431;
    case parse_status::body_too_large:
        return 413;
    case parse_status::version:
        return 505;
    }
    return 400;
}

query_value query_param(std::string_view query, std::string_view key, char* buf,
                        std::size_t cap) noexcept {
    query_value q;
    while (!query.empty()) {
        auto amp = query.find('&');
        auto item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        auto eq = item.find('=');
        if (item.empty() || item.substr(0, eq) != key) {
            continue;
        }
        q.present = true;
        auto raw = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        std::size_t n = 0;
        for (std::size_t j = 0; j < raw.size(); ++j) {
            char c = raw[j];
            if (c == '%') {
                if (raw.size() - j < 3 || hex_digit(raw[j + 1]) < 0 || hex_digit(raw[j + 2]) < 0) {
                    q.valid = false;
                    return q;
                }
                c = static_cast<char>(hex_digit(raw[j + 1]) * 16 + hex_digit(raw[j + 2]));
                j += 2;
            }
            if (n == cap) {
                q.valid = false;
                return q;
            }
            buf[n++] = c;
        }
        q.value = std::string_view(buf, n);
        return q;
    }
    return q;
}

bool split_path(std::string_view path, std::string_view prefix, std::string_view& segment,
                std::string_view& rest) noexcept {
    if (path.substr(0, prefix.size()) != prefix) {
        return false;
    }
    auto tail = path.substr(prefix.size());
    auto slash = tail.find('/');
    if (slash == 0 || tail.empty()) {
        return false;
    }
    segment = tail.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : tail.substr(slash + 1);
    return true;
}

std::string_view reason_phrase(int status) noexcept {
    struct phrase {
        int status;
        std::string_view text;
    };
    static constexpr phrase phrases[] = {{100, "Continue"},
                                         {200, "OK"},
                                         {204, "No Content"},
                                         {400, "Bad Request"},
                                         {403, "Forbidden"},
                                         {404, "Not Found"},
                                         {405, "Method Not Allowed"},
                                         {408, "Request Timeout"},
                                         {409, "Conflict"},
                                         {413, "Content Too Large"},
                                         {422, "Unprocessable Content"},
                                         {431, "Request Header Fields Too Large"},
                                         {500, "Internal Server Error"},
                                         {501, "Not Implemented"},
                                         {503, "Service Unavailable"},
                                         {504, "Gateway Timeout"},
                                         {505, "HTTP Version Not Supported"}};
    for (const auto& p : phrases) {
        if (p.status == status) {
            return p.text;
        }
    }
    return "Unknown";
}

bool write_head(text_out& out, int status, std::string_view content_type, std::int64_t length,
                bool keep_alive, std::string_view extra) noexcept {
    const auto start = out.mark();
    out.put("HTTP/1.1 ").put_i64(status).put(' ').put(reason_phrase(status)).put("\r\n");
    if (!content_type.empty()) {
        out.put("Content-Type: ").put(content_type).put("\r\n");
    }
    // 1xx and 204 have no content and must not announce any (RFC 9110 8.6).
    if (status >= 200 && status != 204) {
        if (length >= 0) {
            out.put("Content-Length: ").put_i64(length).put("\r\n");
        } else {
            out.put("Transfer-Encoding: chunked\r\n");
        }
    }
    out.put("Cache-Control: no-store\r\n");
    out.put(keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    out.put(extra).put("\r\n");
    return whole_or_nothing(out, start);
}

bool write_chunk_size(text_out& out, std::size_t n) noexcept {
    char hex[2 * sizeof n];
    std::size_t len = 0;
    do {
        hex[len++] = "0123456789abcdef"[n & 15];
        n >>= 4;
    } while (n != 0);
    const auto start = out.mark();
    while (len > 0) {
        out.put(hex[--len]);
    }
    out.put("\r\n");
    return whole_or_nothing(out, start);
}

} // namespace custos::control
