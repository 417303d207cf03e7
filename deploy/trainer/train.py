#!/usr/bin/env python3
"""Reference trainer of the MLOps control plane.

Honours the job contract in JOB_CONTRACT.md: everything comes from environment variables, the dataset's
sha256 is verified before anything is trained, params / metrics / an ONNX model are logged into the
existing MLflow run named by MLFLOW_RUN_ID (no new run is ever created), and any failure prints
`trainer: <message>` to stderr and exits non-zero with a code that says which kind of failure it was.

Backends: `sklearn` (default; CPU; preprocessing + GradientBoostingClassifier, which skl2onnx converts
exactly) and `torch` (the same preprocessing + a small MLP on CUDA when available, exported to ONNX with
the same input signature).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote, urlparse

# Exit codes (documented in JOB_CONTRACT.md).
EXIT_OK = 0
EXIT_FAILURE = 1  # unexpected error (a bug): see the message
EXIT_CONFIG = 2  # the job contract is violated: a variable is missing or malformed
EXIT_DATA = 3  # the dataset is unreadable, fails its sha256, or does not match the feature spec
EXIT_TRAINING = 4  # training, ONNX export or the ONNX parity check failed
EXIT_TRACKING = 5  # MLflow could not be reached, the run does not exist, or logging failed
EXIT_BACKEND = 6  # the requested backend is not available in this image
EXIT_YIELDED = 75  # torch: stopped after MLOPS_MAX_EPOCHS_PER_ATTEMPT with a checkpoint; resubmit to continue

DEFAULT_ARTIFACT_PATH = "model"  # the control plane registers model versions from <run>/artifacts/model
DEFAULT_SEED = 42  # reproducible by default, like the control plane's own default
DEFAULT_BACKEND = "sklearn"
CHECKPOINT_ARTIFACT_DIR = "checkpoints"  # torch: the run's artifacts keep the last epoch's state here
CHECKPOINT_FILE = "last.pt"  # one file, replaced each epoch: a resubmitted job resumes from it
CHECKPOINT_FORMAT = "mlops.torch-checkpoint/v2"  # v2: the identity names the run and the feature spec
DEFAULT_CHECKPOINT_EVERY = 1  # epochs between checkpoints (MLOPS_CHECKPOINT_EVERY)
DEFAULT_S3_REGION = "us-east-1"  # sent to an S3-compatible server that has no region (signing needs one)
ONNX_OPSET = 17  # highest opset used (skl2onnx may pick lower); onnxruntime >= 1.14 runs it
PARITY_TOLERANCE = 1e-4  # max |p_onnx - p_native| accepted on the parity sample
PARITY_SAMPLE_ROWS = 2000  # rows of the validation split scored by both runtimes
MISSING_CATEGORY = ""  # how a missing categorical value is fed to the ONNX model (numeric: NaN)
INPUT_SCHEMA_FORMAT = "mlops.onnx-input-schema/v1"
PROBABILITY_OUTPUT = "probabilities"
LABEL_OUTPUT = "label"
POSITIVE_CLASS_INDEX = 1

# Hyperparameters each backend accepts, with defaults (anything else is refused, naming the key).
SKLEARN_HYPERPARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_depth": 3,
    "subsample": 0.8,
    "min_samples_leaf": 20,
    "validation_fraction": 0.2,
}
TORCH_HYPERPARAMS: dict[str, Any] = {
    "hidden_units": 64,
    "epochs": 40,
    "learning_rate": 1e-3,
    "batch_size": 256,
    "weight_decay": 1e-4,
    "validation_fraction": 0.2,
}


class TrainerError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


class Yielded(Exception):
    """The attempt trained its MLOPS_MAX_EPOCHS_PER_ATTEMPT and checkpointed: not a failure."""

    def __init__(self, epoch: int, epochs: int):
        super().__init__(
            f"stopped after epoch {epoch}/{epochs} (MLOPS_MAX_EPOCHS_PER_ATTEMPT); resubmit to continue"
        )
        self.epoch = epoch


def progress(message: str) -> None:
    print(f"trainer: {message}", flush=True)


def redact(text: str) -> str:
    """Removes credentials from a message: secret env values and user:password@ parts of URLs."""
    for key in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        value = os.environ.get(key)
        if value:
            text = text.replace(value, "***")
    return re.sub(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]+@", r"\1***@", text)


# ---------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    categories: list[str] | None


@dataclass
class Config:
    tracking_uri: str
    run_id: str
    dataset_path: str
    dataset_sha256: str
    spec: dict[str, Any]
    features: list[Feature]
    label_column: str
    positive_value: Any
    artifact_path: str
    seed: int
    hyperparams: dict[str, Any]
    backend: str
    checkpoint_dir: str = ""  # local scratch for checkpoints (MLOPS_CHECKPOINT_DIR); "" = a temp dir
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    max_epochs_per_attempt: int = 0  # torch: stop after this many epochs of this attempt (0 = no limit)
    dataset_uri: str = ""  # an s3:// dataset, fetched into dataset_path before anything else
    scratch_dir: str = ""  # where a fetched dataset goes (MLOPS_SCRATCH_DIR); "" = a temp dir


def _require(env: dict[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise TrainerError(EXIT_CONFIG, f"{key} is required")
    return value


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Hyperparameters arrive as JSON numbers or strings; coerce them to the default's type."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes")
            return bool(value)
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(default, float):
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
    except (TypeError, ValueError):
        raise TrainerError(
            EXIT_CONFIG, f"MLOPS_HYPERPARAMS.{key}: {value!r} is not a valid {type(default).__name__}"
        ) from None
    return value


def _check_range(key: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise TrainerError(EXIT_CONFIG, f"MLOPS_HYPERPARAMS.{key}: {value!r} must be {expected}")


def parse_hyperparams(raw: str, backend: str) -> dict[str, Any]:
    defaults = TORCH_HYPERPARAMS if backend == "torch" else SKLEARN_HYPERPARAMS
    given: Any = {}
    if raw.strip() not in ("", "null"):
        try:
            given = json.loads(raw)
        except json.JSONDecodeError as err:
            raise TrainerError(EXIT_CONFIG, f"MLOPS_HYPERPARAMS is not valid JSON: {err}") from None
    if not isinstance(given, dict):
        raise TrainerError(EXIT_CONFIG, "MLOPS_HYPERPARAMS must be a JSON object")
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise TrainerError(
                EXIT_CONFIG,
                f"MLOPS_HYPERPARAMS.{key}: unknown hyperparameter for backend {backend} "
                f"(known: {', '.join(sorted(defaults))})",
            )
        out[key] = _coerce(key, value, defaults[key])
    vf = out["validation_fraction"]
    _check_range("validation_fraction", vf, 0.05 <= vf <= 0.5, "between 0.05 and 0.5")
    for key in ("n_estimators", "max_depth", "min_samples_leaf", "hidden_units", "epochs", "batch_size"):
        if key in out:
            _check_range(key, out[key], out[key] >= 1, "a positive integer")
    if "learning_rate" in out:
        _check_range("learning_rate", out["learning_rate"], out["learning_rate"] > 0, "positive")
    if "subsample" in out:
        _check_range("subsample", out["subsample"], 0 < out["subsample"] <= 1, "in (0, 1]")
    if "weight_decay" in out:
        _check_range("weight_decay", out["weight_decay"], out["weight_decay"] >= 0, "non-negative")
    return out


def parse_feature_spec(raw: str) -> tuple[dict[str, Any], list[Feature], str, Any]:
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as err:
        raise TrainerError(EXIT_CONFIG, f"MLOPS_FEATURE_SPEC is not valid JSON: {err}") from None
    if not isinstance(spec, dict):
        raise TrainerError(EXIT_CONFIG, "MLOPS_FEATURE_SPEC must be a JSON object")
    label = spec.get("label")
    if not isinstance(label, dict) or not isinstance(label.get("column"), str) or not label["column"]:
        raise TrainerError(EXIT_CONFIG, "MLOPS_FEATURE_SPEC.label.column is required")
    positive = label.get("positiveValue")
    if isinstance(positive, bool) or not isinstance(positive, (int, float, str)):
        raise TrainerError(EXIT_CONFIG, "MLOPS_FEATURE_SPEC.label.positiveValue must be a number or a string")
    raw_features = spec.get("features")
    if not isinstance(raw_features, list) or not raw_features:
        raise TrainerError(EXIT_CONFIG, "MLOPS_FEATURE_SPEC.features must be a non-empty list")
    features: list[Feature] = []
    seen: set[str] = set()
    for i, f in enumerate(raw_features):
        where = f"MLOPS_FEATURE_SPEC.features[{i}]"
        if not isinstance(f, dict):
            raise TrainerError(EXIT_CONFIG, f"{where} must be an object")
        name, kind = f.get("name"), f.get("kind")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", name):
            raise TrainerError(EXIT_CONFIG, f"{where}.name must be a column name")
        if name in seen or name == label["column"]:
            raise TrainerError(EXIT_CONFIG, f"{where}.name: column {name!r} is used twice")
        seen.add(name)
        if kind == "numeric":
            features.append(Feature(name, "numeric", None))
        elif kind == "categorical":
            cats = f.get("categories")
            if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
                raise TrainerError(EXIT_CONFIG, f"{where}.categories must be a list of strings")
            features.append(Feature(name, "categorical", list(cats)))
        else:
            raise TrainerError(EXIT_CONFIG, f"{where}.kind must be 'numeric' or 'categorical'")
    return spec, features, label["column"], positive


def dataset_location(env: dict[str, str]) -> tuple[str, str]:
    """(local path, s3 URI): a local file, or an s3:// object that run() fetches into scratch first."""
    path = env.get("MLOPS_DATASET_PATH", "").strip()
    if path:
        return path, ""
    uri = env.get("MLOPS_DATASET_URI", "").strip()
    if not uri:
        raise TrainerError(EXIT_CONFIG, "MLOPS_DATASET_PATH or MLOPS_DATASET_URI is required")
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc or not parsed.path.strip("/"):
            raise TrainerError(EXIT_CONFIG, f"MLOPS_DATASET_URI {uri!r} must be s3://<bucket>/<key>")
        return "", uri
    if parsed.scheme != "file":
        raise TrainerError(
            EXIT_CONFIG,
            f"MLOPS_DATASET_URI: scheme {parsed.scheme or '(none)'!r} is not supported "
            "(use file://, s3:// or MLOPS_DATASET_PATH)",
        )
    if parsed.netloc not in ("", "localhost"):
        raise TrainerError(EXIT_CONFIG, f"MLOPS_DATASET_URI: remote host {parsed.netloc!r} is not supported")
    return unquote(parsed.path), ""


