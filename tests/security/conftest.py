"""The security suite: hostile input on every inbound surface, checked at the edges that matter —
nothing stored (every table's row count unchanged), no outbound connection (a socket-level
guard), no secret in the logs."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tests.conftest import _DATABASE_URL, app_session
from tests.faults.conftest import built_app, loggers_enabled  # noqa: F401  (loggers_enabled: autouse)

API_KEY, SECRET = "key", "hush"


@pytest.fixture(scope="module")
def sec_app(app):  # `app` has migrated the schema
    with built_app(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=SECRET, RUN_JOBS_IN_PROCESS=False) as flask_app:
        yield flask_app


@pytest.fixture
def sec_session(sec_app):
    with app_session(sec_app) as session:
        yield session


@pytest.fixture
def web(sec_app):
    return sec_app.test_client()


def table_counts(session) -> dict[str, int]:
    """Rows per table in the schema: "nothing stored" means this does not change."""
    session.rollback()
    tables = session.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars()
    counts = {t: session.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() for t in tables}
    session.rollback()
    return counts


class OutboundGuard:
    """Refuses (and records) every TCP connection except to this machine's PostgreSQL and Redis
    ports: an SSRF, a token exchange or a store call the request should never have made."""

    def __init__(self, allowed_ports: set[int]):
        self.allowed_ports, self.attempts = allowed_ports, []

    def check(self, address) -> None:
        if isinstance(address, tuple) and address[1] not in self.allowed_ports:
            self.attempts.append(address[:2])
            raise ConnectionRefusedError(f"outbound connection to {address[:2]} refused by the test")


def _service_ports(sec_app) -> set[int]:
    ports = set()
    for url in (_DATABASE_URL, sec_app.config.get("REDIS_URL") or ""):
        parts = urlsplit(url)
        if parts.hostname:
            ports.add(parts.port or {"redis": 6379}.get(parts.scheme, 5432))
    return ports


@pytest.fixture
def no_outbound(sec_app, monkeypatch) -> OutboundGuard:
    guard = OutboundGuard(_service_ports(sec_app))
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(sock, address):
        guard.check(address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        guard.check(address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    assert guard.attempts == [], f"outbound connections attempted: {guard.attempts}"
