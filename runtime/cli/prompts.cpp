#include "runtime/cli/prompts.hpp"

#include <cstdlib>
#include <filesystem>

#include "partition/store.hpp"
#include "runtime/common/error.hpp"
#include "runtime/common/output_file.hpp"
#include "runtime/common/paths.hpp"

namespace zinc::cli {
namespace {


// A store carries tokenizer.json (+ tokenizer_config.json, special_tokens_map.json): they
// are written to a private temporary directory, loaded, and the directory removed.
std::unique_ptr<runtime::Tokenizer> from_store(const std::string& path) {
  const partition::StoreReader store(path);
  const partition::StoreInfo& info = store.info();
  if (info.tokenizer_json.empty()) return nullptr;
  std::string dir = (std::filesystem::temp_directory_path() / "zinc_tokenizer_XXXXXX").string();
  ZINC_CHECK(::mkdtemp(dir.data()) != nullptr, "cannot create a temporary directory " << dir);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};
  auto put = [&](const char* name, const std::string& text) {
    if (text.empty()) return;
    write_output_file(dir + "/" + name, text);
  };
  put("tokenizer.json", info.tokenizer_json);
  put("tokenizer_config.json", info.tokenizer_config_json);
  put("special_tokens_map.json", info.special_tokens_map_json);
  try {
    return runtime::Tokenizer::load(dir);
  } catch (const Error& e) {
    ZINC_THROW(path << ": its tokenizer does not load: " << e.what());
  }
}

}  // namespace

std::unique_ptr<runtime::Tokenizer> find_tokenizer(const std::string& model,
                                                   const std::string& explicit_path, bool required) {
  if (!explicit_path.empty()) return runtime::Tokenizer::load(explicit_path);
  std::unique_ptr<runtime::Tokenizer> t;
  if (is_directory(model)) {
    if (path_exists(model + "/tokenizer.json") ||
        (path_exists(model + "/vocab.json") && path_exists(model + "/merges.txt")))
      t = runtime::Tokenizer::load(model);
  } else if (model.compare(0, 6, "dummy:") != 0 && path_exists(model)) {
    t = from_store(model);
  }
  ZINC_CHECK(t || !required,
             model << " has no tokenizer (tokenizer.json, or vocab.json + merges.txt): text "
                      "prompts need one; give --tokenizer PATH or use --prompt-ids");
  return t;
}

}  // namespace zinc::cli
