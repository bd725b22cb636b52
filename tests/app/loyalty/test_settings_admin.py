"""Referral settings saved twice at once: the second waits for the first and updates its rules."""
from __future__ import annotations


from sqlalchemy import select
from sqlalchemy.orm import Session

from app.extensions import db
from app.loyalty.settings_admin import ReferralSettings, update_referral_settings
from app.models import EarnRule
from tests.factories import make_shop
from tests.racing import second_waits_for_first


def test_the_first_referral_settings_saved_twice_at_once_make_one_rule_of_each_kind(app, session):
    shop = make_shop(session, default_program=False)  # no referral rules yet: both saves would add them
    session.commit()
    shop_id, engine = shop.id, db.engine
    outcome: list = []

    def save_second():
        with Session(engine) as other:
            update_referral_settings(other, shop_id, ReferralSettings(900, 400, 3), actor="t")
            other.commit()
            outcome.append("saved")

    # It must wait for these rules, not add its own beside them.
    second_waits_for_first(
        engine, lambda mine: update_referral_settings(mine, shop_id, ReferralSettings(700, 300, 4), actor="t"),
        save_second)
    assert outcome == ["saved"]
    session.rollback()
    rules = session.scalars(select(EarnRule).where(EarnRule.shop_id == shop_id).order_by(EarnRule.kind)).all()
    assert [(r.kind, r.points) for r in rules] == [("referral_advocate", 900), ("referral_friend", 400)]
