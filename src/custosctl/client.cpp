// custosctl's HTTP client (see client.hpp).
#include "custosctl/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace custos::ctl {

namespace {

// The response: head and body, with one byte to spare.
char buffer[max_response_bytes + 1];

std::int64_t now_ms() noexcept {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<std::int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

[[gnu::format(printf, 4, 5)]] bool fail(request_error& err, failure kind, int e, const char* fmt,
                                        ...) noexcept {
    err.kind = kind;
    err.sys_errno = e;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    return false;
}

constexpr char lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequal(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (lower(a[i]) != lower(b[i])) {
            return false;
        }
    }
    return true;
}

bool icontains(std::string_view hay, std::string_view needle) noexcept {
    for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
        if (iequal(hay.substr(i, needle.size()), needle)) {
            return true;
        }
    }
    return false;
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

// Waits until `fd` is ready for `events` or the deadline passes.
// 1 ready, 0 timed out, -1 error (errno).
int wait_for(int fd, short events, std::int64_t deadline) noexcept {
    while (true) {
        const std::int64_t left = deadline - now_ms();
        if (left <= 0) {
            return 0;
        }
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, left > 60000 ? 60000 : static_cast<int>(left));
        if (n > 0) {
            return 1;
        }
        if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
}

// Connects a non-blocking socket; a full backlog (EAGAIN) is retried
// every 20 ms until the deadline.
bool connect_to(int fd, std::string_view path, std::int64_t deadline, request_error& err) noexcept {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof sa.sun_path) {
        return fail(err, failure::unreachable, ENAMETOOLONG,
                    "the socket path is empty or longer than %zu bytes", sizeof sa.sun_path - 1);
    }
    std::memcpy(sa.sun_path, path.data(), path.size());
    while (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
        const int e = errno;
        if (e == EINTR) {
            continue;
        }
        if (e == EAGAIN && now_ms() < deadline) {
            ::usleep(20000);
            continue;
        }
        if (e == EINPROGRESS) {
            if (wait_for(fd, POLLOUT, deadline) != 1) {
                return fail(err, failure::timeout, ETIMEDOUT, "connect timed out");
            }
            int so = 0;
            socklen_t len = sizeof so;
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
            if (so == 0) {
                return true;
            }
            return fail(err, failure::unreachable, so, "%s", std::strerror(so));
        }
        return fail(err, e == EAGAIN ? failure::timeout : failure::unreachable, e, "%s",
                    std::strerror(e));
    }
    return true;
}

bool send_all(int fd, const char* p, std::size_t n, std::int64_t deadline,
              request_error& err) noexcept {
    while (n > 0) {
        const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= static_cast<std::size_t>(k);
            continue;
        }
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_for(fd, POLLOUT, deadline) != 1) {
                return fail(err, failure::timeout, ETIMEDOUT, "sending the request timed out");
            }
            continue;
        }
        const int e = errno;
        return fail(err, failure::broken, e, "sending the request: %s", std::strerror(e));
    }
    return true;
}

// The head's end ("\r\n\r\n"), from `from`; npos when not there yet.
std::size_t head_end(std::string_view got) noexcept {
    const std::size_t at = got.find("\r\n\r\n");
    return at == std::string_view::npos ? at : at + 4;
}

