"""What `mlcompile build` does when --out is not what it expects.

* It replaces `OUT/<profile>/` only when that is an earlier build of the profile (it holds
  mlcompile's manifest.json for that profile): a folder or file of the user's that happens to
  bear a profile's name is refused with exit status 2, and nothing is written.
* A fault of the machine while writing (a read-only or full disk, a dangling --out, a folder
  where the lock file goes, a permission) is the user's to fix, not a bug: exit status 2 with
  the path and the reason, never "internal error", and the previous build is left as it was.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlcompile.cli import main
from reliability.test_output_safety import two_profiles  # noqa: F401  (a fixture: the fixture system with profiles local, local-b)


def build(system: Path, out: Path) -> Result:
    args = ["build", str(system / "mlcompile.yaml"), "-t", str(system / "targets"), "-o", str(out), "--git-commit", "none"]
    return CliRunner().invoke(main, args)


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every path below `folder`: a file's bytes, a symlink's target, 'dir' for a folder."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        found[key] = "-> " + os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
    return found


def refused(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    return result.output


# ---------------------------------------------------------------------------- only our own folders


def test_a_folder_of_the_users_named_like_a_profile_survives(two_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "local").mkdir(parents=True)
    (out / "local/notes.txt").write_text("my notes\n")
    before = tree(out)

    output = refused(build(two_profiles, out))

    assert f"{out}/local exists and is not an earlier build of profile 'local'" in output
    assert "nothing was written" in output
    assert tree(out) == before, "not one file written, moved or removed (no lock file, no staging folder)"


@pytest.mark.parametrize(
    "plant",
    ["a file", "a symlink to a folder", "a dangling symlink", "a build of another profile", "a broken manifest"],
)
def test_anything_but_an_earlier_build_of_that_profile_is_refused(two_profiles: Path, tmp_path: Path, plant: str) -> None:
    """`local-b` is always an earlier build; `local` is what the case plants. Neither profile
    is written: a refusal comes before anything is written, for every profile."""
    out = tmp_path / "out"
    assert build(two_profiles, out).exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not mlcompile's")
    local = out / "local"
    if plant == "a build of another profile":
        shutil.rmtree(local)
        shutil.copytree(out / "local-b", local)
    elif plant == "a broken manifest":
        (local / "manifest.json").write_text("{")
    else:
        shutil.rmtree(local)
        if plant == "a file":
            local.write_text("a file of the user's\n")
        else:
            local.symlink_to(elsewhere if plant == "a symlink to a folder" else tmp_path / "missing")
    before = tree(out)

    output = refused(build(two_profiles, out))

    assert f"{out}/local exists and is not an earlier build of profile 'local'" in output
    assert tree(out) == before
    assert tree(elsewhere) == {"keep.txt": b"not mlcompile's"}


def test_an_earlier_build_is_replaced(two_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert build(two_profiles, out).exit_code == 0
    (two_profiles / "mlcompile.yaml").write_text((two_profiles / "mlcompile.yaml").read_text().replace("labels: {team: growth}", "labels: {team: retention}"))
    before = tree(out)
    result = build(two_profiles, out)
    assert result.exit_code == 0, result.output
    assert tree(out) != before
    assert sorted(p.name for p in out.iterdir()) == ["local", "local-b"]
    for name in ("local", "local-b"):
        assert json.loads((out / name / "manifest.json").read_text())["profile"] == name


# ---------------------------------------------------------------------------- faults of the machine


def test_a_dangling_out_symlink_is_refused(two_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "unmounted" / "builds")
    output = refused(build(two_profiles, out))
    assert f"--out {out} is a symbolic link to {tmp_path}/unmounted/builds, which does not exist" in output
    assert not (tmp_path / "unmounted").exists()


def test_a_folder_where_the_lock_file_goes(two_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / ".mlcompile.lock").mkdir(parents=True)
    output = refused(build(two_profiles, out))
    assert f"error: cannot write the build into {out}: {out}/.mlcompile.lock: Is a directory" in output
    assert sorted(p.name for p in out.iterdir()) == [".mlcompile.lock"]


def _fail_under(folder: Path, code: int, with_name: bool):  # type: ignore[no-untyped-def]
    """A replacement for an os/pathlib function that fails with `code` for paths in `folder`."""

    def patch(original):  # type: ignore[no-untyped-def]
        def failing(path, *args, **kwargs):  # type: ignore[no-untyped-def]
            if str(path).startswith(str(folder)):
                raise OSError(code, os.strerror(code), *([str(path)] if with_name else []))
            return original(path, *args, **kwargs)

        return failing

    return patch


# (what the machine does, the function that meets it, its errno, whether the error names a file)
FAULTS = [
    ("read-only filesystem (staging folder)", "os.mkdir", errno.EROFS, True),
    ("permission denied (lock file)", "os.open", errno.EACCES, True),
    ("disk full (writing a file)", "pathlib.Path.write_bytes", errno.ENOSPC, False),
    ("disk quota exceeded (writing a file)", "pathlib.Path.write_bytes", errno.EDQUOT, False),
]


@pytest.mark.parametrize(("what", "function", "code", "named"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_fault_of_the_machine_is_exit_2_with_the_path_and_the_reason(
    two_profiles: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, function: str, code: int, named: bool
) -> None:
    out = tmp_path / "out"
    assert build(two_profiles, out).exit_code == 0
    (two_profiles / "mlcompile.yaml").write_text((two_profiles / "mlcompile.yaml").read_text().replace("labels: {team: growth}", "labels: {team: retention}"))
    previous = tree(out)
    module, _, name = function.rpartition(".")
    owner = {"os": os, "pathlib.Path": pathlib.Path}[module]
    if owner is pathlib.Path:
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, _fail_under(out, code, named)(lambda self, *a, **k: original(self, *a, **k)))
    else:
        monkeypatch.setattr(owner, name, _fail_under(out, code, named)(getattr(owner, name)))

    output = refused(build(two_profiles, out))
    monkeypatch.undo()

    assert f"error: cannot write the build into {out}: " in output
    assert output.rstrip().endswith(os.strerror(code)), output
    if named:
        assert f"{out}/" in output.split("cannot write the build into", 1)[1], "the path that failed is named"
    assert tree(out) == previous, "the previous build is left as it was, and nothing half-written stays"


def test_a_fault_outside_a_build_is_exit_2_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`schema --output` and `init` write files too: the same faults, the same answer."""
    target = tmp_path / "ro" / "schema.json"
    monkeypatch.setattr(pathlib.Path, "write_text", _fail_under(tmp_path / "ro", errno.EROFS, True)(lambda self, *a, **k: None))
    output = refused(CliRunner().invoke(main, ["schema", "--output", str(target)]))
    assert f"error: {target}: Read-only file system" in output

    (tmp_path / "full").mkdir()
    monkeypatch.setattr(pathlib.Path, "write_text", _fail_under(tmp_path / "full", errno.ENOSPC, False)(lambda self, *a, **k: None))
    output = refused(CliRunner().invoke(main, ["init", str(tmp_path / "full" / "churn")]))
    assert "error: No space left on device" in output
