"""Cloud URIs under the emulator: storage.local_path's layout, the runtime reading and writing
gs:// and bq:// through it when MLCOMPILE_EMULATE_ROOT is set (and only then), the host
mapping for in-cluster services, and Vertex profiles refusing batch outputs they cannot write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mlcompile.build import compile_system, resolve_profiles
from mlcompile.errors import SpecError
from mlcompile.runtime import emulated_storage as storage
from mlcompile.runtime import io

pytestmark = pytest.mark.emulate
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("uri", "relative"),
    [
        ("gs://bucket/a/b.parquet", "gcs/bucket/a/b.parquet"),
        ("/gcs/bucket/a/b.parquet", "gcs/bucket/a/b.parquet"),  # the launcher's gcsfuse mount of the same object
        ("bq://proj.ds.table", "bigquery/proj.ds.table.parquet"),
        ("s3://bucket/k", "s3/bucket/k"),
        ("abfss://c@acct.dfs.core.windows.net/k", "abfss/c@acct.dfs.core.windows.net/k"),
    ],
)
def test_cloud_uris_are_folders_under_the_root_and_back(tmp_path: Path, uri: str, relative: str) -> None:
    path = storage.local_path(uri, tmp_path)
    assert path == tmp_path / relative
    assert storage.uri_of(path, tmp_path) == ("gs://" + uri[len("/gcs/") :] if uri.startswith("/gcs/") else uri)


@pytest.mark.parametrize(
    "uri",
    [
        "azureml://datastores/workspaceblobstore/paths/azureml/run-1/train/",  # the short form: Azure ML's default output paths
        "azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/workspaceblobstore/paths/azureml/run-1/train/",
    ],
)
def test_azure_ml_datastore_paths_are_folders_of_their_datastore(tmp_path: Path, uri: str) -> None:
    assert storage.local_path(uri, tmp_path) == tmp_path / "azureml/workspaceblobstore/azureml/run-1/train"


@pytest.mark.parametrize("uri", ["gs://bucket/../etc", "bq://p.d.t/x", "http://host/x", "gs://"])
def test_uris_that_would_escape_or_name_nothing_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(storage.UnmappedURI):
        storage.local_path(uri, tmp_path)


def test_the_runtime_reads_and_writes_gs_and_bq_in_the_emulated_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.EMULATE_ROOT_ENV, str(tmp_path))
    frame = pd.DataFrame({"customer_id": ["a", "b"], "score": [0.1, 0.9]})
    io.write_table("bq://proj.scores.daily", frame)
    io.write_table("gs://lake/out/scores.parquet", frame)
    assert (tmp_path / "bigquery/proj.scores.daily.parquet").is_file()
    assert io.read_table("bq://proj.scores.daily", "table").equals(frame)
    assert io.read_table("gs://lake/out/scores.parquet").equals(frame)
    io.write_json("gs://lake/meta.json", {"ok": True})
    assert json.loads((tmp_path / "gcs/lake/meta.json").read_text()) == {"ok": True}
    assert io.exists("gs://lake/meta.json") and not io.is_remote("gs://lake/meta.json")


def test_without_the_emulator_gs_stays_remote_and_table_uris_stay_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(storage.EMULATE_ROOT_ENV, raising=False)
    assert io.is_remote("gs://lake/meta.json")
    with pytest.raises(io.DataError, match="table://"):
        io.read_table("table://warehouse.scores")


def test_in_cluster_service_urls_map_to_the_local_stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.HOSTS_ENV, json.dumps({"mlflow.ml.svc:5000": "127.0.0.1:41234"}))
    assert storage.service_url("http://mlflow.ml.svc:5000/api/2.0") == "http://127.0.0.1:41234/api/2.0"
    assert storage.service_url("http://other.svc:5000") == "http://other.svc:5000"
    from mlcompile.runtime.registry_mlflow import tracking_uri

    assert tracking_uri({"registry": {"tracking_uri": "http://mlflow.ml.svc:5000"}}) == "http://127.0.0.1:41234"
    monkeypatch.delenv(storage.HOSTS_ENV)
    assert tracking_uri({"registry": {"tracking_uri": "http://mlflow.ml.svc:5000"}}) == "http://mlflow.ml.svc:5000"


def _churn_with_batch_output(tmp_path: Path, output: str) -> Path:
    folder = tmp_path / "churn"
    shutil.copytree(REPO / "examples/churn", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    spec = folder / "mlcompile.yaml"
    text = spec.read_text()
    old = "      batch: {output: {uri: bq://acme-growth-prod.churn.churn_scores}}"
    assert old in text
    spec.write_text(text.replace(old, f"      batch: {{output: {{uri: {output}}}}}"))
    return spec


def test_a_vertex_profile_refuses_a_batch_output_it_cannot_write_at_its_line(tmp_path: Path) -> None:
    spec = _churn_with_batch_output(tmp_path, "s3://acme-growth-lake-eu/churn/scores.parquet")
    with pytest.raises(SpecError) as raised:
        compile_system(str(spec), resolve_profiles(str(spec), [str(REPO / "targets/gcp-prod.yaml")]), render=False)
    [error] = [d for d in raised.value.diagnostics if d.severity == "error"]
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "s3://acme-growth-lake-eu/churn/scores" in text)
    assert (error.line, "Vertex AI jobs cannot write the batch scores to s3://") == (
        line,
        error.message[: len("Vertex AI jobs cannot write the batch scores to s3://")],
    )


def test_a_vertex_profile_accepts_a_gs_batch_output(tmp_path: Path) -> None:
    spec = _churn_with_batch_output(tmp_path, "gs://acme-growth-lake/churn/scores.parquet")
    compilation = compile_system(str(spec), resolve_profiles(str(spec), [str(REPO / "targets/gcp-prod.yaml")]), render=False)
    assert not [w for w in compilation.warnings if "Vertex AI jobs cannot" in w.message]


def test_the_launcher_passes_emulated_artifact_paths_on_as_their_cloud_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlcompile.runtime.launch import uri_of

    monkeypatch.setenv(storage.EMULATE_ROOT_ENV, str(tmp_path))
    assert uri_of(str(tmp_path / "gcs/root/run/train/model")) == "gs://root/run/train/model"
    assert uri_of("/gcs/root/run/train/model") == "gs://root/run/train/model"
    assert uri_of("/elsewhere/model") == "/elsewhere/model"
