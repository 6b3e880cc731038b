// A sequential network over the flat arena: builds the seed net or classic LeNet-5 for one
// backend, owns the activation and gradient buffers (allocated once for the largest batch),
// runs forward and backward. Backward reports each layer whose gradients are final, last
// layer first, so gradient buckets can be all-reduced while backward continues.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cuda/buffer.h"
#include "layers/layer.h"
#include "layers/param_arena.h"

namespace mnist_dist {

// The architectures --model accepts.
std::vector<std::string> model_names();

class Model {
 public:
  // input: per-sample (1, C, H, W); max_batch: the largest batch forward will see; dropout:
  // the rate of the dropout layers after the hidden dense layers' ReLUs (0: none).
  Model(const std::string& arch, Backend backend, Shape input, int num_classes, int max_batch,
        float dropout = 0.0f);
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;

  // Keras-default initialisation from a seed (same seed → same weights everywhere), computed
  // on the host and uploaded.
  void init(uint64_t seed);

  Backend backend() const { return backend_; }
  // x: (n, C, H, W) in the backend's memory; returns the logits (n, classes).
  const Tensor& forward(Context& ctx, const float* x, int n, bool training);
  // dlogits: (n, classes), backend memory, for the batch of the last forward. grads_ready(layer_index) is called
  // after each layer with parameters has written its gradients (last layer first).
  void backward(Context& ctx, const float* dlogits,
                const std::function<void(int)>& grads_ready = nullptr);

  ParamArena& arena() { return arena_; }
  const ParamArena& arena() const { return arena_; }
  const std::string& arch() const { return arch_; }
  int num_classes() const { return classes_; }
  Shape input_shape() const { return input_; }
  int max_batch() const { return max_batch_; }
  size_t num_layers() const { return layers_.size(); }
  const Layer& layer(size_t i) const { return *layers_[i]; }
  // Range [begin, end) of the gradient buffer written by layer i (empty if no parameters).
  std::pair<size_t, size_t> grad_range(size_t i) const { return grad_ranges_[i]; }
  std::string summary() const;  // one line per layer with output shape and parameter count
  // CPU: BatchNorm → ReLU → max-pool blocks run as one sweep (layers/fusion.h) when the
  // context's fuse_layers is set (its default: core/kernel_choice.h) and this model allows it
  // (set_fusion, on by default; for tests and benchmarks). Same results either way.
  void set_fusion(bool on) { fusion_ = on; }
  // Layer i starts a block that a pass with ctx.fuse_layers set runs fused.
  bool fused_at(size_t i) const { return fusion_ && i < fused_.size() && fused_[i]; }

 private:
  void add(LayerPtr layer, const std::string& name);
  // Fused in the current forward/backward pair (the context of the last forward).
  bool fused_in_pass(size_t i) const { return last_fused_ && fused_at(i); }

  std::string arch_;
  Backend backend_;
  Shape input_;
  int classes_;
  int max_batch_;
  std::vector<LayerPtr> layers_;
  std::vector<char> fused_;  // fused_[i]: layer i starts a BatchNorm → ReLU → max-pool block (CPU)
  bool fusion_ = true;
  std::vector<Shape> out_shapes_;                    // per layer, for max_batch
  std::vector<std::pair<size_t, size_t>> grad_ranges_;
  std::vector<Buffer<float>> acts_;                  // acts_[i] = output of layer i
  std::vector<Buffer<float>> dacts_;                 // dacts_[i] = dL/d(output of layer i)
  const float* last_input_ = nullptr;
  int last_n_ = 0;
  bool last_fused_ = false;  // ctx.fuse_layers of the last forward
  Tensor logits_;
  ParamArena arena_;
};

}  // namespace mnist_dist