def fetch_s3_dataset(cfg: Config, env: dict[str, str]) -> str:
    """Downloads the s3:// dataset into scratch and returns the local path (its sha256 is verified next).

    Endpoint and region from MLOPS_S3_ENDPOINT / MLOPS_S3_REGION; credentials from the standard
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, which the Job fills from a Secret reference.
    """
    try:
        import boto3
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise TrainerError(
            EXIT_BACKEND, "MLOPS_DATASET_URI is s3:// but boto3 is not installed in this image"
        ) from None
    parsed = urlparse(cfg.dataset_uri)
    bucket, key = parsed.netloc, unquote(parsed.path.lstrip("/"))
    endpoint = env.get("MLOPS_S3_ENDPOINT", "").strip() or None
    region = env.get("MLOPS_S3_REGION", "").strip() or DEFAULT_S3_REGION
    folder = cfg.scratch_dir or tempfile.mkdtemp(prefix="mlops-dataset-")
    os.makedirs(folder, exist_ok=True)
    local = os.path.join(folder, f"dataset-{cfg.dataset_sha256}")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        # Path-style and plain payloads: what S3-compatible servers (and AWS) all accept.
        config=BotoConfig(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    progress(f"fetching {cfg.dataset_uri}")
    try:
        client.download_file(bucket, key, local)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            raise TrainerError(EXIT_DATA, f"dataset {cfg.dataset_uri} does not exist ({code})") from None
        raise TrainerError(EXIT_DATA, f"dataset {cfg.dataset_uri} cannot be read: {code or err}") from None
    except BotoCoreError as err:
        raise TrainerError(EXIT_DATA, f"dataset {cfg.dataset_uri} cannot be read: {err}") from None
    return local


def read_config(env: dict[str, str]) -> Config:
    tracking_uri = _require(env, "MLFLOW_TRACKING_URI")
    run_id = _require(env, "MLFLOW_RUN_ID")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
        raise TrainerError(EXIT_CONFIG, "MLFLOW_RUN_ID is not a run id")
    sha = _require(env, "MLOPS_DATASET_SHA256").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise TrainerError(EXIT_CONFIG, "MLOPS_DATASET_SHA256 must be 64 hex digits")
    spec, features, label_column, positive = parse_feature_spec(_require(env, "MLOPS_FEATURE_SPEC"))
    artifact_path = env.get("MLOPS_ARTIFACT_PATH", "").strip() or DEFAULT_ARTIFACT_PATH
    if (
        artifact_path.startswith("/")
        or ".." in artifact_path.split("/")
        or not re.fullmatch(r"[A-Za-z0-9_./-]+", artifact_path)
    ):
        raise TrainerError(
            EXIT_CONFIG, f"MLOPS_ARTIFACT_PATH {artifact_path!r} must be a relative folder name"
        )
    seed_raw = env.get("MLOPS_SEED", "").strip() or str(DEFAULT_SEED)
    if not re.fullmatch(r"\d{1,10}", seed_raw) or int(seed_raw) > 2**32 - 1:
        raise TrainerError(EXIT_CONFIG, f"MLOPS_SEED {seed_raw!r} must be an integer in 0..4294967295")
    backend = env.get("MLOPS_BACKEND", "").strip() or DEFAULT_BACKEND
    if backend not in ("sklearn", "torch"):
        raise TrainerError(EXIT_CONFIG, f"MLOPS_BACKEND {backend!r} must be 'sklearn' or 'torch'")
    every_raw = env.get("MLOPS_CHECKPOINT_EVERY", "").strip() or str(DEFAULT_CHECKPOINT_EVERY)
    if not re.fullmatch(r"[1-9]\d{0,5}", every_raw):
        raise TrainerError(EXIT_CONFIG, f"MLOPS_CHECKPOINT_EVERY {every_raw!r} must be a positive integer")
    budget_raw = env.get("MLOPS_MAX_EPOCHS_PER_ATTEMPT", "").strip() or "0"
    if not re.fullmatch(r"\d{1,6}", budget_raw):
        raise TrainerError(
            EXIT_CONFIG, f"MLOPS_MAX_EPOCHS_PER_ATTEMPT {budget_raw!r} must be a non-negative integer"
        )
    if int(budget_raw) > 0 and backend != "torch":
        raise TrainerError(
            EXIT_CONFIG, "MLOPS_MAX_EPOCHS_PER_ATTEMPT needs MLOPS_BACKEND=torch (only it trains in epochs)"
        )
    dataset_path, dataset_uri = dataset_location(env)
    return Config(
        tracking_uri=tracking_uri,
        run_id=run_id,
        dataset_path=dataset_path,
        dataset_uri=dataset_uri,
        scratch_dir=env.get("MLOPS_SCRATCH_DIR", "").strip(),
        max_epochs_per_attempt=int(budget_raw),
        dataset_sha256=sha,
        spec=spec,
        features=features,
        label_column=label_column,
        positive_value=positive,
        artifact_path=artifact_path.strip("/"),
        seed=int(seed_raw),
        hyperparams=parse_hyperparams(env.get("MLOPS_HYPERPARAMS", ""), backend),
        backend=backend,
        checkpoint_dir=env.get("MLOPS_CHECKPOINT_DIR", "").strip(),
        checkpoint_every=int(every_raw),
    )


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------


def verify_sha256(path: str, expected: str) -> None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise TrainerError(EXIT_DATA, f"dataset {path} cannot be read: {err.strerror or err}") from None
    actual = digest.hexdigest()
    if actual != expected:
        raise TrainerError(
            EXIT_DATA,
            f"dataset sha256 mismatch for {path}: file hashes to {actual}, "
            f"MLOPS_DATASET_SHA256 is {expected}; "
            "refusing to train on data other than the validated snapshot",
        )


def load_dataset(cfg: Config):
    import numpy as np
    import pandas as pd

    # CSV or Parquet, told apart by content as the control plane does (a Parquet file starts with PAR1).
    try:
        with open(cfg.dataset_path, "rb") as fh:
            is_parquet = fh.read(4) == b"PAR1"
    except OSError as err:
        raise TrainerError(EXIT_DATA, f"dataset {cfg.dataset_path} is unreadable: {err}") from None
    try:
        if is_parquet:
            df = pd.read_parquet(cfg.dataset_path)
        else:
            df = pd.read_csv(cfg.dataset_path, dtype=str, keep_default_na=True, skipinitialspace=True)
    except Exception as err:  # pandas and pyarrow raise many types for malformed files
        kind = "Parquet" if is_parquet else "CSV"
        raise TrainerError(EXIT_DATA, f"dataset {cfg.dataset_path} is not a readable {kind}: {err}") from None
    df.columns = [str(c).strip() for c in df.columns]
    needed = [f.name for f in cfg.features] + [cfg.label_column]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise TrainerError(
            EXIT_DATA, f"dataset lacks column(s) required by the feature spec: {', '.join(missing)}"
        )

    raw_label = df[cfg.label_column].astype(object)
    label_present = raw_label.notna() & (raw_label.astype(str).str.strip() != "")
    if isinstance(cfg.positive_value, str):
        y_all = raw_label.astype(str).str.strip() == cfg.positive_value
    else:
        y_all = pd.to_numeric(raw_label, errors="coerce") == float(cfg.positive_value)
    unlabelled = int((~label_present).sum())
    df = df[label_present].reset_index(drop=True)
    y = y_all[label_present].astype(int).to_numpy()

    X = pd.DataFrame(index=df.index)
    for f in cfg.features:
        col = df[f.name]
        if f.kind == "numeric":
            values = pd.to_numeric(col, errors="coerce")
            bad = col.notna() & ~np.isfinite(values.astype(float))
            if bad.any():
                first = col[bad].iloc[0]
                raise TrainerError(
                    EXIT_DATA,
                    f"column {f.name!r}: {int(bad.sum())} value(s) are not finite numbers "
                    f"(first: {str(first)[:40]!r})",
                )
            # float32 is what the ONNX model receives: train on exactly those values.
            X[f.name] = values.astype(np.float32)
        else:
            X[f.name] = col.astype(object).where(col.notna(), MISSING_CATEGORY).map(lambda v: str(v).strip())
    if len(y) == 0:
        raise TrainerError(EXIT_DATA, "dataset has no labelled rows")
    positives = int(y.sum())
    if positives < 2 or len(y) - positives < 2:
        raise TrainerError(
            EXIT_DATA,
            f"need at least 2 positive and 2 negative rows to train, got {positives} / {len(y) - positives}",
        )
    return X, y, unlabelled


def build_preprocessor(cfg: Config, dense: bool):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [f.name for f in cfg.features if f.kind == "numeric"]
    categorical = [f.name for f in cfg.features if f.kind == "categorical"]
    steps = []
    if numeric:
        steps.append(
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                numeric,
            )
        )
    if categorical:
        # Missing categories arrive as MISSING_CATEGORY (""), imputed as a category of their own: it gets its
        # own one-hot column, while values outside the spec's vocabulary encode as all zeros.
        vocab = [
            sorted(set(f.categories or []) | {MISSING_CATEGORY})
            for f in cfg.features
            if f.kind == "categorical"
        ]
        encoder = OneHotEncoder(categories=vocab, handle_unknown="ignore", sparse_output=not dense)
        steps.append(("cat", encoder, categorical))
    return ColumnTransformer(steps, sparse_threshold=0.0 if dense else 0.3)


