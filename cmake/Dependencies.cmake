# Every dependency is found here, once, through find_package (Debian 12 packages; the
# list and its pitfalls are in launch/setup.sh and docs/DESIGN.md).

set(MPI_CXX_SKIP_MPICXX ON)
find_package(MPI REQUIRED COMPONENTS C)
find_package(HDF5 REQUIRED COMPONENTS C)
set(Boost_USE_STATIC_LIBS ON)  # the GPU machines have no shared Boost.Program_options
find_package(Boost 1.71 REQUIRED COMPONENTS program_options)
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(ZINC_CBLAS_INCLUDE cblas.h PATHS /usr/include/x86_64-linux-gnu /usr/include/openblas
          /usr/include/x86_64-linux-gnu/openblas-pthread REQUIRED)
find_package(nlohmann_json 3.9 REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Threads REQUIRED)

# liburing ships no CMake config: link the static archive (absent on the GPU machines).
find_library(ZINC_LIBURING_A NAMES liburing.a REQUIRED)
find_path(ZINC_LIBURING_INCLUDE liburing.h REQUIRED)
add_library(zinc_liburing STATIC IMPORTED GLOBAL)
set_target_properties(zinc_liburing PROPERTIES IMPORTED_LOCATION ${ZINC_LIBURING_A}
                      INTERFACE_INCLUDE_DIRECTORIES ${ZINC_LIBURING_INCLUDE})

if(ZINC_BUILD_TESTS)
  find_package(Catch2 REQUIRED)  # 2.x on Debian 12, 3.x on Ubuntu 24.04: tests/catch.hpp shims both
endif()

if(ZINC_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)  # H200
  endif()
  if(NOT CMAKE_CUDA_COMPILER AND ZINC_NVCC)
    set(CMAKE_CUDA_COMPILER ${ZINC_NVCC})
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  # NCCL ships no CMake config: nccl.h / libnccl.so under the CUDA toolkit or /usr.
  find_path(ZINC_NCCL_INCLUDE nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include REQUIRED)
  find_library(ZINC_NCCL_LIB nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu REQUIRED)
  add_library(zinc_nccl SHARED IMPORTED GLOBAL)
  set_target_properties(zinc_nccl PROPERTIES IMPORTED_LOCATION ${ZINC_NCCL_LIB}
                        INTERFACE_INCLUDE_DIRECTORIES ${ZINC_NCCL_INCLUDE})
endif()
