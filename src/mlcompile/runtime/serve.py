"""`python -m mlcompile.runtime serve`: a registered model behind the HTTP contract of the
platform that runs the runtime image (the serving definitions each target compiles).

One Starlette app answers every platform's routes — they do not collide — so the same image
serves wherever it is deployed; the platform decides only the port and where the model is:

    platform    health                       predict                              port               model folder
    SageMaker   GET /ping                    POST /invocations                    8080               /opt/ml/model (SM_MODEL_DIR): model.tar.gz, unpacked by SageMaker
    Vertex AI   GET $AIP_HEALTH_ROUTE        POST $AIP_PREDICT_ROUTE              $AIP_HTTP_PORT     $AIP_STORAGE_URI (gs://, downloaded at start)
    KServe v1   GET /v1/models/<name>        POST /v1/models/<name>:predict       8080 (--http_port) /mnt/models (storageUri), else the registry
    Azure ML    GET /health                  POST /score                          8080               $AZUREML_MODEL_DIR
    any         GET /health, GET /metadata   POST /predict                        --port             --model-dir

The model folder is one the runtime's train step writes (`model.json` + `model.joblib`) or
the MLflow sklearn flavor the register step logs with the same `model.json` (the registered
version, as an Azure ML model asset holds it), or a folder holding exactly one such folder
(Azure ML and MLflow put the files one level down), or a `model.tar.gz` of one. Without any of these, the `--config` registry section (KServe's
InferenceService: model name and MLflow tracking URI) names the registry: the version with
alias `production` is served (the newest when none is approved yet, said so in /metadata).

Requests (JSON; SageMaker's `text/csv` too: one instance a line, the model's features in
order, no header):

    {"instances": [{"orders_30d": 3, "plan": "pro", ...}]}     features by column (or view:feature)
    {"entities": [{"customer_id": "C1"}]}                        features read from the online store
    → {"predictions": [...], "scores": [...], "model": name, "version": v[, "missing": [[...], ...]]}

With `MLCOMPILE_ONLINE_FEATURES` set (see `runtime/online`), each entity — or instance —
is completed from the online store by its entity keys: the reader of the config's kind reads
the config's `features`; the model's other features (features of offline views, the
config's `request_features`) come in the request. A value sent in the request wins over the
store's. A row without its entity keys, or without a feature only the request can carry, is
a 400 naming it; a feature the store has no value for (never written, expired) goes to the
model as missing (the model's imputation, as in training) and is listed in the row's
`missing`. Without the variable, instances carry every feature.

`MLCOMPILE_REQUEST_TIMEOUT_SECONDS` bounds a prediction (504 beyond it); an online store
that fails to answer (throttling, credentials, network) is a 503 saying so.

Import cost: Starlette and the data stack when the server starts; a cloud SDK only through
the online reader of the configured kind, or google-cloud-storage for a gs:// model."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import tarfile
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PORT = 8080
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
KSERVE_MODEL_DIR = "/mnt/models"
ENV_TIMEOUT = "MLCOMPILE_REQUEST_TIMEOUT_SECONDS"
ENV_MODEL = "MLCOMPILE_MODEL"


class RequestError(ValueError):
    """A request the server cannot answer as sent: a 400 with this message."""


class StoreError(RuntimeError):
    """The online feature store failed to answer: a 503 with this message."""


# readers whose client may serve concurrent requests (boto3 and Google API clients are
# thread-safe); any other reader (Azure ML's one Redis socket) reads one request at a time
CONCURRENT_READERS = frozenset({"sagemaker", "vertex"})


# ---------------------------------------------------------------------- where the model is


def _model_folder(root: Path, depth: int = 3) -> Path | None:
    """`root` if it is a model folder, else the only model folder below it (or in its
    model.tar.gz, unpacked next to a temporary copy)."""
    if (root / "model.json").exists():
        return root
    archive = root / "model.tar.gz"
    if archive.is_file():
        target = Path(tempfile.mkdtemp(prefix="mlcompile-model-"))
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # Python ≥ 3.11.4: no paths outside the target
                tar.extractall(target, filter="data")
            else:
                tar.extractall(target)
        return _model_folder(target, depth)
    if depth == 0 or not root.is_dir():
        return None
    found = [f for child in sorted(root.iterdir()) if child.is_dir() and (f := _model_folder(child, depth - 1)) is not None]
    if len(found) > 1:
        raise RuntimeError(f"{root} holds {len(found)} models ({', '.join(str(f) for f in found)}): point --model-dir at one")
    return found[0] if found else None


def _download(uri: str) -> Path:
    """A remote model folder, copied to a temporary folder: gs:// through google-cloud-storage
    when installed (Vertex's AIP_STORAGE_URI), anything else through fsspec (the runtime
    image's gcsfs, s3fs, adlfs)."""
    target = Path(tempfile.mkdtemp(prefix="mlcompile-model-"))
    if uri.startswith("gs://"):
        try:
            from google.cloud import storage
        except ImportError:
            storage = None
        if storage is not None:
            bucket_name, _, prefix = uri[len("gs://") :].partition("/")
            prefix = prefix.rstrip("/") + "/" if prefix else ""
            for blob in storage.Client().list_blobs(bucket_name, prefix=prefix):
                if not blob.name.endswith("/"):
                    path = target / blob.name[len(prefix) :]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    blob.download_to_filename(str(path))
            return target
    from mlcompile.runtime.io import _fsspec

    fs, remote = _fsspec(uri).core.url_to_fs(uri)
    fs.get(remote.rstrip("/") + "/", str(target / "model"), recursive=True)
    return target


@dataclass
class Located:
    folder: Path
    version: str
    reason: str


def locate_model(model_dir: str | None, config: Mapping[str, Any], environ: Mapping[str, str]) -> Located:
    """The model folder, from the first of: --model-dir, AIP_STORAGE_URI, AZUREML_MODEL_DIR,
    SM_MODEL_DIR or /opt/ml/model, /mnt/models, the registry of --config."""
    candidates: list[tuple[str, str]] = []
    if model_dir:
        candidates.append((model_dir, "--model-dir"))
    for variable in ("AIP_STORAGE_URI", "AZUREML_MODEL_DIR", "SM_MODEL_DIR"):
        if environ.get(variable):
            candidates.append((environ[variable], variable))
    candidates += [(SAGEMAKER_MODEL_DIR, "SageMaker's model folder"), (KSERVE_MODEL_DIR, "KServe's storageUri")]
    for where, why in candidates:
        root = _download(where) if "://" in where and not where.startswith("file://") else Path(where.removeprefix("file://"))
        if not root.exists():
            if why in ("--model-dir", "AIP_STORAGE_URI", "AZUREML_MODEL_DIR"):
                raise RuntimeError(f"{why}={where}: no such folder")
            continue
        folder = _model_folder(root)
        if folder is None:
            raise RuntimeError(f"{why}={where}: no mlcompile model in it (a folder with model.json)")
        return Located(folder, _version_of(folder, environ), f"{why} ({where})")
    registry = dict(config.get("registry") or {})
    name = registry.get("model") or config.get("model") or environ.get(ENV_MODEL)
    if name:
        from mlcompile.runtime.registry import production_model

        serving = production_model({"registry": registry}, name, fallback_latest=True)
        if serving is not None:
            return Located(_model_folder(serving.folder) or serving.folder, serving.version, f"registry {name}: {serving.reason}")
    raise RuntimeError("no model to serve: pass --model-dir, or run where the platform puts the model "
                       f"(AIP_STORAGE_URI, AZUREML_MODEL_DIR, {SAGEMAKER_MODEL_DIR}, {KSERVE_MODEL_DIR}), or name a registry in --config")  # fmt: skip


def _version_of(folder: Path, environ: Mapping[str, str]) -> str:
    # Azure ML: …/azureml-models/<name>/<version>/…; elsewhere the platform knows the version
    parts = Path(environ.get("AZUREML_MODEL_DIR", "")).parts
    return parts[-1] if len(parts) >= 2 and parts[-1].isdigit() else environ.get("MLCOMPILE_MODEL_VERSION", "")


def _load(folder: Path) -> tuple[Any, dict[str, Any]]:
    """The train step's folder (model.joblib), or the MLflow sklearn flavor the register step
    logs beside it with the same model.json (what an Azure ML model asset made from the
    registered version holds)."""
    from mlcompile.runtime.model import MODEL_FILE, load_meta, load_model

    if (folder / MODEL_FILE).exists() or not (folder / "MLmodel").exists():
        return load_model(folder)
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(folder)), load_meta(folder)


