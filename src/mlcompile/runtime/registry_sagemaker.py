"""The SageMaker Model Registry backend: every runtime step of a sagemaker profile (its
config's `platform.name`) reads the model package group the pipeline's RegisterModel step
writes, through boto3 (AWS_ENDPOINT_URL and the usual credential chain apply).

- A version is a model package of the group (`registry.model`); its number is
  `ModelPackageVersion`.
- `production` is the newest package whose `ModelApprovalStatus` is `Approved` (SageMaker has
  no moving aliases): approving a package in Studio, the console or with
  `aws sagemaker update-model-package --model-approval-status Approved` is the approval.
  The spec's other aliases are listed in the package's `mlcompile-aliases` metadata.
- What mlcompile records of a version (lineage, the endpoint that serves it) is kept in its
  `CustomerMetadataProperties`.
- The package's model is its container's `ModelDataUrl` (the training job's model.tar.gz).
  A container-trained model's archive holds only what its trainer wrote: the version's
  description (`model.json`) is completed from the step config with the champion's metrics
  (the package's `ModelMetrics.ModelQuality.Statistics`, the evaluation report), and its drift
  baseline is sampled from the training set its `mlcompile-drift-baseline` metadata names
  (versions registered by earlier builds name it in
  `DriftCheckBaselines.ModelDataQuality.Statistics`, where Model Monitor expects its own
  statistics JSON instead)."""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcompile.runtime.io import DataError, open_uri, read_json
from mlcompile.runtime.versions import PRODUCTION, TAG_APPROVAL, NewVersion, Version

APPROVED = "Approved"
ALIASES_KEY = "mlcompile-aliases"
DRIFT_BASELINE_KEY = "mlcompile-drift-baseline"  # the training set's URI, in CustomerMetadataProperties
ARN_TAG = "sagemaker.model_package_arn"  # a version's package ARN, among its tags
MODEL_DATA_TAG = "sagemaker.model_data_url"
_APPROVAL = {APPROVED: "approved", "PendingManualApproval": "pending", "Rejected": "rejected"}


def sagemaker_client(platform: Mapping[str, Any], service: str = "sagemaker") -> Any:
    import boto3

    return boto3.client(service, region_name=platform["region"])


