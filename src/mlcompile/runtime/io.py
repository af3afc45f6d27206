"""Artifacts and sources by URI: local paths and `file://` here, gs:// s3:// abfss:// (and any
other fsspec protocol) in the cloud when fsspec and its filesystem package are installed.

Relative `file://` URIs are relative to the spec's folder, which the caller names through
`MLCOMPILE_SPEC_DIR` (the executor sets it; a cloud pipeline never sees a relative URI).

BigQuery tables (`bq://project.dataset.table`) are read and written through
google-cloud-bigquery when it is installed. Under the emulator (`MLCOMPILE_EMULATE_ROOT` set,
see docs/emulate.md) cloud URIs are folders under that root: gs://b/k is ROOT/gcs/b/k and a
BigQuery table is a parquet file, so a step runs unchanged on this machine."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ENV_SPEC_DIR = "MLCOMPILE_SPEC_DIR"


class DataError(Exception):
    """Bad data or an unreadable artifact: reported to the user without a traceback."""


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://") and _emulated(uri) is None


def _emulated(uri: str) -> Path | None:
    from mlcompile.runtime.emulated_storage import UnmappedURI, mapped

    try:
        return mapped(uri)
    except UnmappedURI as exc:
        raise DataError(str(exc)) from exc


def _bigquery_table(uri: str) -> str | None:
    """`project.dataset.table` of a bq:// URI read from BigQuery itself (not emulated)."""
    if not uri.startswith("bq://") or _emulated(uri) is not None:
        return None
    return uri[len("bq://") :].strip("/")


def _bigquery(uri: str) -> Any:
    try:
        from google.cloud import bigquery
    except ImportError as exc:  # pragma: no cover - depends on the image
        raise DataError(f"{uri}: reading BigQuery tables needs google-cloud-bigquery (pip install 'mlcompile[gcp]')") from exc
    return bigquery


def local_path(uri: str, base_dir: str | None = None) -> Path:
    """The local path of a `file://` URI or plain path (relative ones against the spec's folder)."""
    emulated = _emulated(uri)
    if emulated is not None:
        return emulated
    if uri.startswith("file://"):
        rest = uri[len("file://") :]
        path = Path(rest)
        if not path.is_absolute():
            path = Path(base_dir or os.environ.get(ENV_SPEC_DIR) or ".") / path
        return path
    if is_remote(uri):
        raise DataError(f"{uri}: not a local path")
    return Path(uri)


def _fsspec(uri: str) -> Any:
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - depends on the image
        raise DataError(f"{uri}: reading {uri.split('://')[0]}:// needs fsspec and its filesystem package (gcsfs, s3fs, adlfs)") from exc
    return fsspec


def check_readable_scheme(uri: str) -> None:
    if uri.startswith("table://"):
        raise DataError(f"{uri}: table:// tables are read by the cloud platforms; the local runtime reads file://, bq://, parquet and csv URIs")


@contextmanager
def open_uri(uri: str, mode: str = "rb") -> Iterator[Any]:
    if is_remote(uri):
        with _fsspec(uri).open(uri, mode) as handle:
            yield handle
    else:
        path = local_path(uri)
        if "w" in mode:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, mode) as handle:
            yield handle


def exists(uri: str) -> bool:
    if is_remote(uri):
        fs, path = _fsspec(uri).core.url_to_fs(uri)
        return bool(fs.exists(path))
    return local_path(uri).exists()


def read_json(uri: str) -> Any:
    with open_uri(uri, "rb") as handle:
        return json.loads(handle.read().decode("utf-8"))


def write_json(uri: str, data: Any) -> None:
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
    write_bytes(uri, text.encode("utf-8"))


def write_bytes(uri: str, content: bytes) -> None:
    if is_remote(uri):
        with open_uri(uri, "wb") as handle:
            handle.write(content)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())  # on disk before the rename: a crash leaves old or new, never empty
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def read_table(uri: str, fmt: str | None = None) -> Any:
    """A pandas DataFrame from a csv or parquet URI (file or folder of parquet files)."""
    import pandas as pd

    check_readable_scheme(uri)
    table_id = _bigquery_table(uri)
    if table_id is not None:
        try:
            return _bigquery(uri).Client().list_rows(table_id).to_arrow().to_pandas()
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{uri}: cannot read the BigQuery table: {type(exc).__name__}: {exc}") from exc
    if uri.startswith("bq://"):  # emulated: the table is a parquet file
        fmt = "parquet"
    fmt = fmt or ("csv" if uri.lower().endswith((".csv", ".csv.gz")) else "parquet")
    try:
        if not is_remote(uri):
            path = local_path(uri)
            if not path.exists():
                raise DataError(f"{uri}: no such file ({path})")
            target: Any = str(path)
        else:
            target = uri
        if fmt == "csv":
            return pd.read_csv(target, low_memory=False)
        if fmt in ("parquet", "table"):
            return pd.read_parquet(target)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{uri}: cannot read as {fmt}: {type(exc).__name__}: {exc}") from exc
    raise DataError(f"{uri}: unsupported format {fmt!r} (csv or parquet)")


