#include "partition/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/common/error.hpp"
#include "runtime/common/input_file.hpp"

namespace zinc::partition {

namespace {

using nlohmann::json;

// Same limit as the reference implementation (safetensors' MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string errno_text(int err) { return std::strerror(err); }

// Closes a file descriptor on every path out of open().
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0 && ::close(fd_) != 0) log_error("close() failed: " + errno_text(errno));
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

bool path_exists(const std::string& path, bool* is_dir = nullptr) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  if (is_dir) *is_dir = S_ISDIR(st.st_mode);
  return true;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// A non-negative JSON integer as uint64_t; false for anything else.
bool get_u64(const json& v, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// Parses one tensor entry of the header; `data_bytes` is the size of the data region.
TensorView parse_entry(const std::string& path, const std::string& name, const json& e,
                       const char* data, uint64_t data_bytes) {
  ZINC_CHECK(e.is_object(),
             path << ": header entry for tensor " << name << " is not an object: " << e.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    ZINC_CHECK(e.contains(key), path << ": tensor " << name << " has no \"" << key << "\"");

  TensorView t;
  t.name = name;
  const json& dt = e["dtype"];
  ZINC_CHECK(dt.is_string() && quant::parse_dtype(dt.get<std::string>(), &t.dtype),
             path << ": tensor " << name << " has unknown dtype " << dt.dump()
                  << " (known: F32, F16, BF16, I64, I32, I8, U8, BOOL)");

  const json& shape = e["shape"];
  ZINC_CHECK(shape.is_array(),
             path << ": tensor " << name << " has a shape that is not a list: " << shape.dump());
  uint64_t numel = 1;
  bool overflow = false;
  for (const json& d : shape) {
    uint64_t dim = 0;
    ZINC_CHECK(get_u64(d, &dim) && dim <= static_cast<uint64_t>(INT64_MAX),
               path << ": tensor " << name << " has an invalid shape " << shape.dump()
                    << " (dimensions must be non-negative integers)");
    t.shape.push_back(static_cast<int64_t>(dim));
    overflow = overflow || __builtin_mul_overflow(numel, dim, &numel);
  }
  uint64_t expected = 0;
  overflow = overflow || __builtin_mul_overflow(numel, quant::dtype_size(t.dtype), &expected);
  ZINC_CHECK(!overflow, path << ": tensor " << name << " shape " << shape.dump()
                             << " is too large (size overflows 64 bits)");

  const json& off = e["data_offsets"];
  uint64_t begin = 0, end = 0;
  ZINC_CHECK(off.is_array() && off.size() == 2 && get_u64(off[0], &begin) &&
                 get_u64(off[1], &end) && begin <= end,
             path << ": tensor " << name << " has invalid data_offsets " << off.dump()
                  << " (expected [begin, end] with 0 <= begin <= end)");
  ZINC_CHECK(end - begin == expected,
             path << ": tensor " << name << " has data_offsets " << off.dump() << " spanning "
                  << (end - begin) << " bytes, but " << quant::dtype_name(t.dtype) << " "
                  << shape_to_string(t.shape) << " needs " << expected << " bytes");
  ZINC_CHECK(end <= data_bytes, path << ": tensor " << name << " has data_offsets " << off.dump()
                                     << " outside the data region of " << data_bytes
                                     << " bytes (truncated file?)");
  t.data = data + begin;
  t.bytes = static_cast<size_t>(expected);
  return t;
}

// Whether a shard name of an index stays inside the model directory: a relative path with
// no ".." component. transformers joins the name to the directory unchecked, so an index
// could have any readable file taken for a shard. (A shard that is a symlink may point
// anywhere: the Hugging Face cache links every file to its blob store.)
bool inside_directory(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  for (size_t start = 0; start <= name.size();) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    if (name.compare(start, end - start, "..") == 0) return false;
    start = end + 1;
  }
  return true;
}

// Levenshtein distance, for "did you mean" hints on a missing tensor.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

size_t TensorView::numel() const {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

SafetensorsHeader parse_safetensors(const std::string& path, const void* file, size_t size) {
  const uint64_t file_bytes = size;
  ZINC_CHECK(file_bytes >= 8, path << ": file is " << file_bytes
                                   << " bytes, too small for a safetensors header "
                                      "(8-byte length + JSON); truncated or empty file?");
  const auto* bytes = static_cast<const unsigned char*>(file);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = (header_bytes << 8) | bytes[i];  // little-endian
  ZINC_CHECK(header_bytes <= kMaxHeaderBytes,
             path << ": header length " << header_bytes << " exceeds the limit of "
                  << kMaxHeaderBytes << " bytes (not a safetensors file, or corrupt?)");
  ZINC_CHECK(8 + header_bytes <= file_bytes, path << ": header length " << header_bytes
                                                  << " exceeds the file size " << file_bytes
                                                  << " (truncated file?)");

  const char* header = reinterpret_cast<const char*>(bytes + 8);
  json j;
  try {
    j = json::parse(header, header + header_bytes);
  } catch (const json::exception& e) {
    ZINC_THROW(path << ": header is not valid JSON: " << e.what());
  }
  ZINC_CHECK(j.is_object(), path << ": header is not a JSON object");

  SafetensorsHeader out;
  const char* data = header + header_bytes;
  const uint64_t data_bytes = file_bytes - 8 - header_bytes;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") {
      ZINC_CHECK(it->is_object() || it->is_null(),
                 path << ": __metadata__ is not an object of strings: " << it->dump());
      if (it->is_null()) continue;
      for (auto m = it->begin(); m != it->end(); ++m) {
        ZINC_CHECK(m->is_string(), path << ": __metadata__ value for \"" << m.key()
                                        << "\" is not a string: " << m->dump());
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    out.tensors.emplace(it.key(), parse_entry(path, it.key(), *it, data, data_bytes));
  }

  // No two non-empty tensors may share bytes: sort by start, compare neighbours.
  std::vector<const TensorView*> by_start;
  for (const auto& kv : out.tensors)
    if (kv.second.bytes > 0) by_start.push_back(&kv.second);
  std::sort(by_start.begin(), by_start.end(),
            [](const TensorView* a, const TensorView* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_start.size(); ++i) {
    const TensorView* a = by_start[i - 1];
    const TensorView* b = by_start[i];
    const char* a_end = static_cast<const char*>(a->data) + a->bytes;
    ZINC_CHECK(static_cast<const char*>(b->data) >= a_end,
               path << ": tensors " << a->name << " and " << b->name
                    << " overlap in the data region (corrupt header?)");
  }
  return out;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;

  FdGuard fd(open_regular_file(path, "a .safetensors file"));  // a FIFO is refused, not waited on
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    const int err = errno;
    ZINC_THROW(path << ": fstat() failed: " << errno_text(err));
  }
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  ZINC_CHECK(file_bytes >= 8, path << ": file is " << file_bytes
                                   << " bytes, too small for a safetensors header "
                                      "(8-byte length + JSON); truncated or empty file?");

  void* map = ::mmap(nullptr, static_cast<size_t>(file_bytes), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map == MAP_FAILED) {
    const int err = errno;
    ZINC_THROW(path << ": mmap of " << file_bytes << " bytes failed: " << errno_text(err));
  }
  f->map_ = map;  // from here on the destructor unmaps, also when validation throws
  f->map_bytes_ = static_cast<size_t>(file_bytes);
  SafetensorsHeader h = parse_safetensors(path, map, f->map_bytes_);
  f->tensors_ = std::move(h.tensors);
  f->metadata_ = std::move(h.metadata);
  for (auto& kv : f->tensors_) kv.second.file = &f->path_;
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ && ::munmap(map_, map_bytes_) != 0)
    log_error(path_ + ": munmap() failed: " + errno_text(errno));
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, std::string>> parse_safetensors_index(const std::string& index_path,
                                                                         const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    ZINC_THROW(index_path << ": not valid JSON: " << e.what());
  }
  ZINC_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
             index_path << ": has no \"weight_map\" object");
  const json& weight_map = j["weight_map"];
  ZINC_CHECK(!weight_map.empty(), index_path << ": \"weight_map\" is empty");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(weight_map.size());
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    ZINC_CHECK(it->is_string(), index_path << ": weight_map entry for " << it.key()
                                           << " is not a file name: " << it->dump());
    const std::string shard = it->get<std::string>();
    ZINC_CHECK(inside_directory(shard), index_path << ": weight_map entry for " << it.key() << " names shard \""
                                                   << shard << "\", which is not inside the model directory: shard "
                                                      "names are relative paths without '..'");
    out.emplace_back(it.key(), shard);
  }
  return out;
}

