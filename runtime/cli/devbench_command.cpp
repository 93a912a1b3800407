#include "runtime/cli/devbench_command.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "offload/memory_arena.hpp"
#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/cuda_factory.hpp"
#include "runtime/backend/cuda_probe.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/common/hash.hpp"
#include "runtime/common/output_file.hpp"
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
    // Random values, not zeros: tensor cores draw less power on zeros and can clock higher,
    // and a model's weights are not zeros. Uniform in [-1, 1), in the compute dtype.
    HostBuffer data = be.alloc_host(std::max(x.bytes(), w.bytes()), "devbench gemm data (host)");
    std::vector<float> f(data.bytes() / e);
    for (size_t i = 0; i < f.size(); ++i)
      f[i] = static_cast<float>(splitmix64_at(11, i) >> 40) / static_cast<float>(1 << 23) - 1.0f;
    quant::convert(quant::DType::F32, f.data(), t, data.data(), f.size());
    be.copy_to_device(x.data(), data.data(), x.bytes(), s);
    be.copy_to_device(w.data(), data.data(), w.bytes(), s);
    const runtime::Tensor tx(x.data(), t, {sh.n, sh.in}), tw(w.data(), t, {sh.out, sh.in}), ty(y.data(), t, {sh.n, sh.out});
    const double sec = time_op(be, s, repeat, [&] { be.linear(tx, tw, runtime::Tensor(), ty, s); });
    out.push_back({std::string(sh.what) + " " + std::to_string(sh.n) + "x" + std::to_string(sh.in) + "->" +
                       std::to_string(sh.out),
                   2.0 * sh.n * sh.in * sh.out, sec});
  }
  return out;
}

// One prefill attention shape on the CUDA backend: the kernel Backend::attention picks
// against the SIMT rows kernel (kernels.hpp's attention_prefill_reference), same inputs.
struct AttnRow {
  std::string what;
  quant::DType dtype = quant::DType::F16;
  runtime::AttentionShape sh;
  std::string kernel;        // what Backend::attention runs here ("mma" on the tensor cores)
  double flop = 0;           // causal: 4 B H T^2 hd / 2
  double seconds = 0;        // median, the picked kernel
  double rows_seconds = 0;   // median, the rows kernel
  double max_abs_diff = 0;   // between the two outputs
  double tflops(double sec) const { return sec > 0 ? flop / sec / 1e12 : 0.0; }
};

// Values in [-1, 1) from a counter (the same inputs for both kernels and every run).
float bench_value(uint64_t key, uint64_t i) {
  return static_cast<float>(splitmix64_at(key, i) >> 40) * (2.0f / 16777216.0f) - 1.0f;
}

AttnRow bench_prefill_attention(runtime::Backend& be, const Stream& s, int repeat, quant::DType t, int kv_heads) {
  AttnRow r;
  r.dtype = t;
  r.sh = runtime::AttentionShape{4, 512, 0, 512, 64, kv_heads, 128};  // B, tq, t0, t_max, H, KVH, hd
  const runtime::AttentionShape& sh = r.sh;
  r.what = std::string("attn ") + quant::dtype_name(t) + " KVH=" + std::to_string(kv_heads);
  r.flop = 4.0 * sh.batch * sh.heads * double(sh.tq) * sh.tq * sh.head_dim / 2;
  const size_t es = quant::dtype_size(t);
  const size_t q_n = size_t(sh.batch) * sh.tq * sh.heads * sh.head_dim;
  const size_t kv_n = size_t(sh.batch) * sh.t_max * sh.kv_heads * sh.head_dim;
  HostBuffer host = be.alloc_host(std::max(q_n, kv_n) * es, "devbench attention staging");
  DeviceBuffer q = be.alloc(q_n * es, "devbench attention q"), k = be.alloc(kv_n * es, "devbench key cache"),
               v = be.alloc(kv_n * es, "devbench value cache"), out = be.alloc(q_n * es, "devbench attention out"),
               out_rows = be.alloc(q_n * es, "devbench attention out (rows)"),
               mask = be.alloc(size_t(sh.batch) * sh.t_max, "devbench key mask");
  std::vector<float> f;
  auto upload = [&](const DeviceBuffer& dst, size_t n, uint64_t key) {
    f.resize(n);
    for (size_t i = 0; i < n; ++i) f[i] = bench_value(key, i);
    quant::convert(quant::DType::F32, f.data(), t, host.data(), n);
    be.copy_to_device(dst.data(), host.data(), n * es, s);
    s.synchronize();  // the staging buffer is reused
  };
  upload(q, q_n, 11);
  upload(k, kv_n, 12);
  upload(v, kv_n, 13);
  std::fill_n(host.as<uint8_t>(), mask.bytes(), uint8_t{1});  // every key real
  be.copy_to_device(mask.data(), host.data(), mask.bytes(), s);
  s.synchronize();
  const float scale = 1.0f / std::sqrt(float(sh.head_dim));
  auto run = [&](bool reference, const DeviceBuffer& o) {
    runtime::cuda_attention_kernel(reference, t, q.data(), k.data(), v.data(), mask.bytes_ptr(), nullptr, sh, scale,
                                   o.data(), s);
  };
  r.kernel = runtime::cuda_attention_kernel_name(t, sh, q.data(), k.data(), v.data(), out.data());
  // Several launches per timed run, so that the host's launch gaps are a small part of it.
  constexpr int kLaunches = 10;
  r.seconds = time_op(be, s, repeat, [&] {
    for (int i = 0; i < kLaunches; ++i) run(false, out);
  }) / kLaunches;
  r.rows_seconds = time_op(be, s, repeat, [&] {
    for (int i = 0; i < kLaunches; ++i) run(true, out_rows);
  }) / kLaunches;
  std::vector<float> a(q_n), b(q_n);
  for (auto [dev, dst] : {std::pair{&out, &a}, std::pair{&out_rows, &b}}) {
    be.copy_to_host(host.data(), dev->data(), q_n * es, s);
    s.synchronize();
    quant::convert(t, host.data(), quant::DType::F32, dst->data(), q_n);
  }
  for (size_t i = 0; i < q_n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) {  // NaN in either output: reported as inf
      r.max_abs_diff = INFINITY;
      break;
    }
    r.max_abs_diff = std::max(r.max_abs_diff, d);
  }
  return r;
}

}  // namespace

