"""The pre-commit hooks' entry point: `mlcompile-pre-commit [validate options] FILE...`.

pre-commit passes the staged files its `files:` pattern matched. A spec is validated against
its profiles, found as `mlcompile validate` finds them; a changed profile re-validates every
spec of the repository that uses it, so that tightening a policy in `targets/prod.yaml`
stops the commit when a spec no longer complies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence

SPEC_NAMES = ("mlcompile.yaml", "mlcompile.yml")


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Validate options (from the hook's `args:`) and the files pre-commit appended."""
    options: list[str] = []
    files: list[str] = []
    takes_value = {"--target", "-t", "--format"}
    items = iter(argv)
    for item in items:
        if item in takes_value:
            options += [item, next(items, "")]
        elif item.startswith("-"):
            options.append(item)
        else:
            files.append(item)
    return options, files


def repository_specs() -> list[str]:
    """Every spec in the index (what the commit will hold), else under the current folder."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.decode()
        paths: Iterable[str] = listed.split("\0")
    except (OSError, subprocess.CalledProcessError):
        paths = (os.path.join(root, name) for root, _dirs, names in os.walk(".") for name in names)
    return sorted(os.path.normpath(p) for p in paths if os.path.basename(p) in SPEC_NAMES)


def specs_to_check(files: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The specs a commit touching `files` may break: the specs among them, and those that use
    a profile among them (through `--target` in the hook's args, else found beside the spec)."""
    from mlcompile.build import discover_profiles, expand_profile_paths

    changed = {os.path.normpath(f) for f in files}
    specs = {f for f in changed if os.path.basename(f) in SPEC_NAMES}
    profiles = changed - specs
    if profiles:
        explicit = {os.path.normpath(p) for p in expand_profile_paths(targets)}
        for spec in repository_specs():
            used = explicit if targets else {os.path.normpath(p) for p in discover_profiles(spec) or []}
            if used & profiles:
                specs.add(spec)
    return sorted(specs)


def main(argv: Sequence[str] | None = None) -> None:
    from mlcompile.cli import main as mlcompile

    options, files = _split(sys.argv[1:] if argv is None else argv)
    targets = [options[i + 1] for i, option in enumerate(options) if option in ("--target", "-t")]
    specs = specs_to_check(files, targets)
    if not specs:
        sys.exit(0)
    mlcompile(["validate", *options, *specs], prog_name="mlcompile")


if __name__ == "__main__":
    main()
