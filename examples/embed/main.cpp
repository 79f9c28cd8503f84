// How an appliance daemon links libcustos from an installed tree (a firmware
// image's staging sysroot, a Buildroot/Yocto recipe):
//
//   g++ -std=c++20 main.cpp $(pkg-config --cflags custos) $(pkg-config --static --libs custos)
//
// CI (./dev test) builds it against `meson install --destdir` output. What it
// can call grows with the public API (include/custos/); today that is the
// error model every custos function reports failures with.
#include <cerrno>
#include <cstdio>

#include <custos/error.hpp>
#include <custos/version.h>

int main() {
    custos::Error e(custos::Reason::io_uring_unavailable, ENOSYS, "io_uring_setup");
    char text[256];
    e.format(text, sizeof text);
    std::printf("custos %s linked; an example error reads:\n  %s\n", CUSTOS_VERSION, text);
    return e.id() == "IoUringUnavailable" ? 0 : 1;
}
