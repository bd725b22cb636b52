"""Text staff or shoppers typed shows as text on every page that renders it: an adjustment's note
and reason, reward, tier and perk names, staff and token names, audit details, a refused cancel."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from app.admin.staff_accounts import create_staff, create_token
from app.extensions import db
from app.loyalty.adjustments import adjust_points
from app.loyalty.catalog import save_item
from app.loyalty.redemption_cancel import refuse_cancellation, request_cancellation
from app.loyalty.redemptions import mark_issued, redeem_reward
from app.models import Reward, Shop, Tier
from tests.app.console.conftest import committed_console_shop, sign_in
from tests.factories import make_customer

XSS = '<img src=x onerror="alert(1)">'
ESCAPED = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"


def test_hostile_text_is_escaped_on_every_page_that_shows_it(app):
    made = committed_console_shop(app)
    now = datetime.now(UTC)
    with app.app_context():
        shop = db.session.get(Shop, made.shop_id)
        customer = make_customer(db.session, shop, first_name=XSS, last_name=XSS, email="x@example.com")
        adjust_points(db.session, shop.id, customer.id, 900, reason=f"other: {XSS}", actor=f"staff:1:{XSS}",
                      note=XSS, now=now)
        reward = save_item(db.session, shop.id, Reward, {"name": XSS, "kind": "fixed_amount", "points_cost": 100,
                                                         "value": Decimal("5")}, actor="t")
        save_item(db.session, shop.id, Tier, {"name": XSS, "threshold": Decimal("90000"),
                                              "multiplier": Decimal("2"), "perks": [XSS]}, actor="t")
        redemption = redeem_reward(db.session, shop.id, customer.id, reward.id, "k-xss", now).redemption
        mark_issued(db.session, shop.id, redemption.id, "gid://discount/1", now)
        request_cancellation(db.session, shop.id, redemption.id, "t", XSS, now)
        refuse_cancellation(db.session, shop.id, redemption.id, XSS, now)
        member = create_staff(db.session, shop.id, "hostile@staff.example", "viewer", "a-long-password",
                              actor="t", name=XSS)
        create_token(db.session, shop.id, member.id, XSS, actor="t")
        db.session.commit()
        customer_id = customer.id
    client = app.test_client()
    sign_in(client, made.emails["owner"])
    for path in ("/admin/customers", f"/admin/customers/{customer_id}", "/admin/audit", "/admin/settings",
                 "/admin/staff"):
        html = client.get(path).get_data(as_text=True)
        assert XSS not in html, path
        assert ESCAPED in html, path
