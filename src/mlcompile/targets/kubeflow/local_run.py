"""The local-run variant of a kubeflow build: the same DAG (same steps, artifacts, dependencies
and dsl.If gates as the compiled IR) made of lightweight Python components that call the
same runtime entry point the runtime image runs (`mlcompile.runtime.run_step` →
`mlcompile.runtime`), so `kfp.local.SubprocessRunner(use_venv=False)` can execute it on this
machine, offline. Container components cannot run there; that is the only difference."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlcompile.plan.nodes import Pipeline, Plan, Step
from mlcompile.targets.kfp_ir import _OUTPUT_TYPES, ARTIFACT_CLASSES, pipeline_function, runtime_config

_TEMPLATE = """
def {function}({parameters}){returns}:
    import json
    import os
    import tempfile
    os.environ["MLCOMPILE_SPEC_DIR"] = {spec_dir!r}
    from mlcompile.runtime.run_step import main
    args = [{step!r}]
    for name in {decisions!r}:
        args += ["--decision", name]
    args += ["--config", {config!r}]
    for name, artifact in {inputs}:
        args += ["--input", name + "=" + artifact.path]
    for name, artifact in {outputs}:
        args += ["--output", name + "=" + artifact.path]
    decisions = {{name: os.path.join(tempfile.mkdtemp(), name) for name in {decisions!r}}}
    for name, path in decisions.items():
        args += ["--output", name + "=" + path]
    status = main(args)
    if status:
        raise RuntimeError("mlcompile step {step} failed with exit status " + str(status))
    for path in decisions.values():
        with open(path) as handle:
            return json.load(handle)
"""


def _source(step: Step, config: dict[str, Any], spec_dir: str) -> str:
    inputs = [r.name for r in step.inputs]
    outputs = [a.name for a in step.outputs if a.type != "decision"]
    decisions = [a.name for a in step.outputs if a.type == "decision"]
    parameters = [f"{n}: Input[{ARTIFACT_CLASSES[_OUTPUT_TYPES[(r.step, r.artifact)]]}]" for n, r in zip(inputs, step.inputs)]
    parameters += [f"{a.name}: Output[{ARTIFACT_CLASSES[a.type]}]" for a in step.outputs if a.type != "decision"]
    assert len(decisions) <= 1, "a step returns at most one decision"
    return _TEMPLATE.format(
        returns=" -> bool" if decisions else "",
        function=step.name.replace("-", "_"),
        parameters=", ".join(parameters),
        spec_dir=spec_dir,
        step=step.name,
        decisions=decisions,
        config=json.dumps(config, sort_keys=True, separators=(",", ":")),
        inputs="[" + ", ".join(f"({n!r}, {n})" for n in inputs) + "]",
        outputs="[" + ", ".join(f"({n!r}, {n})" for n in outputs) + "]",
    )


def local_pipeline(plan: Plan, pipeline: Pipeline, *, tracking_uri: str | None, spec_dir: str | Path, scratch: str | Path | None = None) -> Any:
    """A kfp pipeline function for `pipeline`, runnable by kfp.local (SubprocessRunner)."""
    from kfp import dsl

    folder = Path(scratch or tempfile.mkdtemp(prefix="mlcompile-kfp-local-"))
    _OUTPUT_TYPES.clear()
    _OUTPUT_TYPES.update({(s.name, a.name): a.type for s in pipeline.steps for a in s.outputs})
    header = "from kfp.dsl import Input, Output, OutputPath, Dataset, Model, Metrics, Artifact\n"
    body = "".join(_source(s, runtime_config(plan, s, tracking_uri=tracking_uri), str(spec_dir)) for s in pipeline.steps)
    path = folder / f"mlcompile_local_{pipeline.name.replace('-', '_')}.py"
    path.write_text(header + body)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    components = {s.name: dsl.component(getattr(module, s.name.replace("-", "_")), install_kfp_package=False) for s in pipeline.steps}
    # kfp.local's condition evaluator resolves task outputs named `Output` (a return value)
    # only, so here a decision is the component's return value; the compiled IR names it.
    return pipeline_function(
        pipeline, lambda s: components[s.name], lambda task, step: task.set_caching_options(False), pipeline_root=None, decision_output=lambda name: "Output"
    )
