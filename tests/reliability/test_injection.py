"""Tuning choices cannot run code or break the trial's definition.

Azure ML pastes each sampled value into the trial's command, which runs as a shell script;
Katib pastes it into the JSON of the trial's definition. So:

* validate refuses a categorical choice holding a quote, backslash, `$` or backquote (and any
  control character), located at the value — for every string hypothesis draws;
* every choice validate accepts, pasted the way each platform pastes it, reaches the trainer
  exactly: Azure ML's command (loaded back with azure-ai-ml's `load_job`) is run by bash with
  the trainer replaced by a stand-in that prints what it received, and runs nothing else;
  Katib's trial spec is serialised to JSON, substituted, and read back;
* mlcompile's own runtime steps take trial values as separate `--hp NAME=VALUE` arguments."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcompile import yaml_emit
from mlcompile.build import compile_system, resolve_profiles, write_builds
from mlcompile.diagnostics import is_unsafe_character
from mlcompile.errors import SpecError
from mlcompile.spec.checks import UNSAFE_CHOICE_CHARACTERS
from mlcompile.spec.resolve import load_system

ROOT = Path(__file__).resolve().parents[2]
LOSS_LINE = "      loss: {type: categorical, values: [lambdarank, listnet, softmax_ce]}"
# accepted choices that a shell would act on if they ever reached it unquoted
SHELL_LOOKING = ["a b", "x;touch MARKER", "x|touch MARKER", "x&&touch MARKER", "(touch MARKER)", "*", "#x", "x>MARKER", "%s{}", "日本語", "~root", "!1"]


def _spec_with_choices(folder: Path, values: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "examples/ranker-gpu/mlcompile.yaml").read_text()
    assert LOSS_LINE in text
    spec = folder / "mlcompile.yaml"
    choices = ", ".join(yaml_emit.scalar(v) for v in values)
    spec.write_text(text.replace(LOSS_LINE, f"      loss: {{type: categorical, values: [{choices}]}}"), encoding="utf-8")
    return spec


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12))
def test_a_choice_with_a_quote_or_control_character_is_refused_where_it_is_written(tmp_path: Path, value: str) -> None:
    spec = _spec_with_choices(tmp_path / "c", ["plain", value])
    try:
        load_system(spec)
    except SpecError as exc:
        located = [d for d in exc.diagnostics if d.path == "training.tuning.params.loss.values[1]"]
        assert located, [d.render() for d in exc.diagnostics]
        assert all(d.file.endswith("mlcompile.yaml") and d.line > 100 for d in located)
        return
    assert not set(value) & UNSAFE_CHOICE_CHARACTERS, f"{value!r} was accepted"
    assert not any(is_unsafe_character(c) for c in value), f"{value!r} was accepted"


@pytest.mark.parametrize("value", ["it's", 'say "hi"', "back\\slash", "$(touch MARKER)", "`touch MARKER`", "${HOME}"])
def test_the_reported_payloads_are_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_system(_spec_with_choices(tmp_path, ["plain", value]))
    (diagnostic,) = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert diagnostic.path == "training.tuning.params.loss.values[1]"
    assert "tuning choice cannot hold" in diagnostic.message


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inject")
    spec = _spec_with_choices(folder / "spec", SHELL_LOOKING)
    profiles = [str(ROOT / "targets" / f"{name}.yaml") for name in ("azure-prod", "kfp-gke")]
    compilation = compile_system(str(spec), resolve_profiles(str(spec), profiles), render=True, git_commit=None)
    written = write_builds(compilation.results, folder / "out")
    return {p.name: p for p in written}


def _azure_substitute(command: str, values: dict[str, object]) -> str:
    """What Azure ML does before running a trial: paste each input's value into the command."""
    for name, value in values.items():
        command = command.replace("${{inputs.%s}}" % name, str(value))
    return command


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("value", SHELL_LOOKING)
def test_azure_trial_command_passes_a_choice_through_bash_unchanged(builds: dict[str, Path], tmp_path: Path, value: str) -> None:
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job

    job = load_job(builds["azure-prod"] / "pipelines/search-ranker-training.yml")
    command = job.jobs["tune"].trial.command
    assert command.rstrip().endswith("python -m ranker.launch --epochs 6 --precision bf16 --per-device-batch-size 256 --checkpoint-every 500")
    trial = _azure_substitute(command, {"loss": value, "dropout": 0.1, "learning_rate": 0.0001, "num_layers": 3, "warmup_steps": 200})
    # the trainer's stand-in: a function named like its program, printing what it received
    script = 'python() { printf "%s" "$MLCOMPILE_HYPERPARAMETERS" > received.json; }\n' + trial + "\n"
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "received.json").read_text(encoding="utf-8")) == {
        "loss": value, "dropout": 0.1, "learning_rate": 0.0001, "num_layers": 3, "warmup_steps": 200,
    }  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["received.json"], "the choice ran a command"


@pytest.mark.parametrize("value", SHELL_LOOKING)
def test_katib_trial_spec_substituted_as_katib_does_stays_json_and_carries_the_choice(builds: dict[str, Path], value: str) -> None:
    experiment = yaml.safe_load((builds["kfp-gke"] / "training/tune-experiment.yaml").read_text())
    template = experiment["spec"]["trialTemplate"]
    # Katib's manifest generator: json.Marshal(trialSpec), then strings.Replace of each ${trialParameters.X}
    values = {"loss": value, "dropout": "0.1", "learningRate": "0.0001", "numLayers": "3", "warmupSteps": "200"}
    text = json.dumps(template["trialSpec"])
    for name, sampled in values.items():
        text = text.replace("${trialParameters.%s}" % name, sampled)
    trial = json.loads(text)
    containers = trial["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in containers[0]["env"]}
    assert json.loads(env["MLCOMPILE_HYPERPARAMETERS"])["loss"] == value


def test_runtime_steps_take_trial_values_as_separate_arguments(tmp_path: Path) -> None:
    pytest.importorskip("azure.ai.ml")
    from azure.ai.ml import load_job

    from mlcompile.runtime.__main__ import parse

    text = (ROOT / "examples/churn/mlcompile.yaml").read_text()
    tuning = (
        "  tuning:\n    objective: {metric: roc_auc, goal: maximize}\n    max_trials: 4\n    algorithm: random\n"
        '    params:\n      loss: {type: categorical, values: ["log_loss", "x;touch MARKER"]}\n      max_depth: {type: int, min: 2, max: 8}\n'
    )
    spec_dir = tmp_path / "spec"
    shutil.copytree(ROOT / "examples/churn", spec_dir)
    (spec_dir / "mlcompile.yaml").write_text(text.replace("  evaluation:\n", tuning + "  evaluation:\n", 1))
    spec = spec_dir / "mlcompile.yaml"
    compilation = compile_system(str(spec), resolve_profiles(str(spec), [str(ROOT / "targets/azure-prod.yaml")]), render=True, git_commit=None)
    (folder,) = write_builds(compilation.results, tmp_path / "out")
    command = load_job(folder / "pipelines/churn-prediction-training.yml").jobs["tune"].trial.command
    assert "MLCOMPILE_HYPERPARAMETERS" not in command
    words = shlex.split(_azure_substitute(command, {"loss": "x;touch MARKER", "max_depth": "5.0"}))
    assert words[:3] == ["python", "-m", "mlcompile.runtime"]
    _, config, _, _ = parse(words[3:])
    assert {p["name"]: p["values"] for p in config["tuning"]["params"]} == {"loss": ["x;touch MARKER"], "max_depth": [5]}
    assert config["tuning"]["max_trials"] == 1
