// mnist_prepare: converts MNIST-format IDX files into the HDF5 shards + manifest.json that the
// trainer reads. Exit 0 on success, 2 on a usage or input error, 1 on an internal failure.

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "core/cli.h"
#include "core/error.h"
#include "data_pipeline/manifest.h"
#include "data_pipeline/shard_writer.h"

namespace {

int run(int argc, char** argv) {
  using mnist_dist::data::PrepareOptions;
  PrepareOptions opts;
  CLI::App app{
      "mnist_prepare: convert MNIST-format IDX files (train-images-idx3-ubyte, "
      "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally "
      ".gz) into HDF5 shards <split>-<i>-of-<S>.h5 for the train, val and test splits, plus "
      "manifest.json. Validation is held out of the training set by a seeded split.",
      "mnist_prepare"};
  app.add_option("--idx-dir", opts.idx_dir, "Directory holding the four IDX files")
      ->required()
      ->type_name("DIR");
  app.add_option("--out", opts.out_dir, "Output directory for the shards and manifest.json")
      ->required()
      ->type_name("DIR");
  app.add_option("--shards", opts.shards, "Shards per split (1-99999; fewer if a split is smaller)")
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--val-fraction", opts.val_fraction,
                 "Fraction of the training set held out for validation, 0 <= F < 1")
      ->capture_default_str()
      ->type_name("F");
  app.add_option("--split-seed", opts.split_seed, "Seed of the train/validation split")
      ->capture_default_str()
      ->type_name("S");
  app.add_flag("--overwrite", opts.overwrite, "Replace a data set already prepared in --out");

  if (auto code = mnist_dist::parse_command_line(app, argc, argv)) return *code;

  const mnist_dist::data::PrepareSummary sum = mnist_dist::data::prepare_shards(opts);
  const struct {
    const char* name;
    size_t count;
  } splits[] = {{"train", sum.train}, {"val", sum.val}, {"test", sum.test}};
  for (const auto& s : splits) {
    const int shards = mnist_dist::data::shard_count_for(s.count, sum.shards);
    std::printf("%-5s %7zu samples in %d shard%s%s\n", s.name, s.count, shards,
                shards == 1 ? "" : "s",
                shards < sum.shards ? " (fewer than --shards: the split is small)" : "");
  }
  const std::filesystem::path manifest =
      (std::filesystem::path(opts.out_dir) / mnist_dist::data::kManifestFile).lexically_normal();
  std::printf("wrote %s\n", manifest.c_str());
  return mnist_dist::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return mnist_dist::run_reporting_errors("mnist_prepare", [&] { return run(argc, argv); });
}
