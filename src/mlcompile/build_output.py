"""Writing builds into --out: each folder swapped in whole (an interrupted build leaves the
previous one as it was), two builds into one folder taking turns under a lock, and nothing
written over a file or folder that is not an earlier build."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlcompile.errors import UsageError
from mlcompile.targets.base import OutputFile, is_safe_relative_path

MANIFEST = "manifest.json"
STAGING_PREFIX = ".mlcompile-build-"
LOCK_FILE = ".mlcompile.lock"
LOCK_TIMEOUT_ENV = "MLCOMPILE_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 300.0  # seconds a build waits for another one writing the same --out
# Test-only fault injection point: with MLCOMPILE_TEST_PAUSE=<point>[:<seconds>] the build
# prints "paused at <point>" on stderr and sleeps (an hour, or the seconds given), so that a
# test can interrupt it, or start a second build, at a known moment. Points: "written" (every
# file staged, nothing swapped), "swapped-<n>" (n profile folders swapped in).
TEST_PAUSE_ENV = "MLCOMPILE_TEST_PAUSE"


def safe_folder_name(name: str, what: str) -> str:
    """A name that becomes one folder of --out: a single safe path part, not hidden (hidden
    names are mlcompile's own: staging folders and the lock file). The spec's patterns already
    refuse anything else with a located diagnostic; this is the writer's last line of defence."""
    if not is_safe_relative_path(name) or "/" in name or name.startswith("."):
        raise UsageError(f"refusing to write {what} {name!r}: not a safe folder name (letters, digits, '.', '_', '-')")
    return name


@contextmanager
def output_errors(out: Path) -> Iterator[None]:
    """An OSError while writing the build (a read-only or full disk, a folder where the lock
    file goes, a permission) is the environment's, not a bug: exit status 2, with the path
    and the reason."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else out
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write the build into {out}: {where}: {reason}") from exc


def _is_previous_build(folder: Path, name: str) -> bool:
    """Whether `folder` is what a build of profile `name` wrote: a real folder whose
    manifest.json is mlcompile's, for that profile. (Files added to a build since, such as a
    tool's caches, go with it: the folder is the build's.)"""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        data = json.loads((folder / MANIFEST).read_bytes())
        return isinstance(data["files"], list) and "mlcompile_version" in data and data["profile"] == name
    except (OSError, ValueError, TypeError, KeyError):
        return False


def refuse_foreign_folders(profiles: Sequence[str], out_dir: str | os.PathLike[str]) -> None:
    """A build replaces `out/<profile>/` whole: only ever what an earlier build wrote there.
    Anything else of that name (a file, a symlink, a folder without mlcompile's manifest for
    that profile) is the user's: refused, with exit status 2."""
    out = Path(out_dir)
    for profile in profiles:
        folder = out / safe_folder_name(profile, "profile")
        if (folder.exists() or folder.is_symlink()) and not _is_previous_build(folder, profile):
            raise UsageError(
                f"{folder} exists and is not an earlier build of profile '{profile}' "
                f"(no mlcompile {MANIFEST} for that profile in it): the build would replace it; "
                "nothing was written. Move it away, or build into another --out"
            )


class _Resumed(Exception):
    """SIGUSR1 ended a test pause early."""


def _resume(*_: Any) -> None:
    raise _Resumed


def _pause_for_tests(point: str) -> None:
    wanted, _, seconds = (os.environ.get(TEST_PAUSE_ENV) or "").partition(":")
    if wanted == point:
        import signal
        import sys
        import time

        # SIGUSR1 resumes the build: a test that has seen what it waited for need not guess
        # how long a loaded machine takes to get there.
        previous = signal.signal(signal.SIGUSR1, _resume)
        print(f"paused at {point}", file=sys.stderr, flush=True)
        try:
            time.sleep(float(seconds or 3600))
        except _Resumed:
            pass
        finally:
            signal.signal(signal.SIGUSR1, previous)


