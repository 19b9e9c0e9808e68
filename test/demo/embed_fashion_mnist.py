#!/usr/bin/python3
"""Embed Fashion-MNIST (Debian's dataset-fashion-mnist) with three small models, for the demo.

  old model  (fmnist-v1, 32 dims): an MLP trained on half of the classes (0-4), as in the
             Forward Compatible Training paper's setup: it has never seen the other five classes.
  new model  (fmnist-v2, 64 dims): a wider MLP trained on all ten classes.
  side info  (8 dims): an unsupervised PCA of the pixels, stored with every row so that a future
             model can be bridged to the old one.
  labels     the new model's classifier: a softmax layer (ten label embeddings and biases) trained on
             the new model's unit-length embeddings of the training images.

Writes CSV files (PostgreSQL array literals) into OUTDIR:
  gallery.csv   id, label, old, side, new     5,000 test images: the stored rows
  queries.csv   id, label, old, new           1,000 other test images: the queries
  pairs.csv     old, side, new                3,000 training images embedded by both models
  labels.csv    label, weight, bias           the softmax layer's ten rows
Everything is seeded: the same files every run.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from fashion_mnist import load, pca, train_mlp, train_softmax  # noqa: E402

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


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
    weight, bias = train_softmax(new(ftrain), train_y, 10, epochs=3, seed=3)
    with open(f"{outdir}/labels.csv", "w") as f:
        for i in range(10):
            f.write(f'{i},"{arr(weight[:, i])}",{float(bias[i]):.6g}\n')
    with open(f"{outdir}/classes.csv", "w") as f:
        for i, name in enumerate(CLASSES):
            f.write(f"{i},{name}\n")


if __name__ == "__main__":
    main(sys.argv[1])
