"""Helpers the target test modules share (no tests here): the examples, and one build of a
spec for one profile as {path: (kind, bytes)}, compiled in-process as `mlcompile build` does."""

from __future__ import annotations

from pathlib import Path

from mlcompile.build import compile_system, resolve_profiles

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("churn", "ranker-gpu", "batch-scoring", "container-trainer")


def build(spec: str | Path, profile: str | Path, git_commit: str | None = None) -> dict[str, tuple[str, bytes]]:
    compilation = compile_system(str(spec), resolve_profiles(str(spec), [str(profile)]), render=True, git_commit=git_commit)
    (result,) = compilation.results
    return {f.path: (f.kind, f.content) for f in result.files}
