"""check-drift, check-performance, alert; the HTML drift report (trigger-retraining: retraining.py).

Drift compares the feature store's current state (per view: each entity's newest row within
the view's ttl of the source's newest timestamp) with the baseline kept with the serving
model (its training features). Per feature, with the spec's method:
  psi            population stability index over 10 baseline-quantile bins (categories for strings)
  ks             two-sample Kolmogorov–Smirnov statistic (numeric features only)
  jensen_shannon Jensen–Shannon distance (base 2, 0..1) of the binned distributions
  wasserstein    earth mover's distance divided by the baseline's standard deviation
A feature drifts when its score exceeds the threshold; any drifted feature is a breach."""

from __future__ import annotations

import html
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from mlcompile.runtime.contract import BREACH_LOG_MARKER
from mlcompile.runtime.features import FeatureStore
from mlcompile.runtime.io import DataError, read_json, read_table, write_bytes, write_json
from mlcompile.runtime.metrics import LOWER_IS_BETTER, model_metrics
from mlcompile.runtime.model import load_model
from mlcompile.runtime.registry import not_approved, production_model

BINS = 10
MIN_ROWS = 30  # fewer values than this on either side say nothing about a distribution
EPS = 1e-4
ENV_WORKDIR = "MLCOMPILE_WORKDIR"


