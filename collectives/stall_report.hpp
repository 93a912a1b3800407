// The watchdog's verdict on a stall: from the wait that passed its limit and what every
// rank answered (its StallWatch state) or did not, which ranks did not arrive and the
// message that says so. A pure function, so it is unit-tested without MPI; the wire
// form of a state (a few text lines) is here too.
#pragma once

#include <string>
#include <vector>

#include "collectives/stall_watch.hpp"

namespace zinc::collectives {

struct RankState {
  int rank = 0;
  bool answered = false;  // false: its watchdog did not answer in time
  ProcessState state;
};

std::string encode_state(const ProcessState& state);
ProcessState decode_state(const std::string& text);  // tolerates a truncated text

struct StallVerdict {
  std::vector<int> missing;  // the ranks that did not arrive, ascending
  std::string message;       // first line: what stalled and who; then one line per rank
};

// `me`: this rank; `stalled`: its wait that passed `limit_s`; `ranks`: every rank's state in
// rank order, this one's included; `answer_s`: how long the peers were given to answer.
StallVerdict judge_stall(int me, const WaitInfo& stalled, double limit_s, const std::vector<RankState>& ranks,
                         double answer_s);

}  // namespace zinc::collectives
