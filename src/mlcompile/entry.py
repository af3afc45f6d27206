"""The `mlcompile` command's entry point (console script and `python -m mlcompile`).

`mlcompile validate SPEC...`, with no option, of specs valid on their own is what editors and
pre-commit hooks run on every save. It is answered here, without importing click and the
command line (mlcompile.cli), which would be a fifth of its time. Anything else, and any
doubt (an option, profiles beside a spec, an error or a warning to report, a path that is
not a plain file), goes to mlcompile.cli, which then says everything, as it always does.
tests/test_fastcheck.py checks that both say the same."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130  # as mlcompile.cli
# the collector's thresholds for a process that imports the platform SDKs (see main)
GC_THRESHOLDS = (2000, 20, 50)


def main() -> None:
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "validate" and all(not arg.startswith("-") and os.path.isfile(arg) for arg in args[1:]):
        try:
            lines = _valid_alone(args[1:])
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            sys.exit(EXIT_INTERRUPTED)
        if lines is not None:
            sys.stderr.write("".join(f"{line}\n" for line in lines))
            sys.stderr.flush()
            sys.exit(0)
    import gc

    # A command imports platform SDKs whose objects live until it exits, and each full
    # collection walks all of them again: with the default thresholds, collections were 30%
    # of the CPU of `mlcompile build` of an example for every profile (bench/build_gc.py).
    # The long-running commands keep them too: `serve` freezes its loaded model and modules
    # before it answers, and `run` executes its steps in processes of their own.
    gc.set_threshold(*GC_THRESHOLDS)
    from mlcompile.cli import main as command_line

    command_line()


def _valid_alone(specs: Sequence[str]) -> list[str] | None:
    """The lines `validate` prints for specs that are valid alone and have no warning, or
    None when the command line must answer."""
    from mlcompile.spec.fastcheck import validate_specs_alone

    try:
        quick = validate_specs_alone(specs)
    except Exception:  # the command line meets it again and reports it
        return None
    if quick is None or quick[0]:
        return None
    lines = quick[1]
    return lines if all(line.isprintable() for line in lines) else None  # as printed, with nothing to escape
