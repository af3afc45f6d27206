"""Diagnostics: every problem a user can cause, with the place in their file that caused it.

A diagnostic renders as ``path/to/spec.yaml:LINE:COL: error: <json path>: <message>``
followed by an indented ``hint:`` line when a fix can be suggested.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning"]
JsonPath = tuple[str | int, ...]


def shorten(text: str, limit: int = 60) -> str:
    """A key or value as shown in a message: a 4 MiB key is cut, not printed (twice)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def quoted(value: object, limit: int = 40) -> str:
    """An invalid value as a message shows it: quoted, credentials redacted first, then cut to
    a short prefix (a password in a URI that fails another check is not echoed)."""
    from mlcompile.secrets import redact

    text = redact(value if isinstance(value, str) else repr(value))
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(shown) if isinstance(value, str) else shown


# Characters that change what a terminal shows rather than show themselves: C0/C1 controls
# (ESC starts colour and cursor sequences, CR rewrites a line), Unicode format characters
# (bidi overrides reorder text, zero-width ones hide it) and the line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_MAYBE_UNSAFE = re.compile(r"[^\x20-\x7e\n\t]")


def is_unsafe_character(char: str) -> bool:
    return char not in "\n\t" and unicodedata.category(char) in _UNSAFE_CATEGORIES


def first_unsafe_character(text: str) -> int | None:
    """Where the first character that would act on a terminal is, if any (plain printable
    ASCII, nearly every string, is answered by one regex search)."""
    maybe = _MAYBE_UNSAFE.search(text)
    if maybe is None:
        return None
    return next((i for i in range(maybe.start(), len(text)) if is_unsafe_character(text[i])), None)


def escape_terminal(text: str, *, newlines: bool = False) -> str:
    """User text as printed: every character that would act on the terminal (ESC, CR, bidi,
    zero-width …) is shown as its escape (`\\x1b`, `\\u202e`), so a value cannot forge or hide
    output. `newlines=True` escapes line feeds too (a value inside a one-line message)."""
    if not _MAYBE_UNSAFE.search(text) and not (newlines and "\n" in text):
        return text  # the common case: plain ASCII, returned as is
    out = []
    for char in text:
        if is_unsafe_character(char) or (newlines and char == "\n"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out)


def format_json_path(path: Sequence[str | int]) -> str:
    """``("features", "views", 0, "ttl")`` → ``features.views[0].ttl``; the root is ``$``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            # 200: far above any key a valid spec has (paths also name plan origins)
            text += f".{shorten(part, 200)}" if text else shorten(str(part), 200)
    return text or "$"


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    col: int
    severity: Severity
    path: str
    message: str
    hint: str | None = None

    def __post_init__(self) -> None:
        # a credential written in a spec is never shown again, whatever the message is about
        # (a bad time zone, a name, a label key): every diagnostic is redacted as it is made
        from mlcompile.secrets import redact

        for name in ("path", "message", "hint"):
            text = getattr(self, name)
            if text:
                object.__setattr__(self, name, redact(text))

    def render(self) -> str:
        where = f"{escape_terminal(self.file, newlines=True)}:{self.line}:{self.col}"
        prefix = f"{escape_terminal(self.path, newlines=True)}: " if self.path else ""
        text = f"{where}: {self.severity}: {prefix}{escape_terminal(self.message, newlines=True)}"
        if self.hint:
            text += f"\n  hint: {escape_terminal(self.hint, newlines=True)}"
        return text

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """File order, then position; duplicates (same place and message) collapse into one."""
    return sorted(set(diagnostics), key=lambda d: (d.file, d.line, d.col, d.path, d.message))


def render_text(diagnostics: Iterable[Diagnostic]) -> str:
    return "\n".join(d.render() for d in diagnostics)


def _workflow_command_data(text: str) -> str:
    # GitHub's escaping of a workflow command's message: a newline would end the command
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _workflow_command_property(text: str) -> str:
    # a property value is also cut at ',' (next property) and ':' (end of properties)
    return _workflow_command_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: each diagnostic becomes an annotation on its file and
    line (`::error file=…,line=…,col=…::message`), shown in the run and on the pull request."""
    lines = []
    for d in diagnostics:
        message = (f"{d.path}: " if d.path else "") + d.message + (f"\nhint: {d.hint}" if d.hint else "")
        where = f"file={_workflow_command_property(d.file)},line={d.line},col={d.col},title=mlcompile"
        lines.append(f"::{d.severity} {where}::{_workflow_command_data(message)}")
    return "\n".join(lines)


def render_github_message(severity: Severity, message: str) -> str:
    """A problem that has no place in a file (a usage or platform error), as an annotation."""
    return f"::{severity} title=mlcompile::{_workflow_command_data(message)}"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to a misspelt word, phrased as a hint, or None when nothing is close."""
    word, candidates = str(word), sorted(set(choices))
    # A ratio of 0.6 needs the word within 7/3 of a choice's length; longer words are skipped
    # because difflib indexes every character of the word (a 4 MiB value took 180 MiB).
    if not candidates or len(word) > 3 * max(len(c) for c in candidates):
        return None
    match = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def errors_in(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity == "error"]
