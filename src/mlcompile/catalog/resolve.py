"""Accelerator catalog lookups and the machine resolver.

The facts live in ``accelerators.yaml`` and ``machines.yaml`` next to this module, each
with its source.  They are read once, lazily, from their parsed copy (``data.json``, see
:mod:`mlcompile.catalog.data`).  Nothing here talks to a cloud.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcompile.catalog import data
from mlcompile.catalog.data import accelerator_names

# The catalog's sections: the platforms whose machines it knows. A platform resolves its
# resources in one of them (`Platform.machine_catalog`); KUBERNETES is the section of
# Kubernetes clusters (node selectors and tolerations per cluster flavour, no machine types),
# usable by any platform that runs pods.
PLATFORMS: tuple[str, ...] = ("kubeflow", "vertex", "sagemaker", "azureml")
KUBERNETES = "kubeflow"
CLUSTER_FLAVOURS: tuple[str, ...] = ("gke", "eks", "aks", "generic")

_CLOUDS = ("vertex", "sagemaker", "azureml")
_LABELS = {"vertex": "Vertex AI", "sagemaker": "SageMaker", "azureml": "Azure ML"}
_SUGGEST_CUTOFF = 0.6


class CatalogError(Exception):
    """A request the catalog cannot meet.  ``message`` is one lowercase line; ``hint`` a fix."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} (hint: {self.hint})"


@dataclass(frozen=True)
class Machine:
    platform: str
    name: str | None  # machine type / instance type / VM size; None on kubeflow
    accelerator: str | None  # portable name, None for CPU-only
    accelerator_platform_name: str | None  # Vertex enum or k8s resource name; SageMaker/Azure: None
    accelerator_count: int  # GPUs (or TPU chips) on the machine; kubeflow: the count asked
    vcpus: float | None  # None on kubeflow
    memory_gib: float | None  # None on kubeflow
    node_selector: tuple[tuple[str, str], ...] = ()  # kubeflow only, sorted
    tolerations: tuple[tuple[tuple[str, str], ...], ...] = ()  # kubeflow only, each sorted pairs


@dataclass(frozen=True)
class Resolution:
    machine: Machine
    warnings: tuple[str, ...]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _Option:
    """One machine with ``count`` accelerators attached (CPU tables: count 0)."""

    name: str
    count: int
    vcpus: float
    memory_gib: float
    allowed: tuple[int, ...]  # every count this machine takes; fixed machines: just ``count``
    retired: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class _Kube:
    resource: str
    selectors: Mapping[str, tuple[tuple[str, str], ...]]  # flavour -> sorted label pairs
    topologies: Mapping[str, tuple[str, tuple[tuple[int, str], ...]]]  # flavour -> (label, slices)


@dataclass(frozen=True)
class _Accelerator:
    name: str
    kube: _Kube | None
    enum: str | None  # Vertex AI AcceleratorType
    options: Mapping[str, tuple[_Option, ...]]  # cloud platform -> options, smallest first
    # section -> the name the platform's API gives the accelerator apart from the machine
    # (its `accelerator_type`: the Vertex AI AcceleratorType enum)
    platform_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Flavour:
    tolerations: Mapping[str, tuple[tuple[tuple[str, str], ...], ...]]  # resource -> tolerations
    note: str | None


@dataclass(frozen=True)
class _Catalog:
    accelerators: Mapping[str, _Accelerator]
    flavours: Mapping[str, _Flavour]
    cpu: Mapping[str, tuple[_Option, ...]]


def _sort_key(option: _Option) -> tuple[int, float, float, str]:
    return (option.count, option.vcpus, option.memory_gib, option.name)


def _read(filename: str) -> Any:
    # the resolver's own files are parsed ahead (data.json): it reads them on every validate
    # that names an accelerator; others (prices.yaml) are parsed here
    return data.read(filename) if filename in data.SOURCES else data.load_yaml(filename)


