"""Privacy and lifecycle: uninstall, data export, erasure that leaves nothing personal, whole-shop purge."""
from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from app.extensions import db
from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty import new_sale
from app.loyalty.events import AppUninstalled, CustomerDataRequest, CustomerInfo, OrderFulfilled, ShopRedact
from app.loyalty.ledger import find_balance_drift
from app.loyalty.redemptions import redeem_reward
from app.models import Customer, DataRequest, LedgerEntry, Order, Reward, Shop, WebhookEvent
from tests.app.web.shopify_helpers import deliver, shopify_client, shopify_shop, webhook_app  # noqa: F401
from tests.factories import make_customer, make_shop, paid, snapshot
from tests.integrations.shopify.samples import personalized, sample
from tests.jobs.conftest import run_jobs, worker_app, wsession  # noqa: F401

NOW = datetime(2026, 7, 20, 12, 0, tzinfo=UTC)


def _person() -> dict[str, str]:
    token = secrets.token_hex(4)
    return {"email": f"Zed.Quill.{token}@Example.com", "first_name": f"Zebulon{token}",
            "last_name": f"Quillfeather{token}", "phone": f"+1555{int(token, 16) % 10_000_000:07d}"}


def _customer(session, shop, platform_id="7390000000001") -> Customer:
    session.expire_all()
    return session.scalars(select(Customer).where(Customer.shop_id == shop.id,
                                                  Customer.platform_customer_id == platform_id)).one()


def _build_history(session, client, run_jobs, shop, person) -> Customer:
    """A shopper with an account, an order, a refund, a guest order, a data request, an adjustment and a redemption."""
    def send(topic, name, **overrides):
        response = deliver(client, shop.domain, topic, personalized(sample(name, **overrides), **person))
        assert response.status_code == 200

    send("customers/create", "customer_create")
    send("orders/paid", "order_paid")
    send("refunds/create", "refund")
    send("orders/paid", "order_guest", email=person["email"].upper(), customer=None)
    send("customers/data_request", "customers_data_request", shop_domain=shop.domain)
    run_jobs()
    customer = _customer(session, shop)
    adjust_points(session, shop.id, customer.id, 400, reason="goodwill for a late parcel", actor="staff@shop", now=NOW)
    reward = session.scalars(select(Reward).where(Reward.shop_id == shop.id, Reward.kind == "free_shipping")).one()
    redeem_reward(session, shop.id, customer.id, reward.id, "redeem-1", NOW)
    session.commit()
    return _customer(session, shop)


def _tables_mentioning(session, needles: list[str]) -> dict[str, list[str]]:
    """Every row of every table, all columns cast to text, searched for each needle."""
    found: dict[str, list[str]] = {}
    for table in db.metadata.sorted_tables:
        rows = session.execute(text(f"SELECT t::text FROM {table.name} t")).scalars().all()
        hits = [n for n in needles if any(n.lower() in row.lower() for row in rows)]
        if hits:
            found[table.name] = hits
    return found


def test_redact_leaves_no_personal_data_in_any_table(wsession, shopify_client, run_jobs):
    shop, person = shopify_shop(wsession), _person()
    customer = _build_history(wsession, shopify_client, run_jobs, shop, person)
    balance, entries = customer.points_balance, wsession.scalar(
        select(func.count()).select_from(LedgerEntry).where(LedgerEntry.customer_id == customer.id))
    needles = list(person.values())
    assert set(_tables_mentioning(wsession, needles)) >= {"customers", "webhook_events", "data_requests"}  # the control
    wsession.rollback()

    deliver(shopify_client, shop.domain, "customers/redact",
            personalized(sample("customers_redact", shop_domain=shop.domain), **person))
    run_jobs()

    assert _tables_mentioning(wsession, needles) == {}
    redacted = _customer(wsession, shop)
    assert redacted.redacted_at is not None and redacted.email is None and redacted.phone is None
    # Anonymous totals stay: the same entries, the same balance, and the ledger still adds up.
    assert redacted.points_balance == balance
    assert wsession.scalar(select(func.count()).select_from(LedgerEntry)
                           .where(LedgerEntry.customer_id == customer.id)) == entries
    assert find_balance_drift(wsession, shop.id) == []
    assert wsession.scalar(select(func.count()).select_from(DataRequest).where(DataRequest.shop_id == shop.id)) == 0

    # A later update about the same shopper does not fill the row again.
    deliver(shopify_client, shop.domain, "customers/update", personalized(
        sample("customer_update", updated_at="2026-08-01T00:00:00Z"), **person))
    run_jobs()
    again = _customer(wsession, shop)
    assert (again.email, again.first_name, again.last_name, again.phone) == (None, None, None, None)


