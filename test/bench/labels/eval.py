#!/usr/bin/env python3
"""Label-shift evaluation of fct's label look-ups on Fashion-MNIST.

1. Trains a linear softmax classifier in numpy on a PCA projection of the training images:
   query embedding = the image's PCA coordinates, label embedding = the class's weight vector,
   bias = the class's bias.  Loads the label embeddings as the label set 'fmnist', the test
   images as query embeddings, and counts the training prior from the training labels
   (fct_set_train_prior_from).
2. Simulates performative label shift as in Demirel et al. (2024): round t samples n test images
   with class proportions p_t; the deployed model's per-class accuracy acc_t sets the next
   round's proportions, p_{t+1} = softmax(-acc_t / tau) (a negative temperature: weak classes
   grow).  The deployed model is the adapter-corrected one (uncorrected until the adapter has
   two rounds of history).
3. Each round, through the extension's functions only (fct_top_labels_batch, k = 1):
   uncorrected (corrected => false); EM-corrected (fct_estimate_prior_em on the round's
   unlabelled queries, installed with fct_set_prior); adapter-corrected (fct_fit_prior_adapter on
   fct_label_rounds, fct_predict_prior from the previous round's accuracies, before the round's
   data is seen); oracle-corrected (the round's true proportions).  The round is then recorded
   in fct_label_rounds (accuracies of the deployed model, observed proportions).

Python only trains the classifier and plays the environment (sampling the rounds); every
prediction, prior and accuracy comes from SQL.  psql is called with the environment's
PGHOST/PGPORT.  Prints a Markdown table.
"""
import argparse
import gzip
import os
import subprocess
import sys
import time

import numpy as np

