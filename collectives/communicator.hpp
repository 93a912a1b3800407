// Communicator: the collectives zinc needs, behind one interface so that the MPI
// implementation (host buffers, here) and the NCCL one (device buffers, with the CUDA
// backend) are interchangeable. Every rank must make the same sequence of calls.
#pragma once

#include <cstdint>
#include <vector>

namespace zinc::collectives {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // Gathers each rank's int32 vector to `root`, in rank order (other ranks get {}).
  virtual std::vector<std::vector<int32_t>> gather_varlen(const std::vector<int32_t>& mine,
                                                          int root) = 0;
  // Element-wise reductions of small metric vectors, result on every rank.
  virtual std::vector<double> allreduce_sum(const std::vector<double>& v) = 0;
  virtual std::vector<double> allreduce_max(const std::vector<double>& v) = 0;
};

}  // namespace zinc::collectives
