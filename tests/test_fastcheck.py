"""`validate` of a spec alone checks it without pydantic (spec/fastcheck.py): the table it
reads is the models' own, it holds every spec it accepts exactly as the models do, it never
accepts one the models refuse, and the command says the same either way."""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import shutil
import subprocess
import sys
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from mlcompile import cli
from mlcompile.errors import SpecError
from mlcompile.spec import fastcheck, fastcheck_gen, values
from mlcompile.spec.fastcheck import View, view_of
from mlcompile.spec.loader import load_yaml_file
from mlcompile.spec.models import MLSystem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(ROOT.glob("examples/*/mlcompile.yaml"))


def system_specs() -> list[Path]:
    """Every system spec in the repository: the examples and the test fixtures, valid or not."""
    found = []
    for path in sorted([*ROOT.glob("examples/**/*.y*ml"), *ROOT.glob("tests/**/*.y*ml"), *ROOT.glob("bench/fixture/**/*.y*ml")]):
        try:
            data = load_yaml_file(path).data
        except SpecError:
            continue
        if data.get("kind") == "MLSystem":
            found.append(path)
    return found


def as_the_model_dumps(value: Any) -> Any:
    """A view as plain data, each leaf with its type (1 and 1.0 differ)."""
    if isinstance(value, View):
        value = vars(value)
    if isinstance(value, dict):
        return {key: as_the_model_dumps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_the_model_dumps(item) for item in value]
    return (type(value).__name__, value)


def same_as_the_models(data: Any) -> None:
    """What the fast path makes of `data` agrees with the models: None for anything they
    refuse, and for what it accepts the very values (defaults and types too)."""
    view = view_of(data)
    try:
        model = MLSystem.model_validate(data)
    except ValidationError:
        assert view is None, "accepted a spec the models refuse"
        return
    if view is not None:
        assert as_the_model_dumps(view) == as_the_model_dumps(model.model_dump())


def test_the_shipped_table_is_the_one_the_models_generate() -> None:
    assert fastcheck_gen.generate() == fastcheck_gen.TABLE_FILE.read_text(), "run python -m mlcompile.spec.fastcheck_gen"


def test_the_table_knows_every_model_validator_of_the_spec() -> None:
    # one it does not know makes the fast path turn every spec using that model away
    rules = {(name, rule) for name, model in fastcheck._table()["models"].items() for rule in model["rules"]}
    assert rules == {("Trainer", "_exactly_one"), ("Gate", "_exactly_one"), ("Deployment", "_at_least_one"), ("SklearnTrainer", "_finite_params")}


@pytest.mark.parametrize("path", system_specs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_in_the_repository_reads_as_the_models_read_it(path: Path) -> None:
    same_as_the_models(load_yaml_file(path).data)


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.parent.name)
def test_the_examples_take_the_fast_path(spec: Path) -> None:
    assert view_of(load_yaml_file(spec).data) is not None


def churn() -> dict[str, Any]:
    return copy.deepcopy(load_yaml_file(ROOT / "examples" / "churn" / "mlcompile.yaml").data)


