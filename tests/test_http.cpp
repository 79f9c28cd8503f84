// The control plane's HTTP/1.1 request parser and response-head writer
// (src/control/http.*): every accept and refuse rule of http.hpp, the limits
// exactly at and one past, incremental feeding (every prefix, byte at a
// time) against the whole buffer, pipelining, the query and path helpers,
// and the exact bytes of what is written, with text_out's overflow.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/http.hpp"

using namespace custos;
using namespace custos::control;
using namespace std::string_literals;

namespace {

parse_status parse(const std::string& s, request& r, const parse_limits& l = {}) {
    return parse_request(s, r, l);
}

// A temporary's request would point into freed memory: keep its bytes
// alive until the test ends.
parse_status parse(std::string&& s, request& r, const parse_limits& l = {}) {
    static std::list<std::string> kept;
    kept.push_back(std::move(s));
    return parse_request(kept.back(), r, l);
}

parse_status verdict(std::string_view s, const parse_limits& l = {}) {
    request r;
    return parse_request(s, r, l);
}

// Feeds `s` one byte at a time, as a server would after each recv: every
// prefix before the verdict settles is incomplete, every one after gives
// the same verdict (and request). Returns the verdict of the whole.
parse_status fed(std::string_view s, const parse_limits& l = {}) {
    request whole;
    parse_status want = parse_request(s, whole, l);
    bool settled = false;
    for (std::size_t n = 0; n <= s.size(); ++n) {
        request r;
        parse_status st = parse_request(s.substr(0, n), r, l);
        if (st == parse_status::incomplete) {
            CHECK_FALSE(settled);
            continue;
        }
        settled = true;
        CHECK(st == want);
        if (st == parse_status::done) {
            CHECK(r.head_bytes == whole.head_bytes);
            CHECK(r.target == whole.target);
            CHECK(r.keep_alive == whole.keep_alive);
            CHECK(r.content_length == whole.content_length);
        }
    }
    return want;
}

// A request line plus `headers` (each with its CRLF) plus the blank line.
std::string req(std::string_view line, std::string_view headers = {}) {
    return std::string(line) + "\r\n" + std::string(headers) + "\r\n";
}

std::string head_of(int status, std::string_view type, std::int64_t length, bool keep_alive,
                    std::string_view extra = {}) {
    char buf[512];
    text_out out(buf, sizeof buf);
    REQUIRE(write_head(out, status, type, length, keep_alive, extra));
    return std::string(out.view());
}

} // namespace

TEST_CASE("a curl GET") {
    std::string s = "GET /status HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\n"
                    "Accept: */*\r\n\r\n";
    request r;
    REQUIRE(parse(s, r) == parse_status::done);
    CHECK(r.verb == method::get);
    CHECK(r.target == "/status");
    CHECK(r.path == "/status");
    CHECK(r.query.empty());
    CHECK(r.minor == 1);
    CHECK(r.keep_alive);
    CHECK(r.content_length == 0);
    CHECK_FALSE(r.expect_continue);
    CHECK(r.head_bytes == s.size());
    CHECK(r.target.data() == s.data() + 4); // views into the buffer
    CHECK(fed(s) == parse_status::done);
}

TEST_CASE("every strict prefix of a request is incomplete") {
    std::string s = req("POST /services/netd/restart?wait=5s HTTP/1.1",
                        "Host: x\r\nContent-Length: 3\r\nConnection: keep-alive\r\n");
    for (std::size_t n = 0; n < s.size(); ++n) {
        CHECK(verdict(std::string_view(s).substr(0, n)) == parse_status::incomplete);
    }
    request r;
    REQUIRE(parse(s + "abc", r) == parse_status::done);
    CHECK(r.head_bytes == s.size());
    CHECK(r.content_length == 3);
    CHECK(r.path == "/services/netd/restart");
    CHECK(r.query == "wait=5s");
}

