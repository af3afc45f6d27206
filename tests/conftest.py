"""Shared pytest options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The slow lane: modules that run whole pipelines, deploy against stand-ins, fuzz, or start
# fresh processes per case. `pytest -m "not slow"` is the inner-loop lane; CI runs both.
SLOW_MODULES = {
    "test_target_kubeflow_local_run.py",
    "test_run_local.py",
    "test_fuzz.py",
    "test_deploy_faults.py",
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
    "test_ci.py",
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
}
# Modules that hand generated files to a platform SDK's own loader.
SDK_MODULE_PREFIXES = ("test_target_", "test_feature_store_")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for `-n auto`: half again as many as cores. Much of the suite waits on child
    processes (builds, emulated containers, SDK loaders) and loopback stand-ins, so a worker per
    core leaves the cores idle about a fifth of the time."""
    cores = os.cpu_count() or 1
    return cores + max(1, cores // 2)


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = Path(str(item.fspath)).name
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        if module.startswith(SDK_MODULE_PREFIXES):
            item.add_marker(pytest.mark.sdk)
