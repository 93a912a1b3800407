// zinc::runtime::Tokenizer: a native reader of Hugging Face tokenizers for BPE models.
//
// Sources (load()):
//   * a tokenizer.json file, or a directory holding one (tokenizer_config.json and
//     special_tokens_map.json next to it are read when present);
//   * a directory with vocab.json + merges.txt (the GPT-2 layout): byte-level BPE as
//     transformers' GPT2 converter builds it (ByteLevel pre-tokenizer and decoder; from
//     tokenizer_config.json: add_prefix_space, add_bos_token + bos_token (OPT prepends </s>),
//     added_tokens_decoder; without one, <|endoftext|> is the only (special) added token and
//     serves as bos and eos).
//
// Supported tokenizer.json components (anything else is a zinc::Error naming the file and the
// component, when loading):
//   model           BPE (unk_token, fuse_unk, byte_fallback, ignore_merges; no dropout,
//                   continuing_subword_prefix / end_of_word_suffix only empty)
//   normalizer      Prepend, Replace (String pattern), Sequence
//   pre_tokenizer   ByteLevel (GPT-2 pattern, add_prefix_space, use_regex), Metaspace
//                   (replacement, prepend_scheme / add_prefix_space, split), Sequence
//   post_processor  TemplateProcessing (single), ByteLevel, RobertaProcessing, BertProcessing,
//                   Sequence
//   decoder         ByteLevel, Replace (String), ByteFallback, Fuse, Strip, Metaspace, Sequence
//   added_tokens    all options (single_word, lstrip, rstrip, normalized, special)
// "truncation" and "padding" in tokenizer.json are ignored (batching is the runtime's job).
//
// encode() is `tokenizers`' Tokenizer.encode(text, add_special_tokens).ids; decode() is
// transformers' decode(ids, skip_special_tokens) (transformers 5.x): the tokenizer's decoder
// on the ids' tokens (ids outside the vocabulary are skipped), then clean_up_tokenization only
// when tokenizer_config.json sets both clean_up_tokenization_spaces and
// clean_up_tokenization_spaces_for_bpe_even_though_it_will_corrupt_output (transformers 5
// ignores the first alone for BPE models, and every model here is BPE).
//
// All const methods are safe to call from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace zinc::runtime {

namespace tok {
struct TokenizerParts;
}

class Tokenizer {
 public:
  // Throws zinc::Error naming the file (and the component, field or merges.txt line).
  static std::unique_ptr<Tokenizer> load(const std::string& path_or_dir);
  // A tokenizer.json's text, without the side files (tokenizer_config.json,
  // special_tokens_map.json: bos/eos/pad ids stay -1); `source` names it in errors.
  // For tests and fuzzing (tests/fuzz).
  static std::unique_ptr<Tokenizer> from_json(const std::string& text, const std::string& source);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens = true) const;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const;

  // From tokenizer_config.json (bos_token, eos_token, pad_token), else special_tokens_map.json;
  // -1 when not set there (or the token is not in the vocabulary).
  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t pad_id() const;

  // One past the largest id of the model vocabulary and the added tokens (= the embedding rows
  // a model needs; equal to HF's get_vocab_size(with_added_tokens=True) when ids are dense).
  size_t vocab_size() const;

  // Bytes of the model vocabulary's id -> token table: sized by the tokens the file holds
  // (a dense table when the ids are dense, else sorted ids), not by its largest id.
  size_t id_table_bytes() const;

  // The token string of an id as decode() sees it (an added token's content, normalized when
  // the token is; or the model vocabulary entry); "" if unknown.
  std::string id_to_token(int32_t id) const;
  // The id of a token string (added token or model vocabulary entry); -1 if unknown.
  int32_t token_to_id(const std::string& token) const;

  // What was loaded, for messages: the tokenizer.json path or the directory.
  const std::string& source() const;

 private:
  explicit Tokenizer(std::unique_ptr<tok::TokenizerParts> parts);
  std::unique_ptr<tok::TokenizerParts> parts_;
};

}  // namespace zinc::runtime
