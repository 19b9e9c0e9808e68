#!/usr/bin/python3
"""Retrieval quality of the fitted transformations, and the numpy floor of the fit's arithmetic.

usage: evaluate.py DATADIR [--check]
       evaluate.py DATADIR --floor FIT_RESULT_JSON
  DATADIR holds gallery.csv and pairs.csv (embed.py), upgraded_*.csv (id, vector: the gallery's
  old embeddings upgraded in the database by fct_upgrade), fits.json (one fit result per line)
  and timing.json (lines that --floor printed: a fit's seconds per epoch and numpy's for the same
  MLP, shapes, batch size and epochs, measured right after it).

Retrieval: every gallery image queries all the others (leave-one-out), by cosine similarity;
top-1 is the share of queries whose nearest image has their class, mAP the mean average
precision over the whole ranking (relevant = same class).
"""
import csv
import json
import sys
import time

import numpy as np


def parse(a):
    return np.array(a.strip("{}").split(","), np.float32)


def normalise(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def retrieval(queries, gallery, labels, chunk=500):
    q, g = normalise(queries), normalise(gallery)
    n = len(labels)
    top1 = 0
    ap_sum = 0.0
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        sim = q[s:e] @ g.T
        sim[np.arange(e - s), np.arange(s, e)] = -np.inf      # leave the query itself out
        order = np.argsort(-sim, axis=1)[:, :n - 1]
        rel = labels[order] == labels[s:e, None]
        top1 += rel[:, 0].sum()
        hits = np.cumsum(rel, axis=1)
        prec = hits / np.arange(1, n, dtype=np.float64)
        nrel = np.maximum(rel.sum(axis=1), 1)
        ap_sum += ((prec * rel).sum(axis=1) / nrel).sum()
    return 100.0 * top1 / n, 100.0 * ap_sum / n


def numpy_mlp(pairs, o, epochs, n_train, seed=0):
    """The mlp's shape (old and side branches, mixer) trained in numpy float32 with Adam on the mean
    squared error: inputs standardised, minibatches of o["batch_size"], lr o["lr"] (torch's defaults
    otherwise), `epochs` epochs.  Returns (predict, seconds): predict(old, side) -> new."""
    old, side, new = pairs
    x = np.concatenate([old, side], axis=1)[:n_train]
    mu, sd = x.mean(0), x.std(0) + 1e-12
    x = (x - mu) / sd
    y = new[:n_train]
    d, s = old.shape[1], side.shape[1]
    rng = np.random.default_rng(seed)

    def init(i, o_):
        b = 1 / np.sqrt(i)
        return [rng.uniform(-b, b, (i, o_)).astype(np.float32), rng.uniform(-b, b, o_).astype(np.float32)]
    widths = [o["old_hidden"] + o["side_hidden"]] + o["mixer_hidden"] + [y.shape[1]]
    params = init(d, o["old_hidden"]) + init(s, o["side_hidden"])
    for a, b in zip(widths[:-1], widths[1:]):
        params += init(a, b)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr, bs, step = o["lr"], o["batch_size"], 0

    def forward(xb):
        ho = np.maximum(xb[:, :d] @ params[0] + params[1], 0)
        hs = np.maximum(xb[:, d:] @ params[2] + params[3], 0)
        acts = [np.concatenate([ho, hs], axis=1)]
        k = 4
        for i in range(len(widths) - 1):
            z = acts[-1] @ params[k] + params[k + 1]
            acts.append(np.maximum(z, 0) if i < len(widths) - 2 else z)
            k += 2
        return acts

    t0 = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(n_train)
        for st in range(0, n_train, bs):
            idx = order[st:st + bs]
            xb, yb = x[idx], y[idx]
            acts = forward(xb)
            g = 2 * (acts[-1] - yb) / yb.size
            grads = [None] * len(params)
            for i in reversed(range(len(widths) - 1)):
                k = 4 + 2 * i
                grads[k] = acts[i].T @ g
                grads[k + 1] = g.sum(0)
                g = (g @ params[k].T) * (acts[i] > 0)
            go, gs = g[:, :o["old_hidden"]], g[:, o["old_hidden"]:]
            grads[0], grads[1] = xb[:, :d].T @ go, go.sum(0)
            grads[2], grads[3] = xb[:, d:].T @ gs, gs.sum(0)
            step += 1
            c1, c2 = 1 - 0.9 ** step, 1 - 0.999 ** step
            for i, gr in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * gr
                v[i] = 0.999 * v[i] + 0.001 * gr * gr
                params[i] -= (lr / c1) * m[i] / (np.sqrt(v[i]) / np.sqrt(c2) + 1e-8)
    sec = time.perf_counter() - t0

    def predict(old_, side_):
        return forward((np.concatenate([old_, side_], axis=1) - mu) / sd)[-1]
    return predict, sec


# The reference's epochs: the mlp's former default (a fixed 30), as the reference ran it.
REFERENCE_EPOCHS = 30


def numpy_floor(pairs, fit, seed=0):
    """The fit's epochs, timed in numpy (float32, same shapes, batch, Adam)."""
    _, sec = numpy_mlp(pairs, fit["options"], fit["epochs"], fit["n_train"], seed)
    return sec / fit["epochs"], fit["n_train"] * fit["epochs"] / sec


REFERENCE_LABEL = "new/h(old, side), numpy mlp reference (Adam, same shape)"


def load_pairs(datadir):
    pold, pside, pnew = [], [], []
    with open(f"{datadir}/pairs.csv") as f:
        for row in csv.reader(f):
            pold.append(parse(row[0]))
            pside.append(parse(row[1]))
            pnew.append(parse(row[2]))
    return np.stack(pold), np.stack(pside), np.stack(pnew)


def floor(datadir, fit_json):
    """Time the numpy floor for one fit result and print a timing.json line."""
    fit = json.loads(fit_json)
    spe, _ = numpy_floor(load_pairs(datadir), fit)
    print(json.dumps({"fct_seconds_per_epoch": fit["seconds_per_epoch"],
                      "numpy_seconds_per_epoch": spe,
                      "n_train": fit["n_train"], "epochs": fit["epochs"]}))


def main(datadir):
    ids, labels, old, new = [], [], [], []
    with open(f"{datadir}/gallery.csv") as f:
        for row in csv.reader(f):
            ids.append(int(row[0]))
            labels.append(int(row[1]))
            old.append(parse(row[2]))
            new.append(parse(row[4]))
    labels, old, new = np.array(labels), np.stack(old), np.stack(new)
    fits = [json.loads(line) for line in open(f"{datadir}/fits.json") if line.strip()]

    rows = [("old/old", *retrieval(old, old, labels))]
    for fit in fits:
        up = {}
        with open(f"{datadir}/upgraded_{fit['to_model']}.csv") as f:
            for row in csv.reader(f):
                up[int(row[0])] = parse(row[1])
        upg = np.stack([up[i] for i in ids])
        rows.append((fit["label"], *retrieval(new, upg, labels)))
    # the reference: the default mlp's shape trained in numpy with Adam, side by side with fct's
    default = [f for f in fits if f["label"].startswith("new/h(old, side), mlp")]
    side_g = []
    with open(f"{datadir}/gallery.csv") as f:
        for row in csv.reader(f):
            side_g.append(parse(row[3]))
    if default:
        predict, _ = numpy_mlp(load_pairs(datadir), default[0]["options"], REFERENCE_EPOCHS,
                               default[0]["n_train"])
        rows.append((REFERENCE_LABEL, *retrieval(new, predict(old, np.stack(side_g)), labels)))
    rows.append(("new/new (full backfill)", *retrieval(new, new, labels)))

    print(f"gallery {len(labels)} test images, leave-one-out queries, cosine similarity")
    print(f"{'case':58s} {'top-1':>6s} {'mAP':>6s}")
    for name, t1, ap in rows:
        print(f"{name:58s} {t1:6.1f} {ap:6.1f}")

    print()
    print(f"{'fit':58s} {'s/epoch':>8s} {'pairs/s':>9s} {'val MSE':>9s} {'mean-pred':>9s}")
    for fit in fits:
        spe = fit.get("seconds_per_epoch")
        pps = fit.get("pairs_per_second")
        # a linear fit has no epochs: '-', not nan
        spe_text = f"{spe:8.3f}" if spe is not None else f"{'-':>8s}"
        print(f"{fit['label']:58s} {spe_text} "
              f"{pps:9.0f} {fit['val_loss']:9.5f} {fit['baseline_val_loss']:9.5f}")
    result = {"rows": rows}
    timing = [json.loads(line) for line in open(f"{datadir}/timing.json") if line.strip()]
    if timing:
        fct = min(t["fct_seconds_per_epoch"] for t in timing)
        floor = min(t["numpy_seconds_per_epoch"] for t in timing)
        n_train, epochs = timing[0]["n_train"], timing[0]["epochs"]
        print()
        print(f"speed of the default MLP fit, {n_train} training pairs, {epochs} epochs, "
              f"best of {len(timing)} alternating runs:")
        print(f"  fct_fit_transformation  {fct:.3f} s/epoch  {n_train / fct:9.0f} pairs/s")
        print(f"  numpy (the floor)       {floor:.3f} s/epoch  {n_train / floor:9.0f} pairs/s")
        print(f"  fct / numpy time per epoch: {fct / floor:.2f}x")
        result["fct_over_numpy"] = fct / floor
    return result


if __name__ == "__main__":
    if sys.argv[2:3] == ["--floor"]:
        floor(sys.argv[1], sys.argv[3])
        sys.exit(0)
    res = main(sys.argv[1])
    if len(sys.argv) > 2 and sys.argv[2] == "--check":
        # the paper's ordering, loosely: the transformed gallery with side-information beats the
        # old model, and does at least as well as without side-information (within 1 point); and
        # the default mlp fit is at least as good as the numpy reference of its shape (within 1 point)
        by = {r[0]: r for r in res["rows"]}
        oo = by["old/old"][1]
        side = [r for r in res["rows"] if r[0].startswith("new/h(old, side), mlp")][0][1]
        noside = [r for r in res["rows"] if r[0].startswith("new/h(old)") and "mlp" in r[0]][0][1]
        ref = by[REFERENCE_LABEL][1]
        ok = side > oo and side >= noside - 1.0
        print("ordering check:", "ok" if ok else "FAILED",
              f"(old/old {oo:.1f}, transformed without side {noside:.1f}, with side {side:.1f})")
        ok_ref = side >= ref - 1.0
        print("reference check:", "ok" if ok_ref else "FAILED",
              f"(default mlp fit {side:.1f}, numpy reference {ref:.1f}: within 1 point or better)")
        sys.exit(0 if ok and ok_ref else 1)
