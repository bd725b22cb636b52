"""post_install (shared by every install path) and the subscribe_webhooks job."""
from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.crypto import token_cipher
from app.extensions import db
from app.models import EarnRule, Reward, Shop
from integrations.base import PermanentPlatformError
from integrations.shopify.install import WEBHOOK_TOPICS, post_install
from jobs.shopify_install import fetch_shop_details, subscribe_webhooks
from tests.db_locks import tables_free_for_a_migration
from tests.shopify_install_support import (  # noqa: F401  (fixtures)
    _empty_maintenance_queue, enqueued, new_domain, sapp, ssession,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def count(session, model, shop_id: int) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.shop_id == shop_id))


def test_post_install_creates_the_shop_with_secrets_program_and_jobs(sapp, ssession):
    domain = new_domain()
    shop = post_install(ssession, domain, "shpat_first", refresh_token="shprt_first",
                        expires_at=NOW + timedelta(hours=1), now=NOW)
    assert (shop.platform, shop.domain, shop.status, shop.installed_at) == ("shopify", domain, "active", NOW)
    assert token_cipher.decrypt(shop.access_token_enc) == "shpat_first"
    assert token_cipher.decrypt(shop.refresh_token_enc) == "shprt_first"
    assert shop.token_expires_at == NOW + timedelta(hours=1)
    assert len(token_cipher.decrypt(shop.widget_secret_enc)) >= 40
    assert count(ssession, EarnRule, shop.id) > 0 and count(ssession, Reward, shop.id) > 0
    assert enqueued(sapp, "jobs.shopify_install.subscribe_webhooks", shop.id) == 1
    assert enqueued(sapp, "jobs.shopify_sync.backfill_orders", shop.id) == 1


def test_post_install_commits_before_enqueueing(sapp, ssession):
    domain = new_domain()
    post_install(ssession, domain, "shpat_x", now=NOW)
    ssession.rollback()  # nothing of the install is left to roll back
    assert ssession.scalar(select(Shop).where(Shop.domain == domain)) is not None


def test_installing_again_keeps_the_program_and_widget_secret_and_replaces_the_token(sapp, ssession):
    domain = new_domain()
    shop = post_install(ssession, domain, "shpat_one", now=NOW)
    widget_secret = token_cipher.decrypt(shop.widget_secret_enc)
    # The merchant trimmed the program to one custom rule; a reinstall must not undo that.
    for rule in ssession.scalars(select(EarnRule).where(EarnRule.shop_id == shop.id, EarnRule.kind != "order")):
        ssession.delete(rule)
    shop.status, shop.uninstalled_at, shop.access_token_enc = "uninstalled", NOW, None
    ssession.commit()

    again = post_install(ssession, domain, "shpat_two", now=NOW + timedelta(days=3))
    assert again.id == shop.id
    assert (again.status, again.uninstalled_at, again.installed_at) == ("active", None, NOW + timedelta(days=3))
    assert token_cipher.decrypt(again.access_token_enc) == "shpat_two"
    assert token_cipher.decrypt(again.widget_secret_enc) == widget_secret
    assert count(ssession, EarnRule, shop.id) == 1


def test_two_installs_of_one_shop_at_once_make_one_shop_and_one_program(sapp):
    domain = new_domain()
    start = threading.Barrier(2)

    def install(token: str) -> int:
        with sapp.app_context():
            start.wait()
            shop_id = post_install(db.session, domain, token, now=NOW).id
            db.session.remove()
            return shop_id

    with ThreadPoolExecutor(2) as pool:
        ids = list(pool.map(install, ["shpat_a", "shpat_b"]))
    assert ids[0] == ids[1]
    with sapp.app_context():
        assert db.session.scalar(select(func.count()).select_from(Shop).where(Shop.domain == domain)) == 1
        kinds = db.session.scalars(select(EarnRule.kind).where(EarnRule.shop_id == ids[0])).all()
        assert kinds and len(kinds) == len(set(kinds))  # the default program, once
        db.session.remove()


def test_the_token_never_reaches_the_logs(sapp, ssession, caplog):
    caplog.set_level(logging.DEBUG)
    domain = new_domain()
    shop = post_install(ssession, domain, "shpat_do_not_log_me", refresh_token="shprt_do_not_log_me", now=NOW)
    with respx.mock:
        respx.post(graphql_url(domain)).mock(return_value=httpx.Response(200, json=created()))
        subscribe_webhooks(shop.id)
    assert "do_not_log_me" not in caplog.text


# --- subscribe_webhooks ------------------------------------------------------------------

def graphql_url(domain: str) -> str:
    return f"https://{domain}/admin/api/2026-07/graphql.json"


def created(*user_errors: str) -> dict:
    errors = [{"field": ["webhookSubscription", "uri"], "message": m} for m in user_errors]
    subscription = None if errors else {"id": "gid://shopify/WebhookSubscription/1", "topic": "ORDERS_PAID"}
    return {"data": {"webhookSubscriptionCreate": {"webhookSubscription": subscription, "userErrors": errors}}}


@pytest.fixture
def installed(ssession):
    return post_install(ssession, new_domain(), "shpat_subscriber", now=NOW)


