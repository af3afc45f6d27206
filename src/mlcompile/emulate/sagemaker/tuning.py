"""A hyperparameter tuning job as SageMaker runs one: MaxNumberOfTrainingJobs training jobs,
MaxParallelTrainingJobs at a time, each with the StaticHyperParameters plus one draw from the
ParameterRanges (every value a string in hyperparameters.json); the objective is the metric
the MetricDefinitions' regex finds in a trial's log. A trial that prints no objective is
Failed, as on SageMaker; the tuning job fails when no trial gives an objective.

Its properties are DescribeHyperParameterTuningJob's plus the step's TrainingJobSummaries,
best first (SageMaker Pipelines sorts them by the objective: `TrainingJobSummaries[0]` is the
best training job)."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlcompile.emulate.sagemaker.jobs import JobContext, JobFailed, JobResult, run_training

SEED = 17  # the draws are the same on every emulated run


def draw(ranges: Mapping[str, Any], rng: random.Random) -> dict[str, str]:
    """One trial's values from the ranges (Random strategy; Logarithmic scaling draws the log)."""
    values: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges", []):
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        values[spec["Name"]] = repr(_scaled(low, high, spec.get("ScalingType", "Auto"), rng))
    for spec in ranges.get("IntegerParameterRanges", []):
        low, high = int(spec["MinValue"]), int(spec["MaxValue"])
        values[spec["Name"]] = str(min(high, max(low, round(_scaled(low, high, spec.get("ScalingType", "Auto"), rng)))))
    for spec in ranges.get("CategoricalParameterRanges", []):
        values[spec["Name"]] = str(rng.choice(list(spec["Values"])))
    return values


def _scaled(low: float, high: float, scaling: str, rng: random.Random) -> float:
    if scaling in ("Logarithmic", "ReverseLogarithmic") and low > 0:
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    return rng.uniform(low, high)


def run_tuning(context: JobContext, name: str, arguments: Mapping[str, Any]) -> tuple[dict[str, Any], list[JobResult]]:
    """The tuning job's description (with TrainingJobSummaries, best first) and its trials."""
    config = arguments["HyperParameterTuningJobConfig"]
    definition = arguments["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    metric, maximize = objective["MetricName"], objective.get("Type", "Maximize") == "Maximize"
    if not any(d.get("Name") == metric for d in definition.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])):
        raise JobFailed(f"ValidationException: the objective metric {metric} has no MetricDefinition")
    limits = config.get("ResourceLimits", {})
    count, parallel = int(limits.get("MaxNumberOfTrainingJobs", 1)), int(limits.get("MaxParallelTrainingJobs", 1))
    rng = random.Random(SEED)
    trials = []
    for index in range(count):
        values = {**{str(k): str(v) for k, v in (definition.get("StaticHyperParameters") or {}).items()}, **draw(config.get("ParameterRanges", {}), rng)}
        trials.append((f"{name[:27]}-{index + 1:03d}-{index:08x}", {**definition, "HyperParameters": values}))

    def trial(item: tuple[str, Mapping[str, Any]]) -> JobResult | str:
        try:
            return run_training(context, item[0], item[1])
        except JobFailed as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        outcomes = list(pool.map(trial, trials))
    summaries, done = [], []
    for (job, request), outcome in zip(trials, outcomes):
        summary: dict[str, Any] = {"TrainingJobName": job, "TunedHyperParameters": dict(request["HyperParameters"])}
        if isinstance(outcome, str):
            summary.update(TrainingJobStatus="Failed", FailureReason=outcome)
        elif metric not in outcome.metrics:
            summary.update(
                TrainingJobStatus="Failed", FailureReason=f"the objective metric {metric} was not found in the training log (regex of its MetricDefinition)"
            )
        else:
            done.append(outcome)
            summary.update(
                TrainingJobStatus="Completed",
                FinalHyperParameterTuningJobObjectiveMetric={"MetricName": metric, "Value": outcome.metrics[metric]},
                TrainingJobArn=outcome.description["TrainingJobArn"],
            )
        summaries.append(summary)
    ranked = sorted(
        (s for s in summaries if "FinalHyperParameterTuningJobObjectiveMetric" in s),
        key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
        reverse=maximize,
    )
    if not ranked:
        reasons = "; ".join(f"{s['TrainingJobName']}: {s.get('FailureReason')}" for s in summaries)
        raise JobFailed(f"No training job succeeded with an objective metric ({reasons})")
    description = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob": ranked[0],
        "TrainingJobSummaries": ranked + [s for s in summaries if s not in ranked],
    }
    return description, done
