// zinc_tokenizer_bench: single-thread encode throughput of runtime/tokenizer.
//
//   zinc_tokenizer_bench --corpus FILE [--min-mb 50] [--runs 5] [--json OUT]
//                        NAME=PATH [NAME=PATH ...]
//
// For each tokenizer (PATH as Tokenizer::load takes it) and the corpus (one text per line):
//   cold   one pass over the corpus right after loading (empty word cache), MB/s
//   encode passes over the corpus, repeated until >= --min-mb MB of text, timed --runs times
//          after one untimed warm-up run; the median run is reported
// MB/s = UTF-8 bytes of text encoded / wall seconds / 1e6 (cpu MB/s: / CPU seconds of the
// process instead, which other load on a shared machine does not inflate); tokens/s likewise
// with the ids produced (add_special_tokens = true, so BOS templates count).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/common/error.hpp"
#include "runtime/tokenizer/tokenizer.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  std::string name;
  size_t lines = 0, passes = 0;
  double text_mb = 0, tokens_m = 0, cold_mbps = 0, mbps = 0, cpu_mbps = 0, tokens_per_s = 0;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ZINC_CHECK(in, path << ": cannot open");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

struct Timing {
  double wall_s, cpu_s;
  size_t tokens;
  bool operator<(const Timing& o) const { return wall_s < o.wall_s; }
};

// Encodes every line `passes` times.
Timing run(const zinc::runtime::Tokenizer& tok, const std::vector<std::string>& lines,
           size_t passes) {
  size_t tokens = 0;
  const std::clock_t c0 = std::clock();
  const auto t0 = Clock::now();
  for (size_t p = 0; p < passes; ++p) {
    for (const std::string& line : lines) tokens += tok.encode(line).size();
  }
  return {std::chrono::duration<double>(Clock::now() - t0).count(),
          static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC, tokens};
}

int usage() {
  std::fprintf(stderr,
               "usage: zinc_tokenizer_bench --corpus FILE [--min-mb 50] [--runs 5] [--json OUT] "
               "NAME=PATH ...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path, json_path;
  double min_mb = 50;
  int runs = 5;
  std::vector<std::pair<std::string, std::string>> tokenizers;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--corpus" && i + 1 < argc) {
      corpus_path = argv[++i];
    } else if (a == "--min-mb" && i + 1 < argc) {
      min_mb = std::atof(argv[++i]);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a.find('=') != std::string::npos && a[0] != '-') {
      tokenizers.emplace_back(a.substr(0, a.find('=')), a.substr(a.find('=') + 1));
    } else {
      return usage();
    }
  }
  if (corpus_path.empty() || tokenizers.empty()) return usage();
  try {
    const std::vector<std::string> lines = read_lines(corpus_path);
    size_t corpus_bytes = 0;
    for (const std::string& l : lines) corpus_bytes += l.size();
    ZINC_CHECK(corpus_bytes > 0, corpus_path << ": empty corpus");
    const size_t passes = static_cast<size_t>(min_mb * 1e6 / static_cast<double>(corpus_bytes)) + 1;

    std::vector<Result> results;
    for (const auto& [name, path] : tokenizers) {
      Result r;
      r.name = name;
      r.lines = lines.size();
      r.passes = passes;
      auto tok = zinc::runtime::Tokenizer::load(path);
      r.cold_mbps = static_cast<double>(corpus_bytes) / run(*tok, lines, 1).wall_s / 1e6;
      run(*tok, lines, passes);  // warm-up
      std::vector<Timing> timed;
      for (int k = 0; k < runs; ++k) timed.push_back(run(*tok, lines, passes));
      std::sort(timed.begin(), timed.end());
      const Timing& median = timed[timed.size() / 2];
      r.text_mb = static_cast<double>(corpus_bytes * passes) / 1e6;
      r.tokens_m = static_cast<double>(median.tokens) / 1e6;
      r.mbps = r.text_mb / median.wall_s;
      r.cpu_mbps = r.text_mb / median.cpu_s;
      r.tokens_per_s = static_cast<double>(median.tokens) / median.wall_s;
      results.push_back(r);
    }

    std::printf("%-16s %7s %7s %8s %9s %9s %9s %9s %9s\n", "tokenizer", "lines", "passes", "text",
                "tokens", "cold", "encode", "encode", "tokens/s");
    std::printf("%-16s %7s %7s %8s %9s %9s %9s %9s %9s\n", "", "", "", "MB", "M", "MB/s", "MB/s",
                "cpu MB/s", "M/s");
    for (const Result& r : results) {
      std::printf("%-16s %7zu %7zu %8.2f %9.3f %9.2f %9.2f %9.2f %9.3f\n", r.name.c_str(), r.lines,
                  r.passes, r.text_mb, r.tokens_m, r.cold_mbps, r.mbps, r.cpu_mbps,
                  r.tokens_per_s / 1e6);
    }
    std::printf("(single thread; encode = median of %d timed runs after one warm-up run)\n", runs);
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      ZINC_CHECK(out, json_path << ": cannot write");
      out << "[";
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        out << (i ? ",\n " : "") << "{\"tokenizer\": \"" << r.name << "\", \"lines\": " << r.lines
            << ", \"passes\": " << r.passes << ", \"text_mb\": " << r.text_mb
            << ", \"tokens_m\": " << r.tokens_m << ", \"cold_mb_per_s\": " << r.cold_mbps
            << ", \"encode_mb_per_s\": " << r.mbps << ", \"encode_cpu_mb_per_s\": " << r.cpu_mbps
            << ", \"tokens_per_s\": " << r.tokens_per_s << "}";
      }
      out << "]\n";
    }
  } catch (const zinc::Error& e) {
    std::fprintf(stderr, "zinc_tokenizer_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
