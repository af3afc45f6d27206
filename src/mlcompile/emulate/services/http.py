"""The HTTP plumbing every emulated platform API (and every test stand-in) shares: a threaded
JSON server on 127.0.0.1 (an ephemeral port), started and stopped as a context manager. A
service implements `respond`: what it answers to a request."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import ParseResult, urlparse


class ApiError(Exception):
    """A request the platform refuses: its HTTP status, canonical status name and message."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message

    def google(self) -> tuple[int, Any]:
        """As Google's REST APIs answer an error."""
        return self.code, {"error": {"code": self.code, "status": self.status, "message": self.message}}


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} not found")


class JsonService:
    def __init__(self) -> None:
        service = self
        # told the kind of state that changed ("registered", "deployed", "retraining")
        self.on_change: Callable[[str], None] = lambda kind: None
        self.last_headers: Any = {}

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                service.last_headers = self.headers  # (case-insensitive) for a stand-in that checks credentials
                status, data = service.respond(self.command, urlparse(self.path), raw, self.headers.get("Content-Type", ""))
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
