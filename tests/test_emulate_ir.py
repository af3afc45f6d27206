"""The KFP IR interpreter runs pipelines compiled by kfp's own compiler the way KFP's
launcher would: dependency order, dsl.If/Elif/Else, parameters and artifacts, placeholders,
failures, and the Kubernetes platform config."""

import json
from pathlib import Path

import pytest

kfp = pytest.importorskip("kfp")
from kfp import compiler, dsl  # noqa: E402

from mlcompile.emulate import cel  # noqa: E402
from mlcompile.emulate.containers import Images  # noqa: E402
from mlcompile.emulate.ir import (  # noqa: E402
    FAILED,
    NOT_TRIGGERED,
    SKIPPED,
    SUCCEEDED,
    EmulationContext,
    load_documents,
    run_pipeline,
)  # fmt: skip
from mlcompile.runtime import emulated_storage as storage  # noqa: E402

pytestmark = pytest.mark.emulate

RUNTIME = "example.com/runtime:1"
WRITE_FILE = "import os, sys; os.makedirs(os.path.dirname(sys.argv[2]), exist_ok=True); open(sys.argv[2], 'w').write(sys.argv[1])"


@dsl.container_component
def roll(sides: int, face: dsl.OutputPath(str)):
    # `sides` arrives as the launcher prints an integer: "3", not "3.0"
    return dsl.ContainerSpec(image=RUNTIME, command=["python", "-c", WRITE_FILE.replace("sys.argv[1]", "str(int(sys.argv[1]) - 1)")], args=[sides, face])


@dsl.container_component
def write(text: str, out: dsl.Output[dsl.Dataset]):
    return dsl.ContainerSpec(image=RUNTIME, command=["python", "-c", WRITE_FILE], args=[text, out.path])


@dsl.container_component
def read(data: dsl.Input[dsl.Dataset], label: str, seen: dsl.OutputPath(str)):
    script = "import sys; open(sys.argv[3], 'w').write(sys.argv[2] + ':' + open(sys.argv[1]).read() + ':' + sys.argv[4])"
    return dsl.ContainerSpec(image=RUNTIME, command=["python", "-c", script], args=[data.path, label, seen, data.uri])


@dsl.container_component
def fail():
    return dsl.ContainerSpec(image=RUNTIME, command=["python", "-c", "raise SystemExit(3)"])


@dsl.container_component
def echo(text: str):
    return dsl.ContainerSpec(image=RUNTIME, command=["python", "-c", "print('echo', __import__('sys').argv[1])"], args=[text])


@dsl.pipeline(name="dice", pipeline_root="gs://bucket/root")
def dice(sides: int = 3, greeting: str = "hi"):
    rolled = roll(sides=sides)
    written = write(text=greeting)
    with dsl.If(rolled.outputs["face"] == "2"):
        read(data=written.outputs["out"], label="two")
    with dsl.Elif(rolled.outputs["face"] == "1"):
        read(data=written.outputs["out"], label="one")
    with dsl.Else():
        read(data=written.outputs["out"], label="other")


@dsl.pipeline(name="broken")
def broken():
    failed = fail()
    echo(text="after").after(failed)
    echo(text="beside")


def _compile(pipeline, tmp_path: Path) -> tuple[dict, dict]:
    path = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    return load_documents(path.read_text())


def _context(tmp_path: Path, **extra) -> EmulationContext:
    return EmulationContext(Images(RUNTIME), tmp_path / "root", tmp_path / "work", **extra)


def _seen(result) -> dict[str, str]:
    return {name: task.parameters["seen"] for name, task in result.tasks.items() if "seen" in task.parameters}


def test_the_default_parameters_pick_the_if_branch_and_pass_the_artifact_by_path_and_uri(tmp_path: Path) -> None:
    ir, platform = _compile(dice, tmp_path)
    result = run_pipeline(ir, parameters={}, context=_context(tmp_path), platform=platform, run_id="run-1")
    assert result.status == SUCCEEDED
    uri = "gs://bucket/root/run-1/write/out"  # KFP's layout: <pipeline root>/<run>/<task>/<output>
    assert _seen(result) == {"read": f"two:hi:{uri}"}
    assert storage.local_path(uri, tmp_path / "root").read_text() == "hi"
    assert result.tasks["condition-3"].status == SKIPPED and result.tasks["condition-4"].status == SKIPPED
    assert "read-2" not in result.tasks and "read-3" not in result.tasks


@pytest.mark.parametrize(("sides", "branch", "label"), [(2, "read-2", "one"), (9, "read-3", "other")])
def test_elif_and_else_run_exactly_one_branch(tmp_path: Path, sides: int, branch: str, label: str) -> None:
    ir, platform = _compile(dice, tmp_path)
    result = run_pipeline(ir, parameters={"sides": sides, "greeting": "yo"}, context=_context(tmp_path), platform=platform, run_id="r")
    assert result.status == SUCCEEDED
    assert _seen(result) == {branch: f"{label}:yo:gs://bucket/root/r/write/out"}


