// Conv2dBase: the backend-independent half of the convolution (layers/conv2d.h).
#include "layers/conv2d.h"

#include <algorithm>

#include "core/error.h"
#include "layers/init.h"

namespace mnist_dist {

Conv2dBase::Conv2dBase(const Conv2dConfig& config)
    : Layer(LayerKind::kConv2d), cfg_(config), pad_(conv_pad(config)) {}

std::string Conv2dBase::describe() const {
  return "conv2d " + std::to_string(cfg_.out_channels) + "@" + std::to_string(cfg_.kernel) + "x" +
         std::to_string(cfg_.kernel) + (cfg_.padding == Padding::kSame ? " same" : " valid");
}

Shape Conv2dBase::output_shape(const Shape& in) const {
  MD_CHECK(in.c == cfg_.in_channels, "conv2d input channels " + in.str());
  const int oh = in.h + 2 * pad_ - cfg_.kernel + 1, ow = in.w + 2 * pad_ - cfg_.kernel + 1;
  MD_CHECK(oh > 0 && ow > 0, "conv2d input too small: " + in.str());
  return Shape{in.n, cfg_.out_channels, oh, ow};
}

void Conv2dBase::declare(ParamArena& a) {
  const int k = cfg_.kernel;
  w_ = a.declare(name() + "/weight", {cfg_.out_channels, cfg_.in_channels, k, k}, true);
  b_ = a.declare(name() + "/bias", {cfg_.out_channels}, true);
}

void Conv2dBase::init(ParamArena& a, Rng& rng) {
  const int kk = cfg_.kernel * cfg_.kernel;
  glorot_uniform(a.host_param(w_), a.info(w_).count, cfg_.in_channels * kk, cfg_.out_channels * kk,
                 rng);
  std::fill_n(a.host_param(b_), cfg_.out_channels, 0.0f);
}

}  // namespace mnist_dist
