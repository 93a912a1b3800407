// runtime/tokenizer pieces and failure modes: the hand-written GPT-2 pattern (expected pieces
// from HF `tokenizers`), lossy UTF-8 (as Rust / CPython), character classes, a hand-made GPT-2
// layout (vocab.json + merges.txt + tokenizer_config.json), and every way a tokenizer file can
// be wrong or unsupported (each error must name the file and what is wrong).
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/common/error.hpp"
#include "runtime/tokenizer/byte_level.hpp"
#include "runtime/tokenizer/tokenizer.hpp"
#include "runtime/tokenizer/unicode.hpp"
#include "unit/test_util.hpp"

using nlohmann::json;
using zinc::runtime::Tokenizer;
using zinc::test::TempDir;
using zinc::test::write_file;
namespace tok = zinc::runtime::tok;

namespace {

std::vector<std::string> gpt2_pieces(const std::string& text) {
  std::vector<std::pair<uint32_t, uint32_t>> spans;
  tok::split_gpt2(text, spans);
  std::vector<std::string> out;
  for (const auto& [b, e] : spans) out.push_back(text.substr(b, e - b));
  return out;
}

// The GPT-2 character of a byte.
std::string byte_char(uint8_t b) {
  std::string s;
  tok::ByteLevelMap::get().append(s, b);
  return s;
}

// A tiny byte-level BPE: the 256 byte characters (id = byte value), then
// he=256 ll=257 hell=258 hello=259 Ġw=260, and extra tokens from 261 on.
json tiny_vocab(const std::vector<std::string>& extra = {}) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(static_cast<uint8_t>(b))] = b;
  int id = 256;
  for (const char* t : {"he", "ll", "hell", "hello"}) vocab[t] = id++;
  vocab[byte_char(' ') + "w"] = id++;
  for (const std::string& t : extra) vocab[t] = id++;
  return vocab;
}

const char* kTinyMerges = "#version: 0.2\nh e\nl l\nhe ll\nhell o\n\xC4\xA0 w\n";

json tiny_tokenizer_json() {
  return {{"version", "1.0"},
          {"added_tokens",
           {{{"id", 261},
             {"content", "<|endoftext|>"},
             {"single_word", false},
             {"lstrip", false},
             {"rstrip", false},
             {"normalized", false},
             {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"vocab", tiny_vocab({"<|endoftext|>"})},
            {"merges", {"h e", "l l", "he ll", "hell o", byte_char(' ') + " w"}}}}};
}

// Writes `j` as DIR/tokenizer.json and returns that path.
std::string write_tokenizer(const TempDir& dir, const json& j) {
  write_file(dir.file("tokenizer.json"), j.dump());
  return dir.file("tokenizer.json");
}

}  // namespace

TEST_CASE("tokenizer: the GPT-2 pattern splits as HF tokenizers' ByteLevel", "[tokenizer]") {
  using V = std::vector<std::string>;
  CHECK(gpt2_pieces("Hello world") == V{"Hello", " world"});
  CHECK(gpt2_pieces("  two  spaces  ") == V{" ", " two", " ", " spaces", "  "});
  CHECK(gpt2_pieces("tab\t\tx") == V{"tab", "\t", "\t", "x"});
  CHECK(gpt2_pieces("it's I'M we'll 'x") == V{"it", "'s", " I", "'", "M", " we", "'ll", " '", "x"});
  CHECK(gpt2_pieces("abc123def 4.5") == V{"abc", "123", "def", " 4", ".", "5"});
  CHECK(gpt2_pieces("a\u00a0\u00a0b") == V{"a", "\u00a0", "\u00a0", "b"});
  CHECK(gpt2_pieces("\u3000\u3000x") == V{"\u3000", "\u3000", "x"});
  CHECK(gpt2_pieces(" \u0301e") == V{" \u0301", "e"});
  CHECK(gpt2_pieces("x\u200by") == V{"x", "\u200b", "y"});
  CHECK(gpt2_pieces("\U0001F600\U0001F600 hi") == V{"\U0001F600\U0001F600", " hi"});
  CHECK(gpt2_pieces("\u0663\u0664 \u00bd") == V{"\u0663\u0664", " \u00bd"});
  CHECK(gpt2_pieces(" 's") == V{" '", "s"});
  CHECK(gpt2_pieces("''s") == V{"''", "s"});
  CHECK(gpt2_pieces("a\n\nb \n") == V{"a", "\n", "\n", "b", " \n"});
  CHECK(gpt2_pieces("   ") == V{"   "});
  CHECK(gpt2_pieces("!!! ??") == V{"!!!", " ??"});
  CHECK(gpt2_pieces("\u01c5emal \u216b") == V{"\u01c5emal", " \u216b"});
  CHECK(gpt2_pieces("\x0b\x0c\u0085\u2028z") == V{"\x0b\x0c\u0085", "\u2028", "z"});
  CHECK(gpt2_pieces("").empty());
  CHECK(gpt2_pieces("a\xff\xfe b") == V{"a", "\xff\xfe", " b"});  // invalid bytes: "other"
}