def test_a_failing_task_fails_the_run_and_its_dependents_are_not_triggered(tmp_path: Path) -> None:
    ir, platform = _compile(broken, tmp_path)
    result = run_pipeline(ir, parameters={}, context=_context(tmp_path), platform=platform)
    assert result.status == FAILED
    assert (result.tasks["fail"].status, result.tasks["fail"].exit_code) == (FAILED, 3)
    assert result.tasks["echo"].status == NOT_TRIGGERED
    assert result.tasks["echo-2"].status == SUCCEEDED  # another branch still runs (fail-slow)
    assert "echo beside" in result.tasks["echo-2"].log.read_text()


def test_an_unknown_pipeline_parameter_is_refused(tmp_path: Path) -> None:
    ir, platform = _compile(dice, tmp_path)
    with pytest.raises(Exception, match="no parameter colour"):
        run_pipeline(ir, parameters={"colour": "red"}, context=_context(tmp_path), platform=platform)


def _single_task_ir(command: list[str], args: list[str], image: str = RUNTIME) -> dict:
    return {
        "pipelineInfo": {"name": "one"},
        "components": {"comp-step": {"executorLabel": "exec-step", "outputDefinitions": {"parameters": {"out": {"parameterType": "STRING"}}}}},
        "deploymentSpec": {
            "executors": {"exec-step": {"container": {"image": image, "command": command, "args": args, "env": [{"name": "FROM_IR", "value": "ir"}]}}}
        },
        "root": {"dag": {"tasks": {"step": {"componentRef": {"name": "comp-step"}, "taskInfo": {"name": "step"}}}}},
    }


def test_the_container_gets_the_executor_input_the_names_and_the_platform_env(tmp_path: Path) -> None:
    script = (
        "import json, os, sys; e = json.loads(sys.argv[1]);"
        "open(e['outputs']['parameters']['out']['outputFile'], 'w').write(json.dumps("
        "[sys.argv[2], sys.argv[3], os.environ['FROM_IR'], os.environ['HOOK_URL'], os.environ['MLCOMPILE_EMULATE_ROOT']]))"
    )
    ir = _single_task_ir(["python", "-c", script], ["{{$}}", "{{$.pipeline_task_name}}", "{{$.pipeline_job_name}}"])
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"exec-step": {
        "secretAsEnv": [{"secretName": "hook", "keyToEnv": [{"secretKey": "value", "envVar": "HOOK_URL"}]}],
    }}}}}}  # fmt: skip
    context = _context(tmp_path, secrets={"hook": "http://127.0.0.1:9/hook"})
    result = run_pipeline(ir, parameters={}, context=context, platform=platform, run_id="job-7")
    assert result.status == SUCCEEDED, result.tasks["step"].reason
    assert json.loads(result.tasks["step"].parameters["out"]) == ["step", "job-7", "ir", "http://127.0.0.1:9/hook", str(tmp_path / "root")]


def test_a_missing_secret_fails_the_task_as_a_pod_that_cannot_start(tmp_path: Path) -> None:
    ir = _single_task_ir(["python", "-c", "pass"], [])
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"exec-step": {
        "secretAsEnv": [{"secretName": "absent", "keyToEnv": [{"secretKey": "value", "envVar": "X"}]}],
    }}}}}}  # fmt: skip
    result = run_pipeline(ir, parameters={}, context=_context(tmp_path), platform=platform)
    assert result.tasks["step"].status == FAILED
    assert "secret 'absent'" in result.tasks["step"].reason


def test_active_deadline_seconds_stops_a_task_that_runs_too_long(tmp_path: Path) -> None:
    ir = _single_task_ir(["python", "-c", "import time; time.sleep(30)"], [])
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {"exec-step": {"activeDeadlineSeconds": "1"}}}}}}
    result = run_pipeline(ir, parameters={}, context=_context(tmp_path), platform=platform)
    assert result.tasks["step"].status == FAILED
    assert "activeDeadlineSeconds" in result.tasks["step"].reason


def test_a_task_that_does_not_write_its_output_parameter_fails(tmp_path: Path) -> None:
    result = run_pipeline(_single_task_ir(["python", "-c", "pass"], []), parameters={}, context=_context(tmp_path))
    assert result.tasks["step"].status == FAILED
    assert "output parameter out was not written" in result.tasks["step"].reason


