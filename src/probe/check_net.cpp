// The check engine's network kinds: tcp, http and unix (see check.hpp for
// their steps).
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "probe/check.hpp"
#include "probe/check_def.hpp"

namespace custos::probe {

namespace {

// A failure of connect(): the reason an operator can act on.
Reason connect_reason(int err) noexcept {
    switch (err) {
    case ECONNREFUSED:
        return Reason::probe_connect_refused;
    case ETIMEDOUT:
        return Reason::probe_timeout;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EADDRNOTAVAIL:
        return Reason::probe_unreachable;
    case ENOENT: // a Unix socket path that does not exist
        return Reason::probe_connect_refused;
    default:
        return Reason::probe_connect_failed;
    }
}

} // namespace

void engine::fail_io(check& c, const char* what, int err) noexcept {
    const char* label = c.def_->label;
    if (err == ETIMEDOUT) {
        c.result.fail(Reason::probe_timeout, err, "%s %s: no answer in time", what, label);
    } else if (err == ECANCELED) {
        c.result.fail(Reason::probe_timeout, err, "%s %s: cancelled", what, label);
    } else if (c.net_step_ == net_stage::connect || c.net_step_ == net_stage::socket) {
        c.result.fail(c.net_step_ == net_stage::socket ? Reason::probe_connect_failed
                                                       : connect_reason(err),
                      err, "%s %s: %s", what, label, errno_name(err));
    } else {
        c.result.fail(Reason::probe_io_failed, err, "%s %s: %s", what, label, errno_name(err));
    }
}

void engine::close_then_finish(check& c) noexcept {
    if (c.fd_ < 0) {
        finish(c);
        return;
    }
    c.net_step_ = net_stage::close;
    int fd = c.fd_;
    c.fd_ = -1;
    r_->close(c.op_, fd);
}

void engine::on_dns(dns_lookup& l) noexcept {
    auto& c = *static_cast<check*>(l.user);
    engine& e = *c.owner_;
    if (l.reason != Reason::unknown) {
        if (l.sys_errno == ECANCELED) {
            c.result.fail(Reason::probe_timeout, ECANCELED, "resolve %s: cancelled", c.def_->label);
        } else {
            c.result.fail(Reason::probe_dns_failed, l.sys_errno, "%s", l.detail);
        }
        e.finish(c);
        return;
    }
    if (c.cancelled) {
        c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", c.def_->label);
        e.finish(c);
        return;
    }
    std::memcpy(&c.addr_, &l.addr, sizeof c.addr_);
    c.addr_len_ = l.addr_len;
    c.net_step_ = net_stage::socket;
    e.r_->socket(c.op_, c.addr_.ss_family, SOCK_STREAM, 0);
}

void engine::connect_step(check& c) noexcept {
    c.net_step_ = net_stage::connect;
    r_->connect(c.op_, c.fd_, reinterpret_cast<const sockaddr*>(&c.addr_), c.addr_len_,
                c.deadline_);
}

void engine::net_step(check& c, std::int32_t result) noexcept {
    const check_def& d = *c.def_;
    // Fix (helper checks): a cancel() that came while this op's completion
    // was already queued could not stop the op (reactor::cancel() returns
    // false then), so the check went on to its next step and ran into its
    // deadline (a composite waited for a cancelled member's full timeout).
    // Stop before issuing any further step instead; close still runs.
    // (the socket step checks this itself; a tcp or unix connect that succeeded
    // has nothing left to do but close.)
    if (c.cancelled && result >= 0 &&
        (c.net_step_ == net_stage::send || c.net_step_ == net_stage::recv ||
         (c.net_step_ == net_stage::connect && d.kind == ProbeKind::http))) {
        c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", d.label);
        close_then_finish(c);
        return;
    }
    switch (c.net_step_) {
    case net_stage::resolve:
        return; // through on_dns
    case net_stage::socket:
        if (result < 0) {
            fail_io(c, "socket for", -result);
            finish(c);
            return;
        }
        c.fd_ = result;
        if (c.cancelled) {
            c.result.fail(Reason::probe_timeout, ECANCELED, "%s: cancelled", d.label);
            close_then_finish(c);
            return;
        }
        connect_step(c);
        return;
    case net_stage::connect:
        if (result < 0) {
            fail_io(c, "connect", -result);
            close_then_finish(c);
            return;
        }
        if (d.kind != ProbeKind::http) {
            close_then_finish(c); // connected: passed
            return;
        }
        c.net_step_ = net_stage::send;
        c.len_ = 0;
        r_->send(c.op_, c.fd_, d.request, d.request_len, 0, c.deadline_);
        return;
    case net_stage::send:
        if (result <= 0) {
            fail_io(c, "GET", result == 0 ? EPIPE : -result);
            close_then_finish(c);
            return;
        }
        c.len_ += static_cast<std::uint32_t>(result);
        if (c.len_ < d.request_len) {
            r_->send(c.op_, c.fd_, d.request + c.len_, d.request_len - c.len_, 0, c.deadline_);
            return;
        }
        c.net_step_ = net_stage::recv;
        c.len_ = 0;
        r_->recv(c.op_, c.fd_, c.buf_, http_buffer, 0, c.deadline_);
        return;
    case net_stage::recv: {
        if (result < 0) {
            fail_io(c, "GET", -result);
            close_then_finish(c);
            return;
        }
        c.len_ += static_cast<std::uint32_t>(result);
        const bool eof = result == 0;
        const bool full = c.len_ >= http_buffer;
        http_head h = parse_http_head(c.buf_, c.len_, eof, full);
        switch (h.verdict) {
        case http_verdict::need_more:
            r_->recv(c.op_, c.fd_, c.buf_ + c.len_, http_buffer - c.len_, 0, c.deadline_);
            return;
        case http_verdict::malformed:
            c.result.fail(Reason::probe_http_malformed, 0, "GET %s: %s", d.label, h.problem);
            break;
        case http_verdict::complete:
            if (!http_status_accepted(h.status, d.expect)) {
                c.result.fail(Reason::probe_http_status, 0, "GET %s: status %d", d.label, h.status);
            }
            break;
        }
        close_then_finish(c);
        return;
    }
    case net_stage::close:
        finish(c); // close errors change nothing: the descriptor is gone
        return;
    }
}

} // namespace custos::probe
