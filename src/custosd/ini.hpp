// custosd's INI lexer: one pass over a config text, yielding one item per
// line that means something (a header, a key = value, or a line it cannot
// read), with its line number and the section it sits in. It knows the
// syntax of config.hpp and nothing of the section kinds or their keys.
//
// Rules, in the order they are applied to each line:
//   - lines end at '\n'; a '\r' before it is dropped (CRLF); a last line
//     without '\n' counts; a UTF-8 byte order mark at the start of the
//     text is skipped (line numbers do not change);
//   - a line over max_line_bytes (its line end excluded): too_long;
//   - a NUL byte: nul, with its column;
//   - blanks (space, tab) around the line are trimmed; an empty line, or one
//     whose first character is '#' or ';', is skipped (values may hold '#');
//   - '[' first: a header when ']' is last (section = the text between,
//     trimmed), else bad_header;
//   - otherwise key = value split at the first '=' and trimmed: no_equals
//     without one, no_key when the key is empty.
//
// Memory: none. The lexer walks the caller's text and every view in an item
// points into it, so the caller may rewrite a value in place (exec's
// unescaping) once it has the item: the lexer never reads a line twice.
#pragma once

#include <cstddef>
#include <string_view>

namespace custos::cfg::ini {

// Bytes of one line, its line end excluded.
inline constexpr std::size_t max_line_bytes = 4096;

enum class token : unsigned char {
    header,     // [section]
    pair,       // key = value
    bad_header, // '[' first but not ']' last
    no_equals,  // neither a header nor key = value
    no_key,     // "= value"
    too_long,   // over max_line_bytes: nothing else read
    nul,        // a NUL byte: nothing else read
};

struct item {
    token kind = token::header;
    // The file name given to the lexer ("" when none); lines count from 1.
    const char* file = "";
    unsigned line = 0;
    // header: the name between the brackets; otherwise the section of the
    // last header before this line ("" before any, and after a header that
    // could not be read).
    std::string_view section;
    // pair only.
    std::string_view key;
    std::string_view value;
    // The line, trimmed (for too_long and nul, as far as it goes).
    std::string_view text;
    // The line's first byte, for columns.
    const char* line_begin = nullptr;
    // too_long: the line's length; nul: the NUL's column (from 1).
    std::size_t number = 0;
};

class lexer {
public:
    // `text` must outlive the lexer and the items; `file` names it in items.
    lexer(char* text, std::size_t size, const char* file = "") noexcept;

    // The next item; false at the end of the text.
    bool next(item& out) noexcept;

private:
    char* p_;
    char* end_;
    const char* file_;
    unsigned line_ = 0;
    std::string_view section_;
};

// Upper bound on the sections of `text`: lines whose first non-blank
// character is '[' (after the byte order mark, as the lexer sees them).
std::size_t count_headers(const char* text, std::size_t size) noexcept;

// Blanks (space, tab) off both ends.
std::string_view trim(std::string_view s) noexcept;

} // namespace custos::cfg::ini
