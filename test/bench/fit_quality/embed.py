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
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from fashion_mnist import load, pca, train_mlp  # noqa: E402

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
