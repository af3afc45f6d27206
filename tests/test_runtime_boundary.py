"""The runtime (mlcompile.runtime: the code that runs inside the pipelines' containers) imports
nothing of the compiler: a pipeline built and deployed today runs the runtime of its image,
so no compiler module may be renamed under it. What both sides agree on is the contract
(mlcompile.runtime.contract), which imports the standard library only."""

from __future__ import annotations

import importlib
import sys

import pytest
from import_graph import PACKAGE, imports_of, modules

from mlcompile.runtime import STEPS, TARGET_STEPS, contract

RUNTIME = f"{PACKAGE}.runtime"
CONTRACT = f"{RUNTIME}.contract"


def _runtime_modules() -> list[str]:
    return [m for m in modules() if m == RUNTIME or m.startswith(RUNTIME + ".")]


@pytest.mark.parametrize("module", _runtime_modules())
def test_a_runtime_module_imports_only_the_runtime(module: str) -> None:
    # the package root is imported with any of its modules; it holds the version only
    outside = {target: line for target, line in imports_of(module).items() if not target.startswith(RUNTIME) and target != PACKAGE}
    assert not outside, f"{module} imports the compiler: " + ", ".join(f"{t} (line {line})" for t, line in sorted(outside.items()))


def test_the_package_root_imports_nothing_of_mlcompile() -> None:
    assert imports_of(PACKAGE) == {}


def test_the_contract_imports_the_standard_library_only() -> None:
    import ast

    tree = ast.parse(modules()[CONTRACT].read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.partition(".")[0] for name in imported} - set(sys.stdlib_module_names) == set()


@pytest.mark.parametrize("module", contract.ENTRY_MODULES)
def test_every_module_a_generated_pipeline_runs_is_in_the_runtime(module: str) -> None:
    # built files name these modules (`python -m <module>`): each is a runtime entry point
    assert module == RUNTIME or module.startswith(RUNTIME + ".")
    entry = importlib.import_module(module if module != RUNTIME else RUNTIME + ".__main__")
    assert callable(entry.main)


def test_every_step_function_is_in_the_runtime() -> None:
    for entry in (*STEPS.values(), *TARGET_STEPS.values()):
        assert entry.startswith(RUNTIME + "."), entry
