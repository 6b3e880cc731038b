// Hostile-input tests' scene: the good inputs every case starts from (World), file surgery,
// snapshots of what must survive a failed run, a case's folder and command (Scene), and the
// case table's type. The table: hostile_cases_inputs.cpp (IDX, shards, manifest) and
// hostile_cases_runs.cpp (checkpoints, models, flag values, outputs).
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data_pipeline/hdf5_util.h"
#include "data_pipeline/sha256.h"
#include "idx_writer.h"
#include "run_command.h"

namespace hostile {

namespace fs = std::filesystem;
namespace h5 = mnist_dist::data::h5;
using mnist_dist::testing::lines_with;
using mnist_dist::testing::run_command;

inline const std::string kDist = MNIST_DIST_BIN;
inline const std::string kPrepare = MNIST_PREPARE_BIN;
inline const std::string kMpiexec = MPIEXEC_BIN;  // empty when built without MPI
inline const char* const kMpiEnv =
    "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
    "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 ";
inline constexpr int kHangSeconds = 120;  // a case still running after this is a hang

// Printed by a crash, an internal error, a sanitizer, HDF5's own error stack, or CLI11 2.1's
// PositiveNumber ("Value 0 not in range 0.000000 to 1797693134862315…"): never acceptable.
inline const char* const kForbidden[] = {"fatal",          "internal error", "terminate called",
                                  "Sanitizer",      "HDF5-DIAG",      "Segmentation fault",
                                  "core dumped",    "Aborted",        "1797693134862315"};

// ---- the good inputs every case starts from (built lazily, once per test process) --------
struct World {
  fs::path root;
  World() {
    root = fs::temp_directory_path() / ("md_hostile_" + std::to_string(getpid()));
    fs::remove_all(root);
    fs::create_directories(root);
  }
  ~World() { fs::remove_all(root); }

  // 600 training and 100 test images; prepared: train 420, val 180, test 100, 2 shards each.
  const fs::path& idx() {
    if (idx_.empty()) {
      idx_ = root / "idx";
      fs::create_directories(idx_);
      mnist_dist::testing::write_block_dataset(idx_.string(), 600, 100);
    }
    return idx_;
  }
  const fs::path& data() {
    if (data_.empty()) {
      const fs::path out = root / "h5";
      const auto r = run_command(kPrepare + " --idx-dir " + idx().string() + " --out " + out.string() +
                                 " --shards 2");
      if (r.exit_code != 0) throw std::runtime_error("mnist_prepare failed:\n" + r.output);
      data_ = out;
    }
    return data_;
  }
  // A checkpoint directory of `model` after 2 steps (ckpt-0000000001.h5, ckpt-0000000002.h5)
  // and the model saved at the end (model-<model>.h5).
  const fs::path& checkpoints(const std::string& model) {
    fs::path& dir = ck_[model];
    if (dir.empty()) {
      const fs::path d = root / ("ck-" + model);
      const auto r = run_command("cd " + root.string() + " && " + kDist + " --device cpu --data " + data().string() +
                                 " --model " + model + " --max-steps 2 --checkpoint-every 1 --threads 1 -q" +
                                 " --run-dir run-" + model + " --checkpoint-dir " + d.string() +
                                 " --save " + (root / ("model-" + model + ".h5")).string());
      if (r.exit_code != 0) throw std::runtime_error("training for the checkpoints failed:\n" + r.output);
      dir = d;
    }
    return dir;
  }
  fs::path saved_model(const std::string& model) { return checkpoints(model).parent_path() / ("model-" + model + ".h5"); }