def make_scaling_exact(preprocess) -> None:
    """Rounds the fitted StandardScaler so that ONNX reproduces it bit for bit.

    ONNX's Scaler computes (x - offset) * scale in float32, sklearn (x - mean) / scale with float64
    parameters; the last-bit differences can send a value on the other side of a tree threshold. With the
    mean rounded to float32 and the scale rounded to a power of two, both compute the same correctly rounded
    difference and an exact scaling, so the ONNX model's inputs to the trees are identical to sklearn's.
    """
    import numpy as np

    if "num" not in preprocess.named_transformers_:
        return
    scaler = preprocess.named_transformers_["num"].named_steps["scale"]
    scaler.mean_ = scaler.mean_.astype(np.float32).astype(np.float64)
    scaler.scale_ = np.exp2(np.round(np.log2(scaler.scale_)))


def default_opset(model) -> int:
    """The model's opset of the default ONNX domain."""
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def initial_types(cfg: Config):
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    return [
        (f.name, FloatTensorType([None, 1]) if f.kind == "numeric" else StringTensorType([None, 1]))
        for f in cfg.features
    ]


def onnx_feeds(cfg: Config, X) -> dict[str, Any]:
    import numpy as np

    feeds: dict[str, Any] = {}
    for f in cfg.features:
        if f.kind == "numeric":
            feeds[f.name] = X[[f.name]].to_numpy(dtype=np.float32)
        else:
            feeds[f.name] = X[[f.name]].to_numpy(dtype=object)
    return feeds