DATA = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(name):
    path = os.path.join(DATA, name)
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def train_classifier(x, y, dim, iters, seed):
    """PCA to dim, standardise, multinomial logistic regression by full-batch gradient descent
    with momentum.  Returns (project, W (C x dim), b (C))."""
    mean = x.mean(0)
    xc = x - mean
    cov = xc.T @ xc / len(xc)
    evals, evecs = np.linalg.eigh(cov)
    comps = evecs[:, ::-1][:, :dim]
    z = xc @ comps
    scale = z.std(0) + 1e-6
    z = z / scale

    def project(a):
        return ((a - mean) @ comps) / scale

    C = 10
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.01, (C, dim))
    b = np.zeros(C)
    vW = np.zeros_like(W)
    vb = np.zeros_like(b)
    Y = np.eye(C)[y]
    lr, mom, l2 = 0.5, 0.9, 1e-4
    for _ in range(iters):
        s = z @ W.T + b
        s -= s.max(1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(1, keepdims=True)
        g = (p - Y) / len(z)
        gW = g.T @ z + l2 * W
        gb = g.sum(0)
        vW = mom * vW - lr * gW
        vb = mom * vb - lr * gb
        W += vW
        b += vb
    return project, W, b


class Psql:
    def __init__(self, db):
        self.db = db

    def run(self, sql):
        out = subprocess.run(["psql", "-X", "-q", "-At", "-F", "|", "-v", "ON_ERROR_STOP=1",
                              "-d", self.db], input=sql, capture_output=True, text=True)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            raise SystemExit("psql failed")
        return [line for line in out.stdout.splitlines() if line]


def vec(a):
    return "[" + ",".join("%.6g" % v for v in a) + "]"


def arr(a):
    return "{" + ",".join("%.7g" % v for v in a) + "}"


def softmax(v):
    v = v - v.max()
    e = np.exp(v)
    return e / e.sum()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--work", required=True, help="directory for the generated CSV files")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--train-limit", type=int, default=60000)
    ap.add_argument("--iters", type=int, default=300, help="classifier training iterations")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--n", type=int, default=2000, help="queries per round")
    ap.add_argument("--tau", type=float, default=0.1, help="temperature of the shift (negated)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--recency", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    t0 = time.time()
    xtr = read_idx("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float64) / 255
    ytr = read_idx("train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = read_idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float64) / 255
    yte = read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64)
    rng = np.random.default_rng(args.seed)
    if args.train_limit < len(xtr):
        keep = rng.choice(len(xtr), args.train_limit, replace=False)
        xtr, ytr = xtr[keep], ytr[keep]
    project, W, b = train_classifier(xtr, ytr, args.dim, args.iters, args.seed)
    zte = project(xte)
    np_acc = float(((zte @ W.T + b).argmax(1) == yte).mean())
    print("classifier: linear softmax on %d PCA dims, %d training images, test accuracy %.4f "
          "(numpy), %.1f s" % (args.dim, len(xtr), np_acc, time.time() - t0))

    os.makedirs(args.work, exist_ok=True)
    with open(os.path.join(args.work, "labels.csv"), "w") as f:
        for c in range(10):
            f.write("%d\t%s\t%.8g\t%s\n" % (c, vec(W[c]), b[c], CLASSES[c]))
    with open(os.path.join(args.work, "test.csv"), "w") as f:
        for i in range(len(zte)):
            f.write("%d\t%d\t%s\n" % (i, yte[i], vec(zte[i])))
    with open(os.path.join(args.work, "train_labels.csv"), "w") as f:
        f.write("\n".join(str(v) for v in ytr) + "\n")

    db = Psql(args.db)
    w = args.work
    db.run(f"""
SET client_min_messages = warning;
DROP TABLE IF EXISTS fmnist_labels, fmnist_test, fmnist_train, fmnist_round CASCADE;
CREATE TABLE fmnist_labels (id int PRIMARY KEY, e embedding, b real, name text);
CREATE TABLE fmnist_test (id int PRIMARY KEY, y int, q embedding);
CREATE TABLE fmnist_train (y int);
CREATE TABLE fmnist_round (qid bigint PRIMARY KEY, img int);
\\copy fmnist_labels FROM '{w}/labels.csv'
\\copy fmnist_test FROM '{w}/test.csv'
\\copy fmnist_train FROM '{w}/train_labels.csv'
SELECT fct_drop_label_set(name) FROM fct_label_sets WHERE name = 'fmnist';
SELECT fct_create_label_set('fmnist', 'fmnist_labels', 'id', 'e', 'b');
SELECT fct_set_train_prior_from('fmnist', 'SELECT y FROM fmnist_train');
""")
    full = db.run("""
SELECT avg((b.label::int = t.y)::int)
  FROM fct_top_labels_batch('fmnist', 'SELECT id::bigint, q FROM fmnist_test', 1, false) b
  JOIN fmnist_test t ON t.id = b.query_id;""")
    print("the same classifier through fct_top_labels_batch on the 10,000 test images: accuracy %.4f"
          % float(full[0]))

    pools = [np.flatnonzero(yte == c) for c in range(10)]
    queries = "SELECT r.qid, t.q FROM fmnist_round r JOIN fmnist_test t ON t.id = r.img"
    acc_sql = f"""
SELECT coalesce(avg((b.label::int = t.y)::int), 0)
  FROM fct_top_labels_batch('fmnist', '{queries}', 1, %s) b
  JOIN fmnist_round r ON r.qid = b.query_id JOIN fmnist_test t ON t.id = r.img;"""
    per_class_sql = f"""
SELECT string_agg(coalesce(a::text, ''), ',' ORDER BY c) FROM generate_series(0, 9) c
  LEFT JOIN (SELECT t.y, avg((b.label::int = t.y)::int) AS a
			   FROM fct_top_labels_batch('fmnist', '{queries}', 1, true) b
			   JOIN fmnist_round r ON r.qid = b.query_id JOIN fmnist_test t ON t.id = r.img
			  GROUP BY t.y) s ON s.y = c;"""

    p = np.full(10, 0.1)
    prev_acc = None
    rows = []
    for t in range(1, args.rounds + 1):
        counts = rng.multinomial(args.n, p)
        imgs = np.concatenate([rng.choice(pools[c], counts[c], replace=True) for c in range(10)])
        with open(os.path.join(w, "round.csv"), "w") as f:
            f.write("".join("%d\t%d\n" % (i + 1, img) for i, img in enumerate(imgs)))
        observed = counts / counts.sum()
        res = {}
        db.run(f"TRUNCATE fmnist_round;\n\\copy fmnist_round FROM '{w}/round.csv'\nANALYZE fmnist_round;")
        res["uncorrected"] = float(db.run(acc_sql % "false")[0])
        db.run(f"SELECT fct_set_prior('fmnist', fct_check_prior('{arr(observed + 1e-6)}', 10), 'oracle');")
        res["oracle"] = float(db.run(acc_sql % "true")[0])
        db.run(f"SELECT fct_set_prior('fmnist', fct_estimate_prior_em('fmnist', '{queries}'), 'em');")
        res["em"] = float(db.run(acc_sql % "true")[0])
        fitted = False
        if prev_acc is not None:
            pairs = int(db.run("SELECT count(*) FROM fct_label_rounds a JOIN fct_label_rounds b "
                               "ON b.label_set = a.label_set AND b.round = a.round + 1 "
                               "WHERE a.label_set = 'fmnist'")[0])
            if pairs > 0:
                db.run(f"SELECT fct_fit_prior_adapter('fmnist', {args.hidden}, {args.epochs}, "
                       f"{args.lr}, {args.seed}, {args.recency});"
                       f"SELECT fct_set_prior('fmnist', fct_predict_prior('fmnist', '{arr(prev_acc)}'),"
                       f" 'adapter');")
                fitted = True
        if not fitted:
            db.run("SELECT fct_set_prior('fmnist', NULL);")
        res["adapter"] = float(db.run(acc_sql % "true")[0])
        # the deployed (adapter-corrected) model's per-class accuracy
        cells = db.run(per_class_sql)[0].split(",")
        acc = np.array([float(v) if v != "" else (prev_acc[i] if prev_acc is not None else 1.0)
                        for i, v in enumerate(cells)])
        db.run(f"INSERT INTO fct_label_rounds (label_set, round, accuracies, proportions) "
               f"VALUES ('fmnist', {t}, '{arr(acc)}', '{arr(observed)}') "
               f"ON CONFLICT (label_set, round) DO UPDATE SET accuracies = EXCLUDED.accuracies, "
               f"proportions = EXCLUDED.proportions;")
        rows.append((t, observed, res, fitted))
        prev_acc = acc
        p = softmax(-acc / args.tau)
        print("round %2d done (%.1f s)" % (t, time.time() - t0), file=sys.stderr)

    print()
    print("| round | largest class share | uncorrected | EM | adapter | oracle prior |")
    print("|---:|---|---:|---:|---:|---:|")
    for t, observed, res, fitted in rows:
        top = int(observed.argmax())
        print("| %d | %s %.2f | %.3f | %.3f | %s | %.3f |" % (
            t, CLASSES[top], observed[top], res["uncorrected"], res["em"],
            ("%.3f" % res["adapter"]) if fitted else "(%.3f, no history)" % res["adapter"],
            res["oracle"]))
    later = [r for r in rows if r[3]]
    if later:
        def mean(k):
            return np.mean([r[2][k] for r in later])
        print("| mean of rounds %d-%d | | %.3f | %.3f | %.3f | %.3f |" % (
            later[0][0], later[-1][0], mean("uncorrected"), mean("em"), mean("adapter"),
            mean("oracle")))
        print()
        print("ratios to uncorrected (rounds with an adapter): EM %.3f, adapter %.3f, oracle %.3f" % (
            mean("em") / mean("uncorrected"), mean("adapter") / mean("uncorrected"),
            mean("oracle") / mean("uncorrected")))
    # sanity for the smoke run: the oracle prior never hurts much, and every method ran
    bad = [r for r in rows if r[2]["oracle"] + 0.05 < r[2]["uncorrected"]]
    if bad:
        raise SystemExit("oracle-corrected accuracy fell below uncorrected in round %d" % bad[0][0])


if __name__ == "__main__":
    main()
