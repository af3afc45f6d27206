"""mlcompile's SageMaker entry (`python -m mlcompile.runtime.sagemaker_entry`), run the way a
SageMaker training job starts a container (`<ENTRYPOINT> train`, /opt/ml/input/config): a
trainer that follows only mlcompile's contract — MLCOMPILE_HYPERPARAMETERS or --NAME=VALUE in,
MLCOMPILE_METRICS out, nothing printed — gets a tuning trial's values and the build's static
hyperparameters, its rank on a multi-instance job, and its objective reaches the log line the
build's metric definition matches."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from mlcompile.targets.sagemaker.layout import metric_definition

# Writes what it was given and its metrics; prints nothing on stdout.
TRAINER = """\
import json, os, sys
seen = {"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k in ("MLCOMPILE_HYPERPARAMETERS", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK", "MLCOMPILE_CHECKPOINT_DIR")}}
with open(os.environ["SEEN"], "w") as handle:
    json.dump(seen, handle)
with open(os.environ["MLCOMPILE_METRICS"], "w") as handle:
    json.dump(json.loads(os.environ.get("METRICS", '{"roc_auc": 0.8731, "accuracy": 0.9, "note": "not a number"}')), handle)
sys.exit(int(os.environ.get("FAIL", "0")))
"""


def start(
    tmp_path: Path, hyperparameters: dict[str, str], arguments: list[str], resources: dict | None = None, **env: str
) -> tuple[subprocess.CompletedProcess[str], dict]:
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    if resources is not None:
        (config / "resourceconfig.json").write_text(json.dumps(resources))
    (tmp_path / "trainer.py").write_text(TRAINER)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLCOMPILE_", "SM_", "RANK", "WORLD_SIZE", "MASTER_"))}
    environment = {**base, "SM_INPUT_CONFIG_DIR": str(config), "MLCOMPILE_METRICS": str(tmp_path / "metrics.json"), "SEEN": str(tmp_path / "seen.json"), **env}
    done = subprocess.run(
        [sys.executable, "-m", "mlcompile.runtime.sagemaker_entry", *arguments], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    seen = json.loads((tmp_path / "seen.json").read_text()) if (tmp_path / "seen.json").exists() else {}
    return done, seen


def test_a_tuning_trial_gets_its_values_as_arguments_and_json_and_reports_the_objective(tmp_path: Path) -> None:
    # as the tuning job writes it: the trial's values and the build's StaticHyperParameters, strings
    hyperparameters = {"learning_rate": "0.05", "max_leaf_nodes": "9", "max_iter": "200", "mlcompile_command": json.dumps(["python", "trainer.py"])}
    done, seen = start(tmp_path, hyperparameters, ["train"])
    assert done.returncode == 0, done.stderr
    assert seen["argv"] == ["--learning_rate=0.05", "--max_iter=200", "--max_leaf_nodes=9"]  # "train" is SageMaker's, not the trainer's
    assert json.loads(seen["env"]["MLCOMPILE_HYPERPARAMETERS"]) == {"learning_rate": 0.05, "max_iter": 200, "max_leaf_nodes": 9}
    (objective,) = re.findall(metric_definition("roc_auc")["Regex"], done.stdout)
    assert float(objective[0]) == 0.8731
    assert re.findall(metric_definition("accuracy")["Regex"], done.stdout)[0][0] == "0.9"


def matched(metric: str, log: str) -> list[str]:
    """What SageMaker reads of `metric` from a training log: its definition's regex searched in
    each line, the first group of each match."""
    regex = re.compile(metric_definition(metric)["Regex"])
    return [found.group(1) for line in log.splitlines() if (found := regex.search(line))]


def test_a_metric_definition_matches_only_its_own_name(tmp_path: Path) -> None:
    # names that contain the objective's name, before or after it, and one with a regex character
    metrics = {"val_roc_auc": 0.51, "roc_auc": 0.8731, "roc_auc_train": 0.99, "train.roc_auc": 0.97, "f1.macro": 0.6, "f1xmacro": 0.1}
    done, _ = start(tmp_path, {"mlcompile_command": json.dumps(["python", "trainer.py"])}, ["train"], METRICS=json.dumps(metrics))
    assert done.returncode == 0, done.stderr
    assert matched("roc_auc", done.stdout) == ["0.8731"]
    assert matched("val_roc_auc", done.stdout) == ["0.51"]
    assert matched("f1.macro", done.stdout) == ["0.6"]


def test_each_instance_of_a_multi_instance_job_gets_its_rank(tmp_path: Path) -> None:
    resources = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "eth0"}
    done, seen = start(tmp_path, {}, ["--", "python", "trainer.py", "--epochs", "6"], resources)
    assert done.returncode == 0, done.stderr
    assert seen["argv"] == ["--epochs", "6"]
    assert seen["env"] == {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "algo-1", "MASTER_PORT": "29500", "LOCAL_RANK": "0"}


def test_a_spot_trial_checkpoints_in_a_folder_of_its_own(tmp_path: Path) -> None:
    """The trials of a tuning job share the CheckpointConfig prefix SageMaker syncs with
    /opt/ml/checkpoints: each trial is given its own folder there, named after its job."""
    (tmp_path / "checkpoints").mkdir()
    done, seen = start(tmp_path, {"mlcompile_command": json.dumps(["python", "trainer.py"])}, ["train"], TRAINING_JOB_NAME="tune-7f3a-003-9c1d2e4f")
    assert done.returncode == 0, done.stderr
    assert seen["env"]["MLCOMPILE_CHECKPOINT_DIR"] == str(tmp_path / "checkpoints" / "tune-7f3a-003-9c1d2e4f")


def test_a_failed_trainer_fails_the_job_and_reports_nothing(tmp_path: Path) -> None:
    done, _ = start(tmp_path, {"mlcompile_command": json.dumps(["python", "trainer.py"])}, ["train"], FAIL="3")
    assert done.returncode == 3
    assert "roc_auc=" not in done.stdout


def test_with_nothing_to_run_it_says_so(tmp_path: Path) -> None:
    done, _ = start(tmp_path, {"learning_rate": "0.1"}, ["train"])
    assert done.returncode != 0 and "nothing to run" in done.stderr
