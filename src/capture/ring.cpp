#include "capture/ring.hpp"

#include <cerrno>
#include <cstring>

#include "capture/framer.hpp"

namespace custos::capture {

Result<void> ring::reserve(arena& mem, std::size_t capacity) noexcept {
    buf_ = nullptr;
    cap_ = 0;
    start_ = 0;
    used_ = 0;
    first_ = 1;
    next_ = 1;
    evicted_bytes_ = 0;
    if (capacity < max_line) {
        return fail(Error(Reason::invalid_argument, 0, "capture: output_ring_bytes")
                        .with_resolution("Set output_ring_bytes to at least 4129, so the "
                                         "longest captured line fits"));
    }
    // Always written before read: untouched pages stay out of the RSS.
    auto* p = static_cast<char*>(mem.take_unzeroed(capacity, 64));
    if (p == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "capture ring");
    }
    buf_ = p;
    cap_ = capacity;
    return {};
}

std::size_t ring::find_nl(std::size_t from) const noexcept {
    // At most two runs of bytes: up to the buffer's end, then from its start.
    while (from < used_) {
        const std::size_t phys = (start_ + from) % cap_;
        std::size_t run = cap_ - phys;
        if (run > used_ - from) {
            run = used_ - from;
        }
        const void* hit = std::memchr(buf_ + phys, '\n', run);
        if (hit != nullptr) {
            return from + static_cast<std::size_t>(static_cast<const char*>(hit) - (buf_ + phys));
        }
        from += run;
    }
    return used_;
}

std::size_t ring::rfind_nl(std::size_t before) const noexcept {
    while (before > 0) {
        --before;
        if (at(before) == '\n') {
            return before;
        }
    }
    return SIZE_MAX;
}

void ring::copy_out(std::size_t from, std::size_t n, char* out) const noexcept {
    while (n > 0) {
        const std::size_t phys = (start_ + from) % cap_;
        std::size_t run = cap_ - phys;
        if (run > n) {
            run = n;
        }
        std::memcpy(out, buf_ + phys, run);
        out += run;
        from += run;
        n -= run;
    }
}

std::uint64_t ring::push(const char* line, std::size_t len) noexcept {
    if (buf_ == nullptr || len == 0 || len > cap_) {
        return 0;
    }
    while (cap_ - used_ < len) {
        // The oldest whole line goes.
        const std::size_t end = find_nl(0);
        const std::size_t n = end < used_ ? end + 1 : used_;
        start_ = (start_ + n) % cap_;
        used_ -= n;
        evicted_bytes_ += n;
        ++first_;
    }
    std::size_t at_phys = (start_ + used_) % cap_;
    std::size_t left = len;
    while (left > 0) {
        std::size_t run = cap_ - at_phys;
        if (run > left) {
            run = left;
        }
        std::memcpy(buf_ + at_phys, line, run);
        line += run;
        left -= run;
        at_phys = (at_phys + run) % cap_;
    }
    used_ += len;
    return next_++;
}

read_result ring::tail(std::uint64_t n, char* out, std::size_t cap) const noexcept {
    read_result r;
    r.next = next_;
    r.first = next_;
    std::size_t begin = used_; // logical start of the lines taken
    while (r.lines < n && begin > 0) {
        const std::size_t nl = rfind_nl(begin - 1); // the '\n' ending the line before
        const std::size_t s = nl == SIZE_MAX ? 0 : nl + 1;
        if (used_ - s > cap) {
            break;
        }
        begin = s;
        ++r.lines;
    }
    r.bytes = used_ - begin;
    if (r.bytes > 0) {
        copy_out(begin, r.bytes, out);
    }
    r.first = next_ - r.lines;
    return r;
}

read_result ring::since(std::uint64_t from, char* out, std::size_t cap) const noexcept {
    read_result r;
    if (from == 0) {
        from = 1; // numbers start at 1: nothing before it was lost
    }
    if (from >= next_) {
        r.first = next_;
        r.next = next_;
        return r;
    }
    if (from < first_) {
        r.lost = first_ - from;
        from = first_;
    }
    // Skip to line `from`, then take whole lines while they fit.
    std::size_t pos = 0;
    for (std::uint64_t k = first_; k < from; ++k) {
        pos = find_nl(pos) + 1;
    }
    r.first = from;
    std::size_t end = pos;
    std::uint64_t line = from;
    while (line < next_) {
        const std::size_t e = find_nl(end) + 1;
        if (e - pos > cap) {
            break;
        }
        end = e;
        ++line;
    }
    r.lines = line - from;
    r.bytes = end - pos;
    if (r.bytes > 0) {
        copy_out(pos, r.bytes, out);
    }
    r.next = line;
    return r;
}

} // namespace custos::capture
