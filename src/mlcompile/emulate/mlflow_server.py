"""`python -m mlcompile.emulate.mlflow_server FOLDER`: MLflow's own tracking server (its Flask
app, served by werkzeug in one process) on a free 127.0.0.1 port, with a SQLite store and
artifacts in FOLDER. Prints `port N` once it listens. The emulator runs it in place of a
profile's in-cluster MLflow (`registry.uri`), for the steps of an emulated run."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    folder = Path((argv if argv is not None else sys.argv[1:])[0]).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    from mlflow.server import ARTIFACT_ROOT_ENV_VAR, ARTIFACTS_DESTINATION_ENV_VAR, BACKEND_STORE_URI_ENV_VAR, SERVE_ARTIFACTS_ENV_VAR

    os.environ[BACKEND_STORE_URI_ENV_VAR] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ[ARTIFACTS_DESTINATION_ENV_VAR] = str(folder / "artifacts")
    os.environ[ARTIFACT_ROOT_ENV_VAR] = "mlflow-artifacts:/"
    os.environ[SERVE_ARTIFACTS_ENV_VAR] = "true"
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow.server import app
    from mlflow.server.handlers import initialize_backend_stores
    from werkzeug.serving import make_server

    from mlcompile.runtime.mlflow_store import seed

    seed(os.environ[BACKEND_STORE_URI_ENV_VAR])
    initialize_backend_stores(os.environ[BACKEND_STORE_URI_ENV_VAR], default_artifact_root="mlflow-artifacts:/")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"port {server.server_port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
