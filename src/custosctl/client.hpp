// custosctl's HTTP/1.1 client over custosd's Unix socket (control.hpp).
//
// One request per connection ("Connection: close"), on a non-blocking
// socket driven by poll() against one deadline for the whole exchange
// (connect, send, receive). The response is read until the body is
// complete (Content-Length reached, or the last chunk of a chunked body)
// or until EOF, into one fixed buffer: a response over max_response_bytes
// is an error, never an allocation. A chunked body is decoded in place.
//
// Owns: the response buffer (static storage, one per process): a response
// stays valid until the next request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace custos::ctl {

// The largest response (head and body) custosctl accepts.
inline constexpr std::size_t max_response_bytes = std::size_t{4} << 20;
// The largest head of a response.
inline constexpr std::size_t max_head_bytes = 64 * 1024;

struct response {
    int status = 0;                // 200, 404 ...
    std::string_view reason;       // "OK"
    std::string_view content_type; // as sent; empty when none
    std::string_view allow;        // the Allow header of a 405
    std::string_view next;         // X-Custos-Next (GET /services/NAME/logs)
    std::string_view lost;         // X-Custos-Lost (the same)
    std::string_view body;         // decoded
};

enum class failure : std::uint8_t {
    none,
    unreachable, // connect failed: no socket, refused, no permission
    timeout,     // the deadline passed before the response was whole
    broken,      // the connection failed or closed early
    malformed,   // not an HTTP/1.x response custosctl can read
    too_large,   // over max_response_bytes (or a head over max_head_bytes)
};

struct request_error {
    failure kind = failure::none;
    int sys_errno = 0;
    char message[256] = {}; // for the operator, NUL-terminated
};

// Sends `method target` to the socket at `socket_path` and reads the
// response into `out`, within `timeout_ms`. False on a failure (`err` says
// which); a response with any status code is true.
bool exchange(std::string_view socket_path, std::string_view method, std::string_view target,
              std::int64_t timeout_ms, response& out, request_error& err) noexcept;

// --- the parts, for their own tests ---

// Where a chunked body stands: `need_more` until its last chunk and
// trailers have arrived; `bad` when it is not chunked encoding.
enum class chunk_scan : std::uint8_t { need_more, complete, bad };

// Scans the chunked body `b` from offset `pos` (a chunk-size line's start;
// 0 at first), advancing `pos` over the whole chunks it sees, so that a
// body arriving in pieces is scanned once. `end` gets the body's encoded
// length once complete.
chunk_scan scan_chunked(std::string_view b, std::size_t& pos, std::size_t& end) noexcept;

// Decodes a complete chunked body in place; returns the decoded length.
std::size_t decode_chunked(char* b, std::size_t n) noexcept;

} // namespace custos::ctl
