"""Admin API tests: a shop with one staff member per role, each with a personal API token.

Requests run in their own app context (and database session), so fixtures commit what they build.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.factories import make_api_token, make_customer, make_shop, make_staff

API = "/api/admin/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class ShopWithStaff:
    shop: object
    staff: dict          # role -> StaffUser
    headers: dict        # role -> bearer headers of that member's token


def _shop_with_staff(session) -> ShopWithStaff:
    shop = make_shop(session)
    staff = {role: make_staff(session, shop, role) for role in ("owner", "support", "viewer")}
    headers = {role: bearer(make_api_token(session, member)) for role, member in staff.items()}
    session.commit()
    return ShopWithStaff(shop, staff, headers)


@pytest.fixture
def shop_a(session) -> ShopWithStaff:
    return _shop_with_staff(session)


@pytest.fixture
def shop_b(session) -> ShopWithStaff:
    return _shop_with_staff(session)


@pytest.fixture
def customer_a(session, shop_a):
    customer = make_customer(session, shop_a.shop, first_name="Ada", last_name="Lovelace", points_balance=0)
    session.commit()
    return customer


def cookie_login(client, email: str, password: str, **extra) -> dict:
    response = client.post(f"{API}/session", json={"email": email, "password": password, **extra},
                           base_url="https://lojal.test")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


class SignedIn:
    """A staff member signed in with a password (cookie session + CSRF header): what may make
    credentials (staff passwords, invitations, tokens), which an API token may not."""

    def __init__(self, app, email: str, password: str):
        self.client = app.test_client()
        self.csrf = cookie_login(self.client, email, password)["csrf_token"]

    def _send(self, method: str, url: str, **kwargs):
        return self.client.open(url, method=method, base_url="https://lojal.test",
                                headers={"X-CSRF-Token": self.csrf}, **kwargs)

    def post(self, url: str, **kwargs):
        return self._send("POST", url, **kwargs)

    def patch(self, url: str, **kwargs):
        return self._send("PATCH", url, **kwargs)


def signed_in(app, member) -> SignedIn:
    from tests.factories import STAFF_PASSWORD

    return SignedIn(app, member.email, STAFF_PASSWORD)