# ---------------------------------------------------------------------- assembling rows


@dataclass
class Assembler:
    """Request rows → the model's input rows (by feature column), reading online features
    when the deployment has an online config."""

    features: list[dict[str, Any]]  # the model's, in input order: ref, column, dtype
    online: dict[str, Any] | None = None
    reader: Any = None
    online_refs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.online is not None:
            served = set(self.online.get("features") or [])
            self.online_refs = [f["ref"] for f in self.features if f["ref"] in served]

    @property
    def entity_keys(self) -> list[str]:
        return list((self.online or {}).get("entity_keys") or [])

    def request_features(self) -> list[dict[str, Any]]:
        """The features the request must carry (none the online store serves)."""
        return [f for f in self.features if f["ref"] not in self.online_refs]

    @staticmethod
    def _given(row: Mapping[str, Any], feature: Mapping[str, Any]) -> tuple[bool, Any]:
        for name in (feature["column"], feature["ref"]):
            if name in row:
                return True, row[name]
        return False, None

    def rows(self, body: Any) -> tuple[list[dict[str, Any]], list[list[str]]]:
        """(model input rows keyed by column, per row the features the store lacked)."""
        if isinstance(body, dict) and isinstance(body.get("instances"), list):
            given = body["instances"]
        elif isinstance(body, dict) and isinstance(body.get("entities"), list):
            given = body["entities"]
            if self.online is None:
                raise RequestError("this deployment reads no online features (MLCOMPILE_ONLINE_FEATURES is not set): send "
                                   '{"instances": [{feature: value, ...}]} with every feature')  # fmt: skip
        else:
            raise RequestError('send {"instances": [{feature: value, ...}, ...]} or {"entities": [{key: value, ...}, ...]}')
        if not given:
            raise RequestError("no rows to predict")
        for index, row in enumerate(given):
            if not isinstance(row, dict):
                raise RequestError(f"row {index}: expected a JSON object of feature (or entity key) values, got {json.dumps(row)[:80]}")
        needed = self.request_features()
        for index, row in enumerate(given):
            absent = [f["column"] for f in needed if not self._given(row, f)[0]]
            if absent:
                why = "served by no online view" if self.online is not None else "no online store is configured"
                raise RequestError(f"row {index}: missing feature{'s' if len(absent) > 1 else ''} {', '.join(absent)} ({why}: the request carries {'them' if len(absent) > 1 else 'it'})")
        stored: list[dict[str, Any]] = [{} for _ in given]
        wanted = [i for i, row in enumerate(given) if any(not self._given(row, f)[0] for f in self.features if f["ref"] in self.online_refs)]
        if wanted:
            keys = self.entity_keys
            for index in wanted:
                absent = [k for k in keys if given[index].get(k) is None]
                if absent:
                    raise RequestError(f"row {index}: missing entity key {', '.join(absent)} (the online features are read by {', '.join(keys)})")
            entities = [{k: given[i][k] for k in keys} for i in wanted]
            try:
                read = self.reader.read(entities, self.online_refs)
            except Exception as exc:  # noqa: BLE001 - throttling, credentials, network: the store's, not the request's
                raise StoreError(f"online feature store ({(self.online or {}).get('kind')}): {type(exc).__name__}: {exc}") from exc
            for index, values in zip(wanted, read):
                stored[index] = values
        rows: list[dict[str, Any]] = []
        missing: list[list[str]] = []
        for row, values in zip(given, stored):
            out: dict[str, Any] = {}
            lacking: list[str] = []
            for feature in self.features:
                sent, value = self._given(row, feature)
                if not sent:
                    value = values.get(feature["ref"])
                    if value is None:
                        lacking.append(feature["ref"])
                out[feature["column"]] = value
            rows.append(out)
            missing.append(lacking)
        return rows, missing


