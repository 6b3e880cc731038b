#!/usr/bin/env python3
"""golden_rng.py: an independent, naive Python re-implementation of core/rng.h (SplitMix64 seeding a
xoshiro256** stream, Rng::below, seeded_permutation) and data_pipeline/split.cpp (split_train_val).
It prints the golden values pinned in tests/data/test_golden.cpp; test_golden.cpp's comments say how.
Usage: python3 tests/data/golden_rng.py"""
M = (1 << 64) - 1


def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
    return x ^ (x >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Rng:
    def __init__(self, seed, stream=0):
        x = mix64(seed) ^ mix64((stream + 0x632BE59BD9B4E019) & M)
        self.s = []
        for _ in range(4):
            x = mix64(x)
            self.s.append(x)

    def next_u64(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = M - M % n
        while True:
            r = self.next_u64()
            if r < limit:
                return r % n


def seeded_permutation(n, seed, stream):
    p = list(range(n))
    rng = Rng(seed, stream)
    for i in range(n, 1, -1):
        j = rng.below(i)
        p[i - 1], p[j] = p[j], p[i - 1]
    return p


def split_train_val(n, frac, seed):
    # llround: round half away from zero (Python's round() is half-to-even, so not used).
    import math
    x = n * frac
    n_val = min(n, int(math.floor(x + 0.5)))
    perm = seeded_permutation(n, seed, 0x5E11)
    val = sorted(perm[:n_val])
    vs = set(val)
    return [i for i in range(n) if i not in vs], val


def fnv1a(values):  # FNV-1a 64 over the little-endian uint32 bytes
    h = 0xCBF29CE484222325
    for v in values:
        for b in v.to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001B3) & M
    return h


for seed, stream in [(1, 0), (42, 7)]:
    r = Rng(seed, stream)
    print(f"Rng({seed}, {stream}).next_u64 x4:", ", ".join(f"0x{r.next_u64():016X}ull" for _ in range(4)))
r = Rng(1, 0)
print("Rng(1, 0).below(10) x10:", [r.below(10) for _ in range(10)])
print("seeded_permutation(10, 1, 0):", seeded_permutation(10, 1, 0))
tr, va = split_train_val(20, 0.3, 1)
print("split_train_val(20, 0.3, 1): train", tr, "val", va)
tr, va = split_train_val(60000, 0.3, 1)
print(f"split_train_val(60000, 0.3, 1): {len(tr)} train, {len(va)} val; val[:20] {va[:20]};"
      f" fnv1a(val) 0x{fnv1a(va):016X}ull; fnv1a(train) 0x{fnv1a(tr):016X}ull")
