// Loading: tokenizer.json (+ tokenizer_config.json / special_tokens_map.json) or the GPT-2
// layout (vocab.json + merges.txt). Every error names the file it comes from.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "runtime/common/input_file.hpp"
#include "runtime/tokenizer/json_util.hpp"
#include "runtime/tokenizer/tokenizer_parts.hpp"

namespace zinc::runtime::tok {
namespace {

namespace fs = std::filesystem;

// A FIFO, directory or device named like a tokenizer file is refused, not opened (open(2)
// of a FIFO blocks until a writer comes).
std::string read_file(const std::string& path) { return read_regular_file(path, "a tokenizer file"); }

json parse_json_file(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    ZINC_THROW(path << ": malformed JSON: " << e.what());
  }
}

// {"token": id, ...} (vocab.json, or model.vocab of tokenizer.json).
std::unordered_map<std::string, int32_t> read_vocab(const json& v, const std::string& where) {
  ZINC_CHECK(v.is_object(), where << ": the vocabulary must be an object {token: id}");
  std::unordered_map<std::string, int32_t> vocab;
  vocab.reserve(v.size());
  for (auto it = v.begin(); it != v.end(); ++it) {
    ZINC_CHECK(it->is_number_integer(), where << ": token \"" << it.key() << "\" has id " << it->dump()
                                              << " (expected a non-negative integer)");
    // Unsigned beyond int64 reads as negative here: refused either way.
    const int64_t id = it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX ? -1 : it->get<int64_t>();
    ZINC_CHECK(id >= 0 && id <= kMaxTokenId, where << ": token \"" << it.key() << "\" has id " << it->dump()
                                                   << ", outside [0, " << kMaxTokenId
                                                   << "] (the largest real vocabularies hold ~256k ids)");
    vocab[it.key()] = static_cast<int32_t>(id);
  }
  return vocab;
}

// tokenizer.json's "model": BPE only.
std::unique_ptr<BpeModel> read_bpe(const json& m, const std::string& where) {
  ZINC_CHECK(m.is_object(), where << ": expected an object");
  if (const json* type = optional_member(m, "type", where)) {
    ZINC_CHECK(
        type->is_string() && type->get<std::string>() == "BPE",
        where << ": type " << type->dump() << " is not supported (zinc supports BPE models only)");
  } else {
    ZINC_CHECK(m.contains("merges"), where << ": no type and no merges: not a BPE model");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = optional_member(m, key, where);
    ZINC_CHECK(!v || v->is_null() || (v->is_string() && v->get<std::string>().empty()),
               where << ": " << key << " " << v->dump() << " is not supported (only null or \"\")");
  }
  if (const json* d = optional_member(m, "dropout", where)) {
    ZINC_CHECK(d->is_null() || (d->is_number() && d->get<double>() == 0.0),
               where << ": dropout " << d->dump() << " is not supported (BPE dropout is random)");
  }
  BpeOptions opt;
  if (const json* unk = optional_member(m, "unk_token", where); unk && !unk->is_null()) {
    ZINC_CHECK(unk->is_string(), where << ": unk_token must be a string or null");
    opt.unk_token = unk->get<std::string>();
  }
  opt.fuse_unk = bool_member(m, "fuse_unk", false, where);
  opt.byte_fallback = bool_member(m, "byte_fallback", false, where);
  opt.ignore_merges = bool_member(m, "ignore_merges", false, where);

  const json& list = member(m, "merges", where);
  ZINC_CHECK(list.is_array(), where << ": merges must be an array");
  std::vector<BpeMerge> merges;
  merges.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    const json& e = list[i];
    BpeMerge merge;
    if (e.is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      ZINC_CHECK(sp != std::string::npos, where << ": merges[" << i << "] \"" << s
                                                << "\" is not two tokens separated by a space");
      merge.left = s.substr(0, sp);
      merge.right = s.substr(sp + 1);
    } else {  // ["a", "b"]
      ZINC_CHECK(
          e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(),
          where << ": merges[" << i << "] must be \"a b\" or [\"a\", \"b\"], found " << e.dump());
      merge.left = e[0].get<std::string>();
      merge.right = e[1].get<std::string>();
    }
    merges.push_back(std::move(merge));
  }
  return std::make_unique<BpeModel>(read_vocab(member(m, "vocab", where), where + ".vocab"), merges,
                                    std::move(opt), where + ".merges");
}

AddedToken read_added_token(const json& t, const std::string& where) {
  AddedToken a;
  a.content = string_member(t, "content", where);
  a.single_word = bool_member(t, "single_word", false, where);
  a.lstrip = bool_member(t, "lstrip", false, where);
  a.rstrip = bool_member(t, "rstrip", false, where);
  a.special = bool_member(t, "special", false, where);
  a.normalized = bool_member(t, "normalized", !a.special, where);
  return a;
}