def csv_body(text: str, features: list[dict[str, Any]]) -> dict[str, Any]:
    """SageMaker's text/csv: one instance a line, the model's features in input order."""
    instances = []
    for number, values in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not values:
            continue
        if len(values) != len(features):
            raise RequestError(f"csv line {number}: {len(values)} values, the model takes {len(features)} ({', '.join(f['column'] for f in features)})")
        instances.append({f["column"]: (v if v != "" else None) for f, v in zip(features, values)})
    return {"instances": instances}


# ---------------------------------------------------------------------- the app


def create_app(folder: Path, *, version: str = "", reason: str = "", name: str | None = None,
               environ: Mapping[str, str] | None = None, reader: Any = None) -> Any:  # fmt: skip
    """The app serving the model in `folder`. `reader` replaces the online store's reader
    (tests); otherwise it is made, on the first request that needs it, from the config."""
    import pandas as pd
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from mlcompile.runtime.io import DataError
    from mlcompile.runtime.model import predict
    from mlcompile.runtime.online import config_from_env, reader_for

    env = os.environ if environ is None else environ
    model, meta = _load(folder)
    online = config_from_env(dict(env))
    model_name = name or env.get(ENV_MODEL) or meta.get("system") or "model"
    assembler = Assembler(list(meta["features"]), online, reader)
    if online is not None:
        unknown = [r for r in online.get("features") or [] if r not in {f["ref"] for f in meta["features"]}]
        if unknown:
            print(f"warning: MLCOMPILE_ONLINE_FEATURES lists features the model does not take: {', '.join(unknown)}", flush=True)
    timeout = float(env[ENV_TIMEOUT]) if env.get(ENV_TIMEOUT) else None

    lock = threading.Lock()
    serial = online is not None and online.get("kind") not in CONCURRENT_READERS

    def answer(body: Any) -> dict[str, Any]:
        with lock:
            if assembler.reader is None and online is not None and assembler.online_refs:
                try:
                    assembler.reader = reader_for(online)  # imports the one cloud SDK of this kind
                except Exception as exc:  # noqa: BLE001 - e.g. the Redis URL is not set: say so on each request
                    raise StoreError(f"online feature store ({online.get('kind')}): {exc}") from exc
        if serial:
            with lock:
                rows, missing = assembler.rows(body)
        else:
            rows, missing = assembler.rows(body)
        frame = pd.DataFrame(rows, columns=[f["column"] for f in meta["features"]])
        predictions, scores = predict(model, meta, frame)
        result: dict[str, Any] = {
            "predictions": [p.item() if hasattr(p, "item") else p for p in predictions],
            "scores": [float(s) for s in scores],
            "model": model_name,
            "version": version,
        }
        if any(missing):
            result["missing"] = missing
        return result

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": model_name, "version": version})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse({
            "model": model_name, "version": version, "source": reason, "features": meta["features"], "keys": meta.get("keys") or [],
            "label": meta.get("label"), "task": meta.get("task"), "classes": meta.get("classes"),
            "online": None if online is None else {"kind": online.get("kind"), "entity_keys": assembler.entity_keys,
                                                   "features": assembler.online_refs,
                                                   "request_features": [f["ref"] for f in assembler.request_features()]},
        })  # fmt: skip

    async def predict_route(request: Request) -> Response:
        raw = await request.body()
        try:
            if request.headers.get("content-type", "").split(";")[0].strip() == "text/csv":
                body: Any = csv_body(raw.decode("utf-8"), meta["features"])
            else:
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise RequestError("the body is not JSON") from None
            work = asyncio.to_thread(answer, body)
            result = await (asyncio.wait_for(work, timeout) if timeout else work)
        except RequestError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except DataError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except StoreError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        except asyncio.TimeoutError:
            return JSONResponse({"error": f"no prediction within {timeout:g} s ({ENV_TIMEOUT})"}, status_code=504)
        return JSONResponse(result)

    async def kserve_ready(request: Request) -> JSONResponse:
        return JSONResponse({"name": request.path_params["name"], "ready": True})

    health_route = env.get("AIP_HEALTH_ROUTE") or "/health"
    predict_path = env.get("AIP_PREDICT_ROUTE") or "/predict"
    routes = [
        Route("/health", health),
        Route("/ping", health),  # SageMaker
        Route("/metadata", metadata),
        Route("/predict", predict_route, methods=["POST"]),
        Route("/invocations", predict_route, methods=["POST"]),  # SageMaker
        Route("/score", predict_route, methods=["POST"]),  # Azure ML (inference_config scoring_route)
        Route("/v1/models/{name}:predict", predict_route, methods=["POST"]),  # KServe v1
        Route("/v1/models/{name}", kserve_ready),
    ]
    if health_route not in ("/health", "/ping"):  # Vertex AI's routes, when the model names others
        routes.append(Route(health_route, health))
    if predict_path not in ("/predict", "/invocations", "/score"):
        routes.append(Route(predict_path, predict_route, methods=["POST"]))
    app = Starlette(routes=routes)
    app.state.model = {"name": model_name, "version": version, "source": reason, "folder": str(folder)}
    return app


