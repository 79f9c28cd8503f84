// Value parsers for the settings of a supervision table, as an operator
// writes them: durations, multipliers, counts, percentages, booleans,
// signal names, user:group owners, octal modes, name lists, restart limits
// and readiness. custosd's config reader uses them; custosctl can, for the
// same words in the same syntax.
//
// Two levels:
//   - parse_*: the syntax alone, a small status, no message;
//   - *_value: the syntax and the limits of one setting, returning the value
//     or a value_error: the sentence for the operator, which quotes the
//     value through clip (control bytes escaped, cut after 48 bytes).
// Everything here is pure: no I/O, no allocation, no state; nothing throws.
// The messages are custosd's (its tests compare them byte for byte): change
// a word here and the config's FILE:LINE messages change with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include <custos/duration.hpp>
#include <custos/expected.hpp>
#include <custos/service.hpp>
#include <custos/table.hpp>

namespace custos::tbl {

// User text made safe for a message: control bytes become \xHH escapes (a
// terminal must not interpret them, and the operator must see what is in
// the file) and long text is cut after 48 bytes of output, never inside a
// UTF-8 sequence nor inside an escape, ending in "...".
class clip {
public:
    explicit clip(std::string_view s) noexcept;
    const char* str() const noexcept { return buf_; }

private:
    static constexpr std::size_t keep = 48;
    char buf_[keep + 4];
};

// --- syntax only ---

enum class num_status : std::uint8_t { ok, bad, too_big };

// Decimal digits only (no sign, no blanks), at most `max`. bad: empty or
// not all digits; too_big: above `max` (checked without overflow).
num_status parse_uint(std::string_view s, std::uint64_t max, std::uint64_t& out) noexcept;

// A decimal with at most two decimals ("2", "1.5", "1.25") as an integer
// x100, at most `max_x100`: the multipliers need no floating point. bad:
// no digits before the dot, nothing or more than two digits after it.
num_status parse_x100(std::string_view s, std::uint64_t max_x100, std::uint64_t& out) noexcept;

enum class dur_status : std::uint8_t { ok, bad, missing_unit, too_big };

// The runtime turns durations into signed 64-bit nanoseconds: 2562047 h is
// the most that holds.
inline constexpr std::uint64_t max_duration_ms = 2562047ull * 3600 * 1000;

// "1500ms", "30s", "5m", "1h", or "0" (any number of zeros) alone. Whole
// numbers only ("1.5s" is bad). missing_unit: a number other than 0 with
// no unit; too_big: over max_duration_ms.
dur_status parse_duration(std::string_view s, Duration& out) noexcept;

// A size in bytes: digits, then optionally K, M, G or T (powers of 1024,
// either case), optionally followed by "B" or "iB" ("4096", "64K", "16MiB",
// "1GB"), at most `max`. bad: anything else; too_big: over `max` (checked
// without overflow).
num_status parse_size(std::string_view s, std::uint64_t max, std::uint64_t& out) noexcept;

// "TERM", "SIGTERM" (any case: TERM, INT, HUP, QUIT, KILL, USR1, USR2) or
// a number from 1 to 64 ("0" is bad); 0 when bad.
int parse_signal(std::string_view s) noexcept;

// "yes", "no", "true" or "false" (lower case); false when it is none.
bool parse_bool(std::string_view s, bool& out) noexcept;

// The names of a list separated by blanks and commas, empty ones skipped:
//   name_list l(" a,,b "); for (std::string_view n; l.next(n);) ...
class name_list {
public:
    explicit name_list(std::string_view s) noexcept : s_(s) {}
    // The next name, false at the end.
    bool next(std::string_view& name) noexcept;

private:
    std::string_view s_;
    std::size_t i_ = 0;
};

// "user", "user:group" or ":group": no blank, at most one ':', neither an
// empty group after ':' nor both names empty. The names are not resolved.
bool is_owner(std::string_view s) noexcept;

// --- one setting: its limits and its message ---

// A refused value: the operator's sentence, NUL-terminated.
struct value_error {
    char message[200] = {};
};

template <class T>
using value_result = tl::expected<T, value_error>;

// A value_error from a printf-style message (truncated to fit).
[[gnu::format(printf, 1, 2)]] tl::unexpected<value_error> refuse(const char* fmt, ...) noexcept;

// A duration for `key` (parse_duration); the message names the key.
value_result<Duration> duration_value(std::string_view key, std::string_view value) noexcept;

// A multiplier from 1 to 100 with at most two decimals, as x100 (200 = x2).
value_result<std::uint32_t> multiplier_value(std::string_view key, std::string_view value) noexcept;

// A whole number from 1 to `max` (tries, thresholds, capacities).
value_result<std::uint32_t>
count_value(std::string_view key, std::string_view value,
            std::uint32_t max = std::numeric_limits<std::uint32_t>::max()) noexcept;

// A whole number up to 4294967295, where 0 means unlimited (max_restarts).
value_result<std::uint32_t> limit_value(std::string_view key, std::string_view value) noexcept;

// A percentage from 0 to 100, with or without '%' (backoff_jitter).
value_result<std::uint32_t> percent_value(std::string_view key, std::string_view value) noexcept;

// A size for `key` (parse_size), any up to 2^64 - 1; the message names the key.
value_result<std::uint64_t> size_value(std::string_view key, std::string_view value) noexcept;

// yes, no, true or false.
value_result<bool> bool_value(std::string_view key, std::string_view value) noexcept;
// A size for `key` (parse_size), at most `max`; the message names the key
// and the bound.
value_result<std::uint64_t> bytes_value(std::string_view key, std::string_view value,
                                        std::uint64_t max) noexcept;

// A signal (parse_signal) for `key`.
value_result<int> signal_value(std::string_view key, std::string_view value) noexcept;

// restart: never, always or on-failure.
value_result<RestartPolicy> restart_value(std::string_view value) noexcept;

// on_dependency_down: ignore, stop or restart.
value_result<DependencyDownAction> dependency_down_value(std::string_view value) noexcept;
// auto, file, ring, inherit, null (ServiceSpec::output).
value_result<OutputMode> output_value(std::string_view value) noexcept;

// restart_limit = N/DURATION: at most N restarts (N >= 1) within a window
// above 0. Blanks around N and DURATION are allowed.
struct restart_limit {
    std::uint32_t restarts = 0;
    Duration window{0};
};
value_result<restart_limit> restart_limit_value(std::string_view value) noexcept;

// ready = started | notify | fd:N (3 <= N <= 1023) | probe:NAME. The probe
// name is a view into `value`; whether it names a probe is the validator's
// to say.
struct readiness {
    ReadyMode mode = ReadyMode::started;
    int fd = -1;
    std::string_view probe;
};
value_result<readiness> ready_value(std::string_view value) noexcept;

// channel: "fd:N", N from 3 to 1023.
value_result<int> channel_value(std::string_view value) noexcept;

// An owner (is_owner), returned as given.
value_result<std::string_view> owner_value(std::string_view value) noexcept;

// Octal permission bits, at most 07777 ("0755", "755", "4755"; at most five
// digits).
value_result<int> mode_value(std::string_view value) noexcept;

// One HTTP status code of expect_status, from 100 to 599.
value_result<std::uint16_t> status_code_value(std::string_view code) noexcept;

// cgroup: "auto" (an empty view: custos picks), "off", or an absolute path.
value_result<std::string_view> cgroup_value(std::string_view value) noexcept;

// notify_dir: short enough that DIR/SERVICE fits a Unix socket address.
// Relative paths are allowed.
value_result<std::string_view> notify_dir_value(std::string_view value) noexcept;

// notify_fd: the s6 notification descriptor custos itself signals
// readiness on, from 3 to 1023 (0, 1 and 2 are the standard streams). Also
// custosd's --notify-fd.
value_result<int> notify_fd_value(std::string_view value) noexcept;

// keepalive_gate: none or health.
value_result<KeepaliveGate> keepalive_gate_value(std::string_view value) noexcept;

} // namespace custos::tbl
