// The cgroup tree: one cgroup v2 directory per unit (service or exec-probe
// run) under one custos cgroup, so that every process a unit starts, also a
// grandchild that called setsid(), can be found and killed, and so that a
// restarted custosd finds what a SIGKILLed one left behind.
//
// Owns: the root directory (created by open() unless an explicit root
// already existed), one child directory per added unit, and per unit the
// descriptors of the directory, cgroup.procs (written by the spawned child,
// see spawn_request::cgroup_procs_fd), cgroup.kill (Linux >= 5.14) and
// cgroup.events. No controller is enabled anywhere: custos only needs the
// grouping, and creating children without controllers is allowed whatever
// the no-internal-process rule says about its own cgroup.
//
// States: closed -> open (open()) -> units added (add() or add_vacant(),
// init only) -> closed (close() or the destructor: descriptors closed, unit
// directories and a root this object created removed, best effort). For
// reload, a unit is vacant (no directory) or assigned: assign() and
// release() move one between the two at run time.
//
// Invariants: memory is taken once, in open(); add() and reap_leftovers()
// run at init; kill(), populated(), contains() and procs_fd() allocate
// nothing and may run on the reactor thread; kill_until_empty() blocks
// (bounded) and is for init and shutdown only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

#include "core/arena.hpp"

namespace custos::process {

class cgroup_tree {
public:
    // Longest unit name add() takes (a service name is at most 31).
    static constexpr std::size_t name_capacity = 63;

    struct options {
        // false: never use cgroup.kill, even where the kernel has it: every
        // signal goes through the pid list (tests of the pre-5.14 path).
        bool use_cgroup_kill = true;
    };

    // One leftover cgroup found by reap_leftovers().
    struct leftover {
        std::string_view name; // the child directory's name; valid during the call only
        int killed = 0;        // processes found in it and sent SIGKILL
        int err = 0;           // 0: emptied (and removed unless reused);
                               // ETIMEDOUT: still populated after the limit;
                               // another errno: could not be read or killed
    };
    using leftover_report = void (*)(void* ctx, const leftover& l) noexcept;

    cgroup_tree() = default;
    explicit cgroup_tree(const options& o) noexcept : opts_(o) {}
    ~cgroup_tree() { close(); }
    cgroup_tree(const cgroup_tree&) = delete;
    cgroup_tree& operator=(const cgroup_tree&) = delete;

    // Opens (creating it, mode 0755, if missing) the custos cgroup and takes
    // room for `max_units` units.
    //   root empty: automatic: the first cgroup2 mount in
    //     /proc/self/mountinfo, our own cgroup from /proc/self/cgroup's
    //     "0::" line, and "<mount><own path>/custos".
    //   root absolute: that directory, which must be on a cgroup2 fs (its
    //     parent must exist when it does not).
    // Errors: invalid_argument (relative root, already open, max_units 0);
    // cgroup_unavailable with ENOENT (no cgroup2 mount, no "0::" line, or
    // the explicit root's parent missing), ENOTSUP (the explicit root is
    // not on cgroup2), EACCES/EPERM/EROFS (cannot create or open it) or the
    // errno of the failing call, subject: the path; out_of_memory;
    // instance_running (EWOULDBLOCK) when another custos holds the root:
    // it is flock()ed for as long as this tree is open.
    Result<void> open(std::string_view root, std::uint32_t max_units) noexcept;

    // Creates (or reuses) `<root>/<name>` and opens its files. At init.
    // Returns the unit's slot (0, 1, ... in the order of the calls).
    // Errors: invalid_argument (not open); name_invalid (empty, longer than
    // name_capacity, containing '/' or NUL, "." or "..", or starting with
    // "cgroup." which is the kernel's namespace); name_duplicate;
    // capacity_exceeded (more than max_units); cgroup_unavailable with the
    // errno of mkdir/open (EACCES, EPERM, EROFS, EMFILE ...), subject the
    // name.
    Result<std::uint32_t> add(std::string_view name) noexcept;

    // Reload. add_vacant(): a unit with no directory yet (a vacant service
    // slot), at init, counted against max_units like add(). Errors:
    // invalid_argument (not open); capacity_exceeded.
    Result<std::uint32_t> add_vacant() noexcept;
    // Gives vacant unit `slot` the directory `name`, as add() does (created,
    // or reused with what is in it SIGKILLed: a previous run's leftovers).
    // Returns how many processes it found there. Does not block: the killed
    // ones die on their own. Allocates nothing. Errors: those of add(), and
    // invalid_argument (no such slot, or it is not vacant).
    Result<int> assign(std::uint32_t slot, std::string_view name) noexcept;
    // Unit `slot` becomes vacant: its descriptors closed, its directory
    // removed. A directory still populated (processes SIGKILLed a moment
    // ago, not dead yet) gets SIGKILL again and is removed by a later
    // sweep(), assign() or close(). No-op on a vacant unit.
    void release(std::uint32_t slot) noexcept;
    // Retries the removals release() could not do yet; returns how many are
    // still pending. Cheap when none is.
    std::uint32_t sweep() noexcept;
    bool vacant(std::uint32_t slot) const noexcept;

    // The unit's cgroup.procs, O_WRONLY|O_CLOEXEC, for
    // spawn_request::cgroup_procs_fd; -1 for a slot that does not exist.
    int procs_fd(std::uint32_t slot) const noexcept;

