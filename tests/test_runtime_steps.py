"""The runtime's step contract (`python -m mlcompile.runtime <step> …`), step functions
called directly (tuning, container trainers, drift scores), and the import budget."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlcompile.runtime import STEPS, TARGET_STEPS, step_function
from mlcompile.runtime.io import write_table

np = pytest.importorskip("numpy")  # the `local` extra's stack
pd = pytest.importorskip("pandas")
for _module in ("sklearn", "pyarrow", "optuna", "scipy"):
    pytest.importorskip(_module)

PLAN_KINDS = (
    "extract_features", "validate_data", "train", "tune", "evaluate", "gate", "register", "deploy_online",
    "score_batch", "check_drift", "check_performance", "alert", "trigger_retraining",
)  # fmt: skip


def test_every_plan_step_kind_has_an_entry_point() -> None:
    from typing import get_args

    from mlcompile.plan.nodes import StepKind

    # the plan also holds the steps platforms add (Platform.extend_plan), which the runtime
    # runs as target steps
    assert set(get_args(StepKind)) == set(PLAN_KINDS) | set(TARGET_STEPS)
    assert set(PLAN_KINDS) == set(STEPS)
    for kind in get_args(StepKind):
        assert callable(step_function(kind)) and step_function(kind.replace("_", "-")) is step_function(kind)


def test_runtime_package_and_contract_import_light() -> None:
    code = "import sys, mlcompile.runtime, mlcompile.runtime.contract, mlcompile.runtime.__main__; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'sklearn', 'numpy', 'mlflow', 'pyarrow', 'scipy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"


def _frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "k": [f"e{i}" for i in range(n)],
            "ts": "2025-01-01T00:00:00Z",
            "x": x,
            "c": rng.choice(["a", "b"], size=n),
            "y": (x + rng.normal(scale=0.5, size=n) > 0).astype(int),
        }
    )


def _dataset(tmp_path: Path) -> dict[str, str]:
    meta = {
        "features": [{"ref": "v:x", "view": "v", "column": "x", "dtype": "float64"}, {"ref": "v:c", "view": "v", "column": "c", "dtype": "string"}],
        "label": "y", "timestamp": "ts", "keys": ["k"], "sources": {}, "rows": {}, "coercion": {},
    }  # fmt: skip
    paths = {"train": str(tmp_path / "train.parquet"), "test": str(tmp_path / "test.parquet")}
    write_table(paths["train"], _frame(160, 0), meta)
    write_table(paths["test"], _frame(60, 1), meta)
    return paths


def test_cli_contract_runs_a_step_and_reports_errors(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    config = {"system": "s", "step": "validate-data", "kind": "validate_data", "params": {"label": "y"}}
    result = tmp_path / "result.json"
    argv = [sys.executable, "-m", "mlcompile.runtime", "validate-data", "--config", json.dumps(config),
            "--input", f"train={data['train']}", "--input", f"test={data['test']}", "--output", f"report={tmp_path / 'out' / 'report.json'}"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "MLCOMPILE_STEP_RESULT": str(result)})
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["passed"] and report["expectations"]["c"]["values"] == ["a", "b"]
    assert json.loads(result.read_text())["result"]["passed"] is True
    bad = subprocess.run([sys.executable, "-m", "mlcompile.runtime", "no-such-step", "--config", "{}"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown step" in bad.stderr
    missing = subprocess.run([*argv[:6], "--input", f"train={tmp_path / 'nope.parquet'}", "--input", f"test={data['test']}", "--output", f"report={tmp_path / 'r.json'}"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 1 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_train_evaluate_gate_and_tune_direct(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"expectations": {}}))
    params = {"label": "y", "estimator": "sklearn.linear_model.LogisticRegression", "estimator_params": {"C": 1.0}}
    outs = {"model": str(tmp_path / "model"), "metrics": str(tmp_path / "train.json")}
    step_function("train")({"params": params}, {"train": data["train"], "report": str(tmp_path / "report.json")}, outs)
    assert (tmp_path / "model" / "model.joblib").exists() and (tmp_path / "model" / "baseline.parquet").exists()
    evaluation = step_function("evaluate")(
        {"params": {"metrics": ["roc_auc", "accuracy", "f1", "log_loss"], "label": "y"}},
        {"model": outs["model"], "test": data["test"]},
        {"metrics": str(tmp_path / "eval.json")},
    )
    assert evaluation["metrics"]["roc_auc"] > 0.8 and evaluation["production"] is None
    gates = [
        {"metric": "roc_auc", "comparison": "min", "threshold": 0.8},
        {"metric": "log_loss", "comparison": "max", "threshold": 0.01},
        {"metric": "roc_auc", "comparison": "min_delta_vs_production", "threshold": 0.0},
    ]
    decision = step_function("gate")({"gates": gates, "params": {}}, {"metrics": str(tmp_path / "eval.json")}, {"decision": str(tmp_path / "decision.json")})
    assert [r["passed"] for r in decision["results"]] == [True, False, True] and decision["decision"] is False
    tuning = {"metric": "roc_auc", "goal": "maximize", "max_trials": 4, "parallel_trials": 1, "algorithm": "bayesian",
              "params": [{"name": "C", "type": "float", "min": 0.01, "max": 10.0, "scale": "log", "values": []},
                         {"name": "fit_intercept", "type": "categorical", "min": None, "max": None, "scale": None, "values": [True, False]}]}  # fmt: skip
    tuned = step_function("tune")(
        {"params": params, "tuning": tuning},
        {"train": data["train"], "report": str(tmp_path / "report.json")},
        {"model": str(tmp_path / "tuned"), "metrics": str(tmp_path / "tune.json")},
    )
    assert tuned["trials"] == 4 and 0.01 <= tuned["best_params"]["C"] <= 10 and tuned["best_value"] > 0.8
    assert json.loads((tmp_path / "tuned" / "model.json").read_text())["params"]["C"] == tuned["best_params"]["C"]


def test_container_trainer_contract_on_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _dataset(tmp_path)
    trainer = tmp_path / "trainer.py"
    trainer.write_text(textwrap.dedent("""
        import json, os, pathlib, pandas as pd
        frame = pd.read_parquet(os.environ["MLCOMPILE_TRAIN_DATA"])
        out = pathlib.Path(os.environ["MLCOMPILE_MODEL_DIR"]); out.mkdir(parents=True, exist_ok=True)
        (out / "weights.txt").write_text(str(len(frame)))
        hyper = json.loads(os.environ["MLCOMPILE_HYPERPARAMETERS"])
        score = 0.5 + hyper.get("lr", 0.1)
        with open(os.environ["MLCOMPILE_METRICS"], "w") as metrics:
            json.dump({"ndcg_at_10": score, "label": os.environ["MLCOMPILE_LABEL"], "secret": os.environ.get("TOKEN_VALUE", "")}, metrics)
        os._exit(0)  # pyarrow's parquet threads can abort interpreter shutdown (apache/arrow#34314): exit 134, seen here once
    """))  # fmt: skip
    monkeypatch.setenv("MLCOMPILE_CONTAINERS", "host")
    monkeypatch.setenv("MLCOMPILE_SECRET_RANKER_TOKEN", "s3cr3t")
    config = {
        "params": {"label": "y", "env": {"TOKEN_VALUE": "secret://ranker-token"}},
        "container": {"image": "example/trainer:1", "command": ["python", str(trainer)], "args": []},
    }
    metrics = step_function("train")(config, {"train": data["train"], "report": ""}, {"model": str(tmp_path / "m"), "metrics": str(tmp_path / "m.json")})
    assert metrics == {"ndcg_at_10": 0.6, "label": "y", "secret": "s3cr3t"}
    assert (tmp_path / "m" / "weights.txt").read_text() == "160"
    evaluation = step_function("evaluate")(
        {"params": {"metrics": ["ndcg_at_10"], "label": "y"}}, {"model": str(tmp_path / "m"), "test": data["test"]}, {"metrics": str(tmp_path / "e.json")}
    )
    assert evaluation["metrics"] == {"ndcg_at_10": 0.6}
    tuning = {"metric": "ndcg_at_10", "goal": "maximize", "max_trials": 3, "parallel_trials": 1, "algorithm": "random",
              "params": [{"name": "lr", "type": "float", "min": 0.0, "max": 0.4, "scale": "linear", "values": []}]}  # fmt: skip
    tuned = step_function("tune")(
        {**config, "tuning": tuning}, {"train": data["train"], "report": ""}, {"model": str(tmp_path / "t"), "metrics": str(tmp_path / "t.json")}
    )
    assert tuned["trials"] == 3 and tuned["best_value"] == pytest.approx(0.5 + tuned["best_params"]["lr"])


@pytest.mark.parametrize("method", ["psi", "ks", "jensen_shannon", "wasserstein"])
def test_drift_scores_separate_same_from_shifted(method: str) -> None:
    from mlcompile.runtime.monitoring import drift_score

    rng = np.random.default_rng(0)
    base = rng.normal(size=3000)
    same, _, _, _ = drift_score(method, base, rng.normal(size=3000), True)
    shifted, _, _, _ = drift_score(method, base, rng.normal(loc=1.0, size=3000), True)
    assert same < 0.1 < shifted
    categorical, _, _, _ = drift_score(method, np.array(["a"] * 50 + ["b"] * 50), np.array(["a"] * 90 + ["b"] * 10), False)
    assert (categorical is None) == (method in ("ks", "wasserstein"))


def test_run_and_serve_help_are_light() -> None:
    code = (
        "import sys\nfrom mlcompile.cli import main\n"
        "for args in (['run', '--help'], ['serve', '--help']):\n"
        "    try:\n        main(args, prog_name='mlcompile')\n    except SystemExit as exc:\n        assert exc.code in (0, None)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'sklearn', 'mlflow', 'pyarrow', 'scipy', 'rich', 'starlette', 'pydantic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "--only STEP" in out and "--resume" in out
    assert out.strip().splitlines()[-1] == "[]"
