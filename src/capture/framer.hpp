// A service's captured output cut into lines: one framer per service per
// stream (stdout, stderr), fed the bytes the process host drained from the
// service's pipe, emitting whole prefixed lines.
//
// Owns: a line buffer of max_line bytes (the caller's, from the arena: see
// bind()). Never allocates; each feed() is bounded by its input.
//
// A line ends at '\n'; a '\r' right before the '\n' is dropped (CRLF
// output reads as LF), wherever the chunk boundaries fall. A line whose text
// reaches max_line_text bytes is cut there and the rest goes on as the next
// line; the cut is taken only when a further byte comes that is not the
// '\n' ending it, so a line of exactly max_line_text bytes stays one line.
// Every other byte is kept as it is: NUL, other control bytes, malformed
// UTF-8 (readers escape what they show). A partial line is held until its
// '\n' or flush() (the service exited or is stopping).
//
// Each emitted line is `<ts> <stream> <text>\n`: ts is RFC 3339 UTC with
// milliseconds and 'Z' (2026-12-07T21:50:58.123Z) while the clock is
// trusted, else the monotonic clock as `+<seconds>.<ms>` (+12.345), taken
// when the line's first byte came (for an empty line: its '\n'); stream is
// "stdout" or "stderr". So no emitted line holds a '\n' but its last byte:
// the ring and the files find lines by '\n' alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace custos::capture {

// The longest text of one line; a longer one is cut into several.
inline constexpr std::size_t max_line_text = 4096;
// The longest prefix: a wall time (24 bytes; a monotonic one is at most
// 15: '+', 10 digits, '.', 3 digits), a space, "stdout"/"stderr"/"custos",
// a space.
inline constexpr std::size_t max_prefix = 24 + 1 + 6 + 1;
// The longest emitted line: prefix, text, '\n'.
inline constexpr std::size_t max_line = max_prefix + max_line_text + 1;

enum class stream_id : std::uint8_t {
    out = 1, // stdout
    err = 2, // stderr
};

// "stdout", "stderr".
std::string_view stream_name(stream_id s) noexcept;

// When bytes came: the caller's clocks, read once per chunk.
struct stamp {
    std::int64_t wall_ns = 0; // CLOCK_REALTIME, ns since 1970
    std::int64_t mono_ns = 0; // CLOCK_MONOTONIC
    bool trusted = false;     // the wall clock is known to be set
};

// Writes the timestamp (see the top of this file) at `b` (room for 24
// bytes) and returns its length: 24 for a trusted wall time, 6 to 15 for
// a monotonic one (a negative one counts as 0).
std::size_t put_time(char* b, const stamp& at) noexcept;

// Where the lines go: called for each whole line, its '\n' included; the
// bytes are valid only during the call.
struct line_out {
    void (*fn)(void* ctx, const char* line, std::size_t len) noexcept = nullptr;
    void* ctx = nullptr;
};

class framer {
public:
    framer() = default;
    framer(const framer&) = delete;
    framer& operator=(const framer&) = delete;

    // Uses `buf` (max_line bytes, the caller's, outliving the framer) and
    // starts with nothing held.
    void bind(char* buf, stream_id s) noexcept;

    // Cuts `len` bytes that came at `at` into lines, emitting each whole
    // one to `out`; keeps a partial last line. Unbound: nothing happens.
    void feed(const char* data, std::size_t len, const stamp& at, line_out out) noexcept;

    // Emits the partial line, if any (a held '\r' included: no '\n'
    // followed it). `at` stamps a line begun by that '\r' alone.
    void flush(const stamp& at, line_out out) noexcept;

    // Bytes of text held (a partial line), not counting a held '\r'.
    std::size_t held() const noexcept { return len_; }
    // Lines cut at max_line_text so far.
    std::uint64_t splits() const noexcept { return splits_; }

private:
    void put(const char* p, std::size_t n, const stamp& at, line_out out) noexcept;
    void put_cr(const stamp& at, line_out out) noexcept;
    void emit(line_out out) noexcept;

    char* buf_ = nullptr; // max_prefix bytes of room, then the text
    std::size_t len_ = 0; // text held
    std::uint64_t splits_ = 0;
    stamp start_{};     // when the held line began
    bool open_ = false; // a line has begun (possibly empty so far)
    bool cr_ = false;   // a '\r' came last: dropped if '\n' follows
    stream_id stream_ = stream_id::out;
};

} // namespace custos::capture
