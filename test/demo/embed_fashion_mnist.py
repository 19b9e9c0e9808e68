#!/usr/bin/python3
"""Embed Fashion-MNIST (Debian's dataset-fashion-mnist) with three small models, for the demo.

  old model  (fmnist-v1, 32 dims): an MLP trained on half of the classes (0-4), as in the
             Forward Compatible Training paper's setup: it has never seen the other five classes.
  new model  (fmnist-v2, 64 dims): a wider MLP trained on all ten classes.
  side info  (8 dims): an unsupervised PCA of the pixels, stored with every row so that a future
             model can be bridged to the old one.

Writes CSV files (PostgreSQL array literals) into OUTDIR:
  gallery.csv   id, label, old, side, new     5,000 test images: the stored rows
  queries.csv   id, label, old, new           1,000 other test images: the queries
  pairs.csv     old, side, new                3,000 training images embedded by both models
Everything is seeded: the same files every run.
"""
import gzip
import os
import sys

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def load(kind):
    with gzip.open(f"{DATA}/{kind}-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{DATA}/{kind}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def pca(x, k):
    mean = x.mean(axis=0)
    cov = np.cov((x - mean).T)
    vals, vecs = np.linalg.eigh(cov)
    basis = vecs[:, ::-1][:, :k].astype(np.float32)
    return lambda z: (z - mean) @ basis


def train_mlp(x, y, n_classes, hidden, dim, epochs, seed):
    """Input -> hidden (ReLU) -> dim (the embedding) -> softmax head; Adam on cross-entropy."""
    rng = np.random.default_rng(seed)
    shapes = [(x.shape[1], hidden), (hidden, dim), (dim, n_classes)]
    params = []
    for fan_in, fan_out in shapes:
        params += [rng.normal(0, np.sqrt(2.0 / fan_in), (fan_in, fan_out)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 256):
            idx = order[start:start + 256]
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
        return out / np.linalg.norm(out, axis=1, keepdims=True)
    return embed


def arr(v):
    return "{" + ",".join(f"{float(t):.6g}" for t in v) + "}"


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    rng = np.random.default_rng(7)

    features = pca(train_x[rng.choice(len(train_x), 20000, replace=False)], 64)
    side = pca(train_x[rng.choice(len(train_x), 20000, replace=False)], 8)
    ftrain = features(train_x)
    half = train_y < 5
    old = train_mlp(ftrain[half], train_y[half], 5, hidden=64, dim=32, epochs=4, seed=1)
    new = train_mlp(ftrain, train_y, 10, hidden=256, dim=64, epochs=12, seed=2)

    ftest = features(test_x)
    old_test, new_test, side_test = old(ftest), new(ftest), side(test_x)
    with open(f"{outdir}/gallery.csv", "w") as f:
        for i in range(5000):
            f.write(f'{i},{test_y[i]},"{arr(old_test[i])}","{arr(side_test[i])}","{arr(new_test[i])}"\n')
    with open(f"{outdir}/queries.csv", "w") as f:
        for i in range(5000, 6000):
            f.write(f'{i},{test_y[i]},"{arr(old_test[i])}","{arr(new_test[i])}"\n')
    pick = rng.choice(len(train_x), 3000, replace=False)
    old_p, new_p, side_p = old(ftrain[pick]), new(ftrain[pick]), side(train_x[pick])
    with open(f"{outdir}/pairs.csv", "w") as f:
        for i in range(len(pick)):
            f.write(f'"{arr(old_p[i])}","{arr(side_p[i])}","{arr(new_p[i])}"\n')
    with open(f"{outdir}/classes.csv", "w") as f:
        for i, name in enumerate(CLASSES):
            f.write(f"{i},{name}\n")


if __name__ == "__main__":
    main(sys.argv[1])
