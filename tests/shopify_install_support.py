"""Shared by the Shopify install tests: the app with Shopify credentials, signed callback
queries, App Home id tokens, a stub of the code grant's token endpoint, and a look into the job queue."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import jwt
import pytest
import respx
from rq import Queue
from rq.serializers import JSONSerializer

from app import create_app
from app.extensions import db, redis_connection
from tests.conftest import test_config

API_KEY = "key"
SECRET = "hush"


def shopify_test_app():
    # Jobs are queued (fakeredis or REDIS_URL), never run here: tests assert what was enqueued.
    return create_app(test_config(SHOPIFY_API_KEY=API_KEY, SHOPIFY_API_SECRET=SECRET, RUN_JOBS_IN_PROCESS=False))


@pytest.fixture(scope="module")
def sapp(app):  # `app` (session scope) has migrated the schema
    return shopify_test_app()


@pytest.fixture
def ssession(sapp):
    with sapp.app_context():
        yield db.session
        db.session.rollback()
        db.session.remove()


@pytest.fixture(autouse=True)
def _empty_maintenance_queue(sapp):
    """Jobs these tests enqueue must not reach a later test's worker (they would call Shopify)."""
    yield
    maintenance_queue(sapp).empty()


def new_domain() -> str:
    return f"lojal-{secrets.token_hex(5)}.myshopify.com"


def sign(params: dict[str, str], secret: str = SECRET) -> dict[str, str]:
    """Shopify's callback signature, computed independently of ShopifyAPI: drop hmac, sort k=v, join &."""
    message = "&".join(sorted(f"{k}={v}" for k, v in params.items() if k != "hmac"))
    return {**params, "hmac": hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()}


def id_token(domain: str, *, secret: str = SECRET, aud: str = API_KEY, lifetime: int = 60) -> str:
    """An App Bridge id token as shopifyapp verifies it (HS256 with the app secret, aud = client id)."""
    now = int(time.time())
    claims = {"iss": f"https://{domain}/admin", "dest": f"https://{domain}", "aud": aud, "sub": "42",
              "exp": now + lifetime, "nbf": now - 1, "iat": now - 1, "jti": secrets.token_hex(8),
              "sid": secrets.token_hex(8)}
    return jwt.encode(claims, secret, algorithm="HS256")


def maintenance_queue(flask_app) -> Queue:
    return Queue("maintenance", connection=redis_connection.client(flask_app), serializer=JSONSerializer)


def enqueued(flask_app, func_path: str, *args) -> int:
    """How many jobs `func_path(*args)` wait in the maintenance queue."""
    return sum(1 for job in maintenance_queue(flask_app).get_jobs()
               if job.func_name == func_path and list(job.args) == list(args))


class _DroppedBody(httpx.SyncByteStream):
    """A body cut off by the peer after a few bytes, as httpx reports it."""

    def __iter__(self):
        yield b'{"access_tok'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


@dataclass
class CodeGrantStub:
    """Shopify's token endpoint as the code-grant callback calls it, stubbed at the httpx boundary
    (respx); records every request."""
    answer: dict | None = field(default_factory=lambda: {"access_token": "shpat_code_grant_token", "scope": "read_orders"})
    http_error: int | None = None
    body: bytes | None = None  # answered instead of `answer` (e.g. an HTML error page)
    failure: str | None = None  # "dropped" (connection closed mid-response) or "timeout"
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failure == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.failure == "dropped":
            return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=_DroppedBody())
        if self.http_error:
            return httpx.Response(self.http_error, json={"error": "refused"})
        if self.body is not None:
            return httpx.Response(200, content=self.body, headers={"Content-Type": "text/html"})
        return httpx.Response(200, json=self.answer)

    @property
    def timeouts(self) -> list[float | None]:
        """The read timeout each request was sent with."""
        return [request.extensions.get("timeout", {}).get("read") for request in self.requests]

    @contextmanager
    def serving(self) -> Iterator[CodeGrantStub]:
        with respx.mock(assert_all_called=False) as router:
            router.post(url__regex=r"^https://[^/]+/admin/oauth/access_token$").mock(side_effect=self)
            yield self


@pytest.fixture
def code_grant() -> Iterator[CodeGrantStub]:
    with CodeGrantStub().serving() as stub:
        yield stub
