"""SessionStore: random ids, expiry, bounded size, constant-time CSRF check."""

from __future__ import annotations

from proxy.admin.sessions import SessionStore
from proxy.decision import Client

ADMIN = Client(id="root-admin", scopes=("admin",))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions__create_get_drop() -> None:
    store = SessionStore()
    sid, session = store.create(ADMIN)
    assert len(sid) >= 40
    assert sid != session.csrf
    assert store.get(sid) is session
    assert store.get(sid + "x") is None
    assert store.get(None) is None
    assert store.get("") is None
    store.drop(sid)
    assert store.get(sid) is None


def test_sessions__are_keyed_by_digest_not_by_the_cookie_value() -> None:
    store = SessionStore()
    sid, _ = store.create(ADMIN)
    assert sid not in store._sessions


def test_sessions__expire() -> None:
    clock = Clock()
    store = SessionStore(ttl=60, clock=clock)
    sid, _ = store.create(ADMIN)
    clock.now += 59
    assert store.get(sid) is not None
    clock.now += 2
    assert store.get(sid) is None
    assert len(store) == 0


def test_sessions__bounded_oldest_evicted() -> None:
    store = SessionStore(max_sessions=3)
    ids = [store.create(ADMIN)[0] for _ in range(5)]
    assert len(store) == 3
    assert store.get(ids[0]) is None
    assert store.get(ids[1]) is None
    assert all(store.get(i) is not None for i in ids[2:])


def test_sessions__csrf_and_flash() -> None:
    _, session = SessionStore().create(ADMIN)
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf[:-1])
    assert not session.csrf_ok("é")  # non-ASCII input is compared, not an error
    session.flash.append("done")
    assert session.take_flash() == ["done"]
    assert session.take_flash() == []
