"""Accelerator catalog: portable accelerator names and the machines each platform runs them on.

Its names load on first use (PEP 562): `validate` imports the estimator catalog beside it
(`mlcompile.catalog.estimators`) for every spec, and most specs never name an accelerator."""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLUSTER_FLAVOURS",
    "PLATFORMS",
    "CatalogError",
    "Machine",
    "Resolution",
    "accelerator_names",
    "offered_accelerators",
    "resolve_machine",
    "suggest_accelerator",
]


def __getattr__(name: str) -> Any:
    if name == "accelerator_names":  # without the resolver's import
        from mlcompile.catalog.data import accelerator_names

        return accelerator_names
    if name in __all__:
        from mlcompile.catalog import resolve

        return getattr(resolve, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
