// Hostile inputs, table-driven: each bad IDX file, shard, manifest, checkpoint or flag value is
// given to the real executables (mnist_prepare, mnist_dist), which must exit 2 with one error
// line naming the problem, never hang, and leave what was written before byte- and mtime-intact.
// Checkpoints and models carry a SHA-256 sidecar checked before HDF5 opens them; cases that
// test the checks behind it re-sign the damaged file (resign()) so that HDF5 gets to see it.
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

namespace fs = std::filesystem;
namespace h5 = mnist_dist::data::h5;
using mnist_dist::testing::lines_with;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
const std::string kPrepare = MNIST_PREPARE_BIN;
const std::string kMpiexec = MPIEXEC_BIN;  // empty when built without MPI
const char* kMpiEnv =
    "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
    "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 ";
constexpr int kHangSeconds = 120;  // a case still running after this is a hang

// Printed by a crash, an internal error, a sanitizer, HDF5's own error stack, or CLI11 2.1's
// PositiveNumber ("Value 0 not in range 0.000000 to 1797693134862315…"): never acceptable.
const char* const kForbidden[] = {"fatal",          "internal error", "terminate called",
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
      const auto r = run_command("cd " + root.string() + " && " + kDist + " --data " + data().string() +
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

World& world() {
  static World w;
  return w;
}

// ---- small file surgery ------------------------------------------------------------------
std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
void poke(const fs::path& p, size_t offset, const std::string& bytes) {
  std::string b = read_bytes(p);
  b.replace(offset, bytes.size(), bytes);
  write_bytes(p, b);
}
std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
void gzip_file(const fs::path& src, const fs::path& dst) {
  const std::string b = read_bytes(src);
  gzFile g = gzopen(dst.c_str(), "wb");
  gzwrite(g, b.data(), static_cast<unsigned>(b.size()));
  gzclose(g);
}

// A shard of the prepared test data set (2 shards per split).
fs::path shard(const fs::path& data, const std::string& split, int i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%05d-of-00002.h5", split.c_str(), i);
  return data / buf;
}

// Opens a shard read-write for a `fn(file)` edit.
void edit_h5(const fs::path& p, const std::function<void(hid_t)>& fn) {
  h5::Handle f = h5::open_file(p.string(), true);
  fn(f.get());
  MD_H5(H5Fflush(f.get(), H5F_SCOPE_GLOBAL));
}
// Replaces dataset `name` with a zero-filled one of another type and shape.
void replace_dataset(hid_t file, const char* name, hid_t type, const std::vector<hsize_t>& dims) {
  MD_H5(H5Ldelete(file, name, H5P_DEFAULT));
  h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
  h5::Handle ds = h5::dataset(MD_H5(H5Dcreate2(file, name, type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  size_t n = H5Tget_size(type);
  for (hsize_t d : dims) n *= d;
  std::vector<char> zeros(n, 0);
  MD_H5(H5Dwrite(ds.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()));
}
// Overwrites one byte of a uint8 dataset at flat element `index`.
void set_byte(hid_t file, const char* name, hsize_t index, uint8_t value) {
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
void break_signature(const fs::path& p, const std::string& sig, int nth) {
  std::string b = read_bytes(p);
  size_t at = b.find(sig);
  for (int i = 0; i < nth && at != std::string::npos; ++i) at = b.find(sig, at + 1);
  if (at == std::string::npos) throw std::runtime_error(p.string() + " has no signature " + sig);
  b.replace(at, sig.size(), "XXXX");
  write_bytes(p, b);
}
void edit_json(const fs::path& p, const std::function<void(nlohmann::json&)>& fn) {
  nlohmann::json j = nlohmann::json::parse(read_bytes(p));
  fn(j);
  write_bytes(p, j.dump(2));
}

// Rewrites the manifest's SHA-256 of a shard to match its (edited) contents, as a writer with a
// bug would have: the shard then passes the checksum and must be caught by a later check.
// Records a shard's new file SHA-256 in the manifest, so that the checks behind the file-level
// one (structure, labels, content checksum) are reached.
void refile(const fs::path& data, const std::string& split, int index) {
  const std::string sum = mnist_dist::data::sha256_file(shard(data, split, index).string());
  edit_json(data / "manifest.json", [&](nlohmann::json& j) { j["splits"][split]["shards"][index]["file_sha256"] = sum; });
}

void reseal(const fs::path& data, const std::string& split, int index) {
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
void resign(const fs::path& file) {
  write_bytes(fs::path(file.string() + ".sha256"),
              mnist_dist::data::sha256_file(file.string()) + "  " + file.filename().string() + "\n");
}
// Flips one bit of the byte in the middle of a file.
void flip_middle_byte(const fs::path& p) {
  const size_t mid = static_cast<size_t>(fs::file_size(p) / 2);
  poke(p, mid, std::string(1, static_cast<char>(read_bytes(p)[mid] ^ 0x40)));
}

// ---- snapshots of what must survive a failed run -----------------------------------------
// Every entry under the guarded paths: files by size, mtime (ns) and content; directories by
// existence (their mtime may change when a staging folder comes and goes next to them).
using Snapshot = std::map<std::string, std::string>;

void snap_one(const fs::path& p, Snapshot& s) {
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
Snapshot snapshot(const std::vector<fs::path>& guarded) {
  Snapshot s;
  for (const fs::path& p : guarded) snap_one(p, s);
  return s;
}
std::string diff(const Snapshot& a, const Snapshot& b) {
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
    return kDist + " --data " + d.string() + " --threads 1 --max-steps 3 --run-dir " + (dir_ / "run").string() +
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
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

const char* kTrainImages = "train-images-idx3-ubyte";
const char* kTrainLabels = "train-labels-idx1-ubyte";
const char* kTestImages = "t10k-images-idx3-ubyte";
const char* kTestLabels = "t10k-labels-idx1-ubyte";

// A CLI value that must be rejected with a message naming the flag and the value.
Case bad_value(const std::string& name, const std::string& flag, const std::string& value) {
  const bool numeric = !value.empty() && (std::isdigit(static_cast<unsigned char>(value.back())) != 0);
  return {name, [=](Scene& s) { return s.dist(flag + " " + value); },
          numeric ? std::vector<std::string>{flag, value} : std::vector<std::string>{flag, "not a number"}};
}

std::vector<Case> cases() {
  std::vector<Case> c;
  // --- IDX files, through mnist_prepare over an existing prepared data set (--overwrite) ---
  c.push_back({"idx_bad_magic", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 0, "\x12\x34");
                 return s.prepare(i);
               }, {"train-images-idx3-ubyte has a bad magic number"}});
  c.push_back({"idx_float_element_type", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 2, "\x0d");
                 return s.prepare(i);
               }, {"element type 0x0D (float32)", "only unsigned-byte"}});
  c.push_back({"idx_truncated_data", [](Scene& s) {
                 const fs::path i = s.idx();
                 fs::resize_file(i / kTrainImages, 5000);
                 return s.prepare(i);
               }, {"train-images-idx3-ubyte is truncated", "declares 470400 data bytes"}});
  c.push_back({"idx_truncated_header", [](Scene& s) {
                 const fs::path i = s.idx();
                 fs::resize_file(i / kTestImages, 9);
                 return s.prepare(i);
               }, {"t10k-images-idx3-ubyte is truncated: it ends inside the IDX header"}});
  c.push_back({"idx_huge_claimed_size", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 4, be32(0xFFFFFFFFu));
                 return s.prepare(i);
               }, {"exceeds the limit of 2147483648 bytes"}});
  c.push_back({"idx_zero_dimension", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainImages, 8, be32(0));
                 return s.prepare(i);
               }, {"dimension 1 of the IDX header is 0"}});
  c.push_back({"idx_trailing_bytes", [](Scene& s) {
                 const fs::path i = s.idx();
                 write_bytes(i / kTestLabels, read_bytes(i / kTestLabels) + "extra");
                 return s.prepare(i);
               }, {"t10k-labels-idx1-ubyte has 5 trailing bytes"}});
  c.push_back({"idx_count_mismatch", [](Scene& s) {
                 const fs::path i = s.idx();
                 std::vector<uint8_t> labels(500, 1);
                 mnist_dist::testing::write_idx((i / kTrainLabels).string(), {500}, labels);
                 return s.prepare(i);
               }, {"has 600 images but", "has 500 labels; the counts must match"}});
  c.push_back({"idx_images_with_two_dims", [](Scene& s) {
                 const fs::path i = s.idx();
                 mnist_dist::testing::write_idx((i / kTrainImages).string(), {600, 784}, std::vector<uint8_t>(600 * 784));
                 return s.prepare(i);
               }, {"has 2 dimensions; expected 3 (count, rows, cols)"}});
  c.push_back({"idx_labels_with_two_dims", [](Scene& s) {
                 const fs::path i = s.idx();
                 mnist_dist::testing::write_idx((i / kTestLabels).string(), {100, 1}, std::vector<uint8_t>(100));
                 return s.prepare(i);
               }, {"has 2 dimensions; expected 1 (count)"}});
  c.push_back({"idx_empty_file", [](Scene& s) {
                 const fs::path i = s.idx();
                 write_bytes(i / kTestLabels, "");
                 return s.prepare(i);
               }, {"t10k-labels-idx1-ubyte is empty"}});
  c.push_back({"idx_corrupt_gzip", [](Scene& s) {
                 const fs::path i = s.idx();
                 gzip_file(i / kTrainImages, i / (std::string(kTrainImages) + ".gz"));
                 fs::remove(i / kTrainImages);
                 poke(i / (std::string(kTrainImages) + ".gz"), 200, std::string(32, '\xa5'));
                 return s.prepare(i);
               }, {"train-images-idx3-ubyte.gz: corrupt gzip data"}});
  c.push_back({"idx_truncated_gzip", [](Scene& s) {
                 const fs::path i = s.idx();
                 const fs::path gz = i / (std::string(kTrainLabels) + ".gz");
                 gzip_file(i / kTrainLabels, gz);
                 fs::remove(i / kTrainLabels);
                 fs::resize_file(gz, fs::file_size(gz) - 12);
                 return s.prepare(i);
               }, {"train-labels-idx1-ubyte.gz", "truncated"}});
  c.push_back({"idx_gzip_header_claims_2GB", [](Scene& s) {  // a lying header, small stream
                 const fs::path i = s.idx();
                 write_bytes(i / "big", std::string("\0\0\x08\x03", 4) + be32(2700000) + be32(28) + be32(28) +
                                            std::string(4096, '\x01'));
                 gzip_file(i / "big", i / (std::string(kTrainImages) + ".gz"));
                 fs::remove(i / "big");
                 fs::remove(i / kTrainImages);
                 return s.prepare(i);
               }, {"is truncated", "(after gzip decompression)"}});
  c.push_back({"idx_label_out_of_range", [](Scene& s) {
                 const fs::path i = s.idx();
                 poke(i / kTrainLabels, 8 + 12, "\x0a");
                 return s.prepare(i);
               }, {"sample 12 has label 10, but labels must be 0..9"}});
  c.push_back({"idx_train_test_image_sizes_differ", [](Scene& s) {
                 const fs::path i = s.idx();
                 mnist_dist::testing::write_idx((i / kTestImages).string(), {100, 20, 20}, std::vector<uint8_t>(100 * 400));
                 return s.prepare(i);
               }, {"train and test must have the same image size"}});
  c.push_back({"idx_missing_file", [](Scene& s) {
                 const fs::path i = s.idx();
                 fs::remove(i / kTestLabels);
                 return s.prepare(i);
               }, {"has neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte.gz"}});
  c.push_back({"prepare_existing_out_without_overwrite", [](Scene& s) {
                 return kPrepare + " --idx-dir " + s.idx().string() + " --out " + s.prepared_out().string();
               }, {"already holds a prepared data set"}});
  c.push_back({"prepare_zero_shards", [](Scene& s) { return s.prepare(s.idx(), "--shards 0"); },
               {"--shards 0 is out of range"}});

  // --- shards and manifest, through mnist_dist ------------------------------------------
  c.push_back({"shard_missing", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::remove(shard(d, "train", 1));
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5 is missing (it is listed in"}});
  c.push_back({"shard_not_hdf5", [](Scene& s) {
                 const fs::path d = s.data();
                 write_bytes(shard(d, "val", 0), "not an HDF5 file\n");
                 refile(d, "val", 0);
                 return s.dist("", d);
               }, {"val-00000-of-00002.h5 is not a readable HDF5 file", "file signature not found"}});
  c.push_back({"shard_truncated", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::resize_file(shard(d, "train", 0), fs::file_size(shard(d, "train", 0)) / 2);
                 return s.dist("", d);
               }, {"train-00000-of-00002.h5: the file's SHA-256 does not match manifest.json"}});
  c.push_back({"shard_images_wrong_shape", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 0), [](hid_t f) { replace_dataset(f, "images", H5T_STD_U8LE, {210, 28, 27}); });
                 refile(d, "train", 0);
                 return s.dist("", d);
               }, {"dataset 'images' has shape (210, 28, 27) but the manifest implies (210, 28, 28)"}});
  c.push_back({"shard_images_wrong_dtype", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_h5(shard(d, "test", 1), [](hid_t f) { replace_dataset(f, "images", H5T_IEEE_F32LE, {50, 28, 28}); });
                 refile(d, "test", 1);
                 return s.dist("", d);
               }, {"test-00001-of-00002.h5: dataset 'images' is not of type uint8"}});
  c.push_back({"shard_labels_missing", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 1), [](hid_t f) { MD_H5(H5Ldelete(f, "labels", H5P_DEFAULT)); });
                 refile(d, "train", 1);
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5 has no dataset 'labels'"}});
  c.push_back({"shard_of_another_split", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::copy_file(shard(d, "val", 0), shard(d, "train", 0), fs::copy_options::overwrite_existing);
                 refile(d, "train", 0);
                 return s.dist("", d);
               }, {"attribute 'split' is 'val' but manifest.json lists it under 'train'"}});
  c.push_back({"shard_label_out_of_range_val", [](Scene& s) {  // found when the split is loaded
                 const fs::path d = s.data();
                 edit_h5(shard(d, "val", 1), [](hid_t f) { set_byte(f, "labels", 7, 42); });
                 reseal(d, "val", 1);
                 return s.dist("", d);
               }, {"val-00001-of-00002.h5: sample 7", "has label 42 but num_classes is 10"}});
  c.push_back({"shard_label_out_of_range_train", [](Scene& s) {  // found while training
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 1), [](hid_t f) { set_byte(f, "labels", 100, 200); });
                 reseal(d, "train", 1);
                 return s.dist("--max-steps 0 --epochs 1", d);
               }, {"train-00001-of-00002.h5: sample 100", "has label 200 but num_classes is 10"}});
  c.push_back({"shard_checksum_mismatch", [](Scene& s) {  // a pixel changed after mnist_prepare
                 const fs::path d = s.data();
                 edit_h5(shard(d, "train", 1), [](hid_t f) { set_byte(f, "images", 5000, 77); });
                 refile(d, "train", 1);
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5: content checksum mismatch"}});
  // A shard whose HDF5 metadata is damaged opens, then fails inside HDF5: that is bad input too.
  c.push_back({"shard_corrupt_string_heap", [](Scene& s) {
                 const fs::path d = s.data();
                 break_signature(shard(d, "train", 0), "GCOL", 0);
                 return s.dist("", d);
               }, {"train-00000-of-00002.h5", "corrupt"}});
  c.push_back({"shard_corrupt_group_btree", [](Scene& s) {
                 const fs::path d = s.data();
                 break_signature(shard(d, "val", 1), "TREE", 0);
                 return s.dist("", d);
               }, {"val-00001-of-00002.h5", "corrupt"}});
  c.push_back({"shard_corrupt_chunk_index", [](Scene& s) {  // found while training
                 const fs::path d = s.data();
                 break_signature(shard(d, "train", 1), "TREE", 1);
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5", "corrupt"}});
  c.push_back({"manifest_missing", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::remove(d / "manifest.json");
                 return s.dist("", d);
               }, {"has no manifest.json: run mnist_prepare"}});
  c.push_back({"manifest_garbled", [](Scene& s) {
                 const fs::path d = s.data();
                 fs::resize_file(d / "manifest.json", 300);
                 return s.dist("", d);
               }, {"manifest.json is not valid JSON"}});
  c.push_back({"manifest_empty", [](Scene& s) {
                 const fs::path d = s.data();
                 write_bytes(d / "manifest.json", "");
                 return s.dist("", d);
               }, {"manifest.json is not valid JSON"}});
  c.push_back({"manifest_count_is_a_string", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) { j["splits"]["val"]["count"] = "180"; });
                 return s.dist("", d);
               }, {"field 'count' is missing or is not a non-negative integer"}});
  c.push_back({"manifest_disagrees_with_shard", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) {
                   j["splits"]["train"]["count"] = 421;
                   j["splits"]["train"]["shards"][1]["count"] = 211;
                 });
                 return s.dist("", d);
               }, {"train-00001-of-00002.h5: attribute 'count' is 210 but manifest.json says 211"}});
  c.push_back({"manifest_shard_path_escapes", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) {
                   j["splits"]["test"]["shards"][0]["file"] = "../../../etc/passwd";
                 });
                 return s.dist("", d);
               }, {"must be a plain name inside the data directory"}});
  c.push_back({"manifest_bad_sha256", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) { j["splits"]["train"]["shards"][0]["sha256"] = "xyz"; });
                 return s.dist("", d);
               }, {"sha256 is not 64 lower-case hex digits"}});
  c.push_back({"manifest_future_format", [](Scene& s) {
                 const fs::path d = s.data();
                 edit_json(d / "manifest.json", [](nlohmann::json& j) { j["format_version"] = 2; });
                 return s.dist("", d);
               }, {"format_version is 2 but this build reads 1"}});
  c.push_back({"data_is_a_file", [](Scene& s) { return s.dist("", s.data() / "manifest.json"); },
               {"no such data directory"}});

  // --- checkpoints ------------------------------------------------------------------------
  c.push_back({"ckpt_of_another_model", [](Scene& s) {
                 const fs::path ck = s.checkpoints("lenet5");
                 s.guard(ck);
                 return s.dist("--model seed --checkpoint-dir " + ck.string() + " --resume " +
                               (ck / "ckpt-0000000002.h5").string());
               }, {"is a checkpoint of a 'lenet5' model, this run trains 'seed'"}});
  c.push_back({"ckpt_truncated", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 fs::resize_file(ck / "ckpt-0000000002.h5", 100000);
                 resign(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5", "truncated"}, {"mnist_prepare"}});
  c.push_back({"ckpt_not_hdf5", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 write_bytes(ck / "ckpt-0000000002.h5", std::string(4096, 'x'));
                 resign(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5", "not a readable HDF5 file"}, {"mnist_prepare"}});
  c.push_back({"ckpt_bit_flip_fails_its_sha256", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 const fs::path p = ck / "ckpt-0000000002.h5";
                 flip_middle_byte(p);
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + p.string());
               }, {"ckpt-0000000002.h5: SHA-256 mismatch", "ckpt-0000000002.h5.sha256 says ",
                   ", the file's is ", "use another checkpoint (--resume auto falls back"}});
  c.push_back({"ckpt_bit_flip_behind_a_matching_sidecar", [](Scene& s) {  // the FNV checksum
                 const fs::path ck = s.checkpoints();
                 const fs::path p = ck / "ckpt-0000000002.h5";
                 flip_middle_byte(p);
                 resign(p);
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + p.string());
               }, {"ckpt-0000000002.h5: checksum mismatch"}});
  c.push_back({"ckpt_that_hangs_hdf5", [](Scene& s) {  // never reaches HDF5: no hang, exit 2
                 const fs::path ck = s.checkpoints();
                 const std::string input = read_bytes(fs::path(MD_FUZZ_REGRESSIONS) / "fuzz_shards" / "string_heap_hangs_hdf5");
                 write_bytes(ck / "ckpt-0000000002.h5", input.substr(1));
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5: SHA-256 mismatch"}});
  c.push_back({"ckpt_sidecar_of_another_checkpoint", [](Scene& s) {  // e.g. a rewrite cut short
                 const fs::path ck = s.checkpoints();
                 fs::copy_file(ck / "ckpt-0000000001.h5.sha256", ck / "ckpt-0000000002.h5.sha256",
                               fs::copy_options::overwrite_existing);
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5: SHA-256 mismatch"}});
  c.push_back({"ckpt_sidecar_garbled", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 write_bytes(ck / "ckpt-0000000002.h5.sha256", "d41d8cd98f00b204  ckpt-0000000002.h5\n");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5.sha256 is not a sha256sum line", "cannot be verified"}});
  c.push_back({"ckpt_corrupt_string_heap", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 break_signature(ck / "ckpt-0000000002.h5", "GCOL", 0);
                 resign(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return s.dist("--checkpoint-dir " + ck.string() + " --resume " + (ck / "ckpt-0000000002.h5").string());
               }, {"ckpt-0000000002.h5", "corrupt"}, {"mnist_prepare"}});
  c.push_back({"ckpt_path_does_not_exist", [](Scene& s) {
                 return s.dist("--resume " + (s.dir() / "no-such-ckpt.h5").string());
               }, {"no-such-ckpt.h5 does not exist"}});
  c.push_back({"ckpt_path_is_a_directory", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 s.guard(ck);
                 return s.dist("--resume " + ck.string());
               }, {"is a directory"}, {"does not exist"}});
  c.push_back({"ckpt_is_a_model_file", [](Scene& s) {
                 const fs::path m = s.dir() / "trained.h5";
                 fs::copy_file(world().saved_model("seed"), m);
                 s.guard(m);
                 return s.dist("--resume " + m.string());
               }, {"is not an mnist_dist checkpoint (format 'mnist_dist-model')"}});
  c.push_back({"ckpt_other_global_batch", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 s.guard(ck);
                 return s.dist("--batch-size 64 --checkpoint-dir " + ck.string() + " --resume " +
                               (ck / "ckpt-0000000002.h5").string());
               }, {"was written with --batch-size 128; resume with the same global batch"}});
  c.push_back({"ckpt_other_seed", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 s.guard(ck);
                 return s.dist("--seed 7 --checkpoint-dir " + ck.string() + " --resume " +
                               (ck / "ckpt-0000000001.h5").string());
               }, {"was written with --seed 1; resume with the same seed"}});
  c.push_back({"ckpt_dir_is_a_file", [](Scene& s) {
                 const fs::path f = s.dir() / "not-a-dir";
                 write_bytes(f, "a file in the way\n");
                 s.guard(f);
                 return s.dist("--checkpoint-dir " + f.string());
               }, {"--checkpoint-dir", "cannot be created"}});
  // --- models and checkpoints given to predict and export --------------------------------
  c.push_back({"predict_model_bit_flip", [](Scene& s) {
                 const fs::path m = s.dir() / "model.h5";
                 fs::copy_file(world().saved_model("seed"), m);
                 fs::copy_file(world().saved_model("seed").string() + ".sha256", m.string() + ".sha256");
                 flip_middle_byte(m);
                 s.guard(m);
                 return kDist + " predict --checkpoint " + m.string() + " --data " + s.data().string();
               }, {"model.h5: SHA-256 mismatch", "use an intact copy of the file"}});
  c.push_back({"predict_checkpoint_bit_flip", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 flip_middle_byte(ck / "ckpt-0000000002.h5");
                 s.guard(ck);
                 return kDist + " predict --checkpoint " + (ck / "ckpt-0000000002.h5").string() + " --data " +
                        s.data().string();
               }, {"ckpt-0000000002.h5: SHA-256 mismatch"}});
  c.push_back({"export_checkpoint_bit_flip", [](Scene& s) {
                 const fs::path ck = s.checkpoints();
                 flip_middle_byte(ck / "ckpt-0000000001.h5");
                 s.guard(ck);
                 s.guard(s.dir() / "m.onnx");
                 return kDist + " export --checkpoint " + (ck / "ckpt-0000000001.h5").string() + " --onnx " +
                        (s.dir() / "m.onnx").string();
               }, {"ckpt-0000000001.h5: SHA-256 mismatch"}});

  // --- CLI values ---------------------------------------------------------------------------
  c.push_back(bad_value("epochs_negative", "--epochs", "-1"));
  c.push_back(bad_value("epochs_zero", "--epochs", "0"));
  c.push_back(bad_value("epochs_not_a_number", "--epochs", "ten"));
  c.push_back(bad_value("batch_size_zero", "--batch-size", "0"));
  c.push_back(bad_value("batch_size_negative", "--batch-size", "-128"));
  c.push_back(bad_value("batch_size_not_a_number", "--batch-size", "big"));
  c.push_back(bad_value("lr_zero", "--lr", "0"));
  c.push_back(bad_value("lr_negative", "--lr", "-0.001"));
  c.push_back(bad_value("lr_not_a_number", "--lr", "fast"));
  c.push_back({"lr_nan", [](Scene& s) { return s.dist("--lr nan"); }, {"--lr"}});
  c.push_back(bad_value("threads_negative", "--threads", "-2"));
  c.push_back(bad_value("threads_not_a_number", "--threads", "many"));
  c.push_back(bad_value("keep_checkpoints_zero", "--keep-checkpoints", "0"));
  c.push_back({"checkpoint_every_zero", [](Scene& s) { return s.dist("--checkpoint-dir ck --checkpoint-every 0"); },
               {"--checkpoint-every must be a positive step count or 'epoch' (got '0')"}});
  c.push_back({"checkpoint_every_not_a_number", [](Scene& s) { return s.dist("--checkpoint-dir ck --checkpoint-every x"); },
               {"--checkpoint-every must be a positive step count or 'epoch' (got 'x')"}});
  c.push_back({"resume_auto_without_checkpoint_dir", [](Scene& s) { return s.dist("--resume auto"); },
               {"--resume auto needs --checkpoint-dir"}});
  c.push_back({"unknown_flag", [](Scene& s) { return s.dist("--learning-rate 0.1"); },
               {"--learning-rate"}});
  c.push_back({"save_into_missing_directory", [](Scene& s) {
                 return kDist + " --data " + s.data().string() + " --threads 1 --max-steps 1 --run-dir " +
                        (s.dir() / "run").string() + " --save " + (s.dir() / "no/such/dir/m.h5").string();
               }, {"directory", "no/such/dir does not exist"}});
  c.push_back({"batch_larger_than_data_with_drop_last", [](Scene& s) { return s.dist("--batch-size 1000 --drop-last"); },
               {"--batch-size 1000 exceeds the 420 training samples", "use at most 420"}});
  c.push_back({"batch_larger_than_data", [](Scene& s) { return s.dist("--batch-size 1000"); },
               {"--batch-size 1000 exceeds the 420 training samples", "use at most 420"}});
  c.push_back({"batch_size_two_billion", [](Scene& s) { return s.dist("--batch-size 2000000000"); },  // was bad_alloc
               {"--batch-size 2000000000 exceeds the 420 training samples"}});
  c.push_back({"threads_beyond_four_per_core", [](Scene& s) { return s.dist("--threads 100000"); },
               {"--threads 100000 is more than 4 x the", "cores this process may use; use at most"}});
  c.push_back({"predict_threads_beyond_four_per_core", [](Scene& s) {
                 return kDist + " predict --threads 100000 --checkpoint " + world().saved_model("seed").string() +
                        " --data " + s.data().string();
               }, {"--threads 100000 is more than 4 x the"}});
  // --- outputs that cannot be written: refused at start-up, before any training -------------
  c.push_back({"save_is_a_directory", [](Scene& s) {  // was: trained, then lost the model
                 fs::create_directories(s.dir() / "models");
                 return s.dist("--save " + (s.dir() / "models").string());
               }, {"--save", "models is a directory; name a file, e.g.", "models/model.h5"}});
  c.push_back({"save_under_a_file", [](Scene& s) {
                 write_bytes(s.dir() / "plain", "a file\n");
                 return s.dist("--save " + (s.dir() / "plain/m.h5").string());
               }, {"--save", "plain is not a directory"}});
  c.push_back({"run_dir_is_a_file", [](Scene& s) {
                 write_bytes(s.dir() / "plain", "a file\n");
                 s.guard(s.dir() / "plain");
                 return s.dist("--run-dir " + (s.dir() / "plain").string());
               }, {"--run-dir", "cannot be created: a file of that name exists"}});
  c.push_back({"checkpoint_dir_under_a_file", [](Scene& s) {
                 write_bytes(s.dir() / "plain", "a file\n");
                 return s.dist("--checkpoint-dir " + (s.dir() / "plain/ck").string());
               }, {"--checkpoint-dir", "cannot be created:", "plain is not a directory"}});
  c.push_back({"predict_report_is_a_directory", [](Scene& s) {
                 fs::create_directories(s.dir() / "out");
                 return kDist + " predict --checkpoint " + world().saved_model("seed").string() + " --data " +
                        s.data().string() + " --report " + (s.dir() / "out").string();
               }, {"--report", "out is a directory; name a file, e.g.", "out/report.json"}});
  c.push_back({"predict_predictions_in_missing_directory", [](Scene& s) {
                 return kDist + " predict --checkpoint " + world().saved_model("seed").string() + " --data " +
                        s.data().string() + " --predictions " + (s.dir() / "no/such/p.csv").string();
               }, {"--predictions", "no/such does not exist"}});
  c.push_back({"export_onnx_is_a_directory", [](Scene& s) {
                 fs::create_directories(s.dir() / "out");
                 return kDist + " export --checkpoint " + world().saved_model("seed").string() + " --onnx " +
                        (s.dir() / "out").string();
               }, {"--onnx", "out is a directory; name a file, e.g.", "out/model.onnx"}});
  c.push_back({"export_onnx_in_missing_directory", [](Scene& s) {
                 return kDist + " export --checkpoint " + world().saved_model("seed").string() + " --onnx " +
                        (s.dir() / "no/such/m.onnx").string();
               }, {"--onnx", "no/such does not exist"}});
  c.push_back({"batch_smaller_than_ranks", [](Scene& s) { return s.dist("--batch-size 1"); },
               {"--batch-size 1 is smaller than the 2 ranks"}, {}, 2});
  return c;
}

class Hostile : public ::testing::TestWithParam<Case> {};

TEST_P(Hostile, ExitsTwoWithOneClearLineAndLeavesOutputsIntact) {
  const Case& c = GetParam();
  if (c.ranks > 0 && kMpiexec.empty()) GTEST_SKIP() << "built without MPI";
  Scene scene(c.name);
  std::string cmd = c.command(scene);
  if (c.ranks > 0) cmd = kMpiEnv + kMpiexec + " --oversubscribe -n " + std::to_string(c.ranks) + " " + cmd;
  const Snapshot before = snapshot(scene.guarded());
  const auto r = run_command("cd " + scene.dir().string() + " && timeout -k 5 " + std::to_string(kHangSeconds) +
                             " " + cmd);
  SCOPED_TRACE("command: " + cmd + "\noutput:\n" + r.output);

  ASSERT_NE(r.exit_code, 124) << "hung for " << kHangSeconds << " s";
  EXPECT_EQ(r.exit_code, 2);
  // One error line (one per rank under mpiexec), naming the problem.
  const std::vector<std::string> errors = lines_with(r.output, "error:");
  if (c.ranks > 0) {
    EXPECT_GE(errors.size(), 1u);
    EXPECT_LE(errors.size(), static_cast<size_t>(c.ranks));
  } else {
    EXPECT_EQ(errors.size(), 1u);
  }
  if (!errors.empty()) {
    const std::string& line = errors.front();
    EXPECT_TRUE(line.rfind("mnist_dist: ", 0) == 0 || line.rfind("mnist_prepare: ", 0) == 0 ||
                line.rfind("mnist_dist predict: ", 0) == 0 || line.rfind("mnist_dist export: ", 0) == 0)
        << line;
    for (const std::string& phrase : c.expect) EXPECT_NE(line.find(phrase), std::string::npos) << "expected: " << phrase;
    for (const std::string& phrase : c.forbid) EXPECT_EQ(line.find(phrase), std::string::npos) << "misleading: " << phrase;
  }
  for (const char* bad : kForbidden) EXPECT_EQ(r.output.find(bad), std::string::npos) << "forbidden: " << bad;

  // Nothing written before was damaged, and no temporary file was left behind.
  const Snapshot after = snapshot(scene.guarded());
  EXPECT_EQ(diff(before, after), "");
  for (const auto& e : fs::recursive_directory_iterator(scene.dir()))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

INSTANTIATE_TEST_SUITE_P(Table, Hostile, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// Not an error case: --resume auto skips a newest checkpoint whose HDF5 metadata is damaged (behind
// a matching sidecar), with a warning, and resumes from the one before; the damaged file is left
// as it is.
TEST(HostileResume, AutoSkipsACheckpointWithDamagedMetadata) {
  Scene s("auto_skips_damaged");
  const fs::path ck = s.checkpoints();
  break_signature(ck / "ckpt-0000000002.h5", "GCOL", 0);
  resign(ck / "ckpt-0000000002.h5");
  s.guard(ck / "ckpt-0000000002.h5");
  const std::string cmd = kDist + " --data " + s.data().string() + " --threads 1 --max-steps 3 --keep-checkpoints 5 --run-dir " +
                          (s.dir() / "run").string() + " --checkpoint-dir " + ck.string() + " --resume auto";
  const Snapshot before = snapshot(s.guarded());
  const auto r = run_command("cd " + s.dir().string() + " && timeout -k 5 " + std::to_string(kHangSeconds) + " " + cmd);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping checkpoint"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming from " + (ck / "ckpt-0000000001.h5").string()), std::string::npos) << r.output;
  EXPECT_EQ(diff(before, snapshot(s.guarded())), "");
}

// ---- SHA-256 sidecars of checkpoints: cases that are not errors -------------------------
// Resumes from the checkpoints `ck` of scene `s` (3 steps, keeping 5 checkpoints); the output.
mnist_dist::testing::CommandResult resume(Scene& s, const fs::path& ck, const std::string& from) {
  const std::string cmd = kDist + " --data " + s.data().string() + " --threads 1 --max-steps 3 --keep-checkpoints 5 --run-dir " +
                          (s.dir() / "run").string() + " --checkpoint-dir " + ck.string() + " --resume " + from;
  return run_command("cd " + s.dir().string() + " && timeout -k 5 " + std::to_string(kHangSeconds) + " " + cmd);
}

// --resume auto skips a newest checkpoint whose bytes do not match its sidecar (before HDF5 opens
// it), with the warning naming both digests, resumes from the one before and leaves it as it is.
TEST(HostileResume, AutoSkipsACheckpointThatFailsItsSha256) {
  Scene s("auto_skips_sha256");
  const fs::path ck = s.checkpoints();
  flip_middle_byte(ck / "ckpt-0000000002.h5");
  s.guard(ck / "ckpt-0000000002.h5");
  s.guard(ck / "ckpt-0000000002.h5.sha256");
  const Snapshot before = snapshot(s.guarded());
  const auto r = resume(s, ck, "auto");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping checkpoint: " + (ck / "ckpt-0000000002.h5").string() +
                          ": SHA-256 mismatch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming from " + (ck / "ckpt-0000000001.h5").string()), std::string::npos) << r.output;
  EXPECT_EQ(diff(before, snapshot(s.guarded())), "");
}

// A checkpoint without a sidecar (written before sidecars): --resume auto does not let HDF5 read
// it unverified: skipped with a warning saying how to use it, and the one before is used.
TEST(HostileResume, AutoSkipsACheckpointWithoutSidecar) {
  Scene s("auto_skips_no_sidecar");
  const fs::path ck = s.checkpoints();
  fs::remove(ck / "ckpt-0000000002.h5.sha256");
  const auto r = resume(s, ck, "auto");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping checkpoint: " + (ck / "ckpt-0000000002.h5").string() +
                          " has no ckpt-0000000002.h5.sha256"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pass it explicitly with --resume " + (ck / "ckpt-0000000002.h5").string()),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming from " + (ck / "ckpt-0000000001.h5").string()), std::string::npos) << r.output;
}

// The same file named with --resume PATH is read, after one warning line that it is unverified.
TEST(HostileResume, AnExplicitCheckpointWithoutSidecarIsReadWithAWarning) {
  Scene s("explicit_no_sidecar");
  const fs::path ck = s.checkpoints();
  const fs::path p = ck / "ckpt-0000000002.h5";
  fs::remove(p.string() + ".sha256");
  const auto r = resume(s, ck, p.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lines_with(r.output, "unverified").size(), 1u) << r.output;
  EXPECT_NE(r.output.find("mnist_dist: warning: " + p.string() +
                          " has no ckpt-0000000002.h5.sha256 (written by an older mnist_dist?): reading it unverified"),
            std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming from " + p.string()), std::string::npos) << r.output;
}

// A sidecar made by sha256sum(1) for such an old checkpoint is accepted (the format is the same).
TEST(HostileResume, ASidecarWrittenBySha256sumIsAccepted) {
  Scene s("sha256sum_sidecar");
  const fs::path ck = s.checkpoints();
  fs::remove(ck / "ckpt-0000000002.h5.sha256");
  ASSERT_EQ(run_command("cd " + ck.string() + " && sha256sum ckpt-0000000002.h5 > ckpt-0000000002.h5.sha256").exit_code, 0);
  const auto r = resume(s, ck, "auto");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming from " + (ck / "ckpt-0000000002.h5").string()), std::string::npos) << r.output;
}

// A write interrupted between its two renames leaves the new sidecar and the checkpoint under its
// temporary name: --resume auto silently uses the one before, and the next prune removes the
// orphan sidecar.
TEST(HostileResume, AWriteInterruptedBetweenTheRenamesIsIgnored) {
  Scene s("interrupted_between_renames");
  const fs::path ck = s.checkpoints();
  fs::rename(ck / "ckpt-0000000002.h5", ck / "ckpt-0000000002.h5.tmp");
  const auto r = resume(s, ck, "auto");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("warning"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resuming from " + (ck / "ckpt-0000000001.h5").string()), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(ck / "ckpt-0000000002.h5.sha256"));
  EXPECT_TRUE(fs::exists(ck / "ckpt-0000000003.h5.sha256"));
}

// predict and export read a model without a sidecar, from before sidecars, after one warning.
TEST(HostilePredict, AModelWithoutSidecarIsReadWithAWarning) {
  Scene s("predict_no_sidecar");
  const fs::path m = s.dir() / "old-model.h5";
  fs::copy_file(world().saved_model("seed"), m);
  const auto r = run_command(kDist + " predict --checkpoint " + m.string() + " --data " + s.data().string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(lines_with(r.output, "unverified").size(), 1u) << r.output;
  EXPECT_NE(r.output.find("mnist_dist predict: warning: " + m.string() + " has no old-model.h5.sha256"),
            std::string::npos) << r.output;
  // export too (exit 0, or 2 in a build without ONNX: either way after the same warning).
  const auto e = run_command(kDist + " export --checkpoint " + m.string() + " --onnx " + (s.dir() / "m.onnx").string());
  EXPECT_EQ(lines_with(e.output, "unverified").size(), 1u) << e.output;
  EXPECT_NE(e.output.find("mnist_dist export: warning: " + m.string() + " has no old-model.h5.sha256"),
            std::string::npos) << e.output;
}

// A shard damaged so that HDF5 1.10 itself loops forever reading its string attributes (found by
// fuzz_shards; the input is kept in tests/fuzz/regressions). HDF5 cannot be fixed here, so the
// job must not reach it (a checksum of the file before HDF5 parses it: exit 2) or must be ended
// by the watchdog (--timeout: exit 1). Either way it ends in bounded time, saying why.
TEST(HostileHang, AShardThatHangsHdf5EndsTheRunInBoundedTime) {
  Scene s("hdf5_hang");
  const fs::path d = s.data();
  const std::string input = read_bytes(fs::path(MD_FUZZ_REGRESSIONS) / "fuzz_shards" / "string_heap_hangs_hdf5");
  ASSERT_GT(input.size(), 1u);
  write_bytes(shard(d, "train", 0), input.substr(1));  // byte 0 is the fuzz target's file selector
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_command("cd " + s.dir().string() + " && timeout -s KILL 45 " +
                             s.dist("--timeout 10", d));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << "exit " << r.exit_code << " after " << secs << " s\n" << r.output;
  EXPECT_LT(secs, 40.0) << r.output;
  EXPECT_TRUE(r.output.find("train-00000-of-00002.h5") != std::string::npos ||
              r.output.find("no progress") != std::string::npos) << r.output;
}

TEST(HostileTable, HasAtLeast25Cases) { EXPECT_GE(cases().size(), 25u); }

}  // namespace
