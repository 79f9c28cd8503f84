// HTTP/1.1 request parsing and response heads (http.hpp). Stub until the
// parser lands.
#include "control/http.hpp"

namespace custos::control {

std::string_view method_name(method) noexcept {
    return "OTHER";
}

parse_status parse_request(std::string_view, request&, const parse_limits&) noexcept {
    return parse_status::bad_request;
}

int http_status(parse_status) noexcept {
    return 400;
}

query_value query_param(std::string_view, std::string_view, char*, std::size_t) noexcept {
    return {};
}

bool split_path(std::string_view, std::string_view, std::string_view&, std::string_view&) noexcept {
    return false;
}

std::string_view reason_phrase(int) noexcept {
    return "Unknown";
}

bool write_head(text_out&, int, std::string_view, std::int64_t, bool, std::string_view) noexcept {
    return false;
}

bool write_chunk_size(text_out&, std::size_t) noexcept {
    return false;
}

} // namespace custos::control