// Parses the status line and the headers of `head` into `out`; the body
// framing into `length` (-1: none) and `chunked`.
bool parse_head(std::string_view head, response& out, long long& length, bool& chunked,
                request_error& err) noexcept {
    std::size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    // "HTTP/1.1 200 OK"
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ' || line[9] < '1' ||
        line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' || line[11] > '9' ||
        (line.size() > 12 && line[12] != ' ')) {
        return fail(err, failure::malformed, 0, "not an HTTP/1.x response");
    }
    out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    out.reason = line.size() > 13 ? line.substr(13) : std::string_view{};
    length = -1;
    chunked = false;
    std::size_t at = eol + 2;
    while (at < head.size()) {
        eol = head.find("\r\n", at);
        if (eol == std::string_view::npos || eol == at) {
            break;
        }
        line = head.substr(at, eol - at);
        at = eol + 2;
        const std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) {
            return fail(err, failure::malformed, 0, "a response header without ':'");
        }
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequal(name, "content-length")) {
            long long n = 0;
            if (value.empty() || value.size() > 12) {
                return fail(err, failure::malformed, 0, "a bad Content-Length");
            }
            for (char c : value) {
                if (c < '0' || c > '9') {
                    return fail(err, failure::malformed, 0, "a bad Content-Length");
                }
                n = n * 10 + (c - '0');
            }
            length = n;
        } else if (iequal(name, "transfer-encoding")) {
            chunked = icontains(value, "chunked");
        } else if (iequal(name, "content-type")) {
            out.content_type = value;
        } else if (iequal(name, "allow")) {
            out.allow = value;
        } else if (iequal(name, "x-custos-next")) {
            out.next = value;
        } else if (iequal(name, "x-custos-lost")) {
            out.lost = value;
        }
    }
    return true;
}

int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// The chunk size at the start of `line` (extensions after ';' ignored);
// -1 when bad.
long long chunk_size(std::string_view line) noexcept {
    long long n = 0;
    std::size_t digits = 0;
    for (char c : line) {
        const int d = hex_digit(c);
        if (d < 0) {
            break;
        }
        if (++digits > 8) {
            return -1; // over 4 GiB: no response of ours
        }
        n = n * 16 + d;
    }
    if (digits == 0) {
        return -1;
    }
    const std::string_view rest = trim(line.substr(digits));
    return rest.empty() || rest.front() == ';' ? n : -1;
}

} // namespace

chunk_scan scan_chunked(std::string_view b, std::size_t& pos, std::size_t& end) noexcept {
    while (true) {
        const std::size_t eol = b.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            // A chunk-size line is short: a long one is not chunked encoding.
            return b.size() - pos > 64 ? chunk_scan::bad : chunk_scan::need_more;
        }
        const long long n = chunk_size(b.substr(pos, eol - pos));
        if (n < 0) {
            return chunk_scan::bad;
        }
        if (n == 0) {
            // The trailers, if any, then an empty line.
            std::size_t at = eol + 2;
            while (true) {
                const std::size_t e = b.find("\r\n", at);
                if (e == std::string_view::npos) {
                    return chunk_scan::need_more;
                }
                if (e == at) {
                    end = e + 2;
                    return chunk_scan::complete;
                }
                at = e + 2;
            }
        }
        const std::size_t next = eol + 2 + static_cast<std::size_t>(n) + 2;
        if (next > b.size()) {
            return chunk_scan::need_more;
        }
        if (b[next - 2] != '\r' || b[next - 1] != '\n') {
            return chunk_scan::bad;
        }
        pos = next;
    }
}

std::size_t decode_chunked(char* b, std::size_t n) noexcept {
    const std::string_view all(b, n);
    std::size_t r = 0;
    std::size_t w = 0;
    while (r < n) {
        const std::size_t eol = all.find("\r\n", r);
        if (eol == std::string_view::npos) {
            break;
        }
        const long long size = chunk_size(all.substr(r, eol - r));
        if (size <= 0) {
            break;
        }
        const auto s = static_cast<std::size_t>(size);
        if (eol + 2 + s > n) {
            break;
        }
        std::memmove(b + w, b + eol + 2, s);
        w += s;
        r = eol + 2 + s + 2;
    }
    return w;
}