bool parse_devbench_options(int argc, char** argv, DevBenchOptions* o, std::string* help) {
  po::options_description desc(
      "zinc devbench: copy bandwidths, dequantize kernels and (CUDA) prefill attention of a backend, measured here\n"
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

  std::vector<AttnRow> attn;
  if (be.name() == "cuda")
    for (quant::DType t : {quant::DType::F16, quant::DType::BF16})
      for (int kv_heads : {8, 64}) attn.push_back(bench_prefill_attention(be, s, o.repeat, t, kv_heads));

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
  if (attn.empty()) {
    std::printf("(prefill attention: CUDA backend only)\n");
  } else {
    const runtime::AttentionShape& sh = attn.front().sh;
    std::printf("\nprefill attention, causal, B=%d H=%d hd=%d T=%d (t0=0), all keys real, no ALiBi; the kernel "
                "Backend::attention picks vs the rows kernel\n",
                sh.batch, sh.heads, sh.head_dim, sh.tq);
    std::printf("%-18s %7s %10s %10s %10s %10s %8s %10s\n", "what", "kernel", "time", "rate", "rows time",
                "rows rate", "speedup", "max|diff|");
    std::printf("%-18s %7s %10s %10s %10s %10s %8s %10s\n", "", "", "ms", "TFLOP/s", "ms", "TFLOP/s", "x", "");
    for (const AttnRow& r : attn) {
      std::printf("%-18s %7s %10.3f %10.2f %10.3f %10.2f %8.2f %10.3g\n", r.what.c_str(), r.kernel.c_str(),
                  r.seconds * 1e3, r.tflops(r.seconds), r.rows_seconds * 1e3, r.tflops(r.rows_seconds),
                  r.seconds > 0 ? r.rows_seconds / r.seconds : 0.0, r.max_abs_diff);
      j["attention"].push_back({{"what", r.what}, {"dtype", quant::dtype_name(r.dtype)}, {"batch", r.sh.batch},
                                {"heads", r.sh.heads}, {"kv_heads", r.sh.kv_heads}, {"head_dim", r.sh.head_dim},
                                {"tokens", r.sh.tq}, {"kernel", r.kernel}, {"flop", r.flop},
                                {"seconds", r.seconds}, {"tflops", r.tflops(r.seconds)},
                                {"rows_seconds", r.rows_seconds}, {"rows_tflops", r.tflops(r.rows_seconds)},
                                {"max_abs_diff", r.max_abs_diff}});
    }
    std::printf("(FLOP = 4 B H T^2 hd / 2: the causal half of QK^T and PV; max|diff| between the two outputs)\n");
  }
  if (!o.json.empty()) {
    write_output_file(o.json, j.dump(2) + "\n");
  }
  return 0;
}

}  // namespace zinc::cli
