"""One root error for everything mlcompile raises on purpose."""

from __future__ import annotations

from collections.abc import Iterable

from mlcompile.diagnostics import Diagnostic, sort_diagnostics


class MLCompileError(Exception):
    """Root of every error mlcompile raises deliberately; the CLI turns these into exit codes."""

    exit_code = 2


class SpecError(MLCompileError):
    """Bad user input: carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sort_diagnostics(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class UsageError(MLCompileError):
    """A command line that cannot be carried out (missing file, bad option combination)."""
