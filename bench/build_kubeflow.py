"""Overhead of `mlcompile build` for the kubeflow target against the floor: a script that only
imports kfp and compiles the equivalent hand-written pipelines (the churn example's training,
batch-scoring, monitoring and new-data sensor pipelines: same container steps, typed
artifacts, dsl.If gates, resources, node/timeout settings through kfp-kubernetes).

Whole processes, interleaved, median of N runs each (default 5), warm file cache (one
discarded run):

    python bench/build_kubeflow.py [--runs 5]

The target: mlcompile's build costs under 1.5x the hand-written floor."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HAND_WRITTEN = r"""
import sys
from kfp import compiler, dsl, kubernetes
from kfp.dsl import Dataset, Input, Metrics, Model, Output, OutputPath, Artifact

IMAGE = "ghcr.io/acme/mlcompile-runtime:0.1.0"
RUN = ["python", "-m", "mlcompile.runtime"]
CONFIG = '{"system":"churn-prediction"}'


@dsl.container_component
def extract_features(train: Output[Dataset], test: Output[Dataset]):
    return dsl.ContainerSpec(IMAGE, [*RUN, "extract-features"], ["--config", CONFIG, "--output", f"test={test.path}", "--output", f"train={train.path}"])


@dsl.container_component
def validate_data(train: Input[Dataset], test: Input[Dataset], report: Output[Artifact]):
    return dsl.ContainerSpec(IMAGE, [*RUN, "validate-data"], ["--config", CONFIG, "--input", f"test={test.path}", "--input", f"train={train.path}", "--output", f"report={report.path}"])


@dsl.container_component
def train(train: Input[Dataset], test: Input[Dataset], report: Input[Artifact], model: Output[Model], metrics: Output[Metrics]):
    return dsl.ContainerSpec(IMAGE, [*RUN, "train"], ["--config", CONFIG, "--input", f"report={report.path}", "--input", f"test={test.path}", "--input", f"train={train.path}", "--output", f"metrics={metrics.path}", "--output", f"model={model.path}"])


@dsl.container_component
def evaluate(model: Input[Model], test: Input[Dataset], metrics: Output[Metrics]):
    return dsl.ContainerSpec(IMAGE, [*RUN, "evaluate"], ["--config", CONFIG, "--input", f"model={model.path}", "--input", f"test={test.path}", "--output", f"metrics={metrics.path}"])


@dsl.container_component
def gate(metrics: Input[Metrics], decision: OutputPath(bool)):
    return dsl.ContainerSpec(IMAGE, ["python", "-m", "mlcompile.runtime.run_step", "gate"], ["--decision", "decision", "--config", CONFIG, "--input", f"metrics={metrics.path}", "--output", f"decision={decision}"])


@dsl.container_component
def register(model: Input[Model], metrics: Input[Metrics]):
    return dsl.ContainerSpec(IMAGE, [*RUN, "register"], ["--config", CONFIG, "--input", f"metrics={metrics.path}", "--input", f"model={model.path}"])


@dsl.container_component
def score_batch(scores: Output[Dataset]):
    return dsl.ContainerSpec(IMAGE, [*RUN, "score-batch"], ["--config", CONFIG, "--output", f"scores={scores.path}"])


@dsl.container_component
def check_drift(drift: OutputPath(bool)):
    return dsl.ContainerSpec(IMAGE, ["python", "-m", "mlcompile.runtime.run_step", "check-drift"], ["--decision", "drift", "--config", CONFIG, "--output", f"drift={drift}"])


@dsl.container_component
def check_performance(performance: OutputPath(bool)):
    return dsl.ContainerSpec(IMAGE, ["python", "-m", "mlcompile.runtime.run_step", "check-performance"], ["--decision", "performance", "--config", CONFIG, "--output", f"performance={performance}"])


@dsl.container_component
def alert():
    return dsl.ContainerSpec(IMAGE, [*RUN, "alert"], ["--config", CONFIG])


@dsl.container_component
def trigger_retraining():
    return dsl.ContainerSpec(IMAGE, [*RUN, "trigger-retraining"], ["--config", CONFIG])


def standard(task, cpu="2", memory="8Gi"):
    task.set_cpu_request(cpu).set_cpu_limit(cpu).set_memory_request(memory).set_memory_limit(memory)
    kubernetes.set_timeout(task, 3600)
    return task


@dsl.pipeline(name="churn-prediction-training", pipeline_root="gs://acme-ml-kfp/pipeline-root")
def training():
    features = standard(extract_features()).set_caching_options(False)
    validated = standard(validate_data(train=features.outputs["train"], test=features.outputs["test"]))
    trained = standard(train(train=features.outputs["train"], test=features.outputs["test"], report=validated.outputs["report"]), "4", "16Gi")
    evaluated = standard(evaluate(model=trained.outputs["model"], test=features.outputs["test"]))
    gated = standard(gate(metrics=evaluated.outputs["metrics"])).set_caching_options(False)
    with dsl.If(gated.outputs["decision"] == True, name="gate-passed"):
        standard(register(model=trained.outputs["model"], metrics=evaluated.outputs["metrics"])).set_caching_options(False)


@dsl.pipeline(name="churn-prediction-batch-scoring", pipeline_root="gs://acme-ml-kfp/pipeline-root")
def batch():
    score_batch().set_cpu_limit("1").set_memory_limit("4Gi").set_caching_options(False)


@dsl.pipeline(name="churn-prediction-monitoring", pipeline_root="gs://acme-ml-kfp/pipeline-root")
def monitoring():
    drift = standard(check_drift())
    performance = standard(check_performance())
    with dsl.If(drift.outputs["drift"] == True):
        standard(alert())
        standard(trigger_retraining())
    with dsl.Elif(performance.outputs["performance"] == True):
        standard(alert())
        standard(trigger_retraining())


@dsl.pipeline(name="churn-prediction-retrain-on-new-data-sensor", pipeline_root="gs://acme-ml-kfp/pipeline-root")
def sensor():
    standard(trigger_retraining())


out = sys.argv[1]
for fn in (training, batch, monitoring, sensor):
    compiler.Compiler().compile(fn, f"{out}/{fn.name}.yaml")
"""


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "hand_written.py"
        script.write_text(HAND_WRITTEN)
        hand = [sys.executable, str(script), scratch]
        build = [
            sys.executable,
            "-m",
            "mlcompile",
            "build",
            "examples/churn/mlcompile.yaml",
            "-t",
            "targets/kfp-gke.yaml",
            "-o",
            f"{scratch}/out",
            "--git-commit",
            "none",
        ]
        timed(hand), timed(build)  # warm the file cache
        hands, builds = [], []
        for _ in range(args.runs):  # interleaved, so load changes hit both alike
            hands.append(timed(hand))
            builds.append(timed(build))
        floor, ours = statistics.median(hands), statistics.median(builds)
    print(f"hand-written kfp script: {floor:.3f} s (median of {args.runs})")
    print(f"mlcompile build (kubeflow, churn): {ours:.3f} s (median of {args.runs})")
    print(f"ratio: {ours / floor:.2f}x (target < 1.5x)")


if __name__ == "__main__":
    main()
