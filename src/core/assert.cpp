#include "core/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace custos::detail {

void assert_failed(const char* expr, const char* file, int line) noexcept {
    std::fprintf(stderr, "custos: internal invariant broken: %s (%s:%d)\n", expr, file, line);
    std::abort();
}

} // namespace custos::detail
