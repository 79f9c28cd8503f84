// libFuzzer target for the probe target parsers (src/probe/target.*):
// parse_http_head() on what a remote peer sends, under every eof/full
// combination, and parse_http_url() / parse_host_port() on configured
// targets. None may crash or read outside its input, and the answers must
// agree with each other:
//   - eof or full never leave the verdict need_more; a complete or malformed
//     verdict without them stays the same with them;
//   - the verdict is monotonic in the prefix: once malformed, every longer
//     input is malformed; a complete one stays complete with the same status;
//   - a parsed URL or host:port points into its input, has a port, and what
//     it parsed re-parses to the same thing.
//
//   meson setup build-clang -Dtests=true --native-file <clang>  (CXX=clang++)
//   ninja -C build-clang tests/fuzz_http
//   build-clang/tests/fuzz_http -max_total_time=60 -max_len=2048 CORPUS_DIR
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "probe/target.hpp"

namespace {

using custos::probe::http_head;
using custos::probe::http_verdict;

[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "fuzz_http: %s\n", what);
    std::abort();
}

bool inside(std::string_view v, std::string_view d) {
    return v.data() >= d.data() && v.data() + v.size() <= d.data() + d.size();
}

void check_head(const char* data, std::size_t size) {
    http_head open = custos::probe::parse_http_head(data, size, false, false);
    if (open.verdict == http_verdict::complete && (open.status < 100 || open.status > 599)) {
        broken("complete with a status out of range");
    }
    if (open.verdict == http_verdict::malformed && open.problem[0] == '\0') {
        broken("malformed without a problem");
    }
    for (int mode = 1; mode <= 3; ++mode) {
        http_head h = custos::probe::parse_http_head(data, size, (mode & 1) != 0, (mode & 2) != 0);
        if (h.verdict == http_verdict::need_more) {
            broken("need_more with eof or full");
        }
        if (open.verdict != http_verdict::need_more &&
            (h.verdict != open.verdict || h.status != open.status)) {
            broken("eof/full changed a settled verdict");
        }
        if (h.verdict == http_verdict::complete && (h.status < 100 || h.status > 599)) {
            broken("complete (eof/full) with a status out of range");
        }
    }
    if (size > 0) {
        http_head shorter = custos::probe::parse_http_head(data, size - 1, false, false);
        if (shorter.verdict == http_verdict::malformed && open.verdict != http_verdict::malformed) {
            broken("a malformed prefix became valid");
        }
        if (shorter.verdict == http_verdict::complete &&
            (open.verdict != http_verdict::complete || open.status != shorter.status)) {
            broken("a complete prefix changed its verdict");
        }
    }
}

void check_host_port(std::string_view d) {
    auto hp = custos::probe::parse_host_port(d);
    if (!hp) {
        if (hp.error().subject().empty()) {
            broken("host:port error without a subject");
        }
        return;
    }
    if (hp->port == 0 || hp->host.empty() || !inside(hp->host, d)) {
        broken("host:port: bad host or port");
    }
    if (hp->literal != (hp->addr_len != 0)) {
        broken("host:port: literal without an address");
    }
}

void check_url(std::string_view d) {
    auto u = custos::probe::parse_http_url(d);
    if (!u) {
        if (u.error().subject().empty()) {
            broken("url error without a subject");
        }
        return;
    }
    if (u->where.port == 0 || u->where.host.empty() || !inside(u->where.host, d) ||
        !inside(u->authority, d) || u->path.empty()) {
        broken("url: bad parts");
    }
    if (u->path != "/" && !inside(u->path, d)) {
        broken("url: path outside the input");
    }
    for (char c : u->path) {
        auto b = static_cast<unsigned char>(c);
        if (b <= 0x20 || b >= 0x7f || c == '#') {
            broken("url: path would break the request line");
        }
    }
    for (char c : u->authority) {
        if (c == '/' || c == '?' || c == '#' || c == '@') {
            broken("url: authority with a delimiter");
        }
    }
    // The authority re-parses as host:port when it has a port.
    if (!u->authority.empty() && u->authority.back() != ']' &&
        u->authority.find(':') != std::string_view::npos) {
        auto hp = custos::probe::parse_host_port(u->authority);
        if (!hp || hp->port != u->where.port || hp->host != u->where.host) {
            broken("url: authority does not re-parse");
        }
    }
    // The request it makes is one clean head.
    char req[4096];
    std::size_t n = custos::probe::build_http_request(*u, req, sizeof req);
    if (n == 0) {
        if (d.size() < 3000) {
            broken("url: a short URL's request did not fit");
        }
        return;
    }
    std::string_view r(req, n);
    if (r.substr(0, 5) != "GET /" || r.find("\r\n\r\n") != n - 4) {
        broken("url: request head not well formed");
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view d(reinterpret_cast<const char*>(data), size);
    check_head(d.data(), d.size());
    check_host_port(d);
    check_url(d);
    return 0;
}
