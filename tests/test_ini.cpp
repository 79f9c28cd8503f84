// custosd's INI lexer (src/custosd/ini.*): what each line becomes, line
// numbers through comments, CRLF and a byte order mark, the section each
// item sits in, the limits (line length, NUL), and in-place rewriting.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <string>
#include <string_view>
#include <vector>

#include "custosd/ini.hpp"

using namespace custos::cfg;

namespace {

std::vector<ini::item> lex(std::string& text, const char* file = "") {
    std::vector<ini::item> out;
    ini::lexer l(text.data(), text.size(), file);
    for (ini::item it; l.next(it);) {
        out.push_back(it);
    }
    return out;
}

} // namespace

TEST_CASE("ini: headers and pairs, trimmed, with their lines and sections") {
    std::string text = "# comment\n"
                       "; comment\n"
                       "\n"
                       "  [ service:a ]  \n"
                       "\texec\t=\t/bin/a  -x # not a comment\t\n"
                       "key=\n"
                       "a = b = c\n"
                       "[custos]\n"
                       "stop_timeout = 5s";
    std::vector<ini::item> items = lex(text, "x.ini");
    REQUIRE(items.size() == 6);
    CHECK(items[0].kind == ini::token::header);
    CHECK(items[0].line == 4);
    CHECK(items[0].section == "service:a");
    CHECK(std::string_view(items[0].file) == "x.ini");
    CHECK(items[1].kind == ini::token::pair);
    CHECK(items[1].line == 5);
    CHECK(items[1].section == "service:a");
    CHECK(items[1].key == "exec");
    CHECK(items[1].value == "/bin/a  -x # not a comment");
    CHECK(items[1].line_begin == text.data() + text.find("\texec"));
    CHECK(items[2].key == "key");
    CHECK(items[2].value.empty());
    CHECK(items[3].key == "a");
    CHECK(items[3].value == "b = c");
    CHECK(items[4].kind == ini::token::header);
    CHECK(items[4].line == 8);
    CHECK(items[5].kind == ini::token::pair);
    CHECK(items[5].line == 9); // the last line, without '\n'
    CHECK(items[5].section == "custos");
    CHECK(items[5].value == "5s");
}

TEST_CASE("ini: CRLF line ends and a byte order mark change no line number") {
    std::string text = "\xEF\xBB\xBF[custos]\r\n\r\nstop_timeout = 5s\r\n";
    std::vector<ini::item> items = lex(text);
    REQUIRE(items.size() == 2);
    CHECK(items[0].kind == ini::token::header);
    CHECK(items[0].line == 1);
    CHECK(items[0].section == "custos");
    CHECK(items[1].line == 3);
    CHECK(items[1].value == "5s"); // no '\r'
    // Only one mark is skipped, and only at the start.
    std::string twice = "\xEF\xBB\xBF\xEF\xBB\xBF[custos]\n";
    items = lex(twice);
    REQUIRE(items.size() == 1);
    CHECK(items[0].kind == ini::token::no_equals);
    // A lone '\r' inside a line is kept.
    std::string cr = "a = b\rc\n";
    items = lex(cr);
    REQUIRE(items.size() == 1);
    CHECK(items[0].value == "b\rc");
}

TEST_CASE("ini: lines it cannot read") {
    std::string text = "[custos\n"
                       "no equals\n"
                       " = value\n"
                       "[]\n";
    std::vector<ini::item> items = lex(text);
    REQUIRE(items.size() == 4);
    CHECK(items[0].kind == ini::token::bad_header);
    CHECK(items[0].text == "[custos");
    CHECK(items[1].kind == ini::token::no_equals);
    CHECK(items[1].text == "no equals");
    CHECK(items[2].kind == ini::token::no_key);
    CHECK(items[3].kind == ini::token::header);
    CHECK(items[3].section.empty());
}