def check_onnx_parity(cfg: Config, model_bytes: bytes, X_sample, native_proba) -> tuple[str, float]:
    """Scores the sample with the ONNX model and compares with the native probabilities."""
    import numpy as np
    import onnx

    model = onnx.load_from_string(model_bytes)
    onnx.checker.check_model(model)
    outputs = [o.name for o in model.graph.output]
    if LABEL_OUTPUT not in outputs or PROBABILITY_OUTPUT not in outputs:
        raise TrainerError(
            EXIT_TRAINING, f"ONNX outputs are {outputs}, expected {LABEL_OUTPUT} and {PROBABILITY_OUTPUT}"
        )
    inputs = [i.name for i in model.graph.input]
    if inputs != [f.name for f in cfg.features]:
        raise TrainerError(EXIT_TRAINING, f"ONNX inputs are {inputs}, expected the spec's features in order")
    feeds = onnx_feeds(cfg, X_sample)
    try:
        import onnxruntime as ort  # optional: not in requirements.txt

        session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        result = session.run([PROBABILITY_OUTPUT], feeds)[0]
        runtime = f"onnxruntime {ort.__version__}"
    except ImportError:
        from onnx.reference import ReferenceEvaluator

        result = ReferenceEvaluator(model).run([PROBABILITY_OUTPUT], feeds)[0]
        runtime = f"onnx.reference {onnx.__version__}"
    result = np.asarray(result, dtype=np.float64)
    if result.shape != native_proba.shape:
        raise TrainerError(
            EXIT_TRAINING, f"ONNX probabilities have shape {result.shape}, expected {native_proba.shape}"
        )
    diff = float(np.max(np.abs(result - native_proba))) if len(result) else 0.0
    if not diff <= PARITY_TOLERANCE:
        raise TrainerError(
            EXIT_TRAINING,
            f"ONNX model disagrees with the trained model: max |p_onnx - p| = {diff:.3g} > "
            f"{PARITY_TOLERANCE} "
            f"({runtime})",
        )
    return runtime, diff


