"""Fuzzing `mlcompile validate`: no input, however broken, may crash it.

Starting from a valid spec (and valid target profiles), hypothesis deletes keys, swaps
values for wrong types and junk, renames keys, duplicates list items, moves values between
fields, and also feeds random YAML-ish text, truncated documents and random bytes. Every run
must end with exit 0 or 2, never show a traceback or an "internal error", and an exit 2 must
come with at least one located `file:LINE:COL: error:` diagnostic (SPEC §4).

The same contract is then held for `build`: mutated specs for the local target, and spec
variants that mostly stay valid (so they reach every target's check() and render()) for all
five platforms. Bugs it found are kept as regression tests at the end of the file.

Runs in-process through click's CliRunner for speed. Reproducible: `derandomize=True` and no
example database. Derandomised inputs are the same in every run, so the suite's counts (1,170
inputs in all) keep found bugs found rather than search: `MLCOMPILE_FUZZ_SCALE=10 pytest
tests/test_fuzz.py` runs ten times as many examples, and `MLCOMPILE_FUZZ_SEED=<n>` switches
derandomisation off for fresh ones; `bench/fuzz.py mutated -n 10000` is the big run."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from mlcompile.cli import main

HERE = Path(__file__).parent / "toy_target"
SPEC_FILE = HERE / "fixture" / "mlcompile.yaml"
PROFILE_DIR = HERE / "profiles"
SPEC_TEXT = SPEC_FILE.read_text()
SPEC_DATA: dict[str, Any] = yaml.safe_load(SPEC_TEXT)
PROFILE_TEXTS = {p.stem: p.read_text() for p in sorted(PROFILE_DIR.glob("*.yaml"))}
# a third-party platform with a `settings:` block; `toy` is not installed in this process,
# so this profile is an "unknown platform" error here (test_plugins.py installs it)
PROFILE_TEXTS["toy-dev"] = (
    "apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: toy-dev}\nplatform: toy\n"
    "images: {runtime: ghcr.io/acme/runtime:1}\nsettings: {color: blue, nested: {a: [1, 2]}}\n"
)
UNINSTALLED = {"toy-dev"}
PROFILE_DATA = {name: yaml.safe_load(text) for name, text in PROFILE_TEXTS.items()}

SCALE = float(os.environ.get("MLCOMPILE_FUZZ_SCALE", "1"))
_SEED = os.environ.get("MLCOMPILE_FUZZ_SEED")


def fuzz_settings(examples: int):
    decorated = settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=_SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )
    if _SEED is None:
        return decorated
    return lambda f: seed(int(_SEED))(decorated(f))


LOCATED_ERROR = re.compile(r"^[^:\n]+:\d+:\d+: error: ", re.M)

# ------------------------------------------------------------------------------ the values

JUNK_STRINGS = [
    "", " ", "\t", "x", "A", "UPPER-case", "a" * 41, "-leading-dash", "trailing-", "has space", "a_b",
    "nvidia-t5", "nvidia-a100", "tpu-v9", "customer_activity:nope", "nope:orders_30d", "customer_activity",
    ":", "a:b:c", "bq://", "gs://bucket", "s3://", "ftp://host/x", "file://", "file://../../../etc/passwd",
    "file:///abs/path.csv", "http://user:hunter2@host/x", "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a" * 36,
    "https://hooks.slack.com/services/T000/B000/XXXX", "-----BEGIN RSA PRIVATE KEY-----",
    "secret://", "secret://x", "secret:// spaced", "60 * * * *", "* * *", "* * * * * *", "@daily", "0 0 31 2 *",
    "0d", "-1d", "1.5d", "99999999999999999999d", "1y", "0Gi", "1.5Gi", "16GB", "-4Gi", "1e3Gi",
    "Europe/Nowhere", "utc", "Etc/GMT+14", "../../etc/passwd", "roc-auc", "ROC_AUC", "loss", "auc_roc",
    "sklearn", "os.system", "sklearn..X", "__import__('os')", "${HOME}", "{{ jinja }}", "null", "~",
    "true", "no", "0x1F", "1e309", ".nan", "-.inf", "2025-01-01", "12:30:00", "canary", "table", "csv",
    "kubeflow", "vertex", "local", "toy", "float", "int", "categorical", "email", "webhook", "retrain",
    "日本語", "\u202eevil", "e\u0301", "\U0001f600", "\ufeffbom", "zero\u200bwidth", "line\nbreak",
    "nul\x00byte", "bell\x07", "\x85nel", "\ud7ff", "a" * 5000,
]  # fmt: skip

WRONG_SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, -100, 1, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.5, 1e-300, 1e300, float("inf"), float("nan")]),
    st.booleans(),
    st.none(),
    st.sampled_from(JUNK_STRINGS),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=400),
)
WRONG_VALUES = st.one_of(
    WRONG_SCALARS,
    st.lists(WRONG_SCALARS, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(["name", "type", "min", "uri", "x", ""]), st.text(max_size=8)), WRONG_SCALARS, max_size=3),
    st.just([]),
    st.just({}),
    st.just([[[[]]]]),
    st.just({"name": "customer"}),
)
JUNK_KEYS = st.one_of(
    st.sampled_from(["nme", "Name", "extra", "features_", "overides", "schedul", "", " ", "1", "true", "null", "a" * 300, "ключ"]),
    st.text(min_size=1, max_size=12),
)


# ------------------------------------------------------------------------------ mutations


def leaf_paths(data: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path of the document except the root: keys, list items, containers and leaves."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from leaf_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield (*prefix, index)
            yield from leaf_paths(value, (*prefix, index))


def parent_of(data: Any, path: tuple) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


def string_values(data: Any) -> list[Any]:
    found: list[Any] = []
    for path in leaf_paths(data):
        value = parent_of(data, path)[path[-1]]
        if not isinstance(value, dict | list):
            found.append(value)
    return found


OPERATIONS = ("delete", "wrong_type", "junk_string", "rename_key", "duplicate_item", "move_value", "wrap", "set_key")


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(leaf_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = parent_of(data, path), path[-1]
        operation = draw(st.sampled_from(OPERATIONS))
        if operation == "delete":
            del parent[last]
        elif operation == "wrong_type":
            parent[last] = copy.deepcopy(draw(WRONG_VALUES))  # st.just() hands out one shared object
        elif operation == "junk_string":
            parent[last] = draw(st.one_of(st.sampled_from(JUNK_STRINGS), st.text(max_size=50)))
        elif operation == "rename_key" and isinstance(parent, dict):
            parent[draw(JUNK_KEYS)] = parent.pop(last)
        elif operation == "duplicate_item" and isinstance(parent, list):
            parent.insert(last, copy.deepcopy(parent[last]))
        elif operation == "move_value":
            # a value from elsewhere in the document: names where metrics go, URIs where names go …
            values = string_values(data) or [None]
            parent[last] = copy.deepcopy(draw(st.sampled_from(values)))
        elif operation == "wrap":
            value = parent[last]
            parent[last] = copy.deepcopy(draw(st.sampled_from([[value], {"value": value}, [value, value]])))
        elif operation == "set_key" and isinstance(parent[last], dict):
            parent[last][draw(JUNK_KEYS)] = copy.deepcopy(draw(WRONG_VALUES))
        else:
            parent[last] = None
    return data


# libyaml's emitter: the mutated documents are written ~10x faster than by PyYAML's own
DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(data: Any) -> bytes:
    return yaml.dump(data, Dumper=DUMPER, allow_unicode=True, sort_keys=False, width=10_000).encode()


YAML_FRAGMENTS = [
    "apiVersion: mlcompile/v1", "kind: MLSystem", "kind: Target", "metadata: {name: abc}", "metadata:",
    "  name: churn", "features:", "  entities:", "    - name: customer", "      join_keys: [id]",
    "training: {}", "- a", "- ", "? complex", ": value", "key: value", "key:", "  - nested", "a: &anchor {x: 1}",
    "b: *anchor", "c: *undefined", "<<: *anchor", "<<: [*anchor, *anchor]", "<<: 1", "!!python/object/apply:os.system ['true']",
    "!!binary aGVsbG8=", "!custom tag", "!!set {a, b}", "!!omap [a: 1]", "%YAML 1.1", "%TAG ! tag:example.com,2000:",
    "---", "...", "{", "}", "[", "]", "{a: [b, {c: d}]}", "'unterminated", '"unterminated', '"\\x00\\uffff"', "|", ">-",
    "  indented", "\tTab: bad", "# comment", "@reserved", "`backtick", "&a [*a]", "a: !!int nope", "a: !!float x",
    "a: 0o17", "a: 0x_", "a: 1_000", "a: 2001-12-14t21:59:43.10-05:00", "a: 2025-13-45", "a: .inf", "a: ~",
    "1: int key", "0x_: bad int key", "0b_: bad binary key", "2001-13-45: bad date key", "1_0: underscored key",
    "yes: bool key", "0123: octal key", "[a, b]: list key", "{a: b}: map key", "null: x", "true: y", "a: b: c", "x: [1, 2", "y: {1: 2",
    "\ufeff", "\u2028", "\x85", "é: ü",
]  # fmt: skip

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join('*' + chr(97 + i) for _ in range(9))}]\n" for i in range(8)
)
RECURSIVE = "apiVersion: &a [*a]\n"
DEEP = "a: " + "[" * 200 + "]" * 200 + "\n"


@st.composite
def raw_documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["text", "fragments", "truncated", "line_edit", "bytes", "byte_flip", "specials"]))
    if kind == "text":
        return draw(st.text(max_size=300)).encode("utf-8", "surrogatepass")
    if kind == "fragments":
        return "\n".join(draw(st.lists(st.sampled_from(YAML_FRAGMENTS), min_size=1, max_size=12))).encode()
    if kind == "truncated":
        return SPEC_TEXT[: draw(st.integers(min_value=0, max_value=len(SPEC_TEXT)))].encode()
    if kind == "line_edit":
        lines = SPEC_TEXT.splitlines()
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "indent", "dedent", "dup", "replace"]))
        if edit == "drop":
            del lines[index]
        elif edit == "indent":
            lines[index] = draw(st.sampled_from([" ", "  ", "\t", "     "])) + lines[index]
        elif edit == "dedent":
            lines[index] = lines[index].lstrip()
        elif edit == "dup":
            lines.insert(index, lines[index])
        else:
            lines[index] = draw(st.sampled_from(YAML_FRAGMENTS))
        return "\n".join(lines).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=400))
    if kind == "byte_flip":
        raw = bytearray(SPEC_TEXT.encode())
        offset = draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[offset] = draw(st.integers(min_value=0, max_value=255))
        return bytes(raw)
    return draw(st.sampled_from([ALIAS_BOMB, RECURSIVE, DEEP, "", "\n", "   ", "---\n---\n", "- 1\n- 2\n", "42", "'str'", "~", "a: 1\na: 2\n"])).encode()


# ------------------------------------------------------------------------------ running


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "spec").mkdir()
    shutil.copy(SPEC_FILE, root / "spec" / "valid.yaml")
    (root / "profiles").mkdir()
    for name, text in PROFILE_TEXTS.items():
        (root / "profiles" / f"{name}.yaml").write_text(text)
    (root / "mutated-profiles").mkdir()
    for name, text in PROFILE_TEXTS.items():
        (root / "mutated-profiles" / f"{name}.yaml").write_text(text)
    return root


RUNNER = CliRunner()


def run_validate(spec: Path, profiles: list[Path]) -> Result:
    args = ["validate", str(spec)]
    for profile in profiles:
        args += ["--target", str(profile)]
    return RUNNER.invoke(main, args, catch_exceptions=True)


def assert_clean(result: Result, what: bytes | str) -> None:
    shown = what if isinstance(what, str) else what[:2000].decode("utf-8", "replace")
    context = f"\n--- input ---\n{shown[:3000]}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}{context}") from result.exception
    assert result.exit_code in (0, 2), f"exit {result.exit_code}{context}"
    if currently_in_test_context():
        event(f"exit {result.exit_code}")  # `pytest --hypothesis-show-statistics` shows the mix
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, f"traceback shown{context}"
        assert "internal error" not in stream, f"internal error{context}"
    if result.exit_code == 2:
        assert LOCATED_ERROR.search(result.stderr), f"exit 2 without a located 'file:line:col: error:' line{context}"


def test_fixture_is_valid(workspace: Path) -> None:
    """The starting points are valid, for every profile: the mutations start from 'exit 0'."""
    result = run_validate(workspace / "spec" / "valid.yaml", [])
    assert result.exit_code == 0, result.stderr
    for name in sorted(set(PROFILE_TEXTS) - UNINSTALLED):
        result = run_validate(workspace / "spec" / "valid.yaml", [workspace / "profiles" / f"{name}.yaml"])
        assert result.exit_code == 0, (name, result.stderr)


TARGET_CHOICES = st.sampled_from(
    [(), ("local",), ("gcp-prod",), ("aws-prod",), ("kfp-prod",), ("azure-prod",), ("toy-dev",), ("local", "gcp-prod", "aws-prod", "kfp-prod", "azure-prod")]
)


@fuzz_settings(500)
@given(data=mutated(SPEC_DATA), targets=TARGET_CHOICES)
def test_mutated_specs(workspace: Path, data: dict[str, Any], targets: tuple[str, ...]) -> None:
    raw = dump(data)
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(raw)
    assert_clean(run_validate(spec, [workspace / "profiles" / f"{t}.yaml" for t in targets]), raw)


@fuzz_settings(300)
@given(raw=raw_documents(), with_profile=st.booleans())
def test_raw_documents(workspace: Path, raw: bytes, with_profile: bool) -> None:
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(raw)
    assert_clean(run_validate(spec, [workspace / "profiles" / "local.yaml"] if with_profile else []), raw)


@fuzz_settings(250)
@given(
    name=st.sampled_from(sorted(PROFILE_DATA)),
    data=st.data(),
    mode=st.sampled_from(["mutated", "mutated", "mutated", "with_original", "truncated", "raw"]),
)
def test_mutated_profiles(workspace: Path, name: str, data: st.DataObject, mode: str) -> None:
    """Mutated target profiles passed with --target (alone, or beside their valid original,
    which can collide on the profile name)."""
    profile = workspace / "mutated-profiles" / "mutated.yaml"
    if mode == "truncated":
        text = PROFILE_TEXTS[name]
        raw = text[: data.draw(st.integers(min_value=0, max_value=len(text)))].encode()
    elif mode == "raw":
        raw = data.draw(raw_documents())
    else:
        raw = dump(data.draw(mutated(PROFILE_DATA[name])))
    profile.write_bytes(raw)
    profiles = [profile]
    if mode == "with_original":
        profiles.append(workspace / "mutated-profiles" / f"{name}.yaml")
    assert_clean(run_validate(workspace / "spec" / "valid.yaml", profiles), raw)


@fuzz_settings(100)
@given(data=mutated(SPEC_DATA))
def test_mutated_specs_build_for_local(workspace: Path, data: dict[str, Any]) -> None:
    """`build` goes further than `validate` (render, manifest, atomic write): same contract,
    and a successful build's manifest matches the files written."""
    raw = dump(data)
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(raw)
    out = workspace / "out"
    result = RUNNER.invoke(main, ["build", str(spec), "--target", str(workspace / "profiles" / "local.yaml"), "--out", str(out)])
    assert_clean(result, raw)
    if result.exit_code == 0:
        manifest = json.loads((out / "local" / "manifest.json").read_text())
        for entry in manifest["files"]:
            assert hashlib.sha256((out / "local" / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


ACCELERATORS = ["nvidia-t4", "nvidia-l4", "nvidia-a10g", "nvidia-v100", "nvidia-a100-40gb", "nvidia-a100-80gb", "nvidia-h100-80gb", "tpu-v5e"]
ACCELERATOR = st.one_of(st.none(), st.fixed_dictionaries({"type": st.sampled_from(ACCELERATORS), "count": st.sampled_from([1, 2, 4, 8])}))
SERVING_RESOURCES = st.fixed_dictionaries(
    {"cpu": st.sampled_from([0.5, 1, 4, 16]), "memory": st.sampled_from(["512Mi", "4Gi", "32Gi"])},
    optional={"accelerator": ACCELERATOR, "spot": st.booleans(), "timeout": st.sampled_from(["30s", "5m"])},
)
# values each field may take in a *valid* spec: these variants mostly still validate, so that
# they reach lowering and the targets' check() and render() with many shapes of the spec
VALID_VARIANTS: dict[tuple, st.SearchStrategy[Any]] = {
    ("training", "resources", "cpu"): st.sampled_from([0.5, 1, 2, 8, 32, 96]),
    ("training", "resources", "memory"): st.sampled_from(["512Mi", "1Gi", "7.5Gi", "64Gi", "1Ti"]),
    ("training", "resources", "accelerator"): ACCELERATOR,
    ("training", "resources", "replicas"): st.sampled_from([1, 2, 4]),
    ("training", "resources", "spot"): st.booleans(),
    ("training", "resources", "timeout"): st.sampled_from(["90s", "30m", "1h", "7d"]),
    ("training", "tuning"): st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {
                "objective": st.fixed_dictionaries(
                    {"metric": st.sampled_from(["roc_auc", "accuracy", "f1"]), "goal": st.sampled_from(["maximize", "minimize"])}
                ),
                "max_trials": st.sampled_from([1, 4, 20]),
                "parallel_trials": st.sampled_from([1, 2, 4]),
                "algorithm": st.sampled_from(["bayesian", "random", "grid"]),
                "params": st.sampled_from(
                    [
                        {"learning_rate": {"type": "float", "min": 0.01, "max": 0.3, "scale": "log"}},
                        {"max_iter": {"type": "int", "min": 10, "max": 500}, "loss": {"type": "categorical", "values": ["log_loss", 1, 2.5, True]}},
                        {"l2_regularization": {"type": "float", "min": 0.0, "max": 1.0}, "max_depth": {"type": "int", "min": 2, "max": 8, "scale": "log"}},
                    ]
                ),
            }
        ),
    ),
    ("training", "trainer"): st.sampled_from(
        [
            {"sklearn": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {}}},
            {
                "sklearn": {
                    "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
                    "params": {"max_iter": 10, "class_weight": None, "categorical_features": ["plan"]},
                }
            },
            {
                "container": {
                    "image": "ghcr.io/acme/train:1",
                    "command": ["python", "-m", "train"],
                    "args": ["--x", "1"],
                    "env": {"MODE": "fast", "API_TOKEN": "secret://train-token"},
                }
            },
            {"container": {"image": "ghcr.io/acme/train@sha256:" + "a" * 64}},
        ]
    ),
    ("training", "evaluation", "gates"): st.sampled_from(
        [[], [{"metric": "roc_auc", "min": 0.5}], [{"metric": "accuracy", "max": 0.99}, {"metric": "f1", "min_delta_vs_production": -0.01}]]
    ),
    ("training", "dataset", "split"): st.sampled_from([{"test_fraction": 0.5}, {"test_fraction": 0.01, "seed": 0}]),
    ("features", "views", 0, "online"): st.booleans(),
    ("features", "views", 0, "ttl"): st.sampled_from(["1s", "90m", "365d"]),
    ("registry", "approval"): st.sampled_from(["manual", "auto"]),
    ("registry", "aliases"): st.sampled_from([[], ["candidate", "latest"]]),
    ("registry", "tags"): st.sampled_from([{}, {"a": "b", "team-x": "y" * 63}]),
    ("deployment", "online"): st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"endpoint": st.sampled_from(["churn", "churn-endpoint-with-a-long-name-123"])},
            optional={
                "resources": SERVING_RESOURCES,
                "replicas": st.sampled_from([{"min": 0, "max": 1}, {"min": 1, "max": 1}, {"min": 2, "max": 10}]),
                "autoscaling": st.sampled_from([{"metric": "cpu", "target": 70}, {"metric": "requests_per_replica", "target": 100}]),
                "rollout": st.sampled_from(
                    [
                        {"strategy": "replace"},
                        {"strategy": "blue_green"},
                        {"strategy": "canary", "canary_percent": 1},
                        {"strategy": "canary", "canary_percent": 99},
                    ]
                ),
            },
        ),
    ),
    ("deployment", "batch"): st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {
                "schedule": st.sampled_from(["0 3 * * *", "*/15 * * * *", "0 0 1 * *", "30 6 * * 1-5"]),
                "input": st.just({"source": "transactions"}),
                "output": st.just({"uri": "file://data/scores.csv"}),
            },
            optional={"timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"]), "resources": SERVING_RESOURCES},
        ),
    ),
    ("monitoring", "drift"): st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"threshold": st.sampled_from([0.05, 0.2, 1.0])},
            optional={
                "method": st.sampled_from(["psi", "ks", "jensen_shannon", "wasserstein"]),
                "features": st.sampled_from(["all", ["customer_activity:orders_30d"], ["customer_activity:plan", "customer_activity:spend_30d"]]),
            },
        ),
    ),
    ("monitoring", "performance"): st.one_of(
        st.none(), st.just({"metric": "accuracy", "min": 0.6, "ground_truth": {"source": "churn_labels", "column": "churned"}})
    ),
    ("monitoring", "alerts"): st.sampled_from([[], [{"channel": "webhook", "url": "secret://hook"}], [{"channel": "email", "to": ["a@b.co", "c@d.io"]}]]),
    ("monitoring", "on_breach"): st.sampled_from(["retrain", "alert"]),
    ("monitoring", "timezone"): st.sampled_from(["UTC", "Australia/Lord_Howe"]),
    ("monitoring",): st.none(),
    ("retraining",): st.one_of(
        st.none(), st.sampled_from([{"schedule": "0 4 * * 0", "timezone": "Pacific/Chatham"}, {"on_new_data": {"source": "churn_labels"}}, {"on_drift": True}])
    ),
    ("metadata", "labels"): st.sampled_from([{}, {"cost-center": "c42", "env": "prod"}]),
    ("metadata", "description"): st.sampled_from([None, "", "ünïcødé — \"quotes\" 'and' {braces} $dollars {{jinja}} \\backslash", "x" * 2000]),
}