def test_data_request_exports_everything_held_on_the_shopper_once(wsession, shopify_client, run_jobs):
    shop, person = shopify_shop(wsession), _person()
    customer = _build_history(wsession, shopify_client, run_jobs, shop, person)
    # Shopify re-sends the same request under a new event id: still one export.
    deliver(shopify_client, shop.domain, "customers/data_request",
            personalized(sample("customers_data_request", shop_domain=shop.domain), **person))
    run_jobs()
    wsession.expire_all()
    [request] = wsession.scalars(select(DataRequest).where(DataRequest.shop_id == shop.id)).all()
    assert request.platform_request_id == "9999" and request.customer_id == customer.id
    [held] = request.export["customers"]
    assert held["customer"]["email"] == person["email"] and held["customer"]["phone"] == person["phone"]
    assert {o["platform_order_id"] for o in held["orders"]} == {"5840000000001", "5840000000002"}
    assert [r["amount"] for r in held["refunds"]] == ["30.0000"]
    assert {e["kind"] for e in held["ledger"]} == {"earn", "reverse"}  # as of the request
    assert held["redemptions"] == [] and held["referrals"] == [] and held["audit_log"] == []
    # The platform's messages about them, still in the inbox, are data held on them too.
    topics = {e["topic"] for e in held["webhook_events"]}
    assert topics >= {"customers/create", "orders/paid", "refunds/create"}
    assert all(e["payload"] for e in held["webhook_events"])


def test_data_request_for_an_unknown_shopper_is_answered_with_an_empty_export(session):
    shop = make_shop(session)
    request = CustomerDataRequest("nobody", "nobody@example.com", "req-1", NOW)
    assert apply_event(session, shop.id, request).status == "applied"
    assert apply_event(session, shop.id, request).status == "noop"
    [row] = session.scalars(select(DataRequest).where(DataRequest.shop_id == shop.id)).all()
    assert row.customer_id is None and row.export["customers"] == [] and row.export["guest_orders"] == []


def test_data_request_exports_the_emails_win_back_sequences_and_link_clicks_held_on_the_shopper(session):
    from app.models import EmailSend, ReferralClick, WinbackEnrollment

    shop = make_shop(session)
    shopper = make_customer(session, shop, email="held@example.com")
    session.add_all([
        EmailSend(shop_id=shop.id, customer_id=shopper.id, template="winback_reminder", send_key="wb-1", status="sent"),
        WinbackEnrollment(shop_id=shop.id, customer_id=shopper.id, enrolled_at=NOW - timedelta(days=3)),
        ReferralClick(shop_id=shop.id, advocate_id=shopper.id, clicked_at=NOW - timedelta(days=1),
                      user_agent="the friend's browser"),
    ])
    session.flush()
    apply_event(session, shop.id, CustomerDataRequest(shopper.platform_customer_id, shopper.email, "req-held", NOW))
    [held] = session.scalars(select(DataRequest).where(DataRequest.shop_id == shop.id)).one().export["customers"]
    assert [e["send_key"] for e in held["emails"]] == ["wb-1"]
    assert [w["status"] for w in held["winback_enrollments"]] == ["active"]
    assert held["referral_clicks"] == [{"clicked_at": (NOW - timedelta(days=1)).isoformat()}]  # nothing of the friend's


def test_redact_clears_an_email_failure_that_quotes_the_shoppers_address(session):
    from app.loyalty.events import CustomerRedact
    from app.models import EmailSend

    shop = make_shop(session)
    shopper = make_customer(session, shop, email="bounced.quill@example.com")
    # What smtplib's SMTPRecipientsRefused reads as, stored by jobs.emails.
    refused = EmailSend(shop_id=shop.id, customer_id=shopper.id, template="reward_issued", send_key="rw-1",
                        status="failed", last_error="SMTP refused: {'bounced.quill@example.com': (550, b'no such user')}")
    session.add(refused)
    session.flush()
    apply_event(session, shop.id, CustomerRedact(shopper.platform_customer_id, shopper.email, NOW))
    session.flush()
    session.refresh(refused)
    assert "bounced.quill" not in (refused.last_error or "") and refused.status == "failed"


