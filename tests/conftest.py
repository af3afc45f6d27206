"""Shared pytest options."""

from __future__ import annotations

import gc
import itertools
import os
from pathlib import Path

import hang_watchdog
import pytest
from _pytest.mark.expression import Expression
from reliability.example_builds import SHARED_TMP_ENV

from mlcompile.entry import GC_THRESHOLDS

# The slow lane: modules that run whole pipelines or emulated systems, deploy against
# stand-ins, fuzz, or start fresh processes per case. `pytest -m "not slow"` is the inner-loop
# lane (< 2 minutes on 2 cores); CI runs both. A module here is not even imported by that lane.
SLOW_MODULES = {
    "test_target_kubeflow_local_run.py",
    "test_run_local.py",
    "test_fuzz.py",
    "test_deploy_faults.py",
    "test_deploy_hangs.py",
    "test_target_sagemaker_deploy.py",
    "test_target_vertex_deploy.py",
    "test_target_azureml_deploy.py",
    "test_target_kubeflow_deploy.py",
    "test_feature_store_feast.py",
    "test_feature_store_sagemaker.py",
    "test_feature_store_vertex.py",
    "test_hostile_yaml.py",
    "test_network.py",
    "test_fuzz_build.py",
    "test_output_safety.py",
    "test_ci.py",
    "test_ci_action.py",
    "test_container_trainer_platforms.py",
    "test_runtime_tuning_trials.py",
    "test_emulate_azureml_system.py",
    "test_emulate_churn.py",
    "test_emulate_container_trainer.py",
    "test_emulate_lifecycle.py",
    "test_emulate_retraining.py",
    "test_emulate_sagemaker.py",
    "test_emulate_sagemaker_platform.py",
    "test_deploy_plan.py",
    "test_azureml_alerts.py",
    "test_diff_review.py",
    "test_feature_store_azureml.py",
    "test_injection.py",
    "test_emulate_warm_shell.py",
}
# Single slow tests in otherwise quick modules.
SLOW_TESTS = {
    "test_builds_are_byte_stable_across_runs_and_hash_seeds",
    "test_the_build_opens_no_socket",
    "test_a_registered_version_serves_from_the_registry_and_as_its_mlflow_flavor",
    "test_serving_without_an_online_store_imports_no_cloud_sdk",
    "test_the_command_serves_sagemakers_contract_over_http",
    "test_container_trainer_contract_on_the_host",
    "test_command_block_runs",
    "test_the_shipped_table_prices_the_a100_change_on_azure_ml_in_dollars",
    "test_every_target_reports_a_serving_and_schedule_change_in_its_own_files",
    "test_a_truncated_state_file_means_not_done_and_is_rewritten_whole",
    "test_a_secret_value_never_reaches_a_build",
    "test_no_credentials_is_one_line_and_exit_2_on_every_cloud_profile",
    "test_kubeflow_registration_tags_the_version_with_the_run_profile_and_commit",
    "test_a_row_gets_the_same_prediction_in_every_protocol",
    "test_examples_pass_check_with_only_located_warnings",
    "test_build_opens_no_socket_except_loopback",
}
# The longest modules, started first: under `--dist loadfile` a module runs whole on one
# worker, so a long module handed out last keeps the run going while the other workers idle.
# Seconds one worker spent on each, from a `--durations=0` run of the whole suite (on a loaded
# machine: only their order matters; the Azure ML system module measured alone, the two
# SageMaker system modules, newer than that run, placed beside their Azure ML peer).
# Unlisted modules follow in collection order.
LONGEST_MODULES = {
    "tests/test_target_azureml.py": 357,
    "tests/test_emulate_retraining.py": 308,
    "tests/test_run_local.py": 257,
    "tests/test_emulate_azureml_system.py": 250,
    "tests/test_emulate_sagemaker.py": 250,
    "tests/test_emulate_lifecycle.py": 238,
    "tests/test_feature_store_feast.py": 238,
    "tests/test_container_trainer_platforms.py": 231,
    "tests/test_docs.py": 226,
    "tests/test_emulate_container_trainer.py": 204,
    "tests/test_fuzz.py": 186,
    "tests/test_target_sagemaker_deploy.py": 182,
    "tests/test_runtime_tuning_trials.py": 180,
    "tests/reliability/test_deploy_hangs.py": 158,
    "tests/test_emulate_sagemaker_platform.py": 150,
    "tests/test_emulate_churn.py": 139,
    "tests/reliability/test_fuzz_build.py": 137,
    "tests/test_target_azureml_deploy.py": 133,
    "tests/reliability/test_deploy_faults.py": 120,
    # placed, not measured with the others: a cold mypy run (43-84 s) and the Airflow plugin's
    # module with its venv (14-33 s) were handed out last and left one worker running alone
    # for ~60 s after the other two had finished
    "tests/test_typing.py": 120,
    "plugins/mlcompile-airflow/tests/test_airflow_target.py": 120,
    "tests/test_ci_action.py": 120,
    "tests/reliability/test_output_safety.py": 95,
    "tests/test_target_kubeflow_local_run.py": 94,
    "tests/reliability/test_network.py": 81,
    "tests/reliability/test_hostile_yaml.py": 79,
    "tests/test_ci.py": 72,
    "tests/test_feature_store_vertex.py": 66,
    "tests/test_diff_review.py": 64,
    "tests/test_target_vertex_deploy.py": 59,
    "tests/test_feature_store_sagemaker.py": 58,
    "tests/test_runtime_serve.py": 58,
    "tests/test_deploy_plan.py": 56,
}
# Modules that hand generated files to a platform SDK's own loader.
SDK_MODULE_PREFIXES = ("test_target_", "test_feature_store_")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for `-n auto`: two per core. Much of the suite waits on child processes
    (builds, emulated containers, SDK loaders), loopback stand-ins and deadlines it is testing,
    so fewer workers leave the cores idle: on 2 cores the whole suite took 639 s with 3
    workers and 609 s with 4 (one run each, same machine)."""
    return 2 * (os.cpu_count() or 1)


@pytest.hookimpl(trylast=True)  # after pytest's tmp_path plugin has set up the session's folder
def pytest_configure(config: pytest.Config) -> None:
    """Write the project's bytecode once, before any worker starts. The suite starts ~600
    interpreters (builds, deploys, runs, steps, stand-ins); where the environment says
    PYTHONDONTWRITEBYTECODE, as CI machines often do, none of them may write it, so each would
    compile every mlcompile module it imports from source again: ~15% of the suite's CPU on a
    fresh clone. compileall writes it regardless; an unchanged module is left as it is."""
    if not config.pluginmanager.has_plugin("hang_watchdog"):  # in every process that runs tests
        config.pluginmanager.register(hang_watchdog, "hang_watchdog")
    # A process that runs tests imports every platform SDK (~900,000 objects that live until it
    # exits), and a full collection walks them all: with the default thresholds collections
    # took 12% of the CPU of the in-process modules (golden, Azure ML, SageMaker, diff, fuzz);
    # with the command's (mlcompile.entry), 5%, for the same results. Only the test processes: what they start keeps the
    # defaults.
    gc.set_threshold(*GC_THRESHOLDS)
    if hasattr(config, "workerinput"):  # an xdist worker: the controller has done it
        return
    # the session's temporary folder, which each worker's is inside (and pytest's retention
    # policy removes): for what the workers make once and share (reliability/example_builds.py)
    os.environ[SHARED_TMP_ENV] = str(config._tmp_path_factory.getbasetemp())
    import compileall
    import re

    root = Path(__file__).resolve().parents[1]

    class ExpectedOutputs:  # compared file by file with what a build writes: no __pycache__ in them
        pattern = re.compile(r"(^|/)(golden|fixtures)/")

        def search(self, path: str) -> bool:
            return bool(self.pattern.search(Path(path).resolve().relative_to(root).as_posix()))

    expected_outputs = ExpectedOutputs()
    for folder in (root / "src", root / "tests", root / "plugins"):
        compileall.compile_dir(folder, quiet=2, workers=1, rx=expected_outputs)
    test_modules = [
        path for folder in (root / "tests", root / "plugins") for path in folder.rglob("*.py") if _rewritten(path) and not expected_outputs.search(str(path))
    ]
    _write_rewritten_bytecode(config, test_modules)


def _rewritten(path: Path) -> bool:
    return path.name == "conftest.py" or (path.name.startswith("test_") and path.suffix == ".py")


def _write_rewritten_bytecode(config: pytest.Config, modules: list[Path]) -> None:
    """The test modules as pytest imports them (assertions rewritten), compiled once here: under
    PYTHONDONTWRITEBYTECODE each worker would rewrite and compile all of them to collect, ~4 s
    of CPU a worker. pytest's own cache files, written with its own functions (internal ones:
    with a pytest that moved them, nothing is written and each worker compiles as before)."""
    try:
        from _pytest.assertion.rewrite import PYC_TAIL, _read_pyc, _rewrite_test, _write_pyc, assertstate_key, get_cache_dir

        state = config.stash[assertstate_key]
    except (ImportError, KeyError):
        return
    for module in modules:
        cache = get_cache_dir(module)
        pyc = cache / (module.name[:-3] + PYC_TAIL)
        if _read_pyc(module, pyc, state.trace) is not None:
            continue
        cache.mkdir(exist_ok=True)
        source_hash, code = _rewrite_test(module, config)
        _write_pyc(state, code, source_hash, pyc)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden files (expected outputs) from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """True when the run was asked to rewrite golden files rather than compare with them."""
    return bool(request.config.getoption("--update-golden"))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave a slow module unimported when the mark expression deselects all its tests (the fast
    lane): importing the platform SDKs and data stacks costs every worker seconds."""
    if collection_path.name not in SLOW_MODULES or not config.option.markexpr:
        return None
    expression = Expression.compile(config.option.markexpr)
    others = ("sdk", "emulate")  # marks a slow test may carry besides `slow`
    for carried in itertools.product((False, True), repeat=len(others)):
        marks = {"slow", *(mark for mark, on in zip(others, carried, strict=True) if on)}
        if expression.evaluate(lambda name, /, **kwargs: name in marks):
            return None
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # longest modules first (a stable sort keeps each module's own order)
    items.sort(key=lambda item: -LONGEST_MODULES.get(item.nodeid.split("::", 1)[0], 0))
    for item in items:
        module = Path(str(item.fspath)).name
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if module.startswith(SDK_MODULE_PREFIXES):
            item.add_marker(pytest.mark.sdk)
