"""`runs/<run id>/report.html`: the run at a glance — pipelines and steps with durations,
metrics, gates, the registered version, batch scoring, drift (with the monitoring report's
plots inlined) and performance. Self-contained: no scripts, no external assets."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:64em;color:#222}h1{margin-bottom:.2em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}"
    ".failed,.fail{color:#b00}.skipped{color:#888}.cached{color:#357}.ok,.succeeded{color:#070}"
)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(f"<tr class='{_e((classes or [''] * len(rows))[i])}'>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows))
    return f"<table><tr>{head}</tr>{body}</table>"


def _training(title: str, training: dict[str, Any]) -> str:
    parts = [f"<h2>{_e(title)}</h2>"]
    metrics = training.get("metrics") or {}
    if metrics:
        production = ((training.get("production") or {}).get("metrics")) or {}
        parts.append(
            _table(["metric", "challenger", "production"], [[k, f"{v:.4f}", f"{production[k]:.4f}" if k in production else "–"] for k, v in metrics.items()])
        )
    gates = training.get("gates")
    if gates:
        rows = [
            [
                g["metric"],
                g["comparison"],
                g["threshold"],
                "–" if g.get("value") is None else f"{g['value']:.4f}",
                "pass" if g["passed"] else "FAIL",
                g.get("note", ""),
            ]
            for g in gates["results"]
        ]
        parts.append(_table(["gate", "comparison", "threshold", "value", "", ""], rows, ["ok" if g["passed"] else "fail" for g in gates["results"]]))
    model = training.get("model")
    parts.append(
        f"<p>Registered <b>{_e(model['model'])}</b> version <b>{_e(model['version'])}</b> (aliases {_e(', '.join(model.get('aliases', [])) or '–')}, approval {_e(model.get('approval'))})"
        + (" — the same model as before: not registered again" if model.get("existing") else "")
        + "</p>"
        if model
        else "<p>Nothing registered.</p>"
    )
    return "".join(parts)


def render(summary: dict[str, Any]) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(summary['system'])} run {_e(summary['run_id'])}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(summary['system'])}</h1><p>run {_e(summary['run_id'])}: <b class='{_e(summary['status'])}'>{_e(summary['status'])}</b> in {summary['duration_seconds']:.1f} s (profile {_e(summary['profile'])})</p>",
    ]
    rows, classes = [], []
    for pipeline in summary["pipelines"]:
        if not pipeline["steps"]:
            rows.append([pipeline["label"], "–", pipeline["status"], "", pipeline.get("reason", "")])
            classes.append(pipeline["status"])
        for step in pipeline["steps"]:
            rows.append([pipeline["label"], step["name"], step["status"], f"{step['duration_seconds']:.2f} s", step.get("reason", "")])
            classes.append(step["status"])
    parts.append("<h2>Pipelines</h2>" + _table(["pipeline", "step", "status", "duration", ""], rows, classes))
    if summary.get("training"):
        parts.append(_training("Training", summary["training"]))
    batch = summary.get("batch")
    if batch and "rows" in batch:
        parts.append(
            f"<h2>Batch scoring</h2><p>{batch['rows']} rows scored with version {_e(batch['version'])} ({_e(batch.get('model_selection', ''))}) → {_e(', '.join(batch.get('output') or []) or 'the step artifact')}</p>"
        )
    drift = summary.get("drift")
    if drift:
        parts.append(
            f"<h2>Drift</h2><p>{_e(drift['method'])}, threshold {drift['threshold']:g}: "
            + (f"<b class='fail'>breach in {_e(', '.join(drift['drifted']))}</b>" if drift["breach"] else "no drift")
            + "</p>"
        )
        report = Path(drift.get("report") or "")
        if report.is_file():
            parts.extend(re.findall(r"<section>.*?</section>", report.read_text(), flags=re.S))
    performance = summary.get("performance")
    if performance:
        value = "not computed" if performance.get("value") is None else f"{performance['value']:.4f}"
        parts.append(
            f"<h2>Performance</h2><p>{_e(performance['metric'])} = {value} (min {performance['min']:g}) on {performance.get('rows', 0)} ground-truth events{' — <b class=fail>breach</b>' if performance.get('breach') else ''}</p>"
        )
    retraining = summary.get("retraining")
    if retraining and retraining.get("triggered"):
        parts.append(_training("Retraining (" + "; ".join(retraining.get("reasons") or ["monitoring breach"]) + ")", retraining))
    if summary.get("not_applied"):
        parts.append("<h2>Not applied on this machine</h2><ul>" + "".join(f"<li>{_e(x)}</li>" for x in summary["not_applied"]) + "</ul>")
    parts.append("</body></html>\n")
    return "".join(parts)