def test_subscribes_every_topic_to_our_webhook_url(installed):
    with respx.mock:
        route = respx.post(graphql_url(installed.domain)).mock(return_value=httpx.Response(200, json=created()))
        assert subscribe_webhooks(installed.id) == "subscribed"
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [s["variables"]["topic"] for s in sent] == [t.replace("/", "_").upper() for t in WEBHOOK_TOPICS]
    assert {json.dumps(s["variables"]["webhookSubscription"], sort_keys=True) for s in sent} == {
        json.dumps({"format": "JSON", "uri": "https://lojal.test/shopify/webhooks"}, sort_keys=True)}
    assert all("webhookSubscriptionCreate" in s["query"] for s in sent)
    assert route.calls.last.request.headers["X-Shopify-Access-Token"] == "shpat_subscriber"


def test_the_topic_list_covers_loyalty_and_leaves_compliance_to_the_app_config():
    assert set(WEBHOOK_TOPICS) == {"orders/paid", "orders/create", "orders/fulfilled", "orders/cancelled",
                                   "orders/edited", "refunds/create", "customers/create", "customers/update",
                                   "app/uninstalled"}


def test_running_it_again_is_fine_when_shopify_says_already_taken(installed):
    with respx.mock:
        respx.post(graphql_url(installed.domain)).mock(
            return_value=httpx.Response(200, json=created("Address for this topic has already been taken")))
        assert subscribe_webhooks(installed.id) == "subscribed"


def test_any_other_refusal_fails_the_job_naming_the_topics(installed):
    with respx.mock:
        respx.post(graphql_url(installed.domain)).mock(
            return_value=httpx.Response(200, json=created("Address is not allowed")))
        with pytest.raises(PermanentPlatformError, match="orders/paid: Address is not allowed"):
            subscribe_webhooks(installed.id)


def test_an_uninstalled_shop_is_skipped(ssession, installed):
    installed.status = "uninstalled"
    ssession.commit()
    with respx.mock:
        route = respx.post(graphql_url(installed.domain))
        assert subscribe_webhooks(installed.id) == "skipped"
    assert route.call_count == 0



def _details(name="Nordlys Sko", currency="NOK", tz="Europe/Oslo") -> dict:
    return {"data": {"shop": {"name": name, "currencyCode": currency, "ianaTimezone": tz}}}


def test_shop_details_come_from_shopify(ssession, installed):
    with respx.mock:
        respx.post(graphql_url(installed.domain)).mock(return_value=httpx.Response(200, json=_details()))
        assert fetch_shop_details(installed.id) == "updated"
    ssession.expire_all()
    shop = ssession.get(Shop, installed.id)
    assert (shop.name, shop.currency, shop.timezone) == ("Nordlys Sko", "NOK", "Europe/Oslo")


def test_an_unknown_timezone_is_refused_and_changes_nothing(ssession, installed):
    with respx.mock:
        respx.post(graphql_url(installed.domain)).mock(return_value=httpx.Response(200, json=_details(tz="Mars/Olympus")))
        with pytest.raises(PermanentPlatformError, match="unknown timezone"):
            fetch_shop_details(installed.id)
    ssession.expire_all()
    assert ssession.get(Shop, installed.id).timezone == "UTC"


def test_post_install_asks_for_the_shop_details(sapp, installed):
    assert enqueued(sapp, "jobs.shopify_install.fetch_shop_details", installed.id) == 1


# --- no transaction while Shopify answers -----------------------------------------------------

def _answering_meanwhile(body: dict, during=None):
    """A side effect for the GraphQL route: records whether a migration could lock `shops` right
    then (the job holds no transaction), runs `during` (what others do meanwhile), answers `body`."""
    free = []

    def answer(request):
        free.append(tables_free_for_a_migration("shops", "webhook_events"))
        if during is not None:
            during()
        return httpx.Response(200, json=body)
    return answer, free


def test_subscribing_holds_no_transaction_while_shopify_answers(ssession, installed):
    shop_id, domain = installed.id, installed.domain
    ssession.rollback()  # the test's own reads end here: only the job's transactions are probed
    answer, free = _answering_meanwhile(created())
    with respx.mock:
        respx.post(graphql_url(domain)).mock(side_effect=answer)
        assert subscribe_webhooks(shop_id) == "subscribed"
    assert free == [True] * len(WEBHOOK_TOPICS)


def test_reading_the_shop_details_holds_no_transaction_while_shopify_answers(ssession, installed):
    shop_id, domain = installed.id, installed.domain
    ssession.rollback()
    answer, free = _answering_meanwhile(_details())
    with respx.mock:
        respx.post(graphql_url(domain)).mock(side_effect=answer)
        assert fetch_shop_details(shop_id) == "updated"
    assert free == [True]
    ssession.expire_all()
    assert ssession.get(Shop, shop_id).currency == "NOK"


def test_shop_details_answered_after_an_uninstall_are_not_applied(ssession, installed):
    # Locked and checked again once Shopify has answered: the app/uninstalled processed meanwhile wins.
    shop_id, domain = installed.id, installed.domain
    ssession.rollback()

    def uninstall():
        with Session(bind=db.engine) as other, other.begin():
            other.get(Shop, shop_id).status = "uninstalled"

    answer, free = _answering_meanwhile(_details(), during=uninstall)
    with respx.mock:
        respx.post(graphql_url(domain)).mock(side_effect=answer)
        assert fetch_shop_details(shop_id) == "skipped"
    ssession.expire_all()
    assert ssession.get(Shop, shop_id).currency != "NOK"
