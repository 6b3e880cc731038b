// Naive double-precision reference implementations (plain loops, no tricks) of every CPU layer:
// the oracles of the unit tests. Layouts as in the engine: activations NCHW, conv kernel
// (O, I, KH, KW), dense weight (out, in); stride 1 convolution with symmetric zero padding.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mnist_dist::ref {

using Vec = std::vector<double>;

// ---- conv2d: x (N, C, H, W), w (O, C, K, K), b (O) → y (N, O, H+2p−K+1, W+2p−K+1) ----------
Shape conv2d_out_shape(const Shape& x, int out_channels, int k, int pad);
Vec conv2d_forward(const Vec& x, const Shape& xs, const Vec& w, const Vec& b, int out_channels,
                   int k, int pad);
struct ConvGrads { Vec dx, dw, db; };
ConvGrads conv2d_backward(const Vec& x, const Shape& xs, const Vec& w, const Vec& dy,
                          int out_channels, int k, int pad);

// ---- batchnorm over (N, H, W) per channel ----------------------------------------------------
struct BnForward {
  Vec y;
  Vec mean, var;   // batch mean and biased variance (normalisation)
  Vec var_unbiased;
};
BnForward batchnorm_train_forward(const Vec& x, const Shape& xs, const Vec& gamma,
                                  const Vec& beta, double eps);
struct BnGrads { Vec dx, dgamma, dbeta; };
BnGrads batchnorm_train_backward(const Vec& x, const Shape& xs, const Vec& gamma,
                                 const Vec& dy, double eps);
Vec batchnorm_eval_forward(const Vec& x, const Shape& xs, const Vec& gamma, const Vec& beta,
                           const Vec& running_mean, const Vec& running_var, double eps);
// Keras: running = momentum·running + (1 − momentum)·batch (in place).
void batchnorm_running_update(Vec& running, const Vec& batch, double momentum);

// ---- 2×2 / stride-2 max-pooling, first maximum wins (scan (0,0),(0,1),(1,0),(1,1)) --------
Vec maxpool2_forward(const Vec& x, const Shape& xs);
Vec maxpool2_backward(const Vec& x, const Shape& xs, const Vec& dy);

// ---- ReLU ----------------------------------------------------------------------------------
Vec relu_forward(const Vec& x);
Vec relu_backward(const Vec& x, const Vec& dy);  // derivative 0 at x = 0

// ---- dense: x (N, in), w (out, in), b (out) -------------------------------------------------
Vec dense_forward(const Vec& x, int n, const Vec& w, const Vec& b, int in, int out);
struct DenseGrads { Vec dx, dw, db; };
DenseGrads dense_backward(const Vec& x, int n, const Vec& w, const Vec& dy, int in, int out);

// ---- softmax cross-entropy over logits (N, K) -------------------------------------------------
struct XentResult {
  double loss_sum = 0.0;       // Σ −log softmax[label]
  int64_t correct = 0;         // arg-max (first on ties) == label
  std::vector<int> predicted;
  Vec dlogits;                 // (softmax − onehot)·scale
};
XentResult softmax_xent(const Vec& logits, int n, int k, const std::vector<uint8_t>& labels,
                        double scale);

}  // namespace mnist_dist::ref