Checkpoint Checkpoint::open_dir(const std::string& dir) {
  Checkpoint ck;
  ck.dir_ = dir;
  bool is_dir = false;
  ZINC_CHECK(path_exists(dir, &is_dir), dir << ": model directory does not exist");
  ZINC_CHECK(is_dir, dir << ": is not a directory (expected a Hugging Face model directory)");

  // Same preference as transformers: the single file first, then the sharded index.
  const std::string single = join_path(dir, "model.safetensors");
  const std::string index_path = join_path(dir, "model.safetensors.index.json");
  if (path_exists(single)) {
    ck.files_.push_back(SafetensorsFile::open(single));
    for (const auto& kv : ck.files_.back()->tensors()) ck.index_[kv.first] = &kv.second;
    return ck;
  }
  ZINC_CHECK(path_exists(index_path),
             dir << ": no model.safetensors or model.safetensors.index.json found");

  const std::vector<std::pair<std::string, std::string>> weight_map =
      parse_safetensors_index(index_path, read_regular_file(index_path, "a JSON index of the shards"));

  // Open every shard once, in a stable order.
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  for (const auto& [tensor, shard] : weight_map) {
    if (shards.count(shard)) continue;
    const std::string shard_path = join_path(dir, shard);
    ZINC_CHECK(path_exists(shard_path), index_path << ": shard " << shard << " (holding tensor "
                                                   << tensor << ") is missing: " << shard_path
                                                   << " does not exist");
    shards[shard] = SafetensorsFile::open(shard_path);
    ck.files_.push_back(shards[shard]);
  }
  for (const auto& [tensor, shard] : weight_map) {
    const SafetensorsFile& file = *shards.at(shard);
    const TensorView* t = file.find(tensor);
    ZINC_CHECK(t, index_path << ": tensor " << tensor << " is listed in shard " << shard << " but "
                             << file.path() << " does not contain it (incomplete download or stale index?)");
    ck.index_[tensor] = t;
  }
  // Tensors a shard holds but the index does not list are still loadable (transformers
  // loads whole shards); the index's choice wins where a name is in more than one shard.
  for (const auto& f : ck.files_)
    for (const auto& kv : f->tensors()) ck.index_.emplace(kv.first, &kv.second);
  return ck;
}

