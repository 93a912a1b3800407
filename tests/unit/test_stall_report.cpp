// The watchdog's bookkeeping and verdict without MPI: StallWatch's scopes and channel
// counts (collectives/stall_watch.hpp), the state's wire form, and judge_stall
// (collectives/stall_report.hpp) on the situations a stalled job is found in: a stopped
// peer, a peer stuck elsewhere (behind on the communicator), a peer held up in an earlier
// collective of it, a step that does not finish, and no rank behind at all.
#include <string>
#include <thread>
#include <vector>

#include "collectives/stall_report.hpp"
#include "collectives/stall_watch.hpp"
#include "tests/catch.hpp"

using namespace zinc::collectives;

namespace {

RankState answered(int rank, std::vector<ChannelCount> channels, std::vector<WaitInfo> waits) {
  return RankState{rank, true, ProcessState{std::move(channels), std::move(waits)}};
}

RankState silent(int rank) { return RankState{rank, false, {}}; }

const WaitInfo kGather{"weight loader: the all-gather of layer.0003", 9.0, 1, 57};

}  // namespace

TEST_CASE("StallWatch records scopes only while a watchdog runs, nested ones as one wait", "[stall]") {
  const int ch = StallWatch::open_channel("test channel");
  CHECK(StallWatch::enter(ch) == 1);
  CHECK(StallWatch::enter(ch) == 2);
  {
    const WaitScope ignored("nobody watches this");
    CHECK(StallWatch::snapshot().waits.empty());
  }
  StallWatch::set_enabled(true);
  {
    const WaitScope outer("the all-gather of layer.0001");
    const WaitScope inner("MPI all-gather", ch, 3);
    std::thread other([] {
      const WaitScope elsewhere("the weights of embed");
      const ProcessState s = StallWatch::snapshot();
      REQUIRE(s.waits.size() == 2);
    });
    other.join();
    const ProcessState s = StallWatch::snapshot();
    REQUIRE(s.waits.size() == 1);
    CHECK(s.waits[0].what == "the all-gather of layer.0001: MPI all-gather (collective 3 of communicator " +
                                 std::to_string(ch) + ", test channel)");
    CHECK(s.waits[0].channel == ch);
    CHECK(s.waits[0].seq == 3);
    bool listed = false;
    for (const ChannelCount& c : s.channels) listed = listed || (c.id == ch && c.entered == 2);
    CHECK(listed);
  }
  CHECK(StallWatch::snapshot().waits.empty());
  StallWatch::set_enabled(false);
  StallWatch::close_channel(ch);
  StallWatch::note_step(0.25);
  StallWatch::note_step(0.125);
  CHECK(StallWatch::longest_step_s() >= 0.25);
}

TEST_CASE("a rank state survives its wire form", "[stall]") {
  const ProcessState s{{{0, 131, "MPI_COMM_WORLD"}, {1, 305, "a duplicate\tof 0"}},
                       {{"the weights of layer.0003\n(position 304)", 8.25, -1, 0}, {"MPI allreduce", 5.5, 0, 131}}};
  const ProcessState d = decode_state(encode_state(s));
  REQUIRE(d.channels.size() == 2);
  CHECK(d.channels[1].id == 1);
  CHECK(d.channels[1].entered == 305);
  CHECK(d.channels[1].name == "a duplicate of 0");
  REQUIRE(d.waits.size() == 2);
  CHECK(d.waits[0].what == "the weights of layer.0003 (position 304)");
  CHECK(d.waits[0].waited_s == 8.25);
  CHECK(d.waits[1].channel == 0);
  CHECK(d.waits[1].seq == 131);
  // A text cut anywhere gives what it holds, never an error.
  const std::string text = encode_state(s);
  for (size_t n = 0; n <= text.size(); ++n) CHECK(decode_state(text.substr(0, n)).channels.size() <= 2);
}

TEST_CASE("judge_stall: a peer that does not answer did not arrive", "[stall]") {
  const StallVerdict v = judge_stall(0, kGather, 5, {answered(0, {{1, 57, "loader"}}, {kGather}), silent(1)}, 3);
  CHECK(v.missing == std::vector<int>{1});
  CHECK(v.message.find("rank 1 did not arrive") != std::string::npos);
  CHECK(v.message.find("no answer within 3.0 s") != std::string::npos);
  CHECK(v.message.find("waited 9.0 s (limit 5.0 s) for weight loader: the all-gather of layer.0003") !=
        std::string::npos);
}

TEST_CASE("judge_stall: a peer behind on the communicator and elsewhere did not arrive", "[stall]") {
  const WaitInfo reading{"weight loader: the NVMe read of layer.0003's shard", 9.0, -1, 0};
  const StallVerdict v =
      judge_stall(0, kGather, 5,
                  {answered(0, {{0, 10, "world"}, {1, 57, "loader"}}, {kGather}),
                   answered(1, {{0, 10, "world"}, {1, 56, "loader"}}, {reading}),
                   answered(2, {{0, 10, "world"}, {1, 57, "loader"}}, {kGather})},
                  3);
  CHECK(v.missing == std::vector<int>{1});
  CHECK(v.message.find("rank 1: did not arrive: it has entered 56 collectives of communicator 1 (loader), not yet "
                       "number 57; waiting for weight loader: the NVMe read") != std::string::npos);
  CHECK(v.message.find("rank 2: arrived") != std::string::npos);
}

TEST_CASE("judge_stall: a peer held up in an earlier collective is not the one missing", "[stall]") {
  const WaitInfo earlier{"weight loader: the all-gather of layer.0002", 5.0, 1, 56};
  const StallVerdict v = judge_stall(0, kGather, 5,
                                     {answered(0, {{1, 57, "loader"}}, {kGather}),
                                      answered(1, {{1, 56, "loader"}}, {earlier}), silent(2)},
                                     3);
  CHECK(v.missing == std::vector<int>{2});
  CHECK(v.message.find("rank 1: held up in collective 56 of communicator 1 (loader)") != std::string::npos);
}

TEST_CASE("judge_stall: a step that does not finish names the ranks behind", "[stall]") {
  const WaitInfo step{"step 12: the device's token ids", 9.0, -1, 0};
  const StallVerdict v = judge_stall(1, step, 5,
                                     {answered(0, {{0, 20, "world"}, {1, 70, "loader"}}, {}),
                                      answered(1, {{0, 20, "world"}, {1, 71, "loader"}}, {step})},
                                     3);
  CHECK(v.missing == std::vector<int>{0});
  CHECK(v.message.find("rank 0: did not arrive: it has entered 70 collectives of communicator 1") !=
        std::string::npos);
  CHECK(v.message.find("waiting for nothing zinc watches") != std::string::npos);
}

TEST_CASE("judge_stall: nobody missing says where the fault is", "[stall]") {
  const StallVerdict entered =
      judge_stall(0, kGather, 5, {answered(0, {{1, 57, ""}}, {kGather}), answered(1, {{1, 57, ""}}, {kGather})}, 3);
  CHECK(entered.missing.empty());
  CHECK(entered.message.find("every rank has entered this collective") != std::string::npos);
  const WaitInfo step{"step 3: the device's token ids", 9.0, -1, 0};
  const StallVerdict local =
      judge_stall(0, step, 5, {answered(0, {{0, 4, ""}}, {step}), answered(1, {{0, 4, ""}}, {})}, 3);
  CHECK(local.missing.empty());
  CHECK(local.message.find("no rank is behind") != std::string::npos);
}