    // Sends `sig` to every process of the unit. SIGKILL goes through
    // cgroup.kill where the kernel has it (the whole subtree at once, no
    // pid race); any other signal, and SIGKILL before 5.14, goes to each
    // pid listed in cgroup.procs, read in fixed-size chunks. Returns the
    // number of processes it found (for cgroup.kill: those listed just
    // before the write) or -errno: EINVAL (no such slot), or the errno of
    // reading cgroup.procs / writing cgroup.kill. Allocates nothing.
    //
    // Residual race of the pid path (as for any kill(pid)): a pid read from
    // cgroup.procs whose process exits and is reaped, and whose number is
    // handed out again, before the kill() would hit the newcomer; custos
    // reaps its children on the same thread, so this needs a grandchild
    // reaped by its own parent and a pid wrap within microseconds.
    // sig 0 signals nothing and returns how many pids are listed.
    // Processes in sub-cgroups a service created itself are reached only by
    // cgroup.kill.
    int kill(std::uint32_t slot, int sig) noexcept;

    // Whether cgroup.events says "populated 1" (a live process in the unit
    // or below). False for a slot that does not exist or an unreadable file.
    bool populated(std::uint32_t slot) const noexcept;

    // SIGKILLs the unit and waits, polling cgroup.events for POLLPRI, until
    // it is empty or `limit` has passed. BLOCKS up to `limit`: for init and
    // shutdown only, never from the reactor loop at run time. The killed
    // processes must still be reaped by their parents (custos's own
    // children by custos). Returns the number of processes the first round
    // found (>= 0) once empty, -ETIMEDOUT when still populated at the
    // limit, or another -errno as kill() does.
    int kill_until_empty(std::uint32_t slot, std::chrono::milliseconds limit) noexcept;

    // Whether `pid` is in the unit's cgroup or one below it, from the "0::"
    // line of /proc/<pid>/cgroup (used to validate a service's MAINPID=).
    // False when the pid does not exist or the file cannot be read.
    // Allocates nothing.
    bool contains(std::uint32_t slot, int pid) const noexcept;

    // For every child directory of the root (what a SIGKILLed custosd left):
    // if populated, kills it until empty (at most `limit_each` per cgroup)
    // and calls `report` with its name and how many processes it killed;
    // then removes the directories no add() has claimed (call it after the
    // add()s; before them it removes every empty child). At init.
    // Sub-cgroups a service created itself are killed (by cgroup.kill) but
    // not removed. Returns the number of leftover cgroups that had
    // processes. Errors: invalid_argument (not open); cgroup_unavailable
    // (the root cannot be listed; errno).
    Result<std::uint32_t> reap_leftovers(leftover_report report, void* ctx,
                                         std::chrono::milliseconds limit_each) noexcept;

    // The same with any callable taking `const leftover&`.
    template <class F>
    Result<std::uint32_t> reap_leftovers(F& f, std::chrono::milliseconds limit_each) noexcept {
        return reap_leftovers([](void* c, const leftover& l) noexcept { (*static_cast<F*>(c))(l); },
                              &f, limit_each);
    }

    // Closes every descriptor, removes the unit directories, then the root
    // if this object created it or found it automatically (EBUSY, a
    // directory still populated or with sub-cgroups, is ignored). Safe to
    // call twice.
    void close() noexcept;

    bool is_open() const noexcept { return root_fd_ >= 0; }
    // Absolute path of the root, e.g. "/sys/fs/cgroup/custos" ("" closed).
    std::string_view root_path() const noexcept;
    // The root relative to the cgroup2 mount, as /proc/<pid>/cgroup shows
    // it ("/custos"); "" closed.
    std::string_view relative_path() const noexcept;
    std::uint32_t size() const noexcept { return count_; }
    std::string_view name(std::uint32_t slot) const noexcept;
    // Whether SIGKILL goes through cgroup.kill for this slot.
    bool has_cgroup_kill(std::uint32_t slot) const noexcept;

private:
    struct unit {
        int dir = -1;
        int procs = -1;
        int kill = -1;
        int events = -1;
        std::uint8_t name_len = 0;
        bool vacant = false;  // no directory of its own (add_vacant, release)
        bool pending = false; // vacant, `name` still to be removed (sweep)
        char name[name_capacity + 1] = {};
    };

    Result<void> open_unit(unit& u, std::string_view name) noexcept;
    bool check_name(std::string_view name, Error& why) const noexcept;

    options opts_{};
    arena mem_;
    unit* units_ = nullptr;
    std::uint32_t count_ = 0;
    std::uint32_t cap_ = 0;
    std::uint32_t pending_ = 0; // units with a removal to retry
    int root_fd_ = -1;          // O_RDONLY|O_DIRECTORY: listed by reap_leftovers
    bool remove_root_ = false;
    char* root_path_ = nullptr; // absolute, in mem_
    std::size_t root_len_ = 0;
    char* rel_path_ = nullptr; // relative to the mount, "" for its top, in mem_
    std::size_t rel_len_ = 0;
};

// Finds the first cgroup2 mount in /proc/self/mountinfo and writes its
// mount point (NUL-terminated) to buf. Returns its length.
// Errors: cgroup_unavailable with ENOENT (none), ENAMETOOLONG (buf too
// small), or the errno of reading mountinfo.
Result<std::size_t> find_cgroup2_mount(char* buf, std::size_t len) noexcept;

} // namespace custos::process
