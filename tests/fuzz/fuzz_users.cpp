// libFuzzer target for the passwd/group readers: parse_passwd_line(),
// parse_group_line(), and find_user()/find_group() over a whole file (what
// a firmware image's /etc/passwd may hold). None may crash, read outside its
// input, or report what is not there; the file readers must agree with an
// in-memory model of the same lines (each cut to users_line_capacity), so a
// line split across buffer refills or cut in a number cannot yield an id the
// file does not say.
//
//   meson setup build-clang -Dtests=true --native-file <clang>  (CXX=clang++)
//   ninja -C build-clang tests/fuzz_users
//   build-clang/tests/fuzz_users -max_total_time=60 -max_len=8192 CORPUS_DIR
//
// The first input byte picks the mode: 0 a passwd line, 1 a group line,
// 2/3 a passwd/group file; for files, the next byte is the length (0..31)
// of the name looked up, taken from the bytes after it; the rest is the file,
// written to a memfd.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "table/users.hpp"

namespace {

using namespace custos::tbl;

[[noreturn]] void broken(const char* what) {
    std::fprintf(stderr, "fuzz_users: %s\n", what);
    std::abort();
}

// What every accepted line must satisfy: the name starts the line, ends at
// the first ':', and is neither empty, a comment, nor a NIS entry.
void check_name(std::string_view line, std::string_view name) {
    if (name.empty() || name.data() != line.data() || name.size() >= line.size() ||
        line[name.size()] != ':' || name.find(':') != std::string_view::npos) {
        broken("a name that is not the line's first field");
    }
    if (name[0] == '#' || name[0] == '+' || name[0] == '-') {
        broken("a comment or NIS line accepted");
    }
}

void check_passwd(std::string_view line) {
    passwd_line a;
    passwd_line b;
    bool ok = parse_passwd_line(line, a);
    if (ok != parse_passwd_line(line, b)) {
        broken("passwd parse not deterministic");
    }
    if (!ok) {
        return;
    }
    check_name(line, a.name);
    if (a.uid > max_id || a.gid > max_id) {
        broken("passwd id out of range");
    }
}

void check_group(std::string_view line) {
    group_line g;
    if (!parse_group_line(line, g)) {
        return;
    }
    check_name(line, g.name);
    if (g.gid > max_id) {
        broken("gid out of range");
    }
}

// The model: the first line of `file` (each cut to users_line_capacity)
// that parses and matches, as find_user/find_group define matching.
bool model_user(std::string_view file, std::string_view want, user_entry& out) {
    if (want.empty() || want.find_first_of(":\n") != std::string_view::npos) {
        return false;
    }
    std::uint32_t uid = 0;
    bool numeric = parse_numeric_id(want, uid);
    while (!file.empty()) {
        std::size_t nl = file.find('\n');
        std::string_view line = file.substr(0, nl);
        passwd_line p;
        if (parse_passwd_line(line.substr(0, users_line_capacity), p) &&
            (numeric ? p.uid == uid : p.name == want)) {
            out.uid = p.uid;
            out.gid = p.gid;
            return true;
        }
        if (nl == std::string_view::npos) {
            break;
        }
        file.remove_prefix(nl + 1);
    }
    return false;
}

bool model_group(std::string_view file, std::string_view want, group_entry& out) {
    if (parse_numeric_id(want, out.gid)) {
        return true;
    }
    if (want.empty() || want.find_first_of(":\n") != std::string_view::npos) {
        return false;
    }
    while (!file.empty()) {
        std::size_t nl = file.find('\n');
        std::string_view line = file.substr(0, nl);
        group_line g;
        if (parse_group_line(line.substr(0, users_line_capacity), g) && g.name == want) {
            out.gid = g.gid;
            return true;
        }
        if (nl == std::string_view::npos) {
            break;
        }
        file.remove_prefix(nl + 1);
    }
    return false;
}

void check_file(bool passwd, std::string_view want, std::string_view file) {
    int fd = ::memfd_create("fuzz_users", MFD_CLOEXEC);
    if (fd < 0) {
        broken("memfd_create");
    }
    std::size_t off = 0;
    while (off < file.size()) {
        ssize_t n = ::write(fd, file.data() + off, file.size() - off);
        if (n <= 0) {
            broken("write to the memfd");
        }
        off += static_cast<std::size_t>(n);
    }
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (passwd) {
        user_entry expect;
        bool found = model_user(file, want, expect);
        auto got = find_user(want, path);
        if (got.has_value() != found) {
            broken(found ? "find_user missed a user" : "find_user found a user not there");
        }
        if (found && (got->uid != expect.uid || got->gid != expect.gid)) {
            broken("find_user ids differ from the file's");
        }
        if (!found && got.error().sys_errno() != 0) {
            broken("find_user failed to read a memfd");
        }
    } else {
        group_entry expect;
        bool found = model_group(file, want, expect);
        auto got = find_group(want, path);
        if (got.has_value() != found) {
            broken(found ? "find_group missed a group" : "find_group found a group not there");
        }
        if (found && got->gid != expect.gid) {
            broken("find_group gid differs from the file's");
        }
    }
    ::close(fd);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    std::uint8_t mode = data[0] % 4;
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (mode) {
    case 0:
        check_passwd(rest);
        break;
    case 1:
        check_group(rest);
        break;
    default: {
        if (rest.empty()) {
            return 0;
        }
        std::size_t name_len = static_cast<std::uint8_t>(rest[0]) % 32;
        rest.remove_prefix(1);
        name_len = name_len < rest.size() ? name_len : rest.size();
        check_file(mode == 2, rest.substr(0, name_len), rest.substr(name_len));
        break;
    }
    }
    return 0;
}
