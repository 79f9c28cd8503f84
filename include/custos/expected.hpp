// The one place tl::expected is included. Everything in custos that needs it
// includes this header instead, so the assertion hook below is always in
// effect.
//
// TL_ASSERT is defined before the library is seen: tl-expected 1.1 and later
// check operator* / operator-> on the wrong alternative with it. Debian 12's
// tl-expected 1.0.0 predates the hook; with exceptions off its .value() on an
// error is undefined behaviour, so custos never calls .value() (CI greps for it).
#pragma once

#include <cstdio>
#include <cstdlib>

#ifndef TL_ASSERT
#define TL_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "custos: tl::expected misuse: %s (%s:%d)\n", #cond, __FILE__,     \
                         __LINE__);                                                                \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)
#endif

#include <tl/expected.hpp>
