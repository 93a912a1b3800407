// Reading Hugging Face safetensors checkpoints in place (mmap, no full copy).
//
// File format: u64 little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the data region; offsets are relative to the start of the data region.
// open() validates everything before returning, so later code can trust the views:
// header length within the file, valid JSON, known dtype, non-negative shape,
// (e - b) == numel * dtype size, [b, e) inside the data region, no two tensors overlapping.
// Every error names the file and what is wrong.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "quant/dtype.hpp"

namespace zinc::partition {

// A tensor inside a mapped file; valid while its SafetensorsFile / Checkpoint lives.
struct TensorView {
  std::string name;
  quant::DType dtype = quant::DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t bytes = 0;
  const std::string* file = nullptr;  // path of the file it lives in
  size_t numel() const;
};

std::string shape_to_string(const std::vector<int64_t>& shape);  // "[320, 64]"

// What a safetensors file holds, parsed from its bytes in memory (bytes[0, size): the whole
// file) and validated as SafetensorsFile::open does; the views point into `bytes` (their
// `file` is null). `path` names the file in errors. Exposed for tests and fuzzing.
struct SafetensorsHeader {
  std::map<std::string, TensorView> tensors;
  std::map<std::string, std::string> metadata;
};
SafetensorsHeader parse_safetensors(const std::string& path, const void* bytes, size_t size);

// model.safetensors.index.json's text: its weight_map as (tensor, shard) pairs in tensor
// name order, validated (an object of file names, not empty, every shard name a relative
// path inside the model directory); `index_path` names the file in errors.
std::vector<std::pair<std::string, std::string>> parse_safetensors_index(const std::string& index_path,
                                                                         const std::string& text);

class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorView* find(const std::string& name) const;  // nullptr if absent

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A Hugging Face model directory's weights: model.safetensors, or the shards listed by
// model.safetensors.index.json ("weight_map": {tensor: file}). Every shard is opened and
// every tensor the index names is checked to be in its shard at open time.
class Checkpoint {
 public:
  static Checkpoint open_dir(const std::string& dir);

  const std::string& dir() const { return dir_; }
  bool has(const std::string& name) const { return find(name) != nullptr; }
  const TensorView* find(const std::string& name) const;
  // The tensor, checked: present (else "DIR: tensor NAME is missing (...)"), of a float
  // dtype (F32/F16/BF16), with exactly `shape` (else the error shows both shapes).
  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) const;
  std::vector<std::string> names() const;
  size_t total_bytes() const;

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

}  // namespace zinc::partition
