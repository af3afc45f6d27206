"""The credential scanner's rule set, and where its findings may appear: nowhere.

* The rules come from a maintained rule set (detect-secrets' regular-expression plugins,
  copied into mlcompile.secret_rules so that validate does not import detect-secrets and
  requests) plus mlcompile's own: the copy must equal what the installed detect-secrets
  holds (`pytest tests/reliability/test_secret_scanner.py --update-golden` rewrites it after
  an upgrade; review the diff).
* Every rule is found in every kind of field a user writes: a spec scalar, a mapping key, a
  list item, a profile field and an override (hypothesis draws the combinations).
* A credential in a field that fails another check (a time zone, a name, a label key, a data
  URI) is never echoed: every diagnostic is redacted, and an invalid value is shown as a short
  prefix at most.
* A file of aliases to one large scalar is refused quickly (the loader bounds the expanded
  text; the scanner judges each string once).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcompile import secret_checks, secret_index, secret_index_gen, secret_rules, secrets
from mlcompile.cli import main

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "tests" / "errors" / "_base"

# One fake of each format, as a user would paste it (none is a real credential). Each is
# found by the rule named, wherever it is written.
FORMATS = {
    "AWS access key id": ("AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
    "bare AWS secret access key": ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "an AWS secret access key"),
    "Hugging Face token": ("hf_" + "kQeZpRtVbNmXcLaSdFgHjKwYuIoPzxvTqE", "a Hugging Face token"),
    "OpenAI project key": ("sk-proj-" + "Zt8q2LmX0vB7nR4kW9pD3sF6hJ1gK5cV-yU_aE2oI7uT4rQ", "an OpenAI API key"),
    "Google API key": ("AIza" + "SyD4kQeZpRtVbNmXcLaSdFgHjKwYuIoP9x0", "a Google API key"),
    "upper-case URI scheme": ("HTTPS://etl:hunter2x@db.internal/sales", "a URI with a password in it"),
    "mixed-case URI scheme": ("PostgreSQL://etl:hunter2x@db.internal:5432/sales", "a URI with a password in it"),
    "password starting with %": ("https://etl:%25hunter2@db.internal/x", "a URI with a password in it"),
    "password starting with $": ("https://etl:$hunter2x@db.internal/x", "a URI with a password in it"),
    "GitHub token": ("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "a GitHub token"),
    "GitLab token (maintained set)": ("glpat-" + "Zt8q2LmX0vB7nR4kW9pD", "a GitLab Token"),
    "Stripe key (maintained set)": ("sk_live_" + "Zt8q2LmX0vB7nR4kW9pD3sF6", "a Stripe Access Key"),
    "SendGrid key (maintained set)": ("SG." + "Zt8q2LmX0vB7nR4kW9pD3s" + "." + "Zt8q2LmX0vB7nR4kW9pD3sF6hJ1gK5cVyUaE2oI7uT4", "a SendGrid API Key"),
    "PyPI token (maintained set)": ("pypi-AgEIcHlwaS5vcmc" + "Zt8q2LmX0vB7nR4kW9pD" * 4, "a PyPI Token"),
    "Slack token": ("xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUv", "a Slack token"),
    "Azure connection string": (
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=q0Zl3mB9xY2vT8kR4nW6pE1sD7fG5hJ3cV0bN8mQ2aL9zX4==",
        "an Azure connection string key",
    ),
}
FORMAT_NAMES = sorted(FORMATS)


def _invoke(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(main, args, catch_exceptions=True)


def _workspace(tmp_path: Path) -> Path:
    shutil.rmtree(tmp_path, ignore_errors=True)
    tmp_path.mkdir(parents=True)
    shutil.copytree(BASE / "targets", tmp_path / "targets")
    shutil.copy(BASE / "minimal.yaml", tmp_path / "mlcompile.yaml")
    return tmp_path


def _yaml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


# ---------------------------------------------------------------------------- the rule set

LEFT_OUT = {
    "Public IP (ipv4)": "an address, not a credential",
    "JSON Web Token": "its plugin confirms a match by decoding it, which a regular expression cannot; mlcompile's own rule is stricter",
}


def secret_rules_module() -> str:
    """The text of src/mlcompile/secret_rules.py, from the installed detect-secrets."""
    from importlib.metadata import version

    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    lines = []
    for secret_type, plugin in sorted(get_mapping_from_secret_type_to_class().items()):
        if not issubclass(plugin, RegexBasedDetector) or secret_type in LEFT_OUT:
            continue
        for regex in plugin.denylist:
            lines.append(f"    ({secret_type!r}, {regex.pattern!r}, {int(regex.flags & ~re.UNICODE)}),\n")
    # the module's own docstring (which says where the rules come from), with the version
    header = '"""' + re.sub(r"detect-secrets [0-9][0-9.]*", f"detect-secrets {version('detect-secrets')}", secret_rules.__doc__ or "", count=1) + '"""\n\n'
    return header + "RULES: tuple[tuple[str, str, int], ...] = (\n" + "".join(lines) + ")\n"


def test_the_maintained_rules_are_those_of_the_installed_detect_secrets(update_golden: bool) -> None:
    pytest.importorskip("detect_secrets")
    path = Path(secret_rules.__file__)
    expected = secret_rules_module()
    if update_golden:
        path.write_text(expected)
    assert path.read_text() == expected, "detect-secrets changed: rerun with --update-golden and review the diff"
    assert len(secret_rules.RULES) > 30


@pytest.mark.parametrize("name", FORMAT_NAMES)
def test_each_format_is_found_by_its_rule(name: str) -> None:
    value, what = FORMATS[name]
    findings = secrets.scan_text(f"x: {value}\n")
    assert [f.what for f in findings] == [what]
    assert value.startswith(findings[0].text) or findings[0].text in value


@pytest.mark.parametrize(
    "value",
    [
        "https://user:${PASSWORD}@db/x",  # placeholders, resolved elsewhere
        "https://user:$PASSWORD@db/x",
        "https://user:{{ password }}@db/x",
        "https://user:%(password)s@db/x",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # a sha256
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",  # a sha1, 40 hex characters
        "examples/churn/data/customer_activity/part",
        "hf_hub_download",
        "sk-learn-is-not-a-key",
    ],
)
def test_placeholders_digests_and_words_are_not_credentials(value: str) -> None:
    assert secrets.scan_text(value) == []


# ---------------------------------------------------------------------------- every field kind


def _in_spec_scalar(work: Path, value: str) -> str:
    text = (work / "mlcompile.yaml").read_text().replace("  name: churn\n", f"  name: churn\n  description: {_yaml(value)}\n")
    (work / "mlcompile.yaml").write_text(text)
    return "mlcompile.yaml"


def _in_map_key(work: Path, value: str) -> str:
    text = (work / "mlcompile.yaml").read_text().replace("  name: churn\n", f"  name: churn\n  labels: {{{_yaml(value)}: x}}\n")
    (work / "mlcompile.yaml").write_text(text)
    return "mlcompile.yaml"


def _in_list_item(work: Path, value: str) -> str:
    text = (work / "mlcompile.yaml").read_text()
    text = text.replace("LogisticRegression}", "LogisticRegression, params: {classes: [a, " + _yaml(value) + "]}}")
    (work / "mlcompile.yaml").write_text(text)
    return "mlcompile.yaml"


def _in_override(work: Path, value: str) -> str:
    text = (work / "mlcompile.yaml").read_text()
    text += "    metadata: {description: " + _yaml(value) + "}\n"
    (work / "mlcompile.yaml").write_text(text)
    return "mlcompile.yaml"


def _in_profile_field(work: Path, value: str) -> str:
    profile = work / "targets" / "aws-prod.yaml"
    profile.write_text(profile.read_text().replace("metadata: {name: aws-prod}", "metadata: {name: aws-prod, description: " + _yaml(value) + "}"))
    return "targets/aws-prod.yaml"


FIELD_KINDS = {
    "spec scalar": _in_spec_scalar,
    "map key": _in_map_key,
    "list item": _in_list_item,
    "override": _in_override,
    "profile field": _in_profile_field,
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(FORMAT_NAMES), kind=st.sampled_from(sorted(FIELD_KINDS)))
def test_every_format_is_refused_in_every_kind_of_field_and_never_echoed(name: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value, what = FORMATS[name]
    work = _workspace(tmp_path / "w")
    file = FIELD_KINDS[kind](work, value)
    result = _invoke(["validate", "mlcompile.yaml", "--target", "targets/aws-prod.yaml"], work, monkeypatch)
    assert result.exit_code == 2, result.output
    assert re.search(rf"^{re.escape(file)}:\d+:\d+: error: .*looks like {re.escape(what)}", result.output, re.M), result.output
    assert value not in result.output


# ---------------------------------------------------------------------------- never echoed


# (what the field is, how the spec is changed: the credential goes where {} is)
FAILING_FIELDS = {
    "time zone": (
        "registry:",
        "deployment:\n  batch: {{schedule: '0 3 * * *', timezone: {}, input: {{source: events}}, output: {{uri: bq://a.b.c}}}}\nregistry:",
    ),
    "metadata.name": ("  name: churn", "  name: {}"),
    "label key": ("  name: churn", "  name: churn\n  labels: {{{}: x}}"),
    "source uri": None,
}


def _credential_in_a_failing_field(work: Path, field: str, secret: str) -> None:
    spec = work / "mlcompile.yaml"
    text = spec.read_text()
    if field == "source uri":
        text = re.sub(r"uri: \S+", "uri: " + _yaml(secret), text, count=1)
    else:
        old, new = FAILING_FIELDS[field]  # type: ignore[misc]
        assert old in text, old
        text = text.replace(old, new.format(_yaml(secret)), 1)
    spec.write_text(text)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(sorted(FAILING_FIELDS)),
    name=st.sampled_from(FORMAT_NAMES),
    output_format=st.sampled_from(["text", "json"]),
)
def test_a_credential_in_a_field_that_fails_another_check_is_never_echoed(
    field: str, name: str, output_format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, _ = FORMATS[name]
    (secret,) = [f.text for f in secrets.scan_text(value)]  # the credential in the value
    work = _workspace(tmp_path / "w")
    _credential_in_a_failing_field(work, field, value)
    result = _invoke(["validate", "mlcompile.yaml", "--format", output_format], work, monkeypatch)
    assert result.exit_code == 2, result.output
    assert secret not in result.output
    pieces = {secret[i : i + 8] for i in range(4, len(secret) - 7)}  # nor any piece of it past a short prefix
    assert not [p for p in pieces if p in result.output], result.output


def test_the_issue_examples_are_redacted_at_their_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    _credential_in_a_failing_field(work, "time zone", "https://u:pw1234@h")
    result = _invoke(["validate", "mlcompile.yaml"], work, monkeypatch)
    assert "pw1234" not in result.output
    assert "error: deployment.batch.timezone: 'htt***h' is not an IANA time zone" in result.output


def test_an_invalid_value_is_shown_as_a_short_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = _workspace(tmp_path)
    _credential_in_a_failing_field(work, "metadata.name", "not-a-secret-but-a-long-name-" + "x" * 200)
    result = _invoke(["validate", "mlcompile.yaml"], work, monkeypatch)
    assert result.exit_code == 2
    assert "metadata.name: 'not-a-secret-but-a-long-name-xxxxxxxx...' must be 3 to 40 characters long" in result.output
    assert "x" * 50 not in result.output


def test_errors_that_are_not_diagnostics_are_redacted_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A usage error quotes what it was given: a credential in it is cut."""
    work = _workspace(tmp_path)
    result = _invoke(["build", "https://etl:hunter2x@db/*.yaml", "-t", "targets", "-o", "out"], work, monkeypatch)
    assert result.exit_code == 2, result.output
    # The prefix kept depends on which span is flagged (the scanner's match, or a value an
    # earlier spec in this process flagged); either way the credential is gone.
    assert "hunter2x" not in result.output
    assert re.search(r"error: no spec matches 'h[a-z]{0,3}\*\*\*", result.output), result.output


