#!/usr/bin/env bash
# make_data.sh DEST [N_TRAIN N_TEST]: a small real data set for the multinode tests: the first
# N_TRAIN (default 2000) training and N_TEST (default 500) test images of Fashion-MNIST (Debian's
# dataset-fashion-mnist, copied by data_pipeline/fetch_data.sh, which installs it when missing),
# written as IDX and turned into HDF5 shards by mnist_prepare (2 shards; validation 0.3 held out).
# Reuses DEST when its manifest.json exists. Prints DEST/h5 (the --data directory).
# Environment: MNIST_PREPARE (default build/mnist_prepare).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MNIST_PREPARE="${MNIST_PREPARE:-$REPO/build/mnist_prepare}"
[[ $# -ge 1 ]] || { echo "Usage: $0 DEST [N_TRAIN N_TEST]" >&2; exit 2; }
dest="$1"; n_train="${2:-2000}"; n_test="${3:-500}"
if [[ -s "$dest/h5/manifest.json" ]]; then echo "$dest/h5"; exit 0; fi
mkdir -p "$dest"
tmp="$(mktemp -d "$dest/.make.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$REPO/data_pipeline/fetch_data.sh" fashion-mnist "$tmp/full" >&2
mkdir -p "$tmp/idx"
/usr/bin/python3 - "$tmp/full" "$tmp/idx" "$n_train" "$n_test" <<'EOF'
import gzip, struct, sys
src, dst, n_train, n_test = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for split, n in (("train", n_train), ("t10k", n_test)):
    for kind, header in (("images-idx3-ubyte", 16), ("labels-idx1-ubyte", 8)):
        with gzip.open(f"{src}/{split}-{kind}.gz", "rb") as f:
            data = f.read()
        dims = list(struct.unpack(">" + "I" * ((header - 4) // 4), data[4:header]))
        assert n <= dims[0], f"{split}-{kind} has only {dims[0]} samples"
        per = 1
        for d in dims[1:]:
            per *= d
        dims[0] = n
        out = data[:4] + struct.pack(">" + "I" * len(dims), *dims) + data[header:header + n * per]
        with open(f"{dst}/{split}-{kind}", "wb") as f:
            f.write(out)
EOF
"$MNIST_PREPARE" --idx-dir "$tmp/idx" --out "$tmp/h5" --shards 2 >&2
rm -rf "$dest/h5"
mv "$tmp/h5" "$dest/h5"
echo "$dest/h5"
