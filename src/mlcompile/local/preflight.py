"""What `mlcompile run` checks in the local data before any step starts: every file a source
names exists, has rows, and has every column the spec reads from it (the timestamp, the
entities' join keys, each view's features, the label). A problem is reported at the source or
view in the spec that needs the column, with the file and the columns it does have — not as
a step's traceback, and not as a model trained on features that all came out empty."""

from __future__ import annotations

import csv
from pathlib import Path

from mlcompile.diagnostics import Diagnostic, did_you_mean, shorten
from mlcompile.plan.nodes import Origin, Plan
from mlcompile.spec.types import uri_scheme


def _needs(plan: Plan) -> dict[str, list[tuple[str, Origin, str]]]:
    """source name → (column, where the spec asks for it, what for)."""
    sources = {s.name: s for s in plan.features.sources}
    views = {v.name: v for v in plan.features.views}
    needs: dict[str, list[tuple[str, Origin, str]]] = {name: [(s.timestamp_field, s.origin, "its timestamp_field")] for name, s in sources.items()}
    for view in plan.features.views:
        for key in view.join_keys:
            needs[view.source].append((key, view.origin, f"a join key of view {view.name}"))
        for feature in view.features:
            needs[view.source].append((feature.name, view.origin, f"feature {feature.name} of view {view.name}"))
    for pipeline in plan.pipelines():
        for step in pipeline.steps:
            params = step.params
            used = {ref.split(":", 1)[0] for ref in params.get("features", ())} if step.kind == "extract_features" else set(views)
            keys = list(dict.fromkeys(k for name in sorted(used) if name in views for k in views[name].join_keys))
            reads = []
            if step.kind == "extract_features":
                reads.append((params["label"]["source"], params["label"]["column"], "the label"))
            elif step.kind == "check_performance":
                reads.append((params["ground_truth"]["source"], params["ground_truth"]["column"], "the ground truth"))
            elif step.kind == "score_batch":
                reads.append((params["source"], None, "batch scoring input"))
            for source, column, what in reads:
                if source not in needs:
                    continue
                if column is not None:
                    needs[source].append((column, step.origin, what))
                needs[source] += [(key, step.origin, f"join key {key} of {what}") for key in keys]
    return needs


def _csv_header(path: Path) -> tuple[list[str], bool]:
    """The header's column names and whether a data row follows it."""
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        has_rows = any(any(cell.strip() for cell in row) for row in reader)
    return [h.strip() for h in header], has_rows


def _parquet_header(path: Path) -> tuple[list[str], bool]:
    import pyarrow.parquet as pq

    if path.is_dir():
        import pyarrow.dataset as ds

        dataset = ds.dataset(str(path), format="parquet")
        return list(dataset.schema.names), dataset.count_rows() > 0
    metadata = pq.read_metadata(str(path))
    return list(metadata.schema.to_arrow_schema().names), metadata.num_rows > 0


def check_local_sources(plan: Plan, spec_dir: Path) -> list[Diagnostic]:
    problems: list[Diagnostic] = []

    def error(origin: Origin, message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic(origin.file, origin.line, origin.col, "error", origin.path, message, hint))

    needs = _needs(plan)
    for source in plan.features.sources:
        if uri_scheme(source.uri) != "file":
            continue
        path = Path(source.uri.split("://", 1)[1])
        path = path if path.is_absolute() else spec_dir / path
        shown = source.uri
        if not path.exists():
            error(source.origin, f"source {source.name}: no file at {shown} ({path})", "write the file, or point the uri at it (relative to the spec's folder)")
            continue
        try:
            columns, has_rows = _csv_header(path) if source.format == "csv" else _parquet_header(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
            error(source.origin, f"source {source.name}: cannot read {shown} as {source.format}: {shorten(str(exc), 200)}")
            continue
        if not has_rows:
            error(
                source.origin,
                f"source {source.name}: {shown} has no data rows" + (" (only a header)" if columns else ""),
                "a run needs at least one row in every source it reads",
            )
        present = set(columns)
        reported: set[str] = set()
        for column, origin, what in needs.get(source.name, []):
            if column in present or column in reported:
                continue
            reported.add(column)
            hint = did_you_mean(column, columns) or f"its columns: {shorten(', '.join(columns), 200)}"
            error(origin, f"source {source.name}: {shown} has no column '{column}' ({what})", hint)
    return problems
