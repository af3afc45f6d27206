"""What every Vertex AI request body of the build shares: the plan's labels (GCP's label
rules) and the JSON form of an aiplatform message."""

from __future__ import annotations

from typing import Any

from mlcompile.plan.nodes import Plan
from mlcompile.targets.base import resource_labels


def to_json(message: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(type(message).pb(message))


def labels(plan: Plan) -> dict[str, str]:
    return resource_labels(plan, max_value_length=63)
