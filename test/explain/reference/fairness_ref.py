"""fairlearn's view of generated fairness cases, for test/explain/fairness.test.ts.

Reads {"cases": [{"labels", "scores", "groups", "threshold"}]} as JSON on stdin and prints, per case, the
per-group rates and the between-groups differences fairlearn's MetricFrame computes.
"""
import json
import sys
import warnings

import numpy as np
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import brier_score_loss, precision_score

warnings.filterwarnings("ignore")


def calibration_in_the_large(y_true, y_score):
    return float(np.mean(y_score) - np.mean(y_true))


def one(case):
    y = np.asarray(case["labels"], dtype=int)
    s = np.asarray(case["scores"], dtype=float)
    g = np.asarray(case["groups"], dtype=object)
    pred = (s >= case["threshold"]).astype(int)
    hard = MetricFrame(
        metrics={
            "selectionRate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "ppv": precision_score,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
    )
    soft = MetricFrame(
        metrics={"calibrationInTheLarge": calibration_in_the_large, "brier": brier_score_loss},
        y_true=y,
        y_pred=s,
        sensitive_features=g,
    )
    groups = {}
    for name in hard.by_group.index:
        row = {k: float(v) for k, v in hard.by_group.loc[name].items()}
        row.update({k: float(v) for k, v in soft.by_group.loc[name].items()})
        groups[str(name)] = row
    diff = hard.difference(method="between_groups")
    return {
        "groups": groups,
        "demographic_parity": float(demographic_parity_difference(y, pred, sensitive_features=g)),
        "equal_opportunity": float(diff["tpr"]),
        "equalized_odds": float(equalized_odds_difference(y, pred, sensitive_features=g)),
        "predictive_parity": float(diff["ppv"]),
        "calibration": float(soft.difference(method="between_groups")["calibrationInTheLarge"]),
    }


def main():
    cases = json.load(sys.stdin)["cases"]
    json.dump([one(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
