"""The checks that report credentials as located diagnostics, with the scanner of
`mlcompile.secrets`: `check_document` walks a loaded spec or profile (every value, key and
nested mapping, overrides included) and reports each suspicious value at its place in the file;
`check_outputs` and `refuse_leaks` scan a build's generated files before anything is written."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from mlcompile.diagnostics import Diagnostic, JsonPath, format_json_path
from mlcompile.runtime.contract import SECRET_SCHEME
from mlcompile.secrets import HINT, Finding, line_col, looks_like_credential, looks_random, remember, scan_text, walk, words_of

if TYPE_CHECKING:
    from mlcompile.spec.loader import SourceMap


def _service_account(data: Mapping[Any, Any]) -> bool:
    return data.get("type") == "service_account" and "private_key" in data


def check_document(data: Any, source_map: SourceMap, *, strict_paths: Sequence[JsonPath] = ()) -> list[Diagnostic]:
    """Credentials written as literals anywhere in a loaded file. Below a run of keys of
    `strict_paths` (settings that carry credentials, wherever they are nested: overrides
    too), a credential-named key takes only a secret:// reference, whatever its value.

    Each string is scanned and reported once, at its first place: YAML aliases repeat the
    same string object (a 500 KB anchor aliased 20,000 times is one scan, one finding)."""
    found: list[Diagnostic] = []
    seen: set[int] = set()  # ids of the strings already judged; `data` keeps them alive

    def first_time(text: str) -> bool:
        if id(text) in seen:
            return False
        seen.add(id(text))
        return True

    def report(path: JsonPath, what: str, secret: str, *, key: bool = False) -> None:
        remember(secret)
        message = f"looks like {what}: credentials must not be written in a spec"
        found.append(source_map.diagnostic(path, ("a key that " if key else "") + message, hint=HINT, key=key))

    for path, value, key in walk(data):
        if isinstance(value, Mapping):
            for name in value:
                if isinstance(name, str) and first_time(name) and (findings := scan_text(name)):
                    report((*path, name), findings[0].what, findings[0].text, key=True)
            if _service_account(value):
                report((*path, "private_key"), "a GCP service account key", str(value["private_key"]))
            continue
        if not isinstance(value, str) or not first_time(value):
            continue
        findings = scan_text(value)  # `KEY=value` inside a longer string counts too
        if findings:
            report(path, findings[0].what, findings[0].text)
            for finding in findings[1:]:
                remember(finding.text)
        elif key is not None and looks_like_credential(key) and not value.startswith(SECRET_SCHEME):
            if any(_contains(path[:-1], tuple(p)) for p in strict_paths):
                remember(value)
                found.append(
                    source_map.diagnostic(
                        path,
                        f"'{key}' looks like a credential: write it as a secret:// reference",
                        hint=f"for example secret://{'-'.join(words_of(key)).lower()}",
                    )
                )
            elif looks_random(value):
                report(path, f"a secret value in '{key}'", value)
    return found


def _contains(path: JsonPath, part: JsonPath) -> bool:
    return any(path[i : i + len(part)] == part for i in range(len(path) - len(part) + 1))


# ---------------------------------------------------------------------------- generated output


def check_outputs(profile: str, files: Iterable[Any], folder: str, origin: Any = None) -> list[Diagnostic]:
    """Every credential-looking string in a profile's generated files, located in the file
    as it would be written (`<folder>/<path>:LINE:COL`). `origin` (the spec's Document) lets
    a finding name the spec value it came from, when the same text is written there."""
    found: list[Diagnostic] = []
    for output in files:
        for finding, line, col in _scan_bytes(output.content):
            hint = "mlcompile writes secret:// references, never their values: a target or spec value put this text here"
            source = _traced(finding.text, origin)
            if source:
                hint = f"it comes from {source}; " + HINT
            found.append(
                Diagnostic(
                    f"{folder}/{output.path}", line, col, "error", "",
                    f"generated output looks like it holds {finding.what} (profile '{profile}'): the build was not written",
                    hint,
                )
            )  # fmt: skip
    return found


@lru_cache(maxsize=256)
def _scan_bytes(content: bytes) -> tuple[tuple[Finding, int, int], ...]:
    """scan_text of a file's bytes, located; cached, since a build checks all its files
    before writing any and write_builds checks them again."""
    text = content.decode("utf-8", errors="replace")
    return tuple((f, *line_col(text, f.offset)) for f in scan_text(text))


def _traced(text: str, document: Any) -> str | None:
    """`file:line:col (json path)` of the spec value that holds `text`, if one does."""
    if document is None:
        return None

    for path, value, _ in walk(document.data):
        if isinstance(value, str) and (text in value or (len(value) >= 8 and value in text)):
            line, col = document.source_map.locate(path)
            return f"{document.file}:{line}:{col} ({format_json_path(path)})"
    return None


def refuse_leaks(results: Iterable[Any], out_dir: Any) -> None:
    """Raise SpecError (exit 2) when any generated file of `results` (build.Compiled) looks
    like it holds a credential: the last line of defence, run before a build is written."""
    import os

    from mlcompile.errors import SpecError

    found: list[Diagnostic] = []
    for result in results:
        files = list(result.files)
        findings = check_outputs(result.profile.name, files, os.path.join(str(out_dir), result.profile.name))
        if findings:  # rare: only then is the spec read again, to say where the text came from
            findings = check_outputs(result.profile.name, files, os.path.join(str(out_dir), result.profile.name), _spec_of(result))
        found += findings
    if found:
        raise SpecError(found)


def _spec_of(result: Any) -> Any:
    from mlcompile.errors import SpecError
    from mlcompile.spec.loader import load_yaml_file

    path = result.plan.registry.origin.file
    try:
        return load_yaml_file(path, path)
    except (SpecError, OSError):
        return None
