"""`mlcompile build` and `validate` never touch the network: every example, built for every
profile in targets/ (all five platforms), with networking disabled, succeeds and writes byte
for byte what a build with networking writes.

Two ways of disabling it, together: a socket guard (a `sitecustomize` module, imported by
Python at start-up, that makes every IPv4/IPv6 connect, sendto and name lookup raise and
records it — so a build that swallowed the error still fails the test), and, where the kernel
lets us, a network namespace of its own with no interface but loopback (`unshare -n`: nothing
reaches the network even below Python's socket module). One offline build, beside the
reference build, keeps the CI time down."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.example_builds import EXAMPLES, ROOT, build_command, reference_build, tree

GUARD = """
import os
import socket

_LOG = os.environ["MLCOMPILE_NETWORK_GUARD_LOG"]
_INET = (socket.AF_INET, socket.AF_INET6)


def _refuse(what, detail):
    with open(_LOG, "a") as log:
        log.write(f"{what} {detail!r}\\n")
    raise OSError(f"network access blocked by the test's socket guard: {what} {detail!r}")


_connect, _connect_ex, _sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto


def connect(self, address):
    if self.family in _INET:
        _refuse("connect", address)
    return _connect(self, address)


def connect_ex(self, address):
    if self.family in _INET:
        _refuse("connect_ex", address)
    return _connect_ex(self, address)


def sendto(self, data, *args):
    if self.family in _INET:
        _refuse("sendto", args[-1])
    return _sendto(self, data, *args)


socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto
socket.getaddrinfo = lambda host, *args, **kwargs: _refuse("getaddrinfo", host)
socket.gethostbyname = lambda host: _refuse("gethostbyname", host)
socket.gethostbyname_ex = lambda host: _refuse("gethostbyname_ex", host)
socket.create_connection = lambda address, *args, **kwargs: _refuse("create_connection", address)
"""


def guarded_env(folder: Path) -> dict[str, str]:
    (folder / "guard").mkdir(parents=True, exist_ok=True)
    (folder / "guard" / "sitecustomize.py").write_text(GUARD)
    path = os.pathsep.join(p for p in (str(folder / "guard"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "MLCOMPILE_NETWORK_GUARD_LOG": str(folder / "attempts.log")}


def unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def offline_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[subprocess.CompletedProcess[str], Path]]]:
    """The offline build and validate (socket guard, in a namespace without network where
    possible) run at the same time as the reference build."""
    folder = tmp_path_factory.mktemp("offline")
    env = guarded_env(folder)
    offline = ["unshare", "-n"] if unshare_works() else []
    commands = {
        "guarded build": offline + build_command(folder / "guarded"),
        "guarded validate": offline
        + [sys.executable, "-m", "mlcompile", "validate", *[str(ROOT / "examples" / e / "mlcompile.yaml") for e in EXAMPLES], "-t", str(ROOT / "targets")],
    }
    running = {
        name: subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name, command in commands.items()
    }
    reference_build()
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=600)
        results[name] = (subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), folder)
    yield results


def test_the_socket_guard_blocks_and_records_a_connection(tmp_path: Path) -> None:
    env = guarded_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", "import urllib.request; urllib.request.urlopen('http://192.0.2.1/', timeout=1)"], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "blocked by the test's socket guard" in done.stderr
    assert "('192.0.2.1', 80)" in (tmp_path / "attempts.log").read_text()


def test_build_with_the_socket_guard_succeeds_and_writes_the_same_bytes(offline_runs) -> None:  # type: ignore[no-untyped-def]
    done, folder = offline_runs["guarded build"]
    assert done.returncode == 0, done.stderr
    assert not (folder / "attempts.log").exists(), (folder / "attempts.log").read_text()
    built = tree(folder / "guarded")
    assert len({path.split("/")[1] for path in built}) == 5, "every profile, every platform"
    assert built == tree(reference_build())


def test_validate_with_the_socket_guard_succeeds(offline_runs) -> None:  # type: ignore[no-untyped-def]
    done, folder = offline_runs["guarded validate"]
    assert done.returncode == 0, done.stderr
    assert not (folder / "attempts.log").exists()
    assert done.stderr.count(": valid for aws-prod, azure-prod, gcp-prod, kfp-gke, local") == len(EXAMPLES), done.stderr


def test_the_offline_runs_had_no_network_namespace_interface_but_loopback() -> None:
    """Where `unshare -n` works, the offline runs above ran in it: show that it has no route out."""
    if not unshare_works():
        pytest.skip("`unshare -n` is not permitted here (needs user namespaces or root): the socket guard alone was used")
    probe = "import socket; s = socket.socket(); s.settimeout(2); s.connect(('192.0.2.1', 80))"
    done = subprocess.run(["unshare", "-n", sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode != 0 and "Network is unreachable" in done.stderr


def test_a_machine_set_up_for_another_azure_cloud_builds_offline_and_the_same(tmp_path: Path) -> None:
    """azure-ai-ml looks the "current cloud" up on Azure Resource Manager when the environment
    names one it does not know (as a sovereign-cloud CI runner does): a build ignores it."""
    env = {**guarded_env(tmp_path), "AZUREML_CURRENT_CLOUD": "contoso-sovereign-cloud", "ARM_CLOUD_METADATA_URL": "https://management.contoso.example/metadata"}
    command = [sys.executable, "-m", "mlcompile", "build", str(ROOT / "examples/churn/mlcompile.yaml"), "-t", str(ROOT / "targets/azure-prod.yaml"),
               "-o", str(tmp_path / "out"), "--git-commit", "none", "-q"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "attempts.log").exists(), (tmp_path / "attempts.log").read_text()
    assert tree(tmp_path / "out/azure-prod") == tree(reference_build() / "churn-prediction/azure-prod")