class BuildLock:
    """An exclusive lock on `out/.mlcompile.lock` (flock) held while a build writes into
    `out`, so that two builds into the same folder never interleave. A second build waits
    for the first (saying so once) up to MLCOMPILE_LOCK_TIMEOUT seconds, then gives up with
    exit status 2. The lock file is removed on release; a waiter that wakes up holding the
    lock of a removed file takes the lock again on the new one."""

    def __init__(self, out: Path, on_wait: Any = None):
        self.path = out / LOCK_FILE
        self.on_wait = on_wait
        self.fd: int | None = None

    def __enter__(self) -> BuildLock:
        import fcntl
        import time

        timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT)
        deadline = time.monotonic() + timeout
        told = False
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise UsageError(
                                f"another mlcompile build is writing into {self.path.parent} (lock {self.path}); "
                                f"gave up after {timeout:g}s ({LOCK_TIMEOUT_ENV} sets how long to wait)"
                            ) from None
                        if not told and self.on_wait is not None:
                            self.on_wait(f"waiting for another mlcompile build writing into {self.path.parent} …")
                            told = True
                        time.sleep(0.05)
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    self.fd = fd
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the holder removed this file on release: lock the new one

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            # unlinked while still held: a waiter on this inode sees it is gone and retries
            self.path.unlink(missing_ok=True)
            os.close(self.fd)
            self.fd = None


def _exchange(staged: Path, final: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE): `final` is never missing.
    False when the platform or filesystem cannot (the caller falls back to two renames)."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(staged), at_fdcwd, os.fsencode(final), rename_exchange) == 0:
        return True
    return False


def _recover(out: Path) -> None:
    """Finish what an interrupted build left (called under the lock, so no build is running):
    a profile folder moved aside but not replaced is moved back, and staging folders go."""
    for staging in sorted(out.glob(STAGING_PREFIX + "*")):
        for retired in sorted(staging.glob(".retired-*")):
            final = out / retired.name.removeprefix(".retired-")
            if not final.exists():
                retired.rename(final)
        shutil.rmtree(staging, ignore_errors=True)


def write_folders(folders: Sequence[tuple[str, Sequence[OutputFile]]], out_dir: str | os.PathLike[str], *, on_wait: Any = None) -> list[Path]:
    """Write each (profile, files) to `out_dir/<profile>/` atomically: everything is written
    into a temporary folder inside `out_dir` (same filesystem), then each profile folder is
    swapped in by rename. An interruption before the swap leaves the previous build byte for
    byte; each profile folder is replaced in one step, so it is always one whole build. Two
    builds into the same `out_dir` take turns (BuildLock); the next build removes what an
    interrupted one left (its hidden `.mlcompile-build-*` staging folder)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")
    if out.is_symlink() and not out.exists():
        raise UsageError(f"--out {out} is a symbolic link to {os.readlink(out)}, which does not exist")
    with output_errors(out):
        refuse_foreign_folders([name for name, _ in folders], out)
        return _write(folders, out, on_wait)


def _write(folders: Sequence[tuple[str, Sequence[OutputFile]]], out: Path, on_wait: Any) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    names = [safe_folder_name(name, "profile") for name, _ in folders]
    written: list[Path] = []
    with BuildLock(out, on_wait):
        _recover(out)
        refuse_foreign_folders(names, out)  # again under the lock: another build may have run
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        root = staging.resolve()  # a symlinked --out resolves here too
        try:
            for name, (_, files) in zip(names, folders):
                folder = staging / name
                for output in files:
                    destination = folder / output.path
                    # last line of defence: OutputFile checked the path; check where it lands
                    if not is_safe_relative_path(output.path) or not destination.resolve().is_relative_to(root / name):
                        raise UsageError(f"refusing to write {output.path!r} outside {out / name}")
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    destination.write_bytes(output.content)
            _pause_for_tests("written")
            for index, name in enumerate(names, 1):
                final = out / name
                staged = staging / name
                if not (final.is_dir() and not final.is_symlink() and _exchange(staged, final)):
                    if final.exists() or final.is_symlink():
                        final.rename(staging / f".retired-{name}")
                    staged.rename(final)
                written.append(final)
                _pause_for_tests(f"swapped-{index}")
        finally:
            _recover(out)  # on an exception between two renames, the previous folder goes back
    return written
