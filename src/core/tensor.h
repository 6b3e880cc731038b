// Shapes and non-owning tensor views used across layers: activations are NCHW float32.
#pragma once

#include <cstddef>
#include <string>

namespace mnist_dist {

// A 4-D shape (N, C, H, W); dense activations use (N, C, 1, 1).
struct Shape {
  int n = 1, c = 1, h = 1, w = 1;
  size_t per_sample() const { return static_cast<size_t>(c) * h * w; }
  size_t size() const { return static_cast<size_t>(n) * per_sample(); }
  Shape with_batch(int batch) const { return Shape{batch, c, h, w}; }
  bool operator==(const Shape& o) const { return n == o.n && c == o.c && h == o.h && w == o.w; }
  std::string str() const {
    return "(" + std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(h) + ", " +
           std::to_string(w) + ")";
  }
};

// A view of float memory owned elsewhere (host or device, per the layer's backend).
struct Tensor {
  float* data = nullptr;
  Shape shape;
  size_t size() const { return shape.size(); }
};

}  // namespace mnist_dist
