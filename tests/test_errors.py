"""Golden tests of every class of bad input: the exact text a user sees.

Each folder in tests/errors/ is one case: the input files (mlcompile.yaml, targets/*.yaml),
`cmd` (the arguments to `mlcompile`) and `expected.txt` (the exact stderr). A case whose
command prints to standard output (`--format json`) also has `expected.stdout`.
Every case must exit 2, print no traceback and write nothing.

Regenerate after an intended change of wording with

    python -m pytest tests/test_errors.py --update-golden

and read the diff of tests/errors/*/expected.txt before committing it.
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlcompile.cli import main
from mlcompile.spec import loader

HERE = Path(__file__).parent
CASES_DIR = HERE / "errors"
BASE_DIR = CASES_DIR / "_base"  # the valid specs and profiles every case starts from
GOLDEN_FILES = ("expected.txt", "expected.stdout")
CASES = sorted(p.name for p in CASES_DIR.iterdir() if (p / "cmd").is_file())


def _invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(main, args, catch_exceptions=True)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_user_error(result: Result) -> None:
    """Exit 2, and the failure is mlcompile's own report, not a crash."""
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything, everything
    assert "internal error" not in everything, everything
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, f"exit status {result.exit_code}, expected 2\n{result.stderr}"


def _check_golden(path: Path, actual: str, update: bool, case: str) -> None:
    """`actual` must equal the golden file byte for byte; --update-golden rewrites it."""
    if update:
        if actual or path.name == "expected.txt":
            path.write_bytes(actual.encode("utf-8"))
        elif path.exists():
            path.unlink()
        return
    expected = path.read_bytes().decode("utf-8") if path.exists() else ""
    if expected == actual:
        return
    shown = path.relative_to(HERE.parent)
    diff = "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{shown} (expected)",
            tofile="actual",
        )
    )
    regenerate = f'python -m pytest "tests/test_errors.py::test_error_case[{case}]" --update-golden'
    pytest.fail(f"{case}: output differs from {shown}\n{diff}\nif the new output is right, regenerate with:\n    {regenerate}", pytrace=False)


@pytest.mark.parametrize("case", CASES)
def test_error_case(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, update_golden: bool) -> None:
    source = CASES_DIR / case
    work = tmp_path / case  # a copy, so that a case can never change the repository
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("cmd", *GOLDEN_FILES))
    before = _files(work)
    args = shlex.split((source / "cmd").read_text())

    result = _invoke(args, work, monkeypatch)

    _assert_user_error(result)
    assert _files(work) == before, "validating must not create or change files"
    _check_golden(source / "expected.txt", result.stderr, update_golden, case)
    _check_golden(source / "expected.stdout", result.stdout, update_golden, case)


def test_every_case_has_a_command_and_a_golden_file() -> None:
    folders = [p for p in CASES_DIR.iterdir() if p.is_dir() and p != BASE_DIR]
    assert folders, "no cases found"
    for folder in folders:
        assert (folder / "cmd").is_file(), f"{folder.name}: no cmd file"
        assert (folder / "expected.txt").is_file(), f"{folder.name}: no expected.txt; run pytest --update-golden"


# ------------------------------------------------------------------ the valid starting points


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "mlcompile.yaml"],
        ["validate", "minimal.yaml"],
        ["validate", "mlcompile.yaml", "--target", "targets/aws-prod.yaml", "--target", "targets/azure-prod.yaml"],
        ["validate", "minimal.yaml", "--target", "targets/aws-prod.yaml"],
    ],
)
def test_base_specs_are_valid(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case breaks one thing of these; if they were invalid, the cases would prove little."""
    result = _invoke(args, BASE_DIR, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert " error: " not in result.stderr


def test_an_accelerator_the_platform_offers_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nvidia-l4 on SageMaker is valid: the counterpart of the accelerator-not-on-platform case."""
    shutil.copytree(BASE_DIR / "targets", tmp_path / "targets")
    spec = (BASE_DIR / "minimal.yaml").read_text()
    anchor = "    metrics: [roc_auc]\n"
    assert anchor in spec
    spec = spec.replace(anchor, anchor + "  resources:\n    accelerator: {type: nvidia-l4, count: 1}\n")
    (tmp_path / "mlcompile.yaml").write_text(spec)
    result = _invoke(["validate", "mlcompile.yaml", "--target", "targets/aws-prod.yaml"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.stderr


# ------------------------------------------------------------------ cases that need more than a golden file


def test_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated here rather than committed: 5 MiB and one byte of otherwise valid YAML."""
    spec = (BASE_DIR / "minimal.yaml").read_bytes()
    padding = loader.MAX_FILE_BYTES + 1 - len(spec)
    (tmp_path / "mlcompile.yaml").write_bytes(spec + b"#" * (padding - 1) + b"\n")
    assert (tmp_path / "mlcompile.yaml").stat().st_size == loader.MAX_FILE_BYTES + 1

    result = _invoke(["validate", "mlcompile.yaml"], tmp_path, monkeypatch)

    _assert_user_error(result)
    assert result.stderr == "mlcompile.yaml:1:1: error: file is 5.0 MiB; specs are limited to 5 MiB\n1 error\n"


def test_a_file_at_the_size_limit_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = (BASE_DIR / "minimal.yaml").read_bytes()
    padding = loader.MAX_FILE_BYTES - len(spec)
    (tmp_path / "mlcompile.yaml").write_bytes(spec + b"#" * (padding - 1) + b"\n")
    result = _invoke(["validate", "mlcompile.yaml"], tmp_path, monkeypatch)
    assert result.exit_code == 0, result.stderr


def test_python_tags_execute_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`!!python/object/apply:os.system` is refused without being called (the golden case
    shows the message; here we prove the side effect never happens)."""
    calls: list[object] = []
    monkeypatch.setattr(os, "system", lambda *a, **k: calls.append(a) or 0)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: calls.append(a))
    shutil.copytree(CASES_DIR / "python-tag", tmp_path / "case")
    work = tmp_path / "case"
    assert "!!python/object/apply:os.system" in (work / "mlcompile.yaml").read_text()

    result = _invoke(["validate", "mlcompile.yaml"], work, monkeypatch)

    _assert_user_error(result)
    assert "unsupported YAML tag '!!python/object/apply:os.system'" in result.stderr
    assert calls == []
    assert not (work / "pwned-by-yaml").exists()


def test_json_format_reports_the_same_diagnostics(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--format json` prints a machine-readable report on stdout, nothing on stderr, exit 2;
    the diagnostics are those the text format shows."""
    folder = CASES_DIR / "many-errors-json"
    assert "--format json" in (folder / "cmd").read_text()
    as_json = _invoke(["validate", "mlcompile.yaml", "--format", "json"], folder, monkeypatch)
    as_text = _invoke(["validate", "mlcompile.yaml"], folder, monkeypatch)

    _assert_user_error(as_json)
    assert as_json.stderr == ""
    report = json.loads(as_json.stdout)
    assert report["valid"] is False
    diagnostics = report["diagnostics"]
    assert len(diagnostics) >= 2
    for d in diagnostics:
        assert set(d) == {"file", "line", "col", "severity", "path", "message", "hint"}
        assert d["file"] == "mlcompile.yaml" and d["severity"] == "error"
    rendered = [f"{d['file']}:{d['line']}:{d['col']}: error: {d['path']}: {d['message']}" for d in diagnostics]
    assert [line for line in as_text.stderr.splitlines() if ": error: " in line] == rendered
