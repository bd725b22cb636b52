"""Editing a shop's program (earn rules, rewards, tiers): the checks that span rows or fields,
and an audit row for every change. Field bounds are the web schemas' job; these hold whatever
the caller."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from marshmallow import ValidationError
from sqlalchemy import inspect, select, update
from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.errors import LoyaltyError, NotFound
from app.loyalty.program import program_settings
from app.loyalty.tier_review import owe_no_review_before
from app.models import Customer, EarnRule, Reward, Shop, Tier, for_shop, get_for_shop

M = TypeVar("M", EarnRule, Reward, Tier)
_NAMES = {EarnRule: "earn_rule", Reward: "reward", Tier: "tier"}
_BOOKKEEPING = frozenset({"id", "shop_id", "created_at", "updated_at"})


def get_item(session: Session, shop_id: int, model: type[M], item_id: int, *, lock: bool = False) -> M:
    row = get_for_shop(session, model, shop_id, item_id, lock=lock)
    if row is None:
        raise NotFound(f"no such {_NAMES[model].replace('_', ' ')}", code=f"{_NAMES[model]}_not_found")
    return row


def list_items(session: Session, shop_id: int, model: type[M]) -> list[M]:
    order = {EarnRule: EarnRule.id, Reward: (Reward.position, Reward.id), Tier: Tier.threshold}[model]
    order = order if isinstance(order, tuple) else (order,)
    return list(session.scalars(for_shop(model, shop_id).order_by(*order)))


def save_item(session: Session, shop_id: int, model: type[M], values: dict[str, Any], *, actor: str,
              item_id: int | None = None, now: datetime | None = None) -> M:
    """Create (item_id None) or update a row with `values`; audited as `<kind>.create|update`."""
    # The checks read the shop's other rows: without one lock per shop, two saves at once each
    # pass against the rows before the other (tiers out of order, a unique key's 500).
    session.execute(select(Shop.id).where(Shop.id == shop_id).with_for_update(key_share=True))
    # The first tiers: no late review of a boundary that passed before they existed.
    if model is Tier and item_id is None and session.scalars(for_shop(Tier, shop_id).limit(1)).first() is None:
        shop = session.get(Shop, shop_id)
        owe_no_review_before(session, shop_id, program_settings(shop).tier_period, shop.timezone, now)
    if item_id is None:
        row = model(shop_id=shop_id)
        before = None
    else:
        row = get_item(session, shop_id, model, item_id, lock=True)
        before = {k: _plain(getattr(row, k)) for k in values}
    for key, value in values.items():
        setattr(row, key, value)
    with session.no_autoflush:  # check before the row reaches the database's unique keys
        _CHECKS[model](session, shop_id, row)
    if item_id is None:
        session.add(row)
    session.flush()
    audit.record(session, shop_id, actor, f"{_NAMES[model]}.{'create' if before is None else 'update'}",
                 target_type=_NAMES[model], target_id=row.id,
                 details={"values": {k: _plain(v) for k, v in values.items()}, **({"before": before} if before else {})})
    return row


def delete_item(session: Session, shop_id: int, model: type[M], item_id: int, *, actor: str) -> None:
    row = get_item(session, shop_id, model, item_id, lock=True)
    # What it was, every setting: the row itself is gone after this.
    before = {a.key: _plain(getattr(row, a.key)) for a in inspect(row).mapper.column_attrs if a.key not in _BOOKKEEPING}
    audit.record(session, shop_id, actor, f"{_NAMES[model]}.delete", target_type=_NAMES[model], target_id=row.id,
                 details={"name": row.name, "before": before})
    if model is Tier:
        _move_holders_down(session, shop_id, row)
    session.delete(row)
    session.flush()


def _move_holders_down(session: Session, shop_id: int, tier: Tier) -> None:
    """A deleted tier's holders keep the next tier down (they reached it): the foreign key alone
    would leave them with no tier, earning x1 until their next order or the review."""
    lower = session.scalars(for_shop(Tier, shop_id).where(Tier.threshold < tier.threshold)
                            .order_by(Tier.threshold.desc()).limit(1)).first()
    session.execute(update(Customer).where(Customer.shop_id == shop_id, Customer.tier_id == tier.id)
                    .values(tier_id=lower.id if lower else None).execution_options(synchronize_session="fetch"))


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _check_earn_rule(session: Session, shop_id: int, rule: EarnRule) -> None:
    errors: dict[str, list[str]] = {}
    if rule.kind == "order" and rule.points_per_unit is None:
        errors["points_per_unit"] = ["required for an order rule"]
    if rule.kind != "order" and rule.points is None:
        errors["points"] = ["required for this kind of rule"]
    if rule.kind == "nth_order" and rule.every_n is None:
        errors["every_n"] = ["required for an nth_order rule"]
    if rule.kind == "custom" and not rule.action_key:
        errors["action_key"] = ["required for a custom rule"]
    if rule.kind != "custom" and rule.action_key:
        errors["action_key"] = ["only custom rules have an action key"]
    if errors:
        raise ValidationError(errors)
    clash = session.scalar(for_shop(EarnRule, shop_id).where(EarnRule.kind == rule.kind,
                                                             EarnRule.action_key == rule.action_key,
                                                             EarnRule.id != (rule.id or 0)))
    if clash is not None:
        raise LoyaltyError("the shop already has this rule; edit that one", code="earn_rule_exists")


def _check_reward(session: Session, shop_id: int, reward: Reward) -> None:
    errors: dict[str, list[str]] = {}
    if reward.kind in ("fixed_amount", "percentage") and reward.value is None:
        errors["value"] = ["required for this kind of reward"]
    if reward.kind == "percentage" and reward.value is not None and not 1 <= reward.value <= 100:
        errors["value"] = ["a percentage is 1 to 100"]
    if reward.kind == "free_product" and not reward.product_ref:
        errors["product_ref"] = ["required for a free product reward"]
    if errors:
        raise ValidationError(errors)


def _check_tier(session: Session, shop_id: int, tier: Tier) -> None:
    """Thresholds strictly ascend, and a higher tier never earns at a lower multiplier."""
    others = session.scalars(for_shop(Tier, shop_id).where(Tier.id != (tier.id or 0))).all()
    if any(o.name.lower() == tier.name.lower() for o in others):
        raise ValidationError({"name": ["another tier has this name"]})
    if any(Decimal(o.threshold) == Decimal(tier.threshold) for o in others):
        raise ValidationError({"threshold": ["another tier has this threshold; thresholds must strictly ascend"]})
    for other in others:
        lower, higher = sorted([other, tier], key=lambda t: Decimal(t.threshold))
        if Decimal(lower.multiplier) > Decimal(higher.multiplier):
            raise ValidationError({"multiplier": [
                f"tier {other.name!r} ({other.threshold}, x{other.multiplier}) breaks the ascending order: "
                "a higher threshold needs an equal or higher multiplier"]})


_CHECKS = {EarnRule: _check_earn_rule, Reward: _check_reward, Tier: _check_tier}
