// Error, reason ids, fail(): the value every fallible custos function returns.
#include "doctest.hpp"
// (doctest.hpp first: it configures doctest for -fno-exceptions builds.)
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include <custos/error.hpp>

using custos::Error;
using custos::Reason;

namespace {

std::string formatted(const Error& e) {
    std::size_t n = e.format(nullptr, 0);
    std::string s(n + 1, '\0');
    std::size_t again = e.format(s.data(), s.size());
    CHECK(again == n);
    s.resize(std::strlen(s.c_str()));
    return s;
}

custos::Result<int> parse_positive(int v) {
    if (v <= 0) {
        return custos::fail(Reason::invalid_argument, 0, "v");
    }
    return v;
}

custos::Result<int> forward(int v) {
    auto r = parse_positive(v);
    if (!r) {
        return custos::fail(r.error());
    }
    return *r * 2;
}

} // namespace

TEST_CASE("a default Error is Unknown with no errno, no subject and a resolution") {
    Error e;
    CHECK(e.reason() == Reason::unknown);
    CHECK(e.sys_errno() == 0);
    CHECK(e.subject().empty());
    CHECK(e.id() == "Unknown");
    CHECK_FALSE(e.resolution().empty());
}

TEST_CASE("Error keeps its reason, errno and subject") {
    Error e(Reason::timerfd_unavailable, EMFILE, "timerfd_create");
    CHECK(e.reason() == Reason::timerfd_unavailable);
    CHECK(e.sys_errno() == EMFILE);
    CHECK(e.subject() == "timerfd_create");
    CHECK(e.id() == "TimerfdUnavailable");
}

TEST_CASE("Error built without a subject has an empty subject (no memcpy from a null pointer)") {
    // Regression: the default subject is a string_view whose data() is null,
    // and the constructor passed it to memcpy (undefined even for 0 bytes).
    Error e(Reason::clock_unavailable, EINVAL);
    CHECK(e.subject().empty());
    CHECK(e.subject().size() == 0);
}

TEST_CASE("a subject of exactly 127 characters is kept whole") {
    std::string s(Error::subject_capacity, 'a');
    Error e(Reason::invalid_argument, 0, s);
    CHECK(e.subject().size() == 127);
    CHECK(e.subject() == s);
}

TEST_CASE("a subject longer than 127 characters is truncated to its first 127") {
    std::string s;
    for (int i = 0; i < 200; ++i) {
        s.push_back(static_cast<char>('a' + i % 26));
    }
    Error e(Reason::invalid_argument, 0, s);
    REQUIRE(e.subject().size() == Error::subject_capacity);
    CHECK(e.subject() == std::string_view(s).substr(0, 127));
    // The truncated subject is what format() prints.
    std::string f = formatted(e);
    CHECK(f.find(s.substr(0, 127)) != std::string::npos);
    CHECK(f.find(s.substr(0, 128)) == std::string::npos);
}

TEST_CASE("the subject is copied, not referenced") {
    std::string s = "service-a";
    Error e(Reason::invalid_argument, 0, s);
    s.assign("XXXXXXXXX");
    CHECK(e.subject() == "service-a");
}

TEST_CASE("Error is a self-contained value: copies are independent") {
    Error a(Reason::capacity_exceeded, 0, "services");
    Error b = a;
    a = Error(Reason::epoll_unavailable, EMFILE, "epoll");
    CHECK(b.reason() == Reason::capacity_exceeded);
    CHECK(b.subject() == "services");
    CHECK(a.subject() == "epoll");
}

TEST_CASE("reason_id gives the stable string id of every reason") {
    CHECK(custos::reason_id(Reason::unknown) == "Unknown");
    CHECK(custos::reason_id(Reason::out_of_memory) == "OutOfMemory");
    CHECK(custos::reason_id(Reason::capacity_exceeded) == "CapacityExceeded");
    CHECK(custos::reason_id(Reason::invalid_argument) == "InvalidArgument");
    CHECK(custos::reason_id(Reason::backend_unknown) == "BackendUnknown");
    CHECK(custos::reason_id(Reason::io_uring_unavailable) == "IoUringUnavailable");
    CHECK(custos::reason_id(Reason::io_uring_opcode_missing) == "IoUringOpcodeMissing");
    CHECK(custos::reason_id(Reason::epoll_unavailable) == "EpollUnavailable");
    CHECK(custos::reason_id(Reason::timerfd_unavailable) == "TimerfdUnavailable");
    CHECK(custos::reason_id(Reason::eventfd_unavailable) == "EventfdUnavailable");
    CHECK(custos::reason_id(Reason::clock_unavailable) == "ClockUnavailable");
}

TEST_CASE("every reason has a distinct id and a non-empty resolution") {
    for (std::size_t i = 0; i < custos::reason_count; ++i) {
        auto r = static_cast<Reason>(i);
        Error e(r, 0);
        CAPTURE(i);
        CHECK(e.id() == custos::reason_id(r));
        CHECK_FALSE(e.resolution().empty());
        for (std::size_t k = 0; k < i; ++k) {
            CHECK(custos::reason_id(static_cast<Reason>(k)) != custos::reason_id(r));
        }
    }
}

TEST_CASE("an out-of-range reason maps to Unknown instead of reading past the table") {
    auto bogus = static_cast<Reason>(custos::reason_count);
    CHECK(custos::reason_id(bogus) == "Unknown");
    Error e(static_cast<Reason>(0xffff), 0);
    CHECK(e.id() == "Unknown");
    CHECK(e.resolution() == Error().resolution());
}

