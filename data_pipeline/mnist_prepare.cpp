// mnist_prepare: converts MNIST-format IDX files into the HDF5 shards + manifest.json that the
// trainer reads. Exit 0 on success, 2 on a usage or input error, 1 on an internal failure.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

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

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mnist_prepare: error: %s (see mnist_prepare --help)\n", e.what());
    return mnist_dist::kExitUsage;
  }

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
  try {
    return run(argc, argv);
  } catch (const mnist_dist::UserError& e) {
    std::fprintf(stderr, "mnist_prepare: error: %s\n", e.what());
    return mnist_dist::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mnist_prepare: internal error: %s\n", e.what());
    return mnist_dist::kExitInternal;
  }
}
