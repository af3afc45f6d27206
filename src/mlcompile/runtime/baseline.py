"""The drift baseline kept with every model: a sample of the training features, beside the
model in its folder, that monitoring compares production data with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcompile.runtime.io import read_table, table_metadata, write_table

BASELINE_FILE = "baseline.parquet"  # the training features, kept with the model: the drift baseline
BASELINE_ROWS = 50_000


def save_baseline(folder: Path, frame: Any, meta: dict[str, Any], label: str) -> None:
    columns = [f["column"] for f in meta["features"]] + [label]
    sample = frame[columns] if len(frame) <= BASELINE_ROWS else frame[columns].sample(BASELINE_ROWS, random_state=0)
    write_table(str(folder / BASELINE_FILE), sample.reset_index(drop=True))


def add_baseline(folder: Path, train_uri: str, label: str) -> None:
    """The drift baseline of a model folder that has none (a container's), as mlcompile's own
    models keep it: a sample of the training features."""
    dataset = table_metadata(train_uri)
    if dataset.get("features") and not (folder / BASELINE_FILE).exists():
        save_baseline(folder, read_table(train_uri), dataset, label)
