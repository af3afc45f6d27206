"""Text that is not what it looks like, in and out:

* control characters (NUL, ESC, CR, DEL, C1, bidi overrides, zero-width …) anywhere in a spec or
  profile are refused by validate, located at the value or key, exit 2 — never a crash later;
* every string mlcompile writes into YAML reads back as the same string, in PyYAML (YAML 1.1)
  and ruamel (YAML 1.2): names such as `null`, `true`, `off`, `123`, `0x1f` or `1e3` are quoted,
  control characters escaped — through `dump`, the templates' `scalar`, a build's
  feature_store.yaml and `mlcompile init --name`;
* what mlcompile prints of user text (diagnostics, errors, explain and graph) shows each
  terminal-controlling character as an escape, so no value can rewrite or hide a line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlcompile import yaml_emit
from mlcompile.cli import main
from mlcompile.diagnostics import Diagnostic, escape_terminal, is_unsafe_character

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests/fixtures/system"
UNSAFE = ["\x00", "\x1b", "\r", "\x7f", "\x85", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028"]
YAML_TYPED = [
    "null",
    "Null",
    "NULL",
    "~",
    "true",
    "True",
    "yes",
    "y",
    "n",
    "no",
    "off",
    "On",
    "123",
    "-1",
    "0x1f",
    "0o17",
    "017",
    "1e3",
    "1_000",
    "12:30",
    ".5",
    ".inf",
    ".NaN",
    "2024-01-01",
    "<<",
    "=",
    "",
]
_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _validate(spec: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(spec), "--target", str(spec.parent / "targets")])
    return result.exit_code, result.stderr


def _copy_fixture(folder: Path) -> Path:
    shutil.copytree(FIXTURE, folder, dirs_exist_ok=True)
    return folder / "mlcompile.yaml"


# ---------------------------------------------------------------------- refused at validate


@_SETTINGS
@given(
    prefix=st.text(alphabet="abc -_", max_size=3),
    char=st.sampled_from(UNSAFE) | st.characters(categories=["Cc", "Cf"], exclude_characters="\t\n"),
    where=st.sampled_from(["value", "key"]),
)
def test_a_control_character_in_a_value_or_key_is_refused_where_it_is(tmp_path: Path, prefix: str, char: str, where: str) -> None:
    spec = _copy_fixture(tmp_path / "s")
    escaped = yaml_emit.scalar(prefix + char)  # a YAML double-quoted scalar with the character escaped
    text = spec.read_text()
    if where == "value":
        text = text.replace('args: [--epochs, "3"]', f"args: [--epochs, {escaped}]")
    else:
        text = text.replace("labels: {team: growth}", f"labels: {{team: growth, {escaped}: x}}")
    spec.write_text(text)
    code, stderr = _validate(spec)
    assert code == 2, stderr
    assert "holds the control character" in stderr and "Traceback" not in stderr
    line = 36 if where == "value" else 6
    assert f"mlcompile.yaml:{line}:" in stderr
    assert not any(is_unsafe_character(c) for c in stderr.replace("\n", "")), "printed raw"


def test_a_profile_value_with_a_nul_is_refused_in_the_profile(tmp_path: Path) -> None:
    spec = _copy_fixture(tmp_path / "s")
    profile = spec.parent / "targets/gcp-prod.yaml"
    profile.write_text(profile.read_text().replace("region: us-central1", 'region: "us-central1\\0"'))
    code, stderr = _validate(spec)
    assert code == 2 and "targets/gcp-prod.yaml:7:36: error: vertex.region: the value holds the control character \\x00 at position 12" in stderr


# ---------------------------------------------------------------------- written YAML reads back


def _readers() -> list:
    readers = [yaml.safe_load]
    try:
        from ruamel.yaml import YAML
    except ImportError:
        return readers
    return [*readers, YAML(typ="safe", pure=True).load]


@given(st.one_of(st.sampled_from(YAML_TYPED), st.text(max_size=20)))
@settings(max_examples=300, deadline=None)
def test_every_string_reads_back_as_itself_in_yaml_1_1_and_1_2(value: str) -> None:
    dumped = yaml_emit.dump({"key": value, "list": [value]})
    inline = "key: " + yaml_emit.scalar(value) + "\n"
    for load in _readers():
        assert load(dumped) == {"key": value, "list": [value]}, dumped
        assert load(inline) == {"key": value}, inline
    assert "\x00" not in dumped and "\x1b" not in dumped and "\x00" not in inline


@pytest.mark.parametrize("name", ["null", "true", "off", "123", "0x1f", "1e3", "no"])
def test_init_with_a_yaml_typed_name_writes_a_spec_that_validates(tmp_path: Path, name: str) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "p"), "--name", name])
    if result.exit_code == 2:  # refused as a name: fine, but said so
        assert "--name" in result.stderr
        return
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((tmp_path / "p/mlcompile.yaml").read_text())
    assert data["metadata"]["name"] == name
    code, stderr = _validate(tmp_path / "p/mlcompile.yaml")
    assert code == 0, stderr


@_SETTINGS
@given(st.sampled_from(["null", "true", "off", "yes", "123", "0x1f", "1e3", "2024-01-01"]) | st.from_regex(r"[a-z0-9][a-z0-9-]{1,8}[a-z0-9]", fullmatch=True))
@example("null")
def test_the_feast_repository_names_the_project_exactly(tmp_path: Path, name: str) -> None:
    spec = _copy_fixture(tmp_path / "s")
    spec.write_text(spec.read_text().replace("name: churn-prediction", f"name: {yaml_emit.scalar(name)}", 1))
    from mlcompile.build import compile_system, resolve_profiles

    compilation = compile_system(str(spec), resolve_profiles(str(spec), [str(spec.parent / "targets/local.yaml")]), render=True, git_commit=None)
    (result,) = compilation.results
    text = next(f.content for f in result.files if f.path.endswith("feature_store.yaml")).decode()
    for load in _readers():
        assert load(text)["project"] == name.replace("-", "_")


# ---------------------------------------------------------------------- printed escaped


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_escaped_text_holds_no_terminal_control_and_keeps_plain_text(text: str) -> None:
    shown = escape_terminal(text, newlines=True)
    assert not any(is_unsafe_character(c) or c == "\n" for c in shown)
    if not any(is_unsafe_character(c) or c == "\n" for c in text):
        assert shown == text


def test_a_diagnostic_cannot_forge_a_line() -> None:
    forged = Diagnostic("spec\x1b[2K.yaml", 1, 1, "error", "a.b", "bad value 'x\rmlcompile.yaml:1:1: ok\u202e'", "try\nthis")
    rendered = forged.render()
    assert rendered.count("\n") == 1 and "\r" not in rendered and "\x1b" not in rendered and "\u202e" not in rendered
    assert "spec\\x1b[2K.yaml:1:1: error: a.b: bad value 'x\\x0dmlcompile.yaml:1:1: ok\\u202e'\n  hint: try\\x0athis" == rendered


def test_a_file_name_with_controls_is_printed_escaped_by_validate_and_explain(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _copy_fixture(folder)
    spec = folder / "mlc\x1b[31mompile\u202e.yaml"
    (folder / "mlcompile.yaml").rename(spec)
    spec.write_text(spec.read_text().replace("name: churn-prediction", "name: Churn"))  # an error, located in this file
    for args in (["validate", str(spec), "--target", str(folder / "targets")], ["explain", str(spec), "--target", str(folder / "targets/local.yaml")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert "mlc\\x1b[31mompile\\u202e.yaml:5:" in result.stderr
        assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
