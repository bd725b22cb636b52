"""Changing a shop's program settings (validated by app.loyalty.program's schema) and its
referral settings, audited."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.loyalty import audit
from app.loyalty.program import ProgramSettings, ProgramSettingsSchema, program_settings
from app.loyalty.tier_review import owe_no_review_before
from app.models import EarnRule, Shop, for_shop

_SCHEMA = ProgramSettingsSchema()
_DEFAULTS = _SCHEMA.dump(ProgramSettings())
# Settings the save sets itself, never a change: expiry_since (see _expiry_since).
SET_BY_SAVE = frozenset({"expiry_since"})


def update_settings(session: Session, shop_id: int, changes: dict[str, Any], *, actor: str,
                    now: datetime | None = None) -> ProgramSettings:
    """Merge `changes` into the stored settings; the whole result must pass the schema (422 if not)."""
    refused = SET_BY_SAVE & changes.keys()
    if refused:
        raise ValidationError({key: ["is set by the save itself (expiry_since: when expiry_months is switched on "
                                     "or shortened)"] for key in refused})
    shop = session.scalars(select(Shop).where(Shop.id == shop_id).with_for_update()).one()
    # The values in force, defaults included; as stored, so a bad stored value can still be fixed.
    previous = {**_DEFAULTS, **(shop.settings or {})}
    merged = {**(shop.settings or {}), **changes}
    settings = _SCHEMA.load(merged)
    since = _expiry_since(previous["expiry_months"], settings.expiry_months, now or datetime.now(UTC))
    if since is not None:
        changes = {**changes, "expiry_since": since}
        merged["expiry_since"] = since
        settings = _SCHEMA.load(merged)
    dumped = _SCHEMA.dump(settings)
    shop.settings = {key: dumped[key] for key in merged}
    if settings.tier_period != previous["tier_period"]:
        owe_no_review_before(session, shop_id, settings.tier_period, shop.timezone, now)
    audit.record(session, shop_id, actor, "settings.update", target_type="shop", target_id=shop_id,
                 details={"changes": {key: dumped[key] for key in changes},
                          "before": {key: previous[key] for key in changes}})
    return settings


def _expiry_since(before: Any, after: int | None, now: datetime) -> str | None:
    """`now` (ISO) when expiry is switched on or shortened: balances idle longer than the new
    window would otherwise expire at the next nightly run with no reminder; app.loyalty.expiry
    holds them until now + EXPIRY_GRACE. None: leave the stored value (a longer window or none
    only moves dates later). `before` is as stored: a bad value being fixed counts as none."""
    if after is not None and (not isinstance(before, int) or after < before):
        return now.astimezone(UTC).isoformat()
    return None


@dataclass(frozen=True)
class ReferralSettings:
    advocate_points: int
    friend_points: int
    weekly_cap: int


def referral_settings(session: Session, shop_id: int) -> ReferralSettings:
    rules = _referral_rules(session, shop_id)
    return ReferralSettings(
        advocate_points=rules["referral_advocate"].points or 0 if "referral_advocate" in rules else 0,
        friend_points=rules["referral_friend"].points or 0 if "referral_friend" in rules else 0,
        weekly_cap=program_settings(session.get(Shop, shop_id)).referral_weekly_cap)


def update_referral_settings(session: Session, shop_id: int, values: ReferralSettings, *, actor: str) -> ReferralSettings:
    # The shop first (as update_settings locks it): a rule not there yet has no row to lock, and
    # two first saves at once would each add it (a unique-key 500).
    session.execute(select(Shop.id).where(Shop.id == shop_id).with_for_update())
    rules = _referral_rules(session, shop_id)
    before = referral_settings(session, shop_id)
    for kind, points, name in (("referral_advocate", values.advocate_points, "Refer a friend"),
                               ("referral_friend", values.friend_points, "Referred by a friend")):
        rule = rules.get(kind)
        if rule is None:
            session.add(EarnRule(shop_id=shop_id, kind=kind, name=name, points=points))
        else:
            rule.points = points
    update_settings(session, shop_id, {"referral_weekly_cap": values.weekly_cap}, actor=actor)
    audit.record(session, shop_id, actor, "referral_settings.update", target_type="shop", target_id=shop_id,
                 details={"advocate_points": values.advocate_points, "friend_points": values.friend_points,
                          "weekly_cap": values.weekly_cap, "before": asdict(before)})
    session.flush()
    return referral_settings(session, shop_id)


def _referral_rules(session: Session, shop_id: int) -> dict[str, EarnRule]:
    rows = session.scalars(for_shop(EarnRule, shop_id).where(
        EarnRule.kind.in_(("referral_advocate", "referral_friend")), EarnRule.action_key == "").with_for_update())
    return {rule.kind: rule for rule in rows}
