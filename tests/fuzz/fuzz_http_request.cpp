// libFuzzer target for the control plane's request parser and its helpers
// (src/control/http.*): parse_request() on what a client sends, under the
// default limits and under tight ones, query_param() and split_path() on
// what it parsed and on raw input. None may crash, read outside its input
// or write past its buffer, and the answers must agree with each other:
//   - `out` is written only when the verdict is done; a buffer of max_head
//     bytes or more is never incomplete;
//   - the verdict is monotonic in the prefix: a prefix that is done or
//     refused gives the same verdict as the whole (done: the same request);
//     a done head is done at exactly head_bytes and incomplete one byte
//     short of it;
//   - a done request points inside its head, its target is origin-form
//     visible ASCII within max_target, path and query split it at the first
//     '?', content_length is within max_body, head_bytes ends with LF;
//   - what is done under the tight limits is done, identically, under the
//     default ones;
//   - query_param() never writes past `cap` (the buffer is exactly `cap`
//     bytes on the heap, so ASan sees an overrun), finds every key its
//     query has, and a valid value fits in `cap`, inside the buffer.
//
//   meson setup build-clang -Dtests=true --native-file <clang>  (CXX=clang++)
//   ninja -C build-clang tests/fuzz_http_request
//   build-clang/tests/fuzz_http_request -max_total_time=60 -max_len=4096 \
//       NEW_CORPUS_DIR tests/fuzz/corpus/http_request
// (libFuzzer adds what it finds to the first directory: keep it out of the
// source tree.) tests/meson.build runs a bounded CI run of it (test
// 'fuzz-http-request', suite 'control', clang builds).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "control/http.hpp"

namespace {

using namespace custos::control;

[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "fuzz_http_request: %s\n", what);
    std::abort();
}

bool inside(std::string_view v, std::string_view d) {
    return v.empty() || (v.data() >= d.data() && v.data() + v.size() <= d.data() + d.size());
}

bool same_view(std::string_view a, std::string_view b) {
    return a.data() == b.data() && a.size() == b.size();
}

bool same(const request& a, const request& b) {
    return a.verb == b.verb && same_view(a.target, b.target) && same_view(a.path, b.path) &&
           same_view(a.query, b.query) && a.minor == b.minor && a.keep_alive == b.keep_alive &&
           a.content_length == b.content_length && a.head_bytes == b.head_bytes &&
           a.expect_continue == b.expect_continue;
}

// What parse_request must leave alone unless it is done.
request sentinel() {
    request r;
    r.verb = method::put;
    r.target = "sentinel";
    r.minor = 7;
    r.keep_alive = false;
    r.content_length = 0xfeed;
    r.head_bytes = 0xdeadbeef;
    r.expect_continue = true;
    return r;
}

constexpr parse_limits tight{300, 64, 40};

void check_query(std::string_view query, std::string_view key, std::size_t cap, bool must_find) {
    auto buf = std::make_unique<char[]>(cap); // exactly cap bytes: ASan sees any overrun
    query_value v = query_param(query, key, buf.get(), cap);
    if (must_find && !v.present) {
        broken("query_param missed a key the query has");
    }
    if (!v.present && (!v.valid || !v.value.empty())) {
        broken("query_param: absent but with a value");
    }
    if (!v.valid && !v.value.empty()) {
        broken("query_param: invalid with a value");
    }
    if (v.valid && v.value.size() > cap) {
        broken("query_param: value longer than cap");
    }
    if (!v.value.empty() && v.value.data() != buf.get()) {
        broken("query_param: value outside the buffer");
    }
}

void check_split(std::string_view path) {
    constexpr std::string_view prefix = "/services/";
    std::string_view segment = "untouched", rest = "untouched";
    if (!split_path(path, prefix, segment, rest)) {
        if (segment != "untouched" || rest != "untouched") {
            broken("split_path: false but wrote its outputs");
        }
        return;
    }
    if (segment.empty() || segment.find('/') != std::string_view::npos || !inside(segment, path) ||
        !inside(rest, path) || segment.data() != path.data() + prefix.size()) {
        broken("split_path: segment or rest out of place");
    }
    if (!rest.empty() && rest.data() != segment.data() + segment.size() + 1) {
        broken("split_path: rest does not follow the segment");
    }
}

