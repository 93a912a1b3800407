// runtime/model/workspace: the micro-batch size of a step and the rows the workspace
// reserves for it (the planner's activation share follows them).
#include "catch.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/workspace.hpp"

using namespace zinc::runtime;

TEST_CASE("micro-batches: auto keeps each within 16384 rows, an explicit size is clamped", "[workspace]") {
  CHECK(micro_batch_size(128, 512, 0) == 32);     // 32 x 512 = 16384 rows
  CHECK(micro_batch_size(128, 1, 0) == 128);      // a decode step is one micro-batch
  CHECK(micro_batch_size(4, 512, 0) == 4);
  CHECK(micro_batch_size(3, 20000, 0) == 1);      // at least one sequence
  CHECK(micro_batch_size(128, 512, 48) == 48);
  CHECK(micro_batch_size(16, 512, 48) == 16);
  CHECK_THROWS(micro_batch_size(0, 512, 0));

  const WorkspaceRows r = workspace_rows(128, 512, 0);
  CHECK(r.step == 128 * 512);
  CHECK(r.micro == 16384);
  const WorkspaceRows d = workspace_rows(128, 512, 8);  // decode's 8 rows < the head's 128
  CHECK(d.micro == 8 * 512);
  CHECK(workspace_rows(256, 1, 8).micro == 256);        // the head's rows: B

  // LLaMA-2-70B, 256 x 512 tokens in fp16: the micro-batched workspace is a fraction.
  const ModelConfig c = dummy_config("llama-2-70b");
  const size_t whole = Workspace::bytes(c, {256 * 512, 256 * 512}, zinc::quant::DType::F16);
  const size_t micro = Workspace::bytes(c, workspace_rows(256, 512, 0), zinc::quant::DType::F16);
  CHECK(whole > size_t(32) << 30);  // 35 GiB
  CHECK(micro < size_t(8) << 30);   // 7.9 GiB: 2 GiB of it the step-wide residual stream
  CHECK(activation_bytes(c, 256, 512, 0, zinc::quant::DType::F16) > micro);
}
