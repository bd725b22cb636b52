"""Console page tests: a committed shop with one staff member per role, and test clients
signed in through the real sign-in form (so the session cookie and CSRF are the real ones)."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from app.admin.staff_accounts import create_staff
from app.extensions import db
from tests.factories import make_customer, make_shop

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ConsoleShop:
    shop_id: int
    domain: str
    emails: dict[str, str]  # role -> email
    staff_ids: dict[str, int]


def make_console_shop(session, maker=make_shop, **shop_kwargs) -> ConsoleShop:
    shop = maker(session, **shop_kwargs)
    emails, ids = {}, {}
    for role in ("owner", "support", "viewer"):
        email = f"{role}-{shop.id}@staff.example"
        ids[role] = create_staff(session, shop.id, email, role, PASSWORD, actor="test").id
        emails[role] = email
    return ConsoleShop(shop.id, shop.domain, emails, ids)


def committed_console_shop(app, **shop_kwargs) -> ConsoleShop:
    with app.app_context():
        made = make_console_shop(db.session, **shop_kwargs)
        db.session.commit()
        db.session.remove()
    return made


@pytest.fixture(scope="module")
def console_shop(app) -> ConsoleShop:
    """Shared by a module's tests (hashing three passwords per test would be slow): tests that
    change its staff or sign-in state make their own with committed_console_shop."""
    return committed_console_shop(app)


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD):
    page = client.get("/admin/login")
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "csrf_token": csrf_from(page.get_data(as_text=True))})


def csrf(client) -> str:
    with client.session_transaction() as cookie:
        return cookie["csrf"]


@pytest.fixture
def signed_in(app, console_shop):
    """signed_in(role) -> a test client signed in as that role of console_shop."""
    def make(role: str):
        client = app.test_client()
        response = sign_in(client, console_shop.emails[role])
        assert response.status_code == 302, response.get_data(as_text=True)
        return client
    return make


def add_customer(session, shop_id: int, **fields):
    from app.models import Shop

    customer = make_customer(session, db.session.get(Shop, shop_id), **fields)
    session.commit()
    return customer


@pytest.fixture
def fresh_owner(app):
    """(client signed in as owner, the shop) of a shop of this test's own, for tests that change it."""
    made = committed_console_shop(app)
    client = app.test_client()
    sign_in(client, made.emails["owner"])
    return client, made
