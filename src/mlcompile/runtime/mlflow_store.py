"""A new MLflow SQLite store starts as a copy of an empty, migrated one.

MLflow creates a new SQLite store by running its ~50 schema migrations (about 1 s of CPU),
and every local run, emulated workspace and emulated MLflow server starts a new store. The
first one this machine makes for an MLflow version is kept in the user's cache
(`~/.cache/mlcompile/`) without its default experiment, which MLflow adds on opening with the
store's own artifact root; later stores are copies of it. A store that exists is never
touched, and without a writable cache MLflow migrates as it always does."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"


def seed(uri: str) -> None:
    """Give a `sqlite:///PATH` store that does not exist yet its migrated, empty schema."""
    if not uri.startswith(SQLITE_PREFIX):
        return
    path = Path(uri[len(SQLITE_PREFIX) :])
    if path.exists():
        return
    try:
        template = _template()
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".mlflow-seed-", delete=False) as handle:
            copy = Path(handle.name)
        shutil.copyfile(template, copy)
        try:
            os.link(copy, path)  # only if no one created the store meanwhile
        except FileExistsError:
            pass
        finally:
            copy.unlink()
    except (OSError, sqlite3.Error, ImportError):
        return  # MLflow creates the store itself


def _template() -> Path:
    import mlflow

    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlcompile"
    template = folder / f"mlflow-{mlflow.__version__}-empty.db"
    if template.exists():
        return template
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        made = Path(scratch) / "mlflow.db"
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        store = SqlAlchemyStore(SQLITE_PREFIX + str(made), str(Path(scratch) / "artifacts"))
        store.engine.dispose()
        with sqlite3.connect(made) as db:  # MLflow adds it again, with the new store's artifact root
            db.execute("DELETE FROM experiments WHERE experiment_id = 0")
        db.close()
        os.replace(made, template)
    return template
