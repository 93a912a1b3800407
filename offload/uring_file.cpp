#include "offload/uring_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "partition/shard.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"

// ZINC_URING_CHECK(call, what): liburing returns -errno; throws naming the file.
#define ZINC_URING_CHECK(call, what)                                                   \
  do {                                                                                 \
    const int zinc_rc_ = (call);                                                       \
    if (zinc_rc_ < 0)                                                                  \
      ZINC_THROW(what << ": " #call " failed: " << std::strerror(-zinc_rc_));         \
  } while (0)

namespace zinc::offload {
namespace {

constexpr size_t kAlign = partition::kPageBytes;  // O_DIRECT: offsets, lengths, buffers

bool retryable(int err) { return err == -EINTR || err == -EAGAIN || err == -EIO; }

}  // namespace

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign));
  ZINC_CHECK(data_ != nullptr, "out of host memory allocating " << bytes << " aligned bytes");
}

AlignedBuffer::~AlignedBuffer() { std::free(data_); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& o) noexcept { *this = std::move(o); }

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

UringFile::UringFile(const std::string& path, const UringOptions& opts) : path_(path), opts_(opts) {
  ZINC_CHECK(opts.queue_depth >= 1 && opts.queue_depth <= 4096,
             "--nvme-queue-depth must be in [1, 4096], got " << opts.queue_depth);
  ZINC_CHECK(opts.block_bytes >= kAlign && opts.block_bytes % kAlign == 0 && opts.block_bytes <= (1u << 30),
             "--nvme-block-size must be a multiple of 4096 up to 1 GiB, got " << opts.block_bytes);
  fd_ = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  ZINC_CHECK(fd_ >= 0, path << ": cannot open for O_DIRECT reads: " << std::strerror(errno)
                            << (errno == EINVAL ? " (the file system does not support O_DIRECT)" : ""));
  const int rc = io_uring_queue_init(opts.queue_depth, &ring_, 0);
  if (rc < 0) {
    ::close(fd_);
    ZINC_THROW(path << ": io_uring_queue_init(" << opts.queue_depth << ") failed: "
                    << std::strerror(-rc) << " (is io_uring enabled in this kernel?)");
  }
  ring_ok_ = true;
}

UringFile::~UringFile() {
  if (ring_ok_) io_uring_queue_exit(&ring_);
  if (fd_ >= 0 && ::close(fd_) != 0) log_error(path_ + ": close failed");
}

uint64_t UringFile::size() const {
  struct stat st {};
  ZINC_CHECK(::fstat(fd_, &st) == 0, path_ << ": fstat failed: " << std::strerror(errno));
  return static_cast<uint64_t>(st.st_size);
}

