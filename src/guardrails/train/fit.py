"""Fits one logistic regression per head on hashed n-gram features (computed by the TypeScript
featuriser, src/guardrails/features.ts) and writes the ONNX graph the gateway serves:

  indices int32 [N], values float32 [N, 1]
    -> Gather(W [D, K], indices) [N, K] -> Mul(values) -> ReduceSum(axis 0) [K] -> Add(b) -> Sigmoid
    -> scores float32 [K]

Thresholds per head are the 99th and 99.9th percentiles of the scores of the benign validation split
(false-positive rates of 1% and 0.1%); they go to model.json with the head names.

Usage: python fit.py FEATURES_BIN LABELS_JSON OUT_DIR
"""

import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from scipy import sparse
from sklearn.linear_model import LogisticRegression

# Inverse regularisation strength: chosen once on a family-held-out split, kept fixed.
C = 4.0
# Fixed seed: the fit is deterministic for the same inputs.
SEED = 13


def read_features(path, dim):
    raw = np.fromfile(path, dtype=np.uint8)
    n_docs = int(raw[:4].view(np.int32)[0])
    off = 4
    indptr = [0]
    idx_parts = []
    val_parts = []
    for _ in range(n_docs):
        nnz = int(raw[off : off + 4].view(np.int32)[0])
        off += 4
        idx_parts.append(raw[off : off + 4 * nnz].view(np.int32))
        off += 4 * nnz
        val_parts.append(raw[off : off + 4 * nnz].view(np.float32))
        off += 4 * nnz
        indptr.append(indptr[-1] + nnz)
    indices = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int32)
    values = np.concatenate(val_parts) if val_parts else np.zeros(0, np.float32)
    return sparse.csr_matrix((values, indices, np.array(indptr)), shape=(n_docs, dim), dtype=np.float32)


def main():
    feats, labels_path, out_dir = sys.argv[1:4]
    labels = json.load(open(labels_path))
    dim = labels["dim"]
    heads = labels["heads"]
    X = read_features(feats, dim)
    Y = np.array([d["y"] for d in labels["docs"]], dtype=np.int8)
    split = np.array([d["split"] for d in labels["docs"]])
    benign = np.array([d["benign"] for d in labels["docs"]])
    weight = np.array([d.get("w", 1.0) for d in labels["docs"]], dtype=np.float64)
    train = split == "train"
    val_benign = (split == "val") & benign
    W = np.zeros((dim, len(heads)), dtype=np.float32)
    b = np.zeros(len(heads), dtype=np.float32)
    thresholds = {}
    for k, head in enumerate(heads):
        y = Y[train, k]
        if y.min() == y.max():
            raise SystemExit(f"head {head}: the training split has one class only")
        model = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", random_state=SEED, max_iter=200)
        model.fit(X[train], y, sample_weight=weight[train])
        W[:, k] = model.coef_[0].astype(np.float32)
        b[k] = np.float32(model.intercept_[0])
        if val_benign.any():
            s = 1.0 / (1.0 + np.exp(-(X[val_benign] @ W[:, k] + b[k])))
            # "higher" and a step up: a benign score tied with the quantile stays below the threshold.
            q = lambda p: float(np.nextafter(np.float32(np.quantile(s, p, method="higher")), np.float32(1)))
            thresholds[head] = {"fpr1": q(0.99), "fpr01": q(0.999)}
        else:
            thresholds[head] = {"fpr1": 0.5, "fpr01": 0.5}

    g = helper.make_graph(
        [
            helper.make_node("Gather", ["W", "indices"], ["rows"], axis=0),
            helper.make_node("Mul", ["rows", "values"], ["weighted"]),
            helper.make_node("ReduceSum", ["weighted", "axes"], ["summed"], keepdims=0),
            helper.make_node("Add", ["summed", "b"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["scores"]),
        ],
        "hashed_ngram_logreg",
        [
            helper.make_tensor_value_info("indices", TensorProto.INT32, ["N"]),
            helper.make_tensor_value_info("values", TensorProto.FLOAT, ["N", 1]),
        ],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [len(heads)])],
        [
            numpy_helper.from_array(W, "W"),
            numpy_helper.from_array(b, "b"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "axes"),
        ],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="mlops-guardrails")
    m.ir_version = 8
    onnx.checker.check_model(m)
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(m, os.path.join(out_dir, "model.onnx"))
    json.dump({"heads": heads, "thresholds": thresholds}, open(os.path.join(out_dir, "fit.json"), "w"))
    print(json.dumps({"docs": int(X.shape[0]), "nnz": int(X.nnz), "heads": heads, "thresholds": thresholds}))


if __name__ == "__main__":
    main()
