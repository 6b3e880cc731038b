// Shape-only and element-wise layers: ReLU, 2×2 max-pooling (stride 2, 'valid': odd edges
// dropped, first maximum wins on ties), Flatten (NCHW → (N, C·H·W, 1, 1)).
#pragma once

#include "layers/layer.h"

namespace mnist_dist {

LayerPtr make_relu(Backend backend);
LayerPtr make_maxpool2(Backend backend);
LayerPtr make_flatten(Backend backend);

}  // namespace mnist_dist
