// What the DNS sources share, private to them: dns_wire.cpp (the message
// format: queries and responses), dns_config.cpp (resolv.conf, hosts and
// address literals) and dns.cpp (the resolver's lookups).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string_view>

namespace custos::probe::dns_detail {

inline std::string_view without_final_dot(std::string_view s) noexcept {
    if (!s.empty() && s.back() == '.') {
        s.remove_suffix(1);
    }
    return s;
}

// Parses an IPv4 or IPv6 literal (IPv6 with an optional numeric %scope) into
// out, port 0. False when `text` is not one.
bool parse_address(std::string_view text, sockaddr_storage& out, socklen_t& out_len) noexcept;
// Sets the port of an AF_INET or AF_INET6 address; others are left alone.
void set_port(sockaddr_storage& sa, std::uint16_t port) noexcept;

} // namespace custos::probe::dns_detail
