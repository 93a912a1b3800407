// libFuzzer target: the text of a model.safetensors.index.json (partition::
// parse_safetensors_index, what Checkpoint::open_dir reads before it opens any shard). Every
// shard name it returns must stay inside the model directory: a relative path, no ".."
// component. Refusals are zinc::Errors; anything else is a finding.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_input.hpp"
#include "partition/safetensors.hpp"
#include "runtime/common/error.hpp"

namespace {

bool inside(const std::string& name) {
  if (name.empty() || name[0] == '/') return false;
  return name != ".." && name.rfind("../", 0) != 0 && name.find("/../") == std::string::npos &&
         (name.size() < 3 || name.compare(name.size() - 3, 3, "/..") != 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    for (const auto& [tensor, shard] : zinc::partition::parse_safetensors_index("fuzz.index.json", text)) {
      if (!inside(shard)) std::abort();
    }
  } catch (const zinc::Error& e) {
    zinc::fuzz::refused(e);
  }
  return 0;
}
