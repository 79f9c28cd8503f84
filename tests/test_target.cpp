// Probe targets and the HTTP wire text (src/probe/target.*): the host:port
// and URL parsers, the request bytes, the response-head scanner (every
// prefix of a valid head waits for more, garbage fails on its first wrong
// byte, the eof/full rules), the status accept rule; and a smoke test of
// each loopback server in tests/probe_servers.hpp.
//
// Test cases tagged [ipv6] or [backlog] need something the machine may lack
// (an ::1 address; a kernel that drops SYNs to a full accept queue). They
// run only under --only=ipv6 / --only=backlog, a meson entry of their own
// that exits 77 (a skip) when the feature is missing.
#define DOCTEST_CONFIG_IMPLEMENT
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <custos/error.hpp>

#include "probe/target.hpp"
#include "probe_servers.hpp"

using custos::Reason;
using custos::probe::build_http_request;
using custos::probe::http_head;
using custos::probe::http_status_accepted;
using custos::probe::http_verdict;
using custos::probe::parse_host_port;
using custos::probe::parse_http_head;
using custos::probe::parse_http_url;
using custos_test::loopback;
using namespace std::chrono_literals;
using namespace std::string_view_literals;

namespace doctest {
template <>
struct StringMaker<http_verdict> {
    static String convert(http_verdict v) {
        switch (v) {
        case http_verdict::need_more:
            return "need_more";
        case http_verdict::complete:
            return "complete";
        case http_verdict::malformed:
            return "malformed";
        }
        return "?";
    }
};
} // namespace doctest

namespace {

// The subject of the error parse_host_port() returns, or "" when it succeeds.
std::string hp_error(std::string_view s) {
    auto r = parse_host_port(s);
    if (r) {
        return "";
    }
    CHECK(r.error().reason() == Reason::invalid_argument);
    return std::string(r.error().subject());
}

std::string url_error(std::string_view s) {
    auto r = parse_http_url(s);
    if (r) {
        return "";
    }
    CHECK(r.error().reason() == Reason::invalid_argument);
    return std::string(r.error().subject());
}

bool starts_with(std::string_view s, std::string_view p) {
    return s.substr(0, p.size()) == p;
}

std::string v4_text(const sockaddr_storage& ss) {
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    return buf;
}

std::string v6_text(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    return buf;
}

// parse_http_head on an exactly sized heap copy, so a read past the end is
// caught by ASan builds.
http_head head(std::string_view s, bool eof = false, bool full = false) {
    std::vector<char> copy(s.begin(), s.end());
    return parse_http_head(copy.data(), copy.size(), eof, full);
}

int open_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) {
        return -1;
    }
    while (readdir(d) != nullptr) {
        ++n;
    }
    closedir(d);
    return n;
}

} // namespace

// --- parse_host_port ---

TEST_CASE("host:port: host names, IPv4 and bracketed IPv6") {
    auto a = parse_host_port("broker:1883");
    REQUIRE(a);
    CHECK(a->host == "broker");
    CHECK(a->port == 1883);
    CHECK(!a->literal);
    CHECK(a->addr_len == 0);

    auto b = parse_host_port("mqtt.example-1.com:8883");
    REQUIRE(b);
    CHECK(b->host == "mqtt.example-1.com");
    CHECK(b->port == 8883);
    CHECK(!b->literal);

    auto fq = parse_host_port("host.example.:80");
    REQUIRE(fq);
    CHECK(fq->host == "host.example.");

    auto v4 = parse_host_port("10.0.0.2:80");
    REQUIRE(v4);
    CHECK(v4->literal);
    CHECK(v4->host == "10.0.0.2");
    CHECK(v4->addr.ss_family == AF_INET);
    CHECK(v4->addr_len == sizeof(sockaddr_in));
    CHECK(v4_text(v4->addr) == "10.0.0.2");
    CHECK(ntohs(reinterpret_cast<const sockaddr_in*>(&v4->addr)->sin_port) == 80);

    auto v6 = parse_host_port("[::1]:8080");
    REQUIRE(v6);
    CHECK(v6->literal);
    CHECK(v6->host == "::1");
    CHECK(v6->port == 8080);
    CHECK(v6->addr.ss_family == AF_INET6);
    CHECK(v6->addr_len == sizeof(sockaddr_in6));
    CHECK(v6_text(v6->addr) == "::1");
    CHECK(ntohs(reinterpret_cast<const sockaddr_in6*>(&v6->addr)->sin6_port) == 8080);

    auto mapped = parse_host_port("[::ffff:1.2.3.4]:1");
    REQUIRE(mapped);
    CHECK(mapped->addr.ss_family == AF_INET6);
    CHECK(v6_text(mapped->addr) == "::ffff:1.2.3.4");

    auto ll = parse_host_port("[fe80::1:2]:443");
    REQUIRE(ll);
    CHECK(ll->host == "fe80::1:2");

    // The host view points into the input, not into a copy.
    std::string_view in = "example.org:1";
    auto v = parse_host_port(in);
    REQUIRE(v);
    CHECK(v->host.data() == in.data());
}