TEST_CASE("methods") {
    struct {
        const char* name;
        method m;
    } cases[] = {{"GET", method::get},     {"HEAD", method::head},      {"POST", method::post},
                 {"PUT", method::put},     {"DELETE", method::delete_}, {"get", method::other},
                 {"PATCH", method::other}, {"OPTIONS", method::other},  {"GETS", method::other},
                 {"GE", method::other},    {"M-SEARCH", method::other}};
    for (auto c : cases) {
        request r;
        CAPTURE(c.name);
        REQUIRE(parse(req(std::string(c.name) + " / HTTP/1.1"), r) == parse_status::done);
        CHECK(r.verb == c.m);
    }
    CHECK(method_name(method::get) == "GET");
    CHECK(method_name(method::head) == "HEAD");
    CHECK(method_name(method::post) == "POST");
    CHECK(method_name(method::put) == "PUT");
    CHECK(method_name(method::delete_) == "DELETE");
    CHECK(method_name(method::other) == "OTHER");
    // Not a token, or no method at all.
    CHECK(fed(req("G(T / HTTP/1.1")) == parse_status::bad_request);
    CHECK(fed(req(" / HTTP/1.1")) == parse_status::bad_request);
    CHECK(fed(req("GET\t/ HTTP/1.1")) == parse_status::bad_request);
}

TEST_CASE("leading empty lines are skipped and counted in head_bytes") {
    request r;
    std::string s = "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n";
    REQUIRE(parse(s, r) == parse_status::done);
    CHECK(r.head_bytes == s.size());
    CHECK(r.target.data() == s.data() + 9);
    CHECK(fed(s) == parse_status::done);
    CHECK(verdict("\r\n\r\n") == parse_status::incomplete);
    CHECK(fed("\rGET / HTTP/1.1\r\n\r\n") == parse_status::bad_request);
}

TEST_CASE("line ends: CRLF or a bare LF; a bare CR is refused") {
    CHECK(fed("GET / HTTP/1.1\nHost: x\n\n") == parse_status::done);
    CHECK(fed("GET / HTTP/1.1\r\nHost: x\n\r\n") == parse_status::done);
    CHECK(fed("GET / HTTP/1.1\rHost: x\r\n\r\n") == parse_status::bad_request);
    CHECK(fed("GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n") == parse_status::bad_request);
    CHECK(fed("GET / HTTP/1.1\r\nHost: x\r\r\n\r\n") == parse_status::bad_request);
    CHECK(fed("GET / HTTP/1.1\r\nHost: x\r\n\r\r") == parse_status::bad_request);
    CHECK(fed("GET / HTTP/1.1\r\n\rX") == parse_status::bad_request);
    CHECK(verdict("GET / HTTP/1.1\r\n\r") == parse_status::incomplete);
}

TEST_CASE("the target: origin-form, visible ASCII") {
    request r;
    REQUIRE(parse(req("GET /a/b?x=1&y=%2F?z HTTP/1.1"), r) == parse_status::done);
    CHECK(r.path == "/a/b");
    CHECK(r.query == "x=1&y=%2F?z");
    REQUIRE(parse(req("GET /a? HTTP/1.1"), r) == parse_status::done);
    CHECK(r.path == "/a");
    CHECK(r.query.empty());
    REQUIRE(parse(req("GET /\"{}|\\^`~#frag HTTP/1.1"), r) == parse_status::done);
    CHECK(r.target == "/\"{}|\\^`~#frag");

    for (std::string line :
         {"OPTIONS * HTTP/1.1"s, "GET http://x/ HTTP/1.1"s, "GET x HTTP/1.1"s, "GET  / HTTP/1.1"s,
          "GET / a HTTP/1.1"s, "GET /\t HTTP/1.1"s, "GET /a\x7f HTTP/1.1"s, "GET /a\x80 HTTP/1.1"s,
          "GET /\xc3\xa9 HTTP/1.1"s, "GET /\xff HTTP/1.1"s, "GET /a\0b HTTP/1.1"s,
          "GET /\x01 HTTP/1.1"s}) {
        CAPTURE(line);
        CHECK(fed(req(line)) == parse_status::bad_request);
    }
    // A NUL is refused where it stands, without waiting for the line end.
    CHECK(verdict("GET /a\0"s) == parse_status::bad_request);
    CHECK(verdict("GET /\xff"s) == parse_status::bad_request);
}

TEST_CASE("the target's length: max_target exactly, and one past") {
    parse_limits l;
    std::string at(l.max_target, 'a');
    at[0] = '/';
    request r;
    REQUIRE(parse(req("GET " + at + " HTTP/1.1"), r, l) == parse_status::done);
    CHECK(r.target.size() == l.max_target);
    CHECK(parse(req("GET " + at + "a HTTP/1.1"), r, l) == parse_status::bad_request);
    // Refused as soon as it is one past, before the line ends.
    CHECK(verdict("GET " + at + "a", l) == parse_status::bad_request);
    CHECK(verdict("GET " + at, l) == parse_status::incomplete);
    parse_limits tiny{8192, 4096, 2};
    CHECK(fed(req("GET /a HTTP/1.1"), tiny) == parse_status::done);
    CHECK(fed(req("GET /ab HTTP/1.1"), tiny) == parse_status::bad_request);
}

