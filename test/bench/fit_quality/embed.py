#!/usr/bin/python3
"""Embed Fashion-MNIST (Debian's dataset-fashion-mnist) for the fit-quality benchmark.

  old model  (32 dims): an MLP on 64 PCA features, trained with a softmax head on half of the
             classes (0-4), as in the Forward Compatible Training paper: it never saw classes 5-9.
  new model  (64 dims): a wider MLP on the raw pixels, trained on all ten classes.
  side info  (16 dims): an unsupervised PCA of the pixels, stored with every old embedding.

Embeddings are L2-normalised.  Writes CSV files (PostgreSQL array literals) into OUTDIR:
  pairs.csv     old, side, new            N_PAIRS training images embedded by both models
  gallery.csv   id, label, old, side, new N_GALLERY test images (queries are the same images,
                                          each one leaving itself out)
Everything is seeded: the same files on every run on one machine.

usage: embed.py OUTDIR N_PAIRS N_GALLERY N_TRAIN EPOCH_SCALE
  N_TRAIN caps the training images the models see (60000 = all); EPOCH_SCALE scales their epochs.
"""
import gzip
import os
import sys

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def load(kind):
    with gzip.open(f"{DATA}/{kind}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{DATA}/{kind}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def pca(x, k):
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comp = vt[:k].T.astype(np.float32)
    return lambda z: (z - mean) @ comp


def train_mlp(x, y, nclass, hidden, dim, epochs, seed):
    """x -> ReLU(x W1 + b1) W2 + b2 = embedding -> softmax head; Adam on cross-entropy."""
    rng = np.random.default_rng(seed)

    def init(fan_in, fan_out):
        bound = 1 / np.sqrt(fan_in)
        return [rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                np.zeros(fan_out, np.float32)]
    params = init(x.shape[1], hidden) + init(hidden, dim) + init(dim, nclass)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 128):
            idx = order[start:start + 128]
            xb, yb = x[idx], y[idx]
            w1, b1, w2, b2, w3, b3 = params
            h = np.maximum(xb @ w1 + b1, 0)
            e = h @ w2 + b2
            logits = e @ w3 + b3
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1
            g3 = p / len(yb)
            ge = g3 @ w3.T
            gh = (ge @ w2.T) * (h > 0)
            grads = [xb.T @ gh, gh.sum(0), h.T @ ge, ge.sum(0), e.T @ g3, g3.sum(0)]
            step += 1
            for i, g in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                mhat = m[i] / (1 - 0.9 ** step)
                vhat = v[i] / (1 - 0.999 ** step)
                params[i] -= 1e-3 * mhat / (np.sqrt(vhat) + 1e-8)
    w1, b1, w2, b2 = params[:4]

    def embed(z):
        out = np.maximum(z @ w1 + b1, 0) @ w2 + b2
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)
    return embed


def arr(v):
    return "{" + ",".join(f"{float(t):.7g}" for t in v) + "}"


def main(outdir, n_pairs, n_gallery, n_train, epoch_scale):
    os.makedirs(outdir, exist_ok=True)
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    rng = np.random.default_rng(11)
    sub = rng.permutation(len(train_x))[:n_train]
    tx, ty = train_x[sub], train_y[sub]

    features = pca(tx[:20000], 64)
    side = pca(tx[rng.permutation(len(tx))[:20000]], 16)
    half = ty < 5
    old = train_mlp(features(tx[half]), ty[half], 5, hidden=64, dim=32,
                    epochs=max(1, round(3 * epoch_scale)), seed=1)
    new = train_mlp(tx, ty, 10, hidden=256, dim=64,
                    epochs=max(1, round(8 * epoch_scale)), seed=2)

    pick = rng.choice(len(train_x), n_pairs, replace=False)
    px = train_x[pick]
    old_p, side_p, new_p = old(features(px)), side(px), new(px)
    with open(f"{outdir}/pairs.csv", "w") as f:
        for i in range(n_pairs):
            f.write(f'"{arr(old_p[i])}","{arr(side_p[i])}","{arr(new_p[i])}"\n')

    gx, gy = test_x[:n_gallery], test_y[:n_gallery]
    old_g, side_g, new_g = old(features(gx)), side(gx), new(gx)
    with open(f"{outdir}/gallery.csv", "w") as f:
        for i in range(n_gallery):
            f.write(f'{i},{gy[i]},"{arr(old_g[i])}","{arr(side_g[i])}","{arr(new_g[i])}"\n')


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
