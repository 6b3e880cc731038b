// The evaluation report of a split: accuracy, loss, per-class precision / recall / F1, the
// confusion matrix (rows: true class, columns: predicted class) — test_report.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/evaluator.h"

namespace mnist_dist {

struct ClassStats {
  int64_t support = 0;    // samples of this true class
  int64_t predicted = 0;  // samples predicted as this class
  double precision = 0.0, recall = 0.0, f1 = 0.0;  // 0 when undefined (no samples)
};

struct TestReport {
  std::string split = "test";
  EvalResult eval;
  std::vector<std::vector<int64_t>> confusion;  // [true][predicted]
  std::vector<ClassStats> classes;
  double macro_precision = 0.0, macro_recall = 0.0, macro_f1 = 0.0;
  int64_t mistakes = 0;
};

// predictions[i] is the predicted class of the sample labelled labels[i].
TestReport make_test_report(const EvalResult& eval, const std::vector<int32_t>& predictions,
                            const std::vector<uint8_t>& labels, int num_classes,
                            const std::string& split = "test");

nlohmann::ordered_json to_json(const TestReport& r);
// to_json(r) as indented text with one line per confusion-matrix row.
std::string test_report_text(const TestReport& r);
// Reads the confusion matrix and class count back from test_report.json (for plotting).
TestReport test_report_from_json(const nlohmann::json& j);

}  // namespace mnist_dist
