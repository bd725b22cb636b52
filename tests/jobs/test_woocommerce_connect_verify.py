"""verify_new_keys (keys posted for a store in use, tried before they replace its keys) calls the
store with no transaction open and no row lock held; a disconnect made while the store answers
wins. The store is stubbed at the `requests` boundary; PostgreSQL and Redis are real."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import create_app
from app.crypto import token_cipher
from app.extensions import db
from app.models import Shop
from integrations.woocommerce.connect import connect_store, take_parked_keys
from integrations.woocommerce.upkeep import disconnect
from jobs.woocommerce_connect import verify_new_keys
from tests.conftest import app_session, test_config
from tests.integrations.woocommerce.wc_support import api_url, make_wc_shop
from tests.shopify_install_support import enqueued, maintenance_queue


@pytest.fixture(scope="module")
def japp(app):  # `app` (session scope) has migrated the schema; jobs are queued, not run
    return create_app(test_config(RUN_JOBS_IN_PROCESS=False))


@pytest.fixture
def parked(japp):
    """An active store, and new keys posted for it waiting for their check: (shop, token)."""
    with app_session(japp) as session:
        shop = make_wc_shop(session)
        session.commit()
        connect_store(session, shop.domain, "ck_new", "cs_new", now=datetime.now(UTC))
        session.refresh(shop)
        session.expunge(shop)
    [job] = [j for j in maintenance_queue(japp).get_jobs()
             if j.func_name == "jobs.woocommerce_connect.verify_new_keys" and j.args[0] == shop.id]
    yield shop, job.args[1]
    maintenance_queue(japp).empty()


def _store_answering(shop: Shop, meanwhile) -> None:
    """The store accepts the keys, after `meanwhile()` ran while its answer was awaited."""
    def answer(request):
        meanwhile()
        return 200, {"Content-Type": "application/json"}, "[]"
    responses.add_callback(responses.GET, api_url(shop, "orders"), callback=answer)


@responses.activate
def test_the_shop_row_is_neither_locked_nor_in_a_transaction_while_the_store_answers(japp, parked):
    shop, token = parked
    seen = {}

    def meanwhile():
        with db.engine.connect() as other:
            try:
                other.execute(text("SELECT id FROM shops WHERE id = :id FOR UPDATE NOWAIT"), {"id": shop.id})
                seen["locked"] = False
            except OperationalError:
                seen["locked"] = True
            other.rollback()
            seen["open_transactions"] = other.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()"))

    _store_answering(shop, meanwhile)
    with japp.app_context():
        assert verify_new_keys(shop.id, token) == "replaced"
    assert seen == {"locked": False, "open_transactions": 0}
    with app_session(japp) as session:
        assert token_cipher.decrypt(session.get(Shop, shop.id).access_token_enc) == "ck_new"
    assert enqueued(japp, "jobs.woocommerce_connect.after_connect", shop.id) == 1


@responses.activate
def test_a_disconnect_made_while_the_store_answers_wins_over_the_new_keys(japp, parked):
    # The merchant disconnects the store while the posted keys are being tried: they must not
    # connect it again, though the store accepts them.
    shop, token = parked
    responses.get(api_url(shop, "webhooks"), json=[])

    def meanwhile():
        with Session(db.engine) as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))  # a held lock fails the test, not hangs it
            disconnect(other, other.get(Shop, shop.id), actor="staff:1")
            other.commit()

    _store_answering(shop, meanwhile)
    with japp.app_context():
        assert verify_new_keys(shop.id, token) == "disconnected"
        assert take_parked_keys(shop.id, token) is None  # dropped, never tried again
    with app_session(japp) as session:
        after = session.get(Shop, shop.id)
        assert (after.status, after.access_token_enc, after.api_secret_enc) == ("disconnected", None, None)
    assert enqueued(japp, "jobs.woocommerce_connect.after_connect", shop.id) == 0


@responses.activate
def test_refused_keys_leave_the_shop_as_it_was_without_writing(japp, parked):
    shop, token = parked
    responses.get(api_url(shop, "orders"), status=401, json={"code": "woocommerce_rest_cannot_view"})
    with japp.app_context():
        assert verify_new_keys(shop.id, token) == "refused"
        assert take_parked_keys(shop.id, token) is None
    with app_session(japp) as session:
        after = session.get(Shop, shop.id)
        assert (after.status, after.access_token_enc) == ("active", shop.access_token_enc)