def write_table(uri: str, frame: Any, metadata: dict[str, Any] | None = None) -> None:
    """Write a DataFrame as parquet (or csv when the URI ends in .csv); `metadata` travels in
    the parquet file's key-value metadata under `mlcompile`. A bq:// URI replaces the table's
    rows (WRITE_TRUNCATE), like a parquet file is replaced."""
    table_id = _bigquery_table(uri)
    if table_id is not None:
        bigquery = _bigquery(uri)
        try:
            job_config = bigquery.LoadJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
            bigquery.Client().load_table_from_dataframe(frame, table_id, job_config=job_config).result()
        except Exception as exc:
            raise DataError(f"{uri}: cannot write the BigQuery table: {type(exc).__name__}: {exc}") from exc
        return
    if uri.lower().endswith(".csv"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "out.csv"
            frame.to_csv(path, index=False)
            write_bytes(uri, path.read_bytes())
        return
    import warnings

    import pyarrow as pa
    import pyarrow.parquet as pq

    with warnings.catch_warnings():  # pyarrow's pandas bridge still reads Series.values (pandas 3 deprecation)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Series.values")
        table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        existing = dict(table.schema.metadata or {})
        existing[b"mlcompile"] = json.dumps(metadata, sort_keys=True, default=_json_default).encode()
        table = table.replace_schema_metadata(existing)
    if is_remote(uri):
        with open_uri(uri, "wb") as handle:
            pq.write_table(table, handle)
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.tmp{os.getpid()}")
    pq.write_table(table, staged)
    os.replace(staged, path)


def table_metadata(uri: str) -> dict[str, Any]:
    """The `mlcompile` key-value metadata of a parquet file written by `write_table`, or of the
    first parquet file of a folder (a dataset handed over as a folder, e.g. Azure ML's
    `uri_folder`)."""
    import pyarrow.parquet as pq

    try:
        if is_remote(uri):
            fs, path = _fsspec(uri).core.url_to_fs(uri)
            if fs.isdir(path):
                path = sorted(fs.glob(path.rstrip("/") + "/*.parquet"))[0]
            with fs.open(path, "rb") as handle:
                schema = pq.read_schema(handle)
        else:
            path = local_path(uri)
            if path.is_dir():
                path = sorted(path.glob("*.parquet"))[0]
            schema = pq.read_schema(str(path))
    except Exception:
        return {}
    raw = (schema.metadata or {}).get(b"mlcompile")
    return json.loads(raw) if raw else {}


@contextmanager
def local_dir(uri: str, *, write: bool) -> Iterator[Path]:
    """A local folder for a folder artifact (a model): the folder itself for local URIs, a
    temporary copy (downloaded, or uploaded on exit when `write`) for remote ones."""
    if not is_remote(uri):
        path = local_path(uri)
        if write:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            raise DataError(f"{uri}: no such folder")
        yield path
        return
    fs, remote = _fsspec(uri).core.url_to_fs(uri)
    with tempfile.TemporaryDirectory(prefix="mlcompile-") as tmp:
        local = Path(tmp) / "artifact"
        if not write:
            fs.get(remote.rstrip("/") + "/", str(local), recursive=True)
        else:
            local.mkdir()
        yield local
        if write:
            fs.put(str(local) + "/", remote.rstrip("/"), recursive=True)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(uri: str, base_dir: str | None = None) -> str | None:
    """Content hash of a local file or folder (sha256); None for remote URIs (their
    platforms version them) and missing paths."""
    if is_remote(uri):
        return None
    path = local_path(uri, base_dir)
    if path.is_file():
        return sha256_file(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(item.relative_to(path)).encode() + b"\0" + sha256_file(item).encode())
        return digest.hexdigest()
    return None
