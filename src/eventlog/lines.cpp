#include "eventlog/lines.hpp"

#include <cstring>
#include <string_view>

#include "core/text_out.hpp"

namespace custos::eventlog {

namespace {

// The raw value of top-level member `key` in a record line: a string's
// contents (between its quotes, still escaped), a number, true/false, or
// an object's text with its braces. Empty when absent. A match within
// `skip` (the custom fields object, whose keys are the appliance's: a
// field "to" or "message" is not the record's) does not count.
std::string_view member(std::string_view line, std::string_view key,
                        std::string_view skip = {}) noexcept {
    char pat[40];
    if (key.size() + 3 > sizeof pat) {
        return {};
    }
    pat[0] = '"';
    std::memcpy(pat + 1, key.data(), key.size());
    pat[key.size() + 1] = '"';
    pat[key.size() + 2] = ':';
    const std::string_view p(pat, key.size() + 3);
    // Members are found where a key can start: after '{' or ','. A
    // string's contents never hold an unescaped '"', so `,"key":` inside
    // one would need its quotes escaped: no false match.
    std::size_t at = 0;
    for (;;) {
        at = line.find(p, at);
        if (at == std::string_view::npos) {
            return {};
        }
        const bool nested = !skip.empty() && line.data() + at >= skip.data() &&
                            line.data() + at < skip.data() + skip.size();
        if (at > 0 && (line[at - 1] == ',' || line[at - 1] == '{') && !nested) {
            break;
        }
        at += p.size();
    }
    std::size_t v = at + p.size();
    if (v >= line.size()) {
        return {};
    }
    if (line[v] == '"') {
        std::size_t e = v + 1;
        while (e < line.size() && line[e] != '"') {
            e += line[e] == '\\' ? 2 : 1;
        }
        return e <= line.size() ? line.substr(v + 1, e - v - 1) : std::string_view{};
    }
    if (line[v] == '{') {
        int depth = 0;
        bool in_str = false;
        for (std::size_t e = v; e < line.size(); ++e) {
            const char c = line[e];
            if (in_str) {
                if (c == '\\') {
                    ++e;
                } else if (c == '"') {
                    in_str = false;
                }
            } else if (c == '"') {
                in_str = true;
            } else if (c == '{') {
                ++depth;
            } else if (c == '}' && --depth == 0) {
                return line.substr(v, e - v + 1);
            }
        }
        return {};
    }
    std::size_t e = v;
    while (e < line.size() && line[e] != ',' && line[e] != '}') {
        ++e;
    }
    return line.substr(v, e - v);
}

void put_unescaped(text_out& o, std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\')) {
            ++i;
        }
        o.put(s[i]);
    }
}

} // namespace

std::size_t lines::to_text(const char* line, std::size_t len, char* out, std::size_t cap) noexcept {
    std::string_view l(line, len);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) {
        l.remove_suffix(1);
    }
    text_out o(out, cap);
    // The fields object first: the record's own members are looked up
    // outside it.
    const std::string_view fields = member(l, "fields");
    auto top = [l, fields](std::string_view key) { return member(l, key, fields); };
    o.put('#').put(top("seq"));
    const std::string_view ts = top("ts");
    if (!ts.empty()) {
        o.put(' ').put(ts);
    } else {
        // mono_ns as seconds with milliseconds.
        const std::string_view mono = top("mono_ns");
        std::uint64_t ns = 0;
        for (char c : mono) {
            if (c >= '0' && c <= '9') {
                ns = ns * 10 + static_cast<std::uint64_t>(c - '0');
            }
        }
        o.put(" +").put_u64(ns / 1000000000).put('.');
        const std::uint64_t ms = ns / 1000000 % 1000;
        o.put(static_cast<char>('0' + ms / 100)).put(static_cast<char>('0' + ms / 10 % 10));
        o.put(static_cast<char>('0' + ms % 10));
    }
    if (top("clock_trusted") == "false") {
        o.put('?');
    }
    o.put(' ').put(top("level")).put(' ').put(top("kind"));
    const std::string_view name = top("name");
    if (!name.empty()) {
        o.put(' ');
        put_unescaped(o, name);
    }
    const std::string_view from = top("from");
    const std::string_view to = top("to");
    if (!from.empty() || !to.empty()) {
        o.put(' ').put(from).put(" -> ").put(to);
    }
    const std::string_view reason = top("reason");
    const std::string_view message = top("message");
    if (!reason.empty()) {
        o.put(' ').put(reason);
    }
    if (!message.empty()) {
        o.put(reason.empty() ? " " : ": ");
        put_unescaped(o, message);
    }
    const std::string_view count = top("count");
    if (!count.empty()) {
        o.put(" (x").put(count).put(" since ");
        const std::string_view first = top("first_ts");
        o.put(first.empty() ? std::string_view("boot") : first).put(')');
    }
    if (!fields.empty()) {
        o.put(' ').put(fields);
    }
    o.put('\n');
    return o.overflowed() ? 0 : o.size();
}

