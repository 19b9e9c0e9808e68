#!/usr/bin/python3
"""Benchmark data for the lsh index (written to a directory, never committed).

  gen_data.py KIND OUTDIR [N] [Q] [SEED]

KIND:
  mixture  N label vectors of dimension 128 from a mixture of 1,000 Gaussian
           clusters, with log-normal norms (sigma 0.3, so inner-product order
           is not cosine order), and Q query vectors near random clusters.
           Default N 200,000.  Metric: inner product.
  fashion  Fashion-MNIST (Debian's dataset-fashion-mnist, read by
           test/fashion_mnist.py): the training images projected onto their
           first 128 principal components are the rows (N at most 60,000),
           Q test images the queries.  Metrics: L2 and cosine.
  embed    Real embeddings with real structure: an MLP (test/fashion_mnist.py,
           PCA-64 features -> 256 ReLU -> 128, softmax head over the ten
           classes, seeded) is trained on the 60,000 training images; the rows
           are the embeddings (before normalisation, so their norms vary as a
           model's do) of the training images and of shifted, mirrored and
           re-exposed copies of them, N rows (default 200,000); the queries are
           Q test images, never seen by the model nor among the rows.
           Metrics: inner product and cosine.

Every row also gets a category `cat`, uniform in 0..99 and independent of the
vector, for the filtered searches: cat = 0 (1% of the rows), cat < 10 (10%),
cat < 50 (50%).

Writes, all loadable with COPY:
  labels.tsv         id, cat, embedding literal
  extra.tsv          the same for min(10,000, N / 10) further rows of the same
                     kind (ids N + 1 ...), for the insert measurements
  queries.tsv        qid, embedding literal
  truth-METRIC.tsv   qid, then the ids of the exact top 10 (Postgres arrays)
                     unfiltered, under cat = 0, cat < 10 and cat < 50
and labels.npy / queries.npy / cat.npy (float32, int16) for numpy prototypes.
Ground truth is computed in float64 from the float32 values stored (the
literals print 9 significant digits, so they round-trip exactly).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from fashion_mnist import load, pca, train_mlp  # noqa: E402

DIM = 128
K = 10
METRICS = {"mixture": ["ip"], "fashion": ["l2", "cosine"], "embed": ["ip", "cosine"]}
# (name, predicate on cat) in the order of truth-METRIC.tsv's columns
FILTERS = [("cat = 0", lambda c: c == 0), ("cat < 10", lambda c: c < 10), ("cat < 50", lambda c: c < 50)]


def mixture(n, q, m, rng):
    clusters = 1000
    centers = rng.standard_normal((clusters, DIM))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    spread = 0.5

    def draw(count):
        lab = rng.integers(0, clusters, count)
        v = centers[lab] + spread * rng.standard_normal((count, DIM)) / np.sqrt(DIM)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    x = draw(n) * rng.lognormal(0.0, 0.3, n)[:, None]
    qs = draw(q)
    extra = draw(m) * rng.lognormal(0.0, 0.3, m)[:, None]
    return x.astype(np.float32), qs.astype(np.float32), extra.astype(np.float32)


def fashion(n, q, m, rng):
    train, _ = load("train")
    test, _ = load("t10k")
    if n > len(train) or q + m > len(test):
        sys.exit("fashion: at most %d rows and %d queries + extra rows" % (len(train), len(test)))
    project = pca(train, DIM)
    return (project(train[:n]).astype(np.float32), project(test[:q]).astype(np.float32),
            project(test[q:q + m]).astype(np.float32))


def augment(images, rng):
    """Shift by up to 2 pixels, mirror half of them, scale the exposure by 0.8-1.2."""
    out = np.empty_like(images)
    sq = images.reshape(-1, 28, 28)
    for i in range(len(images)):
        dx, dy = rng.integers(-2, 3, 2)
        img = np.roll(np.roll(sq[i], dy, axis=0), dx, axis=1)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        out[i] = np.clip(img.reshape(-1) * rng.uniform(0.8, 1.2), 0, 1)
    return out


def embed(n, q, m, rng):
    train, labels = load("train")
    test, _ = load("t10k")
    features = pca(train[rng.choice(len(train), 20000, replace=False)], 64)
    model = train_mlp(features(train), labels, 10, hidden=256, dim=DIM, epochs=6, seed=3)
    rows = [model(features(train[:n]), normalize=False)]
    done = len(rows[0])
    while done < n:
        take = min(len(train), n - done)
        rows.append(model(features(augment(train[:take], rng)), normalize=False))
        done += take
    x = np.concatenate(rows)
    # rows in random order, so that a prefix of the table is not all originals
    x = x[rng.permutation(n)]
    return (x.astype(np.float32), model(features(test[:q]), normalize=False),
            model(features(test[q:q + m]), normalize=False))


def write_vectors(path, ids, x, extra=None):
    fmt = ",".join(["%.9g"] * x.shape[1])
    with open(path, "w") as f:
        for j, v in enumerate(x):
            mid = "" if extra is None else "%d\t" % extra[j]
            f.write("%d\t%s[%s]\n" % (ids[j], mid, fmt % tuple(v.tolist())))


def scores(metric, qs, x64, norms2):
    """Smaller is nearer; per metric, up to a per-query constant."""
    s = qs @ x64.T
    if metric == "ip":
        return -s
    if metric == "cosine":
        return -s / np.sqrt(norms2)
    return norms2 - 2 * s


def top(d, k):
    idx = np.argpartition(d, k, axis=1)[:, :k]
    part = np.take_along_axis(d, idx, axis=1)
    return np.take_along_axis(idx, np.argsort(part, axis=1, kind="stable"), axis=1)


def pgarray(ids):
    return "{" + ",".join(str(int(i) + 1) for i in ids) + "}"


def write_truth(path, metric, x, qs, cat):
    x64 = x.astype(np.float64)
    norms2 = (x64 * x64).sum(axis=1)
    masks = [pred(cat) for _, pred in FILTERS]
    with open(path, "w") as f:
        for start in range(0, len(qs), 50):
            d = scores(metric, qs[start:start + 50].astype(np.float64), x64, norms2)
            cols = [top(d, K)]
            for m in masks:
                sel = np.nonzero(m)[0]
                cols.append(sel[top(d[:, sel], K)])
            for j in range(len(d)):
                f.write("%d\t%s\n" % (start + j + 1, "\t".join(pgarray(c[j]) for c in cols)))


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind not in METRICS:
        sys.exit("KIND is one of " + ", ".join(METRICS))
    n = int(sys.argv[3]) if len(sys.argv) > 3 else (60000 if kind == "fashion" else 200000)
    q = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 42
    rng = np.random.default_rng(seed)
    m = min(10000, n // 10)
    x, qs, extra = {"mixture": mixture, "fashion": fashion, "embed": embed}[kind](n, q, m, rng)
    cat = np.random.default_rng(seed + 1).integers(0, 100, n + m).astype(np.int16)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "labels.npy"), x)
    np.save(os.path.join(out, "queries.npy"), qs)
    np.save(os.path.join(out, "cat.npy"), cat[:n])
    write_vectors(os.path.join(out, "labels.tsv"), np.arange(1, n + 1), x, cat)
    write_vectors(os.path.join(out, "extra.tsv"), np.arange(n + 1, n + m + 1), extra, cat[n:])
    write_vectors(os.path.join(out, "queries.tsv"), np.arange(1, q + 1), qs)
    for metric in METRICS[kind]:
        write_truth(os.path.join(out, "truth-%s.tsv" % metric), metric, x, qs, cat[:n])
    # the last file written: its presence says the directory is complete
    with open(os.path.join(out, "metrics"), "w") as f:
        f.write(" ".join(METRICS[kind]) + "\n")


if __name__ == "__main__":
    main()