 private:
  fs::path idx_, data_;
  std::map<std::string, fs::path> ck_;
};

inline World& world() {
  static World w;
  return w;
}

// ---- small file surgery ------------------------------------------------------------------
inline std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
inline void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
inline void poke(const fs::path& p, size_t offset, const std::string& bytes) {
  std::string b = read_bytes(p);
  b.replace(offset, bytes.size(), bytes);
  write_bytes(p, b);
}
inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
inline void gzip_file(const fs::path& src, const fs::path& dst) {
  const std::string b = read_bytes(src);
  gzFile g = gzopen(dst.c_str(), "wb");
  gzwrite(g, b.data(), static_cast<unsigned>(b.size()));
  gzclose(g);
}

// A shard of the prepared test data set (2 shards per split).
inline fs::path shard(const fs::path& data, const std::string& split, int i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%05d-of-00002.h5", split.c_str(), i);
  return data / buf;
}

// Opens a shard read-write for a `fn(file)` edit.
inline void edit_h5(const fs::path& p, const std::function<void(hid_t)>& fn) {
  h5::Handle f = h5::open_file(p.string(), true);
  fn(f.get());
  MD_H5(H5Fflush(f.get(), H5F_SCOPE_GLOBAL));
}
// Replaces dataset `name` with a zero-filled one of another type and shape.
inline void replace_dataset(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims) {
  MD_H5(H5Ldelete(file, name, H5P_DEFAULT));
  h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
  h5::Handle ds = h5::dataset(MD_H5(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  size_t n = H5Tget_size(type);
  for (hsize_t d : dims) n *= d;
  std::vector<char> zeros(n, 0);
  MD_H5(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()));
}
// Overwrites one byte of a uint8 dataset at flat element `index`.
inline void set_byte(hid_t file, const char* name, hsize_t index, uint8_t value) {
  h5::Handle ds = h5::dataset(MD_H5(H5Dopen2(file, name, H5P_DEFAULT)));
  h5::Handle space = h5::dataspace(MD_H5(H5Dget_space(ds.get())));
  const int rank = MD_H5(H5Sget_simple_extent_ndims(space.get()));
  std::vector<hsize_t> dims(static_cast<size_t>(rank)), start(static_cast<size_t>(rank), 0),
      count(static_cast<size_t>(rank), 1);
  MD_H5(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr));
  for (int d = rank - 1; d >= 0; --d) {
    start[static_cast<size_t>(d)] = index % dims[static_cast<size_t>(d)];
    index /= dims[static_cast<size_t>(d)];
  }
  MD_H5(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
  const hsize_t one = 1;
  h5::Handle mem = h5::dataspace(MD_H5(H5Screate_simple(1, &one, nullptr)));
  MD_H5(H5Dwrite(ds.get(), H5T_NATIVE_UINT8, mem.get(), space.get(), H5P_DEFAULT, &value));
}
// Overwrites the nth (0-based) occurrence of an HDF5 metadata signature so that HDF5 fails to
// read that structure: "GCOL" the global heap holding variable-length strings (the string
// attributes), "TREE" a B-tree node (first: the root group's links, second: the chunk index of
// a shard's images).
inline void break_signature(const fs::path& p, const std::string& sig, int nth) {
  std::string b = read_bytes(p);
  size_t at = b.find(sig);
  for (int i = 0; i < nth && at != std::string::npos; ++i) at = b.find(sig, at + 1);
  if (at == std::string::npos) throw std::runtime_error(p.string() + " has no signature " + sig);
  b.replace(at, sig.size(), "XXXX");
  write_bytes(p, b);
}
inline void edit_json(const fs::path& p, const std::function<void(nlohmann::json&)>& fn) {
  nlohmann::json j = nlohmann::json::parse(read_bytes(p));
  fn(j);
  write_bytes(p, j.dump(2));
}

// Rewrites the manifest's SHA-256 of a shard to match its (edited) contents, as a writer with a
// bug would have: the shard then passes the checksum and must be caught by a later check.
// Records a shard's new file SHA-256 in the manifest, so that the checks behind the file-level
// one (structure, labels, content checksum) are reached.
inline void refile(const fs::path& data, const std::string& split, int index) {
  const std::string sum = mnist_dist::data::sha256_file(shard(data, split, index).string());
  edit_json(data / "manifest.json", [&](nlohmann::json& j) { j["splits"][split]["shards"][index]["file_sha256"] = sum; });
}

inline void reseal(const fs::path& data, const std::string& split, int index) {
  const fs::path file = shard(data, split, index);
  std::string sum;
  {
    h5::Handle f = h5::open_file(file.string());
    mnist_dist::data::Sha256 sha;
    for (const char* name : {"images", "labels"}) {
      h5::Handle ds = h5::dataset(MD_H5(H5Dopen2(f.get(), name, H5P_DEFAULT)));
      h5::Handle space = h5::dataspace(MD_H5(H5Dget_space(ds.get())));
      std::vector<uint8_t> bytes(static_cast<size_t>(MD_H5(H5Sget_simple_extent_npoints(space.get()))));
      MD_H5(H5Dread(ds.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()));
      sha.update(bytes.data(), bytes.size());
    }
    sum = sha.hex_digest();
  }
  edit_json(data / "manifest.json", [&](nlohmann::json& j) { j["splits"][split]["shards"][index]["sha256"] = sum; });
  refile(data, split, index);
}

// Rewrites the SHA-256 sidecar of a (damaged) checkpoint or model to match its bytes, so that
// the checks behind the file-level one (HDF5 structure, contents, FNV checksum) are reached.
inline void resign(const fs::path& file) {
  write_bytes(fs::path(file.string() + ".sha256"),
              mnist_dist::data::sha256_file(file.string()) + "  " + file.filename().string() + "\n");
}
// Flips one bit of the byte in the middle of a file.
inline void flip_middle_byte(const fs::path& p) {
  const size_t mid = static_cast<size_t>(fs::file_size(p) / 2);
  poke(p, mid, std::string(1, static_cast<char>(read_bytes(p)[mid] ^ 0x40)));
}

// ---- snapshots of what must survive a failed run -----------------------------------------
// Every entry under the guarded paths: files by size, mtime (ns) and content; directories by
// existence (their mtime may change when a staging folder comes and goes next to them).
using Snapshot = std::map<std::string, std::string>;

inline void snap_one(const fs::path& p, Snapshot& s) {
  struct stat st {};
  if (lstat(p.c_str(), &st) != 0) {
    s[p.string()] = "absent";
    return;
  }
  if (S_ISDIR(st.st_mode)) {
    s[p.string()] = "dir";
    for (const auto& e : fs::directory_iterator(p)) snap_one(e.path(), s);
    return;
  }
  const std::string bytes = read_bytes(p);
  s[p.string()] = "file size " + std::to_string(st.st_size) + " mtime " + std::to_string(st.st_mtim.tv_sec) +
                  "." + std::to_string(st.st_mtim.tv_nsec) + " fnv " +
                  std::to_string(std::hash<std::string>{}(bytes));
}
inline Snapshot snapshot(const std::vector<fs::path>& guarded) {
  Snapshot s;
  for (const fs::path& p : guarded) snap_one(p, s);
  return s;
}
inline std::string diff(const Snapshot& a, const Snapshot& b) {
  std::string out;
  for (const auto& [k, v] : a) {
    const auto it = b.find(k);
    if (it == b.end()) out += "  removed: " + k + "\n";
    else if (it->second != v) out += "  changed: " + k + " (" + v + " -> " + it->second + ")\n";
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) out += "  new: " + k + " (" + v + ")\n";
  return out;
}

// ---- a case: its folder, its guarded outputs, its command ------------------------------
class Scene {
 public:
  explicit Scene(const std::string& name) : dir_(world().root / ("case-" + name)) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  const fs::path& dir() const { return dir_; }
  const std::vector<fs::path>& guarded() const { return guarded_; }
  void guard(const fs::path& p) { guarded_.push_back(p); }

  // Copies of the good inputs inside the case folder (the case then damages them).
  fs::path idx() { return copy(world().idx(), "idx"); }
  fs::path data() { return copy(world().data(), "data"); }
  fs::path checkpoints(const std::string& model = "seed") { return copy(world().checkpoints(model), "ck-" + model); }

  // An existing prepared data set used as --out: a failed mnist_prepare must leave it alone.
  fs::path prepared_out() {
    const fs::path out = copy(world().data(), "prepared");
    guard(dir_);  // and leave nothing beside it (a staging folder, a temporary file)
    return out;
  }
  // An earlier model at the --save path: a failed run must not replace it.
  fs::path previous_model() {
    const fs::path p = dir_ / "model.h5";
    write_bytes(p, "an earlier model: these bytes must survive a failed run\n");
    guard(p);
    return p;
  }

  // mnist_dist on this case's data (a fresh copy unless `data` is given), saving over an
  // earlier model, with a run folder inside the case.
  std::string dist(const std::string& args, const fs::path& data = {}) {
    const fs::path d = data.empty() ? this->data() : data;
    guard(d);
    return kDist + " --device cpu --data " + d.string() + " --threads 1 --max-steps 3 --run-dir " + (dir_ / "run").string() +
           " --save " + previous_model().string() + " " + args;
  }
  std::string prepare(const fs::path& idx, const std::string& args = "") {
    return kPrepare + " --idx-dir " + idx.string() + " --out " + prepared_out().string() + " --overwrite " + args;
  }

 private:
  fs::path copy(const fs::path& from, const std::string& name) {
    const fs::path to = dir_ / name;
    if (!fs::exists(to)) fs::copy(from, to, fs::copy_options::recursive);
    return to;
  }
  fs::path dir_;
  std::vector<fs::path> guarded_;
};

struct Case {
  std::string name;
  std::function<std::string(Scene&)> command;  // sets the scene up, returns the command line
  std::vector<std::string> expect;             // phrases of the one error line
  std::vector<std::string> forbid = {};        // phrases that make the message misleading
  int ranks = 0;                               // > 0: run under mpiexec -n ranks
};
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

inline const char* const kTrainImages = "train-images-idx3-ubyte";
inline const char* const kTrainLabels = "train-labels-idx1-ubyte";
inline const char* const kTestImages = "t10k-images-idx3-ubyte";
inline const char* const kTestLabels = "t10k-labels-idx1-ubyte";

// A CLI value that must be rejected with a message naming the flag and the value.
inline Case bad_value(const std::string& name, const std::string& flag, const std::string& value) {
  const bool numeric = !value.empty() && (std::isdigit(static_cast<unsigned char>(value.back())) != 0);
  return {name, [=](Scene& s) { return s.dist(flag + " " + value); },
          numeric ? std::vector<std::string>{flag, value} : std::vector<std::string>{flag, "not a number"}};
}

// The case table, in two parts.
void add_input_cases(std::vector<Case>& c);
void add_run_cases(std::vector<Case>& c);

}  // namespace hostile
