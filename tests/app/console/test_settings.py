"""Program settings, earn rules, rewards, tiers and win-back settings: owners edit them through
forms whose marshmallow errors appear next to the field; every change is audited."""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.loyalty.program import program_settings
from app.models import AuditLog, Reward, Shop, Tier
from tests.app.console.conftest import committed_console_shop, csrf


def _settings(app, shop_id):
    with app.app_context():
        return program_settings(db.session.get(Shop, shop_id))


def _audit(app, shop_id, action):
    with app.app_context():
        return db.session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_id, AuditLog.action == action)).all()


def test_settings_form_shows_the_current_values_grouped(fresh_owner):
    client, _ = fresh_owner
    html = client.get("/admin/settings").get_data(as_text=True)
    for legend in ("Earning", "Balances and expiry", "VIP tiers", "Support staff limits"):
        assert f"<legend><h3>{legend}</h3></legend>" in html
    assert re.search(r'<option value="subtotal" selected>', html)
    assert 'name="support_adjust_limit_per_adjustment" type="text" value="1000"' in html


def test_saving_settings_stores_them_and_audits_the_change(app, fresh_owner):
    client, made = fresh_owner
    response = client.post("/admin/settings", data={
        "csrf_token": csrf(client), "pending_days": "14", "rounding": "nearest", "expiry_months": "",
        "include_test_orders": ["false", "true"], "storefront_origins": "https://www.example.com\n"})
    assert response.status_code == 302
    settings = _settings(app, made.shop_id)
    assert (settings.pending_days, settings.rounding, settings.expiry_months, settings.include_test_orders,
            tuple(settings.storefront_origins)) == (14, "nearest", None, True, ("https://www.example.com",))
    (row,) = _audit(app, made.shop_id, "settings.update")
    assert row.actor.startswith(f"staff:{made.staff_ids['owner']}:") and row.details["changes"]["pending_days"] == 14


