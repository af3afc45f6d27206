"""Secrets: credentials are refused wherever they are written, and `secret://` references
compile to each platform's own secret mechanism and are resolved only at run time.

* the scanner (mlcompile.secrets) finds each kind of credential in a spec, a profile, an
  override nested anywhere, and generated output, at its exact place;
* it stays quiet on everything mlcompile ships (examples, profiles, golden builds);
* each platform's compiled secret mechanism is read back with the platform's own types;
* the runtime resolver reads each platform's secret store (moto, local stand-ins), and a
  secret's value never appears in a build.

The credentials below are fakes in the shape of real ones (AWS's documented example key id,
made-up tokens): they must be caught exactly like real ones."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlcompile import secret_checks, secret_locators, secrets
from mlcompile.cli import main
from mlcompile.runtime.contract import env_name

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "tests" / "errors" / "_base"

# one fake of each kind the scanner knows, written as a YAML scalar would hold it
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGcY\n-----END RSA PRIVATE KEY-----\n"
FAKES = {
    "an AWS access key id": "AKIAIOSFODNN7EXAMPLE",
    "an AWS secret access key": "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "a GCP service account key": json.dumps({"type": "service_account", "private_key_id": "3f1c0e9d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e", "private_key": "…"}),
    "an Azure connection string key": "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=q0Zl3mB9xY2vT8kR4nW6pE1sD7fG5hJ3cV0bN8mQ2aL9zX4==;EndpointSuffix=core.windows.net",
    "an Azure SAS token": "https://acme.blob.core.windows.net/c/f?sv=2022-11-02&sig=Xq1wE2rT3yU4iO5pA6sD7fG8hJ9kL0zXcVbNm%3D",
    "an Azure AD client secret": "xY18Q~" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z",
    "a private key": PEM,
    "a GitHub token": "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "a Slack token": "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUv",
    "a Slack webhook URL": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX",
    "a JSON web token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "a URI with a password in it": "postgresql://etl:hunter2@db.internal:5432/sales",
}


def _invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(main, args, catch_exceptions=True)


def _user_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    return result.stderr


def _workspace(tmp_path: Path) -> Path:
    shutil.copytree(BASE / "targets", tmp_path / "targets")
    shutil.copy(BASE / "minimal.yaml", tmp_path / "mlcompile.yaml")
    return tmp_path


def _yaml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


# ------------------------------------------------------------------ the patterns


@pytest.mark.parametrize("what", sorted(FAKES))
def test_each_kind_of_credential_is_recognised_in_text(what: str) -> None:
    text = "first line\nvalue: " + FAKES[what] + "\n"
    findings = secrets.scan_text(text)
    assert findings and {f.what for f in findings} == {what}


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "9f" * 32,  # an image digest
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a bare sha256
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/train@sha256:" + "ab" * 32,
        "arn:aws:iam::123456789012:role/SageMakerPipelines",
        "abfss://sales@acme.dfs.core.windows.net/events/",  # user@host is no password
        "git+ssh://git@github.com/acme/ml.git",
        "https://user:${PASSWORD}@db/x",  # a placeholder, resolved elsewhere
        "secret://growth-alerts-webhook",
        "TOKENIZERS_PARALLELISM: false",
        "max_tokens: 4096",
        "token_pattern: (?u)\\b\\w\\w+\\b",
        "AKIA-not-a-key",
        "projects/acme-ml/secrets/webhook/versions/latest",
    ],
)
def test_ordinary_values_are_not_taken_for_credentials(value: str) -> None:
    assert secrets.scan_text(value) == []


def test_a_password_with_no_user_is_a_password() -> None:
    """Azure Cache for Redis URLs carry the access key alone: rediss://:KEY@host:6380."""
    (finding,) = secrets.scan_text("MLCOMPILE_AZUREML_REDIS_URL=rediss://:Zt8q2LmX0vB7nR4k@acme-fs.redis.cache.windows.net:6380/0")
    assert finding.what == "a URI with a password in it"


def test_a_credential_named_key_needs_a_random_looking_value_to_be_flagged() -> None:
    assert secrets.scan_text("api_key: my-api-key-name-here") == []
    assert secrets.scan_text("password: correct horse battery staple") == []
    (finding,) = secrets.scan_text('{"api_key": "Zt8q2LmX0vB7nR4kW9pD3sF6"}')
    assert finding.what == "a secret value in 'api_key'"


