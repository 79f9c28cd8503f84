// The metrics as a file, for node_exporter's textfile collector and any
// scraper that reads files (ControlConfig::metrics_textfile).
//
// Owns: one wheel timer and a 16 KiB render buffer (from the runtime's
// arena). Every interval, on the reactor thread, it renders GET /metrics'
// document into PATH.tmp a buffer at a time (plain write(2): a local file,
// under 100 KiB for 64 services; no peer to wait for), then renames it over
// PATH: a reader sees the old file or the new one, never half of one. The
// timer has slack (a tenth of the interval) so it shares wake-ups.
// A failed write leaves PATH as it was, removes PATH.tmp and is counted;
// the next interval tries again.
#pragma once

#include <cstdint>

#include <custos/control.hpp>
#include <custos/error.hpp>

#include "core/arena.hpp"
#include "io/reactor.hpp"
#include "status/render.hpp"

namespace custos::control {

class textfile {
public:
    // Takes the buffer (two-pass sizing). cfg.metrics_textfile empty:
    // nothing. Errors: InvalidArgument (path too long, interval under 1 s),
    // OutOfMemory.
    [[nodiscard]] Result<void> init(arena& mem, const ControlConfig& cfg, io::reactor& r,
                                    status::render_context& ctx) noexcept;
    // Writes the file now, then every interval.
    void start() noexcept;
    void stop() noexcept;
    bool enabled() const noexcept { return buf_ != nullptr; }

    // Whole files written, and attempts that failed (with the last errno).
    std::uint64_t writes() const noexcept { return writes_; }
    std::uint64_t failures() const noexcept { return failures_; }
    int last_errno() const noexcept { return last_errno_; }

    // Writes the file once (the timer's work); true when it was replaced.
    bool write_now() noexcept;

private:
    static void on_timer(io::timer& t) noexcept;

    io::reactor* reactor_ = nullptr;
    status::render_context* ctx_ = nullptr;
    char* buf_ = nullptr;
    nanos interval_{0};
    char path_[256] = {};
    char tmp_[260] = {};
    io::timer timer_{&textfile::on_timer, this};
    std::uint64_t writes_ = 0;
    std::uint64_t failures_ = 0;
    int last_errno_ = 0;
};

} // namespace custos::control
