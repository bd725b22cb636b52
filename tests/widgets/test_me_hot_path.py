"""GET /widget/v1/me's hot path: one statement through the driver, the program kept per process
only while the database returns the same program text, and both limits counted in one Redis
script call that shares its counters with the other widget routes."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text

import widgets.auth
from app import create_app
from app.loyalty.adjustments import adjust_points
from app.models import Reward, Shop, Tier
from tests.conftest import app_session, test_config
from tests.widgets.helpers import bearer, client_for, shopper, token, wclient, widget_shop  # noqa: F401


def _me(client, shop, secret, customer, **query):
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    resp = client.get(f"/widget/v1/me{suffix}", headers=bearer(token(shop, secret, customer)))
    assert resp.status_code == 200, resp.data
    return resp.get_json()


def test_one_select_through_the_driver_and_nothing_through_the_orm(session, wclient, monkeypatch):
    from tests.widgets.test_me import statements

    shop, secret = widget_shop(session)
    kari = shopper(session, shop, points=700)
    sent = []
    real = widgets.auth.read_one

    def spy(sql, params):
        sent.append(sql)
        return real(sql, params)

    headers = bearer(token(shop, secret, kari))
    monkeypatch.setattr(widgets.auth, "read_one", spy)
    with statements() as orm:
        resp = wclient.get("/widget/v1/me", headers=headers)
    assert resp.status_code == 200 and resp.get_json()["points_balance"] == 700
    assert orm == [] and len(sent) == 1 and sent[0].lstrip().upper().startswith("SELECT")


def test_a_merchants_program_change_is_seen_by_the_next_request(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop, points=600, total_spent=Decimal("100"))
    before = _me(wclient, shop, secret, kari)
    assert [r["points_cost"] for r in before["rewards"]] == [300, 500, 1000]
    assert before["next_tier"]["name"] == "Silver"

    shipping = session.scalars(select(Reward).where(Reward.shop_id == shop.id, Reward.points_cost == 300)).one()
    shipping.name = "Frakt på oss"
    shipping.points_cost = 650
    session.commit()
    changed = _me(wclient, shop, secret, kari)
    assert [(r["name"], r["points_cost"], r["affordable"]) for r in changed["rewards"]][-2:] == [
        ("Frakt på oss", 650, False), ("10% off your order", 1000, False)]

    # Raw SQL (no ORM onupdate, updated_at untouched) is seen too: the cache keys on the content.
    session.execute(text("UPDATE rewards SET active = false WHERE shop_id = :s AND points_cost = 1000"), {"s": shop.id})
    session.execute(text("UPDATE tiers SET name = 'Sølv' WHERE shop_id = :s AND name = 'Silver'"), {"s": shop.id})
    session.commit()
    raw = _me(wclient, shop, secret, kari)
    assert [r["points_cost"] for r in raw["rewards"]] == [500, 650] and raw["next_tier"]["name"] == "Sølv"

    session.add(Tier(shop_id=shop.id, name="Copper", threshold=Decimal("200")))
    session.execute(text("DELETE FROM rewards WHERE shop_id = :s AND points_cost = 500"), {"s": shop.id})
    session.commit()
    added = _me(wclient, shop, secret, kari)
    assert added["next_tier"]["name"] == "Copper" and [r["points_cost"] for r in added["rewards"]] == [650]

    # Settings: points-based tiers now; and a new currency on the shop row.
    shop.settings = {**shop.settings, "tier_basis": "points"}
    shop.currency = "NOK"
    session.commit()
    settled = _me(wclient, shop, secret, kari, locale="nb")
    assert settled["currency"] == "NOK" and settled["next_tier"]["remaining_formatted"].endswith("poeng")


def test_two_shops_with_the_same_program_never_see_each_others_rows(session, wclient):
    first, first_secret = widget_shop(session)
    second, second_secret = widget_shop(session)
    a, b = shopper(session, first, points=10), shopper(session, second, points=20)
    session.execute(text("UPDATE rewards SET name = 'A-' || name WHERE shop_id = :s"), {"s": first.id})
    session.commit()
    for _ in range(2):
        mine, theirs = _me(wclient, first, first_secret, a), _me(wclient, second, second_secret, b)
        assert all(r["name"].startswith("A-") for r in mine["rewards"])
        assert not any(r["name"].startswith("A-") for r in theirs["rewards"])
        first_ids = set(session.scalars(select(Reward.id).where(Reward.shop_id == first.id)))
        assert {r["id"] for r in mine["rewards"]} <= first_ids and not {r["id"] for r in theirs["rewards"]} & first_ids
        assert (mine["points_balance"], theirs["points_balance"]) == (10, 20)


def test_points_and_a_redemption_show_at_once(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop, points=400)
    assert _me(wclient, shop, secret, kari)["points_balance"] == 400
    adjust_points(session, shop.id, kari.id, 250, reason="goodwill", actor="test", now=datetime.now(UTC))
    session.commit()
    assert _me(wclient, shop, secret, kari)["points_balance"] == 650
    reward = session.scalars(select(Reward).where(Reward.shop_id == shop.id, Reward.points_cost == 500)).one()
    resp = wclient.post("/widget/v1/me/redemptions", json={"reward_id": reward.id},
                        headers=bearer(token(shop, secret, kari), **{"Idempotency-Key": str(uuid.uuid4())}))
    assert resp.status_code in (201, 202)
    after = _me(wclient, shop, secret, kari)
    assert after["points_balance"] == 150
    assert [(r["points_cost"], r["affordable"]) for r in after["rewards"]] == [(300, False), (500, False),
                                                                              (1000, False)]


def test_an_uninstalled_shop_is_refused_at_once(session, wclient):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop)
    assert _me(wclient, shop, secret, kari)["points_balance"] == 0
    session.get(Shop, shop.id).status = "uninstalled"
    session.commit()
    assert wclient.get("/widget/v1/me", headers=bearer(token(shop, secret, kari))).status_code == 401


@pytest.fixture(scope="module")
def tight_app(app):
    return create_app(test_config(WIDGET_RATE_LIMIT="3/minute", WIDGET_IP_RATE_LIMIT="5/minute"))


def _is_429(resp) -> bool:
    return (resp.status_code == 429 and resp.get_json()["error"]["code"] == "too_many_requests"
            and 1 <= int(resp.headers["Retry-After"]) <= 61)


def test_me_shares_the_per_shopper_counter_with_the_other_routes(tight_app):
    with app_session(tight_app) as session:
        shop, secret = widget_shop(session)
        kari = shopper(session, shop)
        headers = bearer(token(shop, secret, kari))
        assert client_for(tight_app).get("/widget/v1/me/activity", headers=headers).status_code == 200
        assert client_for(tight_app).get("/widget/v1/me/activity", headers=headers).status_code == 200
        assert client_for(tight_app).get("/widget/v1/me", headers=headers).status_code == 200
        assert _is_429(client_for(tight_app).get("/widget/v1/me", headers=headers))
        assert _is_429(client_for(tight_app).get("/widget/v1/me/activity", headers=headers))


def test_a_head_request_for_me_counts_once_against_the_limits_not_twice(tight_app):
    # HEAD runs the GET view, which counts its own limits; Flask-Limiter must not count it again.
    with app_session(tight_app) as session:
        shop, secret = widget_shop(session)
        headers = bearer(token(shop, secret, shopper(session, shop)))
        for _ in range(3):  # the per-shopper limit is 3/minute
            assert client_for(tight_app).head("/widget/v1/me", headers=headers).status_code == 200
        assert _is_429(client_for(tight_app).get("/widget/v1/me", headers=headers))


def test_me_shares_the_per_ip_counter_with_the_other_routes_and_counts_refusals(tight_app):
    with app_session(tight_app) as session:
        shop, secret = widget_shop(session)
        shoppers = [shopper(session, shop) for _ in range(3)]
        client = client_for(tight_app, "10.9.0.1")
        assert client.get(f"/widget/v1/program?shop={shop.uid}").status_code == 200
        assert client.get("/widget/v1/me", headers=bearer("not-a-token")).status_code == 401  # counted too
        for kari in shoppers:
            assert client.get("/widget/v1/me", headers=bearer(token(shop, secret, kari))).status_code == 200
        assert _is_429(client.get("/widget/v1/me", headers=bearer(token(shop, secret, shoppers[0]))))
        assert _is_429(client.get(f"/widget/v1/program?shop={shop.uid}"))
        assert client_for(tight_app, "10.9.0.2").get(f"/widget/v1/program?shop={shop.uid}").status_code == 200


def test_flask_limiters_own_request_hooks_run_for_every_route_but_get_me(tight_app):
    """GET /me counts itself (one Redis call); Flask-Limiter's per-request work is skipped for it
    alone: it keeps its per-request context (set by its before hook) on every other request."""
    from flask.globals import request_ctx

    with app_session(tight_app) as session:
        shop, secret = widget_shop(session)
        headers, program = bearer(token(shop, secret, shopper(session, shop))), f"/widget/v1/program?shop={shop.uid}"
    client = client_for(tight_app)
    with client:
        assert client.get("/widget/v1/me", headers=headers).status_code == 200
        assert not hasattr(request_ctx._get_current_object(), "_limiter_request_context")
    with client:
        assert client.get("/widget/v1/me/activity", headers=headers).status_code == 200
        assert hasattr(request_ctx._get_current_object(), "_limiter_request_context")
    with client:
        assert client.get(program).status_code == 200
        assert hasattr(request_ctx._get_current_object(), "_limiter_request_context")


def test_with_redis_down_me_still_answers_and_still_limits():
    redis_down = create_app(test_config(REDIS_URL="redis://127.0.0.1:1/0", WIDGET_RATE_LIMIT="2/minute"))
    with app_session(redis_down) as session:
        shop, secret = widget_shop(session)
        kari = shopper(session, shop, points=5)
        headers = bearer(token(shop, secret, kari))
        answers = [client_for(redis_down).get("/widget/v1/me", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers[:2]] == [200, 200] and _is_429(answers[2])


@pytest.mark.parametrize("settings", [{}, {"tier_basis": "points", "tier_period": "rolling_12_months",
                                           "expiry_months": 2}])
def test_the_one_statement_read_agrees_with_the_orm_read_model(session, settings):
    from datetime import timedelta

    from app.loyalty import shopper as read_model
    from app.loyalty.ledger import lock_customer, post_entry
    from app.models import Customer

    shop, _ = widget_shop(session, **settings)
    now = datetime.now(UTC)
    silver = session.scalars(select(Tier).where(Tier.shop_id == shop.id, Tier.name == "Silver")).one()
    people = [shopper(session, shop), shopper(session, shop, points=700, total_spent=Decimal("800.5"),
                                                 tier_id=silver.id, orders_count=3, referrals_completed=1)]
    locked = lock_customer(session, shop.id, people[1].id)
    post_entry(session, locked, kind="earn", key=f"agree:{locked.id}", now=now - timedelta(days=50), points=650,
               source="order")
    locked.last_activity_at = now - timedelta(days=50)
    session.commit()
    for person in people:
        row = widgets.auth.read_one(read_model.ACCOUNT_BY_SHOP_UID,
                                    {"shop_uid": shop.uid, "customer_ref": person.platform_customer_id})
        account = read_model.shopper_account(row)
        fast = read_model.account_summary(session, account, now)
        orm = read_model.summary(session, session.get(Shop, shop.id), session.get(Customer, person.id), now)
        assert account.customer.points_balance == orm.customer.points_balance
        assert (fast.tier and fast.tier.id) == (orm.tier and orm.tier.id) and fast.ladder_stage == orm.ladder_stage
        assert (fast.next_tier and (fast.next_tier.tier.id, fast.next_tier.remaining, fast.next_tier.progress)) == (
            orm.next_tier and (orm.next_tier.tier.id, orm.next_tier.remaining, orm.next_tier.progress))
        assert fast.expiring_soon == orm.expiring_soon and fast.tier_basis == orm.tier_basis
        assert [(r.id, r.name, r.kind, r.points_cost, r.value, r.minimum_order) for r in fast.rewards] == [
            (r.id, r.name, r.kind, r.points_cost, r.value, r.minimum_order) for r in orm.rewards]
