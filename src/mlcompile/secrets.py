"""Credentials must never be written where mlcompile reads or writes: specs and profiles
are edited in pull requests, and builds are published as CI artifacts. This module holds
what a credential looks like: `scan_text` finds credentials in a text, by offset, and
`redact` cuts them out of every message (diagnostics pass theirs through it). The checks that
report them at their place in a spec, a profile or a build's files are in `secret_checks`.

Patterns are specific on purpose (a prefix, a fixed length, a marker such as
`AccountKey=`): a scanner that cries wolf on digests and example values gets switched off.
Values under a credential-named key are judged more strictly: there, any long random-looking
string is taken for a secret."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

from mlcompile import secret_index
from mlcompile.runtime.contract import LOCATOR_SCHEMES, SECRET_SCHEME, secret_name

if TYPE_CHECKING:
    from mlcompile.diagnostics import JsonPath

HINT = "store it in your secret manager and write secret://<name>"

# Words of a key or environment variable name (split on '_', '-' and case changes) that mark
# it as a credential; whole words, so that TOKENIZERS_PARALLELISM or MAX_TOKENS are not.
_CREDENTIAL_WORDS = frozenset({"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "CREDENTIAL", "CREDENTIALS", "APIKEY"})
_CREDENTIAL_PAIRS = frozenset({("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("SECRET", "KEY"), ("ACCOUNT", "KEY"), ("CLIENT", "SECRET")})
_WORD_SPLIT = re.compile(r"[_\-.\s]+|(?<=[a-z0-9])(?=[A-Z])")


def words_of(name: str) -> list[str]:
    return [w.upper() for w in _WORD_SPLIT.split(name) if w]


def looks_like_credential(name: str) -> bool:
    """Whether a key or variable name says it holds a credential (`DB_PASSWORD`, `apiKey`)."""
    words = words_of(name)
    return bool(_CREDENTIAL_WORDS.intersection(words)) or any(pair in _CREDENTIAL_PAIRS for pair in zip(words, words[1:]))


@dataclass(frozen=True)
class Pattern:
    what: str  # "an AWS access key id": how a message names it
    source: str  # the regular expression
    flags: int = 0
    # a further check of a match (an entropy floor), when one applies
    confirm: Callable[[str], bool] | None = None
    # a rule that only matches on a line this finds is run on those lines alone
    gate: re.Pattern[str] | None = None

    @cached_property
    def regex(self) -> re.Pattern[str]:
        # compiled when first run: a rule whose words a text lacks is never run on it, and
        # compiling all ~60 rules up front was a tenth of a small spec's `validate`
        return re.compile(self.source, self.flags)


def _random_40(text: str) -> bool:
    """A bare 40-character AWS secret access key: all three kinds of character and
    near-random (a path or a word of that length is neither)."""
    return any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text) and _entropy(text) >= 4.3


# A backslash may precede a quote: generated files embed JSON in strings (`\"key\": \"…\"`).
_Q = r"\\?[\"']?"
# A URL's password may be a placeholder resolved elsewhere: ${VAR}, $VAR, {{ var }}, %(var)s
_PLACEHOLDER = r"(?-i:\$\{[^}\s]*\}|\$[A-Z_][A-Z0-9_]*|\{\{[^}]*\}\}|%\([A-Za-z_]\w*\)s)(?=@)"
# mlcompile's own rules: first, so that their names win where the maintained rule set (below,
# `_maintained`) finds the same text; and for what that set lacks (Azure SAS and Entra
# secrets, GCP key files and API keys, Hugging Face and OpenAI project keys, a bare AWS secret
# key, a URL whose user is empty or whose password holds '$', upper-case schemes).
PATTERNS: tuple[Pattern, ...] = (
    Pattern("a private key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    Pattern("an AWS access key id", r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![A-Z0-9])"),
    Pattern(
        "an AWS secret access key",
        r"(?i)aws_?secret_?(?:access_?)?key" + _Q + r"\s*[:=]\s*" + _Q + r"(?-i:[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
    ),
    Pattern("an AWS secret access key", r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", confirm=_random_40),
    Pattern("a GCP service account key", r"private_key_id" + _Q + r"\s*:\s*" + _Q + r"[0-9a-f]{40}\b"),
    Pattern(
        "a GCP service account key",
        r"type" + _Q + r"\s*:\s*" + _Q + r"service_account" + _Q + r"(?=[\s\S]{0,4000}private_key)",
    ),
    Pattern("a Google API key", r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"),
    Pattern("a Hugging Face token", r"(?<![A-Za-z0-9_])(?:hf_|api_org_)[A-Za-z0-9]{30,}(?![A-Za-z0-9_])"),
    # the literal first: a pattern that starts with one is searched for by it, much faster
    Pattern("an OpenAI API key", r"sk-(?<![A-Za-z0-9_-]sk-)(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{48}(?![A-Za-z0-9_-]))"),
    Pattern("an Azure connection string key", r"(?i)\b(?:AccountKey|SharedAccessKey)\s*=\s*[A-Za-z0-9+/]{20,}={0,2}"),
    Pattern("an Azure SAS token", r"(?i)[?&]sig=[A-Za-z0-9%+/]{30,}(?:%3D|=){0,2}"),
    Pattern("an Azure AD client secret", r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])"),
    Pattern("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b"),
    Pattern("a Slack token", r"\bxox[abposr]-[0-9A-Za-z-]{10,}"),
    Pattern("a Slack webhook URL", r"(?i)hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/]+"),
    Pattern("a JSON web token", r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    # [user]:password@ in a URL, any case of scheme (Redis has no user: rediss://:KEY@host)
    Pattern("a URI with a password in it", r"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@\"'\\]*:(?!" + _PLACEHOLDER + r")[^/\s@\"'\\]+@"),
)


@lru_cache(maxsize=1)
def _maintained() -> tuple[Pattern, ...]:
    """The regular-expression rules of detect-secrets, Yelp's maintained scanner (copied in
    mlcompile.secret_rules): its keyword and entropy heuristics are left out, since the
    credential-named-key rule below is mlcompile's own, tuned on generated files."""
    from mlcompile.secret_rules import RULES

    return tuple(
        Pattern(("an " if kind[0] in "AEIOU" else "a ") + kind, pattern, flags, gate=_ASSIGNED if pattern.startswith(_ASSIGNMENT_RULE) else None)
        for kind, pattern, flags in RULES
    )


