// Users and groups from /etc/passwd and /etc/group, read directly (no NSS):
// the line parsers, then find_user/find_group against hand-written files in
// a temporary directory, never the machine's own.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <custos/error.hpp>

#include "doctest.hpp"
#include "table/users.hpp"

using namespace custos;
using namespace custos::tbl;

namespace {

// A temporary directory, removed with what it holds.
struct temp_dir {
    char path[32] = "/tmp/custos-users-XXXXXX";
    temp_dir() { REQUIRE(::mkdtemp(path) != nullptr); }
    ~temp_dir() {
        std::string cmd = std::string("rm -rf ") + path;
        CHECK(std::system(cmd.c_str()) == 0);
    }
    std::string write(const char* name, const std::string& text) const {
        std::string p = std::string(path) + "/" + name;
        FILE* f = std::fopen(p.c_str(), "w");
        REQUIRE(f != nullptr);
        CHECK(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        std::fclose(f);
        return p;
    }
};

passwd_line pw(std::string_view line, bool expect_ok = true) {
    passwd_line p;
    CHECK(parse_passwd_line(line, p) == expect_ok);
    return p;
}

} // namespace

// --- pure: lines ---------------------------------------------------------------

TEST_CASE("passwd line: the fields up to the gid") {
    passwd_line p = pw("app:x:1000:1001:App,,,:/home/app:/bin/sh");
    CHECK(p.name == "app");
    CHECK(p.uid == 1000);
    CHECK(p.gid == 1001);
    p = pw("root::0:0:::"); // empty password and trailing fields
    CHECK(p.name == "root");
    CHECK(p.uid == 0);
    CHECK(p.gid == 0);
    p = pw("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\r"); // CRLF file
    CHECK(p.uid == 65534);
    p = pw("big:x:4294967294:4294967294:"); // the largest id
    CHECK(p.uid == 4294967294u);
    // The gid field only has to end in ':'; what follows is not read.
    p = pw("cut:x:7:8:");
    CHECK(p.gid == 8);
}

TEST_CASE("passwd line: malformed, comment and NIS lines are refused") {
    for (const char* bad : {
             "",
             "\r",
             "# app:x:1000:1000::/:/bin/sh", // a comment
             "+app::::::",                   // NIS compat: ignored, never a user called "+app"
             "+:::::::",
             "-app:x:1000:1000::/:/bin/sh",
             "app",
             "app:x",
             "app:x:1000",
             "app:x:1000:1000", // the gid must be a whole, ':'-terminated field
             ":x:1000:1000::/:/bin/sh",
             "app:x::1000::/:/bin/sh",
             "app:x:1000:::/:/bin/sh",
             "app:x:-1:1000::/:/bin/sh",
             "app:x:+1:1000::/:/bin/sh",
             "app:x: 1000:1000::/:/bin/sh",
             "app:x:1000 :1000::/:/bin/sh",
             "app:x:10a0:1000::/:/bin/sh",
             "app:x:0x10:1000::/:/bin/sh",
             "app:x:4294967295:1000::/:/bin/sh", // (uid_t)-1: setresuid's "no change"
             "app:x:1000:4294967296::/:/bin/sh",
             "app:x:99999999999:1000::/:/bin/sh",
         }) {
        INFO(bad);
        pw(bad, false);
    }
    // A refused line leaves out alone.
    passwd_line p;
    p.name = "kept";
    CHECK_FALSE(parse_passwd_line("app:x:1:", p));
    CHECK(p.name == "kept");
}

TEST_CASE("group line: the fields up to the gid") {
    group_line g;
    REQUIRE(parse_group_line("dialout:x:20:app,other", g));
    CHECK(g.name == "dialout");
    CHECK(g.gid == 20);
    REQUIRE(parse_group_line("app:!:1000:", g));
    CHECK(g.name == "app");
    CHECK(g.gid == 1000);
    REQUIRE(parse_group_line("wheel::10:\r", g));
    CHECK(g.gid == 10);
    for (const char* bad :
         {"", "#wheel:x:10:", "+wheel:x:10:", "-wheel:x:10:", "+", "wheel", "wheel:x", "wheel:x:10",
          ":x:10:", "wheel:x::", "wheel:x:ten:", "wheel:x:4294967295:"}) {
        INFO(bad);
        CHECK_FALSE(parse_group_line(bad, g));
    }
}

TEST_CASE("numeric ids: plain decimal, 0 to 4294967294") {
    std::uint32_t id = 7;
    CHECK(parse_numeric_id("0", id));
    CHECK(id == 0);
    CHECK(parse_numeric_id("0001000", id));
    CHECK(id == 1000);
    CHECK(parse_numeric_id("4294967294", id));
    CHECK(id == 4294967294u);
    for (const char* bad :
         {"", "-1", "+1", " 1", "1 ", "1e3", "4294967295", "9999999999", "00000000001"}) {
        INFO(bad);
        CHECK_FALSE(parse_numeric_id(bad, id));
    }
}

// --- files ---------------------------------------------------------------------

TEST_CASE("find_user: names and uids from a hand-written passwd file") {
    temp_dir d;
    std::string text = "# passwd for a firmware image\n"
                       "\n"
                       "root:x:0:0:root:/root:/bin/sh\n"
                       "+nis::::::\n"
                       "garbage without colons\n"
                       "broken:x:12\n"
                       "app:x:1000:1001:App:/srv/app:/bin/false\n"
                       "app:x:2000:2000:a second app line, never reached:/:/bin/sh\n"
                       "apple:x:1002:1002::/:/bin/sh\n"
                       "last:x:3000:3001::/:/bin/sh"; // no final newline
    std::string path = d.write("passwd", text);

    auto u = find_user("app", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 1000); // the first matching line wins
    CHECK(u->gid == 1001);
    u = find_user("root", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 0);
    u = find_user("last", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 3000);
    CHECK(u->gid == 3001);

    // A uid finds its line, for the primary group.
    u = find_user("1002", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 1002);
    CHECK(u->gid == 1002);

    // Not there, errno 0: names that only start or end like a user's, a
    // name from a NIS line, a uid without a line, what no line can match.
    for (const char* unknown :
         {"ap", "appl", "pp", "nis", "+nis", "broken", "4242", "", "app:x", "app\nroot", "#"}) {
        INFO(unknown);
        auto e = find_user(unknown, path.c_str());
        REQUIRE_FALSE(e);
        CHECK(e.error().reason() == Reason::user_unknown);
        CHECK(e.error().sys_errno() == 0);
        CHECK(e.error().subject() == std::string_view(unknown));
    }
}

TEST_CASE("find_user: a missing or unreadable file is UserUnknown with the errno") {
    temp_dir d;
    std::string missing = std::string(d.path) + "/passwd";
    auto e = find_user("app", missing.c_str());
    REQUIRE_FALSE(e);
    CHECK(e.error().reason() == Reason::user_unknown);
    CHECK(e.error().sys_errno() == ENOENT);
    CHECK(e.error().subject() == "app");
    CHECK(e.error().resolution().find("/etc/passwd") != std::string_view::npos);
    // A directory opens, then fails to read (EISDIR): the read error path.
    e = find_user("app", d.path);
    REQUIRE_FALSE(e);
    CHECK(e.error().sys_errno() == EISDIR);
    // A uid needs the file too (for the primary group).
    e = find_user("1000", missing.c_str());
    REQUIRE_FALSE(e);
    CHECK(e.error().sys_errno() == ENOENT);
}

TEST_CASE("find_user: lines longer than the buffer") {
    temp_dir d;
    const std::size_t cap = users_line_capacity;
    std::string text;
    // Garbage longer than the buffer, twice over: skipped, and the line
    // after it is read from its start.
    text += std::string(3 * cap + 17, 'z') + "\n";
    text += "after:x:11:12::/:/bin/sh\n";
    // A user whose gecos runs past the buffer: the fields that matter fit
    // in its first bytes, so it resolves.
    text += "chatty:x:21:22:" + std::string(2 * cap, 'g') + ":/:/bin/sh\n";
    // A name longer than the buffer: cut, so it cannot match, not even by
    // its first bytes.
    std::string long_name(cap + 5, 'n');
    text += long_name + ":x:31:32::/:/bin/sh\n";
    // The buffer ends inside the uid: refused, never read as a shorter
    // number ("1234" out of "123456").
    std::string cut_name(cap - 8, 'c');
    text += cut_name + ":x:123456:33::/:/bin/sh\n";
    text += "tail:x:41:42::/:/bin/sh\n";
    std::string path = d.write("passwd", text);

    auto u = find_user("after", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 11);
    u = find_user("chatty", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 21);
    CHECK(u->gid == 22);
    CHECK_FALSE(find_user(long_name, path.c_str()));
    CHECK_FALSE(find_user(long_name.substr(0, 100), path.c_str()));
    CHECK_FALSE(find_user(cut_name, path.c_str()));
    CHECK_FALSE(find_user("1234", path.c_str()));
    u = find_user("tail", path.c_str());
    REQUIRE(u);
    CHECK(u->uid == 41);
    u = find_user("41", path.c_str());
    REQUIRE(u);
    CHECK(u->gid == 42);
}

TEST_CASE("find_user: every line of a file many buffers long") {
    // Lines straddle each refill of the buffer at every offset.
    temp_dir d;
    std::string text;
    for (int i = 0; i < 400; ++i) {
        text += "user" + std::to_string(i) + ":x:" + std::to_string(10000 + i) + ":" +
                std::to_string(20000 + i) + ":" +
                std::string(static_cast<std::size_t>(i % 37), 'g') + ":/home:/bin/sh\n";
    }
    std::string path = d.write("passwd", text);
    REQUIRE(text.size() > 20 * users_line_capacity);
    for (int i = 0; i < 400; ++i) {
        std::string name = "user" + std::to_string(i);
        INFO(name);
        auto u = find_user(name, path.c_str());
        REQUIRE(u);
        CHECK(u->uid == static_cast<std::uint32_t>(10000 + i));
        CHECK(u->gid == static_cast<std::uint32_t>(20000 + i));
    }
}

TEST_CASE("find_group: names from a hand-written group file, numbers as they are") {
    temp_dir d;
    const std::size_t cap = users_line_capacity;
    std::string members;
    while (members.size() < 3 * cap) {
        members += "member" + std::to_string(members.size()) + ",";
    }
    std::string text = "# group\n"
                       "root:x:0:\n"
                       "+:::\n"
                       "-dialout:::\n"
                       "bad:x:\n"
                       "users:x:100:" +
                       members + // a long member list: still resolves
                       "\n"
                       "dialout:x:20:app\n"
                       "app:x:1001:\n"
                       "app:x:9999:\n"
                       "final:x:77:"; // no final newline
    std::string path = d.write("group", text);
    struct expect {
        const char* name;
        std::uint32_t gid;
    };
    for (expect e : {expect{"root", 0}, expect{"users", 100}, expect{"dialout", 20},
                     expect{"app", 1001}, expect{"final", 77}}) {
        INFO(e.name);
        auto g = find_group(e.name, path.c_str());
        REQUIRE(g);
        CHECK(g->gid == e.gid);
    }
    for (const char* unknown : {"bad", "dial", "+", "-dialout", "member0", "", "users:x"}) {
        INFO(unknown);
        auto e = find_group(unknown, path.c_str());
        REQUIRE_FALSE(e);
        CHECK(e.error().reason() == Reason::group_unknown);
        CHECK(e.error().sys_errno() == 0);
    }

    // A gid is taken as it is: no file needed, listed or not.
    std::string missing = std::string(d.path) + "/none";
    auto g = find_group("4242", missing.c_str());
    REQUIRE(g);
    CHECK(g->gid == 4242);
    auto e = find_group("4294967295", path.c_str()); // not a gid, and no such name
    REQUIRE_FALSE(e);
    CHECK(e.error().reason() == Reason::group_unknown);

    e = find_group("app", missing.c_str());
    REQUIRE_FALSE(e);
    CHECK(e.error().reason() == Reason::group_unknown);
    CHECK(e.error().sys_errno() == ENOENT);
    CHECK(e.error().resolution().find("/etc/group") != std::string_view::npos);
}
