"""`mlcompile diff`: what a change to a spec or a profile changes in every build.

Two builds of the same profiles (the base — a git ref or an earlier --out folder — and the
working tree) are compared twice over: structurally, per resource of the plan (steps,
endpoint, schedules, …) in the platform's terms — machine types, accelerators, canary
percent — and file by file, with a unified diff behind. Each profile gets impact labels a
reviewer needs: retrains the model, changes serving, changes cost, changes a schedule, or
touches only metadata."""

from mlcompile.diff.engine import CostChange, DiffReport, FieldChange, FileChange, ProfileDiff, ResourceChange, diff_builds

__all__ = ["CostChange", "DiffReport", "FieldChange", "FileChange", "ProfileDiff", "ResourceChange", "diff_builds"]
