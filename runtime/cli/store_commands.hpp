// `zinc convert` (HF directory -> zinc store) and `zinc info` (describe a store).
#pragma once

#include "collectives/communicator.hpp"
#include "runtime/cli/options.hpp"

namespace zinc::cli {

// Rank 0 converts (HDF5 here is serial); other ranks wait at a barrier.
int run_convert(const ConvertOptions& opts, collectives::Communicator& comm);
int run_info(const InfoOptions& opts, collectives::Communicator& comm);

}  // namespace zinc::cli
