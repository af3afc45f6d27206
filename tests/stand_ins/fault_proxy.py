"""An HTTP proxy on 127.0.0.1 that sits in front of any local stand-in (KFP, Vertex AI, Azure
Resource Manager, a moto server) and injects faults into chosen requests, by a script:

* `429` — Too Many Requests with `Retry-After` (the request does not reach the stand-in);
* `500`, `503` — a server error (the request does not reach the stand-in);
* `timeout` — no answer for `delay` seconds, longer than the client's read timeout, then the
  connection closes (the request does not reach the stand-in);
* `drop` — the connection closes without an answer (the request does not reach the stand-in);
* `drop-after` — the request *reaches* the stand-in and is applied, then the connection closes
  without the answer: the client cannot tell whether it was applied (the case that turns a
  blind retry of a POST into a duplicate);
* `retry-after-huge` — 429 with `Retry-After: 100000` (about 28 hours; the request does not
  reach the stand-in): a client that sleeps what it is told hangs;
* `slow-body` — the request reaches the stand-in; its answer's status and headers are sent at
  once, then the body one byte every `drip` seconds (less than a read timeout, so no read ever
  times out): only a limit on the whole answer ends the wait. `abandoned` counts the answers a
  client gave up on before their end.

Everything else is forwarded unchanged (HTTPS on the client side with the stand-in's
certificate when given one; the upstream may be plain HTTP). `inject(kind, method=…,
path=…, times=…, skip=…)` scripts a fault: for requests whose method is `method` and whose path
(without the query) matches the regular expression `path` (search) — and, for AWS's JSON APIs,
whose operation (X-Amz-Target) is `operation` — skip the first `skip`, then inject into the next
`times` (None: every one after that — a persistent fault). `injected` counts what was
injected per kind; `log` lists every request with what happened to it."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import sys
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlcompile.emulate.services.azure_arm import speak_tls

KINDS = ("429", "500", "503", "timeout", "drop", "drop-after", "retry-after-huge", "slow-body")
HUGE_RETRY_AFTER = 100_000
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


@dataclass
class Rule:
    kind: str
    method: str | None
    path: re.Pattern[str] | None
    times: int | None
    skip: int
    operation: str | None = None
    seen: int = 0
    used: int = 0

    def claims(self, method: str, path: str, operation: str) -> bool:
        """Whether this rule injects into the request (`path` is matched without its query)."""
        path = path.split("?", 1)[0]
        if (self.method is not None and method != self.method) or (self.path is not None and not self.path.search(path)):
            return False
        if self.operation is not None and operation != self.operation:
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.used >= self.times):
            return False
        self.used += 1
        return True


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-answer (it gave up on a slow upstream, as deploy's clients do
    under MLCOMPILE_DEPLOY_TIMEOUT) is no error of the platform's; anything else is reported to
    the real standard error, not to the `sys.stderr` of a command the test captures in-process."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)):
            return
        traceback.print_exc(file=sys.__stderr__)


class FaultProxy:
    def __init__(self, upstream: str, *, certificate: tuple[Path, Path] | None = None, delay: float = 3.0, retry_after: int = 1, drip: float = 0.5):
        self.upstream = urlsplit(upstream.rstrip("/"))
        self.delay = delay  # how long a `timeout` fault keeps the client waiting
        self.retry_after = retry_after
        self.rules: list[Rule] = []
        self.injected: Counter[str] = Counter()
        self.timed_out = 0  # `timeout` faults the client gave up on before `delay` (it has a read timeout)
        self.drip = drip  # seconds between two bytes of a `slow-body` answer
        self.abandoned = 0  # `slow-body` answers the client hung up on before their last byte
        self.log: list[tuple[str, str, str]] = []  # (method, path, "forwarded" or the fault)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self._body()
                # AWS JSON APIs all POST to "/": the operation is in X-Amz-Target ("SageMaker.CreatePipeline")
                operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
                fault = proxy._fault_for(self.command, self.path, operation)
                if fault in ("drop", "timeout"):
                    if fault == "timeout" and proxy._client_hangs_up(self.connection):
                        with proxy._lock:
                            proxy.timed_out += 1
                    self.close_connection = True
                    return
                if fault in ("429", "500", "503", "retry-after-huge"):
                    status = 429 if fault == "retry-after-huge" else int(fault)
                    wait = {"429": proxy.retry_after, "retry-after-huge": HUGE_RETRY_AFTER}.get(fault)
                    self._answer(status, {"Content-Type": "application/json", **({"Retry-After": str(wait)} if wait else {})},
                                 json.dumps({"error": {"code": status, "message": f"injected {fault}", "status": "UNAVAILABLE"}}).encode())  # fmt: skip
                    return
                status, headers, payload = proxy._forward(self.command, self.path, dict(self.headers.items()), body)
                if fault == "drop-after":
                    self.close_connection = True
                    return
                if fault == "slow-body":
                    self._trickle(status, headers, payload)
                    return
                self._answer(status, headers, payload)

            def _trickle(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.close_connection = True
                try:
                    self._answer(status, headers, b"", length=len(payload))  # status and headers at once, the body to follow
                except OSError:
                    return
                for index in range(len(payload)):
                    time.sleep(proxy.drip)
                    try:
                        self.wfile.write(payload[index : index + 1])
                        self.wfile.flush()
                    except OSError:  # the client hung up: it has a limit on the whole answer
                        with proxy._lock:
                            proxy.abandoned += 1
                        return

            def _body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _answer(self, status: int, headers: dict[str, str], payload: bytes, length: int | None = None) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if certificate is not None:
            speak_tls(self.server, certificate)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ script
    def inject(
        self, kind: str, *, method: str | None = None, path: str | None = None, operation: str | None = None, times: int | None = 1, skip: int = 0
    ) -> FaultProxy:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(KINDS)}")
        with self._lock:
            self.rules.append(Rule(kind, method, re.compile(path) if path else None, times, skip, operation))
        return self

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def _fault_for(self, method: str, path: str, operation: str = "") -> str | None:
        with self._lock:
            fault = next((rule.kind for rule in self.rules if rule.claims(method, path, operation)), None)
            if fault is not None:
                self.injected[fault] += 1
            self.log.append((method, path, fault or "forwarded"))
            return fault

    def _client_hangs_up(self, connection: socket.socket) -> bool:
        """Wait up to `delay` seconds for the client to close the connection (its read timeout)."""
        import select

        deadline = time.monotonic() + self.delay
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([connection], [], [], left)
            if readable:
                try:
                    if connection.recv(1) == b"":  # the connection is closed after this anyway
                        return True
                except ssl.SSLWantReadError:
                    pass  # TLS bytes that were not yet a record
                except OSError:
                    return True
                time.sleep(0.05)
        return False

    # ------------------------------------------------------------------ forwarding
    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        host, port = self.upstream.hostname or "127.0.0.1", self.upstream.port
        if self.upstream.scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=60, context=ssl._create_unverified_context())
        else:
            connection = http.client.HTTPConnection(host, port, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(method, self.upstream.path + path, body=body if body or method in ("POST", "PUT", "PATCH") else None, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            return response.status, {k: v for k, v in response.getheaders()}, payload
        finally:
            connection.close()

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for_port(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")
