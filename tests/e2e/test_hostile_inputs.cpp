// Hostile inputs, table-driven: each bad IDX file, shard, manifest, checkpoint or flag value is
// given to the real executables (mnist_prepare, mnist_dist), which must exit 2 with one error
// line naming the problem, never hang, and leave what was written before byte- and mtime-intact.
// Checkpoints and models carry a SHA-256 sidecar checked before HDF5 opens them; cases that
// test the checks behind it re-sign the damaged file (resign()) so that HDF5 gets to see it.

#include <gtest/gtest.h>

#include "hostile_scene.h"

using namespace hostile;  // NOLINT: the scene and the case table share these names

namespace {

std::vector<Case> cases() {
  std::vector<Case> c;
  add_input_cases(c);
  add_run_cases(c);
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
  const std::string cmd = kDist + " --device cpu --data " + s.data().string() + " --threads 1 --max-steps 3 --keep-checkpoints 5 --run-dir " +
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
  const std::string cmd = kDist + " --device cpu --data " + s.data().string() + " --threads 1 --max-steps 3 --keep-checkpoints 5 --run-dir " +
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
// by the watchdog (--timeout: exit 6). Either way it ends in bounded time, saying why.
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
  EXPECT_TRUE(r.exit_code == 6 || r.exit_code == 2) << "exit " << r.exit_code << " after " << secs << " s\n" << r.output;
  EXPECT_LT(secs, 40.0) << r.output;
  EXPECT_TRUE(r.output.find("train-00000-of-00002.h5") != std::string::npos ||
              r.output.find("no progress") != std::string::npos) << r.output;
}

TEST(HostileTable, HasAtLeast25Cases) { EXPECT_GE(cases().size(), 25u); }

}  // namespace
