"""The feature store steps on Feast: stage the sources into the generated feature repository,
apply it, build training sets with Feast's point-in-time join, materialise online views.

A step uses Feast when its config carries `feast: {"repo": PATH}` (the local run adds it:
the repository the `local` target renders, written into the workdir); without it the steps
keep the runtime's own join (features.py), which is what the cloud pipelines call today.
Feast is imported inside the functions: the runtime stays import-light."""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path
from typing import Any

from mlcompile.runtime.features import FeatureSpec, FeatureStore, cast
from mlcompile.runtime.io import DataError

DATA_DIR = "data"  # = targets.feast_repo.LOCAL_DATA_DIR: where the repo's FileSources point
EVENT_TIMESTAMP = "event_timestamp"  # the entity dataframe's timestamp column Feast joins as of


def repo_of(config: dict[str, Any]) -> Path | None:
    feast = config.get("feast")
    return Path(feast["repo"]) if isinstance(feast, dict) and feast.get("repo") else None


def _quiet() -> None:
    os.environ.setdefault("FEAST_USAGE", "False")  # no usage telemetry, no network


def stage_sources(store: FeatureStore, repo: Path) -> dict[str, str]:
    """Every source a view reads, as the parquet file its FileSource names (timestamps in UTC,
    as the runtime reads them): what Feast's file offline store reads. Written atomically."""
    staged = {}
    folder = repo / DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted({v["source"] for v in store.views.values()}):
        target = folder / f"{name}.parquet"
        partial = target.with_suffix(".parquet.partial")
        store.source(name).to_parquet(partial, index=False)
        partial.replace(target)
        staged[name] = str(target)
    return staged


def apply(repo: Path) -> None:
    """`feast apply` of the repository: registers entities, sources, views and the feature
    service, and creates the online tables."""
    _quiet()
    import sys

    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    here = os.getcwd()
    # Feast imports the definitions as modules named after their paths in the repository
    # (its CLI puts the repository on sys.path; so does this)
    sys.path.insert(0, str(repo))
    for module in repo.glob("*.py"):  # another repository's module of the same name, imported earlier
        sys.modules.pop(module.stem, None)
    try:
        apply_total(load_repo_config(repo, repo / "feature_store.yaml"), repo, skip_source_validation=False)
    finally:
        os.chdir(here)  # apply_total changes into the repository
        sys.path.remove(str(repo))


def open_store(repo: Path) -> Any:
    _quiet()
    from feast import FeatureStore as FeastStore

    return FeastStore(repo_path=str(repo))


def historical_features(repo: Path, events: Any, event_ts: str, specs: list[FeatureSpec]) -> tuple[Any, dict[str, Any]]:
    """`events` with one column per feature spec, joined by Feast's `get_historical_features`
    as of `event_ts` (the newest row at or before the event and within the view's ttl), in
    the events' row order; values cast to their declared dtypes as the runtime's own join
    does. Returns the frame and per-column coercion problems.

    Feast is asked once per view, for the distinct (join keys, timestamp) pairs of that view:
    its file offline store keeps one result row per view keys and timestamp, so events that
    share them (several items shown in one search) would otherwise be dropped."""
    import pandas as pd

    from mlcompile.runtime.features import to_utc

    feast = open_store(repo)
    frame = events.copy()
    stamps = to_utc(frame[event_ts], f"events, column {event_ts}").astype("datetime64[ns, UTC]")
    if stamps.isna().any():
        raise DataError(f"{int(stamps.isna().sum())} events have no timestamp in column {event_ts}")
    by_view: dict[str, list[FeatureSpec]] = {}
    for spec in specs:
        by_view.setdefault(spec.view, []).append(spec)
    problems: dict[str, Any] = {}
    for view, view_specs in by_view.items():
        keys = _keys(feast, view)
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise DataError(f"view {view} is joined on {', '.join(keys)}, but the events have no column {', '.join(missing)}")
        left = frame[keys].assign(**{EVENT_TIMESTAMP: stamps})
        entity = left.dropna(subset=keys).drop_duplicates().reset_index(drop=True)
        refs = [f"{view}:{s.feature}" for s in view_specs]
        joined = feast.get_historical_features(entity_df=entity, features=refs, full_feature_names=True).to_df()
        joined[EVENT_TIMESTAMP] = pd.to_datetime(joined[EVENT_TIMESTAMP], utc=True).astype("datetime64[ns, UTC]")
        merged = left.reset_index(drop=True).merge(joined, on=[*keys, EVENT_TIMESTAMP], how="left", validate="many_to_one")
        for spec in view_specs:
            values = merged[f"{view}__{spec.feature}"].set_axis(frame.index)
            column, problem = cast(values, spec.dtype)
            frame[spec.column] = column
            if problem:
                problems[spec.column] = problem
    return frame, problems


def _keys(feast: Any, view: str) -> list[str]:
    return [column.name for column in feast.get_feature_view(view).entity_columns]


def materialize(repo: Path, store: FeatureStore, views: list[str]) -> dict[str, Any]:
    """Load each online view's newest values into the online store: the rows of the view's
    ttl window ending at its source's newest timestamp (the data's "now"; on a cluster the
    schedule runs `feast materialize-incremental` up to the wall clock instead). An entity
    whose newest row is older than the window is not written, so it reads as missing, as
    the offline join reports a value older than the ttl."""
    from datetime import timedelta

    feast = open_store(repo)
    done: dict[str, Any] = {}
    for name in views:
        view = store.views[name]
        source = view["source"]
        ts = store.sources[source]["timestamp_field"]
        newest = store.source(source)[ts].max()
        end = newest.to_pydatetime() + timedelta(seconds=1)  # Feast's end is exclusive
        start = end - timedelta(seconds=int(view["ttl_seconds"]) + 1)
        feast.materialize(start_date=start, end_date=end, feature_views=[name])
        done[name] = {"start": start.isoformat(), "end": end.isoformat()}
    return done


def materialize_features(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """Step `materialize-features`: apply the repository, then load every online view
    (`params.views`) into the online store.

    Two configs: `feast.repo` (the local run: a repository on this machine; its sources are
    staged first and each view's ttl window up to the data's newest timestamp is loaded), or
    `feast.files` (a cluster's scheduled task: the repository's files, written to a scratch
    folder; Feast's `materialize-incremental` loads what is new since the last run, up to now)."""
    feast = config.get("feast") or {}
    params = config.get("params", {})
    store = FeatureStore(config["features"])
    views = list(params.get("views") or [n for n, v in store.views.items() if v.get("online")])
    if feast.get("files"):
        import tempfile
        from datetime import datetime

        written = Path(tempfile.mkdtemp(prefix="mlcompile-feast-repo-"))
        for name, text in feast["files"].items():
            (written / Path(name).name).write_text(text)
        apply(written)
        end = datetime.now(UTC)
        open_store(written).materialize_incremental(end_date=end, feature_views=views)
        return {"views": views, "mode": "incremental", "end": end.isoformat()}
    repo = repo_of(config)
    if repo is None:
        raise DataError("materialize-features needs a Feast repository (config `feast.repo` or `feast.files`)")
    stage_sources(store, repo)
    apply(repo)
    return {"repo": str(repo), "materialized": materialize(repo, store, views)}
