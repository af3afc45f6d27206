"""A new MLflow SQLite store starts as a copy of an empty, migrated one kept in the user's
cache, and MLflow opens it exactly as one it made itself: its default experiment with the
store's own artifact root, ids from 1. A store that exists is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from requires import require

from mlcompile.runtime.mlflow_store import seed

require("mlflow")


def _open(path: Path, root: Path):  # noqa: ANN202 - MLflow's store
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    return SqlAlchemyStore(f"sqlite:///{path}", str(root))


def test_a_seeded_store_opens_as_a_fresh_one_with_its_own_artifact_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("first", "second"):  # the first makes the template, the second copies it
        path = tmp_path / name / "mlflow.db"
        seed(f"sqlite:///{path}")
        assert path.is_file()
        store = _open(path, tmp_path / name / "artifacts")
        assert store.get_experiment("0").artifact_location.endswith(f"{name}/artifacts/0")
        assert store.create_experiment("churn") == "1"
        store.engine.dispose()
    assert len(list((tmp_path / "cache" / "mlcompile").iterdir())) == 1  # one template, no scratch left


def test_an_existing_store_and_other_uris_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"someone else's")
    seed(f"sqlite:///{path}")
    seed("http://127.0.0.1:5000")
    assert path.read_bytes() == b"someone else's" and not (tmp_path / "cache").exists()


def test_without_a_writable_cache_mlflow_makes_the_store_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cache").write_text("a file, not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "store" / "mlflow.db"
    seed(f"sqlite:///{path}")
    assert not path.exists()
    assert _open(path, tmp_path / "artifacts").get_experiment("0").name == "Default"
