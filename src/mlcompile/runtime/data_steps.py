"""extract-features and validate-data."""

from __future__ import annotations

from typing import Any

from mlcompile.runtime import feast_store
from mlcompile.runtime.features import FeatureStore
from mlcompile.runtime.io import DataError, read_table, table_metadata, write_json, write_table

MAX_STRATIFY_CLASSES = 20


def extract_features(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """The training set: every label event with its point-in-time features, split train/test."""
    from sklearn.model_selection import train_test_split

    params = config["params"]
    store = FeatureStore(config["features"])
    label_source, label = params["label"]["source"], params["label"]["column"]
    events = store.source(label_source)
    ts = store.sources[label_source]["timestamp_field"]
    if label not in events.columns:
        raise DataError(f"label source {label_source}: no column {label!r}; columns: {', '.join(map(str, events.columns))}")
    specs = store.specs(params["features"])
    keys = store.keys_of(specs)
    unlabelled = int(events[label].isna().sum())
    events = events[events[label].notna()][[c for c in dict.fromkeys([*keys, ts, label]) if c in events.columns]]
    if events.empty:
        raise DataError(f"label source {label_source} has no labelled rows")
    repo = feast_store.repo_of(config)
    if repo is not None:  # the Feast repository of the local run: its point-in-time join
        feast_store.stage_sources(store, repo)
        feast_store.apply(repo)
        dataset, problems = feast_store.historical_features(repo, events, ts, specs)
    else:
        dataset, problems = store.join(events, ts, specs)
    dataset = dataset[[*keys, ts, *[s.column for s in specs], label]].reset_index(drop=True)
    split = params["split"]
    counts = dataset[label].value_counts()
    stratify = dataset[label] if len(counts) <= MAX_STRATIFY_CLASSES and counts.min() >= 2 else None
    train, test = train_test_split(dataset, test_size=float(split["test_fraction"]), random_state=int(split["seed"]), stratify=stratify)
    meta = {
        "features": [{"ref": s.ref, "view": s.view, "column": s.column, "dtype": s.dtype} for s in specs],
        "label": label,
        "timestamp": ts,
        "keys": keys,
        "sources": store.source_fingerprints([label_source, *[store.views[s.view]["source"] for s in specs]]),
        "rows": {"total": int(len(dataset)), "train": int(len(train)), "test": int(len(test)), "unlabelled_dropped": unlabelled},
        "coercion": problems,
        "events_until": str(dataset[ts].max()),
        "join": "feast" if repo is not None else "runtime",
    }
    write_table(outputs["train"], train.reset_index(drop=True), {**meta, "split": "train"})
    write_table(outputs["test"], test.reset_index(drop=True), {**meta, "split": "test"})
    missing = {s.column: round(float(dataset[s.column].isna().mean()), 4) for s in specs}
    return {"rows": meta["rows"], "missing_fraction": missing, "coercion": problems, "join": meta["join"]}


# ---------------------------------------------------------------------- validate-data

MAX_MISSING_FRACTION = 0.95  # a feature missing more often than this is an error: the join is likely wrong


def learn_expectations(train: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Per feature: dtype, missing fraction, value range (numbers) or known values (strings)."""
    import pandas as pd

    expectations: dict[str, Any] = {}
    for feature in meta["features"]:
        column, dtype = feature["column"], feature["dtype"]
        values = train[column]
        entry: dict[str, Any] = {"dtype": dtype, "missing_fraction": round(float(values.isna().mean()), 6)}
        present = values.dropna()
        if dtype in ("int32", "int64", "float32", "float64") and len(present):
            numbers = pd.to_numeric(present, errors="coerce")
            entry.update(min=float(numbers.min()), max=float(numbers.max()), mean=float(numbers.mean()))
        elif dtype == "string":
            entry["values"] = sorted(map(str, present.unique()))[:200]
        expectations[column] = entry
    return expectations


def check_frame(frame: Any, expectations: dict[str, Any], meta: dict[str, Any], what: str) -> tuple[list[str], list[str]]:
    """Errors and warnings of `frame` against the learned expectations."""
    import pandas as pd

    errors: list[str] = []
    warnings: list[str] = []
    for column, expected in expectations.items():
        if column not in frame.columns:
            errors.append(f"{what}: column {column} is missing")
            continue
        values = frame[column]
        missing = float(values.isna().mean()) if len(values) else 1.0
        if missing > MAX_MISSING_FRACTION:
            errors.append(
                f"{what}: {column} is missing in {missing:.0%} of rows (more than {MAX_MISSING_FRACTION:.0%}): check the view's source, join keys and ttl"
            )
        elif missing > expected["missing_fraction"] + 0.2:
            warnings.append(f"{what}: {column} is missing in {missing:.0%} of rows, {expected['missing_fraction']:.0%} in training")
        present = values.dropna()
        if "min" in expected and len(present):
            numbers = pd.to_numeric(present, errors="coerce")
            outside = int(((numbers < expected["min"]) | (numbers > expected["max"])).sum())
            if outside:
                warnings.append(f"{what}: {outside} values of {column} outside the training range [{expected['min']:g}, {expected['max']:g}]")
        if "values" in expected and len(present) and len(expected["values"]) < 200:
            unknown = sorted(set(map(str, present.unique())) - set(expected["values"]))
            if unknown:
                warnings.append(f"{what}: {column} has values not seen in training: {', '.join(unknown[:5])}")
    for column, problem in (meta.get("coercion") or {}).items():
        errors.append(f"{what}: {column} is declared {problem['expected']} but {problem['bad_values']} values are not (e.g. {', '.join(problem['examples'])})")
    return errors, warnings


def validate_data(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    label = config["params"]["label"]
    train, test = read_table(inputs["train"]), read_table(inputs["test"])
    meta = table_metadata(inputs["train"])
    if not meta:
        raise DataError(f"{inputs['train']}: not a dataset written by extract-features (no mlcompile metadata)")
    errors: list[str] = []
    if len(train) == 0 or len(test) == 0:
        errors.append(f"the training set has {len(train)} rows and the test set {len(test)}: not enough labelled events")
    expectations = learn_expectations(train, meta)
    train_errors, train_warnings = check_frame(train, expectations, meta, "train")
    test_errors, test_warnings = check_frame(test, expectations, {}, "test")
    errors += train_errors + test_errors
    if label not in train.columns:
        errors.append(f"label column {label} is missing")
    elif train[label].nunique() < 2:
        errors.append(f"label {label} has a single value in the training set: nothing to learn")
    report: dict[str, Any] = {
        "passed": not errors,
        "errors": errors,
        "warnings": train_warnings + test_warnings,
        "rows": {"train": int(len(train)), "test": int(len(test))},
        "label": {"column": label, "distribution": {str(k): int(v) for k, v in train[label].value_counts().items()} if label in train.columns else {}},
        "expectations": expectations,
    }
    write_json(outputs["report"], report)
    for warning in report["warnings"]:
        print(f"warning: {warning}")
    if errors:
        raise DataError("data validation failed:\n" + "\n".join(f"  - {e}" for e in errors))
    return {"passed": True, "warnings": len(report["warnings"])}
