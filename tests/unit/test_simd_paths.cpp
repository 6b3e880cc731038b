// The AVX-512 and the portable CPU kernels give the same bits where the code claims it
// (cpu_simd.h's element-wise kernels and transpose, the Adam loop) and agree within rounding
// where only the summation order differs (BatchNorm's double sums, the direct convolution vs
// im2col + SGEMM). simd_paths_probe runs once with MNIST_DIST_NO_AVX512=0 and once with =1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

struct Record {
  bool same_bits = false;
  std::vector<double> v;
};

std::map<std::string, Record> run_probe(bool no_avx512) {
  const std::string out = ::testing::TempDir() + "simd_paths_" + std::to_string(getpid()) +
                          (no_avx512 ? "_portable" : "_avx512") + ".bin";
  // One thread: the convolution's per-thread partial sums then have the same split on both paths.
  const std::string cmd = std::string("OMP_NUM_THREADS=1 MNIST_DIST_NO_AVX512=") +
                          (no_avx512 ? "1 " : "0 ") + SIMD_PATHS_PROBE + " " + out;
  std::map<std::string, Record> recs;
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << cmd << " failed";
    return recs;
  }
  FILE* f = std::fopen(out.c_str(), "rb");
  uint32_t len = 0;
  while (f != nullptr && std::fread(&len, sizeof len, 1, f) == 1) {
    std::string name(len, '\0');
    uint8_t claim = 0;
    uint64_t count = 0;
    Record r;
    bool ok = std::fread(name.data(), 1, len, f) == len && std::fread(&claim, 1, 1, f) == 1 &&
              std::fread(&count, sizeof count, 1, f) == 1;
    r.v.resize(count);
    ok = ok && std::fread(r.v.data(), sizeof(double), count, f) == count;
    if (!ok) ADD_FAILURE() << out << ": truncated record " << name;
    r.same_bits = claim != 0;
    recs[name] = std::move(r);
  }
  if (f != nullptr) std::fclose(f);
  std::remove(out.c_str());
  return recs;
}

TEST(SimdPaths, SameBitsWhereClaimedAndWithinRoundingElsewhere) {
  const auto avx = run_probe(false), portable = run_probe(true);
  ASSERT_FALSE(avx.empty());
  ASSERT_EQ(avx.size(), portable.size());
  EXPECT_EQ(portable.at("avx512_used").v[0], 0.0) << "MNIST_DIST_NO_AVX512=1 did not switch AVX-512 off";
  EXPECT_EQ(portable.at("conv1_direct_kernels_used").v[0], 0.0);
  if (avx.at("avx512_used").v[0] == 0.0)
    GTEST_SKIP() << "this CPU has no AVX-512: both runs took the portable path";
  EXPECT_EQ(avx.at("conv1_direct_kernels_used").v[0], 1.0) << "the direct convolution did not run";
  EXPECT_EQ(avx.at("conv2_direct_kernels_used").v[0], 1.0) << "the direct convolution did not run";
  for (const auto& [name, a] : avx) {
    if (name.find("_used") != std::string::npos) continue;
    const Record& p = portable.at(name);
    ASSERT_EQ(a.v.size(), p.v.size()) << name;
    if (a.same_bits) {
      size_t diff = 0, first = 0;
      for (size_t i = a.v.size(); i-- > 0;)
        if (std::memcmp(&a.v[i], &p.v[i], sizeof(double)) != 0) ++diff, first = i;
      EXPECT_EQ(diff, 0u) << name << ": " << diff << " of " << a.v.size()
                          << " elements differ in bits; first at " << first << ": AVX-512 "
                          << (diff ? a.v[first] : 0) << " vs portable " << (diff ? p.v[first] : 0);
    } else {
      double scale = 0, worst = 0;
      size_t where = 0;
      for (size_t i = 0; i < a.v.size(); ++i) {
        scale = std::max(scale, std::fabs(p.v[i]));
        if (std::fabs(a.v[i] - p.v[i]) > worst) worst = std::fabs(a.v[i] - p.v[i]), where = i;
      }
      EXPECT_LE(worst, 1e-5 * scale + 1e-12) << name << ": max difference " << worst << " at " << where
                                             << " (max |portable| " << scale << ")";
    }
  }
}

}  // namespace