def test_redact_spares_the_inbox_rows_and_exports_of_a_shopper_whose_address_contains_the_erased_one(session):
    from app.loyalty.events import CustomerRedact

    shop = make_shop(session)
    erased = make_customer(session, shop, email="jo@example.com", phone="+15551234")
    other = make_customer(session, shop, email="mojo@example.com.au", phone="+155512345")
    # The other shopper's customers/update not processed yet, and the export the merchant owes them.
    pending = WebhookEvent(shop_id=shop.id, platform="shopify", topic="customers/update", event_key="cu-other",
                           payload={"id": other.platform_customer_id, "email": other.email, "phone": other.phone})
    export = DataRequest(shop_id=shop.id, platform_request_id="req-other", customer_id=None,
                         export={"customers": [{"customer": {"email": other.email}}]})
    session.add_all([pending, export])
    session.flush()

    apply_event(session, shop.id, CustomerRedact(erased.platform_customer_id, erased.email, NOW, phone=erased.phone))
    session.flush()
    session.expire_all()

    assert session.get(WebhookEvent, pending.id).payload["email"] == "mojo@example.com.au"
    assert session.get(DataRequest, export.id) is not None


def test_redact_clears_the_error_text_of_the_shoppers_inbox_rows(session):
    # A delivery that failed in the database can quote personal data in last_error (PostgreSQL's
    # DETAIL quotes key values; rows stored before hide_parameters, the bound values): redacting
    # only the payload and headers left it behind.
    from app.loyalty.events import CustomerRedact

    shop = make_shop(session)
    erased = make_customer(session, shop, email="gone.quill@example.com")
    failed = WebhookEvent(shop_id=shop.id, platform="shopify", topic="orders/paid", event_key="op-failed",
                          payload={"id": 1, "customer": {"id": erased.platform_customer_id}},
                          last_error="DataError: numeric field overflow [parameters: {'email_normalized': "
                                     "'gone.quill@example.com'}]")
    fine = WebhookEvent(shop_id=shop.id, platform="shopify", topic="orders/paid", event_key="op-fine",
                        payload={"id": 2, "customer": {"id": erased.platform_customer_id}})
    session.add_all([failed, fine])
    session.flush()

    apply_event(session, shop.id, CustomerRedact(erased.platform_customer_id, erased.email, NOW))
    session.flush()
    session.expire_all()

    assert "gone.quill" not in session.get(WebhookEvent, failed.id).last_error
    assert session.get(WebhookEvent, fine.id).last_error is None  # no error: nothing to redact


def test_redact_and_data_request_for_one_account_leave_another_account_with_the_same_inbox_alone(session):
    # sam+shop@ and sam@ are two accounts on the platform (two customer ids), each with its own
    # requests; normalize_email gives them one key, which must not merge them here.
    from app.loyalty.events import CustomerRedact

    shop = make_shop(session)
    asking = make_customer(session, shop, email="sam+shop@example.com")
    other = make_customer(session, shop, email="sam@example.com", first_name="Samantha")
    guest = make_customer(session, shop, platform_customer_id=None, email="Sam+Shop@Example.com")  # a guest row
    apply_event(session, shop.id, paid("other-1", NOW, customer=other, email=other.email))
    session.flush()

    apply_event(session, shop.id, CustomerDataRequest(asking.platform_customer_id, asking.email, "req-sam", NOW))
    export = session.scalars(select(DataRequest).where(DataRequest.shop_id == shop.id)).one().export
    assert [c["customer"]["id"] for c in export["customers"]] == [asking.id, guest.id]

    apply_event(session, shop.id, CustomerRedact(asking.platform_customer_id, asking.email, NOW))
    session.flush()
    session.expire_all()
    assert session.get(Customer, asking.id).redacted_at is not None and session.get(Customer, guest.id).email is None
    kept = session.get(Customer, other.id)
    assert (kept.redacted_at, kept.email, kept.first_name) == (None, "sam@example.com", "Samantha")
    order = session.scalars(select(Order).where(Order.shop_id == shop.id, Order.platform_order_id == "other-1")).one()
    assert order.email_normalized == "sam@example.com"


def _counts(session, shop_id: int) -> dict[str, int]:
    counts = {}
    for table in db.metadata.sorted_tables:
        column = table.c.id if table.name == "shops" else table.c.get("shop_id")
        if column is not None:
            counts[table.name] = session.scalar(select(func.count()).select_from(table).where(column == shop_id))
    return counts


