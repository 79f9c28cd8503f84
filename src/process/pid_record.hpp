// The pid record: where custos notes, without cgroups, which processes it
// started, so that a custosd started after one that was SIGKILLed can find
// and kill what that one left running.
//
// Owns: one file (the runtime picks the path, e.g. /run/custos/custosd.pids;
// a tmpfs that a reboot empties is the right place), optionally flock'ed
// for as long as the object lives, made of a header and one fixed-size slot
// per unit: {pid, start time, name}. A service leads its own session and
// process group (the spawner calls setsid()), so its pid is also its pgid
// and its sid. The start time (field 22 of /proc/<pid>/stat, clock ticks
// after boot) proves that a live pid is still the process recorded, not a
// newcomer that got the recycled number; the header's boot id proves that
// the ticks count from the same boot.
//
// States: closed -> open (open(): earlier records kept for
// reap_leftovers()) -> closed (close()/destructor: the descriptor closes,
// the records stay: that is the point, a crash leaves them behind).
//
// Invariants: memory is never allocated (the file is the storage);
// record() and clear() are one pwrite each and may run on the reactor
// thread; reap_leftovers() scans /proc and is for init.
//
// What remains impossible without cgroups, and why: a process that called
// setsid() (a new session, e.g. a daemon that double-forks) left both the
// service's group and its session; after custosd died its parent is init,
// and nothing the kernel keeps links it to the service any more, so it is
// neither found nor provably ours. Likewise members of a session whose
// leader has already exited are left alone: with the leader gone, the
// session id could be a newer, unrelated session that reused the number.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

namespace custos::process {

class pid_record {
public:
    // The on-disk layout, native byte order (the file never leaves the
    // machine). Exposed for tests that forge records.
    static constexpr std::uint32_t magic = 0x50545343; // "CSTP"
    static constexpr std::uint32_t version = 1;
    static constexpr std::size_t name_capacity = 47;

    struct header {
        std::uint32_t magic;
        std::uint32_t version;
        std::uint32_t slot_size;
        std::uint32_t slots;
        char boot_id[36]; // /proc/sys/kernel/random/boot_id without the newline
        char pad[12];
    };
    struct slot {
        std::int32_t pid;  // 0: empty
        std::uint32_t pad; // keeps start_time 8-aligned on every target
        std::uint64_t start_time;
        char name[name_capacity + 1];
    };
    static_assert(sizeof(header) == 64, "the file layout is fixed");
    static_assert(sizeof(slot) == 64, "the file layout is fixed");

    // One process group / session killed by reap_leftovers().
    struct leftover {
        std::string_view name; // the unit name recorded; valid during the call only
        int pid = 0;           // the recorded leader (pgid and sid)
        int killed = 0;        // processes of its session sent SIGKILL
    };
    using leftover_report = void (*)(void* ctx, const leftover& l) noexcept;

    pid_record() = default;
    ~pid_record() { close(); }
    pid_record(const pid_record&) = delete;
    pid_record& operator=(const pid_record&) = delete;

    // Opens or creates (0600, O_CLOEXEC) the file at `path` with `slots`
    // slots. With `lock`, takes flock(LOCK_EX|LOCK_NB) and holds it until
    // close(). A file of this layout from the same boot keeps its records
    // (for reap_leftovers()) and grows to `slots` if smaller; anything else
    // (new, other boot, other layout, truncated) is reset to empty slots.
    // Errors: invalid_argument (empty path, slots 0, already open);
    // instance_running (lock: another process holds it; errno
    // EWOULDBLOCK); pid_record_unavailable (open, flock, read or write
    // failed; errno, subject the path).
    Result<void> open(const char* path, std::uint32_t slots, bool lock = true) noexcept;

    // Notes that `pid` (just spawned, a session leader) runs unit `name`
    // (truncated to name_capacity) in `slot`: reads its start time and
    // writes the slot. Allocates nothing. Errors: invalid_argument (not
    // open, slot out of range, pid <= 1); process_exited (ESRCH: the pid
    // is already gone, nothing recorded); pid_record_unavailable (pwrite
    // failed; errno).
    Result<void> record(std::uint32_t slot, int pid, std::string_view name) noexcept;

    // Empties `slot` (the unit's leader was reaped). Allocates nothing.
    // Errors: invalid_argument; pid_record_unavailable (pwrite; errno).
    Result<void> clear(std::uint32_t slot) noexcept;

    // For every non-empty slot (all slots the file holds, also beyond
    // `slots` of this open): when a process with that pid lives and its
    // start time matches the record, SIGKILLs its process group and every
    // process of its session started no earlier than it (scanning /proc,
    // until a pass finds none), and calls `report`; then empties the slot
    // either way. A live pid with another start time is a stranger and is
    // not touched. At init (it blocks while it scans /proc). The killed
    // processes are reaped by their new parent (init or a subreaper), not
    // here. Returns the number of sessions killed. Errors: invalid_argument
    // (not open); pid_record_unavailable (reading or writing the file).
    Result<std::uint32_t> reap_leftovers(leftover_report report, void* ctx) noexcept;

    template <class F>
    Result<std::uint32_t> reap_leftovers(F& f) noexcept {
        return reap_leftovers([](void* c, const leftover& l) noexcept { (*static_cast<F*>(c))(l); },
                              &f);
    }

    // Closes the file (and so releases the lock); the records stay.
    void close() noexcept;

    bool is_open() const noexcept { return fd_ >= 0; }
    std::uint32_t slots() const noexcept { return slots_; }

private:
    int fd_ = -1;
    std::uint32_t slots_ = 0;      // this open's
    std::uint32_t file_slots_ = 0; // the file's (>= slots_)
};

// Reads the start time (field 22 of /proc/<pid>/stat, clock ticks after
// boot) of `pid`; false when it does not exist.
bool process_start_time(int pid, std::uint64_t& out) noexcept;

} // namespace custos::process
