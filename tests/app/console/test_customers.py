"""Customers: search, the customer page (escaped, shop-scoped) and the adjust form with its rules."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.loyalty.apply import apply_event
from app.models import AuditLog, LedgerEntry, Shop
from tests.app.console.conftest import committed_console_shop, csrf, csrf_from
from tests.factories import make_customer, make_shop, paid

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def shoppers(app, console_shop):
    """Three customers of console_shop (one with a hostile name and two orders) and one of another shop."""
    with app.app_context():
        shop = db.session.get(Shop, console_shop.shop_id)
        ada = make_customer(db.session, shop, first_name="Ada", last_name="Lovelace", email="ada@example.com",
                            platform_customer_id="7001")
        hostile = make_customer(db.session, shop, first_name=XSS, last_name="Doe", email="evil@example.com",
                                platform_customer_id="7002")
        make_customer(db.session, shop, first_name="Grace", last_name="Hopper", email="grace@example.com",
                      platform_customer_id="7003")
        for n in (1, 2):
            apply_event(db.session, shop.id, paid(f"x-{n}", customer=hostile, subtotal="120.00", order_number=f"#{n}"))
        other_shop = make_shop(db.session)
        stranger = make_customer(db.session, other_shop, first_name="Stranger", email="ada@example.com")
        db.session.commit()
        ids = {"ada": ada.id, "hostile": hostile.id, "stranger": stranger.id}
        db.session.remove()
    return ids


@pytest.mark.parametrize("query,found,not_found", [
    ("ada@example.com", "Ada Lovelace", "Grace Hopper"),
    ("ADA@Example.com", "Ada Lovelace", "Grace Hopper"),
    ("lovelace", "Ada Lovelace", "Grace Hopper"),
    ("7003", "Grace Hopper", "Ada Lovelace"),
])
def test_search_finds_by_email_name_or_platform_id(signed_in, shoppers, query, found, not_found):
    html = signed_in("viewer").get("/admin/customers", query_string={"q": query}).get_data(as_text=True)
    assert found in html and not_found not in html


def test_search_never_shows_another_shops_customer(signed_in, shoppers):
    html = signed_in("viewer").get("/admin/customers", query_string={"q": "ada@example.com"}).get_data(as_text=True)
    assert "Stranger" not in html


def test_search_without_matches_says_so_and_offers_the_full_list(signed_in, shoppers):
    html = signed_in("viewer").get("/admin/customers", query_string={"q": "nobody-here"}).get_data(as_text=True)
    assert "No customer matches “nobody-here”" in html and "Show all customers" in html


def test_a_search_with_a_nul_character_is_not_a_database_error(signed_in, shoppers):
    response = signed_in("viewer").get("/admin/customers", query_string={"q": "ada\x00@example.com"})
    assert response.status_code == 200
    assert "Lovelace" in response.get_data(as_text=True)


def test_customer_list_pages_with_a_cursor(app):
    made = committed_console_shop(app)
    with app.app_context():
        shop = db.session.get(Shop, made.shop_id)
        for n in range(30):
            make_customer(db.session, shop, first_name=f"Paged{n:02d}")
        db.session.commit()
    from tests.app.console.conftest import sign_in

    client = app.test_client()
    sign_in(client, made.emails["viewer"])
    first = client.get("/admin/customers").get_data(as_text=True)
    assert "Paged29" in first and "Paged05" in first and "Paged04" not in first  # 25 per page, newest first
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(next_url).get_data(as_text=True)
    assert "Paged04" in second and "Paged00" in second and "Paged29" not in second


def test_a_hostile_name_is_escaped_on_the_list_and_the_customer_page(signed_in, shoppers):
    client = signed_in("viewer")
    for path in ("/admin/customers", f"/admin/customers/{shoppers['hostile']}"):
        html = client.get(path).get_data(as_text=True)
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_customer_page_shows_balance_tier_ladder_orders_and_ledger(signed_in, shoppers):
    html = signed_in("viewer").get(f"/admin/customers/{shoppers['hostile']}").get_data(as_text=True)
    assert re.search(r'id="balance">240<', html)  # 2 x 120.00 at 1 point per unit
    assert "Returning" in html  # two paid orders: the ladder's returning stage
    assert "#1" in html and "#2" in html
    assert html.count("+120") == 2


def test_another_shops_customer_is_not_found(signed_in, shoppers):
    client = signed_in("owner")
    assert client.get(f"/admin/customers/{shoppers['stranger']}").status_code == 404
    response = client.post(f"/admin/customers/{shoppers['stranger']}/adjust",
                           data={"points": "10", "reason": "goodwill", "csrf_token": csrf(client)})
    assert response.status_code == 404


def _adjust(client, customer_id: int, **form):
    page = client.get(f"/admin/customers/{customer_id}").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)
    data = {"csrf_token": csrf_from(page), "idempotency_key": key, **form}
    return client.post(f"/admin/customers/{customer_id}/adjust", data=data)


def _entries(shop_id: int, customer_id: int) -> list[LedgerEntry]:
    return list(db.session.scalars(select(LedgerEntry).where(LedgerEntry.shop_id == shop_id,
                                                             LedgerEntry.customer_id == customer_id,
                                                             LedgerEntry.kind == "adjust")))


def test_support_adjusts_with_a_reason_and_the_actor_is_recorded(app, signed_in, console_shop, shoppers):
    client = signed_in("support")
    response = _adjust(client, shoppers["ada"], points="150", reason="other", reason_detail="Parcel arrived late",
                       note="Sorry!")
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Added 150 points. Reason: other: Parcel arrived late" in html
    assert re.search(r'id="balance">150<', html) and "Note to shopper: Sorry!" in html
    with app.app_context():
        (entry,) = _entries(console_shop.shop_id, shoppers["ada"])
        actor = f"staff:{console_shop.staff_ids['support']}:{console_shop.emails['support']}"
        assert (entry.points, entry.reason, entry.actor, entry.details) == (150, "other: Parcel arrived late", actor,
                                                                           {"note": "Sorry!"})
        audit = db.session.scalars(select(AuditLog).where(AuditLog.shop_id == console_shop.shop_id,
                                                          AuditLog.customer_id == shoppers["ada"])).one()
        assert audit.actor == actor and audit.action == "points.adjust"


def test_a_resubmitted_form_adjusts_once(app, signed_in):
    made = committed_console_shop(app)
    with app.app_context():
        customer_id = make_customer(db.session, db.session.get(Shop, made.shop_id)).id
        db.session.commit()
    from tests.app.console.conftest import sign_in

    client = app.test_client()
    sign_in(client, made.emails["owner"])
    page = client.get(f"/admin/customers/{customer_id}").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "points": "40", "reason": "goodwill",
            "idempotency_key": re.search(r'name="idempotency_key" value="([^"]+)"', page).group(1)}
    for _ in range(2):
        assert client.post(f"/admin/customers/{customer_id}/adjust", data=form).status_code == 302
    with app.app_context():
        assert [e.points for e in _entries(made.shop_id, customer_id)] == [40]


@pytest.mark.parametrize("form,field,message", [
    ({"points": "10", "reason": ""}, "reason", "Missing data for required field."),
    ({"points": "10", "reason": "other", "reason_detail": " "}, "reason_detail", "say what the reason is"),
    ({"points": "10", "reason": "because"}, "reason", "Must be one of: goodwill, service_recovery, missing_points, "
                                                      "correction, promotion, other."),
    ({"points": "0", "reason": "goodwill"}, "points", "must not be zero"),
    ({"points": "ten", "reason": "goodwill"}, "points", "Not a valid integer."),
])
def test_invalid_adjustments_show_the_error_next_to_the_field(signed_in, shoppers, form, field, message):
    response = _adjust(signed_in("owner"), shoppers["ada"], **form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<p class="error" id="error-{field}">{message}</p>' in html
    assert re.search(rf'id="f-{field}"[^>]*aria-describedby="[^"]*error-{field}"[^>]*aria-invalid="true"', html)
    assert 'role="alert"' in html  # the summary is announced


def test_an_idempotency_key_with_a_nul_character_is_refused_not_a_database_error(app, signed_in, console_shop,
                                                                                 shoppers):
    with app.app_context():
        before = len(_entries(console_shop.shop_id, shoppers["ada"]))
    response = _adjust(signed_in("support"), shoppers["ada"], points="10", reason="goodwill",
                       idempotency_key="k\x00ey")
    assert response.status_code == 422
    with app.app_context():
        assert len(_entries(console_shop.shop_id, shoppers["ada"])) == before


def test_taking_more_than_the_balance_is_refused_next_to_points(signed_in, shoppers):
    response = _adjust(signed_in("owner"), shoppers["ada"], points="-100000", reason="correction")
    assert response.status_code == 409
    assert "an adjustment cannot take it below zero" in response.get_data(as_text=True)


def test_support_beyond_the_per_adjustment_limit_sees_the_error_and_nothing_changes(app, signed_in, console_shop,
                                                                                      shoppers):
    response = _adjust(signed_in("support"), shoppers["hostile"], points="1001", reason="goodwill")
    assert response.status_code == 403
    assert "support may adjust at most 1000 points at a time" in response.get_data(as_text=True)
    with app.app_context():
        assert _entries(console_shop.shop_id, shoppers["hostile"]) == []


def test_owner_is_not_bound_by_the_support_limit(app, signed_in, console_shop, shoppers):
    assert _adjust(signed_in("owner"), shoppers["hostile"], points="5000", reason="promotion").status_code == 302


def test_viewer_sees_no_adjust_form_and_cannot_post_one(signed_in, shoppers):
    client = signed_in("viewer")
    assert "Adjust points" not in client.get(f"/admin/customers/{shoppers['ada']}").get_data(as_text=True)
    response = client.post(f"/admin/customers/{shoppers['ada']}/adjust",
                           data={"points": "10", "reason": "goodwill", "csrf_token": csrf(client)})
    assert response.status_code == 403


def test_an_adjustment_without_the_csrf_token_is_refused(app, signed_in, console_shop, shoppers):
    response = signed_in("owner").post(f"/admin/customers/{shoppers['ada']}/adjust",
                                       data={"points": "10", "reason": "other", "reason_detail": "forged"})
    assert response.status_code == 403
    assert "The CSRF token is missing or wrong" in response.get_data(as_text=True)
    with app.app_context():
        assert all(e.reason != "other: forged" for e in _entries(console_shop.shop_id, shoppers["ada"]))


def test_a_cursor_of_digits_int_cannot_read_is_ignored_not_a_server_error(signed_in, shoppers):
    # "²" and "①" are str.isdigit() but not int(): the cursor is dropped like any other junk.
    client = signed_in("viewer")
    for junk in ("\u00b2", "1\u2460"):
        assert client.get("/admin/customers", query_string={"cursor": junk}).status_code == 200
        assert client.get(f"/admin/customers/{shoppers['ada']}",
                          query_string={"ledger_cursor": junk}).status_code == 200


def test_an_id_beyond_the_database_range_is_not_found(signed_in):
    client = signed_in("viewer")
    assert client.get("/admin/customers/99999999999999999999").status_code == 404
    assert client.get("/admin/customers?cursor=99999999999999999999").status_code == 200


def test_a_redemption_that_failed_on_the_platform_shows_why_and_that_points_came_back(app, signed_in, console_shop):
    from datetime import UTC, datetime

    from app.loyalty.redemptions import fail_redemption, redeem_reward
    from tests.factories import give_points, make_reward

    with app.app_context():
        shop = db.session.get(Shop, console_shop.shop_id)
        customer = make_customer(db.session, shop, first_name="Failing", platform_customer_id="7099")
        give_points(db.session, customer, 600)
        reward = make_reward(db.session, shop, points_cost=500)
        now = datetime.now(UTC)
        redemption = redeem_reward(db.session, shop.id, customer.id, reward.id, "failing-1", now).redemption
        fail_redemption(db.session, shop.id, redemption.id, "Shopify refused the discount: code taken", now)
        db.session.commit()
        customer_id = customer.id
        db.session.remove()
    html = signed_in("viewer").get(f"/admin/customers/{customer_id}").get_data(as_text=True)
    assert "Shopify refused the discount: code taken (points given back)" in html
