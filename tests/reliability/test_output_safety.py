"""`mlcompile build` writes only inside its --out folder, never leaves a half-written build,
and two builds into the same folder never interleave.

* Every name that becomes part of a path (the system's and the profiles' metadata.name,
  entity, source and view names, the endpoint and the registered model) is checked by the
  spec's own patterns: a hostile one is refused with a located diagnostic and exit status 2,
  and nothing is written. The writer checks again (last line of defence): every output path
  is relative, normalised, without '..', and lands inside its profile's staging folder.
* A build is written into a hidden staging folder inside --out and each profile folder is
  swapped in whole: a build interrupted (SIGINT, SIGKILL) at a known point leaves the
  previous build byte for byte, and the next build removes what the interrupted one left.
* A lock file (OUT/.mlcompile.lock) makes a second build into the same folder wait for the
  first, then give up with exit 2 after MLCOMPILE_LOCK_TIMEOUT seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcompile.build import compile_system, resolve_profiles, write_builds
from mlcompile.build_output import STAGING_PREFIX
from mlcompile.cli import main
from mlcompile.errors import UsageError
from mlcompile.targets.base import OutputFile, is_safe_relative_path
from reliability.example_builds import reference_build

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "system"
EXAMPLES = ("churn", "ranker-gpu", "batch-scoring")  # built by reliability/example_builds.py
PROFILES = ("aws-prod", "azure-prod", "gcp-prod", "kfp-gke", "local")

HOSTILE_NAMES = [
    "../x",
    "/etc/x",
    "a/b",
    "..",
    "a\\b",
    "nul\x00byte",
    "churn-prediction\n",  # `$` in a regular expression matches before a final newline
    "x" * 300,
    "\u0441hurn-prediction",  # Cyrillic 'с', looks like 'c'
    "churn\uff0fprediction",  # fullwidth solidus, looks like '/'
]
IDS = ["dotdot-slash", "absolute", "separator", "dotdot", "backslash", "nul", "trailing-newline", "very-long", "cyrillic-c", "fullwidth-slash"]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def verify_manifests(out: Path) -> None:
    """Every profile folder holds exactly the files its manifest lists, with those sha256s."""
    for folder in (p for p in out.iterdir() if not p.name.startswith(".")):
        listed = json.loads((folder / "manifest.json").read_text())["files"]
        on_disk = {k: v for k, v in tree(folder).items() if k != "manifest.json"}
        assert sorted(on_disk) == sorted(e["path"] for e in listed), folder
        for entry in listed:
            assert hashlib.sha256(on_disk[entry["path"]]).hexdigest() == entry["sha256"], (folder, entry["path"])


def replace_line(path: Path, old: str, new: str) -> int:
    """Replace the first line that is exactly `old`; return its 1-based number."""
    lines = path.read_text().split("\n")
    index = lines.index(old)
    lines[index] = new
    path.write_text("\n".join(lines))
    return index + 1


# ---------------------------------------------------------------------------- names


@pytest.fixture
def churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "examples/churn", tmp_path / "churn")
    shutil.copytree(ROOT / "targets", tmp_path / "targets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# (line as written in examples/churn/mlcompile.yaml, its key, the path the diagnostic names)
SPEC_NAMES = [
    ("  name: churn-prediction", "  name: ", "metadata.name"),
    ("    - name: customer", "    - name: ", "features.entities[0].name"),
    ("    - name: customer_activity_daily", "    - name: ", "features.sources[0].name"),
    ("    - name: customer_activity", "    - name: ", "features.views[0].name"),
    ("  model: churn-classifier", "  model: ", "registry.model"),
    ("    endpoint: churn-scorer", "    endpoint: ", "deployment.online.endpoint"),
]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES, ids=IDS)
def test_a_hostile_name_in_the_spec_is_refused_where_it_is_written(churn: Path, hostile: str) -> None:
    (churn / "out/local").mkdir(parents=True)
    (churn / "out/local/plan.json").write_text("a previous build")
    before = tree(churn / "out")
    spec = churn / "churn/mlcompile.yaml"
    lines = {path: replace_line(spec, line, key + json.dumps(hostile)) for line, key, path in SPEC_NAMES}
    code, output = run("build", "churn/mlcompile.yaml", "-t", "targets/", "-o", "out", "--git-commit", "none")
    assert code == 2, output
    assert "Traceback" not in output and "internal error" not in output
    for path, line in lines.items():
        assert f"churn/mlcompile.yaml:{line}:" in output and f"error: {path}:" in output, (path, output)
    assert tree(churn / "out") == before, "nothing is written when a name is refused"


@pytest.mark.parametrize("hostile", HOSTILE_NAMES, ids=IDS)
def test_a_hostile_profile_name_is_refused_where_it_is_written(churn: Path, hostile: str) -> None:
    line = replace_line(churn / "targets/local.yaml", "  name: local", "  name: " + json.dumps(hostile))
    code, output = run("build", "churn/mlcompile.yaml", "-t", "targets/local.yaml", "-o", "out", "--git-commit", "none")
    assert code == 2, output
    assert f"targets/local.yaml:{line}:" in output and "error: metadata.name:" in output, output
    assert not (churn / "out").exists() or list((churn / "out").iterdir()) == []


def test_every_path_every_target_writes_is_safe() -> None:
    """The names that reach file paths, for every example and every built-in target: each
    manifest path is a safe relative path, each file is inside its profile folder, and the
    folder holds exactly the files its manifest lists."""
    out = reference_build()
    folders = sorted(p for p in out.glob("*/*") if p.is_dir())
    assert len(folders) == len(EXAMPLES) * len(PROFILES)
    for folder in folders:
        assert {p.name for p in folder.parent.iterdir()} == set(PROFILES)
        for entry in json.loads((folder / "manifest.json").read_text())["files"]:
            assert is_safe_relative_path(entry["path"]), entry["path"]
            assert (folder / entry["path"]).resolve().is_relative_to(folder.resolve())
    verify_manifests(out / "churn-prediction")


# ---------------------------------------------------------------------------- the writer


@pytest.mark.parametrize(
    "path",
    ["../escape.json", "/etc/passwd", "a/../../b", "./a", "a//b", "a\\b", "a\nb", "plan.json\n", "nul\x00", "\u00e9.json", "x" * 256, ""],
)
def test_output_paths_are_relative_normalised_and_plain(path: str) -> None:
    with pytest.raises(ValueError, match="unsafe output path"):
        OutputFile(path, "x", b"")


@pytest.fixture
def compiled(tmp_path: Path):  # type: ignore[no-untyped-def]
    spec = str(FIXTURE / "mlcompile.yaml")
    (result,) = compile_system(spec, resolve_profiles(spec, [str(FIXTURE / "targets/local.yaml")]), render=True, git_commit=None).results
    return result


def _forged(path: str) -> OutputFile:
    """An OutputFile whose path skipped its own check (a target that builds it by hand)."""
    forged = object.__new__(OutputFile)
    object.__setattr__(forged, "path", path)
    object.__setattr__(forged, "kind", "x")
    object.__setattr__(forged, "content", b"pwned")
    return forged


@pytest.mark.parametrize("path", ["../../escaped.txt", "/tmp/escaped.txt", "a/../../../escaped.txt"])
def test_the_writer_refuses_a_path_that_slipped_past_the_target(compiled, tmp_path: Path, path: str) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    write_builds([compiled], out)
    before = tree(out)
    compiled.files = [*compiled.files, _forged(path)]
    with pytest.raises(UsageError, match="refusing to write"):
        write_builds([compiled], out)
    assert tree(out) == before
    assert not (tmp_path / "escaped.txt").exists()
    assert sorted(p.name for p in out.iterdir()) == ["local"], "no staging folder, no lock file left"


def test_the_writer_refuses_a_profile_name_that_is_not_one_folder(compiled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    class Hostile:
        name = "../elsewhere"

    compiled.profile = Hostile()
    with pytest.raises(UsageError, match="not a safe folder name"):
        write_builds([compiled], tmp_path / "out")
    assert not (tmp_path / "elsewhere").exists()


def test_a_symlinked_out_folder_and_a_planted_symlink_inside_it(compiled, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--out may be a symlink (the build lands where it points); a profile folder replaced
    by a symlink to somewhere else is refused: never written through, never replaced."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "out").symlink_to(real)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not mlcompile's")
    write_builds([compiled], tmp_path / "out")
    assert (real / "local/manifest.json").is_file()
    shutil.rmtree(real / "local")
    (real / "local").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="is not an earlier build of profile 'local'"):
        write_builds([compiled], tmp_path / "out")
    assert (real / "local").is_symlink()
    assert tree(elsewhere) == {"keep.txt": b"not mlcompile's"}


def test_a_system_name_becomes_one_folder_only_when_safe() -> None:
    from mlcompile.build_output import safe_folder_name

    assert safe_folder_name("churn-prediction", "system") == "churn-prediction"
    for hostile in HOSTILE_NAMES + [".hidden", ".mlcompile.lock"]:
        with pytest.raises(UsageError):
            safe_folder_name(hostile, "system")


# ---------------------------------------------------------------------------- interruptions


@pytest.fixture
def two_profiles(tmp_path: Path) -> Path:
    """The fixture system with two local profiles: two folders to swap, built in ~1 s."""
    shutil.copytree(FIXTURE, tmp_path / "system")
    targets = tmp_path / "system/targets"
    (targets / "gcp-prod.yaml").unlink()
    spec = tmp_path / "system/mlcompile.yaml"
    spec.write_text(spec.read_text().split("\noverrides:")[0] + "\n")  # its overrides are gcp-prod's
    (targets / "local-b.yaml").write_text((targets / "local.yaml").read_text().replace("name: local", "name: local-b"))
    return tmp_path / "system"


def build_command(system: Path, out: Path, spec: str = "mlcompile.yaml") -> list[str]:
    return [sys.executable, "-m", "mlcompile", "build", str(system / spec), "-t", str(system / "targets"), "-o", str(out), "--git-commit", "none"]


def start_paused(command: list[str], point: str) -> subprocess.Popen[str]:
    """Start a build that stops at `point` (MLCOMPILE_TEST_PAUSE) and wait until it is there."""
    # A shell that starts a job in the background (`.ci/run &`) leaves SIGINT ignored in
    # everything below it, and Python then keeps ignoring it: give the build the default back
    # so that it sees Ctrl-C as a user's terminal would send it.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLCOMPILE_TEST_PAUSE": point},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("paused at "):
            return process
    process.wait()
    raise AssertionError(f"the build never reached {point}: exit {process.returncode}")


def changed_spec(system: Path) -> None:
    """Another version of the spec: every file of the next build differs from the last."""
    spec = system / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("labels: {team: growth}", "labels: {team: retention}"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
@pytest.mark.parametrize("point", ["written", "swapped-1"])
def test_an_interrupted_build_leaves_whole_builds_behind(two_profiles: Path, tmp_path: Path, sig: signal.Signals, point: str) -> None:
    out = tmp_path / "out"
    subprocess.run(build_command(two_profiles, out), check=True, capture_output=True)
    previous = {name: tree(out / name) for name in ("local", "local-b")}
    changed_spec(two_profiles)

    process = start_paused(build_command(two_profiles, out), point)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert process.returncode == 130 and stderr.strip().endswith("interrupted"), stderr
    else:
        assert process.returncode == -signal.SIGKILL

    visible = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert visible == ["local", "local-b"], "no staging folder shows up as a build"
    verify_manifests(out)
    now = {name: tree(out / name) for name in visible}
    if point == "written":
        assert now == previous, "interrupted before any swap: the previous build, byte for byte"
    else:
        # the first profile folder (local-b: profiles go in file name order) was swapped in
        # whole, the other is still the previous one
        assert now["local-b"] != previous["local-b"] and now["local"] == previous["local"]
    if sig == signal.SIGINT:
        assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "SIGINT cleans up"

    subprocess.run(build_command(two_profiles, out), check=True, capture_output=True)
    assert sorted(p.name for p in out.iterdir()) == ["local", "local-b"], "the next build removes what was left"
    verify_manifests(out)


# ---------------------------------------------------------------------------- concurrency


def test_two_builds_into_one_folder_take_turns(two_profiles: Path, tmp_path: Path) -> None:
    """Build A (one spec) holds the lock with every file staged; build B (another spec) into
    the same folder waits, says so, and then writes. The result is exactly B's build, whole."""
    other = tmp_path / "other"
    shutil.copytree(two_profiles, other)
    changed_spec(other)
    expected_b = tmp_path / "expected-b"
    subprocess.run(build_command(other, expected_b), check=True, capture_output=True)

    out = tmp_path / "out"
    first = start_paused(build_command(two_profiles, out), "written")
    second = subprocess.Popen(build_command(other, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert second.stderr is not None
    waiting = next((line for line in second.stderr if "waiting for another mlcompile build writing into" in line), None)
    first.send_signal(signal.SIGUSR1)  # A finishes only once B is seen waiting
    _, rest = second.communicate(timeout=120)
    first.communicate(timeout=60)
    assert waiting is not None, rest
    assert first.returncode == 0 and second.returncode == 0, rest
    assert sorted(p.name for p in out.iterdir()) == ["local", "local-b"]
    assert tree(out) == tree(expected_b)
    verify_manifests(out)


def test_a_build_that_cannot_get_the_lock_gives_up_with_exit_2(two_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = start_paused(build_command(two_profiles, out), "written")
    second = subprocess.run(build_command(two_profiles, out), capture_output=True, text=True, timeout=120, env={**os.environ, "MLCOMPILE_LOCK_TIMEOUT": "0.5"})
    first.send_signal(signal.SIGUSR1)
    first.communicate(timeout=60)
    assert second.returncode == 2
    assert f"error: another mlcompile build is writing into {out} (lock {out}/.mlcompile.lock); gave up after 0.5s" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0
    verify_manifests(out)


def test_stale_staging_folders_are_removed_by_the_next_build(two_profiles: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(build_command(two_profiles, out), check=True, capture_output=True)
    stale = out / f"{STAGING_PREFIX}left-by-a-crash"
    (stale / "local").mkdir(parents=True)
    (stale / "local/plan.json").write_text("half")
    subprocess.run(build_command(two_profiles, out), check=True, capture_output=True)
    assert not stale.exists()
