"""`mlcompile init`: a spec, a local profile, sample data and a .gitignore that validate and
build as they are, so that a first run succeeds before anything is edited.

init writes into a folder that already holds other files (a README, a LICENSE, a git checkout)
and refuses only when a file it would write is there, naming every one, before writing any.
The spec and profile point editors at the published schemas (their `$id`), not at a copy: the
`.mlcompile/` workdir is the local run's scratch space, which the written .gitignore excludes."""

from __future__ import annotations

import csv
import io
import random
import re
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from mlcompile import yaml_emit
from mlcompile.errors import UsageError
from mlcompile.schema import schema_id

CUSTOMERS = 400
WORKDIR = ".mlcompile"
# What a scaffolded project keeps out of git: the local runs' workdir (runs, artifacts, the
# local registry) and build output.  An existing .gitignore gets the entries it lacks.
IGNORED = (f"{WORKDIR}/", "build/")


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


def _gitignore(directory: Path) -> str:
    path = directory / ".gitignore"
    current = path.read_text() if path.exists() else ""
    present = {line.strip() for line in current.splitlines()}
    missing = [entry for entry in IGNORED if entry not in present and entry.rstrip("/") not in present]
    if not missing:
        return current
    header = "# mlcompile: local runs and build output\n"
    separator = "" if not current or current.endswith("\n") else "\n"
    return current + separator + ("\n" if current else "") + header + "".join(f"{entry}\n" for entry in missing)


def scaffold(directory: Path, name: str | None = None) -> list[Path]:
    """Write the project into ``directory`` (created when missing); nothing is written when any
    file but .gitignore is already there."""
    system = _system_name(directory, name)
    environment = _environment()
    files: dict[str, str] = {
        "mlcompile.yaml": environment.get_template("mlcompile.yaml.j2").render(name=system, schema=schema_id("system")),
        "targets/local.yaml": environment.get_template("local.yaml.j2").render(schema=schema_id("target"), workdir=WORKDIR),
        **sample_data(),
    }
    taken = sorted(relative for relative in files if (directory / relative).exists())
    if taken:
        raise UsageError(f"{directory} already has {', '.join(taken)}: init writes only files that do not exist yet; "
                         "move them aside or init another folder")  # fmt: skip
    files[".gitignore"] = _gitignore(directory)
    written = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written
