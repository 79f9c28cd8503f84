// What each service's process is started with, from the table's plan (the
// executable path and the user and group ids it resolved): the values
// process::host takes.
#include "runtime/launches.hpp"

#include <cerrno>
#include <new>

namespace custos::rt_detail {

Result<void> launches::fill(const tbl::plan& plan) noexcept {
    const std::span<const ServiceSpec> table = plan.table().services;
    const std::size_t n = table.size();
    items_.reset(new (std::nothrow) process::launch[n != 0 ? n : 1]);
    if (!items_) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime init");
    }
    size_ = n;
    for (std::size_t i = 0; i < n; ++i) {
        items_[i] = make(plan, i);
    }
    return {};
}

process::launch launches::make(const tbl::plan& plan, std::size_t i) noexcept {
    const ServiceSpec& spec = plan.table().services[i];
    const tbl::service_plan& sp = plan.services()[i];
    process::launch l;
    l.name = sp.name;
    l.path = sp.path;
    l.argv = spec.argv;
    l.env = spec.env;
    l.cwd = spec.cwd;
    l.uid = sp.uid;
    l.gid = sp.gid;
    l.ready = spec.ready;
    l.ready_fd = spec.ready_fd;
    l.channel_fd = spec.channel_fd;
    l.runtime_dir = spec.runtime_dir;
    l.watchdog = std::chrono::duration_cast<nanos>(spec.watchdog);
    l.notify = sp.notify;
    l.output = spec.output;
    return l;
}

} // namespace custos::rt_detail
