"""`mlcompile deploy` for SageMaker: upsert what a build describes through boto3 (not the
SageMaker SDK), idempotently — each resource is described first, compared with the build,
and created, updated or left alone; a second deploy of the same build reports every
resource `unchanged`.

Order: step configs (S3, content-addressed), model package group, feature groups of the
online views, pipelines, schedule group + schedules, the email alerts' SNS topic and
subscriptions, alarms, rules + their targets. The
serving bodies (model, endpoint config, endpoint, autoscaling) are not deployed here: an
endpoint exists once a version is approved, and the deploy-online step creates or rolls it
(see docs/targets/sagemaker.md).

Credentials and endpoints come from the usual AWS chain (AWS_PROFILE, AWS_ENDPOINT_URL, …);
the region is the profile's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcompile.errors import CredentialsMissing
from mlcompile.plan.nodes import Plan
from mlcompile.runtime.retries import RetryingClient, RetrySettings, create_once
from mlcompile.targets.base import DeployAction, DeployFailed, live_fingerprint, not_applied
from mlcompile.targets.sagemaker.layout import Layout
from mlcompile.targets.sagemaker.render import PIPELINE_DEFINITION, STEP_CONFIG, compact

IGNORED_IN_COMPARISON = {"Tags", "ClientToken", "ClientRequestToken"}
PLATFORM = "SageMaker (AWS)"
LOGIN = "log in with `aws sso login` (AWS_PROFILE naming the profile), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
# what AWS answers for a key or session token that is wrong or expired (not a missing permission)
CREDENTIAL_ERRORS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "InvalidToken",
        "RequestExpired",
        "AuthFailure",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)


def deploy(plan: Plan, build_dir: Path, *, dry_run: bool) -> list[DeployAction]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    layout = Layout.of(plan)
    manifest = json.loads((build_dir / "manifest.json").read_text())
    by_kind: dict[str, list[tuple[str, Any]]] = {}
    for entry in manifest["files"]:
        raw = (build_dir / entry["path"]).read_text()
        by_kind.setdefault(entry["kind"], []).append((entry["path"], json.loads(raw)))
    session = boto3.Session(region_name=layout.region)
    deployer = _Deployer(session, layout, by_kind, dry_run)
    try:
        if session.get_credentials() is None:
            raise CredentialsMissing(PLATFORM, "no credentials found", LOGIN)
        return deployer.run()
    except (ClientError, BotoCoreError) as exc:
        problem = _credentials_problem(exc)
        if problem:
            raise CredentialsMissing(PLATFORM, problem, LOGIN) from exc
        raise DeployFailed(str(exc), applied=deployer.actions, not_applied=not_applied(planned(plan, build_dir), deployer.actions)) from exc


def _credentials_problem(exc: Exception) -> str | None:
    """What is wrong with the credentials, when that is what `exc` says (else None)."""
    from botocore import exceptions

    if isinstance(exc, (exceptions.NoCredentialsError, exceptions.PartialCredentialsError)):
        return "no complete credentials found"
    if isinstance(exc, (exceptions.SSOError, exceptions.SSOTokenLoadError, exceptions.TokenRetrievalError)):
        return "the SSO session has expired or was never started"
    if isinstance(exc, exceptions.ClientError) and exc.response.get("Error", {}).get("Code") in CREDENTIAL_ERRORS:
        return f"the credentials were refused ({exc.response['Error']['Code']})"
    return None


def planned(plan: Plan, build_dir: Path) -> list[str]:
    """Every resource a deploy of this build applies, in order (for the failure summary)."""
    layout = Layout.of(plan)
    by_kind: dict[str, list[tuple[str, Any]]] = {}
    for entry in json.loads((build_dir / "manifest.json").read_text())["files"]:
        by_kind.setdefault(entry["kind"], []).append((entry["path"], json.loads((build_dir / entry["path"]).read_text())))

    def bodies(kind: str) -> list[Any]:
        return [body for _, body in sorted(by_kind.get(kind, []), key=lambda item: item[0])]

    resources = [f"step config {layout.config_uri(Path(path).stem)}" for path, _ in sorted(by_kind.get(STEP_CONFIG, []))]
    resources += [f"model package group {b['ModelPackageGroupName']}" for b in bodies("sagemaker.create_model_package_group")]
    resources += [f"feature group {b['FeatureGroupName']}" for b in bodies("sagemaker.create_feature_group")]
    resources += [f"pipeline {b['PipelineName']}" for b in bodies("sagemaker.create_pipeline")]
    resources += [f"schedule group {b['Name']}" for b in bodies("scheduler.create_schedule_group")]
    resources += [f"schedule {b['Name']}" for b in bodies("scheduler.create_schedule")]
    resources += [f"topic {b['Name']}" for b in bodies("sns.create_topic")]
    resources += [f"subscription {b['Endpoint']} to {b['TopicArn'].rsplit(':', 1)[-1]}" for b in bodies("sns.subscribe")]
    resources += [f"alarm {b['AlarmName']}" for b in bodies("cloudwatch.put_metric_alarm")]
    targets = {b["Rule"] for b in bodies("events.put_targets")}
    for body in bodies("events.put_rule"):
        resources += [f"rule {body['Name']}"] + ([f"rule {body['Name']} targets"] if body["Name"] in targets else [])
    return resources


def _found(describe: Callable[[], Any]) -> Any:
    """What `describe` answers, or None when the resource does not exist."""
    from botocore.exceptions import ClientError

    try:
        return describe()
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (400, 404) or "NotFound" in str(exc.response.get("Error", {}).get("Code")):
            return None
        raise


def _compared(wanted: Any, actual: Any) -> Any:
    """The live values the comparison with `wanted` reads: `actual` at the keys the build sets."""
    if isinstance(wanted, dict) and isinstance(actual, dict):
        return {k: _compared(v, actual.get(k)) for k, v in wanted.items() if k not in IGNORED_IN_COMPARISON}
    if isinstance(wanted, list) and isinstance(actual, list):
        return [_compared(w, a) for w, a in zip(wanted, actual)] + actual[len(wanted) :]
    return actual


def _subset(wanted: Any, actual: Any) -> bool:
    """Every value the build sets is what the platform has (the platform may add defaults)."""
    if isinstance(wanted, dict):
        return isinstance(actual, dict) and all(k in IGNORED_IN_COMPARISON or _subset(v, actual.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(actual, list) and len(wanted) == len(actual) and all(_subset(w, a) for w, a in zip(wanted, actual))
    if isinstance(wanted, float) or isinstance(actual, float):
        return actual is not None and float(wanted) == float(actual)
    return wanted == actual


class _Deployer:
    def __init__(self, session: Any, layout: Layout, files: dict[str, list[tuple[str, Any]]], dry_run: bool):
        self.session, self.layout, self.files, self.dry_run = session, layout, files, dry_run
        self.clients: dict[str, Any] = {}
        self.actions: list[DeployAction] = []

    def client(self, service: str) -> Any:
        if service not in self.clients:
            from botocore.config import Config

            # retried by mlcompile (with_retries / create_once, MLCOMPILE_DEPLOY_* knobs), not by
            # botocore: its blind retry of a create whose answer was lost would create it twice
            settings = RetrySettings.from_env()
            config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=settings.timeout, read_timeout=settings.timeout)
            self.clients[service] = RetryingClient(self.session.client(service, region_name=self.layout.region, config=config))
        return self.clients[service]

    def record(self, resource: str, action: str, apply: Callable[[], Any] | None = None, detail: str = "", live: Any = None) -> None:
        """`live`: what the comparison read of the resource (None: it is absent)."""
        if apply is not None and not self.dry_run:
            apply()
        self.actions.append(DeployAction(resource, action, detail, live_fingerprint(live)))

    def bodies(self, kind: str) -> list[Any]:
        return [body for _, body in sorted(self.files.get(kind, []), key=lambda item: item[0])]

    def run(self) -> list[DeployAction]:
        self.configs()
        self.model_package_groups()
        self.feature_groups()
        self.pipelines()
        self.schedules()
        self.alert_topics()
        self.alarms()
        self.rules()
        return self.actions

    # ------------------------------------------------------------------ resources
    def configs(self) -> None:
        from botocore.exceptions import ClientError

        s3 = self.client("s3")
        for path, config in sorted(self.files.get(STEP_CONFIG, [])):
            key = Path(path).stem
            uri = self.layout.config_uri(key)
            bucket, _, object_key = uri.removeprefix("s3://").partition("/")
            body = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
            try:
                s3.head_object(Bucket=bucket, Key=object_key)
                self.record(f"step config {uri}", "unchanged", live=uri)  # content-addressed: same key, same bytes
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                self.record(f"step config {uri}", "create", lambda: s3.put_object(Bucket=bucket, Key=object_key, Body=body, ContentType="application/json"))

    def model_package_groups(self) -> None:
        from botocore.exceptions import ClientError

        sagemaker = self.client("sagemaker")
        for body in self.bodies("sagemaker.create_model_package_group"):
            name = body["ModelPackageGroupName"]
            try:
                sagemaker.describe_model_package_group(ModelPackageGroupName=name)
                self.record(f"model package group {name}", "unchanged", live=name)
            except ClientError:
                self.record(
                    f"model package group {name}",
                    "create",
                    lambda: create_once(
                        lambda: sagemaker.create_model_package_group(**body),
                        lambda: _found(lambda: sagemaker.describe_model_package_group(ModelPackageGroupName=name)),
                    ),
                )

    def feature_groups(self) -> None:
        """Created first and compared on 'already exists' (one call when nothing is there yet).
        A feature group takes new features and a new online ttl in place; a changed record
        identifier, event time or feature type needs a new group (and a new materialisation),
        which deploy does not do behind the user's back."""
        from botocore.exceptions import ClientError

        sagemaker = self.client("sagemaker")
        for body in self.bodies("sagemaker.create_feature_group"):
            name = body["FeatureGroupName"]
            resource = f"feature group {name}"
            created = f"online ttl {body['OnlineStoreConfig']['TtlDuration']['Value']} {body['OnlineStoreConfig']['TtlDuration']['Unit'].lower()}"
            if self.dry_run:
                current = _found(lambda: sagemaker.describe_feature_group(FeatureGroupName=name))
                if current is None:
                    self.record(resource, "create", None, created)
                    continue
            else:
                try:
                    sagemaker.create_feature_group(**body)
                    self.record(resource, "create", None, created)
                    continue
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ResourceInUse":
                        raise
                current = sagemaker.describe_feature_group(FeatureGroupName=name)
            live = {k: current.get(k) for k in ("RecordIdentifierFeatureName", "EventTimeFeatureName", "FeatureDefinitions")}
            live["TtlDuration"] = current.get("OnlineStoreConfig", {}).get("TtlDuration")
            existing = {d["FeatureName"]: d for d in current.get("FeatureDefinitions", [])}
            wanted = {d["FeatureName"]: d for d in body["FeatureDefinitions"]}
            changed = [n for n in wanted if n in existing and existing[n].get("FeatureType") != wanted[n]["FeatureType"]]
            changed += [n for n in existing if n not in wanted]
            keys = (current.get("RecordIdentifierFeatureName"), current.get("EventTimeFeatureName")) != (
                body["RecordIdentifierFeatureName"],
                body["EventTimeFeatureName"],
            )
            if keys or changed:
                what = "its record identifier or event time" if keys else f"features {', '.join(sorted(changed))} (removed or retyped)"
                raise DeployFailed(
                    f"{resource} exists with different {what}: SageMaker cannot change that in place; delete the group (its online records are lost) and deploy again",
                    applied=self.actions,
                )
            update: dict[str, Any] = {}
            additions = [wanted[n] for n in wanted if n not in existing]
            if additions:
                update["FeatureAdditions"] = additions
            ttl = current.get("OnlineStoreConfig", {}).get("TtlDuration")
            if ttl is not None and not _subset(body["OnlineStoreConfig"]["TtlDuration"], ttl):
                update["OnlineStoreConfig"] = {"TtlDuration": body["OnlineStoreConfig"]["TtlDuration"]}
            if update:
                self.record(
                    resource,
                    "update",
                    lambda: sagemaker.update_feature_group(FeatureGroupName=name, **update),
                    ", ".join(sorted(update)),
                    live,
                )
            else:
                self.record(resource, "unchanged", live=live)

    def pipelines(self) -> None:
        from botocore.exceptions import ClientError

        sagemaker = self.client("sagemaker")
        definitions = {Path(path).name.removesuffix(".definition.json"): body for path, body in self.files.get(PIPELINE_DEFINITION, [])}
        for body in self.bodies("sagemaker.create_pipeline"):
            name = body["PipelineName"]
            definition = compact(definitions[name])
            try:
                current = sagemaker.describe_pipeline(PipelineName=name)
            except ClientError:
                self.record(
                    f"pipeline {name}",
                    "create",
                    lambda: create_once(
                        lambda: sagemaker.create_pipeline(**body, PipelineDefinition=definition),
                        lambda: _found(lambda: sagemaker.describe_pipeline(PipelineName=name)),
                    ),
                )
                continue
            settings = {k: v for k, v in body.items() if k not in ("PipelineName", "Tags")}
            live = {"definition": json.loads(current.get("PipelineDefinition") or "{}"), **_compared(settings, current)}
            same = live["definition"] == definitions[name] and _subset(settings, current)
            if same:
                self.record(f"pipeline {name}", "unchanged", live=live)
                continue
            update = {k: v for k, v in body.items() if k not in ("Tags",)}

            def apply(update: dict[str, Any] = update, definition: str = definition) -> None:
                response = sagemaker.update_pipeline(**update, PipelineDefinition=definition)
                sagemaker.add_tags(ResourceArn=response["PipelineArn"], Tags=body["Tags"])

            self.record(f"pipeline {name}", "update", apply, live=live)

    def schedules(self) -> None:
        from botocore.exceptions import ClientError

        scheduler = self.client("scheduler")
        for body in self.bodies("scheduler.create_schedule_group"):
            try:
                scheduler.get_schedule_group(Name=body["Name"])
                self.record(f"schedule group {body['Name']}", "unchanged", live=body["Name"])
            except ClientError:
                self.record(
                    f"schedule group {body['Name']}",
                    "create",
                    lambda: create_once(
                        lambda: scheduler.create_schedule_group(**body), lambda: _found(lambda: scheduler.get_schedule_group(Name=body["Name"]))
                    ),
                )
        for body in self.bodies("scheduler.create_schedule"):
            resource = f"schedule {body['Name']}"
            try:
                current = scheduler.get_schedule(Name=body["Name"], GroupName=body["GroupName"])
            except ClientError:
                self.record(
                    resource,
                    "create",
                    lambda: create_once(
                        lambda: scheduler.create_schedule(**body),
                        lambda: _found(lambda: scheduler.get_schedule(Name=body["Name"], GroupName=body["GroupName"])),
                    ),
                    body["ScheduleExpression"],
                )
                continue
            live = _compared(body, current)
            if _subset(body, current):
                self.record(resource, "unchanged", live=live)
            else:
                self.record(resource, "update", lambda: scheduler.update_schedule(**body), body["ScheduleExpression"], live)

    def alert_topics(self) -> None:
        """The email alerts' SNS topic (CreateTopic returns an existing topic of that name) and
        one email subscription per recipient, which SNS holds pending until the recipient
        confirms the message it mails them."""
        from botocore.exceptions import ClientError

        sns = self.client("sns")
        for body in self.bodies("sns.create_topic"):
            arn = self.layout.arn("sns", body["Name"])
            try:
                sns.get_topic_attributes(TopicArn=arn)
                self.record(f"topic {body['Name']}", "unchanged", live=arn)
            except ClientError:
                self.record(f"topic {body['Name']}", "create", lambda: sns.create_topic(**body))
        for body in self.bodies("sns.subscribe"):
            resource = f"subscription {body['Endpoint']} to {body['TopicArn'].rsplit(':', 1)[-1]}"
            try:
                existing = sns.list_subscriptions_by_topic(TopicArn=body["TopicArn"]).get("Subscriptions", [])
            except ClientError:
                existing = []
            if any(s.get("Protocol") == "email" and s.get("Endpoint") == body["Endpoint"] for s in existing):
                self.record(resource, "unchanged", live=body["Endpoint"])
            else:
                self.record(resource, "create", lambda: sns.subscribe(**body), f"{body['Endpoint']} must confirm the email SNS sends before alerts reach it")

    def alarms(self) -> None:
        cloudwatch = self.client("cloudwatch")
        for body in self.bodies("cloudwatch.put_metric_alarm"):
            found = cloudwatch.describe_alarms(AlarmNames=[body["AlarmName"]]).get("MetricAlarms", [])
            resource = f"alarm {body['AlarmName']}"
            live = _compared(body, found[0]) if found else None
            if found and _subset(body, found[0]):
                self.record(resource, "unchanged", live=live)
            else:
                self.record(resource, "update" if found else "create", lambda: cloudwatch.put_metric_alarm(**body), live=live)

    def rules(self) -> None:
        from botocore.exceptions import ClientError

        events = self.client("events")
        targets_of = {body["Rule"]: body for body in self.bodies("events.put_targets")}
        for body in self.bodies("events.put_rule"):
            name = body["Name"]
            try:
                current = events.describe_rule(Name=name)
            except ClientError:
                current = None
            detail = self.bucket_events_note(json.loads(body["EventPattern"]))
            if current is None:
                self.record(f"rule {name}", "create", lambda: events.put_rule(**body), detail)
            else:
                live = {"EventPattern": json.loads(current.get("EventPattern") or "{}"), **{k: current.get(k) for k in ("State", "Description")}}
                same = live == {"EventPattern": json.loads(body["EventPattern"]), **{k: body[k] for k in ("State", "Description")}}
                self.record(f"rule {name}", "unchanged" if same else "update", None if same else (lambda: events.put_rule(**body)), detail, live)
            targets = targets_of.get(name)
            if targets is None:
                continue
            existing = events.list_targets_by_rule(Rule=name)["Targets"] if current is not None else []
            live_targets = _compared(targets["Targets"], existing) if existing else None
            if _subset(targets["Targets"], existing):
                self.record(f"rule {name} targets", "unchanged", live=live_targets)
            else:
                self.record(f"rule {name} targets", "update" if existing else "create", lambda: events.put_targets(**targets), live=live_targets)

    def bucket_events_note(self, pattern: dict[str, Any]) -> str:
        """A rule on S3 events fires only when the bucket sends its events to EventBridge, a
        bucket setting `deploy` does not change: say so, and whether it is on."""
        from botocore.exceptions import ClientError

        if pattern.get("source") != ["aws.s3"]:
            return ""
        bucket = pattern["detail"]["bucket"]["name"][0]
        try:
            settings = self.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        except ClientError as exc:
            return (
                f"could not read the event settings of bucket {bucket} ({exc.response.get('Error', {}).get('Code', exc)}): it must send events to EventBridge"
            )
        if "EventBridgeConfiguration" in settings:
            return f"bucket {bucket} sends its events to EventBridge, as this rule needs (keep it on)"
        return f"bucket {bucket} does not send events to EventBridge yet: turn on 'Amazon EventBridge' in its event notifications"
