// Outputs on file systems that cannot take them, with the real executables on real tmpfs mounts
// (root only: each test mounts its own small tmpfs and skips with a reason otherwise):
// a read-only or too-small place is refused at start-up (exit 2, before any training); a disk
// that fills up while the run goes ends it with one line naming the file, the bytes needed and
// free (exit 5), the partial file removed and what was written before intact and usable.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "data_pipeline/sha256.h"
#include "idx_writer.h"
#include "run_command.h"

namespace fs = std::filesystem;
using mnist_dist::testing::lines_with;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
const std::string kPrepare = MNIST_PREPARE_BIN;
constexpr int kExitNoSpace = 5;

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// A tmpfs of `size` (e.g. "2m") mounted at `at` for the test's lifetime, read-only if asked.
class Tmpfs {
 public:
  Tmpfs(const fs::path& at, const std::string& size, bool read_only) : dir_(at) {
    fs::create_directories(dir_);
    const std::string options = "size=" + size;
    ok_ = ::mount("tmpfs", dir_.c_str(), "tmpfs", read_only ? MS_RDONLY : 0, options.c_str()) == 0;
  }
  ~Tmpfs() {
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;
  bool ok() const { return ok_; }
  const fs::path& dir() const { return dir_; }
  // Fills the file system with one file until only `left` bytes are free.
  void fill_leaving(uint64_t left) const {
    struct statvfs st {};
    ASSERT_EQ(::statvfs(dir_.c_str(), &st), 0);
    const uint64_t free = static_cast<uint64_t>(st.f_bfree) * st.f_frsize;
    ASSERT_GT(free, left);
    const auto r = run_command("fallocate -l " + std::to_string(free - left) + " " + (dir_ / "filler").string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

 private:
  fs::path dir_;
  bool ok_ = false;
};

class OutputSpace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs";
    root_ = fs::temp_directory_path() / ("md_space_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "idx");
    mnist_dist::testing::write_block_dataset((root_ / "idx").string(), 600, 100);
    const auto r = run_command(kPrepare + " --idx-dir " + (root_ / "idx").string() + " --out " +
                               (root_ / "data").string() + " --shards 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  void TearDown() override {
    disk_.reset();
    if (!root_.empty()) fs::remove_all(root_);
  }
  // Mounts the test's tmpfs at root/disk.
  const Tmpfs& disk(const std::string& size, bool read_only = false) {
    disk_ = std::make_unique<Tmpfs>(root_ / "disk", size, read_only);
    if (!disk_->ok()) ADD_FAILURE() << "mounting a tmpfs of " << size << " at " << disk_->dir() << " failed";
    return *disk_;
  }
  std::string dist(const std::string& args) const {
    return "cd " + root_.string() + " && timeout -k 5 300 " + kDist + " --device cpu --data " + (root_ / "data").string() +
           " --threads 1 " + args;
  }
  // No temporary file anywhere under root.
  void expect_no_tmp() const {
    for (const auto& e : fs::recursive_directory_iterator(root_))
      EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }

  fs::path root_;
  std::unique_ptr<Tmpfs> disk_;
};

// ---- refused at start-up (exit 2), nothing trained ------------------------------------------
TEST_F(OutputSpace, ReadOnlyPlacesAreRefusedBeforeTraining) {
  const Tmpfs& ro = disk("1m", true);
  const struct {
    std::string args, flag;
  } cases[] = {{"--save " + (ro.dir() / "m.h5").string(), "--save"},
               {"--checkpoint-dir " + (ro.dir() / "ck").string(), "--checkpoint-dir"},
               {"--run-dir " + (ro.dir() / "run").string(), "--run-dir"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const auto r = run_command(dist("--max-steps 50 " + c.args));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    const auto errors = lines_with(r.output, "error:");
    ASSERT_EQ(errors.size(), 1u) << r.output;
    EXPECT_NE(errors[0].find(c.flag), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("cannot write in directory " + ro.dir().string()), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("Read-only file system"), std::string::npos) << errors[0];
    EXPECT_EQ(r.output.find("Epoch"), std::string::npos) << "trained before refusing:\n" << r.output;
  }
  const fs::path m = root_ / "m.h5";
  ASSERT_EQ(run_command(dist("--max-steps 1 -q --run-dir r0 --save " + m.string())).exit_code, 0);
  for (const std::string& flag : {std::string("--report"), std::string("--predictions")}) {
    const auto r = run_command(kDist + " predict --checkpoint " + m.string() + " --data " + (root_ / "data").string() +
                               " " + flag + " " + (ro.dir() / "out").string());
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("predict: error: " + flag + " " + (ro.dir() / "out").string() + ": cannot write in directory"),
              std::string::npos) << r.output;
  }
  const auto e = run_command(kDist + " export --checkpoint " + m.string() + " --onnx " + (ro.dir() / "m.onnx").string());
  EXPECT_EQ(e.exit_code, 2) << e.output;
  EXPECT_NE(e.output.find("export: error: --onnx " + (ro.dir() / "m.onnx").string() + ": cannot write in directory"),
            std::string::npos) << e.output;
}

TEST_F(OutputSpace, TooLittleRoomIsRefusedBeforeTraining) {
  const Tmpfs& small = disk("256k");  // the seed net's model takes ~6.9 MB, a checkpoint ~21 MB
  for (const std::string& args : {"--save " + (small.dir() / "m.h5").string(),
                                  "--checkpoint-dir " + (small.dir() / "ck").string()}) {
    SCOPED_TRACE(args);
    const auto r = run_command(dist("--max-steps 50 --run-dir r-" + std::to_string(args.size()) + " " + args));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    const auto errors = lines_with(r.output, "error:");
    ASSERT_EQ(errors.size(), 1u) << r.output;
    EXPECT_NE(errors[0].find("not enough disk space: needs about"), std::string::npos) << errors[0];
    EXPECT_NE(errors[0].find("MiB) free in " + small.dir().string()), std::string::npos) << errors[0];
    EXPECT_EQ(r.output.find("Epoch"), std::string::npos) << "trained before refusing:\n" << r.output;
  }
}

// ---- the disk fills up while the run goes (exit 5) ----------------------------------------------
// Checkpoints every step onto a tmpfs that holds two of them: the third write fails.
TEST_F(OutputSpace, AFullDiskAtACheckpointEndsTheRunAndKeepsTheEarlierOnes) {
  const Tmpfs& d = disk("2m");  // LeNet-5: a checkpoint is ~0.74 MB
  const fs::path ck = d.dir() / "ck";
  const auto r = run_command(dist("--model lenet5 --max-steps 6 --checkpoint-every 1 --keep-checkpoints 5 --run-dir run "
                                  "--checkpoint-dir " + ck.string()));
  EXPECT_EQ(r.exit_code, kExitNoSpace) << r.output;
  const auto errors = lines_with(r.output, "error:");
  ASSERT_EQ(errors.size(), 1u) << r.output;
  const std::string& line = errors[0];
  EXPECT_NE(line.find("cannot write checkpoint " + (ck / "ckpt-0000000003.h5").string() + ": no space left"),
            std::string::npos) << line;
  EXPECT_NE(line.find("bytes (0.7 MiB) needed"), std::string::npos) << line;
  EXPECT_NE(line.find("free in " + ck.string()), std::string::npos) << line;
  EXPECT_NE(line.find("the checkpoints written before are intact"), std::string::npos) << line;
  for (const char* bad : {"HDF5-DIAG", "fatal", "internal error"}) EXPECT_EQ(r.output.find(bad), std::string::npos) << bad;
  expect_no_tmp();
  EXPECT_FALSE(fs::exists(ck / "ckpt-0000000003.h5"));
  // The two before are whole: their bytes match their sidecars, and a run resumes from them.
  for (const char* name : {"ckpt-0000000001.h5", "ckpt-0000000002.h5"}) {
    const std::string side = read_text(ck / (std::string(name) + ".sha256"));
    EXPECT_EQ(side.substr(0, 64), mnist_dist::data::sha256_file((ck / name).string())) << name;
  }
  fs::remove(ck / "ckpt-0000000001.h5");
  fs::remove(ck / "ckpt-0000000001.h5.sha256");  // room for the resumed run's next checkpoint
  const auto resumed = run_command(dist("--model lenet5 --max-steps 3 --checkpoint-every 1 --keep-checkpoints 1 "
                                        "--run-dir run2 --resume auto --checkpoint-dir " + ck.string()));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + (ck / "ckpt-0000000002.h5").string()), std::string::npos)
      << resumed.output;
}

// Another writer fills the disk while the run trains: the model written at the end does not fit.
TEST_F(OutputSpace, AFullDiskAtTheModelSaveEndsTheRunAndKeepsTheEarlierModel) {
  const Tmpfs& d = disk("16m");  // room for the seed net's model (~6.9 MB) at start-up
  const fs::path model = d.dir() / "model.h5";
  {
    std::ofstream(model) << "an earlier model: these bytes must survive\n";
  }
  const fs::path metrics = root_ / "run" / "metrics.jsonl";
  auto run = std::async(std::launch::async, [&] {
    return run_command(dist("--epochs 10 --log-every 1 --progress lines --run-dir run --save " + model.string()));
  });
  // Once training is under way (a step record in the metrics), fill the disk up.
  const auto t0 = std::chrono::steady_clock::now();
  while (read_text(metrics).find("\"step\"") == std::string::npos &&
         run.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
  }
  d.fill_leaving(1 << 20);
  const auto r = run.get();
  EXPECT_EQ(r.exit_code, kExitNoSpace) << r.output;
  const auto errors = lines_with(r.output, "error:");
  ASSERT_EQ(errors.size(), 1u) << r.output;
  EXPECT_NE(errors[0].find("cannot write model " + model.string() + ": no space left on the disk ("), std::string::npos)
      << errors[0];
  EXPECT_NE(errors[0].find("needed, 1048576 bytes (1.0 MiB) free in " + d.dir().string()), std::string::npos)
      << errors[0];
  EXPECT_EQ(r.output.find("HDF5-DIAG"), std::string::npos);
  EXPECT_NE(r.output.find("Epoch 10/10 - "), std::string::npos) << "the run trained to the end first:\n" << r.output;
  expect_no_tmp();
  EXPECT_EQ(read_text(model), "an earlier model: these bytes must survive\n");
}

}  // namespace
