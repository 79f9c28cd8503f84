// doctest as custos's tests use it: built with the production flags, so with
// exceptions off.
//
// Without exceptions doctest cannot unwind out of a failed REQUIRE and simply
// carries on, turning REQUIRE into CHECK: a test would then go on to use the
// descriptor it just failed to create. Here a failed REQUIRE (already
// reported by doctest) ends the test binary with status 1.
#pragma once

#define DOCTEST_CONFIG_NO_EXCEPTIONS_BUT_WITH_ALL_ASSERTS
#define DOCTEST_CONFIG_ASSERTS_RETURN_VALUES
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

namespace custos_test {
[[noreturn]] inline void require_failed() {
    std::fputs("aborting the test binary: a REQUIRE failed (no exceptions to unwind with)\n",
               stderr);
    std::fflush(nullptr);
    std::_Exit(1);
}
} // namespace custos_test

#undef REQUIRE
#undef REQUIRE_FALSE
#undef REQUIRE_EQ
#undef REQUIRE_NE
#undef REQUIRE_MESSAGE
#define REQUIRE(...) (DOCTEST_REQUIRE(__VA_ARGS__) ? (void)0 : ::custos_test::require_failed())
#define REQUIRE_FALSE(...)                                                                         \
    (DOCTEST_REQUIRE_FALSE(__VA_ARGS__) ? (void)0 : ::custos_test::require_failed())
#define REQUIRE_EQ(...)                                                                            \
    (DOCTEST_REQUIRE_EQ(__VA_ARGS__) ? (void)0 : ::custos_test::require_failed())
#define REQUIRE_NE(...)                                                                            \
    (DOCTEST_REQUIRE_NE(__VA_ARGS__) ? (void)0 : ::custos_test::require_failed())
#define REQUIRE_MESSAGE(cond, ...)                                                                 \
    (DOCTEST_REQUIRE_MESSAGE(cond, __VA_ARGS__) ? (void)0 : ::custos_test::require_failed())