# detect-secrets' `key = value` rules (its build_assignment_regex: Cloudant, IBM, SoftLayer)
# try every position of a text and were two thirds of the scanning time of a build; each
# assigns a token of at least 24 characters, so only lines that hold one are scanned by them
_ASSIGNMENT_RULE = "(?:(?<=\\W)|(?<=^))"
_ASSIGNED = re.compile(r"(?:[=:>\s])[\"']?[A-Za-z0-9_-]{24}")


def _gated_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line that an assignment rule could match."""
    spans: dict[int, int] = {}
    for match in _ASSIGNED.finditer(text):
        start = text.rfind("\n", 0, match.start()) + 1
        if start not in spans:
            end = text.find("\n", match.end())
            spans[start] = len(text) if end < 0 else end
    return sorted(spans.items())


def rules() -> tuple[Pattern, ...]:
    """Every rule a value or generated file is scanned with, mlcompile's first."""
    return PATTERNS + _maintained()


@lru_cache(maxsize=1)
def _keyed_rules() -> tuple[tuple[Pattern, secret_index.Facts], ...]:
    """Each rule with what must hold for it to match a text (mlcompile.secret_index): the
    words one of which the text holds (None: no such words), the length it reaches. With some
    60 rules, each a pass over the text, skipping the rest makes a build's scan ~3x faster
    and most of a spec's values are scanned by none."""
    return tuple((rule, secret_index.facts(rule.source, rule.flags)) for rule in rules())


@lru_cache(maxsize=1)
def _words() -> dict[str, tuple[int, ...]]:
    """Each word of _keyed_rules, with the positions of the rules that hold it."""
    found: dict[str, list[int]] = {}
    for position, (_, facts) in enumerate(_keyed_rules()):
        for word in facts.words or ():
            found.setdefault(word, []).append(position)
    return {word: tuple(positions) for word, positions in found.items()}


@lru_cache(maxsize=1)
def _wordless() -> frozenset[int]:
    return frozenset(position for position, (_, facts) in enumerate(_keyed_rules()) if facts.words is None)


@lru_cache(maxsize=1)
def _shortest() -> tuple[int, int]:
    """Characters of the shortest match of _NAMED_VALUE, and of any rule or _NAMED_VALUE."""
    named = secret_index.facts(_NAMED_VALUE.pattern, _NAMED_VALUE.flags).shortest
    return named, min(named, *(facts.shortest for _, facts in _keyed_rules()))


def _rules_for(text: str) -> list[Pattern]:
    """The rules that may match `text`, in order: those that reach its length and hold no
    word or a word of it (each word looked for once)."""
    lowered, keyed = text.lower(), _keyed_rules()
    chosen = set(_wordless())
    for word, positions in _words().items():
        if word in lowered:
            chosen.update(positions)
    return [keyed[position][0] for position in sorted(chosen) if len(text) >= keyed[position][1].shortest]


def indexed_patterns() -> list[tuple[str, int]]:
    """(source, flags) of every pattern scan_text runs: what mlcompile.secret_index describes."""
    return [(rule.source, rule.flags) for rule in rules()] + [(_NAMED_VALUE.pattern, _NAMED_VALUE.flags)]


