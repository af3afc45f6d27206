#!/usr/bin/env python3
"""The whole performance suite of issue 8 in one run: a table on stdout, bench/results.json.

    python bench/run.py            # full run (a few minutes)
    python bench/run.py --quick    # fewer runs and sizes, under ~2 minutes

1. cold CLI: `mlcompile --version` and `mlcompile validate` of each example vs
   `python -c pass` and `python -c "import yaml, pydantic"`;
2. build per target (churn) vs the SDK floor: a script that only imports the platform's SDK
   and compiles an equivalent hand-written pipeline (kubeflow and sagemaker floors from
   build_kubeflow.py / build_sagemaker.py; vertex = the kfp floor + aiplatform PipelineJob
   bodies; azureml = a minimal azure-ai-ml pipeline of command components);
3. scale: generated specs (bench/generate.py) of 10 … 5,000 features: validate and build
   time and peak RSS per size, and the fitted exponent;
4. monorepo: one `mlcompile build` process over 1, 10, 50 generated systems x 4 cloud targets;
5. output size: the largest artifact per target vs its platform limit (mlcompile.limits).

Every command is a fresh process, timed wall-clock; peak memory is the child's ru_maxrss
(os.wait4). Commands compared with each other run interleaved, round by round, after one
discarded warm-up each, so that load hits both sides alike. Standard library + mlcompile."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import build_kubeflow  # noqa: E402  (the hand-written floors, reused)
import build_sagemaker  # noqa: E402
import generate  # noqa: E402

PY = sys.executable
CLI = [PY, "-m", "mlcompile"]
CLOUD = {"kubeflow": "kfp-gke", "vertex": "gcp-prod", "sagemaker": "aws-prod", "azureml": "azure-prod"}

VERTEX_FLOOR = (
    build_kubeflow.HAND_WRITTEN
    + r"""
import glob
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
aiplatform.init(project="acme-ml-prod", location="us-central1", credentials=AnonymousCredentials())
import yaml
for path in sorted(glob.glob(f"{out}/churn-prediction-*.yaml")):
    with open(path) as handle:
        spec = next(yaml.safe_load_all(handle))  # the pipeline spec, without the kubernetes platform document
    with open(f"{path}.single.yml", "w") as handle:
        yaml.safe_dump(spec, handle)
    job = aiplatform.PipelineJob(display_name="churn", template_path=f"{path}.single.yml", pipeline_root="gs://acme-ml-prod-pipelines/root")
    type(job._gca_resource).to_json(job._gca_resource)
"""
)

AZUREML_FLOOR = r"""
import sys, logging
logging.disable(logging.WARNING)
from azure.ai.ml import Input, Output, command, dsl
from azure.ai.ml.entities import Environment
ENV = Environment(image="acmeml.azurecr.io/mlcompile-runtime:0.1.0")
RUN = "python -m mlcompile.runtime"
def step(name, inputs=(), outputs=()):
    args = " ".join([f"--input {i}=${{{{inputs.{i}}}}}" for i in inputs] + [f"--output {o}=${{{{outputs.{o}}}}}" for o in outputs])
    return command(name=name, command=f"{RUN} {name.replace('_', '-')} --config c.json {args}", environment=ENV, compute="cpu-cluster-d8s",
                   inputs={i: Input(type="uri_folder") for i in inputs}, outputs={o: Output(type="uri_folder") for o in outputs})
extract = step("extract_features", outputs=["train", "test"])
validate = step("validate_data", ["train", "test"], ["report"])
train = step("train", ["train", "test", "report"], ["model", "metrics"])
evaluate = step("evaluate", ["model", "test"], ["metrics"])
gate = step("gate", ["metrics"], ["decision"])
register = step("register", ["model", "metrics"])
score = step("score_batch", outputs=["scores"])
drift = step("check_drift", outputs=["drift"])
alert = step("alert", ["drift"])
@dsl.pipeline(name="churn-prediction-training")
def training():
    f = extract()
    v = validate(train=f.outputs.train, test=f.outputs.test)
    t = train(train=f.outputs.train, test=f.outputs.test, report=v.outputs.report)
    e = evaluate(model=t.outputs.model, test=f.outputs.test)
    g = gate(metrics=e.outputs.metrics)
    register(model=t.outputs.model, metrics=e.outputs.metrics)
