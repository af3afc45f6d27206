"""Unit tests of the YAML loader (data, source map, limits) and of the override merge."""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from mlcompile.errors import SpecError
from mlcompile.spec import loader
from mlcompile.spec.loader import Document, load_yaml_bytes, load_yaml_file, load_yaml_text
from mlcompile.spec.overrides import apply_overrides


def load(text: str) -> Document:
    return load_yaml_text(textwrap.dedent(text), "spec.yaml")


def problems(text: str | bytes) -> list[tuple[int, int, str, str]]:
    """(line, col, json path, message) of every diagnostic the text raises."""
    with pytest.raises(SpecError) as caught:
        if isinstance(text, bytes):
            load_yaml_bytes(text, "spec.yaml")
        else:
            load_yaml_text(text, "spec.yaml")
    return [(d.line, d.col, d.path, d.message) for d in caught.value.diagnostics]


def nested(levels: int, style: str) -> str:
    """A document whose deepest collection is at nesting level `levels` (the root is level 1)."""
    if style == "flow":
        return "a: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"
    lines = [f"{'  ' * i}k{i}:" for i in range(levels - 2)]  # scalars count as a level too: end on {}
    return "\n".join([*lines, f"{'  ' * (levels - 2)}k{levels - 2}: {{}}"]) + "\n"


# ------------------------------------------------------------------ data and source map

SPEC = """\
apiVersion: mlcompile/v1
metadata:
  name: churn
  labels: {team: growth, tier: "1"}
features:
  sources:
    - name: events
      uri: bq://acme.events
    - name: labels
      uri: bq://acme.labels
  tags: [a, b]
"""


def test_data_is_plain_python() -> None:
    doc = load(SPEC)
    assert doc.data["metadata"] == {"name": "churn", "labels": {"team": "growth", "tier": "1"}}
    assert doc.data["features"]["sources"][1] == {"name": "labels", "uri": "bq://acme.labels"}
    assert doc.file == "spec.yaml" and len(doc.sha256) == 64


def test_source_map_points_at_keys_and_values() -> None:
    sm = load(SPEC).source_map
    assert sm.keys[("metadata",)] == (2, 1)
    assert sm.keys[("metadata", "name")] == (3, 3)
    assert sm.values[("metadata", "name")] == (3, 9)
    # keys and values inside a flow mapping
    assert sm.keys[("metadata", "labels", "tier")] == (4, 26)
    assert sm.values[("metadata", "labels", "tier")] == (4, 32)
    # list items: the item, and the keys and values inside it
    assert sm.values[("features", "sources", 1)] == (9, 7)
    assert sm.keys[("features", "sources", 1, "uri")] == (10, 7)
    assert sm.values[("features", "sources", 1, "uri")] == (10, 12)
    # items of a flow list
    assert sm.values[("features", "tags", 0)] == (11, 10)
    assert sm.values[("features", "tags", 1)] == (11, 13)
    assert sm.values[()] == (1, 1)


def test_locate_prefers_the_value_then_the_key_then_the_nearest_ancestor() -> None:
    sm = load(SPEC).source_map
    assert sm.locate(("metadata", "name")) == (3, 9)
    assert sm.locate(("metadata", "name"), key=True) == (3, 3)
    # a path that does not exist (a missing key) falls back to its nearest ancestor
    assert sm.locate(("features", "sources", 1, "format")) == (9, 7)
    assert sm.locate(("nowhere", "at", "all")) == (1, 1)


def test_diagnostic_renders_file_line_col_and_json_path() -> None:
    sm = load(SPEC).source_map
    d = sm.diagnostic(("features", "sources", 1, "uri"), "bad uri", hint="fix it")
    assert d.render() == "spec.yaml:10:12: error: features.sources[1].uri: bad uri\n  hint: fix it"


def test_byte_order_mark_is_accepted_and_positions_ignore_it() -> None:
    doc = load_yaml_bytes("\ufeffa: 1\nb: x\n".encode("utf-8"), "spec.yaml")
    assert doc.data == {"a": 1, "b": "x"}
    assert doc.source_map.values[("b",)] == (2, 4)


def test_scalars_keep_their_yaml_types() -> None:
    doc = load("s: text\nq: '42'\ni: 42\nf: 0.5\nb: true\nn: null\ne:\n")
    assert doc.data == {"s": "text", "q": "42", "i": 42, "f": 0.5, "b": True, "n": None, "e": None}


