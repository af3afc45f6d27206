"""A process that talks to MLflow does not import Feast for Feast's request-header plugin, and
MLflow still sends Feast's header inside Feast's token scope, as it does without mlcompile."""

from __future__ import annotations

import json
import subprocess
import sys

from requires import require

require("mlflow", "feast")

PROBE = """
import json, sys
from mlcompile.runtime.registry_mlflow import client
client("http://127.0.0.1:9")  # a registry's client, before its first request
from mlflow.tracking.request_header.registry import resolve_request_headers
before = resolve_request_headers()
imported = "feast" in sys.modules
from feast.infra.data_sources.mlflow.auth import mlflow_token_scope
with mlflow_token_scope("t0ken"):
    inside = resolve_request_headers()
after = resolve_request_headers()
print(json.dumps({"imported": imported, "before": before, "inside": inside, "after": after}))
"""


def test_resolving_mlflow_headers_leaves_feast_unimported_until_feast_sets_its_token() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["imported"] is False
    assert "Authorization" not in seen["before"] and "Authorization" not in seen["after"]
    assert seen["inside"]["Authorization"] == "Bearer t0ken"  # what Feast's own provider sends
    assert seen["inside"]["User-Agent"] == seen["before"]["User-Agent"]  # MLflow's own providers still run


def test_a_process_that_imported_feast_first_gets_mlflows_own_registry() -> None:
    probe = "import feast, sys\n" + PROBE.replace('imported = "feast" in sys.modules', "imported = False")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.splitlines()[-1])["inside"]["Authorization"] == "Bearer t0ken"