def test_shop_redact_deletes_every_row_of_that_shop_and_nothing_else(wsession, shopify_client, run_jobs):
    doomed, kept = shopify_shop(wsession), shopify_shop(wsession)
    for shop in (doomed, kept):
        _build_history(wsession, shopify_client, run_jobs, shop, _person())
    doomed_id, doomed_domain, kept_before = doomed.id, doomed.domain, _counts(wsession, kept.id)
    assert all(_counts(wsession, doomed_id)[t] > 0 for t in ("customers", "ledger_entries", "audit_log", "orders",
                                                             "order_refunds", "redemptions", "data_requests",
                                                             "webhook_events", "earn_rules", "tiers", "rewards"))
    wsession.rollback()
    wsession.get(Shop, doomed_id).status = "uninstalled"  # Shopify asks 48 h after an uninstall
    wsession.commit()

    response = deliver(shopify_client, doomed.domain, "shop/redact", sample("shop_redact", shop_domain=doomed.domain))
    assert response.json["status"] == "stored"
    run_jobs()

    wsession.expire_all()
    assert set(_counts(wsession, doomed_id).values()) == {0}
    assert _counts(wsession, kept.id) == kept_before
    # Shopify may send it again; the shop is unknown now: 200 and nothing stored.
    again = deliver(shopify_client, doomed_domain, "shop/redact", sample("shop_redact", shop_domain=doomed_domain))
    assert again.json["status"] == "ignored"


def test_shop_redact_spares_a_shop_that_reinstalled(session):
    shop = make_shop(session)
    make_customer(session, shop)
    shop.uninstalled_at, shop.installed_at = NOW - timedelta(days=1), NOW - timedelta(hours=2)
    assert apply_event(session, shop.id, ShopRedact(NOW)).status == "noop"
    assert session.get(Shop, shop.id) is not None


def test_a_shop_redact_asked_before_a_reinstall_spares_the_new_installs_data_after_it_uninstalls_again(session):
    # Asked 48 h after the first uninstall, processed late (Redis down, a retry): meanwhile the
    # merchant reinstalled and uninstalled again. The new install's data gets its own request.
    shop = make_shop(session)
    make_customer(session, shop)
    shop.installed_at, shop.status, shop.uninstalled_at = NOW + timedelta(hours=1), "uninstalled", NOW + timedelta(hours=2)
    assert apply_event(session, shop.id, ShopRedact(NOW)).status == "noop"
    assert session.get(Shop, shop.id) is not None


def test_uninstall_is_idempotent_and_a_late_one_does_not_undo_a_reinstall(session):
    shop = make_shop(session)
    shop.access_token_enc = "token"
    assert apply_event(session, shop.id, AppUninstalled(NOW)).status == "applied"
    assert apply_event(session, shop.id, AppUninstalled(NOW)).status == "noop"
    # Reinstalled afterwards (another engineer's post-install sets these), then the old event is replayed.
    shop.status, shop.installed_at, shop.access_token_enc = "active", NOW + timedelta(hours=1), "new-token"
    assert apply_event(session, shop.id, AppUninstalled(NOW)).status == "noop"
    assert (shop.status, shop.access_token_enc) == ("active", "new-token")


def test_shop_redact_never_purges_an_installed_shop(session):
    # The HMAC does not cover the topic header: a signed body replayed as shop/redact must not
    # wipe a shop that is installed.
    shop = make_shop(session)
    make_customer(session, shop)
    assert apply_event(session, shop.id, ShopRedact(NOW)).status == "noop"
    assert session.get(Shop, shop.id) is not None


def test_shop_redact_detaches_the_purged_rows_so_the_inbox_job_can_finish(session):
    shop = make_shop(session)
    shop.status = "uninstalled"
    row = WebhookEvent(shop_id=shop.id, platform="demo", topic="shop/redact", event_key="e1", payload={})
    session.add(row)
    session.flush()
    apply_event(session, shop.id, ShopRedact(NOW))
    row.status = "processed"  # what jobs.inbox does next: must not turn into an UPDATE of a deleted row
    session.flush()
    assert session.scalar(select(func.count()).select_from(WebhookEvent).where(WebhookEvent.shop_id == shop.id)) == 0


def _redacted_shopper(session, shop) -> tuple[Customer, CustomerInfo]:
    """An erased shopper, and the customer block the platform still sends on their later orders."""
    from app.loyalty.events import CustomerRedact

    shopper = make_customer(session, shop, email="Late.Quill@Example.com")
    apply_event(session, shop.id, CustomerRedact(shopper.platform_customer_id, shopper.email, NOW))
    session.flush()
    return shopper, CustomerInfo(shopper.platform_customer_id, email="Late.Quill@Example.com")


def _order(session, shop, platform_order_id: str) -> Order:
    session.expire_all()
    return session.scalars(select(Order).where(Order.shop_id == shop.id,
                                               Order.platform_order_id == platform_order_id)).one()