TEST_CASE("host:port: port edge cases") {
    CHECK(hp_error("h:1").empty());
    CHECK(hp_error("h:65535").empty());
    CHECK(parse_host_port("h:65535")->port == 65535);
    CHECK(parse_host_port("h:1")->port == 1);
    CHECK(parse_host_port("h:0080")->port == 80); // leading zeros are plain decimal
    CHECK(starts_with(hp_error("h:0"), "port out of range"));
    CHECK(starts_with(hp_error("h:65536"), "port out of range"));
    CHECK(starts_with(hp_error("h:99999999999999999999999"), "port out of range"));
    CHECK(starts_with(hp_error("h:00000"), "port out of range"));
    CHECK(starts_with(hp_error("h:+80"), "bad port"));
    CHECK(starts_with(hp_error("h:-1"), "bad port"));
    CHECK(starts_with(hp_error("h: 80"), "bad port"));
    CHECK(starts_with(hp_error("h:80 "), "bad port"));
    CHECK(starts_with(hp_error("h:8o"), "bad port"));
    CHECK(starts_with(hp_error("h:0x50"), "bad port"));
    CHECK(hp_error("h:") == "missing port in 'h:'");
    CHECK(hp_error("h") == "missing port in 'h'");
    CHECK(hp_error("1.2.3.4") == "missing port in '1.2.3.4'");
    CHECK(hp_error("[::1]") == "missing port in '[::1]'");
    CHECK(starts_with(hp_error("[::1]:"), "missing port"));
    CHECK(starts_with(hp_error("[::1]:0"), "port out of range"));
}

TEST_CASE("host:port: malformed hosts say what is wrong") {
    CHECK(hp_error("") == "missing host in ''");
    CHECK(hp_error(":80") == "missing host in ':80'");
    CHECK(hp_error("[]:80") == "missing host in '[]:80'");
    CHECK(hp_error("::1") == "IPv6 address needs brackets in '::1'");
    CHECK(starts_with(hp_error("::1:80"), "IPv6 address needs brackets"));
    CHECK(starts_with(hp_error("fe80::1:80"), "IPv6 address needs brackets"));
    CHECK(starts_with(hp_error("h:80:90"), "IPv6 address needs brackets"));
    CHECK(starts_with(hp_error("[::1"), "bad IPv6 address"));
    CHECK(starts_with(hp_error("[::g]:80"), "bad IPv6 address"));
    CHECK(starts_with(hp_error("[1.2.3.4]:80"), "bad IPv6 address"));
    CHECK(starts_with(hp_error("[broker]:80"), "bad IPv6 address"));
    CHECK(starts_with(hp_error("[fe80::1%eth0]:80"), "IPv6 zone ids are not supported"));
    CHECK(starts_with(hp_error("[::1]80"), "unexpected text after ']'"));
    CHECK(starts_with(hp_error("[::1]x:80"), "unexpected text after ']'"));
    std::string long_v6 = "[" + std::string(60, '0') + "::1]:80";
    CHECK(starts_with(hp_error(long_v6), "bad IPv6 address"));

    CHECK(starts_with(hp_error("1.2.3.256:80"), "bad IPv4 address"));
    CHECK(starts_with(hp_error("1.2.3:80"), "bad IPv4 address"));
    CHECK(starts_with(hp_error("123:80"), "bad IPv4 address"));
    CHECK(starts_with(hp_error("1.2.3.4.5:80"), "bad IPv4 address"));
    CHECK(hp_error("host1.example2:80").empty()); // digits inside labels are fine
    CHECK(hp_error("1host.2:80").size() > 0);     // a numeric last label never is

    for (std::string_view bad : {"-a:1", "a-:1", "a.-b:1", "a-.b:1", "a..b:1", ".a:1", "a_b:1",
                                 "a b:1", "a/b:1", "a..:1", "*.example:1", "\xc3\xa9t\xc3\xa9:1"}) {
        CAPTURE(bad);
        CHECK(starts_with(hp_error(bad), "bad host name"));
    }
    std::string label63(63, 'a');
    CHECK(hp_error(label63 + ".b:1").empty());
    CHECK(starts_with(hp_error(label63 + "a.b:1"), "bad host name"));
    // 253 characters in all is the limit (a trailing dot not counted).
    std::string name253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'c');
    REQUIRE(name253.size() == 253);
    CHECK(hp_error(name253 + ":1").empty());
    CHECK(hp_error(name253 + ".:1").empty());
    CHECK(starts_with(hp_error(name253 + "c:1"), "bad host name"));
    CHECK(starts_with(hp_error("a-b-c-:1"), "bad host name"));
}

TEST_CASE("host:port: a long input is quoted, truncated, in the subject") {
    std::string in(500, 'x');
    auto r = parse_host_port(in);
    REQUIRE(!r);
    CHECK(starts_with(r.error().subject(), "missing port in 'xxxx"));
    CHECK(r.error().subject().size() <= custos::Error::subject_capacity);
    CHECK(!r.error().resolution().empty());
}

