// Output shapes of the max-pooling and Flatten bases (layers/elementwise.h).
#include "layers/elementwise.h"

#include "core/error.h"

namespace mnist_dist {

Shape MaxPool2Base::output_shape(const Shape& in) const {
  MD_CHECK(in.h >= 2 && in.w >= 2, "maxpool input too small: " + in.str());
  return Shape{in.n, in.c, in.h / 2, in.w / 2};
}

Shape FlattenBase::output_shape(const Shape& in) const {
  return Shape{in.n, static_cast<int>(in.per_sample()), 1, 1};
}

}  // namespace mnist_dist