def test_an_invalid_setting_is_shown_next_to_its_field_and_nothing_is_saved(app, fresh_owner):
    client, made = fresh_owner
    response = client.post("/admin/settings", data={"csrf_token": csrf(client), "pending_days": "-3",
                                                    "brand_color": "red"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<p class="error" id="error-pending_days">Must be greater than or equal to 0 and less than or equal to 365.</p>' in html
    assert '<p class="error" id="error-brand_color">must be a colour like #1a2b3c</p>' in html
    assert 'value="-3"' in html  # what was typed stays in the field
    assert _settings(app, made.shop_id).pending_days == 0 and _audit(app, made.shop_id, "settings.update") == []


def test_adding_a_reward_with_a_negative_cost_is_refused_next_to_the_cost(app, fresh_owner):
    client, made = fresh_owner
    response = client.post("/admin/settings/rewards/new", data={
        "csrf_token": csrf(client), "name": "Tote bag", "kind": "free_product", "points_cost": "-5"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert '<p class="error" id="error-points_cost">' in html and 'aria-invalid="true"' in html


def test_a_reward_is_added_and_edited(app, fresh_owner):
    client, made = fresh_owner
    response = client.post("/admin/settings/rewards/new", data={
        "csrf_token": csrf(client), "name": "Tote bag", "kind": "free_product", "points_cost": "800",
        "product_ref": "gid://shopify/Product/1", "active": ["false", "true"]})
    assert response.status_code == 302
    with app.app_context():
        reward = db.session.scalars(select(Reward).where(Reward.shop_id == made.shop_id,
                                                         Reward.name == "Tote bag")).one()
        reward_id = reward.id
    page = client.get(f"/admin/settings/rewards/{reward_id}").get_data(as_text=True)
    assert 'value="Tote bag"' in page
    client.post(f"/admin/settings/rewards/{reward_id}", data={
        "csrf_token": csrf(client), "name": "Tote bag", "kind": "free_product", "points_cost": "900",
        "product_ref": "gid://shopify/Product/1", "active": "false"})
    with app.app_context():
        reward = db.session.get(Reward, reward_id)
        assert (reward.points_cost, reward.active) == (900, False)
    assert [r.action for r in _audit(app, made.shop_id, "reward.update")] == ["reward.update"]


def test_tier_thresholds_must_ascend(app, fresh_owner):
    client, made = fresh_owner
    response = client.post("/admin/settings/tiers/new", data={
        "csrf_token": csrf(client), "name": "Platinum", "threshold": "500", "multiplier": "2"})
    assert response.status_code == 422
    assert "thresholds must strictly ascend" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Tier).where(Tier.shop_id == made.shop_id, Tier.name == "Platinum")) is None


def test_another_shops_reward_cannot_be_opened_or_changed(app, fresh_owner):
    client, _ = fresh_owner
    other = committed_console_shop(app)
    with app.app_context():
        reward_id = db.session.scalars(select(Reward.id).where(Reward.shop_id == other.shop_id)).first()
    assert client.get(f"/admin/settings/rewards/{reward_id}").status_code == 404
    response = client.post(f"/admin/settings/rewards/{reward_id}", data={
        "csrf_token": csrf(client), "name": "Hijacked", "kind": "fixed_amount", "points_cost": "1", "value": "5"})
    assert response.status_code == 404


def test_campaigns_show_results_and_owners_edit_the_win_back_settings(app, fresh_owner, signed_in):
    client, made = fresh_owner
    html = client.get("/admin/campaigns").get_data(as_text=True)
    assert "Recovered revenue" in html and "Customers reached" in html
    response = client.post("/admin/campaigns", data={"csrf_token": csrf(client), "winback_incentive_points": "350",
                                                     "winback_enabled": ["false", "true"]})
    assert response.status_code == 302 and _settings(app, made.shop_id).winback_incentive_points == 350
    bad = client.post("/admin/campaigns", data={"csrf_token": csrf(client), "winback_recovery_days": "0"})
    assert bad.status_code == 422 and 'id="error-winback_recovery_days"' in bad.get_data(as_text=True)
    support = signed_in("support")
    assert "Save win-back settings" not in support.get("/admin/campaigns").get_data(as_text=True)
    assert support.post("/admin/campaigns", data={"csrf_token": csrf(support)}).status_code == 403


def test_campaigns_holdout_setting_and_the_two_groups_with_the_lift(app, fresh_owner):
    from datetime import UTC, datetime, timedelta

    from app.models import WinbackEnrollment
    from tests.factories import make_customer

    client, made = fresh_owner
    assert "Holdout" not in client.get("/admin/campaigns").get_data(as_text=True).split("<section")[0]  # off
    for bad in ("-1", "51", "12.5"):
        response = client.post("/admin/campaigns", data={"csrf_token": csrf(client), "winback_holdout_percent": bad})
        assert response.status_code == 422 and 'id="error-winback_holdout_percent"' in response.get_data(as_text=True)
    response = client.post("/admin/campaigns", data={"csrf_token": csrf(client), "winback_holdout_percent": "20"})
    assert response.status_code == 302 and _settings(app, made.shop_id).winback_holdout_percent == 20
    at = datetime.now(UTC) - timedelta(days=1)
    with app.app_context():
        shop = db.session.get(Shop, made.shop_id)
        for holdout, status in ((False, "converted"), (False, "completed"), (True, "converted"), (True, "completed"),
                                (True, "completed"), (True, "completed")):
            customer = make_customer(db.session, shop)
            db.session.add(WinbackEnrollment(shop_id=shop.id, customer_id=customer.id, status=status,
                                             holdout=holdout, holdout_percent=20, returned=status == "converted",
                                             enrolled_at=at, step1_sent_at=at))
        db.session.commit()
    html = client.get("/admin/campaigns").get_data(as_text=True)
    assert "Holdout (no emails)" in html and "25% of 4 held out" in html
    assert "+25 pts" in html  # 50 % of the emailed − 25 % of the holdout
    # Agresti–Caffo: 2/4 vs 2/6 ± 1.96 x sqrt(0.25/4 + (2/9)/6): six sequences measure nothing yet.
    assert "(95 % CI -45.17 to 78.5): not yet distinguishable from no effect" in html


def test_campaigns_show_a_lift_measured_beyond_doubt(app, fresh_owner):
    from datetime import UTC, datetime, timedelta

    from tests.factories import make_winback_enrollments

    client, made = fresh_owner
    at = datetime.now(UTC) - timedelta(days=1)
    with app.app_context():
        shop = db.session.get(Shop, made.shop_id)
        shop.settings = {**(shop.settings or {}), "winback_holdout_percent": 50}
        # 30 % vs 20 % back, 400 a side: about 10 ± 5.96 points.
        for holdout, back in ((False, 120), (True, 80)):
            make_winback_enrollments(db.session, shop, back, enrolled_at=at, holdout=holdout, returned=True)
            make_winback_enrollments(db.session, shop, 400 - back, enrolled_at=at, holdout=holdout)
        db.session.commit()
    html = client.get("/admin/campaigns").get_data(as_text=True)
    assert "+10 pts" in html
    assert "(95 % CI 3.99 to 15.91): the emails measurably changed how many came back" in html


def test_a_new_reward_form_starts_with_the_schemas_defaults_and_empty_fields(fresh_owner):
    client, _ = fresh_owner
    html = client.get("/admin/settings/rewards/new").get_data(as_text=True)
    assert 'name="name" type="text" value=""' in html and 'name="position" type="text" value="0"' in html
    assert "marshmallow" not in html
    response = client.post("/admin/settings/rewards/new", data={"csrf_token": csrf(client), "kind": "fixed_amount"})
    assert response.status_code == 422
    assert '<p class="error" id="error-points_cost">Missing data for required field.</p>' in response.get_data(as_text=True)
