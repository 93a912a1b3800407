// ZINC_NCCL_CHECK(call): throws zinc::Error with the call's text, NCCL's error string and
// its last error message (ncclGetLastError) when an NCCL call fails.
#pragma once

#include <nccl.h>

#include "runtime/common/error.hpp"

#define ZINC_NCCL_CHECK(call)                                                              \
  do {                                                                                     \
    const ncclResult_t zinc_nccl_rc_ = (call);                                             \
    if (zinc_nccl_rc_ != ncclSuccess)                                                      \
      ZINC_THROW("NCCL call failed: " #call ": " << ncclGetErrorString(zinc_nccl_rc_) << " (" \
                                                 << ncclGetLastError(nullptr) << ")");     \
  } while (0)
