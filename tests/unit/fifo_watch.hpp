// A FIFO for the tests of "what is not a regular file is refused before it is opened".
// open(2) for reading blocks on a FIFO until a writer comes, so code that opens one would
// hang the test: a thread watches, and whenever a reader holds the FIFO open it opens the
// write end and closes it at once (the reader then reads end-of-file and goes on), and
// opened() says that it happened.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace zinc::test {

class FifoWatch {
 public:
  explicit FifoWatch(std::string path) : path_(std::move(path)) {
    if (::mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed for " + path_);
    thread_ = std::thread([this] {
      while (!stop_) {
        // Succeeds only while a reader has the FIFO open (else ENXIO).
        const int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
          opened_ = true;
          ::close(fd);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  }
  ~FifoWatch() {
    stop_ = true;
    thread_.join();
  }
  FifoWatch(const FifoWatch&) = delete;
  FifoWatch& operator=(const FifoWatch&) = delete;

  const std::string& path() const { return path_; }
  // True if anything opened the FIFO for reading.
  bool opened() const { return opened_; }

 private:
  std::string path_;
  std::atomic<bool> stop_{false}, opened_{false};
  std::thread thread_;
};

}  // namespace zinc::test
