#!/usr/bin/python3
"""Benchmark data for the lsh index (written to a directory, never committed).

  gen_data.py mixture OUTDIR [N] [Q] [SEED]
      N label vectors of dimension 128 from a mixture of 1,000 Gaussian
      clusters, with log-normal norms (sigma 0.3, so inner-product order is not
      cosine order), and Q query vectors near random clusters.
  gen_data.py fashion OUTDIR [N] [Q] [SEED]
      Fashion-MNIST images (/usr/share/datasets/fashion-mnist), centred and
      projected to 128 dimensions by a fixed random Gaussian matrix: the first
      N training images are the rows, Q test images the queries.

Writes labels.tsv (id, embedding literal), queries.tsv (qid, literal) and
truth.tsv (qid, the ids of the exact top 10 by inner product, as a Postgres
array), all loadable with COPY.  Ground truth is computed in float64.
"""
import gzip
import os
import sys

import numpy as np

DIM = 128
K = 10


def mixture(n, q, rng):
    clusters = 1000
    centers = rng.standard_normal((clusters, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = 0.5
    lab = rng.integers(0, clusters, n)
    x = centers[lab] + spread * rng.standard_normal((n, DIM)) / np.sqrt(DIM)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x *= rng.lognormal(0.0, 0.3, n)[:, None]
    qc = rng.integers(0, clusters, q)
    qs = centers[qc] + spread * rng.standard_normal((q, DIM)) / np.sqrt(DIM)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    return x.astype(np.float32), qs.astype(np.float32)


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(n, q, rng):
    base = '/usr/share/datasets/fashion-mnist'
    train = read_idx(os.path.join(base, 'train-images-idx3-ubyte.gz')).reshape(-1, 784) / 255.0
    test = read_idx(os.path.join(base, 't10k-images-idx3-ubyte.gz')).reshape(-1, 784) / 255.0
    mean = train.mean(axis=0)
    proj = rng.standard_normal((784, DIM)) / np.sqrt(DIM)
    x = (train[:n] - mean) @ proj
    qs = (test[:q] - mean) @ proj
    return x.astype(np.float32), qs.astype(np.float32)


def literal(v):
    return '[' + ','.join('%.6g' % f for f in v) + ']'


def main():
    kind, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else (200000 if kind == 'mixture' else 60000)
    q = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 42
    rng = np.random.default_rng(seed)
    x, qs = mixture(n, q, rng) if kind == 'mixture' else fashion(n, q, rng)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'labels.tsv'), 'w') as f:
        for i, v in enumerate(x):
            f.write('%d\t%s\n' % (i + 1, literal(v)))
    with open(os.path.join(out, 'queries.tsv'), 'w') as f:
        for i, v in enumerate(qs):
            f.write('%d\t%s\n' % (i + 1, literal(v)))
    # exact top K by inner product, in float64 on the float32 values stored
    x64 = x.astype(np.float64)
    with open(os.path.join(out, 'truth.tsv'), 'w') as f:
        for start in range(0, q, 100):
            s = qs[start:start + 100].astype(np.float64) @ x64.T
            top = np.argsort(-s, axis=1, kind='stable')[:, :K]
            for j, row in enumerate(top):
                f.write('%d\t{%s}\n' % (start + j + 1, ','.join(str(int(i) + 1) for i in row)))


if __name__ == '__main__':
    main()
