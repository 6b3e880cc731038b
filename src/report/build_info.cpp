// build_info(): compile-time facts (CMake definitions, the generated git header) and the
// run-time versions that the libraries report themselves.
#include "report/build_info.h"

#include <cblas.h>
#include <hdf5.h>

#include <string>

#include "md_git_info.h"  // generated at build time by src/report/git_info.cmake

#ifndef MD_VERSION
#define MD_VERSION "unknown"
#endif
#ifndef MD_BUILD_TYPE
#define MD_BUILD_TYPE "unknown"
#endif
#ifndef MD_WITH_CUDA
#define MD_WITH_CUDA 0
#endif

namespace mnist_dist {

nlohmann::ordered_json build_info() {
  nlohmann::ordered_json j;
  j["version"] = MD_VERSION;
  const std::string commit = MD_GIT_COMMIT;
  j["git_commit"] = commit.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(commit);
  j["git_dirty"] = MD_GIT_DIRTY < 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(MD_GIT_DIRTY == 1);
  j["build_type"] = MD_BUILD_TYPE;
#if defined(__clang__)
  j["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  j["compiler"] = std::string("gcc ") + __VERSION__;
#else
  j["compiler"] = "unknown";
#endif
  j["cuda"] = MD_WITH_CUDA != 0;
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  nlohmann::ordered_json libs;
  libs["hdf5"] = std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
  libs["openblas"] = openblas_get_config();
  libs["openmp"] = _OPENMP;
  libs["nlohmann_json"] = std::to_string(NLOHMANN_JSON_VERSION_MAJOR) + "." +
                          std::to_string(NLOHMANN_JSON_VERSION_MINOR) + "." +
                          std::to_string(NLOHMANN_JSON_VERSION_PATCH);
  j["libraries"] = libs;
  return j;
}

}  // namespace mnist_dist
