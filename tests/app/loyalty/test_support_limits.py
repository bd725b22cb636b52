"""Support limits: |points| per adjustment and per shop-local day, summed over the agent's actors."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.loyalty import audit
from app.loyalty.errors import Forbidden
from app.loyalty.support_limits import adjusted_today, enforce_support_limit, shop_day_start
from tests.factories import make_shop, make_staff


def test_the_shop_day_starts_at_local_midnight():
    now = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)  # 14:30 in Auckland (UTC+13), 20:30 the day before in New York
    assert shop_day_start(now, "Pacific/Auckland").astimezone(UTC) == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
    assert shop_day_start(now, "America/New_York").astimezone(UTC) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)


def test_used_today_sums_absolute_points_of_the_given_actors_only(session):
    shop = make_shop(session)
    for actor, points in (("staff:1:a", 300), ("staff:1:a", -200), ("token:9:a-script", 50), ("staff:2:b", 999)):
        audit.record(session, shop.id, actor, "points.adjust", details={"points": points})
    audit.record(session, shop.id, "staff:1:a", "settings.update", details={"points": 10_000})
    session.flush()
    since = shop_day_start(datetime.now(UTC), "UTC")
    assert adjusted_today(session, shop.id, ["staff:1:a", "token:9:a-script"], since) == 550
    other = make_shop(session)
    assert adjusted_today(session, other.id, ["staff:1:a"], since) == 0


def test_limits_come_from_the_shop_settings(session):
    shop = make_shop(session, support_adjust_limit_per_adjustment=100, support_adjust_limit_per_day=150)
    agent = make_staff(session, shop, "support")
    now = datetime.now(UTC)
    with pytest.raises(Forbidden) as refused:
        enforce_support_limit(session, shop.id, agent.id, ["me"], -101, now)
    assert refused.value.code == "adjustment_limit"
    enforce_support_limit(session, shop.id, agent.id, ["me"], 100, now)
    audit.record(session, shop.id, "me", "points.adjust", details={"points": 100})
    session.flush()
    enforce_support_limit(session, shop.id, agent.id, ["me"], 50, now)
    with pytest.raises(Forbidden):
        enforce_support_limit(session, shop.id, agent.id, ["me"], 51, now)
