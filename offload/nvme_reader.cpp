#include "offload/nvme_reader.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "partition/shard.hpp"

namespace zinc::offload {

SliceReader nvme_slice_reader(std::shared_ptr<const partition::StoreReader> reader, const UringOptions& opts,
                              std::shared_ptr<UringFile>* file_out) {
  // The returned reader shares the store (manifests, page checksums) and owns the file.
  auto file = std::make_shared<UringFile>(reader->path(), opts);
  std::vector<uint64_t> base;
  for (size_t b = 0; b < reader->manifests().size(); ++b) base.push_back(reader->file_offset(b));
  if (file_out) *file_out = file;
  return [reader, file, base](size_t b, size_t offset, size_t bytes, uint8_t* dst) {
    const size_t blob = reader->manifests()[b].bytes;
    const size_t valid = offset < blob ? std::min(bytes, blob - offset) : 0;
    const size_t pages = partition::round_up(valid, partition::kPageBytes);
    if (valid > 0) file->read(base[b] + offset, pages, dst, base[b] + offset + valid);
    std::memset(dst + valid, 0, bytes - valid);  // past the blob: padding, not file data
    reader->verify_slice(b, offset, valid, dst);
  };
}

}  // namespace zinc::offload
