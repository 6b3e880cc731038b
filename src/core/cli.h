// Command-line parsing with one behaviour for every executable (CLI11; header-only, so only the
// executables that include it need CLI11): --help prints and exits 0; a bad flag prints one line,
// "PROG: error: WHAT (see PROG --help)", and exits kExitUsage.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <optional>

#include "core/error.h"

namespace mnist_dist {

// Parses argv into app, then runs check (which may throw CLI::ValidationError for a flag
// combination CLI11 cannot express). Returns nothing to go on, or the exit code to return.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv,
                                             const std::function<void()>& check = nullptr) {
  try {
    app.parse(argc, argv);
    if (check) check();
    return std::nullopt;
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::string prog = app.get_name();
    std::fprintf(stderr, "%s: error: %s (see %s --help)\n", prog.c_str(), e.what(), prog.c_str());
    return kExitUsage;
  }
}

}  // namespace mnist_dist
