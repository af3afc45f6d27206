"""train and tune: a scikit-learn estimator by dotted path, or the user's container through
the env-var contract (`mlcompile.runtime.contract.CONTAINER_ENV`).

Tuning uses Optuna: the spec's search space (float/int with linear or log scale,
categorical) maps one to one onto Optuna's `suggest_*`, `algorithm` maps onto its samplers
(bayesian = TPE, random, grid), and a trial budget is what `max_trials` means; scikit-learn's
searches would need the space rewritten as scipy distributions and cannot do TPE."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlcompile.runtime import contract
from mlcompile.runtime.baseline import add_baseline, save_baseline
from mlcompile.runtime.container_model import MANIFEST, describe_trained, write_manifest
from mlcompile.runtime.io import DataError, fingerprint, local_dir, read_json, read_table, table_metadata, write_json
from mlcompile.runtime.metrics import LOWER_IS_BETTER, compute_metrics
from mlcompile.runtime.model import FORMAT_SKLEARN, build_model, is_classifier, model_frame, save_model

CV_FOLDS = 3


def _dataset(inputs: dict[str, str], label: str) -> tuple[Any, dict[str, Any]]:
    train = read_table(inputs["train"])
    meta = table_metadata(inputs["train"])
    if not meta or label not in train.columns:
        raise DataError(f"{inputs['train']}: not a training set with label {label!r}")
    return train, meta


def _model_meta(config: dict[str, Any], inputs: dict[str, str], meta: dict[str, Any], model: Any, params: dict[str, Any]) -> dict[str, Any]:
    report = read_json(inputs["report"]) if inputs.get("report") else {}
    classifier = is_classifier(model)
    return {
        "format": FORMAT_SKLEARN,
        "system": config.get("system"),
        "estimator": config["params"]["estimator"],
        "params": params,
        "features": meta["features"],
        "keys": meta.get("keys", []),
        "timestamp": meta.get("timestamp"),
        "label": config["params"]["label"],
        "task": "classification" if classifier else "regression",
        "classes": [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])] if classifier else [],
        "data": {
            "train_sha256": fingerprint(inputs["train"]),
            "sources": meta.get("sources", {}),
            "events_until": meta.get("events_until"),
            "rows": meta.get("rows"),
        },
        "expectations": report.get("expectations", {}),
        "spec_sha256": config.get("spec_sha256"),
    }


def train(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    if config.get("container"):
        return run_container_trainer(config, inputs, outputs, hyperparameters={})
    params = config["params"]
    label = params["label"]
    frame, meta = _dataset(inputs, label)
    estimator_params = dict(params.get("estimator_params") or {})
    model = build_model(params["estimator"], estimator_params, meta["features"], params.get("estimator_packages", ()))
    started = time.perf_counter()
    model.fit(model_frame(frame, meta["features"]), frame[label].to_numpy())
    fit_seconds = time.perf_counter() - started
    with local_dir(outputs["model"], write=True) as folder:
        save_model(folder, model, _model_meta(config, inputs, meta, model, estimator_params))
        save_baseline(folder, frame, meta, label)
    result = {"fit_seconds": round(fit_seconds, 3), "train_rows": int(len(frame))}
    write_json(outputs["metrics"], result)
    return result


# ---------------------------------------------------------------------- tuning


def _sampler(tuning: dict[str, Any], seed: int) -> Any:
    import optuna

    algorithm = tuning.get("algorithm", "bayesian")
    if algorithm == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if algorithm == "grid":
        return optuna.samplers.GridSampler(_grid(tuning["params"]), seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _grid(space: list[dict[str, Any]], points: int = 5) -> dict[str, list[Any]]:
    import numpy as np

    grid: dict[str, list[Any]] = {}
    for p in space:
        if p["type"] == "categorical":
            grid[p["name"]] = list(p["values"])
        elif p["type"] == "int" and p["max"] - p["min"] < 10:
            grid[p["name"]] = list(range(int(p["min"]), int(p["max"]) + 1))
        else:
            values = np.geomspace(p["min"], p["max"], points) if p.get("scale") == "log" and p["min"] > 0 else np.linspace(p["min"], p["max"], points)
            grid[p["name"]] = sorted({int(round(v)) for v in values}) if p["type"] == "int" else [float(v) for v in values]
    return grid


def _suggest(trial: Any, space: list[dict[str, Any]]) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for p in space:
        log = p.get("scale") == "log"
        if p["type"] == "categorical":
            chosen[p["name"]] = trial.suggest_categorical(p["name"], list(p["values"]))
        elif p["type"] == "int":
            chosen[p["name"]] = trial.suggest_int(p["name"], int(p["min"]), int(p["max"]), log=log)
        else:
            chosen[p["name"]] = trial.suggest_float(p["name"], float(p["min"]), float(p["max"]), log=log)
    return chosen


class TrialValueError(ValueError):
    """A `--hp NAME=VALUE` that names no search parameter or is not one of its values."""


def _trial_value(param: dict[str, Any], text: str) -> Any:
    name = param["name"]
    if param["type"] == "categorical":
        for choice in param["values"]:  # the choice itself, with its type (1 stays an int)
            if str(choice) == text or (isinstance(choice, bool) and text.lower() == str(choice).lower()):
                return choice
        raise TrialValueError(f"--hp {name}={text!r}: not one of its choices {param['values']}")
    try:
        number = float(text)
    except ValueError:
        raise TrialValueError(f"--hp {name}={text!r}: not a number") from None
    if param["type"] == "int":
        if number != round(number):
            raise TrialValueError(f"--hp {name}={text!r}: not an integer")
        return int(round(number))
    return number


def fix_trial(config: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The config of one trial a platform's sweep chose: each search parameter fixed to its
    `--hp` value, one trial. Values arrive as separate arguments, never as JSON built by a shell."""
    tuning = config.get("tuning") or {}
    space = {p["name"]: p for p in tuning.get("params", [])}
    unknown = sorted(set(values) - set(space))
    if unknown:
        raise TrialValueError(f"--hp {', '.join(unknown)}: no such search parameter (known: {', '.join(sorted(space)) or 'none'})")
    fixed = [{"name": name, "type": "categorical", "values": [_trial_value(p, values[name])]} if name in values else p for name, p in space.items()]
    return {**config, "tuning": {**tuning, "params": fixed, "max_trials": 1, "parallel_trials": 1, "algorithm": "random"}}


