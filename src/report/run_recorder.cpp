// RunRecorder: config.json, metrics.jsonl/.csv, test_report.json, mistakes.h5, pictures.
#include "report/run_recorder.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "data_pipeline/manifest.h"
#include "report/build_info.h"
#include "report/mistakes.h"
#include "report/plots.h"
#include "report/run_dir.h"
#include "report/test_report.h"

namespace mnist_dist {
namespace fs = std::filesystem;
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

std::string num(double v) { return nlohmann::json(v).dump(); }
// A float setting (lr) as the user wrote it: 0.001, not 0.0010000000474974513.
double tidy(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.7g", v);
  return std::strtod(buf, nullptr);
}
std::string num(int64_t v) { return std::to_string(v); }

nlohmann::ordered_json config_json(const TrainConfig& c) {
  return nlohmann::ordered_json{{"data_dir", c.data_dir},
          {"model", c.model},
          {"epochs", c.epochs},
          {"max_steps", c.max_steps},
          {"batch_size", c.batch_size},
          {"eval_batch_size", c.eval_batch_size},
          {"lr", tidy(c.lr)},
          {"adam", {{"beta1", 0.9}, {"beta2", 0.999}, {"epsilon", 1e-7}}},
          {"seed", c.seed},
          {"threads", c.threads},
          {"bn", c.sync_bn ? "sync" : "local"},
          {"drop_last", c.drop_last},
          {"hash_check_every", c.hash_check_every},
          {"bucket_mb", c.bucket_mb},
          {"evaluate", c.evaluate},
          {"progress_every", c.progress_every},
          {"save", c.save_path},
          {"checkpoint_dir", c.checkpoint_dir},
          {"checkpoint_every", c.checkpoint_every},
          {"keep_checkpoints", c.keep_checkpoints},
          {"resume", c.resume},
          {"timeout_s", c.timeout_s}};
}

}  // namespace

const std::vector<std::string>& metrics_columns() {
  static const std::vector<std::string> cols = {
      "kind", "epoch", "step", "global_step", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
      "seconds", "samples_per_second", "data_wait_seconds", "compute_seconds", "comm_seconds"};
  return cols;
}

RunRecorder::RunRecorder(RunRecorderOptions options, const Logger& log)
    : opt_(std::move(options)), log_(log) {
  opt_.log_every = std::max(1, opt_.log_every);
}

void RunRecorder::drop_records_from(int64_t global_step) {
  std::ifstream in(dir_ + "/metrics.jsonl");
  std::string jsonl, csv, line, header;
  for (const auto& c : metrics_columns()) header += (header.empty() ? "" : ",") + c;
  csv = header + "\n";
  while (std::getline(in, line)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;  // a line cut by a crash of the earlier attempt
    }
    if (j.value("kind", "") == "test" || j.value("global_step", int64_t{0}) >= global_step) continue;
    jsonl += line + "\n";
    std::string row;
    for (size_t i = 0; i < metrics_columns().size(); ++i) {
      const std::string& col = metrics_columns()[i];
      if (i > 0) row += ',';
      if (j.contains(col)) row += j[col].is_string() ? j[col].get<std::string>() : j[col].dump();
    }
    csv += row + "\n";
  }
  write_file_atomic(dir_ + "/metrics.jsonl", jsonl);
  write_file_atomic(dir_ + "/metrics.csv", csv);
}

void RunRecorder::record(const Fields& fields, int64_t global_step) {
  if (continuing_) {
    drop_records_from(global_step);
    continuing_ = false;
  }
  std::string json = "{", csv;
  for (const auto& [k, v] : fields) {
    if (json.size() > 1) json += ", ";
    json += "\"" + k + "\": " + v;
  }
  json += "}";
  const auto& cols = metrics_columns();
  for (size_t i = 0; i < cols.size(); ++i) {
    if (i > 0) csv += ',';
    for (const auto& [k, v] : fields)
      if (k == cols[i]) csv += v.front() == '"' ? v.substr(1, v.size() - 2) : v;
  }
  append_line(dir_ + "/metrics.jsonl", json);
  append_line(dir_ + "/metrics.csv", csv);
}

