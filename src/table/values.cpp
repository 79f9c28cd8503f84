#include "table/values.hpp"

#include <sys/un.h>

#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "core/ascii.hpp"

namespace custos::tbl {

namespace {

constexpr bool is_blank(char c) {
    return c == ' ' || c == '\t';
}
constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_blank(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// Keys are short known names; a view is not NUL-terminated, so they are
// printed with a bounded %.*s.
int len(std::string_view s) {
    return static_cast<int>(s.size());
}

struct signal_name {
    const char* name;
    int number;
};

constexpr signal_name signal_names[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

} // namespace

clip::clip(std::string_view s) noexcept {
    std::size_t n = 0;
    std::size_t i = 0;
    for (; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        const bool control = c < 0x20 || c == 0x7f;
        if (n + (control ? 4 : 1) > keep) {
            break;
        }
        if (control) {
            std::snprintf(buf_ + n, 5, "\\x%02x", c);
            n += 4;
        } else {
            buf_[n++] = s[i];
        }
    }
    if (i < s.size()) {
        // Cut inside a UTF-8 sequence: drop its first bytes too.
        if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) {
            while (n > 0 && (static_cast<unsigned char>(buf_[n - 1]) & 0xC0) == 0x80) {
                --n;
            }
            if (n > 0 && (static_cast<unsigned char>(buf_[n - 1]) & 0xC0) == 0xC0) {
                --n;
            }
        }
        std::memcpy(buf_ + n, "...", 3);
        n += 3;
    }
    buf_[n] = '\0';
}

num_status parse_uint(std::string_view s, std::uint64_t max, std::uint64_t& out) noexcept {
    if (s.empty()) {
        return num_status::bad;
    }
    for (char c : s) {
        if (!is_digit(c)) {
            return num_status::bad;
        }
    }
    std::uint64_t v = 0;
    for (char c : s) {
        auto d = static_cast<std::uint64_t>(c - '0');
        if (d > max || v > (max - d) / 10) {
            return num_status::too_big;
        }
        v = v * 10 + d;
    }
    out = v;
    return num_status::ok;
}

num_status parse_size(std::string_view s, std::uint64_t max, std::uint64_t& out) noexcept {
    std::size_t digits = 0;
    while (digits < s.size() && is_digit(s[digits])) {
        ++digits;
    }
    std::string_view unit = s.substr(digits);
    unsigned shift = 0;
    if (!unit.empty()) {
        switch (unit.front()) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        case 't':
        case 'T':
            shift = 40;
            break;
        default:
            return num_status::bad;
        }
        unit.remove_prefix(1);
        if (unit != "" && unit != "B" && unit != "iB") {
            return num_status::bad;
        }
    }
    std::uint64_t n = 0;
    const num_status st = parse_uint(s.substr(0, digits), max >> shift, n);
    if (st != num_status::ok) {
        return st;
    }
    out = n << shift;
    return num_status::ok;
}

num_status parse_x100(std::string_view s, std::uint64_t max_x100, std::uint64_t& out) noexcept {
    std::size_t dot = s.find('.');
    std::string_view whole = s.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    if (dot != std::string_view::npos && (frac.empty() || frac.size() > 2)) {
        return num_status::bad;
    }
    for (char c : frac) {
        if (!is_digit(c)) {
            return num_status::bad;
        }
    }
    std::uint64_t w = 0;
    if (num_status st = parse_uint(whole, max_x100 / 100, w); st != num_status::ok) {
        return st;
    }
    std::uint64_t f = 0;
    if (!frac.empty()) {
        f = static_cast<std::uint64_t>(frac[0] - '0') * 10;
    }
    if (frac.size() == 2) {
        f += static_cast<std::uint64_t>(frac[1] - '0');
    }
    std::uint64_t v = w * 100 + f;
    if (v > max_x100) {
        return num_status::too_big;
    }
    out = v;
    return num_status::ok;
}

dur_status parse_duration(std::string_view s, Duration& out) noexcept {
    std::size_t i = 0;
    while (i < s.size() && is_digit(s[i])) {
        ++i;
    }
    if (i == 0) {
        return dur_status::bad;
    }
    std::string_view digits = s.substr(0, i);
    std::string_view unit = s.substr(i);
    std::uint64_t scale = 0;
    if (unit.empty()) {
        if (digits.find_first_not_of('0') != std::string_view::npos) {
            return dur_status::missing_unit;
        }
        out = Duration{0};
        return dur_status::ok;
    }
    if (unit == "ms") {
        scale = 1;
    } else if (unit == "s") {
        scale = 1000;
    } else if (unit == "m") {
        scale = 60 * 1000;
    } else if (unit == "h") {
        scale = 3600 * 1000;
    } else {
        return dur_status::bad;
    }
    std::uint64_t n = 0;
    if (parse_uint(digits, max_duration_ms / scale, n) != num_status::ok) {
        return dur_status::too_big;
    }
    out = Duration{static_cast<Duration::rep>(n * scale)};
    return dur_status::ok;
}

int parse_signal(std::string_view s) noexcept {
    std::uint64_t n = 0;
    if (parse_uint(s, 64, n) == num_status::ok) {
        return static_cast<int>(n);
    }
    if (s.size() > 3 && ascii_iequal(s.substr(0, 3), "SIG")) {
        s.remove_prefix(3);
    }
    for (const signal_name& sig : signal_names) {
        if (ascii_iequal(s, sig.name)) {
            return sig.number;
        }
    }
    return 0;
}

bool parse_bool(std::string_view s, bool& out) noexcept {
    if (s == "yes" || s == "true") {
        out = true;
        return true;
    }
    if (s == "no" || s == "false") {
        out = false;
        return true;
    }
    return false;
}

bool name_list::next(std::string_view& name) noexcept {
    auto separates = [](char c) { return is_blank(c) || c == ','; };
    while (i_ < s_.size() && separates(s_[i_])) {
        ++i_;
    }
    std::size_t start = i_;
    while (i_ < s_.size() && !separates(s_[i_])) {
        ++i_;
    }
    if (i_ == start) {
        return false;
    }
    name = s_.substr(start, i_ - start);
    return true;
}

bool is_owner(std::string_view s) noexcept {
    std::size_t colon = s.find(':');
    std::string_view user = s.substr(0, colon);
    std::string_view group =
        colon == std::string_view::npos ? std::string_view{} : s.substr(colon + 1);
    for (char c : s) {
        if (is_blank(c)) {
            return false;
        }
    }
    return group.find(':') == std::string_view::npos &&
           !(colon != std::string_view::npos && group.empty()) && !(user.empty() && group.empty());
}

tl::unexpected<value_error> refuse(const char* fmt, ...) noexcept {
    value_error e;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return tl::unexpected<value_error>(e);
}

value_result<Duration> duration_value(std::string_view key, std::string_view value) noexcept {
    Duration d{0};
    switch (parse_duration(value, d)) {
    case dur_status::ok:
        return d;
    case dur_status::bad:
        return refuse("bad duration '%s' for %.*s: use a number with ms, s, m or h, e.g. 30s",
                      clip(value).str(), len(key), key.data());
    case dur_status::missing_unit: {
        clip v(value);
        return refuse("missing unit in duration '%s' for %.*s: write %ss (or %sms, %sm, %sh)",
                      v.str(), len(key), key.data(), v.str(), v.str(), v.str(), v.str());
    }
    case dur_status::too_big:
        return refuse("duration '%s' for %.*s is too large: at most 2562047h", clip(value).str(),
                      len(key), key.data());
    }
    return refuse("bad duration");
}

value_result<std::uint32_t> multiplier_value(std::string_view key,
                                             std::string_view value) noexcept {
    std::uint64_t x100 = 0;
    num_status st = parse_x100(value, 10000, x100);
    if (st != num_status::ok || x100 < 100) {
        return refuse("bad %.*s '%s': use a number from 1 to 100 with at most two decimals, e.g. "
                      "2 or 1.5",
                      len(key), key.data(), clip(value).str());
    }
    return static_cast<std::uint32_t>(x100);
}

value_result<std::uint32_t> count_value(std::string_view key, std::string_view value,
                                        std::uint32_t max) noexcept {
    std::uint64_t n = 0;
    if (parse_uint(value, max, n) != num_status::ok || n == 0) {
        return refuse("bad %.*s '%s': use a whole number from 1 to %u", len(key), key.data(),
                      clip(value).str(), max);
    }
    return static_cast<std::uint32_t>(n);
}

value_result<std::uint32_t> limit_value(std::string_view key, std::string_view value) noexcept {
    std::uint64_t n = 0;
    if (parse_uint(value, std::numeric_limits<std::uint32_t>::max(), n) != num_status::ok) {
        return refuse("bad %.*s '%s': use a whole number up to 4294967295 (0 = unlimited)",
                      len(key), key.data(), clip(value).str());
    }
    return static_cast<std::uint32_t>(n);
}

value_result<std::uint32_t> percent_value(std::string_view key, std::string_view value) noexcept {
    std::string_view digits = value;
    if (!digits.empty() && digits.back() == '%') {
        digits.remove_suffix(1);
    }
    std::uint64_t pct = 0;
    if (parse_uint(digits, 100, pct) != num_status::ok) {
        return refuse("bad %.*s '%s': use a percentage from 0 to 100, e.g. 25 or 25%%", len(key),
                      key.data(), clip(value).str());
    }
    return static_cast<std::uint32_t>(pct);
}

value_result<std::uint64_t> bytes_value(std::string_view key, std::string_view value,
                                        std::uint64_t max) noexcept {
    std::uint64_t n = 0;
    switch (parse_size(value, max, n)) {
    case num_status::ok:
        return n;
    case num_status::too_big:
        return refuse("%.*s '%s' is too large: at most %llu bytes", len(key), key.data(),
                      clip(value).str(), static_cast<unsigned long long>(max));
    case num_status::bad:
        break;
    }
    return refuse("bad %.*s '%s': give bytes, optionally with K, M, G or T (64K, 16M, 1G)",
                  len(key), key.data(), clip(value).str());
}

value_result<std::uint64_t> size_value(std::string_view key, std::string_view value) noexcept {
    return bytes_value(key, value, std::numeric_limits<std::uint64_t>::max());
}

value_result<bool> bool_value(std::string_view key, std::string_view value) noexcept {
    bool b = false;
    if (!parse_bool(value, b)) {
        return refuse("bad %.*s '%s': use yes, no, true or false", len(key), key.data(),
                      clip(value).str());
    }
    return b;
}

value_result<int> signal_value(std::string_view key, std::string_view value) noexcept {
    if (int sig = parse_signal(value); sig != 0) {
        return sig;
    }
    return refuse("bad %.*s '%s': use TERM, INT, HUP, QUIT, KILL, USR1, USR2 or a number from 1 "
                  "to 64",
                  len(key), key.data(), clip(value).str());
}

value_result<RestartPolicy> restart_value(std::string_view value) noexcept {
    if (value == "never") {
        return RestartPolicy::never;
    }
    if (value == "always") {
        return RestartPolicy::always;
    }
    if (value == "on-failure") {
        return RestartPolicy::on_failure;
    }
    return refuse("bad restart '%s': use never, always or on-failure", clip(value).str());
}

value_result<DependencyDownAction> dependency_down_value(std::string_view value) noexcept {
    if (value == "ignore") {
        return DependencyDownAction::ignore;
    }
    if (value == "stop") {
        return DependencyDownAction::stop;
    }
    if (value == "restart") {
        return DependencyDownAction::restart;
    }
    return refuse("bad on_dependency_down '%s': use ignore, stop or restart", clip(value).str());
}

} // namespace custos::tbl