def tune(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    import optuna

    tuning = config.get("tuning")
    if not tuning:
        raise DataError("tune: the step config has no `tuning` section")
    metric, goal = tuning["metric"], tuning["goal"]
    seed = 0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=goal, sampler=_sampler(tuning, seed))
    params = config["params"]

    if config.get("container"):
        scratch = Path(tempfile.mkdtemp(prefix="mlcompile-trials-"))
        trial_models: dict[int, Path] = {}
        trial_metrics: dict[int, dict[str, Any]] = {}

        def trial_of_container(trial: Any) -> float:
            hyper = _suggest(trial, tuning["params"])
            outs = {"model": str(scratch / f"trial-{trial.number}" / "model"), "metrics": str(scratch / f"trial-{trial.number}" / "metrics.json")}
            metrics = run_container_trainer(config, inputs, outs, hyperparameters=hyper)
            if metric not in metrics:
                raise DataError(f"trial {trial.number}: the container reported no {metric!r} in $MLCOMPILE_METRICS (got {sorted(metrics)})")
            trial_models[trial.number] = Path(outs["model"])
            trial_metrics[trial.number] = metrics
            return float(metrics[metric])

        study.optimize(trial_of_container, n_trials=int(tuning["max_trials"]), n_jobs=max(1, int(tuning.get("parallel_trials", 1))))
        best = study.best_trial
        with local_dir(outputs["model"], write=True) as folder:
            shutil.copytree(trial_models[best.number], folder, dirs_exist_ok=True)
        result = {"best_params": best.params, "best_value": best.value, "objective": metric, "trials": len(study.trials)}
        # the metrics output is what the best trial reported (evaluate's `reported` input), as
        # a platform's tuner hands on its best trial's files
        write_json(outputs["metrics"], {**trial_metrics[best.number], "tuning": result})
        shutil.rmtree(scratch, ignore_errors=True)
        return result

    from sklearn.model_selection import KFold, StratifiedKFold

    label = params["label"]
    frame, meta = _dataset(inputs, label)
    base = dict(params.get("estimator_params") or {})
    packages = params.get("estimator_packages", ())
    probe = build_model(params["estimator"], base, meta["features"], packages)
    folds = (StratifiedKFold if is_classifier(probe) else KFold)(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    X_all = frame.reset_index(drop=True)
    splits = list(folds.split(X_all, X_all[label]))
    names = {p["name"] for p in tuning["params"]}
    unknown = names - set(probe.named_steps["estimator"].get_params())
    if unknown:
        raise DataError(f"tuning params {', '.join(sorted(unknown))} are not parameters of {params['estimator']}")

    # the evaluation's other metrics are scored on the same folds: a platform's tuner records
    # them per trial beside the objective (Katib additionalMetricNames)
    scored = [metric, *(m for m in tuning.get("additional_metrics", []) if m != metric)]

    def objective(trial: Any) -> float:
        hyper = _suggest(trial, tuning["params"])
        scores: dict[str, list[float]] = {m: [] for m in scored}
        for train_idx, valid_idx in splits:
            model = build_model(params["estimator"], {**base, **hyper}, meta["features"], packages)
            part = X_all.iloc[train_idx]
            model.fit(model_frame(part, meta["features"]), part[label].to_numpy())
            fold = compute_metrics(
                scored, model, {"features": meta["features"], "task": "classification" if is_classifier(model) else "regression"}, X_all.iloc[valid_idx], label
            )
            for name in scored:
                scores[name].append(float(fold[name]))
        means = {name: round(sum(values) / len(values), 6) for name, values in scores.items()}
        trial.set_user_attr("metrics", means)
        return float(sum(scores[metric]) / len(scores[metric]))

    study.optimize(objective, n_trials=int(tuning["max_trials"]), n_jobs=max(1, int(tuning.get("parallel_trials", 1))))
    best_params = {**base, **study.best_params}
    model = build_model(params["estimator"], best_params, meta["features"], packages)
    model.fit(model_frame(frame, meta["features"]), frame[label].to_numpy())
    with local_dir(outputs["model"], write=True) as folder:
        save_model(
            folder, model, {**_model_meta(config, inputs, meta, model, best_params), "tuning": {"best_value": study.best_value, "trials": len(study.trials)}}
        )
        save_baseline(folder, frame, meta, label)
    result = {
        **study.best_trial.user_attrs.get("metrics", {}),
        "best_params": study.best_params,
        "best_value": round(float(study.best_value), 6),
        # the objective under its own name: what a platform's tuner reads from a trial
        # (Katib: from this file; Azure ML's sweep: from the run's MLflow metrics)
        metric: round(float(study.best_value), 6),
        "objective": metric,
        "goal": goal,
        "cv_folds": CV_FOLDS,
        "trials": [{"number": t.number, "value": t.value, "params": t.params} for t in study.trials],
        "lower_is_better": metric in LOWER_IS_BETTER,
    }
    write_json(outputs["metrics"], result)
    _log_objective(metric, result[metric])
    return {k: v for k, v in result.items() if k != "trials"} | {"trials": len(study.trials)}


def _log_objective(metric: str, value: float) -> None:
    """Log the objective to the MLflow run the platform opened for this process, if any:
    Azure ML's sweep ranks its trials by the metric each trial's run logged (MLFLOW_RUN_ID is
    set in every Azure ML job). Elsewhere no run is open and nothing is logged."""
    if not os.environ.get("MLFLOW_RUN_ID"):
        return
    import mlflow

    from mlcompile.runtime.mlflow_headers import load_request_header_providers

    load_request_header_providers()
    mlflow.log_metric(metric, value)


# ---------------------------------------------------------------------- container trainer


def _resolve_env(env: dict[str, str]) -> dict[str, str]:
    """The trainer's own env; `secret://name` values are resolved here (mlcompile.runtime.secrets:
    locally from MLCOMPILE_SECRET_<NAME>)."""
    from mlcompile.runtime.secrets import SecretUnavailable, resolve

    resolved = {}
    for key, value in env.items():
        try:
            resolved[key] = resolve(str(value))
        except SecretUnavailable as exc:
            print(f"warning: {key}={value} is not passed to the trainer: {exc}")
    return resolved


def run_container_trainer(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str], hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Run the user's trainer with the contract's environment, then record its model folder
    and metrics. With `docker` on PATH (and MLCOMPILE_CONTAINERS != host) it runs the image;
    otherwise its command runs on this machine, in the spec's folder."""
    container = config["container"]
    with local_dir(outputs["model"], write=True) as model_dir:
        metrics_path = Path(tempfile.mkdtemp(prefix="mlcompile-metrics-")) / "metrics.json"
        env = {
            contract.ENV_TRAIN_DATA: inputs["train"],
            contract.ENV_TEST_DATA: inputs.get("test", ""),
            contract.ENV_VALIDATION_REPORT: inputs.get("report", ""),
            contract.ENV_MODEL_DIR: str(model_dir),
            contract.ENV_METRICS: str(metrics_path),
            contract.ENV_LABEL: config["params"]["label"],
            contract.ENV_HYPERPARAMETERS: json.dumps(hyperparameters, sort_keys=True),
            **_resolve_env(config["params"].get("env") or {}),
        }
        command = [*container.get("command", []), *container.get("args", [])]
        use_docker = shutil.which("docker") and os.environ.get("MLCOMPILE_CONTAINERS", "docker") != "host"
        if use_docker:
            mounts = sorted(
                {str(Path(p).resolve().parent) for p in (inputs["train"], inputs.get("test") or inputs["train"], inputs.get("report") or inputs["train"])}
                | {str(model_dir), str(metrics_path.parent)}
            )
            # `-e NAME` without a value: docker copies it from our environment, so that no
            # value (a resolved secret above all) shows in the command line or the log
            argv = ["docker", "run", "--rm", *[a for m in mounts for a in ("-v", f"{m}:{m}")], *[a for k in env for a in ("-e", k)]]
            argv += [container["image"], *command]
            run_env = {**os.environ, **env}
        else:
            argv = [sys.executable if command and command[0] in ("python", "python3") else command[0], *command[1:]] if command else []
            if not argv:
                raise DataError(f"container {container['image']}: no command to run on this machine (docker is not available)")
            run_env = {**os.environ, **env}
        print(f"running trainer: {shlex.join(argv if use_docker else command)}", flush=True)
        completed = subprocess.run(argv, env=run_env, cwd=os.environ.get("MLCOMPILE_SPEC_DIR") or None, check=False)
        if completed.returncode != 0:
            raise DataError(f"the trainer exited with status {completed.returncode}")
        metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        if not isinstance(metrics, dict):
            raise DataError(f"the trainer wrote {type(metrics).__name__} to $MLCOMPILE_METRICS; expected a JSON object {{metric: value}}")
        if not (model_dir / MANIFEST).exists():
            write_manifest(model_dir, describe_trained(config, inputs, metrics, hyperparameters))
        add_baseline(model_dir, inputs["train"], config["params"]["label"])
    write_json(outputs["metrics"], metrics)
    return metrics
