// blob_sizes: the bytes one all-gather moves per decoder layer (the packed layer blob) for
// every built-in shape and quantization format, and the whole model's streamed bytes per
// forward pass: the W of the roofline in docs/DESIGN.md. No weights are made.
//   usage: blob_sizes [group_size]        (default 64)
#include <cstdio>
#include <cstdlib>

#include "partition/blob.hpp"
#include "runtime/model/dummy_configs.hpp"
#include "runtime/model/model.hpp"

using namespace zinc;

int main(int argc, char** argv) {
  const int group = argc > 1 ? std::atoi(argv[1]) : 64;
  const quant::QuantFormat formats[] = {quant::QuantFormat::None, quant::QuantFormat::Int8,
                                        quant::QuantFormat::Int4, quant::QuantFormat::NF4};
  std::printf("%-12s %-6s %14s %10s %14s %10s\n", "shape", "quant", "layer_blob", "vs_fp16",
              "model_bytes", "vs_fp16");
  std::printf("%-12s %-6s %14s %10s %14s %10s\n", "", "", "MB", "", "GB", "");
  for (const std::string& shape : runtime::dummy_shapes()) {
    const runtime::ModelConfig c = runtime::dummy_config(shape);
    const auto plan = runtime::blob_plan(c);
    for (quant::QuantFormat q : formats) {
      double layer = 0, total = 0, params_layer = 0, params_total = 0;
      for (size_t b = 0; b < plan.size(); ++b) {
        const auto m = partition::plan_blob(plan[b].name, plan[b].params, q, group);
        double params = 0;
        for (const auto& p : m.params) params += static_cast<double>(p.numel());
        total += static_cast<double>(m.bytes);
        params_total += params;
        if (b == 1) {
          layer = static_cast<double>(m.bytes);
          params_layer = params;
        }
      }
      std::printf("%-12s %-6s %14.2f %10.4f %14.3f %10.4f\n", shape.c_str(),
                  quant::quant_format_name(q), layer / 1e6, layer / (2 * params_layer), total / 1e9,
                  total / (2 * params_total));
    }
  }
  return 0;
}
