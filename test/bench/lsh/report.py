#!/usr/bin/python3
"""Tables (markdown) from the results of test/bench/lsh/compare: report.py RESULTS.tsv [...]

Per data set and metric: every setting's recall@10 and median CPU ms per query over the rounds (a * marks
the method's Pareto front: no cheaper setting of the same method has at least its recall); pgvector's best
CPU over lsh's at recall 0.95 and 0.99, each read off the method's front by linear interpolation between
the two front points around the recall (above 1: lsh needs less CPU); builds, inserts, filtered search.
Several files (repeated runs) are pooled: the medians are then over all their rounds.
"""
import statistics
import sys
from collections import defaultdict

TARGETS = (0.95, 0.99)
NAMES = {"mixture": "mixture", "fashion": "Fashion-MNIST PCA-128", "embed": "Fashion-MNIST MLP embeddings"}
METRIC = {"ip": "inner product", "cosine": "cosine", "l2": "L2"}


def front(points):
    """points: [(cpu, recall, label)] -> the Pareto front, by increasing CPU."""
    out = []
    for p in sorted(points):
        if not out or p[1] > out[-1][1]:
            out.append(p)
    return out


def cpu_at(fr, target):
    """CPU at recall target on a front, interpolated; None if the front never reaches it."""
    if not fr or fr[-1][1] < target:
        return None
    for i, (cpu, rec, _) in enumerate(fr):
        if rec >= target:
            if i == 0:
                return cpu
            c0, r0, _ = fr[i - 1]
            return c0 + (cpu - c0) * (target - r0) / (rec - r0)
    return None


def fmt(x, digits=3):
    return "-" if x is None else ("%.*f" % (digits, x))


