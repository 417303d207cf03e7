"""bench:drift's reference side: scipy's per-feature loop or Evidently's DataDriftPreset on the columns
the TypeScript side wrote (float64 .bin per numeric column, uint8 codes per categorical column, 255 =
null). Prints one JSON line: wall and CPU seconds of the drift computation alone, peak RSS, and
scipy's statistics for the parity check."""
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

mode, folder = sys.argv[1], Path(sys.argv[2])
meta = json.loads((folder / "meta.json").read_text())


def numeric(side, name):
    return np.fromfile(folder / f"{side}-{name}.bin", dtype=np.float64)


def codes(side, name):
    return np.fromfile(folder / f"{side}-{name}.bin", dtype=np.uint8)


out = {}
if mode == "scipy":
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    ref = {n: numeric("ref", n) for n in meta["numeric"]}
    cur = {n: numeric("cur", n) for n in meta["numeric"]}
    rc = {n: codes("ref", n) for n in meta["categorical"]}
    cc = {n: codes("cur", n) for n in meta["categorical"]}
    t0, c0 = time.perf_counter(), time.process_time()
    results = {}
    for n in meta["numeric"]:
        a = ref[n][~np.isnan(ref[n])]
        b = cur[n][~np.isnan(cur[n])]
        ks = stats.ks_2samp(a, b)
        w = stats.wasserstein_distance(a, b)
        results[n] = {"ks_d": float(ks.statistic), "ks_p": float(ks.pvalue), "wasserstein": float(w)}
    for n in meta["categorical"]:
        k = len(meta["categories"][n])
        ra = np.bincount(rc[n], minlength=256)
        ca = np.bincount(cc[n], minlength=256)
        keep = (ra + ca) > 0
        table = np.array([ra[keep], ca[keep]])
        chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
        js = jensenshannon(ra[keep], ca[keep], base=2)
        results[n] = {"chi2": float(chi2), "chi2_p": float(p), "jensen_shannon": float(js), "k": k}
    out = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "results": results}
else:
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def frame(side):
        cols = {n: numeric(side, n) for n in meta["numeric"]}
        for n in meta["categorical"]:
            names = np.array(meta["categories"][n] + [None] * (256 - len(meta["categories"][n])), dtype=object)
            cols[n] = pd.Categorical(names[codes(side, n)])
        return pd.DataFrame(cols)

    ref, cur = frame("ref"), frame("cur")
    t0, c0 = time.perf_counter(), time.process_time()
    snapshot = Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)
    snapshot.dict()
    out = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0}
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
