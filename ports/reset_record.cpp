// The reset record (reset_record.hpp): its text, its file and what the
// next boot makes of it.
//
// The parser is strict: the magic line, then every field exactly once and
// in the order format_record() writes them (state, boot_id, wall_ns,
// reason, subject, message, counters, recent), then the crc line, last,
// ending with a newline. Each line is bounded (a text field by its
// capacity, a number by its digits), nothing else is accepted (no blank
// line, no control character, no unknown field), and the whole file by
// reset_record_max_bytes. A field without a value is its name alone
// ("subject"). Nothing here allocates; buffers live on the stack.
#include "ports/reset_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "ports/watchdog.hpp"

namespace custos::ports {

namespace {

constexpr std::string_view magic_line = "custos-watchdog 1";
// A state_file path (and its ".tmp" twin, and its directory) is built in
// a buffer of this size on the stack.
constexpr std::size_t path_buffer = 1024;

std::uint32_t crc32(std::string_view s) noexcept {
    std::uint32_t c = 0xffffffffu;
    for (char ch : s) {
        c ^= static_cast<std::uint8_t>(ch);
        for (int k = 0; k < 8; ++k) {
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
        }
    }
    return c ^ 0xffffffffu;
}

// Appends to a fixed buffer; counts what did not fit.
struct out_text {
    char* buf;
    std::size_t cap;
    std::size_t len = 0;

