#include "capture/framer.hpp"

#include <cstring>

#include "status/json.hpp"

namespace custos::capture {

std::string_view stream_name(stream_id s) noexcept {
    switch (s) {
    case stream_id::out:
        return "stdout";
    case stream_id::err:
        return "stderr";
    }
    return "stdout";
}

std::size_t put_time(char* b, const stamp& at) noexcept {
    if (at.trusted) {
        status::wall_into(b, at.wall_ns);
        return status::wall_size;
    }
    const std::int64_t ns = at.mono_ns < 0 ? 0 : at.mono_ns;
    const auto ms = static_cast<std::uint64_t>(ns / 1'000'000);
    std::uint64_t secs = ms / 1000;
    char digits[20];
    std::size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + secs % 10);
        secs /= 10;
    } while (secs != 0);
    std::size_t k = 0;
    b[k++] = '+';
    while (n > 0) {
        b[k++] = digits[--n];
    }
    b[k++] = '.';
    status::digits(b + k, static_cast<std::uint32_t>(ms % 1000), 3);
    return k + 3;
}

void framer::bind(char* buf, stream_id s) noexcept {
    buf_ = buf;
    stream_ = s;
    len_ = 0;
    splits_ = 0;
    open_ = false;
    cr_ = false;
}

void framer::emit(line_out out) noexcept {
    // The prefix goes right before the text, so the line is one run of
    // bytes without a copy of the text.
    char t[status::wall_size];
    const std::size_t tn = put_time(t, start_);
    const std::string_view name = stream_name(stream_);
    const std::size_t pn = tn + 1 + name.size() + 1;
    char* p = buf_ + max_prefix - pn;
    std::memcpy(p, t, tn);
    p[tn] = ' ';
    std::memcpy(p + tn + 1, name.data(), name.size());
    p[pn - 1] = ' ';
    buf_[max_prefix + len_] = '\n';
    if (out.fn != nullptr) {
        out.fn(out.ctx, p, pn + len_ + 1);
    }
    len_ = 0;
    open_ = false;
}

void framer::put(const char* p, std::size_t n, const stamp& at, line_out out) noexcept {
    while (n > 0) {
        if (len_ == max_line_text) {
            // A byte past a full line that is not its '\n': cut here.
            ++splits_;
            emit(out);
        }
        if (!open_) {
            start_ = at;
            open_ = true;
        }
        const std::size_t room = max_line_text - len_;
        const std::size_t take = n < room ? n : room;
        std::memcpy(buf_ + max_prefix + len_, p, take);
        len_ += take;
        p += take;
        n -= take;
    }
}

// A held '\r' that turned out not to end a line: it is text.
void framer::put_cr(const stamp& at, line_out out) noexcept {
    if (cr_) {
        cr_ = false;
        put("\r", 1, at, out);
    }
}

void framer::feed(const char* data, std::size_t len, const stamp& at, line_out out) noexcept {
    if (buf_ == nullptr) {
        return;
    }
    const char* p = data;
    const char* const end = data + len;
    while (p < end) {
        const auto* nl =
            static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (nl != nullptr) {
            std::size_t n = static_cast<std::size_t>(nl - p);
            if (n == 0) {
                cr_ = false; // a held '\r' right before this '\n': dropped
            } else {
                if (p[n - 1] == '\r') {
                    --n;
                }
                put_cr(at, out); // a held '\r' before other bytes: kept
                put(p, n, at, out);
            }
            if (!open_) {
                start_ = at;
                open_ = true;
            }
            emit(out);
            p = nl + 1;
            continue;
        }
        std::size_t n = static_cast<std::size_t>(end - p);
        put_cr(at, out);
        if (p[n - 1] == '\r') {
            // Held: dropped if the next chunk starts with '\n'.
            put(p, n - 1, at, out);
            if (!open_) {
                start_ = at;
                open_ = true;
            }
            cr_ = true;
        } else {
            put(p, n, at, out);
        }
        p = end;
    }
}

void framer::flush(const stamp& at, line_out out) noexcept {
    if (buf_ == nullptr) {
        return;
    }
    put_cr(at, out);
    if (open_) {
        emit(out);
    }
}

} // namespace custos::capture