// --- parse_http_url and the request ---

TEST_CASE("http url: defaults, ports, paths, queries, fragments") {
    auto a = parse_http_url("http://example.com");
    REQUIRE(a);
    CHECK(a->where.host == "example.com");
    CHECK(a->where.port == 80);
    CHECK(!a->where.literal);
    CHECK(a->authority == "example.com");
    CHECK(a->path == "/");

    auto b = parse_http_url("http://example.com/");
    REQUIRE(b);
    CHECK(b->path == "/");

    auto c = parse_http_url("http://example.com:8080/health?full=1&x=%2F#top");
    REQUIRE(c);
    CHECK(c->where.port == 8080);
    CHECK(c->authority == "example.com:8080");
    CHECK(c->path == "/health?full=1&x=%2F");

    auto d = parse_http_url("HTTP://Example.COM/Path");
    REQUIRE(d);
    CHECK(d->where.host == "Example.COM");
    CHECK(d->path == "/Path");

    auto e = parse_http_url("http://10.0.0.2:1883/x");
    REQUIRE(e);
    CHECK(e->where.literal);
    CHECK(v4_text(e->where.addr) == "10.0.0.2");
    CHECK(ntohs(reinterpret_cast<const sockaddr_in*>(&e->where.addr)->sin_port) == 1883);

    auto f = parse_http_url("http://[::1]:8080/p");
    REQUIRE(f);
    CHECK(f->where.literal);
    CHECK(f->where.host == "::1");
    CHECK(f->where.port == 8080);
    CHECK(f->authority == "[::1]:8080");
    CHECK(ntohs(reinterpret_cast<const sockaddr_in6*>(&f->where.addr)->sin6_port) == 8080);

    auto g = parse_http_url("http://[::1]");
    REQUIRE(g);
    CHECK(g->where.port == 80);
    CHECK(g->authority == "[::1]");
    CHECK(g->path == "/");
    CHECK(ntohs(reinterpret_cast<const sockaddr_in6*>(&g->where.addr)->sin6_port) == 80);

    auto h = parse_http_url("http://h?q=1");
    REQUIRE(h);
    CHECK(h->authority == "h");
    CHECK(h->path == "?q=1");

    auto i = parse_http_url("http://h#frag");
    REQUIRE(i);
    CHECK(i->path == "/");
    auto j = parse_http_url("http://h/a/b/#f?g");
    REQUIRE(j);
    CHECK(j->path == "/a/b/");

    CHECK(parse_http_url("http://h:65535/")->where.port == 65535);
    CHECK(parse_http_url("http://h:1/")->where.port == 1);
    CHECK(url_error("http://h/a%20b%ff").empty());

    std::string_view in = "http://host:81/p";
    auto k = parse_http_url(in);
    REQUIRE(k);
    CHECK(k->authority.data() == in.data() + 7);
    CHECK(k->path.data() == in.data() + 14);
}

TEST_CASE("http url: rejected forms") {
    CHECK(url_error("https://example.com/") ==
          "https is not supported (no TLS): use http:// or a tcp probe");
    CHECK(url_error("HTTPS://example.com") ==
          "https is not supported (no TLS): use http:// or a tcp probe");
    CHECK(starts_with(url_error("ftp://h/"), "not an http:// URL"));
    CHECK(starts_with(url_error("h:80/x"), "not an http:// URL"));
    CHECK(starts_with(url_error("http:/h"), "not an http:// URL"));
    CHECK(starts_with(url_error(""), "not an http:// URL"));
    CHECK(starts_with(url_error("http://"), "missing host"));
    CHECK(starts_with(url_error("http:///x"), "missing host"));
    CHECK(starts_with(url_error("http://:80/"), "missing host"));
    CHECK(starts_with(url_error("http://user:pw@h/"), "user info (user@) is not supported"));
    CHECK(starts_with(url_error("http://user@h"), "user info (user@) is not supported"));
    CHECK(url_error("http://h/a@b").empty()); // '@' in the path is just a character
    CHECK(starts_with(url_error("http://h/a b"), "space or control character in the URL"));
    CHECK(starts_with(url_error("http://h/a\tb"), "space or control character"));
    CHECK(starts_with(url_error("http://h/a\r\nX: y"), "space or control character"));
    CHECK(starts_with(url_error(std::string_view("http://h/a\0b", 12)),
                      "space or control character"));
    CHECK(starts_with(url_error("http://h/\x7f"), "space or control character"));
    CHECK(starts_with(url_error("http://h/caf\xc3\xa9"), "space or control character"));
    CHECK(starts_with(url_error(" http://h/"), "space or control character"));
    CHECK(starts_with(url_error("http://h/%"), "bad percent-encoding"));
    CHECK(starts_with(url_error("http://h/%2"), "bad percent-encoding"));
    CHECK(starts_with(url_error("http://h/%zz"), "bad percent-encoding"));
    CHECK(starts_with(url_error("http://h?x=%g1"), "bad percent-encoding"));
    CHECK(starts_with(url_error("http://h:/"), "missing port after ':'"));
    CHECK(starts_with(url_error("http://[::1]:/"), "missing port after ':'"));
    CHECK(starts_with(url_error("http://h:0/"), "port out of range"));
    CHECK(starts_with(url_error("http://h:65536"), "port out of range"));
    CHECK(starts_with(url_error("http://h:8x/"), "bad port"));
    CHECK(starts_with(url_error("http://::1/"), "IPv6 address needs brackets"));
    CHECK(starts_with(url_error("http://[::1/"), "bad IPv6 address"));
    CHECK(starts_with(url_error("http://[::1]x/"), "unexpected text after ']'"));
    CHECK(starts_with(url_error("http://bad_host/"), "bad host name"));
    CHECK(starts_with(url_error("http://1.2.3.999/"), "bad IPv4 address"));
    // The subject quotes the URL so the operator sees which probe is wrong.
    CHECK(url_error("http://h:0/") == "port out of range in 'http://h:0/'");
}

