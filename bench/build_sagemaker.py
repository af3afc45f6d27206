"""Overhead of `mlcompile build` for the sagemaker target against the floor: a script that
only imports the SageMaker SDK (2.x) and builds an equivalent hand-written training pipeline
offline (4 processing steps, a training step, a gate condition with a FailStep, a
RegisterModel) and prints its definition.

Whole processes, median of N runs each (default 5), warm file cache (one discarded run):

    python bench/build_sagemaker.py [--runs 5]

mlcompile builds four pipelines and ~30 request bodies for churn-prediction where the floor
builds one pipeline; the target: under 1.5x the floor."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HAND_WRITTEN = r"""
import os
os.environ.update(AWS_EC2_METADATA_DISABLED="true", AWS_DEFAULT_REGION="eu-west-1", SAGEMAKER_SUPPRESS_V2_WARNING="1")
import boto3
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.model import Model
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import PipelineSession
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import ProcessingStep, TrainingStep

session = PipelineSession(boto_session=boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1"), default_bucket="b", sagemaker_config={"SchemaVersion": "1.0"})
session.sagemaker_config = {}
ROLE, IMAGE, OUT = "arn:aws:iam::123456789012:role/r", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rt:1", "s3://b/out"
def processor(step):
    return Processor(role=ROLE, image_uri=IMAGE, instance_count=1, instance_type="ml.m5.large", entrypoint=["python", "-m", "mlcompile.runtime", step], sagemaker_session=session)
def out(name):
    return ProcessingOutput(output_name=name, source=f"/opt/ml/processing/output/{name}", destination=f"{OUT}/{name}")
extract = ProcessingStep("extract-features", processor=processor("extract-features"), outputs=[out("train"), out("test")], job_arguments=["--config", "@c.json"])
validate = ProcessingStep("validate-data", processor=processor("validate-data"), inputs=[ProcessingInput(source=extract.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri, destination="/opt/ml/processing/input/train")], outputs=[out("report")], job_arguments=["--config", "@c.json"])
estimator = Estimator(image_uri=IMAGE, role=ROLE, instance_count=1, instance_type="ml.m5.xlarge", max_run=3600, output_path=OUT, container_entry_point=["python", "-m", "mlcompile.runtime", "train"], container_arguments=["--config", "@c.json"], disable_profiler=True, debugger_hook_config=False, sagemaker_session=session)
train = TrainingStep("train", estimator=estimator, inputs={"train": TrainingInput(extract.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri), "report": TrainingInput(validate.properties.ProcessingOutputConfig.Outputs["report"].S3Output.S3Uri)})
metrics = PropertyFile(name="metrics", output_name="metrics", path="metrics.json")
evaluate = ProcessingStep("evaluate", processor=processor("evaluate"), inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts, destination="/opt/ml/processing/input/model")], outputs=[out("metrics")], property_files=[metrics], job_arguments=["--config", "@c.json"])
gate = ProcessingStep("gate", processor=processor("gate"), outputs=[out("decision")], job_arguments=["--config", "@c.json"])
model = Model(image_uri=IMAGE, model_data=train.properties.ModelArtifacts.S3ModelArtifacts, role=ROLE, sagemaker_session=session)
register = ModelStep("register", step_args=model.register(content_types=["application/json"], response_types=["application/json"], model_package_group_name="churn-classifier", approval_status="PendingManualApproval"))
condition = ConditionStep("gate-roc_auc-min", conditions=[ConditionGreaterThanOrEqualTo(JsonGet(step_name="evaluate", property_file=metrics, json_path="metrics.roc_auc"), 0.78)], if_steps=[register], else_steps=[FailStep("fail", error_message="gate failed")])
print(len(Pipeline("churn-prediction-training", steps=[extract, validate, train, evaluate, gate, condition], sagemaker_session=session).definition()))
"""


def timed(command: list[str], runs: int) -> float:
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # warm-up, discarded
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        floor = timed([sys.executable, "-c", HAND_WRITTEN], args.runs)
        ours = timed(
            [
                sys.executable,
                "-m",
                "mlcompile",
                "-q",
                "build",
                "examples/churn/mlcompile.yaml",
                "-t",
                "targets/aws-prod.yaml",
                "-o",
                out,
                "--git-commit",
                "none",
            ],
            args.runs,
        )
    ratio = ours / floor
    print(f"hand-written SageMaker SDK floor (1 pipeline): {floor:.2f} s")
    print(f"mlcompile build churn for aws-prod (4 pipelines + bodies): {ours:.2f} s  ({ratio:.2f}x the floor)")
    return 0 if ratio < 1.5 or os.environ.get("BENCH_NO_BUDGET") else 1


if __name__ == "__main__":
    sys.exit(main())
