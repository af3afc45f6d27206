"""One root error for everything mlcompile raises on purpose."""

from __future__ import annotations

from collections.abc import Iterable

from mlcompile.diagnostics import Diagnostic, sort_diagnostics
from mlcompile.runtime.contract import MLCompileError as MLCompileError  # the root lives in the contract: the runtime raises it too
from mlcompile.runtime.contract import UsageError as UsageError


class SpecError(MLCompileError):
    """Bad user input: carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sort_diagnostics(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class TargetFailed(MLCompileError):
    """A target raised instead of returning diagnostics: a bug in that target's package,
    named so that it is reported to the right project."""

    exit_code = 3

    def __init__(self, target: str, where: str, stage: str, cause: BaseException):
        super().__init__(
            f"target '{target}' ({where}) failed in {stage}: {type(cause).__name__}: {cause}; this is a bug in the target, please report it to its package"
        )


class CredentialsMissing(MLCompileError):
    """A platform that cannot be reached for want of credentials (none found, expired, or
    refused): one line naming the platform and how to log in, exit status 2 — a set-up
    problem of the machine running mlcompile, neither a failed deployment nor a bug."""

    def __init__(self, platform: str, problem: str, login: str):
        super().__init__(f"{platform}: {problem}; {login}")