TEST_CASE("versions: 1.0 and 1.x served, other majors 505, not HTTP 400") {
    request r;
    REQUIRE(parse(req("GET / HTTP/1.0"), r) == parse_status::done);
    CHECK(r.minor == 0);
    REQUIRE(parse(req("GET / HTTP/1.1"), r) == parse_status::done);
    CHECK(r.minor == 1);
    REQUIRE(parse(req("GET / HTTP/1.2"), r) == parse_status::done); // RFC 9110 2.5
    CHECK(r.minor == 2);
    CHECK(r.keep_alive);
    for (const char* v : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"}) {
        CAPTURE(v);
        CHECK(fed(req("GET / "s + v)) == parse_status::version);
    }
    for (const char* v : {"http/1.1", "HTTP/1.1x", "HTTP/11", "HTTP/1.", "HTTP/1", "HTTP 1.1",
                          "HTTP/1.1 ", "HTTP/a.1", "HTTP/1.b", "HTTPS/1.1", "", "HTTP/2"}) {
        CAPTURE(v);
        CHECK(fed(req("GET / "s + v)) == parse_status::bad_request);
    }
    CHECK(fed(req("GET /")) == parse_status::bad_request);
    // The HTTP/2 preface is not an origin-form request.
    CHECK(fed("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == parse_status::bad_request);
    // A 505 comes after the line end only; the headers are not read.
    CHECK(verdict("GET / HTTP/2.0") == parse_status::incomplete);
    CHECK(verdict("GET / HTTP/2.0\r\nTransfer-Encoding: chunked\r\n") == parse_status::version);
}

TEST_CASE("not HTTP at all: refused on its first bad byte") {
    CHECK(verdict("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s) == parse_status::bad_request);
    CHECK(verdict("\x16") == parse_status::bad_request);
    CHECK(verdict("SSH-2.0-OpenSSH_9.2") == parse_status::incomplete); // a token so far
    CHECK(verdict("SSH-2.0-OpenSSH_9.2\r\n") == parse_status::bad_request);
    CHECK(fed("hello world\n") == parse_status::bad_request);
    CHECK(fed(std::string(100, '\0')) == parse_status::bad_request);
}

TEST_CASE("header fields") {
    CHECK(fed(req("GET / HTTP/1.1", "X-Empty:\r\nX-Spaces: \t \r\nA:b\r\n")) == parse_status::done);
    // obs-text in a value is kept as is.
    CHECK(fed(req("GET / HTTP/1.1", "X-Name: caf\xc3\xa9 \xff\r\n")) == parse_status::done);
    for (std::string h : {"Content-Length : 5\r\n"s, "Host\t: x\r\n"s, ": x\r\n"s, "Host x\r\n"s,
                          "X-\xc3\xa9: x\r\n"s, "X(y): x\r\n"s, "X: a\0b\r\n"s, "X: a\x01\r\n"s,
                          "X: a\x7f\r\n"s, "X: a\x1b[0m\r\n"s, "\x80: x\r\n"s}) {
        CAPTURE(h);
        CHECK(fed(req("GET / HTTP/1.1", h)) == parse_status::bad_request);
    }
}

TEST_CASE("obsolete line folding and whitespace before the first field are refused") {
    CHECK(fed(req("GET / HTTP/1.1", "X-Folded: a\r\n b\r\n")) == parse_status::bad_request);
    CHECK(fed(req("GET / HTTP/1.1", "X-Folded: a\r\n\tb\r\n")) == parse_status::bad_request);
    CHECK(fed(req("GET / HTTP/1.1", " Host: x\r\n")) == parse_status::bad_request);
    CHECK(fed("GET / HTTP/1.1\n \n\n") == parse_status::bad_request);
}

TEST_CASE("Content-Length") {
    request r;
    REQUIRE(parse(req("POST / HTTP/1.1", "content-LENGTH:   17 \t\r\n"), r) == parse_status::done);
    CHECK(r.content_length == 17);
    REQUIRE(parse(req("POST / HTTP/1.1", "Content-Length: 0\r\n"), r) == parse_status::done);
    CHECK(r.content_length == 0);
    REQUIRE(parse(req("POST / HTTP/1.1", "Content-Length: 000000000000000000000000005\r\n"), r) ==
            parse_status::done);
    CHECK(r.content_length == 5);
    for (std::string v : {""s, "+5"s, "-1"s, "5, 5"s, "5,5"s, "0x10"s, "1 2"s, "5a"s, "١"s}) {
        CAPTURE(v);
        CHECK(fed(req("POST / HTTP/1.1", "Content-Length: " + v + "\r\n")) ==
              parse_status::bad_request);
    }
}

TEST_CASE("Content-Length: max_body exactly, one past, and far past") {
    parse_limits l;
    request r;
    REQUIRE(parse(req("POST / HTTP/1.1", "Content-Length: 4096\r\n"), r, l) == parse_status::done);
    CHECK(r.content_length == l.max_body);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 4097\r\n")) == parse_status::body_too_large);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 4294967296\r\n")) ==
          parse_status::body_too_large);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 99999999999999999999999999999999\r\n")) ==
          parse_status::body_too_large);
    parse_limits none{8192, 0, 1024};
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 0\r\n"), none) == parse_status::done);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 1\r\n"), none) ==
          parse_status::body_too_large);
}

