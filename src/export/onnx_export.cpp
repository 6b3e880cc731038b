// The ONNX graph of a sequential model: Conv / BatchNormalization / Relu / MaxPool / Flatten /
// Gemm nodes with the weights as initializers, layer by layer, from each layer's kind and
// config (Layer::type(), as_conv2d(), as_batchnorm()).
#include "export/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/output_file.h"
#include "layers/layer.h"
#include "report/build_info.h"

namespace mnist_dist {
namespace {

// A tensor of the arena by name, with its shape.
struct Weights {
  std::vector<int> shape;
  std::vector<float> values;
};

Weights weights(const Model& model, const std::string& name) {
  const ParamArena& a = model.arena();
  for (const ParamInfo& p : a.infos())
    if (p.name == name) {
      const float* src = (p.trainable ? a.params() : a.state()) + p.offset;
      return Weights{p.shape, std::vector<float>(src, src + p.count)};
    }
  fatal("the model has no tensor '" + name + "'", __FILE__, __LINE__);
}

class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* g) : g_(g) {}

  std::string initializer(const std::string& name, const Weights& w) {
    onnx::TensorProto* t = g_->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int d : w.shape) t->add_dims(d);
    // raw_data is little-endian float32, as the x86/ARM memory layout is.
    t->set_raw_data(std::string(reinterpret_cast<const char*>(w.values.data()), w.values.size() * sizeof(float)));
    return name;
  }

  onnx::NodeProto* node(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                        const std::string& output) {
    onnx::NodeProto* n = g_->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  static void ints(onnx::NodeProto* n, const char* name, std::vector<int64_t> v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  static void scalar(onnx::NodeProto* n, const char* name, int64_t v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void scalar(onnx::NodeProto* n, const char* name, float v) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

 private:
  onnx::GraphProto* g_;
};

void value_info(onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> dims, const std::string& doc) {
  v->set_name(name);
  v->set_doc_string(doc);
  onnx::TypeProto_Tensor* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  onnx::TensorShapeProto* s = t->mutable_shape();
  s->add_dim()->set_dim_param("N");
  for (int64_t d : dims) s->add_dim()->set_dim_value(d);
}

void metadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* e = m.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

// Conv with the layer's kernel, padding and bias.
void add_conv(GraphBuilder& b, const Model& model, const std::string& name, const Conv2dConfig& cfg,
              const std::string& x) {
  const int64_t k = cfg.kernel, pad = conv_pad(cfg);
  const std::string wname = b.initializer(name + ".weight", weights(model, name + "/weight"));  // (O, I, K, K)
  const std::string bname = b.initializer(name + ".bias", weights(model, name + "/bias"));
  onnx::NodeProto* n = b.node("Conv", name, {x, wname, bname}, name);
  GraphBuilder::ints(n, "kernel_shape", {k, k});
  GraphBuilder::ints(n, "pads", {pad, pad, pad, pad});
  GraphBuilder::ints(n, "strides", {1, 1});
  GraphBuilder::ints(n, "dilations", {1, 1});
  GraphBuilder::scalar(n, "group", int64_t{1});
}

// BatchNorm folded into the convolution `conv` whose output it normalises:
// y = γ (conv(x) + b − μ) / √(σ² + ε) + β  →  W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β
void fold_batchnorm(onnx::GraphProto* g, const Model& model, const std::string& name,
                    const BatchNormConfig& cfg, const std::string& conv) {
  const Weights gamma = weights(model, name + "/weight"), beta = weights(model, name + "/bias");
  const Weights mean = weights(model, name + "/running_mean"), var = weights(model, name + "/running_var");
  onnx::TensorProto* tw = nullptr;
  onnx::TensorProto* tb = nullptr;
  for (int t = 0; t < g->initializer_size(); ++t) {
    if (g->initializer(t).name() == conv + ".weight") tw = g->mutable_initializer(t);
    if (g->initializer(t).name() == conv + ".bias") tb = g->mutable_initializer(t);
  }
  MD_CHECK(tw != nullptr && tb != nullptr, "conv initializers");
  std::string& rw = *tw->mutable_raw_data();
  std::string& rb = *tb->mutable_raw_data();
  const size_t channels = gamma.values.size(), per = rw.size() / sizeof(float) / channels;
  for (size_t c = 0; c < channels; ++c) {
    const double f = gamma.values[c] / std::sqrt(static_cast<double>(var.values[c]) + cfg.epsilon);
    for (size_t j = 0; j < per; ++j) {
      float v;
      std::memcpy(&v, rw.data() + (c * per + j) * sizeof(float), sizeof v);
      v = static_cast<float>(v * f);
      std::memcpy(rw.data() + (c * per + j) * sizeof(float), &v, sizeof v);
    }
    float bias;
    std::memcpy(&bias, rb.data() + c * sizeof(float), sizeof bias);
    bias = static_cast<float>((bias - mean.values[c]) * f + beta.values[c]);
    std::memcpy(rb.data() + c * sizeof(float), &bias, sizeof bias);
  }
}

// BatchNormalization in inference form (the running statistics).
void add_batchnorm(GraphBuilder& b, const Model& model, const std::string& name, const BatchNormConfig& cfg,
                   const std::string& x) {
  onnx::NodeProto* n = b.node("BatchNormalization", name,
                              {x, b.initializer(name + ".weight", weights(model, name + "/weight")),
                               b.initializer(name + ".bias", weights(model, name + "/bias")),
                               b.initializer(name + ".running_mean", weights(model, name + "/running_mean")),
                               b.initializer(name + ".running_var", weights(model, name + "/running_var"))},
                              name);
  GraphBuilder::scalar(n, "epsilon", cfg.epsilon);
}

// The graph's nodes, layer by layer, from the layers' kinds and configs; returns the last
// node's output.
std::string add_layers(onnx::GraphProto* g, const Model& model, const OnnxExportOptions& opt) {
  GraphBuilder b(g);
  std::string x = "input";
  std::string last_conv_name;  // for folding: the convolution whose output x may be
  for (size_t i = 0; i < model.num_layers(); ++i) {
    const Layer& layer = model.layer(i);
    const std::string name = layer.name();
    switch (layer.type()) {
      case LayerKind::kConv2d:
        add_conv(b, model, name, *layer.as_conv2d(), x);
        last_conv_name = name;
        break;
      case LayerKind::kBatchNorm:
        if (opt.fold_batchnorm && !last_conv_name.empty() && x == last_conv_name) {
          fold_batchnorm(g, model, name, *layer.as_batchnorm(), last_conv_name);
          continue;  // the convolution's output stands for the normalised one
        }
        add_batchnorm(b, model, name, *layer.as_batchnorm(), x);
        break;
      case LayerKind::kRelu:
        b.node("Relu", name, {x}, name);
        break;
      case LayerKind::kMaxPool2: {
        onnx::NodeProto* n = b.node("MaxPool", name, {x}, name);
        GraphBuilder::ints(n, "kernel_shape", {2, 2});
        GraphBuilder::ints(n, "strides", {2, 2});
        break;
      }
      case LayerKind::kFlatten:
        GraphBuilder::scalar(b.node("Flatten", name, {x}, name), "axis", int64_t{1});
        break;
      case LayerKind::kDense: {
        onnx::NodeProto* n = b.node("Gemm", name,
                                    {x, b.initializer(name + ".weight", weights(model, name + "/weight")),
                                     b.initializer(name + ".bias", weights(model, name + "/bias"))},
                                    name);
        GraphBuilder::scalar(n, "transB", int64_t{1});  // W is (out, in), as in nn.Linear
        break;
      }
      case LayerKind::kDropout:
        continue;  // the identity at inference
      case LayerKind::kCustom:
        throw UserError("cannot export layer '" + name + "' of kind '" + layer.kind() + "' to ONNX");
    }
    x = name;
  }
  return x;
}

}  // namespace

bool onnx_supported() { return true; }

void export_onnx(const Model& model, const std::string& path, const OnnxExportOptions& opt) {
  onnx::ModelProto m;
  m.set_ir_version(kOnnxIrVersion);
  m.set_producer_name("mnist_dist");
  m.set_producer_version(build_info().value("version", "unknown"));
  m.set_model_version(1);
  m.set_doc_string("mnist_dist " + model.arch() + " network; input: pixels / 255, NCHW; output: logits");
  onnx::OperatorSetIdProto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(kOnnxOpset);
  metadata(m, "architecture", model.arch());
  metadata(m, "input_scaling", "pixel / 255");
  metadata(m, "input_layout", "NCHW");
  metadata(m, "output", "logits (apply softmax for class probabilities)");
  metadata(m, "batchnorm", opt.fold_batchnorm ? "folded into the preceding Conv" : "BatchNormalization (inference)");
  if (!opt.source.empty()) metadata(m, "source", opt.source);

  onnx::GraphProto* g = m.mutable_graph();
  g->set_name("mnist_dist_" + model.arch());
  const Shape in = model.input_shape();
  value_info(g->add_input(), "input", {in.c, in.h, in.w}, "float pixels / 255, (N, C, H, W)");
  add_layers(g, model, opt);
  // The last node's output is the graph's output "logits".
  g->mutable_node(g->node_size() - 1)->set_output(0, "logits");
  value_info(g->add_output(), "logits", {model.num_classes()}, "(N, classes) logits");

  try {
    onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    fatal(std::string("the exported ONNX graph fails onnx::checker: ") + e.what(), __FILE__, __LINE__);
  }
  std::string bytes;
  if (!m.SerializeToString(&bytes)) fatal("protobuf could not serialize the ONNX model", __FILE__, __LINE__);
  write_file_atomically("ONNX model", path, bytes.data(), bytes.size());
}

}  // namespace mnist_dist
