// What the libFuzzer targets share (tests/fuzz): an input cut into NUL-separated fields.
// None of the texts a target parses can hold a NUL (JSON texts; HDF5 strings end at one),
// so a NUL is a free separator, and a mutated input still has all its fields.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "runtime/common/error.hpp"

namespace zinc::fuzz {

// data[0, size) cut at every NUL: at least `min_fields` fields (the missing ones empty).
inline std::vector<std::string> split_fields(const uint8_t* data, size_t size, size_t min_fields = 1) {
  std::vector<std::string> fields(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      fields.emplace_back();
    } else {
      fields.back().push_back(static_cast<char>(data[i]));
    }
  }
  if (fields.size() < min_fields) fields.resize(min_fields);
  return fields;
}

// A decimal field as an unsigned integer (0 when it is not one: the field is a number the
// target hands on, like a length HDF5 reported).
inline uint64_t to_u64(const std::string& s) { return std::strtoull(s.c_str(), nullptr, 10); }
inline int to_int(const std::string& s) { return static_cast<int>(std::strtol(s.c_str(), nullptr, 10)); }

// A refused input: silent, unless ZINC_FUZZ_VERBOSE is set (to see why the seeds or a
// corpus stop where they do: `ZINC_FUZZ_VERBOSE=1 fuzz_X FILE...`).
inline void refused(const Error& e) {
  static const bool verbose = std::getenv("ZINC_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::cerr << "refused: " << e.what() << "\n";
}

}  // namespace zinc::fuzz