def _set_path(data: dict[str, Any], path: tuple, value: Any) -> None:
    for part in path[:-1]:
        if isinstance(part, str):
            if data.get(part) is None:
                data[part] = {}  # an earlier variant removed the section: start it afresh
            data = data[part]
        else:
            data = data[part]
    data[path[-1]] = value


@st.composite
def valid_variants(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(SPEC_DATA)
    for path in draw(st.lists(st.sampled_from(sorted(VALID_VARIANTS, key=str)), min_size=1, max_size=5, unique=True)):
        value = copy.deepcopy(draw(VALID_VARIANTS[path]))
        parent: Any = data
        for part in path[:-1]:
            parent = parent.get(part) if isinstance(parent, dict) else None
        if value is None and isinstance(parent, dict) and draw(st.booleans()):
            parent.pop(path[-1], None)  # absent rather than null
        else:
            _set_path(data, path, value)
    return data


ALL_PROFILES = st.sampled_from(["local", "gcp-prod", "aws-prod", "kfp-prod", "azure-prod"])


@fuzz_settings(20)  # a cloud render takes 0.1-1 s: a few here, MLCOMPILE_FUZZ_SCALE for a deep run
@given(data=st.one_of(valid_variants(), mutated(SPEC_DATA)), profile=ALL_PROFILES)
def test_spec_variants_build_for_every_target(workspace: Path, data: dict[str, Any], profile: str) -> None:
    """The same contract through every target's check() and render(), on spec variants that
    mostly stay valid (plus a few broken ones); a build's manifest matches what was written."""
    raw = dump(data)
    spec = workspace / "spec" / "mlcompile.yaml"
    spec.write_bytes(raw)
    out = workspace / "out-all"
    result = RUNNER.invoke(main, ["build", str(spec), "--target", str(workspace / "profiles" / f"{profile}.yaml"), "--out", str(out)])
    assert_clean(result, raw)
    if result.exit_code == 0:
        manifest = json.loads((out / profile / "manifest.json").read_text())
        assert manifest["files"], "a build with no files"
        for entry in manifest["files"]:
            assert hashlib.sha256((out / profile / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


NON_FINITE = [
    (("training", "evaluation", "gates", 0, "min"), float("nan"), ()),
    (("monitoring", "performance", "min"), float("-inf"), ()),
    (("training", "tuning", "params", "learning_rate"), {"type": "float", "min": float("-inf"), "max": float("inf")}, ()),
    (("deployment", "online", "autoscaling"), {"metric": "requests_per_replica", "target": float("inf")}, ()),
    (("monitoring", "drift"), {"method": "ks", "threshold": float("inf")}, ()),  # refused since f696d6a
    (("training", "trainer", "sklearn", "params", "learning_rate"), float("nan"), ()),
]


@pytest.mark.parametrize(("path", "value"), [pytest.param(p, v, id=".".join(map(str, p)), marks=m) for p, v, m in NON_FINITE])
def test_non_finite_numbers_are_refused(workspace: Path, path: tuple, value: Any) -> None:
    """A non-finite number is refused at its location (exit 2), or at the very least never
    reaches a build as non-JSON `NaN`/`Infinity`."""
    data = copy.deepcopy(SPEC_DATA)
    parent_of(data, path)[path[-1]] = value
    spec = workspace / "spec" / "non-finite.yaml"
    spec.write_bytes(dump(data))
    out = workspace / "out-non-finite"
    result = RUNNER.invoke(main, ["build", str(spec), "--target", str(workspace / "profiles" / "local.yaml"), "--out", str(out)])
    assert_clean(result, spec.read_text())
    if result.exit_code == 0:
        _strict_json((out / "local" / "plan.json").read_text())
    assert result.exit_code == 2


@pytest.mark.parametrize("path", [("training", "resources", "memory"), ("deployment", "online", "resources", "memory")], ids=".".join)
def test_absurd_memory_is_a_located_error(workspace: Path, path: tuple) -> None:
    data = copy.deepcopy(SPEC_DATA)
    parent_of(data, path)[path[-1]] = "9" * 400 + "Gi"
    spec = workspace / "spec" / "absurd-memory.yaml"
    spec.write_bytes(dump(data))
    result = run_validate(spec, [])
    assert_clean(result, spec.read_text())
    assert result.exit_code == 2
