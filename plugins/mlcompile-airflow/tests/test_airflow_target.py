"""The `airflow` target, installed as its own distribution, builds examples/churn into DAG
files that Airflow's own DagBag imports with no error — and passes mlcompile's plugin test
kit: deterministic bytes, a complete manifest, located refusals, a golden build.

Airflow runs in a virtual environment of its own (its kubernetes client conflicts with
kfp's pin in mlcompile's extras), made once per tests/airflow-requirements.txt by uv and
kept in pytest's cache folder. Regenerate the golden build deliberately, then review it:

    MLCOMPILE_UPDATE_GOLDEN=1 pytest plugins/mlcompile-airflow/tests
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlcompile import testing

HERE = Path(__file__).parent
PLUGIN = HERE.parent
ROOT = PLUGIN.parents[1]
CHURN = ROOT / "examples" / "churn" / "mlcompile.yaml"
GOLDEN = HERE / "golden" / "churn" / "airflow-gke"
REQUIREMENTS = HERE / "airflow-requirements.txt"
PROFILE = "targets/airflow-gke.yaml"
# what examples/churn asks that Airflow cannot do, nulled for this profile: an online
# endpoint (Airflow serves no model), online views (nothing materialises them) and
# retraining on new rows (nothing emits that event)
AIRFLOW_OVERRIDE = {
    "features": {
        "sources": [
            {"name": "customer_activity_daily", "uri": "gs://acme-growth-lake/crm/customer_activity_daily.parquet", "format": "parquet"},
            {"name": "churn_labels", "uri": "gs://acme-growth-lake/crm/churn_labels.parquet", "format": "parquet"},
        ],
        "views": [{"name": "customer_activity", "online": False}, {"name": "customer_profile", "online": False}],
    },
    "deployment": {"batch": {"output": {"uri": "gs://acme-growth-lake/churn/churn_scores.parquet"}}, "online": None},
    "retraining": {"on_new_data": None},
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """mlcompile-airflow installed (by its pyproject.toml, as a user would) where mlcompile finds it."""
    site = testing.install_plugin(PLUGIN, tmp_path_factory.mktemp("airflow-site"))
    with testing.plugin_installed(site):
        yield site


def churn(override: dict[str, Any] | None) -> dict[str, Any]:
    data = yaml.safe_load(CHURN.read_text())
    if override is not None:
        data["overrides"]["airflow-gke"] = override
    return data


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """examples/churn with the override above, beside the repository's profiles and the plugin's."""
    shutil.copytree(ROOT / "targets", tmp_path / "targets")
    shutil.copy(PLUGIN / "targets" / "airflow.yaml", tmp_path / PROFILE)
    (tmp_path / "mlcompile.yaml").write_text(yaml.safe_dump(churn(AIRFLOW_OVERRIDE), sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_churn_builds_one_dag_per_pipeline_as_the_golden_build(plugin: Path, project: Path, request: pytest.FixtureRequest) -> None:
    built = testing.build("mlcompile.yaml", PROFILE, project / "out")
    testing.assert_manifest_complete(built, spec="mlcompile.yaml")
    assert built.plan is not None
    assert {path: kind for path, kind in built.kinds.items() if kind == "airflow.dag"} == {
        f"dags/{pipeline.name}.py": "airflow.dag" for pipeline in built.plan.pipelines()
    }
    update = request.config.getoption("--update-golden", default=False) or os.environ.get("MLCOMPILE_UPDATE_GOLDEN") == "1"
    testing.assert_matches_golden(built, GOLDEN, update=update, regenerate="MLCOMPILE_UPDATE_GOLDEN=1 pytest plugins/mlcompile-airflow/tests")


def test_the_build_is_deterministic_across_hash_seeds(plugin: Path, project: Path) -> None:
    testing.assert_deterministic("mlcompile.yaml", PROFILE, project / "determinism", hash_seeds=("4242",))


@pytest.mark.parametrize(
    ("nulled", "at", "message"),
    [
        ("online", "deployment.online", r"Airflow runs pipelines and serves no model: endpoint 'churn-scorer'"),
        ("on_new_data", "retraining.on_new_data", r"Airflow starts no run when source 'churn_labels' gets new rows"),
        ("views", "features.views[0]", r"nothing on Airflow materialises online view 'customer_activity'"),
    ],
)
def test_what_airflow_cannot_do_is_refused_at_the_spec(plugin: Path, project: Path, nulled: str, at: str, message: str) -> None:
    override = json.loads(json.dumps(AIRFLOW_OVERRIDE))
    {"online": override["deployment"], "on_new_data": override["retraining"], "views": override["features"]}[nulled].pop(nulled)
    (project / "refused.yaml").write_text(yaml.safe_dump(churn(override), sort_keys=False))
    testing.assert_refused("refused.yaml", PROFILE, at=at, message=message, out=project / "out")


def with_accelerator(project: Path, accelerator: dict[str, Any], cluster: str) -> str:
    """The project's spec training on `accelerator`, for the profile on a `cluster` cluster."""
    data = yaml.safe_load((project / "mlcompile.yaml").read_text())
    data["training"]["resources"]["accelerator"] = accelerator
    (project / "gpu.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    profile = yaml.safe_load((project / PROFILE).read_text())
    profile["settings"]["cluster"] = cluster
    (project / PROFILE).write_text(yaml.safe_dump(profile, sort_keys=False))
    return "gpu.yaml"


def test_an_accelerator_gets_the_clusters_resource_node_selector_and_toleration(plugin: Path, project: Path) -> None:
    spec = with_accelerator(project, {"type": "nvidia-t4", "count": 1}, "gke")
    train = testing.build(spec, PROFILE, project / "out").text("dags/churn-prediction-training.py").split("    train = ", 1)[1].split("\n    )\n", 1)[0]
    assert "limits={'cpu': '4', 'memory': '16Gi', 'nvidia.com/gpu': '1'}" in train
    assert "node_selector={'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4'}" in train  # GKE's name of the part
    assert "k8s.V1Toleration(**{'effect': 'NoSchedule', 'key': 'nvidia.com/gpu', 'operator': 'Exists'})" in train
    assert "startup_timeout_seconds=1800" in train  # a GPU node takes longer to scale up than a CPU one


def task_source(built: testing.Build, pipeline: str, task: str) -> str:
    """The source of one task's operator call in a generated DAG file."""
    return built.text(f"dags/{pipeline}.py").split(f"    {task} = ", 1)[1].split("\n    )\n", 1)[0]


def test_a_tuning_task_may_run_every_wave_of_trials(plugin: Path, project: Path) -> None:
    """6 trials, 2 at a time: three waves of the step's 1 h timeout, not one."""
    data = yaml.safe_load((project / "mlcompile.yaml").read_text())
    data["training"]["tuning"] = {
        "objective": {"metric": "roc_auc", "goal": "maximize"},
        "algorithm": "random",
        "max_trials": 6,
        "parallel_trials": 2,
        "params": {"learning_rate": {"type": "float", "min": 0.02, "max": 0.3, "scale": "log"}},
    }
    (project / "tuned.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    built = testing.build("tuned.yaml", PROFILE, project / "out")
    assert "execution_timeout=timedelta(seconds=10800)" in task_source(built, "churn-prediction-training", "tune")


def test_an_accelerator_the_cluster_lacks_is_refused_at_its_type(plugin: Path, project: Path) -> None:
    spec = with_accelerator(project, {"type": "tpu-v5e", "count": 4}, "eks")
    testing.assert_refused(spec, PROFILE, at="training.resources.accelerator.type", message=r"eks clusters have no tpu-v5e nodes")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("artifact_root", "/mnt/artifacts", r"String should match pattern"),  # a pod's local folder outlives no step
        ("schedule_interval", "@daily", r"'schedule_interval' is not a setting of platform 'airflow'"),
    ],
)
def test_the_profiles_settings_are_checked_at_the_profile(plugin: Path, project: Path, setting: str, value: str, message: str) -> None:
    profile = yaml.safe_load((project / PROFILE).read_text())
    profile["settings"][setting] = value
    (project / "targets" / "airflow-gke.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    testing.assert_refused("mlcompile.yaml", PROFILE, at=f"settings.{setting}", message=message, in_profile=True)


@pytest.fixture(scope="module")
def airflow_python(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a venv with Airflow: made by uv (pip when uv is missing) once per
    requirements file, kept in pytest's cache folder, staged and then renamed into place."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    venv = (Path(cache.mkdir("airflow-venvs")) if cache is not None else tmp_path_factory.mktemp("airflow-venvs")) / key
    python = venv / "bin" / "python"
    if python.exists():
        return python
    staging = venv.with_name(f"{key}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    uv = testing.uv_binary()
    if uv is not None:
        commands = [
            [uv, "venv", "--quiet", "--python", sys.executable, str(staging)],
            [uv, "pip", "install", "--quiet", "--python", str(staging / "bin" / "python"), "-r", str(REQUIREMENTS)],
        ]
    else:
        commands = [[sys.executable, "-m", "venv", str(staging)], [str(staging / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)]]
    for command in commands:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"Airflow venv made in {time.perf_counter() - started:.1f}s")
    try:
        os.replace(staging, venv)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return python


def container_trainer(project: Path) -> str:
    """examples/container-trainer, read from its kfp-gke tables, without the other things
    Airflow refuses (its online endpoint, its new-data trigger, tuning)."""
    data = yaml.safe_load((ROOT / "examples" / "container-trainer" / "mlcompile.yaml").read_text())
    override = {**data["overrides"]["kfp-gke"], "training": {"tuning": None}, "retraining": {"on_new_data": None}}
    override["deployment"] = {**override.get("deployment", {}), "online": None}
    data["overrides"]["airflow-gke"] = override
    (project / "container-trainer.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return "container-trainer.yaml"


def test_a_container_trainer_is_refused_at_its_container(plugin: Path, project: Path) -> None:
    """The contract promises a container trainer local paths in MLCOMPILE_*; a pod of
    KubernetesPodOperator stages nothing around the user's image, so it would get gs:// URIs."""
    testing.assert_refused(
        container_trainer(project), PROFILE, at="training.trainer.container", message=r"does not stage artifacts to local paths", out=project / "out"
    )


@pytest.mark.slow
def test_airflow_dagbag_imports_every_dag_with_no_error(plugin: Path, project: Path, airflow_python: Path, tmp_path: Path) -> None:
    """examples/churn built for Airflow and loaded into Airflow's own DagBag: no import
    error, and what Airflow made of each file is what the plan says."""
    folder = tmp_path / "dags"
    built = testing.build("mlcompile.yaml", PROFILE, project / "out")
    shutil.copytree(built.folder / "dags", folder)
    plan = built.plan
    assert plan is not None
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow-home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PYTHONPATH": ""}
    report_file = tmp_path / "dagbag.json"
    command = [str(airflow_python), str(HERE / "dagbag_report.py"), str(folder), str(report_file)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_file.read_text())
    assert report["import_errors"] == {}
    dags = report["dags"]
    assert sorted(dags) == sorted(p.name for p in plan.pipelines())
    assert_dags_follow_the_plan(plan, dags)

    # registration runs only when the gate passed; alert, email and retraining only on a breach
    training, monitoring = dags[plan.training.name]["tasks"], dags[plan.monitoring_pipeline.name]["tasks"]
    assert "gate-passed" in training["register"]["upstream"] and training["gate-passed"]["upstream"] == ["gate"]
    assert monitoring["breach"]["op_kwargs"] == {"task_ids": ["check-drift", "check-performance"]}
    assert monitoring["breach"]["trigger_rule"] == "all_done"  # a failed check does not hide the other's breach
    assert training["gate-passed"]["trigger_rule"] == "all_success"  # a failed gate registers nothing
    for task in ("alert", "trigger-retraining", "email-alert"):
        assert monitoring[task]["upstream"] == ["breach"], task
    assert monitoring["email-alert"]["to"] == ["growth-ml@acme.example", "retention-analytics@acme.example"]
    assert monitoring["email-alert"]["from_email"] == "ml-alerts@acme.example"  # the profile's: the smtp provider requires a sender

    # a breach's retraining trigger starts the training DAG at once: were it paused when
    # Airflow first sees it, the triggered runs would queue until someone unpaused it
    assert dags[plan.training.name]["is_paused_upon_creation"] is False

    # each run's artifacts live in a folder named by its run id, with no ':' or '+' (which
    # object stores and fsspec paths mishandle); the lineage keeps the run id as it is
    for task in training.values():
        if task["operator"] == "KubernetesPodOperator":
            rendered = task["rendered_arguments"]
            uris = [value.split("=", 1)[1] for flag, value in zip(rendered, rendered[1:]) if flag in ("--input", "--output")]
            uris = [uri for uri in uris if uri != "/airflow/xcom/return.json"]  # a decision goes to XCom
            run_folder = "gs://acme-ml-airflow/artifacts/churn-prediction/churn-prediction-training/scheduled__2024-01-01T02-00-00-00-00/"
            assert uris and all(uri.startswith(run_folder) for uri in uris), uris
            assert rendered[rendered.index("--pipeline-run") + 1] == "scheduled__2024-01-01T02:00:00+00:00"

    # a node pool scaled to zero and the large runtime image take minutes before a pod starts
    pods = [task for dag in dags.values() for task in dag["tasks"].values() if task["operator"] == "KubernetesPodOperator"]
    assert pods and {task["startup_timeout_seconds"] for task in pods} == {600}


def assert_dags_follow_the_plan(plan: Any, dags: dict[str, Any]) -> None:
    # every pipeline's schedule is its DAG's timetable
    for schedule in plan.schedules:
        assert (dags[schedule.pipeline]["cron"], dags[schedule.pipeline]["timezone"]) == (schedule.cron, schedule.timezone)
    for pipeline in plan.pipelines():
        tasks = dags[pipeline.name]["tasks"]
        for step in pipeline.steps:
            task = tasks[step.name]
            if step.kind == "trigger_retraining":  # the breach starts the training DAG
                assert (task["operator"], task["trigger_dag_id"]) == ("TriggerDagRunOperator", plan.training.name)
                continue
            assert task["operator"] == "KubernetesPodOperator" and (task["image"], task["cmds"]) == (step.image, list(step.command))
            assert {ref.step for ref in step.inputs} <= set(task["upstream"])  # a task runs after the producers of its inputs
            config = json.loads(task["arguments"][task["arguments"].index("--config") + 1])
            assert (config["step"], config["kind"], config["params"]) == (step.name, step.kind, json.loads(json.dumps(step.params)))
            assert task["do_xcom_push"] == any(a.type == "decision" for a in step.outputs)
