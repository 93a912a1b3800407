// Decoders of tokenizer.json that zinc supports: ByteLevel, Replace (String pattern),
// ByteFallback, Fuse, Strip, Metaspace, and Sequence of those. Each works like HF's
// Decoder::decode_chain on the list of token strings; the caller joins the result.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zinc::runtime::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Builds the decoder described by `spec` (tokenizer.json's "decoder"); nullptr for null.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& spec, const std::string& where);

// The ByteLevel decoder (the GPT-2 layout of vocab.json + merges.txt).
std::unique_ptr<Decoder> make_byte_level_decoder();

}  // namespace zinc::runtime::tok
