// Per-service launch data (process::launch) from the table's plan: what the
// process host takes, with the executable path and the user and group ids
// the plan resolved. Init only: the storage is released when init ends.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include <custos/error.hpp>
#include <custos/service.hpp>

#include "process/host.hpp"
#include "table/plan.hpp"

namespace custos::rt_detail {

class launches {
public:
    // One launch per service of the plan, in table order. The views point
    // into the plan and its table. Errors: OutOfMemory.
    Result<void> fill(const tbl::plan& plan) noexcept;
    std::span<const process::launch> all() const noexcept { return {items_.get(), size_}; }
    // Service `i` of the plan's launch (views into the plan and its
    // table; a reload's, with nothing allocated).
    static process::launch make(const tbl::plan& plan, std::size_t i) noexcept;

private:
    std::unique_ptr<process::launch[]> items_;
    std::size_t size_ = 0;
};

} // namespace custos::rt_detail