TEST_CASE("http request: the exact bytes, and the capacity rule") {
    auto u = parse_http_url("http://example.com:8080/health?x=1#frag");
    REQUIRE(u);
    std::string_view want = "GET /health?x=1 HTTP/1.1\r\n"
                            "Host: example.com:8080\r\n"
                            "User-Agent: custos-probe\r\n"
                            "Accept: */*\r\n"
                            "Connection: close\r\n"
                            "\r\n";
    char buf[512];
    std::size_t n = build_http_request(*u, buf, sizeof buf);
    CHECK(std::string_view(buf, n) == want);

    // It fits exactly, or not at all.
    std::vector<char> exact(want.size());
    CHECK(build_http_request(*u, exact.data(), exact.size()) == want.size());
    CHECK(std::string_view(exact.data(), exact.size()) == want);
    std::vector<char> short_by_one(want.size() - 1);
    CHECK(build_http_request(*u, short_by_one.data(), short_by_one.size()) == 0);
    CHECK(build_http_request(*u, buf, 0) == 0);
    CHECK(build_http_request(*u, buf, 10) == 0);

    auto d = parse_http_url("http://h");
    REQUIRE(d);
    n = build_http_request(*d, buf, sizeof buf);
    CHECK(starts_with(std::string_view(buf, n), "GET / HTTP/1.1\r\nHost: h\r\n"));

    auto q = parse_http_url("http://h?q=1");
    REQUIRE(q);
    n = build_http_request(*q, buf, sizeof buf);
    CHECK(starts_with(std::string_view(buf, n), "GET /?q=1 HTTP/1.1\r\nHost: h\r\n"));

    auto v6 = parse_http_url("http://[::1]:81/");
    REQUIRE(v6);
    n = build_http_request(*v6, buf, sizeof buf);
    CHECK(starts_with(std::string_view(buf, n), "GET / HTTP/1.1\r\nHost: [::1]:81\r\n"));
}

// --- parse_http_head ---

TEST_CASE("http head: every prefix of a valid head waits, the whole head completes") {
    struct valid {
        std::string_view head; // ends with its empty line
        std::string_view body; // bytes after it
        int status;
    };
    const valid cases[] = {
        {"HTTP/1.1 200 OK\r\n\r\n", "", 200},
        {"HTTP/1.0 404 Not Found\r\nServer: x\r\nContent-Type: text/plain\r\n\r\n", "body", 404},
        {"HTTP/1.1 301 Moved\nLocation: /x\n\n", "", 301},                     // bare LF
        {"HTTP/1.1 204\r\n\r\n", "", 204},                                     // no reason phrase
        {"HTTP/1.1 200 \r\n\r\n", "", 200},                                    // empty reason
        {"HTTP/1.1 503 Service Unavailable\r\nRetry-After:\r\n\r\n", "", 503}, // empty value
        {"HTTP/1.1 200 OK\r\nX-Long: a\r\n\tb\r\n c\r\n\r\n", "ok", 200},      // obs-fold
        {"HTTP/1.1 302 Found\r\nX: caf\xc3\xa9\r\n\r\n", "", 302}, // obs-text in a value
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\n", "", 200},
        {"HTTP/1.1 103 Early Hints\nLink: </s.css>\n\nHTTP/1.1 503 No\n\n", "zz", 503},
        {"HTTP/1.1 101 Switching Protocols\r\n\r\n", "", 101}, // final: GET did not ask
        {"HTTP/9.9 599 x\r\n\r\n", "", 599},
        {"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 C\r\n\r\n", "",
         201},
        {"HTTP/1.1 200 OK\r\n\r\n", "\0\x01garbage: \r\r"sv, 200},
    };
    for (const valid& v : cases) {
        std::string text = std::string(v.head) + std::string(v.body);
        CAPTURE(text);
        REQUIRE((v.head.ends_with("\n\n") || v.head.ends_with("\r\n\r\n")));
        // Where the final status line ends: eof/full complete from there on.
        std::size_t final_start = v.head.rfind("HTTP/");
        std::size_t status_end = v.head.find('\n', final_start) + 1;
        for (std::size_t n = 0; n <= text.size(); ++n) {
            CAPTURE(n);
            std::string_view p = std::string_view(text).substr(0, n);
            http_head h = head(p);
            if (n < v.head.size()) {
                CHECK(h.verdict == http_verdict::need_more);
            } else {
                CHECK(h.verdict == http_verdict::complete);
                CHECK(h.status == v.status);
            }
            for (int mode = 1; mode <= 3; ++mode) {
                http_head e = head(p, (mode & 1) != 0, (mode & 2) != 0);
                if (n >= status_end) {
                    CHECK(e.verdict == http_verdict::complete);
                    CHECK(e.status == v.status);
                } else {
                    CHECK(e.verdict == http_verdict::malformed);
                    CHECK(std::strlen(e.problem) > 0);
                }
            }
        }
    }
}

