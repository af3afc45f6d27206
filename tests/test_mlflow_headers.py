"""A process that talks to MLflow does not import Feast for Feast's request-header plugin, and
MLflow still sends Feast's header inside Feast's token scope, as it does without mlcompile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from requires import require

from mlcompile.emulate.containers import USER_IMAGE_SITE

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


def test_a_user_images_container_leaves_feast_unimported_and_sends_the_same_headers(tmp_path: Path) -> None:
    """The emulator runs a user's image with this environment's Python, where Feast is installed
    for mlcompile: a trial logging to MLflow does not import it (~4 s a trial), and sends what it
    would send without mlcompile (Feast's provider, outside Feast's token scope, adds nothing)."""
    from mlflow.tracking.request_header.registry import resolve_request_headers

    from mlcompile.emulate.containers import Images, run_container

    image = "registry.example/acme/trainer:1.0"
    (tmp_path / "probe.py").write_text(USER_PROBE)
    images = Images(runtime="registry.example/mlcompile/runtime:1", commands={image: ["python", "probe.py"]}, workdirs={image: tmp_path})
    log = tmp_path / "container.log"
    status = run_container(images, image, [], [], {"PYTHONPATH": str(tmp_path / "lib")}, tmp_path, log)
    assert status == 0, log.read_text()
    seen = json.loads(log.read_text().splitlines()[-1])
    assert seen["imported"] is False
    assert seen["path"][:2] == [USER_IMAGE_SITE, str(tmp_path / "lib")]  # the image's own PYTHONPATH follows
    assert seen["providers"][-1] == "ProviderOnceImported"  # in Feast's place: last, as its entry point is listed
    assert seen["headers"] == resolve_request_headers()


# a user's trainer: MLflow's own API only, nothing of mlcompile
USER_PROBE = """
import json, sys
from mlflow.tracking.request_header.registry import _request_header_provider_registry, resolve_request_headers
headers = resolve_request_headers()
providers = [type(provider).__name__ for provider in _request_header_provider_registry]
print(json.dumps({"imported": "feast" in sys.modules, "headers": headers, "providers": providers, "path": sys.path[1:3]}))
"""