@dsl.pipeline(name="churn-prediction-batch-scoring")
def batch():
    score()
@dsl.pipeline(name="churn-prediction-monitoring")
def monitoring():
    d = drift()
    alert(drift=d.outputs.drift)
out = sys.argv[1]
for fn in (training, batch, monitoring):
    job = fn()
    job.settings.default_compute = "cpu-cluster-d8s"
    with open(f"{out}/{fn.__name__}.yml", "w") as handle:
        handle.write(str(job))
"""


# ---------------------------------------------------------------- measuring


def run_once(command: list[str], cwd: Path = ROOT) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MiB of the child, exit code) of one fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.stderr and proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{err[-3000:]}")
    return elapsed, usage.ru_maxrss // 1024, proc.returncode


def interleaved(commands: dict[str, list[str]], runs: int, warm: bool = True) -> dict[str, dict[str, float]]:
    """Median/min wall time and max peak RSS of each command, runs interleaved round by round
    after one discarded warm-up each."""
    for command in commands.values() if warm else ():
        run_once(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    rss: dict[str, int] = {name: 0 for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            elapsed, peak, _ = run_once(command)
            times[name].append(elapsed)
            rss[name] = max(rss[name], peak)
    return {name: {"median_s": statistics.median(t), "min_s": min(t), "peak_rss_mib": rss[name], "runs": runs} for name, t in times.items()}


def fit_exponent(xs: list[float], ys: list[float]) -> float | None:
    """Slope of log y on log x, least squares."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(points) < 2:
        return None
    mx = sum(p[0] for p in points) / len(points)
    my = sum(p[1] for p in points) / len(points)
    sxx = sum((p[0] - mx) ** 2 for p in points)
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx if sxx else None


def build_command(specs: list[str], profiles: list[str], out: str) -> list[str]:
    return [*CLI, "-q", "build", *specs, *(a for p in profiles for a in ("-t", f"targets/{p}.yaml")), "-o", out, "--git-commit", "none"]


# ---------------------------------------------------------------- parts


def part_cold(runs: int) -> dict:
    commands = {
        "python -c pass": [PY, "-c", "pass"],
        "python -c 'import yaml, pydantic'": [PY, "-c", "import yaml, pydantic"],
        "mlcompile --version": [*CLI, "--version"],
    }
    for spec in sorted((ROOT / "examples").glob("*/mlcompile.yaml")):
        commands[f"mlcompile validate {spec.relative_to(ROOT)}"] = [*CLI, "validate", str(spec)]
    rows = interleaved(commands, runs)
    base = rows["python -c pass"]["median_s"]
    libs = rows["python -c 'import yaml, pydantic'"]["median_s"]
    for row in rows.values():
        row["x_python_pass"] = row["median_s"] / base
        row["x_import_yaml_pydantic"] = row["median_s"] / libs
    return rows


def part_build(runs: int, scratch: Path) -> dict:
    floor_dir = scratch / "floor"
    floor_dir.mkdir()
    floors = {
        "kubeflow": [PY, "-c", build_kubeflow.HAND_WRITTEN, str(floor_dir)],
        "vertex": [PY, "-c", VERTEX_FLOOR, str(floor_dir)],
        "sagemaker": [PY, "-c", build_sagemaker.HAND_WRITTEN],
        "azureml": [PY, "-c", AZUREML_FLOOR, str(floor_dir)],
    }
    result = {}
    for platform_name, profile in CLOUD.items():
        commands = {
            "floor": floors[platform_name],
            "build": build_command(["examples/churn/mlcompile.yaml"], [profile], str(scratch / "churn")),
        }
        rows = interleaved(commands, runs)
        rows["ratio"] = rows["build"]["median_s"] / rows["floor"]["median_s"]
        result[platform_name] = rows
    return result


