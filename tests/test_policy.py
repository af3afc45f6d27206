"""Profile policies: the `policy:` block of a target profile limits what a system built for it
may ask for. Each rule is shown passing, failing at the exact place in the spec that caused
the violation (inside `overrides.<profile>` when the value came from there, at the nearest
written parent when it is absent), and reported as a warning under `--warn-only`.

SPEC below satisfies the rules of PERMISSIVE; each case tightens one rule until SPEC breaks it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import click
import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from mlcompile.cli import main
from mlcompile.schema import json_schema

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
apiVersion: mlcompile/v1
kind: MLSystem
metadata:
  name: churn
  labels: {team: growth, cost-center: cc-4711}
features:
  entities:
    - {name: customer, join_keys: [customer_id]}
  sources:
    - {name: events, uri: bq://acme.sales.events, format: table, timestamp_field: ts}
  views:
    - {name: activity, entities: [customer], source: events, ttl: 30d, features: [{name: orders, dtype: int64}]}
training:
  dataset:
    features: [activity:orders]
    label: {source: events, column: churned}
  trainer:
    sklearn: {estimator: sklearn.ensemble.HistGradientBoostingClassifier}
  resources:
    cpu: 8
    memory: 32Gi
    accelerator: {type: nvidia-t4, count: 2}
    replicas: 2
    spot: true
    timeout: 6h
  tuning:
    objective: {metric: roc_auc, goal: maximize}
    max_trials: 8
    parallel_trials: 2
    params:
      learning_rate: {type: float, min: 0.01, max: 0.3}
  evaluation:
    metrics: [roc_auc]
registry:
  model: churn-model
  approval: manual
deployment:
  online:
    endpoint: churn
    resources: {cpu: 2, memory: 4Gi, accelerator: {type: nvidia-t4, count: 1}}
    replicas: {min: 2, max: 4}
  batch:
    schedule: "0 3 * * *"
    input: {source: events}
    output: {uri: bq://acme.sales.scores}
    resources: {cpu: 4, memory: 16Gi}
overrides:
  gcp-prod:
    training:
      resources: {timeout: 8h}
"""

PROFILE = """\
apiVersion: mlcompile/v1
kind: Target
metadata: {name: gcp-prod}
platform: vertex
images: {runtime: us-docker.pkg.dev/acme-ml/ml/mlcompile-runtime:0.1.0}
vertex:
  project: acme-ml
  region: us-central1
  pipeline_root: gs://acme-ml/pipelines
  service_account: pipelines@acme-ml.iam.gserviceaccount.com
"""

# Every rule, each at the limit SPEC (as merged for gcp-prod) just meets.
PERMISSIVE = {
    "allowed_accelerators": ["nvidia-t4", "nvidia-l4"],
    "max_accelerators_per_replica": 2,
    "max_replicas": 4,
    "max_cpu_per_replica": 8,
    "max_memory_per_replica": "32Gi",
    "spot_required": True,
    "registry_approval": "manual",
    "max_training_timeout": "8h",
    "required_labels": ["team", "cost-center"],
    "endpoint_min_replicas": 2,
}


def project(tmp_path: Path, policy: dict | None, spec: str = SPEC, *edits: tuple[str, str]) -> Path:
    for old, new in edits:
        assert old in spec, old
        spec = spec.replace(old, new)
    (tmp_path / "targets").mkdir()
    (tmp_path / "mlcompile.yaml").write_text(spec)
    profile = PROFILE + (yaml.safe_dump({"policy": policy}, sort_keys=False) if policy is not None else "")
    (tmp_path / "targets" / "gcp-prod.yaml").write_text(profile)
    return tmp_path


