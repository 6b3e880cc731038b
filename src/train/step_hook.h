// A hook the trainer calls on every rank after every optimizer step. The mnist_dist binary
// installs none; the tests' fault-injection binary (tests/e2e/fault_main.cpp) installs one that
// makes a rank fail, perturbs its parameters or sends it a signal at a given step.
#pragma once

#include <cstdint>

#include "layers/param_arena.h"

namespace mnist_dist {

class StepHook {
 public:
  virtual ~StepHook() = default;
  // After global step `global_step` (1-based) on rank `rank`. May throw (the job then ends as
  // on any error), raise a signal, or change the parameters (arena.sync_to_host() first and
  // arena.sync_to_device() after).
  virtual void after_step(int rank, int64_t global_step, ParamArena& arena) = 0;
};

}  // namespace mnist_dist
