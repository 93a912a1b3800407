#include "runtime/generate/batch.hpp"

#include <algorithm>

#include "runtime/common/error.hpp"

namespace zinc::runtime {

PaddedBatch make_padded_batch(const std::vector<const std::vector<int32_t>*>& prompts,
                              int32_t pad_id) {
  PaddedBatch pb;
  pb.batch = static_cast<int>(prompts.size());
  for (const auto* p : prompts) pb.length = std::max(pb.length, static_cast<int>(p->size()));
  const size_t cells = static_cast<size_t>(pb.batch) * pb.length;
  pb.ids.assign(cells, pad_id);
  pb.mask.assign(cells, 0);
  pb.positions.assign(cells, 0);
  pb.next_position.assign(pb.batch, 0);
  for (int b = 0; b < pb.batch; ++b) {
    const auto& p = *prompts[b];
    ZINC_CHECK(!p.empty(), "an empty prompt cannot be generated from");
    const int pad = pb.length - static_cast<int>(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      const size_t cell = static_cast<size_t>(b) * pb.length + pad + i;
      pb.ids[cell] = p[i];
      pb.mask[cell] = 1;
      pb.positions[cell] = static_cast<int32_t>(i);
    }
    pb.next_position[b] = static_cast<int32_t>(p.size());
  }
  return pb;
}

}  // namespace zinc::runtime
