// Per-service launch data (process::launch) resolved from a ServiceSpec
// table at init: the seam where the validated table's plan will hand the
// process host its resolved values instead. Init only: the storage is
// released when init ends.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include <custos/error.hpp>
#include <custos/service.hpp>

#include "process/host.hpp"

namespace custos::rt_detail {

// Whether service `s` gets a notify socket of its own.
bool wants_notify(const ServiceSpec& s) noexcept;

class launches {
public:
    // Resolves every service's executable (PATH search of argv[0]), user and
    // group. Errors: ExecutableMissing (resolve_executable's), UserUnknown,
    // GroupUnknown, OutOfMemory.
    Result<void> resolve(std::span<const ServiceSpec> table) noexcept;
    std::span<const process::launch> all() const noexcept { return {items_.get(), size_}; }

private:
    static constexpr std::size_t path_max = 512;
    std::unique_ptr<process::launch[]> items_;
    std::unique_ptr<char[]> paths_;
    std::size_t size_ = 0;
};

} // namespace custos::rt_detail
