#!/usr/bin/python3
"""numpy prototypes of candidate ideas for the lsh index, measured on the benchmark's data sets (the .npy
files gen_data.py writes), to choose what to build by measurement.  Findings: /work/coord/lsh-findings.md
during development, test/bench/lsh/README.md for the record.

  prototypes.py EXPERIMENT DATADIR METRIC [LISTS]
      DATADIR  a directory gen_data.py wrote (labels.npy, queries.npy, cat.npy, truth-METRIC.tsv)
      METRIC   ip | cosine | l2
      LISTS    number of lists (default rows / 500, as the index's default)

EXPERIMENT:
  probes    the index's partition as it builds it today (spherical k-means for ip/cosine, ranked by mean
            norm x cosine for ip; k-means for l2): recall@10 against fixed probes and the candidates they
            read, and adaptive first-step rules (which lists to probe per query) for every metric
  soar      a second assignment per vector (ScaNN's SOAR: the second list minimises |x - c'|^2 +
            lambda <r, x - c'>^2 / |r|^2, r the residual to the first centre) against the plain second
            nearest centre and against none: recall against candidates read
  balance   list-size spread of the partition, and a balanced assignment (a size penalty on the
            distance to each centre) with its recall against candidates
  twolevel  assignment through groups of centres (k-means of the centres into sqrt(lists) groups;
            compare with the groups, then with the centres of the best G groups): how often it finds the
            nearest centre, products per vector, recall
  codes     compact codes for a first pass over the probed candidates before the exact re-rank:
            1-bit codes of the rotated residual (RaBitQ-like) and 4-bit product quantisation; what
            fraction of the candidates must be re-ranked exactly to keep 95% / 99% of the exact re-rank's
            recall
  unit      the ordered scan's bounds with the unit measured at build (lshcalibrate.c) against the
            fixed 1 / sqrt(D): the least allowance each true neighbour needs, on calibration queries
            (sample rows, Gaussian draws) and on the test queries; recall, order, candidates
  allowance the ordered scan's list bound with the allowance for <q^, r> from each list's largest
            residual norm (t rmax) against its root mean square (min(rmax, t rrms), lshbound.c):
            recall against candidates
  filter    filtered search (cat = 0, cat < 10, cat < 50): lists probed by "stop at k qualifying rows"
            (today's widening) against a per-list bound (stop when no unprobed list can hold a better
            row than the current k-th), the recall and order each gives

"Candidates" is the number of vectors whose exact distance the scan computes (the re-rank), the cost
that dominates a probe; ranking the lists costs LISTS products more per query.
"""
import os
import sys
import time

import numpy as np

K = 10


# -- data ---------------------------------------------------------------------------------------

def load(d, metric):
    x = np.load(d + "/labels.npy")
    q = np.load(d + "/queries.npy")
    cat = np.load(d + "/cat.npy")
    truth = {}
    with open("%s/truth-%s.tsv" % (d, metric)) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    for j, name in enumerate(("all", "f1", "f10", "f50")):
        truth[name] = np.array([[int(v) - 1 for v in r[j + 1].strip("{}").split(",")] for r in rows])
    return x, q, cat, truth


def normalise(v):
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(n, 1e-30)


def dist(metric, q, x):
    """Smaller is nearer (the exact order), for a block of queries against rows x."""
    s = q @ x.T
    if metric == "ip":
        return -s
    if metric == "cosine":
        return -s / np.linalg.norm(x, axis=1)[None, :] / np.linalg.norm(q, axis=1)[:, None]
    return (x * x).sum(1)[None, :] - 2 * s + (q * q).sum(1)[:, None]


# -- partition ----------------------------------------------------------------------------------

def kmeans(x, k, iters=8, spherical=False, seed=0):
    """Lloyd on a sample of 40 rows per list (the index's sample size), k-means++-lite start."""
    rng = np.random.default_rng(seed)
    n = len(x)
    s = x[rng.choice(n, min(n, max(10000, 40 * k)), replace=False)]
    c = s[rng.choice(len(s), k, replace=False)].copy()
    for _ in range(iters):
        a = assign(s, c, spherical)
        sums = np.zeros_like(c)
        np.add.at(sums, a, s)
        cnt = np.bincount(a, minlength=k)
        empty = cnt == 0
        c[~empty] = sums[~empty] / cnt[~empty, None]
        c[empty] = s[rng.choice(len(s), empty.sum(), replace=False)]
        if spherical:
            c = normalise(c)
    return c


def center_scores(x, c, spherical):
    """Smaller is nearer: -cos for spherical centres, |x - c|^2 - |x|^2 for l2."""
    if spherical:
        return -(x @ c.T)
    return (c * c).sum(1)[None, :] - 2 * (x @ c.T)


def assign(x, c, spherical, block=20000):
    out = np.empty(len(x), np.int64)
    for i in range(0, len(x), block):
        out[i:i + block] = np.argmin(center_scores(x[i:i + block], c, spherical), axis=1)
    return out


class Partition:
    """The index's partition: what the build learns and how a query ranks the lists."""

    def __init__(self, x, metric, k, seed=0):
        self.metric = metric
        self.spherical = metric != "l2"
        xd = normalise(x) if self.spherical else x
        t0 = time.process_time()
        self.c = kmeans(xd, k, spherical=self.spherical, seed=seed)
        self.a = assign(xd, self.c, self.spherical)
        self.build_s = time.process_time() - t0
        self.k = k
        self.sizes = np.bincount(self.a, minlength=k)
        norms = np.linalg.norm(x, axis=1)
        self.list_norm = np.bincount(self.a, norms, minlength=k) / np.maximum(self.sizes, 1)
        self.xd = xd

    def rank_scores(self, q):
        """Smaller ranks first (as lsh_rank_lists)."""
        s = q @ self.c.T
        if self.metric == "ip":
            return -self.list_norm[None, :] * s
        if self.metric == "cosine":
            return -s
        return (self.c * self.c).sum(1)[None, :] - 2 * s


