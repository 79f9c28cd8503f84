// What each service's process is started with, resolved from the
// ServiceSpec table once at init (executable path, user and group ids): the
// values process::host takes. The validated table's plan is to supply them.
#include "runtime/launches.hpp"

#include <new>

#include "supervise/table.hpp"
#include "table/users.hpp"

namespace custos::rt_detail {

namespace {

// Through table/users.hpp (/etc/passwd and /etc/group, not NSS), like the
// table's validation. Ids above INT_MAX wrap to negative ints, never to -1
// ("unset"): find_user/find_group refuse (uid_t)-1.
Result<int> lookup_user(std::string_view name, int* primary_gid) noexcept {
    auto u = tbl::find_user(name);
    if (!u) {
        return fail(u.error());
    }
    *primary_gid = static_cast<int>(u->gid);
    return static_cast<int>(u->uid);
}

Result<int> lookup_group(std::string_view name) noexcept {
    auto g = tbl::find_group(name);
    if (!g) {
        return fail(g.error());
    }
    return static_cast<int>(g->gid);
}

} // namespace

bool wants_notify(const ServiceSpec& s) noexcept {
    return s.ready == ReadyMode::notify || s.watchdog.count() > 0;
}

Result<void> launches::resolve(std::span<const ServiceSpec> table) noexcept {
    const std::size_t n = table.size();
    items_.reset(new (std::nothrow) process::launch[n != 0 ? n : 1]);
    paths_.reset(new (std::nothrow) char[(n != 0 ? n : 1) * path_max]);
    if (!items_ || !paths_) {
        return fail(Reason::out_of_memory, ENOMEM, "runtime init");
    }
    size_ = n;
    for (std::size_t i = 0; i < n; ++i) {
        const ServiceSpec& spec = table[i];
        process::launch& l = items_[i];
        char* resolved = &paths_[i * path_max];
        if (auto found = sup::resolve_executable(spec.argv[0], resolved, path_max); !found) {
            return fail(found.error());
        }
        l.name = spec.name;
        l.path = resolved;
        l.argv = spec.argv;
        l.env = spec.env;
        l.cwd = spec.cwd;
        l.ready = spec.ready;
        l.ready_fd = spec.ready_fd;
        l.watchdog = std::chrono::duration_cast<nanos>(spec.watchdog);
        l.notify = wants_notify(spec);
        if (!spec.user.empty()) {
            int primary = -1;
            auto uid = lookup_user(spec.user, &primary);
            if (!uid) {
                return fail(uid.error());
            }
            l.uid = *uid;
            l.gid = primary;
        }
        if (!spec.group.empty()) {
            auto gid = lookup_group(spec.group);
            if (!gid) {
                return fail(gid.error());
            }
            l.gid = *gid;
        }
    }
    return {};
}

} // namespace custos::rt_detail
