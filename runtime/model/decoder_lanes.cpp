// Decoder::layers_in_lanes: a host-KV decode step's layers with each micro-batch a lane
// (docs/DESIGN.md, "Host KV decode overlap").
//
// Lane j runs every layer of micro-batch j on its own thread (lane 0 on the caller's);
// the lanes take turns round robin (common/lane_turns.hpp). A turn queues a lane's GPU
// work from the end of one layer's attention to the start of the next one's: the output
// upload, the rest of layer l, then layer l + 1 up to its q/k/v download. KvCache::attend
// then hands the host work (K/V store, CPU attention) to its worker and passes the turn,
// so while the CPU attends lane j the GPU computes lane j + 1's part, and the other way
// round. The one compute stream runs the turns' work in turn order, each turn contiguous,
// so the lanes share the workspace's scratch: what a lane keeps across its pause is only
// in its own rows (the residual stream, its x rows, its host staging rows).
//
// Weights: lane 0 acquires each layer in its turn, the last lane releases it in its turn;
// lane 0 holds layer l + 1 while the last lane still computes l, so two blobs are held at
// once (WeightProvider::max_held >= 2, checked by overlap_step). The acquires are in the
// schedule's order and on the caller's thread, as without lanes (a ZeRO acquire grants
// the loader's collectives).
#include <exception>
#include <string>
#include <thread>

#include "runtime/common/trace.hpp"

#include "runtime/model/decoder.hpp"

namespace zinc::runtime {

void Decoder::layers_in_lanes(std::vector<StepState>& parts, LaneTurns& turns) {
  std::vector<const ForwardStep*> layers;
  for (const ForwardStep& s : steps_)
    if (s.kind == ForwardStep::Kind::Layer) layers.push_back(&s);
  const int m = static_cast<int>(parts.size());
  std::vector<const ParamTable*> tables(layers.size(), nullptr);  // written and read in turns
  std::vector<std::exception_ptr> errors(parts.size());
  auto lane = [&](int j) {
    try {
      if (j != 0) backend_.bind_thread();
      trace::name_thread("lane " + std::to_string(j) + (j == 0 ? " (main)" : ""));
      turns.take(j);
      for (size_t i = 0; i < layers.size(); ++i) {
        const int blob = layers[i]->blobs[0];
        if (j == 0) {
          const trace::Span span("acquire weights");
          tables[i] = &weights_->acquire(blob);
        }
        layer(layers[i]->layer, *tables[i], parts[static_cast<size_t>(j)]);  // pauses in the attention
        if (j == m - 1) weights_->release(blob);
      }
      turns.pass(j);
    } catch (...) {
      errors[static_cast<size_t>(j)] = std::current_exception();
      turns.abort();
    }
  };
  std::vector<std::thread> threads;
  try {
    for (int j = 1; j < m; ++j) threads.emplace_back(lane, j);
  } catch (...) {  // no thread: the started lanes must not wait for it
    turns.abort();
    for (std::thread& t : threads) t.join();
    throw;
  }
  lane(0);
  for (std::thread& t : threads) t.join();
  // The error that stopped the lanes, rather than the others' LanesAborted.
  std::exception_ptr aborted;
  for (const std::exception_ptr& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const LanesAborted&) {
      aborted = e;
    }
  }
  if (aborted) std::rethrow_exception(aborted);
}

}  // namespace zinc::runtime
