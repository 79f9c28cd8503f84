#include "custosd/ini.hpp"

#include <cstring>

namespace custos::cfg::ini {

namespace {

constexpr bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

// A UTF-8 byte order mark, as some Windows editors write: not text, and it
// would glue itself to the first key or header invisibly.
std::size_t bom_size(const char* text, std::size_t size) {
    return size >= 3 && std::memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

} // namespace

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

lexer::lexer(char* text, std::size_t size, const char* file) noexcept
    : p_(text + bom_size(text, size)), end_(text + size), file_(file != nullptr ? file : "") {}

bool lexer::next(item& out) noexcept {
    while (p_ < end_) {
        ++line_;
        char* b = p_;
        auto* nl = static_cast<char*>(std::memchr(b, '\n', static_cast<std::size_t>(end_ - b)));
        char* e = nl != nullptr ? nl : end_;
        p_ = nl != nullptr ? nl + 1 : end_;
        if (e > b && e[-1] == '\r') {
            --e;
        }
        out = item{};
        out.file = file_;
        out.line = line_;
        out.line_begin = b;
        auto len = static_cast<std::size_t>(e - b);
        std::string_view t = trim({b, len});
        out.text = t;
        if (len > max_line_bytes) {
            out.kind = token::too_long;
            out.number = len;
        } else if (const void* nul = std::memchr(b, '\0', len); nul != nullptr) {
            out.kind = token::nul;
            out.number = static_cast<std::size_t>(static_cast<const char*>(nul) - b) + 1;
        } else if (t.empty() || t.front() == '#' || t.front() == ';') {
            continue;
        } else if (t.front() == '[') {
            if (t.back() == ']') {
                out.kind = token::header;
                section_ = trim(t.substr(1, t.size() - 2));
                out.section = section_;
                return true;
            }
            out.kind = token::bad_header;
        } else {
            std::size_t eq = t.find('=');
            if (eq == std::string_view::npos) {
                out.kind = token::no_equals;
            } else {
                out.key = trim(t.substr(0, eq));
                out.value = trim(t.substr(eq + 1));
                out.kind = out.key.empty() ? token::no_key : token::pair;
            }
        }
        // A header that could not be read still ends the section before it.
        if (out.kind != token::pair && out.kind != token::no_equals && out.kind != token::no_key &&
            !t.empty() && t.front() == '[') {
            section_ = {};
        }
        out.section = section_;
        return true;
    }
    return false;
}

std::size_t count_headers(const char* text, std::size_t size) noexcept {
    const std::size_t skip = bom_size(text, size);
    std::size_t n = 0;
    bool at_start = true;
    for (std::size_t i = skip; i < size; ++i) {
        char c = text[i];
        if (c == '\n') {
            at_start = true;
        } else if (at_start && !is_blank(c)) {
            n += c == '[' ? 1 : 0;
            at_start = false;
        }
    }
    return n;
}

} // namespace custos::cfg::ini
