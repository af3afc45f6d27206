"""`mlcompile run SPEC --target PROFILE --emulate` for a SageMaker profile: the build is
deployed with `mlcompile deploy` into an emulated AWS account (account.py), then its first
day is lived through the account's APIs, as on AWS:

    training (StartPipelineExecution) → gate → RegisterModel
    → a person approves the version (UpdateModelPackage ModelApprovalStatus=Approved)
    → EventBridge's deploy-on-approval rule starts the deploy pipeline (endpoint)
    → batch scoring and monitoring (what the schedules start) with the approved version
    → monitoring breaches: its trigger-retraining step starts the training pipeline
      (StartPipelineExecution), which the emulator runs to its end (the breach alarm fires too).

Step data lives in the emulated S3: folders under the emulation root (storage.py), where the
runtime reads s3:// URIs under MLCOMPILE_EMULATE_ROOT; what deploy writes to S3 (the step
configs) is copied there from moto. The summary has the Kubeflow/Vertex summary's keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcompile.emulate.containers import plan_images
from mlcompile.emulate.ir import PipelineError
from mlcompile.emulate.sagemaker import account
from mlcompile.emulate.sagemaker.jobs import JobContext
from mlcompile.emulate.sagemaker.platform import Platform
from mlcompile.emulate.system import PARALLELISM, Session, _fresh_workdir, emulation_inputs, stage_fixtures
from mlcompile.errors import UsageError
from mlcompile.runtime import emulated_storage as storage

APPROVER = "emulator"
APPROVED = "Approved"


def emulate(
    spec: str,
    compilation: Any,
    workdir: str | None,
    *,
    only: tuple[str, ...],
    isolation: str,
    runs: int,
    approve: bool,
    log: Callable[[str], None],
    started: float,
) -> dict[str, Any]:
    from mlcompile.build import write_builds
    from mlcompile.emulate.summary import summarize

    compiled = compilation.results[0]
    plan = compiled.plan
    kinds, spec_dir, config, first, later = emulation_inputs(spec, compilation, only)
    work = _fresh_workdir(Path(workdir).resolve() if workdir else spec_dir / ".mlcompile" / "emulate" / plan.profile)
    # under --isolation fork, the fork server's imports overlap the deploy into the emulated account
    images = plan_images(plan, config.commands, config.workdirs, isolation)
    write_builds([compiled], work / "build")
    session = Session(plan.system, plan.profile, plan.platform, plan, work / "build" / plan.profile, work / "storage", work, images, config, log=log)
    session.env["MLCOMPILE_SPEC_DIR"] = str(spec_dir)
    region = str(plan.platform_settings["region"])
    with account.moto_account() as url:
        aws = account.environment(url, region)
        session.env.update(aws)
        session.facts["aws"] = {"endpoint": url, "region": region}
        context = JobContext(images, session.root, work, env=session.env, region=region, account=str(plan.platform_settings["role_arn"]).split(":")[4])
        platform = Platform(
            url, region, context.account, context, log=log, on_result=lambda result, cause: session.results.append(result), parallelism=PARALLELISM
        )
        provision(session, platform, aws)
        stage_fixtures(session, first)
        try:
            live(session, platform, kinds, runs, approve, restage=lambda kind: stage_fixtures(session, later.get(kind, [])))
        except PipelineError as exc:
            raise UsageError(f"{session.build}: {exc}") from None
        session.facts.update(facts(session, platform))
        summary = summarize(session)
    summary["seconds"] = round(time.monotonic() - started, 1)
    return summary


def provision(session: Session, platform: Platform, aws: dict[str, str]) -> None:
    """What `mlcompile deploy` leaves in the account (the profile's bucket and the emulation
    config's secrets exist before it), and the step configs it uploaded copied into the
    emulated S3."""
    from mlcompile.targets.sagemaker.deploy import deploy
    from mlcompile.targets.sagemaker.layout import Layout

    layout = Layout.of(session.plan)
    s3 = platform.client("s3")
    s3.create_bucket(Bucket=layout.bucket, CreateBucketConfiguration={"LocationConstraint": layout.region})
    with account.pointed_at(aws):
        actions = deploy(session.plan, session.build, dry_run=False)
    for action in actions:
        session.log(f"deploy: {action.action} {action.resource}" + (f": {action.detail}" if action.detail else ""))
    secrets = platform.client("secretsmanager")
    for name, value in sorted(session.config.secrets.items()):  # what the team stored before deploying
        secrets.create_secret(Name=name, SecretString=value)
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=layout.bucket):
        for item in page.get("Contents", []):
            destination = storage.local_path(f"s3://{layout.bucket}/{item['Key']}", session.root)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(s3.get_object(Bucket=layout.bucket, Key=item["Key"])["Body"].read())


def live(session: Session, platform: Platform, kinds: list[str], runs: int, approve: bool, restage: Callable[[str], None]) -> None:
    """The pipelines a first day starts, in order, and a person's approvals."""
    plan = session.plan
    group = plan.registry.model
    for kind in kinds:
        name = f"{plan.system}-{kind}"
        if kind != "training":
            restage(kind)
        if not platform.has_pipeline(name):
            continue
        if kind != "training":
            reason = unapproved_reason(platform, group) if plan.registry.approval == "manual" else None
            if reason is not None:
                session.skipped[name] = reason
                session.log(f"pipeline {name}: skipped ({reason})")
            else:
                platform.start(name, session.config.parameters.get(name), cause="its schedule")
            continue
        for run in range(runs):
            if run == 1:
                restage("training")
            before = newest(platform, group)
            platform.start(name, session.config.parameters.get(name), cause="its schedule")
            package = newest(platform, group)
            if package is None or (before is not None and package["ModelPackageArn"] == before["ModelPackageArn"]):
                continue  # the gate kept it out: nothing new to approve
            if plan.registry.approval != "manual" or package.get("ModelApprovalStatus") == APPROVED:
                continue
            if not approve:
                session.log(f"{group} version {package['ModelPackageVersion']}: left pending approval (--no-approve)")
                continue
            session.log(f"{group} version {package['ModelPackageVersion']}: approved (UpdateModelPackage)")
            session.facts["approved"] = {"version": str(package["ModelPackageVersion"]), "by": APPROVER}
            platform.approve(package["ModelPackageArn"])


def newest(platform: Platform, group: str) -> dict[str, Any] | None:
    packages = platform.packages_of(group)
    return packages[-1] if packages else None


def unapproved_reason(platform: Platform, group: str) -> str | None:
    if any(p.get("ModelApprovalStatus") == APPROVED for p in platform.packages_of(group)):
        return None
    return f"no approved version of {group}: approve one (UpdateModelPackage ModelApprovalStatus=Approved)"


def facts(session: Session, platform: Platform) -> dict[str, Any]:
    """What the summary reports that only the account knows: the newest registered version,
    what the endpoint serves, the retraining execution a step started."""
    plan = session.plan
    found: dict[str, Any] = {}
    package = newest(platform, plan.registry.model)
    if package is not None:
        found["registered"] = {"model": plan.registry.model, "version": str(package["ModelPackageVersion"]), "registry": "sagemaker"}
    if plan.online is not None:
        served = endpoint_versions(platform, plan.online.name)
        if served is not None:
            found["deployed"] = served
    training = f"{plan.system}-training/execution/"
    submitted = next((arn for arn in platform.submitted if training in arn), None)
    if submitted is not None:  # the summary reads its status, gate, version and tasks from that execution
        found["retraining"] = {"submitted": submitted}
    return found


def endpoint_versions(platform: Platform, endpoint: str) -> dict[str, Any] | None:
    """The model package version the endpoint serves and each version's share of traffic. An
    endpoint updated with a blue/green CANARY deployment is reported in its canary phase."""
    from botocore.exceptions import ClientError

    sagemaker = platform.client("sagemaker")
    try:
        described = sagemaker.describe_endpoint(EndpointName=endpoint)
    except ClientError:
        return None
    weights, instances = config_versions(platform, described["EndpointConfigName"])
    total = sum(weights.values()) or 1.0
    traffic = {version: round(100 * weight / total) for version, weight in weights.items()}
    rollout = account.ROLLOUTS.get((platform.region, endpoint))
    share = canary_share(rollout["deployment"], instances) if rollout and rollout["to"] == described["EndpointConfigName"] else 100
    if share < 100:
        before, _ = config_versions(platform, rollout["from"])  # type: ignore[index]
        old_total = sum(before.values()) or 1.0
        traffic = {version: round(share * weight / total) for version, weight in weights.items()}
        for version, weight in before.items():
            traffic[version] = traffic.get(version, 0) + round((100 - share) * weight / old_total)
    serving = max(weights, key=lambda v: (weights[v], v)) if weights else None
    return {"endpoint": endpoint, "version": serving, "traffic": traffic}


def config_versions(platform: Platform, config_name: str) -> tuple[dict[str, float], int]:
    """Each model package version of an endpoint config with its variants' weight, and the
    config's instance count."""
    sagemaker = platform.client("sagemaker")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    weights: dict[str, float] = {}
    instances = 0
    for variant in config["ProductionVariants"]:
        model = sagemaker.describe_model(ModelName=variant["ModelName"])
        containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
        package = next((c["ModelPackageName"] for c in containers if c.get("ModelPackageName")), None)
        version = package.rsplit("/", 1)[-1] if package else variant["ModelName"]
        weights[version] = weights.get(version, 0.0) + float(variant.get("InitialVariantWeight", 1.0))
        instances += int(variant.get("InitialInstanceCount", 1))
    return weights, instances


def canary_share(deployment: dict[str, Any], instances: int) -> int:
    """The new fleet's percent of traffic in a blue/green CANARY step: SageMaker brings up
    whole instances (a CAPACITY_PERCENT size rounds up to one at least), and traffic spreads
    over instances, so the canary's share is its instances over the fleet's."""
    import math

    routing = (deployment.get("BlueGreenUpdatePolicy") or {}).get("TrafficRoutingConfiguration") or {}
    if routing.get("Type") != "CANARY" or instances <= 0:
        return 100
    size = routing.get("CanarySize") or {}
    value = float(size.get("Value", 1))
    canary = int(value) if size.get("Type") == "INSTANCE_COUNT" else max(1, math.ceil(instances * value / 100))
    return min(100, round(100 * canary / instances))
