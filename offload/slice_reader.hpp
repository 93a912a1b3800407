// SliceReader: where the bytes of a streamed blob come from. Produces bytes
// [offset, offset + bytes) of blob `blob` (zero past its end) into host memory `dst`:
// from an HF checkpoint (quantize-at-load), a zinc store (a plain read, or io_uring
// O_DIRECT for the NVMe tier: offload/nvme_reader.hpp), or the dummy generator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace zinc::offload {

using SliceReader = std::function<void(size_t blob, size_t offset, size_t bytes, uint8_t* dst)>;

}  // namespace zinc::offload
