// `zinc generate`: data-parallel batch generation. The prompts are split across the MPI
// ranks in contiguous blocks (uneven splits fine); each rank loads the model on its
// backend and generates its block; rank 0 gathers the tokens in the original prompt
// order, prints them and the aggregate metrics table, and writes --metrics-json.
#pragma once

#include "collectives/mpi_communicator.hpp"
#include "runtime/cli/options.hpp"

namespace zinc::cli {

// `mpi`: the world; with --backend cuda the ZeRO gathers run on an NCCL communicator
// bootstrapped from it, on the GPU of this rank's node-local index.
int run_generate(const GenerateOptions& opts, collectives::MpiCommunicator& mpi);

}  // namespace zinc::cli
