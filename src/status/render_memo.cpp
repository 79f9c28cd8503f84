// The text memo (render.hpp's text_memo): its room, and memo_ops's
// replay of a kept text and keeping of a rendered one.
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "status/render_detail.hpp"

namespace custos::status {

using detail::secs_into;
using detail::sv;

bool memo_ops::replay(text_memo& m, std::uint32_t slot, std::uint32_t seq, text_out& o,
                      const render_context& c) noexcept {
    const text_memo::entry& e = m.entries_[slot];
    const bool wall_known = c.wall_now_ns != 0;
    if (e.epoch != m.epoch_ || e.seq != seq || e.wall_known != wall_known) {
        return false;
    }
    if (wall_known) {
        const std::int64_t off = c.wall_now_ns - c.now_ns;
        if (off < e.lo || off >= e.hi) {
            return false;
        }
    }
    const char* t = m.pool_ + e.at;
    std::size_t from = 0;
    for (std::uint8_t h = 0; h < e.holes; ++h) {
        o.put(sv(t + from, e.hole_pos[h] - from));
        char b[32];
        o.put(sv(b, secs_into(b, value_of(e.hole_kind[h], e.hole_at[h], c))));
        from = e.hole_pos[h];
    }
    o.put(sv(t + from, e.len - from));
    ++m.counters_.hits;
    return true;
}

void memo_ops::reset(text_memo& m) noexcept {
    ++m.counters_.resets;
    m.used_ = 0;
    m.live_ = 0;
    if (++m.epoch_ == 0) {
        // Wrapped: no entry may keep an epoch that could come back.
        for (std::uint32_t i = 0; i < m.services_ + m.probes_; ++i) {
            m.entries_[i].epoch = 0;
        }
        m.epoch_ = 1;
    }
}

void memo_ops::end(text_memo& m, std::uint32_t slot, std::uint32_t seq, const text_out& o,
                   std::size_t start, const render_context& c) noexcept {
    text_memo::capture& k = m.cap_now_;
    k.on = false;
    ++m.counters_.misses;
    text_memo::entry& e = m.entries_[slot];
    if (e.epoch == m.epoch_) {
        m.live_ -= e.len;
        e.epoch = 0;
    }
    if (o.overflowed() || k.bad || (seq & 1) != 0) {
        return;
    }
    std::size_t holes = 0;
    for (std::uint8_t h = 0; h < k.holes; ++h) {
        holes += k.end[h] - k.start[h];
    }
    const std::size_t n = o.size() - start - holes;
    if (n > UINT16_MAX) {
        ++m.counters_.uncached;
        return;
    }
    if (m.used_ + n > m.cap_ && m.live_ * 2 <= m.cap_) {
        reset(m);
    }
    if (m.used_ + n > m.cap_) {
        ++m.counters_.uncached;
        return;
    }
    // The text less the holes' values, and where each was.
    const char* src = o.view().data() + start;
    char* dst = m.pool_ + m.used_;
    std::size_t from = 0; // in the rendered item
    std::size_t to = 0;   // in the kept text
    for (std::uint8_t h = 0; h < k.holes; ++h) {
        const std::size_t cut = k.start[h] - start;
        std::memcpy(dst + to, src + from, cut - from);
        to += cut - from;
        e.hole_pos[h] = static_cast<std::uint16_t>(to);
        e.hole_at[h] = k.at[h];
        e.hole_kind[h] = k.kind[h];
        from = k.end[h] - start;
    }
    std::memcpy(dst + to, src + from, o.size() - start - from);
    e.holes = k.holes;
    e.lo = k.lo;
    e.hi = k.hi;
    e.seq = seq;
    e.wall_known = c.wall_now_ns != 0;
    e.at = static_cast<std::uint32_t>(m.used_);
    e.len = static_cast<std::uint16_t>(n);
    e.epoch = m.epoch_;
    m.used_ += n;
    m.live_ += n;
}

std::size_t text_memo::footprint(std::uint32_t services, std::uint32_t probes) noexcept {
    const std::size_t n = std::size_t{services} + probes;
    if (n == 0) {
        return 0;
    }
    return sizeof(entry) * n + alignof(entry) - 1 + services * service_text + probes * probe_text;
}

Result<void> text_memo::init(arena& mem, std::uint32_t services, std::uint32_t probes) noexcept {
    const std::size_t n = std::size_t{services} + probes;
    if (n == 0) {
        return {};
    }
    // The entries zeroed (epoch 0: empty); the pool not, so its pages stay
    // out of the resident set until texts are kept there.
    auto* entries = mem.make_array<entry>(n);
    auto* pool =
        static_cast<char*>(mem.take_unzeroed(services * service_text + probes * probe_text, 1));
    if (entries == nullptr || pool == nullptr) {
        return fail(Reason::out_of_memory, ENOMEM, "status text memo");
    }
    entries_ = entries;
    pool_ = pool;
    services_ = services;
    probes_ = probes;
    cap_ = services * service_text + probes * probe_text;
    return {};
}

} // namespace custos::status
