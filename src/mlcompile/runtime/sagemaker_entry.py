"""mlcompile's entry point for a container trainer on SageMaker: it turns SageMaker's training
contract into mlcompile's, runs the trainer, and reports its metrics where SageMaker reads them.

    ENTRYPOINT ["python", "-m", "mlcompile.runtime.sagemaker_entry"]       (tuning: the image's)
    ContainerEntrypoint: [python, -m, mlcompile.runtime.sagemaker_entry, --, <command>...]

What it does:

- hyperparameters: SageMaker writes a job's values, every one a string, to
  /opt/ml/input/config/hyperparameters.json — a tuning trial's search values and the build's
  StaticHyperParameters (the spec's `args`, `--name value` → `name`). The trainer gets each as
  a `--NAME=VALUE` argument (the arguments Vertex AI and Katib trials get) and all of them as
  MLCOMPILE_HYPERPARAMETERS (JSON, numbers as numbers). `mlcompile_command` (JSON list) is the
  spec's `command`: what to run, when not given after `--`.
- distributed training: from /opt/ml/input/config/resourceconfig.json (`current_host`, `hosts`),
  RANK / NODE_RANK, WORLD_SIZE / NNODES, LOCAL_RANK=0, MASTER_ADDR (the first host) and
  MASTER_PORT (29500), as torchrun and torch.distributed's env:// read them: one process per
  instance.
- checkpoints (managed spot): MLCOMPILE_CHECKPOINT_DIR, a folder of this training job's own
  under /opt/ml/checkpoints (which SageMaker syncs with the job's CheckpointConfig S3 prefix,
  one prefix for every trial of a tuning job): a trial restarted after a spot interruption
  resumes from its own checkpoints, never from another trial's.
- metrics: once the trainer succeeded, each number in the MLCOMPILE_METRICS file is printed as a
  `name=value` line, which the build's metric definitions (regex) read: a trainer following
  mlcompile's JSON-metrics contract reports its tuning objective without knowing SageMaker.

SageMaker starts a training image as `<entrypoint> train`: that argument is dropped. The
module needs nothing but Python's standard library, so an image without mlcompile may copy
this one file and run it as a script. Its exit status is the trainer's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

COMMAND_KEY = "mlcompile_command"
DEFAULT_MASTER_PORT = "29500"
CONFIG_DIR_ENV = "SM_INPUT_CONFIG_DIR"  # SageMaker's own name for /opt/ml/input/config
DEFAULT_CONFIG_DIR = "/opt/ml/input/config"
DEFAULT_METRICS = "/opt/ml/model/metrics.json"
CHECKPOINTS = "/opt/ml/checkpoints"  # the build's CheckpointConfig LocalPath
CHECKPOINT_ENV = "MLCOMPILE_CHECKPOINT_DIR"


def _config_dir() -> Path:
    return Path(os.environ.get(CONFIG_DIR_ENV) or DEFAULT_CONFIG_DIR)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise SystemExit(f"sagemaker_entry: {path} is not a JSON object")
    return data


def typed(value: Any) -> Any:
    """A hyperparameter as its type: SageMaker passes "0.05", "7", "true", "bf16"."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def hyperparameters(config_dir: Path) -> tuple[list[str] | None, dict[str, str]]:
    """(the spec's command if the build put it there, every other value as a string)."""
    values = {str(k): (v if isinstance(v, str) else json.dumps(v)) for k, v in _read(config_dir / "hyperparameters.json").items()}
    command = values.pop(COMMAND_KEY, None)
    return (json.loads(command) if command else None), values


def distributed_env(config_dir: Path) -> dict[str, str]:
    resources = _read(config_dir / "resourceconfig.json")
    hosts = [str(h) for h in resources.get("hosts") or []]
    current = str(resources.get("current_host") or "")
    if not hosts or current not in hosts:
        return {}
    rank = str(hosts.index(current))
    return {
        "RANK": rank, "NODE_RANK": rank, "WORLD_SIZE": str(len(hosts)), "NNODES": str(len(hosts)), "LOCAL_RANK": "0",
        "MASTER_ADDR": hosts[0], "MASTER_PORT": os.environ.get("MASTER_PORT") or DEFAULT_MASTER_PORT,
    }  # fmt: skip


def trainer_argv(argv: list[str], command: list[str] | None, values: dict[str, str]) -> list[str]:
    if argv and argv[-1] == "train":  # `docker run <image> train`
        argv = argv[:-1]
    if argv and argv[0] == "train":
        argv = argv[1:]
    given = argv[argv.index("--") + 1 :] if "--" in argv else argv
    program = given or command
    if not program:
        raise SystemExit(f"sagemaker_entry: nothing to run: give the trainer's command after `--`, or the build's {COMMAND_KEY} hyperparameter")
    return [*program, *(f"--{name}={value}" for name, value in sorted(values.items()))]


def report(metrics_file: Path) -> None:
    """`name=value` lines of the numbers the trainer wrote to MLCOMPILE_METRICS."""
    try:
        metrics = json.loads(metrics_file.read_text())
    except (OSError, ValueError) as exc:
        print(f"sagemaker_entry: no metrics to report ({metrics_file}: {exc})", file=sys.stderr, flush=True)
        return
    for name, value in sorted(metrics.items() if isinstance(metrics, dict) else []):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            print(f"{name}={float(value):.10g}", flush=True)


def main(argv: list[str] | None = None) -> int:
    config_dir = _config_dir()
    command, values = hyperparameters(config_dir)
    program = trainer_argv(list(sys.argv[1:] if argv is None else argv), command, values)
    env = {**os.environ, **distributed_env(config_dir)}
    checkpoints = config_dir.parent.parent / Path(CHECKPOINTS).name  # /opt/ml/checkpoints beside /opt/ml/input
    if checkpoints.is_dir() and CHECKPOINT_ENV not in env:  # SageMaker made it: the job has a CheckpointConfig
        env[CHECKPOINT_ENV] = str(checkpoints / os.environ.get("TRAINING_JOB_NAME", "job"))
    if values:
        env["MLCOMPILE_HYPERPARAMETERS"] = json.dumps({k: typed(v) for k, v in values.items()}, sort_keys=True)
    print(f"sagemaker_entry: {' '.join(program)}", file=sys.stderr, flush=True)
    status = subprocess.call(program, env=env)
    if status == 0:
        report(Path(env.get("MLCOMPILE_METRICS") or DEFAULT_METRICS))
    return status


if __name__ == "__main__":
    sys.exit(main())
