"""Redemptions: list, resend the code email (a real worker and SMTP server), cancel with a refund."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.loyalty.redemptions import mark_issued, redeem_reward
from app.models import AuditLog, Customer, LedgerEntry, Redemption
from tests.app.admin.conftest import API, bearer
from tests.factories import give_points, make_api_token, make_customer, make_reward, make_shop, make_staff
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401 (fixtures)
from tests.smtp_capture import smtp_server  # noqa: F401

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _redemption(session, shop, *, issued=True):
    customer = make_customer(session, shop, first_name="Kari", accepts_marketing=True)
    give_points(session, customer, 1000)
    reward = make_reward(session, shop, points_cost=400)
    result = redeem_reward(session, shop.id, customer.id, reward.id, "key-1", NOW)
    if issued:
        mark_issued(session, shop.id, result.redemption.id, "gid://discount/1", NOW)
    session.commit()
    return customer, result.redemption


@pytest.fixture
def smtp(smtp_server, worker_app, monkeypatch):  # noqa: F811
    monkeypatch.setitem(worker_app.config, "SMTP_URL", smtp_server.url)
    return smtp_server


def test_list_filters_by_customer_and_status(client, session, shop_a):
    customer, redemption = _redemption(session, shop_a.shop)
    headers = shop_a.headers["viewer"]
    items = client.get(f"{API}/redemptions", query_string={"customer_id": customer.id}, headers=headers).get_json()["items"]
    assert [(r["id"], r["status"], r["points_cost"]) for r in items] == [(redemption.id, "issued", 400)]
    assert client.get(f"{API}/redemptions", query_string={"status": "cancelled"}, headers=headers).get_json()["items"] == []


def test_support_resends_the_code_email_through_the_email_job(worker_app, wsession, run_jobs, smtp):  # noqa: F811
    shop = make_shop(wsession)
    support = make_staff(wsession, shop, "support")
    token = make_api_token(wsession, support)
    customer, redemption = _redemption(wsession, shop)
    client = worker_app.test_client()
    response = client.post(f"{API}/redemptions/{redemption.id}/resend", headers=bearer(token))
    assert response.status_code == 202
    run_jobs()
    [message] = smtp.messages
    assert message["To"].endswith(f"<{customer.email}>")
    assert redemption.code in message.get_body(("plain",)).get_content()
    audit = wsession.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id,
                                                    AuditLog.action == "redemption.resend")).one()
    assert audit.actor.startswith("token:") and audit.customer_id == customer.id


def test_a_resend_with_redis_down_is_503_and_records_no_resend(worker_app, wsession, refuse_enqueue):  # noqa: F811
    shop = make_shop(wsession)
    headers = bearer(make_api_token(wsession, make_staff(wsession, shop, "support")))
    _, redemption = _redemption(wsession, shop)

    refuse_enqueue()
    response = worker_app.test_client().post(f"{API}/redemptions/{redemption.id}/resend", headers=headers)
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "queue_unavailable"
    assert response.headers["Retry-After"] == "5"
    # No email will go out, so the audit log must not say one was resent.
    wsession.expire_all()
    assert wsession.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id,
                                                   AuditLog.action == "redemption.resend")).all() == []


def test_only_an_issued_code_can_be_resent(client, session, shop_a):
    _, pending = _redemption(session, shop_a.shop, issued=False)
    response = client.post(f"{API}/redemptions/{pending.id}/resend", headers=shop_a.headers["support"])
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "redemption_not_issued"


def test_owner_cancels_the_code_goes_then_the_points_come_back_and_a_second_cancel_is_409(
        worker_app, wsession, run_jobs):  # noqa: F811
    shop = make_shop(wsession)
    owner = make_staff(wsession, shop, "owner")
    headers = bearer(make_api_token(wsession, owner))
    customer, redemption = _redemption(wsession, shop)
    client = worker_app.test_client()
    response = client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": "customer changed their mind"},
                           headers=headers)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "cancelling" and body["cancellation"]["state"] == "cancelling"
    assert body["cancellation"]["reason"] == "customer changed their mind"
    assert body["cancellation"]["requested_by"].startswith("token:")
    wsession.expire_all()
    assert wsession.get(Customer, customer.id).points_balance == 600  # not before the code is gone
    # The same request again (a double click) changes nothing and queues no second job.
    assert client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": "again"},
                       headers=headers).status_code == 202
    run_jobs()
    wsession.expire_all()  # the test client's requests share this test's app context and session
    done = client.get(f"{API}/redemptions/{redemption.id}", headers=headers).get_json()
    assert done["status"] == "cancelled" and done["cancellation"]["state"] == "cancelled"
    wsession.expire_all()
    assert wsession.get(Customer, customer.id).points_balance == 1000
    kinds = [e.kind for e in wsession.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer.id)
                                              .order_by(LedgerEntry.id))]
    assert kinds == ["adjust", "redeem", "redeem_reversal"]  # history kept, a new entry gives back
    actions = wsession.scalars(select(AuditLog.action).where(AuditLog.shop_id == shop.id,
                                                             AuditLog.target_id == str(redemption.id))
                               .order_by(AuditLog.id)).all()
    assert actions == ["redemption.cancel_requested", "redemption.cancel"]
    again = client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": "again"}, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "redemption_closed"
    wsession.expire_all()
    assert wsession.get(Customer, customer.id).points_balance == 1000


def test_cancel_needs_a_reason_and_is_the_owners(client, session, shop_a):
    _, redemption = _redemption(session, shop_a.shop)
    assert client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": ""},
                       headers=shop_a.headers["owner"]).status_code == 422
    refused = client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": "x"},
                          headers=shop_a.headers["support"])
    assert refused.status_code == 403
    session.expire_all()
    assert session.get(Redemption, redemption.id).status == "issued"


def test_shop_b_cannot_see_resend_or_cancel_shop_a_redemptions(client, session, shop_a, shop_b):
    _, redemption = _redemption(session, shop_a.shop)
    headers = shop_b.headers["owner"]
    assert client.get(f"{API}/redemptions/{redemption.id}", headers=headers).status_code == 404
    assert client.post(f"{API}/redemptions/{redemption.id}/resend", headers=headers).status_code == 404
    assert client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": "x"},
                       headers=headers).status_code == 404
    assert client.get(f"{API}/redemptions", headers=headers).get_json()["items"] == []
    session.expire_all()
    assert session.get(Redemption, redemption.id).status == "issued"


def test_cancel_with_redis_down_is_recorded_and_answered_202_for_the_sweeper_to_finish(
        worker_app, wsession, run_jobs, monkeypatch, refuse_enqueue):  # noqa: F811
    from jobs.rewards import sweep_pending_redemptions

    shop = make_shop(wsession)
    headers = bearer(make_api_token(wsession, make_staff(wsession, shop, "owner")))
    customer, redemption = _redemption(wsession, shop)

    refuse_enqueue()
    client = worker_app.test_client()
    response = client.post(f"{API}/redemptions/{redemption.id}/cancel", json={"reason": "wrong reward"},
                           headers=headers)
    # The request is committed (cancelling, audited): the answer says so, not 500.
    assert response.status_code == 202 and response.get_json()["status"] == "cancelling"
    monkeypatch.undo()
    wsession.query(Redemption).filter_by(id=redemption.id).update(
        {"cancel_requested_at": datetime(2020, 1, 1, tzinfo=UTC)})
    wsession.commit()
    sweep_pending_redemptions()  # Redis is back: the lost job is dispatched again
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Redemption, redemption.id).status == "cancelled"
    assert wsession.get(Customer, customer.id).points_balance == 1000