TEST_CASE("Content-Length repeated: the same value is accepted, a different one refused") {
    request r;
    REQUIRE(parse(req("POST / HTTP/1.1", "Content-Length: 5\r\ncontent-length: 5\r\n"), r) ==
            parse_status::done);
    CHECK(r.content_length == 5);
    REQUIRE(parse(req("POST / HTTP/1.1", "Content-Length: 5\r\nContent-Length: 005\r\n"), r) ==
            parse_status::done);
    CHECK(r.content_length == 5);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 5\r\nContent-Length: 6\r\n")) ==
          parse_status::bad_request);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 0\r\nContent-Length: 5\r\n")) ==
          parse_status::bad_request);
    // A different value is refused as such even when it is also too large.
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 5\r\nContent-Length: 99999\r\n")) ==
          parse_status::bad_request);
    CHECK(fed(req("POST / HTTP/1.1", "Content-Length: 5\r\nContent-Length:\r\n")) ==
          parse_status::bad_request);
}

TEST_CASE("Transfer-Encoding, any, is refused") {
    for (std::string h : {"Transfer-Encoding: chunked\r\n"s, "transfer-encoding: identity\r\n"s,
                          "TRANSFER-ENCODING:\r\n"s, "Transfer-Encoding: gzip, chunked\r\n"s,
                          "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"s,
                          "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"s}) {
        CAPTURE(h);
        CHECK(fed(req("POST / HTTP/1.1", h)) == parse_status::bad_request);
    }
    // Names that only start like it are other fields.
    CHECK(fed(req("POST / HTTP/1.1", "Transfer-Encodings: chunked\r\n")) == parse_status::done);
}

TEST_CASE("keep-alive: HTTP/1.1 unless close, HTTP/1.0 only with keep-alive") {
    struct {
        const char* line;
        const char* headers;
        bool keep;
    } cases[] = {
        {"GET / HTTP/1.1", "", true},
        {"GET / HTTP/1.1", "Connection: close\r\n", false},
        {"GET / HTTP/1.1", "connection: CLOSE\r\n", false},
        {"GET / HTTP/1.1", "Connection: keep-alive, close\r\n", false},
        {"GET / HTTP/1.1", "Connection: foo,,  close ,bar\r\n", false},
        {"GET / HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n", false},
        {"GET / HTTP/1.1", "Connection: closed\r\n", true},
        {"GET / HTTP/1.1", "Connection: keep-alive\r\n", true},
        {"GET / HTTP/1.1", "X-Connection: close\r\n", true},
        {"GET / HTTP/1.0", "", false},
        {"GET / HTTP/1.0", "Connection: keep-alive\r\n", true},
        {"GET / HTTP/1.0", "Connection: Keep-Alive\r\n", true},
        {"GET / HTTP/1.0", "Connection: Upgrade, keep-alive\r\n", true},
        {"GET / HTTP/1.0", "Connection: keep-alive, close\r\n", false},
        {"GET / HTTP/1.0", "Connection: keep-alived\r\n", false},
        {"GET / HTTP/1.0", "Connection: close\r\n", false},
    };
    for (auto c : cases) {
        CAPTURE(c.line);
        CAPTURE(c.headers);
        request r;
        REQUIRE(parse(req(c.line, c.headers), r) == parse_status::done);
        CHECK(r.keep_alive == c.keep);
    }
}

