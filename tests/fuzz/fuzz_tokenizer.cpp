// libFuzzer target: a tokenizer.json (runtime::Tokenizer::from_json, the loader of
// Tokenizer::load without the side files), then what generation does with it: encode a
// text with and without the special tokens, decode the ids, look tokens up. Input: the
// tokenizer.json text, optionally a NUL and the text to encode (else a fixed sample).
// Refusals are zinc::Errors; a crash, a sanitizer report, another exception, a leak or a
// slow input is a finding.
#include <cstdint>
#include <cstdlib>

#include "fuzz_input.hpp"
#include "runtime/common/error.hpp"
#include "runtime/tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using zinc::runtime::Tokenizer;
  const std::vector<std::string> f = zinc::fuzz::split_fields(data, size, 2);
  try {
    const std::unique_ptr<Tokenizer> t = Tokenizer::from_json(f[0], "fuzz/tokenizer.json");
    const std::string text =
        f.size() > 1 && !f[1].empty() ? f[1] : std::string("Hello, world! It's 2024:\n\tcaf\xc3\xa9 \xe2\x96\x81<s> </s>");
    const std::vector<int32_t> with = t->encode(text, true);
    const std::vector<int32_t> without = t->encode(text, false);
    (void)t->decode(with, true);
    (void)t->decode(without, false);
    const int32_t n = static_cast<int32_t>(std::min<size_t>(t->vocab_size(), 1u << 20));
    std::vector<int32_t> edges = {-1, 0, n - 1, n, n + 1, INT32_MAX, INT32_MIN};
    (void)t->decode(edges, false);
    for (int32_t id : edges) (void)t->token_to_id(t->id_to_token(id));
    (void)t->id_table_bytes();
  } catch (const zinc::Error& e) {
    zinc::fuzz::refused(e);
  }
  return 0;
}