# ---------------------------------------------------------------------------- aliases


def test_aliases_of_one_large_scalar_are_refused_quickly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """1 MB of YAML: a 500 KB scalar and 99,000 aliases of it (50 GB once expanded) took
    minutes to validate. Refused, located, in a few seconds even on a loaded machine."""
    work = _workspace(tmp_path)
    text = (work / "mlcompile.yaml").read_text()
    text += "x-padding:\n  big: &big " + "a" * 500_000 + "\n  copies: [" + ", ".join(["*big"] * 99_000) + "]\n"
    (work / "mlcompile.yaml").write_text(text)
    started = time.perf_counter()
    result = _invoke(["validate", "mlcompile.yaml"], work, monkeypatch)
    seconds = time.perf_counter() - started
    assert result.exit_code == 2, result.output
    assert re.search(r"^mlcompile\.yaml:\d+:1: error: x-padding: document expands to more than 10 MiB of text$", result.output, re.M), result.output
    assert seconds < 5, f"{seconds:.1f} s"


def test_an_aliased_secret_is_scanned_and_reported_once() -> None:
    from mlcompile.spec.loader import load_yaml_text

    text = "a: &s AKIAIOSFODNN7EXAMPLE\nb: [" + ", ".join(["*s"] * 5000) + "]\n"
    document = load_yaml_text(text, "x.yaml")
    calls = []
    original = secret_checks.scan_text
    try:
        secret_checks.scan_text = lambda value: calls.append(value) or original(value)  # type: ignore[assignment]
        found = secret_checks.check_document(document.data, document.source_map)
    finally:
        secret_checks.scan_text = original  # type: ignore[assignment]
    assert [d.path for d in found] == ["a"]
    assert calls.count("AKIAIOSFODNN7EXAMPLE") == 1


