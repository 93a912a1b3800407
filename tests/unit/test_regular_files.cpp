// Every file a model is read from (model.safetensors, its shards and index, config.json,
// generation_config.json, tokenizer files) must be a regular file: a FIFO of that name
// blocked open(2) forever, and a directory or device gave a confusing later error. Each is
// refused before anything opens it, with an error naming the path and what it is.
#include <cstdio>
#include <filesystem>
#include <string>

#include "fifo_watch.hpp"
#include "partition/safetensors.hpp"
#include "runtime/model/config.hpp"
#include "runtime/tokenizer/tokenizer.hpp"
#include "test_util.hpp"

using zinc::partition::Checkpoint;
using zinc::partition::SafetensorsFile;
using zinc::runtime::load_config;
using zinc::runtime::Tokenizer;
using zinc::test::FifoWatch;
using zinc::test::TempDir;
using zinc::test::write_file;

namespace {

const char* kConfig = R"({"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
  "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4})";

const char* kTokenizer = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2},
  "merges": ["a b"]}})";

}  // namespace

TEST_CASE("regular files: a FIFO is refused, never opened", "[regular_files]") {
  TempDir dir;
  const std::string fifo_is = ": is a FIFO, not a regular file";

  SECTION("model.safetensors") {
    FifoWatch fifo(dir.file("model.safetensors"));
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                        ZINC_CONTAINS(fifo.path() + fifo_is) && ZINC_CONTAINS("safetensors"));
    CHECK_FALSE(fifo.opened());
    REQUIRE_THROWS_WITH(SafetensorsFile::open(fifo.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
    CHECK_FALSE(fifo.opened());
  }
  SECTION("model.safetensors.index.json and a shard it names") {
    {
      FifoWatch fifo(dir.file("model.safetensors.index.json"));
      REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
      CHECK_FALSE(fifo.opened());
    }
    std::remove(dir.file("model.safetensors.index.json").c_str());
    write_file(dir.file("model.safetensors.index.json"), R"({"weight_map": {"w": "shard.safetensors"}})");
    FifoWatch shard(dir.file("shard.safetensors"));
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()), ZINC_CONTAINS(shard.path() + fifo_is));
    CHECK_FALSE(shard.opened());
  }
  SECTION("config.json and generation_config.json") {
    {
      FifoWatch fifo(dir.file("config.json"));
      REQUIRE_THROWS_WITH(load_config(dir.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
      CHECK_FALSE(fifo.opened());
    }
    std::remove(dir.file("config.json").c_str());
    write_file(dir.file("config.json"), kConfig);
    // Not skipped as if absent: its bos/eos/pad would silently not apply.
    FifoWatch gen(dir.file("generation_config.json"));
    REQUIRE_THROWS_WITH(load_config(dir.path()), ZINC_CONTAINS(gen.path() + fifo_is));
    CHECK_FALSE(gen.opened());
  }
  SECTION("tokenizer.json, given as a file or found in a directory") {
    FifoWatch fifo(dir.file("tokenizer.json"));
    REQUIRE_THROWS_WITH(Tokenizer::load(fifo.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
    CHECK_FALSE(fifo.opened());
  }
  SECTION("the files beside tokenizer.json") {
    write_file(dir.file("tokenizer.json"), kTokenizer);
    for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
      FifoWatch fifo(dir.file(name));
      REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
      CHECK_FALSE(fifo.opened());
      std::remove(fifo.path().c_str());
    }
  }
  SECTION("vocab.json and merges.txt") {
    write_file(dir.file("vocab.json"), R"({"a": 0, "b": 1, "ab": 2})");
    {
      FifoWatch fifo(dir.file("merges.txt"));
      REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
      CHECK_FALSE(fifo.opened());
    }
    std::remove(dir.file("merges.txt").c_str());
    write_file(dir.file("merges.txt"), "a b\n");
    std::remove(dir.file("vocab.json").c_str());
    FifoWatch fifo(dir.file("vocab.json"));
    REQUIRE_THROWS_WITH(Tokenizer::load(dir.path()), ZINC_CONTAINS(fifo.path() + fifo_is));
    CHECK_FALSE(fifo.opened());
  }
}

TEST_CASE("regular files: directories and devices are refused by name", "[regular_files]") {
  TempDir dir;
  SECTION("a directory named model.safetensors or config.json") {
    std::filesystem::create_directory(dir.file("model.safetensors"));
    REQUIRE_THROWS_WITH(Checkpoint::open_dir(dir.path()),
                        ZINC_CONTAINS(dir.file("model.safetensors") + ": is a directory, not a regular file"));
    std::filesystem::create_directory(dir.file("config.json"));
    REQUIRE_THROWS_WITH(load_config(dir.path()),
                        ZINC_CONTAINS(dir.file("config.json") + ": is a directory, not a regular file"));
  }
  SECTION("a character device as the tokenizer or a shard") {
    REQUIRE_THROWS_WITH(Tokenizer::load("/dev/null"),
                        ZINC_CONTAINS("/dev/null: is a character device, not a regular file"));
    REQUIRE_THROWS_WITH(SafetensorsFile::open("/dev/zero"),
                        ZINC_CONTAINS("/dev/zero: is a character device, not a regular file"));
  }
  SECTION("a symlink to a regular file is that file (the Hugging Face cache is made of them)") {
    write_file(dir.file("real.json"), kTokenizer);
    std::filesystem::create_symlink(dir.file("real.json"), dir.file("tokenizer.json"));
    CHECK(Tokenizer::load(dir.path())->token_to_id("ab") == 2);
  }
}