def test_a_first_paid_order_after_redaction_stores_no_email_on_the_quick_path(session):
    shop = make_shop(session)
    shopper, info = _redacted_shopper(session, shop)

    outcome = new_sale.apply_new_sale(session, shop.id, paid("late-1", NOW + timedelta(days=1), customer=info,
                                                              email=info.email))
    assert outcome is not None  # the quick path applied it (no fallback to orders.py)
    order = _order(session, shop, "late-1")
    assert (order.customer_id, order.email_normalized) == (shopper.id, None)
    assert session.get(Customer, shopper.id).email is None


def test_later_order_events_after_redaction_store_no_email_on_the_general_path(session):
    # Award on fulfilment: the order's amounts (and email) stay open to updates until it earns.
    shop = make_shop(session, award_on="fulfilled")
    shopper = make_customer(session, shop, email="Late.Quill@Example.com")
    apply_event(session, shop.id, paid("early-1", NOW, customer=shopper, email=shopper.email))
    session.flush()
    assert _order(session, shop, "early-1").email_normalized == "late.quill@example.com"  # the control
    from app.loyalty.events import CustomerRedact
    apply_event(session, shop.id, CustomerRedact(shopper.platform_customer_id, shopper.email, NOW))
    session.flush()
    info = CustomerInfo(shopper.platform_customer_id, email="Late.Quill@Example.com")

    # An update of the order already held (order_seen: the quick path leaves it to orders.py) ...
    assert new_sale.apply_new_sale(session, shop.id, paid("early-1", NOW + timedelta(hours=1), customer=info,
                                                          email=info.email)) is None
    apply_event(session, shop.id, paid("early-1", NOW + timedelta(hours=1), customer=info, email=info.email))
    session.flush()
    assert _order(session, shop, "early-1").email_normalized is None
    # ... its fulfilment, and a cash-on-delivery order first seen fulfilled (orders.py only).
    apply_event(session, shop.id, OrderFulfilled(snapshot("early-1", customer=info, email=info.email),
                                                 NOW + timedelta(hours=2)))
    apply_event(session, shop.id, OrderFulfilled(snapshot("late-2", customer=info, email=info.email),
                                                 NOW + timedelta(hours=3)))
    session.flush()
    assert [(o.customer_id, o.email_normalized) for o in (_order(session, shop, "early-1"),
                                                          _order(session, shop, "late-2"))] == [(shopper.id, None)] * 2
    assert session.get(Customer, shopper.id).email is None


def test_uninstall_ends_the_shops_app_bridge_console_sessions_once(session):
    shop = make_shop(session)
    session.flush()
    version = shop.console_session_version
    assert apply_event(session, shop.id, AppUninstalled(NOW)).status == "applied"
    assert shop.console_session_version == version + 1
    assert apply_event(session, shop.id, AppUninstalled(NOW)).status == "noop"
    assert shop.console_session_version == version + 1


def test_data_request_exports_and_erasure_clears_woocommerce_inbox_rows_found_by_their_ids(session):
    # WooCommerce's topics (order.updated, customer.updated) and payloads (customer_id at the top,
    # no customer object) are not Shopify's: rows naming the shopper only by id are theirs too.
    from app.inbox import store_inbound_event
    from app.loyalty.events import CustomerRedact

    shop = make_shop(session)
    shopper = make_customer(session, shop, platform_customer_id="4242", email=None)
    other = make_customer(session, shop, platform_customer_id="4343", email=None)
    rows = {key: store_inbound_event(session, shop_id=shop.id, platform="woocommerce", topic=topic, event_key=key,
                                     payload=payload)
            for key, topic, payload in [
                ("wc-order", "order.updated", {"id": 901, "customer_id": 4242, "billing": {"first_name": "Ola"}}),
                ("wc-customer", "customer.updated", {"id": 4242, "first_name": "Ola"}),
                ("wc-other", "order.updated", {"id": 902, "customer_id": 4343})]}
    session.flush()
    apply_event(session, shop.id, CustomerDataRequest(shopper.platform_customer_id, None, "req-wc", NOW))
    [held] = session.scalars(select(DataRequest).where(DataRequest.shop_id == shop.id)).one().export["customers"]
    assert sorted(e["topic"] for e in held["webhook_events"]) == ["customer.updated", "order.updated"]
    assert [e["payload"]["id"] for e in held["webhook_events"] if e["topic"] == "order.updated"] == [901]

    apply_event(session, shop.id, CustomerRedact(shopper.platform_customer_id, None, NOW))
    session.flush()
    session.expire_all()
    payloads = {key: session.get(WebhookEvent, event_id).payload for key, event_id in rows.items()}
    assert payloads["wc-order"] == {"redacted": True} and payloads["wc-customer"] == {"redacted": True}
    assert payloads["wc-other"]["customer_id"] == 4343 and other.redacted_at is None