def test_dates_are_kept_as_text() -> None:
    doc = load("day: 2024-01-31\nwhen: 2024-01-31T10:00:00Z\nspaced: 2024-01-31 10:00:00\n")
    assert doc.data == {"day": "2024-01-31", "when": "2024-01-31T10:00:00Z", "spaced": "2024-01-31 10:00:00"}


def test_keys_are_kept_as_written() -> None:
    assert load("1: one\ntrue: yes\n0x_: z\n").data == {"1": "one", "true": True, "0x_": "z"}


# ------------------------------------------------------------------ merge keys


def test_merge_key_copies_the_anchor_and_explicit_keys_win() -> None:
    doc = load(
        """\
        defaults: &defaults {cpu: 2, memory: 4Gi}
        online:
          <<: *defaults
          memory: 8Gi
        """
    )
    assert doc.data["online"] == {"cpu": 2, "memory": "8Gi"}
    assert doc.data["defaults"] == {"cpu": 2, "memory": "4Gi"}
    # an explicit key is located where it is written, a merged one in the anchor
    assert doc.source_map.values[("online", "memory")] == (4, 11)
    assert doc.source_map.keys[("online", "memory")] == (4, 3)
    assert doc.source_map.values[("online", "cpu")] == (1, 27)


def test_merge_key_with_a_list_the_first_mapping_wins() -> None:
    doc = load(
        """\
        a: &a {x: 1, y: 1}
        b: &b {y: 2, z: 2}
        c:
          <<: [*a, *b]
        """
    )
    assert doc.data["c"] == {"x": 1, "y": 1, "z": 2}


def test_merge_key_of_a_scalar_is_an_error() -> None:
    [(line, col, path, message)] = problems("a: &a 1\nb:\n  <<: *a\n")
    assert (line, col, path, message) == (1, 4, "b", "'<<' merges only mappings")  # at `&a 1`


# ------------------------------------------------------------------ what the loader refuses


def test_duplicate_keys_are_all_reported_where_they_repeat() -> None:
    found = problems("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert found == [
        (4, 3, "b.c", "duplicate key 'c' (first defined at line 3, column 3)"),
        (5, 1, "a", "duplicate key 'a' (first defined at line 1, column 1)"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "file is empty"),
        ("# only a comment\n", "file is empty"),
        ("- a\n- b\n", "the top level must be a mapping of keys to values, not a list"),
        ("just text\n", "the top level must be a mapping of keys to values, not a string"),
        ("42\n", "the top level must be a mapping of keys to values, not a number"),
    ],
)
def test_documents_that_are_not_a_mapping(text: str, message: str) -> None:
    assert problems(text) == [(1, 1, "", message)]


@pytest.mark.parametrize(
    "tag",
    ["!!python/object/apply:os.system [touch x]", "!!python/name:os.system", "!!binary aGVsbG8=", "!custom 1", "!!set {a, b}"],
)
def test_tags_that_build_objects_are_refused(tag: str) -> None:
    [(line, col, path, message)] = problems(f"a:\n  b: {tag}\n")
    assert (line, col, path) == (2, 6, "a.b")
    assert message.startswith("unsupported YAML tag '")


def test_not_utf8_is_located_at_the_byte() -> None:
    assert problems(b"a: 1\nb: caf\xe9\n") == [(2, 7, "", "file is not UTF-8 text (byte 0xe9)")]


def test_control_characters_are_located() -> None:
    assert problems("a: 1\nb: x\x00y\n") == [(2, 5, "", "invalid YAML: control character U+0000 is not allowed")]


def test_a_syntax_error_names_where_the_unclosed_construct_starts() -> None:
    [(line, col, _path, message)] = problems("a: [1, 2\nb: 3\n")
    assert (line, col) == (2, 2)
    assert "(while parsing a flow sequence that starts at line 1, column 4)" in message


def test_recursive_alias_is_refused() -> None:
    [(_line, _col, path, message)] = problems("a: &a\n  b: *a\n")
    assert (path, message) == ("a.b", "recursive YAML alias")


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize("style", ["flow", "block"])
def test_max_depth_is_allowed_and_one_more_level_is_refused(style: str) -> None:
    load_yaml_text(nested(loader.MAX_DEPTH, style), "spec.yaml")
    [(_line, _col, _path, message)] = problems(nested(loader.MAX_DEPTH + 1, style))
    assert message == f"document is nested more than {loader.MAX_DEPTH} levels deep"


