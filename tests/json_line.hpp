// A small strict JSON reader for the event log's lines, shared by the
// event log's tests: one object of scalars and objects a line, every
// string checked (escapes, control characters, UTF-8), no allocation-free
// pretence (tests only).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "doctest.hpp"

namespace custos_test {

struct member {
    std::string key;
    std::string raw;  // the value's text as written
    std::string text; // a string value, decoded
    bool is_string = false;
};

struct json_reader {
    std::string_view s;
    std::size_t i = 0;
    bool ok = true;

    void ws() {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) {
            ++i;
        }
    }
    bool eat(char c) {
        ws();
        if (i < s.size() && s[i] == c) {
            ++i;
            return true;
        }
        return false;
    }
    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xc0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        } else {
            out += static_cast<char>(0xe0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (cp & 0x3f));
        }
    }
    // A string; false on a raw control character, a bad escape, malformed
    // UTF-8 or no closing quote.
    bool string(std::string& out) {
        if (!eat('"')) {
            return false;
        }
        while (i < s.size()) {
            const auto u = static_cast<unsigned char>(s[i]);
            if (u == '"') {
                ++i;
                return true;
            }
            if (u < 0x20) {
                return false;
            }
            if (u == '\\') {
                if (++i >= s.size()) {
                    return false;
                }
                const char e = s[i++];
                switch (e) {
                case '"':
                case '\\':
                case '/':
                    out += e;
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'u': {
                    if (i + 4 > s.size()) {
                        return false;
                    }
                    unsigned cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        const char h = s[i++];
                        cp <<= 4;
                        if (h >= '0' && h <= '9') {
                            cp |= static_cast<unsigned>(h - '0');
                        } else if (h >= 'a' && h <= 'f') {
                            cp |= static_cast<unsigned>(h - 'a' + 10);
                        } else if (h >= 'A' && h <= 'F') {
                            cp |= static_cast<unsigned>(h - 'A' + 10);
                        } else {
                            return false;
                        }
                    }
                    put_utf8(out, cp);
                    break;
                }
                default:
                    return false;
                }
                continue;
            }
            std::size_t n = 1;
            if (u >= 0x80) {
                n = u >= 0xf0 && u <= 0xf4   ? 4
                    : u >= 0xe0 && u <= 0xef ? 3
                    : u >= 0xc2 && u <= 0xdf ? 2
                                             : 0;
                if (n == 0 || i + n > s.size()) {
                    return false;
                }
                for (std::size_t k = 1; k < n; ++k) {
                    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) {
                        return false;
                    }
                }
            }
            out.append(s.substr(i, n));
            i += n;
        }
        return false;
    }
    bool value(member& m) {
        ws();
        const std::size_t start = i;
        if (i < s.size() && s[i] == '"') {
            m.is_string = true;
            if (!string(m.text)) {
                return false;
            }
        } else if (i < s.size() && s[i] == '{') {
            std::vector<member> inner;
            if (!object(inner)) {
                return false;
            }
        } else if (s.substr(i, 4) == "true" || s.substr(i, 4) == "null") {
            i += 4;
        } else if (s.substr(i, 5) == "false") {
            i += 5;
        } else {
            if (i < s.size() && s[i] == '-') {
                ++i;
            }
            const std::size_t d = i;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                ++i;
            }
            if (i == d || (s[d] == '0' && i - d > 1)) {
                return false;
            }
        }
        m.raw = std::string(s.substr(start, i - start));
        return true;
    }
    bool object(std::vector<member>& out) {
        if (!eat('{')) {
            return false;
        }
        if (eat('}')) {
            return true;
        }
        do {
            member m;
            ws();
            if (!string(m.key) || !eat(':') || !value(m)) {
                return false;
            }
            out.push_back(std::move(m));
        } while (eat(','));
        return eat('}');
    }
};

// The members of one line (which must be one object and its '\n'); empty
// and a failed check when it is not valid JSON.
inline std::vector<member> parse_line(std::string_view line) {
    std::vector<member> out;
    REQUIRE(!line.empty());
    REQUIRE(line.back() == '\n');
    json_reader r{line.substr(0, line.size() - 1)};
    const bool ok = r.object(out) && r.i == r.s.size();
    CHECK_MESSAGE(ok, "not one JSON object: " << std::string(line));
    if (!ok) {
        out.clear();
    }
    return out;
}

inline std::vector<std::string> keys_of(const std::vector<member>& m) {
    std::vector<std::string> k;
    for (const auto& x : m) {
        k.push_back(x.key);
    }
    return k;
}

inline const member* find(const std::vector<member>& m, std::string_view key) {
    for (const auto& x : m) {
        if (x.key == key) {
            return &x;
        }
    }
    return nullptr;
}

} // namespace custos_test