TEST_CASE("Expect: 100-continue on HTTP/1.1 only") {
    request r;
    REQUIRE(parse(req("POST / HTTP/1.1", "Expect: 100-Continue\r\n"), r) == parse_status::done);
    CHECK(r.expect_continue);
    REQUIRE(parse(req("POST / HTTP/1.0", "Expect: 100-continue\r\n"), r) == parse_status::done);
    CHECK_FALSE(r.expect_continue);
    REQUIRE(parse(req("POST / HTTP/1.1", "Expect: something\r\n"), r) == parse_status::done);
    CHECK_FALSE(r.expect_continue);
}

TEST_CASE("Host is not required") {
    CHECK(fed(req("GET /health HTTP/1.1")) == parse_status::done);
}

TEST_CASE("the head's size: max_head exactly, one past, and a full buffer is never incomplete") {
    parse_limits l;
    std::string line = "GET / HTTP/1.1\r\nX-Pad: ";
    std::size_t pad = l.max_head - line.size() - 4; // then "\r\n\r\n"
    std::string at = line + std::string(pad, 'p') + "\r\n\r\n";
    REQUIRE(at.size() == l.max_head);
    request r;
    REQUIRE(parse(at, r, l) == parse_status::done);
    CHECK(r.head_bytes == l.max_head);
    std::string past = line + std::string(pad + 1, 'p') + "\r\n\r\n";
    CHECK(parse(past, r, l) == parse_status::head_too_large);
    // One byte short of max_head and unfinished: wait; max_head bytes: refuse.
    CHECK(verdict(std::string_view(past).substr(0, l.max_head - 1), l) == parse_status::incomplete);
    CHECK(verdict(std::string_view(past).substr(0, l.max_head), l) == parse_status::head_too_large);
    // The blank line's LF is the byte past the limit.
    std::string lf = line + std::string(pad, 'p') + "\r\n\n";
    CHECK(verdict(std::string_view(lf), parse_limits{static_cast<std::uint32_t>(lf.size() - 1)}) ==
          parse_status::head_too_large);
    CHECK(verdict(std::string_view(lf), parse_limits{static_cast<std::uint32_t>(lf.size())}) ==
          parse_status::done);
    // Leading empty lines count.
    CHECK(verdict(std::string(l.max_head, '\n'), l) == parse_status::head_too_large);
    CHECK(verdict(std::string(l.max_head - 1, '\n'), l) == parse_status::incomplete);
}

TEST_CASE("a very long header: 431, looking at max_head bytes only") {
    std::string s = "GET / HTTP/1.1\r\nX-Big: " + std::string(1 << 20, 'x') + "\r\n\r\n";
    CHECK(verdict(s) == parse_status::head_too_large);
    CHECK(verdict(std::string_view(s).substr(0, 8192)) == parse_status::head_too_large);
    CHECK(verdict(std::string_view(s).substr(0, 8191)) == parse_status::incomplete);
    // Many small fields add up the same way.
    std::string many = "GET / HTTP/1.1\r\n";
    while (many.size() < 10000) {
        many += "X-A: b\r\n";
    }
    CHECK(verdict(many + "\r\n") == parse_status::head_too_large);
    // A bad byte before the limit is reported first, whatever follows.
    CHECK(verdict("GET / HTTP/1.1\r\nX: \x01" + std::string(9000, 'x')) ==
          parse_status::bad_request);
    // The limit before a bad byte past it.
    CHECK(verdict("GET / HTTP/1.1\r\nX: " + std::string(9000, 'x') + "\x01") ==
          parse_status::head_too_large);
}

TEST_CASE("pipelined requests: the next one starts at head_bytes + content_length") {
    std::string first = req("POST /reload HTTP/1.1", "Content-Length: 4\r\n") + "body";
    std::string second = req("GET /metrics HTTP/1.1", "Connection: close\r\n");
    std::string third = "GET /hea";
    std::string s = first + second + third;
    request r;
    REQUIRE(parse(s, r) == parse_status::done);
    CHECK(r.verb == method::post);
    CHECK(r.head_bytes + r.content_length == first.size());
    std::string_view rest = std::string_view(s).substr(r.head_bytes + r.content_length);
    REQUIRE(parse_request(rest, r) == parse_status::done);
    CHECK(r.verb == method::get);
    CHECK(r.path == "/metrics");
    CHECK_FALSE(r.keep_alive);
    CHECK(r.head_bytes == second.size());
    rest = rest.substr(r.head_bytes);
    CHECK(parse_request(rest, r) == parse_status::incomplete);
    // Garbage after a head does not change it.
    CHECK(fed(req("GET / HTTP/1.1") + "\x01\x02\xff") == parse_status::done);
}