# ---------------------------------------------------------------------------- speed


def test_the_shipped_rule_index_is_the_one_the_rules_give() -> None:
    assert secret_index_gen.generate() == secret_index.INDEX_FILE.read_text(encoding="utf-8"), f"run {secret_index.COMMAND}"


def test_a_rule_the_index_does_not_hold_is_parsed_when_used() -> None:
    assert secret_index.facts(r"(?i)token=[a-z0-9]{20}", 0) == secret_index.Facts(frozenset({"token="}), 26)


def _keyed_rules_hypothesis_can_draw() -> list[tuple[int, str]]:
    """(index, what) of each rule whose pattern hypothesis can draw matches of (not those
    with a lookaround, which from_regex does not support)."""
    return [
        (i, rule.what)
        for i, (rule, _) in enumerate(secrets._keyed_rules())
        if "(?<" not in rule.regex.pattern and "(?=" not in rule.regex.pattern and "(?!" not in rule.regex.pattern
    ]


@pytest.mark.parametrize(("index", "what"), _keyed_rules_hypothesis_can_draw())
def test_a_rule_is_skipped_only_where_it_cannot_match(index: int, what: str) -> None:
    """The scanner runs a rule only on texts holding one of its words and at least as long
    as its shortest match: every match holds one and is that long."""
    rule, facts = secrets._keyed_rules()[index]

    @settings(max_examples=10, deadline=None)
    @given(st.from_regex(rule.regex, fullmatch=True))
    def check(text: str) -> None:
        assert facts.words is None or any(word in text.lower() for word in facts.words), (facts.words, text)
        assert len(text) >= facts.shortest, (facts.shortest, text)

    check()
