// Test helper shared by the end-to-end tests: a prepared synthetic data set on disk, and the
// mpiexec prefix with the environment our VMs need (root allowed, vader single-copy off).
#pragma once

#include <filesystem>
#include <string>

#include "idx_writer.h"
#include "run_command.h"

namespace mnist_dist::testing {

// Writes `n_train` + `n_test` synthetic samples as IDX into dir/idx and runs mnist_prepare into
// dir/h5 (extra_args appended). Returns mnist_prepare's result.
inline CommandResult prepare_block_dataset(const std::filesystem::path& dir, const std::string& prepare_bin,
                                           size_t n_train, size_t n_test, const std::string& extra_args = "") {
  std::filesystem::create_directories(dir / "idx");
  write_block_dataset((dir / "idx").string(), n_train, n_test);
  return run_command(prepare_bin + " --idx-dir " + (dir / "idx").string() + " --out " + (dir / "h5").string() +
                     extra_args);
}

// "ENV... mpiexec --oversubscribe -n " — append the rank count and the command.
inline std::string mpiexec_prefix(const std::string& mpiexec) {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
         "OMPI_MCA_btl_vader_single_copy_mechanism=none " + mpiexec + " --oversubscribe -n ";
}

// Empty when `mpiexec --oversubscribe -n 4 true` runs (with the environment above); otherwise why
// not, for GTEST_SKIP (MPI or oversubscription unavailable here: not a failure of mnist_dist).
inline std::string mpiexec_unusable(const std::string& mpiexec) {
  static const std::string why = [&] {
    const CommandResult r = run_command(mpiexec_prefix(mpiexec) + "4 true");
    return r.exit_code == 0 ? std::string()
                            : "mpiexec cannot start 4 oversubscribed ranks here (exit " +
                                  std::to_string(r.exit_code) + "): " + r.output.substr(0, 300);
  }();
  return why;
}

}  // namespace mnist_dist::testing

// In a test body: skips it (ctest reports it as skipped) when mpiexec cannot start ranks here.
#define MD_SKIP_WITHOUT_MPIEXEC(mpiexec_bin)                                                \
  do {                                                                                      \
    const std::string md_why_ = ::mnist_dist::testing::mpiexec_unusable(mpiexec_bin);       \
    if (!md_why_.empty()) GTEST_SKIP() << md_why_;                                          \
  } while (0)