def _histograms(baseline: Any, current: Any, numeric: bool) -> tuple[list[str], Any, Any]:
    import numpy as np
    import pandas as pd

    if numeric:
        edges = np.unique(np.quantile(baseline, np.linspace(0, 1, BINS + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        inner = edges[1:-1]
        b = np.bincount(np.searchsorted(inner, baseline, side="right"), minlength=len(inner) + 1)
        c = np.bincount(np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1)
        labels = [f"≤{e:.4g}" for e in inner] + [f">{inner[-1]:.4g}" if len(inner) else "all"]
    else:
        categories = sorted(set(map(str, baseline)) | set(map(str, current)))
        b = pd.Series(list(map(str, baseline))).value_counts().reindex(categories, fill_value=0).to_numpy()
        c = pd.Series(list(map(str, current))).value_counts().reindex(categories, fill_value=0).to_numpy()
        labels = categories
    return labels, b / max(b.sum(), 1), c / max(c.sum(), 1)


def drift_score(method: str, baseline: Any, current: Any, numeric: bool) -> tuple[float | None, list[str], Any, Any]:
    import numpy as np
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    labels, b, c = _histograms(baseline, current, numeric)
    if method == "psi":
        bp, cp = np.clip(b, EPS, None), np.clip(c, EPS, None)
        score = float(np.sum((cp - bp) * np.log(cp / bp)))
    elif method == "jensen_shannon":
        score = float(jensenshannon(b, c, base=2))
    elif not numeric:
        return None, labels, b, c  # ks and wasserstein compare numbers
    elif method == "ks":
        score = float(stats.ks_2samp(baseline, current).statistic)
    elif method == "wasserstein":
        spread = float(np.std(baseline)) or 1.0
        score = float(stats.wasserstein_distance(baseline, current) / spread)
    else:
        raise DataError(f"unknown drift method {method!r}")
    return score, labels, b, c


def check_drift(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    import pandas as pd

    params = config["params"]
    model_name = (config.get("registry") or {}).get("model")
    serving = production_model(config, model_name) if model_name else None
    if serving is None:
        raise DataError(f"{not_approved(config, model_name)} (its training data is the drift baseline)")
    if not (serving.folder / "baseline.parquet").is_file():
        raise DataError(
            f"{serving.name} version {serving.version} keeps no drift baseline (baseline.parquet, the training features register keeps with the model): register it with mlcompile's register step"
        )
    baseline = read_table(str(serving.folder / "baseline.parquet"))
    store = FeatureStore(config["features"])
    specs = store.specs(list(params["features"]))
    current = store.current_values(specs)
    method, threshold = params["method"], float(params["threshold"])
    features: dict[str, Any] = {}
    plots: dict[str, Any] = {}
    for spec in specs:
        if spec.column not in baseline.columns:
            features[spec.column] = {"ref": spec.ref, "score": None, "drifted": False, "note": "not in the serving model's training data"}
            continue
        numeric = spec.dtype not in ("string",)
        b = baseline[spec.column].dropna()
        c = current[spec.column].dropna()
        if numeric:
            b, c = pd.to_numeric(b, errors="coerce").dropna().astype(float).to_numpy(), pd.to_numeric(c, errors="coerce").dropna().astype(float).to_numpy()
        if len(b) < MIN_ROWS or len(c) < MIN_ROWS:
            note = f"too few values to compare ({len(b)} baseline, {len(c)} current; at least {MIN_ROWS} each)"
            features[spec.column] = {"ref": spec.ref, "score": None, "drifted": False, "baseline_rows": int(len(b)), "current_rows": int(len(c)), "note": note}
            continue
        score, labels, bh, ch = drift_score(method, b, c, numeric)
        drifted = score is not None and score > threshold
        features[spec.column] = {
            "ref": spec.ref,
            "score": None if score is None else round(score, 6),
            "drifted": drifted,
            "baseline_rows": int(len(b)),
            "current_rows": int(len(c)),
            **({"baseline_mean": round(float(b.mean()), 6), "current_mean": round(float(c.mean()), 6)} if numeric else {}),
            **({"note": f"{method} applies to numeric features"} if score is None else {}),
        }
        plots[spec.column] = (labels, bh, ch)
    breach = any(f["drifted"] for f in features.values())
    decision: dict[str, Any] = {
        "decision": breach,
        "breach": breach,
        "check": "drift",
        "method": method,
        "threshold": threshold,
        "model": {"name": serving.name, "version": serving.version, "selection": serving.reason},
        "features": features,
        "drifted": sorted(k for k, f in features.items() if f["drifted"]),
    }
    out = outputs["drift"]
    report_uri = (out[: -len(".json")] if out.endswith(".json") else out) + ".html"
    decision["report"] = report_uri
    write_json(out, decision)
    write_bytes(report_uri, drift_report(config.get("system") or "", decision, plots).encode("utf-8"))
    for name, f in features.items():
        shown = "n/a" if f["score"] is None else f"{f['score']:.4f}"
        print(f"{'DRIFT' if f['drifted'] else 'ok   '} {name}: {method} {shown} (threshold {threshold:g})")
    print(f"drift report: {report_uri}")
    return {k: v for k, v in decision.items() if k != "decision"}


def _svg(labels: list[str], baseline: Any, current: Any) -> str:
    width, height, pad = 560, 200, 28
    n = max(len(labels), 1)
    top = max(float(max(baseline, default=0)), float(max(current, default=0)), 1e-9)
    slot = (width - 2 * pad) / n
    bar = slot * 0.38
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img">']
    for i, (label, b, c) in enumerate(zip(labels, baseline, current)):
        x = pad + i * slot
        for j, (value, color) in enumerate(((b, "#8da0cb"), (c, "#fc8d62"))):
            h = (height - pad) * float(value) / top
            parts.append(
                f'<rect x="{x + j * bar + 2:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{color}"><title>{html.escape(label)}: {float(value):.1%}</title></rect>'
            )
        if n <= 12:
            parts.append(f'<text x="{x + slot / 2:.1f}" y="{height + 14}" font-size="9" text-anchor="middle">{html.escape(label[:12])}</text>')
    parts.append(
        f'<text x="{pad}" y="{height + 34}" font-size="11"><tspan fill="#8da0cb">■ baseline (training)</tspan> <tspan fill="#fc8d62">■ current</tspan></text></svg>'
    )
    return "".join(parts)


def drift_report(system: str, decision: dict[str, Any], plots: dict[str, Any]) -> str:
    def row(name: str, f: dict[str, Any]) -> str:
        score = "n/a" if f["score"] is None else f"{f['score']:.4f}"
        status = "DRIFT" if f["drifted"] else "ok"
        return (
            f"<tr class={status.lower()}><td>{html.escape(name)}</td><td>{html.escape(f['ref'])}</td>"
            f"<td>{score}</td><td>{status}</td><td>{html.escape(f.get('note', ''))}</td></tr>"
        )

    rows = "".join(row(name, f) for name, f in decision["features"].items())
    figures = "".join(
        f"<section><h2>{html.escape(name)}</h2><p>{decision['method']} = {decision['features'][name]['score']:.4f} &gt; {decision['threshold']:g}</p>{_svg(*plots[name])}</section>"
        for name in decision["drifted"]
        if name in plots
    )
    verdict = f"{len(decision['drifted'])} drifted feature(s): breach" if decision["breach"] else "no drift"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>drift: "
        + html.escape(system)
        + "</title><style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}"
        "td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}tr.drift td{color:#b00}</style></head><body>"
        f"<h1>Drift report: {html.escape(system)}</h1><p>{html.escape(verdict)}. Method {decision['method']}, threshold {decision['threshold']:g}; "
        f"baseline: the training data of {html.escape(decision['model']['name'])} version {decision['model']['version']} "
        f"({html.escape(decision['model']['selection'])}).</p>"
        f"<table><tr><th>column</th><th>feature</th><th>score</th><th>status</th><th></th></tr>{rows}</table>{figures}</body></html>\n"
    )


def check_performance(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """The serving model against ground truth that landed in the newest window (the last
    `window_days`, default 30, of the ground-truth source), features point-in-time."""
    import pandas as pd

    params = config["params"]
    model_name = (config.get("registry") or {}).get("model")
    serving = production_model(config, model_name) if model_name else None
    if serving is None:
        raise DataError(f"{not_approved(config, model_name)}: nothing serves to monitor")
    metric, minimum = params["metric"], float(params["min"])
    model, meta = load_model(serving.folder, config.get("model"))  # a container-trained one: through its predict entry point
    store = FeatureStore(config["features"])
    truth_source, column = params["ground_truth"]["source"], params["ground_truth"]["column"]
    events = store.source(truth_source)
    ts = store.sources[truth_source]["timestamp_field"]
    if column not in events.columns:
        raise DataError(f"ground truth source {truth_source}: no column {column!r}")
    window = int(params.get("window_days", 30))
    events = events[events[column].notna() & (events[ts] > events[ts].max() - pd.Timedelta(days=window))]
    keys = list(meta.get("keys") or [])
    frame, _ = store.join(events[[*[k for k in keys if k in events.columns], ts, column]], ts, store.specs([f["ref"] for f in meta["features"]]))
    if frame.empty:
        raise DataError(f"ground truth source {truth_source} has no labelled events in the last {window} days")
    value = model_metrics([metric], model, meta, frame, column)[metric]
    breach = bool(value > minimum) if metric in LOWER_IS_BETTER else bool(value < minimum)
    decision = {
        "decision": breach,
        "breach": breach,
        "check": "performance",
        "metric": metric,
        "value": value,
        "min": minimum,
        "rows": int(len(frame)),
        "window_days": window,
        "model": {"name": serving.name, "version": serving.version, "selection": serving.reason},
    }
    write_json(outputs["performance"], decision)
    print(f"{'BREACH' if breach else 'ok'} {metric} = {value:.4f} (min {minimum:g}) on {len(frame)} ground-truth events of the last {window} days")
    return {k: v for k, v in decision.items() if k != "decision"}


def record(kind: str, payload: dict[str, Any]) -> str | None:
    workdir = os.environ.get(ENV_WORKDIR)
    if not workdir:
        return None
    path = Path(workdir) / f"{kind}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(payload, sort_keys=True, default=str) + "\n")
    return str(path)


def _breached(inputs: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, uri in sorted(inputs.items()):
        try:
            decision = read_json(uri)
        except Exception:  # noqa: BLE001
            continue
        if decision.get("breach"):
            found.append((name, decision))
    return found


def breaches(inputs: dict[str, str]) -> list[str]:
    found = []
    for name, decision in _breached(inputs):
        what = (
            f"drift in {', '.join(decision.get('drifted', []))}" if decision.get("check") == "drift" else f"{decision.get('metric')} = {decision.get('value')}"
        )
        found.append(f"{name}: {what}")
    return found


def _post_json(url: str, data: Any) -> None:
    request = urllib.request.Request(url, data=json.dumps(data).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).close()


def _email(config: dict[str, Any], message: str, reasons: list[str], inputs: dict[str, str]) -> str:
    """Who sends an email alert: Cloud Monitoring on Vertex AI (its alert policy matches the
    line `alert` logs), SNS on SageMaker (an alarm on the alert step's success), the cluster's Alertmanager on Kubeflow (posted here; the build's
    AlertmanagerConfig routes it to the recipients), Azure Monitor on Azure ML (a custom metric
    published here; the build's metric alert notifies its action group); locally nobody: it is recorded."""
    platform = config.get("platform") or {}
    if platform.get("name") == "azureml":
        from mlcompile.runtime.alerts_azureml import publish_breach

        signals = sorted({str(decision.get("check") or name) for name, decision in _breached(inputs)}) or ["monitoring"]
        try:
            return publish_breach(config, signals)
        except Exception as exc:  # noqa: BLE001 - an alert failure must not hide the breach
            return f"failed: Azure Monitor: {exc}"
    if platform.get("name") == "vertex":
        return f"sent by Cloud Monitoring (alert policy '{config.get('system')} monitoring breach' on the line below)"
    if platform.get("name") == "sagemaker":
        return f"sent by Amazon SNS (the alarm {config.get('system')}-monitoring-alert on this step's success notifies the topic {config.get('system')}-alerts)"
    alertmanager = platform.get("alertmanager")
    if not alertmanager:
        return "recorded (email is sent by the cloud platforms)"
    alert = {"labels": {**alertmanager["labels"], "namespace": platform.get("namespace", ""), "severity": "warning"},
             "annotations": {"summary": message, "description": "; ".join(reasons) or "a monitoring check breached"}}  # fmt: skip
    url = f"{alertmanager['url'].rstrip('/')}/api/v2/alerts"
    try:
        _post_json(url, [alert])
    except Exception as exc:  # noqa: BLE001 - an alert failure must not hide the breach
        return f"failed: the Alertmanager at {url}: {exc}"
    return f"posted to the Alertmanager at {url} (its route mails the recipients)"


def alert(config: dict[str, Any], inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    """Send (locally: record and print) the spec's alerts. Webhooks are posted when their
    secret resolves (mlcompile.runtime.secrets; locally: MLCOMPILE_SECRET_<NAME>). Email is
    the platform's to send (`_email`). The webhook URL is a secret: it is never printed or
    recorded."""
    system = config.get("system")
    reasons = breaches(inputs)
    message = f"[mlcompile] {system}: monitoring breach" + (f" ({'; '.join(reasons)})" if reasons else "")
    sent = []
    email: str | None = None
    for channel in config["params"]["alerts"]:
        entry: dict[str, Any] = {"channel": channel["channel"]}
        if channel["channel"] == "webhook":
            url, unavailable = channel["url"], "no webhook URL"
            if url.startswith("secret://"):
                from mlcompile.runtime.secrets import SecretUnavailable, resolve

                entry["secret"] = channel["url"]
                try:
                    url = resolve(url)
                except SecretUnavailable as exc:
                    url, unavailable = "", str(exc)
            if url:
                try:
                    _post_json(url, {"text": message})
                    entry["status"] = "sent"
                except Exception as exc:  # noqa: BLE001 - an alert failure must not hide the breach
                    entry["status"] = f"failed: {exc}"
            else:
                entry["status"] = f"not sent: {unavailable}"
        else:
            if email is None:  # one notification reaches every recipient
                email = _email(config, message, reasons, inputs)
            entry.update(to=channel.get("to", []), status=email)
        print(f"alert {entry['channel']}: {entry['status']}")
        sent.append(entry)
    log = record("alerts", {"time": time.time(), "system": system, "message": message, "channels": sent})
    print(f"{BREACH_LOG_MARKER} system={system}: {message}")
    return {"message": message, "channels": sent, "log": log}