TEST_CASE("tokenizer: lossy UTF-8 replaces maximal invalid subparts", "[tokenizer]") {
  const std::string r = "\xEF\xBF\xBD";
  CHECK(tok::utf8_lossy("\xF0\x9F\x98") == r);
  CHECK(tok::utf8_lossy("\xE0\x80") == r + r);
  CHECK(tok::utf8_lossy("\xED\xA0\x80") == r + r + r);
  CHECK(tok::utf8_lossy("a\xC3") == "a" + r);
  CHECK(tok::utf8_lossy("\xC0\xAF") == r + r);
  CHECK(tok::utf8_lossy("\xF4\x90\x80\x80") == r + r + r + r);
  CHECK(tok::utf8_lossy("\xE2\x82\xACz\xFF") == "\xE2\x82\xACz" + r);
  CHECK(tok::utf8_lossy("\xF1\x80\x80") == r);
  CHECK(tok::utf8_lossy("ok \U0001F600") == "ok \U0001F600");
  CHECK(tok::is_valid_utf8("\xE2\x82\xAC"));
  CHECK_FALSE(tok::is_valid_utf8("\xED\xA0\x80"));
}

TEST_CASE("tokenizer: character classes", "[tokenizer]") {
  CHECK(tok::char_class('a') == (tok::kLetter | tok::kWord));
  CHECK(tok::char_class('7') == (tok::kNumber | tok::kWord));
  CHECK(tok::char_class('_') == tok::kWord);
  CHECK(tok::char_class('!') == 0);
  CHECK(tok::char_class(0x3000) == tok::kSpace);
  CHECK(tok::char_class(0x0085) == tok::kSpace);
  CHECK(tok::char_class(0x200B) == 0);                            // zero width space: not \s
  CHECK(tok::char_class(0x0301) == tok::kWord);                   // combining mark
  CHECK(tok::char_class(0x216B) == (tok::kNumber | tok::kWord));  // Roman numeral (Nl)
  CHECK(tok::char_class(0x00BD) == tok::kNumber);                 // ½ (No)
  CHECK(tok::char_class(0x1D518) & tok::kLetter);                 // mathematical fraktur U
  CHECK(tok::char_class(0x1F600) == 0);                           // emoji
  CHECK(tok::char_class(0x10FFFF) == 0);
}

