"""Online reads from the Azure ML managed feature store: its online store is an Azure Cache
for Redis that each feature set's materialisation job writes into.

Layout read here (one Redis hash per feature-set version and entity key):

    featurestore:<feature store id>:featureset:<name>:version:<version>[:<materialization version>]:<col1>:<val1>[:<col2>:<val2>…]

The prefix is lower case; index columns in the feature set's entity order; each feature is
a field of the hash. Values are text (`string`, `integer`, `long`, `boolean` as `True`/
`False`, `datetime`), except `float`, `double` and `binary`, which are base64 of a msgpack
scalar. This is the layout the `azureml-featurestore` SDK's materialisation writes and its
online getter reads; Azure does not publish it as a contract, so mlcompile pins it here and
its tests check key construction and decoding against a local Redis-protocol stand-in (not a
live feature store). See docs/targets/azureml.md, "Online feature reads".

Configuration: `MLCOMPILE_ONLINE_FEATURES` (written at build time, see `feature_store.py`)
plus, in the deployment's environment,
* `MLCOMPILE_AZUREML_REDIS_URL`: `rediss://:<access key>@<cache>.redis.cache.windows.net:6380/0`;
* `MLCOMPILE_AZUREML_FEATURE_STORE_ID`: the feature store's workspace id (a GUID; `az ml
  feature-store show --query workspace_id` or the portal), which prefixes every key.

The Redis client is a few lines of RESP over a socket (HMGET, pipelined; AUTH; SELECT):
a serving image needs no Redis package for it."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

ENV_REDIS_URL = "MLCOMPILE_AZUREML_REDIS_URL"
ENV_STORE_ID = "MLCOMPILE_AZUREML_FEATURE_STORE_ID"
PACKED_TYPES = frozenset({"float", "double", "binary"})


# ---------------------------------------------------------------------- keys and values


def key_prefix(store_id: str, feature_set: Mapping[str, Any]) -> str:
    prefix = f"featurestore:{store_id}:featureset:{feature_set['name']}:version:{feature_set['version']}"
    if feature_set.get("materialization_version"):
        prefix += f":{feature_set['materialization_version']}"
    return prefix.lower()


def key_text(value: Any) -> str:
    """An entity key value as the materialisation job wrote it (Python's str of the value)."""
    return str(value)


def lookup_key(store_id: str, feature_set: Mapping[str, Any], entity: Mapping[str, Any]) -> str:
    parts = [key_prefix(store_id, feature_set)]
    for column in feature_set["index_columns"]:
        name = column["name"]
        if name not in entity:
            raise KeyError(f"entity is missing key {name!r} (feature set {feature_set['name']} is keyed by "
                           f"{', '.join(c['name'] for c in feature_set['index_columns'])})")  # fmt: skip
        parts += [name, key_text(entity[name])]
    return ":".join(parts)


def _unpack(data: bytes) -> Any:
    """One msgpack scalar: what a float, double or binary value is packed as."""
    head = data[0]
    if head <= 0x7F:
        return head
    if head >= 0xE0:
        return head - 0x100
    if head == 0xC0:
        return None
    if head in (0xC2, 0xC3):
        return head == 0xC3
    if head == 0xCA:
        return struct.unpack(">f", data[1:5])[0]
    if head == 0xCB:
        return struct.unpack(">d", data[1:9])[0]
    if head in (0xC4, 0xC5, 0xC6):
        width = {0xC4: 1, 0xC5: 2, 0xC6: 4}[head]
        length = int.from_bytes(data[1 : 1 + width], "big")
        return bytes(data[1 + width : 1 + width + length])
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}
    if head in ints:
        fmt = ints[head]
        return struct.unpack(fmt, data[1 : 1 + struct.calcsize(fmt)])[0]
    raise ValueError(f"not a msgpack scalar (first byte 0x{head:02x})")


def decode(raw: bytes | None, kind: str) -> Any:
    """A stored value as the feature's type (None when the store has none)."""
    if raw is None:
        return None
    if kind in PACKED_TYPES:
        value = _unpack(base64.b64decode(raw))
        return float(value) if kind in ("float", "double") and isinstance(value, int) and not isinstance(value, bool) else value
    text = raw.decode("utf-8")
    if kind in ("integer", "long"):
        return int(text)
    if kind == "boolean":
        return text == "True"
    return text  # string; datetime as written (ISO text)


# ---------------------------------------------------------------------- Redis (RESP)


