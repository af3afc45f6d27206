"""Helpers the container-trainer test modules share (no tests here): the card-fraud example's
training and test sets as extract-features writes them, and its trainer run as a platform runs
it (a subprocess, with only the environment and arguments that platform gives)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlcompile.build import compile_system, resolve_profiles
from mlcompile.plan.nodes import Plan

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "container-trainer"
TRAINER = EXAMPLE / "trainer" / "train.py"


def example_plan(profile: str = "local", spec: Path = EXAMPLE / "mlcompile.yaml") -> Plan:
    compilation = compile_system(str(spec), resolve_profiles(str(spec), [str(ROOT / "targets" / f"{profile}.yaml")]), render=False)
    return compilation.results[0].plan


def extract(folder: Path) -> dict[str, str]:
    """The example's train and test sets (parquet with mlcompile's metadata), by the runtime's
    own extract-features step."""
    from mlcompile.plan.step_config import step_config
    from mlcompile.runtime import step_function

    plan = example_plan()
    step = plan.training.step("extract-features")
    outputs = {"train": str(folder / "train.parquet"), "test": str(folder / "test.parquet")}
    previous = os.environ.get("MLCOMPILE_SPEC_DIR")
    os.environ["MLCOMPILE_SPEC_DIR"] = str(EXAMPLE)
    try:
        step_function("extract_features")(step_config(plan, step), {}, outputs)
    finally:
        if previous is None:
            os.environ.pop("MLCOMPILE_SPEC_DIR", None)
        else:
            os.environ["MLCOMPILE_SPEC_DIR"] = previous
    return outputs


def run_trainer(env: dict[str, str], args: list[str] = (), cwd: Path = EXAMPLE) -> subprocess.CompletedProcess[str]:  # type: ignore[assignment]
    """train.py as a platform starts it: this interpreter, the given environment on top of a
    clean one (no MLCOMPILE_*, SM_*, AIP_*, CLOUD_ML_* or MLflow variables of the test run)."""
    platform_prefixes = ("MLCOMPILE_", "SM_", "AIP_", "CLOUD_ML_", "MLFLOW_")
    base: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith(platform_prefixes)}
    return subprocess.run([sys.executable, str(TRAINER), *args], env={**base, **env}, cwd=cwd, capture_output=True, text=True, timeout=240)
