"""pydantic without plugins, and without looking for them.

pydantic searches the entry points of every installed distribution for plugins the first time
it builds a validator. The CLI sets `PYDANTIC_DISABLE_PLUGINS=__all__`, which stops the search,
but pydantic's plugin loader still imports `importlib.metadata` (and with it `email`,
`zipfile`, `csv`, …) before it reads that setting: about a twentieth of a cold
`mlcompile validate`. With every plugin disabled that loader answers "no plugins" and nothing
else, so a stand-in giving the same answer takes its place; tests/test_imports.py checks that
pydantic still asks the loader only that, and that the real one answers the same."""

from __future__ import annotations

import os
import sys
import types

LOADER = "pydantic.plugin._loader"
DISABLED_ALL = ("__all__", "1", "true")  # the values pydantic reads as "every plugin off"


def _no_plugins() -> tuple[()]:
    return ()


def skip_lookup_when_disabled() -> None:
    """When the environment turns every pydantic plugin off, skip the loader that would only
    confirm it. Otherwise (a library user's own setting) pydantic looks for plugins as usual."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in DISABLED_ALL and LOADER not in sys.modules:
        stand_in = types.ModuleType(LOADER, "pydantic's plugin loader with every plugin disabled: no plugins")
        stand_in.get_plugins = _no_plugins  # type: ignore[attr-defined]
        sys.modules[LOADER] = stand_in
