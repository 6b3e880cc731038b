// Reading what a run wrote, for the report tests: a whole file, a JSON-lines file, and the
// comparison of a stored value with its printed 4-decimal form.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace mnist_dist {  // the report tests' names, in the namespace they are written in

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline std::vector<nlohmann::json> jsonl(const std::filesystem::path& p) {
  std::vector<nlohmann::json> v;
  std::ifstream f(p);
  std::string line;
  while (std::getline(f, line)) v.push_back(nlohmann::json::parse(line));  // throws if not JSON
  return v;
}

// Printed values carry 4 decimals.
inline void expect_printed(double file_value, const std::string& printed, const std::string& what) {
  EXPECT_NEAR(file_value, std::stod(printed), 5.001e-5) << what;
}

}  // namespace mnist_dist