bool lines::seq_of(const char* line, std::size_t len, std::uint64_t& out) noexcept {
    static constexpr char lead[] = "{\"seq\":";
    constexpr std::size_t n = sizeof lead - 1;
    if (len <= n || std::memcmp(line, lead, n) != 0) {
        return false;
    }
    std::uint64_t v = 0;
    std::size_t i = n;
    for (; i < len && i < n + 20 && line[i] >= '0' && line[i] <= '9'; ++i) {
        v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
    }
    if (i == n) {
        return false;
    }
    out = v;
    return true;
}

void lines::drop_oldest(std::size_t need) noexcept {
    // Cut at least a quarter (and at least `need`), at a line's end.
    std::size_t want = cap_ / 4 > need ? cap_ / 4 : need;
    std::size_t cut = 0;
    while (cut < len_ && cut < want) {
        const void* nl = std::memchr(buf_ + cut, '\n', len_ - cut);
        const std::size_t end =
            nl == nullptr ? len_
                          : static_cast<std::size_t>(static_cast<const char*>(nl) - buf_) + 1;
        cut = end;
        ++evicted_;
    }
    std::memmove(buf_, buf_ + cut, len_ - cut);
    len_ -= cut;
    std::uint64_t s = next_;
    if (len_ != 0) {
        seq_of(buf_, len_, s);
    }
    first_ = s;
}

void lines::append(const char* line, std::size_t len, std::uint64_t seq) noexcept {
    if (len == 0 || len > cap_) {
        ++too_long_;
        return;
    }
    if (len_ + len > cap_) {
        drop_oldest(len_ + len - cap_);
    }
    std::memcpy(buf_ + len_, line, len);
    if (len_ == 0) {
        first_ = seq;
    }
    len_ += len;
    next_ = seq + 1;
}

std::size_t lines::copy_since(std::uint64_t since, std::uint32_t limit, char* out, std::size_t cap,
                              std::uint64_t& next) const noexcept {
    next = since > first_ ? since : first_;
    std::size_t at = 0;
    std::size_t copied = 0;
    std::uint32_t count = 0;
    while (at < len_ && count < limit) {
        const void* nl = std::memchr(buf_ + at, '\n', len_ - at);
        const std::size_t end =
            nl == nullptr ? len_
                          : static_cast<std::size_t>(static_cast<const char*>(nl) - buf_) + 1;
        std::uint64_t s = 0;
        if (seq_of(buf_ + at, end - at, s) && s >= since) {
            if (copied + (end - at) > cap) {
                break;
            }
            std::memcpy(out + copied, buf_ + at, end - at);
            copied += end - at;
            ++count;
            next = s + 1;
        }
        at = end;
    }
    return copied;
}

} // namespace custos::eventlog
