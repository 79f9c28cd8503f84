// Probe targets as the table gives them: "HOST:PORT" and http:// URLs.
// Parsed when the table is checked (every error names the target) and again
// when the probe engine lays its checks out; the I/O is the probe engine's
// (probe/check), the HTTP wire text probe/target's.
//
// Owns nothing: every string_view a parser returns points into the text it
// was given, so results stay valid exactly as long as that text does.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

namespace custos::tbl {

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

} // namespace custos::tbl