@pytest.mark.parametrize("openers", [loader.MAX_DEPTH, 9_999, 10_000, 200_000])
def test_deep_flow_nesting_is_refused_at_the_same_place_whatever_the_parser(openers: int) -> None:
    """Below some nesting libyaml composes and the builder counts levels; above it PyYAML's
    composer counts them: both stop at the first `[` past the limit, without a RecursionError."""
    text = "a: " + "[" * openers + "]" * openers + "\n"
    [(line, col, _path, message)] = problems(text)
    assert (line, col) == (1, len("a: ") + loader.MAX_DEPTH)
    assert message == f"document is nested more than {loader.MAX_DEPTH} levels deep"


def test_depth_limit_is_read_at_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_DEPTH", 3)
    load_yaml_text(nested(3, "block"), "spec.yaml")
    [(_line, _col, _path, message)] = problems(nested(4, "block"))
    assert message == "document is nested more than 3 levels deep"


def test_max_values_counts_every_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_VALUES", 10)
    # the root mapping, the list and its items: 2 + 8 values
    load_yaml_text("a: [1, 2, 3, 4, 5, 6, 7, 8]\n", "spec.yaml")
    [(line, col, path, message)] = problems("a: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n")
    assert (line, col, path, message) == (1, 1, "a", "document expands to more than 10 values")


def test_alias_bomb_is_stopped_at_the_top_level_key_that_expands() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(c)}: &{chr(c)} [" + ", ".join([f"*{chr(c - 1)}"] * 10) + "]" for c in range(ord("b"), ord("i"))]
    [(line, col, path, message)] = problems("\n".join(lines) + "\n")
    assert message == f"document expands to more than {loader.MAX_VALUES} values"
    assert path == "e"  # a..d are 11 + 111 + 1_111 + 11_111 values; e alone 111_111
    assert (line, col) == (5, 1)


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 64)
    at_limit = tmp_path / "at.yaml"
    at_limit.write_bytes(b"a: " + b"x" * 60 + b"\n")
    assert at_limit.stat().st_size == 64
    assert load_yaml_file(at_limit).data == {"a": "x" * 60}

    over = tmp_path / "over.yaml"
    over.write_bytes(b"a: " + b"x" * 61 + b"\n")
    with pytest.raises(SpecError) as caught:
        load_yaml_file(over, "over.yaml")
    [d] = caught.value.diagnostics
    assert (d.file, d.line, d.col) == ("over.yaml", 1, 1)
    assert d.message.startswith("file is 0.0 MiB; specs are limited to")


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    for path, message in ((tmp_path / "missing.yaml", "no such file"), (tmp_path, "is a directory, not a YAML file")):
        with pytest.raises(SpecError) as caught:
            load_yaml_file(path, "shown.yaml")
        assert [(d.file, d.line, d.col, d.message) for d in caught.value.diagnostics] == [("shown.yaml", 1, 1, message)]


def test_garbage_never_escapes_as_another_exception() -> None:
    """Random mixtures of YAML punctuation and bytes: a Document or a SpecError, nothing else."""
    pieces = [b"a", b":", b" ", b"\n", b"  ", b"- ", b"[", b"]", b"{", b"}", b",", b"&x ", b"*x", b"<<: ", b"!!", b"'", b'"',
              b"#", b"\t", b"\x00", b"\xff", b"\xc3\xa9", b"---\n", b"...\n", b"? ", b"|\n", b">\n", b"%YAML 1.2\n", b"1", b"~"]  # fmt: skip
    rng = random.Random(20240131)
    for _ in range(2_000):
        raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        try:
            doc = load_yaml_bytes(raw, "fuzz.yaml")
        except SpecError as exc:
            assert exc.diagnostics, raw
            assert all(d.line >= 1 and d.col >= 1 for d in exc.diagnostics), raw
        else:
            assert isinstance(doc.data, dict), raw


# ------------------------------------------------------------------ overrides

