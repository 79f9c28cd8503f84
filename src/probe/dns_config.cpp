// The resolver's configuration: /etc/resolv.conf and /etc/hosts parsed
// (fuzzed), read at init, and the address literals both contain.
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "probe/dns.hpp"
#include "probe/dns_detail.hpp"

namespace custos::probe {

namespace dns_detail {

bool parse_address(std::string_view text, sockaddr_storage& out, socklen_t& out_len) noexcept {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof buf || text.find('\0') != std::string_view::npos) {
        return false;
    }
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    if (text.find(':') == std::string_view::npos) {
        sockaddr_in sin{};
        if (inet_pton(AF_INET, buf, &sin.sin_addr) != 1) {
            return false;
        }
        sin.sin_family = AF_INET;
        out = {};
        std::memcpy(&out, &sin, sizeof sin);
        out_len = sizeof sin;
        return true;
    }
    std::uint32_t scope = 0;
    if (char* pct = std::strchr(buf, '%')) {
        *pct = '\0';
        const char* s = pct + 1;
        if (*s == '\0') {
            return false;
        }
        for (; *s != '\0'; ++s) {
            if (*s < '0' || *s > '9' || scope > (UINT32_MAX - 9) / 10) {
                return false; // interface names need if_nametoindex: not here
            }
            scope = scope * 10 + static_cast<std::uint32_t>(*s - '0');
        }
    }
    sockaddr_in6 sin6{};
    if (inet_pton(AF_INET6, buf, &sin6.sin6_addr) != 1) {
        return false;
    }
    sin6.sin6_family = AF_INET6;
    sin6.sin6_scope_id = scope;
    out = {};
    std::memcpy(&out, &sin6, sizeof sin6);
    out_len = sizeof sin6;
    return true;
}

void set_port(sockaddr_storage& sa, std::uint16_t port) noexcept {
    if (sa.ss_family == AF_INET) {
        reinterpret_cast<sockaddr_in*>(&sa)->sin_port = htons(port);
    } else if (sa.ss_family == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&sa)->sin6_port = htons(port);
    }
}
} // namespace dns_detail

namespace {

using dns_detail::parse_address;
using dns_detail::set_port;

constexpr std::uint16_t dns_port = 53;

bool printable(std::string_view s) noexcept {
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f) {
            return false;
        }
    }
    return true;
}

