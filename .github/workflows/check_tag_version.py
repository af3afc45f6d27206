"""Refuse a release whose tag (vX.Y.Z) is not the version in pyproject.toml.

Usage: python check_tag_version.py vX.Y.Z  (prints `version=X.Y.Z`, exits 1 on a mismatch)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def main(tag: str) -> int:
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    if tag != f"v{version}":
        print(f"tag {tag} does not name the version in pyproject.toml ({version}): tag v{version}, or change the version first", file=sys.stderr)
        return 1
    print(f"version={version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
