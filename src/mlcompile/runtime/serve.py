"""`python -m mlcompile.runtime serve`: a registered model behind the HTTP contract of the
platform that runs the runtime image (the serving definitions each target compiles), and the
server `mlcompile serve` runs on this machine.

One Starlette app answers every platform's routes — they do not collide — so the same image
serves wherever it is deployed; the platform decides only the port and where the model is:

    platform    health                       predict                              port               model folder
    SageMaker   GET /ping                    POST /invocations                    8080               /opt/ml/model (SM_MODEL_DIR): model.tar.gz, unpacked by SageMaker
    Vertex AI   GET $AIP_HEALTH_ROUTE        POST $AIP_PREDICT_ROUTE              $AIP_HTTP_PORT     $AIP_STORAGE_URI (gs://, downloaded at start)
    KServe v1   GET /v1/models/<name>        POST /v1/models/<name>:predict       8080 (--http_port) /mnt/models (storageUri), else the registry
    KServe v2   GET /v2/health/ready         POST /v2/models/<name>/infer         (Open Inference Protocol; <name>: the InferenceService's, --model_name)
    Azure ML    GET /health                  POST /score                          8080               $AZUREML_MODEL_DIR
    any         GET /health, GET /metadata   POST /predict                        --port             --model-dir

The model folder is one the runtime's train step writes (`model.json` + `model.joblib`) or
the MLflow sklearn flavor the register step logs with the same `model.json` (the registered
version, as an Azure ML model asset holds it), or a folder holding exactly one such folder
(Azure ML and MLflow put the files one level down), or a `model.tar.gz` of one. Without any of these, the `--config` registry section (KServe's
InferenceService: model name and MLflow tracking URI) names the registry: the version the
revision pins (MLCOMPILE_MODEL_VERSION, which deploy-online sets), else the version with alias
`production`; with none approved the server does not start (the pod never becomes ready).

Requests — UTF-8 JSON (or SageMaker's `text/csv`: one instance a line, the model's features
in order, no header), at most MLCOMPILE_MAX_BODY_BYTES (413 beyond; see read_body):

    {"instances": [{"orders_30d": 3, "plan": "pro", ...}]}     features by column (or view:feature), or [3, "pro", ...] in input order
    {"entities": [{"customer_id": "C1"}]}                        features read from the online store
    {"inputs": [{"name": "orders_30d", "shape": [1], "datatype": "INT64", "data": [3]}, ...]}   Open Inference Protocol v2
    → {"predictions": [...], "scores": [...], "model": name, "version": v[, "missing": [[...], ...], "unknown": [i, ...]]}
      (v2: {"model_name", "model_version", "id", "outputs": [predict, scores], "parameters"})

Each value is checked against its feature's declared type (422 naming the row and field).
With `MLCOMPILE_ONLINE_FEATURES` set (see `runtime/online`), each entity — or instance —
is completed from the online store by its entity keys: the reader of the config's kind reads
the config's `features`; the model's other features (features of offline views, the
config's `request_features`) come in the request. A value sent in the request wins over the
store's. A row without its entity keys, or without a feature only the request can carry, is
a 400 naming it; a feature the store has no value for (never written, expired) goes to the
model as missing (the model's imputation, as in training) and is listed in the row's
`missing`; an entity the store has no value at all for is not scored (null prediction and
score) and is listed in `unknown`. Without the variable, instances carry every feature.

The model runs in worker threads: the health routes never wait for a prediction.
`MLCOMPILE_REQUEST_TIMEOUT_SECONDS` bounds a prediction (504 beyond it); an online store
that fails to answer (throttling, credentials, network) is a 503 saying so.

Import cost: Starlette and the data stack when the server starts; a cloud SDK only through
the online reader of the configured kind, or google-cloud-storage for a gs:// model."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcompile.runtime.container_model import unpack
from mlcompile.runtime.contract import ENV_MODEL_MANIFEST
from mlcompile.runtime.serve_protocol import (
    DEFAULT_MAX_BODY,
    ENV_MAX_BODY,
    JSON_TYPES,
    RequestError,
    accepts_json,
    content_type,
    csv_rows,
    parse_json,
    read_body,
    rows_from_body,
    text_of,
    v2_datatype,
    v2_output,
    v2_requested,
    v2_values_datatype,
)  # fmt: skip
from mlcompile.runtime.serve_rows import Assembler, StoreError, model_input, proba_decides, score

__all__ = ["RequestError", "StoreError", "create_app", "locate_model", "main"]

DEFAULT_PORT = 8080
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
KSERVE_MODEL_DIR = "/mnt/models"
ENV_TIMEOUT = "MLCOMPILE_REQUEST_TIMEOUT_SECONDS"
ENV_MODEL = "MLCOMPILE_MODEL"

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
        return _model_folder(unpack(archive), depth)
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
        if folder is None and environ.get(ENV_MODEL_MANIFEST):  # what a container trainer wrote, described by the build
            folder = unpack(root / "model.tar.gz") if (root / "model.tar.gz").is_file() else root
        if folder is None:
            raise RuntimeError(f"{why}={where}: no mlcompile model in it (a folder with model.json)")
        return Located(folder, _version_of(folder, environ), f"{why} ({where})")
    registry = dict(config.get("registry") or {})
    name = registry.get("model") or config.get("model") or environ.get(ENV_MODEL)
    if name:
        from mlcompile.runtime.io import DataError
        from mlcompile.runtime.registry import not_approved, production_model

        registry_config = {"registry": registry, "platform": config.get("platform")}
        try:  # the version a KServe revision pins (deploy-online sets it), else the approved one
            serving = production_model(registry_config, name, environ.get("MLCOMPILE_MODEL_VERSION"))
        except DataError as exc:
            raise RuntimeError(str(exc)) from exc
        if serving is None:  # never an unapproved version: the server does not become ready
            raise RuntimeError(f"{not_approved(registry_config, name)}; the server starts once one is")
        return Located(_model_folder(serving.folder) or serving.folder, serving.version, f"registry {name}: {serving.reason}")
    raise RuntimeError("no model to serve: pass --model-dir, or run where the platform puts the model "
                       f"(AIP_STORAGE_URI, AZUREML_MODEL_DIR, {SAGEMAKER_MODEL_DIR}, {KSERVE_MODEL_DIR}), or name a registry in --config")  # fmt: skip


def _version_of(folder: Path, environ: Mapping[str, str]) -> str:
    # Azure ML: …/azureml-models/<name>/<version>/…; elsewhere the platform knows the version
    parts = Path(environ.get("AZUREML_MODEL_DIR", "")).parts
    return parts[-1] if len(parts) >= 2 and parts[-1].isdigit() else environ.get("MLCOMPILE_MODEL_VERSION", "")


def _load(folder: Path, environ: Mapping[str, str]) -> tuple[Any, dict[str, Any]]:
    """The train step's folder (model.joblib), or the MLflow sklearn flavor the register step
    logs beside it with the same model.json (what an Azure ML model asset made from the
    registered version holds), or a container-trained model (its predict entry point)."""
    from mlcompile.runtime.model import MODEL_FILE, load_meta, load_model

    if (folder / MODEL_FILE).exists() or not (folder / "MLmodel").exists():
        manifest = environ.get(ENV_MODEL_MANIFEST)
        return load_model(folder, json.loads(manifest) if manifest else None)
    import mlflow.sklearn

    return mlflow.sklearn.load_model(str(folder)), load_meta(folder)


def for_serving(model: Any) -> Any:
    """The model with one thread per prediction: a request holds a few rows, for which
    `n_jobs=-1` costs more in starting a thread pool each call than the trees do (and
    oversubscribes the cores across concurrent requests); the server's worker threads run
    requests side by side instead."""
    params = model.get_params() if hasattr(model, "get_params") else {}
    one = {k: 1 for k, v in params.items() if (k == "n_jobs" or k.endswith("__n_jobs")) and v not in (None, 1)}
    if one:
        model.set_params(**one)
    return model


# ---------------------------------------------------------------------- the app


def create_app(folder: Path, *, version: str = "", reason: str = "", name: str | None = None,
               environ: Mapping[str, str] | None = None, reader: Any = None, online: dict[str, Any] | None = None) -> Any:  # fmt: skip
    """The app serving the model in `folder`. `online` replaces the environment's
    MLCOMPILE_ONLINE_FEATURES and `reader` the store's reader (`mlcompile serve`, tests);
    otherwise the reader is made, on the first request that needs it, from the config."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from mlcompile import __version__
    from mlcompile.runtime.collect_azureml import collection_from_env
    from mlcompile.runtime.io import DataError
    from mlcompile.runtime.online import config_from_env, reader_for

    env = os.environ if environ is None else environ
    model, meta = _load(folder, env)
    for_serving(model)
    if online is None:
        online = config_from_env(dict(env))
    model_name = name or env.get(ENV_MODEL) or meta.get("system") or "model"
    features = list(meta["features"])
    columns = [f["column"] for f in features]
    assembler = Assembler(features, online, reader)
    if online is not None:
        unknown = [r for r in online.get("features") or [] if r not in {f["ref"] for f in features}]
        if unknown:
            print(f"warning: MLCOMPILE_ONLINE_FEATURES lists features the model does not take: {', '.join(unknown)}", flush=True)
    timeout = float(env[ENV_TIMEOUT]) if env.get(ENV_TIMEOUT) else None
    limit = int(env.get(ENV_MAX_BODY) or DEFAULT_MAX_BODY)
    by_proba = proba_decides(model)
    collection = collection_from_env(env)  # Azure ML's model monitor reads what this logs

    lock = threading.Lock()
    serial = online is not None and online.get("kind") not in CONCURRENT_READERS

    def answer(raw: bytes, media: str) -> dict[str, Any]:
        """Runs in a worker thread: decoding, checking, store reads and the model."""
        text = text_of(raw)
        body: Any = None
        if media == "text/csv":
            given, kind = csv_rows(text, columns), "instances"
        else:
            body = parse_json(text)
            given, kind = rows_from_body(body, columns)
            if kind == "v2":
                wanted = v2_requested(body)
        with lock:
            if assembler.reader is None and online is not None and assembler.online_refs:
                try:
                    assembler.reader = reader_for(online)  # imports the one cloud SDK of this kind
                except Exception as exc:  # noqa: BLE001 - e.g. the Redis URL is not set: say so on each request
                    raise StoreError(f"online feature store ({online.get('kind')}): {exc}") from exc
        mode = "entities" if kind == "entities" else "instances"
        if serial:
            with lock:
                assembled = assembler.assemble(given, mode, text=media == "text/csv")
        else:
            assembled = assembler.assemble(given, mode, text=media == "text/csv")
        predictions: list[Any] = [None] * len(given)
        scores: list[Any] = [None] * len(given)
        if assembled.rows:
            frame = model_input(assembled.rows, features)
            scored = score(model, meta, frame, by_proba)
            for index, prediction, value in zip(assembled.scored, *scored):
                predictions[index], scores[index] = prediction, value
            if collection is not None:
                collection.collect(frame, [predictions[i] for i in assembled.scored], [scores[i] for i in assembled.scored])
        notes: dict[str, Any] = {}
        if any(assembled.missing):
            notes["missing"] = assembled.missing
        if assembled.unknown:
            notes["unknown"] = assembled.unknown
        if kind == "v2":
            outputs = {"predict": predictions, "scores": scores}
            # the protocol's parameter values are strings, numbers or booleans: the lists go as JSON text
            response = {"model_name": model_name, "model_version": version, "id": body.get("id"),
                        "outputs": [v2_output(name, outputs[name]) for name in wanted],
                        "parameters": {key: json.dumps(value) for key, value in notes.items()}}  # fmt: skip
            return {k: v for k, v in response.items() if v not in (None, "")}  # id and version are strings, or absent
        return {"predictions": predictions, "scores": scores, "model": model_name, "version": version, **notes}

    async def predict_route(request: Request) -> Response:
        try:
            accepts_json(request.headers)
            media = content_type(request.headers)
            if media != "text/csv" and media not in JSON_TYPES and not media.endswith("+json"):
                if "inference-header-content-length" in request.headers:  # tritonclient's default
                    raise RequestError(
                        "the Open Inference Protocol's binary tensor data extension is not supported: send JSON tensors (tritonclient: binary_data=False)", 415
                    )
                raise RequestError(f"content type {media}: send application/json (or text/csv)", 415)
            raw = await read_body(request, limit)
            work = asyncio.to_thread(answer, raw, media)
            result = await (asyncio.wait_for(work, timeout) if timeout else work)
        except RequestError as exc:
            # a body refused unread (read_body) may still be arriving: close rather than read it
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers={"connection": "close"} if exc.close else None)
        except DataError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except StoreError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        except TimeoutError:
            return JSONResponse({"error": f"no prediction within {timeout:g} s ({ENV_TIMEOUT})"}, status_code=504)
        except ClientDisconnect:
            return Response(status_code=400)
        return JSONResponse(result)

    async def http_error(request: Request, exc: Exception) -> Response:
        """An unknown route or method answers in the platforms' error form, {"error": ...}
        (the Open Inference Protocol's), which clients parse, rather than as plain text."""
        assert isinstance(exc, HTTPException)
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code, headers=exc.headers)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": model_name, "version": version})

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse({
            "model": model_name, "version": version, "source": reason, "features": features, "keys": meta.get("keys") or [],
            "label": meta.get("label"), "task": meta.get("task"), "classes": meta.get("classes"),
            "online": None if online is None else {"kind": online.get("kind"), "entity_keys": assembler.entity_keys,
                                                   "features": assembler.online_refs,
                                                   "request_features": [f["ref"] for f in assembler.request_features()]},
        })  # fmt: skip

    async def kserve_ready(request: Request) -> JSONResponse:
        return JSONResponse({"name": request.path_params["name"], "ready": True})

    # ---- Open Inference Protocol v2 (KServe, Triton, MLServer clients)
    def v2_model(route: Any) -> Any:
        async def checked(request: Request) -> Response:
            if request.path_params["name"] != model_name:
                return JSONResponse({"error": f"model {request.path_params['name']!r} is not served here (this server serves {model_name!r})"}, status_code=404)
            asked = request.path_params.get("version")
            if asked is not None and version and asked != version:
                return JSONResponse(
                    {"error": f"model {model_name!r} version {asked!r} is not served here (this server serves version {version!r})"}, status_code=404
                )
            return await route(request)

        return checked

    async def v2_server(request: Request) -> JSONResponse:
        return JSONResponse({"name": "mlcompile", "version": __version__, "extensions": []})

    async def v2_live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    async def v2_ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    # the datatype the predict output has in every answer: the classes' (INT64 for 0/1 labels)
    predict_datatype = v2_values_datatype(list(meta.get("classes") or ["?"])) if meta.get("task") == "classification" else "FP64"

    async def v2_metadata(request: Request) -> JSONResponse:
        return JSONResponse({
            "name": model_name, "versions": [version] if version else [], "platform": "mlcompile-sklearn",
            "inputs": [{"name": f["column"], "datatype": v2_datatype(f["dtype"]), "shape": [-1], "parameters": {"ref": f["ref"]}} for f in features],
            "outputs": [{"name": "predict", "datatype": predict_datatype, "shape": [-1]},
                        {"name": "scores", "datatype": "FP64", "shape": [-1]}],
        })  # fmt: skip

    async def v2_model_ready(request: Request) -> JSONResponse:
        return JSONResponse({"name": model_name, "ready": True})

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
        Route("/v2", v2_server),
        Route("/v2/health/live", v2_live),
        Route("/v2/health/ready", v2_ready),
        Route("/v2/models/{name}", v2_model(v2_metadata)),
        Route("/v2/models/{name}/ready", v2_model(v2_model_ready)),
        Route("/v2/models/{name}/infer", v2_model(predict_route), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}", v2_model(v2_metadata)),
        Route("/v2/models/{name}/versions/{version}/ready", v2_model(v2_model_ready)),
        Route("/v2/models/{name}/versions/{version}/infer", v2_model(predict_route), methods=["POST"]),
    ]
    if health_route not in ("/health", "/ping"):  # Vertex AI's routes, when the model names others
        routes.append(Route(health_route, health))
    if predict_path not in ("/predict", "/invocations", "/score"):
        routes.append(Route(predict_path, predict_route, methods=["POST"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.model = {"name": model_name, "version": version, "source": reason, "folder": str(folder)}
    return app


def run(app: Any, host: str, port: int) -> None:
    """Serve `app` with uvicorn (its httptools parser and uvloop when installed)."""
    import gc

    import uvicorn

    # the model and the data stack are loaded for good: keep the collector from walking them
    # again and again as requests allocate (each full collection was milliseconds)
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level="warning")


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


def served_name(args: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The name clients address the model by. On KServe that is the InferenceService's (the
    Open Inference Protocol's /v2/models/<name>/infer): --model_name, else Knative's
    K_SERVICE (`<isvc>-predictor`); elsewhere the registry model's."""
    if args.model_name:
        return str(args.model_name)
    service = environ.get("K_SERVICE", "")
    for suffix in ("-predictor-default", "-predictor"):
        if service.endswith(suffix):
            return service[: -len(suffix)]
    return args.config.get("model") or (args.config.get("registry") or {}).get("model")


def main(argv: list[str]) -> int:
    args = parse(argv)
    env = os.environ
    try:
        located = locate_model(args.model_dir, args.config, env)
    except RuntimeError as exc:
        print(f"error: {exc}", flush=True)
        return 1
    name = served_name(args, env)
    app = create_app(located.folder, version=located.version, reason=located.reason, name=name)
    port = listen_port(args, env)
    print(f"[mlcompile.runtime] serving {app.state.model['name']} from {located.reason} on http://{args.host}:{port}", flush=True)
    run(app, args.host, port)
    return 0