TEST_CASE("http head: garbage is malformed on its first wrong byte") {
    struct garbage {
        std::string_view text;
        std::size_t first_bad; // index of the byte that makes it malformed
        const char* problem;
    };
    const garbage cases[] = {
        {"SSH-2.0-OpenSSH_9.6\r\n"sv, 0, "not an HTTP response"},
        {"\x16\x03\x01\x00\x2a"sv, 0, "not an HTTP response"}, // a TLS record
        {"\x15\x03\x03\x00\x02\x02\x46"sv, 0, "not an HTTP response"},
        {"220 smtp ESMTP\r\n"sv, 0, "not an HTTP response"},
        {"http/1.1 200 OK\r\n\r\n"sv, 0, "not an HTTP response"},
        {"\r\nHTTP/1.1 200 OK\r\n\r\n"sv, 0, "not an HTTP response"},
        {"HTTX/1.1 200 OK\r\n\r\n"sv, 3, "not an HTTP response"},
        {"HTTP 200 OK\r\n\r\n"sv, 4, "not an HTTP response"},
        {"HTTP/x.1 200 OK\r\n"sv, 5, "bad HTTP version"},
        {"HTTP/1x1 200 OK\r\n"sv, 6, "bad HTTP version"},
        {"HTTP/1.x 200 OK\r\n"sv, 7, "bad HTTP version"},
        {"HTTP/2 200\r\n"sv, 6, "bad HTTP version"},
        {"HTTP/1.1x200 OK\r\n"sv, 8, "bad status line"},
        {"HTTP/1.1\r\n"sv, 8, "bad status line"},
        {"HTTP/1.1  200 OK\r\n"sv, 9, "bad status code"},
        {"HTTP/1.1 600 X\r\n"sv, 9, "bad status code"},
        {"HTTP/1.1 099 X\r\n"sv, 9, "bad status code"},
        {"HTTP/1.1 2x0 X\r\n"sv, 10, "bad status code"},
        {"HTTP/1.1 20\r\n"sv, 11, "bad status code"},
        {"HTTP/1.1 2000 OK\r\n"sv, 12, "bad status code"},
        {"HTTP/1.1 200X\r\n"sv, 12, "bad status line"},
        {"HTTP/1.1 200\t\r\n"sv, 12, "bad status line"},
        {"HTTP/1.1 200 O\x01K\r\n"sv, 14, "bad status line"},
        {"HTTP/1.1 200 O\0K\r\n"sv, 14, "bad status line"},
        {"HTTP/1.1 200 OK\rX\r\n"sv, 16, "bare CR in the response head"},
        {"HTTP/1.1 200\r\r\n"sv, 13, "bare CR in the response head"},
        {"HTTP/1.1 200 OK\r\nServer\r\n\r\n"sv, 23, "header line without ':'"},
        {"HTTP/1.1 200 OK\nServer\n\n"sv, 22, "header line without ':'"},
        {"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n"sv, 20, "bad header name"},
        {"HTTP/1.1 200 OK\r\nX : x\r\n\r\n"sv, 18, "bad header name"},
        {"HTTP/1.1 200 OK\r\n: x\r\n\r\n"sv, 17, "bad header name"},
        {"HTTP/1.1 200 OK\r\nA(b): x\r\n\r\n"sv, 18, "bad header name"},
        {"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"sv, 21, "control character in a header"},
        {"HTTP/1.1 200 OK\r\nX: a\x1b[0m\r\n\r\n"sv, 21, "control character in a header"},
        {"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n"sv, 22, "bare CR in the response head"},
        {"HTTP/1.1 200 OK\r\n\rX"sv, 18, "bare CR in the response head"},
        {"HTTP/1.1 100 Continue\r\n\r\nSSH-2.0"sv, 25, "bad status line"},
        {"HTTP/1.1 100 Continue\r\nX\r\n\r\n"sv, 24, "header line without ':'"},
    };
    for (const garbage& g : cases) {
        CAPTURE(g.text);
        for (std::size_t n = 0; n <= g.text.size(); ++n) {
            CAPTURE(n);
            std::string_view p = g.text.substr(0, n);
            if (n <= g.first_bad) {
                CHECK(head(p).verdict == http_verdict::need_more);
                continue;
            }
            for (int mode = 0; mode <= 3; ++mode) {
                http_head h = head(p, (mode & 1) != 0, (mode & 2) != 0);
                CHECK(h.verdict == http_verdict::malformed);
                CHECK(std::string_view(h.problem) == g.problem);
                CHECK(h.status == 0);
            }
        }
    }
}

