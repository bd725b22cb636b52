"""Customer search and detail, scoped to one shop."""
from __future__ import annotations

import pytest

from app.loyalty.customer_search import customer_detail, search_customers
from app.loyalty.errors import NotFound
from tests.factories import make_customer, make_shop


def test_search_matches_gmail_variants_through_the_normalised_email(session):
    shop = make_shop(session)
    kari = make_customer(session, shop, email="Kari.Nordmann+shop@gmail.com")
    assert [c.id for c in search_customers(session, shop.id, "karinordmann@gmail", None, 10).items] == [kari.id]


def test_search_never_returns_another_shops_customers(session):
    shop, other = make_shop(session), make_shop(session)
    make_customer(session, other, first_name="Ada")
    assert search_customers(session, shop.id, "Ada", None, 10).items == []


def test_pages_are_newest_first_and_bounded(session):
    shop = make_shop(session)
    ids = [make_customer(session, shop).id for _ in range(3)]
    first = search_customers(session, shop.id, None, None, 2)
    assert [c.id for c in first.items] == ids[:0:-1] and first.next_cursor == ids[1]
    last = search_customers(session, shop.id, None, first.next_cursor, 2)
    assert [c.id for c in last.items] == [ids[0]] and last.next_cursor is None


def test_detail_of_another_shops_customer_is_not_found(session):
    shop, other = make_shop(session), make_shop(session)
    customer = make_customer(session, other)
    with pytest.raises(NotFound):
        customer_detail(session, shop.id, customer.id)
    assert customer_detail(session, other.id, customer.id).ladder_stage == "prospect"
