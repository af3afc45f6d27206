"""What the credential scanner (mlcompile.secrets) knows of each rule before running it:
the words one of which every match holds (a rule is not run on a text with none of them)
and the length of its shortest match (nor on a shorter text). Both are read off the parsed
regular expression (`facts_of`), which for some 60 rules takes longer than scanning a whole
spec, so `validate` reads them from secret_index.json, written by
`python -m mlcompile.secret_index_gen`; a rule the file does not hold is parsed when first used.
tests/reliability/test_secret_scanner.py checks that the file is up to date and that no
rule ever matches where these facts skip it."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

INDEX_FILE = Path(__file__).with_name("secret_index.json")
COMMAND = "python -m mlcompile.secret_index_gen"


@dataclass(frozen=True)
class Facts:
    words: frozenset[str] | None  # lower-cased; None: no word every match holds
    shortest: int  # characters of the shortest match


def facts(source: str, flags: int) -> Facts:
    """The facts of the rule `source` compiled with `flags`."""
    found = _shipped().get((source, flags))
    return found if found is not None else facts_of(source, flags)


def facts_of(source: str, flags: int) -> Facts:
    parsed = sre_parse.parse(source, flags)
    return Facts(_required(parsed), parsed.getwidth()[0])


@functools.cache
def _shipped() -> dict[tuple[str, int], Facts]:
    try:
        entries = json.loads(INDEX_FILE.read_text(encoding="utf-8"))["rules"]
    except FileNotFoundError:  # every rule is parsed instead
        return {}
    return {(e["source"], e["flags"]): Facts(None if e["words"] is None else frozenset(e["words"]), e["shortest"]) for e in entries}


def _required(items: Any) -> frozenset[str] | None:
    """Strings one of which (lower-cased) every match of a parsed pattern contains: the
    longest run of literal characters, or a set of them that every alternative holds."""
    best: frozenset[str] | None = None
    run = ""

    def consider(found: frozenset[str] | None) -> None:
        nonlocal best
        if found and min(map(len, found)) >= 2 and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found

    for op, arg in [*items, (None, None)]:
        if op is sre_constants.LITERAL:
            run += chr(arg).lower()
            continue
        consider(frozenset({run}) if run else None)
        run = ""
        if op is sre_constants.SUBPATTERN:
            consider(_required(arg[-1]))
        elif op is sre_constants.BRANCH:
            branches = [_required(branch) for branch in arg[1]]
            if all(branches):
                consider(frozenset().union(*branches))  # type: ignore[arg-type]
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and arg[0] >= 1:
            consider(_required(arg[2]))
    return best
