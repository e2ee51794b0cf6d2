"""The AI-BOM: what the proxy served (to whom, when, under which decision) as CycloneDX 1.6 JSON.

Built from the served log (``TrustRecords.served``) with cyclonedx-python-lib and serialised by
its JSON serialiser.  One component per distinct artifact:

* a PyPI file: type ``library``, purl ``pkg:pypi/<name>@<version>?file_name=<file>``, its
  sha256;
* a hub repository at a commit: type ``machine-learning-model`` (models), ``data`` (datasets)
  or ``application`` (spaces), purl ``pkg:huggingface/<org>/<name>@<commit>`` — the purl
  spec's ``huggingface`` type, whose default repository is the hub's model namespace; datasets
  and spaces, which the spec does not cover, carry
  ``?repository_url=https://huggingface.co/datasets`` (or ``/spaces``) so their purls never
  collide with a model's — with one ``file`` sub-component per file served (path, sha256).

Properties are namespaced ``airlock:``: ``decision``, ``policy_revision``, ``scan_verdict``,
``rule`` (not-enforced rule ids), ``upstream``, ``client`` (one per client that pulled it),
``first_served``/``last_served`` (RFC 3339, UTC) and ``downloads``; hub components add
``repo_type``.  The metadata names airlock (with its version) as the tool and records the
filters the BOM was made with.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from .. import __version__
from .attest import rfc3339
from .records import Served, TrustRecords

MEDIA_TYPE = "application/vnd.cyclonedx+json; version=1.6"
HF_REPOSITORY = "https://huggingface.co"
HF_TYPES = {
    "model": ComponentType.MACHINE_LEARNING_MODEL,
    "dataset": ComponentType.DATA,
    "space": ComponentType.APPLICATION,
}


@dataclass(frozen=True, slots=True)
class BomFilter:
    client: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive


def parse_time(text: str) -> float:
    """ISO 8601 date or date-time (a naive one is UTC) as epoch seconds; ValueError if not."""
    value = text.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value[:60]!r} is not an ISO 8601 date or date-time (e.g. 2026-01-31 or "
            "2026-01-31T12:00:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_filter(query: Mapping[str, str]) -> BomFilter:
    """client, since, until from a query string or CLI options; empty means "any"."""
    client = (query.get("client") or "").strip() or None
    if client is not None and len(client) > 200:
        raise ValueError("'client' must be at most 200 characters")
    since = query.get("since") or None
    until = query.get("until") or None
    return BomFilter(
        client,
        parse_time(since) if since else None,
        parse_time(until) if until else None,
    )


def _props(rows: Sequence[Served], *more: tuple[str, str]) -> list[Property]:
    values: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        values["decision"].add(str(r.extra.get("decision", "allow")))
        values["policy_revision"].add(r.policy_revision)
        values["upstream"].add(r.upstream)
        values["client"].add(r.client)
        values["rule"].update(r.rules)
        if r.scan_verdict is not None:
            values["scan_verdict"].add(r.scan_verdict)
    props = [
        Property(name=f"airlock:{k}", value=v) for k, vs in values.items() for v in vs if v != ""
    ]
    props += [
        Property(name="airlock:first_served", value=rfc3339(min(r.at for r in rows))),
        Property(name="airlock:last_served", value=rfc3339(max(r.at for r in rows))),
        Property(name="airlock:downloads", value=str(len(rows))),
    ]
    props += [Property(name=f"airlock:{k}", value=v) for k, v in more]
    return props


def _sha256(digest: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=digest)]


def pypi_purl(project: str, version: str | None, filename: str) -> PackageURL:
    return PackageURL("pypi", None, project, version, {"file_name": filename})


def hf_purl(repo_type: str, repo_id: str, commit: str | None) -> PackageURL:
    namespace, _, name = repo_id.rpartition("/")
    qualifiers = {} if repo_type == "model" else {"repository_url": f"{HF_REPOSITORY}/{repo_type}s"}
    return PackageURL("huggingface", namespace or None, name, commit, qualifiers)


def _pypi_components(rows: Iterable[Served]) -> list[Component]:
    groups: dict[tuple[str, str, str], list[Served]] = defaultdict(list)
    for r in rows:
        groups[(r.project, r.filename, r.digest)].append(r)
    out: list[Component] = []
    seen: set[str] = set()
    for (project, filename, digest), group in sorted(groups.items()):
        version = group[0].version
        purl = pypi_purl(project, version, filename)
        ref = purl.to_string()
        if ref in seen:  # the same file name with other content (the upstream replaced it)
            ref = f"{ref}#sha256={digest}"
        seen.add(ref)
        out.append(
            Component(
                type=ComponentType.LIBRARY,
                name=project,
                version=version,
                purl=purl,
                hashes=_sha256(digest),
                bom_ref=ref,
                properties=_props(group, ("ecosystem", "pypi"), ("file_name", filename)),
            )
        )
    return out


def _hf_components(rows: Iterable[Served]) -> list[Component]:
    repos: dict[tuple[str, str, str], list[Served]] = defaultdict(list)
    for r in rows:
        repo_type = str(r.extra.get("repo_type", "model"))
        repo_id = str(r.extra.get("repo") or r.project.partition("/")[2])
        repos[(repo_type, repo_id, r.version or "")].append(r)
    out: list[Component] = []
    for (repo_type, repo_id, commit), group in sorted(repos.items()):
        purl = hf_purl(repo_type, repo_id, commit or None)
        ref = purl.to_string()
        files: dict[tuple[str, str], list[Served]] = defaultdict(list)
        for r in group:
            files[(r.filename, r.digest)].append(r)
        namespace, _, name = repo_id.rpartition("/")
        out.append(
            Component(
                type=HF_TYPES.get(repo_type, ComponentType.DATA),
                group=namespace or None,
                name=name,
                version=commit or None,
                purl=purl,
                bom_ref=ref,
                properties=_props(group, ("ecosystem", "hf"), ("repo_type", repo_type)),
                components=[
                    Component(
                        type=ComponentType.FILE,
                        name=path,
                        hashes=_sha256(digest),
                        bom_ref=BomRef(f"{ref}#{path}@sha256={digest}"),
                        properties=_props(served),
                    )
                    for (path, digest), served in sorted(files.items())
                ],
            )
        )
    return out


def build_bom(
    rows: Sequence[Served],
    where: BomFilter,
    now: datetime | None = None,
    on_row: Callable[[], object] = lambda: None,  # after each row is sorted in (CLI progress)
) -> Bom:
    bom = Bom(serial_number=uuid.uuid4())
    bom.metadata.timestamp = now or datetime.now(UTC)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="airlock", version=__version__)
    )
    filters = [
        ("client", where.client),
        ("since", rfc3339(where.since) if where.since is not None else None),
        ("until", rfc3339(where.until) if where.until is not None else None),
    ]
    for key, value in filters:
        if value is not None:
            bom.metadata.properties.add(Property(name=f"airlock:filter:{key}", value=value))
    by_ecosystem: dict[str, list[Served]] = {"pypi": [], "hf": []}
    for r in rows:
        by_ecosystem.get(r.ecosystem, []).append(r)
        on_row()
    bom.components.update(_pypi_components(by_ecosystem["pypi"]))
    bom.components.update(_hf_components(by_ecosystem["hf"]))
    return bom


def to_json(bom: Bom) -> str:
    return JsonV1Dot6(bom).output_as_string(indent=2)


async def bom_json(records: TrustRecords, where: BomFilter) -> str:
    """The BOM of the served log under *where*, serialised off the event loop."""
    rows = await records.served(where.client, where.since, where.until)
    return await asyncio.to_thread(lambda: to_json(build_bom(rows, where)))
