// What this binary is: version, git commit, compiler, build type and the versions of the
// libraries it runs with (for config.json and `--version`-style reports).
#pragma once

#include <nlohmann/json.hpp>

namespace mnist_dist {

// {"version", "git_commit", "git_dirty", "build_type", "compiler", "cuda", "libraries": {...}}.
// git_commit is null when the source tree was not a git checkout at build time.
nlohmann::ordered_json build_info();

}  // namespace mnist_dist
