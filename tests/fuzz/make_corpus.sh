#!/usr/bin/env bash
# make_corpus.sh: writes the seed corpus of each fuzz target into DEST/<target>/ — a few valid
# and near-valid inputs that each target builds itself (MD_FUZZ_WRITE_SEEDS), so the seeds always
# match the target's input format (byte 0 picks the entry point or the file replaced).
# Usage: tests/fuzz/make_corpus.sh BUILD_DIR DEST
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 BUILD_DIR DEST   (BUILD_DIR holds fuzz_idx and fuzz_shards)" >&2; exit 2; fi
build=$1
dest=$2
for target in fuzz_idx fuzz_shards; do
  [ -x "$build/$target" ] || { echo "make_corpus.sh: $build/$target is not built" >&2; exit 1; }
  rm -rf "${dest:?}/$target"
  MD_FUZZ_WRITE_SEEDS="$dest/$target" "$build/$target"
  echo "make_corpus.sh: $(ls "$dest/$target" | wc -l) seeds in $dest/$target"
done
