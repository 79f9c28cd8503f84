// custosd's config reader (see config.hpp for the syntax and the reasons).
//
// Two passes over one private copy of the text, through the same parser:
//   1. check: every line is read and every problem reported; it counts the
//      services, probes and the argv/env/depends_on/members/expect_status
//      entries, and finds duplicate sections with scratch hash sets of names
//      (one for services, one for probes).
//   2. build: only when the check found nothing. The arena is reserved for
//      exactly the counts of pass 1, and the parser runs again, now storing.
//      It cannot find a problem that pass 1 did not (it is the same code over
//      the same bytes), which is asserted.
// Exec arguments are unescaped in place during pass 2: an argument's output
// never runs ahead of its input, and the parser never reads a value twice.
// A section's argv, env, depends_on, members and expect_status entries are
// contiguous in their pools because sections cannot repeat: nothing of
// another section comes between. Checks that need a whole probe section (is
// there one kind? do its file-only keys sit in a file probe?) run when the
// section ends, as the missing-exec check of a service does.
#include "custosd/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>

#include "core/ascii.hpp"
#include "core/assert.hpp"

namespace custos::cfg {

using custos::ServiceField;

void problem_list::add(unsigned line, const Error& error, const char* fmt, ...) noexcept {
    if (size_ == capacity) {
        ++dropped_;
        return;
    }
    // Most problems arrive in line order; a missing exec is only known at the
    // end of its section, and goes back to its header's place.
    std::size_t at = size_;
    while (at > 0 && items_[at - 1].line > line) {
        items_[at] = items_[at - 1];
        --at;
    }
    problem& p = items_[at];
    p.line = line;
    p.error = error;
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(p.message, sizeof p.message, fmt, ap);
    va_end(ap);
    ++size_;
}

void format_problem(const char* file, const problem& p, char* buf, std::size_t len) noexcept {
    if (buf == nullptr || len == 0) {
        return;
    }
    const char* f = file != nullptr && *file != '\0' ? file : "config";
    if (p.line == 0) {
        std::snprintf(buf, len, "%s: %s", f, p.message);
    } else {
        std::snprintf(buf, len, "%s:%u: %s", f, p.line, p.message);
    }
}

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

// User text made safe for a message: control bytes become \xHH escapes (a
// terminal must not interpret them, and the operator must see what is in
// the file) and long text is cut after 48 bytes of output, never inside a
// UTF-8 sequence nor inside an escape, ending in "...".
class clip {
public:
    explicit clip(std::string_view s) noexcept {
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
    const char* str() const noexcept { return buf_; }

private:
    static constexpr std::size_t keep = 48;
    char buf_[keep + 4];
};

enum class num_status : std::uint8_t { ok, bad, too_big };

// Decimal digits only (no sign, no blanks), at most `max`.
num_status parse_uint(std::string_view s, std::uint64_t max, std::uint64_t& out) {
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

// A decimal with at most two decimals ("2", "1.5", "1.25") as an integer x100:
// the multiplier needs no floating point.
num_status parse_x100(std::string_view s, std::uint64_t max_x100, std::uint64_t& out) {
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

enum class dur_status : std::uint8_t { ok, bad, missing_unit, too_big };

// The runtime turns durations into signed 64-bit nanoseconds: 2562047 h is
// the most that holds.
constexpr std::uint64_t max_duration_ms = 2562047ull * 3600 * 1000;

// "1500ms", "30s", "5m", "1h", or "0" alone.
dur_status parse_duration(std::string_view s, Duration& out) {
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

// Optimal string alignment distance (a transposition counts as one edit), for
// "did you mean". Only for keys of at most 32 bytes.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    constexpr std::size_t n = 33;
    std::size_t d[n][n];
    for (std::size_t i = 0; i <= a.size(); ++i) {
        d[i][0] = i;
    }
    for (std::size_t j = 0; j <= b.size(); ++j) {
        d[0][j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            std::size_t best = d[i - 1][j] + 1;
            best = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
            best = d[i - 1][j - 1] + cost < best ? d[i - 1][j - 1] + cost : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best) {
                best = d[i - 2][j - 2] + 1;
            }
            d[i][j] = best;
        }
    }
    return d[a.size()][b.size()];
}

struct service_key_def {
    const char* name;
    ServiceField field;
};

constexpr service_key_def service_keys[] = {
    {"exec", ServiceField::argv},
    {"env", ServiceField::env},
    {"cwd", ServiceField::cwd},
    {"user", ServiceField::user},
    {"group", ServiceField::group},
    {"restart", ServiceField::restart},
    {"backoff_initial", ServiceField::backoff_initial},
    {"backoff_max", ServiceField::backoff_max},
    {"backoff_multiplier", ServiceField::backoff_multiplier},
    {"backoff_jitter", ServiceField::backoff_jitter},
    {"stable_after", ServiceField::stable_after},
    {"max_restarts", ServiceField::max_restarts},
    {"restart_limit", ServiceField::intensity},
    {"start_delay", ServiceField::start_delay},
    {"depends_on", ServiceField::depends_on},
    {"ready", ServiceField::ready},
    {"ready_timeout", ServiceField::ready_timeout},
    {"watchdog", ServiceField::watchdog},
    {"stop_signal", ServiceField::stop_signal},
    {"stop_timeout", ServiceField::stop_timeout},
    {"liveness", ServiceField::liveness},
    {"on_dependency_down", ServiceField::on_dependency_down},
};

enum class runtime_key : std::uint8_t {
    stop_timeout,
    notify_dir,
    max_services,
    max_probes,
    max_probe_checks,
    cgroup,
    pid_record,
};
constexpr std::size_t runtime_key_count = 7;

constexpr const char* runtime_keys[runtime_key_count] = {
    "stop_timeout",     "notify_dir", "max_services", "max_probes",
    "max_probe_checks", "cgroup",     "pid_record"};

// The keys of [probe:NAME]. Six of them name the kind (exactly one per
// section); several keys may share a ProbeField, so a key's own index, not
// its field, is what duplicates are tracked by.
enum class probe_key : std::uint8_t {
    tcp,
    http,
    unix_socket,
    exec,
    file,
    all,
    timeout,
    startup_initial,
    startup_max,
    startup_multiplier,
    startup_tries,
    interval,
    success_threshold,
    failure_threshold,
    expect_status,
    exists,
    owner,
    mode,
    writable,
    reason,
    resolution,
};

struct probe_key_def {
    const char* name;
    probe_key key;
    custos::ProbeField field;
};

// In probe_key order, which is the order of the seen-key bits.
constexpr probe_key_def probe_keys[] = {
    {"tcp", probe_key::tcp, custos::ProbeField::target},
    {"http", probe_key::http, custos::ProbeField::target},
    {"unix", probe_key::unix_socket, custos::ProbeField::target},
    {"exec", probe_key::exec, custos::ProbeField::target},
    {"file", probe_key::file, custos::ProbeField::target},
    {"all", probe_key::all, custos::ProbeField::target},
    {"timeout", probe_key::timeout, custos::ProbeField::timeout},
    {"startup_initial", probe_key::startup_initial, custos::ProbeField::startup_initial},
    {"startup_max", probe_key::startup_max, custos::ProbeField::startup_max},
    {"startup_multiplier", probe_key::startup_multiplier, custos::ProbeField::startup_multiplier},
    {"startup_tries", probe_key::startup_tries, custos::ProbeField::startup_tries},
    {"interval", probe_key::interval, custos::ProbeField::interval},
    {"success_threshold", probe_key::success_threshold, custos::ProbeField::success_threshold},
    {"failure_threshold", probe_key::failure_threshold, custos::ProbeField::failure_threshold},
    {"expect_status", probe_key::expect_status, custos::ProbeField::expect_status},
    // exists has no field of its own: a file probe always checks existence.
    {"exists", probe_key::exists, custos::ProbeField::target},
    {"owner", probe_key::owner, custos::ProbeField::owner},
    {"mode", probe_key::mode, custos::ProbeField::mode},
    {"writable", probe_key::writable, custos::ProbeField::writable},
    {"reason", probe_key::reason, custos::ProbeField::reason},
    {"resolution", probe_key::resolution, custos::ProbeField::resolution},
};
constexpr std::size_t probe_key_count = std::size(probe_keys);

constexpr bool check_probe_keys() {
    for (std::size_t i = 0; i < probe_key_count; ++i) {
        if (static_cast<std::size_t>(probe_keys[i].key) != i) {
            return false;
        }
    }
    return true;
}
static_assert(check_probe_keys(), "probe_keys is in probe_key order");

// The kind a kind key sets; false for the other keys.
bool kind_of(probe_key k, ProbeKind& out) noexcept {
    switch (k) {
    case probe_key::tcp:
        out = ProbeKind::tcp;
        return true;
    case probe_key::http:
        out = ProbeKind::http;
        return true;
    case probe_key::unix_socket:
        out = ProbeKind::unix_socket;
        return true;
    case probe_key::exec:
        out = ProbeKind::exec;
        return true;
    case probe_key::file:
        out = ProbeKind::file;
        return true;
    case probe_key::all:
        out = ProbeKind::all;
        return true;
    case probe_key::timeout:
    case probe_key::startup_initial:
    case probe_key::startup_max:
    case probe_key::startup_multiplier:
    case probe_key::startup_tries:
    case probe_key::interval:
    case probe_key::success_threshold:
    case probe_key::failure_threshold:
    case probe_key::expect_status:
    case probe_key::exists:
    case probe_key::owner:
    case probe_key::mode:
    case probe_key::writable:
    case probe_key::reason:
    case probe_key::resolution:
        return false;
    }
    return false;
}

static_assert(custos::service_field_count <= 32, "seen-key bitmasks are 32 bits");
static_assert(probe_key_count <= 32, "seen-key bitmasks are 32 bits");
static_assert(runtime_key_count <= 32, "seen-key bitmasks are 32 bits");

// The closest known key to a misspelt one, or nullptr when none is close.
template <class Names>
const char* suggest(std::string_view key, const Names& names) {
    if (key.size() > 32) {
        return nullptr;
    }
    const char* best = nullptr;
    std::size_t best_d = (key.size() >= 4 ? 2 : 1) + 1; // farther is no hint
    for (const char* n : names) {
        std::string_view name = n;
        if (name.size() > 32) {
            continue;
        }
        if (std::size_t d = edit_distance(key, name); d < best_d) {
            best = n;
            best_d = d;
        }
    }
    return best;
}

struct signal_name {
    const char* name;
    int number;
};

constexpr signal_name signal_names[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT},   {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
};

// "TERM", "SIGTERM" (any case) or a number from 1 to 64; 0 when bad.
int parse_signal(std::string_view s) {
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

// "yes", "no", "true" or "false"; false when it is none of them.
bool parse_bool(std::string_view s, bool& out) {
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

// Filled in pass 2 only (base null in pass 1: only counted).
template <class T>
struct pool {
    T* base = nullptr;
    std::size_t cap = 0;
    std::size_t used = 0;

    void push(T v) noexcept {
        if (base != nullptr && used < cap) {
            base[used] = v;
        }
        ++used;
    }
    std::span<const T> since(std::size_t start) const noexcept {
        if (base == nullptr || used > cap) {
            return {};
        }
        return {base + start, used - start};
    }
};
using view_pool = pool<std::string_view>;

// Names of the [service:x] sections seen so far, for duplicates: open
// addressing at most half full, so a probe always ends.
class name_set {
public:
    // Room for `n` names in `a`. False when out of memory.
    bool reserve(arena& a, std::size_t n) noexcept {
        if (n == 0) {
            return true;
        }
        std::size_t slots = 2;
        while (slots < 2 * n) {
            slots <<= 1;
        }
        if (!a.reserve(slots * sizeof(entry))) {
            return false;
        }
        slots_ = a.make_array<entry>(slots);
        mask_ = slots - 1;
        room_ = n;
        return slots_ != nullptr;
    }

    // The line `name` was first seen on, or 0.
    unsigned find(std::string_view name) const noexcept {
        if (slots_ == nullptr) {
            return 0;
        }
        for (std::size_t i = hash(name) & mask_;; i = (i + 1) & mask_) {
            if (slots_[i].line == 0) {
                return 0;
            }
            if (slots_[i].name == name) {
                return slots_[i].line;
            }
        }
    }

    // `name` must not be in the set yet.
    void insert(std::string_view name, unsigned line) noexcept {
        CUSTOS_ASSERT(room_ > 0 && line > 0);
        --room_;
        std::size_t i = hash(name) & mask_;
        while (slots_[i].line != 0) {
            i = (i + 1) & mask_;
        }
        slots_[i] = entry{name, line};
    }

private:
    struct entry {
        std::string_view name;
        unsigned line = 0; // 0: empty slot
    };

    static std::size_t hash(std::string_view s) noexcept {
        std::uint64_t h = 0xcbf29ce484222325ull; // FNV-1a
        for (char c : s) {
            h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
        }
        return static_cast<std::size_t>(h ^ (h >> 32));
    }

    entry* slots_ = nullptr;
    std::size_t mask_ = 0;
    std::size_t room_ = 0;
};

// Upper bound on the [service:x] sections: lines whose first non-blank
// character is '['.
std::size_t count_headers(const char* text, std::size_t size) {
    std::size_t n = 0;
    bool at_start = true;
    for (std::size_t i = 0; i < size; ++i) {
        char c = text[i];
        if (c == '\n') {
            at_start = true;
        } else if (at_start && !is_blank(c)) {
            n += c == '[' ? 1 : 0;
            at_start = false;
        }
    }
    return n;
}

// What pass 1 counts and pass 2 is sized for.
struct table_counts {
    std::uint32_t services = 0;
    std::uint32_t probes = 0;
    std::size_t argv = 0; // services' and exec probes'
    std::size_t env = 0;
    std::size_t deps = 0;
    std::size_t members = 0;  // of composite probes
    std::size_t statuses = 0; // expect_status entries

    bool operator==(const table_counts&) const = default;
};

// Where pass 2 stores; all null in pass 1.
struct table_out {
    ServiceSpec* services = nullptr;
    unsigned* lines = nullptr;
    std::uint32_t capacity = 0;
    ProbeSpec* probes = nullptr;
    unsigned* probe_lines = nullptr;
    std::uint32_t probe_capacity = 0;
    view_pool argv, env, deps, members;
    pool<std::uint16_t> statuses;
};

// Lays the table out in `a`; run once on an unreserved arena to measure.
void lay_out(arena& a, const table_counts& c, table_out& out) noexcept {
    out.services = a.make_array<ServiceSpec>(c.services);
    out.lines = a.make_array<unsigned>(std::size_t{c.services} * custos::service_field_count);
    out.capacity = c.services;
    out.probes = a.make_array<ProbeSpec>(c.probes);
    out.probe_lines = a.make_array<unsigned>(std::size_t{c.probes} * custos::probe_field_count);
    out.probe_capacity = c.probes;
    out.argv = view_pool{a.make_array<std::string_view>(c.argv), c.argv, 0};
    out.env = view_pool{a.make_array<std::string_view>(c.env), c.env, 0};
    out.deps = view_pool{a.make_array<std::string_view>(c.deps), c.deps, 0};
    out.members = view_pool{a.make_array<std::string_view>(c.members), c.members, 0};
    out.statuses = pool<std::uint16_t>{a.make_array<std::uint16_t>(c.statuses), c.statuses, 0};
}

class parser {
public:
    // `problems` and the name sets are null in pass 2; `out` is empty in
    // pass 1.
    parser(char* text, std::size_t size, problem_list* problems, name_set* names,
           name_set* probe_names, RuntimeConfig& rt, table_out& out) noexcept
        : text_(text), size_(size), problems_(problems), names_(names), probe_names_(probe_names),
          rt_(rt), out_(out) {}

    void run() noexcept {
        char* p = text_;
        char* end = text_ + size_;
        unsigned n = 0;
        while (p < end) {
            ++n;
            auto* nl = static_cast<char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            char* line_end = nl != nullptr ? nl : end;
            line(n, p, line_end);
            p = nl != nullptr ? nl + 1 : end;
        }
        finish_section();
    }

    std::size_t found() const noexcept { return found_; }
    table_counts counts() const noexcept {
        return {services_,      probes_,           out_.argv.used,    out_.env.used,
                out_.deps.used, out_.members.used, out_.statuses.used};
    }

private:
    enum class section : std::uint8_t {
        none,    // before the first header: keys are errors
        skipped, // after a bad header: its keys were reported with it
        custos,
        service,
        probe,
    };

    [[gnu::format(printf, 5, 6)]] void report(unsigned at, Reason r, std::string_view subject,
                                              const char* fmt, ...) noexcept {
        ++found_;
        if (problems_ == nullptr) {
            return;
        }
        char msg[sizeof(problem::message)];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        problems_->add(at, Error(r, 0, subject), "%s", msg);
    }

    void line(unsigned n, char* b, char* e) noexcept {
        line_ = n;
        line_begin_ = b;
        if (e > b && e[-1] == '\r') {
            --e;
        }
        auto len = static_cast<std::size_t>(e - b);
        if (len > config::max_line_bytes) {
            report(n, Reason::config_syntax, {},
                   "line is %zu bytes long; the limit is %zu (a long command line can move "
                   "into a wrapper script)",
                   len, config::max_line_bytes);
            skipped_line(trim({b, len}));
            return;
        }
        if (const void* nul = std::memchr(b, '\0', len); nul != nullptr) {
            report(n, Reason::config_syntax, {},
                   "NUL byte at column %zu: the config must be a text file",
                   static_cast<std::size_t>(static_cast<const char*>(nul) - b) + 1);
            skipped_line(trim({b, len}));
            return;
        }
        std::string_view t = trim({b, len});
        if (t.empty() || t.front() == '#' || t.front() == ';') {
            return;
        }
        if (t.front() == '[') {
            header(t);
        } else {
            assignment(t);
        }
    }

    // A line already reported as unreadable: keep the damage to that line. A
    // header ends the section before it (its keys must not land there); an
    // exec, or a probe's kind key, is not also reported missing.
    void skipped_line(std::string_view t) noexcept {
        if (!t.empty() && t.front() == '[') {
            finish_section();
            kind_ = section::skipped;
            return;
        }
        std::string_view key = trim(t.substr(0, t.find('=')));
        if (kind_ == section::service && (seen_ & bit(ServiceField::argv)) == 0 && key == "exec") {
            seen_ |= bit(ServiceField::argv);
            key_line_[static_cast<std::size_t>(ServiceField::argv)] = line_;
        } else if (kind_ == section::probe && kind_def_ == nullptr) {
            for (const probe_key_def& d : probe_keys) {
                if (key == d.name && kind_of(d.key, pcur_.kind)) {
                    kind_def_ = &d;
                    probe_key_line_[static_cast<std::size_t>(d.key)] = line_;
                    probe_seen_ |= probe_bit(d.key);
                    break;
                }
            }
        }
    }

    void header(std::string_view t) noexcept {
        finish_section();
        kind_ = section::skipped;
        if (t.back() != ']') {
            report(line_, Reason::config_syntax, t,
                   "bad section header '%s': write [custos], [service:NAME] or [probe:NAME]",
                   clip(t).str());
            return;
        }
        std::string_view inner = trim(t.substr(1, t.size() - 2));
        if (inner == "custos") {
            if (custos_line_ != 0) {
                report(line_, Reason::config_syntax, inner,
                       "duplicate section [custos] (first at line %u): merge the two",
                       custos_line_);
                return;
            }
            custos_line_ = line_;
            kind_ = section::custos;
            return;
        }
        constexpr std::string_view service_prefix = "service:";
        constexpr std::string_view probe_prefix = "probe:";
        const bool is_service = inner.substr(0, service_prefix.size()) == service_prefix;
        const bool is_probe = inner.substr(0, probe_prefix.size()) == probe_prefix;
        if (!is_service && !is_probe) {
            report(line_, Reason::config_syntax, inner,
                   "unknown section '[%s]': expected [custos], [service:NAME] or [probe:NAME]",
                   clip(inner).str());
            return;
        }
        const char* what = is_probe ? "probe" : "service";
        std::string_view name =
            trim(inner.substr(is_probe ? probe_prefix.size() : service_prefix.size()));
        if (name.empty()) {
            report(line_, Reason::config_syntax, inner,
                   "section [%s:] has no name: write [%s:NAME]", what, what);
            return;
        }
        // Services and probes are checked apart: a probe named like a service
        // is the table validator's to report, with both places.
        name_set* seen = is_probe ? probe_names_ : names_;
        if (unsigned first = seen != nullptr ? seen->find(name) : 0; first != 0) {
            report(line_, Reason::config_syntax, name,
                   "duplicate section [%s:%s] (first at line %u): merge the two or rename one",
                   what, clip(name).str(), first);
            return;
        }
        const std::uint32_t count = is_probe ? probes_ : services_;
        const std::uint32_t limit =
            is_probe ? config::max_probe_sections : config::max_service_sections;
        if (count == limit) {
            report(line_, Reason::capacity_exceeded, name,
                   "too many %ss: a config holds at most %u [%s:NAME] sections", what, limit, what);
            return;
        }
        if (seen != nullptr) {
            seen->insert(name, line_);
        }
        argv_start_ = out_.argv.used;
        if (is_probe) {
            kind_ = section::probe;
            pcur_ = ProbeSpec{};
            pcur_.name = name;
            probe_header_line_ = line_;
            probe_seen_ = 0;
            probe_bad_ = 0;
            kind_def_ = nullptr;
            for (unsigned& l : probe_key_line_) {
                l = line_;
            }
            members_start_ = out_.members.used;
            statuses_start_ = out_.statuses.used;
            return;
        }
        kind_ = section::service;
        cur_ = ServiceSpec{};
        cur_.name = name;
        header_line_ = line_;
        seen_ = 0;
        for (unsigned& l : key_line_) {
            l = line_;
        }
        env_start_ = out_.env.used;
        deps_start_ = out_.deps.used;
    }

    void finish_section() noexcept {
        if (kind_ == section::service) {
            if ((seen_ & bit(ServiceField::argv)) == 0) {
                report(header_line_, Reason::config_bad_value, cur_.name,
                       "[service:%s] has no exec: add exec = /path/to/program [arguments]",
                       clip(cur_.name).str());
            }
            cur_.argv = out_.argv.since(argv_start_);
            cur_.env = out_.env.since(env_start_);
            cur_.depends_on = out_.deps.since(deps_start_);
            if (out_.services != nullptr && services_ < out_.capacity) {
                out_.services[services_] = cur_;
                std::memcpy(out_.lines + std::size_t{services_} * custos::service_field_count,
                            key_line_, sizeof key_line_);
            }
            ++services_;
        } else if (kind_ == section::probe) {
            finish_probe();
        }
        kind_ = section::none;
    }

    // The checks that need the whole section (the kind may come after the
    // keys that depend on it), then the probe is stored.
    void finish_probe() noexcept {
        if (kind_def_ == nullptr) {
            report(probe_header_line_, Reason::config_bad_value, pcur_.name,
                   "probe '%s' has no kind: set one of tcp, http, unix, exec, file, all",
                   clip(pcur_.name).str());
        } else {
            // A key whose value was refused is not reported a second time.
            for (const probe_key_def& d : probe_keys) {
                if ((probe_seen_ & probe_bit(d.key)) == 0 || (probe_bad_ & probe_bit(d.key)) != 0) {
                    continue;
                }
                const bool file_only = d.key == probe_key::exists || d.key == probe_key::owner ||
                                       d.key == probe_key::mode || d.key == probe_key::writable;
                const bool http_only = d.key == probe_key::expect_status;
                if ((file_only && pcur_.kind != ProbeKind::file) ||
                    (http_only && pcur_.kind != ProbeKind::http)) {
                    report(probe_key_line_[static_cast<std::size_t>(d.key)],
                           Reason::config_bad_value, d.name,
                           "%s applies to %s probes only, and probe '%s' is a %s probe: remove "
                           "it",
                           d.name, file_only ? "file" : "http", clip(pcur_.name).str(),
                           probe_kind_name(pcur_.kind).data());
                }
            }
        }
        pcur_.argv = pcur_.kind == ProbeKind::exec ? out_.argv.since(argv_start_)
                                                   : std::span<const std::string_view>{};
        pcur_.members = out_.members.since(members_start_);
        pcur_.expect_status = out_.statuses.since(statuses_start_);
        if (out_.probes != nullptr && probes_ < out_.probe_capacity) {
            out_.probes[probes_] = pcur_;
            unsigned* lines = out_.probe_lines + std::size_t{probes_} * custos::probe_field_count;
            for (std::size_t f = 0; f < custos::probe_field_count; ++f) {
                lines[f] = probe_header_line_;
            }
            for (const probe_key_def& d : probe_keys) {
                // exists shares target's field but is not where the target is.
                if ((probe_seen_ & probe_bit(d.key)) != 0 && d.key != probe_key::exists &&
                    (d.field != custos::ProbeField::target || &d == kind_def_)) {
                    lines[static_cast<std::size_t>(d.field)] =
                        probe_key_line_[static_cast<std::size_t>(d.key)];
                }
            }
        }
        ++probes_;
    }

    void assignment(std::string_view t) noexcept {
        std::size_t eq = t.find('=');
        if (eq == std::string_view::npos) {
            report(line_, Reason::config_syntax, {},
                   "no '=' in '%s': expected key = value, [section] or a # comment", clip(t).str());
            return;
        }
        std::string_view key = trim(t.substr(0, eq));
        std::string_view value = trim(t.substr(eq + 1));
        if (key.empty()) {
            report(line_, Reason::config_syntax, {}, "no key before '=' in '%s'", clip(t).str());
            return;
        }
        switch (kind_) {
        case section::none:
            report(line_, Reason::config_syntax, key,
                   "key '%s' is outside any section: put it under [custos], [service:NAME] "
                   "or [probe:NAME]",
                   clip(key).str());
            return;
        case section::skipped:
            return;
        case section::custos:
            custos_key(key, value);
            return;
        case section::service:
            service_key(key, value);
            return;
        case section::probe:
            probe_key_value(key, value);
            return;
        }
    }

    static std::uint32_t bit(ServiceField f) noexcept {
        return std::uint32_t{1} << static_cast<unsigned>(f);
    }
    static std::uint32_t probe_bit(probe_key k) noexcept {
        return std::uint32_t{1} << static_cast<unsigned>(k);
    }

    // Common to all sections: duplicates and empty values. False when the
    // value is not to be read. The section is the one kind_ says.
    bool first_and_filled(const char* key, std::string_view value, std::uint32_t& seen,
                          std::uint32_t b, unsigned& key_line, bool repeats) noexcept {
        if ((seen & b) != 0 && !repeats) {
            const char* prefix = kind_ == section::custos    ? "custos"
                                 : kind_ == section::service ? "service:"
                                                             : "probe:";
            clip name(kind_ == section::custos    ? std::string_view{}
                      : kind_ == section::service ? cur_.name
                                                  : pcur_.name);
            report(line_, Reason::config_syntax, key,
                   "duplicate key '%s' in [%s%s] (first at line %u): keep one", key, prefix,
                   name.str(), key_line);
            return false;
        }
        if ((seen & b) == 0) {
            key_line = line_;
        }
        seen |= b;
        if (value.empty()) {
            report(line_, Reason::config_bad_value, key, "key '%s' has no value", key);
            return false;
        }
        return true;
    }

    void custos_key(std::string_view key, std::string_view value) noexcept {
        std::size_t k = 0;
        while (k < runtime_key_count && key != runtime_keys[k]) {
            ++k;
        }
        if (k == runtime_key_count && key == "notify_socket") {
            report(line_, Reason::config_unknown_key, key,
                   "notify_socket was replaced by notify_dir: each service now gets its own "
                   "socket DIR/NAME (write notify_dir = the directory)");
            return;
        }
        if (k == runtime_key_count) {
            const char* hint = suggest(key, runtime_keys);
            report(line_, Reason::config_unknown_key, key, "unknown key '%s' in [custos]%s%s%s",
                   clip(key).str(), hint != nullptr ? " (did you mean '" : "",
                   hint != nullptr ? hint : "", hint != nullptr ? "'?)" : "");
            return;
        }
        const char* name = runtime_keys[k];
        if (!first_and_filled(name, value, custos_seen_, std::uint32_t{1} << k, custos_key_line_[k],
                              false)) {
            return;
        }
        switch (static_cast<runtime_key>(k)) {
        case runtime_key::stop_timeout:
            duration_value(name, value, rt_.stop_timeout);
            return;
        case runtime_key::notify_dir:
            // Relative paths are allowed: they name a directory in custosd's
            // working directory (examples/appliance.ini relies on that).
            // Room is left for "/" and a service name.
            if (value.size() + 2 >= sizeof(sockaddr_un{}.sun_path)) {
                report(line_, Reason::config_bad_value, name,
                       "notify_dir is %zu bytes long; DIR/SERVICE must fit a Unix socket "
                       "address of %zu bytes",
                       value.size(), sizeof(sockaddr_un{}.sun_path) - 1);
                return;
            }
            rt_.notify_dir = value;
            return;
        case runtime_key::max_services: {
            std::uint64_t n = 0;
            num_status st = parse_uint(value, config::max_service_sections, n);
            if (st == num_status::ok && n == 0) {
                st = num_status::too_big;
            }
            if (st != num_status::ok) {
                report(line_, Reason::config_bad_value, name,
                       "bad max_services '%s': use a whole number from 1 to %u", clip(value).str(),
                       config::max_service_sections);
                return;
            }
            rt_.max_services = static_cast<std::uint32_t>(n);
            return;
        }
        case runtime_key::max_probes: {
            std::uint64_t n = 0;
            num_status st = parse_uint(value, config::max_probe_sections, n);
            if (st != num_status::ok || n == 0) {
                report(line_, Reason::config_bad_value, name,
                       "bad max_probes '%s': use a whole number from 1 to %u", clip(value).str(),
                       config::max_probe_sections);
                return;
            }
            rt_.max_probes = static_cast<std::uint32_t>(n);
            return;
        }
        case runtime_key::max_probe_checks: {
            std::uint64_t n = 0;
            num_status st = parse_uint(value, config::max_probe_checks, n);
            if (st != num_status::ok || n == 0) {
                report(line_, Reason::config_bad_value, name,
                       "bad max_probe_checks '%s': use a whole number from 1 to %u",
                       clip(value).str(), config::max_probe_checks);
                return;
            }
            rt_.max_probe_checks = static_cast<std::uint32_t>(n);
            return;
        }
        case runtime_key::cgroup:
            // auto | off | an absolute directory on cgroup2.
            if (value == "auto") {
                rt_.cgroup = {};
            } else if (value == "off" || value.front() == '/') {
                rt_.cgroup = value;
            } else {
                report(line_, Reason::config_bad_value, name,
                       "bad cgroup '%s': use auto, off or an absolute path on cgroup2",
                       clip(value).str());
            }
            return;
        case runtime_key::pid_record:
            rt_.pid_record = value;
            return;
        }
    }

    void service_key(std::string_view key, std::string_view value) noexcept {
        const service_key_def* k = nullptr;
        for (const service_key_def& s : service_keys) {
            if (key == s.name) {
                k = &s;
                break;
            }
        }
        if (k == nullptr) {
            const char* names[std::size(service_keys)];
            for (std::size_t i = 0; i < std::size(service_keys); ++i) {
                names[i] = service_keys[i].name;
            }
            const char* hint = suggest(key, names);
            report(line_, Reason::config_unknown_key, key, "unknown key '%s' in [service:%s]%s%s%s",
                   clip(key).str(), clip(cur_.name).str(),
                   hint != nullptr ? " (did you mean '" : "", hint != nullptr ? hint : "",
                   hint != nullptr ? "'?)" : "");
            return;
        }
        const ServiceField f = k->field;
        if (!first_and_filled(k->name, value, seen_, bit(f), key_line_[static_cast<std::size_t>(f)],
                              f == ServiceField::env)) {
            return;
        }
        const char* name = k->name;
        switch (f) {
        case ServiceField::section:
        case ServiceField::name:
            return; // not keys
        case ServiceField::argv:
            exec_value(value);
            return;
        case ServiceField::env:
            env_value(name, value);
            return;
        case ServiceField::cwd:
            cur_.cwd = value;
            return;
        case ServiceField::user:
            cur_.user = value;
            return;
        case ServiceField::group:
            cur_.group = value;
            return;
        case ServiceField::restart:
            if (value == "never") {
                cur_.restart = RestartPolicy::never;
            } else if (value == "always") {
                cur_.restart = RestartPolicy::always;
            } else if (value == "on-failure") {
                cur_.restart = RestartPolicy::on_failure;
            } else {
                report(line_, Reason::config_bad_value, name,
                       "bad restart '%s': use never, always or on-failure", clip(value).str());
            }
            return;
        case ServiceField::backoff_initial:
            duration_value(name, value, cur_.backoff_initial);
            return;
        case ServiceField::backoff_max:
            duration_value(name, value, cur_.backoff_max);
            return;
        case ServiceField::backoff_multiplier:
            multiplier_value(name, value, cur_.backoff_multiplier_x100);
            return;
        case ServiceField::backoff_jitter: {
            std::string_view digits = value;
            if (digits.back() == '%') {
                digits.remove_suffix(1);
            }
            std::uint64_t pct = 0;
            if (parse_uint(digits, 100, pct) != num_status::ok) {
                report(line_, Reason::config_bad_value, name,
                       "bad backoff_jitter '%s': use a percentage from 0 to 100, e.g. 25 or 25%%",
                       clip(value).str());
                return;
            }
            cur_.backoff_jitter_percent = static_cast<std::uint32_t>(pct);
            return;
        }
        case ServiceField::stable_after:
            duration_value(name, value, cur_.stable_after);
            return;
        case ServiceField::max_restarts: {
            std::uint64_t n = 0;
            if (parse_uint(value, std::numeric_limits<std::uint32_t>::max(), n) != num_status::ok) {
                report(line_, Reason::config_bad_value, name,
                       "bad max_restarts '%s': use a whole number up to 4294967295 "
                       "(0 = unlimited)",
                       clip(value).str());
                return;
            }
            cur_.max_restarts = static_cast<std::uint32_t>(n);
            return;
        }
        case ServiceField::intensity:
            restart_limit_value(value);
            return;
        case ServiceField::start_delay:
            duration_value(name, value, cur_.start_delay);
            return;
        case ServiceField::depends_on:
            depends_value(value);
            return;
        case ServiceField::ready:
            ready_value(value);
            return;
        case ServiceField::ready_timeout:
            duration_value(name, value, cur_.ready_timeout);
            return;
        case ServiceField::watchdog:
            duration_value(name, value, cur_.watchdog);
            return;
        case ServiceField::stop_signal:
            if (int sig = parse_signal(value); sig != 0) {
                cur_.stop_signal = sig;
                return;
            }
            report(line_, Reason::config_bad_value, name,
                   "bad stop_signal '%s': use TERM, INT, HUP, QUIT, KILL, USR1, USR2 or a "
                   "number from 1 to 64",
                   clip(value).str());
            return;
        case ServiceField::stop_timeout:
            duration_value(name, value, cur_.stop_timeout);
            return;
        case ServiceField::liveness:
            cur_.liveness = value;
            return;
        case ServiceField::on_dependency_down:
            if (value == "ignore") {
                cur_.on_dependency_down = DependencyDownAction::ignore;
            } else if (value == "stop") {
                cur_.on_dependency_down = DependencyDownAction::stop;
            } else if (value == "restart") {
                cur_.on_dependency_down = DependencyDownAction::restart;
            } else {
                report(line_, Reason::config_bad_value, name,
                       "bad on_dependency_down '%s': use ignore, stop or restart",
                       clip(value).str());
            }
            return;
        }
    }

    void probe_key_value(std::string_view key, std::string_view value) noexcept {
        const probe_key_def* d = nullptr;
        for (const probe_key_def& k : probe_keys) {
            if (key == k.name) {
                d = &k;
                break;
            }
        }
        if (d == nullptr) {
            const char* names[probe_key_count];
            for (std::size_t i = 0; i < probe_key_count; ++i) {
                names[i] = probe_keys[i].name;
            }
            const char* hint = suggest(key, names);
            report(line_, Reason::config_unknown_key, key, "unknown key '%s' in [probe:%s]%s%s%s",
                   clip(key).str(), clip(pcur_.name).str(),
                   hint != nullptr ? " (did you mean '" : "", hint != nullptr ? hint : "",
                   hint != nullptr ? "'?)" : "");
            return;
        }
        const char* name = d->name;
        const auto k = static_cast<std::size_t>(d->key);
        ProbeKind kind = ProbeKind::tcp;
        if (kind_of(d->key, kind)) {
            if (kind_def_ != nullptr && kind_def_ != d) {
                report(line_, Reason::config_bad_value, name,
                       "probe '%s' has two kinds, %s (line %u) and %s: keep one",
                       clip(pcur_.name).str(), kind_def_->name,
                       probe_key_line_[static_cast<std::size_t>(kind_def_->key)], name);
                return;
            }
            // Before the value is read: an empty one is not also "no kind".
            kind_def_ = d;
            pcur_.kind = kind;
        }
        if (!first_and_filled(name, value, probe_seen_, probe_bit(d->key), probe_key_line_[k],
                              false)) {
            probe_bad_ |= probe_bit(d->key);
            return;
        }
        const std::size_t found_before = found_;
        probe_value(*d, value);
        if (found_ != found_before) {
            probe_bad_ |= probe_bit(d->key);
        }
    }

    void probe_value(const probe_key_def& d, std::string_view value) noexcept {
        const char* name = d.name;
        switch (d.key) {
        case probe_key::tcp:
        case probe_key::http:
        case probe_key::unix_socket:
        case probe_key::file:
            // The validator parses targets: it knows each kind's syntax.
            pcur_.target = value;
            return;
        case probe_key::exec:
            exec_value(value);
            return;
        case probe_key::all:
            if (split_names(value, out_.members) == 0) {
                report(line_, Reason::config_bad_value, name,
                       "all '%s' names no probe: list names separated by spaces or commas",
                       clip(value).str());
            }
            return;
        case probe_key::timeout:
            duration_value(name, value, pcur_.timeout);
            return;
        case probe_key::startup_initial:
            duration_value(name, value, pcur_.startup_initial);
            return;
        case probe_key::startup_max:
            duration_value(name, value, pcur_.startup_max);
            return;
        case probe_key::interval:
            duration_value(name, value, pcur_.interval);
            return;
        case probe_key::startup_multiplier:
            multiplier_value(name, value, pcur_.startup_multiplier_x100);
            return;
        case probe_key::startup_tries:
            count_value(name, value, pcur_.startup_tries);
            return;
        case probe_key::success_threshold:
            count_value(name, value, pcur_.success_threshold);
            return;
        case probe_key::failure_threshold:
            count_value(name, value, pcur_.failure_threshold);
            return;
        case probe_key::expect_status:
            expect_status_value(value);
            return;
        case probe_key::exists: {
            bool yes = false;
            if (!parse_bool(value, yes)) {
                report(line_, Reason::config_bad_value, name,
                       "bad exists '%s': use yes, no, true or false", clip(value).str());
            } else if (!yes) {
                report(line_, Reason::config_bad_value, name,
                       "exists = %s cannot be checked: a file probe always requires its file to "
                       "exist (remove the key)",
                       clip(value).str());
            }
            return;
        }
        case probe_key::owner:
            owner_value(value);
            return;
        case probe_key::mode:
            mode_value(value);
            return;
        case probe_key::writable:
            if (!parse_bool(value, pcur_.writable)) {
                report(line_, Reason::config_bad_value, name,
                       "bad writable '%s': use yes, no, true or false", clip(value).str());
            }
            return;
        case probe_key::reason:
            pcur_.reason = value;
            return;
        case probe_key::resolution:
            pcur_.resolution = value;
            return;
        }
    }

    // A whole number from 1 up, for tries and thresholds.
    void count_value(const char* key, std::string_view value, std::uint32_t& out) noexcept {
        std::uint64_t n = 0;
        if (parse_uint(value, std::numeric_limits<std::uint32_t>::max(), n) != num_status::ok ||
            n == 0) {
            report(line_, Reason::config_bad_value, key,
                   "bad %s '%s': use a whole number from 1 to 4294967295", key, clip(value).str());
            return;
        }
        out = static_cast<std::uint32_t>(n);
    }

    void multiplier_value(const char* key, std::string_view value, std::uint32_t& out) noexcept {
        std::uint64_t x100 = 0;
        num_status st = parse_x100(value, 10000, x100);
        if (st != num_status::ok || x100 < 100) {
            report(line_, Reason::config_bad_value, key,
                   "bad %s '%s': use a number from 1 to 100 with at most two decimals, e.g. 2 or "
                   "1.5",
                   key, clip(value).str());
            return;
        }
        out = static_cast<std::uint32_t>(x100);
    }

    void expect_status_value(std::string_view value) noexcept {
        std::size_t i = 0;
        auto separates = [](char c) { return is_blank(c) || c == ','; };
        std::size_t codes = 0;
        while (i < value.size()) {
            while (i < value.size() && separates(value[i])) {
                ++i;
            }
            std::size_t start = i;
            while (i < value.size() && !separates(value[i])) {
                ++i;
            }
            if (i == start) {
                break;
            }
            std::string_view code = value.substr(start, i - start);
            std::uint64_t n = 0;
            if (parse_uint(code, 599, n) != num_status::ok || n < 100) {
                report(line_, Reason::config_bad_value, "expect_status",
                       "bad status '%s' in expect_status: use HTTP status codes from 100 to 599 "
                       "separated by spaces, e.g. 200 204",
                       clip(code).str());
                return;
            }
            out_.statuses.push(static_cast<std::uint16_t>(n));
            ++codes;
        }
        if (codes == 0) {
            report(line_, Reason::config_bad_value, "expect_status",
                   "expect_status '%s' names no status: list codes separated by spaces",
                   clip(value).str());
        }
    }

    // "user", "user:group" or ":group"; the names are resolved by the
    // validator, which knows the system's users.
    void owner_value(std::string_view value) noexcept {
        std::size_t colon = value.find(':');
        std::string_view user = value.substr(0, colon);
        std::string_view group =
            colon == std::string_view::npos ? std::string_view{} : value.substr(colon + 1);
        const bool blank = std::find_if(value.begin(), value.end(),
                                        [](char c) { return is_blank(c); }) != value.end();
        if (blank || group.find(':') != std::string_view::npos ||
            (colon != std::string_view::npos && group.empty()) || (user.empty() && group.empty())) {
            report(line_, Reason::config_bad_value, "owner",
                   "bad owner '%s': write user, user:group or :group", clip(value).str());
            return;
        }
        pcur_.owner = value;
    }

    // Octal permission bits, at most 07777 ("0755", "755", "4755").
    void mode_value(std::string_view value) noexcept {
        int mode = 0;
        bool ok = !value.empty() && value.size() <= 5;
        for (char c : value) {
            if (c < '0' || c > '7') {
                ok = false;
                break;
            }
            mode = mode * 8 + (c - '0');
        }
        if (!ok || mode > 07777) {
            report(line_, Reason::config_bad_value, "mode",
                   "bad mode '%s': use octal permission bits up to 7777, e.g. 0755",
                   clip(value).str());
            return;
        }
        pcur_.mode = mode;
    }

    // Reports and returns false when `value` is not a duration.
    bool duration_value(const char* key, std::string_view value, Duration& out) noexcept {
        switch (parse_duration(value, out)) {
        case dur_status::ok:
            return true;
        case dur_status::bad:
            report(line_, Reason::config_bad_value, key,
                   "bad duration '%s' for %s: use a number with ms, s, m or h, e.g. 30s",
                   clip(value).str(), key);
            return false;
        case dur_status::missing_unit: {
            clip v(value);
            report(line_, Reason::config_bad_value, key,
                   "missing unit in duration '%s' for %s: write %ss (or %sms, %sm, %sh)", v.str(),
                   key, v.str(), v.str(), v.str(), v.str());
            return false;
        }
        case dur_status::too_big:
            report(line_, Reason::config_bad_value, key,
                   "duration '%s' for %s is too large: at most 2562047h", clip(value).str(), key);
            return false;
        }
        return false;
    }

    void restart_limit_value(std::string_view value) noexcept {
        std::size_t slash = value.find('/');
        std::uint64_t n = 0;
        if (slash == std::string_view::npos ||
            parse_uint(trim(value.substr(0, slash)), std::numeric_limits<std::uint32_t>::max(),
                       n) != num_status::ok) {
            report(line_, Reason::config_bad_value, "restart_limit",
                   "bad restart_limit '%s': write N/DURATION, e.g. 5/60s for at most 5 restarts "
                   "within 60s",
                   clip(value).str());
            return;
        }
        if (n == 0) {
            report(line_, Reason::config_bad_value, "restart_limit",
                   "restart_limit '%s' allows no restart: N must be 1 or more (leave "
                   "restart_limit out for no limit)",
                   clip(value).str());
            return;
        }
        Duration window{0};
        if (!duration_value("restart_limit", trim(value.substr(slash + 1)), window)) {
            return;
        }
        if (window.count() == 0) {
            report(line_, Reason::config_bad_value, "restart_limit",
                   "restart_limit '%s' has no time window: use a duration above 0, e.g. 5/60s",
                   clip(value).str());
            return;
        }
        cur_.intensity_restarts = static_cast<std::uint32_t>(n);
        cur_.intensity_window = window;
    }

    void ready_value(std::string_view value) noexcept {
        if (value == "started") {
            cur_.ready = ReadyMode::started;
            cur_.ready_fd = -1;
            return;
        }
        if (value == "notify") {
            cur_.ready = ReadyMode::notify;
            cur_.ready_fd = -1;
            return;
        }
        constexpr std::string_view fd_prefix = "fd:";
        std::uint64_t fd = 0;
        // Above 1023 a descriptor is past the usual open-file limit (1024).
        constexpr std::uint64_t max_fd = 1023;
        if (value.substr(0, fd_prefix.size()) == fd_prefix &&
            parse_uint(value.substr(fd_prefix.size()), max_fd, fd) == num_status::ok) {
            if (fd < 3) {
                report(line_, Reason::config_bad_value, "ready",
                       "ready '%s' names a standard stream (0, 1 and 2 are stdin, stdout and "
                       "stderr): use fd:3 or higher",
                       clip(value).str());
                return;
            }
            cur_.ready = ReadyMode::fd;
            cur_.ready_fd = static_cast<int>(fd);
            return;
        }
        constexpr std::string_view probe_prefix = "probe:";
        if (value.substr(0, probe_prefix.size()) == probe_prefix) {
            std::string_view probe = trim(value.substr(probe_prefix.size()));
            if (probe.empty()) {
                report(line_, Reason::config_bad_value, "ready",
                       "ready '%s' names no probe: write ready = probe:NAME", clip(value).str());
                return;
            }
            // Whether it is a probe is the validator's to say (with this line).
            cur_.ready = ReadyMode::probe;
            cur_.ready_fd = -1;
            cur_.ready_probe = probe;
            return;
        }
        report(line_, Reason::config_bad_value, "ready",
               "bad ready '%s': use started, notify, fd:N with N from 3 to 1023, or probe:NAME",
               clip(value).str());
    }

    // Pushes the names in `value` (separated by blanks or commas) to `to`;
    // returns how many there were.
    static std::size_t split_names(std::string_view value, view_pool& to) noexcept {
        std::size_t names = 0;
        std::size_t i = 0;
        auto separates = [](char c) { return is_blank(c) || c == ','; };
        while (i < value.size()) {
            while (i < value.size() && separates(value[i])) {
                ++i;
            }
            std::size_t start = i;
            while (i < value.size() && !separates(value[i])) {
                ++i;
            }
            if (i > start) {
                to.push(value.substr(start, i - start));
                ++names;
            }
        }
        return names;
    }

    void depends_value(std::string_view value) noexcept {
        if (split_names(value, out_.deps) == 0) {
            report(line_, Reason::config_bad_value, "depends_on",
                   "depends_on '%s' names no service: list names separated by spaces or commas",
                   clip(value).str());
        }
    }

    // Splits exec's value into arguments like a shell without expansions:
    // blanks separate; '...' is literal; "..." too, except \" and \\; quoted
    // and unquoted parts join ("--name=\"a b\"" is one argument). Pass 2
    // unescapes in place (w never passes r) and stores the arguments.
    // KEY=value, with one level of quotes taken off as systemd's
    // Environment= does: around the whole assignment ("KEY=a b") or around
    // the value (KEY="a b"), double or single, matched. Nothing else is
    // unescaped. The value is moved in place in pass 2 only: pass 1 must
    // leave the bytes as pass 2 will read them.
    void env_value(const char* name, std::string_view value) noexcept {
        char* b = text_ + (value.data() - text_);
        std::size_t len = value.size();
        auto quoted = [](const char* q, std::size_t n) {
            return n >= 2 && (q[0] == '"' || q[0] == '\'') && q[n - 1] == q[0];
        };
        if (quoted(b, len)) {
            ++b;
            len -= 2;
        }
        std::string_view v(b, len);
        std::size_t eq = v.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            report(line_, Reason::config_bad_value, name,
                   "bad env '%s': write env = KEY=value, with a non-empty KEY", clip(value).str());
            return;
        }
        if (quoted(b + eq + 1, len - eq - 1)) {
            // KEY= moves one byte right, over the opening quote.
            if (out_.env.base != nullptr) {
                std::memmove(b + 1, b, eq + 1);
            }
            v = std::string_view(b + 1, len - 2);
        }
        out_.env.push(v);
    }

    void exec_value(std::string_view value) noexcept {
        char* b = text_ + (value.data() - text_);
        char* e = b + value.size();
        const bool store = out_.argv.base != nullptr;
        char* r = b;
        while (true) {
            while (r < e && is_blank(*r)) {
                ++r;
            }
            if (r == e) {
                return;
            }
            char* start = r;
            char* w = r;
            auto put = [&](char c) {
                if (store) {
                    *w = c;
                }
                ++w;
            };
            while (r < e && !is_blank(*r)) {
                if (*r == '\'' || *r == '"') {
                    const char quote = *r;
                    const char* open = r++;
                    while (r < e && *r != quote) {
                        if (quote == '"' && *r == '\\' && r + 1 < e &&
                            (r[1] == '"' || r[1] == '\\')) {
                            ++r;
                        }
                        put(*r++);
                    }
                    if (r == e) {
                        report(line_, Reason::config_bad_value, "exec",
                               "unterminated %s quote in exec at column %zu: close it with %c",
                               quote == '"' ? "double" : "single",
                               static_cast<std::size_t>(open - line_begin_) + 1, quote);
                        return;
                    }
                    ++r;
                } else {
                    put(*r++);
                }
            }
            out_.argv.push({start, static_cast<std::size_t>(w - start)});
        }
    }

    char* text_;
    std::size_t size_;
    problem_list* problems_;
    name_set* names_;
    name_set* probe_names_;
    RuntimeConfig& rt_;
    table_out& out_;
    std::size_t found_ = 0;
    std::uint32_t services_ = 0;
    std::uint32_t probes_ = 0;

    unsigned line_ = 0;
    const char* line_begin_ = nullptr;
    section kind_ = section::none;

    unsigned custos_line_ = 0;
    std::uint32_t custos_seen_ = 0;
    unsigned custos_key_line_[runtime_key_count] = {};

    ServiceSpec cur_;
    unsigned header_line_ = 0;
    std::uint32_t seen_ = 0; // bit(ServiceField) of the keys seen
    unsigned key_line_[custos::service_field_count] = {};
    std::size_t argv_start_ = 0; // of the current service or probe
    std::size_t env_start_ = 0;
    std::size_t deps_start_ = 0;

    ProbeSpec pcur_;
    unsigned probe_header_line_ = 0;
    std::uint32_t probe_seen_ = 0; // bit(probe_key) of the keys seen
    std::uint32_t probe_bad_ = 0;  // and of those already reported
    unsigned probe_key_line_[probe_key_count] = {};
    const probe_key_def* kind_def_ = nullptr; // the kind key, once seen
    std::size_t members_start_ = 0;
    std::size_t statuses_start_ = 0;
};

} // namespace

namespace {

const char* file_type_name(mode_t m) noexcept {
    if (S_ISDIR(m)) {
        return "directory";
    }
    if (S_ISFIFO(m)) {
        return "fifo";
    }
    if (S_ISSOCK(m)) {
        return "socket";
    }
    if (S_ISCHR(m)) {
        return "character device";
    }
    if (S_ISBLK(m)) {
        return "block device";
    }
    return "not a file";
}

} // namespace

void config::clear() noexcept {
    runtime_ = RuntimeConfig{};
    services_ = nullptr;
    service_count_ = 0;
    lines_ = nullptr;
    probes_ = nullptr;
    probe_count_ = 0;
    probe_lines_ = nullptr;
}

bool config::parse_owned(char* text, std::size_t size, problem_list& problems) noexcept {
    // A UTF-8 byte order mark, as some Windows editors write: not text, and
    // it would glue itself to the first key or header invisibly. Skipped;
    // line numbers do not change.
    if (size >= 3 && std::memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        size -= 3;
    }
    // Pass 1: check everything, count what pass 2 stores.
    arena scratch;
    arena probe_scratch;
    name_set names;
    name_set probe_names;
    std::size_t headers = count_headers(text, size);
    if (!names.reserve(scratch, headers < max_service_sections ? headers : max_service_sections) ||
        !probe_names.reserve(probe_scratch,
                             headers < max_probe_sections ? headers : max_probe_sections)) {
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                     "out of memory reading the config");
        return false;
    }
    table_out none;
    parser check(text, size, &problems, &names, &probe_names, runtime_, none);
    check.run();
    if (check.found() != 0) {
        clear();
        return false;
    }

    // Pass 2: the same walk, storing into memory of exactly the right size.
    const table_counts counts = check.counts();
    table_out out;
    arena measure;
    lay_out(measure, counts, out);
    if (!data_.reserve(measure.needed())) {
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                     "out of memory: the table needs %zu bytes", measure.needed());
        clear();
        return false;
    }
    out = table_out{};
    lay_out(data_, counts, out);
    CUSTOS_ASSERT(out.services != nullptr && out.lines != nullptr && out.probes != nullptr &&
                  out.probe_lines != nullptr && out.argv.base != nullptr &&
                  out.env.base != nullptr && out.deps.base != nullptr &&
                  out.members.base != nullptr && out.statuses.base != nullptr);
    runtime_ = RuntimeConfig{};
    parser build(text, size, nullptr, nullptr, nullptr, runtime_, out);
    build.run();
    CUSTOS_ASSERT(build.found() == 0 && build.counts() == counts);
    services_ = out.services;
    service_count_ = counts.services;
    lines_ = out.lines;
    probes_ = out.probes;
    probe_count_ = counts.probes;
    probe_lines_ = out.probe_lines;
    return true;
}

bool config::parse(std::string_view text, problem_list& problems) noexcept {
    clear();
    path_ = "";
    if (text.size() > max_file_bytes) {
        problems.add(0, Error(Reason::config_unreadable, EFBIG, "config"),
                     "the config is %zu bytes; the limit is %zu (1 MiB)", text.size(),
                     max_file_bytes);
        return false;
    }
    if (!text_.reserve(text.size() + 1)) {
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, "config"),
                     "out of memory copying the config (%zu bytes)", text.size());
        return false;
    }
    char* copy = text_.copy(text);
    CUSTOS_ASSERT(copy != nullptr);
    return parse_owned(copy, text.size(), problems);
}

