// Users and groups, read from /etc/passwd and /etc/group directly.
//
// getpwnam/getgrnam are not used, in any build: in a static binary they need
// the very glibc's NSS modules at run time, which a firmware rootfs (BusyBox,
// a musl userland) does not have, so "user = app" failed there. The files are
// the whole truth here, as with BusyBox: NSS sources such as LDAP or
// systemd-userdb are not consulted.
//
// Owns nothing: every lookup opens the file, reads it through one fixed
// line buffer on the stack (users_line_capacity), closes it, and allocates
// nothing. Init time only: it blocks on the filesystem.
//
// What a line is: "name:password:uid:gid:..." (passwd) and
// "name:password:gid:..." (group). Only the fields up to the ids are read,
// and each must end in ':' (a standard line always has the fields after
// it), so a line longer than the buffer (a group with a long member list)
// still resolves from its first users_line_capacity bytes, and one cut in
// the middle of an id never yields a wrong number. Skipped, never fatal:
// empty lines, '#' comments, NIS compat lines ('+' or '-' first), lines
// with fewer fields, an empty name, an id that is not plain decimal or is
// over 4294967294 ((uid_t)-1 means "no change" to setresuid). A final line
// without a newline counts. The first matching line wins, like glibc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <custos/error.hpp>

namespace custos::tbl {

inline constexpr std::size_t users_line_capacity = 1024;
inline constexpr std::uint32_t max_id = 4294967294u;

struct user_entry {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0; // the primary group
};

struct group_entry {
    std::uint32_t gid = 0;
};

// One parsed line; `name` points into the line.
struct passwd_line {
    std::string_view name;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
};

struct group_line {
    std::string_view name;
    std::uint32_t gid = 0;
};

// Pure line parsers (fuzzed). `line` has no newline; a final '\r' is
// ignored. False for every line the header comment says is skipped.
bool parse_passwd_line(std::string_view line, passwd_line& out) noexcept;
bool parse_group_line(std::string_view line, group_line& out) noexcept;

// A decimal id, 0..max_id, digits only (no sign, no spaces). False
// otherwise.
bool parse_numeric_id(std::string_view s, std::uint32_t& out) noexcept;

// The user called `name_or_uid`, or, when it is all digits, the user with
// that uid (its passwd line is still needed: it holds the primary group).
// Errors, all UserUnknown with the name as subject:
//   - errno 0: no such line (or the name is empty or holds ':' or a
//     newline, which no line can match);
//   - errno from open/read (ENOENT: no such file, EACCES...), with a
//     resolution naming the file.
Result<user_entry> find_user(std::string_view name_or_uid,
                             const char* passwd_path = "/etc/passwd") noexcept;

// The group called `name_or_gid`; when it is all digits, that gid as is,
// without reading the file (a gid needs nothing else, and chown takes
// numbers the same way). Errors as find_user, with GroupUnknown.
Result<group_entry> find_group(std::string_view name_or_gid,
                               const char* group_path = "/etc/group") noexcept;

} // namespace custos::tbl
