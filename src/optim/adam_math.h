// Per-element Adam update with Keras semantics, shared by the CPU loop and the CUDA kernel.
// Keras/TF: m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
//           θ ← θ − lr_t · m / (√v + ε)   with lr_t = lr · √(1−β2^t) / (1−β1^t).
// (PyTorch adds ε to √v̂ instead; the two differ only in how ε is scaled.)
// AdamW (decoupled weight decay, Loshchilov & Hutter; torch.optim.AdamW): first
// θ ← θ·(1 − lr·wd), then the step above; decay == 1 (no weight decay) skips the multiply.
#pragma once

#include <math.h>

#include "core/hostdev.h"

namespace mnist_dist::adam {

struct Coeffs {
  float lr_t;   // bias-corrected step size for this step
  float beta1, beta2, eps;
  float decay = 1.0f;  // AdamW: 1 − lr·weight_decay
};

MD_HD void update(float& param, float& m, float& v, float g, const Coeffs& c) {
  m = c.beta1 * m + (1.0f - c.beta1) * g;
  v = c.beta2 * v + (1.0f - c.beta2) * g * g;
  if (c.decay != 1.0f) param *= c.decay;
  param -= c.lr_t * m / (sqrtf(v) + c.eps);
}

}  // namespace mnist_dist::adam
