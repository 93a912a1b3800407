// zinc: the command-line entry point. Starts MPI (works with and without mpirun),
// dispatches the subcommand, and is the only place that catches errors: it prints the
// message once and ends every rank (MPI_Abort when there are several) so none hangs.
//
// Exit codes: 0 ok, 1 runtime error (bad model files, budget, I/O), 2 usage error.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "collectives/mpi_communicator.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/cuda_probe.hpp"
#include "runtime/cli/attnbench_command.hpp"
#include "runtime/cli/bench_command.hpp"
#include "runtime/cli/bench_report.hpp"
#include "runtime/cli/generate_command.hpp"
#include "runtime/cli/devbench_command.hpp"
#include "runtime/cli/iobench_command.hpp"
#include "runtime/cli/options.hpp"
#include "runtime/cli/store_commands.hpp"

namespace {

const char* kUsage =
    "usage: zinc <command> [options]\n"
    "commands:\n"
    "  generate   batch text generation (text or token ids in, text or ids out) with metrics\n"
    "  bench      latency, throughput and roofline fraction per batch size (random prompts)\n"
    "  convert    write a Hugging Face model as a zinc store (quantized layer blobs, HDF5)\n"
    "  info       describe a zinc store\n"
    "  iobench    NVMe tier read bandwidth vs raw O_DIRECT reads of a store\n"
    "  devbench   a backend's copy bandwidths and dequantize kernels (GB/s vs its own copy)\n"
    "  attnbench  CPU attention over a host KV cache vs the host's read bandwidth\n"
    "options:\n"
    "  --help     this help; 'zinc generate --help' for the command's options\n"
    "  --version  version and build information\n";

// Parses a subcommand's options (argv[1] is its name) and runs it; --help prints the
// command's help on rank 0 and runs nothing.
template <class Options, class Parse, class Run>
int subcommand(int argc, char** argv, bool root, Parse parse, Run run) {
  Options opts;
  std::string help;
  if (!parse(argc - 1, argv + 1, &opts, &help)) {
    if (root) std::cout << help;
    return 0;
  }
  return run(opts);
}

int dispatch(int argc, char** argv, zinc::collectives::MpiCommunicator& comm) {
  const bool root = comm.rank() == 0;
  if (argc < 2) throw zinc::cli::UsageError(std::string("no command given\n") + kUsage);
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    if (root) std::cout << kUsage;
    return 0;
  }
  if (cmd == "--version") {
    if (root)
      std::cout << "zinc " << ZINC_VERSION << " (commit " << zinc::cli::git_commit() << ")\nbackends: " << zinc::runtime::available_backends() << "\ncuda: "
                << zinc::runtime::describe_cuda() << "\n";
    return 0;
  }
  namespace cli = zinc::cli;
  if (cmd == "generate")
    return subcommand<cli::GenerateOptions>(argc, argv, root, cli::parse_generate_options,
                                            [&](const auto& o) { return cli::run_generate(o, comm); });
  if (cmd == "bench")  // every rank runs the same generate calls; rank 0 reports
    return subcommand<cli::BenchOptions>(argc, argv, root, cli::parse_bench_options,
                                         [&](const auto& o) { return cli::run_bench(o, comm); });
  if (cmd == "iobench")  // single-process benchmarks: rank 0 runs them
    return subcommand<cli::IoBenchOptions>(argc, argv, root, cli::parse_iobench_options,
                                           [&](const auto& o) { return root ? cli::run_iobench(o) : 0; });
  if (cmd == "devbench")
    return subcommand<cli::DevBenchOptions>(argc, argv, root, cli::parse_devbench_options, [&](auto o) {
      o.local_rank = comm.local_rank();
      return root ? cli::run_devbench(o) : 0;
    });
  if (cmd == "attnbench")
    return subcommand<cli::AttnBenchOptions>(argc, argv, root, cli::parse_attnbench_options,
                                             [&](const auto& o) { return root ? cli::run_attnbench(o) : 0; });
  if (cmd == "convert")
    return subcommand<cli::ConvertOptions>(argc, argv, root, cli::parse_convert_options,
                                           [&](const auto& o) { return cli::run_convert(o, comm); });
  if (cmd == "info")
    return subcommand<cli::InfoOptions>(argc, argv, root, cli::parse_info_options,
                                        [&](const auto& o) { return cli::run_info(o, comm); });
  throw zinc::cli::UsageError("unknown command '" + cmd + "'\n" + kUsage);
}

// Prints the error once: rank 0 at once; another rank after a pause, so that when every
// rank fails the same way (bad input) only rank 0's message is seen before the abort.
[[noreturn]] void fail(int rank, int size, const std::string& msg, int code) {
  if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
  std::cerr << "zinc: error" << (size > 1 ? " (rank " + std::to_string(rank) + ")" : "") << ": "
            << msg << std::endl;
  if (size > 1) zinc::collectives::MpiSession::abort(code);
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  int rank = 0, size = 1;
  try {
    zinc::collectives::MpiSession mpi(&argc, &argv);
    zinc::collectives::MpiCommunicator comm;
    rank = comm.rank();
    size = comm.size();
    try {
      return dispatch(argc, argv, comm);
    } catch (const zinc::cli::UsageError& e) {
      fail(rank, size, e.what(), 2);
    } catch (const zinc::Error& e) {
      fail(rank, size, e.what(), 1);
    } catch (const std::exception& e) {
      fail(rank, size, std::string("internal error: ") + e.what(), 1);
    }
  } catch (const zinc::Error& e) {
    fail(rank, size, e.what(), 1);
  }
}
