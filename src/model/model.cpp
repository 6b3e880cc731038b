// Sequential model: architecture definitions, buffer allocation, forward/backward sweeps.
#include "model/model.h"

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "core/error.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/elementwise.h"
#include "layers/fusion.h"

namespace mnist_dist {

std::vector<std::string> model_names() { return {"seed", "lenet5"}; }

Model::Model(const std::string& arch, Backend backend, Shape input, int num_classes,
             int max_batch, float dropout)
    : arch_(arch),
      backend_(backend),
      input_(input),
      classes_(num_classes),
      max_batch_(max_batch),
      arena_(backend) {
  const Backend b = backend;
  const int c0 = input.c;
  auto flat = [&](int c, int h, int w) { return c * h * w; };
  // --dropout: after each hidden dense layer's ReLU (none at 0, so the layers are as without it).
  auto dropout_after_hidden = [&](uint64_t salt) {
    if (dropout > 0.0f) add(make_dropout(b, {dropout, salt}), "dropout" + std::to_string(salt));
  };
  if (arch == "seed") {
    // conv 6@5×5 same → BN → ReLU → pool → conv 12@5×5 same → BN → ReLU → pool →
    // flatten 588 → dense 1200 → ReLU → dense 840 → ReLU → dense classes
    add(make_conv2d(b, {c0, 6, 5, Padding::kSame}), "conv1");
    add(make_batchnorm(b, {6}), "bn1");
    add(make_relu(b), "relu1");
    add(make_maxpool2(b), "pool1");
    add(make_conv2d(b, {6, 12, 5, Padding::kSame}), "conv2");
    add(make_batchnorm(b, {12}), "bn2");
    add(make_relu(b), "relu2");
    add(make_maxpool2(b), "pool2");
    add(make_flatten(b), "flatten");
    add(make_dense(b, {flat(12, input.h / 4, input.w / 4), 1200}), "dense1");
    add(make_relu(b), "relu3");
    dropout_after_hidden(1);
    add(make_dense(b, {1200, 840}), "dense2");
    add(make_relu(b), "relu4");
    dropout_after_hidden(2);
    add(make_dense(b, {840, num_classes}), "dense3");
  } else if (arch == "lenet5") {
    // Classic LeNet-5 for 28×28 input (C1 padded to keep 28×28), ReLU and max-pooling:
    // conv 6@5×5 same → ReLU → pool → conv 16@5×5 valid → ReLU → pool → 400 → 120 → 84 → classes
    add(make_conv2d(b, {c0, 6, 5, Padding::kSame}), "conv1");
    add(make_relu(b), "relu1");
    add(make_maxpool2(b), "pool1");
    add(make_conv2d(b, {6, 16, 5, Padding::kValid}), "conv2");
    add(make_relu(b), "relu2");
    add(make_maxpool2(b), "pool2");
    add(make_flatten(b), "flatten");
    add(make_dense(b, {flat(16, (input.h / 2 - 4) / 2, (input.w / 2 - 4) / 2), 120}), "dense1");
    add(make_relu(b), "relu3");
    dropout_after_hidden(1);
    add(make_dense(b, {120, 84}), "dense2");
    add(make_relu(b), "relu4");
    dropout_after_hidden(2);
    add(make_dense(b, {84, num_classes}), "dense3");
  } else {
    throw UserError("unknown model '" + arch + "': use --model seed or --model lenet5");
  }

  // Shapes, parameters, buffers.
  Shape s = input.with_batch(max_batch);
  for (auto& layer : layers_) {
    const size_t before = arena_.infos().size();
    layer->declare(arena_);
    const size_t after = arena_.infos().size();
    size_t lo = SIZE_MAX, hi = 0;
    for (size_t id = before; id < after; ++id) {
      const ParamInfo& p = arena_.info(static_cast<int>(id));
      if (!p.trainable) continue;
      lo = std::min(lo, p.offset);
      hi = std::max(hi, p.offset + p.count);
    }
    grad_ranges_.push_back(lo == SIZE_MAX ? std::make_pair(size_t{0}, size_t{0})
                                          : std::make_pair(lo, hi));
    layer->reserve(s);
    s = layer->output_shape(s);
    out_shapes_.push_back(s);
    acts_.emplace_back(backend, s.size());
    // The last layer's upstream gradient is the loss's dlogits buffer.
    dacts_.emplace_back(backend, &layer == &layers_.back() ? 0 : s.size());
  }
  MD_CHECK(s.per_sample() == static_cast<size_t>(num_classes), "model output " + s.str());
  arena_.finalize();
  fused_.assign(layers_.size(), 0);
  for (size_t i = 0; i + 2 < layers_.size(); ++i)
    fused_[i] = layers_[i]->type() == LayerKind::kBatchNorm && layers_[i + 1]->type() == LayerKind::kRelu &&
                layers_[i]->fused_relu_pool() != nullptr && layers_[i + 2]->pool_argmax() != nullptr;
}

void Model::add(LayerPtr layer, const std::string& name) {
  layer->set_name(name);
  layers_.push_back(std::move(layer));
}

void Model::init(uint64_t seed) {
  Rng rng(seed, /*stream=*/0x1417);
  for (auto& layer : layers_) layer->init(arena_, rng);
  arena_.sync_to_device();
}

const Tensor& Model::forward(Context& ctx, const float* x, int n, bool training) {
  MD_CHECK(n >= 0 && n <= max_batch_, "batch of " + std::to_string(n) + " samples, model built for " +
                                         std::to_string(max_batch_));
  last_input_ = x;
  last_n_ = n;
  last_fused_ = ctx.fuse_layers;  // backward runs the blocks as this forward did
  Tensor in{const_cast<float*>(x), input_.with_batch(n)};
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (fused_in_pass(i)) {  // BatchNorm → ReLU → max-pool in one sweep: only the pool's output
      Tensor out{acts_[i + 2].data(), out_shapes_[i + 2].with_batch(n)};
      layers_[i]->fused_relu_pool()->forward_relu_pool(ctx, arena_, in, out,
                                                        layers_[i + 2]->pool_argmax()->argmax(), training);
      in = out;
      i += 2;
      continue;
    }
    Tensor out{acts_[i].data(), out_shapes_[i].with_batch(n)};
    layers_[i]->forward(ctx, arena_, in, out, training);
    in = out;
  }
  logits_ = in;
  return logits_;
}

