"""A warm `python` for the runtime image's shell command lines.

A platform that runs a step as a shell line (Azure ML's command jobs: `python -m
mlcompile.runtime extract-features … && cp …`, a `case` on a gate's decision) starts the
runtime from bash, so the emulator cannot fork the step itself. Under `Images.warm` it puts a
`python` and a `python3` first on that shell's PATH instead: a few lines of standard library
that hand `python -m MODULE args…`, the environment, the working folder and the three standard
streams to this process, which forks the module from the warm fork server and answers with its
exit status. Any other use of `python` executes the real interpreter. bash, its redirections,
`$?` and `case` are untouched, and the step sees the PATH it was given: only the interpreter's
start is warm (~2-6 s of imports per step otherwise).

Runs that follow one another (a test suite's) can share one warm interpreter instead of each
starting its own: a process calls `serve()` and hands the socket it returns to the runs it
starts as MLCOMPILE_EMULATE_WARM_SOCKET; their shims then talk to that process, and a run
starts no fork server of its own.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import threading
from multiprocessing import reduction
from multiprocessing.connection import wait
from typing import Any

# (payload length, then the payload: JSON of module, args, env, cwd); stdin, stdout and stderr
# travel beside the length as SCM_RIGHTS file descriptors
_LENGTH_BYTES = 8
_STATUS_BYTES = 4

_SHIM = """#!{python} -IS
import json, os, signal, socket, sys
REAL, ADDRESS, FOLDER = {python!r}, {address!r}, {folder!r}
args = sys.argv[1:]
path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != FOLDER)
if len(args) >= 2 and args[0] == "-m":
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(ADDRESS)
    except OSError:
        client = None
    if client is not None:
        env = dict(os.environ, PATH=path)
        payload = json.dumps({{"module": args[1], "args": args[2:], "env": env, "cwd": os.getcwd()}}).encode()
        socket.send_fds(client, [len(payload).to_bytes({length}, "big")], [0, 1, 2])
        client.sendall(payload)
        # stopped (SIGTERM): say so to the emulator, which stops the step with its grace
        # period, and wait for its status, as the real interpreter would have run its handlers
        signal.signal(signal.SIGTERM, lambda *_: client.shutdown(socket.SHUT_WR))
        status = b""
        while len(status) < {status}:
            chunk = client.recv({status} - len(status))
            if not chunk:
                sys.stderr.write("python: the emulator's warm interpreter went away\\n")
                os._exit(70)
            status += chunk
        os._exit(int.from_bytes(status, "big", signed=True))
os.environ["PATH"] = path
os.execv(REAL, [REAL, *args])
"""


class _PassedFd:
    """A file descriptor handed to the forked child through the fork server (as SCM_RIGHTS)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        return (_received_fd, (reduction.DupFd(self.fd),))


def _received_fd(duplicate: Any) -> int:
    return int(duplicate.detach())


SHARED_SOCKET_ENV = "MLCOMPILE_EMULATE_WARM_SOCKET"


def _short_folder() -> str:
    """A folder of its own, removed at exit, with a short path: a Unix socket's path is
    limited to ~100 bytes."""
    folder = tempfile.mkdtemp(prefix="mlc-warm-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _write_shims(folder: str, address: str) -> None:
    shim = _SHIM.format(python=sys.executable, address=address, folder=folder, length=_LENGTH_BYTES, status=_STATUS_BYTES)
    for name in ("python", "python3"):
        path = os.path.join(folder, name)
        with open(path, "w") as handle:
            handle.write(shim)
        os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


class _Server:
    def __init__(self, preload: tuple[str, ...]) -> None:
        self.preload = preload
        self.folder = _short_folder()
        self.address = os.path.join(self.folder, "socket")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.address)
        os.chmod(self.address, stat.S_IRWXU)  # this user's processes only: it runs what it is sent
        self.listener.listen(64)
        threading.Thread(target=self._accept, name="warm-shell", daemon=True).start()
        atexit.register(self.listener.close)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed at exit
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        fds: list[int] = []
        try:
            header, fds, _, _ = socket.recv_fds(connection, _LENGTH_BYTES, 3)
            header += _read(connection, _LENGTH_BYTES - len(header))
            request = json.loads(_read(connection, int.from_bytes(header, "big")))
            handed, fds = fds, []  # _start closes them, whether or not the child starts
            started = self._start(request, handed)
            status = _exit_status(started, connection)
            connection.sendall(status.to_bytes(_STATUS_BYTES, "big", signed=True))
        except (OSError, ValueError, EOFError):
            pass  # the shell side went away: its step is over
        finally:
            for fd in fds:
                os.close(fd)
            connection.close()

    def _start(self, request: dict[str, Any], fds: list[int]) -> Any:
        from mlcompile.local.workers import fork_context

        child_args = (request["module"], request["args"], request["env"], request["cwd"], [_PassedFd(fd) for fd in fds])
        process = fork_context(self.preload).Process(target=_shell_child, args=child_args, daemon=False)
        try:
            process.start()
        finally:
            for fd in fds:  # the child holds its own copies now
                os.close(fd)
        return process


def _exit_status(process: Any, connection: socket.socket) -> int:
    """The child's exit status as a shell reports it; if the shell side goes first (its step
    was stopped), the child is stopped with it as the platform stops a container: SIGTERM,
    the grace period to finish (a launcher cancels the job it started), then SIGKILL."""
    from mlcompile.local.workers import STOP_GRACE_SECONDS, shell_status

    if process.sentinel not in wait([process.sentinel, connection]):
        process.terminate()
        process.join(STOP_GRACE_SECONDS)
        if process.is_alive():
            process.kill()
    process.join()
    return shell_status(process.exitcode)


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the shell side closed")
        data += chunk
    return data


def _shell_child(module: str, args: list[str], env: dict[str, str], cwd: str, fds: list[int]) -> None:
    """`python -m module args…` as the shell started it: its streams, environment and folder."""
    for target, fd in enumerate(fds):
        if fd != target:
            os.dup2(fd, target)
            os.close(fd)
    from mlcompile.local.workers import adopt, run_module_as_main

    adopt(env, cwd)
    sys.stdin = os.fdopen(0, "r", closefd=False)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)

    raise SystemExit(run_module_as_main(module, args))


_server: _Server | None = None
_shims: dict[str, str] = {}  # socket address -> the folder of shims that talk to it
_lock = threading.Lock()


def shared_socket() -> str | None:
    """The warm interpreter another process serves to this one's runs, if it names one."""
    return os.environ.get(SHARED_SOCKET_ENV) or None


def serve(preload: tuple[str, ...]) -> str:
    """Start this process's warm interpreter (once; it lives as long as the process) and
    return its socket, for runs started from here to share as MLCOMPILE_EMULATE_WARM_SOCKET."""
    global _server
    with _lock:
        if _server is None:
            _server = _Server(preload)
        return _server.address


def shim_folder(preload: tuple[str, ...]) -> str:
    """The folder to put first on a runtime-image shell's PATH: its `python` talks to the
    shared warm interpreter if one is named, else to this process's own, started on first use."""
    address = shared_socket() or serve(preload)
    with _lock:
        if address not in _shims:
            _shims[address] = _short_folder()
            _write_shims(_shims[address], address)
        return _shims[address]
