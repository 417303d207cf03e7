"""Reference values for test/drift/stats-scipy.test.ts: generated cases and scipy's answers as JSON on stdout."""
import json
import sys

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
cases = []


def sample(kind, n):
    if kind == "normal":
        return rng.normal(0, 1, n)
    if kind == "shifted":
        return rng.normal(0.3, 1.2, n)
    if kind == "ties":
        return rng.poisson(3, n).astype(float)
    if kind == "coarse":
        return np.round(rng.normal(0, 1, n), 1)
    if kind == "constant":
        return np.full(n, 2.5)
    if kind == "constant2":
        return np.full(n, 4.0)
    raise ValueError(kind)


sizes = [(1, 1), (1, 5), (2, 3), (3, 3), (5, 7), (8, 8), (10, 10), (13, 29), (20, 30), (50, 50), (60, 90),
         (100, 80), (137, 211), (500, 300), (1000, 1000), (1500, 2500), (4000, 2500), (10000, 10000),
         (10001, 500), (12000, 15000), (20000, 3), (20000, 60), (30000, 25000)]
pairs = [("normal", "normal"), ("normal", "shifted"), ("ties", "ties"), ("coarse", "normal"),
         ("constant", "constant"), ("constant", "constant2"), ("constant", "normal"), ("ties", "shifted")]
for i, (n1, n2) in enumerate(sizes):
    for j, (k1, k2) in enumerate(pairs):
        if (i + j) % 3 and not (n1 <= 10 or k1.startswith("constant")):
            continue
        a = sample(k1, n1)
        b = sample(k2, n2)
        ks = stats.ks_2samp(a, b)
        w = stats.wasserstein_distance(a, b)
        cases.append({"kind": "ks", "name": f"{k1}/{k2} {n1}x{n2}", "a": a.tolist(), "b": b.tolist(),
                      "statistic": float(ks.statistic), "pvalue": float(ks.pvalue), "w1": float(w)})

for i in range(40):
    k = int(rng.integers(2, 12))
    p = rng.dirichlet(np.ones(k))
    n = int(rng.choice([5, 20, 100, 1000, 100000]))
    q = p if i % 4 == 0 else rng.dirichlet(np.ones(k) * (1 + i))
    obs = rng.multinomial(n, q).astype(float)
    exp = p * n
    r = stats.chisquare(obs, exp)
    cases.append({"kind": "chisquare", "name": f"chisquare k={k} n={n}", "observed": obs.tolist(),
                  "expected": exp.tolist(), "statistic": float(r.statistic), "pvalue": float(r.pvalue)})

for i in range(20):
    k = int(rng.integers(2, 10))
    n = int(rng.choice([10, 100, 5000]))
    p = rng.dirichlet(np.ones(k))
    a = rng.multinomial(n, p) + 1
    b = rng.multinomial(int(n * 1.7), p if i % 2 else rng.dirichlet(np.ones(k))) + 1
    table = np.array([a, b])
    chi2, pv, dof, _ = stats.chi2_contingency(table, correction=False)
    cases.append({"kind": "homogeneity", "name": f"2x{k} n={n}", "a": a.tolist(), "b": b.tolist(),
                  "statistic": float(chi2), "pvalue": float(pv), "df": int(dof)})

for i in range(30):
    k = int(rng.integers(2, 15))
    p = rng.dirichlet(np.ones(k)) * rng.integers(1, 1000)
    q = p.copy() if i % 6 == 0 else rng.dirichlet(np.ones(k)) * 3
    if i % 5 == 1:
        p[0] = 0.0
    if i % 7 == 2:
        q[-1] = 0.0
    cases.append({"kind": "js", "name": f"js k={k}", "p": p.tolist(), "q": q.tolist(),
                  "distance": float(jensenshannon(p, q, base=2))})

json.dump(cases, sys.stdout)
