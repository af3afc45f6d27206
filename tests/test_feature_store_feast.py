"""The Feast feature repositories the `local` and `kubeflow` builds generate, checked with Feast
itself, and the local feature-store loop: apply → point-in-time training set → materialise →
serve by entity key.

How each repository is checked with no network:

* local (`feature_repo/` of the local build): the sources staged as the run stages them,
  then Feast's own CLI in a temporary copy: `feast plan` and `feast apply` (file offline
  store, SQLite online store and registry, all inside the repository).
* kubeflow (gs:// parquet / BigQuery sources, Redis online store, gs:// registry): applying
  would reach the cloud, so `feature_store.yaml` is loaded by Feast's `load_repo_config`
  (which validates the offline and online store blocks against Feast's store config
  classes) and the definitions are imported by Feast's own repository parser
  (`parse_repo`, what `feast apply` runs first); the objects it finds are validated and
  serialised to their registry protos."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from build_support import ROOT, build

pytest.importorskip("feast")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

from mlcompile.errors import SpecError  # noqa: E402
from mlcompile.targets import feast_repo  # noqa: E402

EXAMPLES = ("churn", "ranker-gpu", "batch-scoring")
# the spec declares no dtype for join keys, so the entities leave Feast to infer it
pytestmark = pytest.mark.filterwarnings("ignore:Entity value_type will be mandatory:DeprecationWarning")


@pytest.fixture(autouse=True)
def _no_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEAST_USAGE", "False")


def _write(files: dict[str, tuple[str, bytes]], folder: Path) -> Path:
    """The build's feature_repo/ files into folder; the repository's path."""
    for path, (_, content) in files.items():
        if path.startswith(feast_repo.REPO_DIR + "/"):
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(content)
    return folder / feast_repo.REPO_DIR


def _kubeflow_profile(folder: Path, name: str, feature_store: str) -> Path:
    """A kubeflow profile named `name` (so that the examples' `overrides.<name>` apply)."""
    text = (ROOT / "targets" / "kfp-gke.yaml").read_text()
    text = text.replace("name: kfp-gke", f"name: {name}").split("  # Feast feature repository")[0] + feature_store
    profile = folder / "targets" / f"{name}.yaml"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(text)
    return profile


# ------------------------------------------------------------------ the generated files


def test_every_spec_dtype_maps_to_a_feast_type() -> None:
    import feast.types

    from mlcompile.spec.models import DType

    assert set(feast_repo.FEAST_TYPES) == set(get_args(DType))
    for dtype, name in feast_repo.FEAST_TYPES.items():
        assert isinstance(getattr(feast.types, name), feast.types.PrimitiveFeastType), dtype


@pytest.mark.parametrize("example", EXAMPLES)
def test_local_repo_passes_feast_plan_and_apply(example: str, tmp_path: Path) -> None:
    from mlcompile.local.run import prepare
    from mlcompile.runtime.contract import step_config
    from mlcompile.runtime.feast_store import stage_sources
    from mlcompile.runtime.features import FeatureStore

    spec = ROOT / "examples" / example / "mlcompile.yaml"
    files = build(spec, ROOT / "targets" / "local.yaml")
    assert {k for p, (k, _) in files.items() if p.startswith("feature_repo/")} == {"feast.feature_store_config", "feast.repo"}
    repo = _write(files, tmp_path)
    # the sources as the run stages them (parquet under data/, timestamps in UTC)
    prepared = prepare(str(spec), str(ROOT / "targets" / "local.yaml"))
    config = step_config(prepared.plan, prepared.plan.training.step("extract-features"))
    staged = stage_sources(FeatureStore(_absolute(config["features"], spec.parent)), repo)
    assert staged
    for command in ("plan", "apply"):
        done = subprocess.run([sys.executable, "-m", "feast.cli.cli", command], cwd=repo, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        for view in prepared.plan.features.views:
            assert f"feature view {view.name}" in done.stdout
    assert (repo / "data" / "registry.db").exists() and (repo / "data" / "online_store.db").exists()


def _absolute(features: dict, spec_dir: Path) -> dict:
    """file:// URIs made absolute (the runtime reads them relative to MLCOMPILE_SPEC_DIR)."""
    for source in features["sources"]:
        if source["uri"].startswith("file://") and not source["uri"].startswith("file:///"):
            source["uri"] = "file://" + str(spec_dir / source["uri"][len("file://") :])
    return features


def _load_with_feast(repo: Path, monkeypatch: pytest.MonkeyPatch) -> tuple:
    from feast.repo_config import load_repo_config
    from feast.repo_operations import parse_repo

    monkeypatch.syspath_prepend(str(repo))
    monkeypatch.chdir(repo)  # Feast names the definition modules by their path from here
    config = load_repo_config(repo, repo / "feature_store.yaml")
    contents = parse_repo(repo)
    for name in [m for m in sys.modules if m.endswith("_features")]:
        del sys.modules[name]  # the next example's module has its own definitions
    return config, contents


@pytest.mark.parametrize("example", EXAMPLES)
def test_kubeflow_repo_loads_with_feasts_config_and_repo_parser(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("redis")  # Feast's Redis online store config lives in a module that imports it
    monkeypatch.setenv("MLCOMPILE_SECRET_FEAST_REDIS_PASSWORD", "from-the-secret")
    spec = ROOT / "examples" / example / "mlcompile.yaml"
    files = build(spec, ROOT / "targets" / "kfp-gke.yaml")
    config, contents = _load_with_feast(_write(files, tmp_path), monkeypatch)
    assert config.offline_store.type == "file" and config.online_store.type == "redis"
    # a secret:// ref in the profile, expanded by Feast from the pod's environment
    assert config.online_store.connection_string == "redis-master.feast.svc.cluster.local:6379,password=from-the-secret"
    assert str(config.registry.path) == "gs://acme-ml-kfp/feast/registry.db"
    _assert_matches_plan(example, contents, "kfp-gke")


def test_kubeflow_repo_with_a_bigquery_offline_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("google.cloud.bigquery")  # Feast's BigQuery offline store config imports it
    pytest.importorskip("redis")
    folder = tmp_path / "churn"
    shutil.copytree(ROOT / "examples" / "churn", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    profile = _kubeflow_profile(folder, "gcp-prod", "  feature_store:\n    offline: {kind: bigquery, options: {project_id: acme-growth-prod, location: US}}\n")
    for other in ("kfp-gke", "aws-prod", "azure-prod"):  # the spec's overrides name them
        shutil.copy(ROOT / "targets" / f"{other}.yaml", folder / "targets" / f"{other}.yaml")
    files = build(folder / "mlcompile.yaml", profile)
    config, contents = _load_with_feast(_write(files, tmp_path / "build"), monkeypatch)
    assert config.offline_store.type == "bigquery" and config.offline_store.project_id == "acme-growth-prod"
    assert config.online_store.type == "redis" and config.provider == "gcp"
    assert config.registry.path == "gs://acme-ml-kfp/pipeline-root/feast/churn_prediction/registry.db"  # the default: beside the pipeline root
    tables = {s.name: s.table for s in contents.data_sources}
    assert tables == {"customer_activity_daily": "acme-growth-prod.crm.customer_activity_daily"}
    _assert_matches_plan("churn", contents, "gcp-prod", folder / "mlcompile.yaml", profile)


def _assert_matches_plan(example: str, contents, profile_name: str, spec: Path | None = None, profile: Path | None = None) -> None:
    """Feast found exactly the spec's entities, views (ttl, online, dtypes) and the feature
    service of the training features, and each object is valid and serialisable."""
    import feast.types

    from mlcompile.build import compile_system, resolve_profiles

    spec = spec or ROOT / "examples" / example / "mlcompile.yaml"
    profile = profile or ROOT / "targets" / f"{profile_name}.yaml"
    (result,) = compile_system(str(spec), resolve_profiles(str(spec), [str(profile)]), render=False, git_commit=None).results
    plan = result.plan
    # Feast's parser adds its own `__dummy` entity (for entity-less views): not ours
    assert sorted(e.name for e in contents.entities if not e.name.startswith("__")) == sorted(e.name for e in plan.features.entities)
    views = {v.name: v for v in contents.feature_views}
    assert sorted(views) == sorted(v.name for v in plan.features.views)
    for view in plan.features.views:
        found = views[view.name]
        found.ensure_valid()
        assert found.ttl.total_seconds() == view.ttl_seconds and found.online == view.online
        assert {f.name: f.dtype for f in found.schema} == {f.name: getattr(feast.types, feast_repo.FEAST_TYPES[f.dtype]) for f in view.features}
        assert found.entities == list(view.entities)
        assert found.to_proto().spec.name == view.name
    (service,) = contents.feature_services
    served = {f"{p.name}:{f.name}" for p in service.feature_view_projections for f in p.features}
    assert served == set(plan.training.step("extract-features").params["features"])
    for source in contents.data_sources:
        assert source.to_proto().name == source.name  # serialisable as the registry stores it


# ------------------------------------------------------------------ located refusals


def test_a_source_the_offline_store_cannot_read_is_a_located_error(tmp_path: Path) -> None:
    folder = tmp_path / "sys"
    shutil.copytree(ROOT / "examples" / "churn", folder, ignore=shutil.ignore_patterns(".mlcompile", "scores"))
    spec = folder / "mlcompile.yaml"
    spec.write_text(spec.read_text().replace("customer_activity_daily.parquet, format: parquet}", "customer_activity_daily.csv, format: csv}"))
    profile = _kubeflow_profile(folder, "kfp-gke", "")
    for other in ("gcp-prod", "aws-prod", "azure-prod"):
        shutil.copy(ROOT / "targets" / f"{other}.yaml", folder / "targets" / f"{other}.yaml")
    with pytest.raises(SpecError) as caught:
        build(spec, profile)
    (error,) = [d for d in caught.value.diagnostics if d.severity == "error"]
    # at the override that gave this profile the csv file
    line = next(i for i, text in enumerate(spec.read_text().splitlines(), 1) if "customer_activity_daily.csv, format: csv}" in text)
    assert (Path(error.file).name, error.line, error.path) == ("mlcompile.yaml", line, "features.sources[0].uri")
    assert "Feast's file offline store reads parquet files, not csv" in error.message and "(target kubeflow)" in error.message


def test_a_dtype_the_offline_store_cannot_hold_is_a_located_error(tmp_path: Path) -> None:
    folder = tmp_path / "ranker"
    shutil.copytree(ROOT / "examples" / "ranker-gpu", folder, ignore=shutil.ignore_patterns(".mlcompile"))
    profile = _kubeflow_profile(folder, "gcp-prod", "  feature_store:\n    offline: {kind: bigquery}\n")
    for other in ("kfp-gke", "aws-prod", "azure-prod"):
        shutil.copy(ROOT / "targets" / f"{other}.yaml", folder / "targets" / f"{other}.yaml")
    with pytest.raises(SpecError) as caught:
        build(folder / "mlcompile.yaml", profile)
    errors = {d.path: d.message for d in caught.value.diagnostics if d.severity == "error"}
    text = (folder / "mlcompile.yaml").read_text()
    views = [v for v in ("user_engagement", "item_popularity", "query_context")]
    index = {v: i for i, v in enumerate(sorted(views, key=lambda v: text.index(f"name: {v}")))}
    assert set(errors) == {f"features.views[{index['item_popularity']}].features[3].dtype", f"features.views[{index['query_context']}].features[0].dtype"}
    assert any("rating_avg' is float32: BigQuery has no 32-bit float" in m for m in errors.values())
    assert any("query_tokens' is int32: BigQuery has no 32-bit integer" in m for m in errors.values())


def test_a_literal_credential_in_the_store_options_is_refused(tmp_path: Path) -> None:
    from mlcompile.spec.models import KubeflowFeatureStore

    with pytest.raises(ValueError, match="options.password carries a credential"):
        KubeflowFeatureStore.model_validate({"online": {"kind": "redis", "options": {"connection_string": "redis:6379", "password": "hunter2"}}})
    with pytest.raises(ValueError, match="write it password=secret://NAME"):
        KubeflowFeatureStore.model_validate({"online": {"kind": "redis", "options": {"connection_string": "redis:6379,password=hunter2"}}})
