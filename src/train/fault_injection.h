// Test-only fault injection, read from the environment once: makes one rank fail or perturbs
// its parameters at a given step, so tests can check that the job ends and names the rank.
//   MNIST_DIST_TEST_FAIL=RANK:STEP      rank RANK throws at optimizer step STEP (1-based)
//   MNIST_DIST_TEST_PERTURB=RANK:STEP   rank RANK changes one parameter after step STEP
//   MNIST_DIST_TEST_KILL=RANK:STEP      rank RANK dies by SIGKILL right after step STEP
//   MNIST_DIST_TEST_SIGNAL=RANK:STEP    rank RANK receives SIGTERM right after step STEP
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace mnist_dist {

struct FaultPoint {
  int rank = -1;
  int64_t step = -1;
  bool hits(int r, int64_t s) const { return r == rank && s == step; }
};

inline FaultPoint fault_from_env(const char* var) {
  FaultPoint f;
  const char* v = std::getenv(var);
  long long step = -1;
  if (v != nullptr && std::sscanf(v, "%d:%lld", &f.rank, &step) == 2) f.step = step;
  else f.rank = -1;
  return f;
}

}  // namespace mnist_dist
