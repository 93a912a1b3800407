// runtime/tokenizer against Hugging Face: every line of tests/fixtures/tokenizer/corpus.txt
// encoded to the ids `tokenizers` gives and decoded to the text transformers gives, for the
// trained byte-level and SentencePiece-style tokenizers, their variants and the real GPT-2
// vocabulary; plus cases.json (specials, add_special_tokens=false, texts with newlines, decodes
// of random ids). Fixtures: tests/reference/make_tokenizer_fixtures.py.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/tokenizer/tokenizer.hpp"
#include "unit/test_util.hpp"

using nlohmann::json;
using zinc::runtime::Tokenizer;

namespace {

const std::string kDir = std::string(ZINC_FIXTURES_DIR) + "/tokenizer";
const std::string kGpt2Dir = std::string(ZINC_SOURCE_DIR) + "/../shared/data/gpt2";

// The file's lines, split on '\n' only (texts may hold \v, \f, U+0085, U+2028).
std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line, '\n');) lines.push_back(line);
  return lines;
}

std::vector<int32_t> parse_ids(const std::string& line) {
  std::vector<int32_t> ids;
  std::istringstream s(line);
  for (int32_t id; s >> id;) ids.push_back(id);
  return ids;
}

// Printable form of a text: control characters and non-ASCII bytes escaped.
std::string escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    }
  }
  return out;
}

// "id:"token"" for ids[from, to).
std::string show(const Tokenizer& tok, const std::vector<int32_t>& ids, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < std::min(to, ids.size()); ++i) {
    out += " " + std::to_string(ids[i]) + ":\"" + escape(tok.id_to_token(ids[i])) + "\"";
  }
  return out.empty() ? " (none)" : out;
}

// Where two id lists first differ, with 4 tokens of context on each side.
std::string describe(const Tokenizer& tok, const std::string& what, const std::string& text,
                     const std::vector<int32_t>& want, const std::vector<int32_t>& got) {
  size_t k = 0;
  while (k < want.size() && k < got.size() && want[k] == got[k]) ++k;
  const size_t from = k < 4 ? 0 : k - 4;
  std::ostringstream s;
  s << what << ": \"" << escape(text) << "\"\n  first difference at token " << k << " of "
    << want.size() << " expected / " << got.size()
    << " got\n  expected:" << show(tok, want, from, k + 5)
    << "\n  got:     " << show(tok, got, from, k + 5);
  return s.str();
}

// Encodes and decodes every corpus line that NAME.ids.txt covers.
void check_corpus(const std::string& name, const std::string& tokenizer_path) {
  const auto tok = Tokenizer::load(tokenizer_path);
  const std::vector<std::string> corpus = read_lines(kDir + "/corpus.txt");
  const std::vector<std::string> ids = read_lines(kDir + "/" + name + ".ids.txt");
  const std::vector<std::string> decoded = read_lines(kDir + "/" + name + ".decoded.txt");
  REQUIRE(corpus.size() == 10000);
  REQUIRE(ids.size() <= corpus.size());
  REQUIRE(decoded.size() == ids.size());
  size_t bad_encode = 0, bad_decode = 0;
  std::string first_encode, first_decode;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::vector<int32_t> want = parse_ids(ids[i]);
    const std::vector<int32_t> got = tok->encode(corpus[i]);
    if (got != want && bad_encode++ == 0) {
      first_encode = describe(*tok, "line " + std::to_string(i + 1), corpus[i], want, got);
    }
    const std::string want_text = decoded[i] == "=" ? corpus[i] : decoded[i].substr(1);
    const std::string got_text = tok->decode(want);
    if (got_text != want_text && bad_decode++ == 0) {
      first_decode = "line " + std::to_string(i + 1) + ": decode(" + ids[i] + ")\n  expected \"" +
                     escape(want_text) + "\"\n  got      \"" + escape(got_text) + "\"";
    }
  }
  INFO(name << ": " << bad_encode << " of " << ids.size() << " lines encode differently; first:\n"
            << first_encode);
  CHECK(bad_encode == 0);
  INFO(name << ": " << bad_decode << " of " << ids.size() << " lines decode differently; first:\n"
            << first_decode);
  CHECK(bad_decode == 0);
}

