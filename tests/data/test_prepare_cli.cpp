// mnist_prepare as a program: help, exit codes (0 ok, 2 usage/input errors) and one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "data_test_util.h"

namespace mnist_dist::data {
namespace {

using test::TempDir;

const std::string kPrepare = MNIST_PREPARE_BIN;

struct Result {
  int code;
  std::string out, err;
};

Result run(const TempDir& logs, const std::string& args) {
  const std::string out = logs / "stdout.txt", err = logs / "stderr.txt";
  const int code = test::run_command("'" + kPrepare + "' " + args + " > '" + out + "' 2> '" + err + "'");
  const auto text = [](const std::string& p) {
    const std::vector<uint8_t> b = test::read_file(p);
    return std::string(b.begin(), b.end());
  };
  return {code, text(out), text(err)};
}

// A one-line "mnist_prepare: error: ..." message on stderr containing `phrase`.
void expect_usage_error(const Result& r, const std::string& phrase) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("mnist_prepare: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(phrase), std::string::npos) << r.err;
}

TEST(MnistPrepareCli, HelpAndUsageErrors) {
  TempDir logs;
  Result r = run(logs, "--help");
  EXPECT_EQ(r.code, 0);
  for (const char* opt : {"--idx-dir", "--out", "--shards", "--val-fraction", "--split-seed", "--overwrite"}) {
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  }
  expect_usage_error(run(logs, ""), "--idx-dir is required");
  expect_usage_error(run(logs, "--idx-dir x --out y --shards many"), "--shards");
  expect_usage_error(run(logs, "--idx-dir x --out y --bogus"), "--bogus");
  expect_usage_error(run(logs, "--idx-dir '" + logs / "none" + "' --out y"), "no such directory");
}

TEST(MnistPrepareCli, PreparesAndRefusesToClobber) {
  TempDir logs, idx, out;
  test::write_synthetic(idx.path(), 100, 30, 8, 8);
  const std::string args = "--idx-dir '" + idx.path() + "' --out '" + out / "d" + "'";
  expect_usage_error(run(logs, args + " --shards 0"), "--shards 0 is out of range");
  expect_usage_error(run(logs, args + " --val-fraction 1.5"), "--val-fraction");

  Result r = run(logs, args + " --shards 2 --val-fraction 0.2 --split-seed 5");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("train      80 samples in 2 shards"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("val        20 samples"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("test       30 samples"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(out / "d/val-00001-of-00002.h5"));

  expect_usage_error(run(logs, args), "--overwrite");
  EXPECT_EQ(run(logs, args + " --overwrite").code, 0);

  test::write_file(idx / "train-labels-idx1-ubyte", {0, 0, 8});
  expect_usage_error(run(logs, args + " --overwrite"), "is truncated");
}

}  // namespace
}  // namespace mnist_dist::data
