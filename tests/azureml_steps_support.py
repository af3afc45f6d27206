"""Running one node of a built Azure ML pipeline job the way Azure ML runs it: the job is
loaded with azure-ai-ml's own `load_job`, the node's command gets `${{inputs.x}}` replaced by
the input's local path and `${{outputs.x}}` by a path Azure ML would mount (a `uri_folder`
output: a folder that exists before the command starts; a `uri_file` output: a file path in
an existing folder), and the command runs in a shell with the runtime on this machine (its
`python -m …` forked warm, as the emulator runs it).

Cloud URIs the steps read (abfss://…) live under an emulation root (MLCOMPILE_EMULATE_ROOT,
see mlcompile.runtime.emulated_storage)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.emulate.warm_shell import shim_folder
from mlcompile.runtime import PRELOAD_WITH_FEAST

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.([A-Za-z0-9_]+)\}\}")


@dataclass
class NodeRun:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, Path]


def build(example: str, out: Path, profile: str = "targets/azure-prod.yaml") -> Path:
    """The example's build for the profile (written to `out`), as `mlcompile build` writes it."""
    from mlcompile.build import compile_system, resolve_profiles, write_builds

    spec = str(ROOT / "examples" / example / "mlcompile.yaml")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        compilation = compile_system(spec, resolve_profiles(spec, [profile]), render=True, git_commit=None)
        (folder,) = write_builds(compilation.results, out)
    finally:
        os.chdir(cwd)
    return folder


def load_pipeline(build_dir: Path, pipeline: str) -> Any:
    from azure.ai.ml import load_job

    return load_job(str(build_dir / "pipelines" / f"{pipeline}.yml"))


def stage_source(emulate_root: Path, uri: str, csv: Path) -> None:
    """Put a sample csv where the emulated abfss:// URI of a parquet source points."""
    import pandas as pd

    from mlcompile.runtime.emulated_storage import local_path

    target = local_path(uri, emulate_root)
    target.parent.mkdir(parents=True, exist_ok=True)
    pd.read_csv(csv).to_parquet(target, index=False)


def run_node(job: Any, node: str, inputs: dict[str, Path], workdir: Path, env: dict[str, str] | None = None) -> NodeRun:
    """Run `node` of the loaded pipeline job with `inputs` (input name → local path)."""
    workdir.mkdir(parents=True, exist_ok=True)
    found = job.jobs[node]
    from azure.ai.ml.entities import Sweep

    component = found.trial if isinstance(found, Sweep) else found.component  # a sweep node: one trial
    outputs: dict[str, Path] = {}
    for name, output in (component.outputs or {}).items():
        folder = workdir / node / name
        folder.mkdir(parents=True, exist_ok=True)
        outputs[name] = folder if output.type in ("uri_folder", "mltable") else folder / name  # Azure ML mounts an mltable output as a folder

    def substitute(match: re.Match[str]) -> str:
        kind, name = match.groups()
        return str(inputs[name] if kind == "inputs" else outputs[name])

    command = PLACEHOLDER.sub(substitute, component.command)
    # `python -m …` forks from this worker's warm interpreter, as the emulator starts Azure ML's
    # shell lines (mlcompile.emulate.warm_shell); any other `python` is this interpreter
    path = os.pathsep.join((shim_folder(PRELOAD_WITH_FEAST), str(Path(sys.executable).parent), os.environ.get("PATH", "")))
    run_env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT / "src")}
    # a job does not inherit this process's settings (the SDK's current cloud among them)
    for name in [k for k in run_env if k.startswith(("MLFLOW_", "MLCOMPILE_", "AZUREML_"))]:
        del run_env[name]
    run_env.update(env or {})
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=run_env, cwd=workdir, timeout=300)
    return NodeRun(done.returncode, done.stdout, done.stderr, outputs)
