// NcclCommunicator: ZeRO-3 all-gathers of device buffers over NCCL; everything else over
// the MPI communicator it was bootstrapped from (the contract is in
// device_communicator.hpp). Torn down (ncclCommDestroy, or ncclCommAbort after a failed
// call, so that no peer is left waiting) before MPI_Finalize: its owner goes first. While
// it lives, the watchdog may abort it from its own thread (an abort hook: a gather that a
// stalled peer never joins spins on the GPU until ncclCommAbort), and its gathers are
// counted on its MPI communicator's channel, so a rank that enqueued fewer is named.
#include <cuda_runtime.h>

#include "collectives/device_communicator.hpp"
#include "collectives/nccl_check.hpp"
#include "collectives/stall_watch.hpp"

namespace zinc::collectives {
namespace {

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<MpiCommunicator> owned, MpiCommunicator* mpi)
      : owned_(std::move(owned)), mpi_(owned_ ? owned_.get() : mpi) {
    ncclUniqueId id{};
    if (mpi_->rank() == 0) ZINC_NCCL_CHECK(ncclGetUniqueId(&id));
    mpi_->broadcast_bytes(&id, static_cast<int>(sizeof id), 0);
    {
      const WaitScope scope("NCCL setup (ncclCommInitRank over " + std::to_string(mpi_->size()) + " ranks)");
      ZINC_NCCL_CHECK(ncclCommInitRank(&comm_, mpi_->size(), id, mpi_->rank()));
    }
    abort_hook_ = StallWatch::add_abort_hook([this] {
      const ncclResult_t rc = ncclCommAbort(comm_);
      if (rc != ncclSuccess) log_error(std::string("watchdog: ncclCommAbort: ") + ncclGetErrorString(rc));
    });
  }
  ~NcclCommunicator() override {
    StallWatch::remove_abort_hook(abort_hook_);  // waits while the watchdog is aborting it
    const ncclResult_t rc = healthy_ ? ncclCommDestroy(comm_) : ncclCommAbort(comm_);
    if (rc != ncclSuccess) log_error(std::string("NCCL teardown: ") + ncclGetErrorString(rc));
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  void barrier() override { mpi_->barrier(); }

  void all_gather_inplace(void* buf, size_t shard_bytes, const Stream& stream) override {
    ZINC_CHECK(shard_bytes % 4096 == 0, "all_gather_inplace: shard of " << shard_bytes
                                                                         << " bytes is not a multiple of 4096");
    if (shard_bytes == 0) return;
    auto* base = static_cast<uint8_t*>(buf);
    StallWatch::enter(mpi_->channel());  // enqueued, not waited for: the step's host wait is watched
    guard([&] {
      ZINC_NCCL_CHECK(ncclAllGather(base + static_cast<size_t>(rank()) * shard_bytes, base, shard_bytes, ncclUint8,
                                    comm_, static_cast<cudaStream_t>(stream.native())));
    });
  }
  std::vector<std::vector<int32_t>> gather_varlen(const std::vector<int32_t>& mine, int root) override {
    return mpi_->gather_varlen(mine, root);
  }
  std::vector<double> allreduce_sum(const std::vector<double>& v) override { return mpi_->allreduce_sum(v); }
  std::vector<double> allreduce_max(const std::vector<double>& v) override { return mpi_->allreduce_max(v); }
  // A second NCCL communicator over a duplicated MPI communicator (collective), for the
  // weight stream's loader thread.
  std::unique_ptr<Communicator> duplicate() override {
    return std::make_unique<NcclCommunicator>(mpi_->duplicate_mpi(), nullptr);
  }

 private:
  template <typename F>
  void guard(F&& f) {
    try {
      f();
    } catch (...) {
      healthy_ = false;  // abort rather than destroy: a peer may be stuck in this collective
      throw;
    }
  }
  std::unique_ptr<MpiCommunicator> owned_;
  MpiCommunicator* mpi_;
  ncclComm_t comm_ = nullptr;
  bool healthy_ = true;
  int abort_hook_ = -1;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MpiCommunicator& mpi) {
  return std::make_unique<NcclCommunicator>(nullptr, &mpi);
}

}  // namespace zinc::collectives
