"""Inbox-driven applies commit asynchronously (jobs.inbox.ASYNC_COMMIT); nothing else does:
the setting is scoped to the apply's own transaction, so a redemption on the same pooled
connection afterwards commits synchronously."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text

from app.extensions import db
from app.inbox import store_inbound_event
from app.loyalty.redemptions import redeem_reward
from app.models import Customer, Reward, WebhookEvent
from jobs.inbox import claim_webhook_event, process_webhook_event
from tests.factories import make_shop

PAID = {"id": 9101, "subtotal": "700.00", "total": "700.00", "currency": "USD",
        "paid_at": "2026-03-01T10:00:00+00:00", "customer": {"id": 78, "email": "bo@example.com"}}


def _commit_mode(session) -> tuple[str, int]:
    return tuple(session.execute(text("SELECT current_setting('synchronous_commit'), pg_backend_pid()")).one())


def test_the_claim_switches_only_its_own_transaction_to_asynchronous_commit(wsession):
    shop = make_shop(wsession)
    event_id = store_inbound_event(wsession, shop_id=shop.id, platform="demo", topic="orders/paid",
                                   event_key="commit-1", payload=PAID)
    wsession.commit()
    before, pid = _commit_mode(wsession)
    assert before == "on"
    row, claimed_shop = claim_webhook_event(wsession, event_id)
    assert (row.id, claimed_shop.id) == (event_id, shop.id)
    assert _commit_mode(wsession) == ("off", pid)
    wsession.rollback()
    assert _commit_mode(wsession) == ("on", pid)  # SET LOCAL: gone with the transaction


def test_a_redemption_after_an_inbox_apply_on_the_same_connection_commits_synchronously(worker_app, wsession):
    shop = make_shop(wsession)
    shop_id = shop.id
    event_id = store_inbound_event(wsession, shop_id=shop_id, platform="demo", topic="orders/paid",
                                   event_key="commit-2", payload=PAID)
    wsession.commit()
    _, pid = _commit_mode(wsession)
    wsession.commit()  # the connection goes back to the pool; the job below checks it out
    assert process_webhook_event(event_id) == "applied"

    customer = wsession.scalars(select(Customer).where(Customer.shop_id == shop_id)).one()
    assert customer.points_balance == 700
    assert wsession.get(WebhookEvent, event_id).status == "processed"
    reward = wsession.scalars(select(Reward).where(Reward.shop_id == shop_id, Reward.active.is_(True))
                              .order_by(Reward.points_cost)).first()
    redeem_reward(wsession, shop_id, customer.id, reward.id, "commit-2-redeem", datetime.now(UTC))
    assert _commit_mode(wsession) == ("on", pid)  # the same pooled connection, the server's setting
    wsession.commit()
    assert db.session is wsession
