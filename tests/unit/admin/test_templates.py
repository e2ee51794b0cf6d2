"""The admin page's HTML escapes every value it did not write itself."""

from __future__ import annotations

from proxy.admin import templates
from proxy.trust.records import Approval, Verdict

EVIL = '"><script>alert(1)</script>'


def _page() -> str:
    v = Verdict("ab" * 32, EVIL, EVIL, ({"rule": EVIL, "message": EVIL, "location": EVIL},), 1.0)
    a = Approval("ab" * 32, "deny", EVIL, EVIL, 2.0)
    return templates.admin_page(
        client_id=EVIL,
        csrf=EVIL,
        flash=[EVIL],
        stats={
            "store": {"blobs": EVIL},
            "policy": {"revision": EVIL, "last_reload_ok": False, "last_error": EVIL},
        },
        quarantine=[(v, a), (v, None)],
        decisions=[
            {
                "client": EVIL,
                "target": EVIL,
                "rules": [EVIL],
                "reasons": [EVIL],
                "outcome": EVIL,
                "ecosystem": EVIL,
                "action": EVIL,
                "at": 3.0,
            }
        ],
        filters={"client": EVIL, "rule": None, "outcome": None},
    )


def test_templates__escape_everything() -> None:
    html = _page()
    assert "<script>" not in html
    assert EVIL not in html
    assert html.count("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;") >= 15


def test_templates__one_form_per_quarantined_digest_with_csrf() -> None:
    html = _page()
    assert html.count('action="/admin/quarantine/' + "ab" * 32 + '"') == 2
    assert html.count('name="csrf"') == 3  # two approval forms and logout
    assert 'value="approve"' in html
    assert 'value="deny"' in html
    assert "denied</span>" in html
    assert "pending review" in html


def test_templates__no_scripts_and_an_empty_quarantine() -> None:
    html = templates.login_page(EVIL)
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert templates.quarantine_table([], "t") == "<p>Nothing in quarantine.</p>"
