"""Hostile YAML files, and a runner that measures one `mlcompile` process (no tests here).

Each case writes one file that anyone can put in a pull request: alias bombs, 10,000 levels
of nesting, a 50 MiB file, millions of tiny values, binary garbage, other encodings,
duplicate keys, tags that would run code, merge-key abuse, huge scalars and numbers.
mlcompile must refuse each quickly, in bounded memory, with a located diagnostic (exit 2).
Payloads that would run code create MARKER (a file beside the case) if they ever ran.

Used by tests/reliability/test_hostile_yaml.py and bench/hostile.py. Standard library only."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
MARKER = "MARKER"
DEPTH = 10_000
HEAD = "apiVersion: mlcompile/v1\nkind: {kind}\nmetadata: {{name: hostile}}\n"


def _bomb(levels: int = 9, width: int = 9) -> str:
    """Billion laughs: each anchor repeats the previous one `width` times (9^9 values)."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _merge_bomb(levels: int = 12, width: int = 9) -> str:
    """Merge keys (`<<`) that merge the previous mapping `width` times, level after level."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3}"]
    lines += [f"m{i}: &m{i}\n  <<: [" + ", ".join([f"*m{i - 1}"] * width) + f"]\n  k{i}: {i}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as handle:
            handle.truncate(size)  # sparse: no disk is used, and stat says `size`

    return write


def _text(make: Callable[[str], str]) -> Callable[[Path, str], None]:
    def write(path: Path, kind: str) -> None:
        path.write_text(make(kind), encoding="utf-8")

    return write


def _bytes(make: Callable[[str], bytes]) -> Callable[[Path, str], None]:
    def write(path: Path, kind: str) -> None:
        path.write_bytes(make(kind))

    return write


def _payload(tag: str) -> Callable[[Path, str], None]:
    """A tag whose constructor, if anything ever ran it, creates MARKER beside the file."""

    def write(path: Path, kind: str) -> None:
        marker = str(path.parent / MARKER)
        payloads = {
            "os.system": f"!!python/object/apply:os.system ['touch {marker}']",
            "subprocess": f"!!python/object/apply:subprocess.check_call [[touch, {marker}]]",
            "open": f"!!python/object/apply:builtins.open ['{marker}', w]",
            "new": f"!!python/object/new:builtins.open ['{marker}', w]",
            "name": "!!python/name:os.system",
            "module": "!!python/module:os",
            "nested": f"{{name: hostile, labels: {{x: !!python/object/apply:os.system ['touch {marker}']}}}}",
        }
        value = payloads[tag]
        if tag == "nested":
            path.write_text(f"apiVersion: mlcompile/v1\nkind: {kind}\nmetadata: {value}\n")
        else:
            path.write_text(HEAD.format(kind=kind) + f"description: {value}\n")

    return write


def _random_bytes(kind: str) -> bytes:
    return random.Random(20261125).randbytes(256 * 1024)


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    write: Callable[[Path, str], None]  # (path, kind: MLSystem | Target)
    # what the diagnostic says, so that a case refused for another reason is noticed
    expect: str


def _w(write_size: Callable[[Path], None]) -> Callable[[Path, str], None]:
    return lambda path, _kind: write_size(path)


CASES: tuple[Case, ...] = (
    Case(
        "alias_bomb",
        "billion laughs: 9 anchors, each 9 aliases of the last (9^9 values)",
        _text(lambda k: HEAD.format(kind=k) + _bomb()),
        r"expands to more than \d+ values",
    ),
    Case(
        "alias_large_scalar",
        "1 MB: a 500 KB scalar and 99,000 aliases of it (50 GB expanded, under the value limit)",
        _text(lambda k: HEAD.format(kind=k) + "big: &big " + "a" * 500_000 + "\ncopies: [" + ", ".join(["*big"] * 99_000) + "]\n"),
        r"expands to more than \d+ MiB of text",
    ),
    Case("alias_recursive", "an anchor that contains an alias to itself", _text(lambda k: HEAD.format(kind=k) + "a: &a [1, *a]\n"), r"recursive YAML alias"),
    Case(
        "merge_bomb",
        "merge keys (<<) merging the previous mapping 9 times, 12 levels",
        _text(lambda k: HEAD.format(kind=k) + _merge_bomb()),
        r"expands to more than \d+ values",
    ),
    Case(
        "deep_flow_list",
        f"{DEPTH:,} nested flow lists [[[…]]]",
        _text(lambda k: HEAD.format(kind=k) + "a: " + "[" * DEPTH + "]" * DEPTH + "\n"),
        r"nested more than \d+ levels",
    ),
    Case(
        "deep_flow_map",
        f"{DEPTH:,} nested flow mappings {{a: {{a: …}}}}",
        _text(lambda k: HEAD.format(kind=k) + "a: " + "{a: " * DEPTH + "1" + "}" * DEPTH + "\n"),
        r"nested more than \d+ levels",
    ),
    Case(
        "deep_block_list",
        f"{DEPTH:,} nested block lists on one line (- - - … x)",
        _text(lambda k: HEAD.format(kind=k) + "a:\n  " + "- " * DEPTH + "x\n"),
        r"nested more than \d+ levels",
    ),
    # 10,000 levels of indented block mappings take 48 MiB (1 + 2 + … spaces): the size limit
    # refuses those; 3,000 levels (4.3 MiB) are the deepest that fit under it
    Case(
        "deep_block_map",
        "3,000 nested block mappings, one more space each",
        _text(lambda k: HEAD.format(kind=k) + "".join(" " * i + "k:\n" for i in range(3000)) + " " * 3000 + "k: 1\n"),
        r"nested more than \d+ levels",
    ),
    Case(
        "deep_mixed",
        f"{DEPTH:,} levels alternating block mappings and flow lists",
        _text(lambda k: HEAD.format(kind=k) + "a:\n  b: " + "[{c: " * (DEPTH // 2) + "1" + "}]" * (DEPTH // 2) + "\n"),
        r"nested more than \d+ levels",
    ),
    Case("file_50mib", "a 50 MiB file (sparse: size by stat, never read)", _w(_sparse(50 * MIB)), r"file is 50\.0 MiB"),
    Case(
        "file_over_limit",
        "valid YAML one byte over the 5 MiB limit",
        _text(lambda k: HEAD.format(kind=k) + "#" * (5 * MIB - len(HEAD.format(kind=k))) + "\n"),
        r"specs are limited to 5 MiB",
    ),
    Case(
        "many_values",
        "5 MiB of tiny list items (2.6 million values, under the size limit)",
        _text(lambda k: HEAD.format(kind=k) + "a:\n" + "- 1\n" * ((5 * MIB - 200) // 4)),
        r"YAML tokens; specs are limited to",
    ),
    Case(
        "many_values_mid",
        "180,000 list items (720 KiB): composed, and stopped at the node limit",
        _text(lambda k: HEAD.format(kind=k) + "a:\n" + "- 1\n" * 180_000),
        r"more than \d+ keys and values",
    ),
    Case(
        "many_empty_keys",
        "5 MiB of empty explicit keys (? lines: two nodes per two bytes)",
        _text(lambda k: HEAD.format(kind=k) + "a:\n" + "  ?\n" * ((5 * MIB - 200) // 4)),
        r"YAML tokens; specs are limited to",
    ),
    Case(
        "many_keys",
        "a mapping of 300,000 keys under the size limit",
        _text(lambda k: HEAD.format(kind=k) + "a:\n" + "".join(f"  k{i}: 1\n" for i in range(300_000))[: 5 * MIB - 200].rsplit("\n", 1)[0] + "\n"),
        r"YAML tokens; specs are limited to",
    ),
    Case("many_documents", "100,000 YAML documents in one file", _text(lambda k: HEAD.format(kind=k) + "---\na: 1\n" * 100_000), r"expected a single document"),
    Case("random_binary", "256 KiB of random bytes", _bytes(_random_bytes), r"not UTF-8"),
    Case(
        "nul_bytes",
        "UTF-8 YAML with NUL bytes inside",
        _bytes(lambda k: HEAD.format(kind=k).encode() + b"description: a\x00b\x00\x00\n"),
        r"control character U\+0000",
    ),
    Case(
        "control_chars",
        "UTF-8 YAML with C0 control characters",
        _bytes(lambda k: HEAD.format(kind=k).encode() + b"description: \x1b[31mred\x07\n"),
        r"control character",
    ),
    Case("utf16", "UTF-16 with a byte-order mark", _bytes(lambda k: HEAD.format(kind=k).encode("utf-16")), r"not UTF-8"),
    Case(
        "utf16_no_bom", "UTF-16-LE without a byte-order mark", _bytes(lambda k: HEAD.format(kind=k).encode("utf-16-le")), r"not UTF-8|control character U\+0000"
    ),
    Case("utf32", "UTF-32", _bytes(lambda k: HEAD.format(kind=k).encode("utf-32")), r"not UTF-8"),
    Case(
        "latin1",
        "Latin-1 bytes (é as 0xe9)",
        _bytes(lambda k: (HEAD.format(kind=k) + "description: café\n").encode("latin-1")),
        r"not UTF-8 text \(byte 0xe9\)",
    ),
    Case(
        "duplicate_keys",
        "the same key twice, at the top and deep down",
        _text(lambda k: HEAD.format(kind=k) + "kind: " + k + "\nmetadata: {name: a, name: b}\n"),
        r"duplicate key",
    ),
    Case(
        "tag_os_system",
        "!!python/object/apply:os.system with a shell command",
        _payload("os.system"),
        r"unsupported YAML tag '!!python/object/apply:os.system'",
    ),
    Case("tag_subprocess", "!!python/object/apply:subprocess.check_call", _payload("subprocess"), r"unsupported YAML tag"),
    Case("tag_apply_open", "!!python/object/apply:builtins.open (creates a file)", _payload("open"), r"unsupported YAML tag"),
    Case("tag_new_open", "!!python/object/new:builtins.open", _payload("new"), r"unsupported YAML tag"),
    Case("tag_name", "!!python/name:os.system", _payload("name"), r"unsupported YAML tag '!!python/name:os.system'"),
    Case("tag_module", "!!python/module:os", _payload("module"), r"unsupported YAML tag"),
    Case("tag_nested", "a code-running tag deep inside a mapping", _payload("nested"), r"unsupported YAML tag"),
    Case("long_scalar", "a 4 MiB scalar", _text(lambda k: HEAD.format(kind=k) + "description: " + "x" * (4 * MIB) + "\nunknown: 1\n"), r"unknown key"),
    Case("long_key", "a 4 MiB key (explicit ? key)", _text(lambda k: HEAD.format(kind=k) + "? " + "k" * (4 * MIB) + "\n: 1\n"), r"unknown key"),
    Case(
        "long_quoted_unclosed",
        "an unclosed 4 MiB quoted scalar",
        _text(lambda k: HEAD.format(kind=k) + 'description: "' + "x" * (4 * MIB) + "\n"),
        r"invalid YAML",
    ),
    Case("huge_int", "a number of 1,000,000 digits", _text(lambda k: HEAD.format(kind=k) + "count: " + "9" * 1_000_000 + "\n"), r"cannot read scalar"),
    Case(
        "huge_float",
        "1e99999 and a 100,000-digit float",
        _text(lambda k: HEAD.format(kind=k) + "x: 1e99999\ny: 1." + "1" * 100_000 + "\nunknown: 1\n"),
        r"unknown key|finite",
    ),
)
CASE_NAMES = tuple(c.name for c in CASES)
LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+): error: ", re.M)


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss_mib: float
    timed_out: bool


# The measured command is started by a small launcher rather than by the caller: on Linux a
# forked child's ru_maxrss starts at its parent's resident size (kept across exec), so a child
# of a large process (a long pytest session) would report the parent's memory as its own.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_pid, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as figure:
    figure.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(command: list[str], cwd: Path, timeout: float = 30.0, env: dict[str, str] | None = None) -> Run:
    """Run a fresh process; its wall time and peak RSS (ru_maxrss of that process alone, from
    wait4 in a small launcher), killed after `timeout` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as figure:
        started = time.perf_counter()
        launched = [sys.executable, "-c", LAUNCHER, figure.name, *command]
        proc = subprocess.Popen(launched, cwd=cwd, stdout=out, stderr=err, env=env, start_new_session=True)
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
            int(figure.read() or usage.ru_maxrss) / 1024,  # KiB on Linux
            timed_out.is_set(),
        )


VALID_PROFILE = "apiVersion: mlcompile/v1\nkind: Target\nmetadata: {name: local}\nplatform: local\n"
VALID_SPEC = Path(__file__).resolve().parents[1] / "toy_target" / "fixture" / "mlcompile.yaml"


def prepare(case: Case, role: str, command: str, folder: Path) -> tuple[list[str], str]:
    """Write the case into `folder` as the spec or the profile of `command` (validate | build);
    the command line, and the file name its diagnostic must point at."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "targets").mkdir(exist_ok=True)
    if role == "spec":
        hostile = folder / "mlcompile.yaml"
        case.write(hostile, "MLSystem")
        (folder / "targets" / "local.yaml").write_text(VALID_PROFILE)
        spec, profile = hostile, folder / "targets" / "local.yaml"
    else:
        spec = folder / "mlcompile.yaml"
        spec.write_text(VALID_SPEC.read_text())
        hostile = folder / "targets" / "hostile.yaml"
        case.write(hostile, "Target")
        profile = hostile
    args = [sys.executable, "-m", "mlcompile", command, spec.name, "--target", str(profile.relative_to(folder))]
    if command == "build":
        args += ["--out", "out", "--git-commit", "none"]
    return args, str(hostile.relative_to(folder))