bool exchange(std::string_view socket_path, std::string_view method, std::string_view target,
              std::int64_t timeout_ms, response& out, request_error& err) noexcept {
    out = response{};
    err = request_error{};
    const std::int64_t deadline = now_ms() + timeout_ms;
    char req[1024];
    const int len = std::snprintf(
        req, sizeof req,
        "%.*s %.*s HTTP/1.1\r\nHost: custos\r\nUser-Agent: custosctl\r\nAccept: */*\r\n"
        "Connection: close\r\n%s\r\n",
        static_cast<int>(method.size()), method.data(), static_cast<int>(target.size()),
        target.data(), method == "GET" ? "" : "Content-Length: 0\r\n");
    if (len < 0 || static_cast<std::size_t>(len) >= sizeof req) {
        return fail(err, failure::malformed, 0, "the request is too long");
    }
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        const int e = errno;
        return fail(err, failure::unreachable, e, "socket: %s", std::strerror(e));
    }
    struct closer {
        int fd;
        ~closer() { ::close(fd); }
    } close_it{fd};
    if (!connect_to(fd, socket_path, deadline, err) ||
        !send_all(fd, req, static_cast<std::size_t>(len), deadline, err)) {
        return false;
    }

    std::size_t got = 0;
    std::size_t body_at = 0; // 0: head not complete yet
    long long length = -1;
    bool chunked = false;
    std::size_t scan_pos = 0;
    std::size_t chunked_end = 0;
    bool complete = false;
    bool eof = false;
    while (!complete) {
        if (got == sizeof buffer) {
            return fail(err, failure::too_large, EFBIG, "the response is over %zu MiB",
                        max_response_bytes >> 20);
        }
        const ssize_t k = ::recv(fd, buffer + got, sizeof buffer - got, 0);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                const int w = wait_for(fd, POLLIN, deadline);
                if (w == 0) {
                    return fail(err, failure::timeout, ETIMEDOUT,
                                "no whole response within %lld ms",
                                static_cast<long long>(timeout_ms));
                }
                if (w < 0) {
                    const int e = errno;
                    return fail(err, failure::broken, e, "poll: %s", std::strerror(e));
                }
                continue;
            }
            const int e = errno;
            return fail(err, failure::broken, e, "reading the response: %s", std::strerror(e));
        }
        got += static_cast<std::size_t>(k);
        eof = k == 0;
        const std::string_view all(buffer, got);
        if (body_at == 0) {
            const std::size_t h = head_end(all);
            if (h == std::string_view::npos) {
                if (got > max_head_bytes) {
                    return fail(err, failure::too_large, EFBIG,
                                "the response's head is over %zu KiB", max_head_bytes >> 10);
                }
                if (eof) {
                    return got == 0 ? fail(err, failure::broken, ECONNRESET,
                                           "custosd closed the connection without an answer")
                                    : fail(err, failure::malformed, 0,
                                           "the response ends inside its head");
                }
                continue;
            }
            if (!parse_head(all.substr(0, h), out, length, chunked, err)) {
                return false;
            }
            body_at = h;
            if (length > static_cast<long long>(max_response_bytes)) {
                return fail(err, failure::too_large, EFBIG, "the response is over %zu MiB",
                            max_response_bytes >> 20);
            }
        }
        const std::string_view body = all.substr(body_at);
        if (chunked) {
            const chunk_scan s = scan_chunked(body, scan_pos, chunked_end);
            if (s == chunk_scan::bad) {
                return fail(err, failure::malformed, 0, "a bad chunk in the response's body");
            }
            complete = s == chunk_scan::complete;
        } else if (length >= 0) {
            complete = body.size() >= static_cast<std::size_t>(length);
        }
        if (!complete && eof) {
            if (chunked || length >= 0) {
                return fail(err, failure::broken, 0, "the response was cut short");
            }
            complete = true; // the body ends at EOF
        }
    }
    char* body = buffer + body_at;
    std::size_t n = got - body_at;
    if (chunked) {
        n = decode_chunked(body, chunked_end);
    } else if (length >= 0) {
        n = static_cast<std::size_t>(length);
    }
    out.body = std::string_view(body, n);
    return true;
}

} // namespace custos::ctl
