"""The azureml target: every file of every example build loads back through azure-ai-ml's
own loaders and carries the spec's values; builds are byte-stable; the build opens no
socket; check() refuses what Azure ML cannot express, naming the field."""

from __future__ import annotations

import json
import logging
import math
import socket
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from requires import require

require("azure.ai.ml")

from mlcompile import testing  # noqa: E402
from mlcompile.build import compile_system, resolve_profiles, write_builds  # noqa: E402
from mlcompile.plan.nodes import Plan  # noqa: E402
from mlcompile.targets.azureml import AzureMLTarget  # noqa: E402
from mlcompile.targets.azureml.check import check  # noqa: E402
from mlcompile.targets.capabilities import capability_refusals  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning", "ignore:.*marshmallow.*")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.name for p in ROOT.glob("examples/*/mlcompile.yaml"))
PROFILE = "targets/azure-prod.yaml"


def _compile(example: str, monkeypatch: pytest.MonkeyPatch, render: bool = True):
    monkeypatch.chdir(ROOT)
    spec = f"examples/{example}/mlcompile.yaml"
    return compile_system(spec, resolve_profiles(spec, [PROFILE]), render=render, git_commit=None)


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Plan, Path]]:
    out: dict[str, tuple[Plan, Path]] = {}
    mp = pytest.MonkeyPatch()
    try:
        for example in EXAMPLES:
            compilation = _compile(example, mp)
            (folder,) = write_builds(compilation.results, tmp_path_factory.mktemp(example))
            out[example] = (compilation.results[0].plan, folder)
    finally:
        mp.undo()
    return out


def _manifest(folder: Path) -> dict[str, str]:
    return {f["path"]: f["kind"] for f in json.loads((folder / "manifest.json").read_text())["files"]}


def _load(kind: str, path: Path):
    from azure.ai.ml import (
        load_batch_endpoint,
        load_component,
        load_data,
        load_feature_set,
        load_feature_store,
        load_feature_store_entity,
        load_job,
        load_online_deployment,
        load_online_endpoint,
    )
    from azure.ai.ml.entities import PipelineComponentBatchDeployment
    from azure.ai.ml.entities._feature_set.featureset_spec_metadata import FeaturesetSpecMetadata
    from azure.ai.ml.entities._load_functions import load_schedule

    loaders = {
        "azureml.pipeline_job": load_job,
        "azureml.pipeline_component": load_component,
        "azureml.online_endpoint": load_online_endpoint,
        "azureml.online_deployment": load_online_deployment,
        "azureml.batch_endpoint": load_batch_endpoint,
        "azureml.data": load_data,
        # azure-ai-ml 1.35's load_batch_deployment parses model deployments only (`az ml
        # batch-deployment create` dispatches on `type: pipeline`); this is the class's own loader
        "azureml.batch_deployment": lambda p: PipelineComponentBatchDeployment._load(yaml_path=p, data=__import__("yaml").safe_load(Path(p).read_text())),
        "azureml.schedule": load_schedule,
        "azureml.monitor_schedule": load_schedule,
        "azureml.feature_store": load_feature_store,
        "azureml.feature_store_entity": load_feature_store_entity,
        "azureml.feature_set": load_feature_set,
        "azureml.featureset_spec": FeaturesetSpecMetadata.load,  # also read through its feature set: tests/test_feature_store_azureml.py
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            return loaders[kind](str(path))
        finally:
            logging.disable(logging.NOTSET)


KNOWN_KINDS = {
    "azureml.pipeline_job", "azureml.pipeline_component", "azureml.online_endpoint", "azureml.online_deployment",
    "azureml.batch_endpoint", "azureml.batch_deployment", "azureml.data", "azureml.schedule", "azureml.monitor_schedule", "azure.monitor_autoscale",
    "azure.monitor_action_group", "azure.monitor_metric_alert",
    "azureml.feature_store", "azureml.feature_store_entity", "azureml.feature_set", "azureml.featureset_spec", "mlcompile.cost_estimate",
}  # fmt: skip


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_file_loads_back_through_the_sdk(example: str, builds) -> None:
    plan, folder = builds[example]
    manifest = _manifest(folder)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest) == on_disk
    assert set(manifest.values()) <= KNOWN_KINDS
    for path, kind in manifest.items():
        if kind.startswith("azure.monitor_") or kind == "mlcompile.cost_estimate":  # ARM bodies: test_azureml_alerts checks theirs
            json.loads((folder / path).read_text())
            continue
        entity = _load(kind, folder / path)
        assert entity is not None, path
        if kind == "azureml.pipeline_job":
            result = entity._validate()
            assert result.passed, (path, result.error_messages)
    text = "\n".join((folder / p).read_text() for p in manifest)
    assert str(ROOT) not in text and "/tmp/" not in text, "absolute path in the build"


@pytest.mark.parametrize("example", EXAMPLES)
def test_training_pipeline_carries_the_spec(example: str, builds) -> None:
    plan, folder = builds[example]
    job = _load("azureml.pipeline_job", folder / f"pipelines/{plan.training.name}.yml")
    assert job.display_name == plan.training.name
    assert job.experiment_name == plan.system
    assert _bare(job.settings.default_compute) == "serverless"
    assert job.tags["mlcompile-system"] == plan.system
    assert job.tags["mlcompile-spec-sha256"] == plan.spec_sha256
    assert set(job.jobs) == {s.name.replace("-", "_") for s in plan.training.steps}
    trainer = next(s for s in plan.training.steps if s.kind in ("train", "tune"))
    node = job.jobs[trainer.name]
    res = trainer.resources
    assert node.resources.instance_type == res.machine.name
    assert node.resources.instance_count == res.replicas
    if res.spot:
        assert node.queue_settings.job_tier.lower() == "spot"
    component = node.trial if trainer.kind == "tune" else node.component
    if res.replicas > 1:
        assert component.distribution.type == "pytorch"
    if trainer.uses_user_container:
        assert component.environment.image == trainer.image
        for name, value in trainer.params["env"].items():
            assert component.environment_variables[name] == value
        assert " ".join(trainer.command) in component.command
    # standard steps run on the profile's cluster
    assert _bare(job.jobs["gate"].compute) == plan.platform_settings["compute"]
    # the gate's decision guards registration
    register = job.jobs["register"]
    assert register.inputs["decision"].path == "${{parent.jobs.gate.outputs.decision}}"
    assert register.component.command.startswith("python -c ") and "; case $? in 0) python -m mlcompile.runtime register " in register.component.command
    gate_config = _config_of(job.jobs["gate"].component.command)
    assert [(g["metric"], g["comparison"], g["threshold"]) for g in gate_config["gates"]] == [(g.metric, g.comparison, g.threshold) for g in plan.gates]
    assert _config_of(register.component.command)["params"]["aliases"] == list(plan.registry.aliases)
    assert job.outputs["training_data"].name == f"{plan.system}-training-data"
    if trainer.resources.timeout_seconds and trainer.kind == "train":
        assert node.limits.timeout == trainer.resources.timeout_seconds


def _manifest_sha(folder: Path, path: str) -> str:
    return next(f["sha256"] for f in json.loads((folder / "manifest.json").read_text())["files"] if f["path"] == path)


def _bare(reference: str) -> str:
    """The SDK loads `azureml:NAME` references as NAME."""
    return reference.removeprefix("azureml:")


def _config_of(command: str) -> dict:
    import shlex

    words = shlex.split(command)
    return json.loads(words[words.index("--config") + 1])


def test_sweep_carries_search_space_objective_and_limits(builds) -> None:
    plan, folder = builds["ranker-gpu"]
    tuning = plan.tuning
    job = _load("azureml.pipeline_job", folder / f"pipelines/{plan.training.name}.yml")
    sweep = job.jobs["tune"]
    assert sweep.type == "sweep"
    assert sweep.objective.primary_metric == tuning.metric and sweep.objective.goal == tuning.goal
    assert sweep.limits.max_total_trials == tuning.max_trials
    assert sweep.limits.max_concurrent_trials == tuning.parallel_trials
    assert sweep.limits.trial_timeout == plan.training.step("tune").resources.timeout_seconds
    assert sweep.resources.instance_type == "Standard_ND96asr_v4" and sweep.resources.instance_count == 2
    # log scales are kept (loguniform over ln min..ln max), so sampling is random (check() warns)
    algorithm = sweep.sampling_algorithm
    assert (algorithm if isinstance(algorithm, str) else algorithm.type) == "random"
    space = sweep.search_space
    for param in tuning.params:
        dist = space[param.name]
        if param.type == "categorical":
            assert list(dist.values) == list(param.values)
        elif param.scale == "log":
            assert math.isclose(math.exp(dist.min_value), param.min) and math.isclose(math.exp(dist.max_value), param.max)
        else:
            assert (dist.min_value, dist.max_value) == (param.min, param.max)
    assert "MLCOMPILE_HYPERPARAMETERS=" in sweep.trial.command


@pytest.mark.parametrize("example", EXAMPLES)
def test_serving_carries_instance_type_scale_and_traffic(example: str, builds) -> None:
    plan, folder = builds[example]
    online = plan.online
    if online is None:
        assert not list(folder.glob("endpoints/*online*"))
        return
    endpoint = _load("azureml.online_endpoint", folder / f"endpoints/{online.name}.yml")
    # the rollout (deploy-online) sets which version each slot serves and the traffic split
    assert not endpoint.traffic
    assert endpoint.tags["mlcompile-spec-sha256"] == plan.spec_sha256
    expected = {"canary": ["blue", "green"], "blue_green": ["blue", "green"], "replace": ["blue"]}[online.strategy]
    deploy_step = next(s for p in plan.pipelines() for s in p.steps if s.kind == "deploy_online")
    pipeline = plan.training.name if deploy_step in plan.training.steps else f"{plan.system}-deploy"
    rollout = _config_of(_load("azureml.pipeline_job", folder / f"pipelines/{pipeline}.yml").jobs["deploy_online"].component.command)["serving"]
    assert (rollout["strategy"], rollout["canary_percent"], rollout["slots"]) == (online.strategy, online.canary_percent, expected)
    for slot in expected:
        deployment = _load("azureml.online_deployment", folder / f"endpoints/{online.name}-{slot}.yml")
        assert deployment.endpoint_name == online.name
        assert deployment.instance_type == online.resources.machine.name
        assert deployment.instance_count == online.min_replicas
        assert deployment.request_settings.request_timeout_ms == online.resources.timeout_seconds * 1000
        assert deployment.model is None
        assert rollout["deployments"][slot]["file_sha256"] == _manifest_sha(folder, f"endpoints/{online.name}-{slot}.yml")
        autoscale = json.loads((folder / f"endpoints/{online.name}-{slot}-autoscale.json").read_text())
        capacity = autoscale["properties"]["profiles"][0]["capacity"]
        assert capacity == {"minimum": str(online.min_replicas), "maximum": str(online.max_replicas), "default": str(online.min_replicas)}
        assert autoscale["properties"]["targetResourceUri"].endswith(f"/onlineEndpoints/{online.name}/deployments/{slot}")


@pytest.mark.parametrize("example", EXAMPLES)
def test_batch_endpoint_and_schedules(example: str, builds) -> None:
    plan, folder = builds[example]
    if plan.batch is not None:
        endpoint = _load("azureml.batch_endpoint", folder / f"endpoints/{plan.system}-batch.yml")
        assert endpoint.defaults.deployment_name == "default"
        deployment = _load("azureml.batch_deployment", folder / f"endpoints/{plan.system}-batch-default.yml")
        assert deployment.endpoint_name == endpoint.name
        assert deployment.settings["default_compute"] == plan.platform_settings["compute"]
        component = _load("azureml.pipeline_component", folder / f"components/{plan.batch.name}.yml")
        node = component.jobs["score_batch"]
        score = plan.batch.steps[0]
        assert _bare(node.compute) == plan.platform_settings["compute"]  # batch endpoints run on a cluster
        assert node.outputs["scores"].path == score.params["output_uri"]
        scheduled = _load("azureml.pipeline_job", folder / f"pipelines/{plan.batch.name}.yml").jobs["score_batch"]
        assert scheduled.resources.instance_type == score.resources.machine.name  # the scheduled job: serverless, sized by the spec
        assert scheduled.outputs["scores"].path == score.params["output_uri"]
    from mlcompile.targets.azureml._timezones import IANA_TO_WINDOWS

    for schedule in plan.schedules:
        loaded = _load("azureml.schedule", folder / f"schedules/{schedule.name}.yml")
        assert loaded.trigger.expression == schedule.cron
        assert loaded.trigger.time_zone == IANA_TO_WINDOWS[schedule.timezone]
        assert loaded.create_job.display_name == schedule.pipeline
    for trigger in plan.triggers:
        if trigger.kind == "new_data":
            sensor = _load("azureml.schedule", folder / f"schedules/{trigger.name}-sensor.yml")
            assert sensor.trigger.expression == "0 * * * *"
            assert _config_of(sensor.create_job.jobs["trigger_retraining"].component.command)["params"]["source"] == trigger.source


@pytest.mark.parametrize("example", EXAMPLES)
def test_model_monitor_carries_drift_signal_and_thresholds(example: str, builds) -> None:
    plan, folder = builds[example]
    monitoring = plan.monitoring
    monitor = _load("azureml.monitor_schedule", folder / f"schedules/{plan.system}-model-monitor.yml")
    schedule = next(s for s in plan.schedules if s.pipeline == plan.monitoring_pipeline.name)
    assert monitor.trigger.expression == schedule.cron
    signal = monitor.create_monitor.monitoring_signals["data-drift"]
    assert signal.features == [f.split(":", 1)[1] for f in monitoring.drift_features]
    metric = {"psi": "population_stability_index", "ks": "two_sample_kolmogorov_smirnov_test", "jensen_shannon": "jensen_shannon_distance"}[
        monitoring.drift_method
    ]
    assert getattr(signal.metric_thresholds.numerical, metric) == monitoring.drift_threshold
    assert _bare(signal.reference_data.input_data.path) == f"{plan.system}-training-data@latest"
    emails = sorted({a for alert in monitoring.alerts if alert["channel"] == "email" for a in alert["to"]})
    assert sorted(monitor.create_monitor.alert_notification.emails) == emails
    if plan.online is not None:
        assert _bare(monitor.create_monitor.monitoring_target.endpoint_deployment_id) == f"{plan.online.name}:blue"
    # breach → retraining is the monitoring pipeline's trigger-retraining step
    pipeline = _load("azureml.pipeline_job", folder / f"pipelines/{plan.monitoring_pipeline.name}.yml")
    if monitoring.on_breach == "retrain":
        node = pipeline.jobs["trigger_retraining"]
        assert set(node.inputs) == {s.name.removeprefix("check-") for s in plan.monitoring_pipeline.steps if s.kind in ("check_drift", "check_performance")}
        assert _config_of(node.component.command.split("; case $? in 0) ", 1)[1].split(";; ", 1)[0])["params"]["pipeline"] == plan.training.name


@pytest.mark.parametrize("example", EXAMPLES)
def test_builds_are_byte_stable_across_runs_and_hash_seeds(example: str, tmp_path: Path) -> None:
    """A build in a fresh interpreter under a fixed hash seed writes the golden bytes, which
    test_golden.py rebuilds in-process under this session's (random) seed: two runs, two seeds."""
    built = testing.build_in_subprocess(f"examples/{example}/mlcompile.yaml", PROFILE, tmp_path / "a", cwd=ROOT, hash_seed="12345")
    testing.assert_matches_golden(built, ROOT / "tests" / "golden" / example / "azure-prod")


def test_a_build_does_not_walk_the_call_stack_for_each_experimental_class(monkeypatch: pytest.MonkeyPatch) -> None:
    """azure-ai-ml lists the whole stack with source lines (inspect.stack()) to decide whether to
    log its "experimental class" line; mlcompile silences that line, so the SDK is told to skip
    it at once. The build's bytes are the goldens' either way (test_golden.py)."""
    import inspect

    walkers: list[str] = []
    stack = inspect.stack
    monkeypatch.setattr(inspect, "stack", lambda *args, **kwargs: walkers.append(sys._getframe(1).f_code.co_name) or stack(*args, **kwargs))
    from azure.ai.ml._utils import _experimental

    decide = _experimental._should_skip_warning
    assert _compile("churn", monkeypatch).results[0].files
    assert _experimental._should_skip_warning is decide  # put back after the build
    assert walkers and "_should_skip_warning" not in walkers  # the others: dsl.pipeline finding its caller's file


def test_build_opens_no_socket_except_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    real_connect = socket.socket.connect

    def guarded_connect(self, address):  # type: ignore[no-untyped-def]
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            opened.append(address)
            raise OSError(f"network access attempted: {address}")
        return real_connect(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(("getaddrinfo", host))
        raise OSError(f"name resolution attempted: {host}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(OSError("create_connection")))
    for example in EXAMPLES:
        compilation = _compile(example, monkeypatch)
        assert compilation.results[0].files
    assert opened == []


# ------------------------------------------------------------------ refusals


def _plan(example: str, monkeypatch: pytest.MonkeyPatch) -> Plan:
    return _compile(example, monkeypatch, render=False).results[0].plan


def _errors(plan: Plan) -> dict[str, str]:
    return {d.path: d.message for d in check(plan) if d.severity == "error"}


def test_examples_pass_check_with_only_located_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    for example in EXAMPLES:
        diagnostics = check(_plan(example, monkeypatch))
        assert [d for d in diagnostics if d.severity == "error"] == []
        for d in diagnostics:
            assert d.file.endswith("mlcompile.yaml") and d.line > 0 and d.path and "(target azureml)" in d.message


def test_refuses_sources_and_outputs_azure_cannot_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("churn", monkeypatch)
    sources = tuple(replace(s, uri="s3://bucket/x.parquet") if i == 0 else s for i, s in enumerate(plan.features.sources))
    batch = plan.batch
    score = replace(batch.steps[0], params={**batch.steps[0].params, "output_uri": "gs://bucket/scores.parquet"})
    errors = _errors(replace(plan, features=replace(plan.features, sources=sources), batch=replace(batch, steps=(score,))))
    assert "features.sources[0].uri" in errors and "s3://" in errors["features.sources[0].uri"]
    assert "deployment.batch.output.uri" in errors


def test_refuses_online_serving_azure_cannot_express(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("churn", monkeypatch)
    online = plan.online
    bad = replace(online, min_replicas=0, resources=replace(online.resources, spot=True, timeout_seconds=600))
    errors = _errors(replace(plan, online=bad))
    assert "deployment.online.replicas.min" in errors
    assert "deployment.online.resources.spot" in errors
    assert "deployment.online.resources.timeout" in errors
    no_rule = replace(online, autoscaling_metric=None, autoscaling_target=None)
    assert "deployment.online.replicas.max" in _errors(replace(plan, online=no_rule))


def test_refuses_tuning_azure_cannot_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("ranker-gpu", monkeypatch)
    grid = replace(plan.tuning, algorithm="grid")
    errors = _errors(replace(plan, tuning=grid))
    assert "training.tuning.params.dropout" not in errors  # a float range: refused by the core (capabilities)
    assert "training.tuning.params.dropout" in {d.path for d in capability_refusals(AzureMLTarget(), replace(plan, tuning=grid))}
    assert "training.tuning.params.warmup_steps.max" in errors or "training.tuning.params.warmup_steps.scale" in errors
    warnings_ = {d.path for d in check(plan) if d.severity == "warning"}
    assert "training.tuning.algorithm" in warnings_


def test_refuses_a_container_without_command(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("ranker-gpu", monkeypatch)
    steps = tuple(replace(s, command=(), args=()) if s.uses_user_container else s for s in plan.training.steps)
    errors = _errors(replace(plan, training=replace(plan.training, steps=steps)))
    assert "training.trainer.container.command" in errors


def test_refuses_search_parameters_that_collide_on_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("ranker-gpu", monkeypatch)
    params = (
        *plan.tuning.params,
        replace(plan.tuning.params[0], name="drop.out"),
        replace(plan.tuning.params[0], name="drop-out"),
        replace(plan.tuning.params[0], name="train"),
    )
    errors = _errors(replace(plan, tuning=replace(plan.tuning, params=params)))
    assert "training.tuning.params.drop-out" in errors and "training.tuning.params.train" in errors
    assert "training.tuning.params.drop.out" not in errors  # the first one keeps the name


def test_refuses_drift_methods_azure_lacks_for_categorical_features(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("churn", monkeypatch)  # drift over all features, `plan` is a string
    errors = _errors(replace(plan, monitoring=replace(plan.monitoring, drift_method="ks")))
    assert "monitoring.drift.method" in errors and "categorical" in errors["monitoring.drift.method"]


def test_refuses_time_zones_without_a_windows_name(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _plan("churn", monkeypatch)
    schedules = tuple(replace(s, timezone="America/Nuuk") for s in plan.schedules)
    errors = _errors(replace(plan, schedules=schedules))
    assert "retraining.timezone" in errors and "Windows" in errors["retraining.timezone"]


def test_target_module_does_not_import_the_sdk() -> None:
    code = "import sys; from mlcompile.targets.azureml import AzureMLTarget; from mlcompile.targets.azureml import check; print(any(m.startswith('azure') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
    assert AzureMLTarget.name == "azureml"


def test_validate_imports_no_cloud_sdk() -> None:
    """`mlcompile validate` runs check() for the azure profile without importing azure-ai-ml."""
    code = (
        "import sys\nfrom mlcompile.cli import main\n"
        "try:\n    main(['validate', 'examples/churn/mlcompile.yaml', '--target', 'targets/azure-prod.yaml'], prog_name='mlcompile')\n"
        "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout


def test_a_refusal_is_a_located_build_error(tmp_path: Path) -> None:
    """End to end: `mlcompile build` stops with file:line:col and the field's path."""
    spec = (ROOT / "examples/churn/mlcompile.yaml").read_text()
    azure_source = "abfss://crm@acmegrowthlake.dfs.core.windows.net/customer_activity_daily.parquet"
    assert azure_source in spec
    (tmp_path / "mlcompile.yaml").write_text(spec.replace(azure_source, "s3://acme-growth-lake-eu/crm/customer_activity_daily.parquet"))
    result = subprocess.run(
        [sys.executable, "-m", "mlcompile", "build", str(tmp_path / "mlcompile.yaml"), "--target", str(ROOT / PROFILE), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    error = next(line for line in result.stderr.splitlines() if ": error: " in line)
    assert error.startswith(str(tmp_path / "mlcompile.yaml") + ":") or error.startswith("mlcompile.yaml:")
    assert "features.sources[0].uri" in error and "s3://" in error and "(target azureml)" in error
    assert not (tmp_path / "out" / "azure-prod").exists()


def test_an_autoscale_rule_on_endpoint_requests_counts_only_its_deployment(builds) -> None:
    """RequestsPerMinute is an endpoint metric: each slot's rule filters it by the slot's
    `deployment` dimension, so a canary does not scale on the traffic its neighbour serves."""
    plan, folder = builds["ranker-gpu"]
    assert plan.online is not None and plan.online.autoscaling_metric == "requests_per_replica"
    for path in sorted(folder.glob("endpoints/*-autoscale.json")):
        setting = json.loads(path.read_text())
        slot = setting["properties"]["targetResourceUri"].rsplit("/", 1)[-1]
        for rule in setting["properties"]["profiles"][0]["rules"]:
            trigger = rule["metricTrigger"]
            assert trigger["metricName"] == "RequestsPerMinute"
            assert trigger["metricNamespace"] == "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
            assert trigger["dimensions"] == [{"DimensionName": "deployment", "Operator": "Equals", "Values": [slot]}]


def test_each_duty_runs_as_the_profiles_identity_for_it(builds) -> None:
    """azureml.identities: pipeline steps run as `pipelines`, the steps that submit jobs as
    `schedules`, the endpoint as `serving`, materialisation as `feature_store`."""
    plan, folder = builds["churn"]
    duties = plan.platform_settings["identities"]
    for path in sorted(folder.glob("pipelines/*.yml")):
        job = _load("azureml.pipeline_job", path)
        for name, node in job.jobs.items():
            duty = "schedules" if name == "trigger_retraining" else "pipelines"
            assert node.identity.client_id == duties[duty]["client_id"], (path.name, name)
    endpoint = _load("azureml.online_endpoint", folder / "endpoints/churn-scorer.yml")
    assert endpoint.identity.type == "user_assigned"
    assert [i.resource_id for i in endpoint.identity.user_assigned_identities] == [duties["serving"]["resource_id"]]
    deployment = _load("azureml.online_deployment", folder / "endpoints/churn-scorer-blue.yml")
    assert deployment.environment_variables["DEFAULT_IDENTITY_CLIENT_ID"] == duties["serving"]["client_id"]
    store = _load("azureml.feature_store", folder / "feature-store/feature-store.yaml")
    assert store.materialization_identity.resource_id == duties["feature_store"]["resource_id"]


def test_a_serving_identity_that_can_submit_jobs_is_refused(tmp_path: Path) -> None:
    profile = (ROOT / PROFILE).read_text()
    serving = next(line for line in profile.splitlines() if line.strip().startswith("serving: {resource_id"))
    pipelines = next(line for line in profile.splitlines() if line.strip().startswith("pipelines: {resource_id"))
    (tmp_path / "azure-prod.yaml").write_text(profile.replace(serving, pipelines.replace("pipelines:", "serving:")))
    result = subprocess.run(
        [sys.executable, "-m", "mlcompile", "validate", str(ROOT / "examples/churn/mlcompile.yaml"), "--target", str(tmp_path / "azure-prod.yaml")],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    error = next(line for line in result.stderr.splitlines() if ": error: " in line)
    assert error.startswith(("azure-prod.yaml:", str(tmp_path / "azure-prod.yaml") + ":")) and "azureml.identities" in error
    assert "must not be able to submit jobs" in error
