"""`mlcompile serve`: the registered model behind the runtime's server
(`mlcompile.runtime.serve`, the one the platforms' containers run), with this machine's
online features.

A request may name entities instead of features: their features are read by entity key
from the Feast online store that the run materialised (`<workdir>/feature_repo`, through
`runtime.online`, as a cluster's serving container reads its own); without a materialised
store (Feast not installed) they are joined from the sources as training joined them (point
in time = the newest data, within each view's ttl). Routes, protocols, limits and statuses
are the runtime server's (docs/serving.md):

    GET  /health, /metadata, /v2/health/ready, /v2/models/<model>
    POST /predict                {"instances": [{"orders_30d": 3, "plan": "pro", ...}]}
                                 {"entities": [{"customer_id": "C000009"}]}
         POST /v2/models/<model>/infer (Open Inference Protocol), text/csv
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from mlcompile.local.run import Prepared


def _environment(prepared: Prepared) -> dict[str, Any]:
    from mlcompile.plan.serialize import plan_to_data

    uri = "sqlite:///" + str(prepared.workdir / "mlflow.db")
    os.environ.update(
        {
            "MLFLOW_TRACKING_URI": uri,
            "MLCOMPILE_SPEC_DIR": str(prepared.spec_dir),
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "GIT_PYTHON_REFRESH": "quiet",
        }
    )
    plan = prepared.plan
    return {"registry": {"model": plan.registry.model, "approval": plan.registry.approval, "tracking_uri": uri}, "features": plan_to_data(plan)["features"]}


def serving_model(prepared: Prepared, config: dict[str, Any], version: str | None) -> Any:
    """The registered version asked for, else the serving (production, else newest) one."""
    from mlcompile.errors import UsageError
    from mlcompile.runtime.io import DataError
    from mlcompile.runtime.registry import production_model

    name = prepared.plan.registry.model
    try:  # on this machine, the newest version before any approval (said so)
        serving = production_model(config, name, version, try_unapproved=True)
    except DataError as exc:
        raise UsageError(str(exc)) from exc
    if serving is None:
        raise UsageError(f"no registered version of {name}: run `mlcompile run` first")
    return serving


class SourcesReader:
    """Entities' features joined from the sources as training joins them, as of the newest
    data: the online store of a run that materialised none."""

    def __init__(self, store: Any, specs: list[Any]):
        self.store, self.specs = store, specs
        self.newest = max(store.source(store.views[s.view]["source"])[store.sources[store.views[s.view]["source"]]["timestamp_field"]].max() for s in specs)

    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        import pandas as pd

        specs = [s for s in self.specs if s.ref in features]
        events = pd.DataFrame(entities)
        events["__as_of"] = self.newest
        frame, _ = self.store.join(events, "__as_of", specs)
        return [{s.ref: (None if pd.isna(row[s.column]) else row[s.column].item() if hasattr(row[s.column], "item") else row[s.column]) for s in specs}
                for _, row in frame.iterrows()]  # fmt: skip


def create_app(prepared: Prepared, version: str | None = None) -> Any:
    from mlcompile.runtime.features import FeatureStore
    from mlcompile.runtime.model import load_meta
    from mlcompile.runtime.serve import ENV_TIMEOUT, _model_folder
    from mlcompile.runtime.serve import create_app as runtime_app
    from mlcompile.runtime.serve_protocol import ENV_MAX_BODY

    config = _environment(prepared)
    serving = serving_model(prepared, config, version)
    folder = _model_folder(serving.folder) or serving.folder
    meta = load_meta(folder)
    store = FeatureStore(config["features"])
    specs = store.specs([f["ref"] for f in meta["features"]])
    keys = list(meta.get("keys") or [])
    reader: Any = online_reader(prepared, keys, specs)
    if reader is not None:
        kind, served = "feast", [s.ref for s in specs if store.views[s.view].get("online")]
    elif specs and keys:
        kind, served, reader = "sources", [s.ref for s in specs], SourcesReader(store, specs)
    else:
        kind, served = "none", []
    online = {"kind": kind, "entity_keys": keys, "features": served} if served else None
    # the server's limits as set in this shell; not the platforms' variables (model, online
    # features, routes), which this command decides
    limits = {name: os.environ[name] for name in (ENV_MAX_BODY, ENV_TIMEOUT) if os.environ.get(name)}
    app = runtime_app(folder, version=serving.version, reason=serving.reason, name=serving.name, environ=limits, reader=reader, online=online)
    app.state.serving = serving
    app.state.online = kind
    return app


def online_reader(prepared: Prepared, keys: list[str], specs: list[Any]) -> Any:
    """The reader of the run's Feast online store, when the run materialised one."""
    from mlcompile.local.executor import FEAST_REPO
    from mlcompile.runtime.online import reader_for

    repo = prepared.workdir / FEAST_REPO
    if not (repo / "data" / "registry.db").exists() or not specs:
        return None
    return reader_for({"kind": "feast", "repo": str(repo), "entity_keys": keys, "features": [s.ref for s in specs]})


def serve_forever(prepared: Prepared, *, host: str, port: int, version: str | None, log: Callable[[str], None]) -> None:
    from mlcompile.runtime.serve import run

    app = create_app(prepared, version)
    serving = app.state.serving
    log(f"serving {serving.name} version {serving.version} ({serving.reason}) on http://{host}:{port} (POST /predict, /v2/models/{serving.name}/infer)")
    run(app, host, port)