const TensorView* Checkpoint::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(const std::string& name,
                                  const std::vector<int64_t>& shape) const {
  const TensorView* t = find(name);
  if (!t) {
    std::vector<std::pair<size_t, std::string>> near;
    for (const auto& kv : index_) near.emplace_back(edit_distance(name, kv.first), kv.first);
    const size_t k = std::min<size_t>(3, near.size());
    std::partial_sort(near.begin(), near.begin() + k, near.end());
    std::string hint;
    for (size_t i = 0; i < k; ++i) hint += (i ? ", " : "") + near[i].second;
    ZINC_THROW(dir_ << ": tensor " << name << " is missing ("
                    << (hint.empty() ? "the checkpoint has no tensors" : "similar names: " + hint)
                    << ")");
  }
  ZINC_CHECK(t->dtype == quant::DType::F32 || t->dtype == quant::DType::F16 ||
                 t->dtype == quant::DType::BF16,
             *t->file << ": tensor " << name << " has dtype " << quant::dtype_name(t->dtype)
                      << ", expected a float type (F32, F16 or BF16)");
  ZINC_CHECK(t->shape == shape, *t->file << ": tensor " << name << " has shape "
                                         << shape_to_string(t->shape) << ", expected "
                                         << shape_to_string(shape));
  return *t;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

size_t Checkpoint::total_bytes() const {
  size_t total = 0;
  for (const auto& kv : index_) total += kv.second->bytes;
  return total;
}

}  // namespace zinc::partition
