"""shap and scikit-learn on the reference model, for test/explain/attributions.test.ts and bench:explain.

Input (JSON on stdin):
  {"csv": path, "spec": feature spec JSON text, "out": folder, "hyperparams": {...},
   "background": [row indices], "explain": [row indices], "permutation": [row indices],
   "kernel": [{"nsamples": n, "seed": s}], "repeats": r, "tree": true, "time_only": false,
   "split": false (true: train on the trainer's own training split, as a pipeline run does)}

Trains the reference pipeline with the reference trainer's own code (deploy/trainer/train.py: preprocessing +
GradientBoostingClassifier, exported by skl2onnx), writes out/model.onnx and out/input_schema.json, and answers:
  tree: shap.TreeExplainer (interventional, raw margin) on the transformed rows, with its expected value;
  kernel: shap.KernelExplainer over the raw features (object array: floats and strings) with f = onnxruntime on
    the exported model, the given background and budget (nsamples), l1_reg=False, np.random.seed(seed); seconds;
  permutation: sklearn.inspection.permutation_importance(pipeline, roc_auc, n_repeats, random_state=0).
"""
import json
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "deploy", "trainer"))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import shap  # noqa: E402
import train  # noqa: E402
from sklearn.inspection import permutation_importance  # noqa: E402


def main():
    req = json.load(sys.stdin)
    import hashlib

    sha = hashlib.sha256(open(req["csv"], "rb").read()).hexdigest()
    env = {
        "MLFLOW_TRACKING_URI": "memory://reference",
        "MLFLOW_RUN_ID": "reference",
        "MLOPS_DATASET_PATH": req["csv"],
        "MLOPS_DATASET_SHA256": sha,
        "MLOPS_FEATURE_SPEC": req["spec"],
        "MLOPS_HYPERPARAMS": json.dumps(req.get("hyperparams", {})),
    }
    cfg = train.read_config(env)
    X, y, _ = train.load_dataset(cfg)
    Xt, yt = X, y
    if req.get("split"):
        # As the trainer's run() does: train on the stratified training split, the rest is validation.
        from sklearn.model_selection import train_test_split

        Xt, _, yt, _ = train_test_split(
            X, y, test_size=cfg.hyperparams["validation_fraction"], stratify=y, random_state=cfg.seed
        )
    onx, predict_proba, _ = train.train_sklearn(cfg, Xt, yt)
    os.makedirs(req["out"], exist_ok=True)
    model_bytes = onx.SerializeToString()
    with open(os.path.join(req["out"], "model.onnx"), "wb") as fh:
        fh.write(model_bytes)
    with open(os.path.join(req["out"], "input_schema.json"), "w", encoding="utf-8") as fh:
        json.dump(train.input_schema(cfg), fh)
    pipeline = predict_proba.__self__
    preprocess = pipeline.named_steps["preprocess"]
    classifier = pipeline.named_steps["classifier"]
    out = {}

    def dense(m):
        return m.toarray() if hasattr(m, "toarray") else np.asarray(m)

    bg = X.iloc[req["background"]]
    rows = X.iloc[req["explain"]]
    if req.get("tree"):
        tbg = dense(preprocess.transform(bg)).astype(np.float64)
        trows = dense(preprocess.transform(rows)).astype(np.float64)
        te = shap.TreeExplainer(classifier, data=tbg, feature_perturbation="interventional", model_output="raw")
        values = te.shap_values(trows, check_additivity=True)
        out["tree"] = {
            "values": np.asarray(values).tolist(),
            "expected": float(np.ravel(te.expected_value)[0]),
            "margin": classifier.decision_function(trows).tolist(),
        }

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as our explainers' sessions (src/explain/model.ts)
    session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    names = [f.name for f in cfg.features]
    kinds = [f.kind for f in cfg.features]

    def f(data):
        data = np.asarray(data, dtype=object)
        feeds = {}
        for j, (name, kind) in enumerate(zip(names, kinds)):
            col = data[:, j : j + 1]
            feeds[name] = col.astype(np.float32) if kind == "numeric" else col.astype(str).astype(object)
        return session.run([train.PROBABILITY_OUTPUT], feeds)[0][:, train.POSITIVE_CLASS_INDEX].astype(np.float64)

    bg_obj = bg.to_numpy(dtype=object)
    rows_obj = rows.to_numpy(dtype=object)
    kernel = []
    for k in req.get("kernel", []):
        explainer = shap.KernelExplainer(f, bg_obj)
        np.random.seed(k["seed"])
        t0 = time.perf_counter()
        values = explainer.shap_values(rows_obj, nsamples=k["nsamples"], l1_reg=False, silent=True)
        seconds = time.perf_counter() - t0
        kernel.append(
            {
                "nsamples": k["nsamples"],
                "seed": k["seed"],
                "seconds": seconds,
                "values": [] if req.get("time_only") else np.asarray(values).tolist(),
                "expected": float(np.ravel(explainer.expected_value)[0]),
            }
        )
    out["kernel"] = kernel

    if req.get("permutation"):
        idx = req["permutation"]
        r = permutation_importance(
            pipeline, X.iloc[idx], y[idx], scoring="roc_auc", n_repeats=req.get("repeats", 10), random_state=0
        )
        out["permutation"] = {"mean": r.importances_mean.tolist(), "std": r.importances_std.tolist()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
