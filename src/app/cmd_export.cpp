// `mnist_dist export --checkpoint PATH --onnx FILE`: a trained model (a --save file or a
// checkpoint) as a standard ONNX model for other runtimes.
#include <cstdio>
#include <exception>
#include <filesystem>

#include "app/commands.h"
#include "core/cli.h"
#include "core/error.h"
#include "export/model_file.h"
#include "export/onnx_export.h"
#include "io/model_io.h"
#include "io/output_file.h"

namespace mnist_dist {

int run_export(int argc, char** argv) {
  std::string checkpoint, onnx_path;
  bool fold = false;
  CLI::App app{"mnist_dist export: writes a trained model as ONNX (opset 13) for other runtimes\n"
               "(onnxruntime, OpenCV dnn, TensorRT). Input 'input' float (N, 1, 28, 28) = pixels / 255;\n"
               "output 'logits' (N, 10); softmax of the logits gives the class probabilities.",
               "mnist_dist export"};
  app.add_option("--checkpoint", checkpoint, "A model written with --save, or a training checkpoint")
      ->required();
  app.add_option("--onnx", onnx_path, "The ONNX file to write")->required();
  app.add_flag("--fold-bn", fold,
               "Fold BatchNorm into the preceding convolution (default: a BatchNormalization node "
               "in inference form, with the running statistics)");
  app.footer("Example:\n  mnist_dist export --checkpoint model.h5 --onnx model.onnx\n"
             "Exit codes: 0 success, 1 internal error, 2 bad input (flags, paths, files),\n"
             "  5 no space left to write the ONNX file (nothing half-written).");
  if (auto code = parse_command_line(app, argc, argv)) return *code;
  return run_reporting_errors("mnist_dist export", [&] {
    ModelFileInfo info;
    // The file named here may predate sidecars: read it, unverified, after saying so.
    if (std::filesystem::is_regular_file(checkpoint) && !has_sidecar(checkpoint))
      std::fprintf(stderr, "mnist_dist export: %s\n", unverified_warning(checkpoint).c_str());
    check_output_file("--onnx", onnx_path, 0, "model.onnx");  // the path, before any work
    const Model model = load_model_file(checkpoint, 1, &info, MissingSidecar::kAllow);
    check_output_file("--onnx", onnx_path, model_file_bytes(model), "model.onnx");  // and the room
    export_onnx(model, onnx_path, OnnxExportOptions{fold, checkpoint});
    bool has_bn = false;
    for (size_t i = 0; i < model.num_layers(); ++i) has_bn = has_bn || model.layer(i).as_batchnorm() != nullptr;
    std::printf("wrote %s: %s network, ONNX opset %d; input 'input' (N, %d, %d, %d) pixels / 255, output "
                "'logits' (N, %d)%s\n",
                onnx_path.c_str(), info.arch.c_str(), kOnnxOpset, info.input.c, info.input.h, info.input.w,
                info.num_classes,
                !has_bn ? "" : fold ? "; BatchNorm folded into the convolutions"
                                    : "; BatchNorm as BatchNormalization (inference form)");
    return kExitOk;
  });
}

}  // namespace mnist_dist
