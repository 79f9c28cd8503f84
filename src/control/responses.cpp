// The control plane's responses (server.hpp): a document or a text rendered
// into a connection's buffer, sent while the socket takes it, a chunked
// document's next buffers, and what follows a response.
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "control/http.hpp"
#include "control/server.hpp"
#include "control/server_conn.hpp"
#include "core/assert.hpp"

namespace custos::control {

using server_detail::deadline_after;
using server_detail::head_room;
using server_detail::out_size;
using server_detail::tail_room;

void server::refresh_context() noexcept {
    ctx_->now_ns = to_ns(reactor_->now());
    ctx_->wall_now_ns = status::wall_now_ns();
    ctx_->reactor = &reactor_->stats();
}

// Renders the first buffer of a document and sends it: with Content-Length
// when the whole document fits, else chunked.
void server::reply_doc(conn& c, int code, status::doc kind, std::uint32_t index) noexcept {
    ++counters_.requests;
    ++counters_.by_code[status::code_index(code)];
    refresh_context();
    if (kind == status::doc::metrics) {
        // process_* figures, read now (procfs: no waiting on a peer).
        process_ = {};
        read_process_info(process_);
    }
    c.doc.begin(kind, *ctx_, index);
    text_out body(c.out + head_room, out_size - head_room - tail_room);
    const bool whole = c.doc.fill(body);
    c.chunked = !whole;
    c.doc_active = !whole;
    char head[head_room];
    text_out h(head, sizeof(head));
    const std::string_view type =
        kind == status::doc::metrics                                            ? content_metrics
        : kind == status::doc::health_text || kind == status::doc::service_text ? content_text
        : kind == status::doc::status_tsv                                       ? content_tsv
                                                                                : content_json;
    write_head(h, code, type, whole ? static_cast<std::int64_t>(body.size()) : -1, c.keep_alive);
    std::uint32_t len = static_cast<std::uint32_t>(body.size());
    if (c.head_only) {
        len = 0;
        c.doc_active = false;
        c.chunked = false;
    } else if (c.chunked) {
        write_chunk_size(h, body.size());
        std::memcpy(c.out + head_room + len, chunk_end.data(), chunk_end.size());
        len += static_cast<std::uint32_t>(chunk_end.size());
    }
    CUSTOS_ASSERT(!h.overflowed());
    c.send_at = head_room - static_cast<std::uint32_t>(h.size());
    std::memcpy(c.out + c.send_at, head, h.size());
    c.send_end = head_room + len;
    c.state = conn::phase::sending;
    send_more(c);
}

void server::reply_text(conn& c, int code, std::string_view type, std::string_view body,
                        std::string_view extra_head) noexcept {
    ++counters_.requests;
    ++counters_.by_code[status::code_index(code)];
    text_out o(c.out, out_size);
    write_head(o, code, type, static_cast<std::int64_t>(body.size()), c.keep_alive, extra_head);
    if (!c.head_only) {
        o.put(body);
    }
    c.doc_active = false;
    c.chunked = false;
    c.send_at = 0;
    c.send_end = static_cast<std::uint32_t>(o.size());
    c.state = conn::phase::sending;
    send_more(c);
}

void server::reply_error(conn& c, int code, Reason why, std::string_view message,
                         std::string_view extra_head) noexcept {
    char body[512];
    text_out b(body, sizeof(body));
    b.put("{\"error\":").put_json(reason_id(why)).put(",\"message\":").put_json(message);
    b.put(",\"resolution\":").put_json(Error(why, 0).resolution()).put("}\n");
    reply_text(c, code, content_json, b.view(), extra_head);
}

// What is in the buffer goes out by direct non-blocking send()s while the
// socket takes it, and the next buffer of a chunked document is rendered
// and sent in the same turn: a response that fits the socket's send buffer
// costs no reactor turn of its own. Only when the socket is full does a send
// op (with send_timeout) wait for it. A pipelined request served from
// inside (finish_response -> serve -> reply) sends through the op, so the
// stack never grows with the number of pipelined requests.
void server::send_more(conn& c) noexcept {
    if (sending_inline_) {
        send_op(c);
        return;
    }
    sending_inline_ = true;
    for (;;) {
        if (c.send_at < c.send_end) {
            const ssize_t n = ::send(c.fd, c.out + c.send_at, c.send_end - c.send_at,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                c.send_at += static_cast<std::uint32_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                send_op(c); // the client reads slower than we write: wait for it
            } else {
                close_conn(c); // the client is gone, as a failed send op would say
            }
            break;
        }
        if (!next_piece(c)) {
            break;
        }
    }
    sending_inline_ = false;
}

void server::send_op(conn& c) noexcept {
    reactor_->send(c.tx, c.fd, c.out + c.send_at, c.send_end - c.send_at, MSG_NOSIGNAL,
                   deadline_after(*reactor_, cfg_.send_timeout));
}

void server::on_sent(conn& c, std::int32_t res) noexcept {
    ++callbacks_;
    if (c.state == conn::phase::closing) {
        close_conn(c);
        return;
    }
    if (res <= 0) {
        if (res == -ETIMEDOUT) {
            ++counters_.timeouts; // a client that does not read
        }
        close_conn(c);
        return;
    }
    c.send_at += static_cast<std::uint32_t>(res);
    send_more(c);
}

// The buffer is out: sets up the next one of a chunked document (true), or
// moves on to what follows the response (false).
bool server::next_piece(conn& c) noexcept {
    if (c.interim) {
        c.interim = false; // 100 Continue is out: now the body
        read_more(c);
        return false;
    }
    if (!c.doc_active) {
        finish_response(c);
        return false;
    }
    // The next buffer of a chunked document.
    refresh_context();
    text_out body(c.out + head_room, out_size - head_room - tail_room);
    const bool whole = c.doc.fill(body);
    char line[16];
    text_out l(line, sizeof(line));
    std::uint32_t len = static_cast<std::uint32_t>(body.size());
    if (len > 0) {
        write_chunk_size(l, len);
        std::memcpy(c.out + head_room + len, chunk_end.data(), chunk_end.size());
        len += static_cast<std::uint32_t>(chunk_end.size());
    }
    if (whole) {
        std::memcpy(c.out + head_room + len, last_chunk.data(), last_chunk.size());
        len += static_cast<std::uint32_t>(last_chunk.size());
        c.doc_active = false;
    }
    c.send_at = head_room - static_cast<std::uint32_t>(l.size());
    std::memcpy(c.out + c.send_at, line, l.size());
    c.send_end = head_room + len;
    return true;
}

// The response is out: the next request (pipelined bytes first), or close.
void server::finish_response(conn& c) noexcept {
    if (!c.keep_alive) {
        close_conn(c);
        return;
    }
    const std::uint32_t used = c.req.head_bytes + c.req.content_length;
    const std::uint32_t left = c.in_len > used ? c.in_len - used : 0;
    if (left > 0) {
        std::memmove(c.in, c.in + used, left);
    }
    c.in_len = left;
    c.request_start = reactor_->now();
    if (left > 0) {
        serve(c);
        return;
    }
    read_more(c);
}

} // namespace custos::control
