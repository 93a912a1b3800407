#include "offload/memory_arena.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "runtime/common/error.hpp"

namespace zinc::offload {

MemoryArena::MemoryArena(std::string name, size_t budget_bytes)
    : name_(std::move(name)), budget_(budget_bytes) {}

void MemoryArena::set_budget(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  ZINC_CHECK(bytes == 0 || bytes >= used_, name_ << ": a budget of " << format_bytes(bytes) << " is below the "
                                                 << format_bytes(used_) << " in use");
  budget_ = bytes;
}

void MemoryArena::allocate(size_t bytes, const char* purpose) {
  std::lock_guard<std::mutex> lock(mu_);
  ZINC_CHECK(budget_ == 0 || used_ + bytes <= budget_,
             name_ << " memory budget exceeded allocating " << format_bytes(bytes) << " for "
                   << purpose << ": " << format_bytes(used_) << " of " << format_bytes(budget_)
                   << " already in use; raise the budget to at least "
                   << format_bytes(used_ + bytes));
  used_ += bytes;
  if (used_ > peak_) peak_ = used_;
}

void MemoryArena::release(size_t bytes) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  used_ = bytes > used_ ? 0 : used_ - bytes;
}

size_t MemoryArena::used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

size_t MemoryArena::high_water_mark() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peak_;
}

void MemoryArena::reset_high_water_mark() {
  std::lock_guard<std::mutex> lock(mu_);
  peak_ = used_;
}

std::string format_bytes(size_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%zu B", bytes);
  else
    std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

size_t parse_bytes(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  ZINC_CHECK(i > 0, "'" << text << "' is not a size: expected a number with an optional unit "
                        "(B, KB, MB, GB, KiB, MiB, GiB, TiB), e.g. 48GiB");
  double value = 0;
  size_t used = 0;
  try {
    value = std::stod(text.substr(0, i), &used);
  } catch (const std::exception&) {
    used = 0;
  }
  ZINC_CHECK(used == i, "'" << text << "' is not a size: bad number '" << text.substr(0, i) << "'");
  std::string unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  static const struct { const char* unit; double scale; } table[] = {
      {"", 1},        {"B", 1},         {"KB", 1e3},      {"MB", 1e6},      {"GB", 1e9},
      {"TB", 1e12},   {"K", 1024.0},    {"KiB", 1024.0},  {"M", 1048576.0}, {"MiB", 1048576.0},
      {"G", 1073741824.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  for (const auto& e : table) {
    if (unit == e.unit) return static_cast<size_t>(std::llround(value * e.scale));
  }
  ZINC_THROW("'" << text << "' has an unknown unit '" << unit
                 << "': use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
}

}  // namespace zinc::offload
