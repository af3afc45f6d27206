"""Card-fraud trainer: the program the training image runs (`python trainer/train.py`).

It follows mlcompile's container contract and reads what each platform gives a training
container, so the same program runs unchanged everywhere:

  where from         mlcompile's runtime (local,     Vertex AI                 Kubeflow / Katib     SageMaker                            Azure ML
                     every platform's pipeline)
  training set       MLCOMPILE_TRAIN_DATA            (same)                    (same)               /opt/ml/input/data/train (channel)   (same, from the job's inputs)
  test set           MLCOMPILE_TEST_DATA             (same)                    (same)               /opt/ml/input/data/test              (same)
  hyperparameters    MLCOMPILE_HYPERPARAMETERS       --NAME=VALUE arguments    --NAME=VALUE args    /opt/ml/input/config/                MLCOMPILE_HYPERPARAMETERS
                     (json)                          (trial args)              or the JSON env      hyperparameters.json (strings)       or --NAME VALUE
  model folder       MLCOMPILE_MODEL_DIR             AIP_MODEL_DIR (gs:// is   MLCOMPILE_MODEL_DIR  /opt/ml/model (SM_MODEL_DIR)         MLCOMPILE_MODEL_DIR
                                                     /gcs/… in the job)
  metrics            MLCOMPILE_METRICS (json)        (same) + cloudml-         (same) + `name=value` metrics.json in the model folder    (same) + MLflow
                                                     hypertune file; trial:    stdout lines         + `name=value` log lines (regex)     (MLFLOW_RUN_ID)
                                                     metrics.json beside
                                                     AIP_MODEL_DIR

It writes the model (a scikit-learn pipeline, `fraud-model.joblib`) and `predict.py`, the
model's predict entry point, into the model folder: mlcompile's runtime runs it there to serve
and score (see predict.py). It does not write mlcompile's model.json: the runtime describes the
model itself. Logs go to stderr; stdout carries only the `name=value` metric lines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAGEMAKER = Path(os.environ.get("SM_BASE_DIR", "/opt/ml"))
DEFAULTS = {"learning_rate": 0.1, "max_leaf_nodes": 15, "l2_regularization": 0.0, "max_iter": 200}
METRICS = ("roc_auc", "average_precision", "accuracy")
MODEL_FILE = "fraud-model.joblib"
MISSING = "__missing__"


def log(message: str) -> None:
    print(f"[card-fraud] {message}", file=sys.stderr, flush=True)


def local(uri: str) -> str:
    """A path this process can open: Vertex AI mounts Cloud Storage at /gcs (gcsfuse); under
    mlcompile's emulator (`--emulate`) the mount is the folder MLCOMPILE_EMULATE_ROOT/gcs."""
    if not uri.startswith("gs://"):
        return uri.removeprefix("file://")
    mount = Path(os.environ["MLCOMPILE_EMULATE_ROOT"], "gcs") if os.environ.get("MLCOMPILE_EMULATE_ROOT") else Path("/gcs")
    return str(mount / uri[len("gs://") :])


def hyperparameters(argv: list[str]) -> dict[str, str]:
    """The trial's values, from every place a platform puts them; later ones win:
    SageMaker's hyperparameters.json, MLCOMPILE_HYPERPARAMETERS, then --NAME=VALUE / --NAME VALUE."""
    values: dict[str, str] = {}
    config = Path(os.environ.get("SM_INPUT_CONFIG_DIR", SAGEMAKER / "input" / "config")) / "hyperparameters.json"
    if config.is_file():
        values.update({k: str(v) for k, v in json.loads(config.read_text()).items()})
    if os.environ.get("MLCOMPILE_HYPERPARAMETERS"):
        values.update({k: str(v) for k, v in json.loads(os.environ["MLCOMPILE_HYPERPARAMETERS"]).items()})
    if argv[:1] == ["train"]:  # SageMaker starts a training image as `docker run IMAGE train`
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="train.py")
    parser.add_argument("--label", default=None)
    known, rest = parser.parse_known_args(argv)
    index = 0
    while index < len(rest):
        item = rest[index]
        if not item.startswith("--"):
            raise SystemExit(f"train.py: unexpected argument {item!r}")
        name, sep, value = item[2:].partition("=")
        if not sep:
            if index + 1 >= len(rest):
                raise SystemExit(f"train.py: {item} needs a value")
            value, index = rest[index + 1], index + 1
        values[name.replace("-", "_")] = value
        index += 1
    if known.label:
        values["label"] = known.label
    return values


def channel(variable: str, name: str) -> str | None:
    """A data set: the contract's variable, else SageMaker's channel folder."""
    if os.environ.get(variable):
        return local(os.environ[variable])
    folder = Path(os.environ.get(f"SM_CHANNEL_{name.upper()}", SAGEMAKER / "input" / "data" / name))
    return str(folder) if folder.is_dir() else None


def read(path: str):  # noqa: ANN201 - a pandas frame
    import pandas as pd

    target = Path(path)
    if target.is_dir():  # a channel folder: every parquet file in it
        return pd.concat([pd.read_parquet(p) for p in sorted(target.glob("*.parquet"))], ignore_index=True)
    return pd.read_parquet(target)


