#!/usr/bin/python3
"""Fashion-MNIST (Debian's dataset-fashion-mnist) and the small numpy models that embed it, shared by the
demo (test/demo) and the fit-quality benchmark (test/bench/fit_quality): the loader, a PCA, and an MLP
embedding trained with a softmax head (Adam, seeded)."""
import gzip

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


def train_adam(params, x, y, grads, epochs, rng, lr=1e-3):
    """Minibatches of 128 in a fresh random order each epoch (rng), one Adam update of params (in place)
    per batch from grads(params, xb, yb)."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 128):
            idx = order[start:start + 128]
            step += 1
            for i, g in enumerate(grads(params, x[idx], y[idx])):
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                mhat = m[i] / (1 - 0.9 ** step)
                vhat = v[i] / (1 - 0.999 ** step)
                params[i] -= lr * mhat / (np.sqrt(vhat) + 1e-8)
    return params


def softmax_grad(logits, y):
    """The cross-entropy's gradient with respect to the logits, averaged over the batch."""
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1
    return p / len(y)


def train_softmax(x, y, nclass, epochs, seed):
    """A softmax classifier on fixed embeddings x: returns (W, b), scores x W + b (Adam on cross-entropy)."""
    def grads(params, xb, yb):
        g = softmax_grad(xb @ params[0] + params[1], yb)
        return [xb.T @ g, g.sum(0)]
    params = [np.zeros((x.shape[1], nclass), np.float32), np.zeros(nclass, np.float32)]
    return train_adam(params, x, y, grads, epochs, np.random.default_rng(seed), lr=1e-2)


def train_mlp(x, y, nclass, hidden, dim, epochs, seed):
    """x -> ReLU(x W1 + b1) W2 + b2 = embedding -> softmax head; Adam on cross-entropy."""
    rng = np.random.default_rng(seed)

    def init(fan_in, fan_out):
        bound = 1 / np.sqrt(fan_in)
        return [rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32),
                np.zeros(fan_out, np.float32)]
    params = init(x.shape[1], hidden) + init(hidden, dim) + init(dim, nclass)

    def grads(params, xb, yb):
        w1, b1, w2, b2, w3, b3 = params
        h = np.maximum(xb @ w1 + b1, 0)
        e = h @ w2 + b2
        g3 = softmax_grad(e @ w3 + b3, yb)
        ge = g3 @ w3.T
        gh = (ge @ w2.T) * (h > 0)
        return [xb.T @ gh, gh.sum(0), h.T @ ge, ge.sum(0), e.T @ g3, g3.sum(0)]
    train_adam(params, x, y, grads, epochs, rng)
    w1, b1, w2, b2 = params[:4]

    def embed(z, normalize=True):
        out = np.maximum(z @ w1 + b1, 0) @ w2 + b2
        if normalize:
            out = out / np.linalg.norm(out, axis=1, keepdims=True)
        return out.astype(np.float32)
    return embed