def list_ranks(p, q):
    """Per query: the lists in probe order and each list's position in it."""
    sc = p.rank_scores(q)
    order = np.argsort(sc, axis=1, kind="stable")
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(p.k)[None, :].repeat(len(q), 0), axis=1)
    return sc, order, pos


def found_rank(pos, assignments, truth):
    """Per query and truth row: the probe position at which the row is first read (several
    assignments: the earliest)."""
    r = None
    for a in assignments:
        t = np.take_along_axis(pos, a[truth], axis=1)
        r = t if r is None else np.minimum(r, t)
    return r


def curve(pos, order, sizes_list, assignments, truth, probes):
    """recall@10 and mean candidates per query when every query probes the same number of lists."""
    fr = found_rank(pos, assignments, truth)
    cand = np.cumsum(sum(s[order] for s in sizes_list), axis=1)
    out = []
    for p in probes:
        out.append(((fr < p).mean(), cand[:, p - 1].mean()))
    return out


def cheapest(points, target):
    """(candidates, probes) at the recall target with a fixed number of probes: the candidates
    interpolated linearly between the two settings around the target, the first setting reaching it."""
    prev = None
    for p, (rec, cand) in points:
        if rec >= target:
            if prev is None or prev[0] >= rec:
                return cand, p
            return prev[1] + (cand - prev[1]) * (target - prev[0]) / (rec - prev[0]), p
        prev = (rec, cand)
    return None, None


# -- experiments --------------------------------------------------------------------------------

PROBES = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128]


