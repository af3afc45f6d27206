"""Where `mlcompile run` may write on this machine: inside the spec's folder, or inside a
folder the local profile lists in `local.allowed_output_roots`. A spec or profile changed in a
pull request cannot point the run's workdir or batch scores at `file://../../x` (or through a
symlink) to overwrite files elsewhere. A `--workdir` given on the command line is the
operator's own choice and is not confined."""

from __future__ import annotations

from pathlib import Path

from mlcompile.diagnostics import Diagnostic
from mlcompile.plan.nodes import Origin, Plan
from mlcompile.spec.resolve import Profile
from mlcompile.spec.types import uri_scheme

HINT = "write inside the spec's folder, or list the folder in the local profile's local.allowed_output_roots"


def allowed_roots(profile: Profile, spec_dir: Path) -> list[Path]:
    settings = profile.target.local
    extra = settings.allowed_output_roots if settings is not None else []
    return [spec_dir.resolve(), *((spec_dir / Path(root).expanduser()).resolve() for root in extra)]


def _inside(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()  # symlinks followed: a link inside the project to /etc is outside
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def check_output_paths(plan: Plan, profile: Profile, spec_dir: Path, workdir: Path, *, workdir_from_profile: bool) -> list[Diagnostic]:
    roots = allowed_roots(profile, spec_dir)
    problems: list[Diagnostic] = []
    if workdir_from_profile and not _inside(workdir, roots):
        problems.append(profile.document.source_map.diagnostic(
            ("local", "workdir"), f"the workdir {workdir.resolve()} is outside the spec's folder {spec_dir.resolve()}", hint=HINT,
        ))  # fmt: skip
    for pipeline in plan.pipelines():
        for step in pipeline.steps:
            uri = step.params.get("output_uri") if step.kind == "score_batch" else None
            if isinstance(uri, str) and uri_scheme(uri) == "file":
                target = Path(uri.split("://", 1)[1])
                target = target if target.is_absolute() else spec_dir / target
                if not _inside(target, roots):
                    origin: Origin = step.origin
                    problems.append(Diagnostic(origin.file, origin.line, origin.col, "error", "deployment.batch.output.uri",
                                               f"batch scores would be written to {target.resolve()}, outside the spec's folder {spec_dir.resolve()}", HINT))  # fmt: skip
    return problems
