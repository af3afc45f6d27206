"""score-batch: the production model on the newest row of each entity in the input source."""

from __future__ import annotations

from typing import Any

from mlcompile.runtime.data_steps import check_frame
from mlcompile.runtime.features import FeatureStore
from mlcompile.runtime.io import DataError, is_remote, local_path, write_table
from mlcompile.runtime.model import load_model, predict
from mlcompile.runtime.registry import not_approved, production_model


def score_frame(store: FeatureStore, source: str, meta: dict[str, Any]) -> Any:
    """Rows to score with their point-in-time features: the newest row per entity of
    `source`, joined as of that row's timestamp."""
    keys = list(meta.get("keys") or [])
    if not keys:
        raise DataError("the model records no entity keys")
    rows = store.latest_rows(source, keys)
    ts = store.sources[source]["timestamp_field"]
    specs = store.specs([f["ref"] for f in meta["features"]])
    frame, problems = store.join(rows[[*keys, ts]], ts, specs)
    return frame, problems


def score_batch(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    params = config["params"]
    serving = production_model(config, params["model"])
    if serving is None:
        raise DataError(f"{not_approved(config, params['model'])}: batch scoring uses only the approved version")
    print(f"scoring with {serving.name} version {serving.version} ({serving.reason})")
    model, meta = load_model(serving.folder, config.get("model"))  # a container-trained one: through its predict entry point
    store = FeatureStore(config["features"])
    frame, problems = score_frame(store, params["source"], meta)
    errors, warnings = check_frame(frame, meta.get("expectations") or {}, {"coercion": problems}, "batch input")
    for warning in warnings:
        print(f"warning: {warning}")
    if errors:
        raise DataError("the batch input fails the model's data expectations:\n" + "\n".join(f"  - {e}" for e in errors))
    predictions, scores = predict(model, meta, frame)
    frame["prediction"] = predictions
    frame["score"] = scores
    frame["model_version"] = serving.version
    written = []
    output_uri = params.get("output_uri")
    if output_uri:
        if output_uri.startswith("table://"):
            print(f"warning: {output_uri} is written by the cloud platforms; the scores are in the step's artifact")
        else:
            write_table(output_uri if is_remote(output_uri) else str(local_path(output_uri)), frame)
            written.append(output_uri)
    if "scores" in outputs:
        write_table(outputs["scores"], frame, {"model": serving.name, "version": serving.version})
    positive = float((frame["score"] >= 0.5).mean()) if meta.get("task") == "classification" else None
    return {
        "rows": int(len(frame)),
        "model": serving.name,
        "version": serving.version,
        "model_selection": serving.reason,
        "output": written,
        "warnings": warnings,
        **({"positive_rate": round(positive, 4)} if positive is not None else {}),
    }