const json& cases() {
  static const json c = [] {
    std::ifstream in(kDir + "/cases.json");
    if (!in) throw std::runtime_error("cannot open " + kDir + "/cases.json");
    return json::parse(in);
  }();
  return c;
}

std::vector<int32_t> as_ids(const json& j) { return j.get<std::vector<int32_t>>(); }

// vocab_size, bos/eos/pad, encode (with and without specials) and decode cases of one tokenizer.
void check_cases(const std::string& name, const std::string& tokenizer_path) {
  const json& c = cases().at(name);
  const auto tok = Tokenizer::load(tokenizer_path);
  CHECK(tok->vocab_size() == c.at("vocab_size").get<size_t>());
  CHECK(tok->bos_id() == c.at("bos_id").get<int32_t>());
  CHECK(tok->eos_id() == c.at("eos_id").get<int32_t>());
  CHECK(tok->pad_id() == c.at("pad_id").get<int32_t>());
  size_t bad = 0;
  for (const json& e : c.at("encode")) {
    const std::string text = e.at("text").get<std::string>();
    for (bool special : {true, false}) {
      const std::vector<int32_t> want = as_ids(e.at(special ? "ids" : "ids_no_special"));
      const std::vector<int32_t> got = tok->encode(text, special);
      if (got != want && bad++ < 3) {
        FAIL_CHECK(
            describe(*tok, name + std::string(special ? "" : " (no specials)"), text, want, got));
      }
    }
  }
  for (const json& d : c.at("decode")) {
    const std::vector<int32_t> ids = as_ids(d.at("ids"));
    for (bool skip : {true, false}) {
      const std::string want = d.at(skip ? "skip" : "keep").get<std::string>();
      const std::string got = tok->decode(ids, skip);
      if (got != want && bad++ < 3) {
        FAIL_CHECK(name << " decode(" << d.at("ids").dump() << ", skip_special_tokens=" << skip
                        << ")\n  expected \"" << escape(want) << "\"\n  got      \"" << escape(got)
                        << "\"");
      }
    }
  }
  CHECK(bad == 0);
}

bool have_gpt2() {
  if (std::filesystem::exists(kGpt2Dir + "/vocab.json")) return true;
  WARN("skipped: no GPT-2 vocabulary at " << kGpt2Dir);
  return false;
}

}  // namespace

TEST_CASE("tokenizer golden: byte-level BPE, every corpus line", "[tokenizer][golden]") {
  check_corpus("bytelevel", kDir + "/bytelevel");
}

TEST_CASE("tokenizer golden: SentencePiece-style BPE, every corpus line", "[tokenizer][golden]") {
  check_corpus("sentencepiece", kDir + "/sentencepiece/tokenizer.json");
}

TEST_CASE("tokenizer golden: byte-level with add_prefix_space", "[tokenizer][golden]") {
  check_corpus("bytelevel_prefix", kDir + "/bytelevel_prefix");
}

TEST_CASE("tokenizer golden: Metaspace pre-tokenizer, unk fused, clean-up", "[tokenizer][golden]") {
  check_corpus("metaspace", kDir + "/metaspace");
}

TEST_CASE("tokenizer golden: GPT-2 vocab.json + merges.txt, every corpus line",
          "[tokenizer][golden]") {
  if (have_gpt2()) check_corpus("gpt2", kGpt2Dir);
}

TEST_CASE("tokenizer golden: specials, newlines, add_special_tokens=false, random decodes",
          "[tokenizer][golden]") {
  for (const char* name : {"bytelevel", "sentencepiece", "bytelevel_prefix", "metaspace",
                           "options_bytelevel", "options_sentencepiece"}) {
    SECTION(name) { check_cases(name, kDir + "/" + name); }
  }
  SECTION("gpt2") {
    if (have_gpt2()) check_cases("gpt2", kGpt2Dir);
  }
}
