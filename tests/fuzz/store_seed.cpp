// zinc_store_seed STORE: writes to stdout the metadata of a zinc store as a fuzz_store_meta
// input (the fields fuzz_store_meta.cpp lists, NUL-separated), so the seeds are real stores
// that `zinc convert` made from tests/fixtures (make_seeds.sh).
#include <sys/stat.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "partition/shard.hpp"
#include "partition/store.hpp"
#include "runtime/common/error.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: zinc_store_seed STORE > SEED\n";
    return 2;
  }
  try {
    using namespace zinc::partition;
    const StoreReader store(argv[1]);
    const StoreInfo& info = store.info();
    struct stat st;
    ZINC_CHECK(::stat(argv[1], &st) == 0, argv[1] << ": cannot stat");
    std::string out = std::to_string(info.version);
    auto field = [&](const std::string& s) {
      out.push_back('\0');
      out += s;
    };
    field(zinc::quant::quant_format_name(info.quant));
    field(std::to_string(info.group_size));
    field(std::to_string(st.st_size));
    field(info.config_json);
    field(info.generation_config_json);
    field(nlohmann::json(info.blob_order).dump());
    for (size_t b = 0; b < store.manifests().size(); ++b) {
      const BlobManifest& m = store.manifests()[b];
      field(std::to_string(m.bytes));
      field(m.to_json().dump());
      field(std::to_string(store.file_offset(b)));
      field(std::to_string((m.bytes + kPageBytes - 1) / kPageBytes));
    }
    std::cout << out;
    return 0;
  } catch (const zinc::Error& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
