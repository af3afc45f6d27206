"""`mlcompile run`: compile the spec for a local profile, execute the plan, summarise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.diagnostics import Severity
from mlcompile.errors import UsageError
from mlcompile.local.executor import Executor, PipelineRun, Reporter
from mlcompile.plan.nodes import Plan


@dataclass
class Prepared:
    plan: Plan
    spec_dir: Path
    workdir: Path
    lineage: dict[str, Any]
    warnings: list[Any]


def prepare(spec: str, target: str | None, workdir: str | None = None, policy_severity: Severity = "error", command: str = "run") -> Prepared:
    from mlcompile.build import compile_system, git_commit_of, select_profiles

    profiles = select_profiles(spec, (target,) if target else (), command)
    platform = profiles.profiles[0].target.platform
    from mlcompile.targets.registry import runs_here

    if not runs_here(platform):
        raise UsageError(
            f"profile '{profiles.profiles[0].name}' is for platform {platform}: `mlcompile run` runs on this machine (a platform: local profile); "
            f"use `mlcompile deploy` for {platform}"
        )
    compilation = compile_system(spec, profiles, render=False, git_commit=None, policy_severity=policy_severity)
    result = compilation.results[0]
    plan = result.plan
    spec_dir = Path(spec).resolve().parent
    from mlcompile.errors import SpecError
    from mlcompile.local.preflight import check_local_sources

    problems = check_local_sources(plan, spec_dir)
    configured = workdir or (plan.platform_settings or {}).get("workdir") or ".mlcompile"
    path = Path(configured)
    if not path.is_absolute():
        path = spec_dir / path
    from mlcompile.local.output_roots import check_output_paths

    problems += check_output_paths(plan, profiles.profiles[0], spec_dir, path, workdir_from_profile=workdir is None)
    if problems:
        raise SpecError(problems)
    lineage = {
        "profile_sha256": plan.lineage.profile_sha256,
        "git_commit": git_commit_of(spec),
    }
    return Prepared(plan, spec_dir, path, lineage, compilation.warnings)


def summarize(executor: Executor) -> dict[str, Any]:
    plan = executor.plan
    pipelines = executor.pipelines
    status = "failed" if any(p.status == "failed" for p in pipelines) else "succeeded"
    summary: dict[str, Any] = {
        "system": plan.system,
        "profile": plan.profile,
        "run_id": executor.run_id,
        "status": status,
        "duration_seconds": round(executor.seconds, 3),
        "startup_seconds": round(executor.startup_seconds, 3),  # starting the step workers (fork server), once per run
        "workdir": str(executor.workdir),
        "run_dir": str(executor.run_dir),
        "registry": {"tracking_uri": executor.tracking_uri, "model": plan.registry.model},
        "pipelines": [
            {
                "name": p.name,
                "label": p.label,
                "reason": p.reason,
                "status": p.status,
                "duration_seconds": round(p.seconds, 3),
                "steps": [s.to_json() for s in p.steps],
            }
            for p in pipelines
        ],
    }
    # what one pass on this machine does not do (said, never silently dropped)
    not_applied = [f"schedule {s.name} ({s.cron} {s.timezone}): each pipeline ran once, now" for s in plan.schedules]
    not_applied += [f"trigger {t.name}: new data in source {t.source} is not watched here" for t in plan.triggers if t.kind == "new_data"]
    if not_applied:
        summary["not_applied"] = not_applied
    trainings = [p for p in pipelines if p.label in ("training", "retraining")]
    first = next((p for p in trainings if p.label == "training"), None)
    if first is not None:
        summary["training"] = _training(first)
        summary.update({k: summary["training"][k] for k in ("metrics", "gates", "model")})
    batch = next((p for p in pipelines if p.label == "batch"), None)
    if batch is not None:
        step = batch.step("score-batch")
        summary["batch"] = (step.result if step and step.result else None) if batch.steps else {"status": batch.status, "reason": batch.reason}
    monitoring = next((p for p in pipelines if p.label == "monitoring"), None)
    if monitoring is not None:
        drift = monitoring.step("check-drift")
        performance = monitoring.step("check-performance")
        summary["drift"] = drift.result if drift and drift.result else None
        summary["performance"] = performance.result if performance and performance.result else None
        trigger = monitoring.step("trigger-retraining")
        retraining = next((p for p in pipelines if p.label == "retraining"), None)
        summary["retraining"] = {
            "triggered": bool(trigger and trigger.status == "succeeded"),
            **({"reasons": (trigger.result or {}).get("reasons", [])} if trigger and trigger.result else {}),
            **(_training(retraining) if retraining else {}),
        }
    materialized = next((s for p in pipelines for s in p.steps if s.kind == "materialize_features" and s.result), None)
    if executor.feast_repo is not None:  # where `mlcompile serve` reads online features from
        summary["feature_store"] = {
            "kind": "feast",
            "repo": str(executor.feast_repo),
            "online_store": str(executor.feast_repo / "data" / "online_store.db"),
            "materialized": (materialized.result or {}).get("materialized") if materialized else None,
        }
    failed = [(p.label, s) for p in pipelines for s in p.steps if s.status == "failed"]
    if failed:
        label, step = failed[0]
        summary["failed_step"] = {"pipeline": label, "step": step.name, "reason": step.reason, "log": step.log, "log_tail": step.log_tail}
    return summary


def _training(run: PipelineRun) -> dict[str, Any]:
    def result(name: str) -> dict[str, Any] | None:
        step = run.step(name)
        return step.result if step and step.status in ("succeeded", "cached") else None

    evaluation = result("evaluate") or {}
    gate = result("gate")
    register = result("register")
    deploy = result("deploy-online")
    trainer = result("tune") or result("train")
    model = None
    if register:
        model = {k: register[k] for k in ("model", "version", "aliases", "approval", "run_id", "existing") if k in register}
        if deploy:
            model["aliases"] = sorted({*model.get("aliases", []), deploy["alias"]})
            model["endpoint"] = deploy["endpoint"]
    return {
        "status": run.status,
        "metrics": evaluation.get("metrics"),
        "production": evaluation.get("production"),
        "trainer": trainer,
        "gates": {"passed": gate["passed"], "results": gate["results"]} if gate else None,
        "model": model,
        "registered": model is not None,
    }


def execute(
    prepared: Prepared, *, only: Sequence[str] = (), resume: bool = False, mode: str = "fork", reporter: Reporter | None = None, retrain: bool = True
) -> dict[str, Any]:
    executor = Executor(
        prepared.plan, prepared.spec_dir, prepared.workdir, only=only, resume=resume, mode=mode, reporter=reporter, lineage=prepared.lineage, retrain=retrain
    )
    executor.run()
    summary = summarize(executor)
    from mlcompile.local.report import render

    report = executor.run_dir / "report.html"
    report.write_text(render(summary))
    summary["report"] = str(report)
    (executor.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")
    return summary
