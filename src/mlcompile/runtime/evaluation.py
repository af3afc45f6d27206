"""evaluate (the challenger, and the production champion on the same test set) and gate."""

from __future__ import annotations

from typing import Any

from mlcompile.runtime.container_model import model_folder, read_reported
from mlcompile.runtime.io import DataError, read_json, read_table, write_json
from mlcompile.runtime.metrics import LOWER_IS_BETTER, model_metrics
from mlcompile.runtime.model import FORMAT_SKLEARN, load_meta, load_model


def evaluate(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """The candidate's metrics on the test set: computed by the runtime (`metrics_from:
    runtime`; a container-trained model through its predict entry point), or those its
    container trainer reported (`metrics_from: reported`, the `reported` input), checked."""
    params = config["params"]
    names, label = list(params["metrics"]), params["label"]
    test = read_table(inputs["test"])
    with model_folder(inputs["model"]) as folder:
        meta = load_meta(folder, config.get("model"))
        metrics_from = params.get("metrics_from") or ("runtime" if meta.get("format") == FORMAT_SKLEARN else "reported")
        if metrics_from == "runtime":
            metrics = _scored(names, folder, meta, test, label, config)
        else:  # the container computed them on this same test set (MLCOMPILE_TEST_DATA → MLCOMPILE_METRICS)
            reported = read_reported(inputs["reported"]) if inputs.get("reported") else dict(meta.get("metrics") or {})
            missing = [n for n in names if n not in reported]
            if missing:
                raise DataError(f"the trainer reported no {', '.join(missing)} in $MLCOMPILE_METRICS (it reported {', '.join(sorted(reported)) or 'nothing'})")
            metrics = {n: float(reported[n]) for n in names}
    result: dict[str, Any] = {"metrics": metrics, "metrics_from": metrics_from, "test_rows": int(len(test)), "production": None}
    result["production"], note = _production_metrics(config, names, test, label, meta)
    if note:
        result["production_note"] = note
        print(f"champion/challenger: {note}")
    write_json(outputs["metrics"], result)
    return result


def _scored(names: list[str], folder: Any, meta: dict[str, Any], test: Any, label: str, config: dict[str, Any]) -> dict[str, float]:
    """The metrics of the model in `folder` on `test`, computed by the runtime."""
    model, meta = load_model(folder, config.get("model"))
    try:
        return model_metrics(names, model, meta, test, label)
    finally:
        getattr(model, "close", lambda: None)()


def _production_metrics(
    config: dict[str, Any], names: list[str], test: Any, label: str, challenger: dict[str, Any]
) -> tuple[dict[str, Any] | None, str | None]:
    from mlcompile.runtime.registry import production_model

    model_name = (config.get("registry") or {}).get("model")
    if not model_name:
        return None, "no registry model named in the config"
    try:
        champion = production_model(config, model_name)
    except DataError as exc:
        return None, str(exc)
    if champion is None:
        return None, f"no production version of {model_name} yet: nothing to compare with"
    meta = load_meta(champion.folder, config.get("model"))
    info = {"model": model_name, "version": champion.version}
    if meta.get("format") != FORMAT_SKLEARN and (config["params"].get("metrics_from") or "reported") == "reported":
        run = meta.get("metrics") or {}
        return {**info, "metrics": {n: float(run[n]) for n in names if n in run}, "source": "reported by its trainer"}, None
    columns = [f["column"] for f in meta["features"]]
    missing = [c for c in columns if c not in test.columns]
    if missing:
        return None, f"production version {champion.version} uses features this test set lacks ({', '.join(missing)}): not compared"
    return {**info, "metrics": _scored(names, champion.folder, meta, test, label, config), "source": "same test set"}, None


def gate(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """Every gate must pass; `decision` is what `run_if: gate` steps (register, deploy) read."""
    evaluation = read_json(inputs["metrics"])
    metrics = evaluation.get("metrics", evaluation) if isinstance(evaluation.get("metrics"), dict) else evaluation
    production = (evaluation.get("production") or {}).get("metrics") if isinstance(evaluation.get("production"), dict) else None
    gates = config.get("gates") or [
        {"metric": g["metric"], "comparison": c, "threshold": g[c]}
        for g in config["params"].get("gates", [])
        for c in ("min", "max", "min_delta_vs_production")
        if c in g
    ]
    results = []
    for g in gates:
        metric, comparison, threshold = g["metric"], g["comparison"], float(g["threshold"])
        value = metrics.get(metric)
        entry: dict[str, Any] = {"metric": metric, "comparison": comparison, "threshold": threshold, "value": value}
        if value is None or value != value:
            entry.update(passed=False, note=f"metric {metric} was not computed")
        elif comparison == "min":
            entry["passed"] = value >= threshold
        elif comparison == "max":
            entry["passed"] = value <= threshold
        else:
            champion = (production or {}).get(metric)
            if champion is None:
                entry.update(passed=True, note="no production model to compare with")
            else:
                sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
                delta = sign * (value - champion)
                entry.update(production=champion, delta=round(delta, 6), passed=delta >= threshold)
        results.append(entry)
    passed = all(r["passed"] for r in results)
    decision = {"decision": passed, "passed": passed, "results": results}
    write_json(outputs["decision"], decision)
    for r in results:
        shown = "n/a" if r["value"] is None else f"{r['value']:.4f}"
        extra = f" (production {r['production']:.4f}, delta {r['delta']:+.4f})" if "production" in r else (f" ({r['note']})" if "note" in r else "")
        print(f"{'PASS' if r['passed'] else 'FAIL'} {r['metric']} {r['comparison']} {r['threshold']:g}: {shown}{extra}")
    print("gate passed: the model will be registered" if passed else "gate failed: nothing is registered")
    return decision
