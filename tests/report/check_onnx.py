#!/usr/bin/env python3
"""Checks an ONNX export of mnist_dist: onnx.checker (full check), then OpenCV's dnn module on
N images (float32 N*1*28*28, pixels/255) against mnist_dist's logits (float32 N*10).
Usage: check_onnx.py MODEL.onnx IMAGES.f32 LOGITS.f32 N TOLERANCE   (exit 0 = pass)"""
import sys

import cv2
import numpy as np
import onnx


def main():
    if len(sys.argv) != 6:
        print(__doc__)
        return 2
    path, images_path, logits_path, n, tol = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    print("onnx.checker: ok (ir_version %d, opset %d)" % (model.ir_version, model.opset_import[0].version))
    images = np.fromfile(images_path, dtype=np.float32).reshape(n, 1, 28, 28)
    want = np.fromfile(logits_path, dtype=np.float32).reshape(n, -1)
    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(images)
    got = net.forward()
    got = np.asarray(got).reshape(n, -1)
    diff = np.abs(got - want)
    worst = np.unravel_index(np.argmax(diff), diff.shape)
    print("opencv %s dnn: %d images, max |logit difference| %.3g at image %d class %d (tolerance %g); "
          "same classes: %s" % (cv2.__version__, n, diff.max(), worst[0], worst[1], tol,
                                bool((got.argmax(1) == want.argmax(1)).all())))
    return 0 if diff.max() <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
