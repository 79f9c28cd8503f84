// One service's process record in process::host (private to host*.cpp).
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/service.hpp>

#include "io/reactor.hpp"
#include "process/host.hpp"
#include "process/notify.hpp"

namespace custos::process {

inline constexpr std::size_t status_text_max = 127;

// What one definition lays out in a slot's room (see host::lay_exec).
struct exec_data {
    char* path = nullptr;
    char* name = nullptr;
    char** argv = nullptr;
    char** envp = nullptr;
    char* wd_pid_slot = nullptr;
    char* cwd = nullptr;
    char* runtime_dir = nullptr;
};

// One captured stream of a slot (host.hpp, Output): its pipe and the read
// always in flight on it.
struct out_stream {
    int rd = -1; // custos's read end, O_NONBLOCK, O_CLOEXEC
    int wr = -1; // the write end the children get as 1 or 2; kept open
    // A new pipe's read end made while the old one's cancelled read had
    // not come back yet (a slot vacated and refilled within a turn or
    // two): it takes over in the callback.
    int next_rd = -1;
    bool closing = false; // rd's read was cancelled: close rd when it returns
    bool flush = false;   // ... after delivering what rd still holds (close_output())
    int stream = 1;       // 1 stdout, 2 stderr
    char* buf = nullptr;  // host::output_buffer bytes (arena)
    proc* owner = nullptr;
    io::op op;
};

// What one service slot's process needs and what watches it. The exec
// data (path to runtime_dir, and name) lives in the slot's room, rewritten
// by host::redefine(); what a running process's bookkeeping reads of its
// definition is copied at its spawn (run_uid, run_ready).
struct proc {
    void* room = nullptr; // exec data, room_bytes long (arena)
    std::size_t room_bytes = 0;
    bool occupied = false;    // false: a vacant slot (no definition)
    bool make_rundir = false; // the definition wants runtime_dir made at spawn
    char* path = nullptr;
    char** argv = nullptr;
    char** envp = nullptr;
    char* wd_pid_slot = nullptr;
    char* cwd = nullptr;
    // ROOT/NAME, or none; kept by a redefine that no longer wants one, so
    // that the stop of the process that used it still removes it.
    char* runtime_dir = nullptr;
    int uid = -1;
    int gid = -1;
    std::string_view name;           // the service's (copied into the arena)
    notify_socket* notify = nullptr; // its own NOTIFY_SOCKET, or none
    int cg_slot = -1;                // its cgroup, or none (process group only)
    // MAINPID= named this process (in the service): followed when the
    // process custos started exits.
    int main_pid = 0;
    ReadyMode ready_mode = ReadyMode::started;
    int ready_fd = -1;
    int channel_fd = -1; // the child's channel descriptor number, or none
    OutputMode output = OutputMode::automatic;

    int pid = 0;
    int pidfd = -1;
    // The running process's definition, for what arrives from it after a
    // redefine (notify attribution and readiness).
    int run_uid = -1;
    ReadyMode run_ready = ReadyMode::started;
    // The process group SIGKILLed when its leader exited in a stop, until
    // none of it is left (see host::exited()).
    int remnant_pgid = 0;
    io::op exit_op;
    siginfo_t info{};
    int ready_rd = -1;
    int channel = -1; // custos's end of the running process's channel
    io::op ready_op;
    char ready_buf[64] = {};
    char status_text[status_text_max + 1] = {};
    std::uint8_t status_len = 0;
    int notify_errno = 0;
    // Discarding what an earlier process left queued on the socket.
    bool notify_stale = false;
    out_stream out[2]; // stdout, stderr (captured output)
    std::uint64_t output_bytes = 0;
    host* owner = nullptr;
    std::uint32_t index = 0;
};

} // namespace custos::process