def exp_probes(x, q, cat, truth, metric, k):
    p = Partition(x, metric, k)
    sc, order, pos = list_ranks(p, q)
    n = len(x)
    pts = list(zip(PROBES, curve(pos, order, [p.sizes], [p.a], truth["all"], [min(v, k) for v in PROBES])))
    print("partition: %d lists, sizes %d-%d (mean %.0f, cv %.2f), build %.1f s CPU in numpy" % (
        k, p.sizes.min(), p.sizes.max(), p.sizes.mean(), p.sizes.std() / p.sizes.mean(), p.build_s))
    print("\n| probes | recall@10 | candidates (% of rows) |\n|---|---|---|")
    for pr, (rec, cand) in pts:
        if pr <= k:
            print("| %d | %.4f | %.0f (%.2f%%) |" % (pr, rec, cand, 100 * cand / n))
    for t in (0.95, 0.99):
        c, pr = cheapest(pts, t)
        print("fixed probes for %.2f: %s lists, %s candidates" % (t, pr, "-" if c is None else "%.0f" % c))
    fr = found_rank(pos, [p.a], truth["all"])
    best = sc.min(axis=1, keepdims=True)
    cap = max(8, k // 25)
    sz = p.sizes[order]

    def evaluate(name, nprobe):
        nprobe = np.clip(nprobe, 1, k)
        rec = (fr < nprobe[:, None]).mean()
        cand = np.array([sz[i, :nprobe[i]].sum() for i in range(len(q))])
        print("| %s | %.4f | %.1f | %.0f | %.0f |" % (name, rec, nprobe.mean(), cand.mean(), np.percentile(cand, 99)))
        return rec, cand.mean()

    print("\nadaptive first steps (lists probed per query chosen by a rule; cap %d):\n" % cap)
    print("| rule | recall@10 | mean lists | mean candidates | p99 candidates |\n|---|---|---|---|---|")
    ss = np.sort(sc, axis=1)
    if metric != "l2":
        for ratio in (0.9, 0.8, 0.7, 0.6, 0.5):
            # scores are negated similarities: probe lists with similarity >= ratio x the best one's
            n_ok = (ss <= best * ratio).sum(1)
            evaluate("similarity >= %.1f x best (today's, cap)" % ratio, np.minimum(n_ok, cap))
            evaluate("similarity >= %.1f x best, no cap" % ratio, n_ok)
    # rules for every metric: distances, in units of the query's own spread of list scores
    if metric == "l2":
        d = np.sqrt(np.maximum(ss + (q * q).sum(1)[:, None], 0))       # distance to each centre
    elif metric == "cosine":
        # chord to each unit centre (the scores are -<q, c> for the unnormalised query)
        d = np.sqrt(np.maximum(2 + 2 * ss / np.linalg.norm(q, axis=1)[:, None], 0))
    else:
        d = None
    if d is not None:
        # the lists' radius: rms distance of members to their centre
        for eps in (0.02, 0.05, 0.1, 0.2):
            n_ok = (d <= d[:, :1] * (1 + eps)).sum(1)
            evaluate("distance <= (1 + %.2f) x nearest centre's" % eps, np.minimum(n_ok, cap))
        rad = np.sqrt(np.bincount(p.a, ((p.xd - p.c[p.a]) ** 2).sum(1), minlength=k) / np.maximum(p.sizes, 1))
        rad_sorted = rad[order]
        for frac in (0.1, 0.2, 0.3, 0.5):
            n_ok = (d - d[:, :1] <= frac * rad_sorted[:, :1]).sum(1)
            evaluate("distance - nearest <= %.1f x nearest list's rms radius" % frac, np.minimum(n_ok, cap))
    for mult in (2, 3, 4):
        # by candidates: probe until mult x the mean list size have been read
        target = mult * n / k
        n_ok = (np.cumsum(sz, axis=1) < target).sum(1) + 1
        evaluate("until %d x a mean list's rows are read" % mult, n_ok)
    return p


def exp_soar(x, q, cat, truth, metric, k):
    p = Partition(x, metric, k)
    sc, order, pos = list_ranks(p, q)
    n = len(x)
    # residuals against the centre as the ranking sees it (ip: direction x the list's mean norm)
    if metric == "ip":
        cvec = p.c * p.list_norm[:, None]
        xv = x
    else:
        cvec = p.c
        xv = p.xd
    r = xv - cvec[p.a]
    rn2 = np.maximum((r * r).sum(1), 1e-30)
    res = {"none": ([p.sizes], [p.a])}
    second_plain = np.empty(n, np.int64)
    second = {lam: np.empty(n, np.int64) for lam in (1.0, 1.5, 2.0)}
    for i in range(0, n, 10000):
        xb, rb, ab = xv[i:i + 10000], r[i:i + 10000], p.a[i:i + 10000]
        d2 = (xb * xb).sum(1)[:, None] - 2 * xb @ cvec.T + (cvec * cvec).sum(1)[None, :]
        d2[np.arange(len(xb)), ab] = np.inf
        second_plain[i:i + 10000] = np.argmin(d2, axis=1)
        # <r, x - c'> = <r, x> - <r, c'>
        proj = ((rb * xb).sum(1)[:, None] - rb @ cvec.T) ** 2 / rn2[i:i + 10000, None]
        for lam, out in second.items():
            out[i:i + 10000] = np.argmin(d2 + lam * proj, axis=1)
    res["second nearest"] = ([p.sizes, np.bincount(second_plain, minlength=k)], [p.a, second_plain])
    for lam, out in second.items():
        res["SOAR lambda %.1f" % lam] = ([p.sizes, np.bincount(out, minlength=k)], [p.a, out])
    print("| assignment | " + " | ".join("recall at %d probes (candidates)" % v for v in (1, 2, 4, 8)) +
          " | candidates for 0.95 | for 0.99 |\n|---|---|---|---|---|---|---|")
    for name, (sizes, assigns) in res.items():
        pts = list(zip(PROBES, curve(pos, order, sizes, assigns, truth["all"], [min(v, k) for v in PROBES])))
        cells = ["%.4f (%.0f)" % (rec, cand) for pr, (rec, cand) in pts if pr in (1, 2, 4, 8)]
        c95 = cheapest(pts, 0.95)[0]
        c99 = cheapest(pts, 0.99)[0]
        print("| %s | %s | %s | %s |" % (name, " | ".join(cells), "-" if c95 is None else "%.0f" % c95,
                                         "-" if c99 is None else "%.0f" % c99))
    print("(a vector assigned twice is read twice when both its lists are probed; candidates count reads; "
          "the index would be 2x the entries)")


def exp_balance(x, q, cat, truth, metric, k):
    p = Partition(x, metric, k)
    sc, order, pos = list_ranks(p, q)
    print("sizes: min %d, max %d, mean %.0f, cv %.2f, p99 %.0f" % (
        p.sizes.min(), p.sizes.max(), p.sizes.mean(), p.sizes.std() / p.sizes.mean(), np.percentile(p.sizes, 99)))
    # balanced assignment: penalty alpha x (size / mean size) added to the centre score, greedy in
    # a random order (as an insert would see it)
    n = len(x)
    cs = center_scores(p.xd, p.c, p.spherical)
    spread = np.median(np.sort(cs, axis=1)[:, 1] - np.sort(cs, axis=1)[:, 0])
    print("\n| assignment | sizes min-max (cv) | recall at 1 / 2 / 4 / 8 probes | candidates for 0.95 | for 0.99 | "
          "p99 candidates at the 0.95 setting |\n|---|---|---|---|---|---|")
    for alpha in (0, 0.5, 1, 2, 4):
        if alpha == 0:
            a = p.a
        else:
            size = np.zeros(k)
            a = np.empty(n, np.int64)
            mean = n / k
            for i in np.random.default_rng(1).permutation(n):
                j = int(np.argmin(cs[i] + alpha * spread * size / mean))
                a[i] = j
                size[j] += 1
        sizes = np.bincount(a, minlength=k)
        pts = list(zip(PROBES, curve(pos, order, [sizes], [a], truth["all"], [min(v, k) for v in PROBES])))
        c95, p95 = cheapest(pts, 0.95)
        c99 = cheapest(pts, 0.99)[0]
        p99c = "-" if p95 is None else "%.0f" % np.percentile(np.cumsum(sizes[order], axis=1)[:, p95 - 1], 99)
        cells = " / ".join("%.3f" % rec for pr, (rec, cand) in pts if pr in (1, 2, 4, 8))
        print("| size penalty %.1f x median margin | %d-%d (%.2f) | %s | %s | %s | %s |" % (
            alpha, sizes.min(), sizes.max(), sizes.std() / sizes.mean(), cells,
            "-" if c95 is None else "%.0f" % c95, "-" if c99 is None else "%.0f" % c99, p99c))


def exp_twolevel(x, q, cat, truth, metric, k):
    p = Partition(x, metric, k)
    sc, order, pos = list_ranks(p, q)
    g = int(round(np.sqrt(k)))
    gc = kmeans(p.c, g, iters=10, spherical=p.spherical, seed=1)
    cg = assign(p.c, gc, p.spherical)
    n = len(x)
    print("%d centres in %d groups (sizes %d-%d)" % (k, g, np.bincount(cg, minlength=g).min(),
                                                     np.bincount(cg, minlength=g).max()))
    print("\n| groups compared | products per vector (x of flat) | nearest centre found | recall at 1 / 2 / 4 / 8 "
          "probes | candidates for 0.95 | for 0.99 |\n|---|---|---|---|---|---|")
    gs = center_scores(p.xd, gc, p.spherical)
    gorder = np.argsort(gs, axis=1)
    cs = center_scores(p.xd, p.c, p.spherical)
    for G in (1, 2, 3, 4, 8):
        if G > g:
            continue
        allowed = np.zeros((n, k), bool)
        for j in range(G):
            allowed |= cg[None, :] == gorder[:, j:j + 1]
        a = np.argmin(np.where(allowed, cs, np.inf), axis=1)
        prods = g + allowed.sum(1).mean()
        sizes = np.bincount(a, minlength=k)
        pts = list(zip(PROBES, curve(pos, order, [sizes], [a], truth["all"], [min(v, k) for v in PROBES])))
        c95, c99 = cheapest(pts, 0.95)[0], cheapest(pts, 0.99)[0]
        cells = " / ".join("%.3f" % rec for pr, (rec, cand) in pts if pr in (1, 2, 4, 8))
        print("| %d of %d | %.0f (%.2f) | %.3f | %s | %s | %s |" % (
            G, g, prods, prods / k, (a == p.a).mean(), cells, "-" if c95 is None else "%.0f" % c95,
            "-" if c99 is None else "%.0f" % c99))
    pts = list(zip(PROBES, curve(pos, order, [p.sizes], [p.a], truth["all"], [min(v, k) for v in PROBES])))
    print("| flat (all %d) | %d (1.00) | 1.000 | %s | %.0f | %s |" % (
        k, k, " / ".join("%.3f" % rec for pr, (rec, cand) in pts if pr in (1, 2, 4, 8)),
        cheapest(pts, 0.95)[0] or -1, "%.0f" % cheapest(pts, 0.99)[0] if cheapest(pts, 0.99)[0] else "-"))


def exp_codes(x, q, cat, truth, metric, k):
    p = Partition(x, metric, k)
    sc, order, pos = list_ranks(p, q)
    n, dim = x.shape
    rng = np.random.default_rng(5)
    rot, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    xv = p.xd if metric == "cosine" else x
    qv = normalise(q) if metric == "cosine" else q
    # residual codes against the list's centre (as stored centres: ip uses direction x mean norm)
    cvec = p.c * p.list_norm[:, None] if metric == "ip" else p.c
    r = (xv - cvec[p.a]) @ rot
    rnorm = np.linalg.norm(r, axis=1)
    bits = r > 0
    # RaBitQ's estimator: <q_r, r> ~ <q_r, sign(r)/sqrt(D)> * |r| / <r/|r|, sign(r)/sqrt(D)>
    align = np.abs(r).sum(1) / np.sqrt(dim) / np.maximum(rnorm, 1e-30)
    # 4-bit PQ on residuals: 32 subspaces of 4 dims, 16 centroids each
    m, ks = 32, 16
    sub = dim // m
    books = []
    codes = np.empty((n, m), np.int64)
    samp = rng.choice(n, min(n, 20000), replace=False)
    for j in range(m):
        part = r[:, j * sub:(j + 1) * sub]
        cb = kmeans(part[samp], ks, iters=10, seed=j)
        books.append(cb)
        codes[:, j] = assign(part, cb, False)
    # per query: candidates of the probed lists, estimated distance, re-rank the top fraction
    for probes in (4, 8):
        print("\n%d probes:" % probes)
        fracs = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
        rec = {name: np.zeros(len(fracs)) for name in ("1-bit (RaBitQ-like)", "4-bit PQ (16 bytes)")}
        full = 0
        ncand = 0
        for i in range(len(q)):
            lists = order[i, :probes]
            cand = np.nonzero(np.isin(p.a, lists))[0]
            ncand += len(cand)
            qi = qv[i]
            exact = dist(metric, qi[None, :], xv[cand])[0] if metric != "cosine" else -(xv[cand] @ qi)
            tr = set(truth["all"][i])
            top = cand[np.argsort(exact)[:K]]
            full += len(tr & set(top))
            # estimated: decompose by centre: <q, x> = <q, c> + <q, r>
            qr = (qi @ rot)
            base = cvec[p.a[cand]] @ qi
            est_1 = base + (np.where(bits[cand], 1, -1) @ qr) / np.sqrt(dim) * rnorm[cand] / np.maximum(
                align[cand], 1e-30)
            tables = np.stack([books[j] @ qr[j * sub:(j + 1) * sub] for j in range(m)])    # m x ks
            est_pq = base + tables[np.arange(m)[None, :], codes[cand]].sum(1)
            for name, est in (("1-bit (RaBitQ-like)", est_1), ("4-bit PQ (16 bytes)", est_pq)):
                if metric == "l2":
                    # |x|^2 - 2 <q, x>: |x|^2 is stored exactly beside a code
                    key = (xv[cand] ** 2).sum(1) - 2 * est
                else:
                    key = -est
                o = np.argsort(key)
                for fi, fr in enumerate(fracs):
                    keep = cand[o[:max(K, int(np.ceil(fr * len(cand))))]]
                    ek = dist(metric, qi[None, :], xv[keep])[0] if metric != "cosine" else -(xv[keep] @ qi)
                    rec[name][fi] += len(tr & set(keep[np.argsort(ek)[:K]]))
        print("exact re-rank of all %.0f candidates: recall@10 %.4f" % (ncand / len(q), full / len(q) / K))
        print("| code | " + " | ".join("re-rank %g%%" % (100 * f) for f in fracs) + " |\n|---|" + "---|" * len(fracs))
        for name, v in rec.items():
            print("| %s | %s |" % (name, " | ".join("%.4f" % (s / len(q) / K) for s in v)))


def exp_filter(x, q, cat, truth, metric, k):
    p = Partition(x, metric, k)
    sc, order, pos = list_ranks(p, q)
    n = len(x)
    xv = p.xd if metric == "cosine" else x
    qv = normalise(q) if metric == "cosine" else q
    # per list: the bound on the best distance any member can have for a query
    members = [np.nonzero(p.a == l)[0] for l in range(k)]
    if metric == "l2":
        radius = np.array([np.sqrt(((xv[m] - p.c[l]) ** 2).sum(1).max()) if len(m) else 0
                           for l, m in enumerate(members)])
    else:
        # angular radius (max angle between a member's direction and the centre) and max norm
        dirs = normalise(xv)
        ang = np.array([np.arccos(np.clip((dirs[m] @ p.c[l]).min(), -1, 1)) if len(m) else 0
                        for l, m in enumerate(members)])
        maxnorm = np.array([np.linalg.norm(xv[m], axis=1).max() if len(m) else 0 for l, m in enumerate(members)])
        minnorm = np.array([np.linalg.norm(xv[m], axis=1).min() if len(m) else 0 for l, m in enumerate(members)])
    print("| filter | rule | recall@10 | mean lists probed | p99 lists | mean candidates |"
          "\n|---|---|---|---|---|---|")
    for fname, lim in (("cat = 0", 1), ("cat < 10", 10), ("cat < 50", 50)):
        ok = cat < lim
        tr = truth[{1: "f1", 10: "f10", 50: "f50"}[lim]]
        stats = {"stop at k rows (step 1, 2, 4, ...)": [], "bound per list": []}
        for i in range(len(q)):
            qi = qv[i]
            if metric == "l2":
                dc = np.sqrt(np.maximum(((p.c - qi) ** 2).sum(1), 0))
                lower = np.maximum(dc - radius, 0)         # lower bound on a member's distance
            else:
                cosc = np.clip(p.c @ qi / np.linalg.norm(qi), -1, 1)
                theta = np.maximum(np.arccos(cosc) - ang, 0)
                if metric == "ip":
                    # the largest <q, x> a member can have: its norm at the extreme that helps
                    cos_t = np.cos(theta)
                    lower = -np.linalg.norm(qi) * np.where(cos_t > 0, maxnorm, minnorm) * cos_t
                else:
                    lower = -np.cos(theta)
            # today's widening: batches of 1 (or the adaptive count), 2, 4, ... lists, stop when k rows
            # qualify; re-rank only within the probed set
            o = order[i]
            probed, step, got = 0, 1, []
            while probed < k:
                nxt = o[probed:probed + step]
                probed += len(nxt)
                got = np.concatenate([members[l] for l in o[:probed]])
                got = got[ok[got]]
                if len(got) >= K:
                    break
                step *= 2
            d = dist(metric, qi[None, :], xv[got])[0]
            top = got[np.argsort(d)[:K]]
            stats["stop at k rows (step 1, 2, 4, ...)"].append((len(set(top) & set(tr[i])), probed, len(got)))
            # bound: probe in order of the bound, stop when the k-th best qualifying distance so far
            # is below every unprobed list's bound
            ob = np.argsort(lower)
            bd, bi = np.array([]), np.array([], np.int64)
            cands = 0
            j = 0
            while j < k:
                l = ob[j]
                if len(bd) >= K and lower[l] >= bd[K - 1]:
                    break
                mem = members[l][ok[members[l]]]
                cands += len(members[l])
                if len(mem):
                    bd = np.concatenate([bd, dist(metric, qi[None, :], xv[mem])[0]])
                    bi = np.concatenate([bi, mem])
                    o2 = np.argsort(bd)[:K]
                    bd, bi = bd[o2], bi[o2]
                j += 1
            stats["bound per list"].append((len(set(bi) & set(tr[i])), j, cands))
        for rule, v in stats.items():
            v = np.array(v)
            print("| %s | %s | %.4f | %.1f | %.0f | %.0f |" % (
                fname, rule, v[:, 0].mean() / K, v[:, 1].mean(), np.percentile(v[:, 1], 99), v[:, 2].mean()))


def exp_ippart(x, q, cat, truth, metric, k):
    """Inner product only: partitions and list rankings for maximum inner product search."""
    n, dim = x.shape
    norms = np.linalg.norm(x, axis=1)
    print("norms: p1 %.2f, median %.2f, p99 %.2f (max / median %.2f)" % (
        np.percentile(norms, 1), np.median(norms), np.percentile(norms, 99), norms.max() / np.median(norms)))
    variants = []
    # today's: spherical k-means on directions, ranked by mean norm x <q, centre>
    p = Partition(x, "ip", k)
    variants.append(("spherical, ranked by mean norm x cos (today)", p.a, p.rank_scores(q)))
    # the same lists ranked by the largest member norm x cos, and by a high norm quantile
    maxn = np.array([norms[p.a == l].max() if p.sizes[l] else 0 for l in range(k)])
    p90 = np.array([np.percentile(norms[p.a == l], 90) if p.sizes[l] else 0 for l in range(k)])
    s = q @ p.c.T
    variants.append(("spherical, ranked by max norm x cos", p.a, -maxn[None, :] * s))
    variants.append(("spherical, ranked by 90th-percentile norm x cos", p.a, -p90[None, :] * s))
    # k-means on the raw vectors, ranked by <q, mean>
    c = kmeans(x, k, spherical=False)
    a = assign(x, c, False)
    variants.append(("k-means on raw vectors, ranked by <q, centre>", a, -(q @ c.T)))
    # MIPS -> nearest neighbour: x' = [x, sqrt(M^2 - |x|^2)], L2 k-means, ranked by L2 to [q, 0]
    mx = norms.max()
    xa = np.hstack([x, np.sqrt(np.maximum(mx * mx - norms ** 2, 0))[:, None]]).astype(np.float32)
    ca = kmeans(xa, k, spherical=False)
    aa = assign(xa, ca, False)
    qa = np.hstack([q, np.zeros((len(q), 1), np.float32)])
    variants.append(("augmented [x, sqrt(M^2 - |x|^2)], L2 k-means", aa, (ca * ca).sum(1)[None, :] - 2 * qa @ ca.T))
    # norm ranges: 4 equal-count ranges, spherical per range with k/4 lists, mean norm x cos
    qs = np.quantile(norms, [0.25, 0.5, 0.75])
    rng_of = np.searchsorted(qs, norms)
    a4 = np.empty(n, np.int64)
    sc4 = np.empty((len(q), k), np.float32)
    per = k // 4
    for r in range(4):
        idx = np.nonzero(rng_of == r)[0]
        pr = Partition(x[idx], "ip", per, seed=r)
        a4[idx] = pr.a + r * per
        sc4[:, r * per:(r + 1) * per] = pr.rank_scores(q)
    variants.append(("4 norm ranges, spherical each, mean norm x cos", a4, sc4[:, :4 * per]))
    print("\n| partition and ranking | list sizes min-max | recall at 1 / 4 / 16 / 64 probes | candidates for 0.95 "
          "| for 0.99 |\n|---|---|---|---|---|")
    for name, a, sc in variants:
        kk = sc.shape[1]
        order = np.argsort(sc, axis=1, kind="stable")
        pos = np.empty_like(order)
        np.put_along_axis(pos, order, np.arange(kk)[None, :].repeat(len(q), 0), axis=1)
        sizes = np.bincount(a, minlength=kk)
        pts = list(zip(PROBES, curve(pos, order, [sizes], [a], truth["all"], [min(v, kk) for v in PROBES])))
        c95, c99 = cheapest(pts, 0.95)[0], cheapest(pts, 0.99)[0]
        print("| %s | %d-%d | %s | %s | %s |" % (
            name, sizes.min(), sizes.max(), " / ".join("%.3f" % rec for pr, (rec, cand) in pts if pr in (1, 4, 16, 64)),
            "-" if c95 is None else "%.0f" % c95, "-" if c99 is None else "%.0f" % c99))


def exp_ordered(x, q, cat, truth, metric, k):
    """The ordered scan with a per-list bound: a row is returned only when no unprobed list's bound can
    beat it; the executor's filter drops what does not qualify; the scan stops at k qualifying rows.
    The bound is statistical: x = c + r with c the list's mean vector, and <q, r> for a residual of a
    random direction in D dimensions is at most about z |q| |r| / sqrt(D) (z standard deviations):
      ip      -<q, x>     >= -maxnorm (<q, c> + z |q| rmax / sqrt(D))   (c, r of the directions)
      cosine  1 - <q, x>  >= 1 - <q, c> - z rmax / sqrt(D)          (unit q and x)
      l2      |q - x|^2   >= |q - c|^2 + rmin^2 - 2 z |q - c| rmax / sqrt(D)
    (rmin, rmax: the smallest and largest residual norm in the list; z = inf is the worst case.)
    Rows come out in exact order whenever the bound holds."""
    p = Partition(x, metric, k)
    xv = p.xd if metric == "cosine" else x
    qv = normalise(q) if metric == "cosine" else q
    dim = x.shape[1]
    members = [np.nonzero(p.a == l)[0] for l in range(k)]
    # ip: the bound on directions times the list's largest norm (norms vary: a residual of the raw
    # vectors would carry the norm spread and loosen the bound)
    xb = normalise(xv) if metric == "ip" else xv
    mean = np.stack([xb[m].mean(0) if len(m) else np.zeros(dim, np.float32) for m in members])
    rn = np.linalg.norm(xb - mean[p.a], axis=1)
    maxnorm = np.array([np.linalg.norm(xv[m], axis=1).max() if len(m) else 0 for m in members])
    rmax = np.array([rn[m].max() if len(m) else 0 for m in members])
    rmin = np.array([rn[m].min() if len(m) else 0 for m in members])
    print("| filter | z | recall@10 | queries with an inversion | inversions | mean lists | p99 lists | "
          "mean candidates |\n|---|---|---|---|---|---|---|---|")
    for fname, lim in (("none", None), ("cat < 50", 50), ("cat < 10", 10), ("cat = 0", 1)):
        ok = np.ones(len(x), bool) if lim is None else cat < lim
        tr = truth[{None: "all", 1: "f1", 10: "f10", 50: "f50"}[lim]]
        for z in (1.0, 2.0, 3.0, 4.0):
            rec, inv_q, inv, lists, cands = [], 0, 0, [], []
            for i in range(len(q)):
                qi = qv[i]
                qn = np.linalg.norm(qi)
                if metric == "l2":
                    dc = np.sqrt(np.maximum(((mean - qi) ** 2).sum(1), 0))
                    lb = np.sqrt(np.maximum(dc ** 2 + rmin ** 2 - 2 * z * dc * rmax / np.sqrt(dim), 0))
                elif metric == "cosine":
                    lb = 1 - mean @ qi - z * rmax / np.sqrt(dim)
                else:
                    ub = (mean @ qi) + z * qn * rmax / np.sqrt(dim)
                    lb = -np.where(ub > 0, maxnorm, 0) * ub
                ob = np.argsort(lb)
                pool_d, pool_i = np.array([]), np.array([], np.int64)
                out_d, out_i = [], []
                j = 0
                while True:
                    t = lb[ob[j]] if j < k else np.inf
                    take = pool_d <= t
                    if take.any():
                        o = np.argsort(pool_d[take])
                        td, ti = pool_d[take][o], pool_i[take][o]
                        q_ok = ok[ti]
                        out_d.extend(td[q_ok])
                        out_i.extend(ti[q_ok])
                        pool_d, pool_i = pool_d[~take], pool_i[~take]
                        if len(out_i) >= K:
                            break
                    if j >= k:
                        break
                    m = members[ob[j]]
                    d = dist(metric, qi[None, :], xv[m])[0]
                    if metric == "l2":
                        d = np.sqrt(np.maximum(d, 0))
                    elif metric == "cosine":
                        d = 1 + d
                    pool_d = np.concatenate([pool_d, d])
                    pool_i = np.concatenate([pool_i, m])
                    j += 1
                od = np.array(out_d[:K])
                nin = int((od[1:] < od[:-1] - 1e-6 * np.abs(od[:-1])).sum())
                inv += nin
                inv_q += nin > 0
                rec.append(len(set(out_i[:K]) & set(tr[i])) / K)
                lists.append(j)
                cands.append(sum(len(members[l]) for l in ob[:j]))
            print("| %s | %.0f | %.4f | %d | %d | %.1f | %.0f | %.0f |" % (
                fname, z, np.mean(rec), inv_q, inv, np.mean(lists), np.percentile(lists, 99), np.mean(cands)))
            sys.stdout.flush()


def exp_unit(x, q, cat, truth, metric, k):
    """The ordered scan's bounds with their unit measured at build (lshcalibrate.c) against the fixed
    1 / sqrt(D).  The bound allows <q, r> <= s |q| |r|; per (query, true top-10 neighbour) pair the
    least s that reads the neighbour's list before any farther row is returned ("needed s", a bisection
    on the bound).  Calibration queries: sample rows (kind A, their nearest neighbours among the other
    sample rows at the ranks that match the table's top 10) and Gaussian draws with the sample's mean
    and spread per coordinate (kind C).  Prints the needed s's quantiles on the calibration pairs and on
    the real test queries, then the ordered scan (unfiltered) at the fixed s = 3 / sqrt(D) and at each
    kind's 90th / 95th percentile: recall@10, adjacent inversions, candidates read."""
    p = Partition(x, metric, k)
    n, dim = x.shape
    c = p.c.astype(np.float64)
    a = p.a
    norms = np.linalg.norm(x, axis=1)
    r = np.linalg.norm(x - c[a], axis=1) if metric == "l2" else np.linalg.norm(x / norms[:, None] - c[a], axis=1)
    rmin = np.full(k, np.inf)
    rmax = np.zeros(k)
    maxnorm = np.zeros(k)
    np.minimum.at(rmin, a, r)
    np.maximum.at(rmax, a, r)
    np.maximum.at(maxnorm, a, norms)
    c2 = (c * c).sum(1)
    members = [np.nonzero(a == l)[0] for l in range(k)]
    sizes = np.bincount(a, minlength=k)

    def sdist(qi, xs):
        if metric == "l2":
            return ((xs - qi) ** 2).sum(-1)
        if metric == "cosine":
            return 1 - (xs @ qi) / np.linalg.norm(xs, axis=-1) / np.linalg.norm(qi)
        return -(xs @ qi)

    def bounds(qi, s, lists):
        dots = c[lists] @ qi
        qn2 = qi @ qi
        qn = np.sqrt(qn2)
        if metric == "l2":
            dc = np.sqrt(np.maximum(qn2 - 2 * dots + c2[lists], 0))
            rr = np.minimum(np.maximum(s * dc, rmin[lists]), rmax[lists])
            return np.maximum(dc * dc + rr * rr - 2 * s * dc * rr, 0)
        if metric == "cosine":
            return np.maximum(1 - dots / qn - s * rmax[lists], 0)
        u = np.minimum(qn, dots + s * qn * rmax[lists])
        return np.where(u > 0, -maxnorm[lists] * u, 0)

    def needed(qs, xs_idx):
        lo, hi = np.full(len(qs), -1.0), np.full(len(qs), 1.0)
        lists = a[xs_idx]
        dd = np.array([sdist(qs[i], x[xs_idx[i]]) for i in range(len(qs))])
        for _ in range(30):
            mid = (lo + hi) / 2
            ok = np.array([bounds(qs[i], mid[i], lists[i:i + 1])[0] <= dd[i] for i in range(len(qs))])
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        return hi

    rng = np.random.default_rng(1)
    ns = min(n, max(10000, 40 * k))
    sidx = rng.choice(n, ns, replace=False)
    m = max(1, int(np.ceil(K * ns / n)))
    sample = x[sidx].astype(np.float64)
    mu, sd = sample.mean(0), sample.std(0)
    cal = {}
    for kind in ("A", "C"):
        pq, px = [], []
        for j in range(64):
            qi = sample[j] if kind == "A" else mu + sd * rng.standard_normal(dim)
            dd = sdist(qi, sample)
            if kind == "A":
                dd[j] = np.inf
            for jj in np.argsort(dd)[:m]:
                pq.append(qi)
                px.append(sidx[jj])
        cal[kind] = needed(np.array(pq), np.array(px))
    pq, px = [], []
    for i in range(len(q)):
        for j in truth["all"][i]:
            pq.append(q[i].astype(np.float64))
            px.append(j)
    real = needed(np.array(pq), np.array(px))
    print("needed s: quantile | sample rows (A) | draws (C) | the test queries\n|---|---|---|---|")
    for qq in (0.5, 0.9, 0.95, 0.99):
        print("| %.2f | %+.3f | %+.3f | %+.3f |" % (qq, np.quantile(cal["A"], qq), np.quantile(cal["C"], qq),
                                                  np.quantile(real, qq)))

    def run(s, name):
        rec, inv, cands = [], 0, []
        for i in range(len(q)):
            qi = q[i].astype(np.float64)
            lb = bounds(qi, s, np.arange(k))
            ob = np.argsort(lb)
            pool_d, pool_i = np.array([]), np.array([], np.int64)
            out_i, out_d = [], []
            j = 0
            while len(out_i) < K:
                t = lb[ob[j]] if j < k else np.inf
                while len(pool_d) and len(out_i) < K:
                    mi = np.argmin(pool_d)
                    if pool_d[mi] > t:
                        break
                    out_i.append(pool_i[mi])
                    out_d.append(pool_d[mi])
                    pool_d, pool_i = np.delete(pool_d, mi), np.delete(pool_i, mi)
                if len(out_i) >= K or j >= k:
                    break
                mem = members[ob[j]]
                pool_d = np.concatenate([pool_d, sdist(qi, x[mem])])
                pool_i = np.concatenate([pool_i, mem])
                j += 1
            od = np.array(out_d)
            inv += int((od[1:] < od[:-1] - 1e-9).sum())
            rec.append(len(set(out_i) & set(truth["all"][i])) / K)
            cands.append(sizes[ob[:j]].sum())
        print("| %s | %+.3f | %.4f | %d | %.0f (%.3f of the rows) |" % (name, s, np.mean(rec), inv, np.mean(cands),
                                                                       np.mean(cands) / n))
        sys.stdout.flush()

    print("\n| bound | s | recall@10 | inversions | candidates |\n|---|---|---|---|---|")
    run(3 / np.sqrt(dim), "fixed 3 / sqrt(D)")
    for qq in (0.9, 0.95):
        run(max(np.quantile(cal["A"], qq), np.quantile(cal["C"], qq)), "measured, %.0fth percentile" % (100 * qq))


def exp_allowance(x, q, cat, truth, metric, k):
    """The ordered scan's list bound with the allowance for <q^, r> taken from each list's largest
    residual norm (a = t rmax, the bound of indexes before bound_rms) against its root mean square
    (a = min(rmax, t rrms), lshbound.c):
      ip      -<q, x>     >= -maxnorm min(|q|, <q, c> + |q| a)       (c, r of the directions)
      cosine  1 - <q, x>  >= 1 - <q, c> - a                          (unit q and x)
      l2      |q - x|^2   >= min over |r| in [rmin, rmax] of dc^2 + |r|^2 - 2 dc min(|r|, a)
    Lists are read in the order of their bounds until the 10th nearest row read is no farther than
    the next list's bound (exact distances: the codes' re-rank left out).  Per t: recall@10 and the
    mean candidates (rows in the lists read); compare the two at equal recall."""
    p = Partition(x, metric, k)
    xv = (p.xd if metric == "cosine" else x).astype(np.float64)
    qv = (normalise(q) if metric == "cosine" else q).astype(np.float64)
    xb = (normalise(x) if metric == "ip" else xv).astype(np.float64)
    members = [np.nonzero(p.a == l)[0] for l in range(k)]
    mean = np.stack([xb[m].mean(0) if len(m) else np.zeros(x.shape[1]) for m in members])
    rn = np.linalg.norm(xb - mean[p.a], axis=1)

    def per_list(f):
        return np.array([f(rn[m]) if len(m) else 0 for m in members])
    rmax, rmin = per_list(np.max), per_list(np.min)
    rrms = per_list(lambda v: np.sqrt((v ** 2).mean()))
    maxnorm = np.array([np.linalg.norm(x[m], axis=1).max() if len(m) else 0 for m in members])
    qc = qv @ mean.T
    qn = np.linalg.norm(qv, axis=1)
    cn2 = (mean * mean).sum(1)
    tr = truth["all"]

    def bound(i, a):
        if metric == "ip":
            u = np.minimum(qn[i], qc[i] + qn[i] * a)
            return np.where(u > 0, -maxnorm * u, 0)
        if metric == "cosine":
            return 1 - qc[i] - a
        dc = np.sqrt(np.maximum(qn[i] ** 2 - 2 * qc[i] + cn2, 0))
        r = np.clip(dc, rmin, np.maximum(a, rmin))
        return np.where(a < rmin, dc * dc + rmin * rmin - 2 * dc * a, (dc - r) ** 2)

    def run(allow):
        rec, cands = [], []
        for i in range(len(q)):
            lb = bound(i, allow(i))
            ob = np.argsort(lb, kind="stable")
            unread = np.minimum.accumulate(lb[ob][::-1])[::-1]
            ids = np.concatenate([members[l] for l in ob])
            d = dist(metric, qv[i][None, :], xv[ids])[0] + (1 if metric == "cosine" else 0)
            start = np.concatenate([[0], np.cumsum([len(members[l]) for l in ob])])
            j = 1
            while j < k:
                tenth = np.partition(d[:start[j]], min(K, start[j]) - 1)[min(K, start[j]) - 1]
                if start[j] >= K and tenth <= unread[j]:
                    break
                j += 1
            got = ids[:start[j]][np.argsort(d[:start[j]], kind="stable")[:K]]
            rec.append(len(set(got) & set(tr[i])) / K)
            cands.append(start[j])
        return np.mean(rec), np.mean(cands)

    print("| allowance | t | recall@10 | mean candidates |\n|---|---|---|---|")
    for name, scale, ts in (("t rmax", lambda i, t: t * rmax, (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9)),
                            ("min(rmax, t rrms)", lambda i, t: np.minimum(rmax, t * rrms),
                             (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0))):
        for t in ts:
            r, c = run(lambda i: scale(i, t))
            print("| %s | %.2f | %.4f | %.0f |" % (name, t, r, c))
            sys.stdout.flush()


EXPERIMENTS = {"unit": exp_unit, "ordered": exp_ordered, "ippart": exp_ippart, "probes": exp_probes, "soar": exp_soar, "balance": exp_balance, "twolevel": exp_twolevel,
               "codes": exp_codes, "filter": exp_filter, "allowance": exp_allowance}


def main():
    name, d, metric = sys.argv[1], sys.argv[2], sys.argv[3]
    x, q, cat, truth = load(d, metric)
    # PROTO_QUERIES: the first N queries only (the per-query experiments, codes and filter, are slow)
    nq = int(os.environ.get("PROTO_QUERIES", len(q)))
    q = q[:nq]
    truth = {name: t[:nq] for name, t in truth.items()}
    k = int(sys.argv[4]) if len(sys.argv) > 4 else max(1, len(x) // 500)
    print("## %s on %s (%s), %d rows, %d queries, %d lists\n" % (name, d.rstrip("/").split("/")[-1], metric,
                                                                 len(x), len(q), k))
    EXPERIMENTS[name](x, q, cat, truth, metric, k)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
