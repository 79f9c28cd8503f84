// HTTP/1.1 for the control plane: a request-head parser and the response
// head writer, both over caller buffers, for the subset a Unix-socket
// control plane needs (RFC 9110/9112).
//
// Owns: nothing. parse_request() is a pure function of the bytes received so
// far: call it after every recv with the whole buffer; it says `incomplete`
// until the head (through the blank line) is there, then fills a request
// whose string_views point into the buffer (`out` is not touched unless
// done). It never reads past `buf`, never allocates, and takes time linear
// in the buffer. The verdict is settled by a left-to-right scan, so it is
// monotonic in the prefix: once done or refused, any longer buffer gives
// the same verdict (and the same request). A buffer of max_head bytes or
// more is never `incomplete`. It is fuzzed
// (tests/fuzz/fuzz_http_request.cpp).
//
// What is accepted, and what each refusal is (the server answers it with
// the status and closes):
//   request line   METHOD SP TARGET SP HTTP/1.x CRLF (a bare LF is accepted
//                  as a line end, as RFC 9112 2.2 allows); leading empty
//                  lines are skipped. Methods: GET, HEAD, POST, DELETE,
//                  PUT, other tokens `other` (405 by the router). TARGET:
//                  origin-form, "/..." only (else bad_request); at most
//                  max_target bytes (else bad_request), visible ASCII only
//                  (no NUL, control or byte >= 0x80). "HTTP/" DIGIT "."
//                  DIGIT, case-sensitive: HTTP/1.0 and 1.1 (a later 1.x is
//                  served as 1.1, RFC 9110 2.5, with `minor` as sent); any
//                  other major: version (505). Not HTTP at all: bad_request
//                  (400). A CR not followed by LF anywhere: bad_request.
//   headers        NAME ":" OWS VALUE OWS; names are tokens, compared
//                  without case (whitespace before the colon: bad_request);
//                  values are visible ASCII, obs-text, SP and HTAB (NUL or
//                  another control: bad_request). Obsolete line folding:
//                  bad_request.
//                  Content-Length: digits only, one value (a repeat with a
//                  different value: bad_request); above max_body:
//                  body_too_large (413). Transfer-Encoding (any):
//                  bad_request (request bodies are small: no chunked
//                  uploads). Connection: "close" / "keep-alive" tokens
//                  (a list). Host: not required (a Unix socket has none).
//                  "Expect: 100-continue" (HTTP/1.1): expect_continue.
//   head size      no blank line within max_head bytes (leading empty lines
//                  count): head_too_large (431).
// Refusals are reported in the order the scan meets them: the first bad
// byte, or the max_head limit, whichever comes first.
// Keep-alive: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with
// "Connection: keep-alive".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/text_out.hpp"

namespace custos::control {

enum class method : std::uint8_t { get, head, post, put, delete_, other };

std::string_view method_name(method m) noexcept; // "GET" ... "OTHER"

struct request {
    method verb = method::other;
    std::string_view target; // as sent: path and query
    std::string_view path;   // target up to '?', not decoded
    std::string_view query;  // after '?', without it; empty when none
    std::uint8_t minor = 1;  // HTTP/1.minor
    bool keep_alive = true;
    std::uint32_t content_length = 0;
    std::uint32_t head_bytes = 0; // request line, headers and the blank line
    // "Expect: 100-continue" on HTTP/1.1: the client (curl, for a body over
    // 1 KiB) waits up to a second for "HTTP/1.1 100 Continue\r\n\r\n" (or
    // the final response) before it sends the body.
    bool expect_continue = false;
};

enum class parse_status : std::uint8_t {
    done,           // `out` is filled; the body (content_length bytes) follows head_bytes
    incomplete,     // need more bytes
    bad_request,    // 400
    head_too_large, // 431
    body_too_large, // 413
    version,        // 505
};

struct parse_limits {
    std::uint32_t max_head = 8192;
    std::uint32_t max_body = 4096;
    std::uint32_t max_target = 1024;
};

parse_status parse_request(std::string_view buf, request& out,
                           const parse_limits& limits = {}) noexcept;

// The HTTP status a refusal is answered with (400, 431, 413, 505; 0 for
// done and incomplete).
int http_status(parse_status s) noexcept;

// Looks up `key` in a query string ("a=1&b&c=x%2Fy"): true when present;
// `value` is the value percent-decoded into `buf` (empty for "b" and
// "b="; '+' stays '+'). A malformed escape ("%zz", "%2", a trailing "%"),
// or a value longer than `cap`: present, `valid` false and `value` empty.
// Keys are compared as sent (not decoded); the first match wins; empty
// items ("a&&b") are skipped, "=x" has the empty key. Never writes past
// buf[cap - 1] (buf may be null when cap is 0).
struct query_value {
    bool present = false;
    bool valid = true;
    std::string_view value;
};
query_value query_param(std::string_view query, std::string_view key, char* buf,
                        std::size_t cap) noexcept;

// Splits a path "/services/NAME/start" after `prefix` ("/services/") into
// its next segment ("NAME") and the rest ("start", or empty). False when
// the path does not start with the prefix or the segment is empty; then
// `segment` and `rest` are not touched.
bool split_path(std::string_view path, std::string_view prefix, std::string_view& segment,
                std::string_view& rest) noexcept;

// The reason phrase of a status code ("OK", "Not Found" ...: every status
// the server sends, and 100 for an interim "100 Continue"); "Unknown" for
// the others.
std::string_view reason_phrase(int status) noexcept;

// Writes a response head: status line, Content-Type (when not empty),
// Content-Length (when `length` >= 0) or "Transfer-Encoding: chunked" (when
// negative, -1 by convention), "Cache-Control: no-store", "Connection:
// keep-alive" or "close", `extra` (whole header lines, each ending CRLF,
// e.g. "Allow: GET\r\n"; may be empty), then the blank line. 1xx and 204
// get neither Content-Length nor Transfer-Encoding (RFC 9110 8.6). HEAD
// requests get the same head. False when `out` overflowed (or had): then
// nothing of the head is in `out` and it stays overflowed.
bool write_head(text_out& out, int status, std::string_view content_type, std::int64_t length,
                bool keep_alive, std::string_view extra = {}) noexcept;

// Chunked transfer coding (RFC 9112 7.1): the size line of a chunk of `n`
// bytes ("1a2\r\n", lower-case hex; n = 0 gives "0\r\n", which with
// chunk_end is last_chunk), the CRLF that ends a chunk's data, and the last
// chunk. False when `out` overflowed: then nothing was written.
bool write_chunk_size(text_out& out, std::size_t n) noexcept;
inline constexpr std::string_view chunk_end = "\r\n";
inline constexpr std::string_view last_chunk = "0\r\n\r\n";

} // namespace custos::control
