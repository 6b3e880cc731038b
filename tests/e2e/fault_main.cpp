// mnist_dist_faults: the mnist_dist command line with fault injection, for the end-to-end tests
// only (the released mnist_dist has none). Read from the environment once:
//   MNIST_DIST_TEST_FAIL=RANK:STEP      rank RANK throws at optimizer step STEP (1-based)
//   MNIST_DIST_TEST_PERTURB=RANK:STEP   rank RANK changes one parameter after step STEP
//   MNIST_DIST_TEST_KILL=RANK:STEP      rank RANK dies by SIGKILL right after step STEP
//   MNIST_DIST_TEST_SIGNAL=RANK:STEP    rank RANK receives SIGTERM right after step STEP
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "app/commands.h"
#include "train/step_hook.h"

namespace {

struct FaultPoint {
  int rank = -1;
  int64_t step = -1;
  bool hits(int r, int64_t s) const { return r == rank && s == step; }
};

FaultPoint fault_from_env(const char* var) {
  FaultPoint f;
  const char* v = std::getenv(var);
  long long step = -1;
  if (v != nullptr && std::sscanf(v, "%d:%lld", &f.rank, &step) == 2) f.step = step;
  else f.rank = -1;
  return f;
}

class FaultInjector final : public mnist_dist::StepHook {
 public:
  void after_step(int rank, int64_t step, mnist_dist::ParamArena& arena) override {
    if (fail_.hits(rank, step))
      throw std::runtime_error("injected failure at step " + std::to_string(step) + " (MNIST_DIST_TEST_FAIL)");
    if (perturb_.hits(rank, step)) {
      arena.sync_to_host();
      arena.host_params()[0] += 1e-3f;
      arena.sync_to_device();
    }
    if (kill_.hits(rank, step)) std::raise(SIGKILL);
    if (term_.hits(rank, step)) std::raise(SIGTERM);
  }

 private:
  FaultPoint fail_ = fault_from_env("MNIST_DIST_TEST_FAIL");
  FaultPoint perturb_ = fault_from_env("MNIST_DIST_TEST_PERTURB");
  FaultPoint kill_ = fault_from_env("MNIST_DIST_TEST_KILL");
  FaultPoint term_ = fault_from_env("MNIST_DIST_TEST_SIGNAL");
};

}  // namespace

int main(int argc, char** argv) {
  FaultInjector faults;
  return mnist_dist::run_main(argc, argv, &faults);
}
