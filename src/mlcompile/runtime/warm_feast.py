"""Imported by the fork server, after warm.py, for a run whose steps open a Feast repository
(the local run's feature extraction, a materialisation): Feast takes ~4 s of CPU to import,
paid once here instead of per step, and not at all by a run that never opens one."""

from __future__ import annotations

import gc

from mlcompile.runtime.warm import import_all

MODULES = (
    "feast", "feast.repo_operations", "feast.infra.offline_stores.dask", "feast.infra.online_stores.sqlite", "mlcompile.runtime.feast_store",
)  # fmt: skip

import_all(MODULES)
gc.freeze()  # as warm.py does, for Feast's modules