bool config::load(const char* path, problem_list& problems) noexcept {
    clear();
    path_ = "";
    if (path == nullptr) {
        path = "";
    }
    // O_NONBLOCK: opening a FIFO for reading must not wait for a writer;
    // what is not a regular file is refused below, before any read.
    int fd = ::open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        problems.add(0, Error(Reason::config_unreadable, e, path), "cannot open: %s",
                     std::strerror(e));
        return false;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        problems.add(0, Error(Reason::config_unreadable, e, path), "cannot stat: %s",
                     std::strerror(e));
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        // A FIFO or a device may never end, or block a --check for ever.
        ::close(fd);
        problems.add(0,
                     Error(Reason::config_unreadable, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, path),
                     "not a regular file (%s)", file_type_name(st.st_mode));
        return false;
    }
    if (static_cast<std::uint64_t>(st.st_size) > max_file_bytes) {
        ::close(fd);
        problems.add(0, Error(Reason::config_unreadable, EFBIG, path),
                     "the config is %llu bytes; the limit is %zu (1 MiB)",
                     static_cast<unsigned long long>(st.st_size), max_file_bytes);
        return false;
    }
    // One byte more than expected, to notice a file that grew.
    const std::size_t expect = static_cast<std::size_t>(st.st_size);
    const std::size_t path_len = std::strlen(path);
    if (!text_.reserve(path_len + 1 + expect + 1)) {
        ::close(fd);
        problems.add(0, Error(Reason::out_of_memory, ENOMEM, path),
                     "out of memory reading the config (%zu bytes)", expect);
        return false;
    }
    path_ = text_.copy(path);
    auto* buf = static_cast<char*>(text_.take(expect + 1, 1));
    CUSTOS_ASSERT(path_ != nullptr && buf != nullptr);
    std::size_t got = 0;
    while (got < expect + 1) {
        ssize_t n = ::read(fd, buf + got, expect + 1 - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            int e = errno;
            ::close(fd);
            problems.add(0, Error(Reason::config_unreadable, e, path), "cannot read: %s",
                         std::strerror(e));
            return false;
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (got > max_file_bytes) {
        problems.add(0, Error(Reason::config_unreadable, EFBIG, path),
                     "the config is over %zu bytes (1 MiB), the limit", max_file_bytes);
        return false;
    }
    if (got > expect) {
        problems.add(0, Error(Reason::config_unreadable, EAGAIN, path),
                     "the file grew while custosd read it: load it again once it is complete");
        return false;
    }
    return parse_owned(buf, got, problems);
}

unsigned config::line_of(std::uint32_t service, custos::ServiceField f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    if (service >= service_count_ || lines_ == nullptr || i >= custos::service_field_count) {
        return 0;
    }
    return lines_[std::size_t{service} * custos::service_field_count + i];
}

unsigned config::probe_line_of(std::uint32_t probe, custos::ProbeField f) const noexcept {
    auto i = static_cast<std::size_t>(f);
    if (probe >= probe_count_ || probe_lines_ == nullptr || i >= custos::probe_field_count) {
        return 0;
    }
    return probe_lines_[std::size_t{probe} * custos::probe_field_count + i];
}

} // namespace custos::cfg