TEST_CASE("tokenizer: a GPT-2 layout directory (vocab.json + merges.txt)", "[tokenizer]") {
  TempDir dir;
  write_file(dir.file("vocab.json"), tiny_vocab({"<|endoftext|>", "</s>"}).dump());
  write_file(dir.file("merges.txt"), kTinyMerges);
  const std::vector<int32_t> hello_world = {259, 260, 'o', 'r', 'l', 'd'};
  {
    // No tokenizer_config.json: <|endoftext|> is the special token, bos and eos.
    const auto t = Tokenizer::load(dir.path());
    CHECK(t->encode("hello world") == hello_world);
    CHECK(t->encode("hello<|endoftext|>") == std::vector<int32_t>{259, 261});
    CHECK(t->bos_id() == 261);
    CHECK(t->eos_id() == 261);
    CHECK(t->pad_id() == -1);
    CHECK(t->vocab_size() == 263);
    CHECK(t->decode({259, 261, 260}) == "hello w");
    CHECK(t->decode({259, 261, 260}, false) == "hello<|endoftext|> w");
    CHECK(t->decode({259, -1, 9999, 260}) == "hello w");  // unknown ids are skipped
    CHECK(t->decode({0xE2, 0x82}) == "\xEF\xBF\xBD");     // a cut UTF-8 sequence
    CHECK(t->token_to_id("hello") == 259);
    CHECK(t->id_to_token(260) == "\xC4\xA0w");
  }
  {
    // OPT-style: the config asks for a BOS (</s>) in front, and names the specials.
    write_file(dir.file("tokenizer_config.json"),
               R"({"add_bos_token": true, "bos_token": {"content": "</s>"}, "eos_token": "</s>",
                   "pad_token": "<|endoftext|>", "add_prefix_space": true})");
    const auto t = Tokenizer::load(dir.path());
    const std::vector<int32_t> got = t->encode("hello");
    CHECK(got == std::vector<int32_t>{262, ' ', 259});  // </s>, then Ġ (byte 0x20) + hello
    CHECK(t->encode("hello", false).size() == 2);
    CHECK(t->bos_id() == 262);
    CHECK(t->eos_id() == 262);
    CHECK(t->pad_id() == 261);
    CHECK(t->decode(got) == " hello");
    CHECK(t->encode("</s>x", false).front() == 262);  // config-named specials are added tokens
  }
}