// "<s>" or {"content": "<s>", ...} or null; "" when absent.
std::string token_name(const json& cfg, const char* key, const std::string& where) {
  const json* v = optional_member(cfg, key, where);
  if (!v || v->is_null()) return "";
  if (v->is_string()) return v->get<std::string>();
  return string_member(*v, "content", where + "." + key);
}

// bos/eos/pad names from tokenizer_config.json, then special_tokens_map.json.
struct SpecialNames {
  std::string bos, eos, pad, unk;
};

void read_special_names(const json& cfg, const std::string& where, SpecialNames& names) {
  if (names.bos.empty()) names.bos = token_name(cfg, "bos_token", where);
  if (names.eos.empty()) names.eos = token_name(cfg, "eos_token", where);
  if (names.pad.empty()) names.pad = token_name(cfg, "pad_token", where);
  if (names.unk.empty()) names.unk = token_name(cfg, "unk_token", where);
}

int32_t id_of(const TokenizerParts& p, const std::string& name) {
  if (name.empty()) return -1;
  const int32_t id = p.added.token_to_id(name);
  return id >= 0 ? id : p.model->token_to_id(name);
}

// Reads tokenizer_config.json (if present) into `cfg`; false when absent.
bool read_config(const fs::path& dir, json& cfg, std::string& cfg_path) {
  cfg_path = (dir / "tokenizer_config.json").string();
  if (!fs::exists(cfg_path)) return false;
  cfg = parse_json_file(cfg_path);
  ZINC_CHECK(cfg.is_object(), cfg_path << ": expected a JSON object");
  return true;
}

// bos/eos/pad ids and the clean-up flag from the files next to the tokenizer.
void read_side_files(const fs::path& dir, TokenizerParts& p, SpecialNames& names) {
  json cfg;
  std::string cfg_path;
  if (read_config(dir, cfg, cfg_path)) {
    read_special_names(cfg, cfg_path, names);
    p.clean_up_spaces =
        bool_member(cfg, "clean_up_tokenization_spaces", false, cfg_path) &&
        bool_member(cfg, "clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output",
                    false, cfg_path);
  }
  const std::string map_path = (dir / "special_tokens_map.json").string();
  if (fs::exists(map_path)) {
    const json map = parse_json_file(map_path);
    ZINC_CHECK(map.is_object(), map_path << ": expected a JSON object");
    read_special_names(map, map_path, names);
  }
  p.bos = id_of(p, names.bos);
  p.eos = id_of(p, names.eos);
  p.pad = id_of(p, names.pad);
}

// tokenizer.json's text; `file` names it in errors. The side files next to it are not read.
std::unique_ptr<TokenizerParts> from_json_text(const std::string& text, const std::string& file) {
  auto p = std::make_unique<TokenizerParts>();
  p->source = file;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    ZINC_THROW(file << ": malformed JSON: " << e.what());
  }
  ZINC_CHECK(j.is_object(), file << ": expected a JSON object");
  try {
    auto component = [&](const char* key) -> const json& {
      static const json null_json;
      const json* v = optional_member(j, key, file);
      return v ? *v : null_json;
    };
    p->model = read_bpe(member(j, "model", file), file + ": model");
    p->normalizer = make_normalizer(component("normalizer"), file + ": normalizer");
    p->pre_tokenizer = make_pre_tokenizer(component("pre_tokenizer"), file + ": pre_tokenizer");
    p->post_processor = make_post_processor(component("post_processor"), file + ": post_processor");
    p->decoder = make_decoder(component("decoder"), file + ": decoder");
    std::vector<AddedToken> added;
    const json& list = component("added_tokens");
    ZINC_CHECK(list.is_null() || list.is_array(), file << ": added_tokens must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      added.push_back(
          read_added_token(list[i], file + ": added_tokens[" + std::to_string(i) + "]"));
    }
    p->added.add(added, *p->model, p->normalizer.get());
  } catch (const json::exception& e) {
    ZINC_THROW(file << ": malformed tokenizer: " << e.what());
  }
  return p;
}

std::unique_ptr<TokenizerParts> from_tokenizer_json(const std::string& file) {
  std::unique_ptr<TokenizerParts> p = from_json_text(read_file(file), file);
  try {
    SpecialNames names;
    read_side_files(fs::path(file).parent_path(), *p, names);
  } catch (const json::exception& e) {
    ZINC_THROW(file << ": malformed tokenizer: " << e.what());
  }
  return p;
}