TEST_CASE("http head: eof and a full buffer") {
    // Nothing at all, or a status line cut short.
    CHECK(std::string_view(head("", true, false).problem) ==
          "connection closed before the status line");
    CHECK(std::string_view(head("HTTP/1.1 200 O", true, false).problem) ==
          "connection closed before the status line");
    CHECK(std::string_view(head("HTTP/1.1 200 OK\r", true, false).problem) ==
          "connection closed before the status line");
    CHECK(std::string_view(head("HTTP/1.1 200 O", false, true).problem) == "status line too long");
    CHECK(head("", false, false).verdict == http_verdict::need_more);

    // After the status line, headers cut short are fine: only the status counts.
    http_head cut = head("HTTP/1.1 200 OK\r\nContent-Type: te", true, false);
    CHECK(cut.verdict == http_verdict::complete);
    CHECK(cut.status == 200);
    http_head fullh = head("HTTP/1.1 503 Busy\r\nX-Padding: aaaaaaaaaaaaaa", false, true);
    CHECK(fullh.verdict == http_verdict::complete);
    CHECK(fullh.status == 503);
    CHECK(head("HTTP/1.1 404 Nope\r\n", true, false).status == 404);
    CHECK(head("HTTP/1.1 404 Nope\r\nX: y\r", false, true).status == 404);
    // But a broken header is malformed even then.
    CHECK(head("HTTP/1.1 200 OK\r\nBad Header", true, true).verdict == http_verdict::malformed);

    // An interim response alone is no answer.
    CHECK(std::string_view(head("HTTP/1.1 100 Continue\r\n\r\n", true, false).problem) ==
          "connection closed before the status line");
    CHECK(std::string_view(head("HTTP/1.1 100 Continue\r\nX: y", true, false).problem) ==
          "connection closed after an interim response");
    CHECK(std::string_view(head("HTTP/1.1 103 Hints\r\nLink: </a>", false, true).problem) ==
          "interim response too long");
    CHECK(std::string_view(head("HTTP/1.1 103 Hints\r\n\r\nHTTP/1.1 2", false, true).problem) ==
          "status line too long");
}

TEST_CASE("http head: a realistic 1 KiB buffer filled by a long header") {
    std::string resp = "HTTP/1.1 302 Found\r\nLocation: /" + std::string(2000, 'a') + "\r\n\r\n";
    std::string_view p(resp.data(), 1024);
    CHECK(head(p).verdict == http_verdict::need_more);
    http_head h = head(p, false, true);
    CHECK(h.verdict == http_verdict::complete);
    CHECK(h.status == 302);
    std::string long_reason = "HTTP/1.1 200 " + std::string(2000, 'r') + "\r\n\r\n";
    CHECK(std::string_view(head(std::string_view(long_reason.data(), 1024), false, true).problem) ==
          "status line too long");
}

TEST_CASE("http status: 2xx/3xx by default, else the expect list") {
    CHECK(http_status_accepted(200, {}));
    CHECK(http_status_accepted(204, {}));
    CHECK(http_status_accepted(299, {}));
    CHECK(http_status_accepted(301, {}));
    CHECK(http_status_accepted(399, {}));
    CHECK(!http_status_accepted(100, {}));
    CHECK(!http_status_accepted(101, {}));
    CHECK(!http_status_accepted(199, {}));
    CHECK(!http_status_accepted(400, {}));
    CHECK(!http_status_accepted(401, {}));
    CHECK(!http_status_accepted(503, {}));
    CHECK(!http_status_accepted(0, {}));
    const std::uint16_t list[] = {200, 401, 404};
    CHECK(http_status_accepted(200, list));
    CHECK(http_status_accepted(401, list));
    CHECK(http_status_accepted(404, list));
    CHECK(!http_status_accepted(204, list));
    CHECK(!http_status_accepted(301, list));
    CHECK(!http_status_accepted(500, list));
    const std::uint16_t only503[] = {503};
    CHECK(http_status_accepted(503, only503));
    CHECK(!http_status_accepted(200, only503));
}

// --- the loopback servers (tests/probe_servers.hpp) ---

