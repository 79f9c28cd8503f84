// The table resolved: what every subsystem consumes at init.
//
// plan::build() runs the table's one check (table/validate) and, when it
// passes, resolves what the check looked up: dependencies and probe
// references become indices, executables absolute paths, users and groups
// ids, file owners ids. The supervisor, the probe engine and the process
// host take their settings from here; after init nothing is looked up by
// name (the runtime's operator actions by name excepted: that is their
// interface).
//
// Memory: build() measures, then takes one block (new, at init) and never
// grows; names and paths are copied into it, so the plan outlives the
// caller's table. The table's spans themselves (table()) are valid only as
// long as the caller keeps them: during init.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <custos/table.hpp>

#include "core/arena.hpp"
#include "table/validate.hpp"

namespace custos::tbl {

struct service_plan {
    std::string_view name;
    const char* path = nullptr;          // the executable, resolved (argv[0] stays as given)
    int uid = -1;                        // -1: custos's own
    int gid = -1;                        // the group's, else the user's primary group, else -1
    std::span<const std::uint32_t> deps; // services in depends_on, by index
    std::span<const std::uint32_t> probe_deps; // probes in depends_on, by index
    std::uint32_t ready_probe = no_index;      // ReadyMode::probe
    std::uint32_t liveness = no_index;
    bool notify = false; // ReadyMode::notify or a watchdog: it gets a notify socket
};

struct probe_plan {
    std::string_view name;
    std::span<const std::uint32_t> members; // composites
    owner_ids owner;                        // file probes
    const char* path = nullptr;             // exec probes: the program, resolved
};

struct monitor_plan {
    std::string_view name;
    std::span<const std::uint32_t> deps;       // services in depends_on, by index
    std::span<const std::uint32_t> probe_deps; // probes in depends_on, by index
};

class plan {
public:
    plan() noexcept = default;
    plan(const plan&) = delete;
    plan& operator=(const plan&) = delete;

    // Checks `t` (every problem to `sink`, which may be null) and resolves
    // it. Errors: the first problem's error; OutOfMemory.
    Result<void> build(const Table& t, const options& opt = {},
                       TableProblemSink* sink = nullptr) noexcept;

    // For a reload's plan, at init: takes a block of `bytes` that later
    // builds start over and never grow (no allocation after init); a table
    // whose plan needs more fails with ReloadCapacity (so does every one,
    // if the block could not be had).
    void reserve_fixed(std::size_t bytes) noexcept;
    // Bytes the last build laid out.
    std::size_t bytes() const noexcept { return mem_.used(); }
    // Exchanges two plans (a reload's becomes the current one).
    void swap(plan& o) noexcept;

    // The caller's table: valid while the caller keeps it (init).
    const Table& table() const noexcept { return table_; }
    const RuntimeConfig& runtime() const noexcept { return table_.runtime; }
    std::span<const service_plan> services() const noexcept { return {services_, nservices_}; }
    std::span<const probe_plan> probes() const noexcept { return {probes_, nprobes_}; }
    std::span<const monitor_plan> monitors() const noexcept { return {monitors_, nmonitors_}; }
    // Check instances the probes need (composites expanded).
    std::uint32_t check_count() const noexcept { return checks_; }
    // Services with a notify socket.
    std::uint32_t notify_count() const noexcept { return notify_; }

private:
    struct dep_lists {
        std::span<const std::uint32_t> services;
        std::span<const std::uint32_t> probes;
    };
    Result<void> resolve(const options& opt) noexcept;
    bool split_deps(std::span<const std::string_view> names, dep_lists& out) noexcept;

    arena mem_;
    Table table_;
    service_plan* services_ = nullptr;
    std::uint32_t nservices_ = 0;
    probe_plan* probes_ = nullptr;
    std::uint32_t nprobes_ = 0;
    monitor_plan* monitors_ = nullptr;
    std::uint32_t nmonitors_ = 0;
    std::uint32_t checks_ = 0;
    std::uint32_t notify_ = 0;
};

} // namespace custos::tbl