void RunRecorder::on_train_begin(const TrainConfig& config, const RunInfo& info) {
  config_ = config;
  dir_ = create_run_dir(opt_.run_dir, !config.resume.empty());
  // A resumed run (a requeued job) continues its run directory: attempt n + 1, same metrics.
  int attempt = 1;
  std::string first_started;
  if (fs::exists(dir_ + "/config.json")) {
    try {
      std::ifstream f(dir_ + "/config.json");
      const nlohmann::json old = nlohmann::json::parse(f);
      attempt = old.value("attempt", 1) + 1;
      first_started = old.value("first_started_at", old.value("started_at", ""));
    } catch (const nlohmann::json::exception&) {
    }
    continuing_ = fs::exists(dir_ + "/metrics.jsonl");
  }
  nlohmann::ordered_json j;
  j["mnist_dist"] = build_info();
  j["started_at"] = iso8601_now();
  j["attempt"] = attempt;  // > 1: resumed from a checkpoint into the same run directory
  j["first_started_at"] = first_started.empty() ? j["started_at"].get<std::string>() : first_started;
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  j["host"] = host;
  std::error_code ec;
  j["working_directory"] = fs::current_path(ec).string();
  j["command_line"] = opt_.command_line;
  nlohmann::ordered_json flags = nlohmann::ordered_json::object();
  for (const auto& [k, v] : opt_.flags) flags[k] = v;
  j["flags"] = flags;
  j["config"] = config_json(config);
  j["config"]["log_every"] = opt_.log_every;
  j["world"] = nlohmann::ordered_json{{"ranks", info.world},
                                      {"nodes", info.nodes},
                                      {"ranks_per_node", info.ranks_per_node},
                                      {"threads_per_rank", info.threads},
                                      {"device", info.device},
                                      {"communicator", info.comm}};
  // One entry per rank: today every rank runs on the same kind of device.
  j["devices"] = std::vector<std::string>(static_cast<size_t>(std::max(1, info.world)), info.device);
  nlohmann::ordered_json data = {{"dir", config.data_dir},
                         {"train", info.train},
                         {"val", info.val},
                         {"test", info.test},
                         {"steps_per_epoch", info.steps_per_epoch}};
  try {
    const data::Manifest m = data::read_manifest(config.data_dir);
    rows_ = static_cast<int>(m.rows);
    cols_ = static_cast<int>(m.cols);
    classes_ = m.num_classes;
    data["rows"] = m.rows;
    data["cols"] = m.cols;
    data["num_classes"] = m.num_classes;
    data["val_fraction"] = m.val_fraction;
    data["split_seed"] = m.split_seed;
    nlohmann::ordered_json sources = nlohmann::ordered_json::array();
    for (const auto& s : m.sources)
      sources.push_back(nlohmann::ordered_json{{"role", s.role}, {"name", s.name}, {"sha256", s.sha256}});
    data["sources"] = sources;
  } catch (const UserError&) {
    // The trainer has opened the data already; a manifest it accepted cannot fail here.
  }
  j["data"] = data;
  j["model"] = nlohmann::ordered_json{{"arch", config.model}, {"trainable_parameters", info.trainable_parameters}};
  write_file_atomic(dir_ + "/config.json", j.dump(2) + "\n");
  if (!fs::exists(dir_ + "/metrics.csv")) {
    std::string header;
    for (const auto& c : metrics_columns()) header += (header.empty() ? "" : ",") + c;
    append_line(dir_ + "/metrics.csv", header);
  }
  log_.info("mnist_dist: run directory %s (config.json, metrics.jsonl, metrics.csv; pictures at the end)",
            dir_.c_str());
}

void RunRecorder::on_progress(const Progress& p) {
  global_step_ = p.global_step;  // also right after a resume; the epoch's last step always reports
  // Every log_every steps of the epoch, as the progress events and the console lines count.
  if (p.step % static_cast<size_t>(opt_.log_every) != 0) return;
  record({{"kind", "\"step\""},
          {"epoch", num(int64_t{p.epoch})},
          {"step", num(static_cast<int64_t>(p.step))},
          {"global_step", num(p.global_step)},
          {"loss", num(p.loss)},
          {"accuracy", num(p.accuracy)},
          {"seconds", num(p.seconds)}},
         p.global_step);
}

void RunRecorder::on_epoch_end(const EpochMetrics& m) {
  Fields f = {{"kind", "\"epoch\""},
              {"epoch", num(int64_t{m.epoch})},
              {"step", num(m.steps)},
              {"global_step", num(global_step_)},
              {"loss", num(m.loss)},
              {"accuracy", num(m.accuracy)}};
  if (config_.evaluate) {
    f.push_back({"val_loss", num(m.val_loss)});
    f.push_back({"val_accuracy", num(m.val_accuracy)});
  }
  f.insert(f.end(), {{"lr", num(tidy(m.lr))},
                     {"seconds", num(m.seconds)},
                     {"samples_per_second", num(m.samples_per_second)},
                     {"data_wait_seconds", num(m.data_wait_seconds)},
                     {"compute_seconds", num(m.compute_seconds)},
                     {"comm_seconds", num(m.comm_seconds)}});
  record(f, global_step_);
  last_epoch_ = m.epoch;
}

void RunRecorder::on_test(const EvalResult& r, const std::vector<int32_t>& predictions, const SplitData& test) {
  record({{"kind", "\"test\""},
          {"epoch", num(int64_t{last_epoch_})},
          {"global_step", num(global_step_)},
          {"loss", num(r.loss)},
          {"accuracy", num(r.accuracy)},
          {"weights_epoch", num(int64_t{r.weights_epoch > 0 ? r.weights_epoch : last_epoch_})}},
         global_step_ + 1);  // after every training record
  const TestReport report = make_test_report(r, predictions, test.labels, classes_);
  write_file_atomic(dir_ + "/test_report.json", test_report_text(report));
  write_mistakes(collect_mistakes(test, predictions, rows_, cols_), dir_ + "/mistakes.h5");
}

void RunRecorder::on_train_end(const TrainResult&) {
  if (!opt_.plots) return;
  const std::string gnuplot = find_gnuplot();
  if (gnuplot.empty()) {
    log_.notice("note: gnuplot not found, so no pictures were drawn; apt-get install gnuplot-nox, "
                "then: mnist_dist plot %s", dir_.c_str());
    return;
  }
  try {
    const PlotOutcome out = render_plots(dir_, gnuplot);
    std::string names;
    for (const auto& w : out.written) names += (names.empty() ? "" : ", ") + fs::path(w).filename().string();
    log_.info("mnist_dist: drew %s in %s", names.c_str(), dir_.c_str());
  } catch (const UserError& e) {
    log_.notice("note: pictures not drawn: %s", e.what());
  }
}

}  // namespace mnist_dist