def input_schema(cfg: Config) -> dict[str, Any]:
    inputs = []
    for order, f in enumerate(cfg.features):
        entry: dict[str, Any] = {
            "name": f.name,
            "kind": f.kind,
            "dtype": "float32" if f.kind == "numeric" else "string",
            "shape": [None, 1],
            "order": order,
            "missing": "NaN" if f.kind == "numeric" else MISSING_CATEGORY,
        }
        if f.kind == "categorical":
            entry["categories"] = list(f.categories or [])
        inputs.append(entry)
    return {
        "format": INPUT_SCHEMA_FORMAT,
        "featureSpec": {"name": cfg.spec.get("name"), "version": cfg.spec.get("version")},
        "inputs": inputs,
        "outputs": {"label": LABEL_OUTPUT, "probabilities": PROBABILITY_OUTPUT},
        "probabilityOutput": PROBABILITY_OUTPUT,
        "positiveClassIndex": POSITIVE_CLASS_INDEX,
        "label": {"column": cfg.label_column, "positiveValue": cfg.positive_value},
    }


# ---------------------------------------------------------------------------------------------------------
# Backends: each returns (onnx bytes, predict_proba on a DataFrame, extra params); torch adds metrics
# ---------------------------------------------------------------------------------------------------------


def train_sklearn(cfg: Config, X_train, y_train):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from skl2onnx import convert_sklearn

    hp = cfg.hyperparams
    preprocess = build_preprocessor(cfg, dense=False).fit(X_train)
    make_scaling_exact(preprocess)
    classifier = GradientBoostingClassifier(
        n_estimators=hp["n_estimators"],
        learning_rate=hp["learning_rate"],
        max_depth=hp["max_depth"],
        subsample=hp["subsample"],
        min_samples_leaf=hp["min_samples_leaf"],
        random_state=cfg.seed,
    ).fit(preprocess.transform(X_train), y_train)
    model = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    onx = convert_sklearn(
        model,
        initial_types=initial_types(cfg),
        options={id(model): {"zipmap": False}},
        target_opset=ONNX_OPSET,
    )
    return onx, model.predict_proba, {"model": "GradientBoostingClassifier"}


def pack_state(torch: Any, state: Any) -> dict[str, Any]:
    """A checkpoint as `{"meta": <JSON text>, "tensors": [tensor, ...]}`: the only shape it is saved in.

    Everything but tensors (epochs, the identity, the optimiser's settings) goes into a JSON text that
    keeps dict keys' types and floats exactly, so the file loads with `weights_only=True` on every torch
    (1.13's tensor-only unpickler reads no float).
    """
    tensors: list[Any] = []

    def walk(obj: Any) -> Any:
        if torch.is_tensor(obj):
            tensors.append(obj.detach().to("cpu"))
            return {"t": len(tensors) - 1}
        if isinstance(obj, dict):
            return {"d": [[k, walk(v)] for k, v in obj.items()]}
        if isinstance(obj, tuple):
            return {"tu": [walk(v) for v in obj]}
        if isinstance(obj, list):
            return {"l": [walk(v) for v in obj]}
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return {"v": obj}
        raise TypeError(f"checkpoint value of type {type(obj).__name__} cannot be saved")

    return {"meta": json.dumps(walk(state)), "tensors": tensors}


