"""`require(...)`: skip the calling test module when a package is not installed, without
importing it. pytest.importorskip imports the package, and every test worker collects every
module: Feast, the platform SDKs and the data stack cost each worker seconds before its first
test. The module imports what it uses where it uses it."""

from __future__ import annotations

import importlib.util

import pytest


def require(*modules: str) -> None:
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            pytest.skip(f"could not import {module!r}: not installed", allow_module_level=True)
