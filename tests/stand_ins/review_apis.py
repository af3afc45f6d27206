"""Local stand-ins for the comment APIs of GitLab (merge-request notes, API v4) and Azure
DevOps (pull-request threads, Git REST API 7.1): what a review job lists, creates, edits and
deletes, answered as those services do, with the token each expects."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import ParseResult, parse_qs

from json_service import JsonService


class GitLabStandIn(JsonService):
    """/api/v4/projects/<id>/merge_requests/<iid>/notes[/<note id>], PRIVATE-TOKEN auth."""

    def __init__(self, project: str, token: str) -> None:
        super().__init__()
        self.project, self.token = project, token
        self.notes: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(501)

    def add(self, iid: int, body: str, system: bool = False) -> dict[str, Any]:
        note = {"id": next(self._ids), "iid": iid, "body": body, "system": system}
        self.notes[note["id"]] = note
        return note

    def on(self, iid: int) -> list[dict[str, Any]]:
        return [n for n in self.notes.values() if n["iid"] == iid]

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        if self.last_headers.get("PRIVATE-TOKEN") != self.token:
            return 401, {"message": "401 Unauthorized"}
        match = re.fullmatch(rf"/api/v4/projects/{self.project}/merge_requests/(\d+)/notes(?:/(\d+))?", url.path)
        if not match:
            return 404, {"message": "404 Not found"}
        iid, note = int(match[1]), self.notes.get(int(match[2] or 0))
        if match[2] is None and method == "GET":
            query = parse_qs(url.query)
            per_page, page = int(query["per_page"][0]), int(query["page"][0])
            return 200, self.on(iid)[(page - 1) * per_page : page * per_page]
        if match[2] is None and method == "POST":
            return 201, self.add(iid, json.loads(raw)["body"])
        if note is None:
            return 404, {"message": "404 Note Not Found"}
        if method == "PUT":
            note["body"] = json.loads(raw)["body"]
            return 200, note
        if method == "DELETE":
            del self.notes[note["id"]]
            return 204, None
        return 405, {"message": "405 Method Not Allowed"}


class AzureDevOpsStandIn(JsonService):
    """/<org>/<project>/_apis/git/repositories/<repo>/pullRequests/<id>/threads[...], bearer auth.
    A deleted comment stays in its thread, marked isDeleted, as Azure DevOps keeps it."""

    def __init__(self, project: str, repository: str, token: str) -> None:
        super().__init__()
        self.prefix = f"/acme/{project}/_apis/git/repositories/{repository}/pullRequests/"
        self.token = token
        self.threads: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(71)

    def add(self, pull: int, content: str) -> dict[str, Any]:
        thread = {"id": next(self._ids), "pull": pull, "status": "active", "comments": [{"id": 1, "content": content, "isDeleted": False}]}
        self.threads[thread["id"]] = thread
        return thread

    def live_comments(self, pull: int) -> list[str]:
        return [c["content"] for t in self.threads.values() if t["pull"] == pull for c in t["comments"] if not c["isDeleted"]]

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        if self.last_headers.get("Authorization") != f"Bearer {self.token}" or url.query != "api-version=7.1":
            return 401, {"message": "TF400813: not authorized"}
        match = re.fullmatch(re.escape(self.prefix) + r"(\d+)/threads(?:/(\d+)/comments/(\d+))?", url.path)
        if not match:
            return 404, {"message": "not found"}
        pull = int(match[1])
        if match[2] is None:
            if method == "GET":
                return 200, {"value": [t for t in self.threads.values() if t["pull"] == pull], "count": len(self.threads)}
            if method == "POST":
                return 200, self.add(pull, json.loads(raw)["comments"][0]["content"])
        thread = self.threads.get(int(match[2] or 0))
        comment = next((c for c in (thread or {}).get("comments", []) if c["id"] == int(match[3] or 0)), None)
        if comment is None:
            return 404, {"message": "comment not found"}
        if method == "PATCH":
            comment["content"] = json.loads(raw)["content"]
            return 200, comment
        if method == "DELETE":
            comment["isDeleted"] = True
            return 200, None
        return 405, {"message": "method not allowed"}