# key: value / key=value where the key names a credential: the generated-text form of the
# rule `check_document` applies to mappings
_NAMED_VALUE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9_-]{1,60})" + _Q + r"\s*[:=]\s*" + _Q + r"([^\s\"'\\,;}\]]{16,})")


def _entropy(value: str) -> float:
    counts: dict[str, int] = {}
    for char in value:
        counts[char] = counts.get(char, 0) + 1
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    """A long value with no spaces that mixes letters and digits and is near-random: what a
    generated password, token or key looks like (and a word, path or URL does not)."""
    if len(value) < 16 or any(c.isspace() for c in value) or "://" in value or value.startswith(("$", "{{", "/", "projects/", "arn:", *LOCATOR_SCHEMES)):
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    return _entropy(value) >= 3.5


@dataclass(frozen=True)
class Finding:
    offset: int  # character offset of the match in the text
    text: str  # the matched text
    what: str


def scan_text(text: str) -> list[Finding]:
    """Every credential-looking string in a text, in order. Where rules find overlapping
    text, the first rule's finding stands (one finding per place)."""
    named_shortest, shortest = _shortest()
    if len(text) < shortest:  # most values of a spec: no rule can match
        return []
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []

    def take(start: int, end: int, what: str) -> None:
        if not any(start < other_end and other_start < end for other_start, other_end in taken):
            taken.append((start, end))
            found.append(Finding(start, text[start:end], what))

    gated: list[tuple[int, int]] | None = None
    for pattern in _rules_for(text):
        if pattern.gate is None:
            matches = list(pattern.regex.finditer(text))
        else:
            gated = _gated_lines(text) if gated is None else gated
            matches = [m for start, end in gated for m in pattern.regex.finditer(text, start, end)]
        for match in matches:
            if match.end() > match.start() and (pattern.confirm is None or pattern.confirm(match.group(0))):
                take(match.start(), match.end(), pattern.what)
    for match in _NAMED_VALUE.finditer(text) if len(text) >= named_shortest else ():
        key, value = match.group(1), match.group(2)
        if looks_like_credential(key) and not value.startswith(SECRET_SCHEME) and looks_random(value):
            take(match.start(2), match.end(2), f"a secret value in '{key}'")
    return sorted(found, key=lambda f: f.offset)


# ---------------------------------------------------------------------------- redaction

# Values check_document found in a loaded file: a message about another problem of the same
# value (a bad time zone, a name) must not show it either.
_flagged: set[str] = set()
REDACTED = "***"


def _redacted(secret: str) -> str:
    """At most a short prefix, never enough to use: 'AKIA***', 'post***'."""
    return secret[: min(4, len(secret) // 5)] + REDACTED


def remember(secret: str) -> None:
    """Redact `secret` from every later message (values shorter than 6 characters are words
    more often than secrets, and would cut other words apart)."""
    if len(secret) >= 6 and secret not in _flagged:
        _flagged.add(secret)
        _redacted_text.cache_clear()


def redact(text: str) -> str:
    """`text` with every credential the scanner finds, and every value it flagged in a spec
    or profile, cut to a short prefix. Diagnostics pass every message through this."""
    return _redacted_text(text)


@lru_cache(maxsize=4096)  # a file's diagnostics repeat their hints and many of their messages
def _redacted_text(text: str) -> str:
    for secret in sorted(_flagged, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _redacted(secret))
    findings = scan_text(text)
    for finding in reversed(findings):  # from the end: earlier offsets stay valid
        text = text[: finding.offset] + _redacted(finding.text) + text[finding.offset + len(finding.text) :]
    return text


def line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# ---------------------------------------------------------------------------- walking a document


def walk(data: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any, str | None]]:
    """(path, value, key it is under) of every scalar and mapping below `data`."""
    if isinstance(data, Mapping):
        yield path, data, None
        for key, value in data.items():
            if isinstance(value, (Mapping, list)):
                yield from walk(value, (*path, key))
            else:
                yield (*path, key), value, str(key)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            if isinstance(value, (Mapping, list)):
                yield from walk(value, (*path, index))
            else:
                yield (*path, index), value, None


# ---------------------------------------------------------------------------- secret:// at build time
#
# A step that needs `secret://NAME` finds it through one environment variable,
# MLCOMPILE_SECRET_<NAME> (`env_name`). Where the platform can inject a secret's value into
# the environment (a Kubernetes Secret), the variable holds the value; elsewhere it holds a
# locator (`locator`) that mlcompile.runtime.secrets resolves when the step runs:
#
#   secretmanager:projects/<project>/secrets/<name>/versions/latest        Vertex AI
#   secretsmanager:arn:aws:secretsmanager:<region>:<account>:secret:<name>  SageMaker
#   keyvault:https://<vault>.vault.azure.net/secrets/<name>               Azure ML (profile names the vault)
#   keyvault:<name>                                                        Azure ML (the workspace's Key Vault)

# (the variable's name and the locator schemes are in mlcompile.runtime.contract)


def refs_in(data: Any) -> list[str]:
    """Names of every secret:// reference in a step's parameters, sorted, once each."""
    found: set[str] = set()
    for _, value, _ in walk({"": data}):
        if (name := secret_name(value)) is not None:
            found.add(name)
    return sorted(found)
