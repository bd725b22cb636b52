"""Staff adjustments: a reason is required, the actor is recorded on the entry and in the audit
log, no adjustment takes the balance below zero, and a replayed idempotency key posts once."""
from __future__ import annotations

import pytest

from app.loyalty.adjustments import MAX_ADJUSTMENT, adjust_points
from app.loyalty.errors import InsufficientPoints, Invalid
from app.loyalty.ledger import find_balance_drift, ledger_sums
from app.models import AuditLog, LedgerEntry
from tests.factories import make_customer, make_shop

ACTOR = "staff:ann@shop.example"


def _reload(session, row) -> None:
    session.flush()
    session.refresh(row)


def _nothing_written(session, shop) -> bool:
    session.flush()
    return (session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 0
            and session.query(AuditLog).filter_by(shop_id=shop.id).count() == 0)


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required_and_nothing_is_written_without_one(session, now, reason):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    with pytest.raises(Invalid) as refused:
        adjust_points(session, shop.id, customer.id, 100, reason=reason, actor=ACTOR, now=now)
    assert refused.value.code == "reason_required"
    assert refused.value.status == 422
    assert _nothing_written(session, shop)
    _reload(session, customer)
    assert customer.points_balance == 0


def test_the_actor_must_be_known(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    with pytest.raises(Invalid) as refused:
        adjust_points(session, shop.id, customer.id, 100, reason="goodwill", actor="", now=now)
    assert refused.value.code == "actor_required"
    assert _nothing_written(session, shop)


@pytest.mark.parametrize("points", [0, MAX_ADJUSTMENT + 1, -(MAX_ADJUSTMENT + 1)])
def test_points_must_be_non_zero_and_within_the_maximum(session, now, points):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    with pytest.raises(Invalid) as refused:
        adjust_points(session, shop.id, customer.id, points, reason="goodwill", actor=ACTOR, now=now)
    assert refused.value.code == "points_out_of_range"
    assert _nothing_written(session, shop)


def test_an_adjustment_records_the_actor_and_reason_on_the_ledger_entry(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    entry_id = adjust_points(session, shop.id, customer.id, 120, reason="  parcel arrived late ", actor=ACTOR,
                             note="ticket #881", now=now)
    entry = session.get(LedgerEntry, entry_id)
    assert (entry.kind, entry.source, entry.points, entry.customer_id) == ("adjust", "staff", 120, customer.id)
    assert (entry.actor, entry.reason) == (ACTOR, "parcel arrived late")
    assert entry.details == {"note": "ticket #881"}
    assert entry.created_at == now
    _reload(session, customer)
    assert customer.points_balance == 120
    assert find_balance_drift(session, shop.id) == []
    assert ledger_sums(session, shop.id, customer.id) == (120, 0)


def test_an_adjustment_writes_an_audit_log_row_with_points_and_reason(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 200, reason="welcome back", actor=ACTOR, now=now)
    entry_id = adjust_points(session, shop.id, customer.id, -50, reason="double credit", actor=ACTOR, now=now)
    session.flush()
    audits = session.query(AuditLog).filter_by(shop_id=shop.id, action="points.adjust").order_by(AuditLog.id).all()
    assert len(audits) == 2
    last = audits[-1]
    assert (last.actor, last.customer_id) == (ACTOR, customer.id)
    assert (last.target_type, last.target_id) == ("ledger_entry", str(entry_id))
    assert last.details["points"] == -50
    assert last.details["reason"] == "double credit"
    assert last.details["balance_after"] == 150


def test_an_adjustment_cannot_take_the_balance_below_zero(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 100, reason="goodwill", actor=ACTOR, now=now)
    with pytest.raises(InsufficientPoints) as refused:
        adjust_points(session, shop.id, customer.id, -101, reason="correction", actor=ACTOR, now=now)
    assert refused.value.status == 409
    session.flush()
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 1
    assert session.query(AuditLog).filter_by(shop_id=shop.id).count() == 1
    _reload(session, customer)
    assert customer.points_balance == 100
    # Down to exactly zero is allowed.
    adjust_points(session, shop.id, customer.id, -100, reason="correction", actor=ACTOR, now=now)
    _reload(session, customer)
    assert customer.points_balance == 0


def test_a_replayed_idempotency_key_posts_once(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    first = adjust_points(session, shop.id, customer.id, 75, reason="goodwill", actor=ACTOR, now=now,
                          idempotency_key="ticket-881")
    again = adjust_points(session, shop.id, customer.id, 75, reason="goodwill", actor=ACTOR, now=now,
                          idempotency_key="ticket-881")
    assert first is not None and again is None
    session.flush()
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 1
    assert session.query(AuditLog).filter_by(shop_id=shop.id).count() == 1
    _reload(session, customer)
    assert customer.points_balance == 75
    # Without a key every call is its own adjustment.
    adjust_points(session, shop.id, customer.id, 5, reason="goodwill", actor=ACTOR, now=now)
    adjust_points(session, shop.id, customer.id, 5, reason="goodwill", actor=ACTOR, now=now)
    _reload(session, customer)
    assert customer.points_balance == 85


def test_a_key_reused_for_another_customer_or_amount_is_refused_not_silently_dropped(session, now):
    shop = make_shop(session)
    kari, ola = make_customer(session, shop), make_customer(session, shop)
    adjust_points(session, shop.id, kari.id, 75, reason="goodwill", actor=ACTOR, now=now, idempotency_key="ticket-9")
    for customer, points in ((ola, 75), (kari, 50), (kari, -75)):
        with pytest.raises(Invalid) as refused:
            adjust_points(session, shop.id, customer.id, points, reason="goodwill", actor=ACTOR, now=now,
                          idempotency_key="ticket-9")
        assert refused.value.code == "idempotency_key_reused" and refused.value.status == 422
    session.flush()
    assert ledger_sums(session, shop.id, ola.id) == (0, 0) and ledger_sums(session, shop.id, kari.id) == (75, 0)
    # The same adjustment again is still a replay.
    assert adjust_points(session, shop.id, kari.id, 75, reason="goodwill", actor=ACTOR, now=now,
                         idempotency_key="ticket-9") is None


def test_an_adjustment_is_not_shopper_activity(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 10, reason="goodwill", actor=ACTOR, now=now)
    _reload(session, customer)
    assert customer.last_activity_at is None  # the expiry clock runs on earns and redemptions only


def test_replayed_negative_adjustment_is_a_no_op_even_after_the_balance_dropped(session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 100, reason="seed", actor="staff:a", now=now)
    first = adjust_points(session, shop.id, customer.id, -80, reason="fix", actor="staff:a", now=now, idempotency_key="k-80")
    assert first is not None
    # The retry arrives when only 20 points are left: it must not be refused as an overdraft.
    assert adjust_points(session, shop.id, customer.id, -80, reason="fix", actor="staff:a", now=now,
                         idempotency_key="k-80") is None
    session.flush()
    assert ledger_sums(session, shop.id, customer.id) == (20, 0)