def unpack_state(torch: Any, saved: Any) -> Any:
    """The state saved by pack_state; ValueError for anything else."""
    if not (
        isinstance(saved, dict) and isinstance(saved.get("meta"), str) and isinstance(saved.get("tensors"), list)
    ):
        raise ValueError("not a checkpoint of this trainer (no meta and tensors)")
    tensors = saved["tensors"]

    def walk(node: Any) -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            raise ValueError("malformed checkpoint meta")
        ((kind, value),) = node.items()
        if kind == "t" and isinstance(value, int) and 0 <= value < len(tensors):
            if not torch.is_tensor(tensors[value]):
                raise ValueError("malformed checkpoint tensors")
            return tensors[value]
        if kind == "d":
            return {k: walk(v) for k, v in value}
        if kind == "tu":
            return tuple(walk(v) for v in value)
        if kind == "l":
            return [walk(v) for v in value]
        if kind == "v":
            return value
        raise ValueError(f"malformed checkpoint meta ({kind!r})")

    return walk(json.loads(saved["meta"]))


class Checkpoints:
    """The torch path's epoch checkpoints, kept in the run's own artifacts (`checkpoints/last.pt`).

    A preempted or evicted job is resubmitted with the same MLflow run id; its new pod, on whatever
    node, downloads the last checkpoint and continues from the epoch after it. A checkpoint is only
    resumed from when its identity matches: written for this run, dataset, feature spec, seed,
    hyperparameters and input width. Anything else is refused: training starts afresh, says which
    fields differ, and tags the run (`mlops.checkpoint.refused`). Checkpoints are loaded with
    `weights_only=True`: tensors and plain containers only, never arbitrary pickled objects.
    """

    def __init__(self, cfg: Config, client: Any):
        self.cfg = cfg
        self.client = client
        self.dir = cfg.checkpoint_dir or tempfile.mkdtemp(prefix="mlops-ckpt-")
        os.makedirs(self.dir, exist_ok=True)

    def identity(self, width: int) -> dict[str, Any]:
        spec = json.dumps(self.cfg.spec, sort_keys=True, separators=(",", ":")).encode()
        return {
            "format": CHECKPOINT_FORMAT,
            "run_id": self.cfg.run_id,
            "dataset_sha256": self.cfg.dataset_sha256,
            "feature_spec_sha256": hashlib.sha256(spec).hexdigest(),
            "seed": self.cfg.seed,
            "hyperparams": self.cfg.hyperparams,
            "width": width,
        }

    def refuse(self, why: str) -> None:
        where = f"{CHECKPOINT_ARTIFACT_DIR}/{CHECKPOINT_FILE}"
        progress(f"checkpoint {where} refused: {why}; starting from epoch 1")
        tracking_call(
            "tagging the refused checkpoint",
            lambda: self.client.set_tag(self.cfg.run_id, "mlops.checkpoint.refused", why[:500]),
        )

    def load(self, torch: Any, width: int) -> dict[str, Any] | None:
        """The last checkpoint of this run, or None (none yet, or refused: written for other inputs)."""
        try:
            local = self.client.download_artifacts(
                self.cfg.run_id, f"{CHECKPOINT_ARTIFACT_DIR}/{CHECKPOINT_FILE}", self.dir
            )
        except Exception:  # no checkpoint artifact yet: a first attempt
            return None
        try:
            saved = torch.load(local, map_location="cpu", weights_only=True)
            state = unpack_state(torch, saved)
        except Exception as err:
            self.refuse(f"unreadable ({type(err).__name__}: {str(err)[:200]})")
            return None
        expected = self.identity(width)
        found = state.get("identity") if isinstance(state, dict) else None
        if not isinstance(found, dict):
            self.refuse("it carries no identity")
            return None
        differs = sorted(k for k in set(expected) | set(found) if found.get(k) != expected.get(k))
        if differs:
            self.refuse(f"written for another {', '.join(differs)}")
            return None
        return state

    def save(self, torch: Any, state: dict[str, Any]) -> None:
        path = os.path.join(self.dir, CHECKPOINT_FILE)
        tmp = f"{path}.tmp"
        torch.save(pack_state(torch, state), tmp)
        os.replace(tmp, path)
        tracking_call(
            f"uploading checkpoint of epoch {state['epoch']}",
            lambda: self.client.log_artifact(self.cfg.run_id, path, artifact_path=CHECKPOINT_ARTIFACT_DIR),
        )