namespace {

// Sends the probe's own request for `url` to the loopback port and reads
// everything until EOF (or 2 s); returns what came and, in `reads`, how
// many reads it took. `rc` is 0, or the errno of a failed read.
std::string exchange(loopback fam, std::uint16_t port, std::string_view url, int* rc = nullptr,
                     int* reads = nullptr) {
    int fd = ::socket(fam == loopback::v4 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_storage ss;
    socklen_t len = custos_test::detail::loopback_addr(fam, port, ss);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0);
    auto u = parse_http_url(url);
    REQUIRE(u);
    char req[512];
    std::size_t n = build_http_request(*u, req, sizeof req);
    REQUIRE(n > 0);
    CHECK(::send(fd, req, n, MSG_NOSIGNAL) == static_cast<ssize_t>(n));
    std::string got;
    int count = 0;
    int err = 0;
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 2000) != 1) {
            err = ETIMEDOUT;
            break;
        }
        char buf[256];
        ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0) {
            err = errno;
            break;
        }
        if (r == 0) {
            break;
        }
        ++count;
        got.append(buf, static_cast<std::size_t>(r));
    }
    ::close(fd);
    if (rc != nullptr) {
        *rc = err;
    }
    if (reads != nullptr) {
        *reads = count;
    }
    return got;
}

void check_tcp_listener(loopback fam) {
    custos_test::tcp_listener l(fam);
    REQUIRE(l.ok());
    CHECK(l.port() != 0);
    CHECK(custos_test::connect_loopback(fam, l.port()) == 0);
    CHECK(custos_test::connect_loopback(fam, l.port()) == 0);
    CHECK(l.wait_accepts(2, 2s));
    CHECK(l.accepts() == 2);
}

void check_closed_port(loopback fam) {
    auto closed = custos_test::closed_port(fam);
    REQUIRE(closed.ok());
    CHECK(closed.port() != 0);
    CHECK(custos_test::connect_loopback(fam, closed.port()) == ECONNREFUSED);
    CHECK(custos_test::connect_loopback(fam, closed.port()) == ECONNREFUSED);
}

void check_http_server(loopback fam) {
    std::string_view canned = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    custos_test::http_server s(canned, custos_test::http_mode::respond, fam);
    REQUIRE(s.ok());
    std::string url = fam == loopback::v4 ? "http://127.0.0.1:" : "http://[::1]:";
    url += std::to_string(s.port()) + "/health?x=1";
    int rc = -1;
    CHECK(exchange(fam, s.port(), url, &rc) == canned);
    CHECK(rc == 0);
    CHECK(s.requests() == 1);
    std::string req = s.last_request();
    std::string host = (fam == loopback::v4 ? "127.0.0.1:" : "[::1]:") + std::to_string(s.port());
    CHECK(req == "GET /health?x=1 HTTP/1.1\r\nHost: " + host +
                     "\r\nUser-Agent: custos-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    char copy[16];
    CHECK(s.copy_last_request(copy, sizeof copy) == sizeof copy);
    CHECK(std::string_view(copy, sizeof copy) == "GET /health?x=1 ");
}

} // namespace

TEST_CASE("servers: tcp_listener accepts, closed_port refuses") {
    check_tcp_listener(loopback::v4);
    check_closed_port(loopback::v4);
}

TEST_CASE("servers: http_server answers with the canned bytes and records the request") {
    check_http_server(loopback::v4);

    custos_test::http_server s("HTTP/1.1 503 Service Unavailable\r\n\r\n");
    REQUIRE(s.ok());
    std::string url = "http://localhost:" + std::to_string(s.port()) + "/";
    std::string got = exchange(loopback::v4, s.port(), url);
    http_head h = head(got, true, false);
    CHECK(h.verdict == http_verdict::complete);
    CHECK(h.status == 503);
    CHECK(!http_status_accepted(h.status, {}));
    CHECK(s.last_request().find("\r\nHost: localhost:") != std::string::npos);

    // set() changes what the next connection gets: garbage here.
    s.set(custos_test::http_mode::respond, "SSH-2.0-OpenSSH_9.6\r\n");
    got = exchange(loopback::v4, s.port(), url);
    CHECK(got == "SSH-2.0-OpenSSH_9.6\r\n");
    CHECK(std::string_view(head(got).problem) == "not an HTTP response");
    CHECK(s.connections() == 2);
    CHECK(s.requests() == 2);
}

TEST_CASE("servers: http_server respond_slowly arrives in pieces") {
    std::string_view canned = "HTTP/1.1 204 No Content\r\nServer: slow\r\n\r\n";
    custos_test::http_server s(canned, custos_test::http_mode::respond_slowly);
    REQUIRE(s.ok());
    int reads = 0;
    std::string got =
        exchange(loopback::v4, s.port(), "http://h:" + std::to_string(s.port()), nullptr, &reads);
    CHECK(got == canned);
    CHECK(reads > 3); // 2 ms between bytes: many separate reads
    http_head h = head(got);
    CHECK(h.verdict == http_verdict::complete);
    CHECK(h.status == 204);
}