TEST_CASE("ini: line length limit, line end excluded") {
    std::string exact = "k = " + std::string(ini::max_line_bytes - 4, 'v');
    std::string text = exact + "\r\n" + exact + "v\n[s]\n";
    std::vector<ini::item> items = lex(text);
    REQUIRE(items.size() == 3);
    CHECK(items[0].kind == ini::token::pair);
    CHECK(items[0].value.size() == ini::max_line_bytes - 4);
    CHECK(items[1].kind == ini::token::too_long);
    CHECK(items[1].line == 2);
    CHECK(items[1].number == ini::max_line_bytes + 1);
    CHECK(items[1].text.substr(0, 4) == "k = ");
    CHECK(items[2].line == 3);
}

TEST_CASE("ini: a NUL byte, with its column; a damaged header ends the section") {
    std::string text = std::string("[service:a]\nab\0c = d\n", 21) + "x = 1\n" +
                       std::string("[\0]\n", 4) + "y = 2\n";
    std::vector<ini::item> items = lex(text);
    REQUIRE(items.size() == 5);
    CHECK(items[1].kind == ini::token::nul);
    CHECK(items[1].line == 2);
    CHECK(items[1].number == 3);
    CHECK(items[2].section == "service:a");
    CHECK(items[3].kind == ini::token::nul);
    CHECK(items[3].section.empty());
    CHECK(items[4].section.empty());
    CHECK(items[4].key == "y");
}

TEST_CASE("ini: empty text, blank text, and a value rewritten in place") {
    std::string empty;
    CHECK(lex(empty).empty());
    std::string blank = "\n \n\t\r\n";
    CHECK(lex(blank).empty());

    std::string text = "a = 'x'\nb = y\n";
    ini::lexer l(text.data(), text.size());
    ini::item it;
    REQUIRE(l.next(it));
    // What exec's unescaping does: the value's bytes, never past them.
    text[static_cast<std::size_t>(it.value.data() - text.data())] = 'Q';
    REQUIRE(l.next(it));
    CHECK(it.key == "b");
    CHECK(it.value == "y");
    CHECK(it.line == 2);
    CHECK_FALSE(l.next(it));
}

TEST_CASE("ini: count_headers is an upper bound on the sections") {
    std::string text = "\xEF\xBB\xBF[a]\n  [b]\nx = [c]\n\t[d\n";
    CHECK(ini::count_headers(text.data(), text.size()) == 3);
    std::vector<ini::item> items = lex(text);
    std::size_t headers = 0;
    for (const ini::item& it : items) {
        headers += it.kind == ini::token::header ? 1 : 0;
    }
    CHECK(headers <= 3);
}

// The key tables behind the lexer (src/custosd/keys.*): what the one lookup
// and the one did-you-mean rely on.
#include "custosd/keys.hpp"

TEST_CASE("key tables: unique names, each found, slots in range, retired keys never suggested") {
    for (const section_def* s : {&custos_section, &service_section, &probe_section}) {
        CAPTURE(s->label);
        CHECK(s->keys.size() <= max_keys);
        for (const key_def& k : s->keys) {
            CAPTURE(k.name);
            CHECK(find_key(*s, k.name) == &k);
            CHECK((k.set != nullptr));
            CHECK(((k.flags & key_required) == 0 || k.hint != nullptr));
        }
        CHECK(find_key(*s, "") == nullptr);
        CHECK(find_key(*s, "no_such_key") == nullptr);
    }
    for (const key_def& k : service_section.keys) {
        CHECK((k.slot == no_slot || k.slot < custos::service_field_count));
    }
    for (const key_def& k : probe_section.keys) {
        CHECK((k.slot == no_slot || k.slot < custos::probe_field_count));
    }
    CHECK(std::string_view(suggest_key(service_section, "restrat")) == "restart");
    CHECK(std::string_view(suggest_key(probe_section, "tpc")) == "tcp");
    CHECK(suggest_key(service_section, "xyz") == nullptr);
    // notify_socket is a key only to say what replaced it.
    const key_def* retired = find_key(custos_section, "notify_socket");
    REQUIRE(retired != nullptr);
    CHECK((retired->flags & key_retired) != 0);
    CHECK(suggest_key(custos_section, "notify_sockt") == nullptr);
    CHECK(std::string_view(suggest_key(custos_section, "notify_dri")) == "notify_dir");
}
