// Runtime::impl: the services' captured output. The process host drains
// every captured service's stdout and stderr pipes and hands each chunk
// here, on the reactor thread, in the order written per stream; it has
// already counted the bytes (RuntimeStats::output_bytes) and reads on
// whatever this does, so nothing here can make a service block.
#include "runtime/impl.hpp"

namespace custos {

// Slot `slot`'s service wrote `len` bytes to stream 1 (stdout) or 2
// (stderr); `data` lasts only for this call. Nothing keeps them yet: the
// capture (line framing, the RAM ring, the files) is connected here.
void Runtime::impl::on_output(std::uint32_t slot, int stream, const char* data,
                              std::size_t len) noexcept {
    (void)slot;
    (void)stream;
    (void)data;
    (void)len;
}

} // namespace custos
