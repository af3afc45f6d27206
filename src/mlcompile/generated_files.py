"""Files the repository ships but a command writes (the estimator catalog, the spec's fast
check table): written by the command, or compared with `--check`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def write_or_check(path: Path, text: str, command: str, argv: Sequence[str]) -> int:
    """Write `text` to `path`; with `--check` in argv, only say (exit status 1) when the
    shipped file differs from it."""
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run {command}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0