def put(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


# Changes pydantic would take differently from the table, or refuse: each must be refused by
# the fast path or read exactly as the models read it.
MUTATIONS = [
    ("metadata.name", "churn\n"),  # Rust's `$` does not match before a final newline
    ("metadata.name", "x"),
    ("metadata.labels", {"Team": "a"}),
    ("metadata.unknown", 1),
    ("training.resources.cpu", "4"),  # pydantic would coerce a numeric string
    ("training.resources.cpu", True),
    ("training.resources.cpu", float("inf")),
    ("training.resources.cpu", 2),
    ("training.resources.replicas", 2.0),
    ("training.resources.timeout", "0h"),
    ("training.resources.memory", "2048Ti"),
    ("training.dataset.split", {"test_fraction": 1}),
    ("training.dataset.split", {"test_fraction": 0.25}),
    ("training.trainer.container", {"image": "x"}),
    ("training.trainer.sklearn.params", {"alpha": float("nan")}),
    ("training.evaluation.gates", [{"metric": "roc_auc", "min": 0.7, "max": 0.9}]),
    ("training.evaluation.gates", [{"metric": "roc_auc", "min": 1}]),
    ("deployment", {}),
    ("retraining", {"schedule": "0 25 * * *"}),
    ("retraining", {"schedule": "0 3 * * *", "timezone": "Mars/Olympus"}),
    ("retraining", {"schedule": "0 3 * * *", "timezone": "Europe/Berlin"}),
    ("monitoring.alerts", [{"channel": "pager", "to": ["a@b.c"]}]),
    ("monitoring.alerts", [{"channel": "webhook", "url": "https://example.com/hook"}]),
    ("features.sources.0.uri", "http://example.com/x.csv"),
    ("features.sources.0.format", "TABLE"),
    ("features.views.0.online", "yes"),
    ("registry.tags", {"owner": "x" * 64}),
    ("overrides", {"gcp-prod": {"training": {"resources": {"cpu": float("inf")}}}}),
    ("deployment.online.rollout", {"strategy": "canary", "canary_percent": 10**30}),  # bounds of an optional field
    ("monitoring.alerts", [{"channel": {"email": 1}, "to": ["a@b.c"]}]),  # a tag that is no string
]


@pytest.mark.parametrize(("path", "value"), MUTATIONS, ids=[f"{p}={v!r}" for p, v in MUTATIONS])
def test_a_changed_spec_is_refused_or_read_as_the_models_read_it(path: str, value: Any) -> None:
    data = churn()
    data.setdefault("monitoring", {"schedule": "0 4 * * *"})
    same_as_the_models(put(data, path, value))


# leaves of the examples are replaced by these, keys dropped or added, at random
ODD_VALUES = [
    None, 0, 1, -1, 2.5, 10**30, float("inf"), float("nan"), True, False, "", "x", "abc", "churn\n", "é", "1", "0h", "3h",
    "16Gi", "0 3 * * *", "UTC", "Europe/Berlin", "secret://x", "gs://b/x", "bq://p.d.t", "all", "canary", "table", [], {}, ["a"], {"a": 1},
]  # fmt: skip


def leaf_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, item in items:
        found += leaf_paths(item, (*path, key))
    return found


def test_random_changes_to_the_examples_are_refused_or_read_as_the_models_read_them() -> None:
    chance = random.Random(21)
    examples = [load_yaml_file(spec).data for spec in EXAMPLES]
    for _ in range(600):
        data = copy.deepcopy(chance.choice(examples))
        for _ in range(chance.randint(1, 3)):
            *parents, key = chance.choice(leaf_paths(data)[1:])
            node: Any = data
            for parent in parents:
                node = node[parent]
            change = chance.random()
            if change < 0.6 or not isinstance(node, dict):
                node[key] = copy.deepcopy(chance.choice(ODD_VALUES))
            elif change < 0.8:
                del node[key]
            else:
                node[chance.choice(["extra", "min", "max", "type", "channel", "container"])] = copy.deepcopy(chance.choice(ODD_VALUES))
        same_as_the_models(data)


def run_validate(args: list[str], *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(fastcheck, "validate_specs_alone", lambda specs: None)
        result = CliRunner().invoke(cli.main, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("output_format", ["text", "json", "github"])
def test_validate_says_the_same_on_either_path(output_format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    specs = []
    for spec in EXAMPLES:
        shutil.copytree(spec.parent, tmp_path / spec.parent.name, ignore=shutil.ignore_patterns("data", ".mlcompile"))
        specs.append(str(tmp_path / spec.parent.name / "mlcompile.yaml"))
    assert fastcheck.validate_specs_alone(specs) is not None  # the examples take the fast path
    args = ["validate", *specs, "--format", output_format]
    fast, full = run_validate(args, fast=True, monkeypatch=monkeypatch), run_validate(args, fast=False, monkeypatch=monkeypatch)
    assert fast == full
    assert fast[0] == 0


def test_a_spec_with_profiles_beside_it_takes_the_full_path(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "churn", tmp_path / "churn", ignore=shutil.ignore_patterns("data", ".mlcompile"))
    spec = tmp_path / "churn" / "mlcompile.yaml"
    assert fastcheck.validate_alone(str(spec)) == []
    (spec.parent / "targets").mkdir()
    assert fastcheck.validate_alone(str(spec)) is None


def test_an_invalid_spec_takes_the_full_path_for_its_located_errors(tmp_path: Path) -> None:
    spec = tmp_path / "mlcompile.yaml"
    spec.write_text((ROOT / "examples" / "churn" / "mlcompile.yaml").read_text().replace("name: churn-prediction", "name: Churn", 1))
    assert fastcheck.validate_alone(str(spec)) is None
    result = CliRunner().invoke(cli.main, ["validate", str(spec)])
    assert result.exit_code == 2
    assert f"{spec}:" in result.stderr and "error: metadata.name" in result.stderr


@pytest.mark.parametrize("tzdata", ["installed", "absent"])
def test_a_time_zone_is_accepted_exactly_when_zoneinfo_lists_it(tzdata: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # every name the time zone folders hold, the folders themselves, and names that reach a
    # listed file by another way (case, '..', '//', right/ and posix/, posixrules)
    if tzdata == "absent":  # then only the folders hold zones
        monkeypatch.setitem(sys.modules, "tzdata", None)
    monkeypatch.setattr(values, "_tzdata_zones", functools.cache(values._tzdata_zones.__wrapped__))
    listed = zoneinfo.available_timezones()
    names = {os.path.relpath(os.path.join(folder, name), root)
             for root in zoneinfo.TZPATH for folder, folders, files in os.walk(root, followlinks=True) for name in folders + files}  # fmt: skip
    names |= {"posixrules", "right/UTC", "posix/Europe/Berlin", "Europe", "Europe/", "/Europe/Berlin", "./UTC", "Europe//Berlin",
              "Etc/../UTC", "europe/berlin", "UTC ", "", "Mars/Olympus", "zone.tab"}  # fmt: skip
    assert listed <= names
    assert {name for name in names if values.is_listed_time_zone(name)} == listed


def test_validating_an_example_alone_never_imports_pydantic(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "churn", tmp_path / "churn", ignore=shutil.ignore_patterns("data", ".mlcompile"))
    driver = (
        "import sys\nfrom mlcompile.cli import main\n"
        "try:\n    main(['validate', 'churn/mlcompile.yaml'], prog_name='mlcompile')\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core') or m == 'mlcompile.spec.models'))"
    )
    proc = subprocess.run([sys.executable, "-c", driver], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split(None, 1) == ["0", "[]\n"], proc.stdout + proc.stderr
    assert json.loads(json.dumps(proc.stderr)).endswith("valid (no target profiles found; pass --target to check builds)\n")


def run_command(driver: str, args: list[str], cwd: Path) -> tuple[int, str, str, bool]:
    """(exit status, stdout, stderr, whether click was imported) of `mlcompile ARGS` run
    through mlcompile.entry or straight through the click command line."""
    call = "from mlcompile.entry import main\nmain()" if driver == "entry" else "from mlcompile.cli import main\nmain()"
    code = (f"import sys\nsys.argv = ['mlcompile', *sys.argv[1:]]\ntry:\n    {call.replace(chr(10), chr(10) + '    ')}\nexcept SystemExit as exc:\n    status = exc.code\n"
            "print('click' in sys.modules, file=sys.stdout)\nsys.exit(status)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    *out, clicked = proc.stdout.splitlines() or [""]
    return proc.returncode, "\n".join(out), proc.stderr, clicked == "True"


@pytest.mark.parametrize("case", ["valid specs", "an invalid spec", "a folder", "a missing file", "quiet", "json", "profiles beside the spec"])
def test_the_entry_point_says_what_the_command_line_says(case: str, tmp_path: Path) -> None:
    for name in ("churn", "ranker-gpu"):
        shutil.copytree(ROOT / "examples" / name, tmp_path / name, ignore=shutil.ignore_patterns("data", ".mlcompile"))
    (tmp_path / "bad.yaml").write_text((ROOT / "examples" / "churn" / "mlcompile.yaml").read_text().replace("name: churn-prediction", "name: Churn", 1))
    specs = ["churn/mlcompile.yaml", "ranker-gpu/mlcompile.yaml"]
    args = {
        "valid specs": ["validate", *specs],
        "an invalid spec": ["validate", "churn/mlcompile.yaml", "bad.yaml"],
        "a folder": ["validate", "churn"],
        "a missing file": ["validate", "missing.yaml"],
        "quiet": ["validate", "-q", *specs],
        "json": ["validate", *specs, "--format", "json"],
        "profiles beside the spec": ["validate", "churn/mlcompile.yaml"],
    }[case]
    if case == "profiles beside the spec":
        shutil.copytree(ROOT / "targets", tmp_path / "churn" / "targets")
    *said, clicked = run_command("entry", args, tmp_path)
    assert said == list(run_command("cli", args, tmp_path)[:3])
    assert clicked == (case != "valid specs")  # only plain valid specs are answered without the command line
    if case == "valid specs":
        assert said == [0, "", "".join(f"{spec}: valid (no target profiles found; pass --target to check builds)\n" for spec in specs)]