bool is_blank(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Splits a line into blank-separated words, comments ('#', and ';' where
// `semicolon_comments`) cut off first.
struct words {
    std::string_view rest;

    words(std::string_view line, bool semicolon_comments) noexcept : rest(line) {
        for (std::size_t i = 0; i < rest.size(); ++i) {
            if (rest[i] == '#' || (semicolon_comments && rest[i] == ';')) {
                rest = rest.substr(0, i);
                break;
            }
        }
    }
    // The next word, empty at the end.
    std::string_view next() noexcept {
        std::size_t i = 0;
        while (i < rest.size() && is_blank(rest[i])) {
            ++i;
        }
        std::size_t j = i;
        while (j < rest.size() && !is_blank(rest[j])) {
            ++j;
        }
        std::string_view w = rest.substr(i, j - i);
        rest = rest.substr(j);
        return w;
    }
};

void reset_servers(resolver_config& out) noexcept {
    out.server_count = 0;
}

void resolv_conf_line(std::string_view line, resolver_config& out) noexcept {
    words ws(line, true);
    std::string_view key = ws.next();
    if (key == "nameserver") {
        if (out.server_count >= dns_max_servers) {
            return; // glibc keeps the first MAXNS too
        }
        sockaddr_storage sa;
        socklen_t sa_len = 0;
        if (!parse_address(ws.next(), sa, sa_len)) {
            return;
        }
        set_port(sa, dns_port);
        out.servers[out.server_count] = sa;
        out.server_len[out.server_count] = sa_len;
        ++out.server_count;
    } else if (key == "options") {
        for (std::string_view opt = ws.next(); !opt.empty(); opt = ws.next()) {
            if (opt.substr(0, 8) != "timeout:" || opt.size() == 8 || opt.size() > 8 + 4) {
                continue;
            }
            unsigned v = 0;
            bool ok = true;
            for (char c : opt.substr(8)) {
                ok = ok && c >= '0' && c <= '9';
                v = v * 10 + static_cast<unsigned>(c - '0');
            }
            if (ok && v > 0) {
                // glibc's RES_MAXRETRANS caps it at 30 seconds.
                out.attempt_timeout = std::chrono::seconds(v > 30 ? 30 : v);
            }
        }
    }
}

void finish_resolv_conf(resolver_config& out) noexcept {
    if (out.server_count == 0) {
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(dns_port);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        out.servers[0] = {};
        std::memcpy(&out.servers[0], &sin, sizeof sin);
        out.server_len[0] = sizeof sin;
        out.server_count = 1;
    }
}

void reset_hosts(resolver_config& out) noexcept {
    out.host_count = 0;
    out.hosts_dropped = 0;
}

void hosts_line(std::string_view line, resolver_config& out) noexcept {
    words ws(line, false);
    sockaddr_storage sa;
    socklen_t sa_len = 0;
    if (!parse_address(ws.next(), sa, sa_len)) {
        return;
    }
    for (std::string_view name = ws.next(); !name.empty(); name = ws.next()) {
        if (name.size() > dns_max_name || !printable(name)) {
            continue; // could never match a name resolve() accepts
        }
        if (out.host_count >= dns_max_hosts) {
            ++out.hosts_dropped;
            continue;
        }
        dns_host_entry& e = out.hosts[out.host_count++];
        std::memcpy(e.name, name.data(), name.size());
        e.name[name.size()] = '\0';
        e.addr = sa;
        e.addr_len = sa_len;
    }
}

template <class F>
void for_each_line(std::string_view text, resolver_config& out, F line_fn) noexcept {
    while (!text.empty()) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        line_fn(line, out);
        if (nl == std::string_view::npos) {
            break;
        }
        text.remove_prefix(nl + 1);
    }
}

// Feeds the file's lines to line_fn through a fixed buffer; a line longer
// than the buffer is skipped whole. A file that cannot be opened has no lines.
void for_each_file_line(const char* path, resolver_config& out,
                        void (*line_fn)(std::string_view, resolver_config&)) noexcept {
    if (path == nullptr) {
        return;
    }
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    char buf[4096];
    std::size_t have = 0;
    bool skipping = false; // inside a line that did not fit
    for (;;) {
        ssize_t n = ::read(fd, buf + have, sizeof buf - have);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        have += static_cast<std::size_t>(n);
        std::size_t start = 0;
        while (const void* nl = std::memchr(buf + start, '\n', have - start)) {
            std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - buf);
            if (!skipping) {
                line_fn(std::string_view(buf + start, end - start), out);
            }
            skipping = false;
            start = end + 1;
        }
        std::memmove(buf, buf + start, have - start);
        have -= start;
        if (have == sizeof buf) {
            skipping = true;
            have = 0;
        }
    }
    if (have > 0 && !skipping) {
        line_fn(std::string_view(buf, have), out);
    }
    ::close(fd);
}

} // namespace

void parse_resolv_conf(std::string_view text, resolver_config& out) noexcept {
    reset_servers(out);
    for_each_line(text, out, resolv_conf_line);
    finish_resolv_conf(out);
}

void parse_hosts(std::string_view text, resolver_config& out) noexcept {
    reset_hosts(out);
    for_each_line(text, out, hosts_line);
}

void load_system_resolver_config(resolver_config& out, const char* resolv_conf,
                                 const char* hosts) noexcept {
    reset_servers(out);
    for_each_file_line(resolv_conf, out, resolv_conf_line);
    finish_resolv_conf(out);
    reset_hosts(out);
    for_each_file_line(hosts, out, hosts_line);
}

} // namespace custos::probe
