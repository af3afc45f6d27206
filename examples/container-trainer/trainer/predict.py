"""The card-fraud model's predict entry point (`training.trainer.container.predict`).

train.py copies this file into the model folder; mlcompile's runtime starts it there, once
per loaded model, wherever the model scores rows (the online endpoint, batch scoring,
performance monitoring) and talks to it in JSON lines:

    stdin:  {"instances": [{"card_tier": "gold", "txn_count_7d": 4, ...}, ...]}
    stdout: {"predictions": [0, 1, ...], "scores": [0.03, 0.91, ...]}

`scores` is the probability of fraud. A request it cannot answer gets {"error": "..."}; logs
go to stderr. It needs only the model folder (MLCOMPILE_MODEL_DIR, else this file's folder).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

THRESHOLD = 0.5
MISSING = "__missing__"  # train.py's category of missing text values


def main() -> int:
    import joblib
    import pandas as pd

    folder = Path(os.environ.get("MLCOMPILE_MODEL_DIR") or Path(__file__).resolve().parent)
    saved = joblib.load(folder / "fraud-model.joblib")
    pipeline, features, categorical = saved["pipeline"], saved["features"], set(saved["categorical"])
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            rows = json.loads(line)["instances"]
            frame = pd.DataFrame(rows, columns=features)
            for column in features:  # the runtime sends numbers as numbers, missing as null
                if column in categorical:  # as train.py encodes them: text, missing as its own category
                    frame[column] = frame[column].astype(object).where(frame[column].notna(), MISSING).astype(str)
                else:
                    frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            proba = pipeline.predict_proba(frame)[:, 1] if len(frame) else []
            answer = {"predictions": [int(p >= THRESHOLD) for p in proba], "scores": [round(float(p), 6) for p in proba]}
        except Exception as exc:  # noqa: BLE001 - one bad request must not stop the model
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
