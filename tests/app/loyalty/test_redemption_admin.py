"""Staff actions on redemptions: resend with its own email key (cancelling: test_redemption_cancel)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.loyalty.errors import NotFound
from app.loyalty.intents import NotifyCustomer
from app.loyalty.redemption_admin import list_redemptions, resend_code
from app.loyalty.redemptions import mark_issued, redeem_reward
from app.models import AuditLog
from tests.factories import give_points, make_customer, make_reward, make_shop

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _issued(session):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    give_points(session, customer, 500)
    result = redeem_reward(session, shop.id, customer.id, make_reward(session, shop, points_cost=500).id, "k", NOW)
    mark_issued(session, shop.id, result.redemption.id, None, NOW)
    return shop, customer, result.redemption


def test_each_resend_is_a_new_email_key_the_email_job_reads_the_code_from(session):
    shop, customer, redemption = _issued(session)
    [first] = resend_code(session, shop.id, redemption.id, "staff:1:a")
    [second] = resend_code(session, shop.id, redemption.id, "staff:1:a")
    assert isinstance(first, NotifyCustomer) and first.template == "reward_issued"
    assert first.key != second.key and first.key.startswith(f"redemption:{redemption.id}:resend:")
    from jobs.emails import _REDEMPTION_KEY

    assert int(_REDEMPTION_KEY.match(first.key).group(1)) == redemption.id
    assert session.query(AuditLog).filter_by(shop_id=shop.id, action="redemption.resend").count() == 2


def test_another_shops_redemption_is_not_found_and_lists_stay_scoped(session):
    shop, _, redemption = _issued(session)
    other = make_shop(session)
    with pytest.raises(NotFound):
        resend_code(session, other.id, redemption.id, "x")
    assert list_redemptions(session, other.id).items == []
    assert [r.id for r in list_redemptions(session, shop.id, status="issued").items] == [redemption.id]
