"""Google Secret Manager (v1) `versions.access`, served beside the Vertex AI API: a step's
`secretmanager:` secret (a webhook URL) reads the emulation config's secret of that name."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from mlcompile.emulate.services.http import not_found

_ACCESS = re.compile(r"/v1/(projects/[^/]+/secrets/([^/]+)/versions/[^/:]+):access")


def route(secrets: Mapping[str, str], method: str, path: str) -> Any | None:
    """The answer to an access request (raises ApiError), or None for other paths."""
    match = _ACCESS.fullmatch(path)
    if method != "GET" or not match:
        return None
    name, secret = match.groups()
    if secret not in secrets:
        raise not_found(f"{name} (not in the emulation config's `secrets:`)")
    return {"name": name, "payload": {"data": base64.b64encode(secrets[secret].encode()).decode()}}