    void put(char c) noexcept {
        if (len < cap) {
            buf[len] = c;
        }
        ++len;
    }
    void put(std::string_view s) noexcept {
        for (char c : s) {
            put(c);
        }
    }
    // Text as one line: control characters become spaces.
    void put_line_text(std::string_view s) noexcept {
        for (char c : s) {
            put(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
        }
    }
    void put_u64(std::uint64_t v) noexcept {
        char d[24];
        int n = 0;
        do {
            d[n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (n > 0) {
            put(d[--n]);
        }
    }
    void put_i64(std::int64_t v) noexcept {
        if (v < 0) {
            put('-');
            put_u64(static_cast<std::uint64_t>(-(v + 1)) + 1);
        } else {
            put_u64(static_cast<std::uint64_t>(v));
        }
    }
    void field(std::string_view name, std::string_view value) noexcept {
        put(name);
        if (!value.empty()) {
            put(' ');
            put_line_text(value);
        }
        put('\n');
    }
};

tl::unexpected<Error> corrupt(std::string_view what) noexcept {
    return fail(Reason::reset_record_corrupt, 0, what);
}

// "name" alone, or "name VALUE": the value (empty for the first).
bool take_field(std::string_view line, std::string_view name, std::string_view& value) noexcept {
    if (line == name) {
        value = {};
        return true;
    }
    if (line.size() > name.size() + 1 && line.substr(0, name.size()) == name &&
        line[name.size()] == ' ') {
        value = line.substr(name.size() + 1);
        return true;
    }
    return false;
}

bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
    if (s.empty() || s.size() > 20) {
        return false;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    out = v;
    return true;
}

bool parse_i64(std::string_view s, std::int64_t& out) noexcept {
    bool neg = !s.empty() && s.front() == '-';
    if (neg) {
        s.remove_prefix(1);
    }
    std::uint64_t v = 0;
    if (!parse_u64(s, v)) {
        return false;
    }
    const std::uint64_t limit = neg ? std::uint64_t(INT64_MAX) + 1 : std::uint64_t(INT64_MAX);
    if (v > limit) {
        return false;
    }
    out = neg ? (v == limit ? INT64_MIN : -static_cast<std::int64_t>(v))
              : static_cast<std::int64_t>(v);
    return true;
}

// Splits the next space-separated token off `s`.
std::string_view next_token(std::string_view& s) noexcept {
    const std::size_t sp = s.find(' ');
    std::string_view t = s.substr(0, sp);
    s = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
    return t;
}

bool clean_text(std::string_view s, std::size_t cap) noexcept {
    if (s.size() > cap) {
        return false;
    }
    for (char c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

Reason reason_from_id(std::string_view id) noexcept {
    for (std::size_t i = 0; i < reason_count; ++i) {
        const auto r = static_cast<Reason>(i);
        if (reason_id(r) == id) {
            return r;
        }
    }
    return Reason::unknown;
}

void append_recent(reset_record& r, std::int64_t t) noexcept {
    if (r.recent_count == reset_record_recent) {
        for (std::size_t i = 1; i < reset_record_recent; ++i) {
            r.recent[i - 1] = r.recent[i];
        }
        r.recent_count = reset_record_recent - 1;
    }
    r.recent[r.recent_count++] = t;
}

void clear_recent(reset_record& r) noexcept {
    for (auto& t : r.recent) {
        t = 0;
    }
    r.recent_count = 0;
}

} // namespace

std::string_view record_state_name(record_state s) noexcept {
    switch (s) {
    case record_state::running:
        return "running";
    case record_state::starving:
        return "starving";
    case record_state::orderly:
        return "orderly";
    }
    return "unknown";
}

std::size_t format_record(const reset_record& r, char* buf, std::size_t len) noexcept {
    // The whole text is built first: the crc covers it, and the caller's
    // buffer may be too small (then it gets a NUL-terminated prefix).
    char text[reset_record_max_bytes + 64];
    out_text o{text, sizeof text};
    o.put(magic_line);
    o.put('\n');
    o.field("state", record_state_name(r.state));
    o.field("boot_id", r.boot_id);
    o.put("wall_ns ");
    o.put_i64(r.wall_ns);
    o.put('\n');
    o.field("reason", reason_id(r.reason));
    o.field("subject", r.subject);
    o.field("message", r.message);
    const std::uint64_t counters[6] = {r.counters.boots,      r.counters.orderly,
                                       r.counters.starved,    r.counters.watchdog,
                                       r.counters.unreported, r.counters.restarted};
    o.put("counters");
    for (std::uint64_t c : counters) {
        o.put(' ');
        o.put_u64(c);
    }
    o.put('\n');
    o.put("recent");
    const std::uint32_t n =
        r.recent_count < reset_record_recent ? r.recent_count : std::uint32_t(reset_record_recent);
    for (std::uint32_t i = 0; i < n; ++i) {
        o.put(' ');
        o.put_i64(r.recent[i]);
    }
    o.put('\n');
    // Every field is bounded, so this always fits (static limits above).
    const std::size_t body = o.len < sizeof text ? o.len : sizeof text;
    char crc[16];
    std::snprintf(crc, sizeof crc, "%08x", static_cast<unsigned>(crc32({text, body})));
    o.put("crc ");
    o.put(std::string_view(crc, 8));
    o.put('\n');
    const std::size_t total = o.len;
    if (len > 0) {
        const std::size_t have = total < sizeof text ? total : sizeof text;
        const std::size_t n_copy = have < len - 1 ? have : len - 1;
        std::memcpy(buf, text, n_copy);
        buf[n_copy] = '\0';
    }
    return total;
}

Result<reset_record> parse_record(std::string_view text) noexcept {
    if (text.size() > reset_record_max_bytes) {
        return corrupt("size");
    }
    if (text.empty() || text.back() != '\n') {
        return corrupt("truncated");
    }
    if (text.substr(0, magic_line.size() + 1) != "custos-watchdog 1\n") {
        return corrupt("magic");
    }
    // The crc line is the last one.
    const std::size_t last = text.rfind('\n', text.size() - 2);
    const std::string_view crc_line = text.substr(last + 1, text.size() - last - 2);
    std::string_view crc_text;
    std::uint32_t want = 0;
    if (!take_field(crc_line, "crc", crc_text) || crc_text.size() != 8) {
        return corrupt("crc");
    }
    for (char c : crc_text) {
        std::uint32_t d = 0;
        if (c >= '0' && c <= '9') {
            d = static_cast<std::uint32_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = static_cast<std::uint32_t>(c - 'a' + 10);
        } else {
            return corrupt("crc");
        }
        want = want << 4 | d;
    }
    if (crc32(text.substr(0, last + 1)) != want) {
        return corrupt("crc");
    }

    reset_record r;
    std::string_view rest = text.substr(magic_line.size() + 1, last + 1 - magic_line.size() - 1);
    static constexpr std::string_view names[] = {"state",   "boot_id", "wall_ns",  "reason",
                                                 "subject", "message", "counters", "recent"};
    int line_no = 1;
    char where[16];
    for (std::string_view name : names) {
        ++line_no;
        std::snprintf(where, sizeof where, "line %d", line_no);
        const std::size_t nl = rest.find('\n');
        if (nl == std::string_view::npos) {
            return corrupt(where);
        }
        const std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
        std::string_view v;
        if (!take_field(line, name, v) || !clean_text(v, reset_record_max_bytes)) {
            return corrupt(where);
        }
        if (name == "state") {
            if (v == "running") {
                r.state = record_state::running;
            } else if (v == "starving") {
                r.state = record_state::starving;
            } else if (v == "orderly") {
                r.state = record_state::orderly;
            } else {
                return corrupt(where);
            }
        } else if (name == "boot_id") {
            if (v.size() > decltype(r.boot_id)::capacity) {
                return corrupt(where);
            }
            r.boot_id = v;
        } else if (name == "wall_ns") {
            if (!parse_i64(v, r.wall_ns)) {
                return corrupt(where);
            }
        } else if (name == "reason") {
            if (v.empty() || v.size() > 63) {
                return corrupt(where);
            }
            r.reason = reason_from_id(v);
        } else if (name == "subject" || name == "message") {
            if (v.size() > watchdog_text_capacity) {
                return corrupt(where);
            }
            (name == "subject" ? r.subject : r.message) = v;
        } else if (name == "counters") {
            std::uint64_t* c[6] = {&r.counters.boots,      &r.counters.orderly,
                                   &r.counters.starved,    &r.counters.watchdog,
                                   &r.counters.unreported, &r.counters.restarted};
            for (std::uint64_t* p : c) {
                if (!parse_u64(next_token(v), *p)) {
                    return corrupt(where);
                }
            }
            if (!v.empty()) {
                return corrupt(where);
            }
        } else { // recent
            while (!v.empty()) {
                if (r.recent_count == reset_record_recent ||
                    !parse_i64(next_token(v), r.recent[r.recent_count])) {
                    return corrupt(where);
                }
                ++r.recent_count;
            }
        }
    }
    if (!rest.empty()) {
        std::snprintf(where, sizeof where, "line %d", line_no + 1);
        return corrupt(where);
    }
    return r;
}

Result<reset_record> read_record(const char* path) noexcept {
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(Reason::reset_record_corrupt, errno, path);
    }
    // One byte more than the longest record: a longer file is damaged.
    char buf[reset_record_max_bytes + 1];
    std::size_t got = 0;
    int err = 0;
    while (got < sizeof buf) {
        ssize_t n = ::read(fd, buf + got, sizeof buf - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (err != 0) {
        return fail(Reason::reset_record_corrupt, err, path);
    }
    return parse_record(std::string_view(buf, got));
}

Result<void> write_record(const char* path, const reset_record& r) noexcept {
    auto unwritable = [path](int err) { return fail(Reason::reset_record_unwritable, err, path); };
    char text[reset_record_max_bytes + 1];
    const std::size_t len = format_record(r, text, sizeof text);
    if (len >= sizeof text) {
        return unwritable(EOVERFLOW);
    }
    char tmp[path_buffer];
    const int pn = std::snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (pn < 0 || static_cast<std::size_t>(pn) >= sizeof tmp) {
        return unwritable(ENAMETOOLONG);
    }
    int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return unwritable(errno);
    }
    int err = 0;
    std::size_t done = 0;
    while (done < len) {
        ssize_t n = ::write(fd, text + done, len - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    if (err == 0 && ::fsync(fd) != 0) {
        err = errno;
    }
    if (::close(fd) != 0 && err == 0 && errno != EINTR) {
        err = errno;
    }
    if (err == 0 && ::rename(tmp, path) != 0) {
        err = errno;
    }
    if (err != 0) {
        ::unlink(tmp);
        return unwritable(err);
    }
    // The rename is durable once the directory is: fsync it. A filesystem
    // that cannot fsync a directory (EINVAL) has nothing more to give.
    const char* slash = std::strrchr(path, '/');
    if (slash == nullptr) {
        std::memcpy(tmp, ".", 2);
    } else {
        const std::size_t n = slash == path ? 1 : static_cast<std::size_t>(slash - path);
        std::memcpy(tmp, path, n);
        tmp[n] = '\0';
    }
    int dfd = ::open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return unwritable(errno);
    }
    if (::fsync(dfd) != 0 && errno != EINVAL) {
        err = errno;
    }
    ::close(dfd);
    if (err != 0) {
        return unwritable(err);
    }
    return {};
}

boot_verdict classify_boot(const Result<reset_record>& prev, std::string_view boot_id,
                           std::uint32_t boot_status, std::int64_t wall_now_ns,
                           std::uint32_t safe_mode_boots, std::int64_t window_ns) noexcept {
    boot_verdict v;
    v.previous.boot_status = boot_status;
    reset_record& n = v.next;
    n.state = record_state::running;
    n.boot_id = boot_id;
    n.wall_ns = wall_now_ns;
    n.reason = Reason::runtime_start;

    if (!prev) {
        // Missing (ENOENT): the first boot recorded. Anything else: damaged
        // or unreadable, and the counters start anew either way.
        v.corrupt = prev.error().sys_errno() != ENOENT;
        v.previous.cls = ResetClass::unknown;
        n.counters.boots = 1;
    } else {
        const reset_record& p = *prev;
        v.previous.reason = p.reason;
        v.previous.subject = p.subject;
        v.previous.message = p.message;
        v.previous.wall_ns = p.wall_ns;
        v.previous.boot_id = p.boot_id;
        n.counters = p.counters;
        for (std::uint32_t i = 0; i < p.recent_count && i < reset_record_recent; ++i) {
            n.recent[i] = p.recent[i];
        }
        n.recent_count = p.recent_count < reset_record_recent ? p.recent_count
                                                              : std::uint32_t(reset_record_recent);
        const bool same_boot = !boot_id.empty() && p.boot_id == boot_id;
        if (same_boot) {
            // No reset in between: custos was restarted (or stopped in
            // order and started again). Not a boot.
            if (p.state == record_state::orderly) {
                v.previous.cls = ResetClass::orderly;
                ++n.counters.orderly;
                clear_recent(n);
            } else {
                v.previous.cls = ResetClass::restarted;
                ++n.counters.restarted;
            }
        } else {
            ++n.counters.boots;
            switch (p.state) {
            case record_state::orderly:
                v.previous.cls = ResetClass::orderly;
                ++n.counters.orderly;
                clear_recent(n);
                break;
            case record_state::starving:
                v.previous.cls = ResetClass::starved;
                ++n.counters.starved;
                append_recent(n, wall_now_ns);
                break;
            case record_state::running:
                if ((boot_status & wdiof_cardreset) != 0) {
                    v.previous.cls = ResetClass::watchdog;
                    ++n.counters.watchdog;
                    append_recent(n, wall_now_ns);
                } else {
                    v.previous.cls = ResetClass::unreported;
                    ++n.counters.unreported;
                }
                break;
            }
        }
    }

    if (safe_mode_boots > 0) {
        std::uint32_t streak = 0;
        for (std::uint32_t i = 0; i < n.recent_count; ++i) {
            const std::int64_t t = n.recent[i];
            // A time after now: the clock stepped back; count it.
            if (t >= wall_now_ns || wall_now_ns - t <= window_ns) {
                ++streak;
            }
        }
        v.streak = streak;
        v.safe_mode = streak >= safe_mode_boots;
    }
    return v;
}

FixedText<36> read_boot_id() noexcept {
    char buf[64];
    int fd = ::open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {};
    }
    ssize_t n;
    do {
        n = ::read(fd, buf, sizeof buf - 1);
    } while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) {
        return {};
    }
    std::string_view s(buf, static_cast<std::size_t>(n));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.remove_suffix(1);
    }
    if (s.size() > 36) {
        return {};
    }
    return FixedText<36>(s);
}

Result<std::uint32_t> read_sysfs_boot_status(std::string_view sysfs_root) noexcept {
    constexpr std::string_view attr = "/class/watchdog/watchdog0/bootstatus";
    char path[256];
    if (sysfs_root.size() + attr.size() >= sizeof path) {
        return fail(Reason::watchdog_unavailable, ENAMETOOLONG, sysfs_root);
    }
    std::memcpy(path, sysfs_root.data(), sysfs_root.size());
    std::memcpy(path + sysfs_root.size(), attr.data(), attr.size());
    path[sysfs_root.size() + attr.size()] = '\0';
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(Reason::watchdog_unavailable, errno, "bootstatus");
    }
    char buf[32];
    ssize_t n;
    do {
        n = ::read(fd, buf, sizeof buf);
    } while (n < 0 && errno == EINTR);
    const int err = errno;
    ::close(fd);
    if (n < 0) {
        return fail(Reason::watchdog_unavailable, err, "bootstatus");
    }
    // "%u\n" (watchdog_dev.c bootstatus_show).
    std::uint64_t v = 0;
    ssize_t i = 0;
    for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
        v = v * 10 + static_cast<std::uint64_t>(buf[i] - '0');
        if (v > 0xffffffffU) {
            break;
        }
    }
    if (i == 0 || v > 0xffffffffU || (i < n && buf[i] != '\n')) {
        return fail(Reason::watchdog_unavailable, EINVAL, "bootstatus");
    }
    return static_cast<std::uint32_t>(v);
}

} // namespace custos::ports
