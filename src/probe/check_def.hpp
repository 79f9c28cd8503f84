// What the check engine's sources share: a probe's check definition
// (parsed once at init), the steps of each kind and the buffer sizes.
// Private to the engine: check.cpp lays out, starts, cancels and ends checks
// and runs composites; check_net.cpp runs tcp, http and unix checks;
// check_local.cpp runs exec and file checks.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include <custos/probe.hpp>

#include "probe/check.hpp"
#include "probe/target.hpp"
#include "process/spawn.hpp"

namespace custos::probe {

// What a probe's checks share, parsed once at init.
struct check_def {
    ProbeKind kind = ProbeKind::tcp;
    std::string_view name;
    char label[112] = {}; // "127.0.0.1:1883", "http://h/x", "/run/x.sock"
    // tcp, http
    host_port where;
    // http
    const char* request = nullptr;
    std::uint32_t request_len = 0;
    std::span<const std::uint16_t> expect;
    // unix
    sockaddr_un unix_addr{};
    socklen_t unix_len = 0;
    // file
    const char* path = nullptr;
    const char* tmp_inside = nullptr; // the temporary file when path is a directory
    const char* tmp_beside = nullptr; // ... when it is not: in its parent
    tbl::owner_ids owner;
    int mode = -1;
    bool writable = false;
    // exec
    process::spawn_request rq;
    // all
    std::uint32_t* members = nullptr;
    std::uint32_t member_count = 0;
};

inline constexpr std::uint32_t http_buffer = 1024;
// A writable check's temporary file: the probe's prefix (under 256 bytes,
// checked at init) and the instance number.
inline constexpr std::size_t tmp_path_max = 256 + 12;

// Steps of the network kinds.
enum class net_stage : std::uint8_t { resolve, socket, connect, send, recv, close };
// An exec check's last line of output kept for its failure message.
inline constexpr std::size_t exec_line_max = 120;
// What is read of an exec run's output pipe at its exit, at most: the pipe
// holds 64 KiB, unless an escaped grandchild keeps writing.
inline constexpr std::size_t exec_drain_max = 128 * 1024;

// One exec instance's output: the read buffer and the last non-empty line
// seen (its first exec_line_max bytes, control bytes as '?', the CR of a
// CRLF dropped), folded in as the bytes come.
struct exec_tail {
    char buf[512];
    char cur[exec_line_max]; // the line being read
    char last[exec_line_max + 1];
    std::uint8_t cur_len = 0;
    std::uint8_t last_len = 0;
    bool cr_last = false; // cur ends with a CR (stored as '?')

    void reset() noexcept {
        cur_len = 0;
        last_len = 0;
        cr_last = false;
        last[0] = '\0';
    }
    void feed(const char* data, std::size_t n) noexcept {
        for (std::size_t k = 0; k < n; ++k) {
            const auto b = static_cast<unsigned char>(data[k]);
            if (b == '\n') {
                end_line();
            } else if (cur_len < exec_line_max) {
                cur[cur_len++] = b < 0x20 || b == 0x7f ? '?' : static_cast<char>(b);
                cr_last = b == '\r';
            }
        }
    }
    // The line so far counts as the last (the output ended without a
    // newline); the text, NUL-terminated.
    const char* line() noexcept {
        end_line();
        last[last_len] = '\0';
        return last;
    }

private:
    void end_line() noexcept {
        if (cr_last) {
            --cur_len; // CRLF: the CR is no part of the text
        }
        if (cur_len > 0) {
            std::memcpy(last, cur, cur_len);
            last_len = cur_len;
        }
        cur_len = 0;
        cr_last = false;
    }
};

// Steps of the exec kind: the child runs; killed, being reaped; exited,
// the output read being cancelled.
enum class exec_stage : std::uint8_t { wait, reap, drain };
// Steps of the file kind.
enum class file_stage : std::uint8_t { stat, open, write, close, unlink };

inline const char* errno_name(int err) noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    const char* d = strerrordesc_np(err);
    return d != nullptr ? d : "unknown error";
#else
    (void)err;
    return "error";
#endif
}

} // namespace custos::probe
