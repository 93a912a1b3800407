#include "runtime/tokenizer/decoders.hpp"

#include "runtime/tokenizer/byte_level.hpp"
#include "runtime/tokenizer/json_util.hpp"
#include "runtime/tokenizer/normalizers.hpp"
#include "runtime/tokenizer/pre_tokenizers.hpp"
#include "runtime/tokenizer/unicode.hpp"

namespace zinc::runtime::tok {
namespace {

// Characters back to bytes (a token with a character outside the map is taken as its own
// UTF-8 bytes), all tokens concatenated, then decoded lossily: one string.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    const ByteLevelMap& map = ByteLevelMap::get();
    std::string bytes, tok_bytes;
    for (const std::string& t : tokens) {
      tok_bytes.clear();
      bool mapped = true;
      for (size_t i = 0; i < t.size() && mapped;) {
        size_t len;
        const uint32_t cp = decode_utf8(t, i, &len);
        const int b = cp == kInvalidCodePoint ? -1 : map.byte_of(cp);
        mapped = b >= 0;
        if (mapped) tok_bytes += static_cast<char>(b);
        i += len;
      }
      bytes += mapped ? tok_bytes : t;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) replace_all(t, from_, to_);
  }

 private:
  std::string from_, to_;
};

// <0xNN> tokens: runs of them become their bytes as one token when those form valid UTF-8,
// else one U+FFFD per byte.
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&]() {
      if (pending_count == 0) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending_count; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
      pending_count = 0;
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>')
        byte = parse_hex_byte(t[3], t[4]);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }

 private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Rust's u8::from_str_radix(.., 16) on two characters: two hex digits, or '+' and one.
  static int parse_hex_byte(char a, char b) {
    const int lo = hex(b);
    if (lo < 0) return -1;
    if (a == '+') return lo;
    const int hi = hex(a);
    return hi < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Per token: up to `start` leading and `stop` trailing copies of one character removed.
class StripDecoder : public Decoder {
 public:
  StripDecoder(uint32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<size_t> starts;  // byte offset of every character, plus the end
    for (std::string& t : tokens) {
      starts.clear();
      std::vector<uint32_t> cps;
      for (size_t i = 0; i < t.size();) {
        size_t len;
        cps.push_back(decode_utf8(t, i, &len));
        starts.push_back(i);
        i += len;
      }
      starts.push_back(t.size());
      size_t cut_start = 0;
      for (size_t i = 0; i < start_ && i < cps.size() && cps[i] == content_; ++i) cut_start = i + 1;
      size_t cut_stop = cps.size();
      for (size_t i = 0; i < stop_ && i < cps.size(); ++i) {
        const size_t index = cps.size() - i - 1;
        if (cps[index] != content_) break;
        cut_stop = index;
      }
      if (cut_stop < cut_start) cut_stop = cut_start;
      t = t.substr(starts[cut_start], starts[cut_stop] - starts[cut_start]);
    }
  }

 private:
  uint32_t content_;
  size_t start_, stop_;
};

// The replacement character becomes a space, except in the first token, where it is dropped
// (unless prepend_scheme is "never").
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, PrependScheme scheme) : rep_(std::move(rep)), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      replace_all(tokens[i], rep_, i == 0 && scheme_ != PrependScheme::kNever ? "" : " ");
    }
  }

 private:
  std::string rep_;
  PrependScheme scheme_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

uint32_t single_char(const json& spec, const char* key, const std::string& where) {
  const std::string s = string_member(spec, key, where);
  size_t len = 0;
  const uint32_t cp = s.empty() ? kInvalidCodePoint : decode_utf8(s, 0, &len);
  ZINC_CHECK(cp != kInvalidCodePoint && len == s.size(),
             where << ": '" << key << "' must be exactly one character, found \"" << s << "\"");
  return cp;
}

size_t count_member(const json& spec, const char* key, const std::string& where) {
  const int64_t n = int_member(spec, key, where);
  ZINC_CHECK(n >= 0, where << ": '" << key << "' must not be negative");
  return static_cast<size_t>(n);
}

}  // namespace

std::unique_ptr<Decoder> make_byte_level_decoder() { return std::make_unique<ByteLevelDecoder>(); }

std::unique_ptr<Decoder> make_decoder(const json& spec, const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    std::string from = string_pattern(spec, where);
    ZINC_CHECK(!from.empty(), where << ": Replace with an empty pattern");
    return std::make_unique<ReplaceDecoder>(std::move(from), string_member(spec, "content", where));
  }
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(single_char(spec, "content", where),
                                          count_member(spec, "start", where),
                                          count_member(spec, "stop", where));
  }
  if (type == "Metaspace") {
    const uint32_t cp = single_char(spec, "replacement", where);
    std::string rep;
    append_utf8(rep, cp);
    return std::make_unique<MetaspaceDecoder>(std::move(rep), read_prepend_scheme(spec, where));
  }
  if (type == "Sequence") {
    const json& list = member(spec, "decoders", where);
    ZINC_CHECK(list.is_array(), where << ": 'decoders' must be an array");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      auto p = make_decoder(list[i], where + ".decoders[" + std::to_string(i) + "]");
      if (p) parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  ZINC_THROW(where << ": type '" << type
                   << "' is not supported (zinc supports ByteLevel, Replace, ByteFallback, Fuse, "
                      "Strip, Metaspace, and Sequence of those)");
}

}  // namespace zinc::runtime::tok
