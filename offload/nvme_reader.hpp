// The NVMe tier's SliceReader over a zinc store: io_uring O_DIRECT reads of the blob bytes
// in place (at each dataset's file offset in the HDF5 file), zero padding past the blob,
// and the store's page CRCs checked on every read. One reader owns one io_uring file, so
// each reader thread of the read-ahead (offload/shard_read_ahead.hpp) makes its own.
#pragma once

#include <memory>

#include "offload/slice_reader.hpp"
#include "offload/uring_file.hpp"
#include "partition/store.hpp"

namespace zinc::offload {

// `dst` buffers given to the reader must be 4 KiB aligned. *file_out (optional) gets the
// file, for its stats.
SliceReader nvme_slice_reader(std::shared_ptr<const partition::StoreReader> store, const UringOptions& opts,
                              std::shared_ptr<UringFile>* file_out);

}  // namespace zinc::offload
