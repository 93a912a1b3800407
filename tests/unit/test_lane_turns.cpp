// LaneTurns (runtime/common/lane_turns.hpp): real threads taking turns round robin, and
// abort() ending every wait.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/common/lane_turns.hpp"
#include "tests/catch.hpp"

namespace {

// Each of `lanes` threads takes `turns` turns, noting its index in each: the notes must
// be 0, 1, .., lanes-1, 0, 1, .. however the threads are scheduled.
std::vector<int> turn_order(int lanes, int turns) {
  zinc::LaneTurns t(lanes);
  std::vector<int> order;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int j = lanes - 1; j >= 0; --j)  // started last-first: the order comes from the turns
    threads.emplace_back([&, j] {
      for (int k = 0; k < turns; ++k) {
        t.take(j);
        {
          std::lock_guard<std::mutex> lock(mu);
          order.push_back(j);
        }
        std::this_thread::yield();
        t.pass(j);
      }
    });
  for (std::thread& th : threads) th.join();
  return order;
}

}  // namespace

TEST_CASE("lanes take turns round robin", "[lanes]") {
  for (int lanes : {1, 2, 3, 5}) {
    const std::vector<int> order = turn_order(lanes, 20);
    REQUIRE(order.size() == static_cast<size_t>(lanes) * 20);
    for (size_t i = 0; i < order.size(); ++i) {
      INFO("lanes " << lanes << ", turn " << i);
      CHECK(order[i] == static_cast<int>(i % static_cast<size_t>(lanes)));
    }
  }
}

TEST_CASE("a lane that passes a turn it does not hold changes nothing", "[lanes]") {
  zinc::LaneTurns t(2);
  t.pass(1);  // lane 0's turn: ignored
  std::atomic<bool> lane1_ran{false};
  std::thread other([&] {
    t.take(1);
    lane1_ran = true;
    t.pass(1);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(lane1_ran.load());  // still lane 0's turn
  t.take(0);
  t.pass(0);
  other.join();
  CHECK(lane1_ran.load());
}

TEST_CASE("abort ends every wait with LanesAborted", "[lanes]") {
  zinc::LaneTurns t(3);
  std::atomic<int> aborted{0};
  std::vector<std::thread> waiters;
  for (int j : {1, 2})
    waiters.emplace_back([&, j] {
      try {
        t.take(j);
      } catch (const zinc::LanesAborted&) {
        ++aborted;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  t.abort();
  for (std::thread& w : waiters) w.join();
  CHECK(aborted.load() == 2);
  CHECK_THROWS_AS(t.take(0), zinc::LanesAborted);  // even the lane whose turn it is
  // The handle without turns does nothing.
  const zinc::LaneTurn none;
  CHECK_FALSE(none.active());
  none.pause();
  none.resume();
}