class RedisClient:
    """Just enough of the Redis protocol for lookups: AUTH, SELECT, pipelined HMGET."""

    def __init__(self, url: str, *, timeout: float = 2.0, ssl_context: ssl.SSLContext | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"{ENV_REDIS_URL}: expected redis:// or rediss://, got {parts.scheme!r}")
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (6380 if parts.scheme == "rediss" else 6379)
        self.tls = parts.scheme == "rediss"
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.db = int(parts.path.strip("/") or 0)
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._file: Any = None
        self._sock: socket.socket | None = None

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self.tls:
            context = self.ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=self.host)
        self._sock, self._file = sock, sock.makefile("rb")
        hello: list[list[str]] = []
        if self.password is not None:
            hello.append(["AUTH", *([self.username] if self.username else []), self.password])
        if self.db:
            hello.append(["SELECT", str(self.db)])
        if hello:
            self._call(hello)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    @staticmethod
    def _encode(command: Sequence[str]) -> bytes:
        out = [f"*{len(command)}\r\n".encode()]
        for arg in command:
            data = arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    def _reply(self) -> Any:
        line = self._file.readline()
        if not line:
            raise ConnectionError("Redis closed the connection")
        kind, rest = line[:1], line[1:].rstrip(b"\r\n")
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RuntimeError(f"Redis: {rest.decode(errors='replace')}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            if length < 0:
                return None
            data = self._file.read(length + 2)
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise ConnectionError(f"unexpected Redis reply {line!r}")

    def _call(self, commands: list[list[str]]) -> list[Any]:
        assert self._sock is not None
        self._sock.sendall(b"".join(self._encode(c) for c in commands))
        return [self._reply() for _ in commands]

    def hmget_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[bytes | None]]:
        """One HMGET per (key, fields), sent in one round trip."""
        if not requests:
            return []
        for attempt in (1, 2):  # a connection the server dropped while idle is reopened once
            try:
                if self._sock is None:
                    self._connect()
                return self._call([["HMGET", key, *fields] for key, fields in requests])
            except (ConnectionError, OSError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


# ---------------------------------------------------------------------- the reader


class AzureMLOnlineReader:
    def __init__(self, config: Mapping[str, Any], client: Any, store_id: str):
        self.client = client
        self.store_id = store_id
        # view:feature → (feature set config, feature type)
        self.features: dict[str, tuple[Mapping[str, Any], str]] = {}
        for feature_set in config.get("feature_sets", []):
            for feature in feature_set["features"]:
                self.features[f"{feature_set['name']}:{feature['name']}"] = (feature_set, feature["type"])

    def read(self, entities: list[dict[str, Any]], features: list[str]) -> list[dict[str, Any]]:
        unknown = [f for f in features if f not in self.features]
        if unknown:
            raise KeyError(f"not materialised online in this deployment's feature store: {', '.join(unknown)}")
        by_set: dict[str, list[str]] = {}
        for feature in features:
            by_set.setdefault(feature.split(":", 1)[0], []).append(feature)
        requests: list[tuple[str, list[str]]] = []
        order: list[tuple[int, list[str]]] = []
        for row, entity in enumerate(entities):
            for wanted in by_set.values():
                feature_set = self.features[wanted[0]][0]
                requests.append((lookup_key(self.store_id, feature_set, entity), [f.split(":", 1)[1] for f in wanted]))
                order.append((row, wanted))
        replies = self.client.hmget_many(requests)
        out: list[dict[str, Any]] = [{} for _ in entities]
        for (row, wanted), values in zip(order, replies):
            for feature, raw in zip(wanted, values):
                out[row][feature] = decode(raw, self.features[feature][1])
        return out


def make_reader(config: Mapping[str, Any], *, client: Any = None, environ: Mapping[str, str] | None = None) -> AzureMLOnlineReader:
    env = os.environ if environ is None else environ
    store_id = config.get("feature_store_id") or env.get(ENV_STORE_ID)
    if not store_id:
        raise ValueError(f"{ENV_STORE_ID} is not set: the feature store's workspace id prefixes every online key")
    if client is None:
        url = env.get(ENV_REDIS_URL)
        if not url:
            raise ValueError(f"{ENV_REDIS_URL} is not set: the online store's rediss:// URL with its access key")
        client = RedisClient(_resolved(url))
    return AzureMLOnlineReader(config, client, str(store_id))


def _resolved(url: str) -> str:
    """The URL carries the cache's access key, so it may be a secret: `secret://NAME` or a
    secret-store locator (`keyvault:…`) is read at start like every other secret."""
    from mlcompile.runtime.contract import LOCATOR_SCHEMES
    from mlcompile.runtime.secrets import fetch, resolve

    if url.startswith(LOCATOR_SCHEMES):
        return fetch(url, name=ENV_REDIS_URL)
    return resolve(url)
