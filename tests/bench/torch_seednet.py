#!/usr/bin/python3
"""The seed net and LeNet-5 in PyTorch with mnist_dist's settings (Keras defaults): the
reference competitor for accuracy checks and benchmarks. Reads the HDF5 shards that
mnist_prepare writes (h5py), so both trainers see the same split.

usage: torch_seednet.py DATA_DIR [--model seed|lenet5] [--epochs N] [--batch-size B]
                        [--threads T] [--seed S] [--max-steps N] [--dropout P]
                        [--optimizer adam|adamw] [--weight-decay W] [--augment none|shift:N]
                        [--early-stopping PATIENCE] [--monitor val_loss|val_accuracy] [--min-delta D]
The options beyond the reference program mean what mnist_dist's flags of the same names mean:
nn.Dropout after the hidden dense layers' ReLUs, torch.optim.AdamW, random translations of up
to N pixels with zero fill (a new draw per sample and epoch), Keras' EarlyStopping with
restore_best_weights (the test evaluates the best epoch's weights).
"""
import copy
import argparse
import json
import os
import time

import h5py
import numpy as np
import torch
import torch.nn as nn


def load_split(data_dir, split):
    with open(os.path.join(data_dir, "manifest.json")) as f:
        manifest = json.load(f)
    images, labels = [], []
    for shard in manifest["splits"][split]["shards"]:
        with h5py.File(os.path.join(data_dir, shard["file"]), "r") as h:
            images.append(h["images"][...])
            labels.append(h["labels"][...])
    x = np.concatenate(images).astype(np.float32)[:, None, :, :] / 255.0
    y = np.concatenate(labels).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def seed_net(classes=10, dropout=0.0):
    # Keras BatchNormalization(momentum=0.99, epsilon=1e-3) == PyTorch momentum 0.01, eps 1e-3
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 12, 5, padding=2), nn.BatchNorm2d(12, eps=1e-3, momentum=0.01), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        *hidden(588, 1200, 840, dropout), nn.Linear(840, classes))


def lenet5(classes=10, dropout=0.0):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        *hidden(400, 120, 84, dropout), nn.Linear(84, classes))


def hidden(n_in, n1, n2, dropout):
    """The two hidden dense layers with their ReLUs, each followed by dropout when asked."""
    layers = []
    for a, b in ((n_in, n1), (n1, n2)):
        layers += [nn.Linear(a, b), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
    return layers


def shift_batch(x, n, gen):
    """Each image translated by (dx, dy), each uniform in [-n, n], zero fill."""
    out = torch.zeros_like(x)
    h, w = x.shape[2], x.shape[3]
    d = torch.randint(-n, n + 1, (len(x), 2), generator=gen)
    for i, (dx, dy) in enumerate(d.tolist()):
        out[i, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[i, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def keras_init(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out = model(x[i:i + batch])
            loss += nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return loss / len(x), correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--model", default="seed", choices=["seed", "lenet5"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--optimizer", default="adam", choices=["adam", "adamw"])
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--augment", default="none")
    ap.add_argument("--early-stopping", type=int, default=0)
    ap.add_argument("--monitor", default="val_loss", choices=["val_loss", "val_accuracy"])
    ap.add_argument("--min-delta", type=float, default=0.0)
    a = ap.parse_args()
    shift = 0 if a.augment == "none" else int(a.augment.split(":")[1])
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    xtr, ytr = load_split(a.data, "train")
    xva, yva = load_split(a.data, "val")
    xte, yte = load_split(a.data, "test")
    model = seed_net(dropout=a.dropout) if a.model == "seed" else lenet5(dropout=a.dropout)
    keras_init(model)
    # Keras Adam: epsilon 1e-7 (PyTorch adds it to the bias-corrected sqrt(v); negligible here)
    if a.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=a.weight_decay)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    gen = torch.Generator().manual_seed(a.seed + 1)
    best, best_state, best_epoch, waited = None, None, 0, 0
    steps = 0
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr))
        tl, tc = 0.0, 0
        for i in range(0, len(xtr), a.batch_size):
            idx = perm[i:i + a.batch_size]
            xb = shift_batch(xtr[idx], shift, gen) if shift else xtr[idx]
            out = model(xb)
            loss = nn.functional.cross_entropy(out, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tl += loss.item() * len(idx)
            tc += (out.argmax(1) == ytr[idx]).sum().item()
            steps += 1
            if a.max_steps and steps >= a.max_steps:
                break
        dt = time.perf_counter() - t0
        n = min(len(xtr), steps * a.batch_size) if a.max_steps else len(xtr)
        vl, va = evaluate(model, xva, yva)
        print(f"Epoch {epoch + 1}/{a.epochs} - {dt:.2f}s - {n / dt:.0f} samples/s - loss: {tl / n:.4f}"
              f" - accuracy: {tc / n:.4f} - val_loss: {vl:.4f} - val_accuracy: {va:.4f}", flush=True)
        if a.max_steps and steps >= a.max_steps:
            break
        if a.early_stopping:
            score = vl if a.monitor == "val_loss" else -va
            if best is None or score < best - a.min_delta:
                best, best_state, best_epoch, waited = score, copy.deepcopy(model.state_dict()), epoch + 1, 0
            else:
                waited += 1
                if waited >= a.early_stopping:
                    print(f"early stopping after epoch {epoch + 1}: best epoch {best_epoch}", flush=True)
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
        print(f"Test uses the weights of epoch {best_epoch}")
    tl, ta = evaluate(model, xte, yte)
    print(f"Test loss: {tl:.4f}\nTest accuracy: {ta:.4f}")


if __name__ == "__main__":
    main()