def test_text_embedded_as_json_in_a_string_is_scanned_too() -> None:
    """Pipelines carry step configs as JSON inside YAML strings: quotes come escaped."""
    text = '- \'{"params":{"auth_token":"Zt8q2LmX0vB7nR4kW9pD3sF6"}}\'\n'
    (finding,) = secrets.scan_text(text)
    assert finding.text == "Zt8q2LmX0vB7nR4kW9pD3sF6"
    assert secrets.line_col(text, finding.offset) == (1, 29)


# ------------------------------------------------------------------ specs and profiles


@pytest.mark.parametrize("what", sorted(FAKES))
def test_a_credential_in_a_spec_is_reported_at_its_value(what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    spec = (work / "mlcompile.yaml").read_text()
    spec = spec.replace("  name: churn\n", f"  name: churn\n  description: {_yaml_string(FAKES[what])}\n")
    (work / "mlcompile.yaml").write_text(spec)

    stderr = _user_error(_invoke(["validate", "mlcompile.yaml"], work, monkeypatch))

    assert f"mlcompile.yaml:5:16: error: metadata.description: looks like {what}: credentials must not be written in a spec\n" in stderr
    assert "hint: store it in your secret manager and write secret://<name>" in stderr


def test_a_credential_nested_in_an_override_is_reported_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    spec = (work / "mlcompile.yaml").read_text()
    spec += (
        "    training:\n      trainer:\n        sklearn:\n          params: {warm_start: true, extra: {nested: [ok, " + FAKES["an AWS access key id"] + "]}}\n"
    )
    (work / "mlcompile.yaml").write_text(spec)

    stderr = _user_error(_invoke(["validate", "mlcompile.yaml"], work, monkeypatch))

    assert "mlcompile.yaml:43:59: error: overrides.azure-prod.training.trainer.sklearn.params.extra.nested[1]: looks like an AWS access key id" in stderr


def test_a_service_account_key_written_as_yaml_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a string holding JSON: the key file's fields pasted as a mapping."""
    work = _workspace(tmp_path)
    spec = (work / "mlcompile.yaml").read_text()
    spec += "    metadata: {labels: {type: service_account, private_key: redacted}}\n"
    (work / "mlcompile.yaml").write_text(spec)
    stderr = _user_error(_invoke(["validate", "mlcompile.yaml"], work, monkeypatch))
    assert "mlcompile.yaml:40:61: error: overrides.azure-prod.metadata.labels.private_key: looks like a GCP service account key" in stderr


def test_a_key_that_is_a_credential_is_reported_at_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    spec = (work / "mlcompile.yaml").read_text()
    spec = spec.replace("  name: churn\n", "  name: churn\n  labels: {" + FAKES["an AWS access key id"] + ": x}\n")
    (work / "mlcompile.yaml").write_text(spec)
    stderr = _user_error(_invoke(["validate", "mlcompile.yaml"], work, monkeypatch))
    assert "mlcompile.yaml:5:12: error: metadata.labels.AKIA***: a key that looks like an AWS access key id" in stderr
    assert "AKIAIOSFODNN7EXAMPLE" not in stderr, "the key is shown redacted, in every message about it"


def test_a_random_value_under_a_credential_named_key_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    spec = (work / "mlcompile.yaml").read_text()
    spec = spec.replace("LogisticRegression}", "LogisticRegression, params: {api_token: Zt8q2LmX0vB7nR4kW9pD3sF6}}")
    (work / "mlcompile.yaml").write_text(spec)
    stderr = _user_error(_invoke(["validate", "mlcompile.yaml"], work, monkeypatch))
    assert "mlcompile.yaml:26:87: error: training.trainer.sklearn.params.api_token: looks like a secret value in 'api_token'" in stderr


@pytest.mark.parametrize("what", ["an AWS access key id", "a URI with a password in it", "a private key"])
def test_a_credential_in_a_profile_is_reported(what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    profile = (work / "targets" / "aws-prod.yaml").read_text()
    profile = profile.replace("metadata: {name: aws-prod}", "metadata: {name: aws-prod, description: " + _yaml_string(FAKES[what]) + "}")
    (work / "targets" / "aws-prod.yaml").write_text(profile)
    stderr = _user_error(_invoke(["validate", "mlcompile.yaml", "--target", "targets/aws-prod.yaml"], work, monkeypatch))
    assert f"targets/aws-prod.yaml:3:41: error: metadata.description: looks like {what}" in stderr


def test_credential_named_settings_of_a_profile_take_only_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party target's settings: a password is refused even when it looks like a word."""
    from mlcompile.spec.loader import load_yaml_file

    (tmp_path / "toy.yaml").write_text(
        "apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: toy-prod}\nplatform: toy\n"
        "settings:\n  db: {user: etl, password: hunter2, token_file: secret://db-token}\n"
    )
    document = load_yaml_file(tmp_path / "toy.yaml", "toy.yaml")
    from mlcompile.spec.checks import check_literal_secrets

    (found,) = check_literal_secrets(document.data, document.source_map)
    assert found.render() == (
        "toy.yaml:6:29: error: settings.db.password: 'password' looks like a credential: write it as a secret:// reference\n"
        "  hint: for example secret://password"
    )


# ------------------------------------------------------------------ nothing shipped is flagged


def _shipped_files() -> list[Path]:
    roots = ["examples", "targets", "docs", "schemas", "tests/golden", "tests/errors/_base", "tests/fixtures", "src/mlcompile/templates"]
    return sorted(
        p for root in roots for p in (REPO / root).rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json", ".md", ".txt", ".py", ".csv", "")
    )


def test_no_false_positive_in_shipped_examples_profiles_docs_and_golden_builds() -> None:
    files = _shipped_files()
    assert len(files) > 100
    flagged = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if secrets.scan_text(text):
            flagged[str(path.relative_to(REPO))] = [f.what for f in secrets.scan_text(text)]
    assert flagged == {}


@pytest.mark.parametrize("example", ["churn", "batch-scoring", "ranker-gpu"])
def test_every_example_validates_against_every_shipped_profile(example: str, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _invoke(["validate", f"examples/{example}/mlcompile.yaml", "--target", "targets"], REPO, monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert "looks like" not in result.stderr


def test_a_credential_inside_a_longer_string_of_a_spec_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`KEY=value` in an argument is judged like a mapping entry would be."""
    work = _workspace(tmp_path)
    spec = (work / "mlcompile.yaml").read_text()
    spec = spec.replace("  name: churn\n", "  name: churn\n  description: connect with DB_PASSWORD=Zt8q2LmX0vB7nR4kW9pD3sF6 please\n")
    (work / "mlcompile.yaml").write_text(spec)
    stderr = _user_error(_invoke(["validate", "mlcompile.yaml"], work, monkeypatch))
    assert "mlcompile.yaml:5:16: error: metadata.description: looks like a secret value in 'DB_PASSWORD'" in stderr


# ------------------------------------------------------------------ generated output

LOCAL_PROFILE = "apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: local}\nplatform: local\n"


def _leaky_local_target(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """A toy target for tests: the local target plus a launch script that joins the trainer's
    arguments without spaces (`script` formats them) — how a careless target could assemble
    a credential that no single spec value shows."""
    from mlcompile.targets.base import OutputFile
    from mlcompile.targets.local import LocalTarget

    original = LocalTarget.render

    def render(self, plan):  # type: ignore[no-untyped-def]
        (train,) = [s for s in plan.training.steps if s.kind == "train"]
        joined = "".join(train.args)
        decoded = base64.b64decode(joined).decode() if "{decoded}" in script else ""
        body = script.format(joined=joined, decoded=decoded)
        return [*original(self, plan), OutputFile("launch/train.sh", "toy.script", body.encode())]

    monkeypatch.setattr(LocalTarget, "render", render)


def _container_spec(work: Path, args: list[str]) -> None:
    spec = (work / "mlcompile.yaml").read_text()
    spec = spec.replace(
        "    sklearn: {estimator: sklearn.linear_model.LogisticRegression}\n",
        "    container: {image: ghcr.io/acme/train:1, command: [python, train.py], args: " + json.dumps(args) + "}\n",
    )
    (work / "mlcompile.yaml").write_text(spec)
    (work / "targets" / "local.yaml").write_text(LOCAL_PROFILE)


def test_generated_output_that_holds_a_credential_is_refused_and_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two halves of a key id, harmless alone, joined by a target: the build stops before
    writing, at the line and column of the generated file, and names the spec value."""
    work = _workspace(tmp_path)
    _container_spec(work, ["AKIAIOSF", "ODNN7EXAMPLE"])
    _leaky_local_target(monkeypatch, "#!/bin/sh\nexec python train.py \\\n  --key {joined}\n")
    (work / "build" / "local").mkdir(parents=True)
    (work / "build" / "local" / "previous.txt").write_text("the previous build\n")

    stderr = _user_error(_invoke(["build", "mlcompile.yaml", "--target", "targets/local.yaml", "--out", "build"], work, monkeypatch))

    assert stderr.splitlines()[-3:] == [
        "build/local/launch/train.sh:3:9: error: generated output looks like it holds an AWS access key id (profile 'local'): the build was not written",
        "  hint: it comes from mlcompile.yaml:26:82 (training.trainer.container.args[0]); store it in your secret manager and write secret://<name>",
        "1 error",
    ]
    assert sorted(p.name for p in (work / "build").rglob("*")) == ["local", "previous.txt"]


def test_with_several_specs_a_leak_in_one_writes_none_of_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _leaky_local_target(monkeypatch, "exec python train.py --key {joined}\n")
    for name, args in (("clean", ["--epochs", "3"]), ("leaky", ["AKIAIOSF", "ODNN7EXAMPLE"])):
        work = _workspace(tmp_path / name)
        _container_spec(work, args)
        (work / "mlcompile.yaml").write_text((work / "mlcompile.yaml").read_text().replace("name: churn\n", f"name: churn-{name}\n", 1))
    shutil.copytree(tmp_path / "clean" / "targets", tmp_path / "targets")

    stderr = _user_error(
        _invoke(["build", "clean/mlcompile.yaml", "leaky/mlcompile.yaml", "--target", "targets/local.yaml", "--out", "build"], tmp_path, monkeypatch)
    )

    assert "build/churn-leaky/local/launch/train.sh:1:28: error: generated output looks like it holds an AWS access key id" in stderr
    assert not (tmp_path / "build" / "churn-clean").exists()


def test_a_credential_no_spec_value_shows_is_still_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Base64 in the spec, decoded by the target: not traceable, still caught."""
    work = _workspace(tmp_path)
    _container_spec(work, [base64.b64encode(FAKES["a GitHub token"].encode()).decode()])
    _leaky_local_target(monkeypatch, "TOKEN_FILE=/dev/null\nGH={decoded}\n")

    stderr = _user_error(_invoke(["build", "mlcompile.yaml", "--target", "targets/local.yaml", "--out", "build"], work, monkeypatch))

    assert "build/local/launch/train.sh:2:4: error: generated output looks like it holds a GitHub token (profile 'local')" in stderr
    assert "hint: mlcompile writes secret:// references, never their values" in stderr
    assert not (work / "build").exists() or not any((work / "build").rglob("*.sh"))


def test_check_outputs_reports_every_finding_with_its_place() -> None:
    from mlcompile.targets.base import OutputFile

    content = "a: 1\nkey: " + FAKES["an AWS access key id"] + "\nurl: " + FAKES["a URI with a password in it"] + "\n"
    found = secret_checks.check_outputs("aws-prod", [OutputFile("pipeline.json", "x", content.encode())], "out/aws-prod")
    assert [(d.file, d.line, d.col) for d in found] == [("out/aws-prod/pipeline.json", 2, 6), ("out/aws-prod/pipeline.json", 3, 6)]


# ------------------------------------------------------------------ secret:// on each platform
#
# The golden builds of examples/ranker-gpu (a trainer env HF_TOKEN: secret://search-hf-read-token
# and a webhook secret://search-relevance-pager), read back with each platform's own types.

GOLDEN = REPO / "tests" / "golden" / "ranker-gpu"
PAGER, HF = "search-relevance-pager", "search-hf-read-token"
PAGER_ENV = "MLCOMPILE_SECRET_SEARCH_RELEVANCE_PAGER"


def test_env_names_and_references() -> None:
    assert env_name("growth-ml.alerts/webhook") == "MLCOMPILE_SECRET_GROWTH_ML_ALERTS_WEBHOOK"
    assert secrets.refs_in({"env": {"A": "secret://b", "C": "plain"}, "alerts": [{"url": "secret://a"}, {"url": "secret://b"}]}) == ["a", "b"]


def test_kubeflow_injects_kubernetes_secrets_through_the_platform_spec() -> None:
    """kfp-kubernetes' KubernetesExecutorConfig: Secret NAME, key `value`."""
    import yaml
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    def executors(pipeline: str) -> dict[str, k8s_pb2.KubernetesExecutorConfig]:
        _, platform = yaml.safe_load_all((GOLDEN / "kfp-gke" / "pipelines" / f"{pipeline}.yaml").read_text())
        spec = json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
        found = {}
        for name, config in spec.platforms["kubernetes"].deployment_spec.executors.items():
            found[name] = json_format.ParseDict(json_format.MessageToDict(config), k8s_pb2.KubernetesExecutorConfig())
        return found

    alert = executors("search-ranker-monitoring")["exec-alert"]
    (secret,) = alert.secret_as_env
    assert secret.secret_name == PAGER
    assert [(k.secret_key, k.env_var) for k in secret.key_to_env] == [("value", PAGER_ENV)]
    # tuning runs as a Katib experiment: its trial pods take the Secret through secretKeyRef
    experiment = yaml.safe_load((GOLDEN / "kfp-gke" / "training" / "tune-experiment.yaml").read_text())
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": HF, "key": "value"}}} in list(_mappings(experiment))


def _mappings(data: object):  # type: ignore[no-untyped-def]
    if isinstance(data, dict):
        yield data
        for value in data.values():
            yield from _mappings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _mappings(value)


def test_vertex_steps_carry_the_secret_manager_version_they_read() -> None:
    """aiplatform_v1 PipelineJob: the alert step's container env names the secret's version,
    and the trainer's CustomJob keeps a placeholder its launcher fills at run time."""
    from google.cloud.aiplatform_v1 import types as gca
    from google.protobuf import json_format

    body = json.loads((GOLDEN / "gcp-prod" / "vertex" / "pipeline-jobs" / "search-ranker-monitoring.json").read_text())
    job = gca.PipelineJob.wrap(json_format.ParseDict(body, gca.PipelineJob.pb()()))
    spec = json_format.MessageToDict(gca.PipelineJob.pb(job).pipeline_spec)
    env = spec["deploymentSpec"]["executors"]["exec-alert"]["container"]["env"]
    assert env == [{"name": PAGER_ENV, "value": f"secretmanager:projects/acme-ml-prod/secrets/{PAGER}/versions/latest"}]
    tuning = json.loads((GOLDEN / "gcp-prod" / "vertex" / "jobs" / "tune-hyperparameter-tuning-job.json").read_text())
    parsed = json_format.ParseDict(tuning, gca.HyperparameterTuningJob.pb()())
    (container_env,) = [e for e in parsed.trial_job_spec.worker_pool_specs[0].container_spec.env if e.name == "HF_TOKEN"]
    assert container_env.value == "{{secret:" + HF + "}}"
    training = json.loads((GOLDEN / "gcp-prod" / "vertex" / "pipeline-jobs" / "search-ranker-training.json").read_text())
    launcher = training["pipelineSpec"]["deploymentSpec"]["executors"]["exec-tune"]["container"]
    assert launcher["env"] == [{"name": "MLCOMPILE_SECRET_SEARCH_HF_READ_TOKEN", "value": f"secretmanager:projects/acme-ml-prod/secrets/{HF}/versions/latest"}]


def test_sagemaker_steps_carry_the_secrets_manager_arn_botocore_accepts() -> None:
    """The processing job's Environment, checked against botocore's shape of it."""
    import re

    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("CreateProcessingJobRequest").members["Environment"]
    definition = json.loads((GOLDEN / "aws-prod" / "pipelines" / "search-ranker-monitoring.definition.json").read_text())
    (alert,) = [s for s in _sagemaker_steps(definition["Steps"]) if s["Name"].startswith("alert")][:1]
    environment = alert["Arguments"]["Environment"]
    assert environment == {PAGER_ENV: f"secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:{PAGER}"}
    for key, value in environment.items():
        assert re.fullmatch(shape.key.metadata["pattern"], key) and len(key) <= shape.key.metadata["max"]
        assert re.fullmatch(shape.value.metadata["pattern"], value) and len(value) <= shape.value.metadata["max"]


def _sagemaker_steps(steps: list[dict]) -> list[dict]:
    found = []
    for step in steps:
        found.append(step)
        for branch in ("IfSteps", "ElseSteps"):
            found += _sagemaker_steps(step.get("Arguments", {}).get(branch, []))
    return found


def test_azureml_steps_carry_the_key_vault_secret_azure_ai_ml_loads() -> None:
    from azure.ai.ml import load_job

    job = load_job(GOLDEN / "azure-prod" / "pipelines" / "search-ranker-monitoring.yml")
    alert = job.jobs["alert"]
    variables = alert.environment_variables or alert.component.environment_variables
    assert variables[PAGER_ENV] == f"keyvault:{PAGER}"  # the workspace's Key Vault


def test_a_profile_may_name_the_key_vault() -> None:
    settings = {"key_vault": "acme-ml-kv"}
    assert secret_locators.locator("azureml", settings, "hook") == "keyvault:https://acme-ml-kv.vault.azure.net/secrets/hook"
    assert secret_locators.locator("azureml", {"key_vault": "https://kv.example.net/"}, "hook") == "keyvault:https://kv.example.net/secrets/hook"
    assert secret_locators.locator("kubeflow", {}, "hook") is None  # Kubernetes injects the value itself


# ------------------------------------------------------------------ resolving at run time

import sys  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "stand_ins"))
from json_service import JsonService  # noqa: E402

from mlcompile.runtime import secrets as runtime_secrets  # noqa: E402

VALUE = "https://hooks.example.net/pager/Zt8q2LmX0vB7nR4kW9pD3sF6"


class SecretStores(JsonService):
    """Secret Manager's `versions.access`, Key Vault's `GET /secrets/{name}` and ARM's
    workspace GET, as they answer; records each request's path and Authorization header."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__()
        self.values = values
        self.requests: list[tuple[str, str | None]] = []

    def respond(self, method, url, raw, content_type):  # type: ignore[no-untyped-def]
        path = url.path
        if path.startswith("/v1/projects/") and path.endswith(":access"):
            name = path.split("/secrets/")[1].split("/")[0]
            if name not in self.values:
                return 404, {"error": {"code": 404, "status": "NOT_FOUND"}}
            return 200, {"name": path[4:-7], "payload": {"data": base64.b64encode(self.values[name].encode()).decode(), "dataCrc32c": "0"}}
        if path.startswith("/secrets/") and "api-version=7.4" in url.query:
            name = path.split("/")[2]
            return (
                (200, {"value": self.values[name], "id": f"https://kv/secrets/{name}/1"})
                if name in self.values
                else (404, {"error": {"code": "SecretNotFound"}})
            )
        if path.startswith("/hook/") and method == "POST":  # the webhook the pager secret names
            return 200, {"ok": True}
        if "/workspaces/" in path:
            return 200, {"properties": {"keyVault": "/subscriptions/s/resourceGroups/g/providers/Microsoft.KeyVault/vaults/acme-ws-kv"}}
        return 404, {}


@pytest.fixture
def stores(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    service = SecretStores({PAGER: VALUE})
    original = service.respond

    def recording(method, url, raw, content_type):  # type: ignore[no-untyped-def]
        service.requests.append((url.path, None))
        return original(method, url, raw, content_type)

    service.respond = recording  # type: ignore[method-assign]
    monkeypatch.setattr(runtime_secrets, "_azure_token", lambda scope: f"token-for-{scope}")
    with service:
        yield service


def test_locally_a_secret_comes_from_its_environment_variable_or_the_secrets_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PAGER_ENV, raising=False)
    with pytest.raises(runtime_secrets.SecretUnavailable, match=f"set {PAGER_ENV}"):
        runtime_secrets.resolve("secret://" + PAGER)
    (tmp_path / "secrets.json").write_text(json.dumps({PAGER: "from-the-file"}))
    monkeypatch.setenv("MLCOMPILE_SECRETS_FILE", str(tmp_path / "secrets.json"))
    assert runtime_secrets.resolve("secret://" + PAGER) == "from-the-file"
    monkeypatch.setenv(PAGER_ENV, "from-the-environment")
    assert runtime_secrets.resolve("secret://" + PAGER) == "from-the-environment"
    assert runtime_secrets.resolve("not a reference") == "not a reference"


def test_vertex_reads_secret_manager(stores: SecretStores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCOMPILE_SECRETMANAGER_ENDPOINT", stores.url)
    monkeypatch.setenv(PAGER_ENV, f"secretmanager:projects/acme-ml-prod/secrets/{PAGER}/versions/latest")
    assert runtime_secrets.resolve("secret://" + PAGER) == VALUE
    assert stores.requests == [(f"/v1/projects/acme-ml-prod/secrets/{PAGER}/versions/latest:access", None)]
    monkeypatch.setenv(PAGER_ENV, "secretmanager:projects/acme-ml-prod/secrets/missing/versions/latest")
    with pytest.raises(runtime_secrets.SecretUnavailable, match="Secret Manager answered 404"):
        runtime_secrets.resolve("secret://" + PAGER)


def test_sagemaker_reads_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        boto3.client("secretsmanager", region_name="eu-west-1").create_secret(Name=PAGER, SecretString=VALUE)
        monkeypatch.setenv(PAGER_ENV, f"secretsmanager:arn:aws:secretsmanager:eu-west-1:123456789012:secret:{PAGER}")
        assert runtime_secrets.resolve("secret://" + PAGER) == VALUE
        monkeypatch.setenv(PAGER_ENV, f"secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:{PAGER}")
        with pytest.raises(runtime_secrets.SecretUnavailable, match="ResourceNotFoundException"):
            runtime_secrets.resolve("secret://" + PAGER)  # another region holds no such secret


def test_azureml_reads_the_named_key_vault(stores: SecretStores, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLCOMPILE_KEYVAULT_ENDPOINT", stores.url)
    monkeypatch.setenv(PAGER_ENV, f"keyvault:https://acme-ml-kv.vault.azure.net/secrets/{PAGER}")
    assert runtime_secrets.resolve("secret://" + PAGER) == VALUE
    assert stores.requests == [(f"/secrets/{PAGER}", None)]


def test_azureml_finds_the_workspace_key_vault_through_arm(stores: SecretStores, monkeypatch: pytest.MonkeyPatch) -> None:
    """`keyvault:NAME`: the vault of the workspace the job runs in (AZUREML_ARM_* are set by Azure ML)."""
    seen: list[str] = []
    monkeypatch.setattr(runtime_secrets, "_azure_token", lambda scope: seen.append(scope) or "t")
    monkeypatch.setenv("MLCOMPILE_ARM_ENDPOINT", stores.url)
    monkeypatch.setenv("MLCOMPILE_KEYVAULT_ENDPOINT", stores.url)
    for key, value in {"AZUREML_ARM_SUBSCRIPTION": "s", "AZUREML_ARM_RESOURCEGROUP": "g", "AZUREML_ARM_WORKSPACE_NAME": "acme-ws"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(PAGER_ENV, f"keyvault:{PAGER}")
    assert runtime_secrets.resolve("secret://" + PAGER) == VALUE
    assert [p for p, _ in stores.requests] == [
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/acme-ws",
        f"/secrets/{PAGER}",
    ]
    assert seen == ["https://management.azure.com/.default", "https://vault.azure.net/.default"]
    assert runtime_secrets.workspace_vault() == "https://acme-ws-kv.vault.azure.net"


def test_outside_a_workspace_the_default_vault_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZUREML_ARM_SUBSCRIPTION", raising=False)
    monkeypatch.setenv(PAGER_ENV, f"keyvault:{PAGER}")
    with pytest.raises(runtime_secrets.SecretUnavailable, match="azureml.key_vault"):
        runtime_secrets.resolve("secret://" + PAGER)


def test_the_alert_step_posts_to_the_resolved_webhook_and_never_prints_it(
    stores: SecretStores, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The webhook URL is the secret: posted to, not printed, not recorded."""
    from mlcompile.runtime import monitoring

    hook = stores.url + "/hook/Zt8q2LmX0vB7nR4kW9pD3sF6"
    stores.values[PAGER] = hook
    monkeypatch.setenv("MLCOMPILE_SECRETMANAGER_ENDPOINT", stores.url)
    monkeypatch.setenv(PAGER_ENV, f"secretmanager:projects/p/secrets/{PAGER}/versions/latest")
    monkeypatch.setenv("MLCOMPILE_WORKDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = {"system": "search-ranker", "params": {"alerts": [{"channel": "webhook", "url": "secret://" + PAGER}]}}

    result = monitoring.alert(config, {}, {})

    assert "/hook/Zt8q2LmX0vB7nR4kW9pD3sF6" in [p for p, _ in stores.requests]
    assert result["channels"] == [{"channel": "webhook", "secret": "secret://" + PAGER, "status": "sent"}]
    printed = capsys.readouterr()
    recorded = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    for text in (printed.out, printed.err, recorded, json.dumps(result)):
        assert "Zt8q2LmX0vB7nR4kW9pD3sF6" not in text


def test_a_secret_value_never_reaches_a_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With every secret available to the building process, no generated file holds a value."""
    value = "never-in-a-build-Zt8q2LmX0vB7nR4kW9pD3sF6"
    for name in (PAGER, HF):
        monkeypatch.setenv(env_name(name), value)
    (tmp_path / "secrets.json").write_text(json.dumps({PAGER: value, HF: value}))
    monkeypatch.setenv("MLCOMPILE_SECRETS_FILE", str(tmp_path / "secrets.json"))
    result = _invoke(
        ["build", str(REPO / "examples/ranker-gpu/mlcompile.yaml"), "--target", str(REPO / "targets"), "--out", str(tmp_path / "build")], tmp_path, monkeypatch
    )
    assert result.exit_code == 0, result.stderr
    files = [p for p in (tmp_path / "build").rglob("*") if p.is_file()]
    assert len(files) > 50
    assert [p for p in files if value.encode() in p.read_bytes()] == []
    assert value not in result.output


def test_the_vertex_launcher_fills_a_trainers_secret_from_secret_manager(stores: SecretStores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tuning task's launcher reads the locator the build set on it and puts the value in
    the job it creates (Vertex AI has no secret-backed environment: the check warns so)."""
    import yaml
    from vertex_api import VertexStandIn

    from mlcompile.runtime import launch

    training = yaml.safe_load_all((GOLDEN / "gcp-prod" / "pipelines" / "search-ranker-training.yaml").read_text())
    container = next(training)["deploymentSpec"]["executors"]["exec-tune"]["container"]
    config = json.loads(container["args"][container["args"].index("--config") + 1])
    config["platform_job"]["body"]["trialJobSpec"]["baseOutputDirectory"]["outputUriPrefix"] = str(tmp_path / "trials")
    (tmp_path / "trials" / "1" / "model").mkdir(parents=True)
    for variable in container["env"]:
        monkeypatch.setenv(variable["name"], variable["value"])
    stores.values[HF] = "hf-value-from-secret-manager"
    monkeypatch.setenv("MLCOMPILE_SECRETMANAGER_ENDPOINT", stores.url)
    monkeypatch.setattr(launch, "POLL_SECONDS", 0.0)
    with VertexStandIn() as api:
        monkeypatch.setenv("MLCOMPILE_VERTEX_API_ENDPOINT", api.endpoint)
        api.trials = [{"id": "1", "state": "SUCCEEDED", "finalMeasurement": {"metrics": [{"metricId": "ndcg_at_10", "value": 0.4}]}}]
        argv = ["tune", "--config", json.dumps(config), "--input", "train=/gcs/b/t", "--input", "report=/gcs/b/r", "--input", "test=/gcs/b/s"]
        argv += ["--output", f"model={tmp_path / 'model'}", "--output", f"metrics={tmp_path / 'metrics'}"]
        assert launch.main(argv) == 0
        ((_, job),) = api.jobs.items()
    env = {e["name"]: e["value"] for e in job["trialJobSpec"]["workerPoolSpecs"][0]["containerSpec"]["env"]}
    assert env["HF_TOKEN"] == "hf-value-from-secret-manager"
    assert (f"/v1/projects/acme-ml-prod/secrets/{HF}/versions/latest:access", None) in stores.requests


def test_a_registry_uri_with_a_password_in_a_profile_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connection settings take no credentials: the MLflow server's password belongs in its
    own configuration, not in the URI a profile publishes."""
    profile = (REPO / "targets" / "kfp-gke.yaml").read_text()
    assert "uri: http://mlflow" in profile
    work = tmp_path
    (work / "targets").mkdir()
    (work / "targets" / "kfp-gke.yaml").write_text(profile.replace("uri: http://mlflow", "uri: http://admin:Zt8q2LmX@mlflow"))
    shutil.copy(REPO / "examples" / "churn" / "mlcompile.yaml", work / "mlcompile.yaml")
    shutil.copytree(REPO / "examples" / "churn" / "data", work / "data")
    result = _invoke(["validate", "mlcompile.yaml", "--target", "targets/kfp-gke.yaml"], work, monkeypatch)
    line = next(n for n, text in enumerate(profile.splitlines(), 1) if "uri: http://mlflow" in text)
    assert f"targets/kfp-gke.yaml:{line}:" in _user_error(result)
    assert "kubeflow.registry.uri: looks like a URI with a password in it" in result.stderr
