// Probe targets and the HTTP wire text: the pure, allocation-free pieces of
// the tcp and http probes. The probe I/O (connect, send, receive, timeouts)
// lives elsewhere and calls these.
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

namespace custos::probe {

// Where to connect. `host` is the text between the brackets for IPv6.
struct host_port {
    std::string_view host;  // without brackets; points into the input
    std::uint16_t port = 0; // 1-65535
    // The host is an IPv4 or IPv6 literal: addr/addr_len then hold the
    // ready-to-connect address (with the port, network byte order) and no
    // name lookup is needed. For a host name they are zero.
    bool literal = false;
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
};

// Parses "HOST:PORT": a host name ("broker", "mqtt.example.com"), an IPv4
// literal ("10.0.0.2:1883") or an IPv6 literal in brackets ("[::1]:8080",
// "[fe80::1]:80"). The port is required, 1-65535, decimal digits only.
// Host names follow RFC 1123: labels of letters, digits and '-' (not at
// either end of a label), 1-63 characters each, 253 characters in all, one
// trailing '.' allowed; a name whose last label is all digits is rejected as
// a bad IPv4 address (it cannot be a host name, and "10.0.0.256" is a typo).
// IPv6 zone ids ("[fe80::1%eth0]") are not supported.
// Errors, all Reason::invalid_argument, with a subject that says what is
// wrong and quotes the input: "missing port in '...'", "port out of range
// in '...'", "bad port in '...'", "missing host in '...'", "IPv6 address
// needs brackets in '...'", "bad IPv6 address in '...'", "IPv6 zone ids are
// not supported in '...'", "bad IPv4 address in '...'", "bad host name in
// '...'", "unexpected text after ']' in '...'".
Result<host_port> parse_host_port(std::string_view s) noexcept;

// The parts of an http:// URL a probe needs.
struct http_url {
    host_port where;            // port 80 when the URL has none
    std::string_view authority; // for Host: the URL's own text ("h", "h:8080", "[::1]:8080")
    // The request target: the URL's path and query, no fragment. "/" (a
    // static string) when the URL has neither. It starts with '?' only for
    // "http://h?q"; build_http_request() then sends "/?q".
    std::string_view path;
};

// Parses "http://HOST[:PORT][/PATH][?QUERY][#FRAGMENT]". The scheme is
// case-insensitive; the host follows parse_host_port()'s rules, but the port
// is optional (80). The fragment is dropped (it is never sent).
// Errors, all Reason::invalid_argument: "https is not supported (no TLS):
// use http:// or a tcp probe"; "not an http:// URL: '...'"; "user info
// (user@) is not supported in '...'"; "space or control character in the
// URL '...'"; "bad percent-encoding in '...'"; "missing port after ':' in
// '...'"; and every host and port error of parse_host_port().
Result<http_url> parse_http_url(std::string_view s) noexcept;

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
