"""`mlcompile init`: a spec, a local profile, editor schemas and sample data that validate and
build as they are, so that a first run succeeds before anything is edited."""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from mlcompile import yaml_emit
from mlcompile.errors import UsageError
from mlcompile.schema import SCHEMA_FILES, schema_text

CUSTOMERS = 400


def _environment() -> Environment:
    environment = Environment(loader=PackageLoader("mlcompile", "templates/init"), undefined=StrictUndefined, keep_trailing_newline=True)
    environment.filters["yaml"] = yaml_emit.scalar
    return environment


def _system_name(directory: Path, name: str | None) -> str:
    candidate = name or re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", candidate) or not 3 <= len(candidate) <= 40:
        if name:
            raise UsageError(f"--name {name!r} must be a lowercase DNS label of 3..40 characters")
        candidate = "my-ml-system"
    return candidate


def sample_data(seed: int = 7) -> dict[str, str]:
    """Daily activity snapshots and churn labels with a learnable signal (few orders and the
    basic plan make churn likely)."""
    rng = random.Random(seed)
    activity, labels = io.StringIO(), io.StringIO()
    a, lab = csv.writer(activity, lineterminator="\n"), csv.writer(labels, lineterminator="\n")
    a.writerow(["customer_id", "event_ts", "orders_30d", "spend_30d", "plan"])
    lab.writerow(["customer_id", "label_ts", "churned"])
    for customer in range(1, CUSTOMERS + 1):
        plan = rng.choice(["basic", "basic", "plus", "pro"])
        engagement = rng.random()
        for day in (1, 8, 15):
            orders = max(0, int(rng.gauss(engagement * 10, 1.5)))
            spend = round(orders * rng.uniform(8, 30), 2)
            a.writerow([f"c{customer:04d}", f"2025-03-{day:02d}T00:00:00", orders, spend, plan])
        risk = 1.6 - 3.2 * engagement + (0.8 if plan == "basic" else -0.4) + rng.gauss(0, 0.6)
        lab.writerow([f"c{customer:04d}", "2025-03-20T00:00:00", int(risk > 0)])
    return {"data/activity.csv": activity.getvalue(), "data/labels.csv": labels.getvalue()}


def scaffold(directory: Path, name: str | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise UsageError(f"{directory} is not empty: init writes only into an empty folder")
    system = _system_name(directory, name)
    environment = _environment()
    files: dict[str, str] = {
        "mlcompile.yaml": environment.get_template("mlcompile.yaml.j2").render(name=system),
        "targets/local.yaml": environment.get_template("local.yaml.j2").render(),
        **{f".mlcompile/schemas/{SCHEMA_FILES[k]}": schema_text(k) for k in ("system", "target")},  # type: ignore[arg-type]
        **sample_data(),
    }
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
