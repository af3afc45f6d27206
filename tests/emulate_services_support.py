"""What the emulated platform services' tests share: a tiny real trainer (one Python line per
concern) that the services run as a user container, and the emulation it runs under."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlcompile.emulate.containers import Images
from mlcompile.emulate.services.execution import Execution

# the keys of every emulated platform's summary (emulate/summary.py): one shape on all four
SUMMARY_KEYS = {"system", "profile", "platform", "status", "workdir", "pipelines", "skipped", "tasks", "failures", "gate", "registered", "approved",
                "deployed", "batch", "monitoring", "retraining", "seconds"}  # fmt: skip
TRAINER_IMAGE = "us-docker.pkg.dev/acme/ml/trainer:1"
# A trainer as a user's image holds it: reads its hyperparameter from `--lr=VALUE`, writes its
# model where the platform says (a gs:// URI, through the emulator's bucket folders), and reports
# its score: as cloudml-hypertune writes it (Vertex), and as a `name=value` line (Katib).
TRAINER = "; ".join(
    [
        "import json, os, sys",
        "lr = float(next(a.split('=', 1)[1] for a in sys.argv[1:] if a.startswith('--lr=')))",
        "uri = os.environ.get('AIP_MODEL_DIR') or os.environ['MODEL_URI']",
        "model = os.path.join(os.environ['MLCOMPILE_EMULATE_ROOT'], 'gcs', uri[len('gs://'):]) if uri.startswith('gs://') else uri",
        "os.makedirs(model, exist_ok=True)",
        "open(os.path.join(model, 'model.json'), 'w').write(json.dumps({'lr': lr, 'rank': os.environ.get('RANK')}))",
        "score = round(1 - (lr - 0.3) ** 2, 6)",
        "hp = os.environ.get('CLOUD_ML_HP_METRIC_FILE', '/tmp/hypertune/output.metrics')",
        "os.makedirs(os.path.dirname(hp), exist_ok=True)",
        "open(hp, 'w').write(json.dumps({'accuracy': str(score), 'global_step': '1', 'trial': os.environ.get('CLOUD_ML_TRIAL_ID', '0')}) + '\\n')",
        "print(f'accuracy={score}'); print(f'loss={1 - score:.6f}')",
    ]
)
# Prints what a replica of a distributed job sees of its place in it.
REPLICA = "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'CLUSTER_SPEC', 'TF_CONFIG', 'CLOUD_ML_JOB_ID', 'AIP_MODEL_DIR')}))"


def emulation(root: Path, **extra: Any) -> Execution:
    return Execution(Images(runtime="mlcompile-runtime", commands={TRAINER_IMAGE: ["python", "-c", TRAINER]}), root, **extra)


def wait_for(read: Callable[[], Any], ended: Callable[[Any], bool], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        current = read()
        if ended(current) or time.monotonic() > deadline:
            return current
        time.sleep(0.1)


def drift(activity: Path, drifted: Path) -> None:
    """The churn example's activity snapshots with customers ordering three times as often and
    spending more: a shift of the watched features (PSI far above the spec's 0.2)."""
    import pandas as pd

    frame = pd.read_csv(activity)
    frame["orders_30d"] = frame["orders_30d"] * 3 + 2
    frame["spend_30d"] = (frame["spend_30d"] * 2.5 + 40).round(2)
    frame.to_csv(drifted, index=False)


@contextlib.contextmanager
def alert_webhook() -> Iterator[tuple[str, list[bytes]]]:
    """A team's chat webhook the alert step posts to: its URL, and the bodies it received."""
    import http.server
    import threading

    received: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
