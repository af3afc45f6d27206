"""Where each platform's runtime reads a secret a step uses: the platform's own mapping
(`Platform.secret_locator`), handed to the step as MLCOMPILE_SECRET_<NAME>. Apart from
mlcompile.secrets, which the diagnostics use to redact, so that asking the platforms
(mlcompile.targets.registry) makes no import cycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlcompile.runtime.contract import env_name
from mlcompile.secrets import refs_in


def locator(platform: str, settings: Mapping[str, Any], name: str) -> str | None:
    """Where a platform's runtime reads secret NAME (None: the platform injects the value),
    as the platform maps it (`Platform.secret_locator`)."""
    from mlcompile.targets.registry import platform_or_defaults

    return platform_or_defaults(platform).secret_locator(settings, name)


def locator_env(platform: str, settings: Mapping[str, Any], data: Any) -> dict[str, str]:
    """MLCOMPILE_SECRET_<NAME> → locator for every secret:// in `data` (a step's params)."""
    found = {}
    for name in refs_in(data):
        where = locator(platform, settings, name)
        if where is not None:
            found[env_name(name)] = where
    return found