void Model::backward(Context& ctx, const float* dlogits, const std::function<void(int)>& grads_ready) {
  const int n = last_n_;
  MD_CHECK(last_input_ != nullptr, "backward before forward");
  const size_t last = layers_.size() - 1;
  for (size_t k = layers_.size(); k-- > 0;) {
    if (k >= 2 && fused_in_pass(k - 2)) {  // k is the pool of a fused block starting at b
      const size_t b = k - 2;
      Tensor x = b == 0 ? Tensor{const_cast<float*>(last_input_), input_.with_batch(n)}
                        : Tensor{acts_[b - 1].data(), out_shapes_[b - 1].with_batch(n)};
      Tensor y_pool{acts_[k].data(), out_shapes_[k].with_batch(n)};
      Tensor dy_pool{k == last ? const_cast<float*>(dlogits) : dacts_[k].data(), y_pool.shape};
      Tensor dx{b == 0 ? nullptr : dacts_[b - 1].data(), x.shape};
      layers_[b]->fused_relu_pool()->backward_relu_pool(ctx, arena_, x, y_pool, layers_[k]->pool_argmax()->argmax(),
                                                        dy_pool, dx);
      if (grads_ready && grad_ranges_[b].second > grad_ranges_[b].first) grads_ready(static_cast<int>(b));
      k = b;
      continue;
    }
    Tensor x = k == 0 ? Tensor{const_cast<float*>(last_input_), input_.with_batch(n)}
                      : Tensor{acts_[k - 1].data(), out_shapes_[k - 1].with_batch(n)};
    Tensor y{acts_[k].data(), out_shapes_[k].with_batch(n)};
    Tensor dy{k == last ? const_cast<float*>(dlogits) : dacts_[k].data(), y.shape};
    Tensor dx{k == 0 ? nullptr : dacts_[k - 1].data(), x.shape};
    layers_[k]->backward(ctx, arena_, x, y, dy, dx);
    if (grads_ready && grad_ranges_[k].second > grad_ranges_[k].first) grads_ready(static_cast<int>(k));
  }
}

std::string Model::summary() const {
  std::ostringstream os;
  for (size_t i = 0; i < layers_.size(); ++i) {
    os << "  " << layers_[i]->name() << ": " << layers_[i]->describe() << " -> "
       << out_shapes_[i].with_batch(1).str() << "\n";
  }
  os << "  trainable parameters: " << arena_.trainable_scalars();
  return os.str();
}

}  // namespace mnist_dist
