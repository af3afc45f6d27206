"""The emulation config: `emulate.yaml` beside the spec (all keys optional).

    images:                      # user images -> the local command standing for them
      ghcr.io/acme/trainer:1.0:
        command: [python, -m, trainer]   # the image's ENTRYPOINT
        workdir: trainer                 # its WORKDIR (relative to this file)
    fixtures:                    # data behind a profile's cloud sources (by source name or URI)
      customer_activity_daily: data/activity.csv
      bq://acme-growth-prod.crm.churn_labels: data/labels.csv
    secrets:                     # Kubernetes secrets / Secret Manager values the steps get
      growth-ml-alerts-webhook: http://127.0.0.1:9/hook
    parameters:                  # pipeline parameters, by pipeline name
      churn-prediction-training: {}
    restage:                     # fixtures swapped in before a later pipeline (e.g. drifted data)
      training:                  # before the second training run (`--runs 2`): new data, a new version
        customer_activity_daily: data/activity_v2.csv
      monitoring:
        customer_activity_daily: data/activity_drifted.csv

A source with no fixture falls back on the spec's own (profile-less) URI when that is a local
file, so a spec that runs locally runs emulated with no config at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcompile.errors import UsageError

FILE_NAME = "emulate.yaml"
RESTAGE_KINDS = ("training", "batch-scoring", "monitoring")  # training: before its second run (--runs)


@dataclass
class EmulationConfig:
    folder: Path
    commands: dict[str, list[str]] = field(default_factory=dict)
    workdirs: dict[str, Path] = field(default_factory=dict)
    fixtures: dict[str, Path] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    restage: dict[str, dict[str, Path]] = field(default_factory=dict)  # pipeline kind -> fixtures


def load_config(spec_dir: Path, path: Path | None = None) -> EmulationConfig:
    path = path or spec_dir / FILE_NAME
    if not path.is_file():
        return EmulationConfig(spec_dir)
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with images, fixtures, secrets, parameters")
    keys = ("images", "fixtures", "secrets", "parameters", "restage")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise UsageError(f"{path}: unknown key {', '.join(unknown)} ({', '.join(keys)})")
    config = EmulationConfig(path.parent)
    for image, entry in _mapping(data, "images", path).items():
        entry = entry if isinstance(entry, dict) else {"command": entry}
        command = entry.get("command")
        if not isinstance(command, list) or not command or not all(isinstance(part, str) for part in command):
            raise UsageError(f"{path}: images.{image}.command: a non-empty list of strings (the image's entrypoint)")
        config.commands[image] = command
        if entry.get("workdir"):
            config.workdirs[image] = (path.parent / str(entry["workdir"])).resolve()
    config.fixtures = {str(key): (path.parent / str(value)).resolve() for key, value in _mapping(data, "fixtures", path).items()}
    config.secrets = {str(key): str(value) for key, value in _mapping(data, "secrets", path).items()}
    config.parameters = {str(key): dict(value or {}) for key, value in _mapping(data, "parameters", path).items()}
    for kind, fixtures in _mapping(data, "restage", path).items():
        if kind not in RESTAGE_KINDS or not isinstance(fixtures, dict):
            raise UsageError(f"{path}: restage.{kind}: a mapping of fixtures under one of {', '.join(RESTAGE_KINDS)}")
        config.restage[kind] = {str(key): (path.parent / str(value)).resolve() for key, value in fixtures.items()}
    return config


def _mapping(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise UsageError(f"{path}: {key}: expected a mapping")
    return value