def part_scale(sizes: list[int], runs: int, scratch: Path, warm: bool = True) -> dict:
    rows: dict[str, dict] = {}
    for size in sizes:
        spec = generate.write_system(scratch / "scale", size, f"gen-{size}")
        commands = {"validate": [*CLI, "-q", "validate", str(spec), "-t", "targets/"]}
        for platform_name, profile in CLOUD.items():
            commands[f"build {platform_name}"] = build_command([str(spec)], [profile], str(scratch / f"scale-out-{size}"))
        rows[str(size)] = interleaved(commands, runs, warm)
    exponents: dict[str, dict[str, float | None]] = {}
    for name in rows[str(sizes[0])]:
        ys = [rows[str(s)][name]["median_s"] for s in sizes]
        base = ys[0]
        exponents[name] = {
            # raw wall time: fixed costs (interpreter, imports) flatten it toward 0
            "wall": fit_exponent(sizes, ys),
            # the cost that grows: wall time above the smallest spec's, over the other sizes
            "above_smallest": fit_exponent(sizes[1:], [y - base for y in ys[1:]]),
            # the last step between the two largest sizes
            "largest_two": fit_exponent(sizes[-2:], ys[-2:]) if len(sizes) >= 2 else None,
        }
    return {"sizes": sizes, "rows": rows, "exponents": exponents}