BASE = """\
training:
  resources:
    cpu: 2
    memory: 4Gi
  evaluation:
    metrics: [roc_auc, f1]
features:
  sources:
    - name: events
      uri: bq://acme.events
      format: table
    - name: labels
      uri: bq://acme.labels
      format: table
overrides:
  aws-prod:
    training:
      resources: {cpu: 8}
      evaluation: {metrics: [accuracy]}
    features:
      sources:
        - name: labels
          uri: s3://acme/labels.parquet
          format: parquet
        - name: extra
          uri: s3://acme/extra.parquet
          format: parquet
  gcp-prod:
    training: {resources: {memory: 32Gi}}
"""


@pytest.fixture
def base() -> Document:
    return load_yaml_text(BASE, "spec.yaml")


def test_mappings_merge_key_by_key(base: Document) -> None:
    merged = apply_overrides(base, "aws-prod").data
    assert merged["training"]["resources"] == {"cpu": 8, "memory": "4Gi"}
    assert apply_overrides(base, "gcp-prod").data["training"]["resources"] == {"cpu": 2, "memory": "32Gi"}


def test_named_lists_merge_item_by_item_on_name(base: Document) -> None:
    sources = apply_overrides(base, "aws-prod").data["features"]["sources"]
    assert sources == [
        {"name": "events", "uri": "bq://acme.events", "format": "table"},
        {"name": "labels", "uri": "s3://acme/labels.parquet", "format": "parquet"},
        {"name": "extra", "uri": "s3://acme/extra.parquet", "format": "parquet"},
    ]


def test_a_named_item_is_patched_not_replaced(base: Document) -> None:
    doc = load_yaml_text(BASE.replace("          format: parquet\n        - name: extra", "        - name: extra"), "spec.yaml")
    labels = apply_overrides(doc, "aws-prod").data["features"]["sources"][1]
    assert labels == {"name": "labels", "uri": "s3://acme/labels.parquet", "format": "table"}
    sm = apply_overrides(doc, "aws-prod").source_map
    assert sm.values[("features", "sources", 1, "uri")] == (23, 16)  # from the override
    assert sm.values[("features", "sources", 1, "format")] == (14, 15)  # from the base


def test_other_lists_are_replaced(base: Document) -> None:
    assert apply_overrides(base, "aws-prod").data["training"]["evaluation"]["metrics"] == ["accuracy"]
    doc = load_yaml_text("tags: [a, b]\nitems: [{name: x}]\noverrides:\n  p: {tags: [c], items: [c]}\n", "spec.yaml")
    merged = apply_overrides(doc, "p").data
    assert merged["tags"] == ["c"]
    assert merged["items"] == ["c"]  # a named list patched by an unnamed one is replaced


def test_positions_of_overridden_values_point_into_overrides(base: Document) -> None:
    sm = apply_overrides(base, "aws-prod").source_map
    assert sm.values[("training", "resources", "cpu")] == (18, 24)  # `cpu: 8` under overrides.aws-prod
    assert sm.keys[("training", "resources", "cpu")] == (18, 19)
    assert sm.values[("training", "resources", "memory")] == (4, 13)  # untouched: where it was
    assert sm.values[("training", "evaluation", "metrics")] == (19, 29)
    assert sm.values[("training", "evaluation", "metrics", 0)] == (19, 30)
    # a patched named item: what the override writes is located there, the rest in the base
    assert sm.values[("features", "sources", 1, "uri")] == (23, 16)
    assert sm.values[("features", "sources", 1, "name")] == (22, 17)
    # an appended named item lies wholly in the override
    assert sm.values[("features", "sources", 2)] == (25, 11)
    assert sm.values[("features", "sources", 2, "uri")] == (26, 16)
    assert sm.values[("features", "sources", 0, "uri")] == (10, 12)


def test_diagnostics_on_the_merged_spec_point_into_overrides(base: Document) -> None:
    merged = apply_overrides(base, "aws-prod")
    d = merged.source_map.diagnostic(("training", "resources", "cpu"), "too many cores")
    assert d.render() == "spec.yaml:18:24: error: training.resources.cpu: too many cores"


def test_no_override_for_the_profile_is_the_document_itself(base: Document) -> None:
    assert apply_overrides(base, "azure-prod") is base


def test_merging_leaves_the_original_untouched(base: Document) -> None:
    before = repr(base.data), dict(base.source_map.values)
    apply_overrides(base, "aws-prod")
    assert (repr(base.data), dict(base.source_map.values)) == before