# ---------------------------------------------------------------------- command line


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlcompile.runtime serve", description="Serve a model over the platform's HTTP contract.")
    parser.add_argument("--config", default="{}", help="the serving config as JSON (or @FILE): model name, registry")
    parser.add_argument("--model-dir", help="the model folder (default: where the platform puts it)")
    parser.add_argument("--port", type=int, help=f"port (default: $AIP_HTTP_PORT, else {DEFAULT_PORT})")
    parser.add_argument("--http_port", type=int, help="KServe's name for --port")
    parser.add_argument("--model_name", help="KServe's model name (default: $MLCOMPILE_MODEL)")
    parser.add_argument("--host", default="0.0.0.0")
    args, _ = parser.parse_known_args(argv)  # a platform may add its own arguments (KServe: --workers, …)
    text = args.config
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        args.config = json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"--config is not JSON: {exc}")
    return args


def listen_port(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """--port, KServe's --http_port, Vertex AI's AIP_HTTP_PORT, else 8080 (SageMaker, Azure ML)."""
    return int(args.port or args.http_port or environ.get("AIP_HTTP_PORT") or DEFAULT_PORT)


def main(argv: list[str]) -> int:
    import uvicorn

    args = parse(argv)
    env = os.environ
    try:
        located = locate_model(args.model_dir, args.config, env)
    except RuntimeError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    name = args.model_name or args.config.get("model") or (args.config.get("registry") or {}).get("model")
    app = create_app(located.folder, version=located.version, reason=located.reason, name=name)
    port = listen_port(args, env)
    print(f"[mlcompile.runtime] serving {app.state.model['name']} from {located.reason} on http://{args.host}:{port}", flush=True)
    uvicorn.run(app, host=args.host, port=port, log_level="warning")
    return 0
