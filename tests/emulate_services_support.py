"""What the emulated platform services' tests share: a tiny real trainer (one Python line per
concern) that the services run as a user container, and the emulation it runs under."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcompile.emulate.containers import Images
from mlcompile.emulate.services.execution import Execution

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
