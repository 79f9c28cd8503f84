// The unit of every duration in a table: milliseconds.
#pragma once

#include <chrono>

namespace custos {

using Duration = std::chrono::milliseconds;

} // namespace custos
