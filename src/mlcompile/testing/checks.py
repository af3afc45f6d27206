"""The checks every target must pass: deterministic bytes, a complete manifest, and refusals
located at the spec field that caused them."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from mlcompile.diagnostics import Diagnostic, JsonPath
from mlcompile.testing.builds import MANIFEST, Build, build, build_in_subprocess, read_tree
from mlcompile.testing.golden import differences

# `<namespace>.<thing>`: the platform or tool the file is for, then what it is
KIND = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+")


def assert_deterministic(
    spec: str | os.PathLike[str], profile: str | os.PathLike[str], workdir: str | os.PathLike[str], *, hash_seeds: tuple[str, ...] = ("0", "4242")
) -> Build:
    """The same plan renders the same bytes twice, and `mlcompile build` in a fresh
    interpreter per hash seed, started from another folder, writes exactly the files of this
    process's build. Returns this process's build."""
    from mlcompile.targets.registry import load_target

    workdir = Path(workdir)
    here = build(spec, profile, workdir / "in-process")
    assert here.plan is not None
    target = load_target(here.plan.platform)
    first, second = target.render(here.plan), target.render(here.plan)
    assert [(f.path, f.kind, f.content) for f in first] == [(f.path, f.kind, f.content) for f in second], (
        f"target '{target.name}' rendered the same plan to different files: " + "; ".join(differences(_as_tree(second), _as_tree(first), "second render"))
    )
    for seed in hash_seeds:
        cwd = workdir / f"elsewhere-{seed}"
        cwd.mkdir(parents=True, exist_ok=True)
        there = build_in_subprocess(Path(spec).resolve(), Path(profile).resolve(), cwd / "out", cwd=cwd, hash_seed=seed)
        problems = differences(there.files, here.files, f"PYTHONHASHSEED={seed}")
        assert not problems, f"a build under PYTHONHASHSEED={seed} differs from this process's:\n" + "\n".join(problems)
    return here


def _as_tree(files: list) -> dict[str, bytes]:
    return {f.path: f.content for f in files}


def assert_manifest_complete(result: Build | str | os.PathLike[str], *, spec: str | os.PathLike[str] | None = None) -> dict:
    """`manifest.json` lists every other file of the build once, sorted by path, each with a
    `<namespace>.<thing>` kind and the sha256 of its bytes, and nothing that is not there;
    with `spec`, it records that spec's sha256. Returns the manifest."""
    found = result if isinstance(result, Build) else Build.read(Path(result))
    manifest = found.manifest
    for key in ("mlcompile_version", "spec_sha256", "profile_sha256", "profile", "platform", "files"):
        assert key in manifest, f"manifest.json has no '{key}'"
    entries = manifest["files"]
    paths = [entry["path"] for entry in entries]
    assert paths == sorted(set(paths)), f"manifest paths are not sorted and unique: {paths}"
    on_disk = sorted(set(found.files) - {MANIFEST})
    assert paths == on_disk, (
        f"manifest lists {sorted(set(paths) - set(on_disk))} not in the build; the build has {sorted(set(on_disk) - set(paths))} not listed"
    )
    for entry in entries:
        assert set(entry) == {"path", "kind", "sha256"}, entry
        assert KIND.fullmatch(entry["kind"]), f"{entry['path']}: kind {entry['kind']!r} is not <namespace>.<thing>"
        assert entry["sha256"] == hashlib.sha256(found.files[entry["path"]]).hexdigest(), f"{entry['path']}: sha256 does not match its bytes"
    if spec is not None:
        assert manifest["spec_sha256"] == hashlib.sha256(Path(spec).read_bytes()).hexdigest(), "spec_sha256 is not the spec's"
    return manifest


def spec_position(spec: str | os.PathLike[str], at: str | JsonPath) -> set[tuple[int, int]]:
    """Where a field is written in a spec (or profile): the line:col of its key and of its value.
    `at` is a JSON path, as a tuple or as a diagnostic shows it (`features.sources[0].uri`)."""
    from mlcompile.spec.loader import load_yaml_file

    path = _parse_path(at) if isinstance(at, str) else tuple(at)
    source_map = load_yaml_file(spec).source_map
    found = {table[path] for table in (source_map.keys, source_map.values) if path in table}
    assert found, f"{spec} has no field {at}"
    return found


def _parse_path(text: str) -> JsonPath:
    return tuple(int(part) if part.isdigit() else part for part in re.findall(r"[^.\[\]]+", text))


def assert_refused(
    spec: str | os.PathLike[str],
    profile: str | os.PathLike[str],
    *,
    at: str | JsonPath,
    message: str,
    out: str | os.PathLike[str] | None = None,
    in_profile: bool = False,
) -> Diagnostic:
    """Building SPEC for PROFILE is refused with an error whose message matches `message` (a
    regular expression), located at field `at` of the spec (its key or its value; of the
    profile with `in_profile`, e.g. a setting its settings model rejects); the command line
    prints it as `file:line:col: error: …`, exits 2 without a traceback, and (with `out`)
    writes nothing there. Returns the diagnostic."""
    from click.testing import CliRunner

    from mlcompile.build import compile_system, resolve_profiles
    from mlcompile.cli import main
    from mlcompile.errors import SpecError

    try:
        compile_system(str(spec), resolve_profiles(str(spec), [str(profile)]), render=True, git_commit=None)
    except SpecError as exc:
        errors = [d for d in exc.diagnostics if d.severity == "error"]
    else:
        raise AssertionError(f"{spec} built for {profile}: expected a refusal matching {message!r}")
    matching = [d for d in errors if re.search(message, d.message)]
    assert matching, f"no error matches {message!r}; the errors were:\n" + "\n".join(d.render() for d in errors)
    where = profile if in_profile else spec
    positions = spec_position(where, at)
    located = [d for d in matching if d.file == str(where) and (d.line, d.col) in positions]
    assert located, f"the refusal is not at {at} of {where} ({sorted(positions)}):\n" + "\n".join(d.render() for d in matching)
    diagnostic = located[0]
    runner = CliRunner()
    commands = [["validate", str(spec), "--target", str(profile)]]
    if out is not None:
        commands.append(["build", str(spec), "--target", str(profile), "--out", str(out), "--git-commit", "none"])
    for command in commands:
        result = runner.invoke(main, command)
        printed = result.output  # stdout and stderr, as a terminal shows them
        assert result.exit_code == 2, f"`mlcompile {' '.join(command)}` exited {result.exit_code}:\n{printed}"
        assert "Traceback" not in printed, printed
        assert diagnostic.render().splitlines()[0] in printed, f"`mlcompile {' '.join(command)}` did not print the refusal:\n{printed}"
    if out is not None:
        assert not Path(out).exists() or not read_tree(out), f"a refused build wrote into {out}"
    return diagnostic
