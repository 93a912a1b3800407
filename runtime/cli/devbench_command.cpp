#include "runtime/cli/devbench_command.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "offload/memory_arena.hpp"
#include "quant/quant_view.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/cuda_probe.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/common/hash.hpp"
#include "runtime/common/stats.hpp"

namespace po = boost::program_options;

namespace zinc::cli {
namespace {

using offload::DeviceBuffer;
using offload::HostBuffer;

struct Row {
  std::string what;
  double bytes = 0;   // moved per run (read + written)
  double seconds = 0; // median
  double gbs() const { return seconds > 0 ? bytes / seconds / 1e9 : 0.0; }
};

// Median seconds of `repeat` runs of `op` queued on `s`, after one warm-up, by events.
double time_op(runtime::Backend& be, const Stream& s, int repeat, const std::function<void()>& op) {
  Event a = be.create_event(), b = be.create_event();
  std::vector<double> t;
  for (int i = 0; i <= repeat; ++i) {
    a.record(s);
    op();
    b.record(s);
    b.synchronize();
    if (i > 0) t.push_back(Event::elapsed_s(a, b));
  }
  return median(t);
}

struct GemmRow {
  std::string what;
  double flops = 0, seconds = 0;
};

// Backend::linear (cuBLAS on the GPU) at the shapes of an OPT-30B layer: a prefill
// micro-batch of 16384 rows (workspace.hpp) and a decode step of 128 rows.
std::vector<GemmRow> time_gemms(runtime::Backend& be, const Stream& s, int repeat) {
  struct Shape {
    const char* what;
    int64_t n, in, out;
  };
  const Shape shapes[] = {{"prefill fc1", 16384, 7168, 28672}, {"prefill fc2", 16384, 28672, 7168},
                          {"prefill q/k/v/o", 16384, 7168, 7168}, {"decode fc1", 128, 7168, 28672}};
  const quant::DType t = be.compute_dtype();
  const size_t e = quant::dtype_size(t);
  std::vector<GemmRow> out;
  for (const Shape& sh : shapes) {
    DeviceBuffer x = be.alloc(static_cast<size_t>(sh.n * sh.in) * e, "devbench gemm input");
    DeviceBuffer w = be.alloc(static_cast<size_t>(sh.out * sh.in) * e, "devbench gemm weight");
    DeviceBuffer y = be.alloc(static_cast<size_t>(sh.n * sh.out) * e, "devbench gemm output");
    // Zeros are as fast as any data for the tensor cores; the memory just must be defined.
    HostBuffer zeros = be.alloc_host(std::max(x.bytes(), w.bytes()), "devbench zeros");
    be.copy_to_device(x.data(), zeros.data(), x.bytes(), s);
    be.copy_to_device(w.data(), zeros.data(), w.bytes(), s);
    const runtime::Tensor tx(x.data(), t, {sh.n, sh.in}), tw(w.data(), t, {sh.out, sh.in}), ty(y.data(), t, {sh.n, sh.out});
    const double sec = time_op(be, s, repeat, [&] { be.linear(tx, tw, runtime::Tensor(), ty, s); });
    out.push_back({std::string(sh.what) + " " + std::to_string(sh.n) + "x" + std::to_string(sh.in) + "->" +
                       std::to_string(sh.out),
                   2.0 * sh.n * sh.in * sh.out, sec});
  }
  return out;
}

}  // namespace

bool parse_devbench_options(int argc, char** argv, DevBenchOptions* o, std::string* help) {
  po::options_description desc(
      "zinc devbench: copy bandwidths and dequantize kernels of a backend, measured here\n"
      "usage: zinc devbench [--backend auto|cpu|cuda] [--dtype auto|fp32|fp16|bf16] [--bytes 1GiB]\n"
      "       [--rows 8192 --cols 28672 --group-size 64] [--repeat 5] [--json F]\noptions");
  desc.add_options()("help,h", "show this help")(
      "backend", po::value<std::string>(&o->backend)->default_value("auto"), "auto, cpu or cuda")(
      "dtype", po::value<std::string>(&o->dtype)->default_value("auto"), "compute dtype the dequantize writes")(
      "bytes", po::value<std::string>(&o->bytes)->default_value("1GiB"), "bytes per copy")(
      "rows", po::value<long>(&o->rows)->default_value(8192), "rows of the dequantized matrix")(
      "cols", po::value<long>(&o->cols)->default_value(28672), "columns (a multiple of --group-size)")(
      "group-size", po::value<int>(&o->group_size)->default_value(64), "quantization group")(
      "repeat", po::value<int>(&o->repeat)->default_value(5), "timed runs (median reported)")(
      "json", po::value<std::string>(&o->json), "also write the results as JSON");
  if (!parse_command(argc, argv, desc, nullptr, "devbench", help, nullptr)) return false;
  if (o->repeat < 1 || o->rows < 1 || o->cols < 1 || o->group_size < 2 || o->cols % o->group_size != 0)
    throw UsageError("need --repeat >= 1, --rows/--cols >= 1, an even --group-size >= 2 dividing --cols");
  return true;
}

int run_devbench(const DevBenchOptions& o) {
  runtime::BackendOptions bo;
  bo.name = runtime::resolve_backend(o.backend);
  bo.dtype = runtime::choose_compute_dtype(o.dtype, bo.name, "");
  bo.local_rank = o.local_rank;
  const auto backend = runtime::make_backend(bo);
  runtime::Backend& be = *backend;
  const Stream& s = be.compute_stream();
  const size_t bytes = offload::parse_bytes(o.bytes);
  std::vector<Row> rows;

  {  // copies
    HostBuffer host = be.alloc_host(bytes, "devbench host buffer");
    DeviceBuffer a = be.alloc(bytes, "devbench buffer"), b = be.alloc(bytes, "devbench buffer");
    rows.push_back({"h2d pinned", double(bytes), time_op(be, s, o.repeat, [&] { be.copy_to_device(a.data(), host.data(), bytes, s); })});
    rows.push_back({"d2h pinned", double(bytes), time_op(be, s, o.repeat, [&] { be.copy_to_host(host.data(), a.data(), bytes, s); })});
    rows.push_back({"d2d copy", 2.0 * bytes, time_op(be, s, o.repeat, [&] { be.copy_on_device(b.data(), a.data(), bytes, s); })});
  }
  const double d2d = rows.back().gbs();
  const quant::DType out_t = be.compute_dtype();
  const quant::QuantFormat formats[] = {quant::QuantFormat::Int8, quant::QuantFormat::Int8Asym, quant::QuantFormat::Int4,
                                        quant::QuantFormat::Int4Sym, quant::QuantFormat::NF4};
  for (quant::QuantFormat f : formats) {
    const quant::QuantLayout l = quant::quant_layout(f, o.rows, o.cols, o.group_size, "devbench matrix");
    HostBuffer host = be.alloc_host(l.total(), "devbench packed matrix (host)");
    auto* codes = host.as<uint8_t>();
    for (size_t i = 0; i < l.codes_used_bytes; ++i) codes[i] = static_cast<uint8_t>(splitmix64_at(7, i));
    auto* params = reinterpret_cast<uint16_t*>(codes + l.codes_bytes);
    for (size_t i = 0; i < (l.scales_bytes + l.mins_bytes) / 2; ++i) params[i] = 0x2000;  // fp16 ~0.0078
    DeviceBuffer packed = be.alloc(l.total(), "devbench packed matrix");
    DeviceBuffer out = be.alloc(static_cast<size_t>(o.rows * o.cols) * quant::dtype_size(out_t), "devbench output");
    be.copy_to_device(packed.data(), host.data(), l.total(), s);
    quant::QuantView v;
    v.format = f;
    v.group = o.group_size;
    v.rows = o.rows;
    v.cols = o.cols;
    v.codes = packed.bytes_ptr();
    v.scales = reinterpret_cast<const uint16_t*>(packed.bytes_ptr() + l.codes_bytes);
    v.mins = l.mins_bytes ? reinterpret_cast<const uint16_t*>(packed.bytes_ptr() + l.codes_bytes + l.scales_bytes)
                          : nullptr;
    const runtime::Tensor t(out.data(), out_t, {o.rows, o.cols});
    const double moved = double(l.total()) + double(out.bytes());
    rows.push_back({std::string("dequant ") + quant::quant_format_name(f), moved,
                    time_op(be, s, o.repeat, [&] { be.dequantize(v, t, s); })});
  }

  std::printf("zinc devbench: backend %s (%s), compute %s; %s per copy; dequantize [%ld, %ld] group %d; median of %d\n",
              be.name().c_str(), runtime::describe_cuda().c_str(), quant::dtype_name(out_t),
              offload::format_bytes(bytes).c_str(), o.rows, o.cols, o.group_size, o.repeat);
  std::printf("%-18s %12s %10s %10s %8s\n", "what", "bytes", "time", "rate", "vs d2d");
  std::printf("%-18s %12s %10s %10s %8s\n", "", "MB", "ms", "GB/s", "%");
  nlohmann::json j = {{"backend", be.name()}, {"compute_dtype", quant::dtype_name(out_t)},
                      {"rows", o.rows}, {"cols", o.cols}, {"group_size", o.group_size}, {"repeat", o.repeat}};
  for (const Row& r : rows) {
    const bool dq = r.what.rfind("dequant", 0) == 0;
    std::printf("%-18s %12.1f %10.3f %10.2f %8s\n", r.what.c_str(), r.bytes / 1e6, r.seconds * 1e3, r.gbs(),
                dq && d2d > 0 ? std::to_string(static_cast<int>(100.0 * r.gbs() / d2d + 0.5)).c_str() : "");
    j["results"].push_back({{"what", r.what}, {"bytes", r.bytes}, {"seconds", r.seconds}, {"gbs", r.gbs()}});
  }
  std::printf("(rates count bytes read + written; dequantize: packed bytes read + %s written)\n", quant::dtype_name(out_t));
  if (be.name() != "cpu") {  // the CPU's GEMMs at these shapes would take minutes
    std::printf("%-36s %10s %10s\n%-36s %10s %10s\n", "linear (y = x w^T)", "time", "rate", "", "ms", "TFLOP/s");
    for (const GemmRow& g : time_gemms(be, s, o.repeat)) {
      std::printf("%-36s %10.3f %10.1f\n", g.what.c_str(), g.seconds * 1e3, g.flops / g.seconds / 1e12);
      j["gemm"].push_back({{"what", g.what}, {"flops", g.flops}, {"seconds", g.seconds}});
    }
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << j.dump(2) << "\n";
    ZINC_CHECK(f.good(), o.json << ": write failed");
  }
  return 0;
}

}  // namespace zinc::cli