def test_a_user_image_without_a_local_command_is_refused_with_the_fix(tmp_path: Path) -> None:
    ir = _single_task_ir([], ["--epochs", "1"], image="ghcr.io/acme/trainer:2")
    result = run_pipeline(ir, parameters={}, context=_context(tmp_path))
    assert result.tasks["step"].status == FAILED
    assert "ghcr.io/acme/trainer:2" in result.tasks["step"].reason and "emulation config" in result.tasks["step"].reason


def test_a_user_image_runs_the_configured_entrypoint_in_its_workdir(tmp_path: Path) -> None:
    workdir = tmp_path / "trainer"
    workdir.mkdir()
    (workdir / "train.py").write_text(
        "import json, os, sys\nopen(sys.argv[sys.argv.index('--out') + 1], 'w').write(json.dumps([os.path.basename(os.getcwd()), sys.argv[1:3]]))\n"
    )
    ir = _single_task_ir([], ["--epochs", "1", "--out", "{{$.outputs.parameters['out'].output_file}}"], image="ghcr.io/acme/trainer:2")
    images = Images(RUNTIME, {"ghcr.io/acme/trainer:2": ["python", "train.py"]}, {"ghcr.io/acme/trainer:2": workdir})
    result = run_pipeline(ir, parameters={}, context=EmulationContext(images, tmp_path / "root", tmp_path / "work"))
    assert result.status == SUCCEEDED, result.tasks["step"].reason
    assert json.loads(result.tasks["step"].parameters["out"]) == ["trainer", ["--epochs", "1"]]


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("int(inputs.parameter_values['n']) > 2", {"n": "3"}, True),
        ("!(int(inputs.parameter_values['n']) == 0) && int(inputs.parameter_values['n']) <= 1", {"n": 1}, True),
        ("inputs.parameter_values['f'] < 0.5 || inputs.parameter_values['b'] == true", {"f": 0.7, "b": False}, False),
        ("inputs.parameter_values['s'] != 'tails'", {"s": "heads"}, True),
        ("inputs.parameter_values['b'] == 1", {"b": True}, False),  # a boolean is not the number 1 in CEL
    ],
)
def test_conditions_follow_cel(condition: str, values: dict, expected: bool) -> None:
    assert cel.evaluate(condition, values) is expected


def test_a_condition_on_a_missing_input_is_an_error_not_false() -> None:
    with pytest.raises(cel.ConditionError, match="no input parameter 'x'"):
        cel.evaluate("inputs.parameter_values['x'] == true", {})


@dsl.container_component
def wait_for_peer(mine: str, theirs: str):
    # finishes only once the other task has started: passes only when both run at once
    script = (
        "import os, sys, time; open(sys.argv[1], 'w').close(); deadline = time.time() + 20\n"
        "while not os.path.exists(sys.argv[2]) and time.time() < deadline: time.sleep(0.05)\n"
        "sys.exit(0 if os.path.exists(sys.argv[2]) else 1)"
    )
    return dsl.ContainerSpec(image=RUNTIME, command=["python", "-c", script], args=[mine, theirs])


def test_independent_tasks_run_at_the_same_time_when_parallelism_allows(tmp_path: Path) -> None:
    left, right = str(tmp_path / "left"), str(tmp_path / "right")

    @dsl.pipeline(name="pair")
    def pair():
        wait_for_peer(mine=left, theirs=right)
        wait_for_peer(mine=right, theirs=left)

    ir, platform = _compile(pair, tmp_path)
    result = run_pipeline(ir, parameters={}, context=_context(tmp_path, parallelism=2), platform=platform)
    assert result.status == SUCCEEDED, [t.reason for t in result.tasks.values()]


def test_a_container_does_not_inherit_the_hosts_mlcompile_or_mlflow_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry URI or "try unapproved" left in the user's shell would change what a step
    does; on the cluster nothing sets them, so an emulated container does not see them either.
    What the emulation itself passes (`env`) still arrives."""
    import sys

    from mlcompile.emulate.containers import run_container

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    monkeypatch.setenv("MLCOMPILE_TRY_UNAPPROVED", "1")
    monkeypatch.setenv("LANG", "C.UTF-8")
    out = tmp_path / "env.json"
    code = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    status = run_container(
        Images(runtime="runtime"), "runtime", ["python", "-c", code], [str(out)], {"MLCOMPILE_EMULATE_ROOT": str(tmp_path)}, tmp_path, tmp_path / "log.txt"
    )
    assert status == 0, (tmp_path / "log.txt").read_text()
    seen = json.loads(out.read_text())
    assert "MLFLOW_TRACKING_URI" not in seen and "MLCOMPILE_TRY_UNAPPROVED" not in seen
    assert seen["MLCOMPILE_EMULATE_ROOT"] == str(tmp_path) and seen["LANG"] == "C.UTF-8"