// merges.txt: "#version" lines skipped, every other line exactly "left right".
std::vector<BpeMerge> read_merges_txt(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<BpeMerge> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.compare(0, 8, "#version") == 0) continue;
    const size_t sp = line.find(' ');
    ZINC_CHECK(sp != std::string::npos && sp > 0 && sp + 1 < line.size() &&
                   line.find(' ', sp + 1) == std::string::npos,
               path << " line " << line_no
                    << ": expected two tokens separated by one space, found \"" << line << "\"");
    merges.push_back(BpeMerge{line.substr(0, sp), line.substr(sp + 1), line_no});
  }
  return merges;
}

// The GPT-2 layout, as transformers' GPT2 converter builds a fast tokenizer from it.
std::unique_ptr<TokenizerParts> from_gpt2_files(const fs::path& dir) {
  auto p = std::make_unique<TokenizerParts>();
  p->source = dir.string();
  const std::string vocab_path = (dir / "vocab.json").string();
  const std::string merges_path = (dir / "merges.txt").string();
  json cfg = json::object();
  std::string cfg_path;
  read_config(dir, cfg, cfg_path);
  try {
    p->model = std::make_unique<BpeModel>(read_vocab(parse_json_file(vocab_path), vocab_path),
                                          read_merges_txt(merges_path), BpeOptions{},
                                          merges_path + " (with " + vocab_path + ")");
    p->pre_tokenizer =
        make_byte_level_pre_tokenizer(bool_member(cfg, "add_prefix_space", false, cfg_path));
    p->decoder = make_byte_level_decoder();
    // transformers' GPT-2 tokenizer defaults bos, eos and unk to <|endoftext|> unless the
    // config names them (null included).
    SpecialNames names;
    read_special_names(cfg, cfg_path, names);
    for (auto [key, name] : {std::pair{"bos_token", &names.bos}, std::pair{"eos_token", &names.eos},
                             std::pair{"unk_token", &names.unk}}) {
      if (!cfg.contains(key)) *name = "<|endoftext|>";
    }
    // Added tokens: the config's added_tokens_decoder, plus the named special tokens (as
    // transformers registers them), or <|endoftext|> alone without a config.
    std::vector<AddedToken> added;
    if (const json* dec = optional_member(cfg, "added_tokens_decoder", cfg_path)) {
      ZINC_CHECK(dec->is_object(), cfg_path << ": added_tokens_decoder must be an object");
      std::vector<std::pair<long, AddedToken>> by_id;
      for (auto it = dec->begin(); it != dec->end(); ++it) {
        by_id.emplace_back(std::stol(it.key()),
                           read_added_token(*it, cfg_path + ": added_tokens_decoder." + it.key()));
      }
      std::sort(by_id.begin(), by_id.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (auto& [id, t] : by_id) added.push_back(std::move(t));
    }
    for (const std::string* name : {&names.bos, &names.eos, &names.unk, &names.pad}) {
      if (name->empty() || p->model->token_to_id(*name) < 0) continue;
      AddedToken t;
      t.content = *name;
      t.special = true;
      t.normalized = false;
      added.push_back(t);
    }
    p->added.add(added, *p->model, nullptr);
    if (bool_member(cfg, "add_bos_token", false, cfg_path) && id_of(*p, names.bos) >= 0) {
      p->post_processor = make_prefix_post_processor({id_of(*p, names.bos)});
    }
    read_side_files(dir, *p, names);
  } catch (const json::exception& e) {
    ZINC_THROW(dir.string() << ": malformed vocab.json / tokenizer_config.json: " << e.what());
  } catch (const std::invalid_argument& e) {
    ZINC_THROW(cfg_path << ": added_tokens_decoder keys must be ids: " << e.what());
  } catch (const std::out_of_range& e) {
    ZINC_THROW(cfg_path << ": added_tokens_decoder keys must be ids: " << e.what());
  }
  return p;
}

}  // namespace

std::unique_ptr<TokenizerParts> tokenizer_parts_from_json(const std::string& text, const std::string& source) {
  return from_json_text(text, source);
}

std::unique_ptr<TokenizerParts> load_tokenizer_parts(const std::string& path_or_dir) {
  std::error_code ec;
  const fs::path path(path_or_dir);
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "tokenizer.json"))
      return from_tokenizer_json((path / "tokenizer.json").string());
    if (fs::exists(path / "vocab.json") && fs::exists(path / "merges.txt"))
      return from_gpt2_files(path);
    ZINC_THROW(
        path_or_dir << ": no tokenizer.json, nor vocab.json + merges.txt, in this directory");
  }
  ZINC_CHECK(fs::exists(path, ec), path_or_dir << ": no such tokenizer file or directory");
  return from_tokenizer_json(path_or_dir);
}

}  // namespace zinc::runtime::tok
