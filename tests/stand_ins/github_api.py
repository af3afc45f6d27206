"""A local stand-in for the part of GitHub's REST API a review job uses: the issue comments of
pull requests (list, paged; create; update; delete) and a pull request's head commit.
Answers as api.github.com does (201 on create, 204 on delete, 404 for what does not exist)
checks the token, and records every request, so a test can say what the job did to the pull request."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import ParseResult, parse_qs

from json_service import JsonService


class GitHubStandIn(JsonService):
    MAX_BODY = 65_536
    TOO_LONG = 422, {"message": "Validation Failed", "errors": [{"message": "body is too long (maximum is 65536 characters)"}]}

    def __init__(self, repository: str, token: str, heads: dict[int, str] | None = None) -> None:
        super().__init__()
        self.repository, self.token = repository, token
        self.heads = heads or {}  # pull request number → head commit
        self.comments: dict[int, dict[str, Any]] = {}  # id → comment, in creation order
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1001)

    def on(self, pull: int) -> list[dict[str, Any]]:
        """The comments of a pull request, oldest first."""
        return [c for c in self.comments.values() if c["issue"] == pull]

    def add(self, pull: int, body: str, login: str = "someone") -> None:
        comment_id = next(self._ids)
        self.comments[comment_id] = {"id": comment_id, "issue": pull, "body": body, "user": {"login": login}}

    def respond(self, method: str, url: ParseResult, raw: bytes, content_type: str) -> tuple[int, Any]:
        self.requests.append((method, url.path))
        if self.last_headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}
        prefix = f"/repos/{self.repository}"
        if not url.path.startswith(prefix + "/"):
            return 404, {"message": "Not Found"}
        path = url.path[len(prefix) :]
        if match := re.fullmatch(r"/issues/(\d+)/comments", path):
            pull = int(match[1])
            if method == "GET":
                query = parse_qs(url.query)
                per_page = min(int(query.get("per_page", ["30"])[0]), 100)
                page = int(query.get("page", ["1"])[0])
                return 200, self.on(pull)[(page - 1) * per_page : page * per_page]
            if method == "POST":
                if len(json.loads(raw)["body"]) > self.MAX_BODY:
                    return self.TOO_LONG
                self.add(pull, json.loads(raw)["body"], login="github-actions[bot]")
                return 201, list(self.comments.values())[-1]
        if match := re.fullmatch(r"/issues/comments/(\d+)", path):
            comment = self.comments.get(int(match[1]))
            if comment is None:
                return 404, {"message": "Not Found"}
            if method == "PATCH":
                if len(json.loads(raw)["body"]) > self.MAX_BODY:
                    return self.TOO_LONG
                comment["body"] = json.loads(raw)["body"]
                return 200, comment
            if method == "DELETE":
                del self.comments[comment["id"]]
                return 204, None
        if (match := re.fullmatch(r"/pulls/(\d+)", path)) and method == "GET" and int(match[1]) in self.heads:
            return 200, {"number": int(match[1]), "head": {"sha": self.heads[int(match[1])]}}
        return 404, {"message": "Not Found"}
