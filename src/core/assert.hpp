// CUSTOS_ASSERT: invariants of custos's own code (a double submit, a corrupt
// list). They stay on in release builds: on an unattended device a clear
// abort, which the supervisor above us or the hardware watchdog turns into a
// restart, beats running on with corrupted state. Bad *input* never reaches
// an assert; it gets an Error.
#pragma once

namespace custos::detail {
[[noreturn]] void assert_failed(const char* expr, const char* file, int line) noexcept;
}

#define CUSTOS_ASSERT(cond)                                                                        \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) {                                                        \
            ::custos::detail::assert_failed(#cond, __FILE__, __LINE__);                            \
        }                                                                                          \
    } while (0)
