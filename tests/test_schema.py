"""The published JSON Schemas are generated from the models and must not drift from them;
editors validate with them, so they must accept every example and reject what the models reject."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mlcompile.schema import SCHEMA_FILES, json_schema

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "mlcompile schema --kind {kind} -o schemas/{file}"


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_checked_in_schema_equals_the_generated_one(kind: str) -> None:
    checked_in = json.loads((ROOT / "schemas" / SCHEMA_FILES[kind]).read_text())
    assert checked_in == json_schema(kind), "schema drifted from the models; regenerate: " + REGENERATE.format(kind=kind, file=SCHEMA_FILES[kind])


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_schema_is_valid_draft_2020_12(kind: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema(kind))


def _validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json_schema(kind))


def _examples() -> list[Path]:
    return sorted(ROOT.glob("examples/*/mlcompile.yaml"))


def _profiles() -> list[Path]:
    return sorted(ROOT.glob("targets/*.yaml"))


@pytest.mark.parametrize("spec", _examples(), ids=lambda p: p.parent.name)
def test_every_example_satisfies_the_system_schema(spec: Path) -> None:
    errors = list(_validator("system").iter_errors(yaml.safe_load(spec.read_text())))
    assert errors == []


@pytest.mark.parametrize("profile", _profiles(), ids=lambda p: p.stem)
def test_every_example_profile_satisfies_the_target_schema(profile: Path) -> None:
    errors = list(_validator("target").iter_errors(yaml.safe_load(profile.read_text())))
    assert errors == []


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["training"]["resources"].update(cpu="four"), ["training", "resources", "cpu"]),
        (lambda d: d["features"]["sources"][0].update(format="tabel"), ["features", "sources", 0, "format"]),
        (lambda d: d["features"]["views"][0].update(ttl="30 days"), ["features", "views", 0, "ttl"]),
        (lambda d: d["metadata"].update(name="Churn_Prediction"), ["metadata", "name"]),
        (lambda d: d["training"].update(resource={}), ["training"]),
    ],
    ids=["wrong-type", "bad-enum", "bad-duration", "bad-name", "unknown-key"],
)
def test_schema_rejects_bad_specs_at_the_same_path_the_cli_reports(mutate, path) -> None:
    spec = _examples()[0] if _examples() else pytest.skip("no examples")
    data = yaml.safe_load(spec.read_text())
    mutate(data)
    paths = [list(e.absolute_path) for e in _validator("system").iter_errors(data)]
    assert path in paths


def _properties(node: object, where: str = "") -> list[tuple[str, dict]]:
    """Every property of every object schema inside ``node`` (definitions, nested, in anyOf)."""
    found: list[tuple[str, dict]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, prop in value.items():
                    found.append((f"{where}.{name}", prop))
                    found += _properties(prop, f"{where}.{name}")
            else:
                found += _properties(value, f"{where}/{key}" if key == "$defs" else (key if where.endswith("$defs") else where))
    elif isinstance(node, list):
        for item in node:
            found += _properties(item, where)
    return found


@pytest.mark.parametrize("kind", ["system", "target"])
def test_every_property_has_a_description_for_editor_hover_help(kind: str) -> None:
    schema = json_schema(kind)
    found = dict(_properties(schema))
    assert len(found) > 60  # the walk reaches the definitions, not only the top level
    assert [where for where, prop in found.items() if not prop.get("description")] == []


@pytest.mark.parametrize("kind", sorted(SCHEMA_FILES))
def test_schema_id_is_its_published_url(kind: str) -> None:
    assert json_schema(kind)["$id"] == f"https://mlcompile.dev/schemas/{SCHEMA_FILES[kind]}"


def test_accelerator_docs_are_generated_from_the_catalog() -> None:
    from mlcompile.catalog.docs import accelerators_markdown

    assert (ROOT / "docs" / "accelerators.md").read_text() == accelerators_markdown(), (
        "docs/accelerators.md is stale; regenerate: python -m mlcompile.catalog.docs > docs/accelerators.md"
    )
