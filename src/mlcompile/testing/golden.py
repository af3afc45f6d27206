"""Golden folders: a build compared with a folder of expected files byte for byte, or
(deliberately, then reviewed as a diff) written over it."""

from __future__ import annotations

import difflib
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from mlcompile.testing.builds import Build, read_tree

DIFF_LINES = 80  # per file: enough to see what changed, short enough to read in a test report


def differences(actual: Mapping[str, bytes], expected: Mapping[str, bytes], label: str = "built") -> list[str]:
    """What differs between two trees of files: new, missing, and a unified diff per changed file."""
    problems = []
    for name in sorted(set(actual) | set(expected)):
        if name not in expected:
            problems.append(f"new file {name}")
        elif name not in actual:
            problems.append(f"missing file {name}")
        elif actual[name] != expected[name]:
            diff = difflib.unified_diff(
                expected[name].decode(errors="replace").splitlines(),
                actual[name].decode(errors="replace").splitlines(),
                f"expected/{name}",
                f"{label}/{name}",
                lineterm="",
                n=2,
            )
            problems.append("\n".join(list(diff)[:DIFF_LINES]))
    return problems


def _tree(actual: Build | Mapping[str, bytes] | str | os.PathLike[str]) -> Mapping[str, bytes]:
    if isinstance(actual, Build):
        return actual.files
    if isinstance(actual, Mapping):
        return actual
    return read_tree(actual)


def write_golden(actual: Build | Mapping[str, bytes] | str | os.PathLike[str], golden: str | os.PathLike[str]) -> None:
    """Replace the golden folder with these files (nothing else is left in it)."""
    files = _tree(actual)
    golden = Path(golden)
    shutil.rmtree(golden, ignore_errors=True)
    for name, content in files.items():
        (golden / name).parent.mkdir(parents=True, exist_ok=True)
        (golden / name).write_bytes(content)


def assert_matches_golden(
    actual: Build | Mapping[str, bytes] | str | os.PathLike[str], golden: str | os.PathLike[str], *, update: bool = False, regenerate: str = ""
) -> None:
    """The files (a Build, {path: bytes}, or a folder) equal the golden folder byte for byte.
    With `update`, the golden folder is rewritten instead; `regenerate` tells the reader of a
    failure how to do that (e.g. the test command with its --update-golden flag)."""
    if update:
        write_golden(actual, golden)
        return
    expected = read_tree(golden) if Path(golden).is_dir() else {}
    problems = differences(_tree(actual), expected)
    if problems:
        how = f"\n\nregenerate (then review the diff): {regenerate}" if regenerate else ""
        raise AssertionError(f"differs from {golden}:\n" + "\n".join(problems) + how)