TEST_CASE("byte at a time gives the whole buffer's verdict") {
    for (std::string s :
         {req("GET / HTTP/1.1"), req("HEAD /x HTTP/1.0", "Connection: keep-alive\r\n"),
          req("POST /a?b HTTP/1.1", "Content-Length: 5\r\nContent-Length: 6\r\n"),
          req("POST / HTTP/1.1", "Transfer-Encoding: chunked\r\n"), req("GET / HTTP/2.0"),
          req("GET / HTTP/1.1", "X: a\r\n b\r\n"),
          req("GET / HTTP/1.1", "Content-Length: 99999\r\n"), "\x16\x03\x01"s,
          "GET / HTTP/1.1\r\nX: " + std::string(9000, 'x')}) {
        CAPTURE(s.substr(0, 40));
        request whole;
        parse_status want = parse(s, whole);
        CHECK(fed(s) == want);
        CHECK(want != parse_status::incomplete);
    }
}

TEST_CASE("out is written only when done") {
    request r;
    r.target = "untouched";
    r.head_bytes = 12345;
    for (std::string s : {"GET / HT"s, req("GET / HTTP/3.0"), req("GET x HTTP/1.1")}) {
        CHECK(parse(s, r) != parse_status::done);
        CHECK(r.target == "untouched");
        CHECK(r.head_bytes == 12345);
    }
}

TEST_CASE("http_status") {
    CHECK(http_status(parse_status::done) == 0);
    CHECK(http_status(parse_status::incomplete) == 0);
    CHECK(http_status(parse_status::bad_request) == 400);
    CHECK(http_status(parse_status::head_too_large) == 431);
    CHECK(http_status(parse_status::body_too_large) == 413);
    CHECK(http_status(parse_status::version) == 505);
}

TEST_CASE("query_param") {
    char buf[32];
    std::string_view q = "a=1&b&c=x%2Fy&d=&e=1+2&f=%41%62%7e%7E&g=a=b&h=%00";
    auto v = query_param(q, "a", buf, sizeof buf);
    CHECK(v.present);
    CHECK(v.valid);
    CHECK(v.value == "1");
    CHECK(v.value.data() == buf);
    v = query_param(q, "b", buf, sizeof buf);
    CHECK((v.present && v.valid && v.value.empty()));
    v = query_param(q, "c", buf, sizeof buf);
    CHECK(v.value == "x/y");
    v = query_param(q, "d", buf, sizeof buf);
    CHECK((v.present && v.valid && v.value.empty()));
    CHECK(query_param(q, "e", buf, sizeof buf).value == "1+2"); // '+' stays '+'
    CHECK(query_param(q, "f", buf, sizeof buf).value == "Ab~~");
    CHECK(query_param(q, "g", buf, sizeof buf).value == "a=b");
    CHECK(query_param(q, "h", buf, sizeof buf).value == std::string_view("\0", 1));
    v = query_param(q, "z", buf, sizeof buf);
    CHECK_FALSE(v.present);
    CHECK(v.valid);
    CHECK(v.value.empty());
    CHECK_FALSE(query_param("", "a", buf, sizeof buf).present);
}

TEST_CASE("query_param: malformed escapes are present and invalid") {
    char buf[32];
    for (std::string_view q :
         {"k=%zz", "k=%2", "k=%", "k=a%", "k=%%41", "k=%2g", "k=%g2", "k=%2%41"}) {
        CAPTURE(q);
        auto v = query_param(q, "k", buf, sizeof buf);
        CHECK(v.present);
        CHECK_FALSE(v.valid);
        CHECK(v.value.empty());
    }
    // Only the value that is asked for is decoded.
    auto v = query_param("bad=%zz&k=ok", "k", buf, sizeof buf);
    CHECK((v.present && v.valid && v.value == "ok"));
}