TEST_CASE("servers: http_server never_answer holds the connection silently") {
    int before = open_fds();
    auto t0 = std::chrono::steady_clock::now();
    {
        custos_test::http_server s("", custos_test::http_mode::never_answer);
        REQUIRE(s.ok());
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_storage ss;
        socklen_t len = custos_test::detail::loopback_addr(loopback::v4, s.port(), ss);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0);
        CHECK(::send(fd, "GET / HTTP/1.1\r\n\r\n", 18, MSG_NOSIGNAL) == 18);
        CHECK(s.wait_requests(1, 2s));
        pollfd p{fd, POLLIN, 0};
        CHECK(::poll(&p, 1, 300) == 0); // nothing written, not closed
        CHECK(s.last_request() == "GET / HTTP/1.1\r\n\r\n");
        // A second connection is accepted too while the first is held.
        int fd2 = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(::connect(fd2, reinterpret_cast<sockaddr*>(&ss), len) == 0);
        CHECK(::send(fd2, "GET /2 HTTP/1.1\n\n", 17, MSG_NOSIGNAL) == 17);
        CHECK(s.wait_requests(2, 2s));
        ::close(fd2);
        ::close(fd);
    } // the destructor must not wait for the held connection
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    CHECK(open_fds() == before);
}

TEST_CASE("servers: http_server closes: at once, after the request, with RST") {
    {
        custos_test::http_server s("", custos_test::http_mode::close_after_request);
        REQUIRE(s.ok());
        int rc = -1;
        std::string got = exchange(loopback::v4, s.port(), "http://h/", &rc);
        CHECK(rc == 0);
        CHECK(got.empty());
        CHECK(std::string_view(head(got, true, false).problem) ==
              "connection closed before the status line");
        CHECK(s.requests() == 1);
    }
    {
        custos_test::http_server s("", custos_test::http_mode::reset_after_request);
        REQUIRE(s.ok());
        int rc = -1;
        std::string got = exchange(loopback::v4, s.port(), "http://h/", &rc);
        CHECK(rc == ECONNRESET);
        CHECK(got.empty());
    }
    {
        custos_test::http_server s("", custos_test::http_mode::close_immediately);
        REQUIRE(s.ok());
        CHECK(custos_test::connect_loopback(loopback::v4, s.port()) == 0);
        CHECK(s.wait_connections(1, 2s));
        CHECK(s.requests() == 0);
    }
}

TEST_CASE("servers: unix_listener accepts at its path and removes it") {
    char path[] = "/tmp/custos-test-target-XXXXXX";
    REQUIRE(mkdtemp(path) != nullptr);
    std::string sock = std::string(path) + "/probe.sock";
    {
        custos_test::unix_listener u(sock.c_str());
        REQUIRE(u.ok());
        struct stat st {};
        REQUIRE(::stat(sock.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, sock.c_str(), sock.size() + 1);
        CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        ::close(fd);
        CHECK(u.wait_accepts(1, 2s));
    }
    struct stat st {};
    CHECK(::stat(sock.c_str(), &st) != 0);
    CHECK(::rmdir(path) == 0);

    std::string too_long = "/tmp/" + std::string(200, 'x');
    custos_test::unix_listener bad(too_long.c_str());
    CHECK(!bad.ok());
}

TEST_CASE("servers: destruction leaks no descriptor") {
    int before = open_fds();
    REQUIRE(before > 0);
    {
        custos_test::tcp_listener l;
        custos_test::http_server s;
        auto closed = custos_test::closed_port();
        REQUIRE(l.ok());
        REQUIRE(s.ok());
        CHECK(custos_test::connect_loopback(loopback::v4, l.port()) == 0);
        CHECK(l.wait_accepts(1, 2s));
    }
    CHECK(open_fds() == before);
}

// Run only with --only=backlog (skipped when reliable() is false).
TEST_CASE("servers [backlog]: a connect to full_backlog_listener does not complete") {
    int before = open_fds();
    {
        custos_test::full_backlog_listener l;
        REQUIRE(l.ok());
        REQUIRE(l.reliable());
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_storage ss;
        socklen_t len = custos_test::detail::loopback_addr(loopback::v4, l.port(), ss);
        int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
        CHECK(rc == -1);
        CHECK(errno == EINPROGRESS);
        pollfd p{fd, POLLOUT, 0};
        CHECK(::poll(&p, 1, 300) == 0); // still in progress after 300 ms
        ::close(fd);
    }
    CHECK(open_fds() == before);
}

// Run only with --only=ipv6 (skipped without an ::1 address).
TEST_CASE("servers [ipv6]: every server on ::1") {
    check_tcp_listener(loopback::v6);
    check_closed_port(loopback::v6);
    check_http_server(loopback::v6);
    custos_test::full_backlog_listener l(loopback::v6);
    CHECK(l.ok());
}

int main(int argc, char** argv) {
    // --only=TAG runs the cases tagged [TAG] (and exits 77 when what they
    // need is missing); without it, every untagged case runs.
    std::string_view only;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.substr(0, 7) == "--only=") {
            only = a.substr(7);
        }
    }
    doctest::Context ctx;
    int skip = 0;
    if (const char* filter = custos_test::loopback_variant(only, &skip); filter != nullptr) {
        if (skip != 0) {
            return skip;
        }
        ctx.addFilter("test-case", filter);
    } else if (!only.empty()) {
        std::printf("unknown --only=%.*s\n", static_cast<int>(only.size()), only.data());
        return 2;
    } else {
        ctx.addFilter("test-case-exclude", "*[ipv6]*,*[backlog]*");
    }
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
