// Checkpoint writer/reader (HDF5): model tensors, optimizer group, metadata attributes, and an
// FNV-1a checksum over every float stored, verified on read; the file's SHA-256 sidecar
// (io/sidecar.h) is checked before HDF5 opens it.
#include "io/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "data_pipeline/hdf5_util.h"
#include "io/h5_image.h"
#include "io/model_io.h"
#include "io/sidecar.h"
#include "layers/param_hash.h"

namespace mnist_dist {
namespace fs = std::filesystem;
namespace h5 = data::h5;

namespace {

// Host copies of Adam's moments.
struct Moments {
  std::vector<float> m, v;
  explicit Moments(size_t n) : m(n), v(n) {}
};

uint64_t content_checksum(const Model& model, const Moments& mo) {
  uint64_t h = hash_arena(model.arena(), true);
  h = hash_bytes(mo.m.data(), mo.m.size() * sizeof(float), h);
  return hash_bytes(mo.v.data(), mo.v.size() * sizeof(float), h);
}

void write_flat(hid_t file, const char* name, const float* data, size_t n) {
  const hsize_t dims[1] = {n};
  h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(1, dims, nullptr)));
  h5::Handle dset = h5::dataset(MD_H5(H5Dcreate2(file, name, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                                 H5P_DEFAULT, H5P_DEFAULT)));
  MD_H5(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
}

void read_flat(hid_t file, const char* name, float* data, size_t n, const std::string& path) {
  if (!h5_dataset_exists(file, name)) throw UserError(path + ": dataset '" + name + "' is missing");
  h5::Handle dset = h5::dataset(MD_H5_READ(file, H5Dopen2(file, name, H5P_DEFAULT)));
  const h5::DatasetInfo info = h5::inspect(dset.get());
  if (info.dims != std::vector<hsize_t>{n} || info.type_class != H5T_FLOAT)
    throw UserError(path + ": dataset '" + name + "' has the wrong shape (" + std::to_string(n) +
                    " floats expected)");
  if (H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    throw UserError(path + ": cannot read '" + name + "' (truncated or corrupt)");
}

}  // namespace

std::string checkpoint_file_name(int64_t global_step) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "ckpt-%010lld.h5", static_cast<long long>(global_step));
  return buf;
}

uint64_t checkpoint_file_bytes(const Model& model, const Adam& adam) {
  return model_file_bytes(model) + 2 * adam.count() * sizeof(float);
}

