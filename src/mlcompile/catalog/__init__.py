"""Accelerator catalog: portable accelerator names and the machines each platform runs them on."""

from mlcompile.catalog.resolve import (
    CLUSTER_FLAVOURS,
    PLATFORMS,
    CatalogError,
    Machine,
    Resolution,
    accelerator_names,
    offered_accelerators,
    resolve_machine,
    suggest_accelerator,
)

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
