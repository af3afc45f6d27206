"""The offline feature store: sources → point-in-time correct feature rows.

Every feature is joined onto an event (a label, a row to score) as of the event's timestamp:
the newest row of the view's source whose timestamp is at or before the event, and not older
than the view's ttl. A newer row would leak the future into training; an older one is stale
and is reported as missing (NaN), which the model and data validation see as such."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcompile.runtime.io import DataError, fingerprint, read_table

EVENT_TS = "__event_ts"
ROW = "__row"


@dataclass(frozen=True)
class FeatureSpec:
    ref: str  # view:feature as written in the spec
    view: str
    feature: str
    column: str  # column name in datasets and model inputs
    dtype: str


class FeatureStore:
    """The `features` section of a step config (entities, sources, views), with the sources
    read once and cached."""

    def __init__(self, config: dict[str, Any]):
        self.sources = {s["name"]: s for s in config["sources"]}
        self.views = {v["name"]: v for v in config["views"]}
        self._frames: dict[str, Any] = {}

    # ------------------------------------------------------------------ sources
    def source(self, name: str) -> Any:
        if name not in self._frames:
            if name not in self.sources:
                raise DataError(f"unknown source {name!r}")
            spec = self.sources[name]
            frame = read_table(spec["uri"], spec["format"])
            ts = spec["timestamp_field"]
            if ts not in frame.columns:
                raise DataError(f"source {name} ({spec['uri']}): no timestamp column {ts!r}; columns: {', '.join(map(str, frame.columns))}")
            frame[ts] = to_utc(frame[ts], f"source {name}, column {ts}")
            self._frames[name] = frame
        return self._frames[name]

    def source_fingerprints(self, names: list[str]) -> dict[str, Any]:
        return {n: {"uri": self.sources[n]["uri"], "sha256": fingerprint(self.sources[n]["uri"]), "rows": int(len(self.source(n)))} for n in sorted(set(names))}

    # ------------------------------------------------------------------ features
    def specs(self, refs: list[str]) -> list[FeatureSpec]:
        names = [r.split(":", 1)[1] for r in refs]
        specs = []
        for ref in refs:
            view_name, feature = ref.split(":", 1)
            view = self.views.get(view_name)
            if view is None:
                raise DataError(f"feature {ref}: unknown view {view_name!r}")
            dtype = next((f["dtype"] for f in view["features"] if f["name"] == feature), None)
            if dtype is None:
                raise DataError(f"feature {ref}: view {view_name} has no feature {feature!r}")
            column = feature if names.count(feature) == 1 else f"{view_name}__{feature}"
            specs.append(FeatureSpec(ref, view_name, feature, column, dtype))
        return specs

    def keys_of(self, specs: list[FeatureSpec]) -> list[str]:
        keys: list[str] = []
        for spec in specs:
            for key in self.views[spec.view]["join_keys"]:
                if key not in keys:
                    keys.append(key)
        return keys

    def join(self, events: Any, event_ts: str, specs: list[FeatureSpec]) -> tuple[Any, dict[str, Any]]:
        """`events` with one column per feature spec, point-in-time joined as of `event_ts`.
        Returns the frame (same row order) and per-column coercion problems."""
        import pandas as pd

        frame = events.copy()
        frame[ROW] = range(len(frame))
        frame[EVENT_TS] = to_utc(frame[event_ts], f"events, column {event_ts}").astype("datetime64[ns, UTC]")
        if frame[EVENT_TS].isna().any():
            raise DataError(f"{int(frame[EVENT_TS].isna().sum())} events have no timestamp in column {event_ts}")
        problems: dict[str, Any] = {}
        by_view: dict[str, list[FeatureSpec]] = {}
        for spec in specs:
            by_view.setdefault(spec.view, []).append(spec)
        for view_name, view_specs in by_view.items():
            view = self.views[view_name]
            keys = list(view["join_keys"])
            missing = [k for k in keys if k not in frame.columns]
            if missing:
                raise DataError(f"view {view_name} is joined on {', '.join(keys)}, but the events have no column {', '.join(missing)}")
            source_name = view["source"]
            source = self.source(source_name)
            ts = self.sources[source_name]["timestamp_field"]
            absent = [k for k in keys if k not in source.columns] + [s.feature for s in view_specs if s.feature not in source.columns]
            if absent:
                raise DataError(f"source {source_name}: no column {', '.join(absent)} (needed by view {view_name})")
            temp = {s.feature: f"__f{i}_{view_name}" for i, s in enumerate(view_specs)}
            right = source[[*keys, ts, *temp]].rename(columns=temp)
            right = right.rename(columns={ts: "__feature_ts"})
            right["__feature_ts"] = right["__feature_ts"].astype("datetime64[ns, UTC]")
            right = right.dropna(subset=["__feature_ts"])
            left = frame[[ROW, EVENT_TS, *keys]].copy()
            for key in keys:
                left[key] = left[key].astype("string")
                right[key] = right[key].astype("string")
            left = left.dropna(subset=keys)
            right = right.dropna(subset=keys)
            merged = pd.merge_asof(
                left.sort_values(EVENT_TS, kind="stable"),
                right.sort_values("__feature_ts", kind="stable"),
                left_on=EVENT_TS,
                right_on="__feature_ts",
                by=keys,
                direction="backward",  # no feature newer than the event
                allow_exact_matches=True,
                tolerance=pd.Timedelta(seconds=int(view["ttl_seconds"])),  # none older than the ttl
            ).set_index(ROW)
            for spec in view_specs:
                values = merged[temp[spec.feature]].reindex(frame[ROW].to_numpy()).set_axis(frame.index)
                column, problem = cast(values, spec.dtype)
                frame[spec.column] = column
                if problem:
                    problems[spec.column] = problem
        return frame.drop(columns=[ROW, EVENT_TS]), problems

    def latest_rows(self, source_name: str, keys: list[str]) -> Any:
        """The newest row of a source per entity key (what a batch job scores)."""
        source = self.source(source_name)
        ts = self.sources[source_name]["timestamp_field"]
        missing = [k for k in keys if k not in source.columns]
        if missing:
            raise DataError(f"source {source_name} has no column {', '.join(missing)}: it cannot be scored on {', '.join(keys)}")
        ordered = source.dropna(subset=[ts]).sort_values(ts, kind="stable")
        return ordered.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)

    def current_values(self, specs: list[FeatureSpec]) -> dict[str, Any]:
        """The feature store's current state: per view, the newest row of each entity that is
        within the view's ttl of the source's newest timestamp (what the online store holds)."""
        import pandas as pd

        columns: dict[str, Any] = {}
        for spec in specs:
            view = self.views[spec.view]
            source_name = view["source"]
            source = self.source(source_name)
            ts = self.sources[source_name]["timestamp_field"]
            newest = source[ts].max()
            fresh = source[source[ts] > newest - pd.Timedelta(seconds=int(view["ttl_seconds"]))]
            fresh = fresh.sort_values(ts, kind="stable").drop_duplicates(subset=list(view["join_keys"]), keep="last")
            columns[spec.column] = cast(fresh[spec.feature].reset_index(drop=True), spec.dtype)[0]
        return columns


def to_utc(values: Any, what: str) -> Any:
    import pandas as pd

    try:
        return pd.to_datetime(values, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what}: not a timestamp: {exc}") from exc


def cast(values: Any, dtype: str) -> tuple[Any, dict[str, Any] | None]:
    """Values as the declared dtype; values that do not fit become missing and are reported."""
    import numpy as np
    import pandas as pd

    present = values.notna()
    problem: dict[str, Any] | None = None
    if dtype in ("int32", "int64", "float32", "float64"):
        numeric = pd.to_numeric(values, errors="coerce")
        bad = present & numeric.isna()
        if dtype.startswith("int"):
            fractional = numeric.notna() & (np.floor(numeric.astype("float64")) != numeric.astype("float64"))
            if fractional.any():
                problem = {"expected": dtype, "bad_values": int(fractional.sum()), "examples": [str(v) for v in values[fractional].head(3)]}
                result = numeric.astype("float64")
            else:
                result = numeric.astype("Int64")
        else:
            result = numeric.astype("float64")
        if bad.any():
            problem = {
                "expected": dtype,
                "bad_values": int(bad.sum()) + (problem or {}).get("bad_values", 0),
                "examples": [str(v) for v in values[bad].head(3)],
            }
        return result, problem
    if dtype == "bool":
        mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False, "1.0": True, "0.0": False}
        mapped = values.map(lambda v: v if isinstance(v, bool) else mapping.get(str(v).strip().lower()) if v is not None and v == v else None)
        bad = present & mapped.isna()
        return mapped.astype("boolean"), (
            {"expected": dtype, "bad_values": int(bad.sum()), "examples": [str(v) for v in values[bad].head(3)]} if bad.any() else None
        )
    if dtype == "timestamp":
        converted = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
        bad = present & converted.isna()
        return converted, ({"expected": dtype, "bad_values": int(bad.sum()), "examples": [str(v) for v in values[bad].head(3)]} if bad.any() else None)
    return values.astype("string"), None
