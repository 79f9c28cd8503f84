#include "table/users.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/files.hpp"

namespace custos::tbl {
namespace {

// The next ':'-terminated field of `rest`, which then starts after the ':'.
// False when there is no ':' left (the field is incomplete or the last one).
bool next_field(std::string_view& rest, std::string_view& field) noexcept {
    std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    field = rest.substr(0, colon);
    rest.remove_prefix(colon + 1);
    return true;
}

// Common to both files: strips a final '\r', refuses comments, NIS compat
// lines and an empty or missing name, and takes the name and password
// fields off the front of `rest`.
bool line_name(std::string_view line, std::string_view& name, std::string_view& rest) noexcept {
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    if (line.empty() || line[0] == '#' || line[0] == '+' || line[0] == '-') {
        return false;
    }
    rest = line;
    std::string_view password;
    return next_field(rest, name) && !name.empty() && next_field(rest, password);
}

// The name as given can match a line: not empty, no field separator, no
// line break (which the file reader has split on already).
bool name_matchable(std::string_view name) noexcept {
    return !name.empty() && name.find_first_of(":\n") == std::string_view::npos;
}

Error unreadable(Reason reason, int err, std::string_view name, const char* resolution) noexcept {
    Error e(reason, err, name);
    e.with_resolution(resolution);
    return e;
}

} // namespace

bool parse_numeric_id(std::string_view s, std::uint32_t& out) noexcept {
    if (s.empty() || s.size() > 10) {
        return false;
    }
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (v > max_id) {
        return false;
    }
    out = static_cast<std::uint32_t>(v);
    return true;
}

bool parse_passwd_line(std::string_view line, passwd_line& out) noexcept {
    std::string_view name;
    std::string_view rest;
    std::string_view uid;
    std::string_view gid;
    passwd_line p;
    if (!line_name(line, name, rest) || !next_field(rest, uid) || !next_field(rest, gid) ||
        !parse_numeric_id(uid, p.uid) || !parse_numeric_id(gid, p.gid)) {
        return false;
    }
    p.name = name;
    out = p;
    return true;
}

bool parse_group_line(std::string_view line, group_line& out) noexcept {
    std::string_view name;
    std::string_view rest;
    std::string_view gid;
    group_line g;
    if (!line_name(line, name, rest) || !next_field(rest, gid) || !parse_numeric_id(gid, g.gid)) {
        return false;
    }
    g.name = name;
    out = g;
    return true;
}

Result<user_entry> find_user(std::string_view name_or_uid, const char* passwd_path) noexcept {
    if (!name_matchable(name_or_uid)) {
        return fail(Reason::user_unknown, 0, name_or_uid);
    }
    std::uint32_t uid = 0;
    bool numeric = parse_numeric_id(name_or_uid, uid);
    user_entry found;
    bool any = false;
    int err = io::files::scan_lines<users_line_capacity>(
        passwd_path, [&](std::string_view line) noexcept {
            passwd_line p;
            if (!parse_passwd_line(line, p) || (numeric ? p.uid != uid : p.name != name_or_uid)) {
                return false;
            }
            found.uid = p.uid;
            found.gid = p.gid;
            any = true;
            return true;
        });
    if (err != 0) {
        return fail(unreadable(Reason::user_unknown, err, name_or_uid,
                               "Install a readable /etc/passwd that lists the user "
                               "(custos reads it directly; NSS is not used)"));
    }
    if (!any) {
        return fail(Reason::user_unknown, 0, name_or_uid);
    }
    return found;
}

Result<group_entry> find_group(std::string_view name_or_gid, const char* group_path) noexcept {
    group_entry found;
    if (parse_numeric_id(name_or_gid, found.gid)) {
        return found;
    }
    if (!name_matchable(name_or_gid)) {
        return fail(Reason::group_unknown, 0, name_or_gid);
    }
    bool any = false;
    int err =
        io::files::scan_lines<users_line_capacity>(group_path, [&](std::string_view line) noexcept {
            group_line g;
            if (!parse_group_line(line, g) || g.name != name_or_gid) {
                return false;
            }
            found.gid = g.gid;
            any = true;
            return true;
        });
    if (err != 0) {
        return fail(unreadable(Reason::group_unknown, err, name_or_gid,
                               "Install a readable /etc/group that lists the group "
                               "(custos reads it directly; NSS is not used)"));
    }
    if (!any) {
        return fail(Reason::group_unknown, 0, name_or_gid);
    }
    return found;
}

} // namespace custos::tbl