void write_checkpoint(const std::string& path, const Model& model, Adam& adam,
                      const CheckpointMeta& meta) {
  Moments mo(adam.count());
  adam.download_moments(mo.m.data(), mo.v.data());
  const std::vector<unsigned char> bytes = build_h5_image([&](hid_t f) {
    write_model_tensors(f, model, kCheckpointFormat);
    h5::Handle g(MD_H5(H5Gcreate2(f, "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)), H5Gclose);
    write_flat(f, "optimizer/m", mo.m.data(), adam.count());
    write_flat(f, "optimizer/v", mo.v.data(), adam.count());
    h5::write_attr(f, "optimizer", std::string("adam"));
    h5::write_attr(f, "adam_step", static_cast<int64_t>(adam.steps()));
    h5::write_attr(f, "global_step", meta.global_step);
    h5::write_attr(f, "epoch", static_cast<int64_t>(meta.epoch));
    h5::write_attr(f, "step_in_epoch", meta.step_in_epoch);
    h5::write_attr(f, "epoch_loss_sum", meta.epoch_sums.loss_sum);
    h5::write_attr(f, "epoch_correct", meta.epoch_sums.correct);
    h5::write_attr(f, "epoch_count", meta.epoch_sums.count);
    h5::write_attr(f, "batch_size", meta.batch_size);
    h5::write_attr(f, "seed", meta.seed);
    h5::write_attr(f, "train_samples", meta.train_samples);
    h5::write_attr(f, "drop_last", static_cast<int64_t>(meta.drop_last ? 1 : 0));
    h5::write_attr(f, "world_size", meta.world_size);
    h5::write_attr(f, "config", meta.config_json);
    h5::write_attr(f, "checksum_fnv1a64", content_checksum(model, mo));
  });
  publish_with_sidecar("checkpoint", bytes, path);  // sidecar first, then the checkpoint's name
}

CheckpointMeta read_checkpoint(const std::string& path, Model& model, Adam& adam, MissingSidecar missing) {
  h5::quiet_errors();
  if (fs::is_directory(path))
    throw UserError("--resume " + path + " is a directory; pass a checkpoint file, or --resume auto --checkpoint-dir " + path);
  if (!fs::is_regular_file(path)) throw UserError("checkpoint " + path + " does not exist");
  // Before HDF5 sees a byte of it (a damaged file can make HDF5 1.10 loop forever).
  const std::string fix = "use another checkpoint (--resume auto falls back to the newest intact one) or an intact copy of this one";
  if (check_sidecar(path, fix) == SidecarCheck::kMissing && missing == MissingSidecar::kRefuse)
    throw UserError(path + " has no " + fs::path(sidecar_path(path)).filename().string() +
                    " (written by an older mnist_dist?), so it is not read unverified here; to use it anyway, "
                    "pass it explicitly with --resume " + path);
  h5::Handle file = h5::open_file(path, false, "the checkpoint is damaged (truncated or not written by mnist_dist)");
  const hid_t f = file.get();
  const std::string format = h5::has_attr(f, "format") ? h5::read_string_attr(f, "format", path) : "";
  if (format != kCheckpointFormat)
    throw UserError(path + " is not an mnist_dist checkpoint (format '" + format + "')");
  CheckpointMeta m;
  m.model = h5::read_string_attr(f, "model", path);
  if (m.model != model.arch())
    throw UserError(path + " is a checkpoint of a '" + m.model + "' model, this run trains '" +
                    model.arch() + "' (--model)");
  read_model_tensors(f, model, path);
  Moments mo(adam.count());
  read_flat(f, "optimizer/m", mo.m.data(), adam.count(), path);
  read_flat(f, "optimizer/v", mo.v.data(), adam.count(), path);
  adam.upload_moments(mo.m.data(), mo.v.data());
  adam.set_steps(h5::read_int_attr(f, "adam_step", path));
  m.global_step = h5::read_int_attr(f, "global_step", path);
  m.epoch = static_cast<int>(h5::read_int_attr(f, "epoch", path));
  m.step_in_epoch = h5::read_int_attr(f, "step_in_epoch", path);
  m.epoch_sums.loss_sum = h5::read_double_attr(f, "epoch_loss_sum", path);
  m.epoch_sums.correct = h5::read_double_attr(f, "epoch_correct", path);
  m.epoch_sums.count = h5::read_double_attr(f, "epoch_count", path);
  m.batch_size = h5::read_int_attr(f, "batch_size", path);
  m.seed = h5::read_uint_attr(f, "seed", path);
  m.train_samples = h5::read_int_attr(f, "train_samples", path);
  m.drop_last = h5::read_int_attr(f, "drop_last", path) != 0;
  m.world_size = h5::read_int_attr(f, "world_size", path);
  m.config_json = h5::read_string_attr(f, "config", path);
  if (h5::read_uint_attr(f, "checksum_fnv1a64", path) != content_checksum(model, mo))
    throw UserError(path + ": checksum mismatch (the checkpoint is corrupt)");
  if (m.global_step < 0 || m.epoch < 0 || m.step_in_epoch < 0 || adam.steps() != m.global_step)
    throw UserError(path + ": inconsistent step counters");
  return m;
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 18 && name.rfind("ckpt-", 0) == 0 && name.substr(15) == ".h5") out.push_back(e.path().string());
  }
  std::sort(out.rbegin(), out.rend());  // zero-padded step: lexical order is step order
  return out;
}

void prune_checkpoints(const std::string& dir, int keep) {
  const std::vector<std::string> all = list_checkpoints(dir);
  for (size_t i = static_cast<size_t>(std::max(keep, 1)); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
    fs::remove(sidecar_path(all[i]), ec);
  }
  // Sidecars left without their checkpoint (a write interrupted between its two renames).
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() != 25 || name.rfind("ckpt-", 0) != 0 || name.substr(15) != ".h5.sha256") continue;
    std::error_code e2;
    const bool has_checkpoint = fs::exists(it->path().parent_path() / name.substr(0, 18), e2);
    if (!e2 && !has_checkpoint) fs::remove(it->path(), e2);
  }
}

}  // namespace mnist_dist