def _keys(raw: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValueError(f"catalog data {where}: expected a mapping")
    required = set(required)
    unknown = set(raw) - required - set(optional)
    missing = required - set(raw)
    if unknown or missing:
        raise ValueError(f"catalog data {where}: unknown keys {sorted(unknown)}, missing {sorted(missing)}")
    return raw


def _options(raw: Any, where: str, *, accelerated: bool) -> tuple[_Option, ...]:
    out: list[_Option] = []
    for i, item in enumerate(raw or ()):
        at = f"{where}[{i}]"
        if accelerated:
            item = _keys(item, at, ("name", "vcpus", "memory_gib"), ("count", "counts", "retired", "note"))
            if ("count" in item) == ("counts" in item):
                raise ValueError(f"catalog data {at}: give exactly one of count / counts")
            counts = tuple(item["counts"]) if "counts" in item else (item["count"],)
        else:
            item = _keys(item, at, ("name", "vcpus", "memory_gib"))
            counts = (0,)
        retired = None if item.get("retired") is None else str(item["retired"])
        for count in counts:
            out.append(_Option(str(item["name"]), int(count), float(item["vcpus"]), float(item["memory_gib"]), counts, retired, item.get("note")))
    return tuple(sorted(out, key=_sort_key))


def _pairs(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def _kube(raw: Any, where: str) -> _Kube | None:
    if raw is None:
        return None
    raw = _keys(raw, where, ("resource", "node_selectors"), ("topologies",))
    topologies = {}
    for flavour, topo in (raw.get("topologies") or {}).items():
        topo = _keys(topo, f"{where}.topologies.{flavour}", ("label", "slices"))
        topologies[flavour] = (topo["label"], tuple(sorted((int(c), str(t)) for c, t in topo["slices"].items())))
    selectors = {f: _pairs(s or {}) for f, s in raw["node_selectors"].items()}
    for flavour in (*selectors, *topologies):
        if flavour not in CLUSTER_FLAVOURS:
            raise ValueError(f"catalog data {where}: unknown cluster flavour '{flavour}'")
    return _Kube(raw["resource"], selectors, topologies)


@functools.cache
def _catalog() -> _Catalog:
    data = _keys(_read("accelerators.yaml"), "accelerators.yaml", ("kubernetes", "accelerators"))
    flavours = {}
    for name, raw in data["kubernetes"]["flavours"].items():
        raw = _keys(raw, f"kubernetes.flavours.{name}", ("tolerations",), ("note",))
        tolerations = {res: tuple(_pairs(t) for t in items) for res, items in (raw["tolerations"] or {}).items()}
        flavours[name] = _Flavour(tolerations, raw.get("note"))
    if tuple(flavours) != CLUSTER_FLAVOURS:
        raise ValueError(f"catalog data kubernetes.flavours: expected {CLUSTER_FLAVOURS}")
    accelerators = {}
    for name, raw in data["accelerators"].items():
        raw = _keys(raw, name, ("description",), ("kubernetes", *_CLOUDS))
        options, enum, names = {}, (raw.get("vertex") or {}).get("accelerator_type"), {}
        for cloud in _CLOUDS:
            extra = ("accelerator_type",) if cloud == "vertex" else ()
            block = _keys(raw.get(cloud) or {}, f"{name}.{cloud}", (), ("machines", *extra))
            if block.get("machines"):
                options[cloud] = _options(block["machines"], f"{name}.{cloud}.machines", accelerated=True)
            if block.get("accelerator_type"):
                names[cloud] = str(block["accelerator_type"])
        if "vertex" in options and not enum:
            raise ValueError(f"catalog data {name}.vertex: machines need an accelerator_type")
        accelerators[name] = _Accelerator(name, _kube(raw.get("kubernetes"), f"{name}.kubernetes"), enum, options, names)
    cpu_data = _keys(_read("machines.yaml"), "machines.yaml", _CLOUDS)
    cpu = {}
    for cloud in _CLOUDS:
        block = _keys(cpu_data[cloud], f"machines.yaml:{cloud}", ("family", "machines"))
        cpu[cloud] = _options(block["machines"], f"machines.yaml:{cloud}.machines", accelerated=False)
    return _Catalog(dict(sorted(accelerators.items())), flavours, cpu)


# --------------------------------------------------------------------------- lookups


def _normal(text: str) -> str:
    return str(text).strip().lower().replace("_", "-").replace(" ", "-")


def _closest(word: str, choices: Mapping[str, Iterable[str]]) -> str | None:
    """The choice whose spellings best match ``word`` (ties: first in sorted order), or None.

    An exact spelling scores 1, a spelling that starts with the word just under 0.95 (less
    the longer the completion), anything else its difflib ratio; below the cutoff nothing
    is suggested.
    """
    key, best, best_score = _normal(word), None, 0.0
    for choice in sorted(choices):
        score = 0.0
        for spelling in {_normal(s) for s in (choice, *choices[choice])}:
            if spelling == key:
                score = max(score, 1.0)
            elif len(key) >= 2 and spelling.startswith(key):
                # the shortest completion wins: nvidia-a10 is nvidia-a10g, not nvidia-a100-40gb
                score = max(score, 0.95 - 0.001 * (len(spelling) - len(key)))
            else:
                score = max(score, difflib.SequenceMatcher(None, key, spelling).ratio())
        if score > best_score:
            best, best_score = choice, score
    return best if best_score >= _SUGGEST_CUTOFF else None


def suggest_accelerator(name: str) -> str | None:
    """The portable name closest to a misspelt one (``nvidia-a100`` → ``nvidia-a100-40gb``).

    Besides the portable names it knows each accelerator's platform spellings: the Vertex AI
    enum (``NVIDIA_TESLA_T4``) and the Kubernetes node-label values (``nvidia-tesla-t4``, ``t4``).
    """
    spellings = {}
    for acc in _catalog().accelerators.values():
        found = [acc.name.removeprefix("nvidia-")]
        if acc.enum:
            found.append(acc.enum)
        if acc.kube is not None:
            found += [value for pairs in acc.kube.selectors.values() for _, value in pairs]
        spellings[acc.name] = found
    return _closest(name, spellings)


def _did_you_mean(word: str, choices: Iterable[str], what: str) -> str:
    choices = sorted(choices)
    match = _closest(word, {c: () for c in choices})
    return f"did you mean '{match}'?" if match else f"{what}: {', '.join(choices)}"


def _check_catalog(catalog: str) -> None:
    if catalog not in PLATFORMS:
        raise CatalogError(f"unknown platform '{catalog}'", _did_you_mean(catalog, PLATFORMS, "platforms"))


def offered_accelerators(catalog: str) -> list[str]:
    """Portable names the catalog offers (kubeflow: on at least one cluster flavour), sorted."""
    _check_catalog(catalog)
    accelerators = _catalog().accelerators.values()
    if catalog == KUBERNETES:
        return [a.name for a in accelerators if a.kube is not None and a.kube.selectors]
    return [a.name for a in accelerators if any(o.retired is None for o in a.options.get(catalog, ()))]


def _accelerator(name: str) -> _Accelerator:
    found = _catalog().accelerators.get(name)
    if found is None:
        suggestion = suggest_accelerator(name)
        hint = f"did you mean '{suggestion}'?" if suggestion else "known accelerators: " + ", ".join(accelerator_names())
        raise CatalogError(f"unknown accelerator '{name}'", hint)
    return found


# --------------------------------------------------------------------------- resolver


def resolve_machine(
    catalog: str, *, accelerator: str | None, count: int = 1, cpu: float | None = None, memory_gib: float | None = None, cluster: str = "generic"
) -> Resolution:
    """The smallest machine that carries ``count`` × ``accelerator`` and the cpu/memory asked.

    Smallest = fewest accelerators, then fewest vCPUs, then least memory, then name.  On
    kubeflow there is no machine: the result carries the resource name, the count as the
    limit, and the node selector and tolerations of the cluster flavour.
    """
    _check_catalog(catalog)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise CatalogError(f"accelerator count must be a whole number of at least 1, not {count!r}")
    for what, value in (("cpu", cpu), ("memory", memory_gib)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise CatalogError(f"{what} must be a number above 0, not {value!r}")
    if catalog == KUBERNETES:
        if cluster not in CLUSTER_FLAVOURS:
            raise CatalogError(f"unknown cluster flavour '{cluster}'", _did_you_mean(cluster, CLUSTER_FLAVOURS, "cluster flavours"))
        if accelerator is None:
            return Resolution(Machine(KUBERNETES, None, None, None, 0, None, None), ())
        return _resolve_kube(_accelerator(accelerator), count, cluster)
    if accelerator is None:
        choice = _pick(catalog, _catalog().cpu[catalog], None, 0, cpu, memory_gib)
        return Resolution(Machine(catalog, choice.name, None, None, 0, choice.vcpus, choice.memory_gib), ())
    return _resolve_cloud(catalog, _accelerator(accelerator), count, cpu, memory_gib)


def _resolve_cloud(catalog: str, acc: _Accelerator, count: int, cpu: float | None, memory_gib: float | None) -> Resolution:
    options = acc.options.get(catalog, ())
    hint = f"{catalog} offers: {', '.join(offered_accelerators(catalog)) or 'no accelerators'}"
    if not options:
        raise CatalogError(f"{catalog} does not offer {acc.name}", hint)
    live = tuple(o for o in options if o.retired is None)
    if not live:
        names = ", ".join(sorted({o.name for o in options}))
        when = max(o.retired or "" for o in options)
        raise CatalogError(f"{catalog} no longer offers {acc.name}: {names} retired on {when}", hint)
    choice = _pick(catalog, live, acc.name, count, cpu, memory_gib)
    warnings = []
    if choice.count > count:
        warnings.append(_why_more(catalog, acc.name, choice, live, count))
    if choice.note:
        warnings.append(choice.note)
    enum = acc.platform_names.get(catalog)
    machine = Machine(catalog, choice.name, acc.name, enum, choice.count, choice.vcpus, choice.memory_gib)
    return Resolution(machine, tuple(warnings))


def _most(pool: tuple[_Option, ...], attr: str) -> _Option:
    top = max(getattr(o, attr) for o in pool)
    return min((o for o in pool if getattr(o, attr) == top), key=_sort_key)


def _pick(catalog: str, options: tuple[_Option, ...], acc: str | None, count: int, cpu: float | None, memory_gib: float | None) -> _Option:
    wide = options if acc is None else tuple(o for o in options if o.count >= count)
    if not wide:
        top = _most(options, "count")
        raise CatalogError(f"no {catalog} machine carries {count} × {acc}; the most is {top.count} ({top.name})")
    subject = (
        f"no {catalog} cpu machine" if acc is None else f"no {catalog} machine with {acc}" if count == 1 else f"no {catalog} machine with {count} or more {acc}"
    )
    pool = wide
    if cpu is not None:
        pool = tuple(o for o in wide if o.vcpus >= cpu)
        if not pool:
            top = _most(wide, "vcpus")
            raise CatalogError(f"{subject} has {cpu:g} vcpus; the most is {top.vcpus:g} ({top.name})")
    if memory_gib is not None:
        fits = tuple(o for o in pool if o.memory_gib >= memory_gib)
        if not fits:
            top = _most(pool, "memory_gib")
            if cpu is not None and any(o.memory_gib >= memory_gib for o in wide):
                raise CatalogError(
                    f"{subject} has both {cpu:g} vcpus and {memory_gib:g} GiB of memory; with {cpu:g} vcpus the most is {top.memory_gib:g} GiB ({top.name})"
                )
            raise CatalogError(f"{subject} has {memory_gib:g} GiB of memory; the most is {top.memory_gib:g} GiB ({top.name})")
        pool = fits
    return min(pool, key=_sort_key)


def _or_list(items: Iterable[object], conjunction: str = "or") -> str:
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _why_more(catalog: str, acc: str, choice: _Option, live: tuple[_Option, ...], count: int) -> str:
    head = f"{choice.name} carries {choice.count} {acc}; {count} asked"
    label = _LABELS[catalog]
    if len(choice.allowed) > 1:
        return f"{head}: {label} attaches {acc} to {choice.name} only in counts of {_or_list(choice.allowed)}"
    if any(count <= o.count < choice.count for o in live):
        return f"{head}: no {label} machine with fewer {acc} has the cpu and memory asked"
    return f"{head}: {label} has no smaller machine with {acc}"


def _resolve_kube(acc: _Accelerator, count: int, cluster: str) -> Resolution:
    catalog = _catalog()
    kube = acc.kube
    if kube is None or cluster not in kube.selectors:
        offers = [a.name for a in catalog.accelerators.values() if a.kube and cluster in a.kube.selectors]
        hint = f"{cluster} clusters offer: {', '.join(offers)}"
        if kube is not None and kube.selectors:
            hint += f"; {acc.name} is available on {_or_list(sorted(kube.selectors), 'and')} clusters"
        raise CatalogError(f"{cluster} clusters have no {acc.name} nodes", hint)
    selector = dict(kube.selectors[cluster])
    warnings = []
    if cluster in kube.topologies:
        label, slices = kube.topologies[cluster]
        fits = [(chips, topology) for chips, topology in slices if chips >= count]
        if not fits:
            chips, topology = max(slices)
            raise CatalogError(f"no single-host {acc.name} slice on {cluster} has {count} chips; the most is {chips} ({topology})")
        chips, topology = min(fits)
        selector[label] = topology
        if chips > count:
            warnings.append(
                f"the {topology} {acc.name} slice has {chips} chips; {count} asked: {cluster} has no "
                f"single-host slice with {count} (slices have {_or_list(c for c, _ in slices)} chips)"
            )
        count = chips
    flavour = catalog.flavours[cluster]
    if flavour.note and not selector:
        warnings.append(flavour.note)
    machine = Machine(
        KUBERNETES,
        None,
        acc.name,
        kube.resource,
        count,
        None,
        None,
        node_selector=tuple(sorted(selector.items())),
        tolerations=flavour.tolerations.get(kube.resource, ()),
    )
    return Resolution(machine, tuple(warnings))
