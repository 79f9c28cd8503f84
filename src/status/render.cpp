// The renderers (render.hpp). Stub until they land.
#include "status/render.hpp"

namespace custos::status {

std::size_t code_index(int) noexcept {
    return 0;
}

std::string_view code_label(std::size_t) noexcept {
    return "200";
}

void document::begin(doc kind, const render_context& ctx, std::uint32_t index) noexcept {
    kind_ = kind;
    ctx_ = &ctx;
    index_ = index;
    step_ = 0;
    item_ = 0;
    first_ = true;
    done_ = false;
}

bool document::fill(text_out&) noexcept {
    done_ = true;
    return true;
}

bool render_all(doc kind, const render_context& ctx, text_out& out, std::uint32_t index) noexcept {
    document d;
    d.begin(kind, ctx, index);
    return d.fill(out) && !out.overflowed();
}

int health_http_status(const HealthStatus& h) noexcept {
    return h.health == Health::ok || h.health == Health::degraded ? 200 : 503;
}

void put_time(text_out& out, std::int64_t, const render_context&) noexcept {
    out.put("null");
}

} // namespace custos::status
