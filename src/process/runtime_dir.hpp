// Per-service runtime directories: ROOT/NAME, made before a service's
// process starts (mode 0700, owned by the service's user and group), given
// to it as RUNTIME_DIRECTORY, and removed with everything in it when the
// service stops and when the runtime stops.
//
// Removal is bounded and safe against what the service left there: it
// walks with openat(O_NOFOLLOW | O_DIRECTORY) from descriptors, never by
// path, so a symlink planted inside is unlinked, not followed; it reads
// directories with getdents64 into fixed buffers on the stack (no
// allocation: it runs after init, on the reactor thread) and stops at
// max_depth levels and max_entries names, leaving the rest (counted).
// The tree is on a tmpfs (/run) in practice: unlinks do not wait on a disk.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

namespace custos::process {

struct runtime_dir_limits {
    static constexpr int max_depth = 16;
    static constexpr std::uint32_t max_entries = 4096;
};

// Makes `root` (one level, mode 0755 whatever the umask) if it is missing.
// Errors: RuntimeDirUnavailable (EINVAL: empty or relative; ENAMETOOLONG;
// ENOTDIR; mkdir/stat errno).
Result<void> open_runtime_root(std::string_view root) noexcept;

// Makes `path` a directory of mode 0700 owned by uid/gid (-1: unchanged),
// keeping it if it is one already (a restart after a crash keeps what the
// previous process left). Something else at the path (a file, a symlink)
// is removed first. Errors: RuntimeDirUnavailable with the errno of
// mkdir/open/fchown/fchmod, subject the path.
Result<void> make_runtime_dir(const char* path, int uid, int gid) noexcept;

// Removes `path` and everything under it, within runtime_dir_limits.
// Returns the number of names it could not remove (0: gone, or was
// never there).
std::uint32_t remove_runtime_dir(const char* path) noexcept;

} // namespace custos::process
