"""A churn-like model as the runtime's train step writes it, for the serving tests and
bench/serve.py: five features (three int64, a float64, a string), the label driven by
support tickets, orders and tenure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FEATURES = [  # the churn example's model inputs, as the extract-features step records them
    {"ref": "customer_activity:orders_30d", "view": "customer_activity", "column": "orders_30d", "dtype": "int64"},
    {"ref": "customer_activity:spend_30d", "view": "customer_activity", "column": "spend_30d", "dtype": "float64"},
    {"ref": "customer_activity:support_tickets_30d", "view": "customer_activity", "column": "support_tickets_30d", "dtype": "int64"},
    {"ref": "customer_profile:plan", "view": "customer_profile", "column": "plan", "dtype": "string"},
    {"ref": "customer_profile:tenure_days", "view": "customer_profile", "column": "tenure_days", "dtype": "int64"},
]


def train_churn_model(folder: Path, estimator: str, estimator_params: dict[str, Any], rows: int, system: str = "churn-prediction") -> Path:
    """The model folder (model.json + model.joblib) the train step writes into `folder`/model."""
    import numpy as np
    import pandas as pd

    from mlcompile.runtime import step_function
    from mlcompile.runtime.io import write_table

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "customer_id": [f"C{i}" for i in range(rows)], "event_ts": "2026-01-01T00:00:00Z",
        "orders_30d": rng.integers(0, 12, rows), "spend_30d": rng.gamma(2.0, 30.0, rows), "support_tickets_30d": rng.integers(0, 8, rows),
        "plan": rng.choice(["basic", "plus", "pro"], rows), "tenure_days": rng.integers(1, 1000, rows),
    })  # fmt: skip
    risk = frame["support_tickets_30d"] * 0.6 - frame["orders_30d"] * 0.4 - frame["tenure_days"] / 300 + rng.normal(scale=0.5, size=rows)
    frame["churned"] = (risk > 0).astype(int)
    meta = {"features": FEATURES, "label": "churned", "timestamp": "event_ts", "keys": ["customer_id"], "sources": {}, "rows": {}, "coercion": {}}
    write_table(str(folder / "train.parquet"), frame, meta)
    (folder / "report.json").write_text(json.dumps({"expectations": {}}))
    params = {"label": "churned", "estimator": estimator, "estimator_params": estimator_params}
    step_function("train")({"system": system, "params": params}, {"train": str(folder / "train.parquet"), "report": str(folder / "report.json")},
                           {"model": str(folder / "model"), "metrics": str(folder / "train.json")})  # fmt: skip
    return folder / "model"
