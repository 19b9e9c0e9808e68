#!/usr/bin/env python3
"""Data for the refresh benchmark: a model retrained in place.

    gen.py old|new|queries ROWS DIM      binary COPY of (id int4, v float4[]) on stdout
    gen.py recall ROWS DIM K FULL REFR   top-K recall of the queries on REFR against FULL
                                         (binary COPY files of (id, real[]) as written by
                                         COPY (SELECT id, fct_vector(emb) ...) TO ... (FORMAT binary))

The stored embeddings ("old") have a low intrinsic dimension, as learned embeddings do: a
16-dimensional Gaussian latent mapped linearly to DIM dimensions, plus a little noise.  Item popularity is Zipf-skewed (exponent 1.0 over a random ranking of the
items); the retrain sees a multinomial sample of 3 x ROWS events drawn by popularity, and the 30%
of items seen most often move (relative drift 0.1 to 0.5, far above the 0.05 threshold) while the
other 70% drift below it (0 to 0.01: the retrain hardly touched them; with 0 to 0.02 the
recall@10 below drops to about 0.987, measured with `gen.py predict`).  "new" is every row's
retrained embedding.  The queries are the new embeddings of 1,000 items drawn by popularity, plus
a little noise.  Everything is a function of the seed, so each call regenerates the same data.
"""
import struct
import sys

import numpy as np

SEED = 20240601
MOVED_FRACTION = 0.30
MOVED_DRIFT = (0.10, 0.50)
STALE_DRIFT = (0.00, 0.01)
LATENT_DIM = 16
N_QUERIES = 1000


def popularity(rng, rows):
    """Zipf weights over a random ranking of the items."""
    rank = rng.permutation(rows) + 1
    w = 1.0 / rank
    return w / w.sum()


def data(rows, dim):
    rng = np.random.default_rng(SEED)
    basis = rng.standard_normal((LATENT_DIM, dim)).astype(np.float32) / np.sqrt(LATENT_DIM)
    old = rng.standard_normal((rows, LATENT_DIM)).astype(np.float32) @ basis
    old += 0.02 * rng.standard_normal((rows, dim)).astype(np.float32)
    p = popularity(rng, rows)
    seen = rng.multinomial(3 * rows, p)
    order = np.lexsort((rng.random(rows), -seen))     # most seen first, ties at random
    moved = np.zeros(rows, dtype=bool)
    moved[order[: int(round(MOVED_FRACTION * rows))]] = True
    lo_hi = np.where(moved[:, None], np.array(MOVED_DRIFT)[None, :], np.array(STALE_DRIFT)[None, :])
    rel = lo_hi[:, 0] + (lo_hi[:, 1] - lo_hi[:, 0]) * rng.random(rows)
    direction = rng.standard_normal((rows, dim)).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    norms = np.linalg.norm(old, axis=1)
    new = old + (rel * norms)[:, None].astype(np.float32) * direction
    qitems = rng.choice(rows, N_QUERIES, p=p)
    queries = new[qitems] + 0.01 * rng.standard_normal((N_QUERIES, dim)).astype(np.float32)
    return old.astype(np.float32), new.astype(np.float32), queries.astype(np.float32), moved


def write_copy(vectors, ids, out):
    """PostgreSQL binary COPY of (id int4, v float4[])."""
    n, dim = vectors.shape
    rec = np.dtype([('nf', '>i2'), ('l1', '>i4'), ('id', '>i4'), ('l2', '>i4'), ('ndim', '>i4'),
                    ('hasnull', '>i4'), ('elemtype', '>i4'), ('dim', '>i4'), ('lb', '>i4'),
                    ('vals', [('len', '>i4'), ('v', '>f4')], (dim,))])
    a = np.zeros(n, dtype=rec)
    a['nf'] = 2
    a['l1'] = 4
    a['id'] = ids
    a['l2'] = 20 + 8 * dim
    a['ndim'] = 1
    a['elemtype'] = 700                               # float4
    a['dim'] = dim
    a['lb'] = 1
    a['vals']['len'] = 4
    a['vals']['v'] = vectors
    out.write(b'PGCOPY\n\xff\r\n\x00' + struct.pack('>ii', 0, 0))
    out.write(a.tobytes())
    out.write(struct.pack('>h', -1))


def read_copy(path, dim):
    """(ids, vectors) from a binary COPY of (id int4, real[])."""
    raw = open(path, 'rb').read()
    body = raw[19:-2]
    rec = np.dtype([('nf', '>i2'), ('l1', '>i4'), ('id', '>i4'), ('l2', '>i4'), ('ndim', '>i4'),
                    ('hasnull', '>i4'), ('elemtype', '>i4'), ('dim', '>i4'), ('lb', '>i4'),
                    ('vals', [('len', '>i4'), ('v', '>f4')], (dim,))])
    a = np.frombuffer(body, dtype=rec)
    if not (np.all(a['dim'] == dim) and np.all(a['nf'] == 2)):
        sys.exit('unexpected COPY layout')
    return a['id'].astype(np.int64), a['vals']['v'].astype(np.float32)


def topk(vectors, ids, queries, k):
    """Exact top-k (L2) ids of every query, in blocks so that memory stays small."""
    vt = np.ascontiguousarray(vectors.T)
    sq = (vectors * vectors).sum(axis=1)
    result = np.empty((len(queries), k), dtype=np.int64)
    for s in range(0, len(queries), 100):
        d = sq[None, :] - 2.0 * (queries[s:s + 100] @ vt)
        result[s:s + 100] = ids[np.argpartition(d, k, axis=1)[:, :k]]
    return result


def main():
    what = sys.argv[1]
    rows, dim = int(sys.argv[2]), int(sys.argv[3])
    old, new, queries, moved = data(rows, dim)
    ids = np.arange(1, rows + 1, dtype=np.int32)
    out = sys.stdout.buffer
    if what == 'old':
        write_copy(old, ids, out)
    elif what == 'new':
        write_copy(new, ids, out)
    elif what == 'recall':
        k = int(sys.argv[4])
        full_ids, full = read_copy(sys.argv[5], dim)
        refr_ids, refr = read_copy(sys.argv[6], dim)
        a = topk(full, full_ids, queries, k)
        b = topk(refr, refr_ids, queries, k)
        hits = sum(len(set(x) & set(y)) for x, y in zip(a, b))
        print('%.4f' % (hits / (k * len(queries))))
    elif what == 'predict':
        # what the refresh should do, and the recall it should give, without a database
        refreshed = np.where(moved[:, None], new, old)
        k = 10
        a = topk(new, ids.astype(np.int64), queries, k)
        b = topk(refreshed, ids.astype(np.int64), queries, k)
        hits = sum(len(set(x) & set(y)) for x, y in zip(a, b))
        print('moved %d of %d, predicted recall@10 %.4f' % (moved.sum(), rows, hits / (k * len(queries))))
    else:
        sys.exit('usage: gen.py old|new|recall|predict ROWS DIM ...')


if __name__ == '__main__':
    main()
