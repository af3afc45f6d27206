"""Run an example's kubeflow build end to end on this machine with kfp.local
(`SubprocessRunner(use_venv=False)`), through the local-run variant of the build
(mlcompile.targets.kubeflow.local_run): the kfp-gke plan with its sources rebound to the
example's shipped data. Prints a JSON summary. Used by test_target_kubeflow_local_run.py,
which runs it without network (`unshare -n`) where it can.

    python tests/stand_ins/kfp_local_run.py EXAMPLE WORKDIR
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(example: str, workdir: str) -> None:
    from kfp import local

    from mlcompile.build import compile_system, resolve_profiles
    from mlcompile.targets.kubeflow.local_run import local_pipeline

    work = Path(workdir)
    shutil.copytree(ROOT / "examples" / example, work / example)
    spec = str(work / example / "mlcompile.yaml")
    kubeflow = compile_system(spec, resolve_profiles(spec, [str(ROOT / "targets/kfp-gke.yaml")]), render=True, git_commit=None).results[0]
    shipped = compile_system(spec, resolve_profiles(spec, [str(ROOT / "targets/local.yaml")]), render=False, git_commit=None).results[0].plan
    plan = dataclasses.replace(kubeflow.plan, features=shipped.features)  # the shipped data instead of gs://
    tracking = f"sqlite:///{work}/mlflow.db"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(work / "pipeline-root"))
    fn = local_pipeline(plan, plan.training, tracking_uri=tracking, spec_dir=str(work / example), scratch=work)
    fn()
    monitoring = None
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    if plan.monitoring_pipeline is not None and "--monitoring" in sys.argv:
        # monitoring watches the approved version only: a person approves version 1 first
        client.set_registered_model_alias(plan.registry.model, "production", "1")
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(work / "monitoring-root"))
        local_pipeline(plan, plan.monitoring_pipeline, tracking_uri=tracking, spec_dir=str(work / example), scratch=work)()
        (mrun,) = [p for p in (work / "monitoring-root").iterdir() if p.is_dir()]
        monitoring = sorted(p.name for p in mrun.iterdir())
    models = {
        m.name: {"aliases": dict(m.aliases), "versions": len(client.search_model_versions(f"name='{m.name}'"))} for m in client.search_registered_models()
    }
    (run,) = [p for p in (work / "pipeline-root").iterdir() if p.is_dir()]
    tasks = sorted(p.name for p in run.iterdir() if (p / "executor_output.json").exists() or any(p.iterdir()))
    print(json.dumps({"tasks": tasks, "models": models, "compiled": sorted(f.path for f in kubeflow.files), "monitoring": monitoring}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
