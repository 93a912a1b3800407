// The communicator for device buffers: NCCL over the MPI ranks when the build has CUDA
// (collectives/nccl_communicator.cpp), otherwise none (device_communicator_none.cpp; CMake
// picks the file). The host work (tokens, metrics, lockstep) stays on MPI.
#pragma once

#include <memory>

#include "collectives/communicator.hpp"
#include "collectives/mpi_communicator.hpp"

namespace zinc::collectives {

// NCCL over `mpi`'s ranks, on the CUDA device already selected on this thread: bootstrap
// over MPI (rank 0's unique id), in-place ncclAllGather on the caller's stream; host
// collectives are delegated to MPI. Collective. Throws when the build has no NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(MpiCommunicator& mpi);

}  // namespace zinc::collectives