def main(paths):
    query = defaultdict(list)       # (kind, rows, metric, method, setting, filter) -> [(cpu, recall, inv, short)]
    builds = {}                     # (kind, rows, metric, method) -> fields (the last run's)
    inserts = defaultdict(list)     # (kind, rows, metric, method) -> [(rows, cpu, wall)]
    for path in paths:
        with open(path) as f:
            for line in f:
                p = line.rstrip("\n").split("\t")
                if p[0] == "build":
                    builds[(p[1], int(p[2]), p[3], p[4])] = p[5:]
                elif p[0] == "insert":
                    inserts[(p[1], int(p[2]), p[3], p[4])].append((int(p[6]), float(p[7]), float(p[8])))
                else:
                    query[(p[0], int(p[1]), p[2], p[3], p[4], p[5])].append(
                        (float(p[7]), float(p[8]), int(p[9]), int(p[10])))
    med = {k: (statistics.median(v[0] for v in vs), statistics.median(v[1] for v in vs),
               statistics.median(v[2] for v in vs), max(v[3] for v in vs), len(vs)) for k, vs in query.items()}
    sets = sorted({k[:3] for k in med}, key=lambda k: (list(NAMES).index(k[0]), k[1], k[2]))
    summary = []
    for kind, rows, metric in sets:
        def pts(method):
            return [(v[0], v[1], k[4]) for k, v in med.items()
                    if k[:4] == (kind, rows, metric, method) and k[5] == "-"]
        print("\n### %s, %s rows, %s\n" % (NAMES.get(kind, kind), "{:,}".format(rows), METRIC[metric]))
        exact = {m: med.get((kind, rows, metric, "exact-" + m, "seqscan", "-")) for m in ("fct", "pgvector")}
        print("Exact sequential scan: %s ms CPU per query (fct), %s ms (pgvector).\n" % (
            fmt(exact["fct"] and exact["fct"][0], 1), fmt(exact["pgvector"] and exact["pgvector"][0], 1)))
        print("| method | setting | recall@10 | CPU ms/query | rounds |\n|---|---|---|---|---|")
        fronts = {}
        for method in ("lsh", "hnsw", "ivfflat"):
            p = pts(method)
            if not p:
                continue
            fronts[method] = front(p)
            on = {x[2] for x in fronts[method]}
            for cpu, rec, label in sorted(p, key=lambda x: x[0]):
                n = med[(kind, rows, metric, method, label, "-")][4]
                print("| %s | %s%s | %.4f | %.3f | %d |" % (method, label, " *" if label in on else "", rec, cpu, n))
        ratios = []
        print("\n| recall@10 | lsh CPU ms | HNSW CPU ms | IVFFlat CPU ms | pgvector best / lsh |\n|---|---|---|---|---|")
        for t in TARGETS:
            c = {m: cpu_at(fr, t) for m, fr in fronts.items()}
            pg = [x for x in (c.get("hnsw"), c.get("ivfflat")) if x is not None]
            ratio = min(pg) / c["lsh"] if pg and c.get("lsh") else None
            ratios.append(ratio)
            print("| %.2f | %s | %s | %s | %s |" % (t, fmt(c.get("lsh")), fmt(c.get("hnsw")), fmt(c.get("ivfflat")),
                                                  fmt(ratio, 2)))
        b = {m: builds.get((kind, rows, metric, m)) for m in ("lsh", "ivfflat", "hnsw")}
        ins = {m: inserts.get((kind, rows, metric if m in ("lsh", "hnsw", "ivfflat") else "-", m))
               for m in ("lsh", "hnsw", "ivfflat", "plain-fct", "plain-pgvector")}
        print("\n| index | build CPU s | build wall s | in exact scans (CPU) | index MB | table MB | "
              "inserts rows/s (wall) | x without index (wall; CPU) | options |\n|---|---|---|---|---|---|---|---|---|")
        for m in ("lsh", "ivfflat", "hnsw"):
            if not b[m]:
                continue
            cpu, wall, ib, tb, info = float(b[m][0]), float(b[m][1]), int(b[m][2]), int(b[m][3]), b[m][4]
            ex = exact["fct" if m == "lsh" else "pgvector"]
            base = ins["plain-fct" if m == "lsh" else "plain-pgvector"]
            rate = ratio_w = ratio_c = None
            if ins[m] and base:
                n = sum(x[0] for x in ins[m])
                rate = n / sum(x[2] for x in ins[m])
                ratio_w = sum(x[2] for x in base) / sum(x[2] for x in ins[m])
                ratio_c = sum(x[1] for x in base) / sum(x[1] for x in ins[m])
            print("| %s | %.2f | %.2f | %s | %.0f | %.0f | %s | %s; %s | %s |" % (
                m, cpu, wall, fmt(ex and cpu * 1000 / ex[0], 1), ib / 2**20, tb / 2**20, fmt(rate, 0),
                fmt(ratio_w, 2), fmt(ratio_c, 2), info))
        filt = sorted({(k[3], k[4]) for k in med if k[:3] == (kind, rows, metric) and k[5] != "-"})
        if filt:
            lims = sorted({k[5] for k in med if k[:3] == (kind, rows, metric) and k[5] != "-"},
                          key=lambda s: int(s[4:]))
            print("\nFiltered (WHERE %s): recall@10 against the exact filtered top 10 / adjacent order inversions "
                  "over all queries / CPU ms per query; queries with fewer than 10 rows in brackets.\n" %
                  ", ".join(lims))
            print("| method | setting | " + " | ".join(lims) + " |\n|---|---|" + "---|" * len(lims))
            for method, label in filt:
                cells = []
                for lim in lims:
                    v = med.get((kind, rows, metric, method, label, lim))
                    cells.append("-" if v is None else "%.3f / %d / %.2f%s" % (
                        v[1], v[2], v[0], " (%d short)" % v[3] if v[3] else ""))
                print("| %s | %s | %s |" % (method, label, " | ".join(cells)))
        # the defaults (fct.lsh_margin 3, fct.lsh_probes 0) on their own: what a user gets without tuning,
        # against pgvector's best at the same recall (read off its fronts)
        dflt = med.get((kind, rows, metric, "lsh", "margin=3", "-"))
        dratio = None
        if dflt:
            pg = [x for x in (cpu_at(fronts.get("hnsw"), dflt[1]), cpu_at(fronts.get("ivfflat"), dflt[1]))
                  if x is not None]
            dratio = min(pg) / dflt[0] if pg else None
            print("\nlsh at its defaults (fct.lsh_margin 3, fct.lsh_probes 0): recall@10 %.4f at %.3f ms CPU; "
                  "pgvector's best at that recall / lsh: %s." % (dflt[1], dflt[0], fmt(dratio, 2)))
        # lsh's cheapest measured setting at each target (not interpolated)
        cheapest = []
        for t in TARGETS:
            ok = [p for p in pts("lsh") if p[1] >= t]
            cheapest.append(min(ok) if ok else None)
        summary.append((kind, rows, metric, ratios, b, dflt, dratio, cheapest))
    print("\n### Summary\n\n| data set | pgvector best / lsh CPU at recall 0.95 | at 0.99 | lsh's cheapest setting "
          "at 0.95: recall@10, CPU ms | lsh defaults: recall@10, CPU ms (pgvector best / lsh there) | "
          "build CPU s, lsh / IVFFlat / HNSW |\n|---|---|---|---|---|---|")
    for kind, rows, metric, ratios, b, dflt, dratio, cheapest in summary:
        c = cheapest[0]
        print("| %s %s, %s | %s | %s | %s | %s | %s |" % (
            NAMES.get(kind, kind), "{:,}".format(rows), METRIC[metric], fmt(ratios[0], 2), fmt(ratios[1], 2),
            "-" if not c else "%s: %.3f, %.3f" % (c[2], c[1], c[0]),
            "-" if not dflt else "%.3f, %.3f (%s)" % (dflt[1], dflt[0], fmt(dratio, 2)),
            " / ".join(fmt(b[m] and float(b[m][0]), 2) for m in ("lsh", "ivfflat", "hnsw"))))


if __name__ == "__main__":
    main(sys.argv[1:])
