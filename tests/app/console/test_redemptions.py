"""Rewards on the customer page: support resends an issued code; an owner cancels one and the
points come back; another customer's redemption is not reachable through this one's URL."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rq import SimpleWorker
from sqlalchemy import select

from app.extensions import db
from app.loyalty.adjustments import adjust_points
from app.loyalty.redemptions import mark_issued, redeem_reward
from app.models import AuditLog, Customer, Redemption, Reward, Shop
from jobs.queues import queue
from jobs.worker import run_worker
from tests.app.console.conftest import committed_console_shop, csrf, sign_in
from tests.factories import make_customer


@pytest.fixture
def redeemed(app):
    """(shop, customer id, an issued redemption's id, another customer's redemption id)."""
    made = committed_console_shop(app)
    now = datetime.now(UTC)
    with app.app_context():
        shop = db.session.get(Shop, made.shop_id)
        reward = db.session.scalars(select(Reward).where(Reward.shop_id == shop.id, Reward.points_cost == 500)).one()
        ids = []
        for name in ("Reda", "Other"):
            customer = make_customer(db.session, shop, first_name=name)
            adjust_points(db.session, shop.id, customer.id, 800, reason="goodwill", actor="test", now=now)
            redemption = redeem_reward(db.session, shop.id, customer.id, reward.id, f"k-{name}", now).redemption
            mark_issued(db.session, shop.id, redemption.id, "gid://discount/1", now)
            ids += [customer.id, redemption.id]
        db.session.commit()
    yield made, *ids
    queue("emails", app).empty()


def _client(app, made, role):
    client = app.test_client()
    sign_in(client, made.emails[role])
    return client


def test_support_resends_an_issued_code_and_it_is_audited(app, redeemed):
    made, customer_id, redemption_id, *_ = redeemed
    client = _client(app, made, "support")
    page = client.get(f"/admin/customers/{customer_id}").get_data(as_text=True)
    assert "Resend" in page and "Cancel and refund" not in page  # cancelling is an owner's call
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{redemption_id}/resend",
                           data={"csrf_token": csrf(client)}, follow_redirects=True)
    assert "is on its way to the customer again" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(AuditLog.action).where(AuditLog.shop_id == made.shop_id,
                                                                AuditLog.action == "redemption.resend")).one()


def test_owner_cancels_a_code_and_the_points_come_back(app, redeemed):
    made, customer_id, redemption_id, *_ = redeemed
    client = _client(app, made, "owner")
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{redemption_id}/cancel",
                           data={"csrf_token": csrf(client)}, follow_redirects=True)
    page = response.get_data(as_text=True)
    if app.config.get("REDIS_URL"):
        # A worker deletes the code in the store first; until then the page says so.
        assert "it is being deleted in the store, then the 500 points come back" in page
        assert "deleting the code in the store" in page
        with app.app_context():
            assert db.session.get(Customer, customer_id).points_balance == 300
        run_worker(app, burst=True, worker_class=SimpleWorker)
    else:
        assert "is cancelled and 500 points are back" in page  # without Redis the job ran in the request
    with app.app_context():
        assert db.session.get(Redemption, redemption_id).status == "cancelled"
        assert db.session.get(Customer, customer_id).points_balance == 800
    assert "Cancelled" in client.get(f"/admin/customers/{customer_id}").get_data(as_text=True)


def test_support_may_not_cancel(app, redeemed):
    made, customer_id, redemption_id, *_ = redeemed
    client = _client(app, made, "support")
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{redemption_id}/cancel",
                           data={"csrf_token": csrf(client)})
    assert response.status_code == 403


def test_another_customers_redemption_is_not_found_under_this_customer(app, redeemed):
    made, customer_id, _, _, other_redemption = redeemed
    client = _client(app, made, "owner")
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{other_redemption}/cancel",
                           data={"csrf_token": csrf(client)})
    assert response.status_code == 404


def test_a_refused_cancellation_shows_why_and_the_code_can_be_cancelled_again(app, redeemed):
    from app.loyalty.redemption_cancel import refuse_cancellation, request_cancellation

    made, customer_id, redemption_id, *_ = redeemed
    now = datetime.now(UTC)
    with app.app_context():
        request_cancellation(db.session, made.shop_id, redemption_id, "staff:1:o", "wrong reward", now)
        refuse_cancellation(db.session, made.shop_id, redemption_id, "the code was already used in an order", now)
        db.session.commit()
    page = _client(app, made, "owner").get(f"/admin/customers/{customer_id}").get_data(as_text=True)
    assert "Cancellation refused: the code was already used in an order" in page
    assert "Cancel and refund" in page  # issued again: the owner may ask again


def test_a_cancel_reason_with_a_nul_character_is_not_a_database_error(app, redeemed):
    made, customer_id, redemption_id, *_ = redeemed
    client = _client(app, made, "owner")
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{redemption_id}/cancel",
                           data={"csrf_token": csrf(client), "reason": "wrong\x00 reward"})
    assert response.status_code in (302, 303)
    with app.app_context():
        redemption = db.session.get(Redemption, redemption_id)
        assert redemption.status in ("cancelling", "cancelled") and "\x00" not in redemption.cancel_reason


def test_a_resend_while_redis_is_down_is_refused_on_the_page_and_not_audited(app, redeemed, refuse_enqueue):
    refuse_enqueue()
    made, customer_id, redemption_id, *_ = redeemed
    client = _client(app, made, "support")
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{redemption_id}/resend",
                           data={"csrf_token": csrf(client)}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "nothing was sent; try again shortly" in page
    with app.app_context():
        assert db.session.scalars(select(AuditLog.action).where(AuditLog.shop_id == made.shop_id,
                                                                AuditLog.action == "redemption.resend")).all() == []


def test_a_cancel_committed_while_redis_is_down_is_shown_as_under_way_not_a_500(app, redeemed, refuse_enqueue):
    refuse_enqueue()
    made, customer_id, redemption_id, *_ = redeemed
    client = _client(app, made, "owner")
    response = client.post(f"/admin/customers/{customer_id}/redemptions/{redemption_id}/cancel",
                           data={"csrf_token": csrf(client), "reason": "wrong reward"})
    assert response.status_code in (302, 303)
    with app.app_context():
        assert db.session.get(Redemption, redemption_id).status == "cancelling"  # the sweeper finishes it
        assert db.session.get(Customer, customer_id).points_balance == 300