TEST_CASE("tokenizer: errors name the file and what is wrong", "[tokenizer]") {
  TempDir dir;
  auto load_json = [&](const json& j) { return Tokenizer::load(write_tokenizer(dir, j)); };
  json j;

  SECTION("missing paths") {
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.file("nope")),
                        ZINC_CONTAINS("nope") && ZINC_CONTAINS("no such"));
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS(dir.path()) && ZINC_CONTAINS("no tokenizer.json"));
  }
  SECTION("malformed JSON") {
    write_file(dir.file("tokenizer.json"), "{\"model\": {");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS("tokenizer.json") && ZINC_CONTAINS("malformed JSON"));
  }
  SECTION("no model") {
    REQUIRE_THROWS_WITH(load_json(json{{"added_tokens", json::array()}}),
                        ZINC_CONTAINS("tokenizer.json") && ZINC_CONTAINS("missing field 'model'"));
  }
  SECTION("unsupported models") {
    for (const char* type : {"Unigram", "WordPiece", "WordLevel"}) {
      j = tiny_tokenizer_json();
      j["model"]["type"] = type;
      REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS("tokenizer.json: model") &&
                                            ZINC_CONTAINS(type) && ZINC_CONTAINS("not supported"));
    }
  }
  SECTION("unsupported components") {
    const std::vector<std::pair<const char*, json>> bad = {
        {"normalizer", {{"type", "NFC"}}},
        {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Lowercase"}}}}}},
        {"normalizer", {{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", " "}}},
        {"pre_tokenizer", {{"type", "Whitespace"}}},
        {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", "\\d"}}}}},
        {"decoder", {{"type", "WordPiece"}}},
        {"post_processor", {{"type", "Fancy"}}},
    };
    for (const auto& [key, spec] : bad) {
      j = tiny_tokenizer_json();
      j[key] = spec;
      const std::string type =
          spec.contains("normalizers") ? "Lowercase" : spec["type"].get<std::string>();
      INFO(key << ": " << spec.dump());
      REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS(std::string("tokenizer.json: ") + key) &&
                                            ZINC_CONTAINS(type) && ZINC_CONTAINS("not supported"));
    }
  }
  SECTION("unsupported BPE options") {
    j = tiny_tokenizer_json();
    j["model"]["dropout"] = 0.1;
    REQUIRE_THROWS_WITH(load_json(j),
                        ZINC_CONTAINS("tokenizer.json: model") && ZINC_CONTAINS("dropout"));
    j = tiny_tokenizer_json();
    j["model"]["continuing_subword_prefix"] = "##";
    REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS("continuing_subword_prefix"));
  }
  SECTION("bad vocabulary and merges in tokenizer.json") {
    j = tiny_tokenizer_json();
    j["model"]["vocab"]["x"] = "seven";
    REQUIRE_THROWS_WITH(load_json(j),
                        ZINC_CONTAINS("tokenizer.json: model.vocab") && ZINC_CONTAINS("\"x\""));
    j = tiny_tokenizer_json();
    j["model"]["merges"].push_back("q z");
    REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS("tokenizer.json: model") &&
                                          ZINC_CONTAINS("merge #5") && ZINC_CONTAINS("\"qz\""));
    j = tiny_tokenizer_json();
    j["model"]["merges"].push_back("nospace");
    REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS("merges[5]") && ZINC_CONTAINS("nospace"));
    j = tiny_tokenizer_json();
    j["model"]["merges"].push_back(json::array({1, 2}));
    REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS("merges[5]"));
  }
  SECTION("bad added tokens and templates") {
    j = tiny_tokenizer_json();
    j["added_tokens"][0].erase("content");
    REQUIRE_THROWS_WITH(load_json(j), ZINC_CONTAINS("added_tokens[0]") && ZINC_CONTAINS("content"));
    j = tiny_tokenizer_json();
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single",
                            {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                             {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                           {"special_tokens", json::object()}};
    REQUIRE_THROWS_WITH(load_json(j),
                        ZINC_CONTAINS("tokenizer.json: post_processor") && ZINC_CONTAINS("<s>"));
  }
  SECTION("unk token needed but not in the vocabulary") {
    j = tiny_tokenizer_json();
    j["model"]["unk_token"] = "<unk>";
    j["model"]["vocab"].erase("x");
    const auto t = load_json(j);
    CHECK(t->encode("hello").size() == 1);
    REQUIRE_THROWS_WITH(t->encode("x"), ZINC_CONTAINS("tokenizer.json") && ZINC_CONTAINS("<unk>"));
  }
  SECTION("bad tokenizer_config.json") {
    write_tokenizer(dir, tiny_tokenizer_json());
    write_file(dir.file("tokenizer_config.json"), "[1, 2");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS("tokenizer_config.json") && ZINC_CONTAINS("malformed"));
    write_file(dir.file("tokenizer_config.json"), R"({"bos_token": {"id": 3}})");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS("tokenizer_config.json") && ZINC_CONTAINS("content"));
  }
  SECTION("bad merges.txt lines") {
    write_file(dir.file("vocab.json"), tiny_vocab().dump());
    write_file(dir.file("merges.txt"), "#version: 0.2\nh e\nl l x\n");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS("merges.txt line 3") && ZINC_CONTAINS("l l x"));
    write_file(dir.file("merges.txt"), "h e\n\nl l\n");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()), ZINC_CONTAINS("merges.txt line 2"));
    write_file(dir.file("merges.txt"), "h e\nq z\n");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS("merges.txt") && ZINC_CONTAINS("line 2") &&
                            ZINC_CONTAINS("\"qz\" is not in the vocabulary"));
    write_file(dir.file("merges.txt"), kTinyMerges);
    write_file(dir.file("vocab.json"), "{\"a\": 1,}");
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()),
                        ZINC_CONTAINS("vocab.json") && ZINC_CONTAINS("malformed JSON"));
  }
}

TEST_CASE("tokenizer: tokenizer.json with lstrip/rstrip tokens and no decoder", "[tokenizer]") {
  TempDir dir;
  json j = tiny_tokenizer_json();
  j["decoder"] = nullptr;  // tokens joined with spaces, as HF does without a decoder
  j["added_tokens"][0]["lstrip"] = true;
  j["added_tokens"][0]["rstrip"] = true;
  const auto t = Tokenizer::load(write_tokenizer(dir, j));
  CHECK(t->encode("hello  <|endoftext|>  hello") == std::vector<int32_t>{259, 261, 259});
  CHECK(t->decode({259, 260}) == "hello \xC4\xA0w");
  CHECK(t->decode({259, 261, 259}, false) == "hello <|endoftext|> hello");
}

