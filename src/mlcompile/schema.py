"""JSON Schemas generated from the models: what editors (yaml-language-server) and other
tools validate against. The checked-in copies under `schemas/` must equal these."""

from __future__ import annotations

import json
from typing import Any, Literal

Kind = Literal["system", "target", "plan", "diff", "deploy-plan"]
SCHEMA_FILES: dict[str, str] = {
    "system": "mlcompile-v1.schema.json",
    "target": "target-v1.schema.json",
    "plan": "plan-v2.schema.json",
    "diff": "diff-v1.schema.json",
    "deploy-plan": "deploy-plan-v1.schema.json",
}
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Where the schemas are published (docs/index.md, "Editor support"): one URL per file, the file
# name carrying the spec version, so a v2 schema never replaces the v1 one under an editor.
PUBLISHED_AT = "https://mlcompile.dev/schemas/"


def schema_id(kind: Kind) -> str:
    """The schema's `$id`: the URL it is published at."""
    return PUBLISHED_AT + SCHEMA_FILES[kind]


def json_schema(kind: Kind) -> dict[str, Any]:
    if kind == "plan":
        from mlcompile.plan.serialize import plan_schema

        schema = plan_schema()
    elif kind == "deploy-plan":
        from mlcompile.deploy_plan import deploy_plan_schema

        schema = deploy_plan_schema()
    elif kind == "diff":
        from mlcompile.diff.render import diff_schema

        schema = diff_schema()
    else:
        from mlcompile.spec.models import MLSystem
        from mlcompile.spec.profile_model import TargetProfile

        schema = (MLSystem if kind == "system" else TargetProfile).model_json_schema()
    return {"$schema": DRAFT, "$id": schema_id(kind), **schema}


def schema_text(kind: Kind) -> str:
    return json.dumps(json_schema(kind), indent=2, sort_keys=True) + "\n"
