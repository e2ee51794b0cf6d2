"""HTML of the admin page, as small functions over escaped strings (no scripts, no framework).

Every value that did not come from this module goes through ``e()`` (``html.escape`` with
quotes), attribute values included, so a package name, finding or reason can never become
markup.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..trust.records import Approval, Verdict

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222}
h1{font-size:1.3rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}code{font-size:12px}
.flash{background:#eef6ee;border:1px solid #9c9;padding:.5rem}.error{background:#fbeaea;
border:1px solid #d99;padding:.5rem}.approve{color:#161}.deny{color:#a11}.pending{color:#a60}
form.inline{display:flex;gap:.4rem}input[name=reason]{flex:1;min-width:12rem}
header{display:flex;justify-content:space-between;align-items:baseline}
"""


def e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z" if at else ""


def layout(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


NO_ADMIN = (
    '<p class="note" id="no-admin">No admin exists yet. On the server, run '
    "<code>airlock admin create-token</code> (with the proxy's <code>--config</code>, if it "
    "has one) and paste the token it prints here. A client with the <code>admin</code> scope "
    "in the config file (<code>[[access.clients]]</code>) works too.</p>"
)


def login_page(error: str | None = None, *, no_admin: bool = False) -> str:
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    return layout(
        "airlock admin: log in",
        "<h1>airlock admin</h1>"
        f"{problem}{NO_ADMIN if no_admin else ''}"
        '<form method="post" action="/admin/login">'
        '<label>Admin token <input type="password" name="token" autocomplete="off" required'
        ' autofocus></label> <button type="submit">Log in</button></form>',
    )


def _findings(v: Verdict) -> str:
    items = "".join(
        f"<li><code>{e(f.get('rule'))}</code> {e(f.get('message'))}"
        f"{' at ' + e(f.get('location')) if f.get('location') else ''}</li>"
        for f in v.findings
    )
    return f"<ul>{items}</ul>"


def _status(a: Approval | None) -> str:
    if a is None:
        return '<span class="status pending">pending review</span>'
    word = "approved" if a.verdict == "approve" else "denied"
    return (
        f'<span class="status {e(a.verdict)}">{word}</span> by {e(a.by)} '
        f"({e(when(a.at))}): {e(a.reason)}"
    )


def quarantine_table(items: Sequence[tuple[Verdict, Approval | None]], csrf: str) -> str:
    if not items:
        return "<p>Nothing in quarantine.</p>"
    rows = []
    for v, a in items:
        rows.append(
            f'<tr id="q-{e(v.digest)}" class="quarantined">'
            f"<td><code>{e(v.digest)}</code><br>{e(v.format)}, scanned {e(when(v.scanned_at))}"
            f" (scanner {e(v.scanner_version)})</td><td>{_findings(v)}</td>"
            f"<td>{_status(a)}"
            f'<form class="inline" method="post" action="/admin/quarantine/{e(v.digest)}">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            '<input name="reason" placeholder="reason (required)" required maxlength="2000">'
            '<button type="submit" name="verdict" value="approve">Approve</button>'
            '<button type="submit" name="verdict" value="deny">Deny</button></form></td></tr>'
        )
    return (
        "<table><thead><tr><th>digest</th><th>findings</th><th>decision</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _filter_form(filters: Mapping[str, str | None]) -> str:
    fields = "".join(
        f'<label>{name} <input name="{name}" value="{e(filters.get(name) or "")}"></label> '
        for name in ("client", "rule", "outcome")
    )
    return (
        f'<form method="get" action="/admin/" class="filters">{fields}'
        '<button type="submit">Filter</button> <a href="/admin/">clear</a></form>'
    )


def decisions_table(rows: Iterable[Mapping[str, Any]], filters: Mapping[str, str | None]) -> str:
    body = "".join(
        f'<tr class="decision"><td>{e(when(r.get("at")))}</td><td>{e(r.get("client"))}</td>'
        f"<td>{e(r.get('ecosystem'))}</td><td>{e(r.get('action'))}</td>"
        f"<td>{e(r.get('target'))}</td><td>{e(r.get('outcome'))}</td>"
        f"<td>{e(', '.join(map(str, r.get('rules') or ())))}</td>"
        f"<td>{e('; '.join(map(str, r.get('reasons') or ())))}</td></tr>"
        for r in rows
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("time (UTC)", "client", "ecosystem", "action", "target", "outcome", "rules")
    )
    return (
        _filter_form(filters) + f"<table><thead><tr>{head}<th>reasons</th></tr></thead>"
        f"<tbody>{body or '<tr><td colspan=8>no decisions</td></tr>'}</tbody></table>"
    )


def _summary(stats: Mapping[str, Any]) -> str:
    store = stats.get("store") or {}
    policy = stats.get("policy") or {}
    failed = (
        ""
        if policy.get("last_reload_ok", True)
        else f" (reload failed: {policy.get('last_error')})"
    )
    parts = [
        f"store: {e(store.get('blobs', '?'))} blobs, {e(store.get('bytes', '?'))} bytes",
        f"fills in flight: {e((stats.get('caches') or {}).get('fills_in_flight', 0))}",
        f"policy {e(str(policy.get('revision', ''))[:12])}{e(failed)}",
    ]
    return f'<p class="summary">{" · ".join(parts)}</p>'


def admin_page(
    *,
    client_id: str,
    csrf: str,
    flash: Sequence[str],
    stats: Mapping[str, Any],
    quarantine: Sequence[tuple[Verdict, Approval | None]],
    decisions: Iterable[Mapping[str, Any]],
    filters: Mapping[str, str | None],
) -> str:
    notes = "".join(f'<p class="flash" role="status">{e(m)}</p>' for m in flash)
    return layout(
        "airlock admin",
        f'<header><h1>airlock admin</h1><form method="post" action="/admin/logout">'
        f'{e(client_id)} <input type="hidden" name="csrf" value="{e(csrf)}">'
        '<button type="submit">Log out</button></form></header>'
        f"{notes}{_summary(stats)}"
        f'<h2 id="quarantine">Quarantine</h2>{quarantine_table(quarantine, csrf)}'
        f'<h2 id="decisions">Recent decisions</h2>{decisions_table(decisions, filters)}',
    )
