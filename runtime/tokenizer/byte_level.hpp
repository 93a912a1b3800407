// GPT-2's byte-level pieces: the byte <-> character map and the pre-tokenizer pattern.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zinc::runtime::tok {

// GPT-2's bytes_to_unicode(): the printable bytes '!'..'~', '¡'..'¬', '®'..'ÿ' stand for
// themselves, the other 68 bytes for U+0100.. in byte order.
class ByteLevelMap {
 public:
  static const ByteLevelMap& get();

  // Appends the character standing for byte b (UTF-8, 1 or 2 bytes).
  void append(std::string& out, uint8_t b) const { out.append(utf8_[b], len_[b]); }
  // The byte a character stands for, or -1 when cp is not one of the 256 characters.
  int byte_of(uint32_t cp) const { return cp < kMaxCp ? byte_of_[cp] : -1; }

 private:
  ByteLevelMap();
  static constexpr uint32_t kMaxCp = 0x144;
  char utf8_[256][2];
  uint8_t len_[256];
  int16_t byte_of_[kMaxCp];
};

// Splits text the way the ByteLevel pre-tokenizer's regex does (Isolated behaviour):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// written out by hand over the character classes of unicode.hpp. The pieces cover the text
// exactly; each is a [begin, end) byte range appended to `out`. Bytes that are not valid UTF-8
// count as one "other" character each (Hugging Face never sees them: Python strings are valid).
void split_gpt2(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out);

}  // namespace zinc::runtime::tok
