// manifest.json: writing, and reading with full validation (every problem is a UserError that
// names the file and says to re-run mnist_prepare), plus shard file naming.
#include "data_pipeline/manifest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "data_pipeline/staged_dir.h"

namespace mnist_dist::data {

std::string shard_file_name(const std::string& split, int index, int count) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.h5", index, count);
  return split + buf;
}

int shard_count_for(size_t samples, int requested) {
  return static_cast<int>(std::min<size_t>(samples, static_cast<size_t>(std::max(requested, 0))));
}

void write_manifest(const Manifest& m, const std::string& path) {
  using nlohmann::json;
  json j;
  j["format_version"] = m.format_version;
  j["created_by"] = m.created_by;
  j["source_files"] = json::array();
  for (const SourceFile& s : m.sources) {
    j["source_files"].push_back({{"role", s.role}, {"name", s.name}, {"sha256", s.sha256}});
  }
  j["val_fraction"] = m.val_fraction;
  j["split_seed"] = m.split_seed;
  j["rows"] = m.rows;
  j["cols"] = m.cols;
  j["num_classes"] = m.num_classes;
  json splits = json::object();
  for (const auto& [name, s] : m.splits) {
    json shards = json::array();
    for (const ShardEntry& e : s.shards) {
      shards.push_back({{"file", e.file}, {"first_sample", e.first_sample}, {"count", e.count},
                        {"sha256", e.sha256}, {"file_sha256", e.file_sha256}});
    }
    splits[name] = {{"count", s.count}, {"shards_requested", s.shards_requested},
                    {"shard_count", s.shards.size()}, {"shards", shards}};
  }
  j["splits"] = splits;

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << j.dump(2) << '\n';
  out.close();
  if (!out) throw UserError(path + ": cannot write the manifest (disk full or no permission?)");
  fsync_path(path);
}

namespace {
using nlohmann::json;

// Typed field access: a missing or mistyped field is a UserError naming the manifest.
class Fields {
 public:
  explicit Fields(std::string where) : where_(std::move(where)) {}

  const json& at(const json& obj, const char* key, json::value_t kind, const char* what) const {
    const auto it = obj.find(key);
    const bool ok = it != obj.end() &&
                    (kind == json::value_t::number_float ? it->is_number()
                     : kind == json::value_t::number_unsigned ? it->is_number_unsigned()
                                                              : it->type() == kind);
    if (!ok) bad(std::string("field '") + key + "' is missing or is not " + what);
    return *it;
  }
  uint64_t u64(const json& o, const char* k) const {
    return at(o, k, json::value_t::number_unsigned, "a non-negative integer").get<uint64_t>();
  }
  std::string str(const json& o, const char* k) const {
    return at(o, k, json::value_t::string, "a string").get<std::string>();
  }
  [[noreturn]] void bad(const std::string& problem) const {
    throw UserError(where_ + ": " + problem + "; re-run mnist_prepare with --overwrite");
  }

 private:
  std::string where_;
};

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}
}  // namespace

Manifest read_manifest(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) {
    throw UserError(data_dir + ": no such data directory; run mnist_prepare --idx-dir DIR --out " +
                    data_dir + " first");
  }
  const std::string path = (fs::path(data_dir) / kManifestFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UserError(data_dir + " has no " + kManifestFile + ": run mnist_prepare --idx-dir DIR --out " +
                    data_dir + " first");
  }
  std::stringstream text;
  text << in.rdbuf();
  json j;
  try {
    j = json::parse(text.str());
  } catch (const json::exception& e) {
    throw UserError(path + " is not valid JSON (" + e.what() +
                    "); re-run mnist_prepare with --overwrite");
  }
  const Fields f(path);
  if (!j.is_object()) f.bad("the top level is not a JSON object");

  Manifest m;
  m.format_version = static_cast<int>(f.u64(j, "format_version"));
  if (m.format_version != kFormatVersion) {
    f.bad("format_version is " + std::to_string(m.format_version) + " but this build reads " +
          std::to_string(kFormatVersion));
  }
  m.created_by = f.str(j, "created_by");
  for (const json& s : f.at(j, "source_files", json::value_t::array, "an array")) {
    m.sources.push_back({f.str(s, "role"), f.str(s, "name"), f.str(s, "sha256")});
  }
  m.val_fraction = f.at(j, "val_fraction", json::value_t::number_float, "a number").get<double>();
  m.split_seed = f.u64(j, "split_seed");
  const uint64_t rows = f.u64(j, "rows"), cols = f.u64(j, "cols"), classes = f.u64(j, "num_classes");
  if (rows == 0 || cols == 0 || rows > 65535 || cols > 65535) f.bad("rows/cols are out of range");
  if (classes == 0 || classes > 256) f.bad("num_classes is out of range (1..256)");
  m.rows = static_cast<uint32_t>(rows);
  m.cols = static_cast<uint32_t>(cols);
  m.num_classes = static_cast<int>(classes);

  const json& splits = f.at(j, "splits", json::value_t::object, "an object");
  for (const char* name : kSplitNames) {
    const json& sj = f.at(splits, name, json::value_t::object, "an object");
    SplitEntry s;
    s.count = f.u64(sj, "count");
    s.shards_requested = static_cast<int>(std::min<uint64_t>(f.u64(sj, "shards_requested"), kMaxShards));
    uint64_t next = 0;
    for (const json& ej : f.at(sj, "shards", json::value_t::array, "an array")) {
      ShardEntry e{f.str(ej, "file"), f.u64(ej, "first_sample"), f.u64(ej, "count"),
                   f.str(ej, "sha256"), f.str(ej, "file_sha256")};
      const std::string where = std::string("split '") + name + "', shard " + e.file + ": ";
      if (e.file.empty() || e.file.find('/') != std::string::npos || e.file == "." || e.file == "..") {
        f.bad(where + "the file name must be a plain name inside the data directory");
      }
      if (e.count == 0) f.bad(where + "count is 0");
      if (e.first_sample != next) {
        f.bad(where + "first_sample is " + std::to_string(e.first_sample) + ", expected " +
              std::to_string(next) + " (shards must be contiguous)");
      }
      if (!is_sha256_hex(e.sha256)) f.bad(where + "sha256 is not 64 lower-case hex digits");
      if (!is_sha256_hex(e.file_sha256)) f.bad(where + "file_sha256 is not 64 lower-case hex digits");
      next += e.count;
      s.shards.push_back(std::move(e));
    }
    if (next != s.count) {
      f.bad(std::string("split '") + name + "': its shards hold " + std::to_string(next) +
            " samples but its count is " + std::to_string(s.count));
    }
    m.splits[name] = std::move(s);
  }
  return m;
}

}  // namespace mnist_dist::data