TEST_CASE("with_resolution replaces the default resolution and chains") {
    Error e(Reason::capacity_exceeded, 0, "timers");
    std::string_view dflt = e.resolution();
    Error& same = e.with_resolution("raise runtime.timers");
    CHECK(&same == &e);
    CHECK(e.resolution() == "raise runtime.timers");
    CHECK(e.resolution() != dflt);
    CHECK(formatted(e) == "CapacityExceeded: timers. raise runtime.timers");
}

TEST_CASE("format: id, subject, errno text and number, resolution") {
    Error e = Error(Reason::epoll_unavailable, EMFILE, "epoll_create1").with_resolution("fix it");
    std::string f = formatted(e);
    // The errno text comes from the libc where it can; its number always.
    CHECK(f.rfind("EpollUnavailable: epoll_create1: ", 0) == 0);
    CHECK(f.find("(errno " + std::to_string(EMFILE) + "). fix it") != std::string::npos);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    CHECK(f == "EpollUnavailable: epoll_create1: Too many open files (errno 24). fix it");
#endif
}

TEST_CASE("format without errno and subject is 'Id. resolution'") {
    Error e = Error(Reason::backend_unknown, 0).with_resolution("set it");
    CHECK(formatted(e) == "BackendUnknown. set it");
}

TEST_CASE("format with errno but no subject has no empty subject field") {
    Error e = Error(Reason::clock_unavailable, EINVAL).with_resolution("r");
    std::string f = formatted(e);
    CHECK(f.rfind("ClockUnavailable: ", 0) == 0);
    CHECK(f.find(": :") == std::string::npos);
    CHECK(f.find("(errno " + std::to_string(EINVAL) + "). r") != std::string::npos);
}

TEST_CASE("format with an errno the libc does not know still prints its number") {
    Error e = Error(Reason::unknown, 99999, "x").with_resolution("r");
    std::string f = formatted(e);
    CHECK(f.rfind("Unknown: x: ", 0) == 0);
    CHECK(f.find("(errno 99999). r") != std::string::npos);
}

TEST_CASE("format with the default resolution ends with it") {
    Error e(Reason::out_of_memory, 0, "arena");
    std::string f = formatted(e);
    std::string expect = "OutOfMemory: arena. " + std::string(e.resolution());
    CHECK(f == expect);
}

TEST_CASE("format into a tiny buffer truncates, NUL-terminates and returns the full length") {
    Error e = Error(Reason::capacity_exceeded, ENOMEM, "services").with_resolution("raise it");
    std::string full = formatted(e);
    REQUIRE(full.size() > 20);

    SUBCASE("len 0 writes nothing and still reports the length") {
        char buf[4] = {'#', '#', '#', '#'};
        CHECK(e.format(buf, 0) == full.size());
        CHECK(buf[0] == '#');
        CHECK(e.format(nullptr, 0) == full.size());
    }
    SUBCASE("len 1 gives the empty string") {
        char buf[4] = {'#', '#', '#', '#'};
        CHECK(e.format(buf, 1) == full.size());
        CHECK(buf[0] == '\0');
        CHECK(buf[1] == '#');
    }
    SUBCASE("len 8 gives the first 7 characters and a NUL, nothing past it") {
        char buf[16];
        std::memset(buf, '#', sizeof buf);
        CHECK(e.format(buf, 8) == full.size());
        CHECK(std::string_view(buf) == full.substr(0, 7));
        CHECK(buf[7] == '\0');
        CHECK(buf[8] == '#');
    }
    SUBCASE("exactly the full length leaves room for all but the last character") {
        std::string buf(full.size(), '#');
        CHECK(e.format(buf.data(), buf.size()) == full.size());
        CHECK(std::string_view(buf.c_str()) == full.substr(0, full.size() - 1));
    }
    SUBCASE("length + 1 fits the whole text") {
        std::string buf(full.size() + 1, '#');
        CHECK(e.format(buf.data(), buf.size()) == full.size());
        CHECK(std::string_view(buf.c_str()) == full);
    }
}

TEST_CASE("fail() returns an unexpected Error through Result") {
    // (REQUIRE does not stop a test without exceptions: guard the accesses.)
    auto bad = parse_positive(-1);
    REQUIRE_FALSE(bad.has_value());
    if (!bad) {
        CHECK(bad.error().reason() == Reason::invalid_argument);
        CHECK(bad.error().subject() == "v");
        CHECK(bad.error().sys_errno() == 0);
    }
    CHECK(parse_positive(3).value_or(-1) == 3);
}

TEST_CASE("fail(const Error&) forwards an Error unchanged") {
    auto bad = forward(0);
    REQUIRE_FALSE(bad);
    if (!bad) {
        CHECK(bad.error().reason() == Reason::invalid_argument);
        CHECK(bad.error().subject() == "v");
    }
    CHECK(forward(4).value_or(-1) == 8);
}

TEST_CASE("fail() defaults errno to 0 and the subject to empty") {
    custos::Result<void> r = custos::fail(Reason::out_of_memory);
    REQUIRE_FALSE(r);
    if (!r) {
        CHECK(r.error().reason() == Reason::out_of_memory);
        CHECK(r.error().sys_errno() == 0);
        CHECK(r.error().subject().empty());
    }
}
