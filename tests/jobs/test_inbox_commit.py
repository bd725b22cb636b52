"""Inbox-driven applies commit asynchronously (jobs.inbox.ASYNC_COMMIT); nothing else does:
the setting is scoped to the apply's own transaction, so a redemption on the same pooled
connection afterwards commits synchronously."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app import create_app
from app.extensions import db
from app.inbox import store_inbound_event
from app.loyalty.redemptions import redeem_reward
from app.models import Customer, Reward, WebhookEvent
from jobs.inbox import claim_webhook_event, process_webhook_event
from tests.conftest import test_config
from tests.factories import make_shop

PAID = {"id": 9101, "subtotal": "700.00", "total": "700.00", "currency": "USD",
        "paid_at": "2026-03-01T10:00:00+00:00", "customer": {"id": 78, "email": "bo@example.com"}}


def _commit_mode(session) -> tuple[str, int]:
    return tuple(session.execute(text("SELECT current_setting('synchronous_commit'), pg_backend_pid()")).one())


def test_the_claim_switches_only_its_own_transaction_to_asynchronous_commit(wsession):
    shop = make_shop(wsession)
    shop_id = shop.id
    event_id = store_inbound_event(wsession, shop_id=shop_id, platform="demo", topic="orders/paid",
                                   event_key="commit-1", payload=PAID)
    wsession.commit()
    with db.engine.connect() as connection:  # one connection throughout
        session = Session(bind=connection)
        assert _commit_mode(session)[0] == "on"
        row, claimed_shop = claim_webhook_event(session, event_id)
        assert (row.id, claimed_shop.id) == (event_id, shop_id)
        assert _commit_mode(session)[0] == "off"
        session.rollback()
        assert _commit_mode(session)[0] == "on"  # SET LOCAL: gone with the transaction
        session.close()


def test_a_redemption_after_an_inbox_apply_on_the_same_connection_commits_synchronously(worker_app):
    one_connection = create_app(test_config(REDIS_URL=worker_app.config["REDIS_URL"], RUN_JOBS_IN_PROCESS=False,
                                            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0}))
    with one_connection.app_context():
        session = db.session
        shop_id = make_shop(session).id
        event_id = store_inbound_event(session, shop_id=shop_id, platform="demo", topic="orders/paid",
                                       event_key="commit-2", payload=PAID)
        session.commit()
        _, pid = _commit_mode(session)
        session.commit()  # the pool's only connection goes back; the job below checks it out
        assert process_webhook_event(event_id) == "applied"

        customer = session.scalars(select(Customer).where(Customer.shop_id == shop_id)).one()
        assert customer.points_balance == 700
        assert session.get(WebhookEvent, event_id).status == "processed"
        reward = session.scalars(select(Reward).where(Reward.shop_id == shop_id, Reward.active.is_(True))
                                 .order_by(Reward.points_cost)).first()
        redeem_reward(session, shop_id, customer.id, reward.id, "commit-2-redeem", datetime.now(UTC))
        assert _commit_mode(session) == ("on", pid)  # the job's connection, back at the server's setting
        session.commit()
        session.remove()
        db.engine.dispose()
