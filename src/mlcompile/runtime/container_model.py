"""Models a user's container trained: where the runtime finds them, how it describes them, and
how it scores rows with them.

A container trainer writes whatever it likes into `MLCOMPILE_MODEL_DIR` and its metrics into
`MLCOMPILE_METRICS`; it is not asked for mlcompile's `model.json`. The runtime describes the
model instead, from the plan (`contract.container_model`: features, entity keys, label,
predict entry point), which every step that reads a model gets in its config (`model`) and a
serving container in `MLCOMPILE_MODEL_MANIFEST`; register writes that description into the
registered version as its `model.json`.

The predict entry point (`training.trainer.container.predict`) is a program run in the model's
folder, once per loaded model: it reads one JSON object a line on stdin,
`{"instances": [{feature column: value, ...}, ...]}`, and answers each with one line on stdout,
`{"predictions": [...], "scores": [...]}` (`scores`: the positive class's probability of a
binary classifier, or each row's score; left out by a regressor). `{"error": "..."}` fails the
request. Its stderr is the runtime's. Online serving, batch scoring, performance monitoring and
evaluation with `metrics_from: runtime` all score through it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlcompile.runtime.contract import ENV_MODEL_DIR, ENV_MODEL_MANIFEST, FORMAT_CONTAINER
from mlcompile.runtime.io import DataError, fingerprint, is_remote, local_dir, local_path, read_json, table_metadata

MANIFEST = "model.json"
ARCHIVE = "model.tar.gz"  # SageMaker's upload of /opt/ml/model
REPORTED_FILE = "metrics.json"  # the reported metrics' file inside it (MLCOMPILE_METRICS on SageMaker)
BATCH_ROWS = 10_000  # rows per request line when a whole table is scored


def unpack(archive: Path) -> Path:
    """A model.tar.gz unpacked into a new temporary folder (no member outside it)."""
    target = Path(tempfile.mkdtemp(prefix="mlcompile-model-"))
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4: no paths outside the target
            tar.extractall(target, filter="data")
        else:
            tar.extractall(target)
    return target


@contextmanager
def model_folder(uri: str) -> Iterator[Path]:
    """The local folder of a model artifact: a folder, a model.tar.gz (SageMaker's model
    artifact), or the folder a platform downloaded one into (SageMaker names the file the
    input points at after the artifact; the archive is what is there)."""
    if not is_remote(uri):
        path = local_path(uri)
        if path.is_file() and path.name.endswith(".tar.gz"):
            yield unpack(path)
            return
        if not path.exists() and (path.parent / ARCHIVE).is_file():
            yield unpack(path.parent / ARCHIVE)
            return
    with local_dir(uri, write=False) as folder:
        if not (folder / MANIFEST).exists() and (folder / ARCHIVE).is_file():
            yield unpack(folder / ARCHIVE)
        else:
            yield folder


def read_reported(uri: str) -> dict[str, float]:
    """The metrics a container trainer wrote to MLCOMPILE_METRICS, as {name: number}: the file
    itself, or `metrics.json` inside the model.tar.gz that carried it (SageMaker)."""
    path = None if is_remote(uri) else local_path(uri)
    if path is not None and not path.is_file():
        with model_folder(uri) as folder:
            path = folder / REPORTED_FILE if (folder / REPORTED_FILE).is_file() else folder
        if not path.is_file():
            raise DataError(f"{uri}: the trainer wrote no metrics (MLCOMPILE_METRICS)")
    try:
        data = read_json(str(path) if path is not None else uri)
    except ValueError as exc:
        raise DataError(f"{uri}: the trainer's metrics are not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{uri}: the trainer wrote {type(data).__name__} to MLCOMPILE_METRICS; expected a JSON object {{metric: value}}")
    return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def describe(folder: Path, description: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The model's description: its own `model.json` when mlcompile wrote one, otherwise the
    description the step config (or MLCOMPILE_MODEL_MANIFEST) gives of a container-trained model."""
    meta = own_manifest(folder)
    if meta is not None:
        return meta
    if description is None:
        text = (os.environ if environ is None else environ).get(ENV_MODEL_MANIFEST)
        description = json.loads(text) if text else None
    if not description:
        raise DataError(f"{folder}: not a model folder (no {MANIFEST}), and nothing describes it as a container-trained model")
    features = [
        f if isinstance(f, Mapping) else {"ref": f[0], "view": f[0].split(":", 1)[0], "column": f[1], "dtype": f[2]} for f in description.get("features", [])
    ]
    return {**description, "features": features}  # (contract.serving_env's compact form expanded)


def own_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's model.json if mlcompile wrote it (a trainer may have a model.json of its own)."""
    try:
        meta = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and str(meta.get("format", "")).startswith("mlcompile.") else None


