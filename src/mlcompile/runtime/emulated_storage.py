"""Cloud storage as folders under one emulation root.

    gs://b/k           -> ROOT/gcs/b/k            (and the launcher's /gcs/b/k mount)
    bq://p.d.t         -> ROOT/bigquery/p.d.t.parquet
    s3://b/k           -> ROOT/s3/b/k
    abfss://c@a.../k   -> ROOT/abfss/c@a.../k
    azureml://…/datastores/d/paths/k -> ROOT/azureml/d/k  (an Azure ML datastore path)

The runtime resolves URIs through this mapping when `MLCOMPILE_EMULATE_ROOT` is set; the
emulator sets it for every step it runs."""

from __future__ import annotations

import os
from pathlib import Path

EMULATE_ROOT_ENV = "MLCOMPILE_EMULATE_ROOT"
GCS_MOUNT = "/gcs/"
_FOLDERS = {"gs": "gcs", "gcs": "gcs", "s3": "s3", "s3a": "s3", "abfss": "abfss", "abfs": "abfss", "az": "abfss", "hdfs": "hdfs"}


class UnmappedURI(ValueError):
    """A URI the emulation cannot place in a folder (http://, an unknown scheme)."""


def local_path(uri: str, root: Path) -> Path:
    """The emulated location of a cloud URI (or of a path under KFP's `/gcs/` mount)."""
    root = Path(root)
    if uri.startswith(GCS_MOUNT):
        return root / "gcs" / _relative(uri[len(GCS_MOUNT) :], uri)
    if uri.startswith("bq://"):
        table = uri[len("bq://") :].strip("/")
        if not table or "/" in table:
            raise UnmappedURI(f"{uri}: a BigQuery table is bq://project.dataset.table")
        return root / "bigquery" / f"{table}.parquet"
    scheme, sep, rest = uri.partition("://")
    if scheme == "azureml" and "/datastores/" in f"/{rest}":  # an Azure ML datastore path (short or long form)
        datastore, _, path = f"/{rest}".split("/datastores/", 1)[1].partition("/paths/")
        return root / "azureml" / datastore / _relative(path, uri)
    if not sep or scheme not in _FOLDERS:
        raise UnmappedURI(f"{uri}: no emulated storage for {scheme or 'this'}:// URIs")
    return root / _FOLDERS[scheme] / _relative(rest, uri)


def _relative(rest: str, uri: str) -> Path:
    parts = [part for part in rest.split("/") if part]
    if not parts or any(part in (".", "..") for part in parts):
        raise UnmappedURI(f"{uri}: not a bucket path")
    return Path(*parts)


def emulate_root() -> Path | None:
    """The emulation root this process runs under, or None on a real platform."""
    value = os.environ.get(EMULATE_ROOT_ENV)
    return Path(value) if value else None


def mapped(uri: str) -> Path | None:
    """The local folder path of `uri` when running under the emulator, else None."""
    root = emulate_root()
    if root is None:
        return None
    if uri.startswith(GCS_MOUNT) or uri.startswith("bq://") or uri.partition("://")[0] in _FOLDERS or uri.startswith("azureml://"):
        return local_path(uri, root)
    return None


# -- services -----------------------------------------------------------------------------
# In-cluster services (an MLflow at http://mlflow.ml.svc:5000) are served on 127.0.0.1 by the
# emulator; HOSTS_ENV maps each host:port a build names to the local one, as cluster DNS would.
HOSTS_ENV = "MLCOMPILE_EMULATE_HOSTS"


def is_cloud(uri: str) -> bool:
    return uri.startswith("bq://") or uri.partition("://")[0] in _FOLDERS


def netloc(url: str) -> str:
    """host:port of an http(s) URL (the scheme's default port made explicit)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def service_url(url: str) -> str:
    """`url` with its host:port replaced by the emulator's local one (unchanged outside it)."""
    import json
    from urllib.parse import urlsplit, urlunsplit

    hosts = json.loads(os.environ.get(HOSTS_ENV) or "{}")
    if not hosts or not url.startswith(("http://", "https://")):
        return url
    local = hosts.get(netloc(url))
    if local is None:
        return url
    return urlunsplit(urlsplit(url)._replace(scheme="http", netloc=local))


def uri_of(path: str | Path, root: Path) -> str:
    """The cloud URI of a path under the emulation root (the inverse of local_path), or the
    path itself when it is elsewhere: what a launcher passes on to a platform job."""
    try:
        relative = Path(path).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return str(path)
    folder, *rest = relative.parts or ("",)
    if folder == "bigquery" and len(rest) == 1 and rest[0].endswith(".parquet"):
        return "bq://" + rest[0][: -len(".parquet")]
    scheme = {"gcs": "gs", "s3": "s3", "abfss": "abfss", "hdfs": "hdfs"}.get(folder)
    return f"{scheme}://" + "/".join(rest) if scheme and rest else str(path)
