"""The documentation site cannot go stale.

* The generated pages (spec and target-profile references from the JSON Schemas, the
  accelerator table from the catalog, the examples' DAGs from the plan) equal what
  `python -m mlcompile.docs_gen` produces now.
* `mkdocs build --strict` succeeds (skipped only when mkdocs / mkdocs-material are not installed).
* Every ```bash block of docs/**/*.md whose first line starts with `mlcompile ` is executed,
  line by line, in a temporary copy of the repository's examples/, targets/ and schemas/:
  each command must exit 0, or N when the block is preceded by `<!-- exit=N -->`. Commands
  that need a platform or run the system (`deploy`, `run`, `serve`) are skipped; a block
  preceded by `<!-- not tested: why -->` is skipped as a whole (the reason is required).
  Continuation lines (`\\`) are joined; shell syntax (pipes, redirections) is not supported
  in executed blocks, which keeps every command checkable.
* Every ```yaml block that is a full document (`apiVersion: mlcompile/v1`) is validated
  with the CLI: a spec (`kind: MLSystem`) in a folder made by `mlcompile init` (its data and
  local profile), a profile (`kind: Target`) in place of the shipped profile of its name, against
  examples/churn, whose overrides name the shipped profiles. A profile of a platform that is not installed (a third-party target in a
  plugin guide) is validated against the published schema instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
import yaml
from cli_support import mlcompile

from mlcompile.docs_gen import PAGES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OFFLINE_COMMANDS = {"validate", "build", "graph", "diff", "explain", "init", "schema", "targets"}
SKIPPED_COMMANDS = {"deploy", "plan", "run", "serve"}

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_MARKER = re.compile(r"<!--\s*(not tested:\s*(?P<why>.*?)|exit=(?P<exit>\d+))\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    language: str
    text: str
    marker: re.Match[str] | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _blocks() -> list[Block]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text()
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            found.append(
                Block(
                    page.relative_to(DOCS).as_posix(),
                    text.count("\n", 0, match.start()) + 1,
                    match.group(1),
                    match.group(2),
                    _MARKER.search(before),
                )
            )
    return found


BLOCKS = _blocks()
COMMAND_BLOCKS = [b for b in BLOCKS if b.language == "bash" and b.text.lstrip().startswith("mlcompile ")]
DOCUMENTS = [b for b in BLOCKS if b.language == "yaml" and isinstance(d := yaml.safe_load(b.text), dict) and d.get("apiVersion") == "mlcompile/v1"]


def _mlcompile(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return mlcompile(args, cwd=cwd)


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    for folder in ("examples", "targets", "schemas"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns(".mlcompile", "__pycache__"))
    return tmp_path


# --- generated pages -----------------------------------------------------------------------


@pytest.mark.parametrize("page", sorted(PAGES))
def test_generated_page_is_current(page: str) -> None:
    assert (DOCS / page).read_text() == PAGES[page](), f"docs/{page} is stale; regenerate: python -m mlcompile.docs_gen"


def test_spec_reference_covers_every_schema_definition() -> None:
    from mlcompile.schema import json_schema

    text = (DOCS / "reference" / "spec.md").read_text()
    schema = json_schema("system")
    for name, node in schema["$defs"].items():
        assert f"\n## {name}\n" in text
        for field in node.get("properties", {}):
            assert f"| `{field}` |" in text, (name, field)


def test_getting_started_repeats_the_readme_setup_commands() -> None:
    readme = (ROOT / "README.md").read_text().split("## Set up", 1)[1].split("\n## ", 1)[0]
    index = (DOCS / "index.md").read_text().split("## Getting started", 1)[1].split("\n## ", 1)[0]
    expected = re.findall(r"```bash\n(.+?)\n```", readme)
    assert len(expected) == 2 and re.findall(r"```bash\n(.+?)\n```", index) == expected


# --- the site --------------------------------------------------------------------------------


def test_site_builds_strictly(tmp_path: Path) -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        pytest.skip("mkdocs / mkdocs-material not installed (pip install -e '.[dev]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
    for page in ("concepts", "examples", "plugins", "migration", "reference/spec", "reference/target", "accelerators"):
        assert (tmp_path / "site" / page / "index.html").is_file(), page


def test_every_page_is_in_the_nav() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)  # no python tags resolved

    def pages(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for value in node.values() for p in pages(value)]
        if isinstance(node, list):
            return [p for value in node for p in pages(value)]
        return []

    assert sorted(pages(config["nav"])) == sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))


# --- executed examples -----------------------------------------------------------------------


def test_examples_are_found() -> None:
    """The collection itself: a broken fence pattern must not silently test nothing."""
    assert len(COMMAND_BLOCKS) >= 4 and len(DOCUMENTS) >= 2, (len(COMMAND_BLOCKS), len(DOCUMENTS))


@pytest.mark.parametrize("block", COMMAND_BLOCKS, ids=lambda b: b.id)
def test_command_block_runs(block: Block, workspace: Path) -> None:
    if block.marker is not None and block.marker.group("why") is not None:
        assert block.marker.group("why").strip(), f"{block.id}: say why the block is not tested"
        pytest.skip(f"{block.id}: not tested: {block.marker.group('why')}")
    expected = int(block.marker.group("exit")) if block.marker is not None and block.marker.group("exit") else 0
    commands = [line for line in block.text.replace("\\\n", " ").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    ran = 0
    for command in commands:
        words = shlex.split(command, comments=True)
        assert words[0] == "mlcompile", f"{block.id}: an executed block holds only mlcompile commands: {command!r}"
        assert not set(words) & {"|", ">", ">>", "<", "&&", ";"}, f"{block.id}: no shell syntax in an executed block: {command!r}"
        subcommand = next((w for w in words[1:] if not w.startswith("-")), None)
        if subcommand in SKIPPED_COMMANDS:
            continue
        assert subcommand in OFFLINE_COMMANDS, f"{block.id}: unknown command {subcommand!r}"
        proc = _mlcompile(words[1:], workspace)
        assert proc.returncode == expected, f"{block.id}: `{command}` exited {proc.returncode}, expected {expected}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        ran += 1
    if not ran:
        pytest.skip(f"{block.id}: only platform commands ({', '.join(sorted(SKIPPED_COMMANDS))})")


@pytest.mark.parametrize("block", DOCUMENTS, ids=lambda b: b.id)
def test_yaml_document_is_valid(block: Block, workspace: Path) -> None:
    document = yaml.safe_load(block.text)
    if document.get("kind") == "MLSystem":
        init = _mlcompile(["init", "project"], workspace)
        assert init.returncode == 0, init.stderr
        (workspace / "project" / "mlcompile.yaml").write_text(block.text)
        proc = _mlcompile(["validate", "mlcompile.yaml", "--target", "targets/local.yaml"], workspace / "project")
        assert proc.returncode == 0, f"{block.id}:\n{proc.stderr}"
        return
    assert document.get("kind") == "Target", f"{block.id}: kind must be MLSystem or Target"
    from mlcompile.targets.registry import target_names

    if document.get("platform") not in target_names():
        schema = json.loads((ROOT / "schemas" / "target-v1.schema.json").read_text())
        jsonschema.validate(document, schema)
        return
    name = document["metadata"]["name"]
    (workspace / "targets" / f"{name}.yaml").write_text(block.text)  # beside the others the overrides name
    proc = _mlcompile(["validate", "examples/churn/mlcompile.yaml", "--target", f"targets/{name}.yaml"], workspace)
    assert proc.returncode == 0, f"{block.id}:\n{proc.stderr}"


# --- editor support (docs/index.md "Editor support") -----------------------------------------

_SCHEMA_LINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$", re.M)


def _dotted(path: list[object]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def test_schema_lines_of_examples_profiles_and_init_point_at_the_published_schemas(tmp_path: Path) -> None:
    from mlcompile.schema import SCHEMA_FILES

    init = _mlcompile(["init", "project"], tmp_path)
    assert init.returncode == 0, init.stderr
    files = [
        *ROOT.glob("examples/*/mlcompile.yaml"),
        *ROOT.glob("targets/*.yaml"),
        tmp_path / "project" / "mlcompile.yaml",
        *(tmp_path / "project").glob("targets/*.yaml"),
    ]
    for file in files:
        match = _SCHEMA_LINE.match(file.read_text())
        assert match, f"{file}: the first line must be the yaml-language-server $schema comment"
        kind = "system" if yaml.safe_load(file.read_text())["kind"] == "MLSystem" else "target"
        published = json.loads((ROOT / "schemas" / SCHEMA_FILES[kind]).read_text())
        if match.group(1).startswith("https://"):  # init: the published URL, the schema's $id
            assert match.group(1) == published["$id"], file
            schema = published
        else:
            schema_file = (file.parent / match.group(1)).resolve()
            assert schema_file.name == SCHEMA_FILES[kind], file
            schema = json.loads(schema_file.read_text())
            assert schema == published, file
        jsonschema.validate(yaml.safe_load(file.read_text()), schema)


@pytest.mark.parametrize(
    ("field", "value"),
    [(("training", "resources", "cpu"), "four"), (("features", "views", 0, "ttl"), "30 days"), (("metadata", "name"), "Churn_Prediction"),
     (("registry", "approval"), "sometimes"), (("deployment", "online", "replicas", "min"), -1)],
)  # fmt: skip
def test_editor_and_cli_report_a_bad_value_at_the_same_path(field: tuple[object, ...], value: object, workspace: Path) -> None:
    data = yaml.safe_load((ROOT / "examples" / "churn" / "mlcompile.yaml").read_text())
    node = data
    for part in field[:-1]:
        node = node[part]
    node[field[-1]] = value
    spec = workspace / "examples" / "churn" / "bad.yaml"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    schema = json.loads((ROOT / "schemas" / "mlcompile-v1.schema.json").read_text())

    def paths(errors: object) -> set[str]:  # the failing branch of an anyOf (a section or null) is in .context
        return {p for e in errors for p in {_dotted(list(e.absolute_path))} | paths(e.context)}  # type: ignore[attr-defined]

    editor = paths(jsonschema.Draft202012Validator(schema).iter_errors(data))
    proc = _mlcompile(["validate", str(spec), "--target", "targets/local.yaml", "--format", "json"], workspace)
    assert proc.returncode == 2, proc.stderr
    cli = {d["path"] for d in json.loads(proc.stdout)["diagnostics"] if d["severity"] == "error"}
    expected = _dotted(list(field))
    assert expected in editor and expected in cli, (editor, cli)
