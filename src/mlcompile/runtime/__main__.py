"""`python -m mlcompile.runtime <step> --config JSON --input NAME=URI --output NAME=URI`, and
`python -m mlcompile.runtime serve [--config JSON] [--model-dir DIR] [--port N]`: the online
server the compiled serving definitions run (see `serve.py`; it runs until stopped).

Exit status 0 on success, 1 when the step failed on its data (a readable message on
stderr), 2 on a bad command line. With MLCOMPILE_STEP_RESULT set, the step's result (a
small JSON object: metrics, decision, version…) is written there for the caller."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from mlcompile.runtime.contract import ENV_PIPELINE_RUN

ENV_STEP_RESULT = "MLCOMPILE_STEP_RESULT"


def _pairs(values: list[str], what: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    result = {}
    for value in values:
        name, sep, uri = value.partition("=")
        if not sep or not name:
            parser.error(f"{what} {value!r}: expected NAME=URI")
        result[name] = uri
    return result


def parse(argv: list[str]) -> tuple[str, dict[str, Any], dict[str, str], dict[str, str]]:
    from mlcompile.runtime import STEPS, TARGET_STEPS

    steps = {**STEPS, **TARGET_STEPS}

    # no abbreviations: a Vertex AI trial's --NAME=VALUE must never be taken for --input & co.
    parser = argparse.ArgumentParser(
        prog="python -m mlcompile.runtime",
        description="Run one of mlcompile's standard steps (or `serve`: the online server, see `serve --help`).",
        allow_abbrev=False,
    )
    parser.add_argument("step", help="step name or kind: " + ", ".join(sorted(k.replace("_", "-") for k in steps)))
    parser.add_argument("--config", required=True, help="the step config as JSON (or @FILE)")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=URI")
    parser.add_argument("--output", action="append", default=[], metavar="NAME=URI")
    parser.add_argument(
        "--hp", action="append", default=[], metavar="NAME=VALUE", help="one tuning trial's value of a search parameter (the platform runs the trials)"
    )
    parser.add_argument("--pipeline-run", default=None, metavar="ID", help=f"the pipeline run this step belongs to (as {ENV_PIPELINE_RUN}; lineage)")
    args, extra = parser.parse_known_args(argv)
    if args.pipeline_run:
        os.environ[ENV_PIPELINE_RUN] = args.pipeline_run
    text = args.config
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        parser.error(f"--config is not JSON: {exc}")
    if not isinstance(config, dict):
        parser.error("--config must be a JSON object")
    step = args.step
    kind = str(config.get("kind") or step).replace("-", "_")
    if kind not in steps:
        parser.error(f"unknown step {step!r}; steps: {', '.join(sorted(k.replace('_', '-') for k in steps))}")
    hp = _pairs(args.hp, "--hp", parser)
    outputs = _pairs(args.output, "--output", parser)
    if extra:  # a Vertex AI tuning trial: the study's values as --NAME=VALUE after our arguments
        from mlcompile.runtime import vertex_trial

        try:
            hp.update(vertex_trial.trial_values(extra, config))
        except ValueError as exc:
            parser.error(str(exc))
        outputs = vertex_trial.trial_outputs(outputs)
    if hp:
        from mlcompile.runtime.training import TrialValueError, fix_trial

        try:
            config = fix_trial(config, hp)
        except TrialValueError as exc:
            parser.error(str(exc))
    return kind, config, _pairs(args.input, "--input", parser), outputs


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:  # not a step: a server with the platform's own arguments
        from mlcompile.runtime.serve import main as serve

        return serve(args[1:])
    from mlcompile.runtime import step_function
    from mlcompile.runtime.io import DataError

    kind, config, inputs, outputs = parse(args)
    started = time.perf_counter()
    print(f"[mlcompile.runtime] {config.get('step', kind)} ({kind}) inputs={inputs} outputs={outputs}", flush=True)
    try:
        result = step_function(kind)(config, inputs, outputs)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. an estimator refusing its params: the traceback, then the gist last
        import traceback

        traceback.print_exc()
        print(f"error: {config.get('step', kind)} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    seconds = time.perf_counter() - started
    print(f"[mlcompile.runtime] done in {seconds:.2f}s", flush=True)
    if kind == "tune" and os.environ.get("CLOUD_ML_TRIAL_ID"):
        from mlcompile.runtime import vertex_trial

        vertex_trial.report_objective(config, result)
    target = os.environ.get(ENV_STEP_RESULT)
    if target:
        from mlcompile.runtime.io import write_json

        write_json(target, {"step": config.get("step", kind), "kind": kind, "seconds": round(seconds, 4), "result": result})
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
