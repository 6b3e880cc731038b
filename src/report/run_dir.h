// The run directory of a training run (rank 0): where config.json, metrics.jsonl/.csv,
// test_report.json, mistakes.h5 and the pictures go, and the file-writing rules for it.
#pragma once

#include <string>

namespace mnist_dist {

// Creates the run directory and returns its path. `requested` non-empty: that directory (with
// its parents); if it already holds a run (config.json), it is reused when `continuing` (a
// resumed run, e.g. a requeued Slurm job) and refused otherwise (UserError). Empty:
// runs/YYYYmmdd-HHMMSS under the working directory, with -2, -3, ... appended when taken.
std::string create_run_dir(const std::string& requested, bool continuing = false);

// Writes `content` to `path`.tmp and renames it over `path`: readers never see half a file.
void write_file_atomic(const std::string& path, const std::string& content);

// Appends one whole line (newline added) to `path` with a single write(2) in O_APPEND mode:
// a reader (tail -F, pandas) sees complete lines only. For the streaming metrics files.
void append_line(const std::string& path, const std::string& line);

// Local time as "2026-11-29T14:03:12+0100" (ISO 8601), and "20261129-140312" for names.
std::string iso8601_now();
std::string compact_timestamp_now();

}  // namespace mnist_dist