size_t UringFile::read(uint64_t offset, size_t bytes, void* dst, uint64_t allow_eof_after) {
  const double t0 = now_s();
  ZINC_CHECK(offset % kAlign == 0 && bytes % kAlign == 0 &&
                 reinterpret_cast<uintptr_t>(dst) % kAlign == 0,
             path_ << ": O_DIRECT read of [" << offset << ", +" << bytes
                   << ") needs 4 KiB-aligned offset, length and buffer");
  auto* out = static_cast<uint8_t*>(dst);
  const uint64_t file_size = size();
  const uint64_t need = std::min<uint64_t>(allow_eof_after, offset + bytes);
  ZINC_CHECK(file_size >= need, path_ << ": the file ends at byte " << file_size << " but ["
                                      << offset << ", " << need
                                      << ") is needed: the file is truncated");
  // Read up to the end of the file; what lies past it is zero.
  const uint64_t end = std::min<uint64_t>(offset + bytes, file_size);
  const size_t span = end > offset ? static_cast<size_t>(end - offset) : 0;
  if (span < bytes) std::memset(out + span, 0, bytes - span);

  struct Block {
    uint64_t offset;  // file offset of the block
    size_t done;      // bytes delivered so far
    size_t length;    // bytes wanted (the last block may end at the end of the file)
    int retries;
  };
  // Blocks small enough that a read smaller than block_bytes * queue_depth still fills the
  // queue (a 4-rank shard of a layer is only a few blocks of 1 MiB), but >= 64 KiB.
  const size_t per_slot = (span / opts_.queue_depth + kAlign - 1) / kAlign * kAlign;
  const size_t block = std::min(opts_.block_bytes, std::max<size_t>(per_slot, 64 * 1024));
  std::vector<Block> blocks;
  for (size_t pos = 0; pos < span; pos += block)
    blocks.push_back({offset + pos, 0, std::min(block, span - pos), 0});

  std::string error;  // first failure; reported once nothing is in flight any more
  size_t next = 0, in_flight = 0, finished = 0;
  auto submit = [&](size_t i) {
    Block& b = blocks[i];
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    const uint64_t at = b.offset + b.done;
    // O_DIRECT lengths stay page multiples; the file's partial last page reads short.
    const size_t want = (b.length - b.done + kAlign - 1) / kAlign * kAlign;
    io_uring_prep_read(sqe, fd_, out + (at - offset), static_cast<unsigned>(want), at);
    io_uring_sqe_set_data64(sqe, i);
    ++in_flight;
    ++stats_.requests;
  };
  auto fail = [&](const std::string& msg) {
    if (error.empty()) error = msg;
  };
  while (finished < blocks.size() && (error.empty() || in_flight > 0)) {
    while (error.empty() && next < blocks.size() && in_flight < opts_.queue_depth) submit(next++);
    int rc = io_uring_submit(&ring_);
    if (rc < 0) {
      fail(std::string("io_uring_submit failed: ") + std::strerror(-rc));
      if (in_flight == 0) break;
    }
    io_uring_cqe* cqe = nullptr;
    do {
      rc = io_uring_wait_cqe(&ring_, &cqe);
    } while (rc == -EINTR);
    if (rc < 0) {  // the ring itself is broken: nothing more can be collected
      fail(std::string("io_uring_wait_cqe failed: ") + std::strerror(-rc));
      break;
    }
    const size_t i = static_cast<size_t>(io_uring_cqe_get_data64(cqe));
    int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    --in_flight;
    Block& b = blocks[i];
    const uint64_t at = b.offset + b.done;
    if (hook_) res = hook_(at, static_cast<unsigned>(b.length - b.done), res);
    if (!error.empty()) continue;  // draining
    if (res < 0) {
      if (retryable(res) && b.retries < opts_.max_retries) {
        ++b.retries;
        ++stats_.retries;
        submit(i);
      } else {
        fail("read of [" + std::to_string(at) + ", +" + std::to_string(b.length - b.done) +
             ") failed: " + std::strerror(-res) + (b.retries ? " (after retries)" : ""));
      }
      continue;
    }
    if (res == 0) {
      // The size checked above was larger: the file shrank while it was read. The same
      // words as that check, so a truncation reads alike whenever it happens.
      fail("the file ends at byte " + std::to_string(at) + " but [" + std::to_string(offset) + ", " +
           std::to_string(need) + ") is needed: the file is truncated (it shrank during the read)");
      continue;
    }
    b.done = std::min(b.length, b.done + static_cast<size_t>(res));
    stats_.bytes += static_cast<uint64_t>(res);
    if (b.done == b.length) {
      ++finished;
    } else {
      // A short read: go on from where it stopped; O_DIRECT needs an aligned start, so an
      // unaligned stop re-reads from the page it fell in.
      b.done = b.done / kAlign * kAlign;
      ++stats_.retries;
      submit(i);
    }
  }
  ZINC_CHECK(error.empty(), path_ << ": " << error);
  stats_.seconds += seconds_since(t0);
  return span;
}

double time_raw_read(UringFile& f, uint64_t bytes, const AlignedBuffer& buf) {
  const uint64_t end = std::min<uint64_t>(bytes, f.size());
  const double t0 = now_s();
  for (uint64_t pos = 0; pos < end; pos += buf.size()) f.read(pos, buf.size(), buf.data(), pos);
  return seconds_since(t0);
}

}  // namespace zinc::offload
