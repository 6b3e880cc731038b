// Dense on CPU: three OpenBLAS SGEMMs (forward, weight gradient, input gradient).
#include <cblas.h>

#include <algorithm>

#include "core/error.h"
#include "layers/backend_cpu.h"
#include "layers/dense.h"
#include "model/init.h"

namespace mnist_dist {
namespace {

class DenseCpu final : public Layer {
 public:
  explicit DenseCpu(const DenseConfig& c) : cfg_(c) {}
  std::string kind() const override { return "dense"; }
  std::string describe() const override {
    return "dense " + std::to_string(cfg_.in_features) + " -> " + std::to_string(cfg_.out_features);
  }
  Shape output_shape(const Shape& in) const override {
    MD_CHECK(in.per_sample() == static_cast<size_t>(cfg_.in_features), "dense input " + in.str());
    return Shape{in.n, cfg_.out_features, 1, 1};
  }
  void declare(ParamArena& a) override {
    w_ = a.declare(name() + "/weight", {cfg_.out_features, cfg_.in_features}, true);
    b_ = a.declare(name() + "/bias", {cfg_.out_features}, true);
  }
  void init(ParamArena& a, Rng& rng) override {
    glorot_uniform(a.param(w_), a.info(w_).count, cfg_.in_features, cfg_.out_features, rng);
    std::fill_n(a.param(b_), cfg_.out_features, 0.0f);
  }

  void forward(Context&, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    const float* b = a.param(b_);
    for (int i = 0; i < n; ++i) std::copy_n(b, out, y.data + static_cast<size_t>(i) * out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x.data, in,
                a.param(w_), in, 1.0f, y.data, out);
  }

  void backward(Context&, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    // dW (out, in) = dyᵀ (out, N) · x (N, in)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy.data, out, x.data,
                in, 0.0f, a.grad(w_), in);
    float* db = a.grad(b_);
    std::fill_n(db, out, 0.0f);
    for (int i = 0; i < n; ++i) {
      const float* row = dy.data + static_cast<size_t>(i) * out;
      for (int j = 0; j < out; ++j) db[j] += row[j];
    }
    if (dx.data != nullptr)  // dx (N, in) = dy (N, out) · W (out, in)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy.data, out,
                  a.param(w_), in, 0.0f, dx.data, in);
  }

 private:
  DenseConfig cfg_;
  int w_ = -1, b_ = -1;
};

}  // namespace

LayerPtr make_dense_cpu(const DenseConfig& config) { return std::make_unique<DenseCpu>(config); }

}  // namespace mnist_dist
