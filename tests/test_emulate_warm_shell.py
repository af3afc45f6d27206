"""The runtime image's shell lines start `python -m …` warm: under `Images.warm` the emulator
puts a `python` first on the shell's PATH that forks the module from the warm fork server. The
step cannot tell: it gets the shell's argv, folder, environment (PATH as given), standard
streams and exit status; any other use of `python` is the real interpreter; a stopped step
takes its forked child with it. Runs can share one process's warm interpreter
(MLCOMPILE_EMULATE_WARM_SOCKET) instead of each starting a fork server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcompile.emulate import warm_shell
from mlcompile.emulate.containers import Images, run_container
from mlcompile.runtime import PRELOAD

pytestmark = pytest.mark.emulate

WARM = Images(runtime="runtime", warm=PRELOAD)
COLD = Images(runtime="runtime")


def _shell(images: Images, line: str, tmp_path: Path, **options: object) -> tuple[int, str]:
    folder = tmp_path / "work"
    folder.mkdir(exist_ok=True)
    env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], "PROBE_MARKER": "from-the-job"}
    status = run_container(images, "runtime", ["bash", "-c", line], [], env, folder, tmp_path / "log.txt", **options)  # type: ignore[arg-type]
    return status, (tmp_path / "log.txt").read_text()


def test_a_shell_lines_python_module_is_forked_warm_and_sees_what_the_shell_gave_it(tmp_path: Path) -> None:
    line = 'echo rows | python -m warm_shell_probe seen.json 3 > out.txt; echo "status=$?"; cat out.txt'
    status, log = _shell(WARM, line, tmp_path)
    assert status == 0, log
    seen = json.loads((tmp_path / "work" / "seen.json").read_text())
    assert seen["warm"] is True  # the fork server's imports were there before the module ran
    assert seen["frozen"] > 100_000  # and frozen: the step's collections leave the shared pages alone
    assert seen["argv"] == ["seen.json", "3"] and seen["stdin"] == "rows\n" and seen["marker"] == "from-the-job"
    assert seen["cwd"] == str(tmp_path / "work")
    assert seen["path"].split(os.pathsep)[0] == os.path.dirname(sys.executable)  # the shim's folder is not on it
    assert "status=3" in log and "to stdout" in log and "to stderr" in log


def test_the_same_line_cold_runs_a_fresh_interpreter_with_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # a fresh interpreter finds the probe as the fork server does
    status, log = _shell(COLD, 'python -m warm_shell_probe seen.json 3 </dev/null; echo "status=$?"', tmp_path)
    seen = json.loads((tmp_path / "work" / "seen.json").read_text())
    assert status == 0 and "status=3" in log
    assert seen["warm"] is False and seen["frozen"] == 0 and seen["argv"] == ["seen.json", "3"] and seen["cwd"] == str(tmp_path / "work")


def test_any_other_python_is_the_real_interpreter(tmp_path: Path) -> None:
    line = "python -c 'import sys; print(sys.executable); sys.exit(4)'; echo \"status=$?\"; python3 -c 'import sys; print(sys.prefix)'"
    status, log = _shell(WARM, line, tmp_path)
    assert status == 0, log
    assert f"{sys.executable}\nstatus=4\n{sys.prefix}\n" in log


@pytest.mark.parametrize("images", [WARM, COLD], ids=["warm", "cold"])
def test_a_timed_out_shell_line_stops_every_process_it_started(images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform stops the whole container at its time limit: the shell's children (a
    fresh interpreter, or the shim and its forked child) end with it."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    started = time.monotonic()
    status, log = _shell(images, "python -m warm_shell_probe seen.json 0 60 </dev/null; echo next-command", tmp_path, timeout=3)
    assert status == 124 and "timed out after 3s" in log
    assert time.monotonic() - started < 30 and "next-command" not in log.splitlines()
    pid = json.loads((tmp_path / "work" / "seen.json").read_text())["pid"]
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("profile", "feast"), [("kfp-gke", True), ("azure-prod", False), ("aws-prod", False), ("gcp-prod", False)])
def test_the_fork_server_imports_feast_only_for_a_plan_that_opens_a_feast_repository(profile: str, feast: bool) -> None:
    """Feast costs ~4 s of CPU to import: churn's Kubeflow build materialises its online view
    through Feast, the other platforms' builds never open a Feast repository."""
    from mlcompile.build import compile_system, resolve_profiles
    from mlcompile.emulate.containers import runtime_preload
    from mlcompile.runtime import PRELOAD_WITH_FEAST

    root = Path(__file__).resolve().parents[1]
    spec = str(root / "examples" / "churn" / "mlcompile.yaml")
    plan = compile_system(spec, resolve_profiles(spec, [str(root / "targets" / f"{profile}.yaml")]), render=False, git_commit=None).results[0].plan
    assert runtime_preload(plan) == (PRELOAD_WITH_FEAST if feast else PRELOAD)


