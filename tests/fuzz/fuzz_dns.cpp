// libFuzzer target for the DNS parsers: parse_dns_response() (what any host
// on the path can send back), parse_resolv_conf() and parse_hosts(). None
// may crash, read outside its input, or report what is not there.
//
//   meson setup build-clang -Dtests=true --native-file <clang>  (CXX=clang++)
//   ninja -C build-clang tests/fuzz_dns
//   build-clang/tests/fuzz_dns -max_total_time=60 -max_len=1024 CORPUS_DIR
//
// The first input byte picks the parser; for responses, the next bytes pick
// the expected id, qtype and a name from a small set, the rest is the message
// (so the fuzzer can find matching headers and reach the answer walk).
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "probe/dns.hpp"

namespace {

[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "fuzz_dns: %s\n", what);
    std::abort();
}

bool nul_terminated(const char* s, std::size_t cap) {
    return std::memchr(s, '\0', cap) != nullptr;
}

void check_config(const custos::probe::resolver_config& cfg) {
    using namespace custos::probe;
    if (cfg.server_count < 1 || cfg.server_count > dns_max_servers) {
        broken("server count out of range");
    }
    for (std::uint32_t i = 0; i < cfg.server_count; ++i) {
        auto f = cfg.servers[i].ss_family;
        if ((f == AF_INET && cfg.server_len[i] != sizeof(sockaddr_in)) ||
            (f == AF_INET6 && cfg.server_len[i] != sizeof(sockaddr_in6)) ||
            (f != AF_INET && f != AF_INET6)) {
            broken("a server address that is not IPv4/IPv6");
        }
    }
    if (cfg.attempt_timeout.count() <= 0 || cfg.attempt_timeout.count() > 30000) {
        broken("attempt timeout out of range");
    }
}

void check_hosts(const custos::probe::resolver_config& cfg, std::string_view text) {
    using namespace custos::probe;
    if (cfg.host_count > dns_max_hosts ||
        (cfg.hosts_dropped > 0 && cfg.host_count != dns_max_hosts)) {
        broken("host count out of range");
    }
    for (std::uint32_t i = 0; i < cfg.host_count; ++i) {
        const dns_host_entry& e = cfg.hosts[i];
        if (!nul_terminated(e.name, sizeof e.name) || e.name[0] == '\0') {
            broken("a host name not NUL-terminated or empty");
        }
        if (text.find(e.name) == std::string_view::npos) {
            broken("a host name that is not in the text");
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace custos::probe;
    if (size < 1) {
        return 0;
    }
    std::uint8_t which = data[0] % 3;
    ++data;
    --size;
    if (which == 0) {
        if (size < 4) {
            return 0;
        }
        static constexpr std::string_view names[] = {"a", "broker.lan", "www.example.com",
                                                     "x.y.z.w"};
        auto id = static_cast<std::uint16_t>(data[0] << 8 | data[1]);
        std::uint16_t qtype = (data[2] & 1) != 0 ? dns_type_aaaa : dns_type_a;
        std::string_view name = names[data[3] % 4];
        data += 4;
        size -= 4;
        // An exact-size copy, so a read past the message is an ASan report.
        std::unique_ptr<std::uint8_t[]> msg(new std::uint8_t[size == 0 ? 1 : size]);
        std::memcpy(msg.get(), data, size);
        sockaddr_storage out{};
        socklen_t out_len = 0;
        dns_verdict v = parse_dns_response(size == 0 ? nullptr : msg.get(), size, id, name, qtype,
                                           53, out, out_len);
        if (v == dns_verdict::address) {
            bool ok = (qtype == dns_type_a && out.ss_family == AF_INET &&
                       out_len == sizeof(sockaddr_in)) ||
                      (qtype == dns_type_aaaa && out.ss_family == AF_INET6 &&
                       out_len == sizeof(sockaddr_in6));
            if (!ok || size < 12 + 4 + 4) {
                broken("an address of the wrong family, or from too short a message");
            }
        } else if (out_len != 0) {
            broken("wrote an address without the address verdict");
        }
        if (v != dns_verdict::mismatch && (size < 12 || ((data[0] << 8) | data[1]) != id)) {
            broken("accepted a message with another id or no header");
        }
        return 0;
    }
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto cfg = std::make_unique<resolver_config>();
    if (which == 1) {
        parse_resolv_conf(text, *cfg);
        check_config(*cfg);
    } else {
        parse_hosts(text, *cfg);
        check_hosts(*cfg, text);
    }
    return 0;
}
