"""mlcompile's standard steps, run inside the pipelines' containers (and by `mlcompile run`).

`python -m mlcompile.runtime <step> --config JSON --input NAME=URI --output NAME=URI` (see
`contract.py`). This package stays import-light: targets import `contract` at build time,
and each step imports its data stack only when it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# step name or kind → "module:function" (kinds use underscores, step names dashes)
STEPS: dict[str, str] = {
    "extract_features": "mlcompile.runtime.data_steps:extract_features",
    "validate_data": "mlcompile.runtime.data_steps:validate_data",
    "train": "mlcompile.runtime.training:train",
    "tune": "mlcompile.runtime.training:tune",
    "evaluate": "mlcompile.runtime.evaluation:evaluate",
    "gate": "mlcompile.runtime.evaluation:gate",
    "register": "mlcompile.runtime.registry:register",
    "deploy_online": "mlcompile.runtime.registry:deploy_online",
    "score_batch": "mlcompile.runtime.scoring:score_batch",
    "check_drift": "mlcompile.runtime.monitoring:check_drift",
    "check_performance": "mlcompile.runtime.monitoring:check_performance",
    "alert": "mlcompile.runtime.monitoring:alert",
    "trigger_retraining": "mlcompile.runtime.retraining:trigger_retraining",
}
# steps a target adds around the plan's pipelines (no plan step kind): SageMaker's scheduled
# materialisation of online feature views; Feast's (the local run's step, the kubeflow
# materialisation pipelines' task)
TARGET_STEPS: dict[str, str] = {
    "materialize": "mlcompile.runtime.materialize:materialize",
    "materialize_features": "mlcompile.runtime.feast_store:materialize_features",
}

# what the fork server imports once before it forks the steps (see warm.py); Feast's modules
# too where a step opens a Feast repository (warm_feast.py)
PRELOAD = ("mlcompile.runtime.warm",)
PRELOAD_WITH_FEAST = (*PRELOAD, "mlcompile.runtime.warm_feast")


def step_function(name: str) -> Callable[..., Any]:
    """The function of a step name (`extract-features`) or kind (`extract_features`)."""
    import importlib

    key = name.replace("-", "_")
    entry = STEPS.get(key) or TARGET_STEPS.get(key)
    if entry is None:
        raise KeyError(name)
    module, _, function = entry.partition(":")
    return getattr(importlib.import_module(module), function)