def mlcompile(folder: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(folder)
    return CliRunner().invoke(main, list(args))


def policy_lines(stderr: str) -> list[str]:
    """The policy's diagnostics, each with its hint on the same line (`… | hint: …`)."""
    blocks = re.split(r"\n(?!  hint: )", stderr.strip())
    return [block.replace("\n  hint: ", " | hint: ") for block in blocks if " policy " in block]


# (rule, the tighter value, edits to SPEC, the diagnostics exactly as printed)
CASES = [
    ("allowed_accelerators", ["nvidia-l4"], (), [
        "mlcompile.yaml:22:25: error: training.resources.accelerator.type: nvidia-t4 is refused by policy allowed_accelerators of profile gcp-prod"
        " | hint: profile gcp-prod allows: nvidia-l4",
        "mlcompile.yaml:40:58: error: deployment.online.resources.accelerator.type: nvidia-t4 is refused by policy allowed_accelerators of profile gcp-prod"
        " | hint: profile gcp-prod allows: nvidia-l4",
    ]),
    ("allowed_accelerators", [], (("accelerator: {type: nvidia-t4, count: 1}", "accelerator: null"),), [
        "mlcompile.yaml:22:25: error: training.resources.accelerator.type: nvidia-t4 is refused by policy allowed_accelerators of profile gcp-prod"
        " | hint: profile gcp-prod allows no accelerators",
    ]),
    ("allowed_accelerators", ["nvidia-t4"], (("{cpu: 4, memory: 16Gi}", "{cpu: 4, memory: 16Gi, accelerator: {type: nvidia-l4}}"),), [
        "mlcompile.yaml:46:59: error: deployment.batch.resources.accelerator.type: nvidia-l4 is refused by policy allowed_accelerators of profile gcp-prod"
        " | hint: profile gcp-prod allows: nvidia-t4",
    ]),
    ("max_accelerators_per_replica", 1, (), [
        "mlcompile.yaml:22:43: error: training.resources.accelerator.count: 2 accelerators per replica exceed policy max_accelerators_per_replica"
        " of profile gcp-prod (at most 1)",
    ]),
    ("max_replicas", 3, (), [
        "mlcompile.yaml:29:22: error: training.tuning.parallel_trials: 2 parallel trials x 2 replicas = 4 machines at once exceed policy max_replicas"
        " of profile gcp-prod (at most 3) | hint: at most 1 parallel trial fits",
        "mlcompile.yaml:41:29: error: deployment.online.replicas.max: 4 replicas exceed policy max_replicas of profile gcp-prod (at most 3)",
    ]),
    ("max_replicas", 1, (("parallel_trials: 2", "parallel_trials: 1"),), [  # the replicas alone: the trials need not be said too
        "mlcompile.yaml:23:15: error: training.resources.replicas: 2 replicas exceed policy max_replicas of profile gcp-prod (at most 1)",
        "mlcompile.yaml:41:29: error: deployment.online.replicas.max: 4 replicas exceed policy max_replicas of profile gcp-prod (at most 1)",
    ]),
    ("max_cpu_per_replica", 4, (), [
        "mlcompile.yaml:20:10: error: training.resources.cpu: 8 cores exceed policy max_cpu_per_replica of profile gcp-prod (at most 4)",
    ]),
    ("max_cpu_per_replica", 0.5, (("resources: {cpu: 2, memory: 4Gi, ", "resources: {cpu: 0.5, memory: 4Gi, "), ("    cpu: 8\n", ""), ("{cpu: 4, memory: 16Gi}", "{cpu: 0.5, memory: 16Gi}")), [
        "mlcompile.yaml:19:3: error: training.resources.cpu: 1 core (the default) exceeds policy max_cpu_per_replica of profile gcp-prod (at most 0.5)",
    ]),
    ("max_memory_per_replica", "16Gi", (), [
        "mlcompile.yaml:21:13: error: training.resources.memory: 32Gi exceeds policy max_memory_per_replica of profile gcp-prod (at most 16Gi)",
    ]),
    ("max_memory_per_replica", "8Gi", (), [  # batch scoring too
        "mlcompile.yaml:21:13: error: training.resources.memory: 32Gi exceeds policy max_memory_per_replica of profile gcp-prod (at most 8Gi)",
        "mlcompile.yaml:46:33: error: deployment.batch.resources.memory: 16Gi exceeds policy max_memory_per_replica of profile gcp-prod (at most 8Gi)",
    ]),
    ("spot_required", True, (("    spot: true\n", "    spot: false\n"),), [
        "mlcompile.yaml:24:11: error: training.resources.spot: on-demand training is refused by policy spot_required of profile gcp-prod"
        " | hint: set training.resources.spot: true (tuning trials run on the same resources); spot capacity can be reclaimed at any time,"
        " so the trainer should resume from checkpoints",
    ]),
    ("spot_required", True, (("    spot: true\n", ""),), [  # absent: at the resources it belongs in
        "mlcompile.yaml:19:3: error: training.resources.spot: on-demand training is refused by policy spot_required of profile gcp-prod"
        " | hint: set training.resources.spot: true (tuning trials run on the same resources); spot capacity can be reclaimed at any time,"
        " so the trainer should resume from checkpoints",
    ]),
    ("registry_approval", "manual", (("approval: manual", "approval: auto"),), [
        "mlcompile.yaml:36:13: error: registry.approval: auto approval is refused by policy registry_approval of profile gcp-prod"
        " | hint: set registry.approval: manual: a person approves each version that passes the gates",
    ]),
    ("max_training_timeout", "4h", (), [  # 8h comes from overrides.gcp-prod: located there
        "mlcompile.yaml:50:28: error: training.resources.timeout: 8h exceeds policy max_training_timeout of profile gcp-prod (at most 4h)",
    ]),
    ("max_training_timeout", "12h", (("    timeout: 6h\n", ""), ("      resources: {timeout: 8h}", "      resources: {replicas: 2}")), [
        "mlcompile.yaml:19:3: error: training.resources.timeout: 24h (the default) exceeds policy max_training_timeout of profile gcp-prod (at most 12h)"
        " | hint: set training.resources.timeout: 12h or less",
    ]),
    ("required_labels", ["team", "owner"], (), [
        "mlcompile.yaml:5:3: error: metadata.labels.owner: label 'owner' is required by policy required_labels of profile gcp-prod"
        " | hint: profile gcp-prod requires labels: team, owner",
    ]),
    ("required_labels", ["team"], (("  labels: {team: growth, cost-center: cc-4711}\n", ""),), [  # no labels at all: at metadata
        "mlcompile.yaml:3:1: error: metadata.labels.team: label 'team' is required by policy required_labels of profile gcp-prod"
        " | hint: profile gcp-prod requires labels: team",
    ]),
    ("required_labels", ["team"], (("{team: growth,", "{team: '',"),), [
        "mlcompile.yaml:5:18: error: metadata.labels.team: label 'team' is empty; policy required_labels of profile gcp-prod needs a value",
    ]),
    ("endpoint_min_replicas", 3, (), [
        "mlcompile.yaml:41:21: error: deployment.online.replicas.min: 2 is below policy endpoint_min_replicas of profile gcp-prod (at least 3)"
        " | hint: set deployment.online.replicas.min: 3 or more",
    ]),
    ("endpoint_min_replicas", 2, (("replicas: {min: 2, max: 4}", "replicas: {max: 4}"),), [
        "mlcompile.yaml:41:5: error: deployment.online.replicas.min: 1 (the default) is below policy endpoint_min_replicas of profile gcp-prod (at least 2)"
        " | hint: set deployment.online.replicas.min: 2 or more",
    ]),
]  # fmt: skip
CASE_IDS = [f"{rule}-{index}" for index, (rule, *_) in enumerate(CASES)]
# The first case of each rule that breaks SPEC as it is, and what it prints.
STRICT: dict[str, object] = {}
STRICT_LINES: list[str] = []
for _rule, _value, _edits, _lines in CASES:
    if not _edits and _rule not in STRICT:
        STRICT[_rule] = _value
        STRICT_LINES += _lines


def test_every_rule_has_a_case() -> None:
    from mlcompile.spec.profile_model import Policy

    assert {rule for rule, *_ in CASES} == set(Policy.model_fields) == set(PERMISSIVE)


def test_a_spec_within_every_rule_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = mlcompile(project(tmp_path, PERMISSIVE), "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert policy_lines(result.stderr) == []


@pytest.mark.parametrize("rule", sorted(PERMISSIVE))
def test_each_rule_alone_passes_the_spec_that_meets_it(rule: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = mlcompile(project(tmp_path, {rule: PERMISSIVE[rule]}), "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize(("rule", "value", "edits", "expected"), CASES, ids=CASE_IDS)
def test_a_violation_is_an_error_at_the_field_that_caused_it(
    rule: str, value: object, edits: tuple, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project(tmp_path, {**PERMISSIVE, rule: value}, SPEC, *edits)
    result = mlcompile(folder, "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert policy_lines(result.stderr) == expected
    assert result.stderr.endswith(f"\n{len(expected)} error{'s' if len(expected) != 1 else ''}\n"), result.stderr


@pytest.mark.parametrize(("rule", "value", "edits", "expected"), CASES, ids=CASE_IDS)
def test_warn_only_reports_the_violation_as_a_warning(
    rule: str, value: object, edits: tuple, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = project(tmp_path, {**PERMISSIVE, rule: value}, SPEC, *edits)
    result = mlcompile(folder, "validate", "mlcompile.yaml", "--warn-only", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert policy_lines(result.stderr) == [line.replace(": error: ", ": warning: ", 1) for line in expected]
    assert result.stderr.rstrip().endswith("mlcompile.yaml: valid for gcp-prod")


# ------------------------------------------------------------------ where a violation is located


def test_a_violation_from_the_overrides_is_located_inside_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The base spec asks for a T4 (allowed); gcp-prod's override asks for an A100 (refused)."""
    edit = ("      resources: {timeout: 8h}", "      resources: {timeout: 8h, accelerator: {type: nvidia-a100-40gb, count: 2}}")
    result = mlcompile(project(tmp_path, PERMISSIVE, SPEC, edit), "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert policy_lines(result.stderr) == [
        "mlcompile.yaml:50:52: error: training.resources.accelerator.type: nvidia-a100-40gb is refused by policy allowed_accelerators of profile gcp-prod"
        " | hint: profile gcp-prod allows: nvidia-t4, nvidia-l4"
    ]
    assert SPEC.splitlines()[49].startswith("      resources: {timeout: 8h")  # line 50 is inside overrides.gcp-prod


def test_an_override_can_bring_the_spec_within_the_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Policies judge the spec as built for the profile: the base may ask for more."""
    folder = project(
        tmp_path, {**PERMISSIVE, "max_training_timeout": "4h"}, SPEC, ("resources: {timeout: 8h}", "resources: {timeout: 4h}"), ("timeout: 6h", "timeout: 48h")
    )
    result = mlcompile(folder, "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr


def test_an_absent_value_under_a_section_the_override_adds_is_located_in_the_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = (
        SPEC.replace("deployment:\n  online:", "deployment_:\n  online:").split("deployment_:")[0]
        + "overrides:\n  gcp-prod:\n    deployment:\n      online: {endpoint: churn}\n"
    )
    result = mlcompile(project(tmp_path, {"endpoint_min_replicas": 2}, spec), "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert policy_lines(result.stderr) == [
        "mlcompile.yaml:40:7: error: deployment.online.replicas.min: 1 (the default) is below policy endpoint_min_replicas of profile gcp-prod (at least 2)"
        " | hint: set deployment.online.replicas.min: 2 or more (and max too: it is 1)"
    ]
    assert spec.splitlines()[39] == "      online: {endpoint: churn}"


def test_every_violation_of_every_rule_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = mlcompile(project(tmp_path, {**PERMISSIVE, **STRICT}), "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert sorted(policy_lines(result.stderr)) == sorted(STRICT_LINES)
    assert result.stderr.endswith(f"\n{len(STRICT_LINES)} errors\n")


def test_a_policy_judges_only_builds_for_its_own_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, {"required_labels": ["owner"]})
    (folder / "targets" / "gcp-dev.yaml").write_text(PROFILE.replace("{name: gcp-prod}", "{name: gcp-dev}"))
    result = mlcompile(folder, "validate", "mlcompile.yaml", "--target", "targets/gcp-dev.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr
    assert policy_lines(result.stderr) == []


# ------------------------------------------------------------------ --warn-only


def test_warn_only_build_writes_the_output_and_prints_every_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, {**PERMISSIVE, **STRICT})
    args = ["build", "mlcompile.yaml", "--target", "targets/gcp-prod.yaml", "--out", "out", "--git-commit", "none"]
    refused = mlcompile(folder, *args, monkeypatch=monkeypatch)
    assert refused.exit_code == 2 and not (folder / "out").exists()

    result = mlcompile(folder, *args, "--warn-only", monkeypatch=monkeypatch)

    assert result.exit_code == 0, result.stderr
    warnings = policy_lines(result.stderr)
    assert len(warnings) == len(STRICT_LINES)
    assert all(": warning: " in line for line in warnings)
    assert (folder / "out" / "gcp-prod" / "manifest.json").is_file()


def test_diff_under_warn_only_shows_the_violations_beside_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, {**PERMISSIVE, **STRICT})
    mlcompile(
        folder, "build", "mlcompile.yaml", "--target", "targets/gcp-prod.yaml", "--out", "base", "--git-commit", "none", "--warn-only", monkeypatch=monkeypatch
    )

    result = mlcompile(folder, "diff", "mlcompile.yaml", "--target", "targets/gcp-prod.yaml", "--base-dir", "base", "--warn-only", monkeypatch=monkeypatch)

    assert result.exit_code == 0, result.stderr
    warnings = policy_lines(result.stderr)
    assert len(warnings) == len(STRICT_LINES) and all(": warning: " in line for line in warnings)
    assert " policy " not in result.stdout  # the report itself is the diff alone


def test_warn_only_turns_only_policy_violations_into_warnings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(
        tmp_path, {**PERMISSIVE, "max_cpu_per_replica": 4}, SPEC, ("registry:\n  model: churn-model\n", "registry:\n  model: churn-model\n  tags: [growth]\n")
    )
    result = mlcompile(folder, "validate", "mlcompile.yaml", "--warn-only", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "mlcompile.yaml:20:10: warning: training.resources.cpu: 8 cores exceed policy max_cpu_per_replica of profile gcp-prod (at most 4)",
        "mlcompile.yaml:36:9: error: registry.tags: expected a mapping, got a list (['growth'])",
        "1 error",
    ]


def test_violations_are_reported_with_the_other_errors_of_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All at once: a broken value elsewhere does not hide a violation."""
    folder = project(
        tmp_path, {**PERMISSIVE, "max_cpu_per_replica": 4}, SPEC, ("registry:\n  model: churn-model\n", "registry:\n  model: churn-model\n  tags: [growth]\n")
    )
    result = mlcompile(folder, "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert policy_lines(result.stderr) == [
        "mlcompile.yaml:20:10: error: training.resources.cpu: 8 cores exceed policy max_cpu_per_replica of profile gcp-prod (at most 4)"
    ]
    assert result.stderr.endswith("\n2 errors\n")


def test_a_broken_value_is_not_judged_by_the_default_that_stands_in_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'32GB' does not parse: it is reported as such, not as the 4Gi default exceeding 2Gi
    (the endpoint's and batch scoring's memory are judged as usual)."""
    folder = project(tmp_path, {"max_memory_per_replica": "2Gi"}, SPEC, ("memory: 32Gi", "memory: 32GB"))
    result = mlcompile(folder, "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if "memory" in line] == [
        "mlcompile.yaml:21:13: error: training.resources.memory: '32GB' is not a memory quantity (for example '16Gi', '512Mi')",
        "mlcompile.yaml:40:33: error: deployment.online.resources.memory: 4Gi exceeds policy max_memory_per_replica of profile gcp-prod (at most 2Gi)",
        "mlcompile.yaml:46:33: error: deployment.batch.resources.memory: 16Gi exceeds policy max_memory_per_replica of profile gcp-prod (at most 2Gi)",
    ]


def test_warn_only_in_json_reports_warnings_and_a_valid_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, {**PERMISSIVE, "max_cpu_per_replica": 4})
    result = mlcompile(folder, "validate", "mlcompile.yaml", "--warn-only", "--format", "json", monkeypatch=monkeypatch)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["valid"] is True
    (violation,) = [d for d in report["diagnostics"] if "policy" in d["message"]]
    assert (violation["severity"], violation["path"], violation["line"], violation["col"]) == ("warning", "training.resources.cpu", 20, 10)


@pytest.mark.parametrize("command", ["validate", "build", "diff", "deploy", "run"])
def test_every_command_that_builds_takes_warn_only(command: str) -> None:
    assert "warn_only" in {p.name for p in main.get_command(click.Context(main), command).params}


# ------------------------------------------------------------------ the policy itself


def test_an_unknown_accelerator_in_a_policy_is_a_profile_error_with_a_suggestion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tmp_path, {"allowed_accelerators": ["nvidia-t4", "nvidia-a100"]})
    result = mlcompile(folder, "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == (
        "targets/gcp-prod.yaml:14:5: error: policy.allowed_accelerators[1]: unknown accelerator 'nvidia-a100'\n"
        "  hint: did you mean 'nvidia-a100-40gb'?\n"
        "1 error\n"
    )


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"max_training_timeout": "12 hours"}, "policy.max_training_timeout: '12 hours' is not a duration"),
        ({"max_replicas": 0}, "policy.max_replicas: must be at least 1, got 0"),
        ({"registry_approval": "auto"}, "policy.registry_approval: 'auto' is not one of 'manual' or 'any'"),
        ({"required_labels": ["Team"]}, "policy.required_labels[0]:"),
        ({"spot_requried": True}, "policy.spot_requried: unknown key 'spot_requried'"),
    ],
    ids=["duration", "replicas", "approval", "label-key", "unknown-rule"],
)
def test_a_malformed_policy_is_a_located_profile_error(policy: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = mlcompile(project(tmp_path, policy), "validate", "mlcompile.yaml", monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert re.search(r"^targets/gcp-prod\.yaml:\d+:\d+: error: " + re.escape(message), result.stderr, re.M), result.stderr


def test_the_target_schema_accepts_a_policy_and_rejects_a_bad_one() -> None:
    profile = yaml.safe_load(PROFILE) | {"policy": PERMISSIVE}
    validator = jsonschema.Draft202012Validator(json_schema("target"))
    assert list(validator.iter_errors(profile)) == []
    for bad, path in [
        ({"max_replicas": 0}, ["policy", "max_replicas"]),
        ({"max_training_timeout": "12 hours"}, ["policy", "max_training_timeout"]),
        ({"allowed_gpus": ["nvidia-t4"]}, ["policy"]),
    ]:
        paths = _error_paths(validator.iter_errors(profile | {"policy": bad}))
        assert path in paths, (bad, paths)


def _error_paths(errors: object) -> list[list[object]]:
    """Where each error is, including those inside the failing branch of `policy: Policy | null`."""
    return [p for e in errors for p in [list(e.absolute_path), *_error_paths(e.context)]]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ shipped profiles and docs


def test_the_docs_show_the_output_mlcompile_prints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/policies.md shows a ranker override refused by kfp-gke; the output is the real one."""
    page = (ROOT / "docs" / "policies.md").read_text()
    override = re.search(r"<!-- the override -->\n```yaml\n(.*?)```", page, re.S).group(1)  # type: ignore[union-attr]
    shown = re.search(r"<!-- its output -->\n```text\n(.*?)```", page, re.S).group(1)  # type: ignore[union-attr]
    for folder in ("examples", "targets"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns(".mlcompile", "data", "scores"))
    spec = tmp_path / "examples" / "ranker-gpu" / "mlcompile.yaml"
    anchor = "  kfp-gke:\n"
    lines = override.splitlines(keepends=True)
    assert lines[:2] == ["overrides:\n", anchor]
    spec.write_text(spec.read_text().replace(anchor, anchor + "".join(lines[2:]), 1))

    result = mlcompile(tmp_path, "validate", "examples/ranker-gpu/mlcompile.yaml", "--target", "targets/kfp-gke.yaml", monkeypatch=monkeypatch)

    assert result.exit_code == 2
    assert result.stderr == shown


def test_every_example_output_of_the_rules_in_the_docs_is_a_tested_one() -> None:
    rules = (ROOT / "docs" / "policies.md").read_text().split("\n## The rules\n", 1)[1]
    shown = [line for block in re.findall(r"```text\n(.*?)```", rules, re.S) for line in policy_lines(block)]
    tested = {line for _rule, _value, _edits, lines in CASES for line in lines}
    assert len(shown) >= 10
    assert [line for line in shown if line not in tested] == []
