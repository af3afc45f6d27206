"""The CLI runs pydantic without plugins, and without looking for them.

pydantic searches the entry points of every installed distribution for plugins the first time
it builds a validator. `PYDANTIC_DISABLE_PLUGINS=__all__` stops the search, but pydantic's
plugin loader still imports `importlib.metadata` (and with it `email`, `zipfile`, `csv`, …)
before reading that setting: about an eighth of a cold `mlcompile validate`. With plugins
disabled that loader answers "no plugins" and nothing else, so the CLI puts a stand-in giving
the same answer in its place; tests/test_imports.py checks that pydantic still asks the loader
only that, and gets the same answer from the real one."""

from __future__ import annotations

import os
import sys
import types

LOADER = "pydantic.plugin._loader"
DISABLED_ALL = ("__all__", "1", "true")  # the values pydantic reads as "every plugin off"


def _no_plugins() -> tuple[()]:
    return ()


def disable_plugins() -> None:
    """Turn pydantic's plugins off for this process (unless the environment already chose),
    and when that means all of them, skip the loader that would only confirm it."""
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if os.environ["PYDANTIC_DISABLE_PLUGINS"] in DISABLED_ALL and LOADER not in sys.modules:
        stand_in = types.ModuleType(LOADER, "pydantic's plugin loader with every plugin disabled: no plugins")
        stand_in.get_plugins = _no_plugins  # type: ignore[attr-defined]
        sys.modules[LOADER] = stand_in
