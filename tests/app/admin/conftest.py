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
