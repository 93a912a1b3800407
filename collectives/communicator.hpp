// Communicator: the collectives zinc needs, behind one interface so that the MPI
// implementation (host buffers, here) and the NCCL one (device buffers, with the CUDA
// backend) are interchangeable. Every rank must make the same sequence of calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/common/stream.hpp"

namespace zinc::collectives {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() = 0;
  // In-place all-gather of equal shards: on entry rank r's shard is at
  // buf[r*shard_bytes, (r+1)*shard_bytes); on return every rank holds all size()*shard_bytes.
  // shard_bytes must be a multiple of 4096 (the ZeRO shard alignment). The gather is
  // ordered on `stream` (the pipeline's comm stream): NCCL enqueues it there; the MPI
  // implementation (host-visible buffers) first waits on the host for the work queued on
  // the stream so far, then gathers synchronously.
  virtual void all_gather_inplace(void* buf, size_t shard_bytes, const Stream& stream) = 0;
  // Gathers each rank's int32 vector to `root`, in rank order (other ranks get {}).
  virtual std::vector<std::vector<int32_t>> gather_varlen(const std::vector<int32_t>& mine,
                                                          int root) = 0;
  // Element-wise reductions of small metric vectors, result on every rank.
  virtual std::vector<double> allreduce_sum(const std::vector<double>& v) = 0;
  virtual std::vector<double> allreduce_max(const std::vector<double>& v) = 0;
  // A communicator over the same ranks for use on another thread (collective: every rank
  // calls it at the same point). Calls on the two may then run concurrently; each keeps
  // its own order.
  virtual std::unique_ptr<Communicator> duplicate() = 0;
};

// A world of one process, no MPI needed (library use and unit tests).
class SelfCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  void all_gather_inplace(void*, size_t, const Stream&) override {}
  std::vector<std::vector<int32_t>> gather_varlen(const std::vector<int32_t>& mine, int) override {
    return {mine};
  }
  std::vector<double> allreduce_sum(const std::vector<double>& v) override { return v; }
  std::vector<double> allreduce_max(const std::vector<double>& v) override { return v; }
  std::unique_ptr<Communicator> duplicate() override { return std::make_unique<SelfCommunicator>(); }
};

}  // namespace zinc::collectives
