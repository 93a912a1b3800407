// UringFile: reads of one file with io_uring and O_DIRECT (no page cache, no copy through
// the kernel's buffers), as the NVMe tier needs: the rank's slice of each blob is read in
// place from the zinc store. Offsets, lengths and destinations are 4 KiB aligned.
//
// A read is split into blocks of `block_bytes` (smaller, down to 64 KiB, when the read is
// too short to fill the queue with them), with up to `queue_depth` in flight.
// Short reads continue where they stopped; -EINTR / -EAGAIN / -EIO are retried up to
// `max_retries` times per block; end of file before the requested range ends is an error
// ("the file is truncated", whether it was short before the read or shrank during it)
// unless the caller allows a short tail (allow_eof_after). Every failure
// names the file, the byte range and the errno text.
#pragma once

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace zinc::offload {

struct UringOptions {
  unsigned queue_depth = 16;
  size_t block_bytes = size_t(1) << 20;  // multiple of 4096
  int max_retries = 3;
};

struct UringStats {
  uint64_t bytes = 0;      // bytes delivered
  uint64_t requests = 0;   // reads submitted (retries and continuations included)
  uint64_t retries = 0;
  double seconds = 0;      // wall time inside read()
};

// Test hook: sees each completion (file offset of the request, its length, the result)
// and returns the result to use instead: how the tests inject short reads and EIO.
using CompletionHook = std::function<int(uint64_t offset, unsigned length, int result)>;

class UringFile {
 public:
  UringFile(const std::string& path, const UringOptions& opts);
  ~UringFile();
  UringFile(const UringFile&) = delete;
  UringFile& operator=(const UringFile&) = delete;

  // Reads [offset, offset + bytes) into dst. offset, bytes and dst must be 4 KiB aligned.
  // Bytes at or past `allow_eof_after` may lie beyond the end of the file: they are
  // zero-filled (an HDF5 file need not end on a page boundary). Returns bytes read.
  size_t read(uint64_t offset, size_t bytes, void* dst, uint64_t allow_eof_after = UINT64_MAX);

  const std::string& path() const { return path_; }
  uint64_t size() const;  // current file size (fstat)
  const UringStats& stats() const { return stats_; }
  void set_completion_hook(CompletionHook hook) { hook_ = std::move(hook); }

 private:
  std::string path_;
  UringOptions opts_;
  int fd_ = -1;
  io_uring ring_{};
  bool ring_ok_ = false;
  UringStats stats_;
  CompletionHook hook_;
};

class AlignedBuffer;

// One raw pass: f's bytes [0, min(bytes, size)) read in order in chunks of buf.size() (a
// multiple of 4096; the last chunk may end at end of file). Seconds on the host clock; the
// raw O_DIRECT rate `zinc iobench` and `zinc bench --offload nvme` hold the tier against.
double time_raw_read(UringFile& f, uint64_t bytes, const AlignedBuffer& buf);
// The chunk of a raw pass: queue depth x block, at least 64 MiB.
inline size_t raw_read_chunk(const UringOptions& o) {
  return o.block_bytes * o.queue_depth > (size_t(64) << 20) ? o.block_bytes * o.queue_depth : size_t(64) << 20;
}

// 4 KiB-aligned host memory for O_DIRECT destinations. Move-only.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& o) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace zinc::offload
