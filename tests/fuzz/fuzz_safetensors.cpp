// libFuzzer target: the bytes of a safetensors file, parsed as SafetensorsFile::open parses
// the mapped file (partition::parse_safetensors). An input either parses into tensor views
// that lie inside it and agree with their shapes, or is refused with a zinc::Error naming the
// file; a crash, a sanitizer report, another exception, a leak or a slow input is a finding.
#include <cstdint>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "partition/safetensors.hpp"
#include "runtime/common/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zinc::partition;
  try {
    const SafetensorsHeader h = parse_safetensors("fuzz.safetensors", data, size);
    for (const auto& [name, t] : h.tensors) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (p < data || t.bytes > size || p - data > static_cast<ptrdiff_t>(size - t.bytes)) std::abort();
      if (t.numel() * zinc::quant::dtype_size(t.dtype) != t.bytes || t.name != name) std::abort();
      if (t.bytes > 0) {
        volatile uint8_t first = p[0], last = p[t.bytes - 1];  // inside the input (ASan)
        (void)first;
        (void)last;
      }
      (void)shape_to_string(t.shape);
    }
  } catch (const zinc::Error& e) {
    zinc::fuzz::refused(e);
  }
  return 0;
}