TEST_CASE("tokenizer: encode is thread-safe", "[tokenizer]") {
  const auto t = Tokenizer::load(std::string(ZINC_FIXTURES_DIR) + "/tokenizer/bytelevel");
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) {
    texts.push_back("text " + std::to_string(i * 7919) + " with words, caf\u00e9 \U0001F600 " +
                    std::string(static_cast<size_t>(i % 5), ' ') + "end" + std::to_string(i));
  }
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : texts) serial.push_back(t->encode(s));
  std::vector<std::vector<int32_t>> a(texts.size()), b(texts.size());
  std::thread ta([&] {
    for (size_t i = 0; i < texts.size(); ++i) a[i] = t->encode(texts[i]);
  });
  std::thread tb([&] {
    for (size_t i = texts.size(); i-- > 0;) b[i] = t->encode(texts[i]);
  });
  ta.join();
  tb.join();
  CHECK(a == serial);
  CHECK(b == serial);
}

// Ids are what the file holds, not a dense range up to the largest: a 147 KB tokenizer.json
// whose largest id was 2^28-1 made an 8.5 GB table and took 23 s to load. One token at the
// largest id allowed (2^24-1) must cost next to nothing, and an id beyond it is refused.
TEST_CASE("tokenizer: a sparse vocabulary is sized by its tokens, not its largest id", "[tokenizer]") {
  TempDir dir;
  const int32_t huge = (1 << 24) - 1;
  json j = tiny_tokenizer_json();
  j["model"]["vocab"]["far"] = huge;
  const auto t = Tokenizer::load(write_tokenizer(dir, j));
  CHECK(t->vocab_size() == static_cast<size_t>(huge) + 1);
  CHECK(t->token_to_id("far") == huge);
  CHECK(t->id_to_token(huge) == "far");
  CHECK(t->id_to_token(huge - 1).empty());  // a hole
  CHECK(t->id_to_token(259) == "hello");
  CHECK(t->decode({259, huge}) == "hellofar");
  CHECK(t->encode("hello world") == std::vector<int32_t>({259, 260, 'o', 'r', 'l', 'd'}));
  // 263 tokens: a few KiB of id table, where a dense one would take 2^24 entries.
  CHECK(t->id_table_bytes() < 64 * 1024);

  // A dense vocabulary keeps its dense table: one entry per id.
  const auto dense = Tokenizer::load(write_tokenizer(dir, tiny_tokenizer_json()));
  CHECK(dense->id_table_bytes() >= 262 * sizeof(void*));
  CHECK(dense->id_to_token(260) == "\xC4\xA0w");

  // Beyond 2^24-1 (the largest real vocabularies hold ~256k ids): refused, naming the
  // file, the token and the limit; the same for vocab.json.
  j["model"]["vocab"]["far"] = 1 << 24;
  REQUIRE_THROWS_WITH(Tokenizer::load(write_tokenizer(dir, j)),
                      ZINC_CONTAINS(dir.file("tokenizer.json")) && ZINC_CONTAINS("token \"far\" has id 16777216") &&
                          ZINC_CONTAINS("[0, 16777215]"));
  j["model"]["vocab"]["far"] = (int64_t{1} << 28) - 1;
  REQUIRE_THROWS_WITH(Tokenizer::load(write_tokenizer(dir, j)), ZINC_CONTAINS("has id 268435455"));
  TempDir gpt2;
  json vocab = tiny_vocab();
  vocab["far"] = int64_t{1} << 31;
  write_file(gpt2.file("vocab.json"), vocab.dump());
  write_file(gpt2.file("merges.txt"), kTinyMerges);
  REQUIRE_THROWS_WITH(Tokenizer::load(gpt2.path()),
                      ZINC_CONTAINS(gpt2.file("vocab.json")) && ZINC_CONTAINS("token \"far\" has id 2147483648"));
}