def train_torch(cfg: Config, X_train, y_train, checkpoints: Checkpoints | None = None):
    try:
        import torch
    except ImportError:
        raise TrainerError(
            EXIT_BACKEND,
            "MLOPS_BACKEND=torch but PyTorch is not installed in this image: use an image with torch, "
            "or MLOPS_BACKEND=sklearn",
        ) from None
    import io

    import numpy as np
    import onnx
    from onnx import compose
    from skl2onnx import convert_sklearn

    hp = cfg.hyperparams
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    progress(f"torch {torch.__version__} on {device}")

    pre = build_preprocessor(cfg, dense=True)
    Z = np.asarray(pre.fit_transform(X_train), dtype=np.float32)
    width = Z.shape[1]
    hidden = hp["hidden_units"]
    net = torch.nn.Sequential(
        torch.nn.Linear(width, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1),
    ).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=hp["learning_rate"], weight_decay=hp["weight_decay"])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    features = torch.from_numpy(Z).to(device)
    targets = torch.from_numpy(np.asarray(y_train, dtype=np.float32)).reshape(-1, 1).to(device)
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    first_epoch = 0
    resumed = checkpoints.load(torch, width) if checkpoints else None
    if resumed is not None:
        net.load_state_dict(resumed["model"])
        optimiser.load_state_dict(resumed["optimiser"])
        generator.set_state(resumed["generator"])
        first_epoch = int(resumed["epoch"])
        progress(f"resuming from the checkpoint of epoch {first_epoch}/{hp['epochs']}")
    net.train()
    epoch_started = time.monotonic()
    # The last epoch this attempt trains: all of them, or MLOPS_MAX_EPOCHS_PER_ATTEMPT more.
    budget = cfg.max_epochs_per_attempt
    stop_after = min(hp["epochs"], first_epoch + budget) if budget > 0 else hp["epochs"]
    for epoch in range(first_epoch, stop_after):
        order = torch.randperm(len(features), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), hp["batch_size"]):
            idx = order[start : start + hp["batch_size"]]
            optimiser.zero_grad()
            loss = loss_fn(net(features[idx]), targets[idx])
            loss.backward()
            optimiser.step()
            total += float(loss) * len(idx)
        if epoch == 0 or (epoch + 1) % 10 == 0 or epoch + 1 == hp["epochs"]:
            progress(f"epoch {epoch + 1}/{hp['epochs']} loss {total / len(order):.4f}")
        last_of_attempt = epoch + 1 == stop_after
        if checkpoints and ((epoch + 1) % cfg.checkpoint_every == 0 or last_of_attempt):
            checkpoints.save(
                torch,
                {
                    "identity": checkpoints.identity(width),
                    "epoch": epoch + 1,
                    "model": {k: v.detach().to("cpu") for k, v in net.state_dict().items()},
                    "optimiser": optimiser.state_dict(),
                    "generator": generator.get_state(),
                },
            )
    if stop_after < hp["epochs"]:
        raise Yielded(stop_after, hp["epochs"])
    epochs_run = hp["epochs"] - first_epoch
    elapsed = max(time.monotonic() - epoch_started, 1e-9)
    rows_per_second = epochs_run * len(features) / elapsed
    progress(f"{epochs_run} epochs on {device}: {rows_per_second:.0f} rows/s")
    net.eval()
    net_cpu = net.to("cpu")

    class Head(torch.nn.Module):
        """The MLP with the classifier outputs of the contract: label [N] int64, probabilities [N, 2]."""

        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            p = torch.sigmoid(self.body(x))
            probabilities = torch.cat([1 - p, p], dim=1)
            label = (p[:, 0] > 0.5).to(torch.int64)
            return label, probabilities

    head = Head(net_cpu).eval()
    # The fitted preprocessing becomes the first half of the graph. skl2onnx picks the lowest opset its
    # operators need (at most ONNX_OPSET); the MLP is exported at that same opset so the halves compose.
    pre_model = convert_sklearn(pre, initial_types=initial_types(cfg), target_opset=ONNX_OPSET)
    pre_output = pre_model.graph.output[0].name
    opset = default_opset(pre_model)
    buffer = io.BytesIO()
    export_args: dict[str, Any] = dict(
        input_names=["features"],
        output_names=[LABEL_OUTPUT, PROBABILITY_OUTPUT],
        dynamic_axes={"features": {0: "N"}, LABEL_OUTPUT: {0: "N"}, PROBABILITY_OUTPUT: {0: "N"}},
        opset_version=opset,
    )
    dummy = torch.zeros(2, width, dtype=torch.float32)
    try:
        torch.onnx.export(head, (dummy,), buffer, dynamo=False, **export_args)
    except TypeError:  # torch < 2.1 has no `dynamo` switch
        torch.onnx.export(head, (dummy,), buffer, **export_args)
    mlp_model = onnx.load_from_string(buffer.getvalue())

    # Both halves must also agree on the IR version to be composed.
    ir_version = min(pre_model.ir_version, mlp_model.ir_version)
    pre_model.ir_version = ir_version
    mlp_model.ir_version = ir_version
    merged = compose.merge_models(pre_model, mlp_model, io_map=[(pre_output, "features")])

    def predict_proba(X):
        with torch.no_grad():
            z = torch.from_numpy(np.asarray(pre.transform(X), dtype=np.float32))
            return head(z)[1].numpy().astype(np.float64)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return merged, predict_proba, {
        "model": "MLP",
        "device": str(device),
        "device_name": device_name,
        "torch_version": torch.__version__,
    }, {"resumed_from_epoch": float(first_epoch), "train_rows_per_second": float(rows_per_second)}


# ---------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------


