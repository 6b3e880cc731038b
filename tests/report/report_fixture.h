// The trained run the report end-to-end tests look at, made once per ctest run by the
// report_fixture test (FIXTURES_SETUP) and on demand when the test binary runs alone:
// synthetic digits → mnist_prepare → a 2-epoch seed-net run piped to a file (plain lines),
// with --save, --run-dir and --log-every 3.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "idx_writer.h"
#include "run_command.h"

namespace mnist_dist::testing {

struct ReportFixture {
  std::filesystem::path root;
  std::string data() const { return (root / "h5").string(); }
  std::string model() const { return (root / "model.h5").string(); }
  std::string run_dir() const { return (root / "run").string(); }
  std::string train_log() const {
    std::ifstream f(root / "train.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
};

inline constexpr int kFixtureLogEvery = 3;

// Builds the fixture under MD_REPORT_FIXTURE_DIR (rebuild: from scratch). Returns an error
// message, or "" on success.
inline std::string build_report_fixture(bool rebuild, ReportFixture* out) {
  namespace fs = std::filesystem;
  ReportFixture f{fs::path(MD_REPORT_FIXTURE_DIR)};
  if (out != nullptr) *out = f;
  if (!rebuild && fs::exists(f.root / "done")) return "";
  fs::remove_all(f.root);
  fs::create_directories(f.root / "idx");
  write_block_dataset((f.root / "idx").string(), 1200, 300);
  CommandResult r = run_command(std::string(MNIST_PREPARE_BIN) + " --idx-dir " + (f.root / "idx").string() +
                                " --out " + f.data() + " --shards 2");
  if (r.exit_code != 0) return "mnist_prepare failed: " + r.output;
  // stdout and stderr to the log (a file, not a terminal: plain lines).
  const std::string cmd = std::string(MNIST_DIST_BIN) + " --device cpu --data " + f.data() +
                          " --epochs 2 --threads 2 --log-every " + std::to_string(kFixtureLogEvery) +
                          " --save " + f.model() + " --run-dir " + f.run_dir() + " > " +
                          (f.root / "train.log").string() + " 2>&1";
  if (std::system(cmd.c_str()) != 0) return "training failed: " + f.train_log();
  std::ofstream(f.root / "done") << "ok\n";
  return "";
}

}  // namespace mnist_dist::testing