def write_manifest(folder: Path, meta: Mapping[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n")


def _argv(entry: Mapping[str, Any]) -> list[str]:
    command = [*entry.get("command", []), *entry.get("args", [])]
    if command and command[0] in ("python", "python3"):  # the runtime's own interpreter
        command[0] = sys.executable
    return command


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


class PredictEntryPoint:
    """A container-trained model, scored by its predict entry point: started on the first
    request, in the model's folder, and kept running; requests take turns."""

    def __init__(self, folder: Path, meta: Mapping[str, Any]):
        self._process: subprocess.Popen[str] | None = None
        entry = meta.get("predict") or {}
        if not entry.get("command"):
            raise DataError(f"{folder}: a model trained by container {meta.get('image')} has no predict entry point "
                            "(training.trainer.container.predict): mlcompile cannot score rows with it")  # fmt: skip
        self.folder, self.argv = folder.resolve(), _argv(entry)  # absolute: the program runs inside it
        self._lock = threading.Lock()

    def _started(self) -> subprocess.Popen[str]:
        if self._process is None or self._process.poll() is not None:
            env = {**os.environ, ENV_MODEL_DIR: str(self.folder)}
            try:
                self._process = subprocess.Popen(self.argv, cwd=self.folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
            except OSError as exc:
                raise DataError(f"predict entry point {shlex.join(self.argv)}: cannot start it ({exc})") from exc
        return self._process

    def _ask(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            process = self._started()
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps({"instances": rows}, allow_nan=False) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if not line:
                status = process.wait(timeout=10)
                raise DataError(f"predict entry point {shlex.join(self.argv)} exited with status {status} without answering")
        try:
            answer = json.loads(line)
        except ValueError:
            raise DataError(f"predict entry point answered {line[:200]!r}, not a JSON line (it must log to stderr, not stdout)") from None
        if not isinstance(answer, dict) or answer.get("error"):
            raise DataError(f"predict entry point: {answer.get('error') if isinstance(answer, dict) else answer!r}")
        predictions, scores = answer.get("predictions"), answer.get("scores")
        if (
            not isinstance(predictions, list)
            or len(predictions) != len(rows)
            or (scores is not None and (not isinstance(scores, list) or len(scores) != len(rows)))
        ):
            raise DataError(f"predict entry point: expected {len(rows)} predictions (and as many scores, if any), got {answer!r:.200}")
        return answer

    def predict_scored(self, X: Any) -> tuple[list[Any], list[float] | None]:
        """(predictions, scores or None) of a model input frame (`model.model_frame`)."""
        records = [{k: _plain(v) for k, v in row.items()} for row in X.to_dict(orient="records")]
        predictions: list[Any] = []
        scores: list[float] | None = []
        for start in range(0, max(len(records), 1), BATCH_ROWS):
            answer = self._ask(records[start : start + BATCH_ROWS])
            predictions += answer["predictions"]
            scores = None if scores is None or answer.get("scores") is None else [*scores, *(float(s) for s in answer["scores"])]
        return predictions, scores

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def __del__(self) -> None:
        self.close()


def frozen_estimator(predictions: list[Any], scores: list[float] | None, y: Any) -> Any:
    """scikit-learn's view of predictions already made: a fitted estimator that answers them,
    so that the runtime's metrics (`metrics.compute_metrics`, scikit-learn's scorers) score a
    container-trained model as they score mlcompile's own. With scores, a classifier whose
    classes are the labels seen (binary: predict_proba from the positive class's score)."""
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    answered = np.asarray(predictions)
    if scores is None:

        class Answered(RegressorMixin, BaseEstimator):
            def fit(self, X: Any, y: Any = None) -> Answered:
                return self

            def predict(self, X: Any) -> Any:
                return answered

        return Answered()
    classes = np.unique(np.concatenate([np.asarray(y).astype(answered.dtype, copy=False), answered]))
    positive = np.asarray(scores, dtype=float)

    class AnsweredClassifier(ClassifierMixin, BaseEstimator):
        classes_ = classes

        def fit(self, X: Any, y: Any = None) -> AnsweredClassifier:
            return self

        def predict(self, X: Any) -> Any:
            return answered

        def predict_proba(self, X: Any) -> Any:
            if len(classes) != 2:
                raise ValueError("the predict entry point gives one score a row: class probabilities are known for binary classifiers only")
            return np.column_stack([1.0 - positive, positive])

    return AnsweredClassifier()


@contextmanager
def registrable(folder: Path, config: Mapping[str, Any], inputs: Mapping[str, str], metrics: Mapping[str, Any]) -> Iterator[Path]:
    """The folder to register: `folder` itself when it describes itself, else a copy of what
    the container trainer wrote with the runtime's model.json and, from the training set (the
    `train` input), the drift baseline beside it."""
    if own_manifest(folder) is not None:
        yield folder
        return
    import shutil

    from mlcompile.runtime.baseline import add_baseline

    if not config.get("model"):
        raise DataError(f"{folder}: not a model folder (no {MANIFEST}), and the step config describes no container-trained model")
    label = str(config["model"].get("label"))
    with tempfile.TemporaryDirectory(prefix="mlcompile-register-") as tmp:
        staged = Path(tmp) / "model"
        shutil.copytree(folder, staged)
        if inputs.get("train"):
            write_manifest(staged, describe_trained({**config, "params": {"label": label}}, dict(inputs), dict(metrics), {}))
            add_baseline(staged, inputs["train"], label)
        else:
            write_manifest(staged, {**config["model"], "metrics": dict(metrics)})
        yield staged


def describe_trained(config: dict[str, Any], inputs: dict[str, str], metrics: dict[str, Any], hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """The runtime's model.json of a container-trained model: the plan's description (config
    `model`: predict entry point, features, keys), what the trainer reported, and the lineage of
    its training set."""
    dataset = table_metadata(inputs["train"])
    container = config.get("container") or {}
    described = config.get("model") or {
        "format": FORMAT_CONTAINER,
        "image": container.get("image"),
        "system": config.get("system"),
        "spec_sha256": config.get("spec_sha256"),
    }
    return {
        **described, "label": config["params"]["label"], "metrics": metrics, "hyperparameters": hyperparameters,
        "features": dataset.get("features") or described.get("features", []), "keys": dataset.get("keys") or described.get("keys", []),
        "timestamp": dataset.get("timestamp"),
        "data": {"train_sha256": fingerprint(inputs["train"]), "sources": dataset.get("sources", {}), "events_until": dataset.get("events_until"), "rows": dataset.get("rows")},
    }  # fmt: skip
