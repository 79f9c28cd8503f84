// A control connection's slot (server::conn) and the layout of its buffers,
// shared by the server's sources (server.cpp, routes.cpp, actions.cpp,
// responses.cpp) and private to them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "control/http.hpp"
#include "control/server.hpp"
#include "core/time.hpp"
#include "io/reactor.hpp"
#include "status/render.hpp"

namespace custos::control {

namespace server_detail {

inline constexpr std::uint32_t out_size = 16384;
// Room before the body for the response head and a chunk-size line, and
// after it for the chunk's CRLF and the last chunk.
inline constexpr std::uint32_t head_room = 512;
inline constexpr std::uint32_t tail_room = 8;
inline constexpr std::size_t param_cap = 64;

inline mono_time deadline_after(const io::reactor& r, Duration d) noexcept {
    return r.now() + std::chrono::duration_cast<nanos>(d);
}

} // namespace server_detail

struct server::conn {
    enum class phase : std::uint8_t { free, reading, waiting, sending, closing };
    enum class wait_kind : std::uint8_t { none, start, stop, restart, check, feed };

    server* owner = nullptr;
    int fd = -1;
    phase state = phase::free;
    io::op rx;
    io::op tx;
    io::timer wait_timer;
    char* in = nullptr;
    std::uint32_t in_len = 0;
    char* out = nullptr;
    std::uint32_t send_at = 0;  // next byte to send
    std::uint32_t send_end = 0; // end of what is to send
    request req;
    bool keep_alive = true;
    bool head_only = false;
    bool chunked = false;
    bool doc_active = false;
    bool tcp = false;           // from the read-only TCP listener
    bool continue_sent = false; // 100 Continue answered this request's Expect
    bool interim = false;       // what is being sent is the 100 Continue
    std::uint32_t requests = 0;
    mono_time request_start{};
    status::document doc;
    // ?wait
    wait_kind waiting = wait_kind::none;
    std::uint32_t subject = 0;
    std::int64_t before = 0;
    // The peer.
    pid_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
};

} // namespace custos::control
