// MPI: the process-wide MPI session (RAII: MPI_Init_thread in the constructor,
// MPI_Finalize in the destructor) and the Communicator over MPI_COMM_WORLD.
// One rank works with no launcher at all (Open MPI's singleton init), so `zinc generate`
// runs the same with and without mpirun.
#pragma once

#include <mpi.h>

#include <string>

#include "collectives/communicator.hpp"

namespace zinc::collectives {

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  // Ends every rank of the job with `code`: used after an error so no rank hangs.
  [[noreturn]] static void abort(int code);
  static bool active();  // initialized and not finalized
  static int thread_level();  // what MPI_Init_thread provided (MPI_THREAD_*)

 private:
  static int provided_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator();  // MPI_COMM_WORLD, errors returned (not fatal) so they can be reported
  ~MpiCommunicator() override;
  // MPI_Comm_dup (collective); needs MPI_THREAD_MULTIPLE, since it is used on another thread.
  std::unique_ptr<Communicator> duplicate() override;
  std::unique_ptr<MpiCommunicator> duplicate_mpi();  // the same, typed
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const { return local_size_; }  // ranks on this node (thread defaults)
  int local_rank() const { return local_rank_; }  // this rank's index on its node (its GPU)
  // Its collectives' channel in StallWatch (the same id on every rank; NCCL counts its
  // gathers there too).
  int channel() const { return channel_; }
  // Broadcasts `bytes` bytes at `data` from `root` (the NCCL bootstrap's unique id).
  void broadcast_bytes(void* data, int bytes, int root);
  void barrier() override;
  void all_gather_inplace(void* buf, size_t shard_bytes, const Stream& stream) override;
  std::vector<std::vector<int32_t>> gather_varlen(const std::vector<int32_t>& mine,
                                                  int root) override;
  std::vector<double> allreduce_sum(const std::vector<double>& v) override;
  std::vector<double> allreduce_max(const std::vector<double>& v) override;

 private:
  MpiCommunicator(MPI_Comm comm, bool owned, const std::string& name);
  std::vector<double> allreduce(const std::vector<double>& v, MPI_Op op);
  MPI_Comm comm_ = MPI_COMM_WORLD;
  bool owned_ = false;  // a duplicate: freed with this object
  int channel_ = -1;
  int rank_ = 0;
  int size_ = 1;
  int local_size_ = 1;
  int local_rank_ = 0;
  MPI_Datatype page_type_ = MPI_DATATYPE_NULL;  // 4096 contiguous bytes: counts stay < 2^31
};

}  // namespace zinc::collectives