def tracking_call(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except TrainerError:
        raise
    except Exception as err:
        raise TrainerError(EXIT_TRACKING, f"MLflow: {what} failed: {type(err).__name__}: {err}") from None


def run(cfg: Config, env: dict[str, str]) -> None:
    import numpy as np

    if cfg.dataset_uri:
        cfg.dataset_path = fetch_s3_dataset(cfg, env)
    progress(f"verifying sha256 of {cfg.dataset_path}")
    verify_sha256(cfg.dataset_path, cfg.dataset_sha256)

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cfg.tracking_uri)
    run_info = tracking_call(f"reading run {cfg.run_id}", lambda: client.get_run(cfg.run_id)).info
    if run_info.lifecycle_stage != "active":
        raise TrainerError(EXIT_TRACKING, f"MLflow run {cfg.run_id} is deleted")
    progress(f"logging into MLflow run {cfg.run_id} (experiment {run_info.experiment_id})")

    progress("loading dataset")
    X, y, unlabelled = load_dataset(cfg)
    from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split

    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=cfg.hyperparams["validation_fraction"], stratify=y, random_state=cfg.seed
    )
    progress(f"{len(y)} labelled rows: {len(y_train)} train / {len(y_val)} validation, backend {cfg.backend}")

    started = time.monotonic()
    try:
        # Measurements of the run itself (throughput, resumption) go in as metrics, not params.
        run_metrics: dict[str, float] = {}
        if cfg.backend == "torch":
            onx, predict_proba, extra, run_metrics = train_torch(cfg, X_train, y_train, Checkpoints(cfg, client))
        else:
            onx, predict_proba, extra = train_sklearn(cfg, X_train, y_train)
    except (TrainerError, Yielded):
        raise
    except Exception as err:
        raise TrainerError(EXIT_TRAINING, f"training failed: {type(err).__name__}: {err}") from None
    train_seconds = time.monotonic() - started
    progress(f"trained {extra['model']} in {train_seconds:.1f}s")

    import onnx

    onnx.helper.set_model_props(
        onx,
        {
            "mlops.feature_spec": f"{cfg.spec.get('name')}@{cfg.spec.get('version')}",
            "mlops.dataset_sha256": cfg.dataset_sha256,
            "mlops.backend": cfg.backend,
        },
    )
    model_bytes = onx.SerializeToString()

    proba = np.asarray(predict_proba(X_val), dtype=np.float64)
    p_val = proba[:, POSITIVE_CLASS_INDEX]
    metrics = {
        "val_roc_auc": float(roc_auc_score(y_val, p_val)),
        "val_pr_auc": float(average_precision_score(y_val, p_val)),
        "val_brier": float(brier_score_loss(y_val, p_val)),
        "val_log_loss": float(log_loss(y_val, np.clip(p_val, 1e-7, 1 - 1e-7), labels=[0, 1])),
        "val_positive_rate": float(np.mean(y_val)),
        "train_positive_rate": float(np.mean(y_train)),
        "train_time_seconds": float(train_seconds),
    }
    progress(
        "validation roc_auc {val_roc_auc:.4f} pr_auc {val_pr_auc:.4f} brier {val_brier:.4f} "
        "(positive rate {val_positive_rate:.4f})".format(**metrics)
    )

    sample = X_val.iloc[:PARITY_SAMPLE_ROWS]
    try:
        runtime, diff = check_onnx_parity(cfg, model_bytes, sample, proba[: len(sample)])
    except TrainerError:
        raise
    except Exception as err:
        raise TrainerError(EXIT_TRAINING, f"ONNX verification failed: {type(err).__name__}: {err}") from None
    progress(f"ONNX parity on {len(sample)} rows with {runtime}: max diff {diff:.2e}")
    metrics["onnx_max_abs_diff"] = diff
    metrics.update(run_metrics)

    params = {
        **{k: str(v) for k, v in cfg.hyperparams.items()},
        "backend": cfg.backend,
        "seed": str(cfg.seed),
        "dataset_sha256": cfg.dataset_sha256,
        "dataset_rows": str(len(y) + unlabelled),
        "rows_unlabelled": str(unlabelled),
        "train_rows": str(len(y_train)),
        "validation_rows": str(len(y_val)),
        "feature_spec_name": str(cfg.spec.get("name")),
        "feature_spec_version": str(cfg.spec.get("version")),
        "onnx_opset": str(default_opset(onx)),
        "onnx_parity_runtime": runtime,
        **{k: str(v) for k, v in extra.items()},
    }
    now = int(time.time() * 1000)
    tracking_call(
        "logging params and metrics",
        lambda: client.log_batch(
            cfg.run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        ),
    )
    with tempfile.TemporaryDirectory(prefix="trainer-") as tmp:
        with open(os.path.join(tmp, "model.onnx"), "wb") as fh:
            fh.write(model_bytes)
        with open(os.path.join(tmp, "input_schema.json"), "w", encoding="utf-8") as fh:
            json.dump(input_schema(cfg), fh, indent=2)
        with open(os.path.join(tmp, "feature_spec.json"), "w", encoding="utf-8") as fh:
            json.dump(cfg.spec, fh, indent=2)
        tracking_call(
            f"uploading artifacts to {cfg.artifact_path}/",
            lambda: client.log_artifacts(cfg.run_id, tmp, artifact_path=cfg.artifact_path),
        )
    tracking_call(
        "setting tags", lambda: client.set_tag(cfg.run_id, "mlops.trainer", f"reference/{cfg.backend}")
    )
    tracking_call("finishing the run", lambda: client.set_terminated(cfg.run_id, "FINISHED"))
    progress(f"done: model.onnx, input_schema.json, feature_spec.json under {cfg.artifact_path}/")


def mark_failed(env: dict[str, str], message: str) -> None:
    """Best effort: records the failure on the run so the control plane sees why (never raises)."""
    uri, run_id = env.get("MLFLOW_TRACKING_URI", "").strip(), env.get("MLFLOW_RUN_ID", "").strip()
    if not uri or not run_id:
        return
    try:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        client.set_tag(run_id, "mlops.failure", message[:4000])
        client.set_terminated(run_id, "FAILED")
    except Exception:
        pass


def main() -> int:
    # MLflow prints a run link built from the tracking host; keep URLs (and anything in them) out of the logs.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    env = dict(os.environ)
    try:
        cfg = read_config(env)
        run(cfg, env)
        return EXIT_OK
    except Yielded as stop:
        # The run stays RUNNING: the next attempt resumes from the checkpoint just uploaded.
        progress(str(stop))
        return EXIT_YIELDED
    except TrainerError as err:
        message = redact(str(err))
        print(f"trainer: {message}", file=sys.stderr, flush=True)
        if err.code != EXIT_TRACKING:
            mark_failed(env, message)
        return err.code
    except Exception as err:
        message = redact(f"unexpected error: {type(err).__name__}: {err}")
        print(f"trainer: {message}", file=sys.stderr, flush=True)
        mark_failed(env, message)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