TEST_CASE("query_param: keys as sent, first match, empty keys, prefixes") {
    char buf[32];
    std::string_view q = "ab=1&a=2&abc=3&a=4";
    CHECK(query_param(q, "a", buf, sizeof buf).value == "2");
    CHECK(query_param(q, "ab", buf, sizeof buf).value == "1");
    CHECK(query_param(q, "abc", buf, sizeof buf).value == "3");
    CHECK_FALSE(query_param(q, "abcd", buf, sizeof buf).present);
    CHECK_FALSE(query_param("abc=1", "a", buf, sizeof buf).present);
    CHECK_FALSE(query_param("a=1", "a=1", buf, sizeof buf).present);
    // Keys are not decoded.
    CHECK_FALSE(query_param("a%20b=1", "a b", buf, sizeof buf).present);
    CHECK(query_param("a%20b=1", "a%20b", buf, sizeof buf).value == "1");
    // Empty items are skipped; "=x" has the empty key.
    CHECK_FALSE(query_param("a&&b", "", buf, sizeof buf).present);
    CHECK_FALSE(query_param("&", "", buf, sizeof buf).present);
    CHECK(query_param("a&=x&b", "", buf, sizeof buf).value == "x");
    CHECK(query_param("&&json", "json", buf, sizeof buf).present);
    CHECK(query_param("json&", "json", buf, sizeof buf).present);
}

TEST_CASE("query_param: the value's length, cap exactly and one past; never past cap") {
    char buf[16];
    for (char& c : buf) {
        c = '#';
    }
    auto v = query_param("k=abcd", "k", buf, 4);
    CHECK((v.present && v.valid && v.value == "abcd"));
    v = query_param("k=abcde", "k", buf, 4);
    CHECK(v.present);
    CHECK_FALSE(v.valid);
    CHECK(v.value.empty());
    v = query_param("k=%41%42%43%44%45", "k", buf, 4); // decoded length counts
    CHECK_FALSE(v.valid);
    v = query_param("k=%41%42%43%44", "k", buf, 4);
    CHECK((v.valid && v.value == "ABCD"));
    for (std::size_t i = 4; i < sizeof buf; ++i) {
        CHECK(buf[i] == '#');
    }
    // cap 0: an empty value needs no buffer.
    v = query_param("k=&j", "k", nullptr, 0);
    CHECK((v.present && v.valid && v.value.empty()));
    v = query_param("j", "j", nullptr, 0);
    CHECK((v.present && v.valid && v.value.empty()));
    v = query_param("k=x", "k", nullptr, 0);
    CHECK((v.present && !v.valid && v.value.empty()));
}

TEST_CASE("split_path") {
    std::string_view seg, rest;
    REQUIRE(split_path("/services/netd/start", "/services/", seg, rest));
    CHECK(seg == "netd");
    CHECK(rest == "start");
    REQUIRE(split_path("/services/netd", "/services/", seg, rest));
    CHECK(seg == "netd");
    CHECK(rest.empty());
    REQUIRE(split_path("/services/netd/", "/services/", seg, rest));
    CHECK(seg == "netd");
    CHECK(rest.empty());
    REQUIRE(split_path("/services/a/b/c", "/services/", seg, rest));
    CHECK(seg == "a");
    CHECK(rest == "b/c");
    seg = "untouched";
    rest = "untouched";
    for (std::string_view p : {"/services/", "/services", "/services//start", "/probes/x",
                               "/servicesx/a", "", "services/a"}) {
        CAPTURE(p);
        CHECK_FALSE(split_path(p, "/services/", seg, rest));
        CHECK(seg == "untouched");
        CHECK(rest == "untouched");
    }
}

TEST_CASE("reason_phrase: every status the server sends") {
    struct {
        int status;
        const char* phrase;
    } cases[] = {{200, "OK"},
                 {204, "No Content"},
                 {400, "Bad Request"},
                 {403, "Forbidden"},
                 {404, "Not Found"},
                 {405, "Method Not Allowed"},
                 {408, "Request Timeout"},
                 {409, "Conflict"},
                 {413, "Content Too Large"},
                 {431, "Request Header Fields Too Large"},
                 {500, "Internal Server Error"},
                 {503, "Service Unavailable"},
                 {504, "Gateway Timeout"},
                 {505, "HTTP Version Not Supported"},
                 {100, "Continue"},
                 {418, "Unknown"},
                 {0, "Unknown"},
                 {-1, "Unknown"}};
    for (auto c : cases) {
        CAPTURE(c.status);
        CHECK(reason_phrase(c.status) == c.phrase);
    }
}

