// text_out: appends text and numbers into a caller's fixed buffer; what the
// control plane's responses and renderers write with.
//
// Owns: nothing (the buffer is the caller's). Never allocates, never writes
// past the buffer: an append that does not fit writes nothing of itself,
// sets overflowed() and leaves size() where it was, so a renderer can check
// once at the end of an item, or take a mark() before it and rewind() to it
// (an item is then either whole or absent).
//
// Numbers are written without locale and without printf: integers in
// decimal, durations and times as seconds with a fixed number of decimals
// ("12.345"). JSON strings are escaped per RFC 8259 (", \, control
// characters as \u00XX; bytes >= 0x80 pass through unchanged, so valid UTF-8
// stays valid). Prometheus label values escape \, " and newline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace custos {

class text_out {
public:
    text_out(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}

    std::size_t size() const noexcept { return len_; }
    std::size_t capacity() const noexcept { return cap_; }
    std::size_t room() const noexcept { return cap_ - len_; }
    bool overflowed() const noexcept { return overflow_; }
    std::string_view view() const noexcept { return {buf_, len_}; }
    char* data() noexcept { return buf_; }

    // A position to rewind to (and whether an append had overflowed then).
    struct mark_t {
        std::size_t len;
        bool overflow;
    };
    mark_t mark() const noexcept { return {len_, overflow_}; }
    void rewind(mark_t m) noexcept {
        len_ = m.len;
        overflow_ = m.overflow;
    }
    void clear() noexcept {
        len_ = 0;
        overflow_ = false;
    }

    text_out& put(std::string_view s) noexcept {
        if (overflow_ || s.size() > room()) {
            overflow_ = true;
            return *this;
        }
        if (!s.empty()) {
            std::memcpy(buf_ + len_, s.data(), s.size());
        }
        len_ += s.size();
        return *this;
    }
    text_out& put(char c) noexcept {
        if (overflow_ || room() == 0) {
            overflow_ = true;
            return *this;
        }
        buf_[len_++] = c;
        return *this;
    }

    // Direct writing, for a renderer's hot path: the next `n` bytes of the
    // buffer, or nullptr when fewer are left (nothing changes then: take
    // the put() path, which overflows as usual). Write at most `n` bytes
    // there, then commit() how many were written.
    char* claim(std::size_t n) noexcept { return overflow_ || n > room() ? nullptr : buf_ + len_; }
    void commit(std::size_t written) noexcept { len_ += written; }

    text_out& put_u64(std::uint64_t v) noexcept {
        char tmp[20];
        std::size_t n = 0;
        do {
            tmp[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        if (overflow_ || n > room()) {
            overflow_ = true;
            return *this;
        }
        while (n > 0) {
            buf_[len_++] = tmp[--n];
        }
        return *this;
    }
    text_out& put_i64(std::int64_t v) noexcept {
        if (v >= 0) {
            return put_u64(static_cast<std::uint64_t>(v));
        }
        auto m = mark();
        put('-');
        put_u64(static_cast<std::uint64_t>(-(v + 1)) + 1);
        if (overflow_) {
            rewind(m);
            overflow_ = true;
        }
        return *this;
    }

    // `ns` nanoseconds as seconds with `decimals` (0-9) digits after the
    // point, truncated toward zero: put_seconds(1'500'000'000, 3) = "1.500".
    text_out& put_seconds(std::int64_t ns, int decimals = 3) noexcept {
        auto m = mark();
        std::uint64_t mag =
            ns < 0 ? static_cast<std::uint64_t>(-(ns + 1)) + 1 : static_cast<std::uint64_t>(ns);
        if (ns < 0) {
            put('-');
        }
        put_u64(mag / 1'000'000'000u);
        if (decimals > 0) {
            put('.');
            std::uint64_t frac = mag % 1'000'000'000u;
            std::uint64_t div = 100'000'000u;
            for (int d = 0; d < decimals && d < 9; ++d) {
                put(static_cast<char>('0' + (frac / div) % 10));
                div /= 10;
            }
        }
        if (overflow_) {
            rewind(m);
            overflow_ = true;
        }
        return *this;
    }

    // "s" with its quotes, escaped for JSON.
    text_out& put_json(std::string_view s) noexcept {
        auto m = mark();
        put('"');
        for (char c : s) {
            auto u = static_cast<unsigned char>(c);
            if (c == '"' || c == '\\') {
                put('\\').put(c);
            } else if (c == '\n') {
                put("\\n");
            } else if (c == '\t') {
                put("\\t");
            } else if (c == '\r') {
                put("\\r");
            } else if (u < 0x20 || u == 0x7f) {
                static constexpr char hex[] = "0123456789abcdef";
                put("\\u00").put(hex[u >> 4]).put(hex[u & 15]);
            } else {
                put(c);
            }
        }
        put('"');
        if (overflow_) {
            rewind(m);
            overflow_ = true;
        }
        return *this;
    }

    // A Prometheus label value (without the quotes): \ " and newline escaped.
    text_out& put_label_value(std::string_view s) noexcept {
        auto m = mark();
        for (char c : s) {
            if (c == '\\' || c == '"') {
                put('\\').put(c);
            } else if (c == '\n') {
                put("\\n");
            } else {
                put(c);
            }
        }
        if (overflow_) {
            rewind(m);
            overflow_ = true;
        }
        return *this;
    }

private:
    char* buf_;
    std::size_t cap_;
    std::size_t len_ = 0;
    bool overflow_ = false;
};

} // namespace custos
