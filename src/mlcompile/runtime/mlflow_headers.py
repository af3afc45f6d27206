"""MLflow's request-header plugins, loaded without importing all of Feast for nothing.

On its first REST call MLflow loads every `mlflow.request_header_provider` entry point. Feast
registers one, and loading it imports the whole `feast` package: about 4 s of CPU in each
process that talks to an MLflow server (an emulated run's own process, each step started cold,
each `mlcompile` command that reads a registry). Feast's provider only adds a header inside
Feast's own token scope, a ContextVar in the provider's module that nothing but Feast's code
sets, so it cannot be in context before that module is imported. It is therefore registered
as a stand-in that loads the real provider the first time it finds the module imported, and
answers "not in context" until then: the headers MLflow sends are the same. Every other
provider (a company's auth plugin, say) loads as MLflow loads it."""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import sys
import threading
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

GROUP = "mlflow.request_header_provider"
# whose in_context() can only be true once this module has been imported by someone else
DEFERRED_MODULES = frozenset({"feast.infra.data_sources.mlflow.auth"})


class ProviderOnceImported:
    """A request-header provider loaded only once its module is in `sys.modules`."""

    def __init__(self, entry_point: Any) -> None:
        self.entry_point = entry_point
        self.provider: Any = None

    def _loaded(self) -> Any:
        if self.provider is None and self.entry_point.module in sys.modules:
            self.provider = self.entry_point.load()()
        return self.provider

    def in_context(self) -> bool:
        provider = self._loaded()
        return provider is not None and bool(provider.in_context())

    def request_headers(self) -> dict[str, str]:
        provider = self._loaded()
        return dict(provider.request_headers()) if provider is not None else {}


class _EntryPointOnceImported:
    """Stands in Feast's place in the entry-point list, so MLflow registers it in the same
    position (headers of the same name are joined in provider order)."""

    def __init__(self, entry_point: Any) -> None:
        self.entry_point = entry_point
        self.name = entry_point.name

    def load(self) -> Any:
        return lambda: ProviderOnceImported(self.entry_point)


_lock = threading.Lock()
REGISTRY_MODULE = "mlflow.tracking.request_header.registry"  # registers the providers when imported


@contextlib.contextmanager
def _deferring_entry_points() -> Iterator[None]:
    """While MLflow lists its header-provider entry points, the deferred ones are stand-ins."""
    from mlflow.utils import plugins

    listed = getattr(plugins, "_get_entry_points", None)
    if listed is None:  # an MLflow without the hook used here: it loads them its own way
        yield
        return

    def deferring(group: str) -> list[Any]:
        found = list(listed(group))
        if group != GROUP:
            return found
        return [_EntryPointOnceImported(entry) if entry.module in DEFERRED_MODULES else entry for entry in found]

    plugins._get_entry_points = deferring
    try:
        yield
    finally:
        plugins._get_entry_points = listed


def load_request_header_providers() -> None:
    """Build MLflow's header-provider registry now, with the deferred providers as stand-ins.
    Call it before the first MLflow REST call; later calls, a process that has imported Feast
    already (where loading its provider costs nothing), or an MLflow without the hook used here
    leave MLflow as it is."""
    with _lock:
        if REGISTRY_MODULE in sys.modules or "feast" in sys.modules:
            return
        with _deferring_entry_points():
            importlib.import_module(REGISTRY_MODULE)


class _RegistryLoader(importlib.abc.Loader):
    """MLflow's own loader for the registry module, run with the deferred providers."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        created: ModuleType | None = self.loader.create_module(spec)
        return created

    def exec_module(self, module: ModuleType) -> None:
        if "feast" in sys.modules:
            self.loader.exec_module(module)
            return
        with _deferring_entry_points():
            self.loader.exec_module(module)


class _RegistryFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != REGISTRY_MODULE:
            return None
        sys.meta_path.remove(self)  # once: the other finders say where MLflow's module is
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegistryLoader(spec.loader)
        return spec


def defer_on_import() -> None:
    """Whenever this process first imports MLflow's header-provider registry, build it with the
    deferred providers: for a Python that runs someone else's code (an emulated container of a
    user's image), where nothing of mlcompile runs before MLflow's first request. Imports nothing
    of MLflow until then."""
    if not any(isinstance(finder, _RegistryFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegistryFinder())
