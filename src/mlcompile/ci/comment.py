"""Keep one mlcompile comment on a pull request (GitHub), merge request (GitLab) or pull
request thread (Azure DevOps): found by the marker it starts with, created, updated in place,
or deleted when a later push changes nothing.

Standard library only, so that a CI job can run this file without installing mlcompile:
    python comment.py github --pull 12 --body-file diff.md
    python comment.py github --pull 12 --delete
    python comment.py github --from-dir review/ --expect-head-sha SHA   # fork PRs, see docs/ci.md
Each platform reads its own CI variables (GITHUB_*, CI_* or SYSTEM_*/BUILD_*) for the API
address, the repository and the token."""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "<!-- mlcompile diff -->"
# GitHub refuses comments over 65,536 characters; the rest of the limit is left for the note
LIMIT = 60_000
PAGE = 100


class CommentError(Exception):
    pass


@dataclass(frozen=True)
class Found:
    """A comment that carries the marker: its id (and, on Azure DevOps, its thread's)."""

    id: str
    thread: str = ""


def _request(method: str, url: str, headers: dict[str, str], body: Any = None) -> tuple[Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return (json.loads(raw) if raw.strip() else None), dict(response.headers)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise CommentError(f"{method} {url}: HTTP {exc.code}: {detail}") from None
    except urllib.error.URLError as exc:
        raise CommentError(f"{method} {url}: {exc.reason}") from None


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise CommentError(f"{name} is not set (this runs inside a CI job)")
    return value


class GitHub:
    """Issue comments of a pull request (REST API v3); GITHUB_TOKEN needs pull-requests: write."""

    def __init__(self, pull: str) -> None:
        self.api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        self.repo = _env("GITHUB_REPOSITORY")
        self.pull = pull
        token = os.environ.get("GITHUB_TOKEN") or _env("GH_TOKEN")
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    def find(self) -> Iterator[Found]:
        for page in range(1, 1000):
            comments, _ = _request("GET", f"{self.api}/repos/{self.repo}/issues/{self.pull}/comments?per_page={PAGE}&page={page}", self.headers)
            yield from (Found(str(c["id"])) for c in comments if str(c.get("body") or "").startswith(MARKER))
            if len(comments) < PAGE:
                return

    def create(self, body: str) -> None:
        _request("POST", f"{self.api}/repos/{self.repo}/issues/{self.pull}/comments", self.headers, {"body": body})

    def update(self, found: Found, body: str) -> None:
        _request("PATCH", f"{self.api}/repos/{self.repo}/issues/comments/{found.id}", self.headers, {"body": body})

    def delete(self, found: Found) -> None:
        _request("DELETE", f"{self.api}/repos/{self.repo}/issues/comments/{found.id}", self.headers)

    def head_sha(self) -> str:
        pull, _ = _request("GET", f"{self.api}/repos/{self.repo}/pulls/{self.pull}", self.headers)
        return str(pull["head"]["sha"])


class GitLab:
    """Notes of a merge request (API v4). CI_JOB_TOKEN cannot write notes (a GitLab
    limitation): the token is a project access token with the `api` scope, in the masked
    CI/CD variable MLCOMPILE_GITLAB_TOKEN."""

    def __init__(self, pull: str) -> None:
        self.base = f"{_env('CI_API_V4_URL').rstrip('/')}/projects/{_env('CI_PROJECT_ID')}/merge_requests/{pull}/notes"
        self.headers = {"PRIVATE-TOKEN": _env("MLCOMPILE_GITLAB_TOKEN")}

    def find(self) -> Iterator[Found]:
        for page in range(1, 1000):
            notes, _ = _request("GET", f"{self.base}?per_page={PAGE}&page={page}&sort=asc", self.headers)
            yield from (Found(str(n["id"])) for n in notes if not n.get("system") and str(n.get("body") or "").startswith(MARKER))
            if len(notes) < PAGE:
                return

    def create(self, body: str) -> None:
        _request("POST", self.base, self.headers, {"body": body})

    def update(self, found: Found, body: str) -> None:
        _request("PUT", f"{self.base}/{found.id}", self.headers, {"body": body})

    def delete(self, found: Found) -> None:
        _request("DELETE", f"{self.base}/{found.id}", self.headers)


class AzureDevOps:
    """The first comment of a pull-request thread (Git REST API 7.1); the pipeline passes
    SYSTEM_ACCESSTOKEN, and its build service needs "Contribute to pull requests"."""

    VERSION = "api-version=7.1"

    def __init__(self, pull: str) -> None:
        collection = _env("SYSTEM_COLLECTIONURI").rstrip("/")
        self.base = f"{collection}/{_env('SYSTEM_TEAMPROJECT')}/_apis/git/repositories/{_env('BUILD_REPOSITORY_ID')}/pullRequests/{pull}/threads"
        self.headers = {"Authorization": f"Bearer {_env('SYSTEM_ACCESSTOKEN')}"}

    def find(self) -> Iterator[Found]:
        threads, _ = _request("GET", f"{self.base}?{self.VERSION}", self.headers)  # not paged by the API
        for thread in threads["value"]:
            first = (thread.get("comments") or [{}])[0]
            if not thread.get("isDeleted") and not first.get("isDeleted") and str(first.get("content") or "").startswith(MARKER):
                yield Found(str(first["id"]), str(thread["id"]))

    def create(self, body: str) -> None:
        thread = {"comments": [{"parentCommentId": 0, "content": body, "commentType": 1}], "status": 1}
        _request("POST", f"{self.base}?{self.VERSION}", self.headers, thread)

    def update(self, found: Found, body: str) -> None:
        _request("PATCH", f"{self.base}/{found.thread}/comments/{found.id}?{self.VERSION}", self.headers, {"content": body})

    def delete(self, found: Found) -> None:
        _request("DELETE", f"{self.base}/{found.thread}/comments/{found.id}?{self.VERSION}", self.headers)


PLATFORMS = {"github": GitHub, "gitlab": GitLab, "azure-devops": AzureDevOps}


def fit(body: str, limit: int = LIMIT) -> str:
    """The body with the marker first, cut at a line below `limit` characters with a note."""
    if not body.startswith(MARKER):
        body = f"{MARKER}\n{body}"
    if len(body) <= limit:
        return body
    note = "\n\n_… cut here: {} more characters. The full diff is in this job's artifacts._\n"
    kept = body[: limit - len(note) - 20]
    kept = kept[: kept.rfind("\n") + 1] or kept
    if kept.count("```") % 2:  # do not leave a code fence open
        kept += "```\n"
    return kept + note.format(len(body) - len(kept))


def error_body(heading: str, log: str) -> str:
    """A comment saying why the review could not be made, with the located errors verbatim."""
    return f"{MARKER}\n### {heading}\n\n<pre>\n{html.escape(log.strip())}\n</pre>\n"


def publish(platform: Any, body: str | None) -> str:
    """Create, update or delete the marked comment; extra marked comments (from a race of two
    jobs) are deleted. Returns what was done."""
    found = list(platform.find())
    if body is None:
        for comment in found:
            platform.delete(comment)
        return f"deleted {len(found)} comment(s)" if found else "nothing to delete"
    if not found:
        platform.create(body)
        return "created"
    platform.update(found[0], body)
    for extra in found[1:]:
        platform.delete(extra)
    return "updated"


def _from_dir(folder: Path) -> tuple[str, str | None]:
    """What a job without write access left for a trusted one: `pull` and, when there is
    something to say, `body.md`. The contents are data from an untrusted run: checked, never run."""
    pull = (folder / "pull").read_text().strip()
    body = folder / "body.md"
    return pull, body.read_text(encoding="utf-8", errors="replace") if body.is_file() else None


def _save(folder: Path, pull: str, body: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pull").write_text(pull + "\n")
    (folder / "body.md").unlink(missing_ok=True)
    if body is not None:
        (folder / "body.md").write_text(body, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlcompile-comment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("platform", choices=sorted(PLATFORMS))
    parser.add_argument("--pull", help="Pull/merge request number (GitLab: the IID).")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--body-file", type=Path, help="Markdown to post (mlcompile diff --format markdown).")
    what.add_argument("--error-log", type=Path, help="Errors to post verbatim under --heading.")
    what.add_argument("--delete", action="store_true", help="Delete the marked comment (nothing changed).")
    what.add_argument("--from-dir", type=Path, help="Post what a review job without write access saved (pull, body.md).")
    parser.add_argument("--heading", default="mlcompile could not review this change")
    parser.add_argument("--save-to", type=Path, help="Do not post: save pull and body.md here for a job that may (fork pull requests).")
    parser.add_argument("--expect-head-sha", help="Refuse unless the pull request's head is this commit (GitHub).")
    args = parser.parse_args(argv)
    try:
        if args.from_dir:
            pull, body = _from_dir(args.from_dir)
        else:
            pull = args.pull or ""
            body = None if args.delete else (args.body_file.read_text(encoding="utf-8") if args.body_file else None)
            if args.error_log:
                body = error_body(args.heading, args.error_log.read_text(encoding="utf-8", errors="replace"))
        if not re.fullmatch(r"[1-9][0-9]{0,9}", pull):
            raise CommentError(f"not a pull request number: {pull[:40]!r}")
        if args.save_to:
            _save(args.save_to, pull, None if body is None else fit(body))
            print(f"mlcompile comment for #{pull} saved in {args.save_to} for the workflow_run job")
            return 0
        platform = PLATFORMS[args.platform](pull)
        if args.expect_head_sha:
            if not isinstance(platform, GitHub):
                raise CommentError(f"--expect-head-sha is for GitHub, not {args.platform}")
            if platform.head_sha() != args.expect_head_sha:
                raise CommentError(f"pull request {pull} is not at commit {args.expect_head_sha}: not commenting")
        print(f"mlcompile comment on {args.platform} #{pull}: {publish(platform, None if body is None else fit(body))}")
    except (CommentError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
