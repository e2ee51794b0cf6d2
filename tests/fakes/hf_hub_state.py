"""The state of the stand-in Hugging Face Hub and its access rules, without the HTTP servers.

``HubState`` holds the repos, aliases, tokens, mode and request log, has the test API
(``expect``, ``recreate_repo``, ...) and decides who may see what: the bearer token's user, an
exact, aliased or differently-cased repo id, private and gated repos (401/403/404 as the real
hub answers them). ``FakeHub`` (tests/fakes/hf_hub.py) adds the hub and CDN servers and routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from aiohttp import web

from tests.fakes.hf_cdn import FakeCdn
from tests.fakes.hf_fixtures import ALIASES, TOKENS, recreated
from tests.fakes.hf_http import HubMode, RecordedRequest, RequestLog, error_response
from tests.fakes.hf_repos import Commit, Expected, Repo, RepoType


class HubState:
    """What the stand-in hub holds (repos, aliases, tokens, mode, request log) and who may see
    it; FakeHub (tests/fakes/hf_hub.py) adds the servers and the routes."""

    def __init__(
        self, repos: Iterable[Repo], *, mode: HubMode | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.mode = mode or HubMode()
        self.requests = RequestLog()
        self.repos: dict[tuple[RepoType, str], Repo] = {}
        for repo in repos:
            self.add_repo(repo)
        # (type, old or legacy id) -> canonical id; answered with a 307 on /resolve.
        self.aliases: dict[tuple[RepoType, str], str] = dict(ALIASES)
        self.tokens: dict[str, str] = dict(TOKENS)  # bearer token -> user name
        self.url = ""
        self.cdn = FakeCdn()
        self._host = host
        self._runners: list[web.AppRunner] = []

    @property
    def cdn_url(self) -> str:
        return self.cdn.url

    # ---- test API ------------------------------------------------------------------------
    def add_repo(self, repo: Repo) -> None:
        self.repos[(repo.repo_type, repo.repo_id)] = repo

    def repo(self, repo_id: str, repo_type: RepoType = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def commit_sha(
        self, repo_id: str, revision: str = "main", repo_type: RepoType = "model"
    ) -> str:
        commit = self.repo(repo_id, repo_type).resolve(revision)
        assert commit is not None, f"unknown revision {revision!r} of {repo_id}"
        return commit.oid

    def expect(
        self, repo_id: str, path: str, revision: str = "main", repo_type: RepoType = "model"
    ) -> Expected:
        sha = self.commit_sha(repo_id, revision, repo_type)
        return Expected(sha, self.repo(repo_id, repo_type).commits[sha].files[path])

    def recreate_repo(self, repo_id: str, repo_type: RepoType = "model") -> Repo:
        """Mode d: delete + re-create under the same name (new _id, newer createdAt, new commits).

        Also works for an alias (a renamed repo's old name): the new repo then takes the name over.
        """
        old = self.repos.get((repo_type, repo_id))
        if old is None:
            canonical = self.aliases[(repo_type, repo_id)]
            old = replace(self.repo(canonical, repo_type), repo_id=repo_id)
        fresh = recreated(old)
        self.add_repo(fresh)
        return fresh

    # ---- repo lookup and access ------------------------------------------------------------
    def _user(self, request: web.Request) -> str | Literal[False] | None:
        """User of the bearer token; None without a token, False for an unknown token."""
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        return self.tokens.get(token.strip(), False) if scheme.lower() == "bearer" else False

    def _lookup(self, repo_type: RepoType, requested: str) -> tuple[Repo, bool] | None:
        """(repo, needs_redirect) for an exact, aliased or differently-cased id."""
        exact = self.repos.get((repo_type, requested))
        if exact:
            return exact, False
        lowered = requested.lower()
        for (kind, alias), canonical in self.aliases.items():
            if kind == repo_type and alias.lower() == lowered and (kind, canonical) in self.repos:
                return self.repos[(kind, canonical)], True
        for (kind, repo_id), repo in self.repos.items():
            if kind == repo_type and repo_id.lower() == lowered:
                return repo, True
        return None

    def _open(
        self, request: web.Request, entry: RecordedRequest, repo_type: RepoType, requested: str
    ) -> tuple[Repo, bool] | web.Response:
        user = self._user(request)
        if user is False:
            return error_response(request, 401, "Invalid credentials in Authorization header")
        found = self._lookup(repo_type, requested)
        if found is None or (found[0].private and user not in found[0].readers):
            if user is None:
                return error_response(request, 401, "Invalid username or password.", "RepoNotFound")
            return error_response(request, 404, "Repository not found", "RepoNotFound")
        entry.repo_id = found[0].repo_id
        return found

    def _content_blocked(self, request: web.Request, repo: Repo) -> web.Response | None:
        if repo.disabled:
            return error_response(request, 403, "Access to this resource is disabled.")
        user = self._user(request)
        if not repo.gated or user in repo.readers:
            return None
        what = f"Access to {repo.repo_type} {repo.repo_id} is restricted"
        if not user:
            message = f"{what}. You must have access to it and be authenticated to access it."
            return error_response(request, 401, message + " Please log in.", "GatedRepo")
        url = f"{self.url}/{repo.url_prefix}{repo.repo_id}"
        message = f"{what} and you are not in the authorized list. Visit {url} to ask for access."
        return error_response(request, 403, message, "GatedRepo")

    def _commit_or_error(
        self, request: web.Request, repo: Repo, revision: str
    ) -> web.Response | Commit:
        commit = repo.resolve(revision)
        if commit is None:
            return error_response(request, 404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit
