"""Program items: cross-row checks (tiers ascend, one rule per kind) and an audit row per change."""
from __future__ import annotations

from decimal import Decimal

import pytest
from marshmallow import ValidationError

from app.loyalty.catalog import delete_item, list_items, save_item
from app.loyalty.errors import LoyaltyError, NotFound
from app.models import AuditLog, EarnRule, Reward, Tier
from tests.factories import make_shop
from tests.racing import second_waits_for_first


def test_tiers_list_by_threshold_and_a_new_one_must_fit_the_ascending_order(session):
    shop = make_shop(session)  # Bronze 0 ×1, Silver 500 ×1.25, Gold 1500 ×1.5
    with pytest.raises(ValidationError) as between:
        save_item(session, shop.id, Tier, {"name": "Steel", "threshold": Decimal("1000"), "multiplier": Decimal("2")},
                  actor="t")
    assert "multiplier" in between.value.messages
    save_item(session, shop.id, Tier, {"name": "Steel", "threshold": Decimal("1000"), "multiplier": Decimal("1.4")},
              actor="t")
    assert [t.name for t in list_items(session, shop.id, Tier)] == ["Bronze", "Silver", "Steel", "Gold"]


def test_an_update_that_clashes_is_refused_before_it_reaches_the_unique_key(session):
    shop = make_shop(session)
    silver = session.query(Tier).filter_by(shop_id=shop.id, name="Silver").one()
    with pytest.raises(ValidationError):
        save_item(session, shop.id, Tier, {"threshold": Decimal("1500")}, actor="t", item_id=silver.id)


def test_one_rule_per_kind_and_action_key(session):
    shop = make_shop(session)
    with pytest.raises(LoyaltyError) as clash:
        save_item(session, shop.id, EarnRule, {"kind": "signup", "name": "Again", "points": 5, "action_key": ""},
                  actor="t")
    assert clash.value.code == "earn_rule_exists"


def test_changes_are_audited_with_before_and_after_and_other_shops_rows_are_not_found(session):
    shop, other = make_shop(session), make_shop(session)
    reward = session.query(Reward).filter_by(shop_id=shop.id).first()
    save_item(session, shop.id, Reward, {"points_cost": 777}, actor="staff:1:a", item_id=reward.id)
    row = session.query(AuditLog).filter_by(shop_id=shop.id, action="reward.update").one()
    assert row.details == {"values": {"points_cost": 777}, "before": {"points_cost": 500}}
    with pytest.raises(NotFound):
        delete_item(session, other.id, Reward, reward.id, actor="staff:9:x")


def test_a_deletion_is_audited_with_what_the_item_was(session):
    shop = make_shop(session)
    reward = save_item(session, shop.id, Reward, {"name": "Gift card", "kind": "fixed_amount", "points_cost": 900,
                                                  "value": Decimal("10")}, actor="staff:1:a")
    delete_item(session, shop.id, Reward, reward.id, actor="staff:1:a")
    row = session.query(AuditLog).filter_by(shop_id=shop.id, action="reward.delete").one()
    assert row.actor == "staff:1:a" and row.target_id == str(reward.id)
    before = row.details["before"]
    assert (before["name"], before["kind"], before["points_cost"], Decimal(before["value"]), before["active"]) == \
        ("Gift card", "fixed_amount", 900, 10, True)


def test_deleting_a_tier_moves_its_holders_to_the_next_tier_down_and_their_next_order_earns_there(session):
    from datetime import UTC, datetime

    from app.loyalty.apply import apply_event
    from app.models import Customer, Order
    from tests.factories import make_customer, paid

    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    shop = make_shop(session)  # Bronze 0 ×1, Silver 500 ×1.25, Gold 1500 ×1.5 (spend, lifetime)
    gold_holder = make_customer(session, shop)
    apply_event(session, shop.id, paid(1, now, customer=gold_holder, subtotal="1600"))
    gold = session.query(Tier).filter_by(shop_id=shop.id, name="Gold").one()
    silver = session.query(Tier).filter_by(shop_id=shop.id, name="Silver").one()
    session.refresh(gold_holder)
    assert gold_holder.tier_id == gold.id
    delete_item(session, shop.id, Tier, gold.id, actor="t")
    session.expire_all()
    assert session.get(Customer, gold_holder.id).tier_id == silver.id
    apply_event(session, shop.id, paid(2, now, customer=gold_holder, subtotal="100"))
    second = session.query(Order).filter_by(shop_id=shop.id, platform_order_id="2").one()
    assert second.points_earned == 125  # 100 × Silver's 1.25, not ×1 for "no tier"


def _racing(app, session, shop_id: int, model, first: dict, second: dict) -> list:
    """Save `first` (flushed, not committed), race `second` from another session, then commit the
    first: the second must wait for it and be checked against it."""
    
    from sqlalchemy.orm import Session

    from app.extensions import db

    outcome: list = []
    engine = db.engine  # the thread has no app context

    def save_second():
        with Session(engine) as other:
            try:
                save_item(other, shop_id, model, second, actor="t")
                other.commit()
                outcome.append("saved")
            except ValidationError as exc:
                outcome.append(sorted(exc.messages))
            except LoyaltyError as exc:
                outcome.append(exc.code)

    # It must wait for this save, not check against the rows before it.
    second_waits_for_first(
        engine, lambda mine: save_item(mine, shop_id, model, first, actor="t"),
        save_second)
    return outcome


def test_two_tiers_added_at_once_cannot_break_the_ascending_multipliers(app, session):
    shop = make_shop(session)  # Bronze 0 ×1, Silver 500 ×1.25, Gold 1500 ×1.5
    session.commit()
    # Each fits the three tiers alone; together a lower threshold would earn more than a higher one.
    outcome = _racing(app, session, shop.id, Tier,
                      {"name": "Platinum", "threshold": Decimal("3000"), "multiplier": Decimal("2")},
                      {"name": "Diamond", "threshold": Decimal("2500"), "multiplier": Decimal("3")})
    assert outcome == [["multiplier"]]
    session.rollback()
    assert [t.name for t in list_items(session, shop.id, Tier)] == ["Bronze", "Silver", "Gold", "Platinum"]


def test_the_same_earn_rule_added_twice_at_once_is_a_clash_not_a_database_error(app, session):
    shop = make_shop(session, default_program=False)
    session.commit()
    rule = {"kind": "signup", "name": "Welcome", "points": 50, "action_key": ""}
    assert _racing(app, session, shop.id, EarnRule, rule, rule) == ["earn_rule_exists"]
