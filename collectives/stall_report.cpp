#include "collectives/stall_report.hpp"

#include <algorithm>
#include <iomanip>
#include <map>
#include <sstream>

namespace zinc::collectives {
namespace {

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

std::string seconds(double s) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(1) << s << " s";
  return os.str();
}

std::string channel_name(int id, const std::string& name) {
  return "communicator " + std::to_string(id) + (name.empty() ? "" : " (" + name + ")");
}

const ChannelCount* find_channel(const ProcessState& s, int id) {
  for (const ChannelCount& c : s.channels)
    if (c.id == id) return &c;
  return nullptr;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

}  // namespace

std::string encode_state(const ProcessState& state) {
  std::ostringstream os;
  os << std::setprecision(6);
  for (const ChannelCount& c : state.channels) os << "C\t" << c.id << '\t' << c.entered << '\t' << one_line(c.name) << '\n';
  for (const WaitInfo& w : state.waits)
    os << "W\t" << w.waited_s << '\t' << w.channel << '\t' << w.seq << '\t' << one_line(w.what) << '\n';
  return os.str();
}

ProcessState decode_state(const std::string& text) {
  ProcessState out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string kind;
    if (!std::getline(f, kind, '\t')) continue;
    if (kind == "C") {
      ChannelCount c;
      char tab = 0;
      if (!(f >> c.id >> c.entered) || !f.get(tab)) continue;
      std::getline(f, c.name);
      out.channels.push_back(c);
    } else if (kind == "W") {
      WaitInfo w;
      char tab = 0;
      if (!(f >> w.waited_s >> w.channel >> w.seq) || !f.get(tab)) continue;
      std::getline(f, w.what);
      out.waits.push_back(w);
    }
  }
  return out;
}

StallVerdict judge_stall(int me, const WaitInfo& stalled, double limit_s, const std::vector<RankState>& ranks,
                         double answer_s) {
  // The furthest any rank that answered has got on each communicator.
  std::map<int, uint64_t> furthest;
  for (const RankState& r : ranks)
    if (r.answered)
      for (const ChannelCount& c : r.state.channels) furthest[c.id] = std::max(furthest[c.id], c.entered);
  StallVerdict v;
  std::vector<std::string> lines;
  bool all_answered = true;
  for (const RankState& r : ranks) {
    std::string line = "  rank " + std::to_string(r.rank) + (r.rank == me ? " (this rank)" : "") + ": ";
    if (!r.answered) {
      all_answered = false;
      v.missing.push_back(r.rank);
      lines.push_back(line + "did not arrive: no answer within " + seconds(answer_s) +
                      " (the process is stopped, e.g. by SIGSTOP, or hung where its watchdog cannot run)");
      continue;
    }
    // Behind on a communicator: it has entered fewer of its collectives than wanted. A rank
    // behind that is itself waiting in an earlier collective of that communicator is held
    // up (its collective waits for someone too: MPI does not complete a collective on every
    // rank at once); one that is elsewhere did not arrive.
    const ChannelCount* behind = nullptr;
    uint64_t wanted = 0;
    if (stalled.channel >= 0) {
      behind = find_channel(r.state, stalled.channel);
      wanted = stalled.seq;
      if (behind && behind->entered >= wanted) behind = nullptr;
    } else {
      for (const ChannelCount& c : r.state.channels)
        if (c.entered < furthest[c.id]) {
          behind = &c;
          wanted = furthest[c.id];
          break;
        }
    }
    bool held_up = false;
    if (behind)
      for (const WaitInfo& w : r.state.waits) held_up = held_up || w.channel == behind->id;
    std::string why;  // non-empty: this rank did not arrive
    if (stalled.channel >= 0 && !find_channel(r.state, stalled.channel))
      why = "it has no communicator " + std::to_string(stalled.channel) + " open";
    else if (behind && !held_up)
      why = "it has entered " + std::to_string(behind->entered) + " collectives of " +
            channel_name(behind->id, behind->name) + ", not yet number " + std::to_string(wanted);
    if (!why.empty()) v.missing.push_back(r.rank);
    if (!why.empty())
      line += "did not arrive: " + why;
    else if (held_up)
      line += "held up in collective " + std::to_string(behind->entered) + " of " +
              channel_name(behind->id, behind->name) + ", which waits for a rank too";
    else
      line += "arrived";
    if (r.state.waits.empty()) {
      line += "; it is waiting for nothing zinc watches (computing, or blocked elsewhere)";
    } else {
      line += "; waiting for ";
      for (size_t i = 0; i < r.state.waits.size(); ++i)
        line += (i ? "; and for " : "") + r.state.waits[i].what + " (" + seconds(r.state.waits[i].waited_s) + ")";
    }
    lines.push_back(line);
  }
  std::string head = "stalled: waited " + seconds(stalled.waited_s) + " (limit " + seconds(limit_s) + ") for " +
                     stalled.what + ": ";
  if (!v.missing.empty())
    head += rank_list(v.missing) + " did not arrive";
  else if (all_answered && stalled.channel >= 0)
    head += "every rank has entered this collective, which does not complete (an MPI or network fault)";
  else
    head += "no rank is behind: the wait itself does not finish on this rank (a device or I/O hang)";
  v.message = head;
  for (const std::string& l : lines) v.message += "\n" + l;
  return v;
}

}  // namespace zinc::collectives