void check_request(std::string_view d, const request& r, const parse_limits& limits) {
    std::string_view head = d.substr(0, r.head_bytes);
    if (r.head_bytes == 0 || r.head_bytes > d.size() || r.head_bytes > limits.max_head ||
        head.back() != '\n') {
        broken("done with a bad head_bytes");
    }
    if (!inside(r.target, head) || r.target.empty() || r.target.front() != '/' ||
        r.target.size() > limits.max_target) {
        broken("done with a bad target");
    }
    for (char c : r.target) {
        if (c <= 0x20 || c >= 0x7f) {
            broken("target byte outside visible ASCII");
        }
    }
    auto q = r.target.find('?');
    if (!same_view(r.path, r.target.substr(0, q)) ||
        (q == std::string_view::npos ? !r.query.empty()
                                     : !same_view(r.query, r.target.substr(q + 1)))) {
        broken("path and query do not split the target at '?'");
    }
    if (r.content_length > limits.max_body || r.minor > 9) {
        broken("done with content_length or minor out of range");
    }
    if (r.expect_continue && r.minor == 0) {
        broken("expect_continue on HTTP/1.0");
    }
    if (method_name(r.verb).empty()) {
        broken("a method without a name");
    }
}

parse_status check_parse(std::string_view d, const parse_limits& limits, request& r) {
    r = sentinel();
    parse_status st = parse_request(d, r, limits);
    int code = http_status(st);
    if ((st == parse_status::done || st == parse_status::incomplete) != (code == 0) ||
        (code != 0 && code != 400 && code != 413 && code != 431 && code != 505)) {
        broken("http_status does not match the verdict");
    }
    if (st != parse_status::done && !same(r, sentinel())) {
        broken("out written without done");
    }
    if (st == parse_status::incomplete && d.size() >= limits.max_head) {
        broken("incomplete with max_head bytes or more");
    }
    if (st == parse_status::done) {
        check_request(d, r, limits);
    }
    return st;
}

void check_prefix(std::string_view d, std::size_t cut, parse_status st, const request& whole,
                  const parse_limits& limits) {
    if (cut > d.size()) {
        return;
    }
    request p;
    parse_status ps = check_parse(d.substr(0, cut), limits, p);
    if (ps == parse_status::incomplete) {
        return;
    }
    if (ps != st) {
        broken("a settled prefix changed its verdict");
    }
    if (ps == parse_status::done && !same(p, whole)) {
        broken("a done prefix changed its request");
    }
}

parse_status check_all(std::string_view d, const parse_limits& limits, request& r) {
    parse_status st = check_parse(d, limits, r);
    // Every prefix of a short input; a few of a longer one (every prefix
    // would make a run quadratic, and too slow for 10^7 of them).
    if (d.size() <= 48) {
        for (std::size_t cut = 0; cut < d.size(); ++cut) {
            check_prefix(d, cut, st, r, limits);
        }
    } else {
        std::size_t pick = static_cast<unsigned char>(d[0]) * d.size() / 256;
        for (std::size_t cut : {d.size() - 1, d.size() / 2, d.size() / 3, pick}) {
            check_prefix(d, cut, st, r, limits);
        }
    }
    if (st == parse_status::done) {
        request p;
        if (check_parse(d.substr(0, r.head_bytes), limits, p) != parse_status::done ||
            !same(p, r)) {
            broken("not done at exactly head_bytes");
        }
        if (check_parse(d.substr(0, r.head_bytes - 1), limits, p) != parse_status::incomplete) {
            broken("settled one byte short of head_bytes");
        }
    }
    return st;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view d(reinterpret_cast<const char*>(data), size);
    request r;
    parse_status st = check_all(d, {}, r);
    request t;
    if (check_all(d, tight, t) == parse_status::done && (st != parse_status::done || !same(t, r))) {
        broken("done under tight limits but not the same under the default ones");
    }
    std::size_t cap = size == 0 ? 0 : data[size - 1] % 24;
    if (st == parse_status::done) {
        check_split(r.path);
        // Every key of the query is found.
        std::string_view rest = r.query;
        for (int n = 0; n < 4 && !rest.empty(); ++n) {
            auto amp = rest.find('&');
            auto item = rest.substr(0, amp);
            rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
            if (!item.empty()) {
                check_query(r.query, item.substr(0, item.find('=')), cap, true);
            }
        }
    }
    // Raw input as a query, its first bytes as the key.
    check_query(d, d.substr(0, size % 7), cap, false);
    check_split(d);
    return 0;
}
