"""`mlcompile serve`: the registered model behind a small ASGI app (Starlette + uvicorn).

A small app rather than `mlflow models serve`: the request may name entities instead of
features, and then the features are read by entity key from the Feast online store that the
run materialised (`<workdir>/feature_repo`, through `runtime.online`, as a cluster's serving
container reads its own); without a materialised store (Feast not installed) they are
joined from the sources as training joined them (point in time = the newest data, within
each view's ttl).

    GET  /health                 {"status": "ok", "model": ..., "version": ...}
    GET  /metadata               model name, version, features, label, task
    POST /predict                {"instances": [{"orders_30d": 3, "plan": "pro", ...}]}
                                 {"entities": [{"customer_id": "C000009"}]}
         → {"predictions": [...], "scores": [...], "model": name, "version": v}
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from mlcompile.local.run import Prepared


def _environment(prepared: Prepared) -> dict[str, Any]:
    from mlcompile.plan.serialize import plan_to_data

    uri = "sqlite:///" + str(prepared.workdir / "mlflow.db")
    os.environ.update({"MLFLOW_TRACKING_URI": uri, "MLCOMPILE_SPEC_DIR": str(prepared.spec_dir), "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "GIT_PYTHON_REFRESH": "quiet"})
    plan = prepared.plan
    return {"registry": {"model": plan.registry.model, "approval": plan.registry.approval, "tracking_uri": uri}, "features": plan_to_data(plan)["features"]}


def create_app(prepared: Prepared, version: str | None = None) -> Any:
    import pandas as pd
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from mlcompile.errors import UsageError
    from mlcompile.runtime.features import FeatureStore
    from mlcompile.runtime.io import DataError
    from mlcompile.runtime.model import load_model, predict
    from mlcompile.runtime.registry import ServingModel, client, download_model, production_model

    config = _environment(prepared)
    name = prepared.plan.registry.model
    if version is not None:
        import tempfile
        from pathlib import Path

        mlflow_client = client(config)
        found = mlflow_client.get_model_version(name, version)
        serving: ServingModel | None = ServingModel(name, str(version), None, f"version {version} as asked", download_model(mlflow_client, found, Path(tempfile.mkdtemp())), found.run_id)
    else:
        serving = production_model(config, name, fallback_latest=True)
    if serving is None:
        raise UsageError(f"no registered version of {name}: run `mlcompile run` first")
    model, meta = load_model(serving.folder)
    store = FeatureStore(config["features"])
    specs = store.specs([f["ref"] for f in meta["features"]])
    online_views = {v for v, spec in store.views.items() if spec.get("online")}
    keys = list(meta.get("keys") or [])
    reader = online_reader(prepared, keys, specs)

    def features_for(entities: list[dict[str, Any]]) -> Any:
        offline = sorted({s.view for s in specs} - online_views)
        if offline:
            raise DataError(f"views {', '.join(offline)} are not online: send the features as `instances`")
        events = pd.DataFrame(entities)
        missing = [k for k in keys if k not in events.columns or events[k].isna().any()]
        if missing:
            raise DataError(f"each entity needs {', '.join(keys)} (missing {', '.join(missing)})")
        if reader is not None:
            return read_online(reader, entities, specs)
        newest = max(store.source(store.views[s.view]["source"])[store.sources[store.views[s.view]["source"]]["timestamp_field"]].max() for s in specs)
        events["__as_of"] = newest
        frame, _ = store.join(events, "__as_of", specs)
        return frame

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": serving.name, "version": serving.version})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse({
            "model": serving.name, "version": serving.version, "selection": serving.reason, "features": meta["features"],
            "keys": keys, "label": meta.get("label"), "task": meta.get("task"), "classes": meta.get("classes"),
        })  # fmt: skip

    async def predict_route(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        try:
            if isinstance(body, dict) and isinstance(body.get("instances"), list):
                frame = pd.DataFrame(body["instances"])
            elif isinstance(body, dict) and isinstance(body.get("entities"), list):
                frame = features_for(body["entities"])
            else:
                return JSONResponse({"error": 'send {"instances": [{feature: value}, ...]} or {"entities": [{key: value}, ...]}'}, status_code=400)
            for feature in meta["features"]:
                if feature["column"] not in frame.columns:
                    frame[feature["column"]] = None
            predictions, scores = predict(model, meta, frame)
        except DataError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return JSONResponse({
            "predictions": [p.item() if hasattr(p, "item") else p for p in predictions],
            "scores": [float(s) for s in scores], "model": serving.name, "version": serving.version,
        })  # fmt: skip

    app = Starlette(routes=[Route("/health", health), Route("/metadata", metadata), Route("/predict", predict_route, methods=["POST"])])
    app.state.serving = serving
    app.state.online = "feast" if reader is not None else "sources"
    return app


def online_reader(prepared: Prepared, keys: list[str], specs: list[Any]) -> Any:
    """The reader of the run's Feast online store, when the run materialised one."""
    from mlcompile.local.executor import FEAST_REPO
    from mlcompile.runtime.online import reader_for

    repo = prepared.workdir / FEAST_REPO
    if not (repo / "data" / "registry.db").exists() or not specs:
        return None
    return reader_for({"kind": "feast", "repo": str(repo), "entity_keys": keys, "features": [s.ref for s in specs]})


def read_online(reader: Any, entities: list[dict[str, Any]], specs: list[Any]) -> Any:
    """The model's input frame from the online store: one row per entity, columns named and
    typed as in training."""
    import pandas as pd

    from mlcompile.runtime.features import cast

    rows = reader.read(entities, [s.ref for s in specs])
    frame = pd.DataFrame(entities)
    for spec in specs:
        frame[spec.column] = cast(pd.Series([row[spec.ref] for row in rows], index=frame.index, dtype="object"), spec.dtype)[0]
    return frame


def serve_forever(prepared: Prepared, *, host: str, port: int, version: str | None, log: Callable[[str], None]) -> None:
    import uvicorn

    app = create_app(prepared, version)
    serving = app.state.serving
    log(f"serving {serving.name} version {serving.version} ({serving.reason}) on http://{host}:{port} (POST /predict)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
