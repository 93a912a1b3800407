#include "collectives/mpi_communicator.hpp"

#include <cstdlib>
#include <numeric>

#include "collectives/mpi_check.hpp"
#include "collectives/stall_watch.hpp"
#include "runtime/common/poll_wait.hpp"

namespace zinc::collectives {

// Gathers move whole pages: ZeRO shards are multiples of the 4 KiB page
// (partition::kPageBytes), so counts of pages stay below 2^31 for any shard.
constexpr int kMpiPageBytes = 4096;

namespace {

// Every collective is started nonblocking and waited for here: MPI_Wait (and the blocking
// collectives) spin a core for as long as a peer keeps them waiting; polling MPI_Test
// with pauses (common/poll_wait.hpp) does not, and each poll still drives the progress.
// The wait is the seq-th collective of `channel`, which the watchdog sees (stall_watch.hpp).
void wait_for(MPI_Request* request, const char* what, int channel, uint64_t seq) {
  const WaitScope scope(what, channel, seq);
  int done = 0;
  poll_until([&] {
    ZINC_MPI_CHECK(MPI_Test(request, &done, MPI_STATUS_IGNORE));
    return done != 0;
  });
}

}  // namespace

std::string mpi_error_string(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "error " + std::to_string(code);
  return std::string(buf, static_cast<size_t>(len));
}

MpiSession::MpiSession(int* argc, char*** argv) {
  // MULTIPLE: the weight pipeline gathers on its own thread (with its own communicator,
  // duplicate()) while the main thread runs the generation's collectives.
  ZINC_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided_));
  ZINC_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

int MpiSession::provided_ = MPI_THREAD_SINGLE;

int MpiSession::thread_level() {
  int level = provided_;
  if (active()) MPI_Query_thread(&level);
  return level;
}

MpiSession::~MpiSession() {
  if (active() && MPI_Finalize() != MPI_SUCCESS) log_error("MPI_Finalize failed");
}

bool MpiSession::active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

void MpiSession::abort(int code) {
  if (active()) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

MpiCommunicator::MpiCommunicator() : MpiCommunicator(MPI_COMM_WORLD, false, "MPI_COMM_WORLD") {}

MpiCommunicator::MpiCommunicator(MPI_Comm comm, bool owned, const std::string& name)
    : comm_(comm), owned_(owned), channel_(StallWatch::open_channel(name)) {
  ZINC_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  ZINC_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  MPI_Comm node = MPI_COMM_NULL;
  ZINC_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  ZINC_MPI_CHECK(MPI_Comm_size(node, &local_size_));
  ZINC_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  ZINC_MPI_CHECK(MPI_Comm_free(&node));
  ZINC_MPI_CHECK(MPI_Type_contiguous(kMpiPageBytes, MPI_BYTE, &page_type_));
  ZINC_MPI_CHECK(MPI_Type_commit(&page_type_));
}

MpiCommunicator::~MpiCommunicator() {
  StallWatch::close_channel(channel_);
  if (page_type_ != MPI_DATATYPE_NULL && MpiSession::active() && MPI_Type_free(&page_type_) != MPI_SUCCESS)
    log_error("MPI_Type_free failed");
  if (owned_ && MpiSession::active() && MPI_Comm_free(&comm_) != MPI_SUCCESS)
    log_error("MPI_Comm_free failed");
}

std::unique_ptr<MpiCommunicator> MpiCommunicator::duplicate_mpi() {
  const int level = MpiSession::thread_level();
  ZINC_CHECK(level == MPI_THREAD_MULTIPLE,
             "the MPI library gives thread level " << level << ", not MPI_THREAD_MULTIPLE ("
                 << MPI_THREAD_MULTIPLE << "): zinc's weight pipeline gathers on its own thread; "
                 "use an MPI built with thread support (Open MPI: --enable-mpi-thread-multiple)");
  MPI_Comm dup = MPI_COMM_NULL;
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Comm_idup(comm_, &dup, &request));
  wait_for(&request, "MPI_Comm_idup", channel_, StallWatch::enter(channel_));
  ZINC_MPI_CHECK(MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN));
  return std::unique_ptr<MpiCommunicator>(
      new MpiCommunicator(dup, true, "a duplicate of communicator " + std::to_string(channel_)));
}

std::unique_ptr<Communicator> MpiCommunicator::duplicate() { return duplicate_mpi(); }

void MpiCommunicator::all_gather_inplace(void* buf, size_t shard_bytes, const Stream& stream) {
  ZINC_CHECK(shard_bytes % kMpiPageBytes == 0, "all_gather_inplace: shard of " << shard_bytes
                                                   << " bytes is not a multiple of " << kMpiPageBytes);
  const size_t pages = shard_bytes / kMpiPageBytes;
  stream.synchronize();  // the shard's copy (queued on the stream) has landed
  ZINC_CHECK(pages <= static_cast<size_t>(INT32_MAX), "all_gather_inplace: shard too large");
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, static_cast<int>(pages),
                                page_type_, comm_, &request));
  wait_for(&request, "MPI all-gather", channel_, StallWatch::enter(channel_));
}

void MpiCommunicator::barrier() {
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Ibarrier(comm_, &request));
  wait_for(&request, "MPI barrier", channel_, StallWatch::enter(channel_));
}

void MpiCommunicator::broadcast_bytes(void* data, int bytes, int root) {
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Ibcast(data, bytes, MPI_BYTE, root, comm_, &request));
  wait_for(&request, "MPI broadcast", channel_, StallWatch::enter(channel_));
}

std::vector<std::vector<int32_t>> MpiCommunicator::gather_varlen(const std::vector<int32_t>& mine,
                                                                 int root) {
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(rank_ == root ? size_ : 0);
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Igather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm_, &request));
  wait_for(&request, "MPI gather of the counts", channel_, StallWatch::enter(channel_));
  std::vector<int> displs(counts.size(), 0);
  std::vector<int32_t> all;
  if (rank_ == root) {
    for (size_t r = 1; r < counts.size(); ++r) displs[r] = displs[r - 1] + counts[r - 1];
    all.resize(static_cast<size_t>(std::accumulate(counts.begin(), counts.end(), 0)));
  }
  ZINC_MPI_CHECK(MPI_Igatherv(mine.data(), count, MPI_INT32_T, all.data(), counts.data(),
                              displs.data(), MPI_INT32_T, root, comm_, &request));
  wait_for(&request, "MPI gather", channel_, StallWatch::enter(channel_));
  std::vector<std::vector<int32_t>> out;
  for (size_t r = 0; r < counts.size(); ++r)
    out.emplace_back(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
  return out;
}

std::vector<double> MpiCommunicator::allreduce(const std::vector<double>& v, MPI_Op op) {
  std::vector<double> out(v.size());
  MPI_Request request = MPI_REQUEST_NULL;
  ZINC_MPI_CHECK(MPI_Iallreduce(v.data(), out.data(), static_cast<int>(v.size()), MPI_DOUBLE, op,
                                comm_, &request));
  wait_for(&request, "MPI allreduce", channel_, StallWatch::enter(channel_));
  return out;
}

std::vector<double> MpiCommunicator::allreduce_sum(const std::vector<double>& v) {
  return allreduce(v, MPI_SUM);
}

std::vector<double> MpiCommunicator::allreduce_max(const std::vector<double>& v) {
  return allreduce(v, MPI_MAX);
}

}  // namespace zinc::collectives
