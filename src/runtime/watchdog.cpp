// What connects the hardware watchdog's feeder (ports/feeder.hpp) to the
// runtime. Being wired: the facade answers "no watchdog" until then.
#include "runtime/impl.hpp"

namespace custos {

void Runtime::set_watchdog_hook(WatchdogHook hook, void* ctx) noexcept {
    (void)hook;
    (void)ctx;
}

WatchdogStatus Runtime::watchdog() const noexcept {
    return {};
}

Result<void> Runtime::hold_watchdog(Duration for_, std::string_view by) noexcept {
    (void)for_;
    return fail(Reason::watchdog_unavailable, 0, by);
}

Result<void> Runtime::release_watchdog(std::string_view by) noexcept {
    return fail(Reason::watchdog_unavailable, 0, by);
}

} // namespace custos
