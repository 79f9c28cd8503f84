// ASCII-only text helpers for parsers: locale-free (no <cctype>, whose
// answers depend on the C locale and on sign-extended chars), allocation-free.
#pragma once

#include <cstddef>
#include <string_view>

namespace custos {

constexpr bool ascii_digit(char c) noexcept {
    return c >= '0' && c <= '9';
}

constexpr bool ascii_alpha(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

constexpr bool ascii_hex(char c) noexcept {
    return ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Equal ignoring ASCII case ("SIGTERM" and "sigterm", DNS names).
constexpr bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

} // namespace custos
