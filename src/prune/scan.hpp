// The pruner's file-system side: reads one directory into entries, finds
// which files another process holds open, and deletes what decide() chose.
// All memory is a workspace laid out once at init (footprint(), init());
// a run allocates nothing (getdents64 into the workspace's buffer, not
// opendir(3), which mallocs).
//
// What it touches: the regular files directly in PruneSpec::dir whose names
// match the glob (fnmatch, FNM_PERIOD) and do not start with '.'. It never
// follows a symlink (fstatat and openat with AT_SYMLINK_NOFOLLOW/O_NOFOLLOW)
// and never descends into a subdirectory.
//
// Open files: a file another process holds open is never deleted. The test
// is a write lease (fcntl F_SETLEASE F_WRLCK on an O_RDONLY|O_NOFOLLOW fd),
// which the kernel refuses with EAGAIN while any other descriptor of the
// file is open. Where leases cannot be had (EACCES/EPERM: the file is not
// ours and we lack CAP_LEASE; EINVAL: a filesystem without leases, or
// fs.leases-enable = 0; or the file cannot be opened) the file is kept as
// protected and counted in PruneSummary::unprovable: what cannot be proved
// closed is not deleted. A process that mmap()ed a file and closed its
// descriptor is not seen. The lease is taken again at the unlink and held
// across it, so a file opened since the scan is kept too. While a lease is
// held, another process's open() of the file breaks it and waits the few
// microseconds until it is released; the kernel then signals this process
// with SIGURG (set with F_SETSIG, not the default SIGIO, which would
// terminate it): SIGURG is ignored by default.
//
// Before each unlink the file is looked up again (fstatat): a file whose
// inode, size or mtime changed since the scan is kept and counted
// (PruneSummary::changed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <custos/error.hpp>
#include <custos/prune.hpp>

#include "core/arena.hpp"
#include "prune/decide.hpp"

namespace custos::prune {

struct options {
    bool dry_run = false; // decide and report, delete nothing
    std::int64_t now_wall_ns = 0;
    bool clock_trusted = false;
    std::span<const std::string_view> protected_names; // never deleted (the current log)
    std::int64_t trust_floor_ns = prune_trust_floor_ns;
    // false: no lease probe; a file's being open elsewhere does not keep it.
    // For a directory only its owner writes (custos's own event log), where
    // deleting a file a reader still has open only delays the freeing of
    // its space, and which must stay bounded on filesystems without leases.
    bool check_open = true;
};

// Where a run's results go. The callbacks run on the caller's thread,
// during apply(); `name` is valid only during the call.
struct report {
    // A file deleted (or, in a dry run, that would be), with the PruneRule
    // bits that made it eligible.
    void (*on_deleted)(void* ctx, std::string_view name, std::uint64_t bytes,
                       std::uint8_t rules) noexcept = nullptr;
    // A file chosen but kept: PruneFileChanged or PruneUnlinkFailed.
    void (*on_kept)(void* ctx, std::string_view name, const Error& why) noexcept = nullptr;
    void* ctx = nullptr;
    PruneSummary summary{};
};

// Memory for runs of up to max_files files.
class workspace {
public:
    static constexpr std::size_t name_room = 256; // a name (NAME_MAX 255) and its NUL
    static constexpr std::size_t dirent_room = 8192;

    workspace() = default;
    ~workspace();
    workspace(const workspace&) = delete;
    workspace& operator=(const workspace&) = delete;

    // Bytes init() takes from an arena (alignment slack included).
    static std::size_t footprint(std::uint32_t max_files) noexcept;
    // Takes the room from `mem`. Two-pass sizing: on the measuring pass this
    // fails and mem.needed() grows by at most footprint(). Also calls
    // fnmatch once: glibc loads the locale's multibyte converters (a
    // malloc) on the first call under a UTF-8 locale, so a daemon that
    // calls setlocale() does so before init, not after start. Errors:
    // OutOfMemory (the arena is too small), InvalidArgument (max_files 0).
    [[nodiscard]] Result<void> init(arena& mem, std::uint32_t max_files) noexcept;
    std::uint32_t capacity() const noexcept { return cap_; }

    // The last plan()'s entries and decisions.
    std::span<const entry> entries() const noexcept { return {entries_, count_}; }
    std::span<const decision> decisions() const noexcept { return {decisions_, decided_}; }

private:
    friend Result<void> plan(const PruneSpec&, const options&, workspace&, report&) noexcept;
    friend Result<void> apply(const PruneSpec&, const options&, workspace&, report&) noexcept;
    void close_dir() noexcept;

    entry* entries_ = nullptr;
    std::uint32_t* order_ = nullptr;
    decision* decisions_ = nullptr;
    char* names_ = nullptr;
    std::byte* dirents_ = nullptr;
    std::uint32_t cap_ = 0;
    std::uint32_t count_ = 0;
    std::uint32_t decided_ = 0;
    int dirfd_ = -1;
};

// Opens spec.dir for a scan. Errors: PruneScanFailed (with the errno).
Result<int> open_dir(const PruneSpec& spec) noexcept;

// Reads the directory open at `dirfd` into `entries` (name, size, mtime,
// dev and inode, open), the names NUL-terminated in `names`, through the
// getdents64 buffer `dirents`; `check_open` false: no lease probes (every
// entry closed). Returns the count. Errors: PruneScanFailed
// (reading the directory failed), PruneTooManyFiles (more matching files
// than entries.size(), or their names overflow `names`).
Result<std::uint32_t> scan(const PruneSpec& spec, int dirfd, std::span<entry> entries,
                           std::span<char> names, std::span<std::byte> dirents,
                           bool check_open = true) noexcept;

// The filesystem's free bytes for an unprivileged writer (statvfs
// f_bavail * f_frsize). Errors: PruneScanFailed.
Result<std::uint64_t> free_bytes(int dirfd) noexcept;

// Whether another process holds the file open; true too when that cannot
// be known (`unprovable` then set). See the top of this file.
bool held_open(int dirfd, const char* name, bool& unprovable) noexcept;

// Scans, classifies and decides (nothing deleted); the results stay in
// `ws` for apply(), the counts in rep.summary. Errors: InvalidArgument
// (validate()), PruneScanFailed, PruneTooManyFiles (past spec.max_files or
// the workspace's capacity: nothing will be deleted), CapacityExceeded.
Result<void> plan(const PruneSpec& spec, const options& opt, workspace& ws, report& rep) noexcept;

// Deletes what the last plan() chose (unless opt.dry_run), each re-checked
// first, reporting each file; updates rep.summary. Per-file failures are
// reported and counted, not returned. Errors: InvalidArgument (no plan).
Result<void> apply(const PruneSpec& spec, const options& opt, workspace& ws, report& rep) noexcept;

// plan() then apply().
Result<void> run(const PruneSpec& spec, const options& opt, workspace& ws, report& rep) noexcept;

} // namespace custos::prune
