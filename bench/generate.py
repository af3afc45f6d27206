"""Generated mlcompile specs of any size, for the scale and monorepo benchmarks.

    python bench/generate.py OUT_DIR --features 1000 [--systems 1]

A system with N features has ceil(N/10) feature views of 10 features each, over
ceil(views/5) sources (one source feeds five views), one entity; training uses every
feature and drift watches every feature, so every part of the build grows with N. Each
system has online and batch deployment, monitoring, retraining, and overrides for the
four cloud profiles in targets/ (kfp-gke, gcp-prod, aws-prod, azure-prod). Standard library
only: the spec is written as YAML flow text by hand."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

FEATURES_PER_VIEW = 10
VIEWS_PER_SOURCE = 5
DTYPES = ("float64", "int64", "float64", "string")
CLOUD = {
    "kfp-gke": ("gs://acme-gen-lake/{system}/{source}.parquet", "parquet"),
    "gcp-prod": ("bq://acme-gen-prod.{system_}.{source}", "table"),
    "aws-prod": ("s3://acme-gen-lake/{system}/{source}.parquet", "parquet"),
    "azure-prod": ("abfss://gen@acmegenlake.dfs.core.windows.net/{system}/{source}.parquet", "parquet"),
}


def q(value: object) -> str:
    return json.dumps(value)  # JSON scalars are YAML flow scalars


def spec_text(features: int, name: str) -> str:
    views = max(1, math.ceil(features / FEATURES_PER_VIEW))
    sources = max(1, math.ceil(views / VIEWS_PER_SOURCE))
    refs: list[str] = []
    out = [
        "apiVersion: mlcompile/v1",
        "kind: MLSystem",
        "metadata:",
        f"  name: {name}",
        f"  description: generated system with {features} features, {views} views, {sources} sources",
        "  owner: bench@acme.example",
        "features:",
        "  entities:",
        "    - {name: customer, join_keys: [customer_id]}",
        "  sources:",
    ]
    source_names = [f"source_{s:04d}" for s in range(sources)]
    for source in source_names:
        out.append(f"    - {{name: {source}, uri: {q(f'file://data/{source}.csv')}, format: csv, timestamp_field: event_ts}}")
    out.append('    - {name: labels, uri: "file://data/labels.csv", format: csv, timestamp_field: label_ts}')
    out.append("  views:")
    left = features
    for v in range(views):
        count = min(FEATURES_PER_VIEW, left)
        left -= count
        view = f"view_{v:04d}"
        out += [
            f"    - name: {view}",
            "      entities: [customer]",
            f"      source: {source_names[v // VIEWS_PER_SOURCE]}",
            "      ttl: 30d",
            f"      online: {'true' if v == 0 else 'false'}",
            "      features:",
        ]
        for f in range(count):
            feature = f"f_{v:04d}_{f:02d}"
            out.append(f"        - {{name: {feature}, dtype: {DTYPES[f % len(DTYPES)]}}}")
            refs.append(f"{view}:{feature}")
    out += ["training:", "  dataset:", "    features:"]
    out += [f"      - {ref}" for ref in refs]
    out += [
        "    label: {source: labels, column: churned}",
        "    split: {test_fraction: 0.2, seed: 42}",
        "  trainer:",
        "    sklearn:",
        "      estimator: sklearn.ensemble.HistGradientBoostingClassifier",
        "      params: {max_iter: 100}",
        "  resources: {cpu: 4, memory: 16Gi, timeout: 1h}",
        "  evaluation:",
        "    metrics: [roc_auc, f1]",
        "    gates:",
        "      - {metric: roc_auc, min: 0.7}",
        "registry:",
        f"  model: {name}-model",
        "  approval: manual",
        "deployment:",
        "  online:",
        f"    endpoint: {name}-scorer",
        "    resources: {cpu: 2, memory: 4Gi}",
        "    replicas: {min: 1, max: 3}",
        "    autoscaling: {metric: cpu, target: 60}",
        "  batch:",
        '    schedule: "30 7 * * *"',
        f"    input: {{source: {source_names[0]}}}",
        f"    output: {{uri: {q(f'file://scores/{name}.csv')}}}",
        "monitoring:",
        '  schedule: "0 9 * * *"',
        "  baseline: training",
        "  drift:",
        "    method: psi",
        "    threshold: 0.2",
        "    features:",
    ]
    out += [f"      - {ref}" for ref in refs]
    out += [
        "  alerts:",
        "    - {channel: email, to: [bench@acme.example]}",
        "  on_breach: retrain",
        "retraining:",
        '  schedule: "0 2 * * 1"',
        "  on_drift: true",
        "overrides:",
    ]
    for profile, (pattern, fmt) in CLOUD.items():
        out += [f"  {profile}:", "    features:", "      sources:"]
        for source in [*source_names, "labels"]:
            uri = pattern.format(system=name, system_=name.replace("-", "_"), source=source)
            out.append(f"        - {{name: {source}, uri: {q(uri)}, format: {fmt}}}")
        out += ["    deployment:", f"      batch: {{output: {{uri: {q(pattern.format(system=name, system_=name.replace('-', '_'), source='scores'))}}}}}"]
    return "\n".join(out) + "\n"


def write_system(root: Path, features: int, name: str) -> Path:
    """Write ROOT/<name>/mlcompile.yaml and return its path."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "mlcompile.yaml"
    spec.write_text(spec_text(features, name))
    return spec


def write_monorepo(root: Path, systems: int, features: int = 20) -> list[Path]:
    """ROOT/systems/sys-NNN/mlcompile.yaml for `systems` systems."""
    return [write_system(root / "systems", features, f"sys-{i:03d}") for i in range(systems)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--systems", type=int, default=1)
    args = parser.parse_args()
    if args.systems == 1:
        print(write_system(args.out, args.features, f"gen-{args.features}"))
    else:
        for spec in write_monorepo(args.out, args.systems, args.features):
            print(spec)


if __name__ == "__main__":
    main()
