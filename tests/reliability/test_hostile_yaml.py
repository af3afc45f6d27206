"""Hostile YAML, through the real command line: every case of hostile_cases.py, as the
system spec and as a target profile, through `mlcompile validate` and `mlcompile build`.

Each run is a fresh process and must:

* exit 2, with a `file:LINE:COL: error:` line at the hostile file, saying what was refused;
* show no traceback and no internal error;
* run nothing from the file (the code-running tags would create MARKER);
* stay under 200 MiB of peak memory (ru_maxrss of that process alone);
* finish: 30 s here only catches a hang on a loaded CI machine. The figures — under 2 s
  each, and peak memory — come from `python bench/hostile.py`, on a quiet machine.

Every case runs `validate` on the spec, plus one of the other three (build of the spec,
validate or build with the case as profile) in turn, to keep CI short;
MLCOMPILE_FUZZ_SCALE=2 or more runs all four, as the bench does."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reliability.hostile_cases import CASES, LOCATED, MARKER, Case, Run, prepare, run_measured

MAX_RSS_MIB = 200
HANG_SECONDS = 30
COMBOS = (("spec", "validate"), ("spec", "build"), ("profile", "validate"), ("profile", "build"))
ALL_COMBOS = float(os.environ.get("MLCOMPILE_FUZZ_SCALE", "1")) >= 2


def _combos(index: int) -> list[tuple[str, str]]:
    return list(COMBOS) if ALL_COMBOS else [COMBOS[0], COMBOS[1 + index % 3]]


RUNS = [(case, role, command) for index, case in enumerate(CASES) for role, command in _combos(index)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], tuple[Run, str, Path]]:
    """Every run, two at a time (the machine has two cores; each run is measured alone)."""
    root = tmp_path_factory.mktemp("hostile")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}

    def one(run: tuple[Case, str, str]) -> tuple[tuple[str, str, str], tuple[Run, str, Path]]:
        case, role, command = run
        folder = root / f"{case.name}-{role}-{command}"
        args, hostile = prepare(case, role, command, folder)
        return (case.name, role, command), (run_measured(args, folder, timeout=HANG_SECONDS, env=env), hostile, folder)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, RUNS))


@pytest.mark.parametrize(("case", "role", "command"), RUNS, ids=[f"{c.name}-{r}-{m}" for c, r, m in RUNS])
def test_hostile_input_is_refused(results: dict, case: Case, role: str, command: str) -> None:
    run, hostile, folder = results[(case.name, role, command)]
    shown = f"\n--- stderr ---\n{run.stderr[-3000:]}\n--- stdout ---\n{run.stdout[-1000:]}"
    assert not run.timed_out, f"{case.what}: still running after {HANG_SECONDS} s{shown}"
    assert run.exit_code == 2, f"{case.what}: exit {run.exit_code}{shown}"
    assert "Traceback" not in run.stderr + run.stdout, shown
    assert "internal error" not in run.stderr, shown
    located = [m for m in LOCATED.finditer(run.stderr) if m.group("file") == hostile]
    assert located, f"no located 'file:LINE:COL: error:' line at {hostile}{shown}"
    assert all(int(m.group("line")) >= 1 and int(m.group("col")) >= 1 for m in located)
    assert re.search(case.expect, run.stderr), f"refused, but not for /{case.expect}/{shown}"
    assert not (folder / MARKER).exists(), "a tag in the file was executed"
    assert not (folder / "out").exists(), "a refused build wrote output"
    assert run.peak_rss_mib < MAX_RSS_MIB, f"{case.what}: peak RSS {run.peak_rss_mib:.0f} MiB"


def test_diagnostics_stay_short(results: dict) -> None:
    """A 4 MiB value is shown shortened: the report of a hostile file stays readable."""
    for (name, _role, _command), (run, _hostile, _folder) in results.items():
        assert len(run.stderr) < 20_000, f"{name}: {len(run.stderr):,} characters of diagnostics"


# ------------------------------------------------------------------------------ the limits, in-process


def test_a_large_legal_document_still_loads() -> None:
    """Past 150,000 tokens the loader composes with its own node limit (libyaml's composer has
    none): a document just under it — 99,990 list items, 200,000 tokens — still loads."""
    from mlcompile.spec import loader

    text = "a:\n" + "- 1\n" * (loader.MAX_VALUES - 10)
    assert yaml_tokens(text) > loader.MAX_FAST_TOKENS
    assert len(loader.load_yaml_text(text, "big.yaml").data["a"]) == loader.MAX_VALUES - 10


def test_the_node_limit_is_located() -> None:
    from mlcompile.errors import SpecError
    from mlcompile.spec import loader

    text = "a: 1\nb:\n" + "- x\n" * loader.MAX_NODES
    with pytest.raises(SpecError) as refused:
        loader.load_yaml_text(text, "flood.yaml")
    (diagnostic,) = refused.value.diagnostics
    assert diagnostic.message == f"document has more than {loader.MAX_VALUES} keys and values"
    assert (diagnostic.line, diagnostic.col) == (loader.MAX_NODES - 2, 3)  # the item past the limit: 5 nodes come before the items


def yaml_tokens(text: str) -> int:
    import yaml

    scanner = yaml.CSafeLoader(text)
    try:
        return scanner.raw_scan()
    finally:
        scanner.dispose()