namespace custos {

std::string_view output_mode_name(OutputMode m) noexcept {
    switch (m) {
    case OutputMode::automatic:
        return "auto";
    case OutputMode::file:
        return "file";
    case OutputMode::ring:
        return "ring";
    case OutputMode::inherit:
        return "inherit";
    case OutputMode::null:
        return "null";
    }
    return "unknown";
}

} // namespace custos

namespace custos::tbl {

value_result<OutputMode> output_value(std::string_view value) noexcept {
    static constexpr OutputMode modes[] = {OutputMode::automatic, OutputMode::file,
                                           OutputMode::ring, OutputMode::inherit, OutputMode::null};
    for (OutputMode m : modes) {
        if (value == output_mode_name(m)) {
            return m;
        }
    }
    return refuse("bad output '%s': use auto, file, ring, inherit or null", clip(value).str());
}

value_result<restart_limit> restart_limit_value(std::string_view value) noexcept {
    std::size_t slash = value.find('/');
    std::uint64_t n = 0;
    if (slash == std::string_view::npos ||
        parse_uint(trim(value.substr(0, slash)), std::numeric_limits<std::uint32_t>::max(), n) !=
            num_status::ok) {
        return refuse("bad restart_limit '%s': write N/DURATION, e.g. 5/60s for at most 5 "
                      "restarts within 60s",
                      clip(value).str());
    }
    if (n == 0) {
        return refuse("restart_limit '%s' allows no restart: N must be 1 or more (leave "
                      "restart_limit out for no limit)",
                      clip(value).str());
    }
    value_result<Duration> window = duration_value("restart_limit", trim(value.substr(slash + 1)));
    if (!window) {
        return tl::unexpected<value_error>(window.error());
    }
    if (window->count() == 0) {
        return refuse("restart_limit '%s' has no time window: use a duration above 0, e.g. 5/60s",
                      clip(value).str());
    }
    return restart_limit{static_cast<std::uint32_t>(n), *window};
}

value_result<readiness> ready_value(std::string_view value) noexcept {
    if (value == "started") {
        return readiness{ReadyMode::started, -1, {}};
    }
    if (value == "notify") {
        return readiness{ReadyMode::notify, -1, {}};
    }
    constexpr std::string_view fd_prefix = "fd:";
    std::uint64_t fd = 0;
    // Above 1023 a descriptor is past the usual open-file limit (1024).
    constexpr std::uint64_t max_fd = 1023;
    if (value.substr(0, fd_prefix.size()) == fd_prefix &&
        parse_uint(value.substr(fd_prefix.size()), max_fd, fd) == num_status::ok) {
        if (fd < 3) {
            return refuse("ready '%s' names a standard stream (0, 1 and 2 are stdin, stdout and "
                          "stderr): use fd:3 or higher",
                          clip(value).str());
        }
        return readiness{ReadyMode::fd, static_cast<int>(fd), {}};
    }
    constexpr std::string_view probe_prefix = "probe:";
    if (value.substr(0, probe_prefix.size()) == probe_prefix) {
        std::string_view probe = trim(value.substr(probe_prefix.size()));
        if (probe.empty()) {
            return refuse("ready '%s' names no probe: write ready = probe:NAME", clip(value).str());
        }
        return readiness{ReadyMode::probe, -1, probe};
    }
    return refuse("bad ready '%s': use started, notify, fd:N with N from 3 to 1023, or probe:NAME",
                  clip(value).str());
}

value_result<int> channel_value(std::string_view value) noexcept {
    constexpr std::string_view fd_prefix = "fd:";
    std::uint64_t fd = 0;
    if (value.substr(0, fd_prefix.size()) == fd_prefix &&
        parse_uint(value.substr(fd_prefix.size()), 1023, fd) == num_status::ok && fd >= 3) {
        return static_cast<int>(fd);
    }
    return refuse("bad channel '%s': use fd:N with N from 3 to 1023 (0, 1 and 2 are the standard "
                  "streams)",
                  clip(value).str());
}

value_result<std::string_view> owner_value(std::string_view value) noexcept {
    if (!is_owner(value)) {
        return refuse("bad owner '%s': write user, user:group or :group", clip(value).str());
    }
    return value;
}

value_result<int> mode_value(std::string_view value) noexcept {
    int mode = 0;
    // Length first: a long run of octal digits would overflow mode.
    bool ok = !value.empty() && value.size() <= 5;
    for (std::size_t i = 0; ok && i < value.size(); ++i) {
        const char c = value[i];
        if (c < '0' || c > '7') {
            ok = false;
            break;
        }
        mode = mode * 8 + (c - '0');
    }
    if (!ok || mode > 07777) {
        return refuse("bad mode '%s': use octal permission bits up to 7777, e.g. 0755",
                      clip(value).str());
    }
    return mode;
}

value_result<std::uint16_t> status_code_value(std::string_view code) noexcept {
    std::uint64_t n = 0;
    if (parse_uint(code, 599, n) != num_status::ok || n < 100) {
        return refuse("bad status '%s' in expect_status: use HTTP status codes from 100 to 599 "
                      "separated by spaces, e.g. 200 204",
                      clip(code).str());
    }
    return static_cast<std::uint16_t>(n);
}

value_result<std::string_view> cgroup_value(std::string_view value) noexcept {
    if (value == "auto") {
        return std::string_view{};
    }
    if (value == "off" || (!value.empty() && value.front() == '/')) {
        return value;
    }
    return refuse("bad cgroup '%s': use auto, off or an absolute path on cgroup2",
                  clip(value).str());
}

value_result<std::string_view> notify_dir_value(std::string_view value) noexcept {
    // Room is left for "/" and a service name.
    if (value.size() + 2 >= sizeof(sockaddr_un{}.sun_path)) {
        return refuse("notify_dir is %zu bytes long; DIR/SERVICE must fit a Unix socket address "
                      "of %zu bytes",
                      value.size(), sizeof(sockaddr_un{}.sun_path) - 1);
    }
    return value;
}

value_result<int> notify_fd_value(std::string_view value) noexcept {
    std::uint64_t fd = 0;
    // The same bounds as ready = fd:N.
    if (parse_uint(value, 1023, fd) != num_status::ok) {
        return refuse("bad notify_fd '%s': write the descriptor number, from 3 to 1023, that "
                      "s6-supervise opens (the service directory's notification-fd file)",
                      clip(value).str());
    }
    if (fd < 3) {
        return refuse("notify_fd '%s' names a standard stream (0, 1 and 2 are stdin, stdout and "
                      "stderr): use 3 or higher",
                      clip(value).str());
    }
    return static_cast<int>(fd);
}

value_result<KeepaliveGate> keepalive_gate_value(std::string_view value) noexcept {
    if (value == "none") {
        return KeepaliveGate::none;
    }
    if (value == "health") {
        return KeepaliveGate::health;
    }
    return refuse("bad keepalive_gate '%s': use none (keepalive while custos runs) or health "
                  "(withheld while health is failed)",
                  clip(value).str());
}

} // namespace custos::tbl