class SageMakerRegistry:
    kind = "sagemaker"
    how_to_approve = "setting a model package's ModelApprovalStatus to Approved (Studio, console, or aws sagemaker update-model-package)"

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        platform = config["platform"]
        self.location = f"{platform['region']} model package groups"
        self.client = sagemaker_client(platform)

    # ------------------------------------------------------------------ reading
    def _summaries(self, model: str) -> list[dict[str, Any]]:
        from botocore.exceptions import ClientError

        found: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("list_model_packages").paginate(ModelPackageGroupName=model):
                found += page.get("ModelPackageSummaryList", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
                return []
            raise
        return [s for s in found if s.get("ModelPackageVersion") is not None]

    def _describe(self, arn: str) -> dict[str, Any]:
        return dict(self.client.describe_model_package(ModelPackageName=arn))

    def _version(self, package: Mapping[str, Any], production: str | None) -> Version:
        metadata = {str(k): str(v) for k, v in (package.get("CustomerMetadataProperties") or {}).items()}
        number = str(package["ModelPackageVersion"])
        aliases = [a for a in metadata.get(ALIASES_KEY, "").split(",") if a]
        if number == production:
            aliases.append(PRODUCTION)
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        tags = {**metadata, TAG_APPROVAL: _APPROVAL.get(str(package.get("ModelApprovalStatus")), str(package.get("ModelApprovalStatus"))),
                ARN_TAG: str(package["ModelPackageArn"])}  # fmt: skip
        model_data = containers[0].get("ModelDataUrl")
        if model_data:
            tags[MODEL_DATA_TAG] = str(model_data)
        return Version(str(package["ModelPackageGroupName"]), number, tuple(aliases), tags, None, model_data)

    @staticmethod
    def _production(summaries: list[dict[str, Any]]) -> str | None:
        approved = [int(s["ModelPackageVersion"]) for s in summaries if s.get("ModelApprovalStatus") == APPROVED]
        return str(max(approved)) if approved else None

    def versions(self, model: str) -> list[Version]:
        summaries = self._summaries(model)
        production = self._production(summaries)
        return [self._version(self._describe(s["ModelPackageArn"]), production) for s in summaries]

    def get(self, model: str, version: str) -> Version | None:
        summaries = self._summaries(model)
        found = next((s for s in summaries if str(s["ModelPackageVersion"]) == str(version)), None)
        return None if found is None else self._version(self._describe(found["ModelPackageArn"]), self._production(summaries))

    def with_alias(self, model: str, alias: str) -> Version | None:
        summaries = self._summaries(model)
        if alias == PRODUCTION:
            production = self._production(summaries)
            return None if production is None else self.get(model, production)
        for summary in sorted(summaries, key=lambda s: -int(s["ModelPackageVersion"])):
            version = self._version(self._describe(summary["ModelPackageArn"]), None)
            if alias in version.aliases:
                return version
        return None

    # ------------------------------------------------------------------ writing
    def _arn(self, model: str, version: str) -> str:
        found = next((s for s in self._summaries(model) if str(s["ModelPackageVersion"]) == str(version)), None)
        if found is None:
            raise DataError(f"model package group {model} has no version {version}")
        return str(found["ModelPackageArn"])

    def _update_metadata(self, arn: str, changes: Mapping[str, str], **update: Any) -> None:
        """UpdateModelPackage with the package's whole metadata and its approval status: SageMaker
        leaves out what it is not given, but moto replaces the map and clears the status, so both
        end in the same state. Nothing is sent when nothing changes: an update of an Approved
        package is a state-change event the deploy-on-approval rule matches, so a deploy that
        rewrote what it found would start the next deploy, forever."""
        current = self._describe(arn)
        metadata = {**(current.get("CustomerMetadataProperties") or {}), **changes}
        if not update and metadata == (current.get("CustomerMetadataProperties") or {}):
            return
        update.setdefault("ModelApprovalStatus", current.get("ModelApprovalStatus"))
        self.client.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties=metadata, **{k: v for k, v in update.items() if v})

    def set_aliases(self, model: str, version: str, aliases: list[str]) -> None:
        arn = self._arn(model, version)
        others = [a for a in aliases if a != PRODUCTION]
        current = self._describe(arn)
        listed = [a for a in (current.get("CustomerMetadataProperties") or {}).get(ALIASES_KEY, "").split(",") if a]
        merged = ",".join(dict.fromkeys([*listed, *others]))
        update: dict[str, Any] = {}
        if PRODUCTION in aliases and current.get("ModelApprovalStatus") != APPROVED:
            update = {"ModelApprovalStatus": APPROVED, "ApprovalDescription": "approved by mlcompile (approval: auto, or deployed as production)"}
        if merged != ",".join(listed) or update:
            self._update_metadata(arn, {ALIASES_KEY: merged} if merged else {}, **update)

    def set_tag(self, model: str, version: str, key: str, value: str) -> None:
        self._update_metadata(self._arn(model, version), {key: value})

    def create(self, new: NewVersion) -> Version:
        raise DataError(
            f"{new.model}: on SageMaker the training pipeline's RegisterModel step registers versions (model package group {new.model}); "
            "the runtime's register step does not run there"
        )

    # ------------------------------------------------------------------ the model
    def download(self, version: Version, destination: Path) -> Path:
        from mlcompile.runtime.baseline import BASELINE_FILE, add_baseline
        from mlcompile.runtime.container_model import own_manifest, write_manifest

        if not version.artifact_uri:
            raise DataError(f"model package {version.model} version {version.version} names no model data (ModelDataUrl)")
        folder = destination / "model"
        folder.mkdir(parents=True, exist_ok=True)
        archive = destination / "model.tar.gz"
        with open_uri(version.artifact_uri, "rb") as source, open(archive, "wb") as target:
            target.write(source.read())
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(folder)
        archive.unlink()
        package = self._describe(version.tags[ARN_TAG])
        described = self.config.get("model")
        if own_manifest(folder) is None and described:  # a container's model: described by the plan, with its metrics
            write_manifest(folder, {**described, "metrics": package_metrics(package)})
        train = training_set(package)
        if train and not (folder / BASELINE_FILE).exists() and described:
            add_baseline(folder, str(train), str(described.get("label")))
        return folder


def training_set(package: Mapping[str, Any]) -> str | None:
    """The URI of the training set a version was trained on, the drift baseline's sample."""
    recorded = (package.get("CustomerMetadataProperties") or {}).get(DRIFT_BASELINE_KEY)
    earlier = ((((package.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}).get("Statistics")) or {}).get("S3Uri")
    return str(recorded or earlier or "") or None


def package_metrics(package: Mapping[str, Any]) -> dict[str, float]:
    """The version's metrics: the evaluation report its ModelQuality statistics point at
    (`{"metrics": {name: value}, …}`, what the evaluate step wrote)."""
    uri = ((((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics")) or {}).get("S3Uri")
    if not uri:
        return {}
    try:
        report = read_json(str(uri))
    except (OSError, ValueError) as exc:
        raise DataError(f"model package {package.get('ModelPackageArn')}: its metrics {uri} cannot be read ({exc})") from exc
    metrics = report.get("metrics", report) if isinstance(report, dict) else {}
    return {str(k): float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
