"""Generate `estimators.json`: the estimator classes and scorer names that `validate` checks a
scikit-learn trainer against, read from the installed scikit-learn (and XGBoost / LightGBM
when they are installed), so that validating a spec never imports them.

    python -m mlcompile.catalog.estimators_gen           # rewrite the shipped catalog
    python -m mlcompile.catalog.estimators_gen --check   # exit 1 when it is stale

tests/test_estimators.py regenerates it (from the packages it records) and compares bytes: a
new scikit-learn release that adds, renames or removes a class or a parameter shows up there."""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from mlcompile.generated_files import write_or_check

CATALOG_FILE = Path(__file__).with_name("estimators.json")
# Distributions whose scikit-learn API classes are catalogued when installed: import name → distribution
THIRD_PARTY = {"xgboost": "xgboost", "lightgbm": "lightgbm"}
# What a scorer's metric function's module says about the task it scores. The likelihood-ratio
# scorers are defined in the scorer module itself; they score binary classifiers.
_SCORER_TASKS = {
    "sklearn.metrics._classification": "classification",
    "sklearn.metrics._ranking": "classification",
    "sklearn.metrics._scorer": "classification",
    "sklearn.metrics._regression": "regression",
    "sklearn.metrics.cluster._supervised": "clustering",
}


def default_kind(parameter: inspect.Parameter) -> str:
    """What a constructor parameter's default is: `required` when it has none."""
    default = parameter.default
    if default is inspect.Parameter.empty:
        return "required"
    for kind, types in (("none", type(None)), ("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(default, types):
            return kind
    return "object"


def _constructor(cls: type[Any]) -> tuple[dict[str, str], bool]:
    if cls.__init__ is object.__init__:  # no constructor of its own: no parameters (as get_params says)
        return {}, False
    parameters = inspect.signature(cls.__init__).parameters.values()
    params = {p.name: default_kind(p) for p in parameters if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return params, any(p.kind is p.VAR_KEYWORD for p in parameters)


def public_path(cls: type) -> str:
    """The dotted path users import a class by: its module without the private parts
    (`sklearn.ensemble._forest` → `sklearn.ensemble`), when that module exports it."""
    parts = cls.__module__.split(".")
    public = parts[: next((i for i, part in enumerate(parts) if part.startswith("_")), len(parts))]
    while public:
        module = importlib.import_module(".".join(public))
        if getattr(module, cls.__name__, None) is cls:
            return f"{'.'.join(public)}.{cls.__name__}"
        public.pop()
    raise RuntimeError(f"{cls.__module__}.{cls.__name__} is exported by no public module")


def _kind(cls: type, kinds: dict[type, str]) -> str:
    if cls in kinds:
        return kinds[cls]
    if hasattr(cls, "predict"):
        return "predictor"  # outlier detectors and other estimators that predict but are none of the three
    return "transformer" if hasattr(cls, "transform") else "other"


def sklearn_estimators() -> dict[str, dict[str, Any]]:
    from sklearn.utils.discovery import all_estimators

    kinds = {cls: kind for type_filter, kind in (("classifier", "classifier"), ("regressor", "regressor"), ("cluster", "clusterer"))
             for _, cls in all_estimators(type_filter=type_filter)}  # fmt: skip
    catalog = {}
    for _, cls in all_estimators():
        params, var_kwargs = _constructor(cls)
        catalog[public_path(cls)] = {"kind": _kind(cls, kinds), "params": params, **({"open_params": True} if var_kwargs else {})}
    return catalog


def third_party_estimators(module_name: str) -> dict[str, dict[str, Any]]:
    """The scikit-learn API classes of XGBoost or LightGBM. Their constructors take **kwargs
    (booster parameters pass through), so the parameter names come from `get_params()`."""
    from sklearn.base import BaseEstimator, is_classifier, is_regressor

    module = importlib.import_module(module_name)
    catalog = {}
    for name in sorted(getattr(module, "__all__", dir(module))):
        cls = getattr(module, name, None)
        if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator) and hasattr(cls, "fit")):
            continue
        instance: Any = cls()  # an estimator (sklearn has no type information)
        kind = "classifier" if is_classifier(instance) else "regressor" if is_regressor(instance) else _kind(cls, {})
        params = {
            key: default_kind(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=value)) for key, value in instance.get_params(deep=False).items()
        }
        catalog[f"{module_name}.{name}"] = {"kind": kind, "params": params, "open_params": True}
    return catalog


def scorers() -> dict[str, dict[str, Any]]:
    """Every name of `sklearn.metrics.get_scorer_names()`: the task it scores, and whether its
    value is a negated loss (`neg_*`, and `neg_max_error`): always ≤ 0, higher still better."""
    from sklearn.metrics import get_scorer, get_scorer_names

    table = {}
    for name in get_scorer_names():
        scorer = get_scorer(name)
        # the scorer keeps its metric and sign in attributes only; read here, never at run time
        module = scorer._score_func.__module__
        if module not in _SCORER_TASKS:
            raise RuntimeError(f"scorer {name}: metric module {module} is not mapped to a task; add it to _SCORER_TASKS")
        table[name] = {"task": _SCORER_TASKS[module], "negated": scorer._sign < 0}
    return table


def generate(third_party: Iterable[str] | None = None) -> str:
    """The catalog's text: scikit-learn's classes, and those of the `third_party` modules
    (default: each of THIRD_PARTY that is installed; given, each must be)."""
    import sklearn

    estimators = sklearn_estimators()
    packages = {"scikit-learn": sklearn.__version__}
    modules = {"sklearn": "scikit-learn"}
    for module_name, distribution in THIRD_PARTY.items():
        if third_party is not None and module_name not in third_party:
            continue
        try:
            estimators.update(third_party_estimators(module_name))
        except ImportError:
            if third_party is not None:
                raise
            continue
        packages[distribution] = metadata.version(distribution)
        modules[module_name] = distribution
    catalog = {
        "about": "generated by `python -m mlcompile.catalog.estimators_gen` from the packages below; do not edit",
        "packages": packages,
        "modules": modules,
        "estimators": estimators,
        "scorers": scorers(),
    }
    # one entry per line: a new release shows as a readable diff, and the file stays small
    sections = []
    for key, value in sorted(catalog.items()):
        if isinstance(value, dict) and all(isinstance(item, dict) for item in value.values()):
            entries = ",\n".join(f"  {json.dumps(name)}: {json.dumps(item, sort_keys=True)}" for name, item in sorted(value.items()))
            sections.append(f" {json.dumps(key)}: {{\n{entries}\n }}")
        else:
            sections.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}")
    return "{\n" + ",\n".join(sections) + "\n}\n"


def main(argv: list[str]) -> int:
    return write_or_check(CATALOG_FILE, generate(), "python -m mlcompile.catalog.estimators_gen", argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
