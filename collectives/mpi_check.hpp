// ZINC_MPI_CHECK(call): throws zinc::Error with the call's text, MPI's error string and
// file:line when an MPI call does not return MPI_SUCCESS. (Communicators use
// MPI_ERRORS_RETURN so errors reach this check instead of aborting inside MPI.)
#pragma once

#include <mpi.h>

#include "runtime/common/error.hpp"

namespace zinc::collectives {
std::string mpi_error_string(int code);
}

#define ZINC_MPI_CHECK(call)                                                          \
  do {                                                                                \
    const int zinc_mpi_rc_ = (call);                                                  \
    if (zinc_mpi_rc_ != MPI_SUCCESS)                                                  \
      ZINC_THROW("MPI call failed: " #call ": "                                       \
                 << ::zinc::collectives::mpi_error_string(zinc_mpi_rc_));             \
  } while (0)