def part_monorepo(counts: list[int], scratch: Path, two_processes: bool = True) -> dict:
    root = scratch / "mono"
    specs = [str(p) for p in generate.write_monorepo(root, max(counts))]
    profiles = list(CLOUD.values())
    run_once(build_command(specs[:1], profiles, str(scratch / "mono-warm")))  # warm file cache
    rows = {}
    for count in counts:
        elapsed, peak, _ = run_once(build_command(specs[:count], profiles, str(scratch / f"mono-out-{count}")))
        rows[str(count)] = {"wall_s": elapsed, "peak_rss_mib": peak, "per_system_s": elapsed / count}
    first, last = counts[0], counts[-1]
    marginal = (rows[str(last)]["wall_s"] - rows[str(first)]["wall_s"]) / (last - first) if last > first else None
    # what --jobs 2 could at best give: the same systems split over two processes at once
    if not two_processes:
        return {"systems_features": 20, "profiles": profiles, "rows": rows, "marginal_per_system_s": marginal, "two_processes_s": None}
    half = max(counts) // 2
    started = time.perf_counter()
    procs = [
        subprocess.Popen(build_command(chunk, profiles, str(scratch / f"mono-jobs-{i}")), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i, chunk in enumerate((specs[:half], specs[half:]))
    ]
    codes = [p.wait() for p in procs]
    both = time.perf_counter() - started
    return {
        "systems_features": 20,
        "profiles": profiles,
        "rows": rows,
        "marginal_per_system_s": marginal,
        "two_processes_s": both if not any(codes) else None,
        "two_processes_systems": max(counts),
    }


def part_sizes(scratch: Path, largest: int) -> dict:
    from mlcompile import limits

    result: dict[str, dict] = {}
    for label, folder in (("churn", scratch / "churn"), (f"gen-{largest}", scratch / f"scale-out-{largest}")):
        for platform_name, profile in CLOUD.items():
            manifest = folder / profile / "manifest.json"
            if not manifest.exists():
                continue
            files = json.loads(manifest.read_text())["files"]
            sized = []
            for entry in files:
                content = (folder / profile / entry["path"]).read_bytes()
                limit = limits.limit_of(entry["kind"])
                size = limits.size_of(content, limit.unit) if limit else len(content)
                sized.append((size, entry["path"], entry["kind"], limit))
            biggest = max(sized, key=lambda s: s[0])
            bounded = [s for s in sized if s[3] is not None]
            worst = max(bounded, key=lambda s: s[0] / s[3].limit) if bounded else None
            result.setdefault(label, {})[platform_name] = {
                "largest": {"path": biggest[1], "kind": biggest[2], "bytes": biggest[0]},
                "largest_limited": None if worst is None else {
                    "path": worst[1], "kind": worst[2], "size": worst[0], "unit": worst[3].unit,
                    "limit": worst[3].limit, "fraction": worst[0] / worst[3].limit,
                },
            }  # fmt: skip
    return result


# ---------------------------------------------------------------- report


def table(results: dict) -> str:
    lines = []
    add = lines.append
    add("1. cold CLI (median of %d, fresh processes)" % results["cold"]["python -c pass"]["runs"])
    add(f"   {'command':<58} {'median':>8} {'x pass':>7} {'x yaml+pyd':>10} {'peak MiB':>9}")
    for name, row in results["cold"].items():
        add(f"   {name:<58} {row['median_s']:>7.3f}s {row['x_python_pass']:>6.1f}x {row['x_import_yaml_pydantic']:>9.2f}x {row['peak_rss_mib']:>9}")
    add("   targets: validate <= 0.3 s and <= 3x import yaml, pydantic")
    add("")
    add("2. build churn per target vs SDK floor (median, interleaved)")
    add(f"   {'target':<12} {'floor':>8} {'build':>8} {'ratio':>7} {'floor MiB':>10} {'build MiB':>10}")
    for name, row in results["build"].items():
        add(
            f"   {name:<12} {row['floor']['median_s']:>7.2f}s {row['build']['median_s']:>7.2f}s {row['ratio']:>6.2f}x {row['floor']['peak_rss_mib']:>10} {row['build']['peak_rss_mib']:>10}"
        )
    add("   target: <= 1.3x floor")
    add("")
    scale = results["scale"]
    add("3. scale: generated specs (seconds / peak MiB)")
    names = list(scale["rows"][str(scale["sizes"][0])])
    add(f"   {'features':>8} " + " ".join(f"{n:>20}" for n in names))
    for size in scale["sizes"]:
        row = scale["rows"][str(size)]
        add(f"   {size:>8} " + " ".join(f"{row[n]['median_s']:>9.2f}s {row[n]['peak_rss_mib']:>6} MiB" for n in names))
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    for key, label in (("wall", "exponent, wall time"), ("above_smallest", "exponent, time above smallest"), ("largest_two", "exponent, two largest sizes")):
        add(f"   {label:<30}" + " ".join(f"{fmt(scale['exponents'][n][key]):>20}" for n in names))
    add("   targets: 5,000 features validate < 1 s, build < 5 s per target, exponent <= 1.1")
    add("")
    mono = results["monorepo"]
    add(f"4. monorepo: one build process, {len(mono['profiles'])} cloud targets, {mono['systems_features']}-feature systems")
    for count, row in mono["rows"].items():
        add(f"   {count:>3} systems: {row['wall_s']:>7.2f}s  {row['per_system_s']:.3f} s/system  peak {row['peak_rss_mib']} MiB")
    if mono["marginal_per_system_s"] is not None:
        add(f"   marginal cost per extra system: {mono['marginal_per_system_s']:.3f} s")
    if mono["two_processes_s"] is not None:
        add(f"   the same {mono['two_processes_systems']} systems in two concurrent processes (best case of --jobs 2): {mono['two_processes_s']:.2f}s")
    add("   target: 50 systems x 4 cloud targets < 20 s")
    add("")
    add("5. output size: largest artifact, and the one nearest its platform limit")
    for label, per_target in results["sizes"].items():
        for name, row in per_target.items():
            worst = row["largest_limited"]
            near = (
                "no limited artifact" if worst is None else f"{worst['path']} {worst['size']:,} {worst['unit']} = {worst['fraction']:.1%} of {worst['limit']:,}"
            )
            add(f"   {label:<10} {name:<10} largest {row['largest']['path']} ({row['largest']['bytes']:,} B); {near}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, sizes and systems: under ~2 minutes")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args()
    quick = args.quick
    sizes = [10, 100, 1000] if quick else [10, 100, 1000, 5000]
    counts = [1, 10] if quick else [1, 10, 50]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlcompile-bench-") as tmp:
        scratch = Path(tmp)
        results: dict = {"quick": quick, "python": platform.python_version(), "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpu"}
        print("cold CLI …", file=sys.stderr)
        results["cold"] = part_cold(3 if quick else 10)
        print("build per target …", file=sys.stderr)
        results["build"] = part_build(1 if quick else 5, scratch)
        print("scale …", file=sys.stderr)
        results["scale"] = part_scale(sizes, 1 if quick else 3, scratch, warm=not quick)
        print("monorepo …", file=sys.stderr)
        results["monorepo"] = part_monorepo(counts, scratch, two_processes=not quick)
        results["sizes"] = part_sizes(scratch, sizes[-1])
    results["total_s"] = time.perf_counter() - started
    print(table(results))
    print(f"\ntotal {results['total_s']:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
