#include "collectives/device_communicator.hpp"

#include "runtime/common/error.hpp"

namespace zinc::collectives {

std::unique_ptr<Communicator> make_nccl_communicator(MpiCommunicator&) {
  ZINC_THROW("this build has no NCCL communicator (configure with -DZINC_CUDA=ON)");
}

}  // namespace zinc::collectives
