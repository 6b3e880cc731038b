// Every flag of a parsed CLI11 command with its effective value (given, or the default), for
// config.json: new flags are recorded without touching the recorder.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

namespace mnist_dist {

inline std::vector<std::pair<std::string, std::string>> cli_flags(const CLI::App& app) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const CLI::Option* opt : app.get_options()) {
    std::string name = opt->get_single_name();
    if (name.empty() || name == "help") continue;
    std::string value;
    if (opt->count() > 0) {
      for (const std::string& r : opt->results()) value += (value.empty() ? "" : " ") + r;
      if (opt->get_type_size() == 0 && value.empty()) value = "true";  // a flag given without value
    } else {
      value = opt->get_type_size() == 0 ? "false" : opt->get_default_str();
    }
    out.emplace_back(name, value);
  }
  return out;
}

}  // namespace mnist_dist
