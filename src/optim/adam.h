// Adam over the flat parameter arena (Keras semantics, see optim/adam_math.h). The moments
// m and v are flat buffers with the arena's offsets, in the backend's memory; step t counts
// applied updates. The CPU step is one OpenMP loop, the CUDA step one fused kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/context.h"
#include "cuda/buffer.h"
#include "optim/adam_math.h"

namespace mnist_dist {

struct AdamConfig {
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-7f;
  float weight_decay = 0.0f;  // AdamW's decoupled decay (0: Adam)
};

class Adam {
 public:
  Adam(const AdamConfig& config, size_t count, Backend backend = Backend::kCpu);

  // One update of params[0..count) with grads (already averaged over the global batch), both
  // in the backend's memory. ctx.cuda is needed on the CUDA backend.
  void step(Context& ctx, float* params, const float* grads);
  void step(float* params, const float* grads);  // CPU backend
  // CPU backend, one step that updates only [begin, end) (the rank's shard under a sharded
  // gradient exchange); the moments elsewhere are left as they are.
  void step(float* params, const float* grads, size_t begin, size_t end);
  // The same with the gradient given as the sum of n buffers, added in buffer order as read
  // ((g0 + g1) + g2 ...; the sharded exchange's node buffers).
  void step_sum(float* params, const float* const* grads, int n, size_t begin, size_t end);

  // One step taken in pieces (one rank: each layer's range as soon as backward has finished
  // its gradients, while they are still in cache): begin_step() once, then update() on disjoint
  // ranges that together cover the arena. Bit-equal to step() (element-wise).
  void begin_step();
  void update(float* params, const float* grads, size_t begin, size_t end);
  // The same with the gradient given as the sum of n buffers (as step_sum).
  void update_sum(float* params, const float* const* grads, int n, size_t begin, size_t end);
  // update() where feed(lo, hi) first writes grads[lo, hi), piece by piece, just before the
  // update reads it, while it is still in cache (deterministic training rounds its fixed-point
  // sums there). feed runs on the OpenMP thread that updates the piece.
  void update_fed(float* params, float* grads, size_t begin, size_t end,
                  const std::function<void(size_t, size_t)>& feed);

  // CPU: the parameters are written with streaming stores (adam::update_range's stream_params;
  // on by default). Other cores read them before this one writes them again (the other OpenMP
  // threads in the dense layers' GEMMs, the node's ranks under the sharded exchange); ordinary
  // stores then wait on those cores' copies (~19 % of the seed step on 2 threads, ~25 % of
  // 2 ranks x 1 thread, when the VM's vCPUs sit on different CCDs). On one thread it measured
  // the same either way. Changes timing only.
  void set_stream_params(bool on) { stream_params_ = on; }

  // The coefficients of step t (1-based): lr_t = lr·√(1−β2^t)/(1−β1^t).
  adam::Coeffs coeffs(int64_t t) const;

  // Back to the state of a new optimizer (zero moments, step 0) on the same backend.
  void reset();

  int64_t steps() const { return t_; }
  void set_steps(int64_t t) { t_ = t; }
  float* m() { return m_.data(); }  // backend memory
  float* v() { return v_.data(); }
  size_t count() const { return m_.size(); }
  Backend backend() const { return m_.backend(); }
  // Host transfers of the moments (checkpoints, broadcasts).
  void download_moments(float* m, float* v) const;
  void upload_moments(const float* m, const float* v);
  const AdamConfig& config() const { return cfg_; }
  // The learning rate of the steps from now on (a schedule sets it before each step).
  void set_lr(double lr) { cfg_.lr = static_cast<float>(lr); }

 private:
  AdamConfig cfg_;
  int64_t t_ = 0;
  adam::Coeffs step_coeffs_{};  // of step t_ (set by begin_step)
  bool stream_params_ = true;
  Buffer<float> m_, v_;
};

}  // namespace mnist_dist
