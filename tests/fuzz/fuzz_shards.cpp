// libFuzzer target: manifest.json and HDF5 shards (data_pipeline/manifest.h, shard_reader.h).
// A small valid data set (4x4 images; 2 shards per split) is written once into a tmpfs folder by
// the real writer (prepare_shards). Byte 0 of an input picks the file the rest replaces: even →
// manifest.json, odd → train-00000-of-00002.h5. Then every split is opened, read whole by range
// and by index (with and without the chunk cache) and checksummed. A UserError is the expected
// outcome; a crash, sanitizer report, leak, fatal() (exit 1 from a failed HDF5 call), another
// exception, or an HDF5 object left open is a bug.
#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "core/error.h"
#include "data_pipeline/manifest.h"
#include "data_pipeline/shard_reader.h"
#include "data_pipeline/shard_writer.h"
#include "fuzz_util.h"
#include "idx_writer.h"

namespace {
using namespace mnist_dist;
namespace fs = std::filesystem;

struct Template {
  std::string dir, manifest_path, shard_path;
  std::string manifest, shard;  // the valid bytes
};

Template make_template() {
  Template t;
  const std::string root = fuzz::scratch_dir("fuzz_shards");
  const std::string idx = root + "/idx";
  fs::create_directories(idx);
  std::vector<uint8_t> img(12 * 16), lab(12), timg(4 * 16), tlab(4);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 29);
  for (size_t i = 0; i < lab.size(); ++i) lab[i] = static_cast<uint8_t>(i % 10);
  for (size_t i = 0; i < timg.size(); ++i) timg[i] = static_cast<uint8_t>(i * 13);
  for (size_t i = 0; i < tlab.size(); ++i) tlab[i] = static_cast<uint8_t>(9 - i);
  testing::write_idx(idx + "/train-images-idx3-ubyte", {12, 4, 4}, img);
  testing::write_idx(idx + "/train-labels-idx1-ubyte", {12}, lab);
  testing::write_idx(idx + "/t10k-images-idx3-ubyte", {4, 4, 4}, timg);
  testing::write_idx(idx + "/t10k-labels-idx1-ubyte", {4}, tlab);
  data::PrepareOptions opts;
  opts.idx_dir = idx;
  opts.out_dir = root + "/data";
  opts.shards = 2;
  opts.val_fraction = 0.25;
  data::prepare_shards(opts);
  t.dir = opts.out_dir;
  t.manifest_path = t.dir + "/" + data::kManifestFile;
  t.shard_path = t.dir + "/" + data::shard_file_name("train", 0, 2);
  t.manifest = fuzz::read_file(t.manifest_path);
  t.shard = fuzz::read_file(t.shard_path);
  return t;
}

// The manifest without indentation or line breaks (its strings hold no blanks).
std::string compact(std::string json) {
  json.erase(std::remove_if(json.begin(), json.end(), [](char c) { return c == ' ' || c == '\n'; }), json.end());
  return json;
}

Template& tmpl() {
  static Template t = make_template();
  return t;
}

void read_split(const std::string& dir, const char* split, bool cache) {
  data::ShardReader r = data::ShardReader::open(dir, split);
  if (!cache) r.set_cache_bytes(0);
  const size_t n = r.size(), pixels = size_t{r.rows()} * r.cols();
  if (n * pixels > (size_t{64} << 20)) std::abort();  // open() must have checked the shapes
  std::vector<uint8_t> images(n * pixels), labels(n);
  r.read_range(0, n, images.data(), labels.data());
  std::vector<uint32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0u);
  std::reverse(idx.begin(), idx.end());
  r.read_indices(idx.data(), idx.size(), images.data(), labels.data());
  r.verify_checksums();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::make_fatal_abort();
  Template& t = tmpl();
  if (fuzz::seed_dir() != nullptr) {
    fuzz::write_seed("manifest", std::string(1, '\0') + t.manifest);
    fuzz::write_seed("manifest_compact", std::string(1, '\0') + compact(t.manifest));
    fuzz::write_seed("shard_train0", std::string(1, '\1') + t.shard);
    fuzz::write_seed("shard_val0", std::string(1, '\1') + fuzz::read_file(t.dir + "/" + data::shard_file_name("val", 0, 2)));
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const Template& t = tmpl();
  const bool manifest = data[0] % 2 == 0;
  fuzz::write_file(t.manifest_path, manifest ? static_cast<const void*>(data + 1) : t.manifest.data(),
                   manifest ? size - 1 : t.manifest.size());
  fuzz::write_file(t.shard_path, manifest ? static_cast<const void*>(t.shard.data()) : data + 1,
                   manifest ? t.shard.size() : size - 1);
  for (const char* split : {"train", "val", "test"}) {
    try {
      read_split(t.dir, split, split[0] != 'v');
    } catch (const UserError&) {
      // the expected outcome for bad input
    } catch (const fuzz::FatalCalled&) {
      // MD_FUZZ_FATAL=throw: fatal() already printed where
    }
  }
  // Every HDF5 object opened on the way must be closed again, on error paths too.
  if (const ssize_t open = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL); open != 0) {
    std::fprintf(stderr, "fuzz_shards: %zd HDF5 objects left open\n", open);
    std::abort();
  }
  return 0;
}