def model_dir() -> Path:
    for variable in ("AIP_MODEL_DIR", "MLCOMPILE_MODEL_DIR", "SM_MODEL_DIR"):
        if os.environ.get(variable):
            return Path(local(os.environ[variable]))
    return SAGEMAKER / "model"


def metrics_path(folder: Path) -> Path:
    """MLCOMPILE_METRICS; in a Vertex AI trial (no MLCOMPILE_METRICS) metrics.json beside
    AIP_MODEL_DIR, where mlcompile's launcher reads the best trial's; SageMaker: in the model."""
    if os.environ.get("MLCOMPILE_METRICS"):
        return Path(local(os.environ["MLCOMPILE_METRICS"]))
    return (folder.parent if os.environ.get("AIP_MODEL_DIR") else folder) / "metrics.json"


def build(features: list[str], categorical: list[str], params: dict[str, str]):  # noqa: ANN201 - a scikit-learn pipeline
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    numeric = [c for c in features if c not in categorical]
    encode = ColumnTransformer(
        [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1), categorical), ("numeric", "passthrough", numeric)],
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(float(params["max_leaf_nodes"])),
        l2_regularization=float(params["l2_regularization"]),
        max_iter=int(float(params["max_iter"])),
        categorical_features=list(range(len(categorical))) or None,
        random_state=0,
    )
    return Pipeline([("encode", encode), ("model", model)])


def as_category(values):  # noqa: ANN001, ANN201 - pandas series
    """Text, with missing values as one more category (the encoder wants one type a column)."""
    return values.astype(object).where(values.notna(), MISSING).astype(str)


def report(metrics: dict[str, float]) -> None:
    """The objective, the way each platform's tuner reads it."""
    for name, value in metrics.items():
        print(f"{name}={value:.6f}", flush=True)  # Katib's StdOut collector; SageMaker's metric regex
    if os.environ.get("CLOUD_ML_TRIAL_ID") or os.environ.get("CLOUD_ML_HP_METRIC_FILE"):  # a Vertex AI tuning trial
        line = {"timestamp": time.time(), "trial": os.environ.get("CLOUD_ML_TRIAL_ID", "0"), "global_step": "0", "checkpoint_path": ""}
        line.update({name: str(value) for name, value in metrics.items()})  # what cloudml-hypertune writes
        path = Path(os.environ.get("CLOUD_ML_HP_METRIC_FILE", "/tmp/hypertune/output.metrics"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps(line) + "\n")
    if os.environ.get("MLFLOW_RUN_ID"):  # Azure ML: its sweep ranks trials by the job's MLflow run
        import mlflow

        mlflow.log_metrics(metrics)


def main(argv: list[str]) -> int:
    import joblib
    from pandas.api.types import is_bool_dtype, is_numeric_dtype
    from sklearn import metrics as sk

    params = {**DEFAULTS, **hyperparameters(argv)}
    label = os.environ.get("MLCOMPILE_LABEL") or params.pop("label", None) or "is_fraud"
    params.pop("label", None)
    train_path = channel("MLCOMPILE_TRAIN_DATA", "train")
    if train_path is None:
        raise SystemExit("train.py: no training set (MLCOMPILE_TRAIN_DATA, or a SageMaker 'train' channel)")
    train = read(train_path)
    test_path = channel("MLCOMPILE_TEST_DATA", "test")
    if test_path is not None:
        test = read(test_path)
    else:  # no held-out set given: keep a fifth of the training set aside
        test = train.sample(frac=0.2, random_state=0)
        train = train.drop(test.index)
    drop = {label, "card_id", "event_ts", "label_ts"}
    features = [c for c in train.columns if c not in drop]
    categorical = [c for c in features if not (is_numeric_dtype(train[c]) or is_bool_dtype(train[c]))]
    log(f"training on {len(train)} rows, {len(features)} features, params {json.dumps({k: params[k] for k in DEFAULTS})}")
    model = build(features, categorical, params)
    for frame in (train, test):  # one plain type a column (parquet gives nullable ones): float, text
        for column in features:
            frame[column] = as_category(frame[column]) if column in categorical else frame[column].astype("float64")
    model.fit(train[features], train[label].astype(int))
    proba = model.predict_proba(test[features])[:, 1]
    truth = test[label].astype(int)
    results = {
        "roc_auc": round(float(sk.roc_auc_score(truth, proba)), 6),
        "average_precision": round(float(sk.average_precision_score(truth, proba)), 6),
        "accuracy": round(float(sk.accuracy_score(truth, (proba >= 0.5).astype(int))), 6),
    }
    folder = model_dir()
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump({"pipeline": model, "features": features, "categorical": categorical}, folder / MODEL_FILE)
    shutil.copy(HERE / "predict.py", folder / "predict.py")
    target = metrics_path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, sort_keys=True) + "\n")
    log(f"model in {folder}, metrics in {target}")
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
