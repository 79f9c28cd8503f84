// Where the custos cgroup is (private to cgroup*.cpp): the cgroup2 mount
// found in /proc/self/mountinfo, our own cgroup from /proc/self/cgroup,
// and the root directory cgroup_tree::open() takes, automatic or explicit
// (see cgroup.hpp, open()). It reads those files and may create the root;
// it holds nothing.
#pragma once

#include <climits>
#include <cstddef>
#include <string_view>

#include <custos/error.hpp>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace custos::process::cgroup_root {

// CgroupUnavailable with `err`, subject `subject`.
tl::unexpected<Error> unavailable(int err, std::string_view subject) noexcept;
// CgroupUnavailable ENOTSUP: `path` is not on a cgroup2 filesystem (with
// its resolution).
tl::unexpected<Error> not_cgroup2(std::string_view path) noexcept;

// The path of the "0::" line of a /proc/<pid>/cgroup text, or empty.
std::string_view unified_path(std::string_view text) noexcept;

// Where the custos cgroup is: its absolute path, the same relative to the
// cgroup2 mount as /proc/<pid>/cgroup shows it, and whether open() made it.
struct root_paths {
    char path[PATH_MAX];
    std::size_t path_len = 0;
    char rel[PATH_MAX];
    std::size_t rel_len = 0;
    bool created = false;
};

// <mount><own cgroup>/custos, created if missing. Errors:
// CgroupUnavailable (no cgroup2 mount, no "0::" line, our cgroup outside
// the mount, a path too long, or mkdir's errno), subject the path.
Result<void> resolve_auto(root_paths& r) noexcept;

// An explicit absolute directory (r.path), created if missing under a
// cgroup2 parent; r.rel from the deepest cgroup2 mount holding it.
// Errors: CgroupUnavailable (ENOTSUP when not on cgroup2, else the failing
// call's errno), subject the path; a directory made here is removed again.
Result<void> resolve_explicit(root_paths& r) noexcept;

} // namespace custos::process::cgroup_root
