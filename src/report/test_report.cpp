// Confusion matrix and per-class metrics; JSON in and out.
#include "report/test_report.h"

#include "core/error.h"

namespace mnist_dist {
namespace {

double ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

void fill_stats(TestReport& r) {
  const size_t k = r.confusion.size();
  r.classes.assign(k, ClassStats{});
  r.mistakes = 0;
  for (size_t t = 0; t < k; ++t)
    for (size_t p = 0; p < k; ++p) {
      r.classes[t].support += r.confusion[t][p];
      r.classes[p].predicted += r.confusion[t][p];
      if (t != p) r.mistakes += r.confusion[t][p];
    }
  double sp = 0.0, sr = 0.0, sf = 0.0;
  for (size_t c = 0; c < k; ++c) {
    ClassStats& s = r.classes[c];
    s.precision = ratio(r.confusion[c][c], s.predicted);
    s.recall = ratio(r.confusion[c][c], s.support);
    s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
    sp += s.precision;
    sr += s.recall;
    sf += s.f1;
  }
  if (k > 0) {
    r.macro_precision = sp / k;
    r.macro_recall = sr / k;
    r.macro_f1 = sf / k;
  }
}

}  // namespace

TestReport make_test_report(const EvalResult& eval, const std::vector<int32_t>& predictions,
                            const std::vector<uint8_t>& labels, int num_classes, const std::string& split) {
  MD_CHECK(predictions.size() == labels.size(), "one prediction per label");
  TestReport r;
  r.split = split;
  r.eval = eval;
  const size_t k = static_cast<size_t>(num_classes);
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  for (size_t i = 0; i < labels.size(); ++i) {
    const size_t t = labels[i], p = static_cast<size_t>(predictions[i]);
    MD_CHECK(t < k && p < k, "class index out of range");
    ++r.confusion[t][p];
  }
  fill_stats(r);
  return r;
}

nlohmann::ordered_json to_json(const TestReport& r) {
  nlohmann::ordered_json j;
  j["split"] = r.split;
  j["count"] = r.eval.count;
  j["accuracy"] = r.eval.accuracy;
  j["loss"] = r.eval.loss;
  if (r.eval.weights_epoch > 0) j["weights_epoch"] = r.eval.weights_epoch;  // early stopping's best
  j["mistakes"] = r.mistakes;
  nlohmann::ordered_json per = nlohmann::ordered_json::array();
  for (size_t c = 0; c < r.classes.size(); ++c) {
    const ClassStats& s = r.classes[c];
    nlohmann::ordered_json e;
    e["class"] = c;
    e["precision"] = s.precision;
    e["recall"] = s.recall;
    e["f1"] = s.f1;
    e["support"] = s.support;
    e["predicted"] = s.predicted;
    per.push_back(e);
  }
  j["per_class"] = per;
  j["macro_avg"]["precision"] = r.macro_precision;
  j["macro_avg"]["recall"] = r.macro_recall;
  j["macro_avg"]["f1"] = r.macro_f1;
  j["confusion_matrix_layout"] = "rows: true class, columns: predicted class";
  j["confusion_matrix"] = r.confusion;
  return j;
}

std::string test_report_text(const TestReport& r) {
  nlohmann::ordered_json j = to_json(r);
  j["confusion_matrix"] = "@CONFUSION@";
  std::string text = j.dump(2);
  std::string rows = "[\n";
  for (size_t t = 0; t < r.confusion.size(); ++t) {
    rows += "    " + nlohmann::json(r.confusion[t]).dump(-1, ' ') + (t + 1 < r.confusion.size() ? ",\n" : "\n");
  }
  rows += "  ]";
  const std::string key = "\"@CONFUSION@\"";
  text.replace(text.find(key), key.size(), rows);
  return text + "\n";
}

TestReport test_report_from_json(const nlohmann::json& j) {
  TestReport r;
  try {
    r.split = j.value("split", "test");
    r.eval.count = j.at("count").get<int64_t>();
    r.eval.accuracy = j.at("accuracy").get<double>();
    r.eval.loss = j.at("loss").get<double>();
    r.confusion = j.at("confusion_matrix").get<std::vector<std::vector<int64_t>>>();
  } catch (const nlohmann::json::exception& e) {
    throw UserError(std::string("test_report.json is not a valid report: ") + e.what());
  }
  for (const auto& row : r.confusion)
    if (row.size() != r.confusion.size()) throw UserError("test_report.json: confusion matrix is not square");
  fill_stats(r);
  return r;
}

}  // namespace mnist_dist
