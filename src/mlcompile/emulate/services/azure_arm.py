"""A local stand-in for the Azure Resource Manager endpoints azure-ai-ml calls (Azure ML
workspaces, assets, endpoints, schedules; Azure Monitor autoscale settings, action groups and
metric alerts): an in-memory resource store over plain HTTP on 127.0.0.1 that records every
request.

HTTPS with a throw-away self-signed certificate for 127.0.0.1 (`tls_certificate`): azure-core
refuses to send a bearer token over plain HTTP. Enough of ARM's behaviour for `MLClient` to create, read and update resources: PUT stores the
body (adding `id`, `name`, `type`, `systemData` and `provisioningState: Succeeded`) and
answers 200 (update) or 201 (create), and a new asset version advances its container's
`latestVersion`; GET answers the stored resource, a collection
(`{"value": [...]}`) when the path names a collection, or ARM's 404 error body; POST to
`…/listKeys`-style actions answers an empty object. Long-running operations complete at once.
Like ARM, it refuses (400) an action group or metric alert without the properties the
Microsoft.Insights REST API requires, and a metric alert whose action group does not exist.

Run it alone with `python -m mlcompile.emulate.services.azure_arm [PORT]` to watch what the SDK sends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class ArmStandIn:
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # answers a request itself (status, body), or None to leave it to the resource store:
    # how the emulated workspace runs submitted jobs and serves its models from MLflow
    intercept: Callable[[str, str, dict[str, list[str]], Any], tuple[int, Any] | None] | None = None

    # ------------------------------------------------------------------ store
    def seed(self, path: str, body: dict[str, Any]) -> None:
        self.resources[path.lower()] = self._complete(path, body)

    @staticmethod
    def _complete(path: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        stored = _normalise(dict(body))
        stored["id"] = path
        stored["name"] = parts[-1]
        stored.setdefault("type", "/".join(p for p in parts[-4::2]))
        stored.setdefault("systemData", {"createdAt": "2026-01-01T00:00:00Z", "createdBy": "stand-in", "lastModifiedAt": "2026-01-01T00:00:00Z"})
        properties = stored.setdefault("properties", {})
        if isinstance(properties, dict):
            properties["provisioningState"] = "Succeeded"
        return stored

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        if self.intercept is not None:
            answered = self.intercept(method, path, query, body)
            if answered is not None:
                with self.lock:
                    self.calls.append(Call(method, path, query, body))
                return answered
        with self.lock:
            self.calls.append(Call(method, path, query, body))
            key = path.rstrip("/").lower()
            if method == "PUT":
                refused = self._insights_refusal(key, body or {})
                if refused is not None:
                    return 400, {"error": {"code": "BadRequest", "message": f"{refused} (stand-in)"}}
                existed = key in self.resources
                self.resources[key] = self._complete(path.rstrip("/"), body or {})
                container, _, version = path.rstrip("/").rpartition("/versions/")
                if version and "/versions/" not in container:
                    # like the service: a new asset version creates or advances its container
                    current = self.resources.get(container.lower()) or self._complete(container, {"properties": {}})
                    current["properties"]["latestVersion"] = version
                    self.resources[container.lower()] = current
                return (200 if existed else 201), self.resources[key]
            if method == "PATCH":
                if key not in self.resources:
                    return 404, _not_found(path)
                current = self.resources[key]
                for name, value in (body or {}).items():
                    if isinstance(value, dict) and isinstance(current.get(name), dict):
                        current[name].update(value)
                    else:
                        current[name] = value
                return 200, current
            if method == "DELETE":
                return (200 if self.resources.pop(key, None) is not None else 204), None
            if method == "POST":
                return 200, {}
            if key in self.resources:
                return 200, self.resources[key]
            children = [r for k, r in sorted(self.resources.items()) if k.startswith(key + "/") and "/" not in k[len(key) + 1 :]]
            if children or _is_collection(key):
                return 200, {"value": children}
            return 404, _not_found(path)

    def _insights_refusal(self, key: str, body: dict[str, Any]) -> str | None:
        kind = next((k for k in _INSIGHTS_REQUIRED if f"/providers/microsoft.insights/{k}/" in key), None)
        if kind is None:
            return None
        properties = body.get("properties") or {}
        missing = [name for name in _INSIGHTS_REQUIRED[kind] if name not in properties] + ([] if body.get("location") else ["location"])
        if missing:
            return f"{kind}: missing required properties {', '.join(missing)}"
        if kind == "actiongroups" and len(str(properties["groupShortName"])) > 12:
            return "actionGroups: groupShortName is longer than 12 characters"
        for action in properties.get("actions") or [] if kind == "metricalerts" else []:
            if str(action.get("actionGroupId", "")).lower() not in self.resources:
                return f"metricAlerts: the action group {action.get('actionGroupId')} does not exist"
        return None

    def get(self, path: str) -> dict[str, Any] | None:
        with self.lock:
            return self.resources.get(path.rstrip("/").lower())

    def calls_to(self, method: str, fragment: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment.lower() in c.path.lower()]


# Required properties of Microsoft.Insights resources (azure-rest-api-specs, monitor:
# ActionGroup 2023-01-01, MetricAlertProperties 2018-03-01), by lower-case resource type
_INSIGHTS_REQUIRED = {
    "actiongroups": ("groupShortName", "enabled"),
    "metricalerts": ("enabled", "description", "severity", "evaluationFrequency", "windowSize", "criteria"),
}

# Enum fields the service answers in PascalCase whatever case they were sent in (the SDK
# sends `dataCollectionMode: enabled` and reads back `Enabled`).
_PASCAL_CASE_ENUMS = frozenset({"dataCollectionMode"})


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (v[:1].upper() + v[1:] if k in _PASCAL_CASE_ENUMS and isinstance(v, str) else _normalise(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _is_collection(key: str) -> bool:
    last = key.rsplit("/", 1)[-1]
    return last in {
        "versions",
        "deployments",
        "onlineendpoints",
        "batchendpoints",
        "schedules",
        "computes",
        "datastores",
        "models",
        "environments",
        "components",
        "data",
        "jobs",
    }


def _not_found(path: str) -> dict[str, Any]:
    return {"error": {"code": "ResourceNotFound", "message": f"The resource '{path}' was not found (stand-in)."}}


def bearer_token(url: str) -> str:
    """A bearer token shaped as Entra ID issues one (a JWT, unsigned): azure-ai-ml reads its
    audience (the Resource Manager URL) and ids before it submits a job."""
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"aud": url.rstrip("/"), "tid": "00000000-0000-0000-0000-0000000000e1", "oid": "00000000-0000-0000-0000-0000000000e2"}
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c3RhbmQtaW4"


def tls_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate (and key) for 127.0.0.1/localhost, valid one day."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlcompile ARM stand-in")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "stand-in.crt", folder / "stand-in.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def speak_tls(server: ThreadingHTTPServer, certificate: tuple[Path, Path]) -> None:
    """Serve HTTPS, each connection's handshake in that connection's thread. By default the
    accepting thread does it, and a client that connects and says nothing (a deploy client
    interrupted mid-connect, its socket not yet closed) stops every other client and the
    server's shutdown."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)


def serve(stand_in: ArmStandIn, port: int = 0, *, certificate: tuple[Path, Path] | None = None) -> tuple[ThreadingHTTPServer, str]:
    """Start the stand-in on 127.0.0.1 in a daemon thread (HTTPS when given a certificate
    and key); returns the server and its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _respond(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            status, payload = stand_in.handle(self.command, parts.path, parse_qs(parts.query), body)
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", "stand-in")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _respond

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    scheme = "http"
    if certificate is not None:
        speak_tls(server, certificate)
        scheme = "https"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}/"


if __name__ == "__main__":
    import sys

    store = ArmStandIn()
    server, url = serve(store, int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"ARM stand-in on {url}; Ctrl-C to stop")

    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        for call in store.calls:
            print(call.method, call.path)
