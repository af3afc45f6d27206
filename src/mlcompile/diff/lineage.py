"""Lineage is not a change: every file of a build carries the spec's sha256 (labels, tags,
config files, descriptions) and, when known, the git commit, so that any resource can be traced
back to its source. Those values differ between any two builds of different bytes — a comment
added to the spec changes them all — and content-addressed file names built over them
(SageMaker's `configs/<sha>.json`) differ with them.

Before two builds are compared, each side's lineage values (and any prefix of them of eight hex
digits or more, as label-length limits cut them) are replaced by a placeholder, and files whose
names differ only by a content hash are paired up again. So are references from one file to
another by the other's sha256 (the pipeline version or PipelineJob id a monitoring pipeline
retrains with): the referenced file's own comparison shows whether it really changed. A job
embedded compressed (Azure ML's trigger-retraining carries the training pipeline job as
`job_zlib_base64`, so that Azure does not substitute that job's placeholders) is compared by a
digest of its own content with lineage set aside. What is left is what a reviewer needs: the
changes a deploy would make for a reason other than provenance."""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

_HEX_RUN = re.compile(rb"(?<![0-9a-f])[0-9a-f]{8,64}(?![0-9a-f])")
_COMPRESSED_JOB = re.compile(rb'(job_zlib_base64[\\"\s:]*)([A-Za-z0-9+/]{16,}={0,2})')  # in JSON, escaped once or twice
_HASH_IN_PATH = re.compile(r"(?<![0-9a-f])[0-9a-f]{12,64}(?![0-9a-f])")
MIN_PREFIX = 8


@dataclass(frozen=True)
class LineageValues:
    """The provenance hashes of one build, by what they are."""

    spec_sha256: str | None = None
    profile_sha256: str | None = None
    git_commit: str | None = None
    files: tuple[tuple[str, str], ...] = ()  # (sha256, path) of each file of the build

    def placeholders(self) -> dict[str, bytes]:
        found = {"spec-sha256": self.spec_sha256, "profile-sha256": self.profile_sha256, "git-commit": self.git_commit}
        values = {value.lower(): f"<{label}>".encode() for label, value in found.items() if value and len(value) >= MIN_PREFIX}
        return {**{digest: f"<sha256 of {path}>".encode() for digest, path in self.files}, **values}


def with_file_digests(lineage: LineageValues, files: Mapping[str, bytes]) -> LineageValues:
    """`lineage` plus the sha256 of each file, so that references to a file by its hash are set aside too."""
    import dataclasses

    return dataclasses.replace(lineage, files=tuple((hashlib.sha256(content).hexdigest(), path) for path, content in sorted(files.items())))


def without_lineage(content: bytes, lineage: LineageValues, renames: Mapping[str, str] | None = None) -> bytes:
    """`content` with every lineage hash (or prefix of one) replaced by a placeholder, and every
    content hash of `renames` (old → new name part) replaced by its counterpart."""
    values = lineage.placeholders()
    if not values and not renames:
        return content
    content = _COMPRESSED_JOB.sub(lambda match: _inner_digest(match, lineage, renames), content)
    renamed = {old.encode(): new.encode() for old, new in (renames or {}).items()}

    def replace(match: re.Match[bytes]) -> bytes:
        run = match.group(0)
        if run in renamed:
            return renamed[run]
        for value, placeholder in values.items():
            if value.startswith(run.decode()):
                return placeholder
        return run

    return _HEX_RUN.sub(replace, content)


def _inner_digest(match: re.Match[bytes], lineage: LineageValues, renames: Mapping[str, str] | None) -> bytes:
    try:
        inner = zlib.decompress(base64.b64decode(match.group(2), validate=True))
    except (ValueError, zlib.error):
        return match.group(0)
    return match.group(1) + b"<zlib job " + hashlib.sha256(without_lineage(inner, lineage, renames)).hexdigest()[:16].encode() + b">"


def path_shape(path: str) -> str:
    """A file's name with content hashes blanked: two names of one shape may be one file
    whose content (and so whose name) moved."""
    return _HASH_IN_PATH.sub("*", path)


def path_hashes(path: str) -> list[str]:
    return _HASH_IN_PATH.findall(path)


def pair_renamed(removed: Mapping[str, bytes], added: Mapping[str, bytes]) -> dict[str, str]:
    """Old path → new path for files whose names differ only by content hashes: first those
    whose (normalised) content is identical, then the most alike of the rest, one to one."""
    pairs: dict[str, str] = {}
    by_shape: dict[str, tuple[list[str], list[str]]] = {}
    for path in removed:
        if path_hashes(path):
            by_shape.setdefault(path_shape(path), ([], []))[0].append(path)
    for path in added:
        if path_hashes(path) and path_shape(path) in by_shape:
            by_shape[path_shape(path)][1].append(path)
    for olds, news in by_shape.values():
        news_left = list(news)
        for old in list(olds):
            same = next((new for new in news_left if added[new] == removed[old]), None)
            if same is not None:
                pairs[old] = same
                news_left.remove(same)
                olds.remove(old)
        # the rest by likeness: greedy on the share of lines they have in common
        scored = sorted(((-_likeness(removed[o], added[n]), o, n) for o in olds for n in news_left), key=lambda item: item)
        for score, old, new in scored:
            if old not in pairs and new in news_left and score < -0.5:
                pairs[old] = new
                news_left.remove(new)
    return pairs


def _likeness(a: bytes, b: bytes) -> float:
    lines_a, lines_b = set(a.splitlines()), set(b.splitlines())
    if not lines_a and not lines_b:
        return 1.0
    return len(lines_a & lines_b) / max(len(lines_a | lines_b), 1)
