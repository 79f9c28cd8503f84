// The check every per-backend test binary makes before running its cases:
// can the backend CUSTOS_BACKEND asks for start here? Where the kernel
// refuses io_uring (qemu-user, seccomp) the binary must exit 77, which meson
// reports as a skip, never as a pass.
#pragma once

#include <cstdio>

#include <custos/error.hpp>

#include "io/reactor.hpp"

namespace custos_test {

// 0 when the requested backend works (and says which it is), 77 when it is
// unavailable here, 1 when the reactor fails for another reason.
inline int probe_backend() {
    custos::io::reactor probe;
    auto res = probe.init();
    if (!res) {
        char buf[512];
        res.error().format(buf, sizeof buf);
        if (res.error().reason() == custos::Reason::io_uring_unavailable ||
            res.error().reason() == custos::Reason::io_uring_opcode_missing) {
            std::printf("SKIP: requested backend unavailable here: %s\n", buf);
            return 77;
        }
        std::printf("reactor init failed: %s\n", buf);
        return 1;
    }
    std::printf("backend: %s\n", probe.backend_reason());
    return 0;
}

} // namespace custos_test
