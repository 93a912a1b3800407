// Reading tokenizer files with errors that name the file and the field.
//
// `where` is the file being read plus the path inside it ("tokenizer.json: pre_tokenizer");
// every message starts with it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "runtime/common/error.hpp"

namespace zinc::runtime::tok {

using nlohmann::json;

// obj[key]; throws when obj is not an object or key is missing.
inline const json& member(const json& obj, const char* key, const std::string& where) {
  ZINC_CHECK(obj.is_object(), where << ": expected a JSON object, found " << obj.type_name());
  auto it = obj.find(key);
  ZINC_CHECK(it != obj.end(), where << ": missing field '" << key << "'");
  return *it;
}

// obj[key] or nullptr when absent (obj must be an object).
inline const json* optional_member(const json& obj, const char* key, const std::string& where) {
  ZINC_CHECK(obj.is_object(), where << ": expected a JSON object, found " << obj.type_name());
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

inline std::string string_member(const json& obj, const char* key, const std::string& where) {
  const json& v = member(obj, key, where);
  ZINC_CHECK(v.is_string(),
             where << ": field '" << key << "' must be a string, found " << v.type_name());
  return v.get<std::string>();
}

// A boolean field that may be absent or null (then `fallback`).
inline bool bool_member(const json& obj, const char* key, bool fallback, const std::string& where) {
  const json* v = optional_member(obj, key, where);
  if (!v || v->is_null()) return fallback;
  ZINC_CHECK(v->is_boolean(),
             where << ": field '" << key << "' must be true or false, found " << v->type_name());
  return v->get<bool>();
}

inline int64_t int_member(const json& obj, const char* key, const std::string& where) {
  const json& v = member(obj, key, where);
  ZINC_CHECK(v.is_number_integer(),
             where << ": field '" << key << "' must be an integer, found " << v.type_name());
  return v.get<int64_t>();
}

// The "type" of a component object.
inline std::string type_of(const json& obj, const std::string& where) {
  return string_member(obj, "type", where);
}

// A Replace pattern {"String": "..."}; {"Regex": ...} is refused.
inline std::string string_pattern(const json& obj, const std::string& where) {
  const json& p = member(obj, "pattern", where);
  if (const json* re = optional_member(p, "Regex", where)) {
    (void)re;
    ZINC_THROW(where << ": Replace with a Regex pattern is not supported (only String patterns)");
  }
  return string_member(p, "String", where);
}

}  // namespace zinc::runtime::tok