@pytest.mark.parametrize("images", [WARM, COLD], ids=["warm", "cold"])
def test_a_container_gets_its_share_of_threads_unless_its_definition_names_them(images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to PARALLELISM containers run at once here: each gets that share of the cores for
    OpenMP/BLAS (a forked one too, whose libraries the fork server loaded), so their thread
    pools do not contend and spin; a definition's own OMP_NUM_THREADS wins."""
    from mlcompile.emulate.containers import PARALLELISM

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = max(1, (os.cpu_count() or 1) // PARALLELISM)
    status, log = _shell(images, "python -m warm_shell_probe seen.json 0 0 threads </dev/null", tmp_path)
    seen = json.loads((tmp_path / "work" / "seen.json").read_text())
    assert status == 0, log
    assert seen["omp"] == str(share) and seen["openmp"] == [share]
    status, log = _shell(images, "OMP_NUM_THREADS=3 python -m warm_shell_probe seen.json 0 0 threads </dev/null", tmp_path)
    seen = json.loads((tmp_path / "work" / "seen.json").read_text())
    assert status == 0, log
    assert seen["omp"] == "3" and seen["openmp"] == [3]


HOST = "import sys, time; from mlcompile.emulate.warm_shell import serve; from mlcompile.runtime import PRELOAD; print(serve(PRELOAD), flush=True); time.sleep(600)"


@pytest.fixture
def shared_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Another process serving its warm interpreter; this one's runs are told its socket."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent / "src")])}
    host = subprocess.Popen([sys.executable, "-c", HOST], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert host.stdout is not None
        monkeypatch.setenv(warm_shell.SHARED_SOCKET_ENV, host.stdout.readline().strip())
        yield host.pid
    finally:
        host.kill()
        host.wait()


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().split(") ", 1)[1].split()[1])


def test_with_a_shared_warm_interpreter_a_runs_steps_fork_from_the_serving_process(shared_host: int, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    status = run_container(WARM, "runtime", ["python", "-m", "warm_shell_probe", "seen.json", "3"], [], {"PROBE_MARKER": "m"}, folder, tmp_path / "log.txt")
    seen = json.loads((folder / "seen.json").read_text())
    assert status == 3 and seen["warm"] is True and seen["argv"] == ["seen.json", "3"] and seen["marker"] == "m"
    assert _parent(seen["ppid"]) == shared_host  # forked by the serving process's fork server
    log = (tmp_path / "log.txt").read_text()
    assert log.startswith(f"$ {sys.executable} -m warm_shell_probe seen.json 3\n") and "to stdout" in log and "to stderr" in log
    status, log = _shell(WARM, 'python -m warm_shell_probe seen.json 5 </dev/null; echo "status=$?"', tmp_path)
    assert status == 0 and "status=5" in log
    assert _parent(json.loads((folder / "seen.json").read_text())["ppid"]) == shared_host


def test_with_a_shared_warm_interpreter_a_timed_out_step_is_terminated_then_stopped(shared_host: int, tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    command = ["python", "-m", "warm_shell_probe", "seen.json", "0"]
    assert run_container(WARM, "runtime", command, [], {}, folder, tmp_path / "log.txt") == 0  # the host's fork server is up
    status = run_container(WARM, "runtime", [*command, "60", "term"], [], {}, folder, tmp_path / "log.txt", timeout=3)
    assert status == 124 and "timed out after 3s" in (tmp_path / "log.txt").read_text()
    assert (folder / "seen.json.term").read_text() == "terminated"  # SIGTERM first: a launcher cancels what it started
    pid = json.loads((folder / "seen.json").read_text())["pid"]
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
