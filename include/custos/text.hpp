// FixedText<N>: a string of at most N bytes stored inline, for the text
// fields of status records (ServiceStatus, ProbeStatus).
//
// Why not std::string_view: a status record is a copy that may be read on
// any thread, long after the runtime's own text has changed. A view would
// point into reactor state; a FixedText owns its bytes, so a copy stays
// valid and unchanged for as long as the copy lives. It is trivially
// copyable (the status snapshot copies records word by word), allocates
// nothing, and is always NUL-terminated (c_str()).
//
// It reads like a string_view: it converts to one implicitly, compares
// with one, and has size()/data()/empty(), so code written against the
// string_view fields (`s.name == "netd"`, `std::string_view n = s.name;`,
// `std::string(s.status_text)`) keeps compiling. Text longer than N is
// truncated to N bytes on assignment (the runtime's own limits keep every
// field within its capacity; see the constants beside each field).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace custos {

// Longest service or probe name a table accepts (1-31 characters): the
// capacity of every status record's name.
inline constexpr std::size_t name_capacity = 31;

template <std::size_t N>
class FixedText {
    static_assert(N > 0 && N < 65535, "FixedText capacity must be 1..65534 bytes");
    using size_type = std::conditional_t<(N < 256), std::uint8_t, std::uint16_t>;

public:
    static constexpr std::size_t capacity = N;

    constexpr FixedText() noexcept = default;
    // Copies `s`, truncated to N bytes. Implicit, like assigning a view.
    // (No const char* constructor: `text == "x"` would then be ambiguous.)
    constexpr FixedText(std::string_view s) noexcept { assign(s); }

    // Copies `s`, truncated to N bytes; the bytes after it are zeroed, so
    // two equal texts are equal byte for byte.
    constexpr void assign(std::string_view s) noexcept {
        std::size_t n = s.size() < N ? s.size() : N;
        for (std::size_t i = 0; i < n; ++i) {
            data_[i] = s[i];
        }
        for (std::size_t i = n; i <= N; ++i) {
            data_[i] = '\0';
        }
        size_ = static_cast<size_type>(n);
    }

    constexpr std::string_view view() const noexcept { return {data_, size_}; }
    constexpr operator std::string_view() const noexcept { return view(); }
    constexpr const char* data() const noexcept { return data_; }
    constexpr const char* c_str() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }

    friend constexpr bool operator==(const FixedText& a, const FixedText& b) noexcept {
        return a.view() == b.view();
    }
    friend constexpr bool operator==(const FixedText& a, std::string_view b) noexcept {
        return a.view() == b;
    }

private:
    char data_[N + 1] = {};
    size_type size_ = 0;
};

} // namespace custos