TEST_CASE("write_head: exact bytes") {
    CHECK(head_of(200, "application/json", 12, true) ==
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
          "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n");
    CHECK(head_of(200, "text/plain; version=0.0.4", -1, false) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
          "Transfer-Encoding: chunked\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n");
    CHECK(head_of(405, "", 0, true, "Allow: GET, HEAD\r\n") ==
          "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nCache-Control: no-store\r\n"
          "Connection: keep-alive\r\nAllow: GET, HEAD\r\n\r\n");
    CHECK(head_of(503, "text/plain", 4096, false, "Retry-After: 1\r\nX-A: b\r\n") ==
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 4096\r\n"
          "Cache-Control: no-store\r\nConnection: close\r\nRetry-After: 1\r\nX-A: b\r\n\r\n");
    // 204 announces no length.
    CHECK(head_of(204, "", 0, true) ==
          "HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\nConnection: keep-alive\r\n\r\n");
    CHECK(head_of(431, "", 0, false) ==
          "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
          "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    CHECK(head_of(200, "", 0x7fffffffffffffff, true) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n"
          "Cache-Control: no-store\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("write_head into a text_out too small: all or nothing, and it stays overflowed") {
    const std::string full = head_of(200, "application/json", 12, true, "X-A: b\r\n");
    for (std::size_t cap = 0; cap < full.size() + 3; ++cap) {
        CAPTURE(cap);
        std::vector<char> buf(cap + 8, '#');
        text_out out(buf.data(), cap);
        out.put("ab");
        bool before = out.overflowed();
        bool ok = write_head(out, 200, "application/json", 12, true, "X-A: b\r\n");
        CHECK(ok == (cap >= full.size() + 2));
        if (ok) {
            CHECK(out.view() == "ab" + full);
            CHECK_FALSE(out.overflowed());
        } else {
            CHECK(out.overflowed());
            CHECK(out.view() == (before ? "" : "ab"));
            // Once overflowed, a head that would fit is refused too.
            CHECK_FALSE(write_head(out, 204, "", 0, true));
            CHECK(out.size() == (before ? 0u : 2u));
        }
        for (std::size_t i = cap; i < buf.size(); ++i) {
            CHECK(buf[i] == '#');
        }
    }
}

TEST_CASE("write_chunk_size: lower-case hex, then CRLF") {
    struct {
        std::size_t n;
        const char* line;
    } cases[] = {{0, "0\r\n"},       {1, "1\r\n"},
                 {9, "9\r\n"},       {10, "a\r\n"},
                 {15, "f\r\n"},      {16, "10\r\n"},
                 {255, "ff\r\n"},    {0x1a2, "1a2\r\n"},
                 {4096, "1000\r\n"}, {0xabcdef, "abcdef\r\n"}};
    for (auto c : cases) {
        CAPTURE(c.n);
        char buf[32];
        text_out out(buf, sizeof buf);
        REQUIRE(write_chunk_size(out, c.n));
        CHECK(out.view() == c.line);
    }
    char buf[32];
    text_out out(buf, sizeof buf);
    REQUIRE(write_chunk_size(out, ~std::size_t{0}));
    CHECK(out.view() == std::string(2 * sizeof(std::size_t), 'f') + "\r\n");
    // A chunk, its end and the last chunk: a whole chunked body.
    out.clear();
    REQUIRE(write_chunk_size(out, 5));
    out.put("hello").put(chunk_end).put(last_chunk);
    CHECK(out.view() == "5\r\nhello\r\n0\r\n\r\n");
    CHECK(chunk_end == "\r\n");
    CHECK(last_chunk == "0\r\n\r\n");
}

TEST_CASE("write_chunk_size into a text_out too small: nothing written") {
    for (std::size_t cap = 0; cap < 8; ++cap) {
        CAPTURE(cap);
        char buf[8] = {'#', '#', '#', '#', '#', '#', '#', '#'};
        text_out out(buf, cap);
        bool ok = write_chunk_size(out, 0x1a2);
        CHECK(ok == (cap >= 5));
        CHECK(out.size() == (ok ? 5u : 0u));
        CHECK(out.overflowed() == !ok);
        for (std::size_t i = cap; i < sizeof buf; ++i) {
            CHECK(buf[i] == '#');
        }
    }
}
