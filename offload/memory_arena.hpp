// Accounting for one memory space with a hard budget and a high-water mark.
//
// Every backend allocation goes through an arena: allocate() refuses (throws zinc::Error
// naming the purpose, the request, the budget and what is in use) when the budget would
// be exceeded, so "does it fit" is decided before any long work. The high-water mark is
// the "peak backend memory" that metrics report. Thread-safe.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>

namespace zinc::offload {

class MemoryArena {
 public:
  // budget_bytes == 0 means unlimited.
  explicit MemoryArena(std::string name, size_t budget_bytes = 0);

  void allocate(size_t bytes, const char* purpose);
  void release(size_t bytes) noexcept;

  const std::string& name() const { return name_; }
  size_t budget() const { return budget_; }
  size_t used() const;
  size_t high_water_mark() const;
  void reset_high_water_mark();
  // A new budget (0 = unlimited) before the run's buffers: the run planner's, when no
  // --gpu-memory-budget was given. Throws if less than what is in use.
  void set_budget(size_t bytes);

 private:
  std::string name_;
  size_t budget_;
  mutable std::mutex mu_;
  size_t used_ = 0;
  size_t peak_ = 0;
};

// "1.50 GiB", "512 B": for messages and tables.
std::string format_bytes(size_t bytes);
// Parses "48GiB", "512MiB", "2GB", "1000000": binary and decimal suffixes. Throws on junk.
size_t parse_bytes(const std::string& text);

}  // namespace zinc::offload
