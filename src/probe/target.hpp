// The HTTP wire text of the http probe (the request, the response head
// scanner), with the targets it is given (table/target): the pure,
// allocation-free pieces of the tcp and http probes. The probe I/O (connect, send, receive,
// timeouts) lives elsewhere and calls these.
//
// Owns nothing: every string_view a parser returns points into the text it
// was given (the probe's target, which lives in the static table, or the
// caller's receive buffer), so results stay valid exactly as long as that
// text does. No function here allocates, blocks or keeps state between calls.
//
// Hostile input: parse_http_head() reads what a remote peer sent. It never
// reads outside [buf, buf + len), rescans from the start on every call (the
// buffers are about 1 KiB, so the rescan is cheaper than carrying a state
// machine across reads), and decides "malformed" as soon as the received
// prefix can no longer begin a valid response head, so a peer that is not an
// HTTP server (an SSH banner, a TLS alert, a binary protocol) fails the probe
// on its first bytes rather than at the timeout.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>

#include "table/target.hpp"

namespace custos::probe {

using tbl::host_port;
using tbl::http_url;
using tbl::parse_host_port;
using tbl::parse_http_url;

// Writes the probe's request into buf:
//   "GET <path> HTTP/1.1\r\nHost: <authority>\r\nUser-Agent: custos-probe\r\n"
//   "Accept: */*\r\nConnection: close\r\n\r\n"
// Returns its length, or 0 when it does not fit in cap (nothing useful is
// written then). No NUL terminator is added.
std::size_t build_http_request(const http_url& u, char* buf, std::size_t cap) noexcept;

enum class http_verdict : std::uint8_t {
    need_more, // the bytes so far can still begin a valid response head
    complete,  // the final status is known: `status` is valid
    malformed, // not an HTTP/1.x response: `problem` says why
};

struct http_head {
    http_verdict verdict = http_verdict::need_more;
    int status = 0;           // 100-599, valid when complete
    const char* problem = ""; // static text, set when malformed
};

// Judges the bytes received so far of a response to build_http_request().
// Stateless: call it again on the whole received prefix when more arrives.
// `eof`: the peer closed its side; `full`: the caller's buffer is full (no
// more bytes will be read).
//
// The status line must be "HTTP/d.d SP ddd" (status 100-599) followed by SP
// and a reason phrase, or by the line end directly (a missing reason is
// common and harmless). Header lines are "name:value" with a token name;
// obs-fold continuation lines (starting with SP/HTAB) are accepted. Lines
// end in CRLF or a bare LF. Interim 1xx responses (100 Continue, 103 Early
// Hints, but not 101) are skipped: the status that counts is the final one.
//
// complete:  the final head ended (an empty line), or eof/full arrived after
//            the final status line (headers cut short do not matter: only
//            the status is used). Body bytes after the head are ignored.
// malformed: the first bytes are not a prefix of "HTTP/" ("not an HTTP
//            response"), "bad HTTP version", "bad status code", "bad status
//            line" (missing SP, control characters), "bare CR in the response
//            head", "header line without ':'", "bad header name", "control
//            character in a header"; or eof/full before the final status
//            line ended: "connection closed before the status line",
//            "connection closed after an interim response", "status line
//            too long", "interim response too long".
// need_more: otherwise (never returned when eof or full is set).
http_head parse_http_head(const char* buf, std::size_t len, bool eof, bool full) noexcept;

// Whether a final status passes: 200-399 when `expect` is empty, else only
// the listed statuses.
bool http_status_accepted(int status, std::span<const std::uint16_t> expect) noexcept;

} // namespace custos::probe
